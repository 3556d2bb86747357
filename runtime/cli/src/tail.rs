//! `sluice tail`: print the records of topics as readable lines, so a
//! person can watch change events without another Kafka client.

use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use serde_json::Value;

use sluice_runtime::converter::avro::decode::AvroDecoder;
use sluice_runtime::converter::avro::read::AvroReader;
use sluice_runtime::kafka::SluiceContext;
use sluice_runtime::registry::client::{RegistryAccess, RegistryClient};

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
    /// Schema registry URL for decoding Avro (Confluent wire format).
    #[arg(long, env = "SLUICE_SCHEMA_REGISTRY_URL", value_name = "URL")]
    pub schema_registry_url: Option<String>,
    /// Show Debezium change events as one line each (operation, key,
    /// columns; only what changed for updates) instead of their JSON.
    #[arg(long)]
    pub changes: bool,
    /// A Kafka client setting, as in a Connect worker.properties
    /// (`security.protocol`, `sasl.jaas.config`, `ssl.truststore.location`,
    /// ...; repeatable), translated as the worker's `--kafka-property`.
    #[arg(long = "kafka-property", value_name = "KEY=VALUE")]
    pub kafka_properties: Vec<String>,
    /// HTTP basic auth for the schema registry, `USER:PASSWORD`.
    #[arg(
        long,
        env = "SLUICE_SCHEMA_REGISTRY_AUTH",
        value_name = "USER:PASSWORD"
    )]
    pub schema_registry_auth: Option<String>,
    /// A bearer token for the schema registry.
    #[arg(long, env = "SLUICE_SCHEMA_REGISTRY_TOKEN", value_name = "TOKEN")]
    pub schema_registry_token: Option<String>,
    /// PEM file of the CA(s) an https:// registry's certificate must chain to.
    #[arg(long, value_name = "FILE")]
    pub schema_registry_ca: Option<std::path::PathBuf>,
}

/// The schema and value of a message, when it carries a schema (Avro
/// through the registry, or Connect JSON with schemas).
fn typed(
    bytes: Option<&[u8]>,
    avro: Option<&AvroReader>,
) -> Option<(
    std::sync::Arc<sluice_connector_api::Schema>,
    sluice_connector_api::Value,
)> {
    let bytes = bytes?;
    if let (Some(reader), Some(_)) = (avro, AvroDecoder::schema_id(bytes)) {
        return reader.read(bytes).ok();
    }
    match sluice_runtime::converter::json_read::read(bytes, true) {
        Ok((Some(schema), value)) => Some((schema, value)),
        _ => None,
    }
}

/// The one-line view of a change event, if the message is one.
fn change(key: Option<&[u8]>, value: Option<&[u8]>, avro: Option<&AvroReader>) -> Option<String> {
    let (schema, value) = typed(value, avro)?;
    let key = typed(key, avro);
    crate::change_line::line(key.as_ref().map(|(s, v)| (s.as_ref(), v)), &schema, &value)
}

/// The record as readable JSON: Avro decoded through the registry, the
/// payload of a Connect JSON document (envelope or bare), compacted.
fn readable(bytes: Option<&[u8]>, avro: Option<&mut AvroDecoder>) -> String {
    let Some(bytes) = bytes else {
        return "null".to_owned();
    };
    if let (Some(decoder), Some(_)) = (avro, AvroDecoder::schema_id(bytes)) {
        return match decoder.decode(bytes) {
            Ok(json) => json.to_string(),
            Err(e) => format!("<{} bytes: {e}>", bytes.len()),
        };
    }
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(mut doc)) if doc.contains_key("schema") && doc.contains_key("payload") => {
            doc.remove("payload").unwrap_or(Value::Null).to_string()
        }
        Ok(other) => other.to_string(),
        Err(_) if AvroDecoder::schema_id(bytes).is_some() => format!(
            "<{} bytes of Avro; pass --schema-registry-url to decode>",
            bytes.len()
        ),
        Err(_) => format!("<{} bytes, not JSON>", bytes.len()),
    }
}

/// How long `tail` waits for the broker to answer at all.
const BROKER_WAIT: Duration = Duration::from_secs(30);

/// Blocks until `topic` exists: connectors create topics with their first
/// record, and a subscription made earlier would not see it for minutes.
fn wait_for_topic(consumer: &BaseConsumer<SluiceContext>, topic: &str) {
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

/// The Kafka settings of `--kafka-property`, translated to librdkafka's.
fn kafka_settings(args: &TailArgs) -> anyhow::Result<std::collections::BTreeMap<String, String>> {
    let given = sluice_runtime::worker_config::with_pairs(
        Default::default(),
        &args.kafka_properties,
        "kafka-property",
    )?;
    sluice_runtime::kafka::security::translate(&given, Some(&args.bootstrap_servers))
        .map_err(|e| anyhow::anyhow!("--kafka-property: {e}"))
}

/// The registry client `--schema-registry-*` describe, if a URL is given.
fn registry(args: &TailArgs) -> anyhow::Result<Option<RegistryClient>> {
    let Some(url) = &args.schema_registry_url else {
        return Ok(None);
    };
    let ca_pem = match &args.schema_registry_ca {
        Some(path) => Some(
            std::fs::read(path)
                .map_err(|e| anyhow::anyhow!("--schema-registry-ca {}: {e}", path.display()))?,
        ),
        None => None,
    };
    let access = RegistryAccess {
        basic_auth: args.schema_registry_auth.clone(),
        bearer: args.schema_registry_token.clone(),
        ca_pem,
        client_pem: None,
    };
    RegistryClient::connect(url, &access)
        .map(Some)
        .map_err(|e| anyhow::anyhow!("--schema-registry-ca: {e}"))
}

/// Reads and prints until interrupted or `max_records` is reached.
pub fn run(args: &TailArgs) -> anyhow::Result<()> {
    let properties = kafka_settings(args)?;
    // A refused login or certificate is named at once, not shown as a
    // topic that never appears.
    sluice_runtime::kafka::cluster_id(
        &sluice_runtime::kafka::KafkaSettings {
            bootstrap_servers: args.bootstrap_servers.clone(),
            client_properties: properties.clone(),
            producer_overrides: Default::default(),
            consumer_overrides: Default::default(),
            compression: "none".to_owned(),
        },
        BROKER_WAIT,
    )?;
    let mut config = ClientConfig::new();
    for (key, value) in properties {
        config.set(key, value);
    }
    let consumer: BaseConsumer<SluiceContext> = config
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
        .create_with_context(SluiceContext)?;
    let topics: Vec<&str> = args.topics.iter().map(String::as_str).collect();
    for topic in &topics {
        wait_for_topic(&consumer, topic);
    }
    consumer.subscribe(&topics)?;
    let client = registry(args)?;
    let mut decoder = client.clone().map(AvroDecoder::with_client);
    let reader = client.map(AvroReader::new);
    let mut seen = 0u64;
    loop {
        match consumer.poll(Duration::from_millis(500)) {
            Some(Ok(m)) if args.changes => {
                if m.payload().is_some() {
                    let line = change(m.key(), m.payload(), reader.as_ref()).unwrap_or_else(|| {
                        format!("value={}", readable(m.payload(), decoder.as_mut()))
                    });
                    println!("{:<34} {line}", m.topic());
                }
                seen += 1;
                if args.max_records.is_some_and(|max| seen >= max) {
                    return Ok(());
                }
            }
            Some(Ok(m)) => {
                println!(
                    "{}[{}]@{} key={} value={}",
                    m.topic(),
                    m.partition(),
                    m.offset(),
                    readable(m.key(), decoder.as_mut()),
                    readable(m.payload(), decoder.as_mut())
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
        assert_eq!(readable(Some(doc), None), r#"{"id":1}"#);
        assert_eq!(readable(Some(br#"{"id":1}"#), None), r#"{"id":1}"#);
        assert_eq!(readable(None, None), "null");
    }
}
