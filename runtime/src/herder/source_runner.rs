//! Runs one source task: poll, convert, produce, and store offsets only
//! once everything before them is acknowledged by the broker.
//!
//! Records are tracked in send order in a bounded queue. The front of the
//! queue is retired as its delivery report arrives, so the stored offset is
//! always the offset of a record whose predecessors are all durable: a crash
//! can repeat the unacknowledged tail, never skip it.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_channel::oneshot::Canceled;
use futures_util::FutureExt;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::future_producer::OwnedDeliveryResult;
use rdkafka::producer::{DeliveryFuture, FutureRecord};
use sluice_connector_api::{
    ConnectorConfig, ConnectorError, SourceConnector, SourceOffset, SourcePartition, SourceRecord,
    SourceTask, SourceTaskContext, StopReason,
};
use tokio::sync::watch;

use super::status::{State, TaskStatus};
use super::RunnerDeps;
use crate::converter::{self, ConvertError, Converter, Side};
use crate::kafka::TopicLayout;
use crate::metrics::TaskMetrics;

/// What the herder wants a task runner to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// Work.
    Run,
    /// Stay connected but idle, with everything sent committed.
    Pause,
    /// Finish: drain, commit, stop.
    Stop,
}

/// Everything a runner needs to know about its task.
pub struct SourceTaskSpec {
    /// The connector name.
    pub connector: String,
    /// The task number.
    pub task_id: u32,
    /// The task's configuration with secrets resolved.
    pub config: ConnectorConfig,
    /// The plugin that makes the task.
    pub plugin: Arc<dyn SourceConnector>,
}

/// Runs the task until told to stop, restarting it with exponential backoff
/// after retriable failures and parking it FAILED after fatal ones.
pub async fn run(spec: SourceTaskSpec, deps: Arc<RunnerDeps>, control: watch::Receiver<Control>) {
    let metrics = deps.metrics.task(&spec.connector, spec.task_id);
    super::supervise::supervise(
        &spec.connector,
        spec.task_id,
        &deps,
        control,
        |mut control| {
            let (spec, deps, metrics) = (&spec, &deps, &metrics);
            async move { run_once(spec, deps, metrics, &mut control).await }
        },
    )
    .await;
}

fn set_status(deps: &RunnerDeps, spec: &SourceTaskSpec, status: TaskStatus) {
    deps.metrics
        .set_state(&spec.connector, spec.task_id, status.state);
    deps.status.put_task(&spec.connector, spec.task_id, status);
}

async fn run_once(
    spec: &SourceTaskSpec,
    deps: &Arc<RunnerDeps>,
    metrics: &Arc<TaskMetrics>,
    control: &mut watch::Receiver<Control>,
) -> Result<(), ConnectorError> {
    let stored = deps
        .offsets
        .get(&spec.connector)
        .map_err(|e| ConnectorError::retriable(format!("reading stored offsets: {e}")))?;
    let mut task = spec.plugin.create_task();
    if let Err(e) = task
        .start(&spec.config, SourceTaskContext { offsets: stored })
        .await
    {
        task.stop(StopReason::Failed).await;
        return Err(e);
    }
    tracing::info!(connector = %spec.connector, task = spec.task_id, "task started");
    let result = match Pipeline::new(spec, deps, metrics, control.clone()) {
        Ok(mut pipeline) => {
            let result = pipeline.drive(task.as_mut(), control).await;
            if result.is_err() {
                pipeline.salvage(task.as_mut()).await;
            }
            result
        }
        Err(e) => Err(e),
    };
    let reason = if result.is_ok() {
        StopReason::Requested
    } else {
        StopReason::Failed
    };
    task.stop(reason).await;
    tracing::info!(connector = %spec.connector, task = spec.task_id, ok = result.is_ok(), "task stopped");
    result
}

/// Encoded key and value; `None` is a null key or a tombstone.
type EncodedRecord = (Option<Vec<u8>>, Option<Vec<u8>>);

/// A sent record waiting for its delivery report.
struct InFlight {
    /// `None` for a record skipped under `errors.tolerance=all`.
    delivery: Option<DeliveryFuture>,
    bytes: usize,
    partition: Arc<SourcePartition>,
    offset: SourceOffset,
}

/// The produce side of one running task.
struct Pipeline<'a> {
    spec: &'a SourceTaskSpec,
    deps: &'a Arc<RunnerDeps>,
    metrics: &'a Arc<TaskMetrics>,
    key_converter: Arc<dyn Converter>,
    value_converter: Arc<dyn Converter>,
    tolerate_errors: bool,
    layout: TopicLayout,
    in_flight: VecDeque<InFlight>,
    /// The newest acknowledged offset per partition, not yet stored, keyed
    /// by the partition's address: tasks share one `Arc` per partition, and
    /// hashing the map itself for every record would dominate the cost.
    /// The `u64` is the settle order, so equal partitions behind different
    /// `Arc`s resolve to the newest offset.
    acked: BTreeMap<usize, (u64, Arc<SourcePartition>, SourceOffset)>,
    settled: u64,
    uncommitted: i64,
    last_commit: Instant,
    seen_topics: std::collections::HashSet<String>,
    /// Watched while waiting for the registry, to give up on stop.
    control: watch::Receiver<Control>,
}

impl<'a> Pipeline<'a> {
    fn new(
        spec: &'a SourceTaskSpec,
        deps: &'a Arc<RunnerDeps>,
        metrics: &'a Arc<TaskMetrics>,
        control: watch::Receiver<Control>,
    ) -> Result<Self, ConnectorError> {
        let config = &spec.config.0;
        let converter = |side| {
            converter::build(side, config, &deps.converter_defaults).map_err(|e| {
                ConnectorError::Config(sluice_connector_api::ConfigError::new(e.key, e.message))
            })
        };
        let layout_value = |key: &str, default: i32| -> Result<i32, ConnectorError> {
            Ok(spec.config.i64_or(key, i64::from(default))? as i32)
        };
        Ok(Self {
            spec,
            deps,
            metrics,
            key_converter: converter(Side::Key)?,
            value_converter: converter(Side::Value)?,
            tolerate_errors: spec.config.get("errors.tolerance") == Some("all"),
            layout: TopicLayout {
                partitions: layout_value(
                    "topic.creation.default.partitions",
                    deps.topic_layout.partitions,
                )?,
                replication_factor: layout_value(
                    "topic.creation.default.replication.factor",
                    deps.topic_layout.replication_factor,
                )?,
            },
            in_flight: VecDeque::new(),
            acked: BTreeMap::new(),
            uncommitted: 0,
            last_commit: Instant::now(),
            seen_topics: Default::default(),
            settled: 0,
            control,
        })
    }

    async fn drive(
        &mut self,
        task: &mut dyn SourceTask,
        control: &mut watch::Receiver<Control>,
    ) -> Result<(), ConnectorError> {
        self.report(State::Running, task);
        loop {
            let wanted = *control.borrow_and_update();
            match wanted {
                Control::Stop => return self.finish(task).await,
                Control::Pause => {
                    self.drain_all().await?;
                    self.commit(task).await?;
                    self.report(State::Paused, task);
                    let _ = control.wait_for(|c| *c != Control::Pause).await;
                    self.report(State::Running, task);
                    continue;
                }
                Control::Run => {}
            }
            // Cancelling poll only on stop is safe: nothing it held was
            // committed, so the next start reads it again.
            let batch = tokio::select! {
                batch = task.poll() => batch?,
                _ = control.wait_for(|c| *c == Control::Stop) => continue,
            };
            self.metrics
                .records_polled
                .fetch_add(batch.len() as u64, Ordering::Relaxed);
            for record in batch {
                self.send(record).await?;
            }
            self.drain_ready()?;
            if self.last_commit.elapsed() >= self.deps.offset_flush_interval {
                self.commit(task).await?;
                self.report(State::Running, task);
            }
        }
    }

    fn report(&self, state: State, task: &dyn SourceTask) {
        let mut status = TaskStatus::new(state, &self.deps.worker_id);
        status.progress = task.progress();
        self.metrics.record_progress(status.progress.as_ref());
        set_status(self.deps, self.spec, status);
    }

    /// After a failure: stores the offsets of records the broker has
    /// acknowledged, so a restart repeats less. A record that failed, and
    /// everything after it, stays uncommitted.
    async fn salvage(&mut self, task: &mut dyn SourceTask) {
        let drained = tokio::time::timeout(self.deps.shutdown_timeout, self.drain_all()).await;
        if !matches!(drained, Ok(Ok(()))) {
            tracing::debug!(connector = %self.spec.connector, "not every sent record was acknowledged before the failure");
        }
        if let Err(e) = self.commit(task).await {
            tracing::warn!(connector = %self.spec.connector, error = %e, "could not store the acknowledged offsets after the failure");
        }
    }

    /// Drains, commits and returns, bounded by the shutdown timeout.
    async fn finish(&mut self, task: &mut dyn SourceTask) -> Result<(), ConnectorError> {
        let timeout = self.deps.shutdown_timeout;
        match tokio::time::timeout(timeout, self.drain_all()).await {
            Ok(result) => result?,
            Err(_) => tracing::warn!(
                connector = %self.spec.connector,
                task = self.spec.task_id,
                unacknowledged = self.in_flight.len(),
                "shutdown timed out waiting for the broker; those records will be sent again on restart"
            ),
        }
        self.commit(task).await
    }

    async fn send(&mut self, record: SourceRecord) -> Result<(), ConnectorError> {
        let converted = self.convert(&record).await;
        let (key, value) = match converted {
            Ok(kv) => kv,
            Err((_, e)) if self.tolerate_errors && e.is_record_error() => {
                self.metrics.errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(connector = %self.spec.connector, topic = %record.topic, error = %e, "record skipped (errors.tolerance=all)");
                self.in_flight.push_back(InFlight {
                    delivery: None,
                    bytes: 0,
                    partition: record.partition,
                    offset: record.offset,
                });
                return Ok(());
            }
            Err((side, e)) => {
                let side = match side {
                    Side::Key => "key",
                    Side::Value => "value",
                };
                let message = format!(
                    "connector {} task {}: cannot convert the {side} of a record for topic {}: {e}",
                    self.spec.connector, self.spec.task_id, record.topic
                );
                return Err(if e.is_retriable() {
                    ConnectorError::retriable(message)
                } else {
                    ConnectorError::fatal(message)
                });
            }
        };
        if !self.seen_topics.contains(&record.topic) {
            self.deps
                .topics
                .ensure(&record.topic, self.layout)
                .await
                .map_err(|e| {
                    ConnectorError::retriable(format!(
                        "cannot create topic {}: {e}; check that the broker is reachable and allows topic creation",
                        record.topic
                    ))
                })?;
            self.deps.note_topic(&self.spec.connector, &record.topic);
            self.seen_topics.insert(record.topic.clone());
        }
        let bytes = key.as_ref().map_or(0, Vec::len) + value.as_ref().map_or(0, Vec::len);
        let headers = (!record.headers.is_empty()).then(|| {
            record
                .headers
                .iter()
                .fold(OwnedHeaders::new(), |h, (k, v)| {
                    h.insert(Header {
                        key: k,
                        value: Some(v),
                    })
                })
        });
        let delivery = loop {
            let mut out = FutureRecord::<[u8], [u8]>::to(&record.topic);
            if let Some(k) = &key {
                out = out.key(k.as_slice());
            }
            if let Some(v) = &value {
                out = out.payload(v.as_slice());
            }
            if let Some(p) = record.kafka_partition {
                out = out.partition(p);
            }
            if let Some(ts) = record.timestamp_ms {
                out = out.timestamp(ts);
            }
            if let Some(h) = &headers {
                out = out.headers(h.clone());
            }
            match self.deps.producer.send_result(out) {
                Ok(delivery) => break delivery,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                    if !self.retire_front().await? {
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                }
                Err((e, _)) => {
                    return Err(ConnectorError::retriable(format!(
                        "producing to {} failed: {e}",
                        record.topic
                    )))
                }
            }
        };
        // The record is no longer borrowed, so its offset moves, not copies.
        self.in_flight.push_back(InFlight {
            delivery: Some(delivery),
            bytes,
            partition: record.partition,
            offset: record.offset,
        });
        self.metrics.in_flight.fetch_add(1, Ordering::Relaxed);
        while self.in_flight.len() >= self.deps.max_in_flight {
            self.retire_front().await?;
        }
        Ok(())
    }

    /// Encodes key and value, resolving new schemas with the registry.
    async fn convert(&self, record: &SourceRecord) -> Result<EncodedRecord, (Side, ConvertError)> {
        let key = self
            .encode_side(Side::Key, record)
            .await
            .map_err(|e| (Side::Key, e))?;
        let value = self
            .encode_side(Side::Value, record)
            .await
            .map_err(|e| (Side::Value, e))?;
        Ok((key, value))
    }

    async fn encode_side(
        &self,
        side: Side,
        record: &SourceRecord,
    ) -> Result<Option<Vec<u8>>, ConvertError> {
        let (converter, schema, value) = match side {
            Side::Key => (&self.key_converter, &record.key_schema, &record.key),
            Side::Value => (&self.value_converter, &record.value_schema, &record.value),
        };
        let mut backoff = Duration::from_millis(500);
        loop {
            match converter.encode(&record.topic, schema.as_ref(), value.as_ref()) {
                Err(ConvertError::Unresolved) => {}
                done => return done,
            }
            let Some(schema) = schema else {
                return Err(ConvertError::Unresolved);
            };
            let (converter, topic, schema) = (
                Arc::clone(converter),
                record.topic.clone(),
                Arc::clone(schema),
            );
            let resolved = tokio::task::spawn_blocking(move || converter.resolve(&topic, &schema))
                .await
                .unwrap_or_else(|e| {
                    Err(ConvertError::Mismatch {
                        path: String::new(),
                        message: format!("schema resolution was interrupted: {e}"),
                    })
                });
            match resolved {
                Ok(()) => continue,
                // The registry is down: wait and retry with the record in
                // hand, so nothing is dropped and nothing later overtakes it.
                Err(e) if e.is_retriable() => {
                    tracing::warn!(connector = %self.spec.connector, task = self.spec.task_id, topic = %record.topic, retry_in_ms = backoff.as_millis() as u64, error = %e, "waiting for the schema registry");
                    let mut control = self.control.clone();
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = control.wait_for(|c| *c == Control::Stop) => return Err(e),
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Waits for the oldest record's delivery report; false if none is pending.
    async fn retire_front(&mut self) -> Result<bool, ConnectorError> {
        let Some(mut front) = self.in_flight.pop_front() else {
            return Ok(false);
        };
        if let Some(delivery) = front.delivery.take() {
            let outcome = delivery.await;
            self.settle(front, Some(outcome))?;
        } else {
            self.settle(front, None)?;
        }
        Ok(true)
    }

    /// Retires every record at the front whose report has already arrived.
    fn drain_ready(&mut self) -> Result<(), ConnectorError> {
        while let Some(front) = self.in_flight.front_mut() {
            let outcome = match front.delivery.as_mut() {
                None => None,
                Some(delivery) => match delivery.now_or_never() {
                    None => return Ok(()),
                    Some(outcome) => Some(outcome),
                },
            };
            let front = self
                .in_flight
                .pop_front()
                .ok_or_else(|| ConnectorError::fatal("in-flight queue emptied underneath"))?;
            self.settle(front, outcome)?;
        }
        Ok(())
    }

    async fn drain_all(&mut self) -> Result<(), ConnectorError> {
        while self.retire_front().await? {}
        Ok(())
    }

    /// Books one delivery outcome; a failed delivery fails the task before
    /// its offset (or any later one) can be stored.
    fn settle(
        &mut self,
        record: InFlight,
        outcome: Option<Result<OwnedDeliveryResult, Canceled>>,
    ) -> Result<(), ConnectorError> {
        if let Some(outcome) = outcome {
            self.metrics.in_flight.fetch_sub(1, Ordering::Relaxed);
            match outcome {
                Ok(Ok(_)) => {
                    self.metrics.records_produced.fetch_add(1, Ordering::Relaxed);
                    self.metrics
                        .bytes_produced
                        .fetch_add(record.bytes as u64, Ordering::Relaxed);
                }
                Ok(Err((e, _))) => {
                    return Err(ConnectorError::retriable(format!(
                        "the broker did not acknowledge a record: {e}; its offset and all later ones stay uncommitted and are re-sent"
                    )))
                }
                Err(_) => {
                    return Err(ConnectorError::retriable(
                        "the producer was shut down before a record was acknowledged",
                    ))
                }
            }
        }
        let key = Arc::as_ptr(&record.partition) as usize;
        self.settled += 1;
        self.acked
            .insert(key, (self.settled, record.partition, record.offset));
        self.uncommitted += 1;
        self.metrics
            .uncommitted
            .store(self.uncommitted, Ordering::Relaxed);
        Ok(())
    }

    /// Stores the acknowledged offsets, then tells the task they are durable.
    async fn commit(&mut self, task: &mut dyn SourceTask) -> Result<(), ConnectorError> {
        self.last_commit = Instant::now();
        if self.acked.is_empty() {
            return Ok(());
        }
        let mut newest: Vec<_> = std::mem::take(&mut self.acked).into_values().collect();
        newest.sort_by_key(|(order, _, _)| std::cmp::Reverse(*order));
        let mut entries: Vec<(SourcePartition, SourceOffset)> = Vec::with_capacity(newest.len());
        for (_, partition, offset) in newest {
            if !entries.iter().any(|(p, _)| *p == *partition) {
                entries.push(((*partition).clone(), offset));
            }
        }
        let writes: Vec<_> = entries
            .iter()
            .map(|(p, o)| (p.clone(), Some(o.clone())))
            .collect();
        let store = Arc::clone(&self.deps.offsets);
        let connector = self.spec.connector.clone();
        tokio::task::spawn_blocking(move || store.put(&connector, &writes))
            .await
            .map_err(|e| ConnectorError::retriable(format!("offset commit was interrupted: {e}")))?
            .map_err(|e| ConnectorError::retriable(format!("storing offsets: {e}")))?;
        self.uncommitted = 0;
        self.metrics.uncommitted.store(0, Ordering::Relaxed);
        self.metrics.offset_commits.fetch_add(1, Ordering::Relaxed);
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        self.metrics.last_commit_ms.store(now_ms, Ordering::Relaxed);
        task.commit(&entries).await
    }
}
