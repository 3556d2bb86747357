//! Change events, schema-change events and schema-history records in
//! Debezium's MySQL format, with the offsets that let a restart resume.

use std::sync::{Arc, OnceLock};

use serde_json::json;
use sluice_connector_api::debezium::{snapshot_text, SharedReadParts, SourceNames};
use sluice_connector_api::topic_naming::TopicNaming;
use sluice_connector_api::{
    debezium, Field, Schema, SchemaKind, SourceOffset, SourcePartition, SourceRecord, Text,
    TopicKind, Value,
};

use crate::catalog::{ColumnDef, TableDef, Tables};
use crate::offset::{offset, BinlogPosition, SnapshotMark};
use crate::table_schema::{source_schema, TableSchema};
use crate::types::Kind;

pub use sluice_connector_api::debezium::Op;

/// Shared facts about the connector for every event.
#[derive(Debug, Clone)]
pub struct EventContext {
    /// `topic.prefix`, also `source.name` and the offset partition.
    pub server: String,
    /// The offset partition `{"server": <prefix>}`.
    pub partition: Arc<SourcePartition>,
    /// The partition under which the schema history is stored.
    pub history_partition: Arc<SourcePartition>,
    /// Emit a tombstone after each delete.
    pub tombstones: bool,
    /// Fill the transaction block.
    pub transaction_metadata: bool,
    /// MySQL or MariaDB names.
    pub flavor: crate::flavor::Flavor,
    /// Where heartbeats and transaction events go.
    pub topics: TopicNaming,
    /// The `source` block's version, connector and name, shared by every
    /// event.
    pub names: SourceNames,
}

impl EventContext {
    /// The context for a connector named by its topic prefix.
    pub fn new(
        topics: &TopicNaming,
        tombstones: bool,
        transaction_metadata: bool,
        flavor: crate::flavor::Flavor,
    ) -> Self {
        let server = topics.prefix();
        let mut history = sluice_connector_api::offset::partition("server", server);
        history.insert("schema_history".into(), json!(true));
        Self {
            server: server.to_owned(),
            partition: Arc::new(sluice_connector_api::offset::partition("server", server)),
            history_partition: Arc::new(history),
            tombstones,
            transaction_metadata,
            flavor,
            topics: topics.clone(),
            names: SourceNames::new(flavor.connector(), server),
        }
    }

    /// A heartbeat carrying `offset`.
    pub fn heartbeat(&self, offset: SourceOffset, now_us: i64) -> SourceRecord {
        sluice_connector_api::debezium::heartbeat(
            &self.partition,
            (&self.server, &self.topics.heartbeat()),
            offset,
            now_us,
        )
    }
}

/// The `source` block.
#[allow(clippy::too_many_arguments)]
/// The per-connector, per-table and per-file parts are shared text, so
/// building the block allocates its list and the query alone.
fn source_block(
    ctx: &EventContext,
    database: &Text,
    table: Option<&Text>,
    snapshot: &str,
    position: &BinlogPosition,
    row: u64,
    ts_ms: i64,
    query: Option<&str>,
) -> Value {
    let names = &ctx.names;
    // In the order of `source_schema`; `SOURCE_ROW` is `row`'s place.
    Value::Struct(vec![
        Value::String(names.version.clone()),
        Value::String(names.connector.clone()),
        Value::String(names.name.clone()),
        Value::Int64(ts_ms),
        Value::String(snapshot_text(snapshot)),
        Value::String(database.clone()),
        Value::Null,
        Value::Int64(ts_ms.saturating_mul(1000)),
        Value::Int64(ts_ms.saturating_mul(1_000_000)),
        table.map_or(Value::Null, |t| Value::String(t.clone())),
        Value::Int64(i64::from(position.server_id)),
        position
            .gtid
            .as_ref()
            .map_or(Value::Null, |g| Value::String(Text::from(g))),
        Value::String(Text::from(&position.file)),
        Value::Int64(position.pos as i64),
        Value::Int32(row as i32),
        Value::Null,
        query.map_or(Value::Null, |q| Value::String(q.into())),
    ])
}

/// Where `row` sits in the `source` block: the one member of it that
/// differs between the rows of a rows event.
const SOURCE_ROW: usize = 14;

/// The `source` block every row of one rows event of `table` shares,
/// read at `position` (with `query` under `include.query`): each row's
/// event ([`row_change`]) holds it with its own `row`, so the block is
/// built and converted once per rows event rather than per row.
pub fn rows_event_source(
    ctx: &EventContext,
    table: &TableSchema,
    position: &BinlogPosition,
    query: Option<&str>,
) -> Arc<Value> {
    Arc::new(source_block(
        ctx,
        &table.names.0,
        Some(&table.names.1),
        "false",
        position,
        0,
        position.ts_sec.saturating_mul(1000),
        query,
    ))
}

/// The change event of row `row` of a rows event (plus its tombstone after
/// a delete, when enabled), whose `source` block is `source` (from
/// [`rows_event_source`]) with this `row`; `transaction` its transaction
/// block (null without `provide.transaction.metadata`).
#[allow(clippy::too_many_arguments)]
pub fn row_change(
    ctx: &EventContext,
    table: &TableSchema,
    op: Op,
    (before, after): (Option<Value>, Option<Value>),
    position: &BinlogPosition,
    (source, row): (&Arc<Value>, u64),
    transaction: Value,
    now_us: i64,
) -> debezium::ChangeRecords {
    let source = Value::patched(
        Arc::clone(source),
        vec![(SOURCE_ROW, Value::Int32(row as i32))],
    );
    event_with(
        ctx,
        table,
        (op, before, after),
        offset(position, SnapshotMark::Streaming),
        (source, transaction),
        now_us,
    )
}

/// A change event (plus its tombstone after a delete, when enabled).
/// `snapshot` is `source.snapshot` ("false" when streaming); `row` is the
/// row's index within its rows event; `transaction` its transaction block
/// (null without `provide.transaction.metadata`); `query` the statement
/// behind the change (`source.query`, with `include.query`).
#[allow(clippy::too_many_arguments)]
pub fn change(
    ctx: &EventContext,
    table: &TableSchema,
    op: Op,
    before: Option<Value>,
    after: Option<Value>,
    position: &BinlogPosition,
    (snapshot, mark): (&str, SnapshotMark),
    (row, transaction, query): (u64, Value, Option<&str>),
    now_us: i64,
) -> debezium::ChangeRecords {
    let source = source_block(
        ctx,
        &table.names.0,
        Some(&table.names.1),
        snapshot,
        position,
        row,
        position.ts_sec.saturating_mul(1000),
        query,
    );
    event_with(
        ctx,
        table,
        (op, before, after),
        offset(position, mark),
        (source, transaction),
        now_us,
    )
}

/// The change event with its `source` and `transaction` blocks, resuming
/// after `offset`, and its tombstone after a delete when enabled.
fn event_with(
    ctx: &EventContext,
    table: &TableSchema,
    (op, before, after): (Op, Option<Value>, Option<Value>),
    offset: SourceOffset,
    (source, transaction): (Value, Value),
    now_us: i64,
) -> debezium::ChangeRecords {
    let record = debezium::row_event(
        (&ctx.partition, offset),
        table,
        (op, before, after),
        (source, transaction),
        now_us,
    );
    debezium::change_records(record, op == Op::Delete && ctx.tombstones)
}

/// What the read events of one table's snapshot rows share, read at
/// `position`.
pub fn snapshot_parts(
    ctx: &EventContext,
    table: &TableSchema,
    position: &BinlogPosition,
) -> SharedReadParts {
    let source = source_block(
        ctx,
        &table.names.0,
        Some(&table.names.1),
        "true",
        position,
        0,
        position.ts_sec.saturating_mul(1000),
        None,
    );
    SharedReadParts::new(
        source,
        offset(position, SnapshotMark::Snapshot { last: false }),
    )
}

fn schema_change_schemas(flavor: crate::flavor::Flavor) -> &'static (Arc<Schema>, Arc<Schema>) {
    static SCHEMAS: [OnceLock<(Arc<Schema>, Arc<Schema>)>; 2] = [OnceLock::new(), OnceLock::new()];
    SCHEMAS[flavor.index()].get_or_init(|| {
        let opt_string = || Schema::string().optional();
        let column = Schema::structure(
            "io.debezium.connector.schema.Column",
            vec![
                Field::new("name", Schema::string()),
                Field::new("jdbcType", Schema::int32()),
                Field::new("nativeType", Schema::int32().optional()),
                Field::new("typeName", Schema::string()),
                Field::new("typeExpression", opt_string()),
                Field::new("charsetName", opt_string()),
                Field::new("length", Schema::int32().optional()),
                Field::new("scale", Schema::int32().optional()),
                Field::new("position", Schema::int32()),
                Field::new("optional", Schema::boolean().optional()),
                Field::new("autoIncremented", Schema::boolean().optional()),
                Field::new("generated", Schema::boolean().optional()),
                Field::new("comment", opt_string()),
                Field::new("defaultValueExpression", opt_string()),
                Field::new("enumValues", Schema::array(Schema::string()).optional()),
            ],
        );
        let table = Schema::structure(
            "io.debezium.connector.schema.Table",
            vec![
                Field::new("defaultCharsetName", opt_string()),
                Field::new(
                    "primaryKeyColumnNames",
                    Schema::array(Schema::string()).optional(),
                ),
                Field::new("columns", Schema::array(column)),
                Field::new("comment", opt_string()),
            ],
        )
        .optional();
        let change = Schema::structure(
            "io.debezium.connector.schema.Change",
            vec![
                Field::new("type", Schema::string()),
                Field::new("id", Schema::string()),
                Field::new("table", table),
            ],
        );
        (
            Arc::new(Schema::structure(
                format!("{}.SchemaChangeKey", flavor.namespace()),
                vec![Field::new("databaseName", Schema::string())],
            )),
            Arc::new(Schema::structure(
                format!("{}.SchemaChangeValue", flavor.namespace()),
                vec![
                    Field::new("source", (*source_schema(flavor)).clone()),
                    Field::new("ts_ms", Schema::int64()),
                    Field::new("databaseName", opt_string()),
                    Field::new("schemaName", opt_string()),
                    Field::new("ddl", opt_string()),
                    Field::new("tableChanges", Schema::array(change)),
                ],
            )),
        )
    })
}

/// java.sql.Types of a column, as Debezium's schema-change events carry.
fn jdbc_type(kind: &Kind) -> i32 {
    match kind {
        Kind::Bool => 16,
        Kind::Int { bits: 8, .. } => -6,
        Kind::Int { bits: 16, .. } => 5,
        Kind::Int { bits: 24 | 32, .. } => 4,
        Kind::Int { .. } => -5,
        Kind::Decimal { .. } => 3,
        Kind::Float => 7,
        Kind::Double => 8,
        Kind::Text { .. } | Kind::Enum(_) | Kind::Set(_) | Kind::Address(_) => 12,
        Kind::Binary { .. } => -3,
        Kind::Date => 91,
        Kind::Time => 92,
        Kind::DateTime { .. } => 93,
        Kind::Timestamp { .. } => 2014,
        Kind::Year => 4,
        Kind::Json | Kind::Geometry | Kind::Point => 1111,
        Kind::Bits(_) => -7,
    }
}

fn column_value(column: &ColumnDef, position: usize) -> Value {
    let kind = Kind::of(column);
    let args: Vec<i32> = column
        .column_type
        .split_once('(')
        .and_then(|(_, r)| r.split_once(')'))
        .map(|(a, _)| a.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .unwrap_or_default();
    let enum_values = match &kind {
        Kind::Enum(v) | Kind::Set(v) => {
            Value::Array(v.iter().map(|s| Value::String(s.clone().into())).collect())
        }
        _ => Value::Null,
    };
    let opt = |v: Option<i32>| v.map_or(Value::Null, Value::Int32);
    Value::Struct(vec![
        Value::String(column.name.clone().into()),
        Value::Int32(jdbc_type(&kind)),
        Value::Null,
        Value::String(column.data_type.to_ascii_uppercase().into()),
        Value::String(column.column_type.to_ascii_uppercase().into()),
        column
            .charset
            .clone()
            .map_or(Value::Null, |s| Value::String(s.into())),
        opt(args.first().copied()),
        opt(args.get(1).copied()),
        Value::Int32(position as i32 + 1),
        Value::Boolean(column.nullable),
        Value::Boolean(false),
        Value::Boolean(false),
        Value::Null,
        column
            .default
            .clone()
            .map_or(Value::Null, |s| Value::String(s.into())),
        enum_values,
    ])
}

fn table_change(kind: &str, id: &str, table: Option<&TableDef>) -> Value {
    let table_value = table.map_or(Value::Null, |t| {
        Value::Struct(vec![
            t.columns
                .iter()
                .find_map(|c| c.charset.clone())
                .map_or(Value::Null, |s| Value::String(s.into())),
            Value::Array(
                t.primary_key
                    .iter()
                    .map(|k| Value::String(k.clone().into()))
                    .collect(),
            ),
            Value::Array(
                t.columns
                    .iter()
                    .enumerate()
                    .map(|(i, c)| column_value(c, i))
                    .collect(),
            ),
            Value::Null,
        ])
    });
    Value::Struct(vec![
        Value::String(kind.into()),
        Value::String(format!("\"{}\"", id.replace('.', "\".\"")).into()),
        table_value,
    ])
}

/// One table's change within a DDL: `CREATE`, `ALTER` or `DROP`, with the
/// definition after it (none for DROP).
pub struct TableChange<'a> {
    /// `CREATE`, `ALTER` or `DROP`.
    pub kind: &'static str,
    /// `database.table`.
    pub id: String,
    /// The definition after the change.
    pub table: Option<&'a TableDef>,
}

/// A schema-change event on the `<prefix>` topic, keyed by database.
pub fn schema_change(
    ctx: &EventContext,
    database: &str,
    ddl: &str,
    changes: &[TableChange<'_>],
    position: &BinlogPosition,
    mark: SnapshotMark,
) -> SourceRecord {
    let (key_schema, value_schema) = schema_change_schemas(ctx.flavor);
    let ts_ms = position.ts_sec.saturating_mul(1000);
    let snapshot = if matches!(mark, SnapshotMark::Snapshot { .. }) {
        "true"
    } else {
        "false"
    };
    let value = Value::Struct(vec![
        source_block(
            ctx,
            &Text::from(database),
            None,
            snapshot,
            position,
            0,
            ts_ms,
            Some(ddl),
        ),
        Value::Int64(ts_ms),
        Value::String(database.into()),
        Value::Null,
        Value::String(ddl.into()),
        Value::Array(
            changes
                .iter()
                .map(|c| table_change(c.kind, &c.id, c.table))
                .collect(),
        ),
    ]);
    SourceRecord {
        partition: Arc::clone(&ctx.partition),
        offset: offset(position, mark),
        topic: ctx.server.as_str().into(),
        kafka_partition: Some(0),
        key_schema: Some(Arc::clone(key_schema)),
        key: Some(Value::Struct(vec![Value::String(database.into())])),
        value_schema: Some(Arc::clone(value_schema)),
        value: Some(value),
        timestamp_ms: None,
        headers: Vec::new(),
        topic_kind: TopicKind::Data,
    }
}

/// A schema-history record: the captured tables' definitions as of
/// `position`, stored as the history partition's offset (so a restart
/// decodes old row events with the schema they were written under) and
/// written to the history topic as Debezium's history document.
pub fn history(
    ctx: &EventContext,
    topic: &str,
    tables: &Tables,
    ddl: &str,
    database: &str,
    position: &BinlogPosition,
) -> SourceRecord {
    static VALUE: OnceLock<Arc<Schema>> = OnceLock::new();
    let schema = VALUE.get_or_init(|| Arc::new(Schema::string()));
    let mut offset = offset(position, SnapshotMark::Streaming);
    offset.insert(
        "tables".into(),
        serde_json::to_value(tables).unwrap_or_else(|_| json!({})),
    );
    let document = json!({
        "source": {"server": ctx.server},
        "position": {"file": &*position.file, "pos": position.pos, "gtids": &*position.gtids, "server_id": position.server_id},
        "ts_ms": position.ts_sec.saturating_mul(1000),
        "databaseName": database,
        "ddl": ddl,
        // Debezium's table-change documents, as on the schema-change topic:
        // what its history reader parses (a column without `jdbcType` or
        // `position` stops it).
        "tableChanges": tables
            .values()
            .map(|t| document(change_schema(ctx.flavor), &table_change("CREATE", &t.id(), Some(t))))
            .collect::<Vec<_>>(),
    });
    SourceRecord {
        partition: Arc::clone(&ctx.history_partition),
        offset,
        topic: topic.into(),
        kafka_partition: Some(0),
        key_schema: None,
        key: None,
        value_schema: Some(Arc::clone(schema)),
        value: Some(Value::String(document.to_string().into())),
        timestamp_ms: None,
        headers: Vec::new(),
        topic_kind: TopicKind::SchemaHistory,
    }
}

/// The schema of one entry of a schema-change event's `tableChanges`.
fn change_schema(flavor: crate::flavor::Flavor) -> &'static Schema {
    let (_, value) = schema_change_schemas(flavor);
    match &value.kind {
        SchemaKind::Struct(fields) => fields
            .iter()
            .find(|f| f.name == "tableChanges")
            .and_then(|f| match &f.schema.kind {
                SchemaKind::Array(items) => Some(&**items),
                _ => None,
            })
            .unwrap_or(value),
        _ => value,
    }
}

/// `value` as the JSON document Debezium's history writes for it: structs
/// as objects by field name, arrays as arrays, scalars as themselves.
fn document(schema: &Schema, value: &Value) -> serde_json::Value {
    match (&schema.kind, value) {
        (SchemaKind::Struct(fields), Value::Struct(values)) => fields
            .iter()
            .zip(values)
            .map(|(f, v)| (f.name.clone(), document(&f.schema, v)))
            .collect::<serde_json::Map<_, _>>()
            .into(),
        (SchemaKind::Array(items), Value::Array(values)) => {
            values.iter().map(|v| document(items, v)).collect()
        }
        (_, Value::String(text)) => json!(&**text),
        (_, Value::Int32(n)) => json!(n),
        (_, Value::Int64(n)) => json!(n),
        (_, Value::Boolean(b)) => json!(b),
        _ => serde_json::Value::Null,
    }
}

/// The tables a stored history offset holds.
pub fn tables_from_history(offset: &SourceOffset) -> Option<Tables> {
    serde_json::from_value(offset.get("tables")?.clone()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table_schema::tests_support::items;

    /// A snapshot row built from its table's shared parts is the event
    /// built whole: same envelope, same source block, same offset.
    #[test]
    fn a_snapshot_row_with_shared_parts_is_the_event_built_whole() {
        let ctx = EventContext::new(
            &TopicNaming::with_prefix("shop"),
            true,
            false,
            crate::flavor::Flavor::MariaDb,
        );
        let table = items();
        let position = BinlogPosition {
            file: Arc::from("mariadb-bin.000003"),
            pos: 1_234,
            event: 0,
            row: 0,
            gtids: Arc::from("0-1-42"),
            gtid: None,
            server_id: 1,
            ts_sec: 1_764_000_000,
        };
        let row = || Value::Struct(vec![Value::Int32(7), Value::from("seven")]);
        let whole: Vec<SourceRecord> = change(
            &ctx,
            &table,
            Op::Read,
            None,
            Some(row()),
            &position,
            ("true", SnapshotMark::Snapshot { last: false }),
            (0, Value::Null, None),
            5_000,
        )
        .collect();
        let parts = snapshot_parts(&ctx, &table, &position);
        let shared = [
            parts.read(&ctx.partition, &table, row(), 5_000),
            parts.read(&ctx.partition, &table, row(), 5_000),
        ];
        assert_eq!(whole, shared[..1], "a read has no tombstone");
        assert_eq!(shared[0], shared[1]);
        assert!(
            matches!(&shared[0].value, Some(Value::Struct(e)) if matches!(e[2], Value::Shared(_))),
            "the source block is shared"
        );
    }

    /// The rows of a rows event built around one shared source block are
    /// the events built whole, each with its own `row`: inserts, and a
    /// delete with its tombstone and the statement (`include.query`).
    #[test]
    fn rows_sharing_their_rows_event_s_source_block_are_the_events_built_whole() {
        let ctx = EventContext::new(
            &TopicNaming::with_prefix("shop"),
            true,
            false,
            crate::flavor::Flavor::MySql,
        );
        let table = items();
        let position = BinlogPosition {
            file: Arc::from("mysql-bin.000007"),
            pos: 4_096,
            event: 2,
            row: 0,
            gtids: Arc::from("3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5"),
            gtid: Some(Arc::from("3e11fa47-71ca-11e1-9e33-c80aa9429562:6")),
            server_id: 223_344,
            ts_sec: 1_764_000_000,
        };
        let row = |id| Value::Struct(vec![Value::Int32(id), Value::from("seven")]);
        for (op, query) in [(Op::Create, None), (Op::Delete, Some("DELETE FROM items"))] {
            let source = rows_event_source(&ctx, &table, &position, query);
            for r in [0u64, 1, 300] {
                let (before, after) = match op {
                    Op::Delete => (Some(row(r as i32)), None),
                    _ => (None, Some(row(r as i32))),
                };
                let mut at = position.clone();
                at.row = r + 1;
                let whole: Vec<SourceRecord> = change(
                    &ctx,
                    &table,
                    op,
                    before.clone(),
                    after.clone(),
                    &at,
                    ("false", SnapshotMark::Streaming),
                    (r, Value::Null, query),
                    5_000,
                )
                .collect();
                let shared: Vec<SourceRecord> = row_change(
                    &ctx,
                    &table,
                    op,
                    (before, after),
                    &at,
                    (&source, r),
                    Value::Null,
                    5_000,
                )
                .collect();
                assert_eq!(whole.len(), if op == Op::Delete { 2 } else { 1 });
                assert_eq!(whole, shared, "{op:?} row {r}");
                assert!(
                    matches!(&shared[0].value, Some(Value::Struct(e)) if matches!(e[2], Value::Patched(..))),
                    "the source block is shared"
                );
            }
        }
        assert_eq!(
            source_schema(ctx.flavor).field("row").map(|(at, _)| at),
            Some(SOURCE_ROW)
        );
    }
}
