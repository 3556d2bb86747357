//! The source task: runs the capture pipeline, which pushes its records
//! to the runtime, and confirms to PostgreSQL only what the runtime reports
//! durable.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde_json::json;
use sluice_connector_api::{
    ConnectorConfig, ConnectorError, DurableOffsets, SourceContext, SourceOffset, SourceTask,
    StopReason, TaskProgress,
};
use tokio::sync::watch;

use crate::capture::{Capture, CompletedTransactions, Progress};
use crate::config::PostgresConfig;
use crate::offset::{self, resume_from};
use crate::replication::Lsn;

/// A PostgreSQL source task.
#[derive(Default)]
pub struct PostgresTask {
    /// Settings of the last run, for `slot.drop.on.stop`.
    config: Option<PostgresConfig>,
    /// Set by the last run, see [`crate::capture::SnapshotSlot`].
    snapshot_slot: crate::capture::SnapshotSlot,
}

/// The LSN safe to confirm once `offset` is durable: the end of its
/// transaction when it was the transaction's last change, else the
/// transaction's commit LSN (so the server resends that transaction and
/// the changes after it).
fn confirmable(completed: &CompletedTransactions, offset: &SourceOffset) -> Option<Lsn> {
    let (commit, seq) = offset::change_in_transaction(offset)?;
    let completed = completed.lock().unwrap_or_else(|e| e.into_inner());
    Some(match completed.get(&commit.0) {
        Some((last, end)) if *last == seq => Lsn(*end),
        _ => commit,
    })
}

/// Turns the offsets the runtime made durable into the LSN the stream may
/// confirm as flushed. Never ends while the runtime is there.
async fn confirm_durable(
    mut durable: watch::Receiver<DurableOffsets>,
    completed: CompletedTransactions,
    flushed: watch::Sender<Lsn>,
) {
    while durable.changed().await.is_ok() {
        let offsets = Arc::clone(&durable.borrow_and_update());
        if let Some(lsn) = offsets
            .iter()
            .filter_map(|(_, o)| confirmable(&completed, o))
            .max()
        {
            flushed.send_if_modified(|current| {
                let advance = lsn > *current;
                if advance {
                    *current = lsn;
                }
                advance
            });
        }
    }
    std::future::pending::<()>().await;
}

/// What the status shows: phase, snapshot rows, the stream's LSN and the
/// LSN confirmed to the server.
fn progress_reader(
    progress: Arc<Mutex<Progress>>,
    flushed: watch::Receiver<Lsn>,
) -> sluice_connector_api::ProgressReader {
    Arc::new(move || {
        let progress = progress.lock().unwrap_or_else(|e| e.into_inner());
        TaskProgress {
            phase: Some(progress.phase),
            snapshot: sluice_connector_api::debezium::snapshot_progress(&progress.tables),
            positions: vec![
                ("lsn", json!(progress.lsn.to_string())),
                ("confirmed_flush_lsn", json!(flushed.borrow().to_string())),
            ],
        }
    })
}

#[async_trait]
impl SourceTask for PostgresTask {
    async fn run(
        &mut self,
        config: &ConnectorConfig,
        context: SourceContext,
    ) -> Result<(), ConnectorError> {
        let config = PostgresConfig::parse(config)?;
        self.config = Some(config.clone());
        let partition =
            sluice_connector_api::offset::partition("server", config.topic_prefix.clone());
        let resume = resume_from(context.offset(&partition));
        tracing::info!(server = %config.topic_prefix, ?resume, "postgres task starting");
        let (flushed, flushed_rx) = watch::channel(Lsn(0));
        let completed = CompletedTransactions::default();
        let progress = Arc::new(Mutex::new(Progress {
            phase: "starting",
            ..Progress::default()
        }));
        context.report_progress(progress_reader(Arc::clone(&progress), flushed.subscribe()));
        let capture = Capture {
            config,
            resume,
            out: context.emitter(),
            flushed: flushed_rx,
            completed: Arc::clone(&completed),
            progress,
            snapshot_slot: self.snapshot_slot.clone(),
        };
        let mut shutdown = context.shutdown();
        tokio::select! {
            result = capture.run() => result,
            () = confirm_durable(context.durable(), completed, flushed) => Ok(()),
            () = shutdown.wait() => Ok(()),
        }
    }

    async fn stop(&mut self, reason: StopReason) {
        let Some(config) = self.config.take() else {
            return;
        };
        // Not after a failure: a lost lease on the group of workers is one,
        // and then another worker may already be taking the snapshot again
        // with a slot of the same name.
        if self.snapshot_slot.take() && reason != StopReason::Failed {
            drop_unfinished_snapshot_slot(&config).await;
            return;
        }
        if !config.slot_drop_on_stop || reason != StopReason::Requested {
            return;
        }
        match crate::setup::connect(&config).await {
            Ok(client) => {
                let dropped = client
                    .execute(
                        "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1 AND NOT active",
                        &[&config.slot_name],
                    )
                    .await;
                tracing::info!(slot = %config.slot_name, ok = dropped.is_ok(), "slot.drop.on.stop: dropped the replication slot");
            }
            Err(e) => {
                tracing::warn!(error = %e, "slot.drop.on.stop: cannot connect to drop the slot")
            }
        }
    }
}

/// Drops the slot this task created for a snapshot it did not finish,
/// once stopped by a shutdown, a rebalance or a reconfiguration (each ends
/// before the task may start anywhere else): no offset stored can need the
/// slot (a snapshot cut short is taken again with a new one), and left
/// behind, by a connector deleted meanwhile, it would hold back the
/// server's WAL for no one. The walsender of the run may take a moment to
/// let it go.
async fn drop_unfinished_snapshot_slot(config: &PostgresConfig) {
    let client = match crate::setup::connect(config).await {
        Ok(client) => client,
        Err(e) => {
            tracing::warn!(slot = %config.slot_name, error = %e, "cannot connect to drop the slot of the unfinished snapshot; the next start of this connector drops it");
            return;
        }
    };
    for _ in 0..50 {
        let state = client
            .query_opt(
                "SELECT active FROM pg_replication_slots WHERE slot_name = $1",
                &[&config.slot_name],
            )
            .await;
        let outcome = match state {
            Ok(None) => return,
            Ok(Some(row)) if !row.get::<_, bool>(0) => {
                client
                    .execute("SELECT pg_drop_replication_slot($1)", &[&config.slot_name])
                    .await
            }
            // The run's walsender has not exited yet.
            Ok(Some(_)) => Ok(0),
            Err(e) => Err(e),
        };
        match outcome {
            Ok(1) => {
                tracing::info!(slot = %config.slot_name, "dropped the replication slot of the unfinished snapshot; the next start takes the snapshot again");
                return;
            }
            Ok(_) => tokio::time::sleep(std::time::Duration::from_millis(100)).await,
            Err(e) => {
                tracing::warn!(slot = %config.slot_name, error = %e, "could not drop the slot of the unfinished snapshot; the next start of this connector drops it");
                return;
            }
        }
    }
    tracing::warn!(slot = %config.slot_name, "the slot of the unfinished snapshot stayed in use; the next start of this connector drops it");
}
