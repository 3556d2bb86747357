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
//!
//! Every status record carries generation 0 (rdkafka does not tell a
//! member its group generation), so the newest record under a key wins,
//! and a worker handing a part over may write UNASSIGNED just after the
//! next owner wrote RUNNING (`putSafe` checks, then writes). So each
//! worker re-asserts, every tick of the group's upkeep, what it runs
//! wherever the topic says otherwise ([`KafkaStatusStore::reassert_own`]).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};

use super::log::KafkaLog;
use crate::herder::status::{ConnectorStatus, State, TaskStatus};
use crate::store::memory_status::Held;
use crate::store::{MemoryStatusStore, StatusPart, StatusStore, Statuses};

/// Status records waiting for the writer thread.
const QUEUE: usize = 1024;

/// A job for the writer thread.
enum Job {
    /// Append a record.
    Write(Write),
    /// Republish this worker's statuses the topic shows otherwise.
    Reassert,
}

/// A status record for the writer thread.
struct Write {
    key: String,
    /// The record's value; `None` is a tombstone.
    value: Option<Vec<u8>>,
    /// For a part this worker handed over: the worker id it ran under.
    /// The record is written only while the newest one published under
    /// `key` is still that worker's (Connect's `putSafe`), so the next
    /// owner's RUNNING is never overwritten with UNASSIGNED.
    only_if_still: Option<String>,
}

/// What the workers published on the status topic, read up to its end on
/// demand.
struct Published {
    log: Arc<KafkaLog>,
    /// The newest value by key, as last read.
    seen: Mutex<BTreeMap<String, Value>>,
}

impl Published {
    /// Everything published, read to the end of the topic (blocking: never
    /// call it with the connectors locked).
    fn catch_up(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Value>> {
        let records = match self.log.read_to_end() {
            Ok(records) => records,
            Err(e) => {
                tracing::warn!(error = %e, "could not read the status topic; showing the last statuses read");
                Vec::new()
            }
        };
        let mut seen = self.last_read();
        for (key, value) in records {
            let key = String::from_utf8_lossy(&key).into_owned();
            match value.and_then(|v| serde_json::from_slice::<Value>(&v).ok()) {
                Some(value) => seen.insert(key, value),
                None => seen.remove(&key),
            };
        }
        seen
    }

    /// What was published as of the last read, without reading.
    fn last_read(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Value>> {
        self.seen.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Appends `write`, or drops it when its condition no longer holds.
    fn apply(&self, write: Write) {
        if let Some(worker) = &write.only_if_still {
            let taken = self
                .catch_up()
                .get(&write.key)
                .and_then(|v| v.get("worker_id"))
                .and_then(Value::as_str)
                .is_some_and(|w| w != worker);
            if taken {
                return;
            }
        }
        self.append(&write.key, write.value.as_deref());
    }

    fn append(&self, key: &str, value: Option<&[u8]>) {
        if let Err(e) = self.log.append(key.as_bytes(), value) {
            tracing::warn!(key, error = %e, "could not publish a status");
        }
    }

    /// Republishes each status in `mine` (what this worker runs) that the
    /// topic's newest record under its key contradicts. `mine` is read
    /// after the topic: a status changed since then has its own record
    /// queued behind this job, so nothing newer is overwritten.
    fn reassert(&self, mine: &MemoryStatusStore) {
        let published = self.catch_up();
        let mut stale = Vec::new();
        for (name, held) in mine.all() {
            let parts = held
                .connector
                .map(|c| (connector_key(&name), c))
                .into_iter()
                .chain(held.tasks.into_iter().map(|(id, t)| {
                    let status = ConnectorStatus {
                        state: t.state,
                        worker_id: t.worker_id,
                        trace: t.trace,
                    };
                    (task_key(&name, id), status)
                }));
            for (key, status) in parts {
                if published.get(&key).and_then(decode).as_ref() != Some(&status) {
                    stale.push((key, status));
                }
            }
        }
        drop(published);
        for (key, status) in stale {
            tracing::info!(
                key,
                state = status.state.as_str(),
                "the status topic contradicts what this worker runs; republishing its status"
            );
            let value = encode(status.state, status.trace.as_deref(), &status.worker_id);
            self.append(&key, Some(&value));
        }
    }
}

/// Statuses in memory, published to a Kafka status topic.
pub struct KafkaStatusStore {
    memory: Arc<MemoryStatusStore>,
    jobs: SyncSender<Job>,
    published: Arc<Published>,
    /// A re-assert is queued and not yet done (one at a time is enough).
    reassert_queued: Arc<AtomicBool>,
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
        let (jobs, queue) = sync_channel::<Job>(QUEUE);
        let published = Arc::new(Published {
            log,
            seen: Mutex::new(BTreeMap::new()),
        });
        let memory = Arc::new(MemoryStatusStore::default());
        let reassert_queued = Arc::new(AtomicBool::new(false));
        let (writer, mine, queued) = (
            Arc::clone(&published),
            Arc::clone(&memory),
            Arc::clone(&reassert_queued),
        );
        std::thread::Builder::new()
            .name("sluice-status".into())
            .spawn(move || {
                for job in queue {
                    match job {
                        Job::Write(write) => writer.apply(write),
                        Job::Reassert => {
                            queued.store(false, Ordering::Release);
                            writer.reassert(&mine);
                        }
                    }
                }
            })?;
        Ok(Self {
            memory,
            jobs,
            published,
            reassert_queued,
        })
    }

    /// Has the writer thread republish what this worker runs wherever the
    /// topic's newest status says otherwise: another worker handing the
    /// part over wrote UNASSIGNED after this one's RUNNING. Returns at
    /// once; the group's upkeep calls it every tick.
    pub fn reassert_own(&self) {
        if self.reassert_queued.swap(true, Ordering::AcqRel) {
            return;
        }
        if self.jobs.try_send(Job::Reassert).is_err() {
            self.reassert_queued.store(false, Ordering::Release);
        }
    }

    /// Publishes a record of sluice's own under `key` (Connect reads past
    /// keys it does not know).
    pub fn publish_raw(&self, key: &str, value: Option<Value>) {
        self.publish(key.to_owned(), value.map(|v| v.to_string().into_bytes()));
    }

    /// The newest value published under `key` by any worker.
    pub fn published_raw(&self, key: &str) -> Option<Value> {
        self.published.catch_up().get(key).cloned()
    }

    /// The newest value of every key starting with `prefix`, by any worker.
    pub fn published_raw_with_prefix(&self, prefix: &str) -> Vec<(String, Value)> {
        self.published
            .catch_up()
            .range(prefix.to_owned()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// A connector's statuses as the workers running its parts last
    /// published them.
    fn published(&self, name: &str) -> Held {
        published_in(&self.published.catch_up(), name)
    }

    fn publish(&self, key: String, value: Option<Vec<u8>>) {
        self.send(Write {
            key,
            value,
            only_if_still: None,
        });
    }

    fn send(&self, write: Write) {
        match self.jobs.try_send(Job::Write(write)) {
            Ok(()) => {}
            Err(TrySendError::Full(Job::Write(write))) => {
                tracing::warn!(key = write.key, "status queue full; status not published")
            }
            Err(TrySendError::Full(Job::Reassert)) => {}
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
        let value = encode(status.state, status.trace.as_deref(), &status.worker_id);
        // Memory first, then the queue: a re-assert must never see an
        // older status in memory than the records queued ahead of it.
        self.memory.put_connector(name, status);
        if changed {
            self.publish(connector_key(name), Some(value));
        }
    }

    fn put_task(&self, name: &str, task: u32, status: TaskStatus) {
        let same = self.memory.held(name).tasks.get(&task).is_some_and(|old| {
            old.state == status.state
                && old.trace == status.trace
                && old.worker_id == status.worker_id
        });
        let value = encode(status.state, status.trace.as_deref(), &status.worker_id);
        self.memory.put_task(name, task, status);
        if !same {
            self.publish(task_key(name, task), Some(value));
        }
    }

    fn get(&self, name: &str) -> Option<Statuses> {
        merged(self.memory.held(name), self.published(name))
    }

    fn get_own(&self, name: &str) -> Option<Statuses> {
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
        // Connect's putSafe: a status the next owner wrote stays. Checked
        // by the writer thread, which reads the topic: this runs with the
        // connectors locked, and a broker that does not answer must not
        // hold every REST call and the group's upkeep up.
        self.send(Write {
            key,
            value: Some(encode(State::Unassigned, None, taken.worker_id())),
            only_if_still: Some(taken.worker_id().to_owned()),
        });
    }

    fn truncate_tasks(&self, name: &str, from: u32) {
        // Tasks other workers ran count too: the connector has fewer now.
        // As last read (every few seconds by the group's upkeep), not read
        // afresh: this runs with the connectors locked, and a broker that
        // does not answer must not hold every REST call up.
        let seen = self.published.last_read();
        let mut ids: std::collections::BTreeSet<u32> =
            published_in(&seen, name).tasks.into_keys().collect();
        drop(seen);
        ids.extend(self.memory.held(name).tasks.into_keys());
        self.memory.truncate_tasks(name, from);
        for task in ids.into_iter().filter(|t| *t >= from) {
            self.publish(task_key(name, task), None);
        }
    }

    fn remove(&self, name: &str) {
        self.truncate_tasks(name, 0);
        self.memory.remove(name);
        self.publish(connector_key(name), None);
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use rdkafka::mocking::MockCluster;

    use super::*;
    use crate::kafka::KafkaSettings;

    /// Two workers' stores on one status topic of librdkafka's mock
    /// cluster.
    fn two_workers(
        cluster: &MockCluster<'_, rdkafka::producer::DefaultProducerContext>,
    ) -> (KafkaStatusStore, KafkaStatusStore) {
        cluster.create_topic("status", 5, 1).expect("topic");
        let settings = KafkaSettings::plain(cluster.bootstrap_servers());
        let store = || {
            let log = KafkaLog::open(&settings, "status").expect("log");
            KafkaStatusStore::new(Arc::new(log)).expect("store")
        };
        (store(), store())
    }

    /// The state and worker of `key` once `done` holds for them.
    fn published_when(
        store: &KafkaStatusStore,
        key: &str,
        done: impl Fn(&str, &str) -> bool,
    ) -> (String, String) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let seen = store.published_raw(key).map(|v| {
                let field = |f: &str| v.get(f).and_then(Value::as_str).unwrap_or("").to_owned();
                (field("state"), field("worker_id"))
            });
            match seen {
                Some((state, worker)) if done(&state, &worker) => return (state, worker),
                other if Instant::now() > deadline => panic!("{key} is still {other:?}"),
                _ => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }

    /// Connect's `putSafe`: a worker handing a task over writes it
    /// UNASSIGNED, unless the next owner has already said it runs it. The
    /// check reads the topic, so it is the writer thread's, off the lock.
    #[test]
    fn a_part_handed_over_is_unassigned_unless_its_next_owner_reported_it() {
        let cluster = MockCluster::new(1).expect("mock cluster");
        let (a, b) = two_workers(&cluster);
        let key = task_key("orders", 1);
        a.put_task("orders", 1, TaskStatus::new(State::Running, "a:8083"));
        published_when(&a, &key, |s, w| s == "RUNNING" && w == "a:8083");
        // Taken over by b before a gets round to giving it up.
        b.put_task("orders", 1, TaskStatus::new(State::Running, "b:8083"));
        published_when(&a, &key, |_, w| w == "b:8083");
        a.give_up("orders", StatusPart::Task(1), true);
        // a's connector status goes through the same queue afterwards, so
        // once it is read the give-up has been dealt with.
        a.put_connector(
            "marker",
            ConnectorStatus {
                state: State::Running,
                worker_id: "a:8083".into(),
                trace: None,
            },
        );
        published_when(&a, &connector_key("marker"), |s, _| s == "RUNNING");
        assert_eq!(
            published_when(&a, &key, |_, _| true),
            ("RUNNING".to_owned(), "b:8083".to_owned()),
            "the next owner's status was overwritten"
        );
        assert!(a
            .get_own("orders")
            .is_none_or(|(_, tasks)| tasks.is_empty()));
        // Nobody took task 2 over: given up, it reads UNASSIGNED.
        a.put_task("orders", 2, TaskStatus::new(State::Running, "a:8083"));
        a.give_up("orders", StatusPart::Task(2), true);
        published_when(&b, &task_key("orders", 2), |s, w| {
            s == "UNASSIGNED" && w == "a:8083"
        });
    }

    /// The race `putSafe` leaves open: the old owner checked the topic,
    /// then the new owner wrote RUNNING, then the old owner's UNASSIGNED
    /// landed. The new owner's next re-assert puts its RUNNING back, and
    /// leaves alone what the topic already shows right.
    #[test]
    fn a_late_unassigned_from_the_old_owner_is_overwritten_by_the_owner() {
        let cluster = MockCluster::new(1).expect("mock cluster");
        let (old, new) = two_workers(&cluster);
        let key = task_key("orders", 0);
        new.put_task("orders", 0, TaskStatus::new(State::Running, "new:8083"));
        published_when(&old, &key, |s, w| s == "RUNNING" && w == "new:8083");
        // The old owner's give-up, its check already passed.
        old.publish(
            key.clone(),
            Some(encode(State::Unassigned, None, "old:8083")),
        );
        published_when(&new, &key, |s, _| s == "UNASSIGNED");
        new.reassert_own();
        assert_eq!(
            published_when(&old, &key, |s, _| s == "RUNNING"),
            ("RUNNING".to_owned(), "new:8083".to_owned())
        );
        // Nothing contradicts it now: a re-assert writes nothing.
        let settings = KafkaSettings::plain(cluster.bootstrap_servers());
        let watcher = KafkaLog::open(&settings, "status").expect("log");
        let before = watcher.read_to_end().expect("read").len();
        new.reassert_own();
        // A record queued behind the re-assert: once it is on the topic,
        // whatever the re-assert wrote is too.
        new.put_task("marker", 0, TaskStatus::new(State::Running, "new:8083"));
        published_when(&new, &task_key("marker", 0), |s, _| s == "RUNNING");
        let written: Vec<String> = watcher
            .read_to_end()
            .expect("read")
            .into_iter()
            .map(|(key, _)| String::from_utf8_lossy(&key).into_owned())
            .collect();
        assert_eq!(before, 3, "RUNNING, UNASSIGNED, RUNNING");
        // (The marker may be written twice: the re-assert can see it in
        // memory before its own record reaches the topic.)
        assert!(
            written.contains(&task_key("marker", 0)) && !written.contains(&key),
            "a status the topic already showed was rewritten: {written:?}"
        );
    }

    /// Giving a part up runs with the connectors locked: a broker that
    /// answers in 30 s must not make it wait (it read the topic to its end
    /// there before).
    #[test]
    fn giving_a_part_up_does_not_wait_for_the_broker() {
        let cluster = MockCluster::new(1).expect("mock cluster");
        let (a, _) = two_workers(&cluster);
        a.put_task("orders", 0, TaskStatus::new(State::Running, "a:8083"));
        published_when(&a, &task_key("orders", 0), |s, _| s == "RUNNING");
        cluster
            .broker_round_trip_time(1, Duration::from_secs(30))
            .expect("slow broker");
        let (done, returned) = std::sync::mpsc::channel();
        std::thread::scope(|scope| {
            scope.spawn(|| {
                a.give_up("orders", StatusPart::Task(0), true);
                let _ = done.send(());
            });
            assert!(
                returned.recv_timeout(Duration::from_secs(5)).is_ok(),
                "give_up waited for the broker"
            );
        });
        assert!(a
            .get_own("orders")
            .is_none_or(|(_, tasks)| tasks.is_empty()));
        cluster
            .broker_round_trip_time(1, Duration::ZERO)
            .expect("broker back");
    }

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
