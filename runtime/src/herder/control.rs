//! Target states (pause, resume, stop) and restarts of connectors and
//! tasks; a restart happens on the worker running the connector.

use std::collections::BTreeMap;

use super::lifecycle::{stop_task, stop_tasks};
use super::source_runner::Control;
use super::status::State;
use super::StatusReport;
use super::{Entry, Herder, HerderError};
use crate::store::{StoredConnector, TargetState};

impl Herder {
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
    pub(super) fn pause_or_resume(&self, entry: &mut Entry, stored: &StoredConnector) -> bool {
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
}
