//! The standalone herder: owns connectors and their tasks on this worker,
//! applies what the REST API asks (create, reconfigure, pause, stop,
//! restart, delete), and keeps configs and target states in the config
//! store so that a restarted worker picks up where it was.

pub mod error;
pub mod error_policy;
pub mod key_fates;
pub mod offset_tracker;
pub mod record_sink;
mod sink_runner;
pub mod source_runner;
pub mod status;
mod supervise;
pub mod transactional_sink;
pub mod validation;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde_json::{Map, Value as Json};
use sluice_connector_api::{ConnectorConfig, SourceOffset, SourcePartition};
use tokio::sync::{watch, Mutex};
use tokio::task::JoinHandle;

pub use error::HerderError;
use source_runner::{Control, SourceTaskSpec};
use status::{ConnectorStatus, State, TaskStatus};
use validation::ValidationReport;

use crate::kafka::{TopicCreator, TopicLayout};
use crate::metrics::Metrics;
use crate::plugins::{Plugin, PluginRegistry};
use crate::secrets;
use crate::store::{ConfigStore, OffsetStore, StatusStore, StoredConnector, TargetState};

/// Which connectors run on this worker.
pub trait Placement: Send + Sync {
    /// Whether this worker may run `connector` now. A worker in a group
    /// owns a share and only while its lease holds; runners ask before
    /// each write, so a worker that lost its share stops writing.
    fn owns(&self, connector: &str) -> bool;

    /// Whether connectors move between workers (a group), so that a
    /// worker stopping is a handover rather than the end of a run.
    fn shared(&self) -> bool {
        false
    }
}

/// A standalone worker runs every connector.
pub struct Everything;

impl Placement for Everything {
    fn owns(&self, _: &str) -> bool {
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
    tasks: Vec<Option<TaskHandle>>,
    /// Whether it was launched to run on this worker (a worker in a group
    /// keeps every connector's config but runs only its share).
    here: bool,
}

/// Connect's connector description (`GET /connectors/{name}`).
#[derive(Debug, Clone, Serialize)]
pub struct ConnectorInfo {
    /// Its name.
    pub name: String,
    /// Its config, secrets hidden.
    pub config: BTreeMap<String, String>,
    /// Its tasks.
    pub tasks: Vec<TaskId>,
    /// source or sink.
    #[serde(rename = "type")]
    pub kind: &'static str,
}

/// A task's identity.
#[derive(Debug, Clone, Serialize)]
pub struct TaskId {
    /// Its connector.
    pub connector: String,
    /// Its number.
    pub task: u32,
}

/// Connect's status body (`GET /connectors/{name}/status`).
#[derive(Debug, Clone, Serialize)]
pub struct StatusReport {
    /// The connector name.
    pub name: String,
    /// The connector's status.
    pub connector: ConnectorStatus,
    /// Its tasks' statuses.
    pub tasks: Vec<TaskStatusReport>,
    /// source or sink.
    #[serde(rename = "type")]
    pub kind: &'static str,
}

/// One task's status with its id.
#[derive(Debug, Clone, Serialize)]
pub struct TaskStatusReport {
    /// The task number.
    pub id: u32,
    /// Its status.
    #[serde(flatten)]
    pub status: TaskStatus,
}

/// A task's config (`GET /connectors/{name}/tasks`).
#[derive(Debug, Clone, Serialize)]
pub struct TaskInfo {
    /// Its identity.
    pub id: TaskId,
    /// Its config, secrets hidden.
    pub config: BTreeMap<String, String>,
}

/// The standalone herder.
pub struct Herder {
    plugins: PluginRegistry,
    configs: Arc<dyn ConfigStore>,
    deps: Arc<RunnerDeps>,
    connectors: Mutex<BTreeMap<String, Entry>>,
    /// Set once shutdown began: nothing starts any more.
    closing: std::sync::atomic::AtomicBool,
}

fn kind_of(plugin: &Plugin) -> &'static str {
    plugin.info().kind.as_str()
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
        }
    }

    fn runs_here(&self, name: &str) -> bool {
        !self.closing.load(std::sync::atomic::Ordering::Acquire) && self.deps.placement.owns(name)
    }

    /// Starts the connectors this worker now owns and stops those it no
    /// longer owns; returns when the stopped ones have stopped. Called by
    /// the group membership whenever the assignment or the lease changes.
    /// A `fenced` worker (its lease lapsed) does not report what it gives
    /// up: the group has moved on, and a report sent from behind a cut
    /// would land after the next owner's.
    pub async fn reassign(&self, fenced: bool) {
        let mut connectors = self.connectors.lock().await;
        let names: Vec<String> = connectors.keys().cloned().collect();
        for name in names {
            let here = self.runs_here(&name);
            let Some(entry) = connectors.get_mut(&name) else {
                continue;
            };
            if entry.here == here {
                continue;
            }
            if let Some(mut old) = connectors.remove(&name) {
                hand_over(&mut old.tasks).await;
                if !here {
                    tracing::info!(connector = %name, "connector released to another worker");
                    if fenced {
                        self.deps.status.forget(&name);
                    } else {
                        self.deps.status.release(&name);
                    }
                }
                let entry = self.launch(old.stored);
                connectors.insert(name, entry);
            }
        }
    }

    /// Applies what the config store holds that this worker does not know
    /// yet: connectors created, changed or deleted through another worker
    /// of the group.
    pub async fn sync_configs(&self) -> Result<(), HerderError> {
        // Off the async threads: a broker that does not answer holds the
        // read for its timeout, and the tasks' fence checks must go on.
        let configs = Arc::clone(&self.configs);
        let loaded = match tokio::task::spawn_blocking(move || configs.load()).await {
            Ok(loaded) => loaded?,
            Err(e) => {
                tracing::warn!(error = %e, "reading the config store was interrupted");
                return Ok(());
            }
        };
        let stored: BTreeMap<String, StoredConnector> =
            loaded.into_iter().map(|c| (c.name.clone(), c)).collect();
        let mut connectors = self.connectors.lock().await;
        let gone: Vec<String> = connectors
            .keys()
            .filter(|name| !stored.contains_key(*name))
            .cloned()
            .collect();
        for name in gone {
            if let Some(mut old) = connectors.remove(&name) {
                stop_tasks(&mut old.tasks).await;
                self.deps.status.forget(&name);
                self.deps.metrics.remove_connector(&name);
                tracing::info!(connector = %name, "connector deleted through another worker");
            }
        }
        for (name, connector) in stored {
            if connectors.get(&name).is_some_and(|e| e.stored == connector) {
                continue;
            }
            if let Some(entry) = connectors.get_mut(&name) {
                if entry.here && self.pause_or_resume(entry, &connector) {
                    continue;
                }
            }
            if let Some(mut old) = connectors.remove(&name) {
                stop_tasks(&mut old.tasks).await;
                tracing::info!(connector = %name, "connector changed through another worker");
            } else {
                tracing::info!(connector = %name, "connector created through another worker");
            }
            let entry = self.launch(connector);
            connectors.insert(name, entry);
        }
        Ok(())
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

    /// Starts every connector in the config store in its stored target state.
    pub async fn restore(&self) -> Result<usize, HerderError> {
        let stored = self.configs.load()?;
        let count = stored.len();
        let mut connectors = self.connectors.lock().await;
        for connector in stored {
            tracing::info!(connector = %connector.name, state = ?connector.target_state, "restoring connector");
            let entry = self.launch(connector);
            connectors.insert(entry.stored.name.clone(), entry);
        }
        Ok(count)
    }

    /// Validates a config for the plugin it names.
    pub fn validate(&self, config: &ConnectorConfig) -> Result<ValidationReport, HerderError> {
        let plugin =
            validation::plugin_for(&self.plugins, config).map_err(HerderError::BadRequest)?;
        Ok(self.report(&plugin, config))
    }

    /// The validation report of `config` for `plugin` on this worker.
    fn report(&self, plugin: &Plugin, config: &ConnectorConfig) -> ValidationReport {
        let mut report = validation::validate(plugin, config, &self.deps.converter_defaults);
        if matches!(plugin, Plugin::Source(_)) {
            report.check_exactly_once(config, self.deps.exactly_once.is_some());
        }
        report
    }

    fn check(&self, config: &ConnectorConfig) -> Result<Plugin, HerderError> {
        let plugin =
            validation::plugin_for(&self.plugins, config).map_err(HerderError::BadRequest)?;
        let report = self.report(&plugin, config);
        let refused = self.deps.providers.check(&config.0);
        let client = match &plugin {
            Plugin::Source(_) => crate::kafka::overrides::Client::Producer,
            Plugin::Sink(_) => crate::kafka::overrides::Client::Consumer,
        };
        let overrides =
            crate::kafka::overrides::overrides(config, client, self.deps.override_policy).err();
        if report.error_count > 0 || !refused.is_empty() || overrides.is_some() {
            let mut errors = report.error_lines();
            errors.extend(refused.iter().map(ToString::to_string));
            errors.extend(overrides.iter().map(ToString::to_string));
            return Err(HerderError::InvalidConfig {
                class: report.name.clone(),
                errors,
            });
        }
        for key in validation::unknown_keys(&plugin, config) {
            tracing::warn!(connector = config.get("name").unwrap_or(""), key = %key, "unknown config key kept; check it for typos");
        }
        for (key, reason) in validation::keys_without_effect(config) {
            tracing::warn!(connector = config.get("name").unwrap_or(""), key = %key, reason, "config key accepted without effect");
        }
        Ok(plugin)
    }

    /// Creates a connector; fails if the name is taken.
    pub async fn create(
        &self,
        name: &str,
        config: BTreeMap<String, String>,
        initial_state: TargetState,
    ) -> Result<ConnectorInfo, HerderError> {
        let mut connectors = self.connectors.lock().await;
        if connectors.contains_key(name) {
            return Err(HerderError::AlreadyExists(name.to_owned()));
        }
        let config = with_name(name, config)?;
        self.check(&ConnectorConfig(config.clone()))?;
        let stored = StoredConnector {
            name: name.to_owned(),
            config,
            // Connect 3.5's initial_state: STOPPED lets offsets be seeded
            // before the first run.
            target_state: initial_state,
        };
        self.configs.put(&stored)?;
        tracing::info!(connector = %name, "connector created");
        let entry = self.launch(stored);
        let info = self.info_of(&entry);
        connectors.insert(name.to_owned(), entry);
        Ok(info)
    }

    /// Creates or reconfigures a connector; true if it was created.
    pub async fn put_config(
        &self,
        name: &str,
        mut config: BTreeMap<String, String>,
    ) -> Result<(bool, ConnectorInfo), HerderError> {
        let mut connectors = self.connectors.lock().await;
        let previous = connectors.get(name).map(|e| e.stored.clone());
        if let Some(previous) = &previous {
            secrets::restore_hidden(&mut config, &previous.config)
                .map_err(HerderError::BadRequest)?;
        }
        let config = with_name(name, config)?;
        self.check(&ConnectorConfig(config.clone()))?;
        if let Some(entry) = connectors.get(name) {
            if entry.stored.config == config {
                // Connect does not restart anything for an unchanged config.
                return Ok((false, self.info_of(entry)));
            }
        }
        let stored = StoredConnector {
            name: name.to_owned(),
            config,
            target_state: previous
                .as_ref()
                .map_or(TargetState::Started, |p| p.target_state),
        };
        self.configs.put(&stored)?;
        if let Some(mut old) = connectors.remove(name) {
            stop_tasks(&mut old.tasks).await;
            tracing::info!(connector = %name, "connector reconfigured; tasks restarted with the new config");
        } else {
            tracing::info!(connector = %name, "connector created");
        }
        let entry = self.launch(stored);
        let info = self.info_of(&entry);
        connectors.insert(name.to_owned(), entry);
        Ok((previous.is_none(), info))
    }

    /// Connect 3.6's `PATCH /connectors/{name}/config`: the given keys are
    /// set, keys given as `None` (JSON null) removed, the rest kept.
    pub async fn patch_config(
        &self,
        name: &str,
        patch: BTreeMap<String, Option<String>>,
    ) -> Result<ConnectorInfo, HerderError> {
        let mut config = {
            let connectors = self.connectors.lock().await;
            let entry = connectors
                .get(name)
                .ok_or_else(|| HerderError::NotFound(name.to_owned()))?;
            entry.stored.config.clone()
        };
        for (key, value) in patch {
            match value {
                Some(v) => config.insert(key, v),
                None => config.remove(&key),
            };
        }
        // A concurrent delete in between makes this a create, as a PUT
        // racing a delete would be in Connect.
        Ok(self.put_config(name, config).await?.1)
    }

    /// Stops and forgets a connector (its offsets stay, as in Connect).
    pub async fn delete(&self, name: &str) -> Result<(), HerderError> {
        let mut connectors = self.connectors.lock().await;
        let mut entry = connectors
            .remove(name)
            .ok_or_else(|| HerderError::NotFound(name.to_owned()))?;
        stop_tasks(&mut entry.tasks).await;
        self.configs.remove(name)?;
        self.deps.status.remove(name);
        self.deps.metrics.remove_connector(name);
        self.deps
            .active_topics
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(name);
        tracing::info!(connector = %name, "connector deleted");
        Ok(())
    }

    /// Connector names.
    pub async fn names(&self) -> Vec<String> {
        self.connectors.lock().await.keys().cloned().collect()
    }

    /// A connector's description.
    pub async fn info(&self, name: &str) -> Result<ConnectorInfo, HerderError> {
        let connectors = self.connectors.lock().await;
        let entry = connectors
            .get(name)
            .ok_or_else(|| HerderError::NotFound(name.to_owned()))?;
        Ok(self.info_of(entry))
    }

    fn info_of(&self, entry: &Entry) -> ConnectorInfo {
        let name = entry.stored.name.clone();
        ConnectorInfo {
            config: secrets::redact(&entry.stored.config),
            tasks: (0..entry.task_configs.len() as u32)
                .map(|task| TaskId {
                    connector: name.clone(),
                    task,
                })
                .collect(),
            kind: self.kind(&entry.stored),
            name,
        }
    }

    fn kind(&self, stored: &StoredConnector) -> &'static str {
        stored
            .config
            .get("connector.class")
            .and_then(|c| self.plugins.find(c))
            .map_or("unknown", |p| kind_of(&p))
    }

    /// A connector's config, secrets hidden.
    pub async fn config(&self, name: &str) -> Result<BTreeMap<String, String>, HerderError> {
        Ok(self.info(name).await?.config)
    }

    /// A connector's tasks and their configs, secrets hidden.
    pub async fn tasks(&self, name: &str) -> Result<Vec<TaskInfo>, HerderError> {
        let connectors = self.connectors.lock().await;
        let entry = connectors
            .get(name)
            .ok_or_else(|| HerderError::NotFound(name.to_owned()))?;
        Ok(entry
            .task_configs
            .iter()
            .enumerate()
            .map(|(i, c)| TaskInfo {
                id: TaskId {
                    connector: name.to_owned(),
                    task: i as u32,
                },
                config: secrets::redact(
                    &entry
                        .stored
                        .config
                        .clone()
                        .into_iter()
                        .chain(c.0.clone())
                        .collect(),
                ),
            })
            .collect())
    }

    /// A connector's status and its tasks'.
    pub async fn status(&self, name: &str) -> Result<StatusReport, HerderError> {
        let connectors = self.connectors.lock().await;
        let entry = connectors
            .get(name)
            .ok_or_else(|| HerderError::NotFound(name.to_owned()))?;
        let (connector, tasks) = self.deps.status.get(name).unwrap_or_else(|| {
            (
                ConnectorStatus {
                    state: State::Unassigned,
                    worker_id: self.deps.worker_id.clone(),
                    trace: None,
                },
                BTreeMap::new(),
            )
        });
        Ok(StatusReport {
            name: name.to_owned(),
            connector,
            tasks: tasks
                .into_iter()
                .map(|(id, status)| TaskStatusReport { id, status })
                .collect(),
            kind: self.kind(&entry.stored),
        })
    }

    /// One task's status.
    pub async fn task_status(
        &self,
        name: &str,
        task: u32,
    ) -> Result<TaskStatusReport, HerderError> {
        self.status(name)
            .await?
            .tasks
            .into_iter()
            .find(|t| t.id == task)
            .ok_or_else(|| HerderError::TaskNotFound(name.to_owned(), task))
    }

    /// Pauses a connector's tasks.
    pub async fn pause(&self, name: &str) -> Result<(), HerderError> {
        self.set_target(name, TargetState::Paused).await
    }

    /// Resumes a paused or stopped connector.
    pub async fn resume(&self, name: &str) -> Result<(), HerderError> {
        self.set_target(name, TargetState::Started).await
    }

    /// Stops a connector: tasks shut down, offsets become editable.
    pub async fn stop(&self, name: &str) -> Result<(), HerderError> {
        self.set_target(name, TargetState::Stopped).await
    }

    async fn set_target(&self, name: &str, target: TargetState) -> Result<(), HerderError> {
        let mut connectors = self.connectors.lock().await;
        let entry = connectors
            .get_mut(name)
            .ok_or_else(|| HerderError::NotFound(name.to_owned()))?;
        let before = entry.stored.target_state;
        if before == target {
            return Ok(());
        }
        let mut stored = entry.stored.clone();
        stored.target_state = target;
        self.configs.put(&stored)?;
        tracing::info!(connector = %name, from = ?before, to = ?target, "target state changed");
        if !entry.here {
            // The worker running it applies the change from the config topic.
            entry.stored = stored;
            return Ok(());
        }
        match (before, target) {
            (TargetState::Started, TargetState::Paused)
            | (TargetState::Paused, TargetState::Started) => {
                let control = if target == TargetState::Paused {
                    Control::Pause
                } else {
                    Control::Run
                };
                for handle in entry.tasks.iter().flatten() {
                    let _ = handle.control.send(control);
                }
                entry.stored = stored;
                self.put_connector_status(
                    name,
                    if target == TargetState::Paused {
                        State::Paused
                    } else {
                        State::Running
                    },
                    None,
                );
            }
            _ => {
                let mut old = connectors
                    .remove(name)
                    .ok_or_else(|| HerderError::NotFound(name.to_owned()))?;
                stop_tasks(&mut old.tasks).await;
                let entry = self.launch(stored);
                connectors.insert(name.to_owned(), entry);
            }
        }
        Ok(())
    }

    /// Restarts a connector and, with `include_tasks`, its tasks (only the
    /// failed ones with `only_failed`). Returns the status right after.
    pub async fn restart(
        &self,
        name: &str,
        include_tasks: bool,
        only_failed: bool,
    ) -> Result<StatusReport, HerderError> {
        {
            let mut connectors = self.connectors.lock().await;
            let entry = connectors
                .get(name)
                .ok_or_else(|| HerderError::NotFound(name.to_owned()))?;
            self.require_here(entry)?;
            let connector_failed = self
                .deps
                .status
                .get(name)
                .is_some_and(|(c, _)| c.state == State::Failed);
            if include_tasks {
                let statuses = self
                    .deps
                    .status
                    .get(name)
                    .map(|(_, t)| t)
                    .unwrap_or_default();
                let restart: Vec<u32> = (0..entry.tasks.len() as u32)
                    .filter(|id| {
                        !only_failed || statuses.get(id).is_some_and(|s| s.state == State::Failed)
                    })
                    .collect();
                if !only_failed || connector_failed {
                    // A connector restart recomputes task configs, so every
                    // task restarts with it.
                    let mut old = connectors
                        .remove(name)
                        .ok_or_else(|| HerderError::NotFound(name.to_owned()))?;
                    stop_tasks(&mut old.tasks).await;
                    let entry = self.launch(old.stored);
                    connectors.insert(name.to_owned(), entry);
                } else {
                    for id in restart {
                        self.restart_task_locked(&mut connectors, name, id).await?;
                    }
                }
            } else if !only_failed || connector_failed {
                let mut old = connectors
                    .remove(name)
                    .ok_or_else(|| HerderError::NotFound(name.to_owned()))?;
                if old.task_configs.is_empty() || connector_failed {
                    stop_tasks(&mut old.tasks).await;
                    let entry = self.launch(old.stored);
                    connectors.insert(name.to_owned(), entry);
                } else {
                    // The connector itself holds no running state here, so
                    // restarting it alone just re-reports it.
                    connectors.insert(name.to_owned(), old);
                }
            }
        }
        self.status(name).await
    }

    /// Applies a pause or a resume another worker stored, without
    /// restarting anything; false when the change is something else.
    fn pause_or_resume(&self, entry: &mut Entry, stored: &StoredConnector) -> bool {
        let (state, control) = match (entry.stored.target_state, stored.target_state) {
            (TargetState::Started, TargetState::Paused) => (State::Paused, Control::Pause),
            (TargetState::Paused, TargetState::Started) => (State::Running, Control::Run),
            _ => return false,
        };
        if entry.stored.config != stored.config {
            return false;
        }
        for handle in entry.tasks.iter().flatten() {
            let _ = handle.control.send(control);
        }
        entry.stored = stored.clone();
        self.put_connector_status(&stored.name, state, None);
        tracing::info!(connector = %stored.name, to = ?stored.target_state, "target state changed through another worker");
        true
    }

    /// Fails with where the connector runs when that is not here: a
    /// restart must happen on the worker running it.
    fn require_here(&self, entry: &Entry) -> Result<(), HerderError> {
        if entry.here {
            return Ok(());
        }
        let name = &entry.stored.name;
        match self.deps.status.get(name) {
            Some((connector, _))
                if connector.worker_id != self.deps.worker_id
                    && connector.state != State::Unassigned =>
            {
                Err(HerderError::RunsElsewhere {
                    connector: name.clone(),
                    worker: connector.worker_id,
                })
            }
            _ => Err(HerderError::Rebalancing),
        }
    }

    /// Restarts one task.
    pub async fn restart_task(&self, name: &str, task: u32) -> Result<(), HerderError> {
        let mut connectors = self.connectors.lock().await;
        self.restart_task_locked(&mut connectors, name, task).await
    }

    async fn restart_task_locked(
        &self,
        connectors: &mut BTreeMap<String, Entry>,
        name: &str,
        task: u32,
    ) -> Result<(), HerderError> {
        let entry = connectors
            .get_mut(name)
            .ok_or_else(|| HerderError::NotFound(name.to_owned()))?;
        self.require_here(entry)?;
        let index = task as usize;
        if index >= entry.task_configs.len() {
            return Err(HerderError::TaskNotFound(name.to_owned(), task));
        }
        if let Some(handle) = entry.tasks.get_mut(index).and_then(Option::take) {
            stop_task(handle).await;
        }
        tracing::info!(connector = %name, task, "task restarting");
        let handle = self.spawn_task(&entry.stored, index, &entry.task_configs[index]);
        if let Some(slot) = entry.tasks.get_mut(index) {
            *slot = handle;
        }
        Ok(())
    }

    /// The topics a connector has written to since it was created here.
    pub async fn topics(&self, name: &str) -> Result<Vec<String>, HerderError> {
        if !self.connectors.lock().await.contains_key(name) {
            return Err(HerderError::NotFound(name.to_owned()));
        }
        let all = self
            .deps
            .active_topics
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        Ok(all
            .get(name)
            .map(|t| t.iter().cloned().collect())
            .unwrap_or_default())
    }

    /// A sink connector's consumer group and the topics it reads; `None`
    /// for a source connector.
    async fn sink_group(&self, name: &str) -> Result<Option<(String, Vec<String>)>, HerderError> {
        let connectors = self.connectors.lock().await;
        let entry = connectors
            .get(name)
            .ok_or_else(|| HerderError::NotFound(name.to_owned()))?;
        let config = ConnectorConfig(entry.stored.config.clone());
        let plugin =
            validation::plugin_for(&self.plugins, &config).map_err(HerderError::BadRequest)?;
        if !matches!(plugin, Plugin::Sink(_)) {
            return Ok(None);
        }
        let group = config
            .get("consumer.override.group.id")
            .map_or_else(|| format!("connect-{name}"), str::to_owned);
        let mut topics = config.list("topics");
        if topics.is_empty() {
            // topics.regex: the topics it has read.
            topics = self
                .deps
                .active_topics
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(name)
                .map(|t| t.iter().cloned().collect())
                .unwrap_or_default();
        }
        Ok(Some((group, topics)))
    }

    /// Runs a blocking consumer-group call off the async threads.
    async fn on_group<T: Send + 'static>(
        &self,
        call: impl FnOnce(&crate::kafka::KafkaSettings) -> Result<T, rdkafka::error::KafkaError>
            + Send
            + 'static,
    ) -> Result<T, HerderError> {
        let settings = self.deps.kafka.clone();
        tokio::task::spawn_blocking(move || call(&settings))
            .await
            .map_err(|e| {
                HerderError::BadRequest(format!("the consumer group call was interrupted: {e}"))
            })?
            .map_err(|e| {
                HerderError::BadRequest(format!("the broker refused the consumer group call: {e}"))
            })
    }

    /// Forgets the topics recorded for a connector.
    pub async fn reset_topics(&self, name: &str) -> Result<(), HerderError> {
        if !self.connectors.lock().await.contains_key(name) {
            return Err(HerderError::NotFound(name.to_owned()));
        }
        self.deps
            .active_topics
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(name);
        Ok(())
    }

    /// The committed offsets of a connector, in Connect's shape (a sink's
    /// are its consumer group's, as Connect 3.6 shows them).
    pub async fn offsets(&self, name: &str) -> Result<Json, HerderError> {
        if let Some((group, topics)) = self.sink_group(name).await? {
            let positions = self
                .on_group(move |k| crate::kafka::group_offsets::committed(k, &group, &topics))
                .await?;
            return Ok(sink_offsets_json(&positions));
        }
        let offsets = self.deps.offsets.get(name)?;
        Ok(offsets_json(&offsets))
    }

    /// Alters (or with a null offset removes) offsets of a stopped connector.
    pub async fn alter_offsets(
        &self,
        name: &str,
        changes: Vec<(SourcePartition, Option<SourceOffset>)>,
    ) -> Result<(), HerderError> {
        self.require_stopped(name).await?;
        if let Some((group, _)) = self.sink_group(name).await? {
            let positions = sink_positions(&changes)?;
            let count = positions.len();
            self.on_group(move |k| crate::kafka::group_offsets::commit(k, &group, &positions))
                .await?;
            tracing::info!(connector = %name, partitions = count, "consumer group offsets altered");
            return Ok(());
        }
        self.deps.offsets.put(name, &changes)?;
        tracing::info!(connector = %name, partitions = changes.len(), "offsets altered");
        Ok(())
    }

    /// Removes every offset of a stopped connector (a sink's group goes
    /// back to the earliest record of every partition it reads).
    pub async fn reset_offsets(&self, name: &str) -> Result<(), HerderError> {
        self.require_stopped(name).await?;
        if let Some((group, topics)) = self.sink_group(name).await? {
            self.on_group(move |k| {
                let all = crate::kafka::group_offsets::all_partitions(k, &group, &topics)?;
                let positions: Vec<_> = all.into_iter().map(|(t, p)| (t, p, None)).collect();
                crate::kafka::group_offsets::commit(k, &group, &positions)
            })
            .await?;
            tracing::info!(connector = %name, "consumer group offsets reset to the earliest records");
            return Ok(());
        }
        self.deps.offsets.clear(name)?;
        tracing::info!(connector = %name, "offsets reset");
        Ok(())
    }

    async fn require_stopped(&self, name: &str) -> Result<(), HerderError> {
        let connectors = self.connectors.lock().await;
        let entry = connectors
            .get(name)
            .ok_or_else(|| HerderError::NotFound(name.to_owned()))?;
        if entry.stored.target_state != TargetState::Stopped {
            return Err(HerderError::NotStopped(name.to_owned()));
        }
        Ok(())
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

    /// Brings a stored connector up in its target state.
    fn launch(&self, stored: StoredConnector) -> Entry {
        let name = stored.name.clone();
        let here = self.runs_here(&name);
        let mut entry = Entry {
            stored,
            task_configs: Vec::new(),
            tasks: Vec::new(),
            here,
        };
        if !here {
            // Another worker runs it and reports its status; the task
            // configs are still known here for GET .../tasks.
            entry.task_configs = self.task_configs(&entry.stored).unwrap_or_default();
            return entry;
        }
        if entry.stored.target_state == TargetState::Stopped {
            self.put_connector_status(&name, State::Stopped, None);
            self.deps.status.truncate_tasks(&name, 0);
            return entry;
        }
        let task_configs = match self.task_configs(&entry.stored) {
            Ok(configs) => configs,
            Err(trace) => {
                tracing::error!(connector = %name, error = %trace, "connector failed");
                self.put_connector_status(&name, State::Failed, Some(trace));
                self.deps.status.truncate_tasks(&name, 0);
                return entry;
            }
        };
        let state = if entry.stored.target_state == TargetState::Paused {
            State::Paused
        } else {
            State::Running
        };
        self.put_connector_status(&name, state, None);
        self.deps
            .status
            .truncate_tasks(&name, task_configs.len() as u32);
        entry.tasks = task_configs
            .iter()
            .enumerate()
            .map(|(i, c)| self.spawn_task(&entry.stored, i, c))
            .collect();
        entry.task_configs = task_configs;
        entry
    }

    fn task_configs(&self, stored: &StoredConnector) -> Result<Vec<ConnectorConfig>, String> {
        let resolved = ConnectorConfig(
            secrets::resolve(&stored.config, &self.deps.providers).map_err(|e| e.to_string())?,
        );
        let plugin = validation::plugin_for(&self.plugins, &resolved)?;
        let report = self.report(&plugin, &resolved);
        if report.error_count > 0 {
            return Err(format!(
                "invalid configuration:\n{}",
                report.error_lines().join("\n")
            ));
        }
        let max_tasks = resolved
            .i64_or("tasks.max", 1)
            .map_err(|e| e.to_string())?
            .max(1) as usize;
        let configs = match &plugin {
            Plugin::Source(s) => s.task_configs(&resolved, max_tasks),
            Plugin::Sink(s) => s.task_configs(&resolved, max_tasks),
        }
        .map_err(|e| e.to_string())?;
        // Task configs inherit the connector's runtime keys (converters,
        // error handling) so the runner sees them.
        Ok(configs
            .into_iter()
            .map(|c| ConnectorConfig(resolved.0.clone().into_iter().chain(c.0).collect()))
            .collect())
    }

    fn spawn_task(
        &self,
        stored: &StoredConnector,
        index: usize,
        config: &ConnectorConfig,
    ) -> Option<TaskHandle> {
        let task_id = index as u32;
        let plugin = stored
            .config
            .get("connector.class")
            .and_then(|c| self.plugins.find(c))?;
        let initial = if stored.target_state == TargetState::Paused {
            Control::Pause
        } else {
            Control::Run
        };
        let (control, receiver) = watch::channel(initial);
        let initial_state = if initial == Control::Pause {
            State::Paused
        } else {
            State::Unassigned
        };
        self.deps.status.put_task(
            &stored.name,
            task_id,
            TaskStatus::new(initial_state, &self.deps.worker_id),
        );
        self.deps
            .metrics
            .set_state(&stored.name, task_id, initial_state);
        let join = match plugin {
            Plugin::Source(source) => {
                let spec = SourceTaskSpec {
                    connector: stored.name.clone(),
                    task_id,
                    config: config.clone(),
                    plugin: source,
                };
                tokio::spawn(source_runner::run(spec, Arc::clone(&self.deps), receiver))
            }
            Plugin::Sink(sink) => {
                let spec = sink_runner::SinkTaskSpec {
                    connector: stored.name.clone(),
                    task_id,
                    config: config.clone(),
                    plugin: sink,
                };
                tokio::spawn(sink_runner::run(spec, Arc::clone(&self.deps), receiver))
            }
        };
        Some(TaskHandle { control, join })
    }
}

/// `config` with `name` set, refusing a mismatching `name` inside it.
fn with_name(
    name: &str,
    mut config: BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, HerderError> {
    match config.get("name") {
        Some(inner) if inner != name => Err(HerderError::BadRequest(format!(
            "Connector name configuration ({inner}) doesn't match connector name in the URL ({name})"
        ))),
        _ => {
            config.insert("name".to_owned(), name.to_owned());
            Ok(config)
        }
    }
}

async fn stop_task(handle: TaskHandle) {
    let _ = handle.control.send(Control::Stop);
    join_task(handle).await;
}

async fn join_task(handle: TaskHandle) {
    if let Err(e) = handle.join.await {
        tracing::error!(error = %e, "task runner panicked");
    }
}

/// Stops tasks that will run again on another worker.
async fn hand_over(tasks: &mut Vec<Option<TaskHandle>>) {
    for handle in tasks.iter().flatten() {
        let _ = handle.control.send(Control::Handover);
    }
    for handle in tasks.drain(..).flatten() {
        join_task(handle).await;
    }
}

async fn stop_tasks(tasks: &mut Vec<Option<TaskHandle>>) {
    for handle in tasks.iter().flatten() {
        let _ = handle.control.send(Control::Stop);
    }
    for handle in tasks.drain(..).flatten() {
        stop_task(handle).await;
    }
}

/// Offsets in Connect's `{"offsets": [{"partition": .., "offset": ..}]}` shape.
/// A sink's positions in Connect 3.6's shape.
fn sink_offsets_json(positions: &[crate::kafka::group_offsets::Position]) -> Json {
    let entries: Vec<Json> = positions
        .iter()
        .map(|(topic, partition, offset)| {
            serde_json::json!({
                "partition": {"kafka_topic": topic, "kafka_partition": partition},
                "offset": {"kafka_offset": offset},
            })
        })
        .collect();
    serde_json::json!({ "offsets": entries })
}

/// Sink offset changes (`{"kafka_topic", "kafka_partition"}` →
/// `{"kafka_offset"}` or null) as positions, or what is wrong with them.
fn sink_positions(
    changes: &[(SourcePartition, Option<SourceOffset>)],
) -> Result<Vec<(String, i32, Option<i64>)>, HerderError> {
    changes
        .iter()
        .enumerate()
        .map(|(i, (partition, offset))| {
            let topic = partition.get("kafka_topic").and_then(Json::as_str);
            let number = partition.get("kafka_partition").and_then(Json::as_i64);
            let (Some(topic), Some(number)) = (topic, number) else {
                return Err(HerderError::BadRequest(format!(
                    "offsets[{i}].partition of a sink connector must be {{\"kafka_topic\": \"...\", \"kafka_partition\": N}}"
                )));
            };
            let offset = match offset {
                None => None,
                Some(o) => Some(o.get("kafka_offset").and_then(Json::as_i64).filter(|o| *o >= 0).ok_or_else(|| {
                    HerderError::BadRequest(format!(
                        "offsets[{i}].offset of a sink connector must be {{\"kafka_offset\": N}} with N >= 0, or null"
                    ))
                })?),
            };
            Ok((topic.to_owned(), number as i32, offset))
        })
        .collect()
}

fn offsets_json(offsets: &[(SourcePartition, SourceOffset)]) -> Json {
    let entries = offsets
        .iter()
        .map(|(p, o)| {
            let mut m = Map::new();
            m.insert("partition".into(), Json::Object(p.clone()));
            m.insert("offset".into(), Json::Object((**o).clone()));
            Json::Object(m)
        })
        .collect();
    let mut root = Map::new();
    root.insert("offsets".into(), Json::Array(entries));
    Json::Object(root)
}
