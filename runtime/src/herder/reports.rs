//! What the REST API reads about connectors: descriptions, configs with
//! secrets hidden, task configs, statuses and the topics written.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;

use super::status::{ConnectorStatus, State, TaskStatus};
use super::{Entry, Herder, HerderError};
use crate::secrets;
use crate::store::{Statuses, StoredConnector};

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

impl Herder {
    /// Connector names.
    pub async fn names(&self) -> Vec<String> {
        self.connectors.lock().await.keys().cloned().collect()
    }

    /// The units of the group's placement the connectors need, as
    /// (connector, task): each connector's (with its task 0) and each
    /// further task's.
    pub async fn units(&self) -> Vec<(String, u32)> {
        let connectors = self.connectors.lock().await;
        let mut units = Vec::with_capacity(connectors.len());
        for (name, entry) in connectors.iter() {
            let tasks = (entry.task_configs.len() as u32).max(1);
            units.extend((0..tasks).map(|task| (name.clone(), task)));
        }
        units
    }

    /// A connector's description.
    pub async fn info(&self, name: &str) -> Result<ConnectorInfo, HerderError> {
        let connectors = self.connectors.lock().await;
        let entry = connectors
            .get(name)
            .ok_or_else(|| HerderError::NotFound(name.to_owned()))?;
        Ok(self.info_of(entry))
    }

    pub(super) fn info_of(&self, entry: &Entry) -> ConnectorInfo {
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
            .map_or("unknown", |p| p.info().kind.as_str())
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

    /// A connector's statuses as every worker running a part of it
    /// reports them. Other workers' parts come from the status topic: read
    /// off the async threads, and to be called with the connectors
    /// unlocked, so a broker slow to answer holds up this request alone.
    pub(super) async fn published_statuses(&self, name: &str) -> Option<Statuses> {
        let (store, owned) = (Arc::clone(&self.deps.status), name.to_owned());
        tokio::task::spawn_blocking(move || store.get(&owned))
            .await
            .unwrap_or(None)
    }

    /// A connector's status and its tasks'.
    pub async fn status(&self, name: &str) -> Result<StatusReport, HerderError> {
        let (kind, all_here) = {
            let connectors = self.connectors.lock().await;
            let entry = connectors
                .get(name)
                .ok_or_else(|| HerderError::NotFound(name.to_owned()))?;
            let all_here = entry.here && entry.tasks.iter().all(Option::is_some);
            (self.kind(&entry.stored), all_here)
        };
        let reported = if all_here {
            self.deps.status.get_own(name)
        } else {
            self.published_statuses(name).await
        };
        let (connector, tasks) = reported.unwrap_or_else(|| {
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
            kind,
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
}
