//! Change events in Debezium's envelope, with the source block, offsets
//! and tombstones.

use std::sync::Arc;

use sluice_connector_api::debezium::{snapshot_text, SharedReadParts, SourceNames};
use sluice_connector_api::topic_naming::TopicNaming;
use sluice_connector_api::{SourceOffset, SourcePartition, SourceRecord, Text, TopicKind, Value};

use crate::offset::{offset, Position};
use crate::replication::Lsn;
use crate::table_schema::TableSchema;

pub use sluice_connector_api::debezium::Op;

/// Shared facts about the connector for every event.
#[derive(Debug, Clone)]
pub struct EventContext {
    /// `topic.prefix`, also `source.name` and the offset partition.
    pub server: String,
    /// The offset partition `{"server": <prefix>}`.
    pub partition: Arc<SourcePartition>,
    /// Emit a tombstone after each delete.
    pub tombstones: bool,
    /// Fill the transaction block.
    pub transaction_metadata: bool,
    /// Where heartbeats, messages and transaction events go.
    pub topics: TopicNaming,
    /// The `source` block's version, connector and name, shared by every
    /// event.
    pub names: SourceNames,
    /// `database.dbname`, as `source.db` (shared as `names`).
    pub db: Text,
}

impl EventContext {
    /// The context for a connector named by its topic prefix.
    pub fn new(
        topics: &TopicNaming,
        db: &str,
        tombstones: bool,
        transaction_metadata: bool,
    ) -> Self {
        let server = topics.prefix();
        Self {
            server: server.to_owned(),
            partition: Arc::new(sluice_connector_api::offset::partition("server", server)),
            tombstones,
            transaction_metadata,
            topics: topics.clone(),
            names: SourceNames::new("postgresql", server),
            db: Text::from(Arc::<str>::from(db)),
        }
    }
}

/// Debezium's heartbeat record (on `__debezium-heartbeat.<prefix>` by default).
pub fn heartbeat(ctx: &EventContext, offset: SourceOffset, now_us: i64) -> SourceRecord {
    sluice_connector_api::debezium::heartbeat(
        &ctx.partition,
        (&ctx.server, &ctx.topics.heartbeat()),
        offset,
        now_us,
    )
}

/// Debezium's `source.sequence`, `["<last commit LSN>","<LSN>"]` (or
/// `[null,"<LSN>"]`), written into a stack buffer and copied once: it is
/// built for every event, and a push per digit cost ~280 instructions an
/// event (callgrind, `scripts/bench-postgres`).
fn sequence(commit_lsn: Option<Lsn>, lsn: Lsn) -> String {
    let mut text = [0u8; 48];
    let mut at = 0;
    let mut put = |bytes: &[u8]| {
        text[at..at + bytes.len()].copy_from_slice(bytes);
        at += bytes.len();
    };
    match commit_lsn {
        Some(commit) => {
            put(b"[\"");
            put(decimal(commit.0, &mut [0; 20]));
            put(b"\",\"");
        }
        None => put(b"[null,\""),
    }
    put(decimal(lsn.0, &mut [0; 20]));
    put(b"\"]");
    sluice_connector_api::text::utf8(&text[..at])
        .map(str::to_owned)
        .unwrap_or_default()
}

/// The decimal digits of `n`, written at the end of `digits`.
fn decimal(n: u64, digits: &mut [u8; 20]) -> &[u8] {
    let (mut rest, mut start) = (n, digits.len());
    loop {
        start -= 1;
        digits[start] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            return &digits[start..];
        }
    }
}

/// The `source` block (`io.debezium.connector.postgresql.Source`). The
/// per-connector and per-table parts are shared text, so building the
/// block allocates its list and the `sequence` alone.
fn source_block(
    ctx: &EventContext,
    (schema, table): (&Text, &Text),
    snapshot: &str,
    (lsn, commit_lsn): (Lsn, Option<Lsn>),
    xid: Option<u32>,
    commit_time_us: i64,
) -> Value {
    let sequence = sequence(commit_lsn, lsn);
    Value::Struct(vec![
        Value::String(ctx.names.version.clone()),
        Value::String(ctx.names.connector.clone()),
        Value::String(ctx.names.name.clone()),
        Value::Int64(commit_time_us / 1000),
        Value::String(snapshot_text(snapshot)),
        Value::String(ctx.db.clone()),
        Value::String(sequence.into()),
        Value::Int64(commit_time_us),
        Value::Int64(commit_time_us.saturating_mul(1000)),
        Value::String(schema.clone()),
        Value::String(table.clone()),
        xid.map_or(Value::Null, |x| Value::Int64(i64::from(x))),
        Value::Int64(lsn.0 as i64),
        Value::Null,
    ])
}

/// A logical decoding message (`pg_logical_emit_message`) as Debezium
/// emits it: `op=m` on `<prefix>.message`, keyed by the message prefix.
/// Transactional messages carry their transaction's position; others
/// their own LSN as both LSN and commit LSN.
pub fn logical_message(
    ctx: &EventContext,
    prefix: &str,
    content: &[u8],
    position: &Position,
    commit_time_us: i64,
    now_us: i64,
) -> SourceRecord {
    use sluice_connector_api::{Field, Schema};
    use std::sync::OnceLock;
    static SCHEMAS: OnceLock<(Arc<Schema>, Arc<Schema>)> = OnceLock::new();
    let (key_schema, value_schema) = SCHEMAS.get_or_init(|| {
        let block = Schema::structure(
            "io.debezium.connector.postgresql.Message",
            vec![
                Field::new("prefix", Schema::string().optional()),
                Field::new("content", Schema::bytes().optional()),
            ],
        );
        (
            Arc::new(Schema::structure(
                "io.debezium.connector.postgresql.MessageKey",
                vec![Field::new("prefix", Schema::string().optional())],
            )),
            Arc::new(Schema::structure(
                "io.debezium.connector.postgresql.MessageValue",
                vec![
                    Field::new("op", Schema::string()),
                    Field::new("ts_ms", Schema::int64().optional()),
                    Field::new("source", (*crate::table_schema::source_schema()).clone()),
                    Field::new("message", block),
                ],
            )),
        )
    });
    let (lsn, commit_lsn, xid) = match position {
        Position::Stream {
            lsn,
            commit_lsn,
            xid,
            ..
        } => (*lsn, Some(*commit_lsn), (*xid != 0).then_some(*xid)),
        Position::Snapshot { lsn, .. } => (*lsn, None, None),
    };
    let source = source_block(
        ctx,
        (&Text::default(), &Text::default()),
        "false",
        (lsn, commit_lsn),
        xid,
        commit_time_us,
    );
    let value = Value::Struct(vec![
        Value::String(sluice_connector_api::debezium::op_text("m")),
        Value::Int64(now_us / 1000),
        source,
        Value::Struct(vec![
            Value::String(prefix.into()),
            Value::Bytes(content.to_vec()),
        ]),
    ]);
    SourceRecord {
        partition: Arc::clone(&ctx.partition),
        offset: offset(position, commit_time_us),
        topic: ctx.topics.message().into(),
        kafka_partition: None,
        key_schema: Some(Arc::clone(key_schema)),
        key: Some(Value::Struct(vec![Value::String(prefix.into())])),
        value_schema: Some(Arc::clone(value_schema)),
        value: Some(value),
        timestamp_ms: None,
        headers: Vec::new(),
        topic_kind: TopicKind::Data,
    }
}

/// Where `sequence` and `lsn` sit in the `source` block: the members of
/// it that differ between the changes of one table in one transaction.
const SOURCE_SEQUENCE: usize = 6;
const SOURCE_LSN: usize = 12;

/// The `source` blocks of a stream's changes. Every change of one table
/// in one transaction has the same block but for its `sequence` and
/// `lsn`, so the block is built (and converted) once and each change holds
/// it with its own two (see [`Value::Patched`]).
#[derive(Debug, Default)]
pub struct StreamSources {
    last: Option<(SourceKey, Arc<Value>)>,
}

/// What the shared part of a stream change's `source` block is made of.
#[derive(Debug)]
struct SourceKey {
    schema: Text,
    table: Text,
    commit_lsn: Lsn,
    xid: u32,
    commit_time_us: i64,
}

impl StreamSources {
    /// The `source` block of a change at `lsn` of `table`, in the
    /// transaction `xid` committed at `commit_lsn` and `commit_time_us`.
    fn block(
        &mut self,
        ctx: &EventContext,
        table: &TableSchema,
        (lsn, commit_lsn, xid): (Lsn, Lsn, u32),
        commit_time_us: i64,
    ) -> Value {
        let reused = self.last.as_ref().filter(|(last, _)| {
            (last.commit_lsn, last.xid, last.commit_time_us) == (commit_lsn, xid, commit_time_us)
                && last.schema == table.schema
                && last.table == table.table
        });
        let base = match reused {
            Some((_, base)) => Arc::clone(base),
            None => {
                let base = Arc::new(source_block(
                    ctx,
                    (&table.schema, &table.table),
                    "false",
                    (commit_lsn, Some(commit_lsn)),
                    Some(xid),
                    commit_time_us,
                ));
                // The names are cloned only for a new block: every change
                // of the block's table and transaction is compared above.
                let key = SourceKey {
                    schema: table.schema.clone(),
                    table: table.table.clone(),
                    commit_lsn,
                    xid,
                    commit_time_us,
                };
                self.last = Some((key, Arc::clone(&base)));
                base
            }
        };
        Value::patched(
            base,
            vec![
                (
                    SOURCE_SEQUENCE,
                    Value::String(sequence(Some(commit_lsn), lsn).into()),
                ),
                (SOURCE_LSN, Value::Int64(lsn.0 as i64)),
            ],
        )
    }
}

/// A streamed change event (plus its tombstone after a delete, when
/// enabled), as [`change`] builds it, with its `source` block from
/// `sources`. A snapshot row's position builds it whole.
#[allow(clippy::too_many_arguments)]
pub fn stream_change(
    ctx: &EventContext,
    sources: &mut StreamSources,
    table: &TableSchema,
    op: Op,
    (before, after): (Option<Value>, Option<Value>),
    position: &Position,
    (commit_time_us, now_us): (i64, i64),
    transaction: Value,
) -> sluice_connector_api::debezium::ChangeRecords {
    let Position::Stream {
        lsn,
        commit_lsn,
        xid,
        ..
    } = position
    else {
        return change(
            ctx,
            table,
            op,
            before,
            after,
            position,
            (commit_time_us, now_us),
            transaction,
        );
    };
    let source = sources.block(ctx, table, (*lsn, *commit_lsn, *xid), commit_time_us);
    event_with(
        ctx,
        table,
        (op, before, after),
        position,
        (commit_time_us, now_us),
        (source, transaction),
    )
}

/// A change event (plus its tombstone after a delete, when enabled);
/// `transaction` is its transaction block (null without
/// `provide.transaction.metadata`).
#[allow(clippy::too_many_arguments)]
pub fn change(
    ctx: &EventContext,
    table: &TableSchema,
    op: Op,
    before: Option<Value>,
    after: Option<Value>,
    position: &Position,
    (commit_time_us, now_us): (i64, i64),
    transaction: Value,
) -> sluice_connector_api::debezium::ChangeRecords {
    let (snapshot, lsn, commit_lsn, xid) = match position {
        Position::Snapshot { lsn, marker, .. } => (*marker, *lsn, None, None),
        Position::Stream {
            lsn,
            commit_lsn,
            xid,
            ..
        } => ("false", *lsn, Some(*commit_lsn), Some(*xid)),
    };
    let source = source_block(
        ctx,
        (&table.schema, &table.table),
        snapshot,
        (lsn, commit_lsn),
        xid,
        commit_time_us,
    );
    event_with(
        ctx,
        table,
        (op, before, after),
        position,
        (commit_time_us, now_us),
        (source, transaction),
    )
}

/// The change event at `position` with its `source` and `transaction`
/// blocks, and its tombstone after a delete when enabled.
fn event_with(
    ctx: &EventContext,
    table: &TableSchema,
    (op, before, after): (Op, Option<Value>, Option<Value>),
    position: &Position,
    (commit_time_us, now_us): (i64, i64),
    (source, transaction): (Value, Value),
) -> sluice_connector_api::debezium::ChangeRecords {
    let record = sluice_connector_api::debezium::row_event(
        (&ctx.partition, offset(position, commit_time_us)),
        table,
        (op, before, after),
        (source, transaction),
        now_us,
    );
    sluice_connector_api::debezium::change_records(record, op == Op::Delete && ctx.tombstones)
}

/// What the read events of one table's snapshot rows marked plain `true`
/// (all but the first and last of a table) share, read at the slot's
/// consistent point `lsn` by a snapshot that began at `started_us`.
pub fn snapshot_parts(
    ctx: &EventContext,
    table: &TableSchema,
    lsn: Lsn,
    started_us: i64,
) -> SharedReadParts {
    let position = Position::Snapshot {
        lsn,
        marker: "true",
        last: false,
    };
    let source = source_block(
        ctx,
        (&table.schema, &table.table),
        "true",
        (lsn, None),
        None,
        started_us,
    );
    SharedReadParts::new(source, offset(&position, started_us))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table_schema::ColumnSpec;
    use crate::types::{Mapping, PgType};

    /// `public.items (id int4 primary key, name text)` under the prefix
    /// `shop`.
    fn items() -> TableSchema {
        table("items")
    }

    /// `public.<name> (id int4 primary key, name text)` under the prefix
    /// `shop`.
    fn table(name: &str) -> TableSchema {
        let column = |name: &str, type_name: &str| ColumnSpec {
            name: name.into(),
            pg_type: PgType::base(type_name, -1),
            nullable: name != "id",
            default: None,
            included: true,
        };
        TableSchema::build(
            &TopicNaming::with_prefix("shop"),
            "public",
            name,
            &[column("id", "int4"), column("name", "text")],
            &["id".to_owned()],
            Mapping {
                decimal: sluice_connector_api::modes::DecimalMode::Precise,
                time: crate::config::TimePrecision::Adaptive,
                binary: sluice_connector_api::modes::BinaryMode::Bytes,
                interval_text: false,
                hstore_map: false,
                money_digits: 2,
            },
            &sluice_connector_api::column_mapping::ColumnMappers::default(),
        )
    }

    /// Streamed changes built around a source block shared by their
    /// table and transaction are the events built whole, each with its
    /// own `sequence` and `lsn`: across tables and transactions taking
    /// turns, for every kind of change, and a snapshot row besides.
    #[test]
    fn streamed_changes_sharing_a_source_block_are_the_events_built_whole() {
        let ctx = EventContext::new(&TopicNaming::with_prefix("shop"), "inventory", true, false);
        let (items, orders) = (items(), table("orders"));
        let row = |id| Value::Struct(vec![Value::Int32(id), Value::from("seven")]);
        let mut sources = StreamSources::default();
        let stream = |lsn, commit_lsn, xid, tx_seq| Position::Stream {
            lsn: Lsn(lsn),
            commit_lsn: Lsn(commit_lsn),
            tx_seq,
            xid,
        };
        // (table, op, lsn, commit lsn, xid, position in the transaction,
        // commit time): three transactions, two tables taking turns.
        const T: i64 = 1_764_000_000_000_000;
        let streamed = [
            (&items, Op::Create, 900, 1_000, 10, 1, T),
            (&items, Op::Update, 910, 1_000, 10, 2, T),
            (&orders, Op::Delete, 920, 1_000, 10, 3, T),
            (&items, Op::Create, 930, 1_000, 10, 4, T),
            (&items, Op::Truncate, 940, 1_000, 10, 5, T),
            (&items, Op::Create, 1_500, 2_000, 11, 1, T + 1_000_000),
            (&items, Op::Create, 2_500, 3_000, 11, 1, T + 1_000_000),
            (&items, Op::Create, 3_500, 4_000, 12, 1, T + 2_000_000),
        ];
        let mut changes: Vec<_> = streamed
            .iter()
            .map(|&(table, op, lsn, commit, xid, seq, at)| {
                (table, op, stream(lsn, commit, xid, seq), at)
            })
            .collect();
        changes.push((
            &items,
            Op::Read,
            Position::Snapshot {
                lsn: Lsn(5_000),
                marker: "last",
                last: true,
            },
            T + 3_000_000,
        ));
        for (n, (table, op, position, commit_us)) in changes.iter().enumerate() {
            let (before, after) = match op {
                Op::Create | Op::Read => (None, Some(row(n as i32))),
                Op::Update => (Some(row(0)), Some(row(n as i32))),
                Op::Delete => (Some(row(n as i32)), None),
                Op::Truncate => (None, None),
            };
            let whole: Vec<SourceRecord> = change(
                &ctx,
                table,
                *op,
                before.clone(),
                after.clone(),
                position,
                (*commit_us, 7),
                Value::Null,
            )
            .collect();
            let shared: Vec<SourceRecord> = stream_change(
                &ctx,
                &mut sources,
                table,
                *op,
                (before, after),
                position,
                (*commit_us, 7),
                Value::Null,
            )
            .collect();
            assert_eq!(whole, shared, "change {n}");
            let patched = matches!(
                &shared[0].value,
                Some(Value::Struct(e)) if matches!(e[2], Value::Patched(..))
            );
            assert_eq!(patched, *op != Op::Read, "change {n}");
        }
        let source = crate::table_schema::source_schema();
        assert_eq!(
            source.field("sequence").map(|(at, _)| at),
            Some(SOURCE_SEQUENCE)
        );
        assert_eq!(source.field("lsn").map(|(at, _)| at), Some(SOURCE_LSN));
    }

    /// A plain `true` snapshot row built from its table's shared parts is
    /// the event built whole: same envelope, source block and offset.
    #[test]
    fn a_snapshot_row_with_shared_parts_is_the_event_built_whole() {
        let ctx = EventContext::new(&TopicNaming::with_prefix("shop"), "inventory", true, false);
        let table = items();
        let row = || Value::Struct(vec![Value::Int32(7), Value::from("seven")]);
        let (lsn, started_us, now_us) = (
            Lsn(24_023_128),
            1_764_000_000_000_000,
            1_764_000_000_500_000,
        );
        let whole: Vec<SourceRecord> = change(
            &ctx,
            &table,
            Op::Read,
            None,
            Some(row()),
            &Position::Snapshot {
                lsn,
                marker: "true",
                last: false,
            },
            (started_us, now_us),
            Value::Null,
        )
        .collect();
        let parts = snapshot_parts(&ctx, &table, lsn, started_us);
        let shared = [
            parts.read(&ctx.partition, &table, row(), now_us),
            parts.read(&ctx.partition, &table, row(), now_us),
        ];
        assert_eq!(whole, shared[..1], "a read has no tombstone");
        assert_eq!(shared[0], shared[1]);
        assert!(
            matches!(&shared[0].value, Some(Value::Struct(e)) if matches!(e[2], Value::Shared(_))),
            "the source block is shared"
        );
    }

    #[test]
    fn the_sequence_is_debeziums_json_array_of_lsn_strings() {
        for (commit, lsn) in [
            (Some(0), 0),
            (Some(24_023_128), 24_023_200),
            (None, 7),
            (Some(u64::MAX), u64::MAX),
            (None, 1_000_000_000_000),
        ] {
            let expected = serde_json::to_string(&serde_json::json!([
                commit.map(|c: u64| c.to_string()),
                lsn.to_string()
            ]))
            .expect("json");
            assert_eq!(sequence(commit.map(Lsn), Lsn(lsn)), expected);
        }
    }
}
