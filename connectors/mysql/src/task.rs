//! The source task: runs the capture pipeline, which pushes its records
//! to the runtime.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde_json::json;
use sluice_connector_api::{
    ConnectorConfig, ConnectorError, SourceContext, SourceTask, TaskProgress,
};

use crate::capture::{Capture, Progress};
use crate::config::MySqlConfig;
use crate::debezium_history;
use crate::events::{tables_from_history, EventContext};
use crate::offset::{resume_from, Resume};

/// A MySQL / MariaDB source task.
#[derive(Default)]
pub struct MySqlTask;

#[async_trait]
impl SourceTask for MySqlTask {
    async fn run(
        &mut self,
        config: &ConnectorConfig,
        context: SourceContext,
    ) -> Result<(), ConnectorError> {
        let config = MySqlConfig::parse(config)?;
        let ctx = EventContext::new(
            &config.topics,
            config.common.tombstones_on_delete,
            config.common.transaction_metadata,
            config.flavor,
        );
        let resume = resume_from(context.offset(&ctx.partition));
        let mut history = context.offset(&ctx.history_partition).and_then(|o| {
            let tables = tables_from_history(o)?;
            let file = o.get("file")?.as_str()?.to_owned();
            let pos = o.get("pos")?.as_u64()?;
            Some((tables, (file, pos)))
        });
        if let (None, Resume::Stream(cursor)) = (&history, &resume) {
            // Offsets without a history of sluice's own: Debezium's, whose
            // history is in the history topic.
            let documents = context.read_topic(&config.history_topic).await?;
            history =
                debezium_history::tables_at(&documents, (&cursor.file, cursor.pos), |d, t| {
                    config.filters.table(d, t)
                });
            tracing::info!(
                topic = %config.history_topic,
                records = documents.len(),
                used = history.is_some(),
                "schema history read from the history topic"
            );
        }
        tracing::info!(server = %config.topic_prefix, ?resume, history = history.is_some(), "mysql task starting");
        let progress = Arc::new(Mutex::new(Progress {
            phase: "starting",
            ..Progress::default()
        }));
        context.report_progress({
            let progress = Arc::clone(&progress);
            Arc::new(move || {
                let progress = progress.lock().unwrap_or_else(|e| e.into_inner());
                TaskProgress {
                    phase: Some(progress.phase),
                    snapshot: sluice_connector_api::debezium::snapshot_progress(&progress.tables),
                    positions: vec![("binlog_position", json!(progress.position))],
                }
            })
        });
        let capture = Capture {
            config,
            ctx,
            resume,
            history,
            out: context.emitter(),
            progress,
        };
        let mut shutdown = context.shutdown();
        tokio::select! {
            result = capture.run() => result,
            () = shutdown.wait() => Ok(()),
        }
    }
}
