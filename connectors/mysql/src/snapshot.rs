//! The consistent snapshot: readers that share one point in time (under a
//! brief global read lock, or MariaDB's consistent-snapshot position), the
//! binlog position of that point, and the rows of every captured table as
//! `op=r` events — per table, and per primary-key range for big tables.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use mysql_async::prelude::Queryable;
use mysql_async::Conn;
use sluice_connector_api::snapshot_markers::{Marked, SnapshotMarkers};
use sluice_connector_api::{Batch, BatchLimit, ConnectorError, SourceRecord, Value};
use tokio::sync::mpsc;

use crate::capture::Progress;
use sluice_connector_api::snapshot_select::SnapshotSelects;

use crate::catalog::{quote_ident, read_tables, TableDef, Tables};
use crate::config::{LockingMode, MySqlConfig};
use crate::events::{self, EventContext};
use crate::offset::BinlogPosition;
use crate::setup::{self, classify, ServerInfo};
use crate::table_schema::TableSchema;
use crate::text_row;
use crate::types::Mapping;

/// A piece of snapshot work: a table, or a key range of one.
#[derive(Debug, Clone)]
struct Unit {
    table: String,
    /// The table's place among the snapshotted tables (and their
    /// estimates), which the markers count units by.
    index: usize,
    /// `WHERE` condition of a key range; `None` for the whole table.
    range: Option<String>,
}

/// Where the snapshot stands once its readers hold their transactions.
pub struct Started {
    /// The binlog position (and GTIDs) the snapshot corresponds to.
    pub position: BinlogPosition,
    /// The captured tables as of that point.
    pub tables: Tables,
    readers: Vec<Conn>,
}

/// Opens the readers' consistent-snapshot transactions at one point and
/// reads the binlog position and table definitions of that point.
pub async fn start(config: &MySqlConfig, info: &ServerInfo) -> Result<Started, ConnectorError> {
    let mut control = setup::connect(config).await?;
    let begin = "START TRANSACTION WITH CONSISTENT SNAPSHOT";
    let iso = "SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ";
    let mut readers = Vec::new();
    let (file, pos, gtids, tables);
    match config.locking_mode {
        LockingMode::Minimal => {
            // With writes blocked, every reader's snapshot is the same
            // point, which SHOW MASTER STATUS names exactly.
            control
                .query_drop("FLUSH TABLES WITH READ LOCK")
                .await
                .map_err(|e| classify("taking the global read lock (FLUSH TABLES WITH READ LOCK; needs RELOAD, or set snapshot.locking.mode=none)", e))?;
            let result = async {
                for _ in 0..config.common.snapshot_threads {
                    let mut reader = setup::connect(config).await?;
                    reader
                        .query_drop(iso)
                        .await
                        .map_err(|e| classify("starting a snapshot reader", e))?;
                    reader
                        .query_drop(begin)
                        .await
                        .map_err(|e| classify("starting a snapshot reader", e))?;
                    readers.push(reader);
                }
                let (f, p) = setup::current_position(&mut control).await?;
                let g = setup::gtid_position(&mut control, info.mariadb).await?;
                let t = read_tables(&mut control, &config.filters, None, info.mariadb)
                    .await
                    .map_err(|e| classify("reading the captured tables", e))?;
                Ok::<_, ConnectorError>((f, p, g, t))
            }
            .await;
            let unlocked = control.query_drop("UNLOCK TABLES").await;
            let (f, p, g, t) = result?;
            unlocked.map_err(|e| classify("releasing the global read lock", e))?;
            (file, pos, gtids, tables) = (f, p, g, t);
        }
        LockingMode::None => {
            // One reader: MariaDB reports the binlog position of its own
            // consistent snapshot; MySQL's is read right after (exact only
            // when no DDL or writes run meanwhile, as Debezium documents).
            let mut reader = setup::connect(config).await?;
            reader
                .query_drop(iso)
                .await
                .map_err(|e| classify("starting the snapshot reader", e))?;
            reader
                .query_drop(begin)
                .await
                .map_err(|e| classify("starting the snapshot reader", e))?;
            let mut snapshot_position = None;
            if info.mariadb {
                let status: Vec<(String, String)> = reader
                    .query("SHOW STATUS LIKE 'binlog_snapshot_%'")
                    .await
                    .map_err(|e| classify("reading the snapshot's binlog position", e))?;
                let get = |name: &str| {
                    status
                        .iter()
                        .find(|(k, _)| k.eq_ignore_ascii_case(name))
                        .map(|(_, v)| v.clone())
                };
                if let (Some(f), Some(p)) =
                    (get("Binlog_snapshot_file"), get("Binlog_snapshot_position"))
                {
                    if let Ok(p) = p.parse::<u64>() {
                        snapshot_position = Some((f, p));
                    }
                }
            }
            let (f, p) = match snapshot_position {
                Some(fp) => fp,
                None => setup::current_position(&mut control).await?,
            };
            file = f;
            pos = p;
            gtids = setup::gtid_position(&mut control, info.mariadb).await?;
            tables = read_tables(&mut reader, &config.filters, None, info.mariadb)
                .await
                .map_err(|e| classify("reading the captured tables", e))?;
            readers.push(reader);
        }
    }
    let _ = control.disconnect().await;
    Ok(Started {
        position: BinlogPosition {
            file: file.into(),
            pos,
            gtids: gtids.into(),
            server_id: info.server_id,
            ts_sec: now_us() / 1_000_000,
            ..BinlogPosition::default()
        },
        tables,
        readers,
    })
}

/// Microseconds since the epoch.
pub fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

/// Splits big tables with a single integer primary key into ranges, so
/// several readers share them.
async fn plan(
    conn: &mut Conn,
    tables: &Tables,
    config: &MySqlConfig,
    readers: usize,
) -> Result<(Vec<Unit>, Vec<(String, u64)>), ConnectorError> {
    let mut units = Vec::new();
    let mut estimates = Vec::new();
    let snapshotted = tables
        .iter()
        .filter(|(_, def)| config.filters.snapshotted(&def.database, &def.name));
    for (id, def) in snapshotted {
        let estimate: Option<Option<u64>> = conn
            .exec_first(
                "SELECT TABLE_ROWS FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?",
                (def.database.clone(), def.name.clone()),
            )
            .await
            .map_err(|e| classify("estimating table sizes", e))?;
        let estimate = estimate.flatten().unwrap_or(0);
        estimates.push((id.clone(), estimate));
        let integer_key = match def.primary_key.as_slice() {
            [key] => def
                .columns
                .iter()
                .find(|c| &c.name == key)
                .is_some_and(|c| c.data_type.ends_with("int")),
            _ => false,
        };
        // A statement from snapshot.select.statement.overrides is read whole.
        let overridden = config.snapshot_selects.overrides(&def.database, &def.name);
        if readers > 1 && integer_key && estimate > 20_000 && !overridden {
            let key = quote_ident(&def.primary_key[0]);
            let bounds: Option<(Option<i64>, Option<i64>)> = conn
                .query_first(format!(
                    "SELECT MIN({key}), MAX({key}) FROM {}.{}",
                    quote_ident(&def.database),
                    quote_ident(&def.name)
                ))
                .await
                .map_err(|e| classify("reading key bounds", e))?;
            if let Some((Some(low), Some(high))) = bounds {
                let pieces = (readers * 4) as i64;
                let step = ((high - low) / pieces).max(1);
                let mut from = low;
                while from <= high {
                    let to = from.saturating_add(step);
                    let range = if to > high {
                        format!("{key} >= {from}")
                    } else {
                        format!("{key} >= {from} AND {key} < {to}")
                    };
                    units.push(Unit {
                        table: id.clone(),
                        index: estimates.len() - 1,
                        range: Some(range),
                    });
                    from = to;
                }
                continue;
            }
        }
        units.push(Unit {
            table: id.clone(),
            index: estimates.len() - 1,
            range: None,
        });
    }
    Ok((units, estimates))
}

fn select_sql(def: &TableDef, range: Option<&str>, selects: &SnapshotSelects) -> String {
    let columns: Vec<String> = def.columns.iter().map(|c| quote_ident(&c.name)).collect();
    if let Some(select) = selects.select(&def.database, &def.name, &columns.join(", ")) {
        return select;
    }
    let mut sql = format!(
        "SELECT {} FROM {}.{}",
        columns.join(", "),
        quote_ident(&def.database),
        quote_ident(&def.name)
    );
    if let Some(range) = range {
        sql.push_str(" WHERE ");
        sql.push_str(range);
    }
    sql
}

/// What the snapshot hands the stream when done.
pub struct Finished {
    /// Rows emitted in all.
    pub rows: u64,
}

/// Rows of one unit a snapshot reader read, in read order.
struct Piece {
    /// The unit's table ([`Unit::index`]).
    table: usize,
    records: Vec<SourceRecord>,
    /// Whether the unit was read to its end with these.
    unit_done: bool,
}

/// What snapshot readers send the coordinator: rows or why they stopped.
type Out = mpsc::Sender<Result<Piece, ConnectorError>>;

/// Reads every unit with the started readers, emitting `op=r` events
/// through `out`, marked as Debezium marks them (`first`, `last`, each
/// table's `first_in_data_collection` and `last_in_data_collection`; see
/// [`SnapshotMarkers`]). The last carries `snapshot_completed`, so a
/// restart before it is durable takes the snapshot again.
pub async fn read(
    config: &MySqlConfig,
    ctx: &EventContext,
    started: Started,
    schemas: &std::collections::HashMap<String, Arc<TableSchema>>,
    lead: Vec<SourceRecord>,
    out: &sluice_connector_api::Emitter,
    progress: &Arc<Mutex<Progress>>,
) -> Result<Finished, ConnectorError> {
    let Started {
        position,
        tables,
        mut readers,
    } = started;
    let count = readers.len();
    let Some(first) = readers.first_mut() else {
        return Err(ConnectorError::fatal("no snapshot reader"));
    };
    let (units, estimates) = plan(first, &tables, config, count).await?;
    let mut units_per_table = vec![0; estimates.len()];
    for unit in &units {
        units_per_table[unit.index] += 1;
    }
    {
        let mut p = progress.lock().unwrap_or_else(|e| e.into_inner());
        p.phase = "snapshot";
        p.tables = estimates
            .iter()
            .map(|(id, e)| (id.clone(), 0, *e))
            .collect();
    }
    let queue = Arc::new(Mutex::new(units.into_iter().collect::<VecDeque<_>>()));
    // One batch in hand-off per reader, as the PostgreSQL snapshot has:
    // the task's queue to the runtime (max.queue.size) is the buffer.
    // Four here kept another 8,192 rows decoded ahead of that queue,
    // beyond what max.queue.size allows (~6 MiB at the peak of
    // scripts/bench-mysql's snapshot).
    let (rows_tx, mut rows_rx) =
        mpsc::channel::<Result<Piece, ConnectorError>>(readers.len().max(1));
    let mut workers = Vec::new();
    for reader in readers {
        let queue = Arc::clone(&queue);
        let tx = rows_tx.clone();
        let schemas = schemas.clone();
        let ctx = ctx.clone();
        let position = position.clone();
        let progress = Arc::clone(progress);
        // A round trip's rows, no more than a batch (and fewer when they
        // are wide).
        let fetch = BatchLimit {
            records: config
                .common
                .snapshot_fetch_size
                .min(config.common.max_batch_size)
                .max(1),
            ..config.common.batch_limit()
        };
        let selects = Arc::clone(&config.snapshot_selects);
        workers.push(tokio::spawn(async move {
            let result = read_units(
                reader, &queue, &schemas, &ctx, &position, &selects, fetch, &tx, &progress,
            )
            .await;
            if let Err(e) = result {
                let _ = tx.send(Err(e)).await;
            }
        }));
    }
    drop(rows_tx);
    let mut markers = SnapshotMarkers::new(units_per_table);
    let mut total = 0u64;
    let mut pending = lead;
    let marked = |done: Marked<SourceRecord>| {
        let mut record = done.row;
        if done.marker != "true" {
            set_marker(&mut record, done.marker);
        }
        record
    };
    while let Some(piece) = rows_rx.recv().await {
        let Piece {
            table,
            mut records,
            unit_done,
        } = piece?;
        total += records.len() as u64;
        // The piece goes out as it came, behind the row held before it.
        pending.extend(markers.push_all(table, &mut records, set_marker));
        if !pending.is_empty() {
            out.emit_from(&mut pending).await?;
        }
        out.emit(records).await?;
        if unit_done {
            pending.extend(markers.unit_done(table).map(marked));
        }
    }
    for w in workers {
        let _ = w.await;
    }
    let completed = serde_json::json!(true);
    let rest = markers.finish();
    let had_rows = !rest.is_empty();
    pending.extend(rest.into_iter().map(marked));
    if let Some(last) = pending.last_mut().filter(|_| had_rows) {
        last.offset.insert("snapshot_completed".into(), completed);
    } else if let Some(last) = pending
        .iter_mut()
        .rev()
        .find(|r| Arc::ptr_eq(&r.partition, &ctx.partition))
    {
        // No rows: the last schema-change event completes the snapshot.
        last.offset.insert("snapshot_completed".into(), completed);
    }
    if !pending.is_empty() {
        out.emit(pending).await?;
    }
    Ok(Finished { rows: total })
}

/// Sets `source.snapshot` of a change event, in a `source` block of its
/// own (the other rows of its table share theirs).
fn set_marker(record: &mut SourceRecord, marker: &str) {
    if let Some(Value::Struct(envelope)) = record.value.as_mut() {
        if let Some(source) = envelope.get_mut(2) {
            source.unshare();
            if let Value::Struct(source) = source {
                if let Some(slot) = source.get_mut(4) {
                    *slot = Value::String(marker.into());
                }
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn read_units(
    mut conn: Conn,
    queue: &Mutex<VecDeque<Unit>>,
    schemas: &std::collections::HashMap<String, Arc<TableSchema>>,
    ctx: &EventContext,
    position: &BinlogPosition,
    selects: &SnapshotSelects,
    fetch: BatchLimit,
    tx: &Out,
    progress: &Arc<Mutex<Progress>>,
) -> Result<(), ConnectorError> {
    loop {
        let unit = queue.lock().unwrap_or_else(|e| e.into_inner()).pop_front();
        let Some(unit) = unit else { break };
        let Some(schema) = schemas.get(&unit.table) else {
            continue;
        };
        let sql = select_sql(&schema.def, unit.range.as_deref(), selects);
        let mut result = conn
            .query_iter(sql)
            .await
            .map_err(|e| classify(&format!("reading {}", unit.table), e))?;
        if result.columns().is_none_or(|columns| columns.is_empty()) {
            return Err(ConnectorError::retriable(format!(
                "reading {}: no result set",
                unit.table
            )));
        }
        let mut batch = Batch::with_capacity(fetch.records, fetch);
        let mut done = 0u64;
        let now = now_us();
        let columns = schema.def.columns.len();
        let shared = events::snapshot_parts(ctx, schema, position);
        loop {
            let read = result
                .next_raw_row(|packet| schema.row_from_text(&text_row::split(packet, columns)?))
                .await
                .map_err(|e| classify(&format!("reading {}", unit.table), e))?;
            let Some(after) = read else { break };
            let after =
                after.map_err(|e| ConnectorError::fatal(format!("reading {}: {e}", unit.table)))?;
            let row_bytes = after.footprint();
            batch.extend_row(
                [shared.read(&ctx.partition, schema.as_ref(), after, now)],
                row_bytes,
            );
            if batch.is_full() {
                done += send_piece(tx, progress, &unit, &mut batch, false).await?;
            }
        }
        drop(result);
        // Sent even when empty: the unit's end decides its table's markers.
        done += send_piece(tx, progress, &unit, &mut batch, true).await?;
        tracing::debug!(table = %unit.table, rows = done, "snapshot unit read");
    }
    let _ = conn.query_drop("COMMIT").await;
    let _ = conn.disconnect().await;
    Ok(())
}

/// Sends what `batch` holds as a piece of `unit` and counts it in the
/// progress; gives back how many rows it held.
async fn send_piece(
    tx: &Out,
    progress: &Arc<Mutex<Progress>>,
    unit: &Unit,
    batch: &mut Batch,
    unit_done: bool,
) -> Result<u64, ConnectorError> {
    let rows = batch.len() as u64;
    let piece = Piece {
        table: unit.index,
        records: batch.take(),
        unit_done,
    };
    tx.send(Ok(piece))
        .await
        .map_err(|_| ConnectorError::retriable("the task stopped"))?;
    bump(progress, &unit.table, rows);
    Ok(rows)
}

fn bump(progress: &Arc<Mutex<Progress>>, table: &str, rows: u64) {
    let mut p = progress.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(entry) = p.tables.iter_mut().find(|(t, _, _)| t == table) {
        entry.1 += rows;
    }
}

/// The schemas of every table in `tables`.
pub fn build_schemas(
    config: &MySqlConfig,
    tables: &Tables,
) -> std::collections::HashMap<String, Arc<TableSchema>> {
    let mapping = Mapping::of(config);
    tables
        .iter()
        .map(|(id, def)| {
            (
                id.clone(),
                Arc::new(TableSchema::build(
                    &config.topics,
                    def,
                    &config.filters,
                    &config.booleans,
                    config.flavor,
                    mapping,
                    &config.column_mappers,
                )),
            )
        })
        .collect()
}
