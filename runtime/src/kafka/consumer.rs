//! The consumer a sink task reads with: one per task, in the connector's
//! group (`connect-<name>`, as Kafka Connect names it), committing only by
//! hand after the target has made a batch durable.

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::consumer::StreamConsumer;
use rdkafka::error::KafkaError;

use super::sink_context::SinkContext;
use super::KafkaSettings;

/// A sink task's consumer.
pub type SinkConsumer = StreamConsumer<SinkContext>;

/// The consumer setting for how long the group waits for a silent member.
const SESSION_TIMEOUT: &str = "session.timeout.ms";
/// Its default: a task whose worker died is noticed in seconds, so its
/// replacement is not kept waiting in the group's rebalance.
const SESSION_TIMEOUT_MS: u64 = 10_000;
/// The consumer setting for how long a member may take between two reads,
/// which is also how long a rebalance waits for members to rejoin.
const MAX_POLL_INTERVAL: &str = "max.poll.interval.ms";
/// Its default.
const MAX_POLL_INTERVAL_MS: u64 = 60_000;

/// The group timings of a sink consumer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupTimeouts {
    /// `session.timeout.ms`.
    pub session: Duration,
    /// `max.poll.interval.ms`: the longest a rebalance waits for a member.
    pub rebalance: Duration,
}

impl GroupTimeouts {
    /// The timings `config` sets (librdkafka's defaults where it sets
    /// none, as sluice always sets both).
    fn of(config: &ClientConfig) -> Self {
        let ms = |key: &str, default: u64| {
            let set = config.get(key).and_then(|v| v.trim().parse().ok());
            Duration::from_millis(set.unwrap_or(default))
        };
        Self {
            session: ms(SESSION_TIMEOUT, SESSION_TIMEOUT_MS),
            rebalance: ms(MAX_POLL_INTERVAL, MAX_POLL_INTERVAL_MS),
        }
    }
}

/// A consumer in `group` for `settings`.
pub fn build_consumer(
    settings: &KafkaSettings,
    group: &str,
    client_id: &str,
    overrides: &BTreeMap<String, String>,
) -> Result<SinkConsumer, KafkaError> {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", &settings.bootstrap_servers)
        .set("group.id", group)
        .set("client.id", client_id)
        // Connect's sink default: a new group starts at the beginning.
        .set("auto.offset.reset", "earliest")
        .set("enable.partition.eof", "false")
        // A subscribed topic created later (its source has not written yet)
        // is noticed within seconds, not librdkafka's default 5 minutes.
        .set("topic.metadata.refresh.interval.ms", "3000")
        // Prefetch is bounded by count and size, so memory stays flat. A
        // fetch answer is queued whole, and compressed change events
        // expand ~5x, each message with a ~300-byte librdkafka op beside
        // it: 50 MiB answers held a whole 200,000-row topic (80 MiB of
        // queued messages) in a sink worker; at 2 MiB answers massif still
        // showed 15 MB of ops and 13 MB of LZ4 output live at the peak.
        // 512 KiB answers cut scripts/bench-sink's peak RSS from 81-82
        // to 66 MiB (PostgreSQL target) and from 108-137 to 95 MiB
        // (MariaDB) at the same speed. Tansu 0.6 answers up to
        // fetch.max.bytes whatever the partition limit says, so that is
        // 512 KiB too (librdkafka wants it at least message.max.bytes,
        // which a consumer uses only to bound its own requests): heaptrack
        // showed ~50,000 queued messages (9.5 MB of ops, 8.8 MB of LZ4
        // output) at the peak with 1 MiB answers; the peak (VmHWM) fell
        // from 65-67 to 57-62 MiB at the same rate and CPU per row. A
        // record batch larger than the limit is still returned whole.
        .set("queued.min.messages", "10000")
        .set("queued.max.messages.kbytes", "1024")
        // With the prefetch bounds this low, librdkafka's default 1 s
        // pause after a fetch that filled them left the task idle ~0.5 s
        // every ~60,000 records (seen timing scripts/bench-sink's batches).
        // At 20 ms the next fetch still began up to 20 ms after the task
        // had taken a batch from a full queue, and a quarter of the
        // PostgreSQL target's batches of 5,000 then waited for records:
        // 625 ms of its 4.1 s (timing each batch of scripts/bench-sink
        // 1000000); at 2 ms, 219-331 ms. A pause this short costs
        // nothing while the queue has room; while it is full, a check
        // every 2 ms per partition.
        .set("fetch.queue.backoff.ms", "2")
        // How long the broker may hold a fetch it has nothing for. Kafka
        // answers at once when it has records, so this only bounds an idle
        // fetch (50 small requests a second per idle task instead of 2).
        // Tansu 0.6 holds every fetch this long, records or not: its fetch
        // service sleeps out the rest of the wait after reading
        // (tansu-storage 0.6.0, src/service/fetch.rs), so against it a
        // consumer reads one fetch.max.bytes answer per wait. At
        // librdkafka's default 500 ms the sink ran 55k rows/s into
        // PostgreSQL, at 20 ms 123k. Lower still helps only against Tansu:
        // scripts/bench-sink 500000's plain consumer read 373-391k
        // records/s at 20 ms and 559-566k at 5 ms, the sinks 6-13 % faster
        // (two alternated runs each). A connector can set
        // consumer.override.fetch.wait.max.ms.
        .set("fetch.wait.max.ms", "20")
        .set("fetch.max.bytes", "524288")
        .set("message.max.bytes", "524288")
        .set("max.partition.fetch.bytes", "524288")
        .set(SESSION_TIMEOUT, SESSION_TIMEOUT_MS.to_string())
        .set(MAX_POLL_INTERVAL, MAX_POLL_INTERVAL_MS.to_string());
    for (key, value) in settings
        .client_properties
        .iter()
        .chain(&settings.consumer_overrides)
        .chain(overrides)
    {
        config.set(key, value);
    }
    // Offsets move only when the runner commits after the target commit.
    config
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false");
    // Read back once every setting is in: the connector's and the worker's
    // settings win over sluice's, as librdkafka takes the last one set.
    let timeouts = GroupTimeouts::of(&config);
    config.create_with_context(SinkContext::new(timeouts))
}
