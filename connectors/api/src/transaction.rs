//! Debezium's transaction metadata (`provide.transaction.metadata`): each
//! change's `transaction` block (id, order in the transaction, order within
//! its table) and the BEGIN / END events on `<prefix>.transaction`, END
//! counting the events per table.
//!
//! BEGIN and END carry no offset: they never move the stored position (a
//! restart inside a transaction repeats its BEGIN; one between its last
//! change and its END can lose the END, never a change).

use std::sync::{Arc, OnceLock};

use crate::{Field, Schema, SourceOffset, SourcePartition, SourceRecord, TopicKind, Value};

/// A transaction whose changes are being emitted.
#[derive(Debug, Clone)]
pub struct OpenTransaction {
    id: String,
    ts_ms: i64,
    total: i64,
    /// Events per data collection (`schema.table`), in first-seen order.
    collections: Vec<(String, i64)>,
    begun: bool,
}

fn key_schema() -> Arc<Schema> {
    static KEY: OnceLock<Arc<Schema>> = OnceLock::new();
    Arc::clone(KEY.get_or_init(|| {
        Arc::new(
            Schema::structure(
                "io.debezium.connector.common.TransactionMetadataKey",
                vec![Field::new("id", Schema::string())],
            )
            .versioned(1),
        )
    }))
}

fn value_schema() -> Arc<Schema> {
    static VALUE: OnceLock<Arc<Schema>> = OnceLock::new();
    Arc::clone(VALUE.get_or_init(|| {
        let collection = Schema::structure(
            "event.collection",
            vec![
                Field::new("data_collection", Schema::string()),
                Field::new("event_count", Schema::int64()),
            ],
        )
        .versioned(1)
        .optional();
        Arc::new(
            Schema::structure(
                "io.debezium.connector.common.TransactionMetadataValue",
                vec![
                    Field::new("status", Schema::string()),
                    Field::new("id", Schema::string()),
                    Field::new("event_count", Schema::int64().optional()),
                    Field::new("data_collections", Schema::array(collection).optional()),
                    Field::new("ts_ms", Schema::int64()),
                ],
            )
            .versioned(1),
        )
    }))
}

impl OpenTransaction {
    /// A transaction `id` committed (or begun) at `ts_ms`.
    pub fn new(id: String, ts_ms: i64) -> Self {
        Self {
            id,
            ts_ms,
            total: 0,
            collections: Vec::new(),
            begun: false,
        }
    }

    /// Counts one change of `collection` and returns its `transaction`
    /// block (see [`crate::debezium::transaction_schema`]).
    pub fn block(&mut self, collection: &str) -> Value {
        self.total += 1;
        let in_collection = match self.collections.iter_mut().find(|(c, _)| c == collection) {
            Some((_, count)) => {
                *count += 1;
                *count
            }
            None => {
                self.collections.push((collection.to_owned(), 1));
                1
            }
        };
        Value::Struct(vec![
            Value::String(self.id.clone().into()),
            Value::Int64(self.total),
            Value::Int64(in_collection),
        ])
    }

    /// The BEGIN event, the first time it is asked for (it goes out just
    /// before the transaction's first change).
    pub fn begin(&mut self, partition: &Arc<SourcePartition>, topic: &str) -> Option<SourceRecord> {
        if self.begun {
            return None;
        }
        self.begun = true;
        Some(self.record(partition, topic, "BEGIN", Value::Null, Value::Null))
    }

    /// The END event, if a BEGIN went out.
    pub fn end(&self, partition: &Arc<SourcePartition>, topic: &str) -> Option<SourceRecord> {
        if !self.begun {
            return None;
        }
        let collections = self
            .collections
            .iter()
            .map(|(c, n)| Value::Struct(vec![Value::String(c.clone().into()), Value::Int64(*n)]))
            .collect();
        Some(self.record(
            partition,
            topic,
            "END",
            Value::Int64(self.total),
            Value::Array(collections),
        ))
    }

    fn record(
        &self,
        partition: &Arc<SourcePartition>,
        topic: &str,
        status: &str,
        event_count: Value,
        collections: Value,
    ) -> SourceRecord {
        SourceRecord {
            partition: Arc::clone(partition),
            offset: SourceOffset::new(),
            topic: topic.into(),
            kafka_partition: None,
            key_schema: Some(key_schema()),
            key: Some(Value::Struct(vec![Value::String(self.id.clone().into())])),
            value_schema: Some(value_schema()),
            value: Some(Value::Struct(vec![
                Value::String(status.into()),
                Value::String(self.id.clone().into()),
                event_count,
                collections,
                Value::Int64(self.ts_ms),
            ])),
            timestamp_ms: None,
            headers: Vec::new(),
            topic_kind: TopicKind::Data,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_count_per_transaction_and_per_table_and_end_sums_them() {
        let partition = Arc::new(crate::offset::partition("server", "srv"));
        let mut tx = OpenTransaction::new("7:100".into(), 5);
        assert!(
            tx.end(&partition, "srv.transaction").is_none(),
            "no BEGIN, no END"
        );
        let begin = tx.begin(&partition, "srv.transaction").expect("first");
        assert!(tx.begin(&partition, "srv.transaction").is_none(), "once");
        assert!(begin.offset.is_empty(), "moves no offset");
        let order = |v: Value| match v {
            Value::Struct(f) => (f[1].clone(), f[2].clone()),
            _ => panic!(),
        };
        assert_eq!(order(tx.block("s.a")), (Value::Int64(1), Value::Int64(1)));
        assert_eq!(order(tx.block("s.b")), (Value::Int64(2), Value::Int64(1)));
        assert_eq!(order(tx.block("s.a")), (Value::Int64(3), Value::Int64(2)));
        let end = tx.end(&partition, "srv.transaction").expect("begun");
        let Some(Value::Struct(fields)) = end.value else {
            panic!()
        };
        assert_eq!(fields[0], Value::String("END".into()));
        assert_eq!(fields[2], Value::Int64(3));
        assert_eq!(
            fields[3],
            Value::Array(vec![
                Value::Struct(vec![Value::String("s.a".into()), Value::Int64(2)]),
                Value::Struct(vec![Value::String("s.b".into()), Value::Int64(1)]),
            ])
        );
    }
}
