//! One sink task: turns a batch of records into changes, plans them, and
//! applies them to the target in one transaction.

use async_trait::async_trait;
use sluice_connector_api::{ConnectorConfig, ConnectorError, SinkRecord, SinkTask};

use crate::change::interpret;
use crate::config::{Dialect, SinkConfig};
use crate::plan::plan;
use crate::postgres_target::PostgresTarget;

/// The JDBC sink's task.
#[derive(Default)]
pub struct JdbcSinkTask {
    config: Option<SinkConfig>,
    target: Option<PostgresTarget>,
}

#[async_trait]
impl SinkTask for JdbcSinkTask {
    async fn start(&mut self, config: &ConnectorConfig) -> Result<(), ConnectorError> {
        let config = SinkConfig::parse(config)?;
        if config.target.dialect == Dialect::MySql {
            return Err(ConnectorError::fatal(
                "MySQL/MariaDB targets are not supported by this build of the JDBC sink yet; use a jdbc:postgresql:// connection.url",
            ));
        }
        self.target = Some(PostgresTarget::connect(&config).await?);
        self.config = Some(config);
        Ok(())
    }

    async fn put(&mut self, records: Vec<SinkRecord>) -> Result<(), ConnectorError> {
        let (Some(config), Some(target)) = (&self.config, self.target.as_mut()) else {
            return Err(ConnectorError::retriable("the sink task is not started"));
        };
        let changes = records
            .iter()
            .map(|r| interpret(config, r).map_err(ConnectorError::fatal))
            .collect::<Result<Vec<_>, _>>()?;
        for chunk in changes.chunks(config.batch_size) {
            target.apply(&plan(chunk.to_vec()), config).await?;
        }
        Ok(())
    }
}
