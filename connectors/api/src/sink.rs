//! The sink side of the contract: a connector that splits topics into
//! tasks, and tasks that apply batches of records to an external system.

use std::collections::BTreeMap;

use async_trait::async_trait;

use crate::config::{ConfigDef, ConfigValue, ConnectorConfig};
use crate::error::ConnectorError;
use crate::plugin::PluginInfo;
use crate::record::SinkRecord;

/// A sink connector plugin: validates configuration, splits the work into
/// task configurations, and creates tasks.
pub trait SinkConnector: Send + Sync {
    /// Class name, aliases and version.
    fn info(&self) -> PluginInfo;

    /// The keys this connector understands.
    fn config_def(&self) -> ConfigDef;

    /// Validates `config`, one entry per defined key.
    fn validate(&self, config: &ConnectorConfig) -> Vec<ConfigValue> {
        self.config_def().validate(config)
    }

    /// Splits the work into at most `max_tasks` task configurations.
    fn task_configs(
        &self,
        config: &ConnectorConfig,
        max_tasks: usize,
    ) -> Result<Vec<ConnectorConfig>, ConnectorError>;

    /// A fresh, unstarted task.
    fn create_task(&self) -> Box<dyn SinkTask>;
}

/// Kafka offsets by topic and partition: the next offset to read.
pub type TopicOffsets = BTreeMap<(String, i32), i64>;

/// A running sink task.
///
/// The runtime commits consumer offsets only up to what `put` has made
/// durable in the target, so a crash replays, never skips.
#[async_trait]
pub trait SinkTask: Send {
    /// Connects to the target.
    async fn start(&mut self, config: &ConnectorConfig) -> Result<(), ConnectorError>;

    /// Applies `records` (in partition order) durably to the target, in one
    /// target transaction where the target has them. The runtime keeps the
    /// records, so after a retriable error it can hand the same ones over
    /// again.
    async fn put(&mut self, records: &[SinkRecord]) -> Result<(), ConnectorError>;

    /// Releases connections. Called once, also after a failure.
    async fn stop(&mut self) {}
}
