//! The producer: idempotent, `acks=all`, compressed and batched, so that an
//! acknowledged record is durable and retries never reorder or duplicate.

use std::collections::BTreeMap;

use super::delivery::DeliveryContext;
pub use super::delivery::Producer;
use rdkafka::config::ClientConfig;
use rdkafka::error::KafkaError;

/// What the worker needs to reach the broker.
#[derive(Debug, Clone)]
pub struct KafkaSettings {
    /// `host:port[,host:port]`.
    pub bootstrap_servers: String,
    /// librdkafka properties every client gets (security: TLS, SASL),
    /// already translated from Connect's names (`security::translate`).
    pub client_properties: BTreeMap<String, String>,
    /// Extra librdkafka properties of the producer (tuning); they win over
    /// ours except for the ones that guarantee delivery.
    pub producer_overrides: BTreeMap<String, String>,
    /// Extra librdkafka properties for sink tasks' consumers.
    pub consumer_overrides: BTreeMap<String, String>,
    /// Compression codec: none, gzip, snappy, lz4, zstd.
    pub compression: String,
}

impl KafkaSettings {
    /// Settings for a broker reached in plain text with no overrides and
    /// no compression (tests against librdkafka's mock cluster).
    #[cfg(test)]
    pub fn plain(bootstrap_servers: impl Into<String>) -> Self {
        Self {
            bootstrap_servers: bootstrap_servers.into(),
            client_properties: BTreeMap::new(),
            producer_overrides: BTreeMap::new(),
            consumer_overrides: BTreeMap::new(),
            compression: "none".into(),
        }
    }
}

/// Properties that make delivery safe; users cannot override them.
const SAFETY: [(&str, &str); 3] = [
    ("enable.idempotence", "true"),
    ("acks", "all"),
    ("max.in.flight.requests.per.connection", "5"),
];

/// A producer for `settings`.
pub fn build_producer(settings: &KafkaSettings) -> Result<Producer, KafkaError> {
    build(settings, &[])
}

/// A producer for `settings` whose records go out in transactions under
/// `transactional_id` (exactly-once source delivery); nobody can override
/// the id.
pub fn build_transactional_producer(
    settings: &KafkaSettings,
    transactional_id: &str,
) -> Result<Producer, KafkaError> {
    build(
        settings,
        &[
            ("transactional.id", transactional_id),
            // librdkafka requires a record's timeout within its
            // transaction's; a minute, Kafka's default, bounds how long a
            // dead task's open transaction holds back read_committed
            // readers when nobody starts the task again.
            ("transaction.timeout.ms", "60000"),
            ("message.timeout.ms", "60000"),
        ],
    )
}

fn build(settings: &KafkaSettings, fixed: &[(&str, &str)]) -> Result<Producer, KafkaError> {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", &settings.bootstrap_servers)
        .set("compression.codec", &settings.compression)
        // The Java client's partitioner: a keyed record lands where
        // Debezium on Kafka Connect puts that key, so a topic keeps each
        // key in one partition across a move from Debezium to sluice
        // (librdkafka's default, CRC32, picks other partitions).
        .set("partitioner", "murmur2_random")
        // The Java producer's request limit (`max.request.size`), which
        // Kafka's default `message.max.bytes` (1,048,588) admits: a row
        // Debezium can send, sluice can too. librdkafka's own default
        // (1,000,000) refused records between the two.
        .set("message.max.bytes", "1048576")
        .set("linger.ms", "5")
        .set("batch.num.messages", "10000")
        .set("queue.buffering.max.messages", "200000")
        .set("queue.buffering.max.kbytes", "16384")
        // A record the broker cannot take in 5 minutes fails the task rather
        // than being dropped; the offset stays before it.
        .set("message.timeout.ms", "300000")
        .set("client.id", "sluice");
    for (key, value) in settings
        .client_properties
        .iter()
        .chain(&settings.producer_overrides)
    {
        config.set(key, value);
    }
    for (key, value) in SAFETY.iter().chain(fixed) {
        config.set(*key, *value);
    }
    config.create_with_context(DeliveryContext::default())
}
