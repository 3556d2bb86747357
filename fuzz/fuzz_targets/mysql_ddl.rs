//! DDL text from the binlog (QUERY events), as the MySQL connector reads it.
#![no_main]
use libfuzzer_sys::fuzz_target;
use sluice_mysql::ddl::{is_ddl, parse};

fuzz_target!(|data: &[u8]| {
    let sql = String::from_utf8_lossy(data);
    let _ = is_ddl(&sql);
    let _ = parse(&sql);
});
