//! The JDBC sink's settings, with Debezium's JDBC sink key names.

use crate::table_format::TableFormat;
use crate::time_zone::WriteZone;
use sluice_connector_api::config::{attach_errors, Settings};
use sluice_connector_api::{
    ConfigDef, ConfigError, ConfigKey, ConfigType, ConfigValue, ConnectorConfig,
};

const GROUP_CONNECTION: &str = "Connection";
const GROUP_WRITES: &str = "Writes";

pub use sluice_connector_api::database_url::Dialect;
use sluice_connector_api::database_url::{self, TlsRequest};

/// Where to connect, from `jdbc:<driver>://host[:port]/database[?...]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The dialect the URL names.
    pub dialect: Dialect,
    /// Host name or address.
    pub host: String,
    /// Port (the dialect's default when absent).
    pub port: u16,
    /// Database name.
    pub database: String,
    /// The TLS the URL's driver parameters ask for.
    pub tls: TlsRequest,
}

/// How records are written (`insert.mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InsertMode {
    /// Plain INSERT; a duplicate key fails.
    Insert,
    /// INSERT or UPDATE by primary key (idempotent).
    Upsert,
    /// UPDATE by primary key only.
    Update,
}

/// Where the primary key comes from (`primary.key.mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyMode {
    /// No key: rows are only inserted.
    None,
    /// `__connect_topic`, `__connect_partition`, `__connect_offset`.
    Kafka,
    /// The record key's fields.
    RecordKey,
    /// Fields of the record value named by `primary.key.fields`.
    RecordValue,
    /// The record's headers (those named by `primary.key.fields`, or all),
    /// read as SimpleHeaderConverter would: integers, booleans, numbers,
    /// otherwise text.
    RecordHeader,
}

/// Parsed settings.
#[derive(Debug, Clone)]
pub struct SinkConfig {
    /// Where to write.
    pub target: Target,
    /// `connection.username`.
    pub user: String,
    /// `connection.password`.
    pub password: String,
    /// `insert.mode`.
    pub insert_mode: InsertMode,
    /// `delete.enabled`.
    pub delete_enabled: bool,
    /// `truncate.enabled`.
    pub truncate_enabled: bool,
    /// `primary.key.mode`.
    pub key_mode: KeyMode,
    /// `primary.key.fields`.
    pub key_fields: Vec<String>,
    /// `schema.evolution=basic`.
    pub evolve: bool,
    /// `table.name.format`.
    pub table_format: TableFormat,
    /// `quote.identifiers`.
    pub quote: bool,
    /// `batch.size`.
    pub batch_size: usize,
    /// `field.include.list` (`field` or `topic:field`).
    pub include_fields: Vec<String>,
    /// `field.exclude.list`.
    pub exclude_fields: Vec<String>,
    /// `use.time.zone`: the zone zoned timestamps are written in.
    pub write_zone: WriteZone,
}

fn key(name: &'static str, ty: ConfigType, doc: &'static str, group: &'static str) -> ConfigKey {
    ConfigKey::new(name, ty, doc).group(group)
}

/// The keys the sink understands.
pub fn definition() -> ConfigDef {
    ConfigDef::new()
        .define(key("connection.url", ConfigType::String, "jdbc:postgresql://host:port/database or jdbc:mysql://host:port/database (also jdbc:mariadb://).", GROUP_CONNECTION).required())
        .define(key("connection.username", ConfigType::String, "User to connect as.", GROUP_CONNECTION).required())
        .define(key("connection.password", ConfigType::Password, "Its password.", GROUP_CONNECTION).default(""))
        .define(key("topics", ConfigType::List, "Topics to read (or topics.regex).", GROUP_WRITES))
        .define(key("topics.regex", ConfigType::String, "A regular expression of the topics to read.", GROUP_WRITES))
        .define(key("insert.mode", ConfigType::String, "insert, upsert (idempotent, by primary key) or update.", GROUP_WRITES).default("insert").allowed(&["insert", "upsert", "update"]))
        .define(key("delete.enabled", ConfigType::Boolean, "Apply deletes (op=d and tombstones) as DELETE by key; needs primary.key.mode=record_key.", GROUP_WRITES).default("false"))
        .define(key("truncate.enabled", ConfigType::Boolean, "Apply truncate events (op=t) as TRUNCATE TABLE.", GROUP_WRITES).default("false"))
        .define(key("use.time.zone", ConfigType::String, "The zone timestamps with a time zone are written in: UTC, a name such as Europe/Paris, or an offset such as +02:00. A timestamptz column keeps the instant either way; a column without a zone (timestamp, DATETIME) gets that zone's wall-clock time.", GROUP_WRITES).default("UTC"))
        .define(key("primary.key.mode", ConfigType::String, "none, kafka, record_key, record_value or record_header.", GROUP_WRITES).default("none").allowed(&["none", "kafka", "record_key", "record_value", "record_header"]))
        .define(key("primary.key.fields", ConfigType::List, "Key fields: a subset of the record key (record_key), fields of the value (record_value) or header names (record_header; all headers when unset).", GROUP_WRITES))
        .define(key("schema.evolution", ConfigType::String, "none, or basic: create missing tables and add missing columns.", GROUP_WRITES).default("none").allowed(&["none", "basic"]))
        .define(key("table.name.format", ConfigType::String, "Target table name; ${topic} (dots become underscores), ${source.db}, ${source.schema}, ${source.table}. A dot makes it schema.table.", GROUP_WRITES).default("${topic}"))
        .define(key("collection.name.format", ConfigType::String, "Debezium 3's name for table.name.format; set one of the two.", GROUP_WRITES))
        .define(key("quote.identifiers", ConfigType::Boolean, "Quote table and column names (names are always escaped; true keeps their case).", GROUP_WRITES).default("false"))
        .define(key("batch.size", ConfigType::Int, "Most records applied in one target transaction.", GROUP_WRITES).default("500").validator(sluice_connector_api::config::bounds::batch))
        .define(key("field.include.list", ConfigType::List, "Only these value fields (field or topic:field).", GROUP_WRITES))
        .define(key("field.exclude.list", ConfigType::List, "Leave out these value fields (field or topic:field).", GROUP_WRITES))
}

/// `connection.url` as a target; its TLS settings are checked now (files
/// readable, a CA for verifying modes), so a mistake is a 400.
pub fn parse_url(url: &str) -> Result<Target, String> {
    let parsed = database_url::parse(url)?;
    let tls_problem = match parsed.dialect {
        Dialect::Postgres => database_url::postgres_tls(&parsed.tls)
            .err()
            .map(|e| e.to_string()),
        Dialect::MySql => database_url::mysql_tls(&parsed.tls).err(),
    };
    if let Some(problem) = tls_problem {
        return Err(format!("{url}: {problem}"));
    }
    Ok(Target {
        dialect: parsed.dialect,
        host: parsed.host,
        port: parsed.port,
        database: parsed.database,
        tls: parsed.tls,
    })
}

/// `table.name.format`, or Debezium 3's `collection.name.format`.
fn table_format(settings: &Settings<'_>, config: &ConnectorConfig) -> Result<String, ConfigError> {
    match (
        config.get("table.name.format"),
        config.get("collection.name.format"),
    ) {
        (Some(_), Some(_)) => Err(ConfigError::new(
            "collection.name.format",
            "is Debezium 3's name for table.name.format; set only one of them",
        )),
        (None, Some(format)) => Ok(format.to_owned()),
        _ => settings.text("table.name.format"),
    }
}

impl SinkConfig {
    /// Parses and checks a config, naming the key at fault.
    pub fn parse(config: &ConnectorConfig) -> Result<Self, ConfigError> {
        let definition = definition();
        let settings = definition.read(config);
        let target = parse_url(&settings.required("connection.url")?)
            .map_err(|m| ConfigError::new("connection.url", m))?;
        let insert_mode = match settings.text("insert.mode")?.as_str() {
            "upsert" => InsertMode::Upsert,
            "update" => InsertMode::Update,
            _ => InsertMode::Insert,
        };
        let key_mode = match settings.text("primary.key.mode")?.as_str() {
            "kafka" => KeyMode::Kafka,
            "record_key" => KeyMode::RecordKey,
            "record_value" => KeyMode::RecordValue,
            "record_header" => KeyMode::RecordHeader,
            _ => KeyMode::None,
        };
        let parsed = Self {
            target,
            user: settings.required("connection.username")?,
            password: settings.text("connection.password")?,
            insert_mode,
            delete_enabled: settings.boolean("delete.enabled")?,
            truncate_enabled: settings.boolean("truncate.enabled")?,
            key_mode,
            key_fields: settings.list("primary.key.fields")?,
            evolve: settings.text("schema.evolution")? == "basic",
            table_format: TableFormat::parse(&table_format(&settings, config)?),
            quote: settings.boolean("quote.identifiers")?,
            batch_size: settings.count("batch.size")?,
            include_fields: settings.list("field.include.list")?,
            exclude_fields: settings.list("field.exclude.list")?,
            write_zone: WriteZone::parse(&settings.text("use.time.zone")?)?,
        };
        parsed.cross_check()?;
        Ok(parsed)
    }

    /// Rules between keys, as Debezium's JDBC sink enforces them.
    fn cross_check(&self) -> Result<(), ConfigError> {
        if self.delete_enabled && self.key_mode != KeyMode::RecordKey {
            return Err(ConfigError::new(
                "delete.enabled",
                "delete.enabled=true needs primary.key.mode=record_key (deletes are found by the record key)",
            ));
        }
        if self.insert_mode != InsertMode::Insert && self.key_mode == KeyMode::None {
            return Err(ConfigError::new(
                "primary.key.mode",
                "insert.mode=upsert and update need a primary key: set primary.key.mode to record_key, record_value, record_header or kafka",
            ));
        }
        if self.key_mode == KeyMode::RecordValue && self.key_fields.is_empty() {
            return Err(ConfigError::new(
                "primary.key.fields",
                "primary.key.mode=record_value needs primary.key.fields (the value fields that form the key)",
            ));
        }
        if !self.include_fields.is_empty() && !self.exclude_fields.is_empty() {
            return Err(ConfigError::new(
                "field.exclude.list",
                "set field.include.list or field.exclude.list, not both",
            ));
        }
        Ok(())
    }

    /// Whether some value fields are left out (`field.include.list` or
    /// `field.exclude.list` set).
    pub fn filters_fields(&self) -> bool {
        !self.include_fields.is_empty() || !self.exclude_fields.is_empty()
    }

    /// Whether value field `field` of `topic` is written.
    pub fn keeps_field(&self, topic: &str, field: &str) -> bool {
        let named = |list: &[String]| {
            list.iter().any(|entry| match entry.split_once(':') {
                Some((t, f)) => t == topic && f == field,
                None => entry == field,
            })
        };
        if !self.include_fields.is_empty() {
            return named(&self.include_fields);
        }
        !named(&self.exclude_fields)
    }
}

/// Validation: per-key results plus the cross-key rules.
pub fn validate(config: &ConnectorConfig) -> Vec<ConfigValue> {
    let mut values = definition().validate(config);
    if let Err(e) = SinkConfig::parse(config) {
        attach_errors(&mut values, [e]);
    }
    values
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collection_name_format_is_debezium_3s_table_name_format() {
        let definition = definition();
        let format = |pairs: &[(&str, &str)]| {
            let config = ConnectorConfig::from_pairs(pairs);
            table_format(&definition.read(&config), &config)
        };
        assert_eq!(
            format(&[("collection.name.format", "dst.${source.table}")]).unwrap(),
            "dst.${source.table}"
        );
        assert_eq!(
            format(&[("table.name.format", "t_${topic}")]).unwrap(),
            "t_${topic}"
        );
        assert_eq!(format(&[]).unwrap(), "${topic}", "the declared default");
        let both = format(&[("collection.name.format", "a"), ("table.name.format", "b")]);
        assert_eq!(both.unwrap_err().key, "collection.name.format");
    }

    #[test]
    fn urls_name_dialect_host_port_and_database() {
        let t = parse_url("jdbc:postgresql://localhost:5433/shop?sslmode=disable")
            .expect("postgres url");
        assert_eq!(
            (t.dialect, t.host.as_str(), t.port, t.database.as_str()),
            (Dialect::Postgres, "localhost", 5433, "shop")
        );
        let t = parse_url("jdbc:mariadb://db/inventory").expect("mariadb url");
        assert_eq!((t.dialect, t.port), (Dialect::MySql, 3306));
        assert!(parse_url("jdbc:oracle:thin:@x:1521/db").is_err());
        // A verifying mode without its CA is refused naming the parameter.
        assert!(parse_url("jdbc:postgresql://h/db?sslmode=verify-full")
            .expect_err("no CA")
            .contains("sslrootcert"));
        assert!(parse_url("jdbc:mysql://h/db?sslMode=VERIFY_CA")
            .expect_err("no CA")
            .contains("serverSslCert"));
        let t = parse_url("jdbc:mysql://h/db?useSSL=true").expect("TLS without checks");
        assert_eq!(
            t.tls.mode,
            sluice_connector_api::database_url::TlsMode::Require
        );
        assert!(parse_url("jdbc:postgresql://h/db?sslmode=disable&x=1").is_ok());
        assert!(parse_url("jdbc:mysql://db:33x6/a")
            .expect_err("bad port")
            .contains("33x6"));
        assert!(parse_url("jdbc:postgresql://db:5432")
            .expect_err("no database")
            .contains("database"));
    }

    #[test]
    fn cross_key_rules_name_the_key() {
        let base = [
            ("connection.url", "jdbc:postgresql://h/db"),
            ("connection.username", "u"),
        ];
        let with = |extra: &[(&str, &str)]| -> ConnectorConfig {
            base.iter().chain(extra).map(|(k, v)| (*k, *v)).collect()
        };
        let e = SinkConfig::parse(&with(&[("delete.enabled", "true")])).expect_err("rule");
        assert_eq!(e.key, "delete.enabled");
        let e = SinkConfig::parse(&with(&[("insert.mode", "upsert")])).expect_err("rule");
        assert_eq!(e.key, "primary.key.mode");
        let e =
            SinkConfig::parse(&with(&[("primary.key.mode", "record_value")])).expect_err("rule");
        assert_eq!(e.key, "primary.key.fields");
        let ok = SinkConfig::parse(&with(&[
            ("insert.mode", "upsert"),
            ("primary.key.mode", "record_key"),
            ("delete.enabled", "true"),
            ("field.exclude.list", "t:secret,internal"),
        ]))
        .expect("valid");
        assert!(!ok.keeps_field("t", "secret") && ok.keeps_field("u", "secret"));
        assert!(!ok.keeps_field("u", "internal") && ok.keeps_field("t", "name"));
    }
}
