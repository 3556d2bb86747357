//! A compacted Kafka topic used as a key-value log (Connect's
//! `KafkaBasedLog`): appends wait for the broker's acknowledgement, and a
//! reader catches up to the end of every partition before answering, so a
//! store never answers from a state older than its own last write.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{DeliveryResult, Message};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer, ProducerContext};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::ClientContext;

use crate::kafka::{KafkaSettings, SluiceContext};
use crate::store::StoreError;

/// How long an append or a catch-up may take before the store reports
/// the broker as unreachable.
const TIMEOUT: Duration = Duration::from_secs(30);

/// Remembers the outcome of the last delivery; appends are serialized, so
/// there is only ever one in flight.
#[derive(Default)]
struct DeliveryOutcome {
    error: Mutex<Option<KafkaError>>,
}

impl ClientContext for DeliveryOutcome {
    crate::kafka::answers_token_refresh!();
}

impl ProducerContext for DeliveryOutcome {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Err((error, _)) = result {
            *self.error.lock().unwrap_or_else(|e| e.into_inner()) = Some(error.clone());
        }
    }
}

/// One record read back: its key and its value (`None` for a tombstone).
pub type LogRecord = (Vec<u8>, Option<Vec<u8>>);

/// A compacted topic read from the beginning and appended to.
pub struct KafkaLog {
    topic: String,
    producer: Mutex<BaseProducer<DeliveryOutcome>>,
    consumer: Mutex<BaseConsumer<SluiceContext>>,
}

impl KafkaLog {
    /// Opens the log on `topic` (which must exist), positioned at the
    /// beginning of every partition.
    pub fn open(settings: &KafkaSettings, topic: &str) -> Result<Self, StoreError> {
        let kafka = |action: &'static str| {
            let topic = topic.to_owned();
            move |source| StoreError::Kafka {
                action,
                topic,
                source,
            }
        };
        let mut producer = ClientConfig::new();
        producer
            .set("bootstrap.servers", &settings.bootstrap_servers)
            .set("client.id", "sluice-state")
            .set("linger.ms", "0")
            // One record at a time: keep librdkafka's buffers small.
            .set("queue.buffering.max.kbytes", "1024")
            // The Java client's partitioner, so a key lands in the partition
            // Kafka Connect would put it in and compaction keeps one value.
            .set("partitioner", "murmur2_random")
            .set("message.timeout.ms", "30000");
        let mut consumer = ClientConfig::new();
        consumer
            .set("bootstrap.servers", &settings.bootstrap_servers)
            .set("client.id", "sluice-state")
            // librdkafka wants a group even for assigned partitions; nothing
            // is joined or committed under it.
            .set("group.id", "sluice-state-reader")
            .set("enable.auto.commit", "false")
            .set("enable.partition.eof", "false")
            // librdkafka's default, spelled out: exactly-once source tasks
            // write offsets inside transactions, and only committed ones
            // may be read back.
            .set("isolation.level", "read_committed")
            // A read soon after an append waits a short long-poll at most.
            .set("fetch.wait.max.ms", "100")
            // Prefetch bounded: a large offset topic must not fill memory.
            .set("queued.max.messages.kbytes", "1024")
            // Reading a large topic to its end must not pause 1 s each
            // time the bounded prefetch fills (librdkafka's default).
            .set("fetch.queue.backoff.ms", "20")
            .set("fetch.max.bytes", "1048576");
        for (key, value) in &settings.client_properties {
            producer.set(key, value);
            consumer.set(key, value);
        }
        producer
            .set("enable.idempotence", "true")
            .set("acks", "all");
        let producer: BaseProducer<DeliveryOutcome> = producer
            .create_with_context(DeliveryOutcome::default())
            .map_err(kafka("creating a producer for"))?;
        let consumer: BaseConsumer<SluiceContext> = consumer
            .create_with_context(SluiceContext)
            .map_err(kafka("creating a consumer for"))?;
        let metadata = consumer
            .fetch_metadata(Some(topic), TIMEOUT)
            .map_err(kafka("reading the partitions of"))?;
        let mut assignment = TopicPartitionList::new();
        for t in metadata.topics() {
            for p in t.partitions() {
                assignment
                    .add_partition_offset(topic, p.id(), Offset::Beginning)
                    .map_err(kafka("assigning"))?;
            }
        }
        if assignment.count() == 0 {
            return Err(StoreError::Kafka {
                action: "finding partitions of",
                topic: topic.to_owned(),
                source: KafkaError::MetadataFetch(
                    rdkafka::types::RDKafkaErrorCode::UnknownTopicOrPartition,
                ),
            });
        }
        consumer.assign(&assignment).map_err(kafka("assigning"))?;
        Ok(Self {
            topic: topic.to_owned(),
            producer: Mutex::new(producer),
            consumer: Mutex::new(consumer),
        })
    }

    /// The topic's name.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// How many partitions the topic has.
    pub fn partitions(&self) -> i32 {
        self.consumer
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .assignment()
            .map_or(1, |a| a.count() as i32)
    }

    /// Appends one record and waits until the broker has it.
    pub fn append(&self, key: &[u8], value: Option<&[u8]>) -> Result<(), StoreError> {
        let producer = self.producer.lock().unwrap_or_else(|e| e.into_inner());
        let mut record = BaseRecord::<[u8], [u8]>::to(&self.topic).key(key);
        if let Some(value) = value {
            record = record.payload(value);
        }
        producer
            .send(record)
            .map_err(|(source, _)| self.error("appending to", source))?;
        let deadline = Instant::now() + TIMEOUT;
        while producer.in_flight_count() > 0 {
            if Instant::now() > deadline {
                return Err(self.error(
                    "appending to",
                    KafkaError::Flush(rdkafka::types::RDKafkaErrorCode::MessageTimedOut),
                ));
            }
            producer.poll(Duration::from_millis(1));
        }
        let failed = producer
            .context()
            .error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        match failed {
            Some(source) => Err(self.error("appending to", source)),
            None => Ok(()),
        }
    }

    /// Reads every record from where the last call stopped up to the end
    /// each partition has now, in order within a partition.
    pub fn read_to_end(&self) -> Result<Vec<LogRecord>, StoreError> {
        let consumer = self.consumer.lock().unwrap_or_else(|e| e.into_inner());
        let assignment = consumer
            .assignment()
            .map_err(|source| self.error("reading", source))?;
        // One ListOffsets request per end for all partitions (a watermark
        // query per partition costs a round trip each).
        let at = |offset: Offset| -> Result<TopicPartitionList, StoreError> {
            let mut query = assignment.clone();
            query
                .set_all_offsets(offset)
                .map_err(|source| self.error("reading the ends of", source))?;
            consumer
                .offsets_for_times(query, TIMEOUT)
                .map_err(|source| self.error("reading the ends of", source))
        };
        let (lows, highs) = (at(Offset::Beginning)?, at(Offset::End)?);
        let raw = |list: &TopicPartitionList, partition: i32| {
            list.find_partition(&self.topic, partition)
                .and_then(|e| e.offset().to_raw())
                .unwrap_or(0)
        };
        let ends: Vec<(i32, i64, i64)> = assignment
            .elements()
            .iter()
            .map(|e| {
                (
                    e.partition(),
                    raw(&lows, e.partition()),
                    raw(&highs, e.partition()),
                )
            })
            .collect();
        let deadline = Instant::now() + TIMEOUT;
        let mut records = Vec::new();
        loop {
            let positions = consumer
                .position()
                .map_err(|source| self.error("reading", source))?;
            // Before the first record a partition has no position; one
            // compacted down to nothing (low = high) has nothing to wait for.
            let behind = ends.iter().any(|&(partition, low, high)| {
                let at = match positions
                    .find_partition(&self.topic, partition)
                    .map(|e| e.offset())
                {
                    Some(Offset::Offset(at)) => at,
                    _ => low,
                };
                at < high
            });
            if !behind {
                return Ok(records);
            }
            if Instant::now() > deadline {
                return Err(self.error(
                    "reading to the end of",
                    KafkaError::MessageConsumption(
                        rdkafka::types::RDKafkaErrorCode::OperationTimedOut,
                    ),
                ));
            }
            match consumer.poll(Duration::from_millis(200)) {
                Some(Ok(message)) => records.push((
                    message.key().unwrap_or_default().to_vec(),
                    message.payload().map(<[u8]>::to_vec),
                )),
                Some(Err(source)) => return Err(self.error("reading", source)),
                None => {}
            }
        }
    }

    fn error(&self, action: &'static str, source: KafkaError) -> StoreError {
        StoreError::Kafka {
            action,
            topic: self.topic.clone(),
            source,
        }
    }
}

/// State folded from a log's records, applied in topic order.
pub trait Fold: Default {
    /// Applies one record.
    fn apply(&mut self, record: &LogRecord);
}

/// A log and the state folded from what has been read of it.
pub struct Folded<T> {
    log: KafkaLog,
    view: Mutex<T>,
}

impl<T: Fold> Folded<T> {
    /// Nothing read yet.
    pub fn new(log: KafkaLog) -> Self {
        Self {
            log,
            view: Mutex::new(T::default()),
        }
    }

    /// The log.
    pub fn log(&self) -> &KafkaLog {
        &self.log
    }

    /// The state after reading the log to its end.
    pub fn catch_up(&self) -> Result<std::sync::MutexGuard<'_, T>, StoreError> {
        let records = self.log.read_to_end()?;
        let mut view = self.view();
        for record in &records {
            view.apply(record);
        }
        Ok(view)
    }

    /// The state as read so far.
    pub fn view(&self) -> std::sync::MutexGuard<'_, T> {
        self.view.lock().unwrap_or_else(|e| e.into_inner())
    }
}
