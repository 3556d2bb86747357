//! A group of workers of a test's own: its id and state topics, and the
//! worker flags that join it.

use crate::env::TestEnv;
use crate::kafka::create_compacted_topic;
use crate::unique;

/// A group of its own: id and the three state topics' names.
pub struct Group {
    /// The group id.
    pub id: String,
    /// The config topic.
    pub configs: String,
    /// The offset topic.
    pub offsets: String,
    /// The status topic.
    pub status: String,
}

impl Group {
    /// A fresh group.
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        let id = unique("group");
        Self {
            configs: format!("{id}-configs"),
            offsets: format!("{id}-offsets"),
            status: format!("{id}-status"),
            id,
        }
    }

    /// The worker flags that join this group.
    pub fn args(&self) -> Vec<&str> {
        vec![
            "--group-id",
            &self.id,
            "--config-storage-topic",
            &self.configs,
            "--offset-storage-topic",
            &self.offsets,
            "--status-storage-topic",
            &self.status,
            "--config-storage-replication-factor",
            "1",
            "--offset-storage-replication-factor",
            "1",
            "--status-storage-replication-factor",
            "1",
        ]
    }

    /// Leaves the topics as a Connect cluster creates them.
    pub fn create_topics_as_connect(&self, env: &TestEnv) {
        create_compacted_topic(env.bootstrap(), &self.configs, 1);
        create_compacted_topic(env.bootstrap(), &self.offsets, 25);
        create_compacted_topic(env.bootstrap(), &self.status, 5);
    }
}

/// The worker ids of `ids` but the one at `gone`.
pub fn survivors(ids: &[String], gone: usize) -> Vec<String> {
    ids.iter()
        .enumerate()
        .filter(|(i, _)| *i != gone)
        .map(|(_, id)| id.clone())
        .collect()
}
