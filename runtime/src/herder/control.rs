//! Target states (pause, resume, stop) and restarts of connectors and
//! tasks; a restart happens on the worker running the connector or task.

use std::collections::BTreeMap;

use super::lifecycle::{stop_task, stop_tasks};
use super::source_runner::Control;
use super::status::State;
use super::StatusReport;
use super::{Entry, Herder, HerderError};
use crate::store::{Statuses, StoredConnector, TargetState};

/// What a connector restart did.
#[derive(Debug)]
pub struct Restarted {
    /// The connector's status right after.
    pub status: StatusReport,
    /// Tasks to restart that other workers of the group run: (task id,
    /// worker id), for the caller to ask each worker.
    pub elsewhere: Vec<(u32, String)>,
}

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
        self.store_config(&stored)?;
        tracing::info!(connector = %name, from = ?before, to = ?target, "target state changed");
        if !entry.anything_here() {
            // The workers running its parts apply the change from the
            // config topic.
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
                if entry.here {
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
    /// failed ones with `only_failed`), on the worker running the
    /// connector. Tasks running on other workers of the group are not
    /// restarted here: they come back in [`Restarted::elsewhere`], for the
    /// caller to ask their workers.
    pub async fn restart(
        &self,
        name: &str,
        include_tasks: bool,
        only_failed: bool,
    ) -> Result<Restarted, HerderError> {
        let mut elsewhere = Vec::new();
        {
            let reported = self.published_statuses(name).await;
            let mut connectors = self.connectors.lock().await;
            let entry = connectors
                .get(name)
                .ok_or_else(|| HerderError::NotFound(name.to_owned()))?;
            self.require_here(entry, &reported)?;
            let (connector, statuses) = reported.clone().unzip();
            let statuses = statuses.unwrap_or_default();
            let connector_failed = connector.is_some_and(|c| c.state == State::Failed);
            if include_tasks {
                let restart: Vec<u32> = (0..entry.tasks.len() as u32)
                    .filter(|id| {
                        !only_failed || statuses.get(id).is_some_and(|s| s.state == State::Failed)
                    })
                    .collect();
                // Tasks another worker runs are restarted there.
                let (mine, theirs): (Vec<u32>, Vec<u32>) = restart
                    .into_iter()
                    .partition(|id| entry.tasks[*id as usize].is_some());
                elsewhere = theirs
                    .into_iter()
                    .filter_map(|id| {
                        let status = statuses.get(&id)?;
                        (status.worker_id != self.deps.worker_id
                            && status.state != State::Unassigned)
                            .then(|| (id, status.worker_id.clone()))
                    })
                    .collect();
                if !only_failed || connector_failed {
                    // A connector restart recomputes task configs, so every
                    // task here restarts with it.
                    let mut old = connectors
                        .remove(name)
                        .ok_or_else(|| HerderError::NotFound(name.to_owned()))?;
                    stop_tasks(&mut old.tasks).await;
                    let entry = self.launch(old.stored);
                    connectors.insert(name.to_owned(), entry);
                } else {
                    for id in mine {
                        self.restart_task_locked(&mut connectors, name, id, &reported)
                            .await?;
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
        Ok(Restarted {
            status: self.status(name).await?,
            elsewhere,
        })
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
        if entry.here {
            self.put_connector_status(&stored.name, state, None);
        }
        tracing::info!(connector = %stored.name, to = ?stored.target_state, "target state changed through another worker");
        true
    }

    /// Fails with where the connector runs when that is not here (as
    /// `reported`, read beforehand with the connectors unlocked): a
    /// restart must happen on the worker running it.
    fn require_here(&self, entry: &Entry, reported: &Option<Statuses>) -> Result<(), HerderError> {
        if entry.here {
            return Ok(());
        }
        let connector = reported.as_ref().map(|(c, _)| c);
        self.runs_elsewhere(entry, connector.map(|c| (c.worker_id.clone(), c.state)))
    }

    /// Fails with where task `task` runs when that is not here.
    fn require_task_here(
        &self,
        entry: &Entry,
        task: u32,
        reported: &Option<Statuses>,
    ) -> Result<(), HerderError> {
        if entry.tasks.get(task as usize).is_some_and(Option::is_some) {
            return Ok(());
        }
        let status = reported.as_ref().and_then(|(_, tasks)| tasks.get(&task));
        self.runs_elsewhere(entry, status.map(|t| (t.worker_id.clone(), t.state)))
    }

    /// The error for a part of `entry` that runs elsewhere, as reported
    /// (by which worker, in which state): where it runs, or a rebalance
    /// while nobody runs it.
    fn runs_elsewhere(
        &self,
        entry: &Entry,
        reported: Option<(String, State)>,
    ) -> Result<(), HerderError> {
        match reported {
            Some((worker, state))
                if worker != self.deps.worker_id && state != State::Unassigned =>
            {
                Err(HerderError::RunsElsewhere {
                    connector: entry.stored.name.clone(),
                    worker,
                })
            }
            _ => Err(HerderError::Rebalancing),
        }
    }

    /// Restarts one task.
    pub async fn restart_task(&self, name: &str, task: u32) -> Result<(), HerderError> {
        let reported = self.published_statuses(name).await;
        let mut connectors = self.connectors.lock().await;
        self.restart_task_locked(&mut connectors, name, task, &reported)
            .await
    }

    async fn restart_task_locked(
        &self,
        connectors: &mut BTreeMap<String, Entry>,
        name: &str,
        task: u32,
        reported: &Option<Statuses>,
    ) -> Result<(), HerderError> {
        let entry = connectors
            .get_mut(name)
            .ok_or_else(|| HerderError::NotFound(name.to_owned()))?;
        let index = task as usize;
        if index >= entry.task_configs.len() {
            return Err(HerderError::TaskNotFound(name.to_owned(), task));
        }
        self.require_task_here(entry, task, reported)?;
        if let Some(handle) = entry.tasks.get_mut(index).and_then(Option::take) {
            stop_task(handle).await;
        }
        tracing::info!(connector = %name, task, "task restarting");
        let handle = self.spawn_task(&entry.stored, index, &entry.task_configs);
        if let Some(slot) = entry.tasks.get_mut(index) {
            *slot = handle;
        }
        Ok(())
    }
}
