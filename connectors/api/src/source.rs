//! The source side of the contract: a connector that splits work into
//! tasks, and tasks that turn an external system into records.

use async_trait::async_trait;

use crate::config::{ConfigDef, ConfigValue, ConnectorConfig};
use crate::error::ConnectorError;
use crate::offset::{SourceOffset, SourcePartition};
use crate::plugin::PluginInfo;
use crate::record::SourceRecord;

/// Why a task is being stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// The operator stopped, paused for good, deleted or reconfigured it,
    /// or the worker is shutting down.
    Requested,
    /// It failed; it may be restarted and must be able to resume.
    Failed,
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

/// What the runtime gives a source task when it starts.
#[derive(Debug, Clone, Default)]
pub struct SourceTaskContext {
    /// The committed offsets of this connector, by partition.
    pub offsets: Vec<(SourcePartition, SourceOffset)>,
}

impl SourceTaskContext {
    /// The committed offset for `partition`, if any: where to resume.
    pub fn offset(&self, partition: &SourcePartition) -> Option<&SourceOffset> {
        self.offsets
            .iter()
            .find(|(p, _)| p == partition)
            .map(|(_, o)| o)
    }
}

/// A running source task.
///
/// The runtime calls `start` once, then `poll` in a loop, `commit` whenever
/// offsets become durable, and `stop` at the end. `poll` should return within
/// about a second, with an empty batch if nothing arrived, so that pause and
/// stop requests are served promptly.
#[async_trait]
pub trait SourceTask: Send {
    /// Connects and prepares to read from the stored offsets in `context`.
    async fn start(
        &mut self,
        config: &ConnectorConfig,
        context: SourceTaskContext,
    ) -> Result<(), ConnectorError>;

    /// The next batch of records, possibly empty.
    async fn poll(&mut self) -> Result<Vec<SourceRecord>, ConnectorError>;

    /// Told that every record up to these offsets is durable in Kafka and the
    /// offsets are stored; a database source may now release its log up to
    /// them (Postgres `confirmed_flush_lsn`).
    async fn commit(
        &mut self,
        _offsets: &[(SourcePartition, SourceOffset)],
    ) -> Result<(), ConnectorError> {
        Ok(())
    }

    /// Releases connections. Called once, also after a failure: `reason`
    /// tells which, so cleanup meant for a graceful stop (dropping a
    /// replication slot) is skipped when the task will be restarted.
    async fn stop(&mut self, _reason: StopReason) {}

    /// Progress the task wants shown in its status (e.g. snapshot rows done),
    /// as a JSON object; `None` when there is nothing to show. A
    /// `"snapshot": {"<table>": {"rows": n, "estimated_rows": m}}` member is
    /// also exported to `/metrics` and drawn by `sluice status`.
    fn progress(&self) -> Option<serde_json::Value> {
        None
    }
}
