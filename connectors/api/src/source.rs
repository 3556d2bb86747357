//! The source side of the contract: a connector that splits work into
//! tasks, and tasks that turn an external system into records.

use async_trait::async_trait;

use crate::config::{ConfigDef, ConfigValue, ConnectorConfig};
use crate::context::SourceContext;
use crate::error::ConnectorError;
use crate::plugin::PluginInfo;

/// Why a task is being stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// The operator stopped, paused for good, deleted or reconfigured it,
    /// or the worker is shutting down.
    Requested,
    /// It failed; it may be restarted and must be able to resume.
    Failed,
    /// It moves to another worker of a group (a rebalance, or this worker
    /// leaving): it resumes there, so nothing it needs may be released.
    Handover,
}

/// The schemas a connector emits to one topic.
#[derive(Debug, Clone)]
pub struct TopicSchemas {
    /// The topic.
    pub topic: String,
    /// The key schema; `None` for keyless records.
    pub key: Option<std::sync::Arc<crate::schema::Schema>>,
    /// The value schema.
    pub value: Option<std::sync::Arc<crate::schema::Schema>>,
}

/// A source connector plugin: validates configuration, splits the work into
/// task configurations, and creates tasks. It holds no running state.
#[async_trait]
pub trait SourceConnector: Send + Sync {
    /// Class name, aliases and version.
    fn info(&self) -> PluginInfo;

    /// The keys this connector understands.
    fn config_def(&self) -> ConfigDef;

    /// Validates `config`, one entry per defined key. The default checks each
    /// key against [`SourceConnector::config_def`]; connectors add
    /// cross-key checks on top.
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
    fn create_task(&self) -> Box<dyn SourceTask>;

    /// The key and value schemas the connector would emit for its source as
    /// it is now (a live database's tables), per topic, without emitting
    /// anything: what `sluice schemas check` compares with the contracts.
    async fn describe_schemas(
        &self,
        _config: &ConnectorConfig,
    ) -> Result<Vec<TopicSchemas>, ConnectorError> {
        Err(ConnectorError::fatal(format!(
            "{} cannot describe its schemas without running",
            self.info().class
        )))
    }
}

/// A running source task.
///
/// The runtime calls `run` once with a [`SourceContext`]: the task reads its
/// source from the stored offsets there and pushes records through the
/// context's emitter until the context's shutdown fires (then it returns
/// `Ok`) or an error ends it. A task whose source is finished (a
/// snapshot-only run) may return `Ok` early. `stop` follows, once.
#[async_trait]
pub trait SourceTask: Send {
    /// Reads the source and emits its records until shutdown or an error.
    async fn run(
        &mut self,
        config: &ConnectorConfig,
        context: SourceContext,
    ) -> Result<(), ConnectorError>;

    /// Releases what outlives `run`. `reason` tells whether the task is
    /// stopped for good or will be restarted, so cleanup meant for a
    /// graceful stop (dropping a replication slot) is skipped after a
    /// failure.
    async fn stop(&mut self, _reason: StopReason) {}
}
