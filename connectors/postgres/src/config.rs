//! The connector's settings, with Debezium's PostgreSQL connector keys and
//! defaults so a Debezium config works unchanged.

use std::time::Duration;

use sluice_connector_api::config::bounds;
use sluice_connector_api::{ConfigDef, ConfigError, ConfigKey, ConfigType, ConnectorConfig};

use crate::tls::{SslMode, Tls, TlsFiles, TlsSetupError};
use sluice_connector_api::column_mapping::ColumnMappers;
use sluice_connector_api::filters::Filters;
pub use sluice_connector_api::modes::{BinaryMode, DecimalMode, FailureHandling, SnapshotMode};
use sluice_connector_api::snapshot_select::SnapshotSelects;
use sluice_connector_api::topic_naming::TopicNaming;

/// What `publication.autocreate.mode` allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PublicationMode {
    /// Create the publication `FOR ALL TABLES` when missing.
    AllTables,
    /// Create (or update) it for the included tables.
    Filtered,
    /// Require it to exist.
    Disabled,
}

/// How temporal values are emitted (`time.precision.mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimePrecision {
    /// Debezium types by column precision.
    Adaptive,
    /// Like adaptive, but every TIME in microseconds.
    AdaptiveTimeMicroseconds,
    /// Connect's Date/Time/Timestamp (milliseconds).
    Connect,
}

/// Parsed settings.
#[derive(Debug, Clone)]
pub struct PostgresConfig {
    /// `database.hostname`
    pub host: String,
    /// `database.port`
    pub port: u16,
    /// `database.user`
    pub user: String,
    /// `database.password`
    pub password: String,
    /// `database.dbname`
    pub dbname: String,
    /// `database.sslmode` with `database.sslrootcert|sslcert|sslkey`.
    pub tls: Tls,
    /// `topic.prefix`: topics are `<prefix>.<schema>.<table>`.
    pub topic_prefix: String,
    /// Topic names from `topic.prefix`, `topic.delimiter`,
    /// `topic.heartbeat.prefix` and `topic.transaction`.
    pub topics: TopicNaming,
    /// Which tables and columns are captured.
    pub filters: Filters,
    /// `slot.name`
    pub slot_name: String,
    /// `publication.name`
    pub publication_name: String,
    /// `publication.autocreate.mode`
    pub publication_mode: PublicationMode,
    /// `slot.drop.on.stop`
    pub slot_drop_on_stop: bool,
    /// `snapshot.mode`
    pub snapshot_mode: SnapshotMode,
    /// `snapshot.max.threads`
    pub snapshot_threads: usize,
    /// `snapshot.fetch.size`
    pub snapshot_fetch_size: usize,
    /// `tombstones.on.delete`
    pub tombstones_on_delete: bool,
    /// `heartbeat.interval.ms` (zero: off)
    pub heartbeat_interval: Duration,
    /// `heartbeat.action.query`
    pub heartbeat_action_query: Option<String>,
    /// `status.update.interval.ms`: how often the walsender hears from the
    /// connector (and, when it has been quiet, is asked to answer).
    pub status_interval: Duration,
    /// `decimal.handling.mode`
    pub decimal_mode: DecimalMode,
    /// `time.precision.mode`
    pub time_precision: TimePrecision,
    /// `binary.handling.mode`
    pub binary_mode: BinaryMode,
    /// `interval.handling.mode=string`
    pub interval_text: bool,
    /// `hstore.handling.mode=map`
    pub hstore_map: bool,
    /// `money.fraction.digits`
    pub money_digits: u32,
    /// `event.processing.failure.handling.mode`
    pub failure_handling: FailureHandling,
    /// `skip.messages.without.change`
    pub skip_unchanged: bool,
    /// `provide.transaction.metadata`
    pub transaction_metadata: bool,
    /// `max.batch.size`
    pub max_batch_size: usize,
    /// `max.queue.size`
    pub max_queue_size: usize,
    /// `unavailable.value.placeholder`: stands for unchanged TOASTed values.
    pub unavailable_placeholder: String,
    /// `skipped.operations`: op codes not emitted (`t` by default, as Debezium).
    pub skipped_operations: Vec<char>,
    /// `column.mask.*`, `column.truncate.*`, `column.propagate.source.type`,
    /// `datatype.propagate.source.type`.
    pub column_mappers: ColumnMappers,
    /// `snapshot.select.statement.overrides` and its per-table statements.
    pub snapshot_selects: std::sync::Arc<SnapshotSelects>,
}

const GROUP_CONNECTION: &str = "Connection";
const GROUP_CAPTURE: &str = "Capture";
const GROUP_SNAPSHOT: &str = "Snapshot";
const GROUP_EVENTS: &str = "Events";

fn positive(raw: &str) -> Result<(), String> {
    match raw.trim().parse::<i64>() {
        Ok(v) if v > 0 => Ok(()),
        _ => Err("must be a whole number greater than 0".to_owned()),
    }
}

fn identifier(raw: &str) -> Result<(), String> {
    let ok = !raw.is_empty()
        && raw.len() <= 63
        && raw
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if ok {
        Ok(())
    } else {
        Err("must be 1-63 characters of lower-case letters, digits and _ (PostgreSQL slot and publication names)".to_owned())
    }
}

/// The keys this connector understands.
pub fn definition() -> ConfigDef {
    let key = |name, ty, doc, group| ConfigKey::new(name, ty, doc).group(group);
    ConfigDef::new()
        .define(key("database.hostname", ConfigType::String, "PostgreSQL host.", GROUP_CONNECTION).required())
        .define(key("database.port", ConfigType::Int, "PostgreSQL port.", GROUP_CONNECTION).default("5432"))
        .define(key("database.user", ConfigType::String, "User with the REPLICATION attribute (and SELECT on captured tables).", GROUP_CONNECTION).required())
        .define(key("database.password", ConfigType::Password, "The user's password.", GROUP_CONNECTION).default(""))
        .define(key("database.dbname", ConfigType::String, "The database to capture.", GROUP_CONNECTION).required())
        .define(key("database.sslmode", ConfigType::String, "TLS as libpq: disable, allow/prefer (TLS when offered), require (always, unverified unless database.sslrootcert is set), verify-ca, verify-full (also checks the host name).", GROUP_CONNECTION).default("prefer").allowed(&["disable", "allow", "prefer", "require", "verify-ca", "verify-full"]))
        .define(key("database.sslrootcert", ConfigType::String, "PEM file of the CA certificate(s) the server's certificate must chain to.", GROUP_CONNECTION))
        .define(key("database.sslcert", ConfigType::String, "PEM file of the client certificate, for cert authentication.", GROUP_CONNECTION))
        .define(key("database.sslkey", ConfigType::String, "PEM file of the client certificate's unencrypted private key.", GROUP_CONNECTION))
        .define(key("topic.prefix", ConfigType::String, "Prefix of every topic: <prefix>.<schema>.<table>.", GROUP_CONNECTION).required())
        .define(key("schema.include.list", ConfigType::List, "Regular expressions of schemas to capture (all but system schemas when unset).", GROUP_CAPTURE))
        .define(key("schema.exclude.list", ConfigType::List, "Regular expressions of schemas not to capture.", GROUP_CAPTURE))
        .define(key("table.include.list", ConfigType::List, "Regular expressions of schema.table to capture.", GROUP_CAPTURE))
        .define(key("table.exclude.list", ConfigType::List, "Regular expressions of schema.table not to capture.", GROUP_CAPTURE))
        .define(key("column.include.list", ConfigType::List, "Regular expressions of schema.table.column to emit.", GROUP_CAPTURE))
        .define(key("column.exclude.list", ConfigType::List, "Regular expressions of schema.table.column not to emit.", GROUP_CAPTURE))
        .define(key("message.prefix.include.list", ConfigType::List, "Regular expressions of logical decoding message prefixes to emit on <prefix>.message (all when unset).", GROUP_CAPTURE))
        .define(key("message.prefix.exclude.list", ConfigType::List, "Regular expressions of logical decoding message prefixes not to emit.", GROUP_CAPTURE))
        .define(key("message.key.columns", ConfigType::String, "Key columns for tables, `schema.table:col1,col2;schema.table2:col`, instead of the primary key.", GROUP_CAPTURE))
        .define(key("slot.name", ConfigType::String, "Logical replication slot.", GROUP_CAPTURE).default("debezium").validator(identifier))
        .define(key("publication.name", ConfigType::String, "Publication pgoutput streams.", GROUP_CAPTURE).default("dbz_publication").validator(identifier))
        .define(key("publication.autocreate.mode", ConfigType::String, "all_tables, filtered or disabled.", GROUP_CAPTURE).default("all_tables").allowed(&["all_tables", "filtered", "disabled"]))
        .define(key("slot.drop.on.stop", ConfigType::Boolean, "Drop the slot when the connector stops (loses the position).", GROUP_CAPTURE).default("false"))
        .define(key("plugin.name", ConfigType::String, "Logical decoding plugin; only pgoutput.", GROUP_CAPTURE).default("pgoutput").allowed(&["pgoutput"]))
        .define(key("snapshot.mode", ConfigType::String, "initial, no_data (never), initial_only, always or when_needed.", GROUP_SNAPSHOT).default("initial").allowed(&["initial", "no_data", "never", "initial_only", "always", "when_needed"]))
        .define(key("snapshot.include.collection.list", ConfigType::List, "Regular expressions of the captured tables the snapshot reads (all when unset); the others are streamed only.", GROUP_SNAPSHOT))
        .define(key("snapshot.max.threads", ConfigType::Int, "Readers sharing the snapshot.", GROUP_SNAPSHOT).default("1").validator(bounds::threads))
        .define(key("snapshot.fetch.size", ConfigType::Int, "Rows fetched per round trip while snapshotting.", GROUP_SNAPSHOT).default("10240").validator(bounds::batch))
        .define(key("tombstones.on.delete", ConfigType::Boolean, "Follow each delete with a tombstone (null value) for compaction.", GROUP_EVENTS).default("true"))
        .define(key("heartbeat.interval.ms", ConfigType::Long, "Heartbeat records to __debezium-heartbeat.<prefix> (see topic.heartbeat.prefix); 0 disables.", GROUP_EVENTS).default("0"))
        .define(key("heartbeat.action.query", ConfigType::String, "SQL run at each heartbeat, so an idle database's slot advances.", GROUP_EVENTS))
        .define(key("status.update.interval.ms", ConfigType::Long, "How often the walsender is sent the connector's position; a server quiet that long is asked to answer, and one that stays silent for six intervals is taken for a dead (half-open) connection and reconnected.", GROUP_CAPTURE).default("10000").validator(positive))
        .define(key("decimal.handling.mode", ConfigType::String, "precise, double or string.", GROUP_EVENTS).default("precise").allowed(&["precise", "double", "string"]))
        .define(key("time.precision.mode", ConfigType::String, "adaptive, adaptive_time_microseconds or connect.", GROUP_EVENTS).default("adaptive").allowed(&["adaptive", "adaptive_time_microseconds", "connect"]))
        .define(key("binary.handling.mode", ConfigType::String, "bytea as bytes, base64, base64-url-safe or hex text.", GROUP_EVENTS).default("bytes").allowed(BinaryMode::ALLOWED))
        .define(key("interval.handling.mode", ConfigType::String, "numeric (microseconds, io.debezium.time.MicroDuration) or string (ISO 8601, io.debezium.time.Interval).", GROUP_EVENTS).default("numeric").allowed(&["numeric", "string"]))
        .define(key("skip.messages.without.change", ConfigType::Boolean, "Leave out updates that change none of the emitted columns (column.include.list / column.exclude.list); needs REPLICA IDENTITY FULL to see the old values.", GROUP_EVENTS).default("false"))
        .define(key("event.processing.failure.handling.mode", ConfigType::String, "A change whose values cannot be read: fail (the task stops, naming it), warn (skipped and logged) or skip.", GROUP_EVENTS).default("fail").allowed(FailureHandling::ALLOWED))
        .define(key("money.fraction.digits", ConfigType::Int, "Scale of money values written as decimals.", GROUP_EVENTS).default("2"))
        .define(key("hstore.handling.mode", ConfigType::String, "json (text) or map.", GROUP_EVENTS).default("json").allowed(&["json", "map"]))
        .define(key("provide.transaction.metadata", ConfigType::Boolean, "Fill each event's transaction block and write BEGIN / END events (with event counts per table) to <topic.prefix>.transaction (see topic.transaction).", GROUP_EVENTS).default("false"))
        .define(key("max.batch.size", ConfigType::Int, "Most events per poll.", GROUP_EVENTS).default("2048").validator(bounds::batch))
        .define(key("max.queue.size", ConfigType::Int, "Most events buffered ahead of the runtime.", GROUP_EVENTS).default("8192").validator(bounds::batch))
        .define(key("skipped.operations", ConfigType::List, "Operations not emitted: c, u, d, t; none emits all. Default t (truncates), as Debezium.", GROUP_EVENTS).default("t"))
        .define(key("unavailable.value.placeholder", ConfigType::String, "Stands for unchanged TOASTed values.", GROUP_EVENTS).default("__debezium_unavailable_value"))
        .merge(sluice_connector_api::column_mapping::definition())
        .merge(sluice_connector_api::snapshot_select::definition())
        .merge(sluice_connector_api::topic_naming::definition())
}

/// Schemas PostgreSQL keeps for itself; never captured.
const SYSTEM_SCHEMAS: &[&str] = &["pg_catalog", "information_schema", "pg_toast"];

/// The include/exclude lists, by schema.
pub fn filters(config: &ConnectorConfig) -> Result<Filters, ConfigError> {
    Filters::parse(config, "schema", SYSTEM_SCHEMAS)
}

/// `database.sslmode` and the certificate files, loaded now so a bad path
/// or a verifying mode without a CA is reported at validation.
pub fn tls(config: &ConnectorConfig) -> Result<Tls, ConfigError> {
    let text = |key: &str| {
        config
            .get(key)
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    let mode_text = text("database.sslmode").unwrap_or_else(|| "prefer".into());
    let mode = SslMode::parse(&mode_text).ok_or_else(|| {
        ConfigError::new(
            "database.sslmode",
            format!("{mode_text:?} is not one of disable, allow, prefer, require, verify-ca, verify-full"),
        )
    })?;
    let files = TlsFiles {
        key_prefix: "database.",
        root_cert: text("database.sslrootcert"),
        client_cert: text("database.sslcert"),
        client_key: text("database.sslkey"),
    };
    Tls::new(mode, &files).map_err(|e| {
        let key = match &e {
            TlsSetupError::File { what, .. } if what.contains("sslcert") => "database.sslcert",
            TlsSetupError::File { what, .. } if what.contains("sslkey") => "database.sslkey",
            TlsSetupError::File { .. } => "database.sslrootcert",
            _ => "database.sslmode",
        };
        ConfigError::new(key, e.to_string())
    })
}

impl PostgresConfig {
    /// Reads and checks the settings, naming the first bad key.
    pub fn parse(config: &ConnectorConfig) -> Result<Self, ConfigError> {
        definition().check(config)?;
        let text = |key: &str, default: &str| config.get(key).unwrap_or(default).trim().to_owned();
        let size = |key: &str, default: i64| -> Result<usize, ConfigError> {
            Ok(config.i64_or(key, default)?.max(1) as usize)
        };
        let tls = tls(config)?;
        let port = config.i64_or("database.port", 5432)?;
        let port = u16::try_from(port)
            .map_err(|_| ConfigError::new("database.port", "must be between 1 and 65535"))?;
        Ok(Self {
            host: config.required("database.hostname")?.to_owned(),
            port,
            user: config.required("database.user")?.to_owned(),
            password: config
                .get("database.password")
                .unwrap_or_default()
                .to_owned(),
            dbname: config.required("database.dbname")?.to_owned(),
            tls,
            topic_prefix: config.required("topic.prefix")?.to_owned(),
            topics: TopicNaming::from_config(config)?,
            filters: filters(config)?,
            slot_name: text("slot.name", "debezium"),
            publication_name: text("publication.name", "dbz_publication"),
            publication_mode: match text("publication.autocreate.mode", "all_tables").as_str() {
                "filtered" => PublicationMode::Filtered,
                "disabled" => PublicationMode::Disabled,
                _ => PublicationMode::AllTables,
            },
            slot_drop_on_stop: config.bool_or("slot.drop.on.stop", false)?,
            snapshot_mode: SnapshotMode::from_text(&text("snapshot.mode", "initial")),
            snapshot_threads: size("snapshot.max.threads", 1)?,
            snapshot_fetch_size: size("snapshot.fetch.size", 10240)?,
            tombstones_on_delete: config.bool_or("tombstones.on.delete", true)?,
            heartbeat_interval: Duration::from_millis(
                config.i64_or("heartbeat.interval.ms", 0)?.max(0) as u64,
            ),
            status_interval: Duration::from_millis(
                config.i64_or("status.update.interval.ms", 10_000)?.max(1) as u64,
            ),
            heartbeat_action_query: config
                .get("heartbeat.action.query")
                .map(str::trim)
                .filter(|q| !q.is_empty())
                .map(str::to_owned),
            decimal_mode: DecimalMode::from_text(&text("decimal.handling.mode", "precise")),
            time_precision: match text("time.precision.mode", "adaptive").as_str() {
                "adaptive_time_microseconds" => TimePrecision::AdaptiveTimeMicroseconds,
                "connect" => TimePrecision::Connect,
                _ => TimePrecision::Adaptive,
            },
            binary_mode: BinaryMode::from_text(&text("binary.handling.mode", "bytes")),
            interval_text: text("interval.handling.mode", "numeric") == "string",
            hstore_map: text("hstore.handling.mode", "json") == "map",
            money_digits: u32::try_from(config.i64_or("money.fraction.digits", 2)?)
                .map_err(|_| ConfigError::new("money.fraction.digits", "must be 0 or more"))?,
            skip_unchanged: config.bool_or("skip.messages.without.change", false)?,
            failure_handling: FailureHandling::from_text(&text(
                "event.processing.failure.handling.mode",
                "fail",
            )),
            transaction_metadata: config.bool_or("provide.transaction.metadata", false)?,
            max_batch_size: size("max.batch.size", 2048)?,
            max_queue_size: size("max.queue.size", 8192)?,
            skipped_operations: config
                .get("skipped.operations")
                .unwrap_or("t")
                .split(',')
                .filter_map(|op| match op.trim() {
                    "none" | "" => None,
                    op => op.chars().next(),
                })
                .collect(),
            unavailable_placeholder: text(
                "unavailable.value.placeholder",
                "__debezium_unavailable_value",
            ),
            column_mappers: ColumnMappers::from_config(config)?,
            snapshot_selects: std::sync::Arc::new(SnapshotSelects::from_config(config)?),
        })
    }
}
