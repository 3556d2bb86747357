//! pgoutput messages as the walsender sends them (protocol 1 and the
//! streaming variant of protocol 2).
#![no_main]
use libfuzzer_sys::fuzz_target;
use sluice_postgres::replication::pgoutput::decode;

fuzz_target!(|data: &[u8]| {
    let Some((first, rest)) = data.split_first() else {
        return;
    };
    let _ = decode(bytes::Bytes::copy_from_slice(rest), first & 1 == 1);
});
