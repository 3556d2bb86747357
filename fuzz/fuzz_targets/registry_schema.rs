//! Schema text posted to the embedded registry.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        sluice_runtime::fuzzing::registry_schema_text(text);
    }
});
