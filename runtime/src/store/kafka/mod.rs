//! Stores on Kafka topics, in Kafka Connect's formats, for workers started
//! with a `--group-id`: configs, offsets and statuses outlive any one
//! machine, and a Connect cluster's topics (a Debezium deployment's
//! `connect-configs` and `connect-offsets`) are read as they are.

mod config_topic;
mod log;
mod offset_topic;
mod status_topic;

use std::sync::Arc;

pub use config_topic::KafkaConfigStore;
pub use log::KafkaLog;
pub use offset_topic::{offset_record, KafkaOffsetStore};
pub use status_topic::KafkaStatusStore;

use super::StoreError;
use crate::kafka::{KafkaSettings, TopicCreator, TopicLayout};

/// Connect's default config topic name.
pub const DEFAULT_CONFIG_TOPIC: &str = "connect-configs";
/// Connect's default offset topic name.
pub const DEFAULT_OFFSET_TOPIC: &str = "connect-offsets";
/// Connect's default status topic name.
pub const DEFAULT_STATUS_TOPIC: &str = "connect-status";
/// Connect's default partitions of the offset topic.
pub const DEFAULT_OFFSET_PARTITIONS: i32 = 25;
/// Connect's default partitions of the status topic.
pub const DEFAULT_STATUS_PARTITIONS: i32 = 5;
/// Replication factor of the state topics when not given: the broker's
/// default (Connect's is 3, which a one-broker cluster cannot hold).
pub const DEFAULT_STATE_REPLICATION_FACTOR: i32 = -1;

/// A state topic: its name and how it is created when missing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateTopic {
    /// The topic name.
    pub name: String,
    /// Partitions and replication factor for creation.
    pub layout: TopicLayout,
}

/// Where a group of workers keeps its state (Connect's `group.id` and
/// `*.storage.*` worker settings).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupSettings {
    /// The group's id, shared by every worker of the cluster.
    pub group_id: String,
    /// Connector configs and target states (always one partition).
    pub configs: StateTopic,
    /// Source offsets.
    pub offsets: StateTopic,
    /// Statuses.
    pub status: StateTopic,
    /// The embedded registry's schemas, when the workers serve it.
    pub registry: StateTopic,
}

/// The three stores of a worker in a group.
pub struct KafkaStores {
    /// Connector configs.
    pub configs: Arc<KafkaConfigStore>,
    /// Source offsets.
    pub offsets: Arc<KafkaOffsetStore>,
    /// Statuses.
    pub status: Arc<KafkaStatusStore>,
}

/// Creates the state topics when missing (compacted, as Connect requires)
/// and opens the stores on them, each read to its end.
pub async fn open(
    settings: &KafkaSettings,
    creator: &TopicCreator,
    group: &GroupSettings,
) -> Result<KafkaStores, StoreError> {
    for topic in [&group.configs, &group.offsets, &group.status] {
        creator
            .ensure_compacted(&topic.name, topic.layout)
            .await
            .map_err(|source| StoreError::Kafka {
                action: "creating",
                topic: topic.name.clone(),
                source,
            })?;
    }
    let settings = settings.clone();
    let group = group.clone();
    let first = group.configs.name.clone();
    tokio::task::spawn_blocking(move || {
        let configs = KafkaConfigStore::new(KafkaLog::open(&settings, &group.configs.name)?);
        let offsets = KafkaOffsetStore::new(KafkaLog::open(&settings, &group.offsets.name)?);
        let status_log = Arc::new(KafkaLog::open(&settings, &group.status.name)?);
        let status = KafkaStatusStore::new(status_log).map_err(|source| StoreError::Io {
            action: "starting the status writer for",
            path: group.status.name.clone(),
            source,
        })?;
        Ok(KafkaStores {
            configs: Arc::new(configs),
            offsets: Arc::new(offsets),
            status: Arc::new(status),
        })
    })
    .await
    .map_err(|e| StoreError::Io {
        action: "opening the state topics",
        path: first,
        source: std::io::Error::other(e),
    })?
}
