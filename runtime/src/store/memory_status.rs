//! Statuses kept in memory.
//!
//! A status describes a live task, so after a restart it is rebuilt from
//! what the tasks report rather than read back: a stored RUNNING from before
//! a crash would be a lie.

use std::collections::BTreeMap;
use std::sync::Mutex;

use super::StatusStore;
use crate::herder::status::{ConnectorStatus, TaskStatus};

type Entry = (ConnectorStatus, BTreeMap<u32, TaskStatus>);

/// Statuses in a map behind a lock.
#[derive(Debug, Default)]
pub struct MemoryStatusStore {
    entries: Mutex<BTreeMap<String, Entry>>,
}

impl MemoryStatusStore {
    fn with<R>(&self, f: impl FnOnce(&mut BTreeMap<String, Entry>) -> R) -> R {
        // A panic while holding the lock leaves plain data behind; keep going.
        let mut guard = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut guard)
    }
}

impl StatusStore for MemoryStatusStore {
    fn put_connector(&self, name: &str, status: ConnectorStatus) {
        self.with(|m| match m.get_mut(name) {
            Some(entry) => entry.0 = status,
            None => {
                m.insert(name.to_owned(), (status, BTreeMap::new()));
            }
        });
    }

    fn put_task(&self, name: &str, task: u32, status: TaskStatus) {
        self.with(|m| {
            if let Some(entry) = m.get_mut(name) {
                entry.1.insert(task, status);
            }
        });
    }

    fn get(&self, name: &str) -> Option<Entry> {
        self.with(|m| m.get(name).cloned())
    }

    fn truncate_tasks(&self, name: &str, from: u32) {
        self.with(|m| {
            if let Some(entry) = m.get_mut(name) {
                entry.1.retain(|id, _| *id < from);
            }
        });
    }

    fn remove(&self, name: &str) {
        self.with(|m| {
            m.remove(name);
        });
    }
}
