//! Confluent's Avro converter: record-model values as Avro in the
//! Confluent wire format (magic byte 0, 4-byte schema id, Avro binary),
//! schemas registered through any Confluent-API registry.
//!
//! A schema is resolved to an id once per topic and schema; resolution is
//! where compatibility is checked, so a schema the subject's level rejects
//! is never used to produce anything.

pub mod decode;
mod encode;
pub mod schema;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use sluice_connector_api::{Schema, SchemaKind, Value};

use super::{ConvertError, Side};
use crate::registry::client::{ClientError, RegistryClient};

/// How subjects are named, as Confluent's `*.subject.name.strategy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubjectStrategy {
    /// `<topic>-key` / `<topic>-value` (the default).
    TopicName,
    /// The record's full name.
    RecordName,
    /// `<topic>-<record full name>`.
    TopicRecordName,
}

impl SubjectStrategy {
    /// Parses Confluent's class name or its short form.
    pub fn parse(text: &str) -> Option<Self> {
        let short = text.trim().rsplit('.').next().unwrap_or_default();
        match short {
            "TopicNameStrategy" => Some(Self::TopicName),
            "RecordNameStrategy" => Some(Self::RecordName),
            "TopicRecordNameStrategy" => Some(Self::TopicRecordName),
            _ => None,
        }
    }

    /// The subject for a record on `topic` with `schema`.
    pub fn subject(self, side: Side, topic: &str, schema: &Schema) -> Result<String, ConvertError> {
        let suffix = match side {
            Side::Key => "key",
            Side::Value => "value",
        };
        let record_name = || {
            match (&schema.kind, &schema.name) {
            (SchemaKind::Struct(_), Some(name)) => Ok(schema::avro_full_name(name)),
            _ => Err(ConvertError::Mismatch {
                path: String::new(),
                message: format!(
                    "the {suffix} is not a named record, so RecordNameStrategy and TopicRecordNameStrategy cannot name its subject; use TopicNameStrategy"
                ),
            }),
        }
        };
        Ok(match self {
            Self::TopicName => format!("{topic}-{suffix}"),
            Self::RecordName => record_name()?,
            Self::TopicRecordName => format!("{topic}-{}", record_name()?),
        })
    }
}

/// Settings of one Avro converter.
#[derive(Debug, Clone)]
pub struct AvroSettings {
    /// Which side it encodes.
    pub side: Side,
    /// `schema.registry.url` (comma-separated URLs allowed).
    pub registry_url: String,
    /// How subjects are named.
    pub strategy: SubjectStrategy,
    /// Register new schemas (true) or require them registered already.
    pub auto_register: bool,
}

/// A schema resolved for one topic.
struct Resolved {
    topic: String,
    id: i32,
}

/// Resolved ids by schema identity. The held `Arc` keeps the address from
/// being reused by another schema while the entry lives.
type IdCache = HashMap<usize, (Arc<Schema>, Vec<Resolved>)>;

/// The Avro converter.
pub struct AvroConverter {
    settings: AvroSettings,
    client: RegistryClient,
    ids: Mutex<IdCache>,
}

impl AvroConverter {
    /// A converter with `settings`.
    pub fn new(settings: AvroSettings) -> Self {
        Self {
            client: RegistryClient::new(&settings.registry_url),
            settings,
            ids: Mutex::new(HashMap::new()),
        }
    }

    fn cached_id(&self, topic: &str, schema: &Arc<Schema>) -> Option<i32> {
        let ids = self.ids.lock().unwrap_or_else(|e| e.into_inner());
        ids.get(&(Arc::as_ptr(schema) as usize))
            .and_then(|(_, resolved)| resolved.iter().find(|r| r.topic == topic))
            .map(|r| r.id)
    }

    /// Finds or registers the id for `schema` on `topic`, checking
    /// compatibility first. Blocking: talks to the registry.
    pub fn resolve(&self, topic: &str, schema: &Arc<Schema>) -> Result<(), ConvertError> {
        if self.cached_id(topic, schema).is_some() {
            return Ok(());
        }
        let subject = self
            .settings
            .strategy
            .subject(self.settings.side, topic, schema)?;
        let text = schema::to_avro(schema).to_string();
        let id = if self.settings.auto_register {
            let verdict = self.client.check(&subject, &text)?;
            if !verdict.compatible {
                return Err(self.incompatible(&subject, verdict.messages));
            }
            match self.client.register(&subject, &text) {
                Ok(id) => id,
                Err(ClientError::Rejected { code: 409, message }) => {
                    return Err(self.incompatible(&subject, vec![message]))
                }
                Err(e) => return Err(e.into()),
            }
        } else {
            self.client
                .lookup(&subject, &text)?
                .ok_or_else(|| ConvertError::NotRegistered {
                    subject: subject.clone(),
                    registry: self.client.urls(),
                })?
        };
        tracing::info!(topic, subject, id, "schema resolved");
        let mut ids = self.ids.lock().unwrap_or_else(|e| e.into_inner());
        ids.entry(Arc::as_ptr(schema) as usize)
            .or_insert_with(|| (Arc::clone(schema), Vec::new()))
            .1
            .push(Resolved {
                topic: topic.to_owned(),
                id,
            });
        Ok(())
    }

    fn incompatible(&self, subject: &str, findings: Vec<String>) -> ConvertError {
        let level = self
            .client
            .level(subject)
            .unwrap_or_else(|_| "the subject's level".to_owned());
        ConvertError::Incompatible {
            subject: subject.to_owned(),
            level,
            registry: self.client.urls(),
            findings,
        }
    }

    /// The Confluent-framed bytes for `value`, or `Unresolved` when the
    /// schema's id is not known yet.
    pub fn encode(
        &self,
        topic: &str,
        schema: Option<&Arc<Schema>>,
        value: Option<&Value>,
    ) -> Result<Option<Vec<u8>>, ConvertError> {
        let Some(value) = value.filter(|v| **v != Value::Null) else {
            return Ok(None);
        };
        let Some(schema) = schema else {
            return Err(ConvertError::Mismatch {
                path: String::new(),
                message: "the Avro converter needs a schema; this connector emits schemaless records, use the JSON converter with schemas.enable=false".to_owned(),
            });
        };
        let id = self
            .cached_id(topic, schema)
            .ok_or(ConvertError::Unresolved)?;
        let mut out = Vec::with_capacity(64);
        out.push(0);
        out.extend_from_slice(&id.to_be_bytes());
        encode::encode(&mut out, schema, value).map_err(|e| match e {
            ConvertError::Mismatch { path, message } if path.is_empty() => ConvertError::Mismatch {
                path: "<root>".to_owned(),
                message,
            },
            other => other,
        })?;
        Ok(Some(out))
    }
}
