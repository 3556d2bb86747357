//! Entry points for the fuzz targets under `fuzz/` (`cargo fuzz`): the
//! runtime's decoders of outside bytes, reachable without making their
//! modules public. Not an API; nothing else calls these.

use std::collections::HashMap;

use crate::converter::avro::plan::Plan;
use crate::converter::avro::projection::{Projection, ALL};
use crate::converter::avro::{datum, read::to_connect};
use crate::registry::avro_model::AvroModel;
use sluice_connector_api::FieldSelection;

/// Parses schema text as `POST /subjects/{subject}/versions` does (plain
/// and normalized); the result is thrown away, only a panic matters.
pub fn registry_schema_text(text: &str) {
    let _ = crate::registry::schema_text::parse(text, false);
    let _ = crate::registry::schema_text::parse(text, true);
}

/// The writer schema the sink-side Avro reader is fuzzed with: a Debezium
/// envelope-like record with every Avro type the converter reads.
const WRITER_SCHEMA: &str = r#"{"type":"record","name":"Envelope","namespace":"fuzz","fields":[
  {"name":"before","type":["null",{"type":"record","name":"Value","fields":[
    {"name":"id","type":"int"},
    {"name":"big","type":"long"},
    {"name":"small","type":{"type":"int","connect.type":"int16"}},
    {"name":"ratio","type":"float"},
    {"name":"amount","type":"double"},
    {"name":"ok","type":"boolean"},
    {"name":"note","type":["null","string"],"default":null},
    {"name":"blob","type":"bytes"},
    {"name":"price","type":{"type":"bytes","logicalType":"decimal","precision":10,"scale":2,"connect.name":"org.apache.kafka.connect.data.Decimal","connect.parameters":{"scale":"2"}}},
    {"name":"tags","type":{"type":"array","items":["null","string"]}},
    {"name":"attrs","type":{"type":"map","values":"long"}},
    {"name":"pairs","type":{"type":"array","items":{"type":"record","name":"Pair","fields":[{"name":"key","type":"int"},{"name":"value","type":"string"}]}}},
    {"name":"code","type":{"type":"fixed","name":"Code","size":4}},
    {"name":"kind","type":{"type":"enum","name":"Kind","symbols":["A","B","C"]}}
  ]}],"default":null},
  {"name":"after","type":["null","Value"],"default":null},
  {"name":"op","type":"string"},
  {"name":"ts_ms","type":["null","long"],"default":null}
]}"#;

/// Reads Confluent-framed Avro bodies (after the 5-byte header) the way
/// the sink's AvroConverter does, against one fixed writer schema: with
/// its reading plans, checked against the datum reader they stand for.
pub struct SinkAvroReader {
    model: AvroModel,
    schema: sluice_connector_api::Schema,
    /// Steps over every field but `op`, as for a sink that reads only it.
    only_op: Projection,
    /// The plans the sink reads by: the whole value, and only `op`.
    plans: [Plan; 2],
}

impl SinkAvroReader {
    /// The reader for [`WRITER_SCHEMA`].
    pub fn new() -> Self {
        let json: serde_json::Value =
            serde_json::from_str(WRITER_SCHEMA).expect("the fuzz writer schema is JSON");
        let schema = to_connect(&json, &mut HashMap::new()).expect("the fuzz writer schema maps");
        let model = AvroModel::from_json(&json).expect("the fuzz writer schema models");
        let only_op = Projection::of(&schema, &FieldSelection::default().whole("op"));
        let plans = [
            Plan::new(&model, &schema, &ALL),
            Plan::new(&model, &schema, &only_op),
        ];
        Self {
            model,
            schema,
            only_op,
            plans,
        }
    }

    /// Reads one message body, whole and stepping over fields, as the
    /// sink does and as the datum reader does; errors are expected,
    /// panics are bugs, and so is any difference between the two readings
    /// (it panics, naming both).
    pub fn read(&self, body: &[u8]) {
        for (plan, projection) in self.plans.iter().zip([&ALL, &self.only_op]) {
            let (mut planned_rest, mut read_rest) = (body, body);
            let planned = plan.read(&self.model, &mut planned_rest);
            let read = datum::read(&self.model, &self.schema, projection, &mut read_rest);
            // Where a failed reading stopped does not matter.
            let same_rest = read.is_err() || planned_rest.len() == read_rest.len();
            // As text: a NaN read from the bytes equals no value.
            let (planned, read) = (format!("{planned:?}"), format!("{read:?}"));
            assert!(
                planned == read && same_rest,
                "the plan read {planned} ({} bytes left), the datum reader {read} ({} left)",
                planned_rest.len(),
                read_rest.len()
            );
        }
    }
}

impl Default for SinkAvroReader {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fuzzed_reader_reads_a_real_message() {
        let reader = SinkAvroReader::new();
        // op "c", no before/after, no ts: the shortest valid message.
        let mut body: &[u8] = &[0, 0, 2, b'c', 0];
        let value = datum::read(&reader.model, &reader.schema, &ALL, &mut body).expect("valid");
        assert!(body.is_empty(), "{value:?}");
        reader.read(&[0xff; 3]);
        registry_schema_text(WRITER_SCHEMA);
    }

    /// The seeds under `fuzz/seeds/sink_avro` are whole valid messages of
    /// the fuzzed schema (so the fuzzer starts from the real shape).
    #[test]
    fn the_sink_avro_seeds_are_valid_messages() {
        let reader = SinkAvroReader::new();
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/seeds/sink_avro");
        let mut seen = 0;
        for entry in std::fs::read_dir(&dir).expect("seed dir") {
            let bytes = std::fs::read(entry.expect("entry").path()).expect("seed");
            let mut body = &bytes[..];
            datum::read(&reader.model, &reader.schema, &ALL, &mut body).expect("a valid seed");
            assert!(body.is_empty(), "bytes left after a seed");
            reader.read(&bytes);
            seen += 1;
        }
        assert_eq!(seen, 3);
    }
}
