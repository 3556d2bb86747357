//! Converters: turn the record model into the bytes written to Kafka.
//!
//! Chosen per connector with `key.converter` / `value.converter` (falling
//! back to the worker's defaults), with Connect's class names so Debezium
//! configs work unchanged.

pub mod avro;
mod json;
pub mod json_read;
pub mod plain;

use std::collections::BTreeMap;
use std::sync::Arc;

use sluice_connector_api::{Schema, Value};
use thiserror::Error;

pub use avro::{AvroConverter, AvroSettings, SubjectStrategy};
pub use json::{JsonConverter, JsonOptions};
pub use plain::{Plain, BYTE_ARRAY_CONVERTER, STRING_CONVERTER};

use crate::registry::client::ClientError;

/// Connect's JSON converter class.
pub const JSON_CONVERTER: &str = "org.apache.kafka.connect.json.JsonConverter";
/// Confluent's Avro converter class.
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
    /// The schema has no registry id yet: call [`Converter::resolve`].
    #[error("the record's schema is not resolved in the schema registry yet")]
    Unresolved,
    /// The registry's compatibility level rejects the schema.
    #[error("the new schema for subject {subject} is incompatible with its registered versions under {level}: {}. Nothing was produced with it and the offset did not move. Fix: make the change compatible (give added fields a default or make them optional), or relax the subject's level with `curl -X PUT -H 'Content-Type: application/vnd.schemaregistry.v1+json' --data '{{\"compatibility\": \"NONE\"}}' {registry}/config/{subject}`, then restart the task", findings.join("; "))]
    Incompatible {
        /// The registry subject.
        subject: String,
        /// The level in force, e.g. BACKWARD.
        level: String,
        /// The registry URL(s), for the fix.
        registry: String,
        /// The registry's findings (field, rule, path).
        findings: Vec<String>,
    },
    /// `auto.register.schemas=false` and the schema is not registered.
    #[error("the schema for subject {subject} is not registered in {registry} and auto.register.schemas is false; register it (sluice schemas register) or set auto.register.schemas=true")]
    NotRegistered {
        /// The registry subject.
        subject: String,
        /// The registry URL(s).
        registry: String,
    },
    /// The registry could not be reached or refused the request.
    #[error(transparent)]
    Registry(#[from] ClientError),
}

impl ConvertError {
    /// Whether the record itself is at fault (a candidate for
    /// `errors.tolerance=all`), as opposed to the registry or the schema.
    pub fn is_record_error(&self) -> bool {
        matches!(self, Self::Mismatch { .. })
    }

    /// Whether retrying later can succeed (the registry is unreachable).
    pub fn is_retriable(&self) -> bool {
        matches!(self, Self::Registry(e) if e.is_unavailable())
    }
}

/// Encodes keys or values for one topic.
pub trait Converter: Send + Sync {
    /// The bytes for `value` under `schema`; `None` for a null (tombstone).
    /// [`ConvertError::Unresolved`] asks the caller to [`resolve`] first.
    ///
    /// [`resolve`]: Converter::resolve
    fn encode(
        &self,
        topic: &str,
        schema: Option<&Arc<Schema>>,
        value: Option<&Value>,
    ) -> Result<Option<Vec<u8>>, ConvertError>;

    /// Prepares `schema` for `topic` (registry look-up, compatibility
    /// check). Blocking; called once per new schema, off async threads.
    fn resolve(&self, _topic: &str, _schema: &Arc<Schema>) -> Result<(), ConvertError> {
        Ok(())
    }
}

impl Converter for AvroConverter {
    fn encode(
        &self,
        topic: &str,
        schema: Option<&Arc<Schema>>,
        value: Option<&Value>,
    ) -> Result<Option<Vec<u8>>, ConvertError> {
        AvroConverter::encode(self, topic, schema, value)
    }

    fn resolve(&self, topic: &str, schema: &Arc<Schema>) -> Result<(), ConvertError> {
        AvroConverter::resolve(self, topic, schema)
    }
}

/// Decodes the keys or values a sink task reads, per `key.converter` /
/// `value.converter`.
pub enum Decoder {
    /// Connect's JSON, with or without embedded schemas.
    Json {
        /// `schemas.enable`.
        schemas_enable: bool,
    },
    /// Confluent-framed Avro with writer schemas from the registry.
    Avro(avro::read::AvroReader),
    /// Connect's StringConverter or ByteArrayConverter.
    Plain(Plain),
}

impl Decoder {
    /// The schema and value of a message; `None` bytes are a tombstone.
    /// Blocking on the first message of a new Avro schema id.
    pub fn decode(&self, bytes: Option<&[u8]>) -> Result<Decoded, ConvertError> {
        let Some(bytes) = bytes else {
            return Ok((None, None));
        };
        match self {
            Self::Json { schemas_enable } => {
                let (schema, value) = json_read::read(bytes, *schemas_enable)?;
                Ok((schema, Some(value)))
            }
            Self::Avro(reader) => {
                let (schema, value) = reader.read(bytes)?;
                Ok((Some(schema), Some(value)))
            }
            Self::Plain(plain) => {
                let (schema, value) = plain.decode(bytes);
                Ok((Some(schema), Some(value)))
            }
        }
    }

    /// [`Self::decode`] without blocking: `None` when the message's Avro
    /// writer schema is not cached yet ([`Self::unknown_schema`] names
    /// it, to [`fetch`](Self::fetch) off the async threads).
    pub fn decode_cached(&self, bytes: Option<&[u8]>) -> Option<Result<Decoded, ConvertError>> {
        match (self, bytes) {
            (Self::Avro(reader), Some(bytes)) => Some(
                reader
                    .read_cached(bytes)?
                    .map(|(schema, value)| (Some(schema), Some(value))),
            ),
            _ => Some(self.decode(bytes)),
        }
    }
}

/// A decoded message's schema and value; `None` for a tombstone.
pub type Decoded = (Option<Arc<Schema>>, Option<Value>);

impl Decoder {
    /// Decodes from now on only the fields `selector` chooses, where the
    /// format lets fields be stepped over (Avro); the others read as
    /// `Null`. Other formats decode every field, as before.
    pub fn select_fields(&mut self, selector: Arc<dyn sluice_connector_api::FieldSelector>) {
        if let Self::Avro(reader) = self {
            reader.select_fields(selector);
        }
    }

    /// The schema id `bytes` refer to when reading them would first have
    /// to ask the registry for it (the first message of each Avro schema),
    /// so the caller can [`fetch`](Self::fetch) it off the async threads.
    pub fn unknown_schema(&self, bytes: Option<&[u8]>) -> Option<i32> {
        match (self, bytes) {
            (Self::Avro(reader), Some(bytes)) => reader.unknown_schema(bytes),
            _ => None,
        }
    }

    /// Fetches and caches writer schema `id`. Blocking (registry call).
    pub fn fetch(&self, id: i32) -> Result<(), ConvertError> {
        match self {
            Self::Avro(reader) => reader.fetch(id),
            Self::Json { .. } | Self::Plain(_) => Ok(()),
        }
    }
}

/// Builds the decoder for `side` from a connector config, with the
/// worker's `defaults` underneath.
pub fn build_decoder(
    side: Side,
    config: &BTreeMap<String, String>,
    defaults: &BTreeMap<String, String>,
) -> Result<Decoder, ConverterConfigError> {
    let prefix = side.prefix();
    let lookup = |key: &str| config.get(key).or_else(|| defaults.get(key)).cloned();
    let class = lookup(prefix).unwrap_or_else(|| JSON_CONVERTER.to_owned());
    match class.trim() {
        JSON_CONVERTER | "json" => Ok(Decoder::Json {
            schemas_enable: flag(&lookup, format!("{prefix}.schemas.enable"), true)?,
        }),
        AVRO_CONVERTER | "avro" => {
            let settings = avro_settings(side, &lookup)?;
            Ok(Decoder::Avro(avro::read::AvroReader::new(registry_client(
                &settings,
            )?)))
        }
        STRING_CONVERTER | "string" => Ok(Decoder::Plain(Plain::Text)),
        BYTE_ARRAY_CONVERTER | "bytes" => Ok(Decoder::Plain(Plain::Bytes)),
        other => Err(unknown(prefix, other)),
    }
}

/// A true/false converter setting, `default` when unset.
fn flag(
    lookup: &dyn Fn(&str) -> Option<String>,
    key: String,
    default: bool,
) -> Result<bool, ConverterConfigError> {
    match lookup(&key).as_deref().map(str::trim) {
        None => Ok(default),
        Some("true") => Ok(true),
        Some("false") => Ok(false),
        Some(other) => Err(ConverterConfigError {
            key,
            message: format!("expected true or false, got {other}"),
        }),
    }
}

/// JsonConverter's `decimal.format` and `replace.null.with.default`.
fn json_options(
    prefix: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<JsonOptions, ConverterConfigError> {
    let key = format!("{prefix}.decimal.format");
    let decimal_numeric = match lookup(&key).as_deref().map(str::trim) {
        None => false,
        Some(f) if f.eq_ignore_ascii_case("BASE64") => false,
        Some(f) if f.eq_ignore_ascii_case("NUMERIC") => true,
        Some(other) => {
            return Err(ConverterConfigError {
                key,
                message: format!("expected BASE64 or NUMERIC, got {other}"),
            })
        }
    };
    Ok(JsonOptions {
        decimal_numeric,
        replace_null_with_default: flag(
            lookup,
            format!("{prefix}.replace.null.with.default"),
            true,
        )?,
    })
}

/// The Avro converter's settings from `<side>.converter.*` keys.
fn avro_settings(
    side: Side,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<AvroSettings, ConverterConfigError> {
    let prefix = side.prefix();
    let url_key = format!("{prefix}.schema.registry.url");
    let registry_url = lookup(&url_key)
        .filter(|u| !u.trim().is_empty())
        .ok_or_else(|| ConverterConfigError {
            key: url_key.clone(),
            message: "the Avro converter needs a schema registry; set this key, or start the worker with --schema-registry-url URL or --registry-listen ADDR (embedded registry)".to_owned(),
        })?;
    let side_name = match side {
        Side::Key => "key",
        Side::Value => "value",
    };
    let strategy_key = format!("{prefix}.{side_name}.subject.name.strategy");
    let strategy = match lookup(&strategy_key) {
        None => SubjectStrategy::TopicName,
        Some(text) => SubjectStrategy::parse(&text).ok_or_else(|| ConverterConfigError {
            key: strategy_key.clone(),
            message: format!("unknown strategy {text}; use TopicNameStrategy, RecordNameStrategy or TopicRecordNameStrategy"),
        })?,
    };
    let auto_register = flag(lookup, format!("{prefix}.auto.register.schemas"), true)?;
    Ok(AvroSettings {
        side,
        registry_url,
        strategy,
        auto_register,
        nulls: if flag(
            lookup,
            format!("{prefix}.ignore.default.for.nullables"),
            false,
        )? {
            avro::encode::NullsWithDefault::WriteNull
        } else {
            avro::encode::NullsWithDefault::WriteDefault
        },
        access: registry_access(prefix, lookup)?,
    })
}

/// The registry client `settings` describe.
fn registry_client(
    settings: &AvroSettings,
) -> Result<crate::registry::client::RegistryClient, ConverterConfigError> {
    crate::registry::client::RegistryClient::connect(&settings.registry_url, &settings.access)
        .map_err(|message| ConverterConfigError {
            key: format!(
                "{}.schema.registry.ssl.truststore.location",
                settings.side.prefix()
            ),
            message,
        })
}

/// Credentials and TLS for the registry, in the Confluent client's keys
/// under the converter's prefix.
fn registry_access(
    prefix: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<crate::registry::client::RegistryAccess, ConverterConfigError> {
    let text = |key: &str| lookup(&format!("{prefix}.{key}")).filter(|v| !v.trim().is_empty());
    let pem = |key: &str| -> Result<Option<Vec<u8>>, ConverterConfigError> {
        let full = format!("{prefix}.{key}");
        let Some(path) = text(key) else {
            return Ok(None);
        };
        let type_key = key.replace("location", "type");
        if let Some(kind) = text(&type_key).filter(|t| !t.eq_ignore_ascii_case("PEM")) {
            return Err(ConverterConfigError {
                key: format!("{prefix}.{type_key}"),
                message: format!("{kind} stores are not read; give a PEM file (openssl pkcs12 -in store.p12 -out store.pem, or keytool -exportcert -rfc for JKS)"),
            });
        }
        let bytes = std::fs::read(path.trim()).map_err(|e| ConverterConfigError {
            key: full.clone(),
            message: format!("cannot read {path}: {e}"),
        })?;
        if !String::from_utf8_lossy(&bytes).contains("-----BEGIN") {
            return Err(ConverterConfigError {
                key: full,
                message: format!("{path} is not PEM; convert it (openssl pkcs12 -in {path} -out store.pem for PKCS12, keytool -exportcert -rfc for JKS)"),
            });
        }
        Ok(Some(bytes))
    };
    let bearer = match text("bearer.auth.credentials.source").as_deref() {
        None | Some("STATIC_TOKEN") => text("bearer.auth.token"),
        Some(other) => {
            return Err(ConverterConfigError {
                key: format!("{prefix}.bearer.auth.credentials.source"),
                message: format!(
                    "{other} is not supported; use STATIC_TOKEN with bearer.auth.token"
                ),
            })
        }
    };
    Ok(crate::registry::client::RegistryAccess {
        basic_auth: text("basic.auth.user.info"),
        bearer,
        ca_pem: pem("schema.registry.ssl.truststore.location")?,
        client_pem: pem("schema.registry.ssl.keystore.location")?,
    })
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
            let schemas = flag(&lookup, format!("{prefix}.schemas.enable"), true)?;
            Ok(Arc::new(JsonConverter::new(
                schemas,
                json_options(prefix, &lookup)?,
            )))
        }
        AVRO_CONVERTER | "avro" => {
            let settings = avro_settings(side, &lookup)?;
            let client = registry_client(&settings)?;
            Ok(Arc::new(AvroConverter::new(settings, client)))
        }
        STRING_CONVERTER | "string" => Ok(Arc::new(Plain::Text)),
        BYTE_ARRAY_CONVERTER | "bytes" => Ok(Arc::new(Plain::Bytes)),
        other => Err(unknown(prefix, other)),
    }
}

fn unknown(prefix: &str, class: &str) -> ConverterConfigError {
    ConverterConfigError {
        key: prefix.to_owned(),
        message: format!(
            "unknown converter {class}; use {JSON_CONVERTER} (or json), {AVRO_CONVERTER} (or avro), {STRING_CONVERTER} (or string) or {BYTE_ARRAY_CONVERTER} (or bytes)"
        ),
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

    #[test]
    fn json_options_are_read_and_bad_values_named() {
        let config = BTreeMap::from([(
            "value.converter.decimal.format".to_owned(),
            "FLOAT".to_owned(),
        )]);
        let err = build(Side::Value, &config, &BTreeMap::new())
            .err()
            .expect("bad format");
        assert_eq!(err.key, "value.converter.decimal.format");
        let config = BTreeMap::from([
            (
                "value.converter.decimal.format".to_owned(),
                "numeric".to_owned(),
            ),
            (
                "value.converter.replace.null.with.default".to_owned(),
                "false".to_owned(),
            ),
        ]);
        let lookup = |key: &str| config.get(key).cloned();
        assert_eq!(
            json_options("value.converter", &lookup).expect("valid"),
            JsonOptions {
                decimal_numeric: true,
                replace_null_with_default: false
            }
        );
    }
}
