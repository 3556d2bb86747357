//! Statuses kept in memory.
//!
//! A status describes a live task, so after a restart it is rebuilt from
//! what the tasks report rather than read back: a stored RUNNING from before
//! a crash would be a lie.

use std::collections::BTreeMap;
use std::sync::Mutex;

use super::{StatusPart, StatusStore, Statuses};
use crate::herder::status::{ConnectorStatus, TaskStatus};

/// What is known of one connector: its own status, if reported, and its
/// tasks' (in a group, a worker may run tasks of a connector another
/// worker runs, or the connector and not all of its tasks).
#[derive(Debug, Default, Clone)]
pub struct Held {
    /// The connector's own status.
    pub connector: Option<ConnectorStatus>,
    /// Its tasks' statuses, by task id.
    pub tasks: BTreeMap<u32, TaskStatus>,
}

/// Statuses in a map behind a lock.
#[derive(Debug, Default)]
pub struct MemoryStatusStore {
    entries: Mutex<BTreeMap<String, Held>>,
}

impl MemoryStatusStore {
    fn with<R>(&self, f: impl FnOnce(&mut BTreeMap<String, Held>) -> R) -> R {
        // A panic while holding the lock leaves plain data behind; keep going.
        let mut guard = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut guard)
    }

    /// Everything recorded about connector `name`, whole or in part.
    pub fn held(&self, name: &str) -> Held {
        self.with(|m| m.get(name).cloned().unwrap_or_default())
    }

    /// Everything recorded, by connector.
    pub fn all(&self) -> BTreeMap<String, Held> {
        self.with(|m| m.clone())
    }

    /// Forgets `part` of connector `name`; what it was, if recorded.
    pub fn take(&self, name: &str, part: StatusPart) -> Option<StatusPartValue> {
        self.with(|m| {
            let held = m.get_mut(name)?;
            let taken = match part {
                StatusPart::Connector => held.connector.take().map(StatusPartValue::Connector),
                StatusPart::Task(id) => held.tasks.remove(&id).map(StatusPartValue::Task),
            };
            if held.connector.is_none() && held.tasks.is_empty() {
                m.remove(name);
            }
            taken
        })
    }
}

/// A status taken out of the store by [`MemoryStatusStore::take`].
#[derive(Debug, Clone)]
pub enum StatusPartValue {
    /// The connector's own.
    Connector(ConnectorStatus),
    /// A task's.
    Task(TaskStatus),
}

impl StatusPartValue {
    /// The worker that reported it.
    pub fn worker_id(&self) -> &str {
        match self {
            Self::Connector(c) => &c.worker_id,
            Self::Task(t) => &t.worker_id,
        }
    }
}

impl StatusStore for MemoryStatusStore {
    fn put_connector(&self, name: &str, status: ConnectorStatus) {
        self.with(|m| m.entry(name.to_owned()).or_default().connector = Some(status));
    }

    fn put_task(&self, name: &str, task: u32, status: TaskStatus) {
        self.with(|m| {
            m.entry(name.to_owned())
                .or_default()
                .tasks
                .insert(task, status);
        });
    }

    fn get(&self, name: &str) -> Option<Statuses> {
        self.with(|m| {
            let held = m.get(name)?;
            Some((held.connector.clone()?, held.tasks.clone()))
        })
    }

    fn truncate_tasks(&self, name: &str, from: u32) {
        self.with(|m| {
            if let Some(held) = m.get_mut(name) {
                held.tasks.retain(|id, _| *id < from);
            }
        });
    }

    fn remove(&self, name: &str) {
        self.with(|m| {
            m.remove(name);
        });
    }

    fn give_up(&self, name: &str, part: StatusPart, _report: bool) {
        self.take(name, part);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::herder::status::State;

    fn connector(state: State) -> ConnectorStatus {
        ConnectorStatus {
            state,
            worker_id: "w1".into(),
            trace: None,
        }
    }

    /// A worker may hold a connector's task without the connector (its
    /// connector runs elsewhere in the group): the task's status is kept
    /// and given up on its own.
    #[test]
    fn parts_of_a_connector_are_kept_and_given_up_one_by_one() {
        let store = MemoryStatusStore::default();
        store.put_task("orders", 2, TaskStatus::new(State::Running, "w1"));
        assert!(store.get("orders").is_none(), "no connector status yet");
        assert_eq!(store.held("orders").tasks.len(), 1);
        store.put_connector("orders", connector(State::Running));
        store.put_task("orders", 0, TaskStatus::new(State::Running, "w1"));
        let (c, tasks) = store.get("orders").expect("known");
        assert_eq!(c.state, State::Running);
        assert_eq!(tasks.keys().copied().collect::<Vec<_>>(), vec![0, 2]);
        store.give_up("orders", StatusPart::Task(2), true);
        assert_eq!(store.held("orders").tasks.len(), 1);
        store.give_up("orders", StatusPart::Connector, true);
        assert!(store.get("orders").is_none());
        store.give_up("orders", StatusPart::Task(0), false);
        assert!(store.held("orders").tasks.is_empty());
    }
}
