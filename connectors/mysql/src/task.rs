//! The source task: runs the capture pipeline in the background and hands
//! its records to the runtime.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde_json::json;
use sluice_connector_api::{
    ConnectorConfig, ConnectorError, SourceRecord, SourceTask, SourceTaskContext, StopReason,
};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::capture::{resume_from, Capture, Progress};
use crate::config::MySqlConfig;
use crate::events::{tables_from_history, EventContext};

/// A running MySQL / MariaDB source task.
#[derive(Default)]
pub struct MySqlTask {
    running: Option<Running>,
}

struct Running {
    max_batch: usize,
    records: mpsc::Receiver<Result<Vec<SourceRecord>, ConnectorError>>,
    progress: Arc<Mutex<Progress>>,
    pipeline: JoinHandle<()>,
}

#[async_trait]
impl SourceTask for MySqlTask {
    async fn start(
        &mut self,
        config: &ConnectorConfig,
        context: SourceTaskContext,
    ) -> Result<(), ConnectorError> {
        let config = MySqlConfig::parse(config)?;
        let ctx = EventContext::new(
            &config.topic_prefix,
            config.tombstones_on_delete,
            config.transaction_metadata,
        );
        let resume = resume_from(context.offset(&ctx.partition));
        let history = context.offset(&ctx.history_partition).and_then(|o| {
            let tables = tables_from_history(o)?;
            let file = o.get("file")?.as_str()?.to_owned();
            let pos = o.get("pos")?.as_u64()?;
            Some((tables, (file, pos)))
        });
        tracing::info!(server = %config.topic_prefix, ?resume, history = history.is_some(), "mysql task starting");
        let (out, records) = mpsc::channel((config.max_queue_size / config.max_batch_size).max(1));
        let progress = Arc::new(Mutex::new(Progress {
            phase: "starting",
            ..Progress::default()
        }));
        let max_batch = config.max_batch_size;
        let capture = Capture {
            config,
            ctx,
            resume,
            history,
            out,
            progress: Arc::clone(&progress),
        };
        let pipeline = tokio::spawn(capture.run());
        self.running = Some(Running {
            max_batch,
            records,
            progress,
            pipeline,
        });
        Ok(())
    }

    async fn poll(&mut self) -> Result<Vec<SourceRecord>, ConnectorError> {
        let Some(running) = self.running.as_mut() else {
            return Err(ConnectorError::fatal("poll before start"));
        };
        sluice_connector_api::batches::next_batch(&mut running.records, running.max_batch).await
    }

    async fn stop(&mut self, _reason: StopReason) {
        let Some(running) = self.running.take() else {
            return;
        };
        drop(running.records);
        running.pipeline.abort();
        let _ = running.pipeline.await;
    }

    fn progress(&self) -> Option<serde_json::Value> {
        let running = self.running.as_ref()?;
        let progress = running.progress.lock().unwrap_or_else(|e| e.into_inner());
        Some(json!({
            "phase": progress.phase,
            "snapshot": sluice_connector_api::debezium::snapshot_progress(&progress.tables),
            "binlog_position": progress.position,
        }))
    }
}
