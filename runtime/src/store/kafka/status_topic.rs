//! Connector and task statuses published on a status topic in Kafka
//! Connect's format (`status-connector-<name>`, `status-task-<name>-<n>`,
//! value `{"state", "trace", "worker_id", "generation"}`), so tools that
//! read `connect-status` see sluice's tasks.
//!
//! Reads answer from this worker's memory: a status describes a live
//! task, and a stored RUNNING from before a crash would be a lie. Writes
//! go to the topic from a thread of their own, so a slow broker never
//! holds up the task whose state changed; a status lost to a full queue
//! or an outage is replaced by the next change.

use std::collections::BTreeMap;
use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use std::sync::Arc;

use serde_json::json;

use super::log::KafkaLog;
use crate::herder::status::{ConnectorStatus, State, TaskStatus};
use crate::store::{MemoryStatusStore, StatusStore};

/// Status records waiting for the writer thread.
const QUEUE: usize = 1024;

type Write = (String, Option<Vec<u8>>);

/// Statuses in memory, published to a Kafka status topic.
pub struct KafkaStatusStore {
    memory: MemoryStatusStore,
    writes: SyncSender<Write>,
}

fn encode(state: State, trace: Option<&str>, worker_id: &str) -> Vec<u8> {
    json!({"state": state.as_str(), "trace": trace, "worker_id": worker_id, "generation": 0})
        .to_string()
        .into_bytes()
}

fn connector_key(name: &str) -> String {
    format!("status-connector-{name}")
}

fn task_key(name: &str, task: u32) -> String {
    format!("status-task-{name}-{task}")
}

impl KafkaStatusStore {
    /// A store publishing to `log` from a thread it starts.
    pub fn new(log: Arc<KafkaLog>) -> std::io::Result<Self> {
        let (writes, queue) = sync_channel::<Write>(QUEUE);
        std::thread::Builder::new()
            .name("sluice-status".into())
            .spawn(move || {
                for (key, value) in queue {
                    if let Err(e) = log.append(key.as_bytes(), value.as_deref()) {
                        tracing::warn!(key, error = %e, "could not publish a status");
                    }
                }
            })?;
        Ok(Self {
            memory: MemoryStatusStore::default(),
            writes,
        })
    }

    fn publish(&self, key: String, value: Option<Vec<u8>>) {
        match self.writes.try_send((key, value)) {
            Ok(()) => {}
            Err(TrySendError::Full((key, _))) => {
                tracing::warn!(key, "status queue full; status not published")
            }
            Err(TrySendError::Disconnected(_)) => {}
        }
    }
}

impl StatusStore for KafkaStatusStore {
    fn put_connector(&self, name: &str, status: ConnectorStatus) {
        let changed = self.memory.get(name).map(|(c, _)| c) != Some(status.clone());
        if changed {
            self.publish(
                connector_key(name),
                Some(encode(
                    status.state,
                    status.trace.as_deref(),
                    &status.worker_id,
                )),
            );
        }
        self.memory.put_connector(name, status);
    }

    fn put_task(&self, name: &str, task: u32, status: TaskStatus) {
        let Some((_, tasks)) = self.memory.get(name) else {
            return;
        };
        let same = tasks.get(&task).is_some_and(|old| {
            old.state == status.state
                && old.trace == status.trace
                && old.worker_id == status.worker_id
        });
        if !same {
            self.publish(
                task_key(name, task),
                Some(encode(
                    status.state,
                    status.trace.as_deref(),
                    &status.worker_id,
                )),
            );
        }
        self.memory.put_task(name, task, status);
    }

    fn get(&self, name: &str) -> Option<(ConnectorStatus, BTreeMap<u32, TaskStatus>)> {
        self.memory.get(name)
    }

    fn truncate_tasks(&self, name: &str, from: u32) {
        if let Some((_, tasks)) = self.memory.get(name) {
            for task in tasks.keys().filter(|t| **t >= from) {
                self.publish(task_key(name, *task), None);
            }
        }
        self.memory.truncate_tasks(name, from);
    }

    fn remove(&self, name: &str) {
        self.truncate_tasks(name, 0);
        self.publish(connector_key(name), None);
        self.memory.remove(name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_connects_status_format() {
        let value: serde_json::Value =
            serde_json::from_slice(&encode(State::Failed, Some("boom"), "w:8083")).expect("json");
        assert_eq!(
            value,
            json!({"state": "FAILED", "trace": "boom", "worker_id": "w:8083", "generation": 0})
        );
        assert_eq!(task_key("c", 2), "status-task-c-2");
        assert_eq!(connector_key("c"), "status-connector-c");
    }
}
