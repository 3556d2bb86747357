//! A connector's own topic read from its start to its end (the MySQL
//! connector's schema history, left by Debezium), through a consumer with
//! no group, secured as the worker's other clients are.

use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use sluice_connector_api::{ConnectorError, TopicReader};

use super::{KafkaSettings, SluiceContext};

/// How long reading one topic may take before the task is retried.
const TIMEOUT: Duration = Duration::from_secs(60);

/// Reads topics of the worker's broker.
pub struct KafkaTopicReader {
    settings: KafkaSettings,
}

impl KafkaTopicReader {
    /// A reader with the worker's client settings.
    pub fn new(settings: KafkaSettings) -> Self {
        Self { settings }
    }
}

#[async_trait::async_trait]
impl TopicReader for KafkaTopicReader {
    async fn read_to_end(&self, topic: &str) -> Result<Vec<Vec<u8>>, ConnectorError> {
        let (settings, name) = (self.settings.clone(), topic.to_owned());
        tokio::task::spawn_blocking(move || read(&settings, &name))
            .await
            .map_err(|e| ConnectorError::retriable(format!("reading topic {topic} was interrupted: {e}")))?
            .map_err(|e| {
                ConnectorError::retriable(format!(
                    "cannot read topic {topic}: {e}; check that the broker is reachable and that this worker may read the topic"
                ))
            })
    }
}

fn read(settings: &KafkaSettings, topic: &str) -> Result<Vec<Vec<u8>>, KafkaError> {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", &settings.bootstrap_servers)
        .set("group.id", "sluice-topic-reader")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false");
    for (key, value) in &settings.client_properties {
        config.set(key, value);
    }
    let consumer: BaseConsumer<SluiceContext> = config.create_with_context(SluiceContext)?;
    let exists = consumer
        .fetch_metadata(Some(topic), TIMEOUT)?
        .topics()
        .iter()
        .any(|t| t.name() == topic && !t.partitions().is_empty());
    if !exists {
        return Ok(Vec::new());
    }
    let (low, high) = consumer.fetch_watermarks(topic, 0, TIMEOUT)?;
    let mut values = Vec::new();
    if high <= low {
        return Ok(values);
    }
    let mut assignment = TopicPartitionList::new();
    assignment.add_partition_offset(topic, 0, Offset::Offset(low))?;
    consumer.assign(&assignment)?;
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Err(KafkaError::MessageConsumption(
                rdkafka::types::RDKafkaErrorCode::OperationTimedOut,
            ));
        }
        match consumer.poll(remaining.min(Duration::from_millis(500))) {
            Some(Ok(message)) => {
                if let Some(value) = message.payload() {
                    values.push(value.to_vec());
                }
                if message.offset() + 1 >= high {
                    return Ok(values);
                }
            }
            Some(Err(e)) => return Err(e),
            // The last offsets can be transaction markers, which are never
            // handed out as messages: the position says when they are past.
            None if read_past(&consumer, topic, high) => return Ok(values),
            None => {}
        }
    }
}

/// Whether the consumer's position in `topic`'s partition 0 reached `high`.
fn read_past(consumer: &BaseConsumer<SluiceContext>, topic: &str, high: i64) -> bool {
    consumer.position().ok().is_some_and(|list| {
        list.find_partition(topic, 0)
            .is_some_and(|p| matches!(p.offset(), Offset::Offset(at) if at >= high))
    })
}

#[cfg(test)]
mod tests {
    use rdkafka::mocking::MockCluster;
    use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

    use super::*;

    fn settings(
        cluster: &MockCluster<'_, rdkafka::producer::DefaultProducerContext>,
    ) -> KafkaSettings {
        KafkaSettings::plain(cluster.bootstrap_servers())
    }

    #[test]
    fn records_committed_in_a_transaction_are_read_to_the_end() {
        let cluster = MockCluster::new(1).expect("mock cluster");
        cluster.create_topic("history", 1, 1).expect("topic");
        let producer: BaseProducer = ClientConfig::new()
            .set("bootstrap.servers", cluster.bootstrap_servers())
            .set("transactional.id", "writer")
            .create()
            .expect("producer");
        producer.init_transactions(TIMEOUT).expect("init");
        producer.begin_transaction().expect("begin");
        for value in ["one", "two", "three"] {
            producer
                .send(
                    BaseRecord::<(), str>::to("history")
                        .partition(0)
                        .payload(value),
                )
                .map_err(|(e, _)| e)
                .expect("queued");
        }
        producer.commit_transaction(TIMEOUT).expect("commit");
        // (librdkafka's mock cluster gives the commit marker no offset of
        // its own, so `read_past` is not reached here; on Kafka it is.)
        let values = read(&settings(&cluster), "history").expect("read");
        assert_eq!(
            values,
            vec![b"one".to_vec(), b"two".to_vec(), b"three".to_vec()]
        );
    }

    #[test]
    fn a_missing_or_empty_topic_reads_as_nothing() {
        let cluster = MockCluster::new(1).expect("mock cluster");
        cluster.create_topic("empty", 1, 1).expect("topic");
        let settings = settings(&cluster);
        assert_eq!(
            read(&settings, "empty").expect("read"),
            Vec::<Vec<u8>>::new()
        );
        assert_eq!(
            read(&settings, "missing").expect("read"),
            Vec::<Vec<u8>>::new()
        );
    }
}
