//! Schema text posted to the embedded registry.
//!
//! apache-avro 0.21 panics on some malformed schemas (an `expect` while
//! writing a canonical form); the registry parses through `catch_unwind`
//! and answers 422, so here those panics unwind to the same catch.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(init: sluice_fuzz::tolerate_panics_from(&["/apache-avro-"]), |data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        sluice_runtime::fuzzing::registry_schema_text(text);
    }
});
