//! The baseline for `scripts/bench-producer`: a minimal rdkafka producer
//! with the same delivery settings as sluice (idempotent, acks=all, lz4)
//! sending records shaped like datagen's JSON records, as fast as it can.
//!
//! Usage: plain_producer BOOTSTRAP TOPIC COUNT PAYLOAD_BYTES
//! Prints: `records bytes seconds`.

use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 5 {
        return Err("usage: plain_producer BOOTSTRAP TOPIC COUNT PAYLOAD_BYTES".into());
    }
    let (bootstrap, topic) = (&args[1], &args[2]);
    let count: u64 = args[3].parse()?;
    let payload_len: usize = args[4].parse()?;
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
    let payload: String = "x".repeat(payload_len);
    let start = Instant::now();
    let mut bytes = 0u64;
    for seq in 0..count {
        let key = format!(
            r#"{{"schema":{{"type":"struct","fields":[{{"type":"int64","optional":false,"field":"id"}}],"optional":false,"name":"io.sluice.datagen.Key"}},"payload":{{"id":{}}}}}"#,
            seq % 1000
        );
        let value = format!(
            r#"{{"schema":{{"type":"struct","fields":[{{"type":"int64","optional":false,"field":"seq"}},{{"type":"int64","optional":false,"field":"id"}},{{"type":"int64","optional":false,"name":"org.apache.kafka.connect.data.Timestamp","version":1,"field":"ts_ms"}},{{"type":"string","optional":false,"field":"payload"}}],"optional":false,"name":"io.sluice.datagen.Value"}},"payload":{{"seq":{seq},"id":{},"ts_ms":1700000000000,"payload":"{payload}"}}}}"#,
            seq % 1000
        );
        bytes += (key.len() + value.len()) as u64;
        let mut record = BaseRecord::<str, str>::to(topic).key(&key).payload(&value);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                    record = r;
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err((e, _)) => return Err(e.into()),
            }
        }
    }
    producer.flush(Duration::from_secs(300))?;
    println!("{count} {bytes} {:.3}", start.elapsed().as_secs_f64());
    Ok(())
}
