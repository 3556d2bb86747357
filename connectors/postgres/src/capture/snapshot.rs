//! The consistent snapshot: the slot created with an exported snapshot,
//! every captured table read inside it by parallel readers, the rows
//! emitted as `op: r` events ending with the `last` marker.

use std::sync::Arc;

use sluice_connector_api::snapshot_markers::SnapshotMarkers;
use sluice_connector_api::{ConnectorError, Value};
use tokio::sync::mpsc;
use tokio_postgres::Client;

use super::{now_micros, wire, Capture};
use crate::catalog::{self, ColumnDef, Table, TypeCache};
use crate::events::{self, Op};
use crate::offset::Position;
use crate::replication::{Lsn, ReplicationConnection};
use crate::setup::{self, query_error, SESSION_OPTIONS};

impl Capture {
    /// Reads every table in one snapshot: that of a slot created with it,
    /// or, when this connector's slot exists already (a snapshot taken
    /// again), one taken now. Returns where the stream after it starts: the
    /// new slot's consistent point, or the kept slot's position.
    pub(super) async fn snapshot(
        &self,
        client: &Client,
        types: &mut TypeCache,
        tables: &[Table],
        slot_exists: bool,
        params: &crate::replication::ConnectParams,
    ) -> Result<Lsn, ConnectorError> {
        // Stored before the slot exists: a task killed from here on (a
        // lost machine, kill -9) finds at its next start that its snapshot
        // began, and takes it again, instead of refusing the slot it left
        // as possibly another consumer's. It also stands
        // in for a stream offset that no longer holds (snapshot.mode
        // always, or when_needed after the slot was lost).
        self.out
            .checkpoint(
                self.event_context().partition,
                crate::offset::snapshot_begun(now_micros()),
            )
            .await?;
        let kept = if slot_exists {
            self.kept_slot_position(client).await?
        } else {
            None
        };
        let (consistent, snapshot_name, exporter) = match kept {
            Some(position) => {
                // The slot stays, and the stream after this snapshot starts
                // at its position: the earlier run may have sent part of a
                // snapshot and of the changes since, so a row deleted
                // meanwhile is downstream and in no read of this snapshot.
                // Only the stream can bring its delete. The changes between
                // the slot's position and this snapshot come again after
                // it, which repeats, in order, what the reads already show.
                tracing::info!(slot = %self.config.slot_name, from = %position, "taking the snapshot again; the stream after it starts at the slot's position");
                let exporter = setup::connect(&self.config).await?;
                let row = exporter
                    .simple_query(
                        "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SELECT pg_export_snapshot()",
                    )
                    .await
                    .map_err(|e| query_error("exporting a snapshot", e))?
                    .into_iter()
                    .find_map(|m| match m {
                        tokio_postgres::SimpleQueryMessage::Row(row) => {
                            row.get(0).map(str::to_owned)
                        }
                        _ => None,
                    })
                    .ok_or_else(|| ConnectorError::fatal("pg_export_snapshot returned no row"))?;
                (position, row, Exporter::Transaction(exporter))
            }
            None => {
                let (consistent, name, conn) = self.new_slot(params, slot_exists).await?;
                (consistent, name, Exporter::Slot(conn))
            }
        };
        // Every reader imports the snapshot before the exporter moves on:
        // the exported snapshot lives only until its next command.
        let readers = self.config.common.snapshot_threads.max(1);
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
        match exporter {
            Exporter::Slot(conn) => conn.close().await,
            // The readers hold the snapshot now; a failed end only leaves
            // the transaction to end with the connection.
            Exporter::Transaction(client) => {
                let _ = client.batch_execute("COMMIT").await;
            }
        }
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
        let units = super::readers::plan(&pages, clients.len(), tid_range_scans);
        let units_left = super::readers::units_per_table(&units, tables.len());
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
                super::table_schema(
                    &self.config,
                    client,
                    types,
                    &t.schema,
                    &t.name,
                    &columns,
                    &t.primary_key,
                )
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
            workers.push(tokio::spawn(super::readers::read_units(
                reader,
                Arc::clone(&queue),
                Arc::clone(&shared_tables),
                Arc::clone(&schemas),
                Arc::clone(&self.config.snapshot_selects),
                self.config.common.batch_limit(),
                self.mapping(),
                batches_tx.clone(),
                Arc::clone(&self.progress),
            )));
        }
        drop(batches_tx);
        let ctx = self.event_context();
        let started_us = now_micros();
        // Most rows are plain `true` ones, which share their table's
        // source block and offset.
        let shared: Vec<_> = schemas
            .iter()
            .map(|schema| events::snapshot_parts(&ctx, schema, consistent, started_us))
            .collect();
        let emit = |table: usize, value: Value, marker: &'static str, last: bool| {
            if marker == "true" && !last {
                let read = shared[table].read(&ctx.partition, &schemas[table], value, now_micros());
                return sluice_connector_api::debezium::change_records(read, false);
            }
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
        // Each table's newest row waits for the next (or the table's end);
        // the newest finished table's last row waits to become "last".
        let mut markers = SnapshotMarkers::new(units_left);
        while let Some(batch) = batches.recv().await {
            let batch = batch?;
            // One reader's piece as events: the readers close pieces by the
            // batch limit, bytes included, so the rows are weighed there
            // and not again here.
            let mut out = Vec::with_capacity(batch.rows.len());
            for value in batch.rows {
                if let Some(done) = markers.push(batch.table, value) {
                    out.extend(emit(done.table, done.row, done.marker, false));
                    // Hand over in max.batch.size pieces: a fetch of many
                    // rows never sits whole in the queue as events.
                    if out.len() >= self.config.common.max_batch_size {
                        self.out.emit_from(&mut out).await?;
                    }
                }
            }
            if batch.unit_done {
                if let Some(done) = markers.unit_done(batch.table) {
                    out.extend(emit(done.table, done.row, done.marker, false));
                }
            }
            self.send(out).await?;
        }
        for worker in workers {
            worker.await.map_err(|e| {
                ConnectorError::retriable(format!("a snapshot reader stopped: {e}"))
            })??;
        }
        self.snapshot_slot.keep();
        let mut out = Vec::new();
        for done in markers.finish() {
            let last = done.marker == "last";
            out.extend(emit(done.table, done.row, done.marker, last));
        }
        if !out.is_empty() {
            self.send(out).await?;
        }
        tracing::info!("snapshot finished");
        Ok(consistent)
    }

    /// The position of this connector's slot, to take a snapshot again
    /// and stream from there; `None` when the slot cannot stream any more
    /// (PostgreSQL removed WAL it needs) and must be made anew.
    async fn kept_slot_position(&self, client: &Client) -> Result<Option<Lsn>, ConnectorError> {
        // wal_status is PostgreSQL 13's; read through jsonb so older
        // servers answer too.
        let row = client
            .query_opt(
                "SELECT s.confirmed_flush_lsn::text, to_jsonb(s) ->> 'wal_status' FROM pg_replication_slots s WHERE s.slot_name = $1",
                &[&self.config.slot_name],
            )
            .await
            .map_err(|e| query_error("reading the replication slot's position", e))?;
        let Some(row) = row else {
            return Ok(None);
        };
        let (position, wal) = (
            row.get::<_, Option<String>>(0),
            row.get::<_, Option<String>>(1),
        );
        if wal.as_deref() == Some("lost") {
            tracing::warn!(slot = %self.config.slot_name, "the replication slot lost WAL it needed: it is made anew for the snapshot, and changes made before the snapshot that were never sent are lost (raise max_slot_wal_keep_size)");
            return Ok(None);
        }
        Ok(position.and_then(|p| p.parse().ok()))
    }

    /// Creates the slot (dropping a stale one of the same name first) with
    /// an exported snapshot: its consistent point, the snapshot's name and
    /// the replication connection that holds the snapshot.
    async fn new_slot(
        &self,
        params: &crate::replication::ConnectParams,
        slot_exists: bool,
    ) -> Result<(Lsn, String, ReplicationConnection), ConnectorError> {
        let mut conn = ReplicationConnection::connect(params, SESSION_OPTIONS)
            .await
            .map_err(|e| wire("connecting for replication", e))?;
        if slot_exists {
            // It can no longer stream (see kept_slot_position).
            tracing::info!(slot = %self.config.slot_name, "recreating the replication slot for a new snapshot");
            conn.simple_query(&format!(
                "DROP_REPLICATION_SLOT \"{}\"",
                self.config.slot_name
            ))
            .await
            .map_err(|e| wire("dropping the old replication slot", e))?;
        }
        // Marked before it is asked for: a task stopped while the server
        // creates the slot (which waits for running transactions) may still
        // leave one. A refusal unmarks it.
        self.snapshot_slot.created();
        let rows = conn
            .simple_query(&format!(
                "CREATE_REPLICATION_SLOT \"{}\" LOGICAL pgoutput EXPORT_SNAPSHOT",
                self.config.slot_name
            ))
            .await
            .map_err(|e| {
                self.snapshot_slot.keep();
                wire("creating the replication slot", e)
            })?;
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
        Ok((consistent, snapshot_name, conn))
    }
}

/// What holds an exported snapshot until the readers have imported it.
enum Exporter {
    /// The replication connection that created the slot with it.
    Slot(ReplicationConnection),
    /// A connection whose open transaction exported its snapshot.
    Transaction(Client),
}
