//! Creating topics before the first record is sent to them, as Connect's
//! `topic.creation.*` does, so no broker auto-creation setting is needed.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::config::ClientConfig;
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;

use super::SluiceContext;

/// Creates topics once each, remembering which exist.
pub struct TopicCreator {
    admin: Arc<AdminClient<SluiceContext>>,
    known: Mutex<HashSet<String>>,
}

/// How a new topic is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TopicLayout {
    /// Number of partitions.
    pub partitions: i32,
    /// Replication factor; -1 takes the broker's default.
    pub replication_factor: i32,
    /// Topic configs set at creation; the broker's defaults for the rest.
    pub configs: &'static [(&'static str, &'static str)],
}

/// How Debezium's own history producer creates a schema-history topic
/// (`KafkaSchemaHistory`): deleted never, by time or by size.
const SCHEMA_HISTORY_CONFIGS: &[(&str, &str)] = &[
    ("cleanup.policy", "delete"),
    ("retention.ms", "9223372036854775807"),
    ("retention.bytes", "-1"),
];

impl TopicLayout {
    /// A data topic's layout: `partitions` and `replication_factor`, the
    /// broker's defaults for every config.
    pub fn data(partitions: i32, replication_factor: i32) -> Self {
        Self {
            partitions,
            replication_factor,
            configs: &[],
        }
    }

    /// A schema-history topic with this layout's replication factor, laid
    /// out as Debezium creates one: a single partition (Debezium writes and
    /// reads partition 0 alone), kept for ever (a history with its oldest
    /// records deleted cannot be replayed).
    pub fn schema_history(self) -> Self {
        Self {
            partitions: 1,
            replication_factor: self.replication_factor,
            configs: SCHEMA_HISTORY_CONFIGS,
        }
    }
}

impl TopicCreator {
    /// An admin client for the cluster `settings` name, secured as the
    /// other clients are.
    pub fn new(settings: &super::KafkaSettings) -> Result<Self, KafkaError> {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", &settings.bootstrap_servers);
        for (key, value) in &settings.client_properties {
            config.set(key, value);
        }
        let admin = Arc::new(config.create_with_context(SluiceContext)?);
        super::admin_token::keep_fresh(&admin, &config);
        Ok(Self {
            admin,
            known: Mutex::new(HashSet::new()),
        })
    }

    /// Makes sure `topic` exists, creating it with `layout` if not.
    pub async fn ensure(&self, topic: &str, layout: TopicLayout) -> Result<(), KafkaError> {
        self.create(topic, layout, layout.configs).await
    }

    /// Makes sure `topic` exists, creating it compacted with `layout` if
    /// not: a key-value state topic keeps each key's newest value.
    pub async fn ensure_compacted(
        &self,
        topic: &str,
        layout: TopicLayout,
    ) -> Result<(), KafkaError> {
        self.create(topic, layout, &[("cleanup.policy", "compact")])
            .await
    }

    async fn create(
        &self,
        topic: &str,
        layout: TopicLayout,
        configs: &[(&str, &str)],
    ) -> Result<(), KafkaError> {
        if self.is_known(topic) {
            return Ok(());
        }
        let replication = TopicReplication::Fixed(layout.replication_factor);
        let mut new = NewTopic::new(topic, layout.partitions, replication);
        for (key, value) in configs {
            new = new.set(key, value);
        }
        let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
        let results = self.admin.create_topics([&new], &options).await?;
        for result in results {
            match result {
                Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((name, code)) => {
                    return Err(KafkaError::AdminOp(code)).inspect_err(|_| {
                        tracing::warn!(topic = %name, error = %code, "topic creation failed");
                    })
                }
            }
        }
        self.known
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(topic.to_owned());
        Ok(())
    }

    fn is_known(&self, topic: &str) -> bool {
        self.known
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(topic)
    }
}
