//! Binlog events built byte by byte for unit tests, read back the way
//! mysql_async's stream reads them.

use mysql_async::binlog::events::{Event, EventData, TableMapEvent};
use mysql_common::binlog::consts::BinlogVersion;
use mysql_common::binlog::EventStreamReader;

/// The table id every test table map and rows event uses.
pub const TABLE_ID: [u8; 6] = [42, 0, 0, 0, 0, 0];

/// One v4 event without checksum; `log_pos` is the end position (0 inside
/// a transaction payload, as MySQL writes it).
pub fn event(kind: u8, log_pos: u32, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend(1_700_000_000u32.to_le_bytes());
    out.push(kind);
    out.extend(7u32.to_le_bytes());
    out.extend(((19 + body.len()) as u32).to_le_bytes());
    out.extend(log_pos.to_le_bytes());
    out.extend(0u16.to_le_bytes());
    out.extend(body);
    out
}

/// [`event`] read back.
pub fn read(kind: u8, body: &[u8]) -> Event {
    EventStreamReader::new(BinlogVersion::Version4)
        .read(&event(kind, 0, body)[..])
        .expect("an event")
        .expect("one event")
}

/// The body of a TABLE_MAP event for `db.table` with column `types`, their
/// `metadata` and the `nullable` bitmap.
pub fn table_map_body(
    db: &str,
    table: &str,
    types: &[u8],
    metadata: &[u8],
    nullable: u8,
) -> Vec<u8> {
    let mut b = TABLE_ID.to_vec();
    b.extend(1u16.to_le_bytes());
    for name in [db, table] {
        b.push(name.len() as u8);
        b.extend(name.as_bytes());
        b.push(0);
    }
    b.push(types.len() as u8);
    b.extend(types);
    b.push(metadata.len() as u8);
    b.extend(metadata);
    b.push(nullable);
    b
}

/// [`table_map_body`] read back as a table map.
pub fn table_map(types: &[u8], metadata: &[u8], nullable: u8) -> TableMapEvent<'static> {
    match read(19, &table_map_body("db", "t", types, metadata, nullable))
        .read_data()
        .expect("a table map")
    {
        Some(EventData::TableMapEvent(t)) => t.into_owned(),
        other => panic!("expected a table map, got {other:?}"),
    }
}
