//! The broker's read floor for `scripts/bench-sink`: the consumer a sink
//! task reads with (`kafka::build_consumer`, the same fetch and prefetch
//! settings) reading a topic from its start, doing nothing with each
//! message but counting it. A sink cannot read faster than this from the
//! same broker.
//!
//! Usage: plain_consumer BOOTSTRAP TOPIC COUNT [KEY=VALUE ...]
//! (the pairs override the consumer's settings, as a connector's
//! `consumer.override.*` keys do)
//! Prints: `records seconds`, from the first message to the COUNT-th.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rdkafka::consumer::Consumer;
use rdkafka::Message;
use sluice_runtime::kafka::{build_consumer, KafkaSettings, SinkConsumer};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 4 {
        return Err("usage: plain_consumer BOOTSTRAP TOPIC COUNT [KEY=VALUE ...]".into());
    }
    let (bootstrap, topic) = (&args[1], &args[2]);
    let count: u64 = args[3].parse()?;
    let mut overrides = BTreeMap::new();
    for pair in &args[4..] {
        let (key, value) = pair
            .split_once('=')
            .ok_or_else(|| format!("{pair}: an override is KEY=VALUE"))?;
        overrides.insert(key.to_owned(), value.to_owned());
    }
    let settings = KafkaSettings {
        bootstrap_servers: bootstrap.clone(),
        client_properties: BTreeMap::new(),
        producer_overrides: BTreeMap::new(),
        consumer_overrides: overrides,
        compression: "none".into(),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    // The stream consumer starts its poller on the runtime it is made in.
    let _inside = runtime.enter();
    let group = format!("plain-consumer-{}", std::process::id());
    let consumer: SinkConsumer =
        build_consumer(&settings, &group, "plain-consumer", &BTreeMap::new())?;
    consumer.subscribe(&[topic.as_str()])?;
    let (read, seconds) = runtime.block_on(async {
        let mut read = 0u64;
        let mut start = None;
        while read < count {
            let message = match tokio::time::timeout(Duration::from_secs(60), consumer.recv()).await
            {
                Ok(message) => message.map_err(|e| e.to_string())?,
                Err(_) => return Err(format!("only {read} of {count} records within 60 s")),
            };
            // The clock starts at the first message: joining the group is
            // not reading.
            start.get_or_insert_with(Instant::now);
            read += u64::from(message.payload().is_some() || message.key().is_some());
        }
        let seconds = start.map_or(0.0, |s| s.elapsed().as_secs_f64());
        Ok((read, seconds))
    })?;
    println!("{read} {seconds:.3}");
    Ok(())
}
