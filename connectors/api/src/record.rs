//! Records that flow between connectors and the runtime.

use std::sync::Arc;

use crate::offset::{SourceOffset, SourcePartition};
use crate::schema::Schema;
use crate::value::Value;

/// One record produced by a source task.
///
/// The runtime converts key and value, sends them to `topic`, and stores
/// `offset` for `partition` only once this record and every record before
/// it from the same task have been acknowledged by the broker.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceRecord {
    /// The input stream this record came from (shared between records).
    pub partition: Arc<SourcePartition>,
    /// The position to resume after once this record is durable.
    pub offset: SourceOffset,
    /// The destination topic (shared by a table's records).
    pub topic: crate::Text,
    /// The destination Kafka partition; `None` lets the producer hash the key.
    pub kafka_partition: Option<i32>,
    /// The key schema; `None` with a `None` key gives a null key.
    pub key_schema: Option<Arc<Schema>>,
    /// The key.
    pub key: Option<Value>,
    /// The value schema.
    pub value_schema: Option<Arc<Schema>>,
    /// The value; `None` is a tombstone.
    pub value: Option<Value>,
    /// The record timestamp in milliseconds since the epoch; `None` lets
    /// the producer stamp the time it sends the record. Debezium's records
    /// carry none (Kafka Connect's producer stamps them), and neither do
    /// the CDC connectors' here: a catch-up stamped with old commit times
    /// would meet time-based retention as already expired.
    pub timestamp_ms: Option<i64>,
    /// Kafka headers.
    pub headers: Vec<(String, Vec<u8>)>,
    /// Which kind of topic `topic` is, so the runtime writes it the way
    /// Debezium on Kafka Connect writes that kind.
    pub topic_kind: TopicKind,
}

/// The kinds of topic a source writes, which Debezium on Kafka Connect
/// writes in different ways.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TopicKind {
    /// Written through Connect: the connector's transforms and converters
    /// apply, and a missing topic is created as `topic.creation.*` says.
    /// Change events, tombstones, heartbeats, transaction and schema-change
    /// events.
    #[default]
    Data,
    /// The connector's schema-history topic, which Debezium writes with a
    /// producer of its own: the value (a string) as its plain UTF-8 bytes
    /// with no key, no transform or converter applied, to a topic of one
    /// partition kept for ever. A Debezium reading the topic back expects
    /// that one partition, cannot parse converter framing, and fails once
    /// retention has deleted part of the history.
    SchemaHistory,
}

/// One record delivered to a sink task, decoded by the runtime's converter.
#[derive(Debug, Clone)]
pub struct SinkRecord {
    /// The topic it was read from (shared by the records of a batch).
    pub topic: crate::Text,
    /// The Kafka partition it was read from.
    pub kafka_partition: i32,
    /// Its Kafka offset.
    pub kafka_offset: i64,
    /// The key schema, if the converter knows it.
    pub key_schema: Option<Arc<Schema>>,
    /// The key.
    pub key: Option<Value>,
    /// The value schema, if the converter knows it.
    pub value_schema: Option<Arc<Schema>>,
    /// The value; `None` is a tombstone.
    pub value: Option<Value>,
    /// The record timestamp in milliseconds since the epoch.
    pub timestamp_ms: Option<i64>,
    /// Kafka headers.
    pub headers: Vec<(String, Vec<u8>)>,
}

impl SinkRecord {
    /// Frees the record, its values the cheap way ([`Value::release`]):
    /// for the runtime, once a batch is applied.
    pub fn release(self) {
        if let Some(key) = self.key {
            key.release();
        }
        if let Some(value) = self.value {
            value.release();
        }
    }
}

#[cfg(test)]
impl SourceRecord {
    /// A record holding `value` on topic `t`, with no key, schema or
    /// offset: for the unit tests of what handles records.
    pub(crate) fn holding(value: Value) -> Self {
        Self {
            partition: Arc::new(crate::offset::partition("p", "x")),
            offset: crate::offset::SourceOffset::default(),
            topic: "t".into(),
            kafka_partition: None,
            key_schema: None,
            key: None,
            value_schema: None,
            value: Some(value),
            timestamp_ms: None,
            headers: Vec::new(),
            topic_kind: TopicKind::Data,
        }
    }
}
