//! The source task: starts the capture pipeline in the background, hands
//! its records to the runtime, and confirms to PostgreSQL only what the
//! runtime reports durable.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde_json::json;
use sluice_connector_api::{
    ConnectorConfig, ConnectorError, SourceOffset, SourcePartition, SourceRecord, SourceTask,
    SourceTaskContext, StopReason,
};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::capture::{Capture, CompletedTransactions, Progress, Resume};
use crate::config::PostgresConfig;
use crate::replication::Lsn;

/// A running PostgreSQL source task.
#[derive(Default)]
pub struct PostgresTask {
    running: Option<Running>,
}

struct Running {
    config: PostgresConfig,
    records: mpsc::Receiver<Result<Vec<SourceRecord>, ConnectorError>>,
    flushed: watch::Sender<Lsn>,
    completed: CompletedTransactions,
    progress: Arc<Mutex<Progress>>,
    pipeline: JoinHandle<()>,
    /// The pipeline ended in an error: the stop that follows is not a
    /// graceful one, so `slot.drop.on.stop` must not drop the slot.
    failed: bool,
}

/// Where to resume from a stored offset.
pub(crate) fn resume_from(offset: Option<&SourceOffset>) -> Resume {
    let Some(offset) = offset else {
        return Resume::Fresh;
    };
    let number = |key: &str| offset.get(key).and_then(serde_json::Value::as_u64);
    if offset.get("snapshot").and_then(serde_json::Value::as_bool) == Some(true) {
        return match (
            offset
                .get("last_snapshot_record")
                .and_then(serde_json::Value::as_bool),
            number("lsn"),
        ) {
            (Some(true), Some(lsn)) => Resume::AfterSnapshot(Lsn(lsn)),
            _ => Resume::SnapshotIncomplete,
        };
    }
    match number("lsn_commit") {
        // Without our position in the transaction (an idle heartbeat, or
        // an offset Debezium wrote): resume at that commit, repeating the
        // transaction committing there rather than skipping any of it.
        Some(commit) => Resume::Stream {
            commit_lsn: Lsn(commit),
            tx_seq: number("tx_seq"),
        },
        None => Resume::Fresh,
    }
}

impl Running {
    /// The LSN safe to confirm once `offset` is durable: the end of its
    /// transaction when it was the transaction's last change, else the
    /// transaction's commit LSN (so the server resends that transaction and
    /// the changes after it).
    fn confirmable(&self, offset: &SourceOffset) -> Option<Lsn> {
        let number = |key: &str| offset.get(key).and_then(serde_json::Value::as_u64);
        let commit = number("lsn_commit")?;
        let seq = number("tx_seq")?;
        let completed = self.completed.lock().unwrap_or_else(|e| e.into_inner());
        Some(match completed.get(&commit) {
            Some((last, end)) if *last == seq => Lsn(*end),
            _ => Lsn(commit),
        })
    }
}

#[async_trait]
impl SourceTask for PostgresTask {
    async fn start(
        &mut self,
        config: &ConnectorConfig,
        context: SourceTaskContext,
    ) -> Result<(), ConnectorError> {
        let config = PostgresConfig::parse(config)?;
        let partition =
            sluice_connector_api::offset::partition("server", config.topic_prefix.clone());
        let resume = resume_from(context.offset(&partition));
        tracing::info!(server = %config.topic_prefix, ?resume, "postgres task starting");
        // Batches hold up to max.batch.size records: this bounds what is
        // decoded ahead of the runtime to about max.queue.size records.
        let (out, records) = mpsc::channel((config.max_queue_size / config.max_batch_size).max(1));
        let (flushed, flushed_rx) = watch::channel(Lsn(0));
        let completed = CompletedTransactions::default();
        let progress = Arc::new(Mutex::new(Progress {
            phase: "starting",
            ..Progress::default()
        }));
        let capture = Capture {
            config: config.clone(),
            resume,
            out,
            flushed: flushed_rx,
            completed: Arc::clone(&completed),
            progress: Arc::clone(&progress),
        };
        let pipeline = tokio::spawn(capture.run());
        self.running = Some(Running {
            config,
            records,
            flushed,
            completed,
            progress,
            pipeline,
            failed: false,
        });
        Ok(())
    }

    async fn poll(&mut self) -> Result<Vec<SourceRecord>, ConnectorError> {
        let Some(running) = self.running.as_mut() else {
            return Err(ConnectorError::fatal("poll before start"));
        };
        sluice_connector_api::batches::next_batch(
            &mut running.records,
            running.config.max_batch_size,
        )
        .await
    }

    async fn commit(
        &mut self,
        offsets: &[(SourcePartition, SourceOffset)],
    ) -> Result<(), ConnectorError> {
        let Some(running) = self.running.as_ref() else {
            return Ok(());
        };
        if let Some(lsn) = offsets
            .iter()
            .filter_map(|(_, o)| running.confirmable(o))
            .max()
        {
            running.flushed.send_if_modified(|current| {
                let advance = lsn > *current;
                if advance {
                    *current = lsn;
                }
                advance
            });
        }
        Ok(())
    }

    async fn stop(&mut self, reason: StopReason) {
        let Some(running) = self.running.take() else {
            return;
        };
        drop(running.records);
        running.pipeline.abort();
        let _ = running.pipeline.await;
        if running.config.slot_drop_on_stop && !running.failed && reason == StopReason::Requested {
            match crate::setup::connect(&running.config).await {
                Ok(client) => {
                    let dropped = client
                        .execute(
                            "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1 AND NOT active",
                            &[&running.config.slot_name],
                        )
                        .await;
                    tracing::info!(slot = %running.config.slot_name, ok = dropped.is_ok(), "slot.drop.on.stop: dropped the replication slot");
                }
                Err(e) => {
                    tracing::warn!(error = %e, "slot.drop.on.stop: cannot connect to drop the slot")
                }
            }
        }
    }

    fn progress(&self) -> Option<serde_json::Value> {
        let running = self.running.as_ref()?;
        let progress = running.progress.lock().unwrap_or_else(|e| e.into_inner());
        Some(json!({
            "phase": progress.phase,
            "snapshot": sluice_connector_api::debezium::snapshot_progress(&progress.tables),
            "lsn": progress.lsn.to_string(),
            "confirmed_flush_lsn": running.flushed.borrow().to_string(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offset(value: serde_json::Value) -> SourceOffset {
        value.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn offsets_map_to_resume_points() {
        assert_eq!(resume_from(None), Resume::Fresh);
        assert_eq!(
            resume_from(Some(&offset(
                json!({"snapshot": true, "last_snapshot_record": false, "lsn": 5})
            ))),
            Resume::SnapshotIncomplete
        );
        assert_eq!(
            resume_from(Some(&offset(
                json!({"snapshot": true, "last_snapshot_record": true, "lsn": 5})
            ))),
            Resume::AfterSnapshot(Lsn(5))
        );
        assert_eq!(
            resume_from(Some(&offset(
                json!({"lsn_commit": 9, "tx_seq": 3, "lsn": 8})
            ))),
            Resume::Stream {
                commit_lsn: Lsn(9),
                tx_seq: Some(3)
            }
        );
    }
}
