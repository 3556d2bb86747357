//! Worker settings: from `--config worker.toml`, overridden by `SLUICE_*`
//! environment variables, overridden by command-line flags.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use serde::Deserialize;
use thiserror::Error;

use crate::kafka::TopicLayout;
use crate::store::kafka::{GroupSettings, StateTopic};

/// A worker setting is missing or wrong.
#[derive(Debug, Error)]
pub enum WorkerConfigError {
    /// The config file could not be read.
    #[error("cannot read worker config {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The config file is not valid TOML for a worker.
    #[error("worker config {path} is invalid: {message}")]
    Parse {
        /// The file.
        path: String,
        /// The parser's explanation.
        message: String,
    },
    /// A required setting has no value anywhere.
    #[error("{0} is required: pass --{0}, set SLUICE_{1}, or put {0} in the worker config file")]
    Missing(&'static str, &'static str),
    /// A setting has a bad value.
    #[error("{key}: {message}")]
    Invalid {
        /// The setting.
        key: &'static str,
        /// What is wrong.
        message: String,
    },
}

/// `sluice worker` flags. Every flag also reads a `SLUICE_*` variable and a
/// key of the same name in the `--config` file.
#[derive(Debug, Clone, Default, Args)]
pub struct WorkerArgs {
    /// A TOML file with any of the settings below (keys as the flag names,
    /// e.g. `bootstrap-servers = "localhost:9092"`), plus `[producer]` and
    /// `[converters]` tables of extra properties.
    #[arg(long, env = "SLUICE_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Kafka bootstrap servers, host:port[,host:port...].
    #[arg(long, env = "SLUICE_BOOTSTRAP_SERVERS", value_name = "HOST:PORT")]
    pub bootstrap_servers: Option<String>,

    /// Where the REST API listens [default: 127.0.0.1:8083].
    #[arg(long, env = "SLUICE_REST_LISTEN", value_name = "ADDR:PORT")]
    pub rest_listen: Option<SocketAddr>,

    /// The REST address other clients (and the other workers of a group)
    /// use, shown as worker_id [default: the listen address; for a wildcard
    /// one, this machine's host name and the port].
    #[arg(long, env = "SLUICE_REST_ADVERTISED", value_name = "HOST:PORT")]
    pub rest_advertised: Option<String>,

    /// Directories whose files connector configs may read with
    /// ${file:/path:key} placeholders, comma-separated (Connect's
    /// config.providers.file.param.allowed.paths) [default: none, so
    /// ${file:} placeholders are refused].
    #[arg(
        long,
        env = "SLUICE_CONFIG_PROVIDER_FILE_ALLOWED_PATHS",
        value_name = "DIR[,DIR]",
        value_delimiter = ','
    )]
    pub config_provider_file_allowed_paths: Vec<PathBuf>,

    /// Regular expression of the environment variables connector configs
    /// may read with ${env:NAME} (Connect's
    /// config.providers.env.param.allowlist.pattern) [default: none, so
    /// ${env:} placeholders are refused].
    #[arg(
        long,
        env = "SLUICE_CONFIG_PROVIDER_ENV_ALLOWLIST",
        value_name = "REGEX"
    )]
    pub config_provider_env_allowlist: Option<String>,

    /// Which producer.override.* / consumer.override.* keys connectors may
    /// set: None, Principal (identity only) or All (Connect's default);
    /// delivery-safety settings are never overridable.
    #[arg(
        long,
        env = "SLUICE_CONNECTOR_CLIENT_CONFIG_OVERRIDE_POLICY",
        value_name = "POLICY"
    )]
    pub connector_client_config_override_policy: Option<String>,

    /// Require HTTP basic auth on the REST API (all but /health) against
    /// this file of `user: password` lines, the format Kafka Connect's
    /// BasicAuthSecurityRestExtension reads.
    #[arg(long, env = "SLUICE_REST_BASIC_AUTH_FILE", value_name = "FILE")]
    pub rest_basic_auth_file: Option<PathBuf>,

    /// Also let in requests with `Authorization: Bearer <token>` for a
    /// token of this file (one per line); alone, it requires a token.
    #[arg(long, env = "SLUICE_REST_BEARER_TOKENS_FILE", value_name = "FILE")]
    pub rest_bearer_tokens_file: Option<PathBuf>,

    /// Require HTTP basic auth on the embedded schema registry against this
    /// file of `user: password` lines (the worker's own converters log in
    /// as its first user when they use the embedded registry).
    #[arg(long, env = "SLUICE_REGISTRY_BASIC_AUTH_FILE", value_name = "FILE")]
    pub registry_basic_auth_file: Option<PathBuf>,

    /// Also let in registry requests with `Authorization: Bearer <token>`
    /// for a token of this file (one per line).
    #[arg(long, env = "SLUICE_REGISTRY_BEARER_TOKENS_FILE", value_name = "FILE")]
    pub registry_bearer_tokens_file: Option<PathBuf>,

    /// Serve the REST API (and the embedded registry) over HTTPS with this
    /// PEM certificate chain; needs --rest-tls-key (Connect's
    /// listeners=https://…).
    #[arg(long, env = "SLUICE_REST_TLS_CERT", value_name = "FILE")]
    pub rest_tls_cert: Option<PathBuf>,

    /// The PEM private key of --rest-tls-cert.
    #[arg(long, env = "SLUICE_REST_TLS_KEY", value_name = "FILE")]
    pub rest_tls_key: Option<PathBuf>,

    /// PEM certificates (a private CA) to trust, besides the system's, when
    /// this worker forwards a request to another worker of its group over
    /// HTTPS (with --rest-tls-cert the group's workers talk HTTPS).
    #[arg(long, env = "SLUICE_REST_FORWARD_CA", value_name = "FILE")]
    pub rest_forward_ca: Option<PathBuf>,

    /// Where connector configs and offsets are kept; survives `kill -9`
    /// [default: ./sluice-state].
    #[arg(long, env = "SLUICE_STATE_DIR", value_name = "DIR")]
    pub state_dir: Option<PathBuf>,

    /// Join the group of workers with this id (Connect's group.id): connector
    /// configs, source offsets and statuses are kept in Kafka topics in
    /// Connect's formats instead of --state-dir [default: none, standalone].
    #[arg(long, env = "SLUICE_GROUP_ID", value_name = "ID")]
    pub group_id: Option<String>,

    /// With --group-id: the topic of connector configs [default: connect-configs].
    #[arg(long, env = "SLUICE_CONFIG_STORAGE_TOPIC", value_name = "TOPIC")]
    pub config_storage_topic: Option<String>,

    /// With --group-id: the topic of source offsets [default: connect-offsets].
    #[arg(long, env = "SLUICE_OFFSET_STORAGE_TOPIC", value_name = "TOPIC")]
    pub offset_storage_topic: Option<String>,

    /// With --group-id: the topic of statuses [default: connect-status].
    #[arg(long, env = "SLUICE_STATUS_STORAGE_TOPIC", value_name = "TOPIC")]
    pub status_storage_topic: Option<String>,

    /// Replication factor of the config topic when sluice creates it; -1
    /// uses the broker's default [default: -1].
    #[arg(
        long,
        env = "SLUICE_CONFIG_STORAGE_REPLICATION_FACTOR",
        value_name = "N"
    )]
    pub config_storage_replication_factor: Option<i32>,

    /// Replication factor of the offset topic when sluice creates it
    /// [default: -1].
    #[arg(
        long,
        env = "SLUICE_OFFSET_STORAGE_REPLICATION_FACTOR",
        value_name = "N"
    )]
    pub offset_storage_replication_factor: Option<i32>,

    /// Replication factor of the status topic when sluice creates it
    /// [default: -1].
    #[arg(
        long,
        env = "SLUICE_STATUS_STORAGE_REPLICATION_FACTOR",
        value_name = "N"
    )]
    pub status_storage_replication_factor: Option<i32>,

    /// With --group-id and --registry-listen: the topic the embedded schema
    /// registry keeps its schemas in, shared by the group (Confluent's
    /// kafkastore.topic format) [default: _schemas].
    #[arg(long, env = "SLUICE_REGISTRY_TOPIC", value_name = "TOPIC")]
    pub registry_topic: Option<String>,

    /// Partitions of the offset topic when sluice creates it [default: 25].
    #[arg(long, env = "SLUICE_OFFSET_STORAGE_PARTITIONS", value_name = "N")]
    pub offset_storage_partitions: Option<i32>,

    /// Partitions of the status topic when sluice creates it [default: 5].
    #[arg(long, env = "SLUICE_STATUS_STORAGE_PARTITIONS", value_name = "N")]
    pub status_storage_partitions: Option<i32>,

    /// With --group-id: deliver source records exactly once (Connect's
    /// exactly.once.source.support): each task writes its records and the
    /// offsets they reach in one Kafka transaction, and a task started on
    /// another worker fences the old one. disabled, preparing (the same as
    /// disabled here) or enabled; enabled needs a broker with transactions
    /// [default: disabled].
    #[arg(long, env = "SLUICE_EXACTLY_ONCE_SOURCE_SUPPORT", value_name = "MODE")]
    pub exactly_once_source_support: Option<String>,

    /// How often acknowledged source offsets are stored, in ms; smaller
    /// means fewer repeats after a crash [default: 5000].
    #[arg(long, env = "SLUICE_OFFSET_FLUSH_INTERVAL_MS", value_name = "MS")]
    pub offset_flush_interval_ms: Option<u64>,

    /// Partitions of topics sluice creates [default: 1].
    #[arg(long, env = "SLUICE_TOPIC_PARTITIONS", value_name = "N")]
    pub topic_partitions: Option<i32>,

    /// Replication factor of topics sluice creates; -1 uses the broker's
    /// default [default: -1].
    #[arg(long, env = "SLUICE_TOPIC_REPLICATION_FACTOR", value_name = "N")]
    pub topic_replication_factor: Option<i32>,

    /// Producer compression: none, gzip, snappy, lz4 or zstd [default: lz4].
    #[arg(long, env = "SLUICE_COMPRESSION", value_name = "CODEC")]
    pub compression: Option<String>,

    /// Default converter for keys, overridable per connector with
    /// key.converter [default: org.apache.kafka.connect.json.JsonConverter].
    #[arg(long, env = "SLUICE_KEY_CONVERTER", value_name = "CLASS")]
    pub key_converter: Option<String>,

    /// Default converter for values, overridable per connector with
    /// value.converter [default: org.apache.kafka.connect.json.JsonConverter].
    #[arg(long, env = "SLUICE_VALUE_CONVERTER", value_name = "CLASS")]
    pub value_converter: Option<String>,

    /// Extra librdkafka producer property, KEY=VALUE; repeatable (e.g.
    /// security.protocol=SASL_SSL). Delivery-safety settings cannot be
    /// overridden.
    #[arg(long = "producer-property", value_name = "KEY=VALUE")]
    pub producer_properties: Vec<String>,

    /// Kafka client property for every client the worker makes (producer,
    /// sink consumers, admin), KEY=VALUE; repeatable. For security, in
    /// Connect's names (security.protocol, sasl.mechanism,
    /// sasl.jaas.config, ssl.truststore.location, ...) or librdkafka's.
    #[arg(long = "kafka-property", value_name = "KEY=VALUE")]
    pub kafka_properties: Vec<String>,

    /// Log format: text or json [default: text].
    #[arg(long, env = "SLUICE_LOG_FORMAT", value_name = "FORMAT")]
    pub log_format: Option<String>,

    /// Serve the embedded Confluent-compatible schema registry on this
    /// address (schemas kept in the state directory); the Avro converter
    /// then uses it unless --schema-registry-url points elsewhere.
    #[arg(long, env = "SLUICE_REGISTRY_LISTEN", value_name = "ADDR:PORT")]
    pub registry_listen: Option<SocketAddr>,

    /// Schema registry URL(s) for the Avro converter, comma-separated;
    /// per connector `*.converter.schema.registry.url` wins.
    #[arg(long, env = "SLUICE_SCHEMA_REGISTRY_URL", value_name = "URL")]
    pub schema_registry_url: Option<String>,
}

/// `base` with each `KEY=VALUE` of `pairs` set over it.
pub fn with_pairs(
    mut base: BTreeMap<String, String>,
    pairs: &[String],
    flag: &'static str,
) -> Result<BTreeMap<String, String>, WorkerConfigError> {
    for pair in pairs {
        let (k, v) = pair
            .split_once('=')
            .ok_or_else(|| WorkerConfigError::Invalid {
                key: flag,
                message: format!("{pair} is not KEY=VALUE"),
            })?;
        base.insert(k.trim().to_owned(), v.trim().to_owned());
    }
    Ok(base)
}

/// The `--config` file's shape.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct WorkerFile {
    bootstrap_servers: Option<String>,
    rest_listen: Option<SocketAddr>,
    rest_advertised: Option<String>,
    rest_basic_auth_file: Option<PathBuf>,
    rest_bearer_tokens_file: Option<PathBuf>,
    registry_basic_auth_file: Option<PathBuf>,
    registry_bearer_tokens_file: Option<PathBuf>,
    rest_tls_cert: Option<PathBuf>,
    rest_tls_key: Option<PathBuf>,
    rest_forward_ca: Option<PathBuf>,
    #[serde(default)]
    config_provider_file_allowed_paths: Vec<PathBuf>,
    config_provider_env_allowlist: Option<String>,
    connector_client_config_override_policy: Option<String>,
    state_dir: Option<PathBuf>,
    group_id: Option<String>,
    config_storage_topic: Option<String>,
    offset_storage_topic: Option<String>,
    status_storage_topic: Option<String>,
    registry_topic: Option<String>,
    config_storage_replication_factor: Option<i32>,
    offset_storage_replication_factor: Option<i32>,
    status_storage_replication_factor: Option<i32>,
    offset_storage_partitions: Option<i32>,
    status_storage_partitions: Option<i32>,
    offset_flush_interval_ms: Option<u64>,
    exactly_once_source_support: Option<String>,
    topic_partitions: Option<i32>,
    topic_replication_factor: Option<i32>,
    compression: Option<String>,
    key_converter: Option<String>,
    value_converter: Option<String>,
    log_format: Option<String>,
    registry_listen: Option<SocketAddr>,
    schema_registry_url: Option<String>,
    #[serde(default)]
    producer: BTreeMap<String, String>,
    #[serde(default)]
    kafka: BTreeMap<String, String>,
    #[serde(default)]
    converters: BTreeMap<String, String>,
}

/// Resolved worker settings.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Kafka bootstrap servers.
    pub bootstrap_servers: String,
    /// REST listen address.
    pub rest_listen: SocketAddr,
    /// The worker id shown in statuses.
    pub rest_advertised: String,
    /// The REST API's credentials file, if it requires them.
    pub rest_basic_auth_file: Option<PathBuf>,
    /// The REST API's bearer tokens file, if it accepts tokens.
    pub rest_bearer_tokens_file: Option<PathBuf>,
    /// The embedded registry's credentials file, if it requires them.
    pub registry_basic_auth_file: Option<PathBuf>,
    /// The embedded registry's bearer tokens file, if it accepts tokens.
    pub registry_bearer_tokens_file: Option<PathBuf>,
    /// PEM certificate chain and key of the HTTPS listeners, if they
    /// serve TLS.
    pub rest_tls: Option<(PathBuf, PathBuf)>,
    /// Certificates trusted when forwarding to another worker over HTTPS.
    pub rest_forward_ca: Option<PathBuf>,
    /// Directories `${file:}` placeholders may read.
    pub config_provider_file_allowed_paths: Vec<PathBuf>,
    /// Variables `${env:}` placeholders may read.
    pub config_provider_env_allowlist: Option<String>,
    /// Which client overrides connectors may set.
    pub override_policy: crate::kafka::overrides::OverridePolicy,
    /// The state directory.
    pub state_dir: PathBuf,
    /// The group this worker belongs to and where it keeps its state;
    /// `None` for a standalone worker.
    pub group: Option<GroupSettings>,
    /// Whether source tasks deliver exactly once (a group only).
    pub exactly_once_source: bool,
    /// Offset store interval.
    pub offset_flush_interval: Duration,
    /// New topics' partitions.
    pub topic_partitions: i32,
    /// New topics' replication factor.
    pub topic_replication_factor: i32,
    /// Producer compression codec.
    pub compression: String,
    /// Converter defaults (`key.converter`, `value.converter.schemas.enable`, ...).
    pub converter_defaults: BTreeMap<String, String>,
    /// Extra producer properties.
    pub producer_properties: BTreeMap<String, String>,
    /// Properties of every Kafka client (security).
    pub kafka_properties: BTreeMap<String, String>,
    /// text or json.
    pub log_format: String,
    /// Where the embedded schema registry listens, if it runs.
    pub registry_listen: Option<SocketAddr>,
}

impl WorkerConfig {
    /// Merges flags and environment (already in `args`) over the file.
    pub fn resolve(args: &WorkerArgs) -> Result<Self, WorkerConfigError> {
        let file = match &args.config {
            Some(path) => read_file(path)?,
            None => WorkerFile::default(),
        };
        let group = resolve_group(args, &file)?;
        let bootstrap_servers = args
            .bootstrap_servers
            .clone()
            .or(file.bootstrap_servers)
            .ok_or(WorkerConfigError::Missing(
                "bootstrap-servers",
                "BOOTSTRAP_SERVERS",
            ))?;
        let rest_listen = args
            .rest_listen
            .or(file.rest_listen)
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8083)));
        let compression = args
            .compression
            .clone()
            .or(file.compression)
            .unwrap_or_else(|| "lz4".to_owned());
        if !["none", "gzip", "snappy", "lz4", "zstd"].contains(&compression.as_str()) {
            return Err(WorkerConfigError::Invalid {
                key: "compression",
                message: format!("{compression} is not one of none, gzip, snappy, lz4, zstd"),
            });
        }
        let log_format = args
            .log_format
            .clone()
            .or(file.log_format)
            .unwrap_or_else(|| "text".to_owned());
        if !["text", "json"].contains(&log_format.as_str()) {
            return Err(WorkerConfigError::Invalid {
                key: "log-format",
                message: format!("{log_format} is not text or json"),
            });
        }
        let producer_properties = with_pairs(
            file.producer,
            &args.producer_properties,
            "producer-property",
        )?;
        let kafka_properties = with_pairs(file.kafka, &args.kafka_properties, "kafka-property")?;
        let mut converter_defaults = file.converters;
        if let Some(c) = args.key_converter.clone().or(file.key_converter) {
            converter_defaults.insert("key.converter".into(), c);
        }
        if let Some(c) = args.value_converter.clone().or(file.value_converter) {
            converter_defaults.insert("value.converter".into(), c);
        }
        let registry_listen = args.registry_listen.or(file.registry_listen);
        let registry_url = args
            .schema_registry_url
            .clone()
            .or(file.schema_registry_url)
            .or_else(|| registry_listen.map(local_url));
        if let Some(url) = registry_url {
            for side in ["key", "value"] {
                converter_defaults
                    .entry(format!("{side}.converter.schema.registry.url"))
                    .or_insert_with(|| url.clone());
            }
        }
        let exactly_once_source = exactly_once_source(
            args.exactly_once_source_support
                .as_deref()
                .or(file.exactly_once_source_support.as_deref()),
            group.is_some(),
        )?;
        let topic_partitions = args.topic_partitions.or(file.topic_partitions).unwrap_or(1);
        if topic_partitions < 1 {
            return Err(WorkerConfigError::Invalid {
                key: "topic-partitions",
                message: "must be at least 1".into(),
            });
        }
        Ok(Self {
            bootstrap_servers,
            rest_advertised: args
                .rest_advertised
                .clone()
                .or(file.rest_advertised)
                .unwrap_or_else(|| advertised_default(rest_listen)),
            rest_basic_auth_file: args
                .rest_basic_auth_file
                .clone()
                .or(file.rest_basic_auth_file),
            rest_bearer_tokens_file: args
                .rest_bearer_tokens_file
                .clone()
                .or(file.rest_bearer_tokens_file),
            registry_basic_auth_file: args
                .registry_basic_auth_file
                .clone()
                .or(file.registry_basic_auth_file),
            registry_bearer_tokens_file: args
                .registry_bearer_tokens_file
                .clone()
                .or(file.registry_bearer_tokens_file),
            rest_tls: match (
                args.rest_tls_cert.clone().or(file.rest_tls_cert),
                args.rest_tls_key.clone().or(file.rest_tls_key),
            ) {
                (Some(cert), Some(key)) => Some((cert, key)),
                (None, None) => None,
                (Some(_), None) | (None, Some(_)) => {
                    return Err(WorkerConfigError::Invalid {
                        key: "rest-tls-cert / rest-tls-key",
                        message: "set both (a PEM certificate chain and its key) or neither".into(),
                    })
                }
            },
            rest_forward_ca: args.rest_forward_ca.clone().or(file.rest_forward_ca),
            config_provider_file_allowed_paths: if args
                .config_provider_file_allowed_paths
                .is_empty()
            {
                file.config_provider_file_allowed_paths
            } else {
                args.config_provider_file_allowed_paths.clone()
            },
            config_provider_env_allowlist: args
                .config_provider_env_allowlist
                .clone()
                .or(file.config_provider_env_allowlist),
            override_policy: match args
                .connector_client_config_override_policy
                .clone()
                .or(file.connector_client_config_override_policy)
            {
                None => crate::kafka::overrides::OverridePolicy::All,
                Some(text) => {
                    crate::kafka::overrides::OverridePolicy::parse(&text).ok_or_else(|| {
                        WorkerConfigError::Invalid {
                            key: "connector-client-config-override-policy",
                            message: format!("{text} is not None, Principal or All"),
                        }
                    })?
                }
            },
            rest_listen,
            state_dir: args
                .state_dir
                .clone()
                .or(file.state_dir)
                .unwrap_or_else(|| PathBuf::from("sluice-state")),
            group,
            exactly_once_source,
            offset_flush_interval: Duration::from_millis(
                args.offset_flush_interval_ms
                    .or(file.offset_flush_interval_ms)
                    .unwrap_or(5000)
                    .max(1),
            ),
            topic_partitions,
            topic_replication_factor: args
                .topic_replication_factor
                .or(file.topic_replication_factor)
                .unwrap_or(-1),
            compression,
            converter_defaults,
            producer_properties,
            kafka_properties,
            log_format,
            registry_listen,
        })
    }
}

/// Whether source tasks deliver exactly once, from Connect's
/// `exactly.once.source.support` value; only a group keeps offsets in the
/// Kafka topic a transaction can write them to.
fn exactly_once_source(value: Option<&str>, in_group: bool) -> Result<bool, WorkerConfigError> {
    let invalid = |message: String| WorkerConfigError::Invalid {
        key: "exactly-once-source-support",
        message,
    };
    let enabled = match value.map(|v| v.trim().to_ascii_lowercase()).as_deref() {
        None | Some("disabled") => return Ok(false),
        Some("preparing") => false,
        Some("enabled") => true,
        Some(other) => {
            return Err(invalid(format!(
                "{other} is not disabled, preparing or enabled"
            )))
        }
    };
    if !in_group {
        return Err(invalid("only takes effect with --group-id (offsets must be in a Kafka topic to be written in the records' transaction); set a group id, or drop this setting".into()));
    }
    Ok(enabled)
}

/// The group settings, or `None` when no group id is given (then no
/// storage setting may be given either: it would silently do nothing).
fn resolve_group(
    args: &WorkerArgs,
    file: &WorkerFile,
) -> Result<Option<GroupSettings>, WorkerConfigError> {
    use crate::store::kafka as k;
    let topic = |name: Option<&String>,
                 file: &Option<String>,
                 default: &str,
                 partitions: i32,
                 replication: Option<i32>| StateTopic {
        name: name
            .or(file.as_ref())
            .cloned()
            .unwrap_or_else(|| default.to_owned()),
        layout: TopicLayout::data(
            partitions,
            replication.unwrap_or(k::DEFAULT_STATE_REPLICATION_FACTOR),
        ),
    };
    let positive = |key: &'static str, n: Option<i32>, default: i32| match n {
        Some(n) if n < 1 => Err(WorkerConfigError::Invalid {
            key,
            message: "must be at least 1".into(),
        }),
        n => Ok(n.unwrap_or(default)),
    };
    let offset_partitions = positive(
        "offset-storage-partitions",
        args.offset_storage_partitions
            .or(file.offset_storage_partitions),
        k::DEFAULT_OFFSET_PARTITIONS,
    )?;
    let status_partitions = positive(
        "status-storage-partitions",
        args.status_storage_partitions
            .or(file.status_storage_partitions),
        k::DEFAULT_STATUS_PARTITIONS,
    )?;
    let group = GroupSettings {
        group_id: String::new(),
        configs: topic(
            args.config_storage_topic.as_ref(),
            &file.config_storage_topic,
            k::DEFAULT_CONFIG_TOPIC,
            // Connect requires exactly one: configs are read in write order.
            1,
            args.config_storage_replication_factor
                .or(file.config_storage_replication_factor),
        ),
        offsets: topic(
            args.offset_storage_topic.as_ref(),
            &file.offset_storage_topic,
            k::DEFAULT_OFFSET_TOPIC,
            offset_partitions,
            args.offset_storage_replication_factor
                .or(file.offset_storage_replication_factor),
        ),
        status: topic(
            args.status_storage_topic.as_ref(),
            &file.status_storage_topic,
            k::DEFAULT_STATUS_TOPIC,
            status_partitions,
            args.status_storage_replication_factor
                .or(file.status_storage_replication_factor),
        ),
        registry: topic(
            args.registry_topic.as_ref(),
            &file.registry_topic,
            crate::registry::cluster::DEFAULT_TOPIC,
            // One partition: schemas are replayed in the order written.
            1,
            args.config_storage_replication_factor
                .or(file.config_storage_replication_factor),
        ),
    };
    match args.group_id.clone().or(file.group_id.clone()) {
        Some(group_id) if group_id.trim().is_empty() => Err(WorkerConfigError::Invalid {
            key: "group-id",
            message: "must not be empty".into(),
        }),
        Some(group_id) => Ok(Some(GroupSettings { group_id, ..group })),
        None => {
            let given = [
                (
                    "config-storage-topic",
                    args.config_storage_topic.is_some() || file.config_storage_topic.is_some(),
                ),
                (
                    "offset-storage-topic",
                    args.offset_storage_topic.is_some() || file.offset_storage_topic.is_some(),
                ),
                (
                    "status-storage-topic",
                    args.status_storage_topic.is_some() || file.status_storage_topic.is_some(),
                ),
                (
                    "registry-topic",
                    args.registry_topic.is_some() || file.registry_topic.is_some(),
                ),
                (
                    "offset-storage-partitions",
                    args.offset_storage_partitions.is_some()
                        || file.offset_storage_partitions.is_some(),
                ),
                (
                    "status-storage-partitions",
                    args.status_storage_partitions.is_some()
                        || file.status_storage_partitions.is_some(),
                ),
                (
                    "config-storage-replication-factor",
                    args.config_storage_replication_factor.is_some()
                        || file.config_storage_replication_factor.is_some(),
                ),
                (
                    "offset-storage-replication-factor",
                    args.offset_storage_replication_factor.is_some()
                        || file.offset_storage_replication_factor.is_some(),
                ),
                (
                    "status-storage-replication-factor",
                    args.status_storage_replication_factor.is_some()
                        || file.status_storage_replication_factor.is_some(),
                ),
            ];
            match given.iter().find(|(_, set)| *set) {
                Some((key, _)) => Err(WorkerConfigError::Invalid {
                    key,
                    message: "only takes effect with --group-id; set a group id to keep state in Kafka, or drop this setting to keep it in --state-dir".into(),
                }),
                None => Ok(None),
            }
        }
    }
}

/// The address other workers and clients reach this one at, when not
/// given: the listen address, or for a wildcard one this machine's host
/// name (as Connect's `rest.advertised.host.name` defaults), since a
/// worker id must name one worker of a group and be reachable.
fn advertised_default(listen: SocketAddr) -> String {
    if !listen.ip().is_unspecified() {
        return listen.to_string();
    }
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty());
    match host {
        Some(host) => format!("{host}:{}", listen.port()),
        None => listen.to_string(),
    }
}

/// The URL a local client uses for a listen address (a wildcard listen
/// address is reached on loopback).
/// The URL the worker's own clients reach a server listening on `listen` at.
pub(crate) fn local_url(listen: SocketAddr) -> String {
    if listen.ip().is_unspecified() {
        format!("http://127.0.0.1:{}", listen.port())
    } else {
        format!("http://{listen}")
    }
}

fn read_file(path: &Path) -> Result<WorkerFile, WorkerConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| WorkerConfigError::Read {
        path: path.display().to_string(),
        source,
    })?;
    toml::from_str(&text).map_err(|e| WorkerConfigError::Parse {
        path: path.display().to_string(),
        message: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_win_over_the_file_and_defaults_fill_the_rest() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("worker.toml");
        std::fs::write(
            &path,
            "bootstrap-servers = \"file:9092\"\nstate-dir = \"/from/file\"\n[producer]\n\"linger.ms\" = \"20\"\n",
        )
        .expect("write");
        let args = WorkerArgs {
            config: Some(path),
            bootstrap_servers: Some("flag:9092".into()),
            ..Default::default()
        };
        let config = WorkerConfig::resolve(&args).expect("valid");
        assert_eq!(config.bootstrap_servers, "flag:9092");
        assert_eq!(config.state_dir, PathBuf::from("/from/file"));
        assert_eq!(config.rest_listen.to_string(), "127.0.0.1:8083");
        assert_eq!(config.producer_properties["linger.ms"], "20");
    }

    #[test]
    fn embedded_registry_becomes_the_converters_default() {
        let args = WorkerArgs {
            bootstrap_servers: Some("b:9092".into()),
            registry_listen: Some("0.0.0.0:8081".parse().expect("addr")),
            ..Default::default()
        };
        let config = WorkerConfig::resolve(&args).expect("valid");
        assert_eq!(
            config.converter_defaults["value.converter.schema.registry.url"],
            "http://127.0.0.1:8081"
        );
        let args = WorkerArgs {
            schema_registry_url: Some("http://elsewhere:8081".into()),
            ..args
        };
        let config = WorkerConfig::resolve(&args).expect("valid");
        assert_eq!(
            config.converter_defaults["key.converter.schema.registry.url"],
            "http://elsewhere:8081"
        );
    }

    #[test]
    fn missing_bootstrap_servers_says_how_to_set_it() {
        let err = WorkerConfig::resolve(&WorkerArgs::default()).expect_err("missing");
        assert!(err.to_string().contains("--bootstrap-servers"), "{err}");
        assert!(
            err.to_string().contains("SLUICE_BOOTSTRAP_SERVERS"),
            "{err}"
        );
    }

    #[test]
    fn unknown_file_keys_are_rejected_with_the_file_name() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("worker.toml");
        std::fs::write(&path, "bootstrap-server = \"typo:9092\"\n").expect("write");
        let args = WorkerArgs {
            config: Some(path),
            ..Default::default()
        };
        let err = WorkerConfig::resolve(&args).expect_err("typo");
        assert!(err.to_string().contains("worker.toml"), "{err}");
    }
}

#[cfg(test)]
mod group_tests {
    use super::*;

    fn args() -> WorkerArgs {
        WorkerArgs {
            bootstrap_servers: Some("b:9092".into()),
            ..Default::default()
        }
    }

    #[test]
    fn a_group_id_keeps_state_in_connects_default_topics() {
        assert_eq!(WorkerConfig::resolve(&args()).expect("valid").group, None);
        let config = WorkerConfig::resolve(&WorkerArgs {
            group_id: Some("connect-cluster".into()),
            offset_storage_partitions: Some(50),
            ..args()
        })
        .expect("valid");
        let group = config.group.expect("a group");
        assert_eq!(group.group_id, "connect-cluster");
        assert_eq!(group.configs.name, "connect-configs");
        assert_eq!(group.configs.layout.partitions, 1);
        assert_eq!(group.offsets.name, "connect-offsets");
        assert_eq!(group.offsets.layout.partitions, 50);
        assert_eq!(group.status.name, "connect-status");
        assert_eq!(group.status.layout.partitions, 5);
        assert_eq!(group.status.layout.replication_factor, -1);
    }

    #[test]
    fn a_wildcard_listen_address_is_advertised_by_host_name() {
        let config = WorkerConfig::resolve(&WorkerArgs {
            rest_listen: Some("0.0.0.0:8083".parse().expect("addr")),
            ..args()
        })
        .expect("valid");
        assert!(config.rest_advertised.ends_with(":8083"));
        assert!(
            !config.rest_advertised.starts_with("0.0.0.0"),
            "{}",
            config.rest_advertised
        );
        let config = WorkerConfig::resolve(&args()).expect("valid");
        assert_eq!(config.rest_advertised, "127.0.0.1:8083");
    }

    #[test]
    fn group_settings_come_from_the_worker_file_too() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("worker.toml");
        std::fs::write(
            &path,
            "group-id = \"g\"\noffset-storage-topic = \"offs\"\nregistry-topic = \"schemas\"\nconfig-storage-replication-factor = 3\n",
        )
        .expect("write");
        let config = WorkerConfig::resolve(&WorkerArgs {
            config: Some(path),
            ..args()
        })
        .expect("valid");
        let group = config.group.expect("a group");
        assert_eq!(group.group_id, "g");
        assert_eq!(group.offsets.name, "offs");
        assert_eq!(group.registry.name, "schemas");
        assert_eq!(group.configs.layout.replication_factor, 3);
        assert_eq!(group.configs.name, "connect-configs");
    }

    #[test]
    fn storage_settings_without_a_group_are_refused_not_ignored() {
        let err = WorkerConfig::resolve(&WorkerArgs {
            offset_storage_topic: Some("connect-offsets".into()),
            ..args()
        })
        .expect_err("no group");
        assert!(err.to_string().contains("offset-storage-topic"), "{err}");
        assert!(err.to_string().contains("--group-id"), "{err}");
        let err = WorkerConfig::resolve(&WorkerArgs {
            group_id: Some(" ".into()),
            ..args()
        })
        .expect_err("empty");
        assert!(err.to_string().contains("group-id"), "{err}");
    }

    #[test]
    fn exactly_once_source_support_takes_connects_values_and_needs_a_group() {
        let with = |value: &str, group: Option<&str>| {
            WorkerConfig::resolve(&WorkerArgs {
                exactly_once_source_support: Some(value.into()),
                group_id: group.map(Into::into),
                ..args()
            })
        };
        assert!(
            with("enabled", Some("g"))
                .expect("valid")
                .exactly_once_source
        );
        assert!(
            !with("preparing", Some("g"))
                .expect("valid")
                .exactly_once_source
        );
        assert!(!with("disabled", None).expect("valid").exactly_once_source);
        assert!(
            !WorkerConfig::resolve(&args())
                .expect("valid")
                .exactly_once_source
        );
        let err = with("enabled", None).expect_err("no group");
        assert!(err.to_string().contains("--group-id"), "{err}");
        let err = with("on", Some("g")).expect_err("not a mode");
        assert!(
            err.to_string().contains("disabled, preparing or enabled"),
            "{err}"
        );
    }
}
