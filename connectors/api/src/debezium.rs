//! Pieces of Debezium's event format every source connector shares: the
//! change-event envelope, the transaction block and heartbeat records.
//! Each connector adds its own `source` block.

use std::sync::{Arc, OnceLock};

use crate::offset::{SourceOffset, SourcePartition};
use crate::record::{SourceRecord, TopicKind};
use crate::schema::{Field, Schema};
use crate::text::Text;
use crate::value::Value;

/// Debezium's operation codes (`op`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Snapshot read.
    Read,
    /// Insert.
    Create,
    /// Update.
    Update,
    /// Delete.
    Delete,
    /// Truncate.
    Truncate,
}

impl Op {
    /// The `op` field's text.
    pub fn code(self) -> &'static str {
        match self {
            Self::Read => "r",
            Self::Create => "c",
            Self::Update => "u",
            Self::Delete => "d",
            Self::Truncate => "t",
        }
    }

    /// The `op` field as shared text, picked by its place in [`OP_CODES`]
    /// rather than found by comparing text (about 50 instructions an
    /// event, callgrind, the MariaDB bench).
    pub fn text(self) -> Text {
        let place = match self {
            Self::Read => 0,
            Self::Create => 1,
            Self::Update => 2,
            Self::Delete => 3,
            Self::Truncate => 4,
        };
        Text::from(&shared_op_codes()[place])
    }
}

/// The `source.snapshot` field every connector's source block carries.
pub fn snapshot_field() -> Field {
    Field::new(
        "snapshot",
        Schema::string()
            .named(crate::logical::ENUM)
            .versioned(1)
            .parameter(
                "allowed",
                "true,first,first_in_data_collection,last_in_data_collection,last,false,incremental",
            )
            .optional()
            .with_default(Value::String("false".into())),
    )
}

/// The values `source.snapshot` may take, in the order of its `allowed`.
const SNAPSHOT_VALUES: [&str; 7] = [
    "true",
    "first",
    "first_in_data_collection",
    "last_in_data_collection",
    "last",
    "false",
    "incremental",
];

/// `source.snapshot` as shared text: one allocation per value for the
/// process rather than one per event.
pub fn snapshot_text(value: &str) -> Text {
    static SHARED: OnceLock<Vec<Arc<str>>> = OnceLock::new();
    among(made_once(&SHARED, &SNAPSHOT_VALUES), value)
}

/// The envelope's `op` codes: [`Op`]'s, and `m` for a logical message.
const OP_CODES: [&str; 6] = ["r", "c", "u", "d", "t", "m"];

/// [`OP_CODES`] as shared text, made once.
fn shared_op_codes() -> &'static [Arc<str>] {
    static SHARED: OnceLock<Vec<Arc<str>>> = OnceLock::new();
    made_once(&SHARED, &OP_CODES)
}

/// An envelope's `op` as shared text (see [`snapshot_text`]).
pub fn op_text(op: &str) -> Text {
    among(shared_op_codes(), op)
}

/// `values` as shared text, made once in `cache`.
fn made_once<'c>(cache: &'c OnceLock<Vec<Arc<str>>>, values: &[&str]) -> &'c [Arc<str>] {
    cache.get_or_init(|| values.iter().map(|v| Arc::from(*v)).collect())
}

/// `value` as the shared text of one of `shared`, or as text of its own
/// when it is none of them.
fn among(shared: &[Arc<str>], value: &str) -> Text {
    shared
        .iter()
        .find(|s| s.as_ref() == value)
        .map_or_else(|| Text::from(value), Text::from)
}

/// The parts of a `source` block that every event of one connector
/// repeats, as shared text.
#[derive(Debug, Clone)]
pub struct SourceNames {
    /// `source.version`: sluice's version.
    pub version: Text,
    /// `source.connector`, e.g. `postgresql`.
    pub connector: Text,
    /// `source.name`: the topic prefix.
    pub name: Text,
}

impl SourceNames {
    /// The names of a `connector` (its `source.connector`) named `name`.
    pub fn new(connector: &str, name: &str) -> Self {
        Self {
            version: Text::from(Arc::<str>::from(env!("CARGO_PKG_VERSION"))),
            connector: Text::from(Arc::<str>::from(connector)),
            name: Text::from(Arc::<str>::from(name)),
        }
    }
}

/// Snapshot progress from `(table, rows done, estimated rows)` entries,
/// as both sources keep it.
pub fn snapshot_progress<E>(tables: &[(String, u64, E)]) -> Vec<crate::TableProgress>
where
    E: Copy + TryInto<i64>,
{
    tables
        .iter()
        .map(|(table, rows, estimate)| crate::TableProgress {
            table: table.clone(),
            rows: *rows,
            estimated_rows: (*estimate).try_into().unwrap_or(i64::MAX),
        })
        .collect()
}

/// Debezium's transaction block (`event.block`): id, total order and order
/// within the table.
pub fn transaction_schema() -> Arc<Schema> {
    static BLOCK: OnceLock<Arc<Schema>> = OnceLock::new();
    Arc::clone(BLOCK.get_or_init(|| {
        Arc::new(
            Schema::structure(
                "event.block",
                vec![
                    Field::new("id", Schema::string()),
                    Field::new("total_order", Schema::int64()),
                    Field::new("data_collection_order", Schema::int64()),
                ],
            )
            .versioned(1)
            .optional(),
        )
    }))
}

/// A table's schemas: the key struct `<topic>.Key` of the key columns (in
/// key order; `None` without a key), the envelope around the row struct
/// `<topic>.Value`, and the key columns' positions. `field` makes one
/// column's field (`true` for the key, where columns are never optional).
pub fn table_schemas<C>(
    topic: &str,
    columns: &[C],
    name: impl Fn(&C) -> &str,
    key_names: &[String],
    field: impl Fn(&C, bool) -> crate::schema::Field,
    source: Arc<Schema>,
) -> (Option<Arc<Schema>>, Arc<Schema>, Vec<usize>) {
    let key: Vec<usize> = key_names
        .iter()
        .filter_map(|k| columns.iter().position(|c| name(c) == k))
        .collect();
    let key_schema = (!key.is_empty()).then(|| {
        Arc::new(Schema::structure(
            format!("{topic}.Key"),
            key.iter().map(|i| field(&columns[*i], true)).collect(),
        ))
    });
    let row = Arc::new(
        Schema::structure(
            format!("{topic}.Value"),
            columns.iter().map(|c| field(c, false)).collect(),
        )
        .optional(),
    );
    (key_schema, envelope_schema(topic, &row, source), key)
}

/// The envelope `<topic>.Envelope`: `before`, `after` (both `row`),
/// `source`, `transaction`, `op`, `ts_ms`, `ts_us`, `ts_ns` — the order
/// [`envelope`] fills.
pub fn envelope_schema(topic: &str, row: &Arc<Schema>, source: Arc<Schema>) -> Arc<Schema> {
    Arc::new(
        Schema::structure(
            format!("{topic}.Envelope"),
            vec![
                Field {
                    name: "before".into(),
                    schema: Arc::clone(row),
                },
                Field {
                    name: "after".into(),
                    schema: Arc::clone(row),
                },
                Field {
                    name: "source".into(),
                    schema: source,
                },
                Field {
                    name: "transaction".into(),
                    schema: transaction_schema(),
                },
                Field::new("op", Schema::string()),
                Field::new("ts_ms", Schema::int64().optional()),
                Field::new("ts_us", Schema::int64().optional()),
                Field::new("ts_ns", Schema::int64().optional()),
            ],
        )
        .versioned(2),
    )
}

/// An envelope value for [`envelope_schema`] (`op` as shared text, see
/// [`Op::text`]); `now_us` is when sluice processed the change.
pub fn envelope(
    before: Option<Value>,
    after: Option<Value>,
    source: Value,
    transaction: Value,
    op: Text,
    now_us: i64,
) -> Value {
    Value::Struct(vec![
        before.unwrap_or(Value::Null),
        after.unwrap_or(Value::Null),
        source,
        transaction,
        Value::String(op),
        Value::Int64(now_us / 1000),
        Value::Int64(now_us),
        Value::Int64(now_us.saturating_mul(1000)),
    ])
}

/// Debezium's heartbeat record on `topic` (`__debezium-heartbeat.<server>`
/// by default): it carries the connector's position forward while captured
/// tables are idle.
pub fn heartbeat(
    partition: &Arc<SourcePartition>,
    (server, topic): (&str, &str),
    offset: SourceOffset,
    now_us: i64,
) -> SourceRecord {
    static SCHEMAS: OnceLock<(Arc<Schema>, Arc<Schema>)> = OnceLock::new();
    let (key_schema, value_schema) = SCHEMAS.get_or_init(|| {
        (
            Arc::new(Schema::structure(
                "io.debezium.connector.common.ServerNameKey",
                vec![Field::new("serverName", Schema::string())],
            )),
            Arc::new(Schema::structure(
                "io.debezium.connector.common.Heartbeat",
                vec![Field::new("ts_ms", Schema::int64())],
            )),
        )
    });
    SourceRecord {
        partition: Arc::clone(partition),
        offset,
        topic: topic.into(),
        kafka_partition: None,
        key_schema: Some(Arc::clone(key_schema)),
        key: Some(Value::Struct(vec![Value::String(server.into())])),
        value_schema: Some(Arc::clone(value_schema)),
        value: Some(Value::Struct(vec![Value::Int64(now_us / 1000)])),
        timestamp_ms: None,
        headers: Vec::new(),
        topic_kind: TopicKind::Data,
    }
}

/// The tombstone that follows a delete (same key, null value), so log
/// compaction can drop the key. The delete's value is not copied.
pub fn tombstone(record: &SourceRecord) -> SourceRecord {
    SourceRecord {
        partition: Arc::clone(&record.partition),
        offset: record.offset.clone(),
        topic: record.topic.clone(),
        kafka_partition: record.kafka_partition,
        key_schema: record.key_schema.clone(),
        key: record.key.clone(),
        value_schema: None,
        value: None,
        timestamp_ms: record.timestamp_ms,
        headers: record.headers.clone(),
        topic_kind: TopicKind::Data,
    }
}

/// Where a table's change events go and the schemas they carry.
#[derive(Debug, Clone, Copy)]
pub struct TableTopic<'a> {
    /// The table's topic, shared by its events.
    pub topic: &'a crate::Text,
    /// The key schema; `None` for a table without a key.
    pub key_schema: Option<&'a Arc<Schema>>,
    /// The envelope's schema (`<topic>.Envelope`).
    pub envelope: &'a Arc<Schema>,
}

/// A captured table as its change events need it: each connector's table
/// schemas implement it, so the events are built in one place.
pub trait EventTable {
    /// The table's topic and schemas.
    fn topic(&self) -> TableTopic<'_>;

    /// Where the key's columns are in a row image, in key order; empty
    /// for a table without a key.
    fn key_columns(&self) -> &[usize];
}

/// The key struct of a row image: its `key_columns`' values. `None` for a
/// table without a key or an image that is not a struct.
pub fn key_of(row: &Value, key_columns: &[usize]) -> Option<Value> {
    let Value::Struct(values) = row else {
        return None;
    };
    if key_columns.is_empty() {
        return None;
    }
    let mut key = Vec::with_capacity(key_columns.len());
    for &column in key_columns {
        key.push(values.get(column)?.clone());
    }
    Some(Value::Struct(key))
}

/// One row change of `table` as its event: the envelope of `before` and
/// `after` with its `source` and transaction blocks (`blocks`), keyed by
/// the after image, else the before image.
pub fn row_event(
    (partition, offset): (&Arc<SourcePartition>, SourceOffset),
    table: &impl EventTable,
    (op, before, after): (Op, Option<Value>, Option<Value>),
    (source, transaction): (Value, Value),
    now_us: i64,
) -> SourceRecord {
    let key = after
        .as_ref()
        .or(before.as_ref())
        .and_then(|row| key_of(row, table.key_columns()));
    let topic = table.topic();
    SourceRecord {
        partition: Arc::clone(partition),
        offset,
        topic: topic.topic.clone(),
        kafka_partition: None,
        key_schema: topic.key_schema.cloned(),
        key,
        value_schema: Some(Arc::clone(topic.envelope)),
        value: Some(envelope(
            before,
            after,
            source,
            transaction,
            op.text(),
            now_us,
        )),
        timestamp_ms: None,
        headers: Vec::new(),
        topic_kind: TopicKind::Data,
    }
}

/// What the read events of a snapshot's rows of one table have alike:
/// their `source` block and offset, built once for the table rather than
/// per row. The block is about a third of what a queued event holds, and
/// a shared one is written to Avro once (see [`Value::Shared`]).
#[derive(Debug)]
pub struct SharedReadParts {
    source: Arc<Value>,
    offset: SourceOffset,
}

impl SharedReadParts {
    /// The parts every row shares: its `source` block and its offset.
    pub fn new(source: Value, offset: SourceOffset) -> Self {
        Self {
            source: Arc::new(source),
            offset,
        }
    }

    /// The read event of one row of `table` (`after`), with these parts.
    pub fn read(
        &self,
        partition: &Arc<SourcePartition>,
        table: &impl EventTable,
        after: Value,
        now_us: i64,
    ) -> SourceRecord {
        row_event(
            (partition, self.offset.clone()),
            table,
            (Op::Read, None, Some(after)),
            (Value::Shared(Arc::clone(&self.source)), Value::Null),
            now_us,
        )
    }
}

/// What one row change becomes: its event, then its tombstone when one is
/// wanted. An iterator rather than a list, so the common case (one event)
/// allocates nothing to hand it over.
pub type ChangeRecords =
    std::iter::Chain<std::iter::Once<SourceRecord>, std::option::IntoIter<SourceRecord>>;

/// `event` followed by its [`tombstone`] when `tombstone_wanted` (a delete
/// with `tombstones.on.delete`) and the event has a key to compact on.
pub fn change_records(event: SourceRecord, tombstone_wanted: bool) -> ChangeRecords {
    let follower = (tombstone_wanted && event.key.is_some()).then(|| tombstone(&event));
    std::iter::once(event).chain(follower)
}

/// A topic name from its parts joined by `delimiter`, as Debezium's
/// default topic naming strategy makes it: every character Kafka does not
/// allow in a topic name (anything but ASCII letters, digits, `.`, `_` and
/// `-`) becomes `_`, so a table named with spaces or accents still gets a
/// topic.
pub fn topic_name(parts: &[&str], delimiter: &str) -> String {
    let joined = parts.join(delimiter);
    if joined
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        return joined;
    }
    let sanitized: String = joined
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    tracing::warn!(topic = %joined, sanitized = %sanitized, "a topic name had characters Kafka does not allow; they were replaced with '_'");
    sanitized
}

#[cfg(test)]
mod topic_name_tests {
    use super::topic_name;

    /// Issue 19, finding 10: odd table names used to make topic names the
    /// broker refuses, and the connector restarted forever.
    #[test]
    fn characters_kafka_refuses_become_underscores() {
        assert_eq!(
            topic_name(&["dbserver1", "inventory", "customers"], "."),
            "dbserver1.inventory.customers"
        );
        assert_eq!(
            topic_name(&["srv", "public", "Odd Table ü"], "."),
            "srv.public.Odd_Table__"
        );
        assert_eq!(topic_name(&["srv", "db", "a-b_c$d"], "."), "srv.db.a-b_c_d");
    }
}

#[cfg(test)]
mod source_text_tests {
    use super::*;

    #[test]
    fn every_allowed_snapshot_value_is_shared_and_others_still_read_back() {
        let allowed = snapshot_field()
            .schema
            .parameters
            .get("allowed")
            .cloned()
            .unwrap_or_default();
        for value in allowed.split(',') {
            let (Text::Shared(a), Text::Shared(b)) = (snapshot_text(value), snapshot_text(value))
            else {
                panic!("{value} is not shared");
            };
            assert!(Arc::ptr_eq(&a, &b));
            assert_eq!(&*a, value);
        }
        assert_eq!(snapshot_text("other"), "other");
    }

    #[test]
    fn every_op_code_is_shared_text() {
        for op in [Op::Read, Op::Create, Op::Update, Op::Delete, Op::Truncate]
            .map(Op::code)
            .into_iter()
            .chain(["m"])
        {
            let (Text::Shared(a), Text::Shared(b)) = (op_text(op), op_text(op)) else {
                panic!("{op} is not shared");
            };
            assert!(Arc::ptr_eq(&a, &b));
            assert_eq!(&*a, op);
        }
        for op in [Op::Read, Op::Create, Op::Update, Op::Delete, Op::Truncate] {
            let (Text::Shared(by_place), Text::Shared(by_text)) = (op.text(), op_text(op.code()))
            else {
                panic!("{op:?} is not shared");
            };
            assert!(Arc::ptr_eq(&by_place, &by_text), "{op:?}");
        }
    }
}

#[cfg(test)]
mod change_records_tests {
    use super::*;

    fn delete(key: Option<Value>) -> SourceRecord {
        let mut offset = serde_json::Map::new();
        offset.insert("lsn".into(), 42.into());
        SourceRecord {
            partition: Arc::new(crate::offset::partition("server", "srv")),
            offset: offset.into(),
            topic: "srv.public.items".into(),
            kafka_partition: Some(3),
            key_schema: Some(Arc::new(Schema::int64())),
            key,
            value_schema: Some(Arc::new(Schema::string())),
            value: Some(Value::String("the delete event".into())),
            timestamp_ms: Some(1_700_000_000_000),
            headers: vec![("h".into(), b"v".to_vec())],
            topic_kind: TopicKind::Data,
        }
    }

    #[test]
    fn a_keyed_delete_is_followed_by_its_tombstone_only_when_wanted() {
        let records: Vec<_> = change_records(delete(Some(Value::Int64(7))), true).collect();
        assert_eq!(records.len(), 2);
        let (event, tombstone) = (&records[0], &records[1]);
        assert_eq!(event.value, Some(Value::String("the delete event".into())));
        assert_eq!(tombstone.value, None);
        assert_eq!(tombstone.value_schema, None);
        // Everything else is the event's: same key (compaction drops it),
        // topic, partition, timestamp, headers and offset.
        assert_eq!(tombstone.key, Some(Value::Int64(7)));
        assert_eq!(tombstone.key_schema, event.key_schema);
        assert_eq!(tombstone.topic, event.topic);
        assert_eq!(tombstone.kafka_partition, Some(3));
        assert_eq!(tombstone.timestamp_ms, event.timestamp_ms);
        assert_eq!(tombstone.headers, event.headers);
        assert_eq!(tombstone.offset, event.offset);
        assert!(Arc::ptr_eq(&tombstone.partition, &event.partition));

        assert_eq!(
            change_records(delete(Some(Value::Int64(7))), false).count(),
            1
        );
        // Without a key there is nothing for compaction to drop.
        assert_eq!(change_records(delete(None), true).count(), 1);
    }
}
