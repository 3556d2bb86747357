//! The seam between a source task's runner and the broker: where encoded
//! records go and how their acknowledgements come back. The worker uses
//! Kafka ([`KafkaRecordSink`]); the runner's unit tests use an in-memory
//! sink whose acknowledgements they script, so the durability rule is
//! tested without a broker.

use std::future::Future;
use std::sync::Arc;

use async_trait::async_trait;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::BaseRecord;

use sluice_connector_api::{SourceOffset, SourcePartition};

use crate::kafka::delivery::{Board, Ticket};
use crate::kafka::topic_handles::{Plain, TopicHandles};
use crate::kafka::{TopicCreator, TopicLayout};

/// One encoded record, borrowed for the send.
#[derive(Debug, Clone, Copy)]
pub struct OutRecord<'a> {
    /// The destination topic.
    pub topic: &'a str,
    /// The key bytes; `None` is a null key.
    pub key: Option<&'a [u8]>,
    /// The value bytes; `None` is a tombstone.
    pub value: Option<&'a [u8]>,
    /// The partition, or `None` to hash the key.
    pub partition: Option<i32>,
    /// The record timestamp.
    pub timestamp_ms: Option<i64>,
    /// Kafka headers.
    pub headers: &'a [(String, Vec<u8>)],
}

/// A record could not be handed to the broker client.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The client's queue is full: wait for acknowledgements, then retry.
    #[error("the producer queue is full")]
    QueueFull,
    /// The record is larger than the producer may send
    /// (`message.max.bytes`); retrying cannot help.
    #[error("the record is larger than the producer's message.max.bytes")]
    TooLarge,
    /// Anything else; the task restarts.
    #[error("{0}")]
    Failed(String),
}

/// Where a source runner sends records.
#[async_trait]
pub trait RecordSink: Send + Sync {
    /// Resolves when the broker acknowledged the record, or failed to.
    type Delivery: Future<Output = Result<(), String>> + Send + Unpin;

    /// Makes sure `topic` exists before the first record goes to it.
    async fn ensure_topic(&self, topic: &str, layout: TopicLayout) -> Result<(), String>;

    /// Hands `record` to the broker client.
    fn send(&self, record: OutRecord<'_>) -> Result<Self::Delivery, SendError>;

    /// The sink's transactions, when its records and their offsets become
    /// visible together (exactly-once delivery); `None` when the runner
    /// stores offsets itself after the records are acknowledged.
    fn transactions(&self) -> Option<&dyn Transactions> {
        None
    }
}

/// Records and the offsets they reach, made visible together: what
/// Connect's exactly-once source support (KIP-618) does with a Kafka
/// transaction per batch.
#[async_trait]
pub trait Transactions: Send + Sync {
    /// Writes `offsets` to the offset topic inside the open transaction and
    /// commits it with every record sent since the last commit: a
    /// `read_committed` consumer sees all of it or none of it.
    async fn commit(
        &self,
        connector: &str,
        offsets: &[(SourcePartition, SourceOffset)],
    ) -> Result<(), TransactionError>;

    /// Aborts the open transaction, if one is open: nothing sent since the
    /// last commit becomes visible.
    async fn abort(&self);
}

/// A transaction did not commit; none of its records or offsets count.
#[derive(Debug, thiserror::Error)]
pub enum TransactionError {
    /// Another producer took this task's transactional id (the task was
    /// started elsewhere): this one may never write again.
    #[error("this task's producer was fenced: another worker started the task with the same transactional id ({0}), so this one stopped writing; nothing it sent after its last commit is visible")]
    Fenced(String),
    /// The broker has no transactions (Tansu 0.6 takes a transactional
    /// id but cannot end a transaction): retrying cannot help.
    #[error("the broker does not support transactions ({0}); exactly-once source delivery needs one that does (Apache Kafka 0.11 or later, Confluent, Amazon MSK, Redpanda): run the workers with --exactly-once-source-support=disabled on this one")]
    Unsupported(String),
    /// Anything else; the transaction was aborted.
    #[error("{0}")]
    Failed(String),
}

/// The worker's sink: its idempotent producer and topic creation.
pub struct KafkaRecordSink<'a> {
    producer: &'a crate::kafka::Producer,
    topics: &'a TopicCreator,
    /// Where this task's delivery reports arrive.
    board: Arc<Board>,
    /// The producer's handles on the topics this task writes.
    handles: TopicHandles<'a>,
}

impl<'a> KafkaRecordSink<'a> {
    /// A sink sending through `producer`, with a delivery board of its own.
    pub fn new(producer: &'a crate::kafka::Producer, topics: &'a TopicCreator) -> Self {
        Self {
            producer,
            topics,
            board: Board::open(producer),
            handles: TopicHandles::new(producer),
        }
    }
}

#[async_trait]
impl RecordSink for KafkaRecordSink<'_> {
    type Delivery = Ticket;

    async fn ensure_topic(&self, topic: &str, layout: TopicLayout) -> Result<(), String> {
        ensure_topic(self.topics, topic, layout).await
    }

    fn send(&self, record: OutRecord<'_>) -> Result<Ticket, SendError> {
        if !record.headers.is_empty() {
            // Headers are built by rust-rdkafka, which hides the native
            // list from its callers: the named-topic send takes them.
            return produce(self.producer, &self.board, record);
        }
        let plain = Plain {
            key: record.key,
            value: record.value,
            partition: record.partition,
            timestamp_ms: record.timestamp_ms,
        };
        self.board
            .send_with(|opaque| self.handles.send(record.topic, plain, opaque))
            .map_err(send_error)
    }
}

/// Hands `record` to `producer`, its report to come on `board`, telling a
/// full queue from other failures.
pub fn produce(
    producer: &crate::kafka::Producer,
    board: &Arc<Board>,
    record: OutRecord<'_>,
) -> Result<Ticket, SendError> {
    let mut out = BaseRecord::<[u8], [u8], usize>::with_opaque_to(record.topic, 0);
    if let Some(k) = record.key {
        out = out.key(k);
    }
    if let Some(v) = record.value {
        out = out.payload(v);
    }
    if let Some(p) = record.partition {
        out = out.partition(p);
    }
    if let Some(ts) = record.timestamp_ms {
        out = out.timestamp(ts);
    }
    if !record.headers.is_empty() {
        out = out.headers(record.headers.iter().fold(
            OwnedHeaders::new_with_capacity(record.headers.len()),
            |h, (key, value)| {
                h.insert(Header {
                    key,
                    value: Some(value),
                })
            },
        ));
    }
    match board.send(producer, out) {
        Ok(ticket) => Ok(ticket),
        Err((KafkaError::MessageProduction(code), _)) => Err(send_error(code)),
        Err((e, _)) => Err(SendError::Failed(e.to_string())),
    }
}

/// What a refusal of librdkafka's to take a record means for the sender.
fn send_error(code: RDKafkaErrorCode) -> SendError {
    match code {
        RDKafkaErrorCode::QueueFull => SendError::QueueFull,
        RDKafkaErrorCode::MessageSizeTooLarge => SendError::TooLarge,
        other => SendError::Failed(KafkaError::MessageProduction(other).to_string()),
    }
}

/// Creates `topic` with `layout` unless it exists.
pub async fn ensure_topic(
    topics: &TopicCreator,
    topic: &str,
    layout: TopicLayout,
) -> Result<(), String> {
    topics
        .ensure(topic, layout)
        .await
        .map_err(|e| e.to_string())
}

/// An in-memory sink for unit tests: keeps what was sent and acknowledges
/// each record as the test scripts it.
#[cfg(test)]
pub mod memory {
    use std::pin::Pin;
    use std::sync::Mutex;
    use std::task::{Context, Poll};

    use super::*;

    /// How the sink answers the n-th record it is sent (counting from 0).
    pub type Script = Box<dyn Fn(usize) -> Answer + Send + Sync>;

    /// An answer to one record.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub enum Answer {
        /// Acknowledged at once.
        Ack,
        /// Delivery failed.
        Fail,
        /// Never acknowledged (a broker that went away).
        Hang,
    }

    /// Records kept by topic with their value bytes.
    #[derive(Default)]
    pub struct MemorySink {
        /// Everything sent, in order: (topic, value).
        pub sent: Mutex<Vec<(String, Option<Vec<u8>>)>>,
        script: Option<Script>,
        /// With transactions: where committed offsets go.
        store: Option<std::sync::Arc<dyn crate::store::OffsetStore>>,
        /// With transactions: where in `sent` the open transaction begins.
        open_from: Mutex<Option<usize>>,
        /// With transactions: the values a `read_committed` consumer sees.
        visible: Mutex<Vec<String>>,
        /// With transactions: how many committed.
        pub commits: std::sync::atomic::AtomicUsize,
    }

    impl MemorySink {
        /// A sink that answers each record as `script` says.
        pub fn scripted(script: impl Fn(usize) -> Answer + Send + Sync + 'static) -> Self {
            Self {
                script: Some(Box::new(script)),
                ..Self::default()
            }
        }

        /// A sink with transactions, as a transactional producer and a
        /// `read_committed` reader see them: a commit makes the records
        /// sent since the last one visible and puts the offsets into
        /// `store` (the offset topic), an abort discards both.
        pub fn transactional(
            store: std::sync::Arc<dyn crate::store::OffsetStore>,
            script: impl Fn(usize) -> Answer + Send + Sync + 'static,
        ) -> Self {
            Self {
                store: Some(store),
                ..Self::scripted(script)
            }
        }

        /// The committed values, as text.
        pub fn visible(&self) -> Vec<String> {
            self.visible
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone()
        }

        /// The values sent so far, as text.
        pub fn values(&self) -> Vec<String> {
            self.sent
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .iter()
                .map(|(_, v)| String::from_utf8_lossy(v.as_deref().unwrap_or_default()).into())
                .collect()
        }
    }

    /// A scripted delivery.
    pub struct MemoryDelivery(Option<Result<(), String>>);

    impl Future for MemoryDelivery {
        type Output = Result<(), String>;

        fn poll(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Self::Output> {
            match self.0.take() {
                Some(outcome) => Poll::Ready(outcome),
                None => Poll::Pending,
            }
        }
    }

    #[async_trait]
    impl RecordSink for MemorySink {
        type Delivery = MemoryDelivery;

        async fn ensure_topic(&self, _: &str, _: TopicLayout) -> Result<(), String> {
            Ok(())
        }

        fn send(&self, record: OutRecord<'_>) -> Result<MemoryDelivery, SendError> {
            let mut sent = self.sent.lock().unwrap_or_else(|e| e.into_inner());
            let index = sent.len();
            if self.store.is_some() {
                self.open_from
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .get_or_insert(index);
            }
            sent.push((record.topic.to_owned(), record.value.map(<[u8]>::to_vec)));
            let answer = self.script.as_ref().map_or(Answer::Ack, |s| s(index));
            Ok(MemoryDelivery(match answer {
                Answer::Ack => Some(Ok(())),
                Answer::Fail => Some(Err(format!("record {index} was not delivered"))),
                Answer::Hang => None,
            }))
        }

        fn transactions(&self) -> Option<&dyn Transactions> {
            self.store.as_ref().map(|_| self as &dyn Transactions)
        }
    }

    #[async_trait]
    impl Transactions for MemorySink {
        async fn commit(
            &self,
            connector: &str,
            offsets: &[(SourcePartition, SourceOffset)],
        ) -> Result<(), TransactionError> {
            let store = self
                .store
                .as_ref()
                .ok_or_else(|| TransactionError::Failed("no transactions".into()))?;
            let open = self
                .open_from
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .is_some();
            if offsets.is_empty() && !open {
                return Ok(());
            }
            let writes: Vec<_> = offsets
                .iter()
                .map(|(p, o)| (p.clone(), Some(o.clone())))
                .collect();
            store
                .put(connector, &writes)
                .map_err(|e| TransactionError::Failed(e.to_string()))?;
            let from = self
                .open_from
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .take();
            if let Some(from) = from {
                let sent = self.sent.lock().unwrap_or_else(|e| e.into_inner());
                self.visible
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .extend(sent[from..].iter().map(|(_, v)| {
                        String::from_utf8_lossy(v.as_deref().unwrap_or_default()).into_owned()
                    }));
            }
            self.commits
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            Ok(())
        }

        async fn abort(&self) {
            self.open_from
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .take();
        }
    }
}
