//! The connector's settings, with Debezium's MySQL / MariaDB connector keys
//! and defaults so a Debezium config works unchanged.

use std::time::Duration;

use regex_lite::Regex;
use sluice_connector_api::filters::Filters;

use crate::boolean_columns::BooleanColumns;
use sluice_connector_api::column_mapping::ColumnMappers;
pub use sluice_connector_api::modes::{BinaryMode, DecimalMode, FailureHandling, SnapshotMode};
use sluice_connector_api::snapshot_select::SnapshotSelects;
use sluice_connector_api::source_settings::{
    SourceSettings, GROUP_CAPTURE, GROUP_CONNECTION, GROUP_EVENTS, GROUP_SNAPSHOT,
};
use sluice_connector_api::topic_naming::TopicNaming;
use sluice_connector_api::{ConfigDef, ConfigError, ConfigKey, ConfigType, ConnectorConfig};

/// How the snapshot is made consistent with the binlog (`snapshot.locking.mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockingMode {
    /// A global read lock held only while the snapshot transactions start
    /// and the binlog position is read (needs RELOAD).
    Minimal,
    /// No lock: consistent on MariaDB (the snapshot transaction reports its
    /// own binlog position); on MySQL only when no DDL runs meanwhile.
    None,
}

/// How temporal values are emitted (`time.precision.mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimePrecision {
    /// Debezium's types by column precision (`adaptive_time_microseconds`,
    /// the MySQL connector's default; `adaptive` behaves the same here).
    Adaptive,
    /// Connect's Date/Time/Timestamp (milliseconds).
    Connect,
}

/// How BIGINT UNSIGNED is emitted (`bigint.unsigned.handling.mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BigintUnsignedMode {
    /// int64 (values above 2^63-1 wrap, as Debezium's `long`).
    Long,
    /// Connect Decimal with scale 0, exact.
    Precise,
}

/// Parsed settings.
#[derive(Debug, Clone)]
pub struct MySqlConfig {
    /// `database.hostname`
    pub host: String,
    /// `database.port`
    pub port: u16,
    /// `database.user`
    pub user: String,
    /// The keys every source shares (password, heartbeats, batching, the
    /// shape of events).
    pub common: SourceSettings,
    /// `database.server.id`: this client's replica id, unique among replicas.
    pub server_id: u32,
    /// `database.ssl.mode`: disabled, preferred, required, verify_ca, verify_identity.
    pub ssl_mode: String,
    /// `database.ssl.truststore` as a PEM CA file (verify modes).
    pub ssl_ca: Option<String>,
    /// `topic.prefix`: topics are `<prefix>.<database>.<table>`.
    pub topic_prefix: String,
    /// Topic names from `topic.prefix`, `topic.delimiter`,
    /// `topic.heartbeat.prefix` and `topic.transaction`.
    pub topics: TopicNaming,
    /// Which databases, tables and columns are captured.
    pub filters: Filters,
    /// `converters`: the TINYINT columns emitted as booleans.
    pub booleans: BooleanColumns,
    /// `column.mask.*`, `column.truncate.*`, `column.propagate.source.type`,
    /// `datatype.propagate.source.type`.
    pub column_mappers: ColumnMappers,
    /// `snapshot.select.statement.overrides` and its per-table statements.
    pub snapshot_selects: std::sync::Arc<SnapshotSelects>,
    /// MySQL or MariaDB names, by `connector.class`.
    pub flavor: crate::flavor::Flavor,
    /// `snapshot.mode`
    pub snapshot_mode: SnapshotMode,
    /// `snapshot.locking.mode`
    pub locking_mode: LockingMode,
    /// `gtid.source.includes`: GTID sources kept in the offsets.
    pub gtid_includes: Vec<Regex>,
    /// `gtid.source.excludes`: GTID sources left out of the offsets.
    pub gtid_excludes: Vec<Regex>,
    /// `include.schema.changes`: DDL events on the `<prefix>` topic.
    pub include_schema_changes: bool,
    /// `schema.history.internal.kafka.topic`: where the schema history is kept.
    pub history_topic: String,
    /// `time.precision.mode`
    pub time_precision: TimePrecision,
    /// `bigint.unsigned.handling.mode`
    pub bigint_unsigned: BigintUnsignedMode,
    /// `include.query`: streamed changes carry their statement in `source.query`.
    pub include_query: bool,
    /// `connect.timeout.ms`
    pub connect_timeout: Duration,
}

/// Databases the server keeps for itself; never captured.
pub const SYSTEM_DATABASES: &[&str] = &["mysql", "sys", "information_schema", "performance_schema"];

fn positive(raw: &str) -> Result<(), String> {
    match raw.trim().parse::<i64>() {
        Ok(v) if v > 0 => Ok(()),
        _ => Err("must be a whole number greater than 0".to_owned()),
    }
}

fn server_id(raw: &str) -> Result<(), String> {
    match raw.trim().parse::<u64>() {
        Ok(v) if v > 0 && v <= u64::from(u32::MAX) => Ok(()),
        _ => Err("must be a whole number from 1 to 4294967295, unique among the server's replicas (and different from its own server_id)".to_owned()),
    }
}

/// The keys this connector understands.
pub fn definition() -> ConfigDef {
    let key = |name, ty, doc, group| ConfigKey::new(name, ty, doc).group(group);
    ConfigDef::new()
        .define(key("database.hostname", ConfigType::String, "MySQL / MariaDB host.", GROUP_CONNECTION).required())
        .define(key("database.port", ConfigType::Int, "MySQL / MariaDB port.", GROUP_CONNECTION).default("3306"))
        .define(key("database.user", ConfigType::String, "User with REPLICATION SLAVE, REPLICATION CLIENT, SELECT and (for snapshot.locking.mode=minimal) RELOAD.", GROUP_CONNECTION).required())
        .define(key("database.server.id", ConfigType::Long, "Replica id this connector uses to read the binlog; unique among the server's replicas.", GROUP_CONNECTION).required().validator(server_id))
        .define(key("database.ssl.mode", ConfigType::String, "disabled, preferred (TLS when offered), required, verify_ca or verify_identity (also checks the host name).", GROUP_CONNECTION).default("preferred").allowed(&["disabled", "preferred", "required", "verify_ca", "verify_identity"]))
        .define(key("database.ssl.truststore", ConfigType::String, "PEM file of the CA certificate(s) the server's certificate must chain to (verify_ca, verify_identity).", GROUP_CONNECTION))
        .define(key("connect.timeout.ms", ConfigType::Long, "How long to wait for a connection.", GROUP_CONNECTION).default("30000").validator(positive))
        .define(key("topic.prefix", ConfigType::String, "Prefix of every topic: <prefix>.<database>.<table>; also the schema-change topic.", GROUP_CONNECTION).required())
        .define(key("database.include.list", ConfigType::List, "Regular expressions of databases to capture (all but system databases when unset).", GROUP_CAPTURE))
        .define(key("database.exclude.list", ConfigType::List, "Regular expressions of databases not to capture.", GROUP_CAPTURE))
        .define(key("table.include.list", ConfigType::List, "Regular expressions of database.table to capture.", GROUP_CAPTURE))
        .define(key("table.exclude.list", ConfigType::List, "Regular expressions of database.table not to capture.", GROUP_CAPTURE))
        .define(key("message.key.columns", ConfigType::String, "Key columns for tables, `db.table:col1,col2;db.table2:col`, instead of the primary key.", GROUP_CAPTURE))
        .define(key("gtid.source.includes", ConfigType::List, "Regular expressions of GTID sources (MySQL server UUIDs, MariaDB domain-server ids) kept in the offsets.", GROUP_CAPTURE))
        .define(key("gtid.source.excludes", ConfigType::List, "Regular expressions of GTID sources left out of the offsets.", GROUP_CAPTURE))
        .define(key("include.schema.changes", ConfigType::Boolean, "Emit DDL as schema-change events on the <prefix> topic.", GROUP_CAPTURE).default("true"))
        .define(key("schema.history.internal.kafka.topic", ConfigType::String, "Topic that keeps the captured tables' schema history (default <prefix>.schema-history).", GROUP_CAPTURE))
        .define(key("schema.history.internal.kafka.bootstrap.servers", ConfigType::String, "Accepted for Debezium compatibility; the worker's broker is used.", GROUP_CAPTURE))
        .define(key("snapshot.mode", ConfigType::String, "initial, no_data (never, schema_only), initial_only, always or when_needed.", GROUP_SNAPSHOT).default("initial").allowed(&["initial", "no_data", "never", "schema_only", "initial_only", "always", "when_needed"]))
        .define(key("snapshot.locking.mode", ConfigType::String, "minimal (a brief global read lock while the snapshot starts) or none.", GROUP_SNAPSHOT).default("minimal").allowed(&["minimal", "none"]))
        .define(key("converters", ConfigType::List, "Custom converters by name; the one sluice implements is Debezium's TinyIntOneToBooleanConverter (<name>.type, <name>.selector, <name>.length.checker), which emits TINYINT(1) columns as booleans instead of INT16.", GROUP_EVENTS))
        .define(key("time.precision.mode", ConfigType::String, "adaptive_time_microseconds (adaptive) or connect.", GROUP_EVENTS).default("adaptive_time_microseconds").allowed(&["adaptive", "adaptive_time_microseconds", "connect"]))
        .define(key("bigint.unsigned.handling.mode", ConfigType::String, "long or precise (BIGINT UNSIGNED as Decimal).", GROUP_EVENTS).default("long").allowed(&["long", "precise"]))
        .define(key("include.query", ConfigType::Boolean, "Put the SQL statement behind each streamed change in source.query (snapshot events carry null). MariaDB writes it when binlog_annotate_row_events=ON (its default); MySQL when binlog_rows_query_log_events=ON.", GROUP_EVENTS).default("false"))
        .merge(sluice_connector_api::source_settings::definition())
        .merge(sluice_connector_api::column_mapping::definition())
        .merge(sluice_connector_api::snapshot_select::definition())
        .merge(sluice_connector_api::topic_naming::definition())
}

/// The include/exclude lists, by database.
pub fn filters(config: &ConnectorConfig) -> Result<Filters, ConfigError> {
    Filters::parse(config, "database", SYSTEM_DATABASES)
}

fn patterns(config: &ConnectorConfig, key: &str) -> Result<Vec<Regex>, ConfigError> {
    config
        .list(key)
        .iter()
        .map(|p| {
            Regex::new(&format!("^(?:{p})$")).map_err(|e| {
                ConfigError::new(key, format!("{p} is not a valid regular expression: {e}"))
            })
        })
        .collect()
}

/// `database.ssl.mode` and its CA file: a verifying mode needs a readable one.
pub fn ssl(config: &ConnectorConfig) -> Result<(String, Option<String>), ConfigError> {
    let ssl_mode = config
        .get("database.ssl.mode")
        .unwrap_or("preferred")
        .trim()
        .to_owned();
    let ssl_ca = config
        .get("database.ssl.truststore")
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(str::to_owned);
    if ssl_mode.starts_with("verify") {
        match &ssl_ca {
            None => {
                return Err(ConfigError::new(
                    "database.ssl.truststore",
                    format!("database.ssl.mode={ssl_mode} needs the CA certificate: set database.ssl.truststore to a PEM file"),
                ))
            }
            Some(path) if !std::path::Path::new(path).is_file() => {
                return Err(ConfigError::new(
                    "database.ssl.truststore",
                    format!("{path} is not a readable file"),
                ))
            }
            Some(_) => {}
        }
    }
    Ok((ssl_mode, ssl_ca))
}

/// `gtid.source.includes` / `excludes`, refused together as Debezium does.
#[allow(clippy::type_complexity)]
pub fn gtid_sources(config: &ConnectorConfig) -> Result<(Vec<Regex>, Vec<Regex>), ConfigError> {
    if !config.list("gtid.source.includes").is_empty()
        && !config.list("gtid.source.excludes").is_empty()
    {
        return Err(ConfigError::new(
            "gtid.source.excludes",
            "cannot be used together with gtid.source.includes; keep one of them",
        ));
    }
    Ok((
        patterns(config, "gtid.source.includes")?,
        patterns(config, "gtid.source.excludes")?,
    ))
}

impl MySqlConfig {
    /// Reads and checks the settings, naming the first bad key.
    pub fn parse(config: &ConnectorConfig) -> Result<Self, ConfigError> {
        let definition = definition();
        definition.check(config)?;
        let settings = definition.read(config);
        let port = u16::try_from(settings.long("database.port")?)
            .map_err(|_| ConfigError::new("database.port", "must be between 1 and 65535"))?;
        let server_id = u32::try_from(settings.long("database.server.id")?)
            .map_err(|_| ConfigError::new("database.server.id", "must be from 1 to 4294967295"))?;
        let (ssl_mode, ssl_ca) = ssl(config)?;
        let (gtid_includes, gtid_excludes) = gtid_sources(config)?;
        let topic_prefix = settings.required("topic.prefix")?;
        Ok(Self {
            host: settings.required("database.hostname")?,
            port,
            user: settings.required("database.user")?,
            common: SourceSettings::read(&settings)?,
            server_id,
            ssl_mode,
            ssl_ca,
            filters: filters(config)?,
            booleans: BooleanColumns::from_config(config)?,
            column_mappers: ColumnMappers::from_config(config)?,
            snapshot_selects: std::sync::Arc::new(SnapshotSelects::from_config(config)?),
            flavor: crate::flavor::Flavor::of_class(config.get("connector.class")),
            snapshot_mode: SnapshotMode::from_text(&settings.text("snapshot.mode")?),
            locking_mode: match settings.text("snapshot.locking.mode")?.as_str() {
                "none" => LockingMode::None,
                _ => LockingMode::Minimal,
            },
            gtid_includes,
            gtid_excludes,
            include_schema_changes: settings.boolean("include.schema.changes")?,
            history_topic: settings
                .optional("schema.history.internal.kafka.topic")?
                .unwrap_or_else(|| format!("{topic_prefix}.schema-history")),
            time_precision: match settings.text("time.precision.mode")?.as_str() {
                "connect" => TimePrecision::Connect,
                _ => TimePrecision::Adaptive,
            },
            bigint_unsigned: match settings.text("bigint.unsigned.handling.mode")?.as_str() {
                "precise" => BigintUnsignedMode::Precise,
                _ => BigintUnsignedMode::Long,
            },
            include_query: settings.boolean("include.query")?,
            connect_timeout: settings
                .millis("connect.timeout.ms")?
                .max(Duration::from_millis(1)),
            topics: TopicNaming::from_config(config)?,
            topic_prefix,
        })
    }

    /// Whether GTIDs of `source` (a MySQL server UUID or a MariaDB
    /// `domain-server`) are kept in the offsets.
    pub fn gtid_source_kept(&self, source: &str) -> bool {
        let any = |ps: &[Regex]| ps.iter().any(|p| p.is_match(source));
        (self.gtid_includes.is_empty() || any(&self.gtid_includes)) && !any(&self.gtid_excludes)
    }
}
