//! Source partitions and offsets: where a source task is in its input.
//!
//! Both are small JSON objects, as in Kafka Connect, so that the offsets
//! REST API shows and accepts them unchanged (Debezium's Postgres offset is
//! `{"lsn": ..., "txId": ..., "ts_usec": ...}` under the partition
//! `{"server": "<topic.prefix>"}`).

use serde_json::{Map, Value as Json};

/// Which input stream an offset belongs to, e.g. `{"server": "dbserver1"}`.
pub type SourcePartition = Map<String, Json>;

/// The position within a partition, e.g. `{"lsn": 24023128}`.
pub type SourceOffset = Map<String, Json>;

/// A partition with one entry, a common case.
pub fn partition(key: &str, value: impl Into<Json>) -> SourcePartition {
    let mut map = Map::new();
    map.insert(key.to_owned(), value.into());
    map
}
