//! Debezium's PostgreSQL offset, both ways: the typed [`Position`] every
//! event carries (written as Debezium's JSON only when stored), and the
//! [`Resume`] point a stored offset — sluice's or one Debezium wrote —
//! means for a restarted task.

use serde_json::json;
use sluice_connector_api::SourceOffset;

use crate::replication::Lsn;

/// Where an event comes from: the snapshot or a streamed transaction.
#[derive(Debug, Clone)]
pub enum Position {
    /// A snapshot row.
    Snapshot {
        /// The slot's consistent point: streaming starts here.
        lsn: Lsn,
        /// `source.snapshot`: true, first, last, first/last_in_data_collection.
        marker: &'static str,
        /// Whether this is the snapshot's last row (the snapshot is done
        /// once it is committed).
        last: bool,
    },
    /// A streamed change.
    Stream {
        /// LSN of the change.
        lsn: Lsn,
        /// LSN of its transaction's commit record.
        commit_lsn: Lsn,
        /// Position of the change within its transaction.
        tx_seq: u64,
        /// Transaction id.
        xid: u32,
    },
}

/// The offset stored for an event at `position`: kept typed, written as
/// Debezium's JSON only if it is stored.
pub fn offset(position: &Position, ts_usec: i64) -> SourceOffset {
    SourceOffset::typed(EventOffset {
        position: position.clone(),
        ts_usec,
    })
}

/// An event's position and commit time, as its offset.
#[derive(Debug)]
struct EventOffset {
    position: Position,
    ts_usec: i64,
}

impl sluice_connector_api::offset::Position for EventOffset {
    fn to_json(&self) -> serde_json::Map<String, serde_json::Value> {
        let mut offset = serde_json::Map::new();
        let ts_usec = self.ts_usec;
        match &self.position {
            Position::Snapshot { lsn, last, .. } => {
                offset.insert("lsn".into(), json!(lsn.0));
                offset.insert("snapshot".into(), json!(true));
                offset.insert("last_snapshot_record".into(), json!(*last));
                offset.insert("ts_usec".into(), json!(ts_usec));
            }
            Position::Stream {
                lsn,
                commit_lsn,
                tx_seq,
                xid,
            } => {
                offset.insert("lsn".into(), json!(lsn.0));
                offset.insert("lsn_proc".into(), json!(lsn.0));
                offset.insert("lsn_commit".into(), json!(commit_lsn.0));
                offset.insert("tx_seq".into(), json!(tx_seq));
                offset.insert("txId".into(), json!(xid));
                offset.insert("ts_usec".into(), json!(ts_usec));
            }
        }
        offset
    }
}

/// The offset of an idle stream at `lsn`: every transaction committed
/// before it was emitted, none at or after it (so no `tx_seq`, as in the
/// offsets Debezium writes).
pub fn idle_offset(lsn: Lsn, ts_usec: i64) -> SourceOffset {
    let mut offset = SourceOffset::new();
    offset.insert("lsn".into(), json!(lsn.0));
    offset.insert("lsn_proc".into(), json!(lsn.0));
    offset.insert("lsn_commit".into(), json!(lsn.0));
    offset.insert("ts_usec".into(), json!(ts_usec));
    offset
}

/// The offset stored when a snapshot begins, before its slot is created:
/// a snapshot cut short, to a restart (and to Debezium, which reads the
/// same two fields), with no position yet.
pub fn snapshot_begun(ts_usec: i64) -> SourceOffset {
    let mut offset = SourceOffset::new();
    offset.insert("snapshot".into(), json!(true));
    offset.insert("last_snapshot_record".into(), json!(false));
    offset.insert("ts_usec".into(), json!(ts_usec));
    offset
}

/// Where a restarted task resumes, from its stored offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resume {
    /// No offset: a fresh start.
    Fresh,
    /// A snapshot was cut short: take it again.
    SnapshotIncomplete,
    /// The snapshot finished at this consistent point; stream from it.
    AfterSnapshot(Lsn),
    /// Mid-stream: every transaction committed before `commit_lsn` was
    /// emitted, and of the one committing at it the changes up to `tx_seq`
    /// (none when `None`).
    Stream {
        /// Commit LSN of the last stored change's transaction.
        commit_lsn: Lsn,
        /// Its position in the transaction; `None` when nothing of the
        /// transaction committing at `commit_lsn` was emitted.
        tx_seq: Option<u64>,
    },
}

impl Resume {
    /// How much of the transaction committing at `commit_lsn` a previous
    /// run emitted: `Some(u64::MAX)` all of it, `Some(seq)` its changes up
    /// to position `seq`, `None` none.
    pub fn emitted_of(&self, commit_lsn: Lsn) -> Option<u64> {
        match *self {
            Resume::Stream {
                commit_lsn: at,
                tx_seq,
            } if commit_lsn <= at => {
                if commit_lsn < at {
                    Some(u64::MAX)
                } else {
                    tx_seq
                }
            }
            _ => None,
        }
    }
}

/// Where to resume from a stored offset.
pub fn resume_from(offset: Option<&SourceOffset>) -> Resume {
    let Some(offset) = offset else {
        return Resume::Fresh;
    };
    let number = |key: &str| offset.get(key).and_then(serde_json::Value::as_u64);
    if offset.get("snapshot").and_then(serde_json::Value::as_bool) == Some(true) {
        return match (
            offset
                .get("last_snapshot_record")
                .and_then(serde_json::Value::as_bool),
            number("lsn"),
        ) {
            (Some(true), Some(lsn)) => Resume::AfterSnapshot(Lsn(lsn)),
            _ => Resume::SnapshotIncomplete,
        };
    }
    // Debezium before 1.x stored only `lsn`, the last change it handled:
    // every transaction committed before it was handled whole.
    match number("lsn_commit").or_else(|| number("lsn")) {
        // Without our position in the transaction (an idle heartbeat, or
        // an offset Debezium wrote): resume at that commit, repeating the
        // transaction committing there rather than skipping any of it.
        Some(commit) => Resume::Stream {
            commit_lsn: Lsn(commit),
            tx_seq: number("tx_seq"),
        },
        None => Resume::Fresh,
    }
}

/// The transaction and position within it of a stored streaming offset:
/// what the task needs to know which LSN it may confirm once that offset
/// is durable. `None` for snapshot and idle offsets.
pub fn change_in_transaction(offset: &SourceOffset) -> Option<(Lsn, u64)> {
    let number = |key: &str| offset.get(key).and_then(serde_json::Value::as_u64);
    Some((Lsn(number("lsn_commit")?), number("tx_seq")?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(value: serde_json::Value) -> SourceOffset {
        value.as_object().cloned().unwrap_or_default().into()
    }

    #[test]
    fn offsets_map_to_resume_points() {
        assert_eq!(resume_from(None), Resume::Fresh);
        let begun = serde_json::to_value(snapshot_begun(1)).expect("json");
        assert_eq!(
            resume_from(Some(&stored(begun))),
            Resume::SnapshotIncomplete
        );
        assert_eq!(
            resume_from(Some(&stored(
                json!({"snapshot": true, "last_snapshot_record": false, "lsn": 5})
            ))),
            Resume::SnapshotIncomplete
        );
        assert_eq!(
            resume_from(Some(&stored(
                json!({"snapshot": true, "last_snapshot_record": true, "lsn": 5})
            ))),
            Resume::AfterSnapshot(Lsn(5))
        );
        assert_eq!(
            resume_from(Some(&stored(
                json!({"lsn_commit": 9, "tx_seq": 3, "lsn": 8})
            ))),
            Resume::Stream {
                commit_lsn: Lsn(9),
                tx_seq: Some(3)
            }
        );
        // Debezium's streaming offsets, today's and before lsn_commit.
        assert_eq!(
            resume_from(Some(&stored(
                json!({"transaction_id": null, "lsn_proc": 12, "messageType": "UPDATE", "lsn_commit": 10, "lsn": 12, "txId": 7, "ts_usec": 1})
            ))),
            Resume::Stream {
                commit_lsn: Lsn(10),
                tx_seq: None
            }
        );
        assert_eq!(
            resume_from(Some(&stored(json!({"lsn": 12, "txId": 7, "ts_usec": 1})))),
            Resume::Stream {
                commit_lsn: Lsn(12),
                tx_seq: None
            }
        );
    }

    /// What a task stores is what a restarted one resumes from.
    #[test]
    fn a_stored_position_resumes_where_it_was() {
        let stored: SourceOffset = serde_json::from_str(
            &serde_json::to_string(&offset(
                &Position::Stream {
                    lsn: Lsn(90),
                    commit_lsn: Lsn(120),
                    tx_seq: 4,
                    xid: 77,
                },
                1,
            ))
            .expect("json"),
        )
        .expect("parses");
        let resume = resume_from(Some(&stored));
        assert_eq!(
            resume,
            Resume::Stream {
                commit_lsn: Lsn(120),
                tx_seq: Some(4)
            }
        );
        assert_eq!(change_in_transaction(&stored), Some((Lsn(120), 4)));
        let snapshot = |last| {
            offset(
                &Position::Snapshot {
                    lsn: Lsn(50),
                    marker: "true",
                    last,
                },
                1,
            )
        };
        assert_eq!(
            resume_from(Some(&snapshot(true))),
            Resume::AfterSnapshot(Lsn(50))
        );
        assert_eq!(
            resume_from(Some(&snapshot(false))),
            Resume::SnapshotIncomplete
        );
        assert_eq!(change_in_transaction(&snapshot(true)), None);
        let idle = idle_offset(Lsn(300), 1);
        assert_eq!(
            resume_from(Some(&idle)),
            Resume::Stream {
                commit_lsn: Lsn(300),
                tx_seq: None
            }
        );
        assert_eq!(change_in_transaction(&idle), None);
    }
}
