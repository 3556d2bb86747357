//! The pipeline's loop: converted batches taken from the conversion
//! stage and sent; pause, stop and failure handled; the status
//! reported with the task's progress.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sluice_connector_api::{Checkpoint, ConnectorError, RuntimeEnd, TaskProgress, TopicKind};
use tokio::sync::{mpsc, watch};

use super::convert::{Encoded, Prepared, Staged};
use super::{
    set_status, Control, Ended, InFlight, Pipeline, SourceTaskSpec, ACK_POLL, FENCED, FENCE_GRACE,
    PHASE_CHECK,
};
use crate::herder::offset_tracker::OffsetTracker;
use crate::herder::record_sink::{OutRecord, RecordSink, SendError};
use crate::herder::status::{State, TaskStatus};
use crate::herder::RunnerDeps;
use crate::kafka::TopicLayout;
use crate::metrics::{add_elapsed, TaskMetrics};
use crate::transforms::record::SourcePosition;

impl<'a, S: RecordSink> Pipeline<'a, S> {
    pub(super) fn new(
        spec: &'a SourceTaskSpec,
        deps: &'a Arc<RunnerDeps>,
        metrics: &'a Arc<TaskMetrics>,
        sink: &'a S,
    ) -> Result<Self, ConnectorError> {
        let layout_value = |key: &str, default: i32| -> Result<i32, ConnectorError> {
            Ok(spec.config.i64_or(key, i64::from(default))? as i32)
        };
        Ok(Self {
            spec,
            deps,
            metrics,
            sink,
            layout: TopicLayout::data(
                layout_value(
                    "topic.creation.default.partitions",
                    deps.topic_layout.partitions,
                )?,
                layout_value(
                    "topic.creation.default.replication.factor",
                    deps.topic_layout.replication_factor,
                )?,
            ),
            in_flight: VecDeque::new(),
            offsets: OffsetTracker::new(),
            uncommitted: 0,
            last_commit: Instant::now(),
            store_failing: None,
            seen_topics: Default::default(),
            last_topic: String::new(),
            fenced: false,
            commit_each_batch: sink.transactions().is_some()
                && spec.config.get("transaction.boundary").unwrap_or("poll") == "poll",
            commit_interval: match spec.config.get("transaction.boundary.interval.ms") {
                Some(_) if sink.transactions().is_some() => Duration::from_millis(
                    spec.config
                        .i64_or("transaction.boundary.interval.ms", 0)?
                        .max(1) as u64,
                ),
                _ => deps.offset_flush_interval,
            },
            reported_phase: None,
            phase_checked: Instant::now(),
        })
    }

    pub(super) async fn drive(
        &mut self,
        end: &mut RuntimeEnd,
        staged: &mut mpsc::Receiver<Staged>,
        control: &mut watch::Receiver<Control>,
    ) -> Result<Ended, ConnectorError> {
        self.report(State::Running, end);
        loop {
            let wanted = *control.borrow_and_update();
            match wanted {
                Control::Stop | Control::Handover => {
                    self.finish(end).await?;
                    return Ok(Ended::Stopped);
                }
                Control::Pause => {
                    // Not taking batches: the task's emit waits.
                    self.drain_all().await?;
                    self.commit(end).await?;
                    self.report(State::Paused, end);
                    let _ = control.wait_for(|c| *c != Control::Pause).await;
                    self.report(State::Running, end);
                    continue;
                }
                Control::Run => {}
            }
            // Acknowledgements are looked at every few milliseconds while
            // records are in flight (so counters, commits and what the
            // source may release follow the broker closely), else at the
            // next commit.
            let next_commit = self
                .commit_interval
                .saturating_sub(self.last_commit.elapsed());
            let wake = if self.in_flight.is_empty() {
                next_commit.min(PHASE_CHECK)
            } else {
                next_commit.min(ACK_POLL)
            };
            tokio::select! {
                staged = staged.recv() => match staged {
                    Some(_) if !self.deps.placement.owns(self.spec.unit()) => {
                        // Fenced: the batch is not sent, so the stored
                        // offset stays before it for whoever runs next;
                        // what was acknowledged is stored in `salvage`.
                        self.fenced = true;
                        return Err(ConnectorError::retriable(FENCED));
                    }
                    Some(Staged::Checkpoint(checkpoint)) => self.checkpoint(checkpoint, end).await?,
                    Some(Staged::Records(batch)) => {
                        for prepared in batch {
                            match prepared {
                                Prepared::Send(record) => self.send(record).await?,
                                Prepared::Pass(position) => self.pass(position),
                                Prepared::Fail(e) => return Err(e),
                            }
                        }
                        if self.commit_each_batch {
                            // Connect's transaction.boundary=poll: a batch
                            // is one transaction.
                            self.commit(end).await?;
                        }
                    }
                    None => {
                        self.drain_all().await?;
                        self.commit(end).await?;
                        return Ok(Ended::TaskEnded);
                    }
                },
                _ = control.changed() => continue,
                () = tokio::time::sleep(wake) => {}
            }
            self.drain_ready()?;
            if self.last_commit.elapsed() >= self.commit_interval {
                self.periodic_commit(end).await?;
            } else if self.phase_checked.elapsed() >= PHASE_CHECK {
                self.report_new_phase(end);
            }
        }
    }

    /// Reports the status again if the task's phase moved since the
    /// status last showed it (a snapshot ended, say): a user watching
    /// `GET /connectors/{name}/status` for `streaming` should not wait for
    /// the next offset flush.
    fn report_new_phase(&mut self, end: &RuntimeEnd) {
        self.phase_checked = Instant::now();
        let phase = end.progress().and_then(|p| p.phase);
        if phase != self.reported_phase {
            self.report(State::Running, end);
        }
    }

    pub(super) fn report(&mut self, state: State, end: &RuntimeEnd) {
        let mut status = TaskStatus::new(state, &self.deps.worker_id);
        if state == State::Running {
            status.trace = self.store_failing.as_ref().map(|(_, why)| why.clone());
        }
        let progress = end.progress();
        self.reported_phase = progress.as_ref().and_then(|p| p.phase);
        self.phase_checked = Instant::now();
        status.progress = progress.map(|p| progress_json(&p));
        self.metrics.record_progress(status.progress.as_ref());
        set_status(self.deps, self.spec, status);
    }

    /// After a failure: stores the offsets of records the broker has
    /// acknowledged, so a restart repeats less. A record that failed, and
    /// everything after it, stays uncommitted.
    /// A fenced task waits only [`FENCE_GRACE`] for either.
    pub(super) async fn salvage(&mut self, end: &RuntimeEnd) {
        if let Some(transactions) = self.sink.transactions() {
            // The open transaction may hold a failed record: none of it
            // counts, and the restart repeats it from the last commit.
            transactions.abort().await;
            return;
        }
        let grace = if self.fenced {
            FENCE_GRACE
        } else {
            self.deps.shutdown_timeout
        };
        let drained = tokio::time::timeout(grace, self.drain_all()).await;
        if !matches!(drained, Ok(Ok(()))) {
            tracing::debug!(connector = %self.spec.connector, "not every sent record was acknowledged before the failure");
        }
        match tokio::time::timeout(grace, self.commit(end)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::warn!(connector = %self.spec.connector, error = %e, "could not store the acknowledged offsets after the failure")
            }
            // The store may still land later: it holds offsets of records the
            // broker acknowledged, so it can only repeat, never lose.
            Err(_) => {
                tracing::warn!(connector = %self.spec.connector, "storing the acknowledged offsets did not finish in time after the fence; the next owner may repeat those records")
            }
        }
    }

    /// Drains, commits and returns, bounded by the shutdown timeout.
    async fn finish(&mut self, end: &RuntimeEnd) -> Result<(), ConnectorError> {
        let timeout = self.deps.shutdown_timeout;
        if let Some(transactions) = self.sink.transactions() {
            return match tokio::time::timeout(timeout, self.commit(end)).await {
                Ok(result) => result,
                Err(_) => {
                    tracing::warn!(connector = %self.spec.connector, task = self.spec.task_id, "shutdown timed out waiting for the broker; the open transaction is aborted and its records are sent again on restart");
                    transactions.abort().await;
                    Ok(())
                }
            };
        }
        match tokio::time::timeout(timeout, self.drain_all()).await {
            Ok(result) => result?,
            Err(_) => tracing::warn!(
                connector = %self.spec.connector,
                task = self.spec.task_id,
                unacknowledged = self.in_flight.len(),
                "shutdown timed out waiting for the broker; those records will be sent again on restart"
            ),
        }
        self.commit(end).await
    }

    /// Stores a task's checkpoint now, in its place after the records
    /// before it, and tells the task. A store that fails ends the task:
    /// it waits on the checkpoint to act on its database.
    async fn checkpoint(
        &mut self,
        checkpoint: Checkpoint,
        end: &RuntimeEnd,
    ) -> Result<(), ConnectorError> {
        self.pass(SourcePosition {
            partition: checkpoint.partition,
            offset: checkpoint.offset,
        });
        self.drain_all().await?;
        self.commit(end).await?;
        // A task that stopped waiting has ended; nothing to tell it.
        let _ = checkpoint.stored.send(());
        Ok(())
    }

    /// Records that `position` is handled without anything sent for it (a
    /// transform dropped the record, or `errors.tolerance=all` skipped it),
    /// so its offset moves in turn with the records around it.
    fn pass(&mut self, position: SourcePosition) {
        let ticket = self.offsets.submit(position.partition, position.offset);
        self.in_flight.push_back(InFlight {
            ticket,
            delivery: None,
            bytes: 0,
        });
    }

    /// Hands `record` to the sink and books it as in flight; waits for
    /// acknowledgements while too many are.
    async fn send(&mut self, record: Encoded) -> Result<(), ConnectorError> {
        let history = record.topic_kind == TopicKind::SchemaHistory;
        if *record.topic != *self.last_topic && !self.seen_topics.contains(record.topic.as_str()) {
            let layout = if history {
                self.layout.schema_history()
            } else {
                self.layout
            };
            self.sink
                .ensure_topic(&record.topic, layout)
                .await
                .map_err(|e| {
                    ConnectorError::retriable(format!(
                        "cannot create topic {}: {e}; check that the broker is reachable and allows topic creation",
                        record.topic
                    ))
                })?;
            if !history {
                // Connect lists the topics its producer wrote, which the
                // history producer is not.
                self.deps.note_topic(&self.spec.connector, &record.topic);
            }
            self.seen_topics.insert(record.topic.to_string());
        }
        if *record.topic != *self.last_topic {
            record.topic.as_str().clone_into(&mut self.last_topic);
        }
        let bytes =
            record.key.as_ref().map_or(0, Vec::len) + record.value.as_ref().map_or(0, Vec::len);
        let out = OutRecord {
            topic: &record.topic,
            key: record.key.as_deref(),
            value: record.value.as_deref(),
            partition: record.kafka_partition,
            timestamp_ms: record.timestamp_ms,
            headers: &record.headers,
        };
        let mut full_since = None;
        let delivery = loop {
            match self.sink.send(out) {
                Ok(delivery) => break delivery,
                Err(SendError::QueueFull) => {
                    full_since.get_or_insert_with(Instant::now);
                    if !self.retire_front().await? {
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                }
                Err(SendError::TooLarge) => {
                    return Err(ConnectorError::fatal(format!(
                        "a record for topic {} is {bytes} bytes, more than the producer may send (message.max.bytes, 1048576 by default as Kafka's max.request.size); raise it on the worker (--producer-property message.max.bytes=N) or for this connector (producer.override.message.max.bytes=N), with the topic's max.message.bytes on the broker; no offset moved past this record",
                        record.topic
                    )))
                }
                Err(SendError::Failed(e)) => {
                    return Err(ConnectorError::retriable(format!(
                        "producing to {} failed: {e}",
                        record.topic
                    )))
                }
            }
        };
        if let Some(since) = full_since {
            add_elapsed(&self.metrics.broker_wait_nanos, since);
        }
        let ticket = self.offsets.submit(record.partition, record.offset);
        self.in_flight.push_back(InFlight {
            ticket,
            delivery: Some(delivery),
            bytes,
        });
        self.metrics.in_flight.fetch_add(1, Ordering::Relaxed);
        if self.in_flight.len() >= self.deps.max_in_flight {
            let since = Instant::now();
            while self.in_flight.len() >= self.deps.max_in_flight {
                self.retire_front().await?;
            }
            add_elapsed(&self.metrics.broker_wait_nanos, since);
        }
        Ok(())
    }
}

/// A task's typed progress as the `progress` member of its status (the
/// shape `/metrics` and `sluice status` read): `phase`, `snapshot` per
/// table with rows and the estimate, then the task's named positions.
pub(super) fn progress_json(progress: &TaskProgress) -> serde_json::Value {
    let mut out = serde_json::Map::new();
    if let Some(phase) = progress.phase {
        out.insert("phase".into(), phase.into());
        let tables = progress
            .snapshot
            .iter()
            .map(|t| {
                (
                    t.table.clone(),
                    serde_json::json!({"rows": t.rows, "estimated_rows": t.estimated_rows}),
                )
            })
            .collect();
        out.insert("snapshot".into(), serde_json::Value::Object(tables));
    }
    for (name, value) in &progress.positions {
        out.insert((*name).into(), value.clone());
    }
    serde_json::Value::Object(out)
}
