//! Reads topics with a plain rdkafka consumer, independent of the worker.

use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{Offset, TopicPartitionList};
use serde_json::Value;

/// One consumed record: key and value parsed as JSON (`Null` for none).
#[derive(Debug, Clone)]
pub struct Consumed {
    /// The record key.
    pub key: Value,
    /// The key's bytes as written (`None` for no key).
    pub raw_key_bytes: Option<Vec<u8>>,
    /// The record value; `Null` for a tombstone or non-JSON bytes.
    pub value: Value,
    /// The value's bytes as written (`None` for a tombstone).
    pub raw_value: Option<Vec<u8>>,
    /// Kafka partition.
    pub partition: i32,
    /// Kafka offset.
    pub offset: i64,
    /// Kafka headers.
    pub headers: Vec<(String, Vec<u8>)>,
    /// The record's timestamp in milliseconds since the epoch, if it has one.
    pub timestamp_ms: Option<i64>,
}

/// The newest value (tombstones skipped) among `records` whose key's `id`
/// is `id`, or `Null` if none: each key's events are in one partition, in
/// order, so that is the change a replica ends with.
pub fn last_value_of_id(records: &[Consumed], id: i64) -> Value {
    records
        .iter()
        .rfind(|r| r.key["id"] == id && !r.value.is_null())
        .map(|r| r.value.clone())
        .unwrap_or_default()
}

/// Reads `topic` until it holds a snapshot read and then a streamed insert
/// of the same row values (a copy made under another id), checks they
/// are those, and returns the two rows' `after` without their ids: what
/// the snapshot read and what the stream wrote, to compare.
pub fn snapshot_row_and_its_streamed_copy(bootstrap: &str, topic: &str) -> (Value, Value) {
    let records = read_topic(bootstrap, topic, Duration::from_secs(60), |r| r.len() >= 2);
    let ops = (&records[0].value["op"], &records[1].value["op"]);
    assert_eq!(ops, (&Value::from("r"), &Value::from("c")), "{topic}");
    let after = |i: usize| {
        let mut row = records[i].value["after"].clone();
        row.as_object_mut().map(|r| r.remove("id"));
        row
    };
    (after(0), after(1))
}

/// Reads `topic` until the insert of row `marker` is in it (made after
/// the worker came back), then checks the changes made while the worker
/// was down end their keys: row 1 deleted, row 2 with `qty` 42.
pub fn assert_changes_made_while_down_are_last(bootstrap: &str, topic: &str, marker: i64) {
    let records = read_topic(bootstrap, topic, Duration::from_secs(60), |r| {
        r.iter()
            .any(|r| r.value["op"] == "c" && r.value["after"]["id"] == marker)
    });
    let last = |id| last_value_of_id(&records, id);
    assert_eq!(
        last(1)["op"],
        "d",
        "the row deleted while the worker was down is still in the topic: {:?}",
        last(1)
    );
    assert_eq!(last(2)["after"]["qty"], 42, "{:?}", last(2));
}

impl Consumed {
    /// The key as text (empty for no key), for keys that are not JSON.
    pub fn raw_key(&self) -> String {
        String::from_utf8_lossy(self.raw_key_bytes.as_deref().unwrap_or_default()).into_owned()
    }
}

/// Reads `topic` from the beginning until `done` says enough, or `timeout`.
pub fn read_topic(
    bootstrap: &str,
    topic: &str,
    timeout: Duration,
    mut done: impl FnMut(&[Consumed]) -> bool,
) -> Vec<Consumed> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", crate::unique("sluice-test-reader"))
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .create()
        .expect("kafka consumer");
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .expect("topic metadata");
    let partitions = metadata
        .topics()
        .first()
        .map(|t| t.partitions().len())
        .unwrap_or(0)
        .max(1);
    let mut assignment = TopicPartitionList::new();
    for p in 0..partitions as i32 {
        assignment
            .add_partition_offset(topic, p, Offset::Beginning)
            .expect("assign partition");
    }
    consumer.assign(&assignment).expect("assign");
    let mut records = Vec::new();
    let deadline = Instant::now() + timeout;
    // `done` may look at every record, so ask it only when the topic goes
    // quiet or every few thousand records, not after each one.
    let mut checked_at = usize::MAX;
    loop {
        if Instant::now() >= deadline {
            break;
        }
        if records.len() != checked_at && (records.len() % 5000 == 0 || checked_at == usize::MAX) {
            checked_at = records.len();
            if done(&records) {
                break;
            }
        }
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => records.push(Consumed {
                key: m
                    .key()
                    .and_then(|k| serde_json::from_slice(k).ok())
                    .unwrap_or(Value::Null),
                raw_key_bytes: m.key().map(<[u8]>::to_vec),
                value: m
                    .payload()
                    .and_then(|v| serde_json::from_slice(v).ok())
                    .unwrap_or(Value::Null),
                raw_value: m.payload().map(<[u8]>::to_vec),
                partition: m.partition(),
                offset: m.offset(),
                headers: m
                    .headers()
                    .map(|h| {
                        h.iter()
                            .map(|x| (x.key.to_owned(), x.value.unwrap_or_default().to_vec()))
                            .collect()
                    })
                    .unwrap_or_default(),
                timestamp_ms: m.timestamp().to_millis(),
            }),
            Some(Err(e)) => eprintln!("consumer error (retrying): {e}"),
            None => {
                checked_at = records.len();
                if done(&records) {
                    break;
                }
            }
        }
    }
    records
}

/// Every record of `topic` up to its end as of the call: each partition
/// read up to the high watermark it had then (a quiet moment is no proof
/// of the end: a broker may serve one partition late).
pub fn read_topic_to_end(bootstrap: &str, topic: &str, timeout: Duration) -> Vec<Consumed> {
    let probe: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .expect("kafka consumer");
    let partitions = probe
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .expect("topic metadata")
        .topics()
        .first()
        .map(|t| t.partitions().len())
        .unwrap_or(0);
    let ends: Vec<(i32, i64)> = (0..partitions as i32)
        .map(|p| {
            let (_, high) = probe
                .fetch_watermarks(topic, p, Duration::from_secs(10))
                .expect("watermarks");
            (p, high)
        })
        .collect();
    read_topic(bootstrap, topic, timeout, |records| {
        ends.iter().all(|(p, high)| {
            *high == 0
                || records
                    .iter()
                    .any(|r| r.partition == *p && r.offset >= high - 1)
        })
    })
}

/// The `seq` field of each datagen record, in topic order.
pub fn datagen_seqs(records: &[Consumed]) -> Vec<i64> {
    records
        .iter()
        .filter_map(|r| {
            let value = if r.value.get("payload").is_some() {
                &r.value["payload"]
            } else {
                &r.value
            };
            value["seq"].as_i64()
        })
        .collect()
}

/// The schema id and the first Avro long of a Confluent-framed value: for
/// datagen's Avro values, the registry id and the `seq` field. Decoded by
/// hand so the tests do not trust sluice's own decoder.
pub fn avro_id_and_first_long(raw: &[u8]) -> Option<(i32, i64)> {
    let [0, a, b, c, d, rest @ ..] = raw else {
        return None;
    };
    let id = i32::from_be_bytes([*a, *b, *c, *d]);
    let mut zigzag: u64 = 0;
    for (i, byte) in rest.iter().enumerate().take(10) {
        zigzag |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            let value = (zigzag >> 1) as i64 ^ -((zigzag & 1) as i64);
            return Some((id, value));
        }
    }
    None
}

/// `count` records of `topic` decoded by an independent client (Python
/// confluent-kafka's `AvroDeserializer` through `registry`), as
/// `[{"key", "value"}]`.
pub fn python_avro_decode(
    bootstrap: &str,
    topic: &str,
    registry: &str,
    count: usize,
) -> Vec<serde_json::Value> {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("python/avro_interop.py");
    let output = std::process::Command::new(crate::process::python())
        .arg(script)
        .args(["consume", bootstrap, topic, registry, &count.to_string()])
        .output()
        .expect("run python");
    assert!(
        output.status.success(),
        "python: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect()
}

/// Creates `topic` with `partitions` partitions, compacted as a Kafka
/// Connect cluster creates its state topics.
pub fn create_compacted_topic(bootstrap: &str, topic: &str, partitions: i32) {
    create_topic(
        bootstrap,
        topic,
        partitions,
        &[("cleanup.policy", "compact")],
    );
}

/// Creates `topic` with `partitions` partitions and `configs`.
pub fn create_topic(bootstrap: &str, topic: &str, partitions: i32, configs: &[(&str, &str)]) {
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    use rdkafka::client::DefaultClientContext;
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .expect("admin client");
    let mut new = NewTopic::new(topic, partitions, TopicReplication::Fixed(1));
    for (key, value) in configs {
        new = new.set(key, value);
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let results = runtime
        .block_on(admin.create_topics([&new], &AdminOptions::new()))
        .expect("create topics");
    for result in results {
        result.expect("topic created");
    }
}

/// Writes one record with no key to partition 0, as Debezium's history
/// producer writes its documents.
pub fn produce_unkeyed(bootstrap: &str, topic: &str, value: &str) {
    use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .expect("producer");
    producer
        .send(BaseRecord::<(), str>::to(topic).partition(0).payload(value))
        .map_err(|(e, _)| e)
        .expect("queued");
    producer.flush(Duration::from_secs(30)).expect("delivered");
}

/// `topic`'s partition count and the configs set on it (as the broker
/// describes them), read with an admin client of the test's own.
pub fn topic_layout(
    bootstrap: &str,
    topic: &str,
) -> (usize, std::collections::BTreeMap<String, String>) {
    use rdkafka::admin::{AdminClient, AdminOptions, ResourceSpecifier};
    use rdkafka::client::DefaultClientContext;
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .expect("admin client");
    let partitions = admin
        .inner()
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .expect("topic metadata")
        .topics()
        .first()
        .map_or(0, |t| t.partitions().len());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let described = runtime
        .block_on(admin.describe_configs([&ResourceSpecifier::Topic(topic)], &AdminOptions::new()))
        .expect("describe configs");
    let configs = described
        .into_iter()
        .flat_map(|r| r.expect("topic configs").entries)
        .filter_map(|e| Some((e.name, e.value?)))
        .collect();
    (partitions, configs)
}

/// Writes one record as the Java client would (its murmur2 partitioner,
/// so a Connect state topic's key lands where Connect puts it).
pub fn produce_keyed(bootstrap: &str, topic: &str, key: &str, value: &str) {
    use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("partitioner", "murmur2_random")
        .create()
        .expect("producer");
    producer
        .send(BaseRecord::to(topic).key(key).payload(value))
        .map_err(|(e, _)| e)
        .expect("queued");
    producer.flush(Duration::from_secs(30)).expect("delivered");
}

/// The partition Kafka's Java producer (and so Debezium on Kafka Connect)
/// puts a record with `key` in: `toPositive(murmur2(key)) % partitions`.
/// Written here from the Java client's `Utils.murmur2`, apart from the
/// worker's own code, so a test can hold the worker to it.
pub fn java_partition(key: &[u8], partitions: i32) -> i32 {
    (java_murmur2(key) & 0x7fff_ffff) % partitions
}

/// The Java client's `Utils.murmur2` (seed 0x9747b28c).
fn java_murmur2(data: &[u8]) -> i32 {
    const M: u32 = 0x5bd1_e995;
    let mut h: u32 = 0x9747_b28c ^ data.len() as u32;
    let mut blocks = data.chunks_exact(4);
    for block in &mut blocks {
        let mut k = u32::from_le_bytes([block[0], block[1], block[2], block[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> 24;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M) ^ k;
    }
    let tail = blocks.remainder();
    if tail.len() >= 3 {
        h ^= u32::from(tail[2]) << 16;
    }
    if tail.len() >= 2 {
        h ^= u32::from(tail[1]) << 8;
    }
    if !tail.is_empty() {
        h ^= u32::from(tail[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The Java client's own vectors (`UtilsTest.testMurmur2`).
    #[test]
    fn java_murmur2_matches_the_java_client() {
        for (data, hash) in [
            (&b"21"[..], -973_932_308),
            (b"foobar", -790_332_482),
            (b"a-little-bit-long-string", -985_981_536),
            (b"a-little-bit-longer-string", -1_486_304_829),
            (
                b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
                -58_897_971,
            ),
            (b"abc", 479_470_107),
        ] {
            assert_eq!(
                java_murmur2(data),
                hash,
                "{}",
                String::from_utf8_lossy(data)
            );
        }
        assert_eq!(java_partition(b"21", 25), 15);
    }
}
