//! The capture pipeline: decides whether to snapshot, takes the snapshot,
//! then streams the binlog from the snapshot's position (or the stored
//! offset), reconnecting after network errors and server restarts.

use std::sync::{Arc, Mutex};

use sluice_connector_api::{ConnectorError, SourceRecord};

use crate::catalog::Tables;
use crate::config::{MySqlConfig, SnapshotMode};
use crate::events::{self, EventContext, TableChange};
use crate::offset::{self, BinlogPosition, Cursor, Resume, SnapshotMark};
use crate::setup;
use crate::snapshot;
use crate::stream::{Model, Streamer};

/// What the task shows in its status.
#[derive(Debug, Default)]
pub struct Progress {
    /// starting, snapshot, streaming, done.
    pub phase: &'static str,
    /// Snapshot progress: (table, rows done, estimated rows).
    pub tables: Vec<(String, u64, u64)>,
    /// Last binlog position read.
    pub position: String,
}

/// The pipeline's inputs.
pub struct Capture {
    /// Settings.
    pub config: MySqlConfig,
    /// Event context.
    pub ctx: EventContext,
    /// Where to resume.
    pub resume: Resume,
    /// The schema history stored with the offsets, and its position.
    pub history: Option<(Tables, (String, u64))>,
    /// Where records go.
    pub out: sluice_connector_api::Emitter,
    /// Status.
    pub progress: Arc<Mutex<Progress>>,
}

impl Capture {
    /// Runs until the runtime stops taking records, the snapshot of an
    /// `initial_only` run is done, or an error ends it.
    pub async fn run(self) -> Result<(), ConnectorError> {
        self.pipeline().await.inspect_err(|e| {
            tracing::error!(error = %e, "mysql capture stopped");
        })
    }

    async fn pipeline(self) -> Result<(), ConnectorError> {
        let config = &self.config;
        let mut attempt = 0u32;
        // Connect and check, retrying while the server is unreachable.
        let (info, cursor, model, history_at) = loop {
            match self.prepare().await {
                Ok(ready) => break ready,
                Err(e) if e.is_retriable() && attempt < 20 => {
                    tracing::warn!(error = %e, attempt, "mysql not ready; retrying");
                    tokio::time::sleep(setup::backoff(attempt)).await;
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        };
        let (mut cursor, mut model) = match (cursor, model) {
            (Some(c), Some(m)) if matches!(self.resume, Resume::Stream(_)) => (c, m),
            (Some(c), Some(m)) => {
                // no_data without an offset: record the starting position
                // (and the schemas) before streaming, or changes made while
                // the task is down before its first event would be skipped.
                self.schema_only_start(&c, &m.tables, info.server_id)
                    .await?;
                (c, m)
            }
            _ => {
                // Snapshot.
                let mut started = snapshot::start(config, &info).await?;
                if let Some(earlier) = self.replay_from().await? {
                    // An earlier run sent part of a snapshot, or a stream,
                    // from there: a row deleted since is downstream and in
                    // no read of this snapshot, and only the binlog from
                    // there brings its delete. The changes between come
                    // again after the reads, repeating them in order.
                    tracing::info!(file = %earlier.file, pos = earlier.pos, "taking the snapshot again; the stream after it starts where the earlier run stood");
                    started.position.file = earlier.file.as_str().into();
                    started.position.pos = earlier.pos;
                    started.position.gtids = earlier.gtids.as_str().into();
                }
                let position = started.position.clone();
                // Stored before any row is sent: a task stopped or killed
                // inside the snapshot finds where it stood, and streams
                // from there after taking it again.
                self.out
                    .checkpoint(
                        Arc::clone(&self.ctx.partition),
                        offset::offset(&position, SnapshotMark::Snapshot { last: false }),
                    )
                    .await?;
                let model = Model::new(config, started.tables.clone());
                let lead = self.snapshot_lead(&started.tables, &position);
                let finished = snapshot::read(
                    config,
                    &self.ctx,
                    started,
                    &model.schemas,
                    lead,
                    &self.out,
                    &self.progress,
                )
                .await?;
                tracing::info!(rows = finished.rows, file = %position.file, pos = position.pos, "snapshot done");
                if config.snapshot_mode == SnapshotMode::InitialOnly {
                    self.progress
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .phase = "done";
                    return Ok(());
                }
                (
                    Cursor {
                        file: position.file.to_string(),
                        pos: position.pos,
                        event: 0,
                        row: 0,
                        gtids: position.gtids.to_string(),
                    },
                    model,
                )
            }
        };
        let mut attempt = 0u32;
        loop {
            let before = cursor.clone();
            let mut streamer = Streamer {
                config,
                ctx: &self.ctx,
                info: &info,
                out: &self.out,
                progress: &self.progress,
                model: &mut model,
                cursor: &mut cursor,
            };
            match streamer.run(history_at.clone()).await {
                Ok(()) => return Ok(()),
                Err(e) if e.is_retriable() => {
                    if cursor != before {
                        attempt = 0;
                    }
                    tracing::warn!(error = %e, file = %cursor.file, pos = cursor.pos, "binlog stream interrupted; reconnecting");
                    tokio::time::sleep(setup::backoff(attempt)).await;
                    attempt = attempt.saturating_add(1);
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Where the stream after a snapshot taken again must start: where the
    /// cut-short snapshot stood, or (`snapshot.mode=always`) where the
    /// stream stopped — while the server still has that binlog file.
    async fn replay_from(&self) -> Result<Option<Cursor>, ConnectorError> {
        let earlier = match &self.resume {
            Resume::SnapshotIncomplete(Some(at)) => at,
            Resume::Stream(at) if self.config.snapshot_mode == SnapshotMode::Always => at,
            _ => return Ok(None),
        };
        let mut conn = setup::connect(&self.config).await?;
        let files = setup::binlog_files(&mut conn).await;
        let _ = conn.disconnect().await;
        if files?.contains(&earlier.file) {
            return Ok(Some(earlier.clone()));
        }
        tracing::warn!(file = %earlier.file, "the binlog file where the earlier run stood is purged: the stream starts at the new snapshot's position, and a row deleted before it whose delete was never sent stays downstream");
        Ok(None)
    }

    /// Emits what a schema-only snapshot gives (history, schema-change
    /// events) with the streaming start as a completed snapshot's offset;
    /// a heartbeat carries that offset when nothing else would.
    async fn schema_only_start(
        &self,
        cursor: &Cursor,
        tables: &Tables,
        server_id: u32,
    ) -> Result<(), ConnectorError> {
        let position = BinlogPosition {
            file: cursor.file.as_str().into(),
            pos: cursor.pos,
            gtids: cursor.gtids.as_str().into(),
            server_id,
            ts_sec: snapshot::now_us() / 1_000_000,
            ..BinlogPosition::default()
        };
        let mut lead = self.snapshot_lead(tables, &position);
        let completed = serde_json::json!(true);
        let start = match lead
            .iter_mut()
            .rev()
            .find(|r| Arc::ptr_eq(&r.partition, &self.ctx.partition))
        {
            Some(last) => {
                last.offset.insert("snapshot_completed".into(), completed);
                last.offset.clone()
            }
            None => {
                let mut offset = offset::offset(&position, SnapshotMark::Snapshot { last: true });
                offset.insert("snapshot_completed".into(), completed);
                lead.push(self.ctx.heartbeat(offset.clone(), snapshot::now_us()));
                offset
            }
        };
        self.out.emit(lead).await?;
        // Streaming begins once the starting position is stored. Carried
        // by the records above alone, it was stored at the next offset
        // flush, and a task stopped or killed before that started afresh
        // at the binlog's end, skipping the changes made meanwhile.
        self.out
            .checkpoint(Arc::clone(&self.ctx.partition), start)
            .await
    }

    /// The history record and schema-change events that open a snapshot.
    fn snapshot_lead(&self, tables: &Tables, position: &BinlogPosition) -> Vec<SourceRecord> {
        let mut lead = vec![events::history(
            &self.ctx,
            &self.config.history_topic,
            tables,
            "-- snapshot",
            "",
            position,
        )];
        if self.config.include_schema_changes {
            for def in tables.values() {
                let ddl = format!("CREATE TABLE `{}`.`{}` (...)", def.database, def.name);
                lead.push(events::schema_change(
                    &self.ctx,
                    &def.database,
                    &ddl,
                    &[TableChange {
                        kind: "CREATE",
                        id: def.id(),
                        table: Some(def),
                    }],
                    position,
                    SnapshotMark::Snapshot { last: false },
                ));
            }
        }
        lead
    }

    /// Connects, checks the server, and decides between snapshot and
    /// streaming from the stored position. Returns the cursor and model
    /// when streaming resumes without a snapshot.
    #[allow(clippy::type_complexity)]
    async fn prepare(
        &self,
    ) -> Result<
        (
            setup::ServerInfo,
            Option<Cursor>,
            Option<Model>,
            Option<(String, u64)>,
        ),
        ConnectorError,
    > {
        let config = &self.config;
        let mut conn = setup::connect(config).await?;
        let info = setup::server_info(&mut conn).await?;
        let tables = crate::catalog::read_tables(&mut conn, &config.filters, None, info.mariadb)
            .await
            .map_err(|e| setup::classify("reading the captured tables", e))?;
        let mut databases: Vec<String> = tables.values().map(|t| t.database.clone()).collect();
        databases.dedup();
        let wants_snapshot = match (&self.resume, config.snapshot_mode) {
            (_, SnapshotMode::Always) => true,
            (Resume::Fresh, SnapshotMode::NoData) => false,
            (Resume::Fresh, _) => true,
            (Resume::SnapshotIncomplete(_), SnapshotMode::NoData) => false,
            (Resume::SnapshotIncomplete(_), _) => true,
            (Resume::Stream(_), _) => false,
        };
        setup::preflight(&mut conn, config, &info, &databases, wants_snapshot).await?;
        tracing::info!(version = %info.version, server_id = info.server_id, tables = tables.len(), snapshot = wants_snapshot, "mysql connected");
        if wants_snapshot {
            let _ = conn.disconnect().await;
            return Ok((info, None, None, None));
        }
        let cursor = match &self.resume {
            Resume::Stream(cursor) => {
                let files = setup::binlog_files(&mut conn).await?;
                if !files.contains(&cursor.file) {
                    if config.snapshot_mode == SnapshotMode::WhenNeeded {
                        tracing::warn!(file = %cursor.file, "the offset's binlog file is purged; snapshot.mode=when_needed takes a new snapshot");
                        let _ = conn.disconnect().await;
                        return Ok((info, None, None, None));
                    }
                    return Err(ConnectorError::fatal(format!(
                        "the binlog file {} the connector's offset points to is no longer on the server (purged); the changes since then cannot be read. Set snapshot.mode=when_needed to take a new snapshot automatically, or reset the connector's offsets and snapshot again",
                        cursor.file
                    )));
                }
                cursor.clone()
            }
            // no_data: start at the current end of the binlog.
            _ => {
                let (file, pos) = setup::current_position(&mut conn).await?;
                Cursor {
                    file,
                    pos,
                    event: 0,
                    row: 0,
                    gtids: setup::gtid_position(&mut conn, info.mariadb).await?,
                }
            }
        };
        let _ = conn.disconnect().await;
        let (model_tables, history_at) = match &self.history {
            Some((stored, at)) => (stored.clone(), Some(at.clone())),
            None => {
                if matches!(self.resume, Resume::Stream(_)) {
                    tracing::warn!(
                        "no stored schema history: using the tables' current definitions"
                    );
                }
                (tables, None)
            }
        };
        Ok((
            info,
            Some(cursor),
            Some(Model::new(config, model_tables)),
            history_at,
        ))
    }
}
