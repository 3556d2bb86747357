//! Avro message bodies the JDBC sink reads from Kafka (after Confluent's
//! 5-byte header), against a fixed Debezium-like writer schema.
#![no_main]
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use sluice_runtime::fuzzing::SinkAvroReader;

static READER: OnceLock<SinkAvroReader> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    READER.get_or_init(SinkAvroReader::new).read(data);
});
