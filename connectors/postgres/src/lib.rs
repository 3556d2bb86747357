//! The PostgreSQL source connector: a consistent snapshot from the
//! replication slot's exported snapshot, then pgoutput streaming, as
//! Debezium-compatible change events (same config keys, topics, envelope,
//! `source` block and offsets).

mod capture;
mod catalog;
pub mod config;
mod events;
mod offset;
pub mod replication;
mod setup;
mod table_schema;
mod task;
pub use sluice_connector_api::postgres_tls as tls;
pub mod types;

use std::sync::Arc;

use async_trait::async_trait;
use sluice_connector_api::column_mapping::ColumnMappers;
use sluice_connector_api::{
    ConfigDef, ConfigValue, ConnectorConfig, ConnectorError, PluginInfo, PluginKind,
    SourceConnector, SourceTask, TopicSchemas,
};

pub use config::PostgresConfig;
pub use task::PostgresTask;

/// Debezium's class name, so existing configs work unchanged.
pub const CLASS: &str = "io.debezium.connector.postgresql.PostgresConnector";

/// The PostgreSQL connector plugin.
#[derive(Debug, Default, Clone, Copy)]
pub struct PostgresConnector;

#[async_trait]
impl SourceConnector for PostgresConnector {
    fn info(&self) -> PluginInfo {
        PluginInfo {
            class: CLASS,
            aliases: &["postgres", "postgresql", "PostgresConnector"],
            kind: PluginKind::Source,
            version: env!("CARGO_PKG_VERSION"),
        }
    }

    fn config_def(&self) -> ConfigDef {
        config::definition()
    }

    fn validate(&self, config: &ConnectorConfig) -> Vec<ConfigValue> {
        let mut values = self.config_def().validate(config);
        // Rules across keys (lists used together, TLS mode and its files),
        // checked on their own so they show beside per-key errors.
        let cross = [
            config::filters(config).err(),
            config::tls(config).err(),
            ColumnMappers::from_config(config).err(),
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
        // One slot is one ordered stream: a single task, as Debezium.
        PostgresConfig::parse(config)?;
        Ok(vec![config.clone()])
    }

    fn create_task(&self) -> Box<dyn SourceTask> {
        Box::new(PostgresTask::default())
    }

    async fn describe_schemas(
        &self,
        config: &ConnectorConfig,
    ) -> Result<Vec<TopicSchemas>, ConnectorError> {
        let config = PostgresConfig::parse(config)?;
        let client = setup::connect(&config).await?;
        let tables = catalog::tables(&client, &config.filters)
            .await
            .map_err(|e| ConnectorError::retriable(e.to_string()))?;
        let mut types = catalog::TypeCache::default();
        let mut out = Vec::new();
        for t in tables {
            let columns: Vec<catalog::ColumnDef> =
                t.columns.iter().map(catalog::Column::def).collect();
            let schema = capture::table_schema(
                &config,
                &client,
                &mut types,
                &t.schema,
                &t.name,
                &columns,
                &t.primary_key,
            )
            .await?;
            out.push(TopicSchemas {
                topic: schema.topic.to_string(),
                key: schema.key_schema.clone(),
                value: Some(Arc::clone(&schema.envelope)),
            });
        }
        Ok(out)
    }
}
