//! Connector and task statuses published on a status topic in Kafka
//! Connect's format (`status-connector-<name>`, `status-task-<name>-<n>`,
//! value `{"state", "trace", "worker_id", "generation"}`), so tools that
//! read `connect-status` see sluice's tasks.
//!
//! Reads answer from this worker's memory for what runs here: a status
//! describes a live task, and a stored RUNNING from before a crash would be
//! a lie. What runs on another worker of the group (a whole connector, or
//! some of its tasks) is read from the topic, as that worker last
//! published it. Writes
//! go to the topic from a thread of their own, so a slow broker never
//! holds up the task whose state changed; a status lost to a full queue
//! or an outage is replaced by the next change.

use std::collections::BTreeMap;
use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};

use super::log::KafkaLog;
use crate::herder::status::{ConnectorStatus, State, TaskStatus};
use crate::store::memory_status::Held;
use crate::store::{MemoryStatusStore, StatusPart, StatusStore};

/// Status records waiting for the writer thread.
const QUEUE: usize = 1024;

type Write = (String, Option<Vec<u8>>);

/// Statuses in memory, published to a Kafka status topic.
pub struct KafkaStatusStore {
    memory: MemoryStatusStore,
    writes: SyncSender<Write>,
    log: Arc<KafkaLog>,
    /// Statuses other workers published, by key.
    remote: Mutex<BTreeMap<String, Value>>,
}

fn encode(state: State, trace: Option<&str>, worker_id: &str) -> Vec<u8> {
    json!({"state": state.as_str(), "trace": trace, "worker_id": worker_id, "generation": 0})
        .to_string()
        .into_bytes()
}

/// A published status (Connect's format) as a connector status.
fn decode(value: &Value) -> Option<ConnectorStatus> {
    let state = match value.get("state")?.as_str()? {
        "UNASSIGNED" => State::Unassigned,
        "RUNNING" => State::Running,
        "PAUSED" => State::Paused,
        "STOPPED" => State::Stopped,
        "FAILED" => State::Failed,
        "RESTARTING" => State::Restarting,
        _ => return None,
    };
    Some(ConnectorStatus {
        state,
        worker_id: value.get("worker_id")?.as_str()?.to_owned(),
        trace: value
            .get("trace")
            .and_then(Value::as_str)
            .map(str::to_owned),
    })
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
        let writer = Arc::clone(&log);
        std::thread::Builder::new()
            .name("sluice-status".into())
            .spawn(move || {
                let log = writer;
                for (key, value) in queue {
                    if let Err(e) = log.append(key.as_bytes(), value.as_deref()) {
                        tracing::warn!(key, error = %e, "could not publish a status");
                    }
                }
            })?;
        Ok(Self {
            memory: MemoryStatusStore::default(),
            writes,
            log,
            remote: Mutex::new(BTreeMap::new()),
        })
    }

    /// Publishes a record of sluice's own under `key` (Connect reads past
    /// keys it does not know).
    pub fn publish_raw(&self, key: &str, value: Option<Value>) {
        self.publish(key.to_owned(), value.map(|v| v.to_string().into_bytes()));
    }

    /// The newest value published under `key` by any worker.
    pub fn published_raw(&self, key: &str) -> Option<Value> {
        self.catch_up().get(key).cloned()
    }

    /// The newest value of every key starting with `prefix`, by any worker.
    pub fn published_raw_with_prefix(&self, prefix: &str) -> Vec<(String, Value)> {
        self.catch_up()
            .range(prefix.to_owned()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// Everything published, read to the end of the topic.
    fn catch_up(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Value>> {
        let records = match self.log.read_to_end() {
            Ok(records) => records,
            Err(e) => {
                tracing::warn!(error = %e, "could not read the status topic; showing the last statuses read");
                Vec::new()
            }
        };
        let mut remote = self.remote.lock().unwrap_or_else(|e| e.into_inner());
        for (key, value) in records {
            let key = String::from_utf8_lossy(&key).into_owned();
            match value.and_then(|v| serde_json::from_slice::<Value>(&v).ok()) {
                Some(value) => remote.insert(key, value),
                None => remote.remove(&key),
            };
        }
        remote
    }

    /// A connector's statuses as the workers running its parts last
    /// published them.
    fn published(&self, name: &str) -> Held {
        let remote = self.catch_up();
        published_in(&remote, name)
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

/// What `remote` (every status published, by key) holds for connector `name`.
fn published_in(remote: &BTreeMap<String, Value>, name: &str) -> Held {
    let prefix = format!("status-task-{name}-");
    let tasks = remote
        .range(prefix.clone()..)
        .take_while(|(k, _)| k.starts_with(&prefix))
        .filter_map(|(k, v)| {
            let id = k[prefix.len()..].parse::<u32>().ok()?;
            let s = decode(v)?;
            Some((
                id,
                TaskStatus {
                    state: s.state,
                    worker_id: s.worker_id,
                    trace: s.trace,
                    progress: None,
                },
            ))
        })
        .collect();
    Held {
        connector: remote.get(&connector_key(name)).and_then(decode),
        tasks,
    }
}

/// A connector's status as the status API shows it: what this worker
/// reports (`mine`: live, with progress) over what the workers running the
/// other parts published; none while nobody reported the connector itself.
fn merged(mine: Held, published: Held) -> Option<(ConnectorStatus, BTreeMap<u32, TaskStatus>)> {
    let connector = mine.connector.or(published.connector)?;
    let mut tasks = published.tasks;
    tasks.extend(mine.tasks);
    Some((connector, tasks))
}

impl StatusStore for KafkaStatusStore {
    fn put_connector(&self, name: &str, status: ConnectorStatus) {
        let changed = self.memory.held(name).connector.as_ref() != Some(&status);
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
        let same = self.memory.held(name).tasks.get(&task).is_some_and(|old| {
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
        merged(self.memory.held(name), self.published(name))
    }

    fn get_own(&self, name: &str) -> Option<(ConnectorStatus, BTreeMap<u32, TaskStatus>)> {
        self.memory.get(name)
    }

    fn forget(&self, name: &str) {
        self.memory.remove(name);
    }

    fn give_up(&self, name: &str, part: StatusPart, report: bool) {
        let Some(taken) = self.memory.take(name, part) else {
            return;
        };
        if !report {
            return;
        }
        let key = match part {
            StatusPart::Connector => connector_key(name),
            StatusPart::Task(id) => task_key(name, id),
        };
        // Connect's putSafe: a status the next owner wrote stays.
        let still_ours = self
            .catch_up()
            .get(&key)
            .and_then(|v| v.get("worker_id"))
            .and_then(Value::as_str)
            .is_none_or(|w| w == taken.worker_id());
        if still_ours {
            self.publish(
                key,
                Some(encode(State::Unassigned, None, taken.worker_id())),
            );
        }
    }

    fn truncate_tasks(&self, name: &str, from: u32) {
        // Tasks other workers ran count too: the connector has fewer now.
        // As last read (every few seconds by the group's upkeep), not read
        // afresh: this runs with the connectors locked, and a broker that
        // does not answer must not hold every REST call up.
        let seen = self.remote.lock().unwrap_or_else(|e| e.into_inner());
        let mut ids: std::collections::BTreeSet<u32> =
            published_in(&seen, name).tasks.into_keys().collect();
        drop(seen);
        ids.extend(self.memory.held(name).tasks.into_keys());
        for task in ids.into_iter().filter(|t| *t >= from) {
            self.publish(task_key(name, task), None);
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
        let read = decode(&value).expect("decodes");
        assert_eq!(read.state, State::Failed);
        assert_eq!(read.trace.as_deref(), Some("boom"));
        assert_eq!(decode(&json!({"state": "NAPPING", "worker_id": "w"})), None);
    }

    /// A connector whose parts run on three workers: the status shows
    /// each part as the worker running it reports it, this worker's own
    /// parts from its memory (newer than what it published).
    #[test]
    fn a_status_shows_each_part_from_the_worker_running_it() {
        let status = |state, worker| {
            serde_json::from_slice::<Value>(&encode(state, None, worker)).expect("json")
        };
        let remote: BTreeMap<String, Value> = [
            ("status-connector-orders", status(State::Running, "w1")),
            ("status-task-orders-0", status(State::Running, "w1")),
            ("status-task-orders-1", status(State::Running, "w2")),
            ("status-task-orders-2", status(State::Unassigned, "w3")),
            ("status-task-orders-x-1", status(State::Failed, "w2")),
            ("status-task-ordersx-1", status(State::Failed, "w2")),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        let published = published_in(&remote, "orders");
        assert_eq!(published.tasks.len(), 3, "only orders' own tasks");
        let mine = Held {
            connector: None,
            tasks: BTreeMap::from([(2, TaskStatus::new(State::Running, "w3"))]),
        };
        let (connector, tasks) = merged(mine.clone(), published).expect("reported");
        assert_eq!(connector.worker_id, "w1");
        let placed: Vec<(u32, State, &str)> = tasks
            .iter()
            .map(|(id, t)| (*id, t.state, t.worker_id.as_str()))
            .collect();
        assert_eq!(
            placed,
            vec![
                (0, State::Running, "w1"),
                (1, State::Running, "w2"),
                (2, State::Running, "w3"),
            ]
        );
        // Nobody reported the connector itself yet: no status.
        assert!(merged(mine, Held::default()).is_none());
    }
}
