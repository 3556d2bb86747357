//! The JDBC sink connector: applies Debezium change events (and flat
//! records) from Kafka topics to PostgreSQL and MySQL / MariaDB tables with Debezium's JDBC
//! sink configuration keys — upserts by primary key, deletes, truncates,
//! and tables and columns created under `schema.evolution=basic`.

mod batch_tail;
mod change;
pub mod config;
mod copy_text;
mod mysql_load;
mod mysql_tail;
mod mysql_target;
mod pipelined_transaction;
mod plan;
mod postgres_target;
mod read_fields;
mod sql_value;
mod straight_copy;
mod table;
mod table_format;
mod task;
mod time_zone;

use sluice_connector_api::{
    ConfigDef, ConfigValue, ConnectorConfig, ConnectorError, PluginInfo, PluginKind, SinkConnector,
    SinkTask,
};

/// The connector plugin (`io.debezium.connector.jdbc.JdbcSinkConnector`).
#[derive(Debug, Default)]
pub struct JdbcSinkConnector;

impl SinkConnector for JdbcSinkConnector {
    fn info(&self) -> PluginInfo {
        PluginInfo {
            class: "io.debezium.connector.jdbc.JdbcSinkConnector",
            aliases: &["jdbc-sink", "jdbc"],
            kind: PluginKind::Sink,
            version: env!("CARGO_PKG_VERSION"),
        }
    }

    fn config_def(&self) -> ConfigDef {
        config::definition()
    }

    fn validate(&self, config: &ConnectorConfig) -> Vec<ConfigValue> {
        config::validate(config)
    }

    /// Every task reads the same topics in the connector's consumer group;
    /// the broker spreads the partitions between them.
    fn task_configs(
        &self,
        config: &ConnectorConfig,
        max_tasks: usize,
    ) -> Result<Vec<ConnectorConfig>, ConnectorError> {
        config::SinkConfig::parse(config)?;
        Ok(vec![config.clone(); max_tasks.max(1)])
    }

    fn create_task(&self) -> Box<dyn SinkTask> {
        Box::<task::JdbcSinkTask>::default()
    }
}
