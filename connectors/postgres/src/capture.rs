//! The capture pipeline, run in the background of a task: the consistent
//! snapshot (from the slot's exported snapshot), then pgoutput streaming
//! from the slot's consistent point or the stored offset. Records go to
//! the task through a bounded channel, so a slow broker slows reading.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use sluice_connector_api::transaction::OpenTransaction;
use sluice_connector_api::{ConnectorError, Emitter, SourceOffset, SourceRecord};
use tokio::sync::{mpsc, watch};
use tokio_postgres::Client;

use crate::catalog::{self, ColumnDef, Table, TypeCache};
use crate::config::{PostgresConfig, SnapshotMode};
use crate::events::{self, EventContext, Op, Position};
use crate::replication::pgoutput::{self, Datum, Message, Relation};
use crate::replication::{
    connection::PG_EPOCH_OFFSET_MICROS, Lsn, ReplicationConnection, StreamMessage, WireError,
};
use crate::setup::{self, query_error, SESSION_OPTIONS};
use crate::table_schema::{ColumnSpec, TableSchema};
use crate::types::Mapping;

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

/// The offset a heartbeat stores: just after the last fully emitted
/// transaction, or, with none since the start, at the LSN already
/// confirmed to the server — without a position in a transaction there,
/// because a transaction committing exactly at that LSN (begun before the
/// idle point) has not been emitted yet.
fn heartbeat_offset(
    last_complete: Option<(Lsn, u64)>,
    confirmed: Lsn,
    now_us: i64,
) -> SourceOffset {
    match last_complete {
        Some((commit_lsn, tx_seq)) => events::offset(
            &Position::Stream {
                lsn: commit_lsn,
                commit_lsn,
                tx_seq,
                xid: 0,
            },
            now_us,
        ),
        None => events::idle_offset(confirmed, now_us),
    }
}

/// How far the stream has emitted, so that the server is told a position
/// is flushed only when everything emitted before it is durable.
#[derive(Debug, Default)]
struct Emitted {
    /// The end of the last emitted transaction or message.
    end: Lsn,
}

impl Emitted {
    /// A transaction ended at `end_lsn` (its changes, if any, emitted).
    fn transaction(&mut self, end_lsn: Lsn) {
        self.end = self.end.max(end_lsn);
    }

    /// A logical decoding message outside any transaction was emitted; the
    /// task confirms its end (`lsn + 1`) once it is durable.
    fn message(&mut self, lsn: Lsn) {
        self.end = self.end.max(Lsn(lsn.0 + 1));
    }

    /// The LSN to confirm: what is `durable` downstream, or, once all that
    /// was emitted is durable and the server is idle at `idle_end`, that.
    fn confirmable(&self, durable: Lsn, idle_end: Option<Lsn>) -> Lsn {
        match idle_end {
            Some(end) if durable >= self.end && end > durable => end,
            _ => durable,
        }
    }
}

/// Transactions whose changes were all emitted: commit LSN → (last
/// change's position, end of the commit record). Shared with the task so a
/// committed offset can be turned into the LSN safe to confirm.
pub type CompletedTransactions = Arc<Mutex<HashMap<u64, (u64, u64)>>>;

/// Progress shown in the status API.
#[derive(Debug, Clone, Default)]
pub struct Progress {
    /// `snapshot`, `streaming` or `starting`.
    pub phase: &'static str,
    /// Per table: rows read and the planner's estimate.
    pub tables: Vec<(String, u64, i64)>,
    /// The last streamed change's LSN.
    pub lsn: Lsn,
}

/// What the background pipeline needs.
pub struct Capture {
    /// Settings.
    pub config: PostgresConfig,
    /// Where to resume.
    pub resume: Resume,
    /// Where records go.
    pub out: Emitter,
    /// The LSN the task has made durable downstream.
    pub flushed: watch::Receiver<Lsn>,
    /// Shared with the task, see [`CompletedTransactions`].
    pub completed: CompletedTransactions,
    /// Shared with the task for the status API.
    pub progress: Arc<Mutex<Progress>>,
}

fn now_micros() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}

/// A slot of this connector's `slot.name` exists but the connector has
/// no offsets, so it was not created for this connector: taking a
/// snapshot would mean dropping it, and it may be another connector's
/// (`slot.name` defaults to `debezium` for every database of a cluster).
fn foreign_slot(slot: &str, database: &str, active: bool) -> ConnectorError {
    let user = if active {
        "a client is streaming from it right now"
    } else {
        "no client is streaming from it now"
    };
    ConnectorError::fatal(format!(
        "replication slot {slot} already exists (database {database}; {user}), but this connector has no stored offsets, so sluice did not create it for this connector and will not drop it. Give this connector a slot of its own with slot.name; or, if the slot is a leftover no one uses (a deleted connector, or this one stopped before storing its first offset), drop it with SELECT pg_drop_replication_slot('{slot}') and restart the task"
    ))
}

fn wire(what: &str, e: WireError) -> ConnectorError {
    let message = format!("{what}: {e}");
    match &e {
        WireError::Io(..) | WireError::Ended(_) => ConnectorError::retriable(message),
        WireError::Server { code, .. }
            if code.starts_with("57") || code.starts_with("08") || code == "55006" =>
        {
            ConnectorError::retriable(message)
        }
        _ => ConnectorError::fatal(message),
    }
}

impl Capture {
    fn mapping(&self) -> Mapping {
        Mapping::of(&self.config)
    }

    /// Runs until the runtime stops taking records, the snapshot of a
    /// snapshot-only run is done, or an error ends it.
    pub async fn run(self) -> Result<(), ConnectorError> {
        self.run_inner().await
    }

    async fn send(&self, records: Vec<SourceRecord>) -> Result<(), ConnectorError> {
        self.out.emit(records).await
    }

    async fn table_schema(
        &self,
        client: &Client,
        types: &mut TypeCache,
        schema: &str,
        table: &str,
        columns: &[ColumnDef],
        primary_key: &[String],
    ) -> Result<TableSchema, ConnectorError> {
        table_schema(
            &self.config,
            client,
            types,
            schema,
            table,
            columns,
            primary_key,
        )
        .await
    }

    async fn run_inner(self) -> Result<(), ConnectorError> {
        let client = setup::connect(&self.config).await?;
        let tables = catalog::tables(&client, &self.config.filters)
            .await
            .map_err(|e| ConnectorError::retriable(e.to_string()))?;
        setup::preflight(&client, &self.config, &tables).await?;
        setup::ensure_publication(&client, &self.config, &tables).await?;
        let mut types = TypeCache::default();
        let existing_slot = client
            .query_opt(
                "SELECT coalesce(database, ''), active FROM pg_replication_slots WHERE slot_name = $1",
                &[&self.config.slot_name],
            )
            .await
            .map_err(|e| query_error("reading replication slots", e))?;
        let slot_exists = existing_slot.is_some();
        if let (Some(row), Resume::Fresh, false) = (
            &existing_slot,
            self.resume,
            self.config.snapshot_mode == SnapshotMode::NoData,
        ) {
            return Err(foreign_slot(
                &self.config.slot_name,
                &row.get::<_, String>(0),
                row.get(1),
            ));
        }
        let snapshot = match (self.config.snapshot_mode, self.resume) {
            (SnapshotMode::NoData, _) => false,
            (SnapshotMode::Always, _) => true,
            (_, Resume::Fresh | Resume::SnapshotIncomplete) => true,
            (SnapshotMode::WhenNeeded, _) if !slot_exists => true,
            (_, _) if !slot_exists => {
                return Err(ConnectorError::fatal(format!(
                    "replication slot {} is gone but the connector has stored offsets: the changes since were lost with it. Set snapshot.mode=when_needed to take a new snapshot, or reset the offsets (DELETE /connectors/<name>/offsets)",
                    self.config.slot_name
                )))
            }
            (SnapshotMode::InitialOnly, _) => {
                tracing::info!("snapshot already taken and snapshot.mode=initial_only: nothing to do");
                return Ok(());
            }
            _ => false,
        };
        let params = setup::replication_params(&self.config);
        let start = if snapshot {
            let consistent = self
                .snapshot(&client, &mut types, &tables, slot_exists, &params)
                .await?;
            if self.config.snapshot_mode == SnapshotMode::InitialOnly {
                tracing::info!("snapshot done and snapshot.mode=initial_only: not streaming");
                return Ok(());
            }
            Resume::AfterSnapshot(consistent)
        } else {
            if !slot_exists {
                let mut conn = ReplicationConnection::connect(&params, SESSION_OPTIONS)
                    .await
                    .map_err(|e| wire("connecting for replication", e))?;
                conn.simple_query(&format!(
                    "CREATE_REPLICATION_SLOT \"{}\" LOGICAL pgoutput NOEXPORT_SNAPSHOT",
                    self.config.slot_name
                ))
                .await
                .map_err(|e| wire("creating the replication slot", e))?;
                conn.close().await;
            }
            self.resume
        };
        self.stream(&client, &mut types, &params, start).await
    }

    /// Creates the slot with an exported snapshot and reads every table in
    /// that snapshot; the slot's consistent point.
    async fn snapshot(
        &self,
        client: &Client,
        types: &mut TypeCache,
        tables: &[Table],
        slot_exists: bool,
        params: &crate::replication::ConnectParams,
    ) -> Result<Lsn, ConnectorError> {
        let mut conn = ReplicationConnection::connect(params, SESSION_OPTIONS)
            .await
            .map_err(|e| wire("connecting for replication", e))?;
        if slot_exists {
            // Nothing was streamed from it yet (the snapshot never
            // finished), so it is recreated at a point the new snapshot
            // matches exactly.
            tracing::info!(slot = %self.config.slot_name, "recreating the replication slot for a new snapshot");
            conn.simple_query(&format!(
                "DROP_REPLICATION_SLOT \"{}\"",
                self.config.slot_name
            ))
            .await
            .map_err(|e| wire("dropping the old replication slot", e))?;
        }
        let rows = conn
            .simple_query(&format!(
                "CREATE_REPLICATION_SLOT \"{}\" LOGICAL pgoutput EXPORT_SNAPSHOT",
                self.config.slot_name
            ))
            .await
            .map_err(|e| wire("creating the replication slot", e))?;
        let row = rows
            .first()
            .ok_or_else(|| ConnectorError::fatal("CREATE_REPLICATION_SLOT returned no row"))?;
        let consistent: Lsn = row
            .get(1)
            .cloned()
            .flatten()
            .unwrap_or_default()
            .parse()
            .map_err(ConnectorError::fatal)?;
        let snapshot_name = row.get(2).cloned().flatten().unwrap_or_default();
        // Every reader imports the snapshot before the walsender moves on:
        // the exported snapshot lives only until its next command.
        let readers = self.config.snapshot_threads.max(1);
        let mut clients = Vec::with_capacity(readers);
        for _ in 0..readers {
            let reader = setup::connect(&self.config).await?;
            reader
                .batch_execute(&format!(
                    "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET TRANSACTION SNAPSHOT '{snapshot_name}'"
                ))
                .await
                .map_err(|e| query_error("importing the slot's snapshot", e))?;
            clients.push(reader);
        }
        conn.close().await;
        // Columns as of the consistent point, read inside the snapshot: a
        // DDL between the first catalog read and the slot's creation is in
        // neither the old column list nor the stream.
        let mut current = Vec::with_capacity(tables.len());
        let snapshotted = tables
            .iter()
            .filter(|t| self.config.filters.snapshotted(&t.schema, &t.name));
        for t in snapshotted {
            let columns = catalog::columns(&clients[0], t.oid)
                .await
                .map_err(|e| ConnectorError::retriable(e.to_string()))?;
            if columns.is_empty() {
                // Dropped before the consistent point.
                continue;
            }
            let primary_key = catalog::primary_key(&clients[0], t.oid)
                .await
                .map_err(|e| ConnectorError::retriable(e.to_string()))?;
            current.push(Table {
                columns,
                primary_key,
                ..t.clone()
            });
        }
        let tables = current.as_slice();
        // Page counts for splitting large tables: exact sizes, read now
        // (pages added after the snapshot hold no rows it can see).
        let sizes = client
            .query(
                "SELECT pg_relation_size(c) / current_setting('block_size')::bigint, current_setting('server_version_num')::int FROM unnest($1::oid[]) AS c",
                &[&tables.iter().map(|t| t.oid).collect::<Vec<u32>>()],
            )
            .await
            .map_err(|e| query_error("reading table sizes", e))?;
        // A table read through snapshot.select.statement.overrides is one
        // unit: its statement cannot be cut into page ranges.
        let pages: Vec<u64> = sizes
            .iter()
            .zip(tables)
            .map(|(r, t)| {
                if self.config.snapshot_selects.overrides(&t.schema, &t.name) {
                    0
                } else {
                    r.get::<_, i64>(0).max(0) as u64
                }
            })
            .collect();
        let tid_range_scans = sizes.first().is_some_and(|r| r.get::<_, i32>(1) >= 140_000);
        let units = crate::snapshot::plan(&pages, clients.len(), tid_range_scans);
        let mut units_left = crate::snapshot::units_per_table(&units, tables.len());
        clients.truncate(units.len().max(1));
        let readers = clients.len();
        tracing::info!(consistent_point = %consistent, tables = tables.len(), readers, units = units.len(), "snapshot started");
        {
            let mut progress = self.progress.lock().unwrap_or_else(|e| e.into_inner());
            progress.phase = "snapshot";
            progress.tables = tables
                .iter()
                .map(|t| (format!("{}.{}", t.schema, t.name), 0, t.estimated_rows))
                .collect();
        }
        let mut schemas = Vec::with_capacity(tables.len());
        for t in tables {
            let columns: Vec<ColumnDef> = t.columns.iter().map(catalog::Column::def).collect();
            schemas.push(
                self.table_schema(client, types, &t.schema, &t.name, &columns, &t.primary_key)
                    .await?,
            );
        }
        let schemas = Arc::new(schemas);
        // Readers take units from one queue and send rows here; markers
        // are decided here, where the order of everything emitted is known.
        let (batches_tx, mut batches) = mpsc::channel(readers);
        let queue = Arc::new(std::sync::Mutex::new(units));
        let shared_tables = Arc::new(tables.to_vec());
        let mut workers = Vec::with_capacity(readers);
        for reader in clients {
            workers.push(tokio::spawn(crate::snapshot::read_units(
                reader,
                Arc::clone(&queue),
                Arc::clone(&shared_tables),
                Arc::clone(&schemas),
                Arc::clone(&self.config.snapshot_selects),
                self.config.snapshot_fetch_size,
                self.mapping(),
                batches_tx.clone(),
                Arc::clone(&self.progress),
            )));
        }
        drop(batches_tx);
        let ctx = self.event_context();
        let started_us = now_micros();
        let emit = |table: usize, value: Value, marker: &'static str, last: bool| {
            events::change(
                &ctx,
                &schemas[table],
                Op::Read,
                None,
                Some(value),
                &Position::Snapshot {
                    lsn: consistent,
                    marker,
                    last,
                },
                (started_us, now_micros()),
                Value::Null,
            )
        };
        let mut first = true;
        let mut started = vec![false; tables.len()];
        // Each table's newest row waits for the next (or the table's end);
        // the newest finished table's last row waits to become "last".
        let mut held: Vec<Option<Value>> = vec![None; tables.len()];
        let mut ended: Option<(usize, Value)> = None;
        while let Some(batch) = batches.recv().await {
            let batch = batch?;
            let mut out = Vec::with_capacity(batch.rows.len());
            for value in batch.rows {
                if let Some(previous) = held[batch.table].replace(value) {
                    let marker = if std::mem::take(&mut first) {
                        "first"
                    } else if !started[batch.table] {
                        "first_in_data_collection"
                    } else {
                        "true"
                    };
                    started[batch.table] = true;
                    out.extend(emit(batch.table, previous, marker, false));
                    // Hand over in max.batch.size pieces: a fetch of many
                    // rows never sits whole in the queue as events.
                    if out.len() >= self.config.max_batch_size {
                        self.send(std::mem::take(&mut out)).await?;
                    }
                }
            }
            let table_done = batch.unit_done && {
                units_left[batch.table] = units_left[batch.table].saturating_sub(1);
                units_left[batch.table] == 0
            };
            if table_done {
                if let Some(last) = held[batch.table].take() {
                    if let Some((table, value)) = ended.replace((batch.table, last)) {
                        let marker = if std::mem::take(&mut first) {
                            "first"
                        } else {
                            "last_in_data_collection"
                        };
                        out.extend(emit(table, value, marker, false));
                    }
                }
            }
            self.send(out).await?;
        }
        for worker in workers {
            worker.await.map_err(|e| {
                ConnectorError::retriable(format!("a snapshot reader stopped: {e}"))
            })??;
        }
        if let Some((table, value)) = ended {
            self.send(emit(table, value, "last", true)).await?;
        }
        tracing::info!("snapshot finished");
        Ok(consistent)
    }

    fn event_context(&self) -> EventContext {
        EventContext::new(
            &self.config.topics,
            &self.config.dbname,
            self.config.tombstones_on_delete,
            self.config.transaction_metadata,
        )
    }

    /// Streams changes from `start` until the task goes away.
    async fn stream(
        &self,
        client: &Client,
        types: &mut TypeCache,
        params: &crate::replication::ConnectParams,
        start: Resume,
    ) -> Result<(), ConnectorError> {
        let resume = start;
        let start_lsn = match resume {
            Resume::Stream { commit_lsn, .. } => commit_lsn,
            Resume::AfterSnapshot(lsn) => lsn,
            Resume::Fresh | Resume::SnapshotIncomplete => Lsn(0),
        };
        let mut conn = ReplicationConnection::connect(params, SESSION_OPTIONS)
            .await
            .map_err(|e| wire("connecting for replication", e))?;
        // Protocol 1 on purpose, not 2 with `streaming`: streamed chunks of
        // an in-progress transaction may still abort, and Debezium emits
        // committed changes only, so they would have to be held (on disk,
        // to stay bounded) until Stream Commit — redoing what the server's
        // reorder buffer already does (it spills past
        // logical_decoding_work_mem). With protocol 1 the server sends a
        // committed transaction change by change and this loop forwards
        // them through a bounded queue, so even a 1M-row transaction
        // never sits whole in the worker (see scripts/bench-postgres).
        let options = [
            ("proto_version", "1".to_owned()),
            (
                "publication_names",
                format!("\"{}\"", self.config.publication_name),
            ),
        ];
        // Logical decoding messages reach pgoutput from PostgreSQL 14 on.
        let version: i32 = client
            .query_one("SELECT current_setting('server_version_num')::int", &[])
            .await
            .map_err(|e| crate::setup::query_error("reading server_version_num", e))?
            .get(0);
        let options: Vec<(&str, String)> = if version >= 140_000 {
            options
                .into_iter()
                .chain([("messages", "true".to_owned())])
                .collect()
        } else {
            options.to_vec()
        };
        conn.start_logical(&self.config.slot_name, start_lsn, &options)
            .await
            .map_err(|e| {
                let hint = if e.code() == Some("55006") {
                    "; the slot is in use by another client: stop it or use another slot.name"
                } else {
                    ""
                };
                wire(
                    &format!(
                        "starting replication from slot {}{hint}",
                        self.config.slot_name
                    ),
                    e,
                )
            })?;
        tracing::info!(slot = %self.config.slot_name, from = %start_lsn, "streaming started");
        self.progress
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .phase = "streaming";
        let ctx = self.event_context();
        let transaction_topic = ctx.topics.transaction();
        // The transaction whose metadata is being counted
        // (provide.transaction.metadata).
        let mut open: Option<OpenTransaction> = None;
        let mut relations: HashMap<u32, Option<TableSchema>> = HashMap::new();
        let mut flushed_sent = Lsn(0);
        let mut last_status = Instant::now();
        // A walsender that does not answer when asked is behind a
        // half-open connection (a network cut, a stalled proxy): without
        // this the task would wait forever, RUNNING.
        let mut last_heard = Instant::now();
        let mut asked: Option<Instant> = None;
        let silence_limit = self.config.status_interval * 6;
        // The open transaction: (commit LSN, xid, commit time µs, next seq, skip up to seq).
        let mut tx: Option<(Lsn, u32, i64, u64, Option<u64>)> = None;
        let mut emitted = Emitted::default();
        let mut flushed = self.flushed.clone();
        // Changes already decoded go to the task in batches: whenever the
        // socket buffer holds no further complete message (so batching
        // never adds latency) or the batch is full.
        let mut pending: Vec<SourceRecord> = Vec::new();
        let mut pending_lsn = Lsn(0);
        // Processing time for `ts_ms`, read when the loop waits for the
        // socket and every 256 changes in a burst rather than per change.
        let mut now_us = now_micros();
        let mut since_clock = 0u32;
        let mut last_heartbeat = Instant::now();
        // The last fully emitted transaction: (commit LSN, its last change's position).
        let mut last_complete: Option<(Lsn, u64)> = None;
        loop {
            if !self.config.heartbeat_interval.is_zero()
                && last_heartbeat.elapsed() >= self.config.heartbeat_interval
                && tx.is_none()
            {
                last_heartbeat = Instant::now();
                if let Some(query) = &self.config.heartbeat_action_query {
                    client.batch_execute(query).await.map_err(|e| {
                        query_error(&format!("heartbeat.action.query {query:?} failed"), e)
                    })?;
                }
                // The position of the last complete transaction (which the
                // task maps to its end), or what is already confirmed.
                pending.push(events::heartbeat(
                    &ctx,
                    heartbeat_offset(last_complete, flushed_sent, now_us),
                    now_us,
                ));
            }
            if !conn.has_buffered_message() || since_clock >= 256 {
                now_us = now_micros();
                since_clock = 0;
            }
            if !pending.is_empty()
                && (!conn.has_buffered_message() || pending.len() >= self.config.max_batch_size)
            {
                self.progress.lock().unwrap_or_else(|e| e.into_inner()).lsn = pending_lsn;
                self.send(std::mem::take(&mut pending)).await?;
            }
            let message = conn
                .next_message(Duration::from_millis(500))
                .await
                .map_err(|e| wire("reading the replication stream", e))?;
            let mut reply_now = false;
            let mut idle_end = None;
            if message.is_some() {
                last_heard = Instant::now();
                asked = None;
            } else if asked.is_some_and(|at| at.elapsed() > silence_limit) {
                return Err(ConnectorError::retriable(format!(
                    "PostgreSQL's walsender has not answered for {} s although asked to: the connection is presumably half-open (a network cut or a stalled proxy); reconnecting from the stored offset",
                    last_heard.elapsed().as_secs()
                )));
            }
            match message {
                None => {}
                Some(StreamMessage::Keepalive { end, reply }) => {
                    reply_now = reply;
                    if tx.is_none() {
                        idle_end = Some(end);
                    }
                }
                Some(StreamMessage::XLogData { start, data, .. }) => {
                    let decoded = pgoutput::decode(data, false)
                        .map_err(|e| ConnectorError::fatal(e.to_string()))?;
                    match decoded {
                        Message::Begin {
                            final_lsn,
                            commit_time,
                            xid,
                        } => {
                            open = ctx.transaction_metadata.then(|| {
                                OpenTransaction::new(
                                    format!("{xid}:{}", final_lsn.0),
                                    (commit_time + PG_EPOCH_OFFSET_MICROS) / 1000,
                                )
                            });
                            tx = Some((
                                final_lsn,
                                xid,
                                commit_time + PG_EPOCH_OFFSET_MICROS,
                                0,
                                resume.emitted_of(final_lsn),
                            ));
                        }
                        Message::Commit { end_lsn, .. } => {
                            if let Some(end) = open
                                .take()
                                .and_then(|o| o.end(&ctx.partition, &transaction_topic))
                            {
                                pending.push(end);
                            }
                            if let Some((commit_lsn, _, _, next_seq, _)) = tx.take() {
                                let mut completed =
                                    self.completed.lock().unwrap_or_else(|e| e.into_inner());
                                if completed.len() > 10_000 {
                                    completed.clear();
                                }
                                completed
                                    .insert(commit_lsn.0, (next_seq.saturating_sub(1), end_lsn.0));
                                if next_seq == 0 {
                                    // An empty (filtered-out) transaction:
                                    // nothing waits on it downstream.
                                    idle_end = Some(end_lsn);
                                } else {
                                    last_complete = Some((commit_lsn, next_seq - 1));
                                }
                                emitted.transaction(end_lsn);
                            }
                        }
                        Message::Relation(relation) => {
                            let schema = self.relation_schema(client, types, &relation).await?;
                            relations.insert(relation.oid, schema);
                        }
                        change @ (Message::Insert { .. }
                        | Message::Update { .. }
                        | Message::Delete { .. }
                        | Message::Truncate { .. }) => {
                            let Some((commit_lsn, xid, commit_us, seq, skip)) = tx.as_mut() else {
                                return Err(ConnectorError::fatal(
                                    "a change arrived outside a transaction",
                                ));
                            };
                            let this_seq = *seq;
                            *seq += 1;
                            if skip.is_some_and(|s| this_seq <= s) {
                                continue;
                            }
                            let position = Position::Stream {
                                lsn: start,
                                commit_lsn: *commit_lsn,
                                tx_seq: this_seq,
                                xid: *xid,
                            };
                            since_clock += 1;
                            let records = self.change_records(
                                &ctx,
                                &relations,
                                change,
                                &position,
                                (*commit_us, now_us),
                                &mut open,
                            )?;
                            // BEGIN goes out before the transaction's first
                            // emitted change (none for a filtered one).
                            if let Some(begin) = open
                                .as_mut()
                                .filter(|_| !records.is_empty())
                                .and_then(|o| o.begin(&ctx.partition, &transaction_topic))
                            {
                                pending.push(begin);
                            }
                            pending.extend(records);
                            pending_lsn = start;
                        }
                        Message::LogicalMessage {
                            transactional,
                            lsn,
                            prefix,
                            content,
                        } => {
                            let position = match tx.as_mut() {
                                Some((commit_lsn, xid, _, seq, skip)) if transactional => {
                                    let this_seq = *seq;
                                    *seq += 1;
                                    if skip.is_some_and(|s| this_seq <= s) {
                                        continue;
                                    }
                                    Position::Stream {
                                        lsn,
                                        commit_lsn: *commit_lsn,
                                        tx_seq: this_seq,
                                        xid: *xid,
                                    }
                                }
                                _ => {
                                    // Outside any transaction: emitted in WAL
                                    // order, so one at or before the resume
                                    // point was emitted already.
                                    if resume.emitted_of(lsn).is_some() {
                                        continue;
                                    }
                                    self.completed
                                        .lock()
                                        .unwrap_or_else(|e| e.into_inner())
                                        .insert(lsn.0, (0, lsn.0 + 1));
                                    Position::Stream {
                                        lsn,
                                        commit_lsn: lsn,
                                        tx_seq: 0,
                                        xid: 0,
                                    }
                                }
                            };
                            if self.config.filters.message_prefix(&prefix) {
                                let commit_us = match &tx {
                                    Some((_, _, commit_us, ..)) if transactional => *commit_us,
                                    _ => now_us,
                                };
                                pending.push(events::logical_message(
                                    &ctx, &prefix, &content, &position, commit_us, now_us,
                                ));
                                if !transactional || tx.is_none() {
                                    emitted.message(lsn);
                                }
                                pending_lsn = start;
                            }
                        }
                        _ => {}
                    }
                }
            }
            // Confirm what is durable downstream; when everything emitted
            // is durable and the stream is idle, the server's position.
            let target = emitted.confirmable(*flushed.borrow_and_update(), idle_end);
            if reply_now
                || target > flushed_sent
                || last_status.elapsed() > self.config.status_interval
            {
                let confirm = target.max(flushed_sent);
                let ask = last_heard.elapsed() > self.config.status_interval;
                if ask && asked.is_none() {
                    asked = Some(Instant::now());
                }
                conn.send_status(confirm, ask)
                    .await
                    .map_err(|e| wire("sending the standby status", e))?;
                flushed_sent = confirm;
                last_status = Instant::now();
            }
            if self.out.is_closed() {
                conn.close().await;
                return Ok(());
            }
        }
    }

    async fn relation_schema(
        &self,
        client: &Client,
        types: &mut TypeCache,
        relation: &Relation,
    ) -> Result<Option<TableSchema>, ConnectorError> {
        if !self
            .config
            .filters
            .table(&relation.namespace, &relation.name)
        {
            return Ok(None);
        }
        // Nullability and the primary key come from the catalog; the
        // columns and types from the message, which matches the WAL.
        let live = catalog::columns(client, relation.oid)
            .await
            .unwrap_or_default();
        let primary_key = catalog::primary_key(client, relation.oid)
            .await
            .unwrap_or_default();
        let primary_key = if primary_key.is_empty() {
            relation
                .columns
                .iter()
                .filter(|c| c.key)
                .map(|c| c.name.clone())
                .collect()
        } else {
            primary_key
        };
        let columns: Vec<ColumnDef> = relation
            .columns
            .iter()
            .map(|c| {
                let nullable = live
                    .iter()
                    .find(|l| l.name == c.name)
                    .is_none_or(|l| l.nullable);
                let default = live
                    .iter()
                    .find(|l| l.name == c.name)
                    .and_then(|l| l.default.clone());
                (
                    c.name.clone(),
                    c.type_oid,
                    c.type_modifier,
                    nullable,
                    default,
                )
            })
            .collect();
        Ok(Some(
            self.table_schema(
                client,
                types,
                &relation.namespace,
                &relation.name,
                &columns,
                &primary_key,
            )
            .await?,
        ))
    }

    fn row(
        &self,
        schema: &TableSchema,
        datums: &[Datum],
        mapping: Mapping,
    ) -> Result<Value, String> {
        let placeholder = self.config.unavailable_placeholder.as_str();
        let texts: Vec<Option<std::borrow::Cow<'_, str>>> = datums
            .iter()
            .map(|d| match d {
                Datum::Null => None,
                Datum::UnchangedToast => Some(std::borrow::Cow::Borrowed(placeholder)),
                Datum::Text(b) | Datum::Binary(b) => Some(String::from_utf8_lossy(b)),
            })
            .collect();
        let refs: Vec<Option<&str>> = texts.iter().map(|t| t.as_deref()).collect();
        // Unchanged TOASTed values are not in the WAL: Debezium's
        // placeholder takes their place where the type is text-like, and
        // NULL (or the type's fallback) where it is not.
        match schema.row(&refs, mapping) {
            Ok(value) => Ok(value),
            Err(_) if datums.contains(&Datum::UnchangedToast) => {
                let cleared: Vec<Option<&str>> = refs
                    .iter()
                    .zip(datums)
                    .map(|(r, d)| {
                        if *d == Datum::UnchangedToast {
                            None
                        } else {
                            *r
                        }
                    })
                    .collect();
                schema.row(&cleared, mapping)
            }
            Err(e) => Err(e),
        }
    }

    fn change_records(
        &self,
        ctx: &EventContext,
        relations: &HashMap<u32, Option<TableSchema>>,
        change: Message,
        position: &Position,
        (commit_us, now): (i64, i64),
        transaction: &mut Option<OpenTransaction>,
    ) -> Result<Vec<SourceRecord>, ConnectorError> {
        let mapping = self.mapping();
        // Each emitted change is counted in its transaction's metadata.
        let mut block = |schema: &TableSchema| -> Value {
            match transaction.as_mut() {
                Some(open) => open.block(&format!("{}.{}", schema.schema, schema.table)),
                None => Value::Null,
            }
        };
        // A change whose values cannot be read fails the task or is
        // skipped, as event.processing.failure.handling.mode says.
        let undecodable = |problem: String| -> Result<Vec<SourceRecord>, ConnectorError> {
            self.config
                .failure_handling
                .undecodable(problem, &format!("{position:?}"))?;
            Ok(Vec::new())
        };
        let lookup = |oid: u32| -> Result<Option<&TableSchema>, ConnectorError> {
            match relations.get(&oid) {
                Some(schema) => Ok(schema.as_ref()),
                None => Err(ConnectorError::fatal(format!(
                    "a change for relation {oid} arrived before its description"
                ))),
            }
        };
        Ok(match change {
            Message::Insert { relation, new } => match lookup(relation)? {
                None => Vec::new(),
                Some(schema) => {
                    let after = match self.row(schema, &new, mapping) {
                        Ok(after) => after,
                        Err(problem) => return undecodable(problem),
                    };
                    events::change(
                        ctx,
                        schema,
                        Op::Create,
                        None,
                        Some(after),
                        position,
                        (commit_us, now),
                        block(schema),
                    )
                }
            },
            Message::Update {
                relation,
                old,
                old_is_full,
                new,
            } => match lookup(relation)? {
                None => Vec::new(),
                Some(schema) => {
                    let after = match self.row(schema, &new, mapping) {
                        Ok(after) => after,
                        Err(problem) => return undecodable(problem),
                    };
                    let before = match (old, old_is_full) {
                        (Some(old), true) => match self.row(schema, &old, mapping) {
                            Ok(before) => Some(before),
                            Err(problem) => return undecodable(problem),
                        },
                        _ => None,
                    };
                    // skip.messages.without.change: the emitted columns
                    // are the same before and after.
                    if self.config.skip_unchanged && before.as_ref() == Some(&after) {
                        return Ok(Vec::new());
                    }
                    events::change(
                        ctx,
                        schema,
                        Op::Update,
                        before,
                        Some(after),
                        position,
                        (commit_us, now),
                        block(schema),
                    )
                }
            },
            Message::Delete { relation, old, .. } => match lookup(relation)? {
                None => Vec::new(),
                Some(schema) => {
                    // With REPLICA IDENTITY DEFAULT only the key columns
                    // are set; the others are NULL, as in Debezium.
                    let before = match self.row(schema, &old, mapping) {
                        Ok(before) => before,
                        Err(problem) => return undecodable(problem),
                    };
                    events::change(
                        ctx,
                        schema,
                        Op::Delete,
                        Some(before),
                        None,
                        position,
                        (commit_us, now),
                        block(schema),
                    )
                }
            },
            Message::Truncate {
                relations: oids, ..
            } => {
                if self.config.skipped_operations.contains(&'t') {
                    return Ok(Vec::new());
                }
                let mut out = Vec::new();
                for oid in oids {
                    if let Some(schema) = lookup(oid)? {
                        let mut records = events::change(
                            ctx,
                            schema,
                            Op::Truncate,
                            None,
                            None,
                            position,
                            (commit_us, now),
                            block(schema),
                        );
                        for r in &mut records {
                            r.key = None;
                            r.key_schema = None;
                        }
                        out.extend(records);
                    }
                }
                out
            }
            _ => Vec::new(),
        })
    }
}

use sluice_connector_api::Value;

/// The schemas of `schema.table` with `columns` (see [`ColumnDef`])
/// keyed by `message.key.columns` or the primary key.
pub async fn table_schema(
    config: &PostgresConfig,
    client: &Client,
    types: &mut TypeCache,
    schema: &str,
    table: &str,
    columns: &[ColumnDef],
    primary_key: &[String],
) -> Result<TableSchema, ConnectorError> {
    let mut specs = Vec::with_capacity(columns.len());
    for (name, oid, modifier, nullable, default) in columns {
        let pg_type = types
            .resolve(client, *oid, *modifier)
            .await
            .map_err(|e| ConnectorError::retriable(e.to_string()))?;
        specs.push(ColumnSpec {
            name: name.clone(),
            pg_type,
            nullable: *nullable,
            default: default.clone(),
            included: config.filters.column(schema, table, name),
        });
    }
    let key: Vec<String> = config
        .filters
        .key_columns(schema, table)
        .map(<[String]>::to_vec)
        .unwrap_or_else(|| primary_key.to_vec());
    Ok(TableSchema::build(
        &config.topics,
        schema,
        table,
        &specs,
        &key,
        Mapping::of(config),
        &config.column_mappers,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 19, finding 1: a heartbeat stored before any transaction
    /// finished, then a transaction whose commit record sits exactly at
    /// the heartbeat's position (it began before the idle point and
    /// committed right at it). Resuming from the heartbeat must emit it.
    #[test]
    fn a_transaction_committing_at_an_idle_heartbeat_is_not_skipped() {
        let idle = Lsn(0x0100_0000);
        let offset = heartbeat_offset(None, idle, 0);
        let resume = crate::task::resume_from(Some(&offset));
        assert_eq!(
            resume.emitted_of(idle),
            None,
            "resume {resume:?} skips a transaction no one emitted"
        );
        // Transactions that committed before the idle point were emitted.
        assert_eq!(resume.emitted_of(Lsn(idle.0 - 8)), Some(u64::MAX));
        assert_eq!(resume.emitted_of(Lsn(idle.0 + 8)), None);
    }

    /// After a completed transaction, a heartbeat resumes after it: that
    /// transaction is skipped whole, the next one is not.
    #[test]
    fn a_heartbeat_after_a_transaction_resumes_after_it() {
        let commit = Lsn(0x0200_0000);
        let offset = heartbeat_offset(Some((commit, 4)), Lsn(0), 0);
        let resume = crate::task::resume_from(Some(&offset));
        assert_eq!(resume.emitted_of(commit), Some(4));
        assert_eq!(resume.emitted_of(Lsn(commit.0 + 1)), None);
    }

    /// Issue 19, finding 2: a logical decoding message outside any
    /// transaction is emitted; until Kafka has it, an idle server's
    /// position must not be confirmed past it.
    #[test]
    fn an_unacknowledged_message_holds_back_the_idle_confirm() {
        let mut emitted = Emitted::default();
        emitted.transaction(Lsn(100));
        // Everything so far is durable and the server is idle: confirm its end.
        assert_eq!(emitted.confirmable(Lsn(100), Some(Lsn(150))), Lsn(150));
        emitted.message(Lsn(200));
        assert_eq!(
            emitted.confirmable(Lsn(150), Some(Lsn(300))),
            Lsn(150),
            "confirmed past a message Kafka has not acknowledged"
        );
        // Once the message is durable (its end, 201), the idle end may go.
        assert_eq!(emitted.confirmable(Lsn(201), Some(Lsn(300))), Lsn(300));
    }
}
