//! The connector's settings, with Debezium's PostgreSQL connector keys and
//! defaults so a Debezium config works unchanged.

use std::time::Duration;

use sluice_connector_api::{ConfigDef, ConfigError, ConfigKey, ConfigType, ConnectorConfig};

use crate::tls::{SslMode, Tls, TlsFiles, TlsSetupError};
use sluice_connector_api::column_mapping::ColumnMappers;
use sluice_connector_api::filters::Filters;
pub use sluice_connector_api::modes::{BinaryMode, DecimalMode, FailureHandling, SnapshotMode};
use sluice_connector_api::snapshot_select::SnapshotSelects;
use sluice_connector_api::source_settings::{
    SourceSettings, GROUP_CAPTURE, GROUP_CONNECTION, GROUP_EVENTS, GROUP_SNAPSHOT,
};
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
    /// The keys every source shares (password, heartbeats, batching, the
    /// shape of events).
    pub common: SourceSettings,
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
    /// `status.update.interval.ms`: how often the walsender hears from the
    /// connector (and, when it has been quiet, is asked to answer).
    pub status_interval: Duration,
    /// `time.precision.mode`
    pub time_precision: TimePrecision,
    /// `interval.handling.mode=string`
    pub interval_text: bool,
    /// `hstore.handling.mode=map`
    pub hstore_map: bool,
    /// `money.fraction.digits`
    pub money_digits: u32,
    /// `unavailable.value.placeholder`: stands for unchanged TOASTed values.
    pub unavailable_placeholder: String,
    /// `column.mask.*`, `column.truncate.*`, `column.propagate.source.type`,
    /// `datatype.propagate.source.type`.
    pub column_mappers: ColumnMappers,
    /// `snapshot.select.statement.overrides` and its per-table statements.
    pub snapshot_selects: std::sync::Arc<SnapshotSelects>,
}

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
        .define(key("message.prefix.include.list", ConfigType::List, "Regular expressions of logical decoding message prefixes to emit on <prefix>.message (all when unset).", GROUP_CAPTURE))
        .define(key("message.prefix.exclude.list", ConfigType::List, "Regular expressions of logical decoding message prefixes not to emit.", GROUP_CAPTURE))
        .define(key("message.key.columns", ConfigType::String, "Key columns for tables, `schema.table:col1,col2;schema.table2:col`, instead of the primary key.", GROUP_CAPTURE))
        .define(key("slot.name", ConfigType::String, "Logical replication slot.", GROUP_CAPTURE).default("debezium").validator(identifier))
        .define(key("publication.name", ConfigType::String, "Publication pgoutput streams.", GROUP_CAPTURE).default("dbz_publication").validator(identifier))
        .define(key("publication.autocreate.mode", ConfigType::String, "all_tables, filtered or disabled.", GROUP_CAPTURE).default("all_tables").allowed(&["all_tables", "filtered", "disabled"]))
        .define(key("slot.drop.on.stop", ConfigType::Boolean, "Drop the slot when the connector stops (loses the position).", GROUP_CAPTURE).default("false"))
        .define(key("plugin.name", ConfigType::String, "Logical decoding plugin; only pgoutput.", GROUP_CAPTURE).default("pgoutput").allowed(&["pgoutput"]))
        .define(key("snapshot.mode", ConfigType::String, "initial, no_data (never), initial_only, always or when_needed.", GROUP_SNAPSHOT).default("initial").allowed(&["initial", "no_data", "never", "initial_only", "always", "when_needed"]))
        .define(key("status.update.interval.ms", ConfigType::Long, "How often the walsender is sent the connector's position; a server quiet that long is asked to answer, and one that stays silent for six intervals is taken for a dead (half-open) connection and reconnected.", GROUP_CAPTURE).default("10000").validator(positive))
        .define(key("time.precision.mode", ConfigType::String, "adaptive, adaptive_time_microseconds or connect.", GROUP_EVENTS).default("adaptive").allowed(&["adaptive", "adaptive_time_microseconds", "connect"]))
        .define(key("interval.handling.mode", ConfigType::String, "numeric (microseconds, io.debezium.time.MicroDuration) or string (ISO 8601, io.debezium.time.Interval).", GROUP_EVENTS).default("numeric").allowed(&["numeric", "string"]))
        .define(key("money.fraction.digits", ConfigType::Int, "Scale of money values written as decimals.", GROUP_EVENTS).default("2"))
        .define(key("hstore.handling.mode", ConfigType::String, "json (text) or map.", GROUP_EVENTS).default("json").allowed(&["json", "map"]))
        .define(key("unavailable.value.placeholder", ConfigType::String, "Stands for unchanged TOASTed values.", GROUP_EVENTS).default("__debezium_unavailable_value"))
        .merge(sluice_connector_api::source_settings::definition())
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
        let definition = definition();
        definition.check(config)?;
        let settings = definition.read(config);
        let tls = tls(config)?;
        let port = u16::try_from(settings.long("database.port")?)
            .map_err(|_| ConfigError::new("database.port", "must be between 1 and 65535"))?;
        Ok(Self {
            host: settings.required("database.hostname")?,
            port,
            user: settings.required("database.user")?,
            common: SourceSettings::read(&settings)?,
            dbname: settings.required("database.dbname")?,
            tls,
            topic_prefix: settings.required("topic.prefix")?,
            topics: TopicNaming::from_config(config)?,
            filters: filters(config)?,
            slot_name: settings.text("slot.name")?,
            publication_name: settings.text("publication.name")?,
            publication_mode: match settings.text("publication.autocreate.mode")?.as_str() {
                "filtered" => PublicationMode::Filtered,
                "disabled" => PublicationMode::Disabled,
                _ => PublicationMode::AllTables,
            },
            slot_drop_on_stop: settings.boolean("slot.drop.on.stop")?,
            snapshot_mode: SnapshotMode::from_text(&settings.text("snapshot.mode")?),
            status_interval: settings
                .millis("status.update.interval.ms")?
                .max(Duration::from_millis(1)),
            time_precision: match settings.text("time.precision.mode")?.as_str() {
                "adaptive_time_microseconds" => TimePrecision::AdaptiveTimeMicroseconds,
                "connect" => TimePrecision::Connect,
                _ => TimePrecision::Adaptive,
            },
            interval_text: settings.text("interval.handling.mode")? == "string",
            hstore_map: settings.text("hstore.handling.mode")? == "map",
            money_digits: u32::try_from(settings.long("money.fraction.digits")?)
                .map_err(|_| ConfigError::new("money.fraction.digits", "must be 0 or more"))?,
            unavailable_placeholder: settings.text("unavailable.value.placeholder")?,
            column_mappers: ColumnMappers::from_config(config)?,
            snapshot_selects: std::sync::Arc::new(SnapshotSelects::from_config(config)?),
        })
    }
}
