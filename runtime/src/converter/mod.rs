//! Converters: turn the record model into the bytes written to Kafka.
//!
//! Chosen per connector with `key.converter` / `value.converter` (falling
//! back to the worker's defaults), with Connect's class names so Debezium
//! configs work unchanged.

mod json;

use std::collections::BTreeMap;
use std::sync::Arc;

use sluice_connector_api::{Schema, Value};
use thiserror::Error;

pub use json::JsonConverter;

/// Connect's JSON converter class.
pub const JSON_CONVERTER: &str = "org.apache.kafka.connect.json.JsonConverter";
/// Confluent's Avro converter class (served by the registry work).
pub const AVRO_CONVERTER: &str = "io.confluent.connect.avro.AvroConverter";

/// A record could not be converted.
#[derive(Debug, Error)]
pub enum ConvertError {
    /// The value does not match its schema.
    #[error("value does not match schema at {path}: {message}")]
    Mismatch {
        /// Where in the record, e.g. `after.price`.
        path: String,
        /// What was expected and found.
        message: String,
    },
}

/// Encodes keys or values for one topic.
pub trait Converter: Send + Sync {
    /// The bytes for `value` under `schema`; `None` for a null (tombstone).
    fn encode(
        &self,
        topic: &str,
        schema: Option<&Arc<Schema>>,
        value: Option<&Value>,
    ) -> Result<Option<Vec<u8>>, ConvertError>;
}

/// A converter setting could not be honoured.
#[derive(Debug, Error, PartialEq, Eq)]
#[error("{key}: {message}")]
pub struct ConverterConfigError {
    /// The config key, e.g. `value.converter`.
    pub key: String,
    /// What is wrong and what to write instead.
    pub message: String,
}

/// Which side of the record a converter handles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The record key.
    Key,
    /// The record value.
    Value,
}

impl Side {
    /// The config prefix: `key.converter` or `value.converter`.
    pub fn prefix(self) -> &'static str {
        match self {
            Self::Key => "key.converter",
            Self::Value => "value.converter",
        }
    }
}

/// Builds the converter for `side` from a connector config, with the
/// worker's `defaults` (same keys) underneath.
pub fn build(
    side: Side,
    config: &BTreeMap<String, String>,
    defaults: &BTreeMap<String, String>,
) -> Result<Arc<dyn Converter>, ConverterConfigError> {
    let prefix = side.prefix();
    let lookup = |key: &str| config.get(key).or_else(|| defaults.get(key)).cloned();
    let class = lookup(prefix).unwrap_or_else(|| JSON_CONVERTER.to_owned());
    match class.trim() {
        JSON_CONVERTER | "json" => {
            let key = format!("{prefix}.schemas.enable");
            let schemas = match lookup(&key).as_deref().map(str::trim) {
                None | Some("true") => true,
                Some("false") => false,
                Some(other) => {
                    return Err(ConverterConfigError {
                        key,
                        message: format!("expected true or false, got {other}"),
                    })
                }
            };
            Ok(Arc::new(JsonConverter::new(schemas)))
        }
        AVRO_CONVERTER | "avro" => Err(ConverterConfigError {
            key: prefix.to_owned(),
            message: "the Avro converter needs the schema registry, which this build does not include yet; use org.apache.kafka.connect.json.JsonConverter".to_owned(),
        }),
        other => Err(ConverterConfigError {
            key: prefix.to_owned(),
            message: format!(
                "unknown converter {other}; use {JSON_CONVERTER} (or json)"
            ),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_converter_is_named() {
        let config = BTreeMap::from([("value.converter".to_owned(), "x.Y".to_owned())]);
        let err = build(Side::Value, &config, &BTreeMap::new())
            .err()
            .expect("unknown class");
        assert_eq!(err.key, "value.converter");
        assert!(err.message.contains("x.Y"));
    }

    #[test]
    fn bad_schemas_enable_is_named() {
        let config =
            BTreeMap::from([("key.converter.schemas.enable".to_owned(), "yes".to_owned())]);
        let err = build(Side::Key, &config, &BTreeMap::new())
            .err()
            .expect("bad flag");
        assert_eq!(err.key, "key.converter.schemas.enable");
    }
}
