//! A record's key and value encoded by the task's converters; a schema
//! the registry does not know yet is resolved first, and a registry that
//! is down is waited for with the record in hand.

use std::sync::Arc;
use std::time::Duration;

use sluice_connector_api::{SourceRecord, Value};

use super::{set_status, EncodedRecord, Pipeline};
use crate::converter::{ConvertError, Side};
use crate::herder::record_sink::RecordSink;
use crate::herder::status::{State, TaskStatus};

/// A schema-history record as Debezium's own history producer writes it:
/// no key, and the value's text as its UTF-8 bytes, whatever converters
/// the connector's data topics use.
pub(super) fn history_bytes(record: &SourceRecord) -> Result<EncodedRecord, (Side, ConvertError)> {
    match &record.value {
        Some(Value::String(text)) => Ok((None, Some(text.as_bytes().to_vec()))),
        other => Err((
            Side::Value,
            ConvertError::Mismatch {
                path: String::new(),
                message: format!("a schema-history record's value must be text, found {other:?}"),
            },
        )),
    }
}

impl<'a, S: RecordSink> Pipeline<'a, S> {
    /// Encodes key and value, resolving new schemas with the registry.
    pub(super) async fn convert(
        &self,
        record: &SourceRecord,
    ) -> Result<EncodedRecord, (Side, ConvertError)> {
        let key = self
            .encode_side(Side::Key, record)
            .await
            .map_err(|e| (Side::Key, e))?;
        let value = self
            .encode_side(Side::Value, record)
            .await
            .map_err(|e| (Side::Value, e))?;
        Ok((key, value))
    }

    async fn encode_side(
        &self,
        side: Side,
        record: &SourceRecord,
    ) -> Result<Option<Vec<u8>>, ConvertError> {
        let (converter, schema, value) = match side {
            Side::Key => (&self.key_converter, &record.key_schema, &record.key),
            Side::Value => (&self.value_converter, &record.value_schema, &record.value),
        };
        let mut backoff = Duration::from_millis(500);
        loop {
            match converter.encode(&record.topic, schema.as_ref(), value.as_ref()) {
                Err(ConvertError::Unresolved) => {}
                done => return done,
            }
            let Some(schema) = schema else {
                return Err(ConvertError::Unresolved);
            };
            let (converter, topic, schema) = (
                Arc::clone(converter),
                record.topic.clone(),
                Arc::clone(schema),
            );
            let resolved = tokio::task::spawn_blocking(move || converter.resolve(&topic, &schema))
                .await
                .unwrap_or_else(|e| {
                    Err(ConvertError::Mismatch {
                        path: String::new(),
                        message: format!("schema resolution was interrupted: {e}"),
                    })
                });
            match resolved {
                Ok(()) => continue,
                // The registry is down: wait and retry with the record in
                // hand, so nothing is dropped and nothing later overtakes it.
                Err(e) if e.is_retriable() => {
                    tracing::warn!(connector = %self.spec.connector, task = self.spec.task_id, topic = %record.topic, retry_in_ms = backoff.as_millis() as u64, error = %e, "waiting for the schema registry");
                    // Still RUNNING (as Connect shows a task that retries),
                    // but saying what it waits for.
                    let mut status = TaskStatus::new(State::Running, &self.deps.worker_id);
                    status.trace = Some(format!(
                        "waiting for the schema registry: {e}\n(retrying every {} ms with the record in hand; nothing is skipped and no offset moves meanwhile)",
                        backoff.as_millis()
                    ));
                    set_status(self.deps, self.spec, status);
                    let mut control = self.control.clone();
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = control.wait_for(|c| c.is_stop()) => return Err(e),
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                }
                Err(e) => return Err(e),
            }
        }
    }
}
