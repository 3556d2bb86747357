//! A binlog event stream as the MySQL connector's stream reads it: events
//! (and those inside compressed transaction payloads), table maps, and
//! the row images of rows events decoded against the table map they name
//! by the connector's own reader (`sluice_mysql::row_images`), after its
//! checks (`sluice_mysql::binlog_guard`).
//!
//! mysql_common 0.35.5 panics on many malformed events (unwraps and
//! indexing in `Event::read`, the payload event's parser, row values).
//! In the connector such a panic fails the task, which is retried from its
//! stored offset: visible, nothing lost. So here a panic raised inside
//! mysql_common is caught and the input counted as refused; anything that
//! would take the worker down — a panic anywhere else, an abort (an
//! allocation of exabytes), a hang — is still a crash for the fuzzer.
#![no_main]
use std::collections::HashMap;
use std::panic::{self, AssertUnwindSafe};

use libfuzzer_sys::fuzz_target;
use mysql_common::binlog::consts::{BinlogVersion, EventType};
use mysql_common::binlog::events::{EventData, TransactionPayloadEvent};
use mysql_common::binlog::EventStreamReader;

// mysql_common's own code, and bitvec indexing it does on a column bitmap
// shorter than the column count it read.
fuzz_target!(init: sluice_fuzz::tolerate_panics_from(&["/mysql_common-", "/bitvec-"]), |data: &[u8]| {
    let _ = panic::catch_unwind(AssertUnwindSafe(|| read_stream(data)));
});

fn read_stream(data: &[u8]) {
    let mut reader = EventStreamReader::new(BinlogVersion::Version4);
    let mut input = data;
    let mut maps = HashMap::new();
    loop {
        // `Event::read` allocates the size an event claims before reading
        // it (up to 4 GiB, zeroed and untouched: no memory in practice,
        // but over libFuzzer's malloc limit), then panics on the short read.
        let claimed = input
            .get(9..13)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize);
        if claimed.is_none_or(|size| size > input.len()) {
            break;
        }
        let Ok(Some(event)) = reader.read(&mut input) else {
            break;
        };
        let mut events = vec![event.clone()];
        if event.header().event_type_raw() == EventType::TRANSACTION_PAYLOAD_EVENT as u8 {
            if let Ok(payload) = event.read_event::<TransactionPayloadEvent<'_>>() {
                // As mysql_async's stream does it (danger_decompress), which
                // allocates the size the event declares: left out above
                // 64 MiB, a known limit of that library (the server is a
                // trusted peer), so the fuzzer looks for other faults.
                if payload.uncompressed_size() <= 64 << 20 {
                    let inner = payload.danger_decompress();
                    let mut rest = &inner[..];
                    while let Ok(Some(e)) = reader.read_decompressed(&mut rest) {
                        events.push(e);
                    }
                }
            }
        }
        for event in events {
            match event.read_data() {
                Ok(Some(EventData::TableMapEvent(tme))) => {
                    maps.insert(tme.table_id(), tme.into_owned());
                }
                Ok(Some(EventData::RowsEvent(rows))) => {
                    let Some(tme) = maps.get(&rows.table_id()) else {
                        continue;
                    };
                    // The connector's own checks (stream.rs) come first.
                    if sluice_mysql::binlog_guard::check_table_map(tme).is_err() {
                        continue;
                    }
                    // The connector's own row reader (row_images.rs): a
                    // panic or a hang in it is a crash here.
                    let Ok(images) = sluice_mysql::row_images::RowImages::new(&rows, tme) else {
                        continue;
                    };
                    let most_rows = sluice_mysql::binlog_guard::most_rows(&rows);
                    for row in images.take(most_rows) {
                        let Ok((before, after)) = row else { break };
                        for image in [before, after].into_iter().flatten() {
                            for value in image.into_iter().flatten() {
                                let _ = value.into_binlog().into_owned();
                            }
                        }
                    }
                }
                _ => {}
            }
        }
    }
}
