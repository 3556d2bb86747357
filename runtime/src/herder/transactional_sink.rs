//! Exactly-once source delivery (Connect's `exactly.once.source.support`,
//! KIP-618): each task produces through a transactional producer of its
//! own, and the offsets a batch reaches are written to the offset topic in
//! the same transaction as the batch's records. A `read_committed`
//! consumer — and the offset store, which reads that way — then sees a
//! batch's records and its offsets together or not at all, so a crash or a
//! failed delivery repeats nothing that was committed. Starting the task
//! (`init_transactions`) fences any older producer of the same task: a
//! worker that lost the task can no longer commit anything.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{FutureRecord, Producer as _};
use sluice_connector_api::{SourceOffset, SourcePartition};

use super::record_sink::{
    produce, KafkaDelivery, OutRecord, RecordSink, SendError, TransactionError, Transactions,
};
use crate::kafka::{KafkaSettings, Producer, TopicCreator, TopicLayout};

/// How long a transaction call may wait for the broker.
const TRANSACTION_TIMEOUT: Duration = Duration::from_secs(30);

/// Where a worker with exactly-once source support writes offsets.
#[derive(Debug, Clone)]
pub struct ExactlyOnce {
    /// The group's id, the first part of every transactional id.
    pub group_id: String,
    /// The worker's offset topic.
    pub offsets_topic: String,
    /// Its partition count, to put each offset where Connect would.
    pub offsets_partitions: i32,
}

impl ExactlyOnce {
    /// The transactional id of a task, as Connect names it:
    /// `<group.id>-<connector>-<task>`.
    pub fn transactional_id(&self, connector: &str, task: u32) -> String {
        format!("{}-{connector}-{task}", self.group_id)
    }
}

/// A task's transactional producer and topic creation.
pub struct KafkaTransactionalSink<'a> {
    producer: Producer,
    topics: &'a TopicCreator,
    target: ExactlyOnce,
    transactional_id: String,
    /// Whether a transaction is open (begun by the first record after a
    /// commit).
    open: AtomicBool,
}

/// A transaction call failed: `Fenced` when another producer took the id.
fn transaction_error(e: KafkaError, transactional_id: &str) -> TransactionError {
    let code = e.rdkafka_error_code();
    if matches!(
        code,
        Some(
            RDKafkaErrorCode::ProducerFenced
                | RDKafkaErrorCode::InvalidProducerEpoch
                | RDKafkaErrorCode::Fenced
        )
    ) {
        TransactionError::Fenced(transactional_id.to_owned())
    } else {
        TransactionError::Failed(e.to_string())
    }
}

/// Runs a blocking call of the transactional API off the async threads.
async fn blocking<T: Send + 'static>(
    call: impl FnOnce() -> Result<T, KafkaError> + Send + 'static,
) -> Result<T, KafkaError> {
    tokio::task::spawn_blocking(call)
        .await
        .unwrap_or_else(|_| Err(KafkaError::Canceled))
}

impl<'a> KafkaTransactionalSink<'a> {
    /// Creates the task's producer and registers its transactional id
    /// with the broker, which fences every older producer of the task and
    /// aborts what it left open.
    pub async fn start(
        settings: &KafkaSettings,
        topics: &'a TopicCreator,
        target: &ExactlyOnce,
        connector: &str,
        task: u32,
    ) -> Result<Self, TransactionError> {
        let transactional_id = target.transactional_id(connector, task);
        let producer = crate::kafka::build_transactional_producer(settings, &transactional_id)
            .map_err(|e| TransactionError::Failed(format!("creating the task's transactional producer: {e}")))?;
        let init = producer.clone();
        blocking(move || init.init_transactions(TRANSACTION_TIMEOUT))
            .await
            .map_err(|e| {
                TransactionError::Failed(format!(
                    "starting transactions as {transactional_id}: {e}. Exactly-once source delivery needs a broker with transactions (Apache Kafka 0.11 or later, Confluent, Amazon MSK, Redpanda) and a principal allowed to write transactional id {transactional_id}; otherwise run the worker with --exactly-once-source-support=disabled"
                ))
            })?;
        Ok(Self {
            producer,
            topics,
            target: target.clone(),
            transactional_id,
            open: AtomicBool::new(false),
        })
    }

    fn begin(&self) -> Result<(), KafkaError> {
        if !self.open.swap(true, Ordering::AcqRel) {
            if let Err(e) = self.producer.begin_transaction() {
                self.open.store(false, Ordering::Release);
                return Err(e);
            }
        }
        Ok(())
    }
}

#[async_trait]
impl RecordSink for KafkaTransactionalSink<'_> {
    type Delivery = KafkaDelivery;

    async fn ensure_topic(&self, topic: &str, layout: TopicLayout) -> Result<(), String> {
        self.topics
            .ensure(topic, layout)
            .await
            .map_err(|e| e.to_string())
    }

    fn send(&self, record: OutRecord<'_>) -> Result<KafkaDelivery, SendError> {
        self.begin().map_err(|e| {
            SendError::Failed(transaction_error(e, &self.transactional_id).to_string())
        })?;
        produce(&self.producer, record)
    }

    fn transactions(&self) -> Option<&dyn Transactions> {
        Some(self)
    }
}

#[async_trait]
impl Transactions for KafkaTransactionalSink<'_> {
    async fn commit(
        &self,
        connector: &str,
        offsets: &[(SourcePartition, SourceOffset)],
    ) -> Result<(), TransactionError> {
        if offsets.is_empty() && !self.open.load(Ordering::Acquire) {
            return Ok(());
        }
        let failed = |e| transaction_error(e, &self.transactional_id);
        self.begin().map_err(failed)?;
        let mut deliveries = Vec::with_capacity(offsets.len());
        for (partition, offset) in offsets {
            let (key, value) =
                crate::store::kafka::offset_record(connector, partition, Some(offset));
            let mut record = FutureRecord::<[u8], [u8]>::to(&self.target.offsets_topic)
                .key(&key)
                .partition(crate::kafka::murmur2::partition_for_key(
                    &key,
                    self.target.offsets_partitions,
                ));
            if let Some(value) = &value {
                record = record.payload(value);
            }
            let delivery = self.producer.send_result(record).map_err(|(e, _)| {
                TransactionError::Failed(format!(
                    "writing offsets to {}: {e}",
                    self.target.offsets_topic
                ))
            });
            match delivery {
                Ok(d) => deliveries.push(d),
                Err(e) => {
                    self.abort().await;
                    return Err(e);
                }
            }
        }
        let producer = self.producer.clone();
        let committed = blocking(move || producer.commit_transaction(TRANSACTION_TIMEOUT)).await;
        self.open.store(false, Ordering::Release);
        if let Err(e) = committed {
            let requires_abort = matches!(&e, KafkaError::Transaction(t) if t.txn_requires_abort());
            if requires_abort {
                self.open.store(true, Ordering::Release);
                self.abort().await;
            }
            return Err(failed(e));
        }
        // Committed means every record of it was acknowledged; a report
        // saying otherwise would be a broken promise worth failing on.
        for delivery in deliveries {
            if let Ok(Err((e, _))) = delivery.await {
                return Err(TransactionError::Failed(format!(
                    "the transaction committed but an offset record was refused: {e}"
                )));
            }
        }
        Ok(())
    }

    async fn abort(&self) {
        if !self.open.swap(false, Ordering::AcqRel) {
            return;
        }
        let producer = self.producer.clone();
        if let Err(e) = blocking(move || producer.abort_transaction(TRANSACTION_TIMEOUT)).await {
            // A fenced or cut-off producer cannot abort; the broker aborts
            // the transaction when it times out or the task starts again.
            tracing::warn!(transactional_id = %self.transactional_id, error = %e, "could not abort the open transaction; the broker aborts it when it times out or the task starts elsewhere");
        }
    }
}
