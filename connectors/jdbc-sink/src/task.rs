//! One sink task: turns a batch of records into changes, plans them, and
//! applies them to the target in one transaction.

use std::sync::Arc;

use async_trait::async_trait;
use sluice_connector_api::{ConnectorConfig, ConnectorError, FieldSelector, SinkRecord, SinkTask};

use crate::change::{interpret_with, Layouts};
use crate::config::{Dialect, KeyMode, SinkConfig};
use crate::mysql_target::MySqlTarget;
use crate::plan::plan;
use crate::plan::Step;
use crate::postgres_target::PostgresTarget;
use crate::read_fields::ReadFields;

/// Longest a batch may take at the target before the connection is
/// given up and the batch applied again on a new one.
const APPLY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(300);

/// Runs `work` at the target, failing it (retriable) if the target stops
/// answering: a half-open connection must not hang the task, the runner
/// reconnects and applies again.
async fn within_apply_timeout(
    work: impl std::future::Future<Output = Result<(), ConnectorError>>,
) -> Result<(), ConnectorError> {
    tokio::time::timeout(APPLY_TIMEOUT, work)
        .await
        .map_err(|_| {
            ConnectorError::retriable(format!(
                "the target did not finish a batch within {} s; reconnecting",
                APPLY_TIMEOUT.as_secs()
            ))
        })?
}

/// A connected target database.
enum Target {
    Postgres(Box<PostgresTarget>),
    MySql(MySqlTarget),
}

impl Target {
    async fn apply(
        &mut self,
        steps: Vec<Step<'_>>,
        config: &SinkConfig,
    ) -> Result<(), ConnectorError> {
        match self {
            Self::Postgres(t) => t.apply(steps, config).await,
            Self::MySql(t) => t.apply(&steps, config).await,
        }
    }
}

/// The JDBC sink's task.
#[derive(Default)]
pub struct JdbcSinkTask {
    config: Option<SinkConfig>,
    target: Option<Target>,
}

#[async_trait]
impl SinkTask for JdbcSinkTask {
    async fn start(&mut self, config: &ConnectorConfig) -> Result<(), ConnectorError> {
        let config = SinkConfig::parse(config)?;
        self.target = Some(match config.target.dialect {
            Dialect::Postgres => {
                Target::Postgres(Box::new(PostgresTarget::connect(&config).await?))
            }
            Dialect::MySql => Target::MySql(MySqlTarget::connect(&config).await?),
        });
        self.config = Some(config);
        Ok(())
    }

    async fn put(&mut self, records: &[SinkRecord]) -> Result<(), ConnectorError> {
        let (Some(config), Some(target)) = (&self.config, self.target.as_mut()) else {
            return Err(ConnectorError::retriable("the sink task is not started"));
        };
        let mut layouts = Layouts::default();
        for chunk in records.chunks(config.batch_size) {
            // Sized up front: collecting a `Result` gives no size hint,
            // so the vector grew and copied itself a dozen times a batch.
            let mut changes = Vec::with_capacity(chunk.len());
            for record in chunk {
                changes.push(
                    interpret_with(config, &mut layouts, record).map_err(ConnectorError::fatal)?,
                );
            }
            within_apply_timeout(target.apply(plan(changes), config)).await?;
        }
        Ok(())
    }

    async fn flush(&mut self) -> Result<(), ConnectorError> {
        match self.target.as_mut() {
            Some(Target::Postgres(target)) => within_apply_timeout(target.settle()).await,
            Some(Target::MySql(target)) => within_apply_timeout(target.settle()).await,
            None => Ok(()),
        }
    }

    fn value_fields(&self) -> Option<Arc<dyn FieldSelector>> {
        let config = self.config.as_ref()?;
        Some(Arc::new(ReadFields::new(&config.table_format)))
    }

    fn reads_headers(&self) -> bool {
        // Only a key taken from the headers reads them.
        self.config
            .as_ref()
            .is_none_or(|config| config.key_mode == KeyMode::RecordHeader)
    }
}
