//! The MySQL / MariaDB source connector: a consistent snapshot, then the
//! binlog read as a replica, as Debezium-compatible change events (same
//! config keys, topics, envelope, `source` block and offsets), with the
//! captured tables' schema history kept beside the offsets.

pub mod binlog_guard;
pub mod boolean_columns;
mod capture;
pub mod catalog;
pub mod config;
pub mod ddl;
mod debezium_history;
mod events;
pub mod flavor;
pub mod gtid;
#[cfg(test)]
mod mysql8_tests;
mod offset;
mod payload;
pub mod row_images;
mod setup;
mod snapshot;
mod stream;
mod table_schema;
mod task;
#[cfg(test)]
mod test_binlog;
mod text_row;
pub mod types;

use std::sync::Arc;

use async_trait::async_trait;
use sluice_connector_api::{
    ConfigDef, ConfigValue, ConnectorConfig, ConnectorError, PluginInfo, PluginKind,
    SourceConnector, SourceTask, TopicSchemas,
};

pub use config::MySqlConfig;
pub use task::MySqlTask;

/// Debezium's class name, so existing configs work unchanged.
pub const CLASS: &str = "io.debezium.connector.mysql.MySqlConnector";

/// The MySQL / MariaDB connector plugin.
#[derive(Debug, Default, Clone, Copy)]
pub struct MySqlConnector;

#[async_trait]
impl SourceConnector for MySqlConnector {
    fn info(&self) -> PluginInfo {
        PluginInfo {
            class: CLASS,
            aliases: &[
                "mysql",
                "mariadb",
                "MySqlConnector",
                "io.debezium.connector.mariadb.MariaDbConnector",
            ],
            kind: PluginKind::Source,
            version: env!("CARGO_PKG_VERSION"),
        }
    }

    fn config_def(&self) -> ConfigDef {
        config::definition()
    }

    fn validate(&self, config: &ConnectorConfig) -> Vec<ConfigValue> {
        let mut values = self.config_def().validate(config);
        // Rules across keys, checked on their own so they show beside
        // the per-key errors.
        let cross = [
            config::filters(config).err(),
            config::ssl(config).err(),
            config::gtid_sources(config).err(),
            boolean_columns::BooleanColumns::from_config(config).err(),
            sluice_connector_api::column_mapping::ColumnMappers::from_config(config).err(),
            sluice_connector_api::snapshot_select::SnapshotSelects::from_config(config).err(),
            sluice_connector_api::topic_naming::TopicNaming::from_config(config).err(),
        ];
        sluice_connector_api::config::attach_errors(&mut values, cross.into_iter().flatten());
        values
    }

    fn task_configs(
        &self,
        config: &ConnectorConfig,
        _max_tasks: usize,
    ) -> Result<Vec<ConnectorConfig>, ConnectorError> {
        // One binlog is one ordered stream: a single task, as Debezium.
        MySqlConfig::parse(config)?;
        Ok(vec![config.clone()])
    }

    fn create_task(&self) -> Box<dyn SourceTask> {
        Box::new(MySqlTask)
    }

    async fn describe_schemas(
        &self,
        config: &ConnectorConfig,
    ) -> Result<Vec<TopicSchemas>, ConnectorError> {
        let config = MySqlConfig::parse(config)?;
        let mut conn = setup::connect(&config).await?;
        let info = setup::server_info(&mut conn).await?;
        let tables = catalog::read_tables(&mut conn, &config.filters, None, info.mariadb)
            .await
            .map_err(|e| setup::classify("reading the captured tables", e))?;
        let _ = conn.disconnect().await;
        Ok(snapshot::build_schemas(&config, &tables)
            .into_values()
            .map(|schema| TopicSchemas {
                topic: schema.topic.to_string(),
                key: schema.key_schema.clone(),
                value: Some(Arc::clone(&schema.envelope)),
            })
            .collect())
    }
}
