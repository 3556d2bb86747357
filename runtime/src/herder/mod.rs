//! The herder: owns the connectors and tasks this worker runs, applies
//! what the REST API asks (create, reconfigure, pause, stop, restart,
//! delete), and keeps configs and target states in the config store so
//! that a restarted worker (or, in a group, another one) picks up where it
//! was.
//!
//! One file per role: `lifecycle` brings connectors up and down and
//! follows the group and the config store, `config_writes` validates and
//! stores configs, `control` changes target states and restarts,
//! `reports` answers reads, `offsets` reads and edits offsets; the tasks
//! themselves run in [`source_runner`] and `sink_runner`.

mod config_writes;
mod control;
pub mod error;
pub mod error_policy;
pub mod key_fates;
mod lifecycle;
pub mod offset_tracker;
mod offsets;
pub mod record_sink;
mod reports;
mod sink_runner;
pub mod source_runner;
pub mod status;
mod supervise;
pub mod transactional_sink;
pub mod validation;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use sluice_connector_api::ConnectorConfig;
use tokio::sync::{watch, Mutex};
use tokio::task::JoinHandle;

pub use control::Restarted;
pub use error::HerderError;
use lifecycle::join_task;
pub use reports::{ConnectorInfo, StatusReport, TaskId, TaskInfo, TaskStatusReport};
use source_runner::Control;
use status::{ConnectorStatus, State};

use crate::kafka::{TopicCreator, TopicLayout};
use crate::metrics::Metrics;
use crate::plugins::PluginRegistry;
use crate::store::{ConfigStore, OffsetStore, StatusStore, StoredConnector};

/// Which connectors and tasks run on this worker, by [`Unit`] of
/// placement.
pub trait Placement: Send + Sync {
    /// Whether this worker may run `unit` now. A worker in a group owns a
    /// share and only while its lease holds; runners ask before each
    /// write, so a worker that lost its share stops writing.
    fn owns(&self, unit: Unit<'_>) -> bool;

    /// Whether connectors move between workers (a group), so that a
    /// worker stopping is a handover rather than the end of a run.
    fn shared(&self) -> bool {
        false
    }
}

/// A unit of placement: task `task` of `connector`. Task 0 stands for the
/// connector too (a single-task connector — every CDC source — never
/// splits its connector and its task over two workers); each further task
/// is placed on its own, so a multi-task connector (a JDBC sink with
/// `tasks.max` above 1) spreads its tasks over the group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Unit<'a> {
    /// The connector (or another named duty, such as the registry's writer).
    pub connector: &'a str,
    /// The task number.
    pub task: u32,
}

impl<'a> Unit<'a> {
    /// The unit of a connector itself, placed with its task 0.
    pub fn connector(connector: &'a str) -> Self {
        Self { connector, task: 0 }
    }

    /// The unit of task `task` of `connector`.
    pub fn task(connector: &'a str, task: u32) -> Self {
        Self { connector, task }
    }
}

/// A standalone worker runs every connector.
pub struct Everything;

impl Placement for Everything {
    fn owns(&self, _: Unit<'_>) -> bool {
        true
    }
}

/// Shared services every task runner uses.
pub struct RunnerDeps {
    /// Which connectors this worker runs.
    pub placement: Arc<dyn Placement>,
    /// The worker's producer.
    pub producer: crate::kafka::Producer,
    /// How to reach the broker, for sink tasks' consumers.
    pub kafka: crate::kafka::KafkaSettings,
    /// Topic creation.
    pub topics: TopicCreator,
    /// Where offsets go.
    pub offsets: Arc<dyn OffsetStore>,
    /// Where statuses go.
    pub status: Arc<dyn StatusStore>,
    /// Counters.
    pub metrics: Arc<Metrics>,
    /// This worker's id (its advertised REST address).
    pub worker_id: String,
    /// How often acknowledged offsets are stored.
    pub offset_flush_interval: Duration,
    /// Most unacknowledged records per task before it waits.
    pub max_in_flight: usize,
    /// How long a stopping task waits for the broker.
    pub shutdown_timeout: Duration,
    /// Worker-level converter settings (`key.converter`, ...).
    pub converter_defaults: BTreeMap<String, String>,
    /// The placeholders (`${env:}`, `${file:}`) this worker resolves.
    pub providers: crate::secrets::Providers,
    /// Which `producer.override.*` / `consumer.override.*` keys are allowed.
    pub override_policy: crate::kafka::overrides::OverridePolicy,
    /// Layout of topics created when a connector does not say.
    pub topic_layout: TopicLayout,
    /// Topics each connector has written to, for `GET .../topics`.
    pub active_topics: std::sync::Mutex<BTreeMap<String, BTreeSet<String>>>,
    /// Set when source tasks deliver exactly once (records and offsets in
    /// one transaction); `None` stores offsets after acknowledgement.
    pub exactly_once: Option<transactional_sink::ExactlyOnce>,
}

impl RunnerDeps {
    /// Why the worker's producer can no longer deliver anything, if it
    /// hit a fatal error (an idempotent producer's sequence broken by the
    /// broker, a fenced producer): librdkafka does not recover from those.
    pub fn producer_fatal_error(&self) -> Option<String> {
        use rdkafka::producer::Producer;
        self.producer
            .client()
            .fatal_error()
            .map(|(code, reason)| format!("{reason} ({code:?})"))
    }

    /// Notes that `connector` writes to `topic`.
    pub fn note_topic(&self, connector: &str, topic: &str) {
        let mut all = self.active_topics.lock().unwrap_or_else(|e| e.into_inner());
        all.entry(connector.to_owned())
            .or_default()
            .insert(topic.to_owned());
    }
}

/// A running task's handle.
struct TaskHandle {
    control: watch::Sender<Control>,
    join: JoinHandle<()>,
}

/// One connector known to the herder.
struct Entry {
    stored: StoredConnector,
    /// Task configs as last computed (secrets resolved).
    task_configs: Vec<ConnectorConfig>,
    /// The tasks running on this worker, by task id; `None` for those
    /// another worker of the group runs (or none runs).
    tasks: Vec<Option<TaskHandle>>,
    /// Whether the connector itself was launched on this worker: it
    /// reports the connector's status (a worker in a group keeps every
    /// connector's config but runs only its share).
    here: bool,
}

impl Entry {
    /// Whether any part of the connector runs on this worker.
    fn anything_here(&self) -> bool {
        self.here || self.tasks.iter().any(Option::is_some)
    }
}

/// The standalone herder.
pub struct Herder {
    plugins: PluginRegistry,
    configs: Arc<dyn ConfigStore>,
    deps: Arc<RunnerDeps>,
    connectors: Mutex<BTreeMap<String, Entry>>,
    /// Set once shutdown began: nothing starts any more.
    closing: std::sync::atomic::AtomicBool,
    /// Counts the configs this worker stored, so that a read of the config
    /// store that may predate one of them is not applied over it.
    config_writes: std::sync::atomic::AtomicU64,
}

impl Herder {
    /// A herder with no connectors yet; call [`Herder::restore`] next.
    pub fn new(
        plugins: PluginRegistry,
        configs: Arc<dyn ConfigStore>,
        deps: Arc<RunnerDeps>,
    ) -> Self {
        Self {
            plugins,
            configs,
            deps,
            connectors: Mutex::new(BTreeMap::new()),
            closing: std::sync::atomic::AtomicBool::new(false),
            config_writes: std::sync::atomic::AtomicU64::new(0),
        }
    }

    fn runs_here(&self, unit: Unit<'_>) -> bool {
        !self.closing.load(std::sync::atomic::Ordering::Acquire) && self.deps.placement.owns(unit)
    }

    fn runs_task_here(&self, connector: &str, task: u32) -> bool {
        self.runs_here(Unit::task(connector, task))
    }

    /// The plugins this worker offers.
    pub fn plugins(&self) -> &PluginRegistry {
        &self.plugins
    }

    /// The worker id.
    pub fn worker_id(&self) -> &str {
        &self.deps.worker_id
    }

    /// Why the worker cannot work any more, if it cannot (see
    /// [`RunnerDeps::producer_fatal_error`]).
    pub fn fatal_error(&self) -> Option<String> {
        self.deps.producer_fatal_error()
    }

    /// Stops every task, letting each drain and commit; for shutdown.
    pub async fn shutdown(&self) {
        self.closing
            .store(true, std::sync::atomic::Ordering::Release);
        let mut connectors = self.connectors.lock().await;
        // In a group the connectors live on elsewhere: a handover.
        let control = if self.deps.placement.shared() {
            Control::Handover
        } else {
            Control::Stop
        };
        for (name, entry) in connectors.iter_mut() {
            tracing::info!(connector = %name, "stopping for shutdown");
            for handle in entry.tasks.iter().flatten() {
                let _ = handle.control.send(control);
            }
        }
        for entry in connectors.values_mut() {
            for handle in entry.tasks.drain(..).flatten() {
                join_task(handle).await;
            }
        }
    }

    fn put_connector_status(&self, name: &str, state: State, trace: Option<String>) {
        self.deps.status.put_connector(
            name,
            ConnectorStatus {
                state,
                worker_id: self.deps.worker_id.clone(),
                trace,
            },
        );
    }
}
