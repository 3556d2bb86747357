//! Where the worker keeps what must outlive it: connector configs and
//! target states, source offsets, and task statuses.
//!
//! Each store is a small trait, as in Kafka Connect, so that the standalone
//! state-directory implementation can be joined later by one backed by Kafka
//! topics for a group of workers without touching the herder.

mod atomic_file;
mod dir_lock;
pub mod kafka;
mod memory_status;
mod state_dir;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sluice_connector_api::{SourceOffset, SourcePartition};
use thiserror::Error;

pub use atomic_file::write_atomically;
pub use dir_lock::{lock_state_dir, StateDirLock};
pub use memory_status::MemoryStatusStore;
pub use state_dir::{prepare_state_dir, StateDirConfigStore, StateDirOffsetStore};

use crate::herder::status::{ConnectorStatus, TaskStatus};

/// A store could not read or write its state.
#[derive(Debug, Error)]
pub enum StoreError {
    /// Reading or writing a file failed.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file involved.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Another process uses the state directory.
    #[error("the state directory {dir} is in use by another sluice process ({holder}); give each worker and registry its own --state-dir, or stop the other process first")]
    Locked {
        /// The directory.
        dir: String,
        /// Who holds it, as it wrote itself into the lock file.
        holder: String,
    },
    /// A Kafka-backed store could not reach or use its topic.
    #[error("{action} the topic {topic}: {source}; check that the broker is reachable and that this worker may read, write and create it")]
    Kafka {
        /// What was being done.
        action: &'static str,
        /// The topic.
        topic: String,
        /// The cause.
        #[source]
        source: rdkafka::error::KafkaError,
    },
    /// A stored file is not what this version of sluice wrote.
    #[error("{path} is corrupt ({source}); move it aside to start without it")]
    Corrupt {
        /// The file involved.
        path: String,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
}

/// What an operator asked a connector to be doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TargetState {
    /// Running.
    #[default]
    Started,
    /// Tasks kept but idle.
    Paused,
    /// Tasks shut down; offsets may be edited.
    Stopped,
}

/// A connector's stored configuration and target state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredConnector {
    /// The connector name.
    pub name: String,
    /// Its configuration as submitted (secrets as placeholders if given so).
    pub config: BTreeMap<String, String>,
    /// What it should be doing.
    #[serde(default)]
    pub target_state: TargetState,
}

/// Connector configurations, durable across restarts.
pub trait ConfigStore: Send + Sync {
    /// Every stored connector.
    fn load(&self) -> Result<Vec<StoredConnector>, StoreError>;
    /// Creates or replaces one connector.
    fn put(&self, connector: &StoredConnector) -> Result<(), StoreError>;
    /// Forgets one connector.
    fn remove(&self, name: &str) -> Result<(), StoreError>;
}

/// Source offsets per connector and partition, durable across restarts.
pub trait OffsetStore: Send + Sync {
    /// The offsets stored for `connector`.
    fn get(&self, connector: &str) -> Result<Vec<(SourcePartition, SourceOffset)>, StoreError>;
    /// Sets (or with `None` removes) offsets of `connector`, all at once.
    fn put(
        &self,
        connector: &str,
        offsets: &[(SourcePartition, Option<SourceOffset>)],
    ) -> Result<(), StoreError>;
    /// Removes every offset of `connector`.
    fn clear(&self, connector: &str) -> Result<(), StoreError>;
}

/// One status record of a connector: its own, or one of its tasks'.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusPart {
    /// The connector's own status.
    Connector,
    /// The status of the task with this id.
    Task(u32),
}

/// A connector's status and its tasks' by id.
pub type Statuses = (ConnectorStatus, BTreeMap<u32, TaskStatus>);

/// The last reported status of connectors and their tasks.
pub trait StatusStore: Send + Sync {
    /// Records a connector's status.
    fn put_connector(&self, name: &str, status: ConnectorStatus);
    /// Records a task's status (in a group, the connector itself may run
    /// on another worker).
    fn put_task(&self, name: &str, task: u32, status: TaskStatus);
    /// A connector's status and its tasks' statuses, by task id; in a
    /// group, what this worker reports over what the others published
    /// (which may mean reading the status topic: call it off the async
    /// threads).
    fn get(&self, name: &str) -> Option<Statuses>;
    /// What this worker itself reports of a connector, read from memory:
    /// all there is to know when every part of it runs here.
    fn get_own(&self, name: &str) -> Option<Statuses> {
        self.get(name)
    }
    /// Forgets the statuses of tasks with ids `from` and above, whichever
    /// worker reported them (the connector has fewer tasks now).
    fn truncate_tasks(&self, name: &str, from: u32);
    /// Forgets a connector.
    fn remove(&self, name: &str);
    /// Forgets what this worker reported about a connector, without
    /// publishing anything (deleted through another worker).
    fn forget(&self, name: &str) {
        self.remove(name);
    }
    /// Forgets what this worker reported about `part` of connector `name`,
    /// which it no longer runs. With `report`, first reports it UNASSIGNED
    /// (Connect's status on shutdown) unless another worker reported it
    /// since; a worker that lost its lease does not report (a report sent
    /// from behind a cut would land after the next owner's).
    fn give_up(&self, name: &str, part: StatusPart, report: bool);
}
