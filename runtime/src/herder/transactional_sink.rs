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
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseRecord, Producer as _};
use sluice_connector_api::{SourceOffset, SourcePartition};

use super::record_sink::{
    produce, OutRecord, RecordSink, SendError, TransactionError, Transactions,
};
use crate::kafka::delivery::{Board, Ticket};
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
    /// Where the task's delivery reports arrive.
    board: Arc<Board>,
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
    } else if code == Some(RDKafkaErrorCode::UnsupportedFeature) {
        TransactionError::Unsupported(e.to_string())
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
            .map_err(|e| {
                TransactionError::Failed(format!("creating the task's transactional producer: {e}"))
            })?;
        let init = producer.clone();
        blocking(move || init.init_transactions(TRANSACTION_TIMEOUT))
            .await
            .map_err(|e| match transaction_error(e, &transactional_id) {
                unsupported @ TransactionError::Unsupported(_) => unsupported,
                e => TransactionError::Failed(format!(
                    "starting transactions as {transactional_id}: {e}. Exactly-once source delivery needs a broker with transactions (Apache Kafka 0.11 or later, Confluent, Amazon MSK, Redpanda) and a principal allowed to write transactional id {transactional_id}; otherwise run the worker with --exactly-once-source-support=disabled"
                )),
            })?;
        Ok(Self {
            board: Board::open(&producer),
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
    type Delivery = Ticket;

    async fn ensure_topic(&self, topic: &str, layout: TopicLayout) -> Result<(), String> {
        super::record_sink::ensure_topic(self.topics, topic, layout).await
    }

    fn send(&self, record: OutRecord<'_>) -> Result<Ticket, SendError> {
        self.begin().map_err(|e| {
            SendError::Failed(transaction_error(e, &self.transactional_id).to_string())
        })?;
        produce(&self.producer, &self.board, record)
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
        self.commit_with(connector, offsets.iter().map(|(p, o)| (p, Some(o))))
            .await
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

/// Writes offsets set through the REST API (`PATCH` or `DELETE
/// /connectors/{name}/offsets`, `None` resetting one) as Connect does with
/// exactly-once support: every task id of the connector is started first,
/// which fences a task still running on a worker cut off from the group
/// (its next commit is refused), and the offsets go in one transaction of
/// task 0's id, so a `read_committed` reader sees all of them or none.
pub async fn write_offsets(
    settings: &KafkaSettings,
    topics: &TopicCreator,
    target: &ExactlyOnce,
    connector: &str,
    tasks: u32,
    changes: &[(SourcePartition, Option<SourceOffset>)],
) -> Result<(), TransactionError> {
    for task in 1..tasks {
        KafkaTransactionalSink::start(settings, topics, target, connector, task).await?;
    }
    let writer = KafkaTransactionalSink::start(settings, topics, target, connector, 0).await?;
    writer
        .commit_with(connector, changes.iter().map(|(p, o)| (p, o.as_ref())))
        .await
}

impl KafkaTransactionalSink<'_> {
    /// Writes `offsets` into the open transaction (opening one if none is)
    /// and commits it.
    async fn commit_with(
        &self,
        connector: &str,
        offsets: impl ExactSizeIterator<Item = (&SourcePartition, Option<&SourceOffset>)>,
    ) -> Result<(), TransactionError> {
        let failed = |e| transaction_error(e, &self.transactional_id);
        self.begin().map_err(failed)?;
        let mut deliveries = Vec::with_capacity(offsets.len());
        for (partition, offset) in offsets {
            let (key, value) = crate::store::kafka::offset_record(connector, partition, offset);
            let mut record =
                BaseRecord::<[u8], [u8], usize>::with_opaque_to(&self.target.offsets_topic, 0)
                    .key(&key)
                    .partition(crate::kafka::murmur2::partition_for_key(
                        &key,
                        self.target.offsets_partitions,
                    ));
            if let Some(value) = &value {
                record = record.payload(value);
            }
            let delivery = self.board.send(&self.producer, record).map_err(|(e, _)| {
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
            if let Err(e) = delivery.await {
                return Err(TransactionError::Failed(format!(
                    "the transaction committed but an offset record was refused: {e}"
                )));
            }
        }
        Ok(())
    }
}

/// Against librdkafka's in-process mock cluster, which has a transaction
/// coordinator and fences producer epochs (Tansu 0.6 has no
/// transactions). The mock keeps no transaction markers, so what an
/// aborted transaction hides from a `read_committed` reader is tested on
/// the runner with the in-memory sink instead.
#[cfg(test)]
mod tests {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::message::Message;
    use rdkafka::mocking::MockCluster;
    use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
    use serde_json::json;
    use sluice_connector_api::offset::partition;

    use super::*;
    use crate::store::kafka::{KafkaLog, KafkaOffsetStore};
    use crate::store::OffsetStore;

    const OFFSETS_PARTITIONS: i32 = 25;

    fn settings(
        cluster: &MockCluster<'_, rdkafka::producer::DefaultProducerContext>,
    ) -> KafkaSettings {
        KafkaSettings::plain(cluster.bootstrap_servers())
    }

    /// The data and offset topics on `cluster`, and clients' settings.
    fn with_topics(
        cluster: &MockCluster<'_, rdkafka::producer::DefaultProducerContext>,
    ) -> (KafkaSettings, TopicCreator) {
        cluster.create_topic("numbers", 1, 1).expect("topic");
        cluster
            .create_topic("connect-offsets", OFFSETS_PARTITIONS, 1)
            .expect("topic");
        let settings = settings(cluster);
        let topics = TopicCreator::new(&settings).expect("admin");
        (settings, topics)
    }

    fn target() -> ExactlyOnce {
        ExactlyOnce {
            group_id: "connect-cluster".into(),
            offsets_topic: "connect-offsets".into(),
            offsets_partitions: OFFSETS_PARTITIONS,
        }
    }

    fn record(value: &[u8]) -> OutRecord<'_> {
        OutRecord {
            topic: "numbers",
            key: None,
            value: Some(value),
            partition: None,
            timestamp_ms: None,
            headers: &[],
        }
    }

    fn offset(n: u64) -> (SourcePartition, SourceOffset) {
        (
            partition("server", "inventory"),
            SourceOffset::from(json!({"lsn": n}).as_object().cloned().unwrap_or_default()),
        )
    }

    /// Every record of `topic`'s partition `p`, as (key, value) text.
    fn read(settings: &KafkaSettings, topic: &str, p: i32) -> Vec<(String, String)> {
        let consumer: BaseConsumer = rdkafka::ClientConfig::new()
            .set("bootstrap.servers", &settings.bootstrap_servers)
            .set("group.id", "reader")
            .set("enable.partition.eof", "true")
            .create()
            .expect("consumer");
        let mut assignment = TopicPartitionList::new();
        assignment
            .add_partition_offset(topic, p, Offset::Beginning)
            .expect("partition");
        consumer.assign(&assignment).expect("assign");
        let mut out = Vec::new();
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while std::time::Instant::now() < deadline {
            match consumer.poll(Duration::from_millis(200)) {
                Some(Ok(m)) => out.push((
                    String::from_utf8_lossy(m.key().unwrap_or_default()).into_owned(),
                    String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned(),
                )),
                Some(Err(KafkaError::PartitionEOF(_))) => return out,
                Some(Err(e)) => panic!("reading {topic}: {e}"),
                None => {}
            }
        }
        panic!("reading {topic} timed out")
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn records_and_offsets_commit_together_where_connect_reads_offsets() {
        let cluster = MockCluster::new(1).expect("mock cluster");
        let (settings, topics) = with_topics(&cluster);
        let sink = KafkaTransactionalSink::start(&settings, &topics, &target(), "inventory", 0)
            .await
            .expect("transactions start");
        let deliveries: Vec<_> = [b"1", b"2", b"3"]
            .into_iter()
            .map(|v| sink.send(record(v)).expect("sent"))
            .collect();
        Transactions::commit(&sink, "inventory", &[offset(3)])
            .await
            .expect("committed");
        for delivery in deliveries {
            delivery.await.expect("acknowledged");
        }
        let values: Vec<String> = read(&settings, "numbers", 0)
            .into_iter()
            .map(|(_, v)| v)
            .collect();
        assert_eq!(values, ["1", "2", "3"]);
        // The offset record is Connect's, on the partition Connect's
        // producer would choose, and the worker's offset store reads it.
        let key = r#"["inventory",{"server":"inventory"}]"#;
        let p = crate::kafka::murmur2::partition_for_key(key.as_bytes(), OFFSETS_PARTITIONS);
        assert_eq!(
            read(&settings, "connect-offsets", p),
            [(key.to_owned(), r#"{"lsn":3}"#.to_owned())]
        );
        let store = KafkaOffsetStore::new(
            KafkaLog::open(&settings, "connect-offsets").expect("offset log"),
        );
        let stored = store.get("inventory").expect("offsets");
        assert_eq!(stored, vec![offset(3)]);
    }

    /// `PATCH`/`DELETE /connectors/{name}/offsets` with exactly-once
    /// support: one offset set and another reset, in Connect's records,
    /// where the connector's tasks read their offsets from.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn offsets_set_through_the_api_are_written_where_the_tasks_read_them() {
        let cluster = MockCluster::new(1).expect("mock cluster");
        let (settings, topics) = with_topics(&cluster);
        let other = (
            partition("server", "other"),
            SourceOffset::from(json!({"lsn": 9}).as_object().cloned().unwrap_or_default()),
        );
        let task = KafkaTransactionalSink::start(&settings, &topics, &target(), "inventory", 0)
            .await
            .expect("transactions start");
        Transactions::commit(&task, "inventory", &[offset(3), other.clone()])
            .await
            .expect("the task committed");
        drop(task);
        let (set, to) = offset(7);
        write_offsets(
            &settings,
            &topics,
            &target(),
            "inventory",
            2,
            &[(set, Some(to)), (other.0.clone(), None)],
        )
        .await
        .expect("written");
        let store = KafkaOffsetStore::new(
            KafkaLog::open(&settings, "connect-offsets").expect("offset log"),
        );
        assert_eq!(store.get("inventory").expect("offsets"), vec![offset(7)]);
        let key = r#"["inventory",{"server":"other"}]"#;
        let p = crate::kafka::murmur2::partition_for_key(key.as_bytes(), OFFSETS_PARTITIONS);
        assert_eq!(
            read(&settings, "connect-offsets", p).last(),
            Some(&(key.to_owned(), String::new())),
            "the reset is a tombstone"
        );
    }

    /// The old producer learns it was fenced and says so; the new one
    /// commits, and the stored offset is the new owner's.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_task_started_elsewhere_fences_the_old_producer() {
        let cluster = MockCluster::new(1).expect("mock cluster");
        let (settings, topics) = with_topics(&cluster);
        let old = KafkaTransactionalSink::start(&settings, &topics, &target(), "inventory", 0)
            .await
            .expect("transactions start");
        let first = old.send(record(b"1")).expect("sent");
        Transactions::commit(&old, "inventory", &[offset(1)])
            .await
            .expect("committed while it owns the task");
        first.await.expect("acknowledged");
        let fenced = old.send(record(b"2")).expect("sent");
        // The task starts on another worker: same transactional id. Kafka
        // then answers the old producer's EndTxn with PRODUCER_FENCED; the
        // mock hands every new client a producer id of its own instead of
        // bumping the id's epoch, so that answer is injected.
        let new = KafkaTransactionalSink::start(&settings, &topics, &target(), "inventory", 0)
            .await
            .expect("transactions start");
        cluster.request_errors(
            rdkafka::types::RDKafkaApiKey::EndTxn,
            &[rdkafka::types::RDKafkaRespErr::RD_KAFKA_RESP_ERR_PRODUCER_FENCED],
        );
        let refused = Transactions::commit(&old, "inventory", &[offset(2)]).await;
        match refused {
            Err(e @ TransactionError::Fenced(_)) => {
                assert!(e.to_string().contains("connect-cluster-inventory-0"), "{e}");
            }
            other => panic!("the old producer must be fenced, got {other:?}"),
        }
        let again = new.send(record(b"2")).expect("sent");
        Transactions::commit(&new, "inventory", &[offset(2)])
            .await
            .expect("the new owner commits");
        again.await.expect("acknowledged");
        drop(fenced);
        let store = KafkaOffsetStore::new(
            KafkaLog::open(&settings, "connect-offsets").expect("offset log"),
        );
        assert_eq!(store.get("inventory").expect("offsets"), vec![offset(2)]);
    }
}
