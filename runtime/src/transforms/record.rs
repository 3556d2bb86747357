//! The part of a record transforms see and change: what Connect's
//! `ConnectRecord` exposes. Source and sink records are split into this and
//! the bookkeeping transforms must not touch (the source offset, the Kafka
//! offset a sink commits), and joined again afterwards.

use std::sync::Arc;

use sluice_connector_api::{
    Schema, SinkRecord, SourceOffset, SourcePartition, SourceRecord, TopicKind, Value,
};

/// A record as a transform sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// The topic it goes to (source) or came from (sink).
    pub topic: sluice_connector_api::Text,
    /// The Kafka partition, if fixed.
    pub kafka_partition: Option<i32>,
    /// The Kafka offset (sink records only), for `InsertField`'s `offset.field`.
    pub kafka_offset: Option<i64>,
    /// The key schema; `None` for a schemaless key.
    pub key_schema: Option<Arc<Schema>>,
    /// The key.
    pub key: Option<Value>,
    /// The value schema; `None` for a schemaless value.
    pub value_schema: Option<Arc<Schema>>,
    /// The value; `None` is a tombstone.
    pub value: Option<Value>,
    /// The record timestamp in milliseconds since the epoch.
    pub timestamp_ms: Option<i64>,
    /// Kafka headers, values as the header converter writes them (text as UTF-8).
    pub headers: Vec<(String, Vec<u8>)>,
}

/// What a source record carries besides its [`Record`]: where it was read,
/// which must be stored even when a transform drops the record.
#[derive(Debug)]
pub struct SourcePosition {
    /// The input stream the record came from.
    pub partition: Arc<SourcePartition>,
    /// The position to resume after once the record is handled.
    pub offset: SourceOffset,
}

impl Record {
    /// Splits a source record into what transforms see and its position.
    pub fn from_source(record: SourceRecord) -> (Self, SourcePosition) {
        let position = SourcePosition {
            partition: record.partition,
            offset: record.offset,
        };
        let record = Self {
            topic: record.topic,
            kafka_partition: record.kafka_partition,
            kafka_offset: None,
            key_schema: record.key_schema,
            key: record.key,
            value_schema: record.value_schema,
            value: record.value,
            timestamp_ms: record.timestamp_ms,
            headers: record.headers,
        };
        (record, position)
    }

    /// Joins a transformed record with the position it was split from.
    pub fn into_source(self, position: SourcePosition) -> SourceRecord {
        SourceRecord {
            partition: position.partition,
            offset: position.offset,
            topic: self.topic,
            kafka_partition: self.kafka_partition,
            key_schema: self.key_schema,
            key: self.key,
            value_schema: self.value_schema,
            value: self.value,
            timestamp_ms: self.timestamp_ms,
            headers: self.headers,
            topic_kind: TopicKind::Data,
        }
    }

    /// What transforms see of a record a sink consumed.
    pub fn from_sink(record: SinkRecord) -> Self {
        Self {
            topic: record.topic,
            kafka_partition: Some(record.kafka_partition),
            kafka_offset: Some(record.kafka_offset),
            key_schema: record.key_schema,
            key: record.key,
            value_schema: record.value_schema,
            value: record.value,
            timestamp_ms: record.timestamp_ms,
            headers: record.headers,
        }
    }

    /// The sink record handed to the task; the Kafka coordinates stay those
    /// it was consumed at (Connect's rule: commits follow the original).
    pub fn into_sink(self, consumed_partition: i32, consumed_offset: i64) -> SinkRecord {
        SinkRecord {
            topic: self.topic,
            kafka_partition: self.kafka_partition.unwrap_or(consumed_partition),
            kafka_offset: consumed_offset,
            key_schema: self.key_schema,
            key: self.key,
            value_schema: self.value_schema,
            value: self.value,
            timestamp_ms: self.timestamp_ms,
            headers: self.headers,
        }
    }

    /// The value of the first header called `name`.
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_slice())
    }
}

/// Records for the transforms' unit tests.
#[cfg(test)]
pub mod tests_support {
    use std::sync::Arc;

    use sluice_connector_api::{Field, Schema, Value};

    use super::Record;

    /// A record on `topic` with no key and no value.
    pub fn record_on(topic: &str) -> Record {
        Record {
            topic: topic.into(),
            kafka_partition: None,
            kafka_offset: None,
            key_schema: None,
            key: None,
            value_schema: None,
            value: None,
            timestamp_ms: Some(1_700_000_000_000),
            headers: Vec::new(),
        }
    }

    /// The row schema `<topic>.Value` of the tests: id (int32), name
    /// (optional string), email (optional string).
    pub fn row_schema() -> Arc<Schema> {
        Arc::new(
            Schema::structure(
                "db.inventory.customers.Value",
                vec![
                    Field::new("id", Schema::int32()),
                    Field::new("name", Schema::string().optional()),
                    Field::new("email", Schema::string().optional()),
                ],
            )
            .optional(),
        )
    }

    /// A change-event envelope `db.inventory.customers.Envelope`: `before`
    /// and `after` of [`row_schema`], then `rest`.
    pub fn envelope_with(rest: Vec<Field>) -> Arc<Schema> {
        let mut fields = vec![
            Field {
                name: "before".into(),
                schema: row_schema(),
            },
            Field {
                name: "after".into(),
                schema: row_schema(),
            },
        ];
        fields.extend(rest);
        Arc::new(Schema::structure("db.inventory.customers.Envelope", fields))
    }

    /// A row value of [`row_schema`].
    pub fn row(id: i32, name: &str, email: &str) -> Value {
        Value::Struct(vec![
            Value::Int32(id),
            Value::String(name.into()),
            Value::String(email.into()),
        ])
    }

    /// A record keyed by `{id}` whose value is the row itself.
    pub fn row_record(id: i32, name: &str, email: &str) -> Record {
        let key_schema = Arc::new(Schema::structure(
            "db.inventory.customers.Key",
            vec![Field::new("id", Schema::int32())],
        ));
        Record {
            key_schema: Some(key_schema),
            key: Some(Value::Struct(vec![Value::Int32(id)])),
            value_schema: Some(row_schema()),
            value: Some(row(id, name, email)),
            ..record_on("db.inventory.customers")
        }
    }

    /// The same record without schemas: maps with text keys.
    pub fn schemaless(record: Record) -> Record {
        fn to_map(schema: &Schema, value: Value) -> Value {
            match value {
                Value::Struct(values) => Value::Map(
                    schema
                        .fields()
                        .iter()
                        .zip(values)
                        .map(|(f, v)| (Value::String(f.name.clone().into()), v))
                        .collect(),
                ),
                other => other,
            }
        }
        let key = match (&record.key_schema, record.key.clone()) {
            (Some(s), Some(v)) => Some(to_map(s, v)),
            (_, k) => k,
        };
        let value = match (&record.value_schema, record.value.clone()) {
            (Some(s), Some(v)) => Some(to_map(s, v)),
            (_, v) => v,
        };
        Record {
            key_schema: None,
            key,
            value_schema: None,
            value,
            ..record
        }
    }
}
