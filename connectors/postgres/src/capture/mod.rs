//! The capture pipeline, run in the background of a task: the
//! [`coordinator`] decides between the consistent [`snapshot`] (from the
//! slot's exported snapshot) and pgoutput [`stream`]ing from the slot's
//! consistent point or the stored offset; [`decode`] turns pgoutput
//! changes into change events. Records go to the runtime through a bounded
//! emitter, so a slow broker slows reading.

mod coordinator;
mod copy_text;
mod decode;
pub(crate) mod readers;
mod snapshot;
mod stream;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use sluice_connector_api::{ConnectorError, Emitter, SourceRecord};
use tokio::sync::watch;
use tokio_postgres::Client;

use crate::catalog::{ColumnDef, TypeCache};
use crate::config::PostgresConfig;
use crate::events::EventContext;
use crate::offset::Resume;
use crate::replication::{Lsn, WireError};
use crate::table_schema::{ColumnSpec, TableSchema};
use crate::types::Mapping;

/// Transactions whose changes were all emitted: commit LSN → (last
/// change's position, end of the commit record). Shared with the task so a
/// committed offset can be turned into the LSN safe to confirm.
pub type CompletedTransactions = Arc<Mutex<HashMap<u64, (u64, u64)>>>;

/// Whether the run's replication slot was created for a snapshot that has
/// not reached its last record. Until then every offset the run can have
/// stored is a snapshot cut short's, which a restart takes again with a new
/// slot, so the task drops the slot when it is stopped other than by a
/// failure: a deleted connector's unfinished snapshot then leaves no slot
/// holding back the server's WAL. (A slot left by a task killed or failed
/// there is dropped by the next start, which finds the offset stored when
/// the snapshot began.)
/// Cleared before the last record is sent: from then on stored offsets
/// point into the slot.
#[derive(Debug, Clone, Default)]
pub struct SnapshotSlot(Arc<std::sync::atomic::AtomicBool>);

impl SnapshotSlot {
    /// The slot was just created for a snapshot.
    fn created(&self) {
        self.0.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// The slot is not to be dropped at stop: the snapshot reaches its end
    /// (stored offsets will point into the slot), or the server refused to
    /// create it (a slot of that name may be someone else's).
    fn keep(&self) {
        self.0.store(false, std::sync::atomic::Ordering::SeqCst);
    }

    /// Whether the slot was created for a snapshot that did not reach its
    /// end; resets the mark.
    pub fn take(&self) -> bool {
        self.0.swap(false, std::sync::atomic::Ordering::SeqCst)
    }
}

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
    /// Shared with the task, which drops a slot created for a snapshot it
    /// did not finish.
    pub snapshot_slot: SnapshotSlot,
}

fn now_micros() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
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
        self.coordinate().await
    }

    async fn send(&self, records: Vec<SourceRecord>) -> Result<(), ConnectorError> {
        self.out.emit(records).await
    }

    fn event_context(&self) -> EventContext {
        EventContext::new(
            &self.config.topics,
            &self.config.dbname,
            self.config.common.tombstones_on_delete,
            self.config.common.transaction_metadata,
        )
    }
}

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
