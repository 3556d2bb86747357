//! Confluent's Avro converter: record-model values as Avro in the
//! Confluent wire format (magic byte 0, 4-byte schema id, Avro binary),
//! schemas registered through any Confluent-API registry.
//!
//! A schema is resolved to an id once per topic and schema; resolution is
//! where compatibility is checked, so a schema the subject's level rejects
//! is never used to produce anything.

pub mod datum;
pub mod decode;
pub mod encode;
mod number_hash;
pub mod plan;
pub mod projection;
pub mod read;
mod recent_ids;
pub mod schema;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use sluice_connector_api::{Schema, SchemaKind, Value};

use super::{ConvertError, Side};
use crate::registry::client::{ClientError, RegistryClient};
use number_hash::NumberHashing;

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
    /// `ignore.default.for.nullables`: whether a null with a default is
    /// written as the default (Confluent's default) or as null.
    pub nulls: encode::NullsWithDefault,
    /// Credentials and TLS for the registry.
    pub access: crate::registry::client::RegistryAccess,
}

/// A schema resolved for one topic.
struct Resolved {
    topic: String,
    id: i32,
}

/// Resolved ids by schema identity. The held `Arc` keeps the address from
/// being reused by another schema while the entry lives.
type IdCache = HashMap<usize, (Arc<Schema>, Vec<Resolved>), NumberHashing>;

/// Identity entries kept at most; a connector that builds a fresh `Arc`
/// per record would otherwise grow the cache without bound.
const MAX_IDENTITY_ENTRIES: usize = 1024;

/// The buffer size to plan for after a message of `written` bytes: the
/// largest recent size, decaying by 1/32 per message. The last size alone
/// made every longer record of a table whose records alternate (a null
/// column or not) grow its buffer — half the records in
/// `cargo bench --bench encode`; the largest ever would keep one huge
/// record's size for good.
fn recent_size(recent: usize, written: usize) -> usize {
    written.max(recent - recent / 32)
}

/// The Avro converter.
pub struct AvroConverter {
    settings: AvroSettings,
    client: RegistryClient,
    /// Fast path: by schema address.
    ids: Mutex<IdCache>,
    /// Slow path: by topic and Avro schema text, so an equal schema behind
    /// another `Arc` never goes back to the registry.
    ids_by_text: Mutex<HashMap<(String, String), i32>>,
    /// About the largest recent message, so the next one's buffer is
    /// allocated once instead of growing (and copying): see [`recent_size`].
    recent_size: AtomicUsize,
    /// This converter in each thread's [`recent_ids`].
    owner: u64,
}

impl AvroConverter {
    /// A converter with `settings`.
    pub fn new(settings: AvroSettings, client: RegistryClient) -> Self {
        Self {
            client,
            settings,
            ids: Mutex::new(IdCache::default()),
            ids_by_text: Mutex::new(HashMap::new()),
            recent_size: AtomicUsize::new(64),
            owner: recent_ids::new_owner(),
        }
    }

    fn cached_id(&self, topic: &str, schema: &Arc<Schema>) -> Option<i32> {
        if let Some(id) = recent_ids::find(self.owner, topic, schema) {
            return Some(id);
        }
        let ids = self.ids.lock().unwrap_or_else(|e| e.into_inner());
        let id = ids
            .get(&(Arc::as_ptr(schema) as usize))
            .and_then(|(_, resolved)| resolved.iter().find(|r| r.topic == topic))
            .map(|r| r.id)?;
        drop(ids);
        recent_ids::keep(self.owner, topic, schema, id);
        Some(id)
    }

    fn remember(&self, topic: &str, schema: &Arc<Schema>, id: i32) {
        let mut ids = self.ids.lock().unwrap_or_else(|e| e.into_inner());
        if ids.len() >= MAX_IDENTITY_ENTRIES {
            ids.clear();
        }
        ids.entry(Arc::as_ptr(schema) as usize)
            .or_insert_with(|| (Arc::clone(schema), Vec::new()))
            .1
            .push(Resolved {
                topic: topic.to_owned(),
                id,
            });
    }

    /// The id of an equal schema resolved earlier under another `Arc`.
    fn id_by_text(&self, topic: &str, schema: &Arc<Schema>) -> Option<i32> {
        let text = schema::to_avro(schema).to_string();
        let id = *self
            .ids_by_text
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&(topic.to_owned(), text))?;
        self.remember(topic, schema, id);
        Some(id)
    }

    /// Finds or registers the id for `schema` on `topic`, checking
    /// compatibility first. Blocking: talks to the registry.
    pub fn resolve(&self, topic: &str, schema: &Arc<Schema>) -> Result<(), ConvertError> {
        if self.cached_id(topic, schema).is_some() || self.id_by_text(topic, schema).is_some() {
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
        self.ids_by_text
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert((topic.to_owned(), text), id);
        self.remember(topic, schema, id);
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
        let Some(value) = value.filter(|v| !v.is_null()) else {
            return Ok(None);
        };
        let Some(schema) = schema else {
            return Err(ConvertError::Mismatch {
                path: String::new(),
                message: "the Avro converter needs a schema; this connector emits schemaless records, use the JSON converter with schemas.enable=false".to_owned(),
            });
        };
        // Not `ok_or`: the error it builds is dropped on every success.
        let Some(id) = self
            .cached_id(topic, schema)
            .or_else(|| self.id_by_text(topic, schema))
        else {
            return Err(ConvertError::Unresolved);
        };
        // A little beyond the recent sizes: records of one table vary a bit.
        let recent = self.recent_size.load(Ordering::Relaxed);
        let mut out = Vec::with_capacity(recent + recent / 8);
        out.push(0);
        out.extend_from_slice(&id.to_be_bytes());
        encode::encode(&mut out, schema, value, self.settings.nulls).map_err(|e| match e {
            ConvertError::Mismatch { path, message } if path.is_empty() => ConvertError::Mismatch {
                path: "<root>".to_owned(),
                message,
            },
            other => other,
        })?;
        self.recent_size
            .store(recent_size(recent, out.len()), Ordering::Relaxed);
        Ok(Some(out))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn buffers_fit_alternating_records_and_forget_a_huge_one() {
        // Records of 70 and 90 bytes in turn: every buffer fits, once warm.
        let mut recent = 64;
        for (i, written) in [70, 90].repeat(10).into_iter().enumerate() {
            recent = recent_size(recent, written);
            if i > 0 {
                assert!(recent + recent / 8 >= 90, "{recent}");
            }
        }
        // One 1 MiB record, then small ones: the plan shrinks back.
        recent = recent_size(recent, 1 << 20);
        for _ in 0..300 {
            recent = recent_size(recent, 80);
        }
        assert!(recent < 1024, "{recent}");
    }
    use crate::registry::spawn_in_memory;
    use sluice_connector_api::Field;

    fn value_schema() -> Arc<Schema> {
        Arc::new(Schema::structure(
            "t.Value",
            vec![Field::new("id", Schema::int64())],
        ))
    }

    /// A runtime serving an in-memory registry, the registry's URL, and a
    /// value converter that registers schemas there.
    pub(crate) fn value_converter_on_a_registry() -> (tokio::runtime::Runtime, String, AvroConverter)
    {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let url = runtime
            .block_on(spawn_in_memory())
            .expect("in-memory registry");
        let converter = AvroConverter::new(
            AvroSettings {
                side: Side::Value,
                registry_url: url.clone(),
                strategy: SubjectStrategy::TopicName,
                auto_register: true,
                nulls: encode::NullsWithDefault::WriteDefault,
                access: Default::default(),
            },
            RegistryClient::new(&url),
        );
        (runtime, url, converter)
    }

    #[test]
    fn registry_is_asked_once_per_schema_not_per_record() {
        let (runtime, _, converter) = value_converter_on_a_registry();
        let schema = value_schema();
        let value = Value::Struct(vec![Value::Int64(7)]);
        assert!(matches!(
            converter.encode("t", Some(&schema), Some(&value)),
            Err(ConvertError::Unresolved)
        ));
        converter.resolve("t", &schema).expect("registers");
        // With the registry gone, only cached ids can work.
        runtime.shutdown_background();
        for i in 0..1000 {
            // An equal schema behind a fresh Arc, as a careless connector
            // might build per record.
            let fresh = value_schema();
            let bytes = converter
                .encode(
                    "t",
                    Some(&fresh),
                    Some(&Value::Struct(vec![Value::Int64(i)])),
                )
                .expect("cached id")
                .expect("bytes");
            assert_eq!(&bytes[..5], &[0, 0, 0, 0, 1], "magic byte and schema id 1");
        }
        // Another topic is another subject: it needs the registry.
        let err = converter
            .resolve("other", &schema)
            .expect_err("registry is down");
        assert!(err.is_retriable(), "{err}");
    }

    #[test]
    fn subject_strategies_name_subjects_like_confluent() {
        let schema = value_schema();
        let subject =
            |s: SubjectStrategy| s.subject(Side::Value, "db.t", &schema).expect("subject");
        assert_eq!(subject(SubjectStrategy::TopicName), "db.t-value");
        assert_eq!(subject(SubjectStrategy::RecordName), "t.Value");
        assert_eq!(subject(SubjectStrategy::TopicRecordName), "db.t-t.Value");
        assert_eq!(
            SubjectStrategy::parse("io.confluent.kafka.serializers.subject.RecordNameStrategy"),
            Some(SubjectStrategy::RecordName)
        );
        let unnamed = Arc::new(Schema::int64());
        assert!(SubjectStrategy::RecordName
            .subject(Side::Key, "t", &unnamed)
            .is_err());
    }
}
