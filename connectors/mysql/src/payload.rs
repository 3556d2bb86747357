//! MySQL 8 binlog transaction compression (`binlog_transaction_compression=ON`):
//! a whole transaction arrives as one `TRANSACTION_PAYLOAD` event holding
//! zstd-compressed events. The driver hands the payload event out and then
//! the events inside it one by one; those inner events have no file position
//! of their own, so each takes the payload event's — as Debezium does — and
//! a resume lands on an event boundary the server can serve.

use std::io::{self, Read};

use mysql_async::binlog::events::{BinlogEventHeader, Event, TransactionPayloadEvent};
use mysql_async::binlog::EventType;

/// Size of a v4 binlog event header.
const HEADER_LEN: usize = 19;

/// The payload event the next inner events belong to.
#[derive(Debug, Clone, Copy)]
struct Span {
    start: u64,
    end: u64,
    remaining: usize,
}

/// Gives every event the stream hands out its place in the binlog file.
#[derive(Debug, Default)]
pub struct Placement {
    open: Option<Span>,
}

impl Placement {
    /// `(start, end)` of the event in its binlog file. A payload event is
    /// opened here, so the events inside it that follow take its place;
    /// a payload that cannot be read is an error rather than a transaction
    /// silently skipped (the driver yields nothing for it).
    pub fn place(&mut self, event: &Event) -> Result<(u64, u64), String> {
        if let Some(span) = self.open.as_mut() {
            if span.remaining > 0 {
                span.remaining -= 1;
                let placed = (span.start, span.end);
                if span.remaining == 0 {
                    self.open = None;
                }
                return Ok(placed);
            }
            self.open = None;
        }
        let header = event.header();
        let (start, end) = own_place(&header);
        if header.event_type_raw() == EventType::TRANSACTION_PAYLOAD_EVENT as u8 {
            let remaining = inner_event_count(event).map_err(|e| {
                format!("cannot decompress the transaction payload event ending at {end}: {e}")
            })?;
            if remaining > 0 {
                self.open = Some(Span {
                    start,
                    end,
                    remaining,
                });
            }
        }
        Ok((start, end))
    }
}

fn own_place(header: &BinlogEventHeader) -> (u64, u64) {
    let end = u64::from(header.log_pos());
    (end.saturating_sub(u64::from(header.event_size())), end)
}

/// How many events a payload event holds, by walking their headers.
fn inner_event_count(event: &Event) -> io::Result<usize> {
    let payload = event.read_event::<TransactionPayloadEvent<'_>>()?;
    let mut reader = payload.decompressed()?;
    let mut count = 0;
    let mut header = [0u8; HEADER_LEN];
    loop {
        match reader.read_exact(&mut header) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof && count > 0 => return Ok(count),
            Err(e) => return Err(e),
        }
        let size = u32::from_le_bytes([header[9], header[10], header[11], header[12]]) as usize;
        let body = size.checked_sub(HEADER_LEN).ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidData, "an inner event is too short")
        })?;
        let skipped = io::copy(&mut (&mut reader).take(body as u64), &mut io::sink())?;
        if skipped != body as u64 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "an inner event is cut short",
            ));
        }
        count += 1;
    }
}

#[cfg(test)]
mod tests {
    use mysql_async::binlog::events::{EventData, RowsEventData};
    use mysql_async::binlog::BinlogVersion;
    use mysql_common::binlog::EventStreamReader;
    use sluice_connector_api::Value;

    use super::*;
    use crate::table_schema::TableSchema;
    use crate::test_binlog::{event, table_map_body as table_map_body_of, TABLE_ID};

    const GTID: u8 = 33;
    const QUERY: u8 = 2;
    const TABLE_MAP: u8 = 19;
    const WRITE_ROWS_V2: u8 = 30;
    const XID: u8 = 16;
    const PAYLOAD: u8 = 40;

    fn gtid_body(gno: u64) -> Vec<u8> {
        let mut b = vec![1];
        b.extend([0x3e; 16]);
        b.extend(gno.to_le_bytes());
        b.push(2);
        b.extend(0i64.to_le_bytes());
        b.extend(1i64.to_le_bytes());
        b
    }

    fn query_body(schema: &str, sql: &str) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend(9u32.to_le_bytes()); // thread id
        b.extend(0u32.to_le_bytes()); // execution time
        b.push(schema.len() as u8);
        b.extend(0u16.to_le_bytes()); // error code
        b.extend(0u16.to_le_bytes()); // status vars length
        b.extend(schema.as_bytes());
        b.push(0);
        b.extend(sql.as_bytes());
        b
    }

    /// `inventory.items (id INT, name VARCHAR(40) utf8mb4)`.
    fn table_map_body() -> Vec<u8> {
        table_map_body_of("inventory", "items", &[3, 15], &160u16.to_le_bytes(), 0b10)
    }

    fn write_rows_body(rows: &[(i32, &str)]) -> Vec<u8> {
        let mut b = TABLE_ID.to_vec();
        b.extend(1u16.to_le_bytes()); // end of statement
        b.extend(2u16.to_le_bytes()); // no extra data
        b.push(2);
        b.push(0b11);
        for (id, name) in rows {
            b.push(0); // no nulls
            b.extend(id.to_le_bytes());
            b.push(name.len() as u8);
            b.extend(name.as_bytes());
        }
        b
    }

    fn payload_body(inner: &[u8]) -> Vec<u8> {
        let compressed = zstd::bulk::compress(inner, 3).expect("zstd compresses");
        let mut b = vec![2, 1, 0]; // compression type: ZSTD
        b.extend([3, 1, inner.len() as u8]); // uncompressed size
        b.extend([1, 1, compressed.len() as u8]); // payload size
        b.push(0); // end of the header fields
        b.extend(compressed);
        b
    }

    /// A MySQL 8 binlog piece: GTID, one compressed transaction inserting
    /// two rows, the next GTID.
    fn binlog(inner_payload: Option<Vec<u8>>) -> (Vec<u8>, u64, u64) {
        let mut inner = event(QUERY, 0, &query_body("inventory", "BEGIN"));
        inner.extend(event(TABLE_MAP, 0, &table_map_body()));
        inner.extend(event(
            WRITE_ROWS_V2,
            0,
            &write_rows_body(&[(1, "łódź"), (2, "Zürich")]),
        ));
        inner.extend(event(XID, 0, &77u64.to_le_bytes()));
        let body = inner_payload.unwrap_or_else(|| payload_body(&inner));
        let gtid = gtid_body(5);
        let gtid_end = 4 + HEADER_LEN + gtid.len();
        let payload_end = gtid_end + HEADER_LEN + body.len();
        let next_end = payload_end + HEADER_LEN + gtid.len();
        let mut out = event(GTID, gtid_end as u32, &gtid);
        out.extend(event(PAYLOAD, payload_end as u32, &body));
        out.extend(event(GTID, next_end as u32, &gtid_body(6)));
        (out, gtid_end as u64, payload_end as u64)
    }

    /// Reads events as mysql_async's binlog stream does: a payload event,
    /// then the events inside it.
    fn read_all(bytes: &[u8]) -> Vec<Event> {
        let mut reader = EventStreamReader::new(BinlogVersion::Version4);
        let mut input = bytes;
        let mut out = Vec::new();
        while let Some(event) = reader.read(&mut input).expect("outer event") {
            let payload = (event.header().event_type_raw() == PAYLOAD).then(|| {
                event
                    .read_event::<TransactionPayloadEvent<'_>>()
                    .expect("payload event")
                    .danger_decompress()
            });
            out.push(event);
            if let Some(data) = payload {
                let mut inner = &data[..];
                while let Some(e) = reader.read_decompressed(&mut inner).expect("inner") {
                    out.push(e);
                }
            }
        }
        out
    }

    fn schema() -> TableSchema {
        crate::table_schema::tests_support::items()
    }

    #[test]
    fn compressed_transaction_rows_decode_and_take_the_payload_position() {
        let (bytes, payload_start, payload_end) = binlog(None);
        let events = read_all(&bytes);
        let kinds: Vec<u8> = events.iter().map(|e| e.header().event_type_raw()).collect();
        assert_eq!(
            kinds,
            [GTID, PAYLOAD, QUERY, TABLE_MAP, WRITE_ROWS_V2, XID, GTID]
        );

        let mut placement = Placement::default();
        let places: Vec<(u64, u64)> = events
            .iter()
            .map(|e| placement.place(e).expect("placed"))
            .collect();
        let inside = (payload_start, payload_end);
        assert_eq!(places[0], (4, payload_start));
        assert_eq!(&places[1..6], &[inside; 5]);
        assert_eq!(places[6].0, payload_end, "the next GTID has its own place");

        let tme = match events[3].read_data().expect("table map") {
            Some(EventData::TableMapEvent(t)) => t,
            other => panic!("expected a table map, got {other:?}"),
        };
        let rows = match events[4].read_data().expect("rows") {
            Some(EventData::RowsEvent(r @ RowsEventData::WriteRowsEvent(_))) => r,
            other => panic!("expected write rows, got {other:?}"),
        };
        let schema = schema();
        let decoded: Vec<Value> = crate::row_images::RowImages::new(&rows, &tme)
            .expect("a rows event of the table")
            .map(|pair| {
                let (_, after) = pair.expect("row decodes");
                let mut after = after.expect("an insert has an after image");
                schema.row_from_binlog(&mut after).expect("row maps")
            })
            .collect();
        assert_eq!(
            decoded,
            [
                Value::Struct(vec![Value::Int32(1), Value::String("łódź".into())]),
                Value::Struct(vec![Value::Int32(2), Value::String("Zürich".into())]),
            ]
        );
    }

    #[test]
    fn an_unreadable_payload_is_an_error_not_a_skipped_transaction() {
        let mut garbage = vec![2, 1, 0, 3, 1, 60, 1, 1, 8, 0];
        garbage.extend(b"notzstd!");
        let (bytes, _, payload_end) = binlog(Some(garbage));
        let mut reader = EventStreamReader::new(BinlogVersion::Version4);
        let mut input = &bytes[..];
        let mut placement = Placement::default();
        let gtid = reader.read(&mut input).expect("gtid").expect("an event");
        placement.place(&gtid).expect("gtid placed");
        let payload = reader.read(&mut input).expect("payload").expect("an event");
        let error = placement.place(&payload).expect_err("garbage is refused");
        assert!(
            error.contains("cannot decompress") && error.contains(&payload_end.to_string()),
            "{error}"
        );
    }
}
