//! Debezium's MySQL offset, both ways: the typed [`BinlogPosition`] every
//! event carries (written as Debezium's JSON — `file`, `pos`, `gtids`,
//! `event`, `row` — only when stored), and the [`Resume`] point a stored
//! offset, sluice's or one Debezium wrote, means for a restarted task.

use std::sync::Arc;

use serde_json::json;
use sluice_connector_api::SourceOffset;

/// Where in the binlog an event is: enough to resume right after it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BinlogPosition {
    /// Binlog file name (shared: every event's offset and source block
    /// carry it).
    pub file: Arc<str>,
    /// Position of the event group's first event (GTID or BEGIN): a
    /// restart reads from here and skips what was already emitted.
    pub pos: u64,
    /// Events of the group already handled before the current one.
    pub event: u64,
    /// Rows of the current rows event already emitted.
    pub row: u64,
    /// GTIDs of the groups completed before this one (shared, as `file`).
    pub gtids: Arc<str>,
    /// The current group's GTID, when the server writes one.
    pub gtid: Option<Arc<str>>,
    /// The server that wrote the event.
    pub server_id: u32,
    /// The event's timestamp, seconds since the epoch.
    pub ts_sec: i64,
}

/// Where streaming resumes: the event group to start at and what of it
/// was already emitted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    /// Binlog file.
    pub file: String,
    /// Start of the event group (or the position after the last complete one).
    pub pos: u64,
    /// Rows events of the group already fully emitted.
    pub event: u64,
    /// Rows of the next rows event already emitted.
    pub row: u64,
    /// Completed GTIDs before the group.
    pub gtids: String,
}

/// How an event's offset marks the snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnapshotMark {
    /// A streamed event.
    Streaming,
    /// A snapshot row; `true` for the snapshot's last one.
    Snapshot {
        /// The snapshot is complete once this record is durable.
        last: bool,
    },
}

/// The offset stored for an event (Debezium's keys): kept typed, written
/// as JSON only if it is stored.
pub fn offset(position: &BinlogPosition, mark: SnapshotMark) -> SourceOffset {
    SourceOffset::typed(EventOffset {
        position: position.clone(),
        mark,
    })
}

/// An event's binlog position and snapshot mark, as its offset.
#[derive(Debug)]
struct EventOffset {
    position: BinlogPosition,
    mark: SnapshotMark,
}

impl sluice_connector_api::offset::Position for EventOffset {
    fn to_json(&self) -> serde_json::Map<String, serde_json::Value> {
        let (position, mut offset) = (&self.position, serde_json::Map::new());
        offset.insert("file".into(), json!(&*position.file));
        offset.insert("pos".into(), json!(position.pos));
        if !position.gtids.is_empty() {
            offset.insert("gtids".into(), json!(&*position.gtids));
        }
        offset.insert("event".into(), json!(position.event));
        offset.insert("row".into(), json!(position.row));
        offset.insert("server_id".into(), json!(position.server_id));
        offset.insert("ts_sec".into(), json!(position.ts_sec));
        if let SnapshotMark::Snapshot { last } = self.mark {
            offset.insert("snapshot".into(), json!(true));
            offset.insert("snapshot_completed".into(), json!(last));
        }
        offset
    }
}

/// Where a start resumes, from the stored offsets.
#[derive(Debug, Clone, PartialEq)]
pub enum Resume {
    /// No offset: per `snapshot.mode`.
    Fresh,
    /// A snapshot was cut short: take it again, then stream from where
    /// the cut-short one stood (when its offset says).
    SnapshotIncomplete(Option<Cursor>),
    /// Stream from here.
    Stream(Cursor),
}

/// Reads where to resume from the main partition's offset.
pub fn resume_from(offset: Option<&SourceOffset>) -> Resume {
    let Some(offset) = offset else {
        return Resume::Fresh;
    };
    let text = |k: &str| {
        offset
            .get(k)
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned)
    };
    let number = |k: &str| offset.get(k).and_then(serde_json::Value::as_u64);
    let snapshot = offset.get("snapshot").and_then(serde_json::Value::as_bool) == Some(true);
    let completed = offset
        .get("snapshot_completed")
        .and_then(serde_json::Value::as_bool)
        == Some(true);
    if snapshot && !completed {
        let at = match (text("file"), number("pos")) {
            (Some(file), Some(pos)) => Some(Cursor {
                file,
                pos,
                event: 0,
                row: 0,
                gtids: text("gtids").unwrap_or_default(),
            }),
            _ => None,
        };
        return Resume::SnapshotIncomplete(at);
    }
    match (text("file"), number("pos")) {
        (Some(file), Some(pos)) => Resume::Stream(Cursor {
            file,
            pos,
            // A completed snapshot's rows are not binlog rows: nothing to skip.
            event: if snapshot {
                0
            } else {
                number("event").unwrap_or(0)
            },
            row: if snapshot {
                0
            } else {
                number("row").unwrap_or(0)
            },
            gtids: text("gtids").unwrap_or_default(),
        }),
        _ => Resume::Fresh,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(v: serde_json::Value) -> SourceOffset {
        v.as_object().cloned().unwrap_or_default().into()
    }

    #[test]
    fn offsets_map_to_resume_points() {
        assert_eq!(resume_from(None), Resume::Fresh);
        assert_eq!(
            resume_from(Some(&stored(
                json!({"file": "b.1", "pos": 4, "snapshot": true, "snapshot_completed": false})
            ))),
            Resume::SnapshotIncomplete(Some(Cursor {
                file: "b.1".into(),
                pos: 4,
                event: 0,
                row: 0,
                gtids: String::new(),
            }))
        );
        assert_eq!(
            resume_from(Some(&stored(json!({"snapshot": true})))),
            Resume::SnapshotIncomplete(None)
        );
        assert_eq!(
            resume_from(Some(&stored(
                json!({"file": "b.1", "pos": 400, "snapshot": true, "snapshot_completed": true, "row": 1})
            ))),
            Resume::Stream(Cursor {
                file: "b.1".into(),
                pos: 400,
                event: 0,
                row: 0,
                gtids: String::new()
            })
        );
        assert_eq!(
            resume_from(Some(&stored(
                json!({"file": "b.2", "pos": 7, "event": 2, "row": 3, "gtids": "0-1-5"})
            ))),
            Resume::Stream(Cursor {
                file: "b.2".into(),
                pos: 7,
                event: 2,
                row: 3,
                gtids: "0-1-5".into()
            })
        );
    }

    /// What a task stores is what a restarted one resumes from: the
    /// codec reads back every field it writes.
    #[test]
    fn a_stored_position_resumes_where_it_was() {
        let position = BinlogPosition {
            file: "mariadb-bin.000003".into(),
            pos: 1_234,
            event: 2,
            row: 17,
            gtids: "0-1-41".into(),
            gtid: Some("0-1-42".into()),
            server_id: 1,
            ts_sec: 1_700_000_000,
        };
        let cursor = Cursor {
            file: position.file.to_string(),
            pos: position.pos,
            event: 2,
            row: 17,
            gtids: "0-1-41".into(),
        };
        let stored: SourceOffset = serde_json::from_str(
            &serde_json::to_string(&offset(&position, SnapshotMark::Streaming)).expect("json"),
        )
        .expect("parses");
        assert_eq!(resume_from(Some(&stored)), Resume::Stream(cursor.clone()));
        // The snapshot's last row: stream from its position, nothing to skip.
        let last = offset(&position, SnapshotMark::Snapshot { last: true });
        assert_eq!(
            resume_from(Some(&last)),
            Resume::Stream(Cursor {
                event: 0,
                row: 0,
                ..cursor.clone()
            })
        );
        let cut_short = offset(&position, SnapshotMark::Snapshot { last: false });
        assert_eq!(
            resume_from(Some(&cut_short)),
            Resume::SnapshotIncomplete(Some(Cursor {
                event: 0,
                row: 0,
                ..cursor
            }))
        );
    }
}
