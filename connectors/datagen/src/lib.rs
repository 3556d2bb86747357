//! `datagen`: a source connector that writes numbered records to one topic.
//!
//! Every record carries a sequence number that continues across restarts
//! from the committed offset, so a consumer can check for gaps and
//! duplicates; that makes it the workhorse of the runtime's durability tests
//! and of the producer benchmark.

mod config;
mod task;

use std::sync::Arc;

use async_trait::async_trait;
use sluice_connector_api::{
    ConfigDef, ConnectorConfig, ConnectorError, PluginInfo, PluginKind, SourceConnector,
    SourceTask, TopicSchemas,
};

pub use config::DatagenConfig;
pub use task::DatagenTask;

/// The datagen connector plugin.
#[derive(Debug, Default, Clone, Copy)]
pub struct DatagenConnector;

#[async_trait]
impl SourceConnector for DatagenConnector {
    fn info(&self) -> PluginInfo {
        PluginInfo {
            class: "io.sluice.connector.datagen.DatagenConnector",
            aliases: &["datagen"],
            kind: PluginKind::Source,
            version: env!("CARGO_PKG_VERSION"),
        }
    }

    fn config_def(&self) -> ConfigDef {
        config::definition()
    }

    fn task_configs(
        &self,
        config: &ConnectorConfig,
        _max_tasks: usize,
    ) -> Result<Vec<ConnectorConfig>, ConnectorError> {
        // One ordered sequence is the point of this connector, so it always
        // runs as a single task whatever tasks.max says.
        DatagenConfig::parse(config)?;
        Ok(vec![config.clone()])
    }

    fn create_task(&self) -> Box<dyn SourceTask> {
        Box::new(DatagenTask)
    }

    async fn describe_schemas(
        &self,
        config: &ConnectorConfig,
    ) -> Result<Vec<TopicSchemas>, ConnectorError> {
        let config = DatagenConfig::parse(config)?;
        Ok(vec![TopicSchemas {
            topic: config.topic.to_string(),
            key: Some(Arc::new(task::key_schema())),
            value: Some(Arc::new(task::value_schema(&config))),
        }])
    }
}
