//! The conversion stage: the task's records through the transforms and
//! the converters, on a tokio task of its own ahead of the producing
//! loop, so that encoding one batch overlaps producing the one before
//! (on one task the two took turns, and a source ran no faster than one
//! core could do both). A schema the registry does not know yet is
//! resolved first, and a registry that is down is waited for with the
//! record in hand.
//!
//! The stage keeps the task's order: every record comes out in its turn,
//! encoded, passed (nothing to send, its offset still moves in turn) or
//! failed (the loop sends what precedes it, then fails the task), and a
//! checkpoint comes out after the records emitted before it. It decides
//! nothing about offsets: that stays with the producing loop.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use sluice_connector_api::{
    Checkpoint, ConnectorError, Emitted, SourceOffset, SourcePartition, SourceRecord, TaskRecords,
    TopicKind, Value,
};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::{put_task_status, Control, SourceTaskSpec};
use crate::converter::{self, ConvertError, Converter, Side};
use crate::herder::status::{State, TaskStatus};
use crate::herder::RunnerDeps;
use crate::metrics::TaskMetrics;
use crate::transforms::record::SourcePosition;
use crate::transforms::{Chain, Record};

/// Encoded key and value; `None` is a null key or a tombstone.
pub(super) type EncodedRecord = (Option<Vec<u8>>, Option<Vec<u8>>);

/// What the stage hands the producing loop, in the task's order.
#[derive(Debug)]
pub(super) enum Staged {
    /// One emitted batch, record by record.
    Records(Vec<Prepared>),
    /// An offset to store once everything before it is.
    Checkpoint(Checkpoint),
}

/// One record after the transforms and the converters.
#[derive(Debug)]
// Sending is what nearly every record comes to; boxing it would add an
// allocation per record to spare the rare passes and failures some bytes.
#[allow(clippy::large_enum_variant)]
pub(super) enum Prepared {
    /// Ready to send.
    Send(Encoded),
    /// Nothing to send (a transform dropped it, or `errors.tolerance=all`
    /// skipped it); its offset moves in turn with the records around it.
    Pass(SourcePosition),
    /// The task fails here, after the records before it are sent.
    Fail(ConnectorError),
}

/// A record as it goes to the broker: what the producing loop needs of
/// it once its key and value are encoded.
#[derive(Debug)]
pub(super) struct Encoded {
    /// The input stream the record came from.
    pub partition: Arc<SourcePartition>,
    /// The offset it reaches once acknowledged.
    pub offset: SourceOffset,
    /// The destination topic.
    pub topic: sluice_connector_api::Text,
    /// The destination partition; `None` hashes the key.
    pub kafka_partition: Option<i32>,
    /// The record timestamp, if the record carries one.
    pub timestamp_ms: Option<i64>,
    /// Kafka headers.
    pub headers: Vec<(String, Vec<u8>)>,
    /// Which kind of topic `topic` is.
    pub topic_kind: TopicKind,
    /// The encoded key; `None` is a null key.
    pub key: Option<Vec<u8>>,
    /// The encoded value; `None` is a tombstone.
    pub value: Option<Vec<u8>>,
}

/// How many converted batches wait for the producing loop: one to
/// produce from while the next is encoded.
const STAGED_BATCHES: usize = 1;

/// A schema-history record as Debezium's own history producer
/// writes it: no key, and the value's text as its UTF-8 bytes, whatever
/// converters the connector's data topics use.
fn history_bytes(record: &SourceRecord) -> Result<EncodedRecord, (Side, ConvertError)> {
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

/// The stage's own state: what it needs of the task, owned, since it runs
/// apart from the loop that borrows the task's spec.
pub(super) struct Converting {
    connector: String,
    task_id: u32,
    deps: Arc<RunnerDeps>,
    metrics: Arc<TaskMetrics>,
    key_converter: Arc<dyn Converter>,
    value_converter: Arc<dyn Converter>,
    transforms: Chain,
    tolerate_errors: bool,
    /// Watched while waiting for the registry, to give up on stop.
    control: watch::Receiver<Control>,
}

impl Converting {
    /// The stage for `spec`'s converters and transforms; a bad setting of
    /// either fails here, before the task starts.
    pub(super) fn new(
        spec: &SourceTaskSpec,
        deps: &Arc<RunnerDeps>,
        metrics: &Arc<TaskMetrics>,
        control: watch::Receiver<Control>,
    ) -> Result<Self, ConnectorError> {
        let config = &spec.config.0;
        let converter = |side| {
            converter::build(side, config, &deps.converter_defaults).map_err(|e| {
                ConnectorError::Config(sluice_connector_api::ConfigError::new(e.key, e.message))
            })
        };
        Ok(Self {
            connector: spec.connector.clone(),
            task_id: spec.task_id,
            deps: Arc::clone(deps),
            metrics: Arc::clone(metrics),
            key_converter: converter(Side::Key)?,
            value_converter: converter(Side::Value)?,
            transforms: Chain::from_config(&spec.config)
                .map_err(|mut errors| ConnectorError::Config(errors.swap_remove(0)))?,
            tolerate_errors: spec.config.get("errors.tolerance") == Some("all"),
            control,
        })
    }

    /// Starts the stage on what the task emits. It ends when the task's
    /// channel closes (the loop then sees its own close), after a failed
    /// record, or once the loop stops listening; aborting it drops the
    /// task's channel, which ends the task's waiting `emit`.
    pub(super) fn spawn(self, input: TaskRecords) -> (mpsc::Receiver<Staged>, JoinHandle<()>) {
        let (output, staged) = mpsc::channel(STAGED_BATCHES);
        (staged, tokio::spawn(self.run(input, output)))
    }

    async fn run(mut self, mut input: TaskRecords, output: mpsc::Sender<Staged>) {
        loop {
            let emitted = tokio::select! {
                emitted = input.recv() => emitted,
                () = output.closed() => return,
            };
            let (staged, failed) = match emitted {
                None => return,
                Some(Emitted::Checkpoint(checkpoint)) => (Staged::Checkpoint(checkpoint), false),
                Some(Emitted::Records(batch)) => {
                    self.metrics
                        .records_polled
                        .fetch_add(batch.len() as u64, Ordering::Relaxed);
                    let mut prepared = Vec::with_capacity(batch.len());
                    let mut failed = false;
                    for record in batch {
                        let one = match self.prepare_now(record) {
                            Ok(one) => one,
                            Err(record) => self.prepare_resolving(record).await,
                        };
                        failed = matches!(one, Prepared::Fail(_));
                        prepared.push(one);
                        if failed {
                            break;
                        }
                    }
                    (Staged::Records(prepared), failed)
                }
            };
            if output.send(staged).await.is_err() || failed {
                return;
            }
        }
    }

    /// One record through the transforms and the converters, without
    /// waiting: what comes of it, or the record, transformed, when a
    /// schema of it must first be resolved with the registry
    /// ([`Self::prepare_resolving`]). Nearly every record is prepared
    /// here: building and moving an `async` path's future (which holds a
    /// registry retry's timer and joins) for each record cost about 120
    /// instructions a row of a MariaDB snapshot (callgrind, 3.6 % of
    /// this stage).
    // The error side is the record, handed back once to be resolved.
    #[allow(clippy::result_large_err)]
    fn prepare_now(&mut self, record: SourceRecord) -> Result<Prepared, SourceRecord> {
        // Debezium writes its history with a producer of its own, which
        // Connect's transforms and converters never see.
        let history = record.topic_kind == TopicKind::SchemaHistory;
        let record = if self.transforms.is_empty() || history {
            record
        } else {
            match self.transform(record) {
                Ok(record) => record,
                Err(instead) => return Ok(instead),
            }
        };
        let converted = if history {
            history_bytes(&record)
        } else {
            match self.convert_now(&record) {
                Err((_, ConvertError::Unresolved)) => return Err(record),
                converted => converted,
            }
        };
        Ok(self.finish(record, converted))
    }

    /// A record [`Self::prepare_now`] handed back, converted once the
    /// registry has resolved its schemas.
    async fn prepare_resolving(&mut self, record: SourceRecord) -> Prepared {
        let converted = self.convert(&record).await;
        self.finish(record, converted)
    }

    /// What a record comes to, once converted or not.
    fn finish(
        &self,
        record: SourceRecord,
        converted: Result<EncodedRecord, (Side, ConvertError)>,
    ) -> Prepared {
        match converted {
            Ok((key, value)) => {
                // Encoded: the values are done with.
                if let Some(key) = record.key {
                    key.release();
                }
                if let Some(value) = record.value {
                    value.release();
                }
                Prepared::Send(Encoded {
                    partition: record.partition,
                    offset: record.offset,
                    topic: record.topic,
                    kafka_partition: record.kafka_partition,
                    timestamp_ms: record.timestamp_ms,
                    headers: record.headers,
                    topic_kind: record.topic_kind,
                    key,
                    value,
                })
            }
            Err((_, e)) if self.tolerate_errors && e.is_record_error() => {
                self.metrics.errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(connector = %self.connector, topic = %record.topic, error = %e, "record skipped (errors.tolerance=all)");
                Prepared::Pass(SourcePosition {
                    partition: record.partition,
                    offset: record.offset,
                })
            }
            Err((side, e)) => {
                let side = match side {
                    Side::Key => "key",
                    Side::Value => "value",
                };
                let message = format!(
                    "connector {} task {}: cannot convert the {side} of a record for topic {}: {e}",
                    self.connector, self.task_id, record.topic
                );
                Prepared::Fail(if e.is_retriable() {
                    ConnectorError::retriable(message)
                } else {
                    ConnectorError::fatal(message)
                })
            }
        }
    }
}

impl Converting {
    /// Runs the configured transforms; what to hand on instead when the
    /// record is not to be sent (dropped by a transform, or skipped after
    /// a tolerated failure) or fails the task.
    // The error side is what the stage hands on in the record's place,
    // moved once; boxing it would allocate for every dropped record.
    #[allow(clippy::result_large_err)]
    fn transform(&mut self, record: SourceRecord) -> Result<SourceRecord, Prepared> {
        let (view, position) = Record::from_source(record);
        let topic = view.topic.clone();
        match self.transforms.apply(view) {
            Ok(Some(out)) => Ok(out.into_source(position)),
            Ok(None) => Err(Prepared::Pass(position)),
            Err(e) if self.tolerate_errors => {
                self.metrics.errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(connector = %self.connector, topic = %topic, error = %e, "record skipped (errors.tolerance=all)");
                Err(Prepared::Pass(position))
            }
            Err(e) => Err(Prepared::Fail(ConnectorError::fatal(format!(
                "connector {} task {}: a record for topic {topic} failed in {e}; fix the transform's settings, or set errors.tolerance=all to skip such records",
                self.connector, self.task_id
            )))),
        }
    }

    /// Encodes key and value with schemas the converters know already;
    /// [`ConvertError::Unresolved`] otherwise.
    fn convert_now(&self, record: &SourceRecord) -> Result<EncodedRecord, (Side, ConvertError)> {
        let encode =
            |side, converter: &Arc<dyn Converter>, schema: &Option<_>, value: &Option<_>| {
                converter
                    .encode(&record.topic, schema.as_ref(), value.as_ref())
                    .map_err(|e| (side, e))
            };
        let key = encode(
            Side::Key,
            &self.key_converter,
            &record.key_schema,
            &record.key,
        )?;
        let value = encode(
            Side::Value,
            &self.value_converter,
            &record.value_schema,
            &record.value,
        )?;
        Ok((key, value))
    }

    /// Encodes key and value, resolving new schemas with the registry.
    async fn convert(&self, record: &SourceRecord) -> Result<EncodedRecord, (Side, ConvertError)> {
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
                    tracing::warn!(connector = %self.connector, task = self.task_id, topic = %record.topic, retry_in_ms = backoff.as_millis() as u64, error = %e, "waiting for the schema registry");
                    // Still RUNNING (as Connect shows a task that retries),
                    // but saying what it waits for.
                    let mut status = TaskStatus::new(State::Running, &self.deps.worker_id);
                    status.trace = Some(format!(
                        "waiting for the schema registry: {e}\n(retrying every {} ms with the record in hand; nothing is skipped and no offset moves meanwhile)",
                        backoff.as_millis()
                    ));
                    put_task_status(&self.deps, &self.connector, self.task_id, status);
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
