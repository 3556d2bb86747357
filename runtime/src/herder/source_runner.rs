//! Runs one source task: the task pushes batches through its context;
//! the runner converts and produces them, and stores an offset only once
//! its record and everything before it are acknowledged by the broker
//! (the rule lives in [`OffsetTracker`]); the task then learns which
//! offsets are durable, so a database may release its log up to them.
//!
//! A slow broker fills the bounded queue of in-flight records; the runner
//! then waits, stops taking batches, and the task's `emit` waits in turn.
//! A crash repeats the unacknowledged tail, never skips it.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::FutureExt;
use sluice_connector_api::{
    source_context, ConnectorConfig, ConnectorError, RuntimeEnd, SourceConnector, SourceOffset,
    SourcePartition, SourceRecord, SourceTask, StopReason, TaskProgress,
};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::offset_tracker::{OffsetTracker, Ticket};
use super::record_sink::{
    KafkaRecordSink, OutRecord, RecordSink, SendError, TransactionError, Transactions,
};
use super::status::{State, TaskStatus};
use super::transactional_sink::KafkaTransactionalSink;
use super::RunnerDeps;
use crate::converter::{self, ConvertError, Converter, Side};
use crate::kafka::TopicLayout;
use crate::metrics::TaskMetrics;
use crate::transforms::record::SourcePosition;
use crate::transforms::{Chain, Record};

/// How often acknowledgements are collected while the task is quiet and
/// records are in flight.
const ACK_POLL: Duration = Duration::from_millis(20);

/// What the herder wants a task runner to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// Work.
    Run,
    /// Stay connected but idle, with everything sent committed.
    Pause,
    /// Finish: drain, commit, stop.
    Stop,
    /// Finish as for `Stop`, to run again on another worker of the group:
    /// nothing the connector keeps for its next run may be released.
    Handover,
}

impl Control {
    /// Whether the runner must finish.
    pub fn is_stop(self) -> bool {
        matches!(self, Self::Stop | Self::Handover)
    }
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
    // Validated with the connector's config; a bad value falls back to
    // retrying for ever rather than never running the task.
    let policy = super::supervise::RetryPolicy::from_config(&spec.config).unwrap_or_default();
    super::supervise::supervise(
        &spec.connector,
        spec.task_id,
        &deps,
        control,
        policy,
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

/// How long a fenced task still waits for acknowledgements and for its
/// offsets to be stored: a worker cut off from the broker would otherwise
/// wait out the delivery and store timeouts, task after task, before the
/// group's upkeep (rejoining once the link heals) could go on.
const FENCE_GRACE: Duration = Duration::from_secs(2);

/// How often a task waiting for acknowledgements checks that the worker
/// still holds the connector.
const FENCE_CHECK: Duration = Duration::from_millis(500);

/// Why a task stopped writing on a worker that lost its share.
const FENCED: &str = "this worker lost its lease on the group of workers (cut off from the broker, or stalled): it stopped writing before another worker takes the connector over";

async fn run_once(
    spec: &SourceTaskSpec,
    deps: &Arc<RunnerDeps>,
    metrics: &Arc<TaskMetrics>,
    control: &mut watch::Receiver<Control>,
) -> Result<(), ConnectorError> {
    if !deps.placement.owns(&spec.connector) {
        return Err(ConnectorError::retriable(FENCED));
    }
    let overrides = crate::kafka::overrides::overrides(
        &spec.config,
        crate::kafka::overrides::Client::Producer,
        deps.override_policy,
    )?;
    if let Some(target) = &deps.exactly_once {
        // Each task has a transactional producer of its own.
        let mut settings = deps.kafka.clone();
        settings.producer_overrides.extend(overrides);
        let sink = KafkaTransactionalSink::start(
            &settings,
            &deps.topics,
            target,
            &spec.connector,
            spec.task_id,
        )
        .await
        .map_err(|e| match e {
            TransactionError::Unsupported(_) => ConnectorError::fatal(e.to_string()),
            _ => ConnectorError::retriable(e.to_string()),
        })?;
        let result = run_once_into(spec, deps, metrics, control, &sink).await;
        // Whatever a failure left open is not committed.
        sink.abort().await;
        return result;
    }
    // A connector with producer.override.* gets a producer of its own;
    // the others share the worker's.
    let own = if overrides.is_empty() {
        None
    } else {
        let mut settings = deps.kafka.clone();
        settings.producer_overrides.extend(overrides);
        Some(crate::kafka::build_producer(&settings).map_err(|e| {
            ConnectorError::fatal(format!(
                "creating the connector's producer with its producer.override.* settings: {e}"
            ))
        })?)
    };
    let sink = KafkaRecordSink::new(own.as_ref().unwrap_or(&deps.producer), &deps.topics);
    run_once_into(spec, deps, metrics, control, &sink).await
}

/// A task running in the background; gives the task back when it ends.
type RunningTask = JoinHandle<(Box<dyn SourceTask>, Result<(), ConnectorError>)>;

/// How the runner's loop ended without an error.
enum Ended {
    /// The herder asked it to stop.
    Stopped,
    /// The task's `run` returned (its context was dropped).
    TaskEnded,
}

/// One run of the task into `sink`: start it, run the pipeline, end both.
async fn run_once_into<S: RecordSink>(
    spec: &SourceTaskSpec,
    deps: &Arc<RunnerDeps>,
    metrics: &Arc<TaskMetrics>,
    control: &mut watch::Receiver<Control>,
    sink: &S,
) -> Result<(), ConnectorError> {
    let stored = deps
        .offsets
        .get(&spec.connector)
        .map_err(|e| ConnectorError::retriable(format!("reading stored offsets: {e}")))?;
    let queued = sluice_connector_api::source_settings::queued_batches(&spec.config);
    let (context, mut end) = source_context(stored, queued);
    let mut pipeline = Pipeline::new(spec, deps, metrics, control.clone(), sink)?;
    let mut task = spec.plugin.create_task();
    let config = spec.config.clone();
    let mut running: RunningTask = tokio::spawn(async move {
        let result = task.run(&config, context).await;
        (task, result)
    });
    tracing::info!(connector = %spec.connector, task = spec.task_id, "task started");
    let driven = pipeline.drive(&mut end, control).await;
    if driven.is_err() {
        pipeline.salvage(&end).await;
    }
    // Ask the task to end and stop taking its records.
    end.request_shutdown();
    end.records.close();
    let (task, task_result) = join_task(&mut running, deps.shutdown_timeout).await;
    let result = match (driven, task_result) {
        (Err(e), _) => Err(e),
        (Ok(_), Err(e)) => Err(e),
        (Ok(Ended::Stopped), Ok(())) => Ok(()),
        (Ok(Ended::TaskEnded), Ok(())) => {
            // Finished (a snapshot-only run): idle, RUNNING, until stopped.
            pipeline.report(State::Running, &end);
            let _ = control.wait_for(|c| c.is_stop()).await;
            Ok(())
        }
    };
    if let Some(mut task) = task {
        let reason = match (result.is_ok(), *control.borrow()) {
            (false, _) => StopReason::Failed,
            (true, Control::Handover) => StopReason::Handover,
            (true, _) => StopReason::Requested,
        };
        task.stop(reason).await;
    }
    tracing::info!(connector = %spec.connector, task = spec.task_id, ok = result.is_ok(), "task stopped");
    result
}

/// Waits for the task's `run` to return after shutdown was requested;
/// aborts it after `timeout`. A panic in the task is a retriable error
/// (the task restarts from its stored offsets), never silence.
async fn join_task(
    running: &mut RunningTask,
    timeout: Duration,
) -> (Option<Box<dyn SourceTask>>, Result<(), ConnectorError>) {
    match tokio::time::timeout(timeout, &mut *running).await {
        Ok(Ok((task, result))) => (Some(task), result),
        Ok(Err(e)) if e.is_panic() => (
            None,
            Err(ConnectorError::retriable(format!(
                "the task panicked (a bug; the worker log has it): {e}; it restarts from its stored offsets"
            ))),
        ),
        Ok(Err(e)) => (
            None,
            Err(ConnectorError::retriable(format!("the task ended: {e}"))),
        ),
        Err(_) => {
            running.abort();
            tracing::warn!("the task did not end within the shutdown timeout; aborted");
            (None, Ok(()))
        }
    }
}

/// Encoded key and value; `None` is a null key or a tombstone.
type EncodedRecord = (Option<Vec<u8>>, Option<Vec<u8>>);

/// A sent record waiting for its delivery report.
struct InFlight<D> {
    ticket: Ticket,
    /// `None` for a record skipped under `errors.tolerance=all`.
    delivery: Option<D>,
    bytes: usize,
}

/// The produce side of one running task.
struct Pipeline<'a, S: RecordSink> {
    spec: &'a SourceTaskSpec,
    deps: &'a Arc<RunnerDeps>,
    metrics: &'a Arc<TaskMetrics>,
    sink: &'a S,
    key_converter: Arc<dyn Converter>,
    value_converter: Arc<dyn Converter>,
    transforms: Chain,
    tolerate_errors: bool,
    layout: TopicLayout,
    /// Sent records in send order, retired from the front as their
    /// reports arrive.
    in_flight: VecDeque<InFlight<S::Delivery>>,
    offsets: OffsetTracker,
    uncommitted: i64,
    last_commit: Instant,
    /// Since when, and why, the offset store refuses the periodic flush.
    store_failing: Option<(Instant, String)>,
    /// Topics known to exist; consulted only when a record's topic
    /// differs from the one before (most runs of records share one).
    seen_topics: std::collections::HashSet<String>,
    last_topic: String,
    /// Watched while waiting for the registry, to give up on stop.
    control: watch::Receiver<Control>,
    /// Set when the worker lost this connector mid-stream: what follows
    /// waits only briefly on the broker.
    fenced: bool,
    /// With a transactional sink: whether each batch is a transaction.
    commit_each_batch: bool,
    /// How often offsets are stored (or transactions committed).
    commit_interval: Duration,
}

impl<'a, S: RecordSink> Pipeline<'a, S> {
    fn new(
        spec: &'a SourceTaskSpec,
        deps: &'a Arc<RunnerDeps>,
        metrics: &'a Arc<TaskMetrics>,
        control: watch::Receiver<Control>,
        sink: &'a S,
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
            sink,
            key_converter: converter(Side::Key)?,
            value_converter: converter(Side::Value)?,
            transforms: Chain::from_config(&spec.config)
                .map_err(|mut errors| ConnectorError::Config(errors.swap_remove(0)))?,
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
            offsets: OffsetTracker::new(),
            uncommitted: 0,
            last_commit: Instant::now(),
            store_failing: None,
            seen_topics: Default::default(),
            last_topic: String::new(),
            control,
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
        })
    }

    async fn drive(
        &mut self,
        end: &mut RuntimeEnd,
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
                next_commit
            } else {
                next_commit.min(ACK_POLL)
            };
            tokio::select! {
                batch = end.records.recv() => match batch {
                    Some(batch) => {
                        if !self.deps.placement.owns(&self.spec.connector) {
                            // Fenced: the batch is not sent, so the stored
                            // offset stays before it for whoever runs next;
                            // what was acknowledged is stored in `salvage`.
                            self.fenced = true;
                            return Err(ConnectorError::retriable(FENCED));
                        }
                        self.metrics
                            .records_polled
                            .fetch_add(batch.len() as u64, Ordering::Relaxed);
                        for record in batch {
                            self.send(record).await?;
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
            }
        }
    }

    /// The flush every `offset.flush.interval.ms`. A store that refuses
    /// (a full disk) does not stop the task, as in Connect: the offsets
    /// wait for the next flush, nothing past the stored ones is confirmed
    /// to the database, and the status trace says why. A transaction that
    /// does not commit fails the task: its records were aborted; so does a
    /// lease lost while storing.
    async fn periodic_commit(&mut self, end: &RuntimeEnd) -> Result<(), ConnectorError> {
        match self.commit(end).await {
            Ok(()) => {
                if let Some((since, _)) = self.store_failing.take() {
                    tracing::info!(connector = %self.spec.connector, failing_for_s = since.elapsed().as_secs(), "offsets are stored again");
                }
                self.report(State::Running, end);
            }
            Err(e) if self.sink.transactions().is_some() => return Err(e),
            // Not a failing store: the worker lost its share, and a task
            // that kept running would wait on the next store with nothing
            // left to fence it.
            Err(e) if self.fenced => return Err(e),
            Err(e) => {
                let first = self.store_failing.is_none();
                let since = self
                    .store_failing
                    .as_ref()
                    .map_or_else(Instant::now, |(s, _)| *s);
                let trace = format!(
                    "{e}; the task keeps running and tries again every flush, but no position past the stored one is confirmed to the database until it succeeds (free the disk, or fix the offset store)"
                );
                if first {
                    tracing::warn!(connector = %self.spec.connector, task = self.spec.task_id, error = %trace, "cannot store offsets");
                }
                self.store_failing = Some((since, trace));
                self.report(State::Running, end);
            }
        }
        Ok(())
    }

    fn report(&self, state: State, end: &RuntimeEnd) {
        let mut status = TaskStatus::new(state, &self.deps.worker_id);
        if state == State::Running {
            status.trace = self.store_failing.as_ref().map(|(_, why)| why.clone());
        }
        status.progress = end.progress().map(|p| progress_json(&p));
        self.metrics.record_progress(status.progress.as_ref());
        set_status(self.deps, self.spec, status);
    }

    /// After a failure: stores the offsets of records the broker has
    /// acknowledged, so a restart repeats less. A record that failed, and
    /// everything after it, stays uncommitted.
    /// A fenced task waits only [`FENCE_GRACE`] for either.
    async fn salvage(&mut self, end: &RuntimeEnd) {
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

    /// Runs the configured transforms; `None` when the record is not to be
    /// sent (dropped by a transform, or skipped after a tolerated failure).
    fn transform(&mut self, record: SourceRecord) -> Result<Option<SourceRecord>, ConnectorError> {
        let (view, position) = Record::from_source(record);
        let topic = view.topic.clone();
        match self.transforms.apply(view) {
            Ok(Some(out)) => Ok(Some(out.into_source(position))),
            Ok(None) => {
                self.pass(position);
                Ok(None)
            }
            Err(e) if self.tolerate_errors => {
                self.metrics.errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(connector = %self.spec.connector, topic = %topic, error = %e, "record skipped (errors.tolerance=all)");
                self.pass(position);
                Ok(None)
            }
            Err(e) => Err(ConnectorError::fatal(format!(
                "connector {} task {}: a record for topic {topic} failed in {e}; fix the transform's settings, or set errors.tolerance=all to skip such records",
                self.spec.connector, self.spec.task_id
            ))),
        }
    }

    async fn send(&mut self, record: SourceRecord) -> Result<(), ConnectorError> {
        let record = if self.transforms.is_empty() {
            record
        } else {
            match self.transform(record)? {
                Some(record) => record,
                None => return Ok(()),
            }
        };
        let converted = self.convert(&record).await;
        let (key, value) = match converted {
            Ok(kv) => kv,
            Err((_, e)) if self.tolerate_errors && e.is_record_error() => {
                self.metrics.errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(connector = %self.spec.connector, topic = %record.topic, error = %e, "record skipped (errors.tolerance=all)");
                self.pass(SourcePosition {
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
        if record.topic != self.last_topic && !self.seen_topics.contains(&record.topic) {
            self.sink
                .ensure_topic(&record.topic, self.layout)
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
        if record.topic != self.last_topic {
            self.last_topic.clone_from(&record.topic);
        }
        let bytes = key.as_ref().map_or(0, Vec::len) + value.as_ref().map_or(0, Vec::len);
        let out = OutRecord {
            topic: &record.topic,
            key: key.as_deref(),
            value: value.as_deref(),
            partition: record.kafka_partition,
            timestamp_ms: record.timestamp_ms,
            headers: &record.headers,
        };
        let delivery = loop {
            match self.sink.send(out) {
                Ok(delivery) => break delivery,
                Err(SendError::QueueFull) => {
                    if !self.retire_front().await? {
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                }
                Err(SendError::Failed(e)) => {
                    return Err(ConnectorError::retriable(format!(
                        "producing to {} failed: {e}",
                        record.topic
                    )))
                }
            }
        };
        let ticket = self.offsets.submit(record.partition, record.offset);
        self.in_flight.push_back(InFlight {
            ticket,
            delivery: Some(delivery),
            bytes,
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
                    // Still RUNNING (as Connect shows a task that retries),
                    // but saying what it waits for.
                    let mut status = TaskStatus::new(State::Running, &self.deps.worker_id);
                    status.trace = Some(format!(
                        "waiting for the schema registry: {e}\n(retrying every {} ms with the record in hand; nothing is skipped and no offset moves meanwhile)",
                        backoff.as_millis()
                    ));
                    set_status(self.deps, self.spec, status);
                    let mut control = self.control.clone();
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = control.wait_for(|c| c.is_stop()) => return Err(e),
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Waits for the oldest record's delivery report; false if none is
    /// pending. A worker that loses its share while waiting (cut off from
    /// the broker, which is why no report comes) stops waiting: fenced.
    async fn retire_front(&mut self) -> Result<bool, ConnectorError> {
        let Some(mut front) = self.in_flight.pop_front() else {
            return Ok(false);
        };
        let outcome = match front.delivery.take() {
            Some(mut delivery) => loop {
                tokio::select! {
                    outcome = &mut delivery => break Some(outcome),
                    () = tokio::time::sleep(FENCE_CHECK) => {
                        if !self.fenced && !self.deps.placement.owns(&self.spec.connector) {
                            front.delivery = Some(delivery);
                            self.in_flight.push_front(front);
                            self.fenced = true;
                            return Err(ConnectorError::retriable(FENCED));
                        }
                    }
                }
            },
            None => None,
        };
        self.settle(front, outcome)?;
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
        record: InFlight<S::Delivery>,
        outcome: Option<Result<(), String>>,
    ) -> Result<(), ConnectorError> {
        if let Some(outcome) = outcome {
            self.metrics.in_flight.fetch_sub(1, Ordering::Relaxed);
            if let Err(e) = outcome {
                self.offsets.fail(record.ticket);
                if let Some(fatal) = self.deps.producer_fatal_error() {
                    // Retrying with this producer cannot succeed.
                    return Err(ConnectorError::fatal(format!(
                        "the worker's Kafka producer hit a fatal error: {fatal}; no offset moved past the undelivered records. Restart the worker (GET /health answers 503 until then); its tasks resume from their stored offsets"
                    )));
                }
                return Err(ConnectorError::retriable(format!(
                    "the broker did not acknowledge a record: {e}; its offset and all later ones stay uncommitted and are re-sent"
                )));
            }
            self.metrics
                .records_produced
                .fetch_add(1, Ordering::Relaxed);
            self.metrics
                .bytes_produced
                .fetch_add(record.bytes as u64, Ordering::Relaxed);
        }
        self.offsets.ack(record.ticket);
        self.uncommitted += 1;
        self.metrics
            .uncommitted
            .store(self.uncommitted, Ordering::Relaxed);
        Ok(())
    }

    /// Stores the offsets that may be stored, then tells the task they
    /// are durable.
    async fn commit(&mut self, end: &RuntimeEnd) -> Result<(), ConnectorError> {
        self.last_commit = Instant::now();
        if let Some(transactions) = self.sink.transactions() {
            return self.commit_transaction(transactions, end).await;
        }
        let entries = self.offsets.take_committable();
        if entries.is_empty() {
            return Ok(());
        }
        let writes: Vec<_> = entries
            .iter()
            .map(|(p, o)| (p.clone(), Some(o.clone())))
            .collect();
        let store = Arc::clone(&self.deps.offsets);
        let connector = self.spec.connector.clone();
        let mut storing = tokio::task::spawn_blocking(move || store.put(&connector, &writes));
        // A store to a broker this worker is cut off from waits out its
        // timeout; a worker that lost the connector meanwhile stops waiting
        // (the store may still land: it holds acknowledged offsets only).
        let joined = loop {
            tokio::select! {
                joined = &mut storing => break joined,
                () = tokio::time::sleep(FENCE_CHECK) => {
                    if !self.fenced && !self.deps.placement.owns(&self.spec.connector) {
                        self.fenced = true;
                        self.offsets.restore(entries);
                        return Err(ConnectorError::retriable(FENCED));
                    }
                }
            }
        };
        let stored = joined
            .map_err(|e| ConnectorError::retriable(format!("offset commit was interrupted: {e}")))
            .and_then(|r| {
                r.map_err(|e| ConnectorError::retriable(format!("storing offsets: {e}")))
            });
        if let Err(e) = stored {
            self.offsets.restore(entries);
            return Err(e);
        }
        self.committed(entries, end);
        Ok(())
    }

    /// Commits the open transaction with the offsets its records reach.
    /// Every record must be acknowledged first: only then are its offsets
    /// known to be the next ones in line.
    async fn commit_transaction(
        &mut self,
        transactions: &dyn Transactions,
        end: &RuntimeEnd,
    ) -> Result<(), ConnectorError> {
        self.drain_all().await?;
        let entries = self.offsets.take_committable();
        let mut committing = transactions.commit(&self.spec.connector, &entries);
        let committed = loop {
            tokio::select! {
                committed = &mut committing => break committed,
                () = tokio::time::sleep(FENCE_CHECK) => {
                    // The next owner's producer fences this one whatever
                    // happens to the commit; stop waiting for it.
                    if !self.fenced && !self.deps.placement.owns(&self.spec.connector) {
                        self.fenced = true;
                        return Err(ConnectorError::retriable(FENCED));
                    }
                }
            }
        };
        drop(committing);
        committed.map_err(|e| {
            let message = format!(
                "the transaction of connector {} task {} did not commit: {e}; nothing of it is visible, and the task restarts from the last committed offsets",
                self.spec.connector, self.spec.task_id
            );
            match e {
                TransactionError::Unsupported(_) => ConnectorError::fatal(message),
                _ => ConnectorError::retriable(message),
            }
        })?;
        if !entries.is_empty() {
            self.committed(entries, end);
        }
        Ok(())
    }

    /// Counts a store and tells the task which offsets are durable.
    fn committed(&mut self, entries: Vec<(SourcePartition, SourceOffset)>, end: &RuntimeEnd) {
        self.uncommitted = 0;
        self.metrics.uncommitted.store(0, Ordering::Relaxed);
        self.metrics.offset_commits.fetch_add(1, Ordering::Relaxed);
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        self.metrics.last_commit_ms.store(now_ms, Ordering::Relaxed);
        end.publish_durable(entries);
    }
}

/// A task's typed progress as the `progress` member of its status (the
/// shape `/metrics` and `sluice status` read): `phase`, `snapshot` per
/// table with rows and the estimate, then the task's named positions.
fn progress_json(progress: &TaskProgress) -> serde_json::Value {
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

/// The durability core without a broker: a counting source task, the
/// in-memory record sink with scripted acknowledgements, a real offset
/// store in a temp dir.
#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use async_trait::async_trait;
    use serde_json::json;
    use sluice_connector_api::{
        ConfigDef, PluginInfo, PluginKind, SourceContext, SourceOffset, SourcePartition,
    };

    use super::*;
    use crate::herder::record_sink::memory::{Answer, MemorySink};
    use crate::herder::Placement;
    use crate::kafka::TopicCreator;
    use crate::store::{MemoryStatusStore, OffsetStore, StateDirOffsetStore, StoreError};
    use std::sync::atomic::AtomicU64;

    /// Emits records `n` = stored + 1 ..= `count` (config key), three per
    /// batch, each with offset `{"n": n}`; panics at `panic.at` if set.
    struct Counter;

    struct CounterTask;

    fn counter_partition() -> SourcePartition {
        sluice_connector_api::offset::partition("counter", "c")
    }

    #[async_trait]
    impl SourceConnector for Counter {
        fn info(&self) -> PluginInfo {
            PluginInfo {
                class: "counter",
                aliases: &[],
                kind: PluginKind::Source,
                version: "0",
            }
        }

        fn config_def(&self) -> ConfigDef {
            ConfigDef::new()
        }

        fn task_configs(
            &self,
            config: &ConnectorConfig,
            _: usize,
        ) -> Result<Vec<ConnectorConfig>, ConnectorError> {
            Ok(vec![config.clone()])
        }

        fn create_task(&self) -> Box<dyn SourceTask> {
            Box::new(CounterTask)
        }
    }

    #[async_trait]
    impl SourceTask for CounterTask {
        async fn run(
            &mut self,
            config: &ConnectorConfig,
            context: SourceContext,
        ) -> Result<(), ConnectorError> {
            let count = config.i64_or("count", 0)? as u64;
            let panic_at = config.i64_or("panic.at", -1)?;
            let partition = Arc::new(counter_partition());
            let first = context
                .offset(&partition)
                .and_then(|o| o.get("n")?.as_u64())
                .map_or(1, |n| n + 1);
            let emitter = context.emitter();
            let numbers: Vec<u64> = (first..=count).collect();
            for chunk in numbers.chunks(3) {
                if chunk.iter().any(|n| *n as i64 == panic_at) {
                    panic!("a malformed frame");
                }
                let batch = chunk
                    .iter()
                    .map(|n| SourceRecord {
                        partition: Arc::clone(&partition),
                        offset: sluice_connector_api::offset::partition("n", *n).into(),
                        topic: "numbers".into(),
                        kafka_partition: None,
                        key_schema: None,
                        key: None,
                        value_schema: None,
                        value: Some(sluice_connector_api::Value::Int64(*n as i64)),
                        timestamp_ms: None,
                        headers: Vec::new(),
                    })
                    .collect();
                emitter.emit(batch).await?;
            }
            context.shutdown().wait().await;
            Ok(())
        }
    }

    struct Harness {
        deps: Arc<RunnerDeps>,
        _state: tempfile::TempDir,
    }

    impl Harness {
        fn new(flush: Duration) -> Self {
            let state = tempfile::tempdir().expect("temp dir");
            // Clients for an address nothing listens on: the memory sink
            // stands in for them.
            let producer = rdkafka::ClientConfig::new()
                .set("bootstrap.servers", "127.0.0.1:9")
                .create_with_context(crate::kafka::delivery::DeliveryContext::default())
                .expect("producer");
            let kafka = crate::kafka::KafkaSettings {
                bootstrap_servers: "127.0.0.1:9".into(),
                client_properties: BTreeMap::new(),
                producer_overrides: BTreeMap::new(),
                consumer_overrides: BTreeMap::new(),
                compression: "none".into(),
            };
            let deps = Arc::new(RunnerDeps {
                providers: crate::secrets::Providers::default(),
                override_policy: Default::default(),
                producer,
                topics: TopicCreator::new(&kafka).expect("admin"),
                kafka,
                placement: Arc::new(super::super::Everything),
                offsets: Arc::new(StateDirOffsetStore::new(state.path())),
                status: Arc::new(MemoryStatusStore::default()),
                metrics: Arc::default(),
                worker_id: "test:0".into(),
                offset_flush_interval: flush,
                max_in_flight: 4,
                shutdown_timeout: Duration::from_millis(500),
                converter_defaults: BTreeMap::from([(
                    "value.converter.schemas.enable".into(),
                    "false".into(),
                )]),
                topic_layout: TopicLayout {
                    partitions: 1,
                    replication_factor: 1,
                },
                active_topics: Default::default(),
                exactly_once: None,
            });
            Self {
                deps,
                _state: state,
            }
        }

        fn spec(&self, config: &[(&str, &str)]) -> SourceTaskSpec {
            SourceTaskSpec {
                connector: "counter".into(),
                task_id: 0,
                config: config.iter().copied().collect(),
                plugin: Arc::new(Counter),
            }
        }

        /// The stored `n`, if any.
        fn stored(&self) -> Option<u64> {
            let stored: Vec<(SourcePartition, SourceOffset)> =
                self.deps.offsets.get("counter").expect("offsets");
            stored
                .iter()
                .find(|(p, _)| *p == counter_partition())
                .and_then(|(_, o)| o.get("n")?.as_u64())
        }

        /// Runs the task into `sink` until `until` holds for what was
        /// sent, then asks it to stop; the run's result.
        async fn run(
            &self,
            config: &[(&str, &str)],
            sink: &MemorySink,
            until: impl Fn(&[String]) -> bool,
        ) -> Result<(), ConnectorError> {
            let spec = self.spec(config);
            let metrics = self.deps.metrics.task("counter", 0);
            let (stop, mut control) = watch::channel(Control::Run);
            let run = run_once_into(&spec, &self.deps, &metrics, &mut control, sink);
            tokio::pin!(run);
            loop {
                tokio::select! {
                    result = &mut run => return result,
                    () = tokio::time::sleep(Duration::from_millis(10)) => {
                        if until(&sink.values()) {
                            stop.send_replace(Control::Stop);
                        }
                    }
                }
            }
        }
    }

    fn numbers(values: &[String]) -> Vec<u64> {
        values.iter().filter_map(|v| v.parse().ok()).collect()
    }

    #[tokio::test]
    async fn records_a_transform_drops_still_move_the_offset() {
        let harness = Harness::new(Duration::from_millis(10));
        let sink = MemorySink::default();
        let config = [
            ("count", "10"),
            ("transforms", "dropAll"),
            (
                "transforms.dropAll.type",
                "org.apache.kafka.connect.transforms.Filter",
            ),
            ("transforms.dropAll.predicate", "isNumbers"),
            ("predicates", "isNumbers"),
            ("predicates.isNumbers.type", "TopicNameMatches"),
            ("predicates.isNumbers.pattern", "num.*"),
        ];
        harness
            .run(&config, &sink, |_| harness.stored() == Some(10))
            .await
            .expect("clean run");
        assert!(sink.values().is_empty(), "{:?}", sink.values());
        assert_eq!(harness.stored(), Some(10));
    }

    #[tokio::test]
    async fn a_transform_failure_fails_the_task_naming_the_record_unless_tolerated() {
        let harness = Harness::new(Duration::from_millis(10));
        let failing = [
            ("count", "5"),
            ("transforms", "pick"),
            ("transforms.pick.type", "ExtractField$Value"),
            ("transforms.pick.field", "id"),
        ];
        let error = harness
            .run(&failing, &MemorySink::default(), |_| false)
            .await
            .expect_err("a plain number has no field id");
        assert!(!error.is_retriable(), "{error}");
        let text = error.to_string();
        assert!(text.contains("numbers") && text.contains("pick"), "{text}");
        assert_eq!(
            harness.stored(),
            None,
            "nothing moves past the failed record"
        );
        let mut tolerated = failing.to_vec();
        tolerated.push(("errors.tolerance", "all"));
        let sink = MemorySink::default();
        harness
            .run(&tolerated, &sink, |_| harness.stored() == Some(5))
            .await
            .expect("skipped, not failed");
        assert!(sink.values().is_empty());
    }

    #[tokio::test]
    async fn a_failed_delivery_in_the_middle_stores_only_what_precedes_it() {
        let harness = Harness::new(Duration::from_secs(3600));
        let sink = MemorySink::scripted(|i| if i == 4 { Answer::Fail } else { Answer::Ack });
        let result = harness.run(&[("count", "10")], &sink, |_| false).await;
        let error = result.expect_err("the failed delivery fails the run");
        assert!(error.is_retriable(), "{error}");
        assert!(error.to_string().contains("did not acknowledge"), "{error}");
        // Records 1..=4 were acknowledged; 5 failed: nothing after 4 moves.
        assert_eq!(harness.stored(), Some(4));
        // The restart sends 5 again, and everything after it.
        let again = MemorySink::default();
        harness
            .run(&[("count", "10")], &again, |v| numbers(v).contains(&10))
            .await
            .expect("clean run");
        assert_eq!(numbers(&again.values()), (5..=10).collect::<Vec<_>>());
        assert_eq!(harness.stored(), Some(10));
    }

    #[tokio::test]
    async fn a_crash_between_ack_and_store_repeats_and_never_skips() {
        // Offsets are stored only at stop: the crash comes first.
        let harness = Harness::new(Duration::from_secs(3600));
        let sink = MemorySink::default();
        let crashed = tokio::time::timeout(
            Duration::from_millis(300),
            harness.run(&[("count", "9")], &sink, |_| false),
        )
        .await;
        assert!(crashed.is_err(), "the run was cut short, like kill -9");
        assert_eq!(numbers(&sink.values()), (1..=9).collect::<Vec<_>>());
        assert_eq!(
            harness.stored(),
            None,
            "nothing was stored before the crash"
        );
        // Restart: everything is sent again (repeated, not skipped).
        let again = MemorySink::default();
        harness
            .run(&[("count", "9")], &again, |v| numbers(v).contains(&9))
            .await
            .expect("clean run");
        assert_eq!(numbers(&again.values()), (1..=9).collect::<Vec<_>>());
        assert_eq!(harness.stored(), Some(9));
        // And a later run resumes after the stored offset.
        let later = MemorySink::default();
        harness
            .run(&[("count", "12")], &later, |v| numbers(v).contains(&12))
            .await
            .expect("clean run");
        assert_eq!(numbers(&later.values()), vec![10, 11, 12]);
    }

    /// Exactly once: what a `read_committed` consumer sees over two runs,
    /// the first cut short by a failed delivery, is every record once.
    #[tokio::test]
    async fn with_transactions_a_failed_delivery_hides_its_batch_and_the_restart_shows_it_once() {
        let harness = Harness::new(Duration::from_secs(3600));
        let store = Arc::clone(&harness.deps.offsets);
        // Batches are [1 2 3] [4 5 6] [7 8 9] [10]; record 5 fails.
        let first = MemorySink::transactional(Arc::clone(&store), |i| {
            if i == 4 {
                Answer::Fail
            } else {
                Answer::Ack
            }
        });
        let error = harness
            .run(&[("count", "10")], &first, |_| false)
            .await
            .expect_err("the failed delivery fails the run");
        assert!(error.is_retriable(), "{error}");
        assert!(numbers(&first.values()).contains(&4), "4 was sent");
        assert_eq!(
            numbers(&first.visible()),
            vec![1, 2, 3],
            "4 and 6 aborted with 5"
        );
        assert_eq!(harness.stored(), Some(3));
        let again = MemorySink::transactional(Arc::clone(&store), |_| Answer::Ack);
        harness
            .run(&[("count", "10")], &again, |_| harness.stored() == Some(10))
            .await
            .expect("clean run");
        let mut seen = numbers(&first.visible());
        seen.extend(numbers(&again.visible()));
        assert_eq!(seen, (1..=10).collect::<Vec<_>>(), "each record once");
        assert_eq!(
            again.commits.load(Ordering::Relaxed),
            3,
            "a transaction per batch"
        );
    }

    /// A crash with a transaction open (its last record never
    /// acknowledged) repeats that batch on the wire, yet a
    /// `read_committed` consumer sees each record once.
    #[tokio::test]
    async fn with_transactions_a_crash_mid_batch_repeats_nothing_a_reader_sees() {
        let harness = Harness::new(Duration::from_secs(3600));
        let store = Arc::clone(&harness.deps.offsets);
        let first = MemorySink::transactional(Arc::clone(&store), |i| {
            if i == 7 {
                Answer::Hang
            } else {
                Answer::Ack
            }
        });
        let crashed = tokio::time::timeout(
            Duration::from_millis(300),
            harness.run(&[("count", "9")], &first, |_| false),
        )
        .await;
        assert!(crashed.is_err(), "the run was cut short, like kill -9");
        assert_eq!(numbers(&first.values()), (1..=9).collect::<Vec<_>>());
        assert_eq!(numbers(&first.visible()), (1..=6).collect::<Vec<_>>());
        assert_eq!(harness.stored(), Some(6));
        let again = MemorySink::transactional(Arc::clone(&store), |_| Answer::Ack);
        harness
            .run(&[("count", "9")], &again, |_| harness.stored() == Some(9))
            .await
            .expect("clean run");
        assert_eq!(
            numbers(&again.values()),
            vec![7, 8, 9],
            "sent twice on the wire"
        );
        let mut seen = numbers(&first.visible());
        seen.extend(numbers(&again.visible()));
        assert_eq!(seen, (1..=9).collect::<Vec<_>>(), "seen once");
    }

    /// `transaction.boundary=interval` spans batches: with a long interval
    /// the one transaction commits when the task stops.
    #[tokio::test]
    async fn with_an_interval_boundary_one_transaction_spans_the_batches() {
        let harness = Harness::new(Duration::from_secs(3600));
        let sink = MemorySink::transactional(Arc::clone(&harness.deps.offsets), |_| Answer::Ack);
        let config = [
            ("count", "10"),
            ("transaction.boundary", "interval"),
            ("transaction.boundary.interval.ms", "3600000"),
        ];
        harness
            .run(&config, &sink, |v| numbers(v).contains(&10))
            .await
            .expect("clean run");
        assert_eq!(sink.commits.load(Ordering::Relaxed), 1);
        assert_eq!(numbers(&sink.visible()), (1..=10).collect::<Vec<_>>());
        assert_eq!(harness.stored(), Some(10));
    }

    #[tokio::test]
    async fn a_broker_that_never_answers_stores_nothing_unacknowledged() {
        let harness = Harness::new(Duration::from_millis(20));
        // 1..=3 acknowledged, then silence.
        let sink = MemorySink::scripted(|i| if i < 3 { Answer::Ack } else { Answer::Hang });
        harness
            .run(&[("count", "6")], &sink, |v| v.len() >= 4)
            .await
            .expect("a stop that times out on the broker is still a stop");
        assert_eq!(harness.stored(), Some(3));
    }

    /// A share of a group that the test takes away.
    struct Share(std::sync::atomic::AtomicBool);

    impl Placement for Share {
        fn owns(&self, _: &str) -> bool {
            self.0.load(Ordering::SeqCst)
        }

        fn shared(&self) -> bool {
            true
        }
    }

    /// An offset store on a broker this worker is cut off from: every
    /// store hangs (until the test ends), as a Kafka store waits out its
    /// timeout; `entered` counts the stores begun.
    struct CutOffStore {
        entered: AtomicU64,
        released: std::sync::atomic::AtomicBool,
    }

    impl OffsetStore for CutOffStore {
        fn get(&self, _: &str) -> Result<Vec<(SourcePartition, SourceOffset)>, StoreError> {
            Ok(Vec::new())
        }

        fn put(
            &self,
            _: &str,
            _: &[(SourcePartition, Option<SourceOffset>)],
        ) -> Result<(), StoreError> {
            self.entered.fetch_add(1, Ordering::SeqCst);
            while !self.released.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(StoreError::Io {
                action: "writing",
                path: "the offset topic".into(),
                source: std::io::Error::other("cut off"),
            })
        }

        fn clear(&self, _: &str) -> Result<(), StoreError> {
            Ok(())
        }
    }

    /// CI caught a task still running on a worker cut off from the
    /// broker: its periodic offset store noticed the lost lease but took
    /// it for a failing store and carried on, and its next store then
    /// waited for the broker with the lease no longer checked. A fenced
    /// periodic store must end the task.
    #[tokio::test]
    async fn a_lease_lost_during_a_periodic_store_ends_the_task() {
        let mut harness = Harness::new(Duration::from_millis(20));
        let share = Arc::new(Share(true.into()));
        let store = Arc::new(CutOffStore {
            entered: AtomicU64::new(0),
            released: false.into(),
        });
        let deps = Arc::get_mut(&mut harness.deps).expect("deps not shared yet");
        deps.placement = share.clone();
        deps.offsets = store.clone();
        let sink = MemorySink::default();
        let run = harness.run(&[("count", "3")], &sink, |_| false);
        tokio::pin!(run);
        let result = tokio::time::timeout(Duration::from_secs(20), async {
            loop {
                tokio::select! {
                    result = &mut run => return result,
                    () = tokio::time::sleep(Duration::from_millis(10)) => {
                        if store.entered.load(Ordering::SeqCst) > 0 {
                            // The link goes while the store waits.
                            share.0.store(false, Ordering::SeqCst);
                        }
                    }
                }
            }
        })
        .await;
        store.released.store(true, Ordering::SeqCst);
        let error = result
            .expect("the task ends instead of waiting on the broker")
            .expect_err("a fenced task fails");
        assert!(error.to_string().contains("lost its lease"), "{error}");
    }

    #[tokio::test]
    async fn a_task_that_panics_fails_retriably_instead_of_going_silent() {
        let harness = Harness::new(Duration::from_millis(20));
        let sink = MemorySink::default();
        let result = harness
            .run(&[("count", "9"), ("panic.at", "5")], &sink, |_| false)
            .await;
        let error = result.expect_err("a panic ends the run");
        assert!(error.is_retriable(), "{error}");
        assert!(error.to_string().contains("panicked"), "{error}");
        // What came before the panic is durable; nothing after it.
        assert_eq!(harness.stored(), Some(3));
    }

    /// Issue 19, finding 7: a fatal producer error (librdkafka never
    /// recovers from one) is known to the worker, which reports it on
    /// `/health` and in the task's failure instead of retrying forever.
    #[test]
    fn a_fatal_producer_error_is_known() {
        let harness = Harness::new(Duration::from_secs(1));
        assert_eq!(harness.deps.producer_fatal_error(), None);
        let reason = std::ffi::CString::new("test: sequence broken").expect("c string");
        // SAFETY: librdkafka's test hook on a live producer handle of ours.
        unsafe {
            rdkafka::bindings::rd_kafka_test_fatal_error(
                rdkafka::producer::Producer::client(&harness.deps.producer).native_ptr(),
                rdkafka::bindings::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER,
                reason.as_ptr(),
            );
        }
        let fatal = harness
            .deps
            .producer_fatal_error()
            .expect("fatal error seen");
        assert!(fatal.contains("sequence broken"), "{fatal}");
    }

    #[test]
    fn progress_keeps_the_status_shape() {
        let progress = TaskProgress {
            phase: Some("snapshot"),
            snapshot: vec![sluice_connector_api::TableProgress {
                table: "s.t".into(),
                rows: 5,
                estimated_rows: 10,
            }],
            positions: vec![("lsn", json!("0/16B3748"))],
        };
        assert_eq!(
            progress_json(&progress),
            json!({"phase": "snapshot", "snapshot": {"s.t": {"rows": 5, "estimated_rows": 10}}, "lsn": "0/16B3748"})
        );
        let datagen = TaskProgress {
            positions: vec![("next_seq", json!(7))],
            ..TaskProgress::default()
        };
        assert_eq!(progress_json(&datagen), json!({"next_seq": 7}));
    }
}
