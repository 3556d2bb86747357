//! Runs one source task: the task pushes batches through its context;
//! the runner converts them on one tokio task and produces them on
//! another, and stores an offset only once its record and everything
//! before it are acknowledged by the broker
//! (the rule lives in [`OffsetTracker`]); the task then learns which
//! offsets are durable, so a database may release its log up to them.
//!
//! A slow broker fills the bounded queue of in-flight records; the runner
//! then waits, stops taking batches, and the task's `emit` waits in turn.
//! A crash repeats the unacknowledged tail, never skips it.
//!
//! This file starts and ends a run; the pipeline's parts are beside it:
//! `convert` (the stage ahead of the loop: transforms, then key and value
//! through the converters and the registry, on a tokio task of its own),
//! `pipeline` (the loop over the converted batches), `delivery` (the
//! in-flight queue and its acknowledgements), `commit` (offsets stored, or
//! a transaction committed, then published to the task as durable). The
//! unit tests in `tests` run all of it against the in-memory record sink.

mod commit;
mod convert;
mod delivery;
mod pipeline;

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sluice_connector_api::{
    bounded_source_context, ConnectorConfig, ConnectorError, SourceConnector, SourceTask,
    StopReason,
};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::offset_tracker::{OffsetTracker, Ticket};
use super::record_sink::{KafkaRecordSink, RecordSink, TransactionError, Transactions};
use super::status::{State, TaskStatus};
use super::transactional_sink::KafkaTransactionalSink;
use super::RunnerDeps;
use crate::kafka::TopicLayout;
use crate::metrics::TaskMetrics;

/// How often acknowledgements are collected while the task is quiet and
/// records are in flight.
const ACK_POLL: Duration = Duration::from_millis(20);

/// How often a running task's phase is compared with the one its status
/// shows, so a change (snapshot → streaming) is reported within about
/// this, not at the next offset flush (60 s apart, say, when tuned so).
const PHASE_CHECK: Duration = Duration::from_secs(1);

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

impl SourceTaskSpec {
    /// The unit of the group's placement this task belongs to.
    pub fn unit(&self) -> super::Unit<'_> {
        super::Unit::task(&self.connector, self.task_id)
    }
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
    put_task_status(deps, &spec.connector, spec.task_id, status);
}

/// Reports task `task_id` of `connector` in `status`, to the status store
/// and the metrics.
fn put_task_status(deps: &RunnerDeps, connector: &str, task_id: u32, status: TaskStatus) {
    deps.metrics.set_state(connector, task_id, status.state);
    deps.status.put_task(connector, task_id, status);
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
    if !deps.placement.owns(spec.unit()) {
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
    let queue_bytes = sluice_connector_api::source_settings::queue_bytes(&spec.config);
    let (context, mut end) = bounded_source_context(stored, queued, queue_bytes);
    let context = context
        .with_topic_reader(Arc::new(crate::kafka::topic_reader::KafkaTopicReader::new(
            deps.kafka.clone(),
        )))
        .count_emit_time_in(Arc::clone(&metrics.emit_nanos));
    let converting = convert::Converting::new(spec, deps, metrics, control.clone())?;
    let mut pipeline = Pipeline::new(spec, deps, metrics, sink)?;
    let (mut staged, mut stage) = converting.spawn(end.take_records());
    let mut task = spec.plugin.create_task();
    let config = spec.config.clone();
    let mut running: RunningTask = tokio::spawn(async move {
        let result = task.run(&config, context).await;
        (task, result)
    });
    tracing::info!(connector = %spec.connector, task = spec.task_id, "task started");
    let driven = pipeline.drive(&mut end, &mut staged, control).await;
    if driven.is_err() {
        pipeline.salvage(&end).await;
    }
    // Ask the task to end and stop taking its records: the stage holds the
    // task's channel, and ending it closes that.
    end.request_shutdown();
    staged.close();
    stage.abort();
    let _ = (&mut stage).await;
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
    /// Set when the worker lost this connector mid-stream: what follows
    /// waits only briefly on the broker.
    fenced: bool,
    /// With a transactional sink: whether each batch is a transaction.
    commit_each_batch: bool,
    /// How often offsets are stored (or transactions committed).
    commit_interval: Duration,
    /// The phase the task's status shows, and when it was last compared
    /// with the task's own.
    reported_phase: Option<&'static str>,
    phase_checked: Instant,
}

#[cfg(test)]
mod tests;
