//! The sink side of the contract: a connector that splits topics into
//! tasks, and tasks that apply batches of records to an external system.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;

use crate::config::{ConfigDef, ConfigValue, ConnectorConfig};
use crate::error::ConnectorError;
use crate::plugin::PluginInfo;
use crate::record::SinkRecord;
use crate::schema::Schema;

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
/// The runtime commits consumer offsets only up to what the task has made
/// durable in the target, so a crash replays, never skips. A batch is
/// durable once the `put` after it, or a [`SinkTask::flush`], returns
/// `Ok`: `put` may return while its batch's last work (a commit) is still
/// under way at the target, so the next batch is prepared meanwhile.
#[async_trait]
pub trait SinkTask: Send {
    /// Connects to the target.
    async fn start(&mut self, config: &ConnectorConfig) -> Result<(), ConnectorError>;

    /// Applies `records` (in partition order) to the target, in one target
    /// transaction where the target has them, after making every earlier
    /// batch durable. It may return before its own batch is durable; an
    /// error then may be an earlier batch's. After a retriable error the
    /// runtime restarts the task (`stop`, `start`) and hands over again
    /// every record not known durable: the same batch when no earlier one
    /// was outstanding, else every record from the earlier batch's first,
    /// read again from the broker.
    async fn put(&mut self, records: &[SinkRecord]) -> Result<(), ConnectorError>;

    /// Makes every batch handed to `put` durable, or says why it is not.
    /// After a retriable error the runtime reads every record not known
    /// durable again, as after `put`'s; after another the task fails.
    /// Cancel-safe: dropped before it returns, it can be called again.
    /// The default has nothing outstanding: its `put` waits for its batch.
    async fn flush(&mut self) -> Result<(), ConnectorError> {
        Ok(())
    }

    /// Releases connections. Called once, also after a failure.
    async fn stop(&mut self) {}

    /// Which fields of record values this task reads, asked once after
    /// `start`; `None` (the default) when it may read any. The runtime may
    /// then hand over values whose unselected fields are `Null` instead of
    /// decoding them (only when no transform runs before the task).
    fn value_fields(&self) -> Option<Arc<dyn FieldSelector>> {
        None
    }

    /// Whether this task reads record headers, asked once after `start`;
    /// `true` (the default) when it may. When `false` the runtime may hand
    /// over records with no headers instead of parsing them (only when no
    /// transform runs before the task and no dead-letter topic copies
    /// them).
    fn reads_headers(&self) -> bool {
        true
    }
}

/// Chooses the fields of a value a sink task reads, per value schema.
pub trait FieldSelector: Send + Sync {
    /// The fields read from values of `schema`; `None` for all of them.
    fn select(&self, schema: &Schema) -> Option<FieldSelection>;
}

/// Fields of a struct value, each with the fields read inside it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSelection {
    /// Selected fields by name; `None` selects the whole field.
    pub fields: Vec<(String, Option<FieldSelection>)>,
}

impl FieldSelection {
    /// Selects `name` whole.
    pub fn whole(mut self, name: &str) -> Self {
        self.fields.push((name.to_owned(), None));
        self
    }

    /// Selects only `inner`'s fields of the struct field `name`.
    pub fn part(mut self, name: &str, inner: FieldSelection) -> Self {
        self.fields.push((name.to_owned(), Some(inner)));
        self
    }
}
