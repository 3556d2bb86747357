//! `sluice tail`: print the records of topics as readable lines, so a
//! person can watch change events without another Kafka client.

use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use serde_json::Value;

/// Settings of `sluice tail`.
#[derive(Debug, Clone, clap::Args)]
pub struct TailArgs {
    /// Kafka bootstrap servers.
    #[arg(long, env = "SLUICE_BOOTSTRAP_SERVERS", value_name = "HOST:PORT")]
    pub bootstrap_servers: String,
    /// Topics to read (repeatable).
    #[arg(long = "topic", required = true, value_name = "TOPIC")]
    pub topics: Vec<String>,
    /// Start at the beginning of each topic instead of the end.
    #[arg(long)]
    pub from_beginning: bool,
    /// Exit after this many records.
    #[arg(long, value_name = "N")]
    pub max_records: Option<u64>,
}

/// The payload of a Connect JSON document (envelope or bare), compacted.
fn readable(bytes: Option<&[u8]>) -> String {
    let Some(bytes) = bytes else {
        return "null".to_owned();
    };
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(mut doc)) if doc.contains_key("schema") && doc.contains_key("payload") => {
            doc.remove("payload").unwrap_or(Value::Null).to_string()
        }
        Ok(other) => other.to_string(),
        Err(_) => format!("<{} bytes, not JSON>", bytes.len()),
    }
}

/// Blocks until `topic` exists: connectors create topics with their first
/// record, and a subscription made earlier would not see it for minutes.
fn wait_for_topic(consumer: &BaseConsumer, topic: &str) {
    let mut told = false;
    loop {
        let exists = consumer
            .fetch_metadata(Some(topic), Duration::from_secs(5))
            .map(|m| {
                m.topics()
                    .iter()
                    .any(|t| t.name() == topic && t.error().is_none() && !t.partitions().is_empty())
            })
            .unwrap_or(false);
        if exists {
            return;
        }
        if !told {
            eprintln!("waiting for topic {topic} to be created...");
            told = true;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Reads and prints until interrupted or `max_records` is reached.
pub fn run(args: &TailArgs) -> anyhow::Result<()> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &args.bootstrap_servers)
        .set("group.id", format!("sluice-tail-{}", std::process::id()))
        .set("enable.auto.commit", "false")
        .set(
            "auto.offset.reset",
            if args.from_beginning {
                "earliest"
            } else {
                "latest"
            },
        )
        .create()?;
    let topics: Vec<&str> = args.topics.iter().map(String::as_str).collect();
    for topic in &topics {
        wait_for_topic(&consumer, topic);
    }
    consumer.subscribe(&topics)?;
    let mut seen = 0u64;
    loop {
        match consumer.poll(Duration::from_millis(500)) {
            Some(Ok(m)) => {
                println!(
                    "{}[{}]@{} key={} value={}",
                    m.topic(),
                    m.partition(),
                    m.offset(),
                    readable(m.key()),
                    readable(m.payload())
                );
                seen += 1;
                if args.max_records.is_some_and(|max| seen >= max) {
                    return Ok(());
                }
            }
            Some(Err(e)) => eprintln!("warning: {e}"),
            None => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelopes_show_only_their_payload() {
        let doc = br#"{"schema":{"type":"struct"},"payload":{"id":1}}"#;
        assert_eq!(readable(Some(doc)), r#"{"id":1}"#);
        assert_eq!(readable(Some(br#"{"id":1}"#)), r#"{"id":1}"#);
        assert_eq!(readable(None), "null");
    }
}
