//! Runs one sink task: consume, decode, hand batches to the task, and
//! commit consumer offsets only after the task has made the batch durable
//! in the target. A crash replays the uncommitted tail; sinks make replays
//! harmless (idempotent upserts and deletes).
//!
//! Records that cannot be decoded or applied follow `errors.tolerance`:
//! `none` fails the task with the cause; `all` sends them to
//! `errors.deadletterqueue.topic.name` (with the cause in `__connect.errors.*`
//! headers when `errors.deadletterqueue.context.headers.enable`, as Kafka
//! Connect does) — delivered before the offset moves past them.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, Headers, OwnedHeaders};
use rdkafka::producer::BaseRecord;
use rdkafka::{Message, Offset, TopicPartitionList};
use sluice_connector_api::{ConnectorError, SinkConnector, SinkRecord, SinkTask, Text};
use tokio::sync::watch;

use super::error_policy::{ErrorPolicy, Skipped};
use super::source_runner::Control;
use super::status::{State, TaskStatus};
use super::RunnerDeps;
use crate::converter::{self, Decoder, Side};
use crate::kafka::build_consumer;
use crate::metrics::{add_elapsed, TaskMetrics};
use crate::transforms::{Chain, Record};

mod assignment_check;
mod positions;
mod read_ahead;
use assignment_check::{AssignmentCheck, Look};
use positions::{Noting, Positions};
use read_ahead::ReadAhead;

/// Most records handed to the task in one `put` unless `batch.size` says.
const DEFAULT_BATCH: usize = 500;
/// How long to wait for more records before handing over a partial batch.
const LINGER: Duration = Duration::from_millis(100);
/// How long a count of a topic's partitions may wait for the broker.
const METADATA_TIMEOUT: Duration = Duration::from_secs(5);
/// How long librdkafka may take to move the consumer back (it waits for
/// its fetcher to take the new position).
const SEEK_TIMEOUT: Duration = Duration::from_secs(30);
/// Batches read and decoded ahead of the one being applied (see
/// [`read_ahead`]). Two let either stage run ahead when the other is slow
/// for a moment, but hold one more decoded batch: in six alternated runs
/// of `scripts/bench-sink 1000000 1000` (batches of 5,000), two gave the
/// PostgreSQL target a median of 266,000 rows/s against 250,000, the
/// MariaDB target 210,000 against 221,000 (within the machine's noise),
/// and raised the worker's peak RSS from 58–63 MiB to 63–68, past the
/// 64 MiB goal.
const READ_AHEAD_BATCHES: usize = 1;
/// Records decoded between two chances for other tasks to run: messages
/// the consumer has fetched already never make the reading task wait, so
/// on a worker with one free thread the batch being applied could not
/// hand its statements to the target until the whole next batch was
/// decoded.
const DECODED_BETWEEN_YIELDS: usize = 256;

/// Everything a runner needs to know about its sink task.
pub struct SinkTaskSpec {
    /// The connector name.
    pub connector: String,
    /// The task number.
    pub task_id: u32,
    /// How many tasks the connector runs, on all workers.
    pub tasks: u32,
    /// The task's configuration with secrets resolved.
    pub config: sluice_connector_api::ConnectorConfig,
    /// The plugin that makes the task.
    pub plugin: Arc<dyn SinkConnector>,
}

/// Runs the task until told to stop (see [`super::supervise`]).
pub async fn run(spec: SinkTaskSpec, deps: Arc<RunnerDeps>, control: watch::Receiver<Control>) {
    let metrics = deps.metrics.task(&spec.connector, spec.task_id);
    // Shared with the task that reads the next batch while one is applied.
    let spec = Arc::new(spec);
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

fn set_status(deps: &RunnerDeps, spec: &SinkTaskSpec, state: State) {
    deps.metrics.set_state(&spec.connector, spec.task_id, state);
    deps.status.put_task(
        &spec.connector,
        spec.task_id,
        TaskStatus::new(state, &deps.worker_id),
    );
}

async fn run_once(
    spec: &Arc<SinkTaskSpec>,
    deps: &Arc<RunnerDeps>,
    metrics: &Arc<TaskMetrics>,
    control: &mut watch::Receiver<Control>,
) -> Result<(), ConnectorError> {
    let mut applier = Applier::new(spec, deps, metrics)?;
    let mut task = spec.plugin.create_task();
    if let Err(e) = task.start(&spec.config).await {
        task.stop().await;
        return Err(e);
    }
    tracing::info!(connector = %spec.connector, task = spec.task_id, "sink task started");
    if let Some(selector) = task.value_fields() {
        applier.select_value_fields(selector);
    }
    if !task.reads_headers() {
        applier.skip_headers();
    }
    let result = Arc::new(applier).drive(task.as_mut(), control).await;
    task.stop().await;
    tracing::info!(connector = %spec.connector, task = spec.task_id, ok = result.is_ok(), "sink task stopped");
    result
}

/// The converter stage that failed (`KEY_CONVERTER` / `VALUE_CONVERTER`,
/// Connect's names) and why.
type Failure = (&'static str, String);

/// Why a consumed message was not decoded.
enum Rejected {
    /// The record is at fault: the converter stage that failed and why;
    /// `errors.tolerance` decides what happens to it.
    Record(Box<Consumed>, Failure),
    /// The schema registry could not be reached: retried, never skipped.
    Unavailable(String),
    /// A writer schema is not cached yet (only with [`Schemas::Cached`]):
    /// fetch it, then decode again.
    Unfetched,
}

/// Where [`Applier::decode`] finds the writer schemas it reads with.
#[derive(Debug, Clone, Copy)]
enum Schemas {
    /// Only among those cached; a message of another is
    /// [`Rejected::Unfetched`], nothing asked of the registry.
    Cached,
    /// After [`Applier::fetch_schemas`]: one still missing (the registry
    /// refused it) is asked for again, blocking, to name the cause.
    Fetched,
}

/// The retriable error for a registry outage met while decoding.
fn unavailable(cause: String) -> ConnectorError {
    ConnectorError::retriable(format!(
        "{cause}. Nothing was skipped or sent to the dead-letter topic: the task reads these records again from the committed offsets once the registry answers"
    ))
}

/// A message's key and value bytes as read.
type Raw = (Option<Vec<u8>>, Option<Vec<u8>>);

/// A consumed message, decoded or with the reason it could not be.
struct Consumed {
    record: SinkRecord,
    key_bytes: Option<Vec<u8>>,
    value_bytes: Option<Vec<u8>>,
}

/// A batch of decoded records and the offsets read per partition.
type Collected = (Vec<Consumed>, Positions);

/// The consume side of one running sink task, shared by the runner (which
/// applies a batch) and the task reading the next ones alongside.
struct Applier {
    spec: Arc<SinkTaskSpec>,
    deps: Arc<RunnerDeps>,
    metrics: Arc<TaskMetrics>,
    consumer: crate::kafka::SinkConsumer,
    /// The consumer group's id.
    group: String,
    /// The topics subscribed by name; `None` for `topics.regex`.
    topics: Option<Vec<String>>,
    key: Arc<Decoder>,
    value: Arc<Decoder>,
    /// `errors.*`: tolerance, dead-letter topic, logging.
    errors: ErrorPolicy,
    transforms: Chain,
    batch_size: usize,
    /// Topics already reported for `GET /connectors/{name}/topics`.
    seen_topics: std::sync::Mutex<std::collections::HashSet<String>>,
    /// How many records the last batch held: the next one's vector is
    /// sized for as many, instead of doubling (and copying) its way there.
    last_batch: AtomicUsize,
    /// Whether records are handed over with the headers they were read
    /// with (see [`Self::skip_headers`]).
    read_headers: bool,
    /// Applied batches, freed by the reader (see [`Spent`]).
    spent: Spent,
}

impl Applier {
    fn new(
        spec: &Arc<SinkTaskSpec>,
        deps: &Arc<RunnerDeps>,
        metrics: &Arc<TaskMetrics>,
    ) -> Result<Self, ConnectorError> {
        let config = &spec.config;
        let decoder = |side| {
            converter::build_decoder(side, &config.0, &deps.converter_defaults).map_err(|e| {
                ConnectorError::Config(sluice_connector_api::ConfigError::new(e.key, e.message))
            })
        };
        let group = config
            .get("consumer.override.group.id")
            .map_or_else(|| format!("connect-{}", spec.connector), str::to_owned);
        let client_id = format!("sluice-{}-{}", spec.connector, spec.task_id);
        let overrides = crate::kafka::overrides::overrides(
            config,
            crate::kafka::overrides::Client::Consumer,
            deps.override_policy,
        )?;
        // librdkafka refuses a client only over its settings (a value out of
        // range, two that contradict each other): retrying cannot help.
        let consumer =
            build_consumer(&deps.kafka, &group, &client_id, &overrides).map_err(|e| {
                ConnectorError::fatal(format!(
                    "creating the sink's Kafka consumer: {e}; check the connector's consumer.override.* settings and the worker's --kafka-property settings"
                ))
            })?;
        let topics = config.list("topics");
        let (subscription, by_regex): (Vec<String>, bool) = match config.get("topics.regex") {
            // librdkafka treats a leading ^ as a regular expression.
            Some(regex) if topics.is_empty() => {
                (vec![format!("^{}", regex.trim_start_matches('^'))], true)
            }
            _ => (topics, false),
        };
        if subscription.is_empty() {
            return Err(ConnectorError::Config(
                sluice_connector_api::ConfigError::new(
                    "topics",
                    "a sink needs topics (a comma-separated list) or topics.regex",
                ),
            ));
        }
        let names: Vec<&str> = subscription.iter().map(String::as_str).collect();
        consumer
            .subscribe(&names)
            .map_err(|e| ConnectorError::retriable(format!("subscribing to {names:?}: {e}")))?;
        Ok(Self {
            spec: Arc::clone(spec),
            deps: Arc::clone(deps),
            metrics: Arc::clone(metrics),
            consumer,
            group,
            topics: (!by_regex).then_some(subscription),
            key: Arc::new(decoder(Side::Key)?),
            value: Arc::new(decoder(Side::Value)?),
            errors: ErrorPolicy::from_config(config)?,
            transforms: Chain::from_config(config)
                .map_err(|mut errors| ConnectorError::Config(errors.swap_remove(0)))?,
            batch_size: config.i64_or("batch.size", DEFAULT_BATCH as i64)?.max(1) as usize,
            seen_topics: Default::default(),
            last_batch: AtomicUsize::new(0),
            read_headers: true,
            spent: Spent::default(),
        })
    }

    /// Lets the value decoder step over the fields the task does not
    /// read — only when no transform runs first (a transform may read
    /// any field, and would hand the task what it made of them) and no
    /// record is logged whole (`errors.log.include.messages`).
    fn select_value_fields(&mut self, selector: Arc<dyn sluice_connector_api::FieldSelector>) {
        if !self.transforms.is_empty() || self.errors.log_messages {
            return;
        }
        // Nothing has shared the decoder yet: it is first handed out
        // when a batch is read.
        if let Some(decoder) = Arc::get_mut(&mut self.value) {
            decoder.select_fields(selector);
        }
    }

    /// Hands records over without their headers — only when nothing else
    /// reads them: no transform, no dead-letter topic (which copies the
    /// original headers). librdkafka parses a consumed message's headers
    /// on demand, with a buffer allocated and freed per message even when
    /// there are none: about 1,050 of the ~18,700 instructions per record
    /// of the JDBC sink (callgrind, scripts/bench-sink).
    fn skip_headers(&mut self) {
        if self.transforms.is_empty() && self.errors.dead_letter_topic.is_none() {
            self.read_headers = false;
        }
    }

    /// Applies batches until told to stop, then waits for the last
    /// consumer commit, whichever way the loop ended.
    async fn drive(
        self: &Arc<Self>,
        task: &mut dyn SinkTask,
        control: &mut watch::Receiver<Control>,
    ) -> Result<(), ConnectorError> {
        let mut committing = None;
        let mut unconfirmed = None;
        let driven = self
            .drive_batches(task, control, &mut committing, &mut unconfirmed)
            .await;
        // A clean end (stop, hand-over) commits the last batch's offsets
        // once the task makes it durable; a failure leaves them to be read
        // again.
        let confirmed = match (&driven, unconfirmed) {
            (Ok(()), Some(positions)) => self.confirm(task, &mut committing, positions).await,
            _ => Ok(()),
        };
        let settled = settle(committing).await;
        driven.and(confirmed).and(settled)
    }

    /// Makes every batch put durable (`SinkTask::flush`), then starts
    /// committing `positions`, theirs.
    async fn confirm(
        self: &Arc<Self>,
        task: &mut dyn SinkTask,
        committing: &mut Option<Committing>,
        positions: Positions,
    ) -> Result<(), ConnectorError> {
        task.flush().await?;
        self.commit_after(committing, positions).await
    }

    /// Starts committing `positions`, of durable batches, once the commit
    /// under way has landed: each waits for the one before, so they land
    /// in order.
    async fn commit_after(
        self: &Arc<Self>,
        committing: &mut Option<Committing>,
        positions: Positions,
    ) -> Result<(), ConnectorError> {
        settle(committing.take()).await?;
        *committing = Some(self.start_commit(positions));
        Ok(())
    }

    async fn drive_batches(
        self: &Arc<Self>,
        task: &mut dyn SinkTask,
        control: &mut watch::Receiver<Control>,
        committing: &mut Option<Committing>,
        unconfirmed: &mut Option<Positions>,
    ) -> Result<(), ConnectorError> {
        set_status(&self.deps, &self.spec, State::Running);
        // The next batches are read and decoded while one is applied, by
        // a task of their own so the two run on both cores (the worker's
        // threads, the target and the broker shared them at about 1.1
        // cores of 2 while one task took turns); the offsets move only
        // after the apply, and a failed apply drops what was read ahead
        // uncommitted (read again on restart).
        let mut batches = self.read_ahead();
        let mut waiting_since = None;
        let mut assignment = AssignmentCheck::new(
            self.consumer.context().timeouts(),
            self.spec.tasks.max(1) as usize,
        );
        loop {
            let wanted = *control.borrow_and_update();
            match wanted {
                Control::Stop | Control::Handover => return Ok(()),
                Control::Pause => {
                    // A pause is not time spent waiting for records.
                    waiting_since = None;
                    // Everything handed over is committed once this is;
                    // the loop then pauses with nothing put.
                    if let Some(put) = unconfirmed.take() {
                        let flushed = task.flush().await;
                        batches = self
                            .after_flush(task, control, committing, batches, put, flushed)
                            .await?;
                        continue;
                    }
                    settle(committing.take()).await?;
                    set_status(&self.deps, &self.spec, State::Paused);
                    let _ = control.wait_for(|c| *c != Control::Pause).await;
                    set_status(&self.deps, &self.spec, State::Running);
                    continue;
                }
                Control::Run => {}
            }
            // Counted from the first look for this batch: a commit that
            // lands meanwhile, or an empty read, goes round the loop
            // without ending the wait.
            let since = *waiting_since.get_or_insert_with(Instant::now);
            let next = tokio::select! {
                // Looked at first, so a batch durable once `put` returned
                // (a target that commits in `put`, or any under
                // `errors.tolerance=all`) has its offsets committed before
                // the next batch is taken.
                biased;
                // The last batch put is durable before the next one comes:
                // its offsets need not wait for it.
                flushed = task.flush(), if unconfirmed.is_some() => Err(flushed),
                // A failed commit is reported while no records come, not
                // once the next ones do.
                landed = landed(committing), if committing.is_some() => {
                    landed?;
                    continue;
                }
                batch = batches.next() => Ok(batch?),
                _ = control.wait_for(|c| c.is_stop()) => continue,
            };
            let (batch, positions) = match next {
                Ok(batch) => batch,
                Err(flushed) => {
                    if let Some(put) = unconfirmed.take() {
                        batches = self
                            .after_flush(task, control, committing, batches, put, flushed)
                            .await?;
                    }
                    continue;
                }
            };
            if positions.is_empty() {
                // Nothing to read: perhaps nothing to read from.
                if unconfirmed.is_none() {
                    self.check_assignment(&mut assignment).await?;
                }
                continue;
            }
            // Counted once records came: a quiet topic's empty reads are
            // one wait, ended by the batch that finally holds records.
            add_elapsed(&self.metrics.next_batch_wait_nanos, since);
            waiting_since = None;
            self.metrics
                .records_polled
                .fetch_add(batch.len() as u64, Ordering::Relaxed);
            let applying_since = Instant::now();
            // The previous batch's commit, had it failed meanwhile: the
            // apply is not cut short for it.
            let mut commit_failed = None;
            let applied = {
                let applying = self.apply(task, batch, control, unconfirmed.is_some());
                tokio::pin!(applying);
                loop {
                    tokio::select! {
                        applied = &mut applying => break applied,
                        landed = landed(committing), if committing.is_some() => commit_failed = landed.err(),
                    }
                }
            };
            add_elapsed(&self.metrics.put_nanos, applying_since);
            self.metrics.puts.fetch_add(1, Ordering::Relaxed);
            if let Some(failed) = commit_failed {
                return Err(failed);
            }
            let handed_over = match applied {
                Ok(handed_over) => handed_over,
                // The failure may be the earlier batch's, whose records
                // are gone: both are read again.
                Err(e) if e.is_retriable() && unconfirmed.is_some() => {
                    let mut from = unconfirmed.take().unwrap_or_default();
                    from.extend(positions);
                    batches = self.read_again(task, control, batches, from, e).await?;
                    continue;
                }
                Err(e) => return Err(e),
            };
            // A batch all dead-lettered was not put: its offsets join the
            // batch still to be confirmed, or are committed.
            if !handed_over {
                match unconfirmed {
                    Some(waiting) => waiting.extend(positions),
                    None => self.commit_after(committing, positions).await?,
                }
                continue;
            }
            // A `put` that returned made every batch before it durable:
            // their offsets are committed while this batch ends at the
            // target and the next is applied. This batch's wait for the
            // next `put` or a flush. A crash before a commit lands replays
            // rows the target already holds, which sinks make harmless;
            // the commit took ~0.7 ms of the ~16 ms a batch of 5,000 took
            // in scripts/bench-sink.
            if let Some(durable) = unconfirmed.replace(positions) {
                self.commit_after(committing, durable).await?;
            }
        }
    }

    /// Fails the task (retriable, so it restarts and rejoins the group)
    /// when the group has settled on giving it fewer partitions than its
    /// share, or has kept it out longer than any rebalance lasts (see
    /// [`assignment_check`]).
    async fn check_assignment(
        self: &Arc<Self>,
        check: &mut AssignmentCheck,
    ) -> Result<(), ConnectorError> {
        let (since, held) = match check.look(self.consumer.context().membership(), Instant::now()) {
            Look::Nothing => return Ok(()),
            Look::Stuck(lasted) => {
                let partitions: usize = self
                    .count_partitions()
                    .await
                    .unwrap_or_default()
                    .iter()
                    .sum();
                // No partition yet (or no answer): nothing to join, not a
                // group that keeps the task out.
                if partitions == 0 {
                    check.watch_again();
                    return Ok(());
                }
                return Err(ConnectorError::retriable(format!(
                    "the consumer group {} has kept this task rebalancing for {} s while its topics \
                     have {partitions} partition(s), longer than a rebalance may last \
                     (max.poll.interval.ms and a session timeout): the group never finishes \
                     rebalancing (Tansu 0.6 keeps naming a departed member as leader); restarting \
                     the task to join the group again",
                    self.group,
                    lasted.as_secs(),
                )));
            }
            Look::Count { since, partitions } => (since, partitions),
        };
        let Some(partitions) = self.count_partitions().await else {
            return Ok(());
        };
        let Some(expected) = check.short(since, held, &partitions) else {
            return Ok(());
        };
        Err(ConnectorError::retriable(format!(
            "the consumer group {} has given this task {held} partition(s) since it last settled {} s ago, \
             but each of the connector's {} task(s) should hold at least {expected} of its topics' {}: \
             the rest went to members that are gone (a broker that drops a lapsed member without a \
             new generation, as Tansu 0.6 does after a worker is killed) or to another consumer using \
             the same group id; restarting the task to join the group again",
            self.group,
            since.elapsed().as_secs(),
            self.spec.tasks.max(1),
            partitions.iter().sum::<usize>(),
        )))
    }

    /// How many partitions each subscribed topic has (none for a topic
    /// not created yet); `None` for `topics.regex` or if the broker did
    /// not say.
    async fn count_partitions(self: &Arc<Self>) -> Option<Vec<usize>> {
        self.topics.as_ref()?;
        let this = Arc::clone(self);
        // librdkafka's metadata request blocks its caller.
        tokio::task::spawn_blocking(move || this.partitions_per_topic())
            .await
            .ok()
            .flatten()
    }

    /// [`Self::count_partitions`], blocking.
    fn partitions_per_topic(&self) -> Option<Vec<usize>> {
        let topics = self.topics.as_ref()?;
        topics
            .iter()
            .map(|topic| {
                let metadata = self
                    .consumer
                    .fetch_metadata(Some(topic), METADATA_TIMEOUT)
                    .ok()?;
                Some(
                    metadata
                        .topics()
                        .iter()
                        .filter(|t| t.name() == topic && t.error().is_none())
                        .map(|t| t.partitions().len())
                        .sum(),
                )
            })
            .collect()
    }

    /// Acts on what `flush` said of the batches put since the last
    /// commit (`put`): durable, their offsets are committed; a retriable
    /// failure reads them again; any other fails the task, as when the
    /// next `put` meets it. Returns the read-ahead to go on with.
    async fn after_flush(
        self: &Arc<Self>,
        task: &mut dyn SinkTask,
        control: &watch::Receiver<Control>,
        committing: &mut Option<Committing>,
        batches: ReadAhead<Collected>,
        put: Positions,
        flushed: Result<(), ConnectorError>,
    ) -> Result<ReadAhead<Collected>, ConnectorError> {
        match flushed {
            Ok(()) => {
                self.commit_after(committing, put).await?;
                Ok(batches)
            }
            Err(e) if e.is_retriable() => self.read_again(task, control, batches, put, e).await,
            Err(e) => Err(e),
        }
    }

    /// Reads and decodes the next batches ahead, on a task of their own.
    fn read_ahead(self: &Arc<Self>) -> ReadAhead<Collected> {
        let reader = Arc::clone(self);
        ReadAhead::start(READ_AHEAD_BATCHES, move || {
            // On the reader's task, before it allocates the next batch.
            reader.spent.free();
            let reader = Arc::clone(&reader);
            async move { reader.collect().await }
        })
    }

    /// After `error`, a retriable failure while a batch put earlier was
    /// not yet durable: stops reading ahead, restarts the task (after the
    /// backoff) and sends the consumer back to the first offsets of
    /// `from`, the batches not durable, then reads on from there. This is
    /// Kafka Connect's rewind to the last committed offsets, without
    /// leaving the consumer group: the failure does not count against
    /// `errors.max.retries`, as a transient target error never does.
    async fn read_again(
        self: &Arc<Self>,
        task: &mut dyn SinkTask,
        control: &watch::Receiver<Control>,
        batches: ReadAhead<Collected>,
        from: Positions,
        error: ConnectorError,
    ) -> Result<ReadAhead<Collected>, ConnectorError> {
        // A read under way would take records past the rewind.
        batches.stop().await;
        let offsets = from
            .first_offsets()
            .map(|(topic, partition, offset)| format!("{topic}[{partition}]@{offset}"))
            .collect::<Vec<_>>()
            .join(", ");
        self.restart_after(
            task,
            control,
            error,
            0,
            &format!("the records from {offsets}, not yet durable in the target, are read and applied again"),
        )
        .await?;
        let applier = Arc::clone(self);
        tokio::task::spawn_blocking(move || applier.seek(&from))
            .await
            .map_err(|e| ConnectorError::retriable(format!("moving the consumer back: {e}")))??;
        set_status(&self.deps, &self.spec, State::Running);
        Ok(self.read_ahead())
    }

    /// Sends the consumer back to the first offset of each partition in
    /// `from`. Blocking: librdkafka waits for its fetcher to take it.
    fn seek(&self, from: &Positions) -> Result<(), ConnectorError> {
        for (topic, partition, offset) in from.first_offsets() {
            self.consumer
                .seek(topic, partition, Offset::Offset(offset), SEEK_TIMEOUT)
                .map_err(|e| {
                    ConnectorError::retriable(format!(
                        "moving the consumer back to {topic}[{partition}]@{offset} to read records again: {e}"
                    ))
                })?;
        }
        Ok(())
    }

    /// Up to `batch_size` decoded records, and the offsets consumed per
    /// partition (dead-lettered records included): waits for the
    /// first, then takes what arrives within the linger time.
    async fn collect(&self) -> Result<Collected, ConnectorError> {
        let expected = self.last_batch.load(Ordering::Relaxed);
        let mut batch = Vec::with_capacity(expected.clamp(1, self.batch_size));
        let mut positions = Noting::default();
        let deadline = tokio::time::Instant::now() + LINGER;
        let mut taken = 0;
        // Shared by the batch's records of one topic: one copy of its name.
        let mut last_topic = Text::default();
        // One stream for the batch: the consumer's `recv` makes one per
        // message, and with it a waker slot taken and given back under a
        // lock.
        let mut messages = self.consumer.stream();
        while taken < self.batch_size {
            if taken > 0 && taken % DECODED_BETWEEN_YIELDS == 0 {
                tokio::task::yield_now().await;
            }
            // A deadline, not a duration: no clock read per message.
            let until = if taken == 0 {
                tokio::time::Instant::now() + Duration::from_secs(1)
            } else {
                deadline
            };
            let message = match tokio::time::timeout_at(until, messages.next()).await {
                Err(_) => break,
                Ok(None) => {
                    return Err(ConnectorError::retriable(
                        "the Kafka consumer's message stream ended; the task restarts from the committed offsets",
                    ))
                }
                Ok(Some(message)) => message,
            };
            let message = match message {
                // A topic not created yet (its source has not written):
                // Connect waits for it too.
                Err(KafkaError::MessageConsumption(
                    RDKafkaErrorCode::UnknownTopicOrPartition | RDKafkaErrorCode::UnknownTopic,
                )) => {
                    tracing::debug!(connector = %self.spec.connector, "a subscribed topic does not exist yet");
                    continue;
                }
                Err(e) => {
                    return Err(ConnectorError::retriable(format!(
                        "reading from the broker: {e}"
                    )))
                }
                Ok(m) => m,
            };
            taken += 1;
            // Most batches hold one topic: the shared set is only consulted
            // when the topic changes (a lock and a hash per record showed
            // as 4% of the sink's instructions under callgrind).
            // Read once: librdkafka gives the name as C text, measured and
            // checked as UTF-8 on every call.
            let topic = message.topic();
            if *last_topic != *topic {
                let mut seen = self.seen_topics.lock().unwrap_or_else(|e| e.into_inner());
                if !seen.contains(topic) {
                    // Connect lists the topics a sink reads, too.
                    self.deps.note_topic(&self.spec.connector, topic);
                    seen.insert(topic.to_owned());
                }
                last_topic = Text::from(Arc::<str>::from(topic));
            }
            // Decoded first, with the schemas cached: nearly every message
            // finds both there, and looking them up before decoding
            // looked each up twice.
            let mut decoded = self.decode(&message, &last_topic, Schemas::Cached);
            if matches!(decoded, Err(Rejected::Unfetched)) {
                // The first message of a new schema: the registry is asked
                // off the async threads, which may also be serving the
                // embedded registry being asked.
                let unknown: Vec<_> =
                    [(&self.key, message.key()), (&self.value, message.payload())]
                        .into_iter()
                        .filter_map(|(decoder, bytes)| {
                            Some((Arc::clone(decoder), decoder.unknown_schema(bytes)?))
                        })
                        .collect();
                let message = message.detach();
                self.fetch_schemas(unknown.into_iter(), &message).await?;
                decoded = self.decode(&message, &last_topic, Schemas::Fetched);
            }
            let consumed = match decoded {
                Ok(consumed) => consumed,
                Err(Rejected::Unavailable(cause)) => return Err(unavailable(cause)),
                Err(Rejected::Unfetched) => {
                    return Err(ConnectorError::fatal(
                        "a record's writer schema was still not fetched after fetching it; this is a bug in sluice, please report it",
                    ))
                }
                Err(Rejected::Record(consumed, (stage, cause))) => {
                    let raw = (
                        consumed.key_bytes.as_deref(),
                        consumed.value_bytes.as_deref(),
                    );
                    self.dead_letter(&consumed.record, raw, stage, &cause)
                        .await?;
                    positions.note(&consumed.record);
                    continue;
                }
            };
            positions.note(&consumed.record);
            let consumed = if self.transforms.is_empty() {
                consumed
            } else {
                match self.transform(consumed).await? {
                    Some(consumed) => consumed,
                    None => continue,
                }
            };
            batch.push(consumed);
        }
        self.last_batch.store(batch.len(), Ordering::Relaxed);
        Ok((batch, positions.finish()))
    }

    /// Fetches the writer schemas `unknown` names, each on a blocking
    /// thread. A registry that cannot be reached is retriable: the task
    /// restarts from the committed offsets, nothing is set aside.
    async fn fetch_schemas(
        &self,
        unknown: impl Iterator<Item = (Arc<Decoder>, i32)>,
        message: &impl Message,
    ) -> Result<(), ConnectorError> {
        for (decoder, id) in unknown {
            let fetched = tokio::task::spawn_blocking(move || decoder.fetch(id))
                .await
                .map_err(|e| {
                    ConnectorError::retriable(format!("fetching writer schema {id}: {e}"))
                })?;
            match fetched {
                Err(e) if e.is_retriable() => {
                    return Err(unavailable(format!(
                        "cannot read writer schema {id} of {}[{}]@{}: {e}",
                        message.topic(),
                        message.partition(),
                        message.offset()
                    )))
                }
                // A schema the registry refuses is the record's problem:
                // decoding names it and errors.tolerance decides.
                _ => {}
            }
        }
        Ok(())
    }

    /// Runs the configured transforms on a decoded record; `None` when it
    /// is not to be written (dropped by a transform, or set aside after a
    /// tolerated failure). Its Kafka position stays the one consumed.
    async fn transform(&self, consumed: Consumed) -> Result<Option<Consumed>, ConnectorError> {
        let Consumed {
            record,
            key_bytes,
            value_bytes,
        } = consumed;
        let (partition, offset) = (record.kafka_partition, record.kafka_offset);
        let topic = record.topic.clone();
        // Only a tolerated failure needs the record as it was consumed.
        let original = self.errors.tolerate.then(|| record.clone());
        match self.transforms.apply(Record::from_sink(record)) {
            Ok(Some(out)) => Ok(Some(Consumed {
                record: out.into_sink(partition, offset),
                key_bytes,
                value_bytes,
            })),
            Ok(None) => Ok(None),
            Err(e) => match original {
                Some(original) => {
                    let cause = format!("{topic}[{partition}]@{offset} failed in {e}");
                    let raw = (key_bytes.as_deref(), value_bytes.as_deref());
                    self.dead_letter(&original, raw, "TRANSFORMATION", &cause)
                        .await?;
                    Ok(None)
                }
                None => Err(ConnectorError::fatal(format!(
                    "connector {} task {}: the record {topic}[{partition}]@{offset} failed in {e}; fix the transform's settings, or set errors.tolerance=all (with errors.deadletterqueue.topic.name) to set such records aside",
                    self.spec.connector, self.spec.task_id
                ))),
            },
        }
    }

    /// `message` (of `topic`) decoded, or why not: the record at fault
    /// (with the converter stage that failed), or a registry that cannot
    /// be reached.
    fn decode(
        &self,
        message: &impl Message,
        topic: &Text,
        schemas: Schemas,
    ) -> Result<Consumed, Rejected> {
        let headers = self
            .read_headers
            .then(|| message.headers())
            .flatten()
            .map(|h| {
                h.iter()
                    .map(|x| {
                        (
                            x.key.to_owned(),
                            x.value.map(<[u8]>::to_vec).unwrap_or_default(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        let mut consumed = Consumed {
            record: SinkRecord {
                topic: topic.clone(),
                kafka_partition: message.partition(),
                kafka_offset: message.offset(),
                key_schema: None,
                key: None,
                value_schema: None,
                value: None,
                timestamp_ms: message.timestamp().to_millis(),
                headers,
            },
            key_bytes: None,
            value_bytes: None,
        };
        let (key, payload) = (message.key(), message.payload());
        // The raw bytes are kept only where a dead-letter queue may need them.
        let keep = |c: &mut Consumed| {
            c.key_bytes = key.map(<[u8]>::to_vec);
            c.value_bytes = payload.map(<[u8]>::to_vec);
        };
        if self.errors.dead_letter_topic.is_some() || self.errors.log_messages {
            keep(&mut consumed);
        }
        let place =
            |r: &SinkRecord| format!("{}[{}]@{}", r.topic, r.kafka_partition, r.kafka_offset);
        let read = |decoder: &Decoder, bytes| match schemas {
            Schemas::Cached => match decoder.decode_cached(bytes) {
                Some(decoded) => Ok(decoded),
                None => Err(Rejected::Unfetched),
            },
            Schemas::Fetched => Ok(decoder.decode(bytes)),
        };
        match read(&self.key, key)? {
            Ok((schema, key)) => {
                consumed.record.key_schema = schema;
                consumed.record.key = key;
            }
            Err(e) if e.is_retriable() => {
                let cause = format!("cannot decode the key of {}: {e}", place(&consumed.record));
                return Err(Rejected::Unavailable(cause));
            }
            Err(e) => {
                let cause = format!("cannot decode the key of {}: {e}", place(&consumed.record));
                keep(&mut consumed);
                return Err(Rejected::Record(
                    Box::new(consumed),
                    ("KEY_CONVERTER", cause),
                ));
            }
        }
        match read(&self.value, payload)? {
            Ok((schema, value)) => {
                consumed.record.value_schema = schema;
                consumed.record.value = value;
                Ok(consumed)
            }
            Err(e) => {
                let cause = format!(
                    "cannot decode the value of {}: {e}",
                    place(&consumed.record)
                );
                if e.is_retriable() {
                    return Err(Rejected::Unavailable(cause));
                }
                keep(&mut consumed);
                Err(Rejected::Record(
                    Box::new(consumed),
                    ("VALUE_CONVERTER", cause),
                ))
            }
        }
    }

    /// Hands the batch to the task. Under `errors.tolerance=all`, a batch the
    /// target refuses for a non-retriable reason is retried record by record
    /// so only the records at fault go to the dead-letter queue.
    ///
    /// With `earlier_outstanding` (a batch put before and not yet durable)
    /// a failure is not retried in place: it may be the earlier batch's,
    /// whose records are gone, so the runner reads both again. Returns
    /// whether records were handed to the task.
    async fn apply(
        &self,
        task: &mut dyn SinkTask,
        batch: Vec<Consumed>,
        control: &watch::Receiver<Control>,
        earlier_outstanding: bool,
    ) -> Result<bool, ConnectorError> {
        if batch.is_empty() {
            return Ok(false);
        }
        // The records go to the task by reference; the raw bytes stay for
        // the dead-letter queue.
        let (records, raw): (Vec<SinkRecord>, Vec<Raw>) = batch
            .into_iter()
            .map(|c| (c.record, (c.key_bytes, c.value_bytes)))
            .unzip();
        let count = records.len() as u64;
        match self
            .put_retrying(task, &records, control, !earlier_outstanding)
            .await
        {
            Ok(()) => {
                self.metrics
                    .records_produced
                    .fetch_add(count, Ordering::Relaxed);
                self.spent.give(records);
                return Ok(true);
            }
            Err(e) if e.is_retriable() || !self.errors.tolerate => {
                let message = format!(
                    "connector {} task {}: applying {count} records: {e}",
                    self.spec.connector, self.spec.task_id
                );
                return Err(if e.is_retriable() {
                    ConnectorError::retriable(message)
                } else {
                    ConnectorError::fatal(message)
                });
            }
            Err(e) => {
                tracing::warn!(connector = %self.spec.connector, error = %e, "batch refused; retrying record by record (errors.tolerance=all)");
            }
        }
        for (record, (key, value)) in records.iter().zip(&raw) {
            match self
                .put_retrying(task, std::slice::from_ref(record), control, true)
                .await
            {
                Ok(()) => {
                    self.metrics
                        .records_produced
                        .fetch_add(1, Ordering::Relaxed);
                }
                Err(e) if e.is_retriable() => return Err(e),
                Err(e) => {
                    self.dead_letter(
                        record,
                        (key.as_deref(), value.as_deref()),
                        "TASK_PUT",
                        &e.to_string(),
                    )
                    .await?
                }
            }
        }
        Ok(true)
    }

    /// `put`, and after a retriable failure (target restarting, connection
    /// lost) the same records again on a restarted task, with backoff —
    /// the consumer and its position stay as they are, so nothing is
    /// skipped and the group is not disturbed. Gives up (retriable) only
    /// when told to stop.
    ///
    /// Under `errors.tolerance=all` the batch is also made durable
    /// (`SinkTask::flush`) before this returns, so a failure found only
    /// then is still this batch's, with its records at hand to try one by
    /// one. Without `in_place`, a failure is returned at once.
    async fn put_retrying(
        &self,
        task: &mut dyn SinkTask,
        records: &[SinkRecord],
        control: &watch::Receiver<Control>,
        in_place: bool,
    ) -> Result<(), ConnectorError> {
        let mut failures: u32 = 0;
        loop {
            let mut applied = task.put(records).await;
            if applied.is_ok() && self.errors.tolerate {
                applied = task.flush().await;
            }
            let error = match applied {
                Ok(()) => {
                    if failures > 0 {
                        set_status(&self.deps, &self.spec, State::Running);
                    }
                    return Ok(());
                }
                Err(e) if !e.is_retriable() || !in_place => return Err(e),
                Err(e) => e,
            };
            self.restart_after(
                task,
                control,
                error,
                failures,
                "the same records are applied again; the consumer position has not moved",
            )
            .await?;
            failures = failures.saturating_add(1);
        }
    }

    /// After the retriable `error` (the `failures`-th in a row): reports
    /// it (the task FAILED, with the cause and `then`, what happens next),
    /// waits out the backoff and restarts the task. Returns the error if
    /// told to stop meanwhile, or the task's if it cannot start for a
    /// reason retrying does not cure; a start that fails for now is left
    /// to the next `put`, which fails and retries in turn.
    async fn restart_after(
        &self,
        task: &mut dyn SinkTask,
        control: &watch::Receiver<Control>,
        error: ConnectorError,
        failures: u32,
        then: &str,
    ) -> Result<(), ConnectorError> {
        let backoff = Duration::from_millis(500u64 << failures.min(7)).min(Duration::from_secs(60));
        self.metrics.errors.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(connector = %self.spec.connector, task = self.spec.task_id, error = %error, "applying failed; retrying: {then}");
        let status = TaskStatus::failed(
            &self.deps.worker_id,
            format!(
                "{error}\n(retriable: {then}, in {} ms)",
                backoff.as_millis()
            ),
        );
        self.deps
            .metrics
            .set_state(&self.spec.connector, self.spec.task_id, status.state);
        self.deps
            .status
            .put_task(&self.spec.connector, self.spec.task_id, status);
        let mut watching = control.clone();
        if tokio::time::timeout(backoff, watching.wait_for(|c| c.is_stop()))
            .await
            .is_ok()
        {
            return Err(error);
        }
        task.stop().await;
        match task.start(&self.spec.config).await {
            Ok(()) => Ok(()),
            Err(e) if !e.is_retriable() => Err(e),
            Err(e) => {
                tracing::warn!(connector = %self.spec.connector, error = %e, "restarting the sink task failed; retrying");
                Ok(())
            }
        }
    }

    /// Sends a record that cannot be handled to the dead-letter queue (or
    /// fails the task when errors are not tolerated).
    async fn dead_letter(
        &self,
        record: &SinkRecord,
        (key, value): (Option<&[u8]>, Option<&[u8]>),
        stage: &str,
        cause: &str,
    ) -> Result<(), ConnectorError> {
        if !self.errors.tolerate {
            return Err(ConnectorError::fatal(format!(
                "{cause}. Fix the producer side or the converter settings (key.converter / value.converter), or set errors.tolerance=all with errors.deadletterqueue.topic.name to set such records aside"
            )));
        }
        self.metrics.errors.fetch_add(1, Ordering::Relaxed);
        let text = |bytes: Option<&[u8]>| bytes.map(|b| String::from_utf8_lossy(b).into_owned());
        let skipped = Skipped {
            connector: &self.spec.connector,
            topic: &record.topic,
            position: Some((record.kafka_partition, record.kafka_offset)),
            content: (text(key), text(value)),
            cause,
        };
        let Some(topic) = &self.errors.dead_letter_topic else {
            self.errors.log_skipped(&skipped, None);
            return Ok(());
        };
        let mut headers = OwnedHeaders::new();
        for (k, v) in &record.headers {
            headers = headers.insert(Header {
                key: k,
                value: Some(v),
            });
        }
        let partition = record.kafka_partition.to_string();
        let offset = record.kafka_offset.to_string();
        let task_id = self.spec.task_id.to_string();
        let context = [
            ("__connect.errors.topic", record.topic.as_str()),
            ("__connect.errors.partition", &partition),
            ("__connect.errors.offset", &offset),
            ("__connect.errors.connector.name", &self.spec.connector),
            ("__connect.errors.task.id", &task_id),
            ("__connect.errors.stage", stage),
            ("__connect.errors.class.name", self.spec.plugin.info().class),
            ("__connect.errors.exception.message", cause),
        ];
        // Connect adds the failure's context only when asked.
        let context = if self.errors.context_headers {
            &context[..]
        } else {
            &[]
        };
        for (key, value) in context {
            headers = headers.insert(Header {
                key,
                value: Some(value.as_bytes()),
            });
        }
        let mut out = BaseRecord::<[u8], [u8], usize>::with_opaque_to(topic, 0).headers(headers);
        if let Some(k) = key {
            out = out.key(k);
        }
        if let Some(v) = value {
            out = out.payload(v);
        }
        let mut layout = self.deps.topic_layout;
        if let Some(factor) = self.errors.dead_letter_replication {
            layout.replication_factor = factor;
        }
        self.deps.topics.ensure(topic, layout).await.map_err(|e| {
            ConnectorError::retriable(format!("creating the dead-letter topic {topic}: {e}"))
        })?;
        crate::kafka::delivery::send_and_wait(&self.deps.producer, out, Duration::from_secs(60))
            .await
            .map_err(|e| {
                ConnectorError::retriable(format!("writing to the dead-letter topic {topic}: {e}"))
            })?;
        self.errors.log_skipped(&skipped, Some(topic));
        Ok(())
    }

    /// Starts committing the next offset to read for every partition in
    /// the batch, on a blocking thread ([`settle`] waits for it): the
    /// commit waits for the broker's answer (for as long as the group
    /// coordinator cannot be reached, when the broker is cut off), and a
    /// tokio worker held that long stalls every other task and REST
    /// request scheduled on it.
    fn start_commit(self: &Arc<Self>, positions: Positions) -> Committing {
        let applier = Arc::clone(self);
        tokio::task::spawn_blocking(move || applier.commit_now(&positions))
    }

    /// [`Self::start_commit`], on the calling thread.
    fn commit_now(&self, positions: &Positions) -> Result<(), ConnectorError> {
        let mut list = TopicPartitionList::new();
        for (topic, partition, next) in positions.next_offsets() {
            list.add_partition_offset(topic, partition, Offset::Offset(next))
                .map_err(|e| ConnectorError::retriable(format!("building the commit: {e}")))?;
        }
        self.consumer
            .commit(&list, CommitMode::Sync)
            .map_err(|e| ConnectorError::retriable(format!("committing consumer offsets: {e}")))?;
        self.metrics.offset_commits.fetch_add(1, Ordering::Relaxed);
        self.metrics.last_commit_ms.store(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as i64),
            Ordering::Relaxed,
        );
        Ok(())
    }
}

/// A consumer commit under way on a blocking thread.
type Committing = tokio::task::JoinHandle<Result<(), ConnectorError>>;

/// Waits for the commit under way, if any, and gives its outcome.
async fn settle(committing: Option<Committing>) -> Result<(), ConnectorError> {
    match committing {
        None => Ok(()),
        Some(commit) => commit
            .await
            .map_err(|e| ConnectorError::retriable(format!("committing consumer offsets: {e}")))?,
    }
}

/// Waits for the commit under way and gives its outcome, leaving none
/// under way; with none, never ends (a `select!` branch that reports a
/// failed commit while waiting for something else).
async fn landed(committing: &mut Option<Committing>) -> Result<(), ConnectorError> {
    let Some(commit) = committing.as_mut() else {
        return std::future::pending().await;
    };
    let outcome = commit.await;
    *committing = None;
    outcome.map_err(|e| ConnectorError::retriable(format!("committing consumer offsets: {e}")))?
}

/// Applied batches' records, handed back to be freed by the task that
/// read (and allocated) them, before it reads the next batch: off the
/// path from one batch's apply to the next one's, and in the thread whose
/// allocator heap holds them. Freed by the runner, 5,000 decoded change
/// events took it about 1.9 ms a batch (12 % of the PostgreSQL target's
/// apply, timed in `scripts/bench-sink`); freed on a blocking thread,
/// every free crossed threads, which mimalloc makes the owning thread
/// collect again: about 1,000 instructions a record of the ~15,600 the
/// worker spent (callgrind, `scripts/bench-sink 100000`).
#[derive(Default)]
struct Spent(std::sync::Mutex<Vec<Vec<SinkRecord>>>);

impl Spent {
    /// Hands an applied batch's records over to be freed.
    fn give(&self, records: Vec<SinkRecord>) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(records);
    }

    /// Frees every batch handed over so far.
    fn free(&self) {
        let batches = std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()));
        for records in batches {
            records.into_iter().for_each(SinkRecord::release);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failing_commit() -> Committing {
        tokio::task::spawn_blocking(|| Err(ConnectorError::retriable("the coordinator is gone")))
    }

    #[tokio::test]
    async fn a_failed_commit_is_reported_once_and_leaves_none_under_way() {
        let mut committing = Some(failing_commit());
        let error = landed(&mut committing)
            .await
            .expect_err("the commit's failure");
        assert!(error.is_retriable());
        assert!(
            error.to_string().contains("the coordinator is gone"),
            "{error}"
        );
        assert!(committing.is_none(), "reported once");
        // With none under way it never ends: a `select!` branch that only
        // ever reports a failure, never an empty success.
        let idle = tokio::time::timeout(Duration::from_millis(50), landed(&mut committing)).await;
        assert!(idle.is_err(), "ended with nothing under way: {idle:?}");
    }

    #[tokio::test]
    async fn settling_waits_for_the_commit_and_gives_its_outcome() {
        assert!(settle(None).await.is_ok(), "nothing under way");
        let (release, held) = std::sync::mpsc::channel::<()>();
        let commit = tokio::task::spawn_blocking(move || {
            // A commit that lands only once released.
            held.recv()
                .map_err(|e| ConnectorError::retriable(e.to_string()))
        });
        let settling = tokio::spawn(settle(Some(commit)));
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!settling.is_finished(), "settled before the commit landed");
        release.send(()).expect("the commit waits");
        settling.await.expect("joined").expect("the commit landed");
        let failed = settle(Some(failing_commit())).await;
        assert!(failed.is_err(), "a failed commit settles as failed");
    }
}
