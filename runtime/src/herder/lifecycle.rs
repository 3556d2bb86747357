//! Running connectors: bringing a stored connector up in its target state
//! (task configs computed, tasks spawned), stopping and handing tasks
//! over, and following what the group and the config store change.

use std::collections::BTreeMap;
use std::sync::Arc;

use sluice_connector_api::ConnectorConfig;
use tokio::sync::watch;

use super::source_runner::{self, Control, SourceTaskSpec};
use super::status::{State, TaskStatus};
use super::validation::{self};
use super::{sink_runner, Entry, Herder, HerderError, TaskHandle, Unit};
use crate::plugins::Plugin;
use crate::secrets;
use crate::store::{StatusPart, StoredConnector, TargetState};

impl Herder {
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

    /// Starts the connectors and tasks this worker now owns and stops
    /// those it no longer owns; returns when the stopped ones have stopped.
    /// Called by the group membership whenever the assignment or the lease
    /// changes. A `fenced` worker (its lease lapsed) does not report what
    /// it gives up: the group has moved on, and a report sent from behind a
    /// cut would land after the next owner's.
    pub async fn reassign(&self, fenced: bool) {
        let mut connectors = self.connectors.lock().await;
        let names: Vec<String> = connectors.keys().cloned().collect();
        for name in names {
            let Some(entry) = connectors.get_mut(&name) else {
                continue;
            };
            for (id, slot) in entry.tasks.iter_mut().enumerate() {
                let id = id as u32;
                if slot.is_some() && !self.runs_task_here(&name, id) {
                    hand_over(slot.take()).await;
                    self.deps
                        .status
                        .give_up(&name, StatusPart::Task(id), !fenced);
                    tracing::info!(connector = %name, task = id, "task released to another worker");
                }
            }
            let here = self.runs_here(Unit::connector(&name));
            if entry.here && !here {
                entry.here = false;
                self.deps
                    .status
                    .give_up(&name, StatusPart::Connector, !fenced);
                tracing::info!(connector = %name, "connector released to another worker");
            }
            if !entry.here && here {
                // The connector comes here: launched anew (its status, its
                // task configs) with every task this worker holds.
                if let Some(mut old) = connectors.remove(&name) {
                    hand_over_all(&mut old.tasks).await;
                    let entry = self.launch(old.stored);
                    connectors.insert(name, entry);
                }
                continue;
            }
            for id in 0..entry.task_configs.len() {
                let taken_over = entry.tasks.get(id).is_some_and(Option::is_none)
                    && self.runs_task_here(&name, id as u32);
                if taken_over {
                    entry.tasks[id] = self.spawn_task(&entry.stored, id, &entry.task_configs);
                }
            }
        }
    }

    /// Applies what the config store holds that this worker does not know
    /// yet: connectors created, changed or deleted through another worker
    /// of the group.
    pub async fn sync_configs(&self) -> Result<(), HerderError> {
        let writes_before = self
            .config_writes
            .load(std::sync::atomic::Ordering::Acquire);
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
        if self
            .config_writes
            .load(std::sync::atomic::Ordering::Acquire)
            != writes_before
        {
            // This worker stored a config while the store was read: what
            // was read may predate it (applied, it would undo a stop just
            // made here). The next round reads it.
            return Ok(());
        }
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
                if entry.anything_here() && self.pause_or_resume(entry, &connector) {
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

    /// Brings a stored connector up in its target state: on the worker
    /// that holds the connector, its status; on each worker, the tasks it
    /// holds.
    pub(super) fn launch(&self, stored: StoredConnector) -> Entry {
        let name = stored.name.clone();
        let here = self.runs_here(Unit::connector(&name));
        let mut entry = Entry {
            stored,
            task_configs: Vec::new(),
            tasks: Vec::new(),
            here,
        };
        // A stopped connector has no tasks (Connect writes it none).
        let configs = match entry.stored.target_state {
            TargetState::Stopped => Ok(Vec::new()),
            _ => self.task_configs(&entry.stored),
        };
        if here {
            let (state, trace) = match (&configs, entry.stored.target_state) {
                (_, TargetState::Stopped) => (State::Stopped, None),
                (Err(trace), _) => {
                    tracing::error!(connector = %name, error = %trace, "connector failed");
                    (State::Failed, Some(trace.clone()))
                }
                (Ok(_), TargetState::Paused) => (State::Paused, None),
                (Ok(_), TargetState::Started) => (State::Running, None),
            };
            self.put_connector_status(&name, state, trace);
            let count = configs.as_ref().map_or(0, Vec::len);
            self.deps.status.truncate_tasks(&name, count as u32);
        }
        // Every worker knows the task configs, for GET .../tasks.
        entry.task_configs = configs.unwrap_or_default();
        entry.tasks = (0..entry.task_configs.len())
            .map(|i| {
                self.runs_task_here(&name, i as u32)
                    .then(|| self.spawn_task(&entry.stored, i, &entry.task_configs))
                    .flatten()
            })
            .collect();
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

    /// Starts task `index` of the connector whose task configs are
    /// `configs`, if its plugin is installed here.
    pub(super) fn spawn_task(
        &self,
        stored: &StoredConnector,
        index: usize,
        configs: &[ConnectorConfig],
    ) -> Option<TaskHandle> {
        let task_id = index as u32;
        let config = configs.get(index)?;
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
                    tasks: configs.len() as u32,
                    config: config.clone(),
                    plugin: sink,
                };
                tokio::spawn(sink_runner::run(spec, Arc::clone(&self.deps), receiver))
            }
        };
        Some(TaskHandle { control, join })
    }
}

pub(super) async fn stop_task(handle: TaskHandle) {
    let _ = handle.control.send(Control::Stop);
    join_task(handle).await;
}

pub(super) async fn join_task(handle: TaskHandle) {
    if let Err(e) = handle.join.await {
        tracing::error!(error = %e, "task runner panicked");
    }
}

/// Stops a task that will run again on another worker.
async fn hand_over(task: Option<TaskHandle>) {
    if let Some(handle) = task {
        let _ = handle.control.send(Control::Handover);
        join_task(handle).await;
    }
}

/// Stops tasks that will run again, here or on another worker.
async fn hand_over_all(tasks: &mut Vec<Option<TaskHandle>>) {
    for handle in tasks.iter().flatten() {
        let _ = handle.control.send(Control::Handover);
    }
    for handle in tasks.drain(..).flatten() {
        join_task(handle).await;
    }
}

pub(super) async fn stop_tasks(tasks: &mut Vec<Option<TaskHandle>>) {
    for handle in tasks.iter().flatten() {
        let _ = handle.control.send(Control::Stop);
    }
    for handle in tasks.drain(..).flatten() {
        stop_task(handle).await;
    }
}
