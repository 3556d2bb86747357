//! The producer baselines of the benchmarks: a minimal rdkafka producer
//! with the same delivery settings as sluice (idempotent, acks=all, lz4)
//! sending records as fast as it can, either
//! - shaped like datagen's JSON records (`scripts/bench-producer`), or
//! - the very records a sluice phase wrote (`--same-as`): read from that
//!   topic into memory first, untimed, then sent again byte for byte, so a
//!   snapshot or a stream is compared with a producer of the same bytes.
//!
//! Usage: plain_producer BOOTSTRAP TOPIC COUNT PAYLOAD_BYTES
//!        plain_producer BOOTSTRAP TOPIC COUNT --same-as SOURCE_TOPIC
//! Prints: `records bytes seconds cpu_us_per_record`: seconds of sending
//! only, and the CPU the process spent on it (every thread: librdkafka's
//! compression and requests run on its own) per record, the floor a
//! producer of these bytes costs, beside sluice's worker CPU per event.

use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::{Message, Offset, TopicPartitionList};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let usage =
        "usage: plain_producer BOOTSTRAP TOPIC COUNT (PAYLOAD_BYTES | --same-as SOURCE_TOPIC)";
    if args.len() < 5 {
        return Err(usage.into());
    }
    let (bootstrap, topic) = (&args[1], &args[2]);
    let count: u64 = args[3].parse()?;
    let records = match &args[4..] {
        [payload_len] => Records::Datagen {
            payload: "x".repeat(payload_len.parse()?),
        },
        [flag, source] if flag == "--same-as" => {
            Records::Replay(read_topic(bootstrap, source, count)?)
        }
        _ => return Err(usage.into()),
    };
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("compression.codec", "lz4")
        .set("linger.ms", "5")
        .set("batch.num.messages", "10000")
        .set("queue.buffering.max.messages", "200000")
        .set("queue.buffering.max.kbytes", "65536")
        .create()?;
    // The broker does not auto-create topics, so create it as sluice does.
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()?;
    let new = NewTopic::new(topic, 1, TopicReplication::Fixed(1));
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(admin.create_topics([&new], &AdminOptions::new()))?;
    let start = Instant::now();
    let cpu_start = process_cpu()?;
    let mut bytes = 0u64;
    match &records {
        Records::Datagen { payload } => {
            for seq in 0..count {
                let key = format!(
                    r#"{{"schema":{{"type":"struct","fields":[{{"type":"int64","optional":false,"field":"id"}}],"optional":false,"name":"io.sluice.datagen.Key"}},"payload":{{"id":{}}}}}"#,
                    seq % 1000
                );
                let value = format!(
                    r#"{{"schema":{{"type":"struct","fields":[{{"type":"int64","optional":false,"field":"seq"}},{{"type":"int64","optional":false,"field":"id"}},{{"type":"int64","optional":false,"name":"org.apache.kafka.connect.data.Timestamp","version":1,"field":"ts_ms"}},{{"type":"string","optional":false,"field":"payload"}}],"optional":false,"name":"io.sluice.datagen.Value"}},"payload":{{"seq":{seq},"id":{},"ts_ms":1700000000000,"payload":"{payload}"}}}}"#,
                    seq % 1000
                );
                bytes += send(
                    &producer,
                    topic,
                    Some(key.as_bytes()),
                    Some(value.as_bytes()),
                )?;
            }
        }
        Records::Replay(read) => {
            for (key, value) in read {
                bytes += send(&producer, topic, key.as_deref(), value.as_deref())?;
            }
        }
    }
    producer.flush(Duration::from_secs(300))?;
    let sent = match &records {
        Records::Datagen { .. } => count,
        Records::Replay(read) => read.len() as u64,
    };
    let seconds = start.elapsed().as_secs_f64();
    let cpu = process_cpu()? - cpu_start;
    let cpu_us_per_record = cpu.as_secs_f64() * 1e6 / sent.max(1) as f64;
    println!("{sent} {bytes} {seconds:.3} {cpu_us_per_record:.3}");
    Ok(())
}

/// The CPU time (user and system) every thread of this process has used.
fn process_cpu() -> Result<Duration, std::io::Error> {
    // SAFETY: getrusage writes one rusage struct, which we own, and reads
    // nothing else; a zeroed rusage is a valid value of the type.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        if libc::getrusage(libc::RUSAGE_SELF, &mut usage) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        usage
    };
    let time = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    Ok(time(usage.ru_utime) + time(usage.ru_stime))
}

/// A record's key and value as read; `None` is a null.
type KeyValue = (Option<Vec<u8>>, Option<Vec<u8>>);

/// What the producer sends.
enum Records {
    /// Datagen-shaped JSON records, each with a payload of this text.
    Datagen { payload: String },
    /// These keys and values, in order.
    Replay(Vec<KeyValue>),
}

/// Hands one record to the producer, waiting while its queue is full;
/// the record's bytes.
fn send(
    producer: &ThreadedProducer<DefaultProducerContext>,
    topic: &str,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
) -> Result<u64, KafkaError> {
    let mut record = BaseRecord::<[u8], [u8]>::to(topic);
    if let Some(key) = key {
        record = record.key(key);
    }
    if let Some(value) = value {
        record = record.payload(value);
    }
    loop {
        match producer.send(record) {
            Ok(()) => break,
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                record = r;
                std::thread::sleep(Duration::from_millis(1));
            }
            Err((e, _)) => return Err(e),
        }
    }
    Ok((key.map_or(0, <[u8]>::len) + value.map_or(0, <[u8]>::len)) as u64)
}

/// The first `count` records of `source` (every partition from its
/// start), keys and values copied out.
fn read_topic(
    bootstrap: &str,
    source: &str,
    count: u64,
) -> Result<Vec<KeyValue>, Box<dyn std::error::Error>> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", format!("plain-producer-{}", std::process::id()))
        .set("enable.auto.commit", "false")
        .create()?;
    // Assigned, not subscribed: no consumer group to join first.
    let metadata = consumer.fetch_metadata(Some(source), Duration::from_secs(30))?;
    let mut partitions = TopicPartitionList::new();
    for topic in metadata.topics() {
        for partition in topic.partitions() {
            partitions.add_partition_offset(source, partition.id(), Offset::Beginning)?;
        }
    }
    consumer.assign(&partitions)?;
    let mut read = Vec::with_capacity(usize::try_from(count)?);
    while (read.len() as u64) < count {
        let message = consumer.poll(Duration::from_secs(60)).ok_or_else(|| {
            format!(
                "only {} of {count} records in {source} within 60 s",
                read.len()
            )
        })??;
        read.push((
            message.key().map(<[u8]>::to_vec),
            message.payload().map(<[u8]>::to_vec),
        ));
    }
    Ok(read)
}
