//! The datagen connector's configuration keys.

use sluice_connector_api::{ConfigDef, ConfigError, ConfigKey, ConfigType, ConnectorConfig};

/// Parsed datagen settings.
#[derive(Debug, Clone, PartialEq)]
pub struct DatagenConfig {
    /// The topic records go to (shared text: every record carries it).
    pub topic: sluice_connector_api::Text,
    /// Records per second; 0 means as fast as the runtime takes them.
    pub rate_per_sec: f64,
    /// Keys cycle through `0..key_cardinality`.
    pub key_cardinality: i64,
    /// Stop after this many records in all (across restarts); 0 = never.
    pub max_records: i64,
    /// Length of the filler `payload` string of each record.
    pub payload_bytes: usize,
    /// Most records returned by one poll.
    pub batch_size: usize,
    /// Extra int64 value fields (each holds the sequence number), to
    /// evolve the value schema.
    pub extra_fields: Vec<String>,
    /// Whether the extra fields are optional (null default), which keeps
    /// the change backward compatible.
    pub extra_fields_optional: bool,
}

fn positive(raw: &str) -> Result<(), String> {
    match raw.trim().parse::<f64>() {
        Ok(v) if v > 0.0 => Ok(()),
        _ => Err("must be greater than 0".to_owned()),
    }
}

fn not_negative(raw: &str) -> Result<(), String> {
    match raw.trim().parse::<f64>() {
        Ok(v) if v >= 0.0 => Ok(()),
        _ => Err("must not be negative".to_owned()),
    }
}

/// The keys datagen understands.
pub fn definition() -> ConfigDef {
    let group = "Datagen";
    ConfigDef::new()
        .define(
            ConfigKey::new("topic", ConfigType::String, "The topic to write records to.")
                .required()
                .group(group),
        )
        .define(
            ConfigKey::new(
                "rate.per.sec",
                ConfigType::Double,
                "Records per second; 0 writes as fast as the broker accepts.",
            )
            .default("0")
            .validator(not_negative)
            .group(group),
        )
        .define(
            ConfigKey::new(
                "key.cardinality",
                ConfigType::Long,
                "Number of distinct keys; record n has key n mod this.",
            )
            .default("1000")
            .validator(positive)
            .group(group),
        )
        .define(
            ConfigKey::new(
                "max.records",
                ConfigType::Long,
                "Stop producing after this many records in all, counted across restarts; 0 never stops.",
            )
            .default("0")
            .validator(not_negative)
            .group(group),
        )
        .define(
            ConfigKey::new(
                "payload.bytes",
                ConfigType::Int,
                "Length of each record's filler `payload` string, to shape record size.",
            )
            .default("64")
            .validator(not_negative)
            .group(group),
        )
        .define(
            ConfigKey::new(
                "batch.size",
                ConfigType::Int,
                "Most records handed to the runtime per poll.",
            )
            .default("1000")
            .validator(positive)
            .group(group),
        )
        .define(
            ConfigKey::new(
                "value.extra.fields",
                ConfigType::List,
                "Extra int64 fields appended to the value schema, each holding the sequence number; changing it evolves the schema.",
            )
            .default("")
            .group(group),
        )
        .define(
            ConfigKey::new(
                "value.extra.fields.optional",
                ConfigType::Boolean,
                "Make the extra fields optional with a null default (a backward-compatible change) instead of required.",
            )
            .default("false")
            .group(group),
        )
}

impl DatagenConfig {
    /// Reads and checks the settings, naming the first bad key.
    pub fn parse(config: &ConnectorConfig) -> Result<Self, ConfigError> {
        let definition = definition();
        definition.check(config)?;
        let settings = definition.read(config);
        let size = |key: &str| -> Result<usize, ConfigError> {
            usize::try_from(settings.long(key)?)
                .map_err(|_| ConfigError::new(key, "must not be negative"))
        };
        Ok(Self {
            topic: std::sync::Arc::<str>::from(settings.required("topic")?).into(),
            rate_per_sec: settings.double("rate.per.sec")?,
            key_cardinality: settings.long("key.cardinality")?,
            max_records: settings.long("max.records")?,
            payload_bytes: size("payload.bytes")?,
            batch_size: size("batch.size")?,
            extra_fields: settings.list("value.extra.fields")?,
            extra_fields_optional: settings.boolean("value.extra.fields.optional")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_apply_and_topic_is_required() {
        let config: ConnectorConfig = [("topic", "t")].into_iter().collect();
        let parsed = DatagenConfig::parse(&config).expect("valid");
        assert_eq!(parsed.key_cardinality, 1000);
        assert_eq!(parsed.batch_size, 1000);
        let err = DatagenConfig::parse(&ConnectorConfig::default()).expect_err("no topic");
        assert_eq!(err.key, "topic");
    }

    #[test]
    fn zero_cardinality_is_rejected() {
        let config: ConnectorConfig = [("topic", "t"), ("key.cardinality", "0")]
            .into_iter()
            .collect();
        let err = DatagenConfig::parse(&config).expect_err("zero keys");
        assert_eq!(err.key, "key.cardinality");
    }
}
