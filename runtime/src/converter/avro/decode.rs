//! Reading Confluent-framed Avro back: look the writer schema up by id
//! (once per id) and decode with apache-avro. Used by `sluice tail` and
//! by anything that consumes what the Avro converter wrote.

use std::collections::HashMap;

use base64::Engine;
use serde_json::{json, Value as Json};

use crate::registry::client::{ClientError, RegistryClient};

/// Why a message could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// Not magic byte 0 plus a 4-byte id.
    #[error("not in the Confluent Avro wire format (magic byte 0, 4-byte schema id)")]
    NotFramed,
    /// The registry did not give the writer schema.
    #[error("fetching writer schema {id}: {source}")]
    Registry {
        /// The schema id in the message.
        id: i32,
        /// The registry failure.
        #[source]
        source: ClientError,
    },
    /// The schema or the bytes are not valid Avro.
    #[error("decoding with schema {id}: {message}")]
    Avro {
        /// The schema id in the message.
        id: i32,
        /// apache-avro's explanation.
        message: String,
    },
}

/// Decodes Confluent-framed Avro messages, caching writer schemas by id.
pub struct AvroDecoder {
    client: RegistryClient,
    schemas: HashMap<i32, apache_avro::Schema>,
}

impl AvroDecoder {
    /// A decoder using the registry at `urls`.
    pub fn new(urls: &str) -> Self {
        Self::with_client(RegistryClient::new(urls))
    }

    /// A decoder using `client` (one with TLS or a login).
    pub fn with_client(client: RegistryClient) -> Self {
        Self {
            client,
            schemas: HashMap::new(),
        }
    }

    /// The schema id of a framed message, if it is one.
    pub fn schema_id(bytes: &[u8]) -> Option<i32> {
        match bytes {
            [0, a, b, c, d, ..] => Some(i32::from_be_bytes([*a, *b, *c, *d])),
            _ => None,
        }
    }

    /// The message as JSON.
    pub fn decode(&mut self, bytes: &[u8]) -> Result<Json, DecodeError> {
        let id = Self::schema_id(bytes).ok_or(DecodeError::NotFramed)?;
        if !self.schemas.contains_key(&id) {
            let text = self
                .client
                .schema(id)
                .map_err(|source| DecodeError::Registry { id, source })?;
            let schema = crate::registry::untrusted::parse_schema_text(&text)
                .map_err(|message| DecodeError::Avro { id, message })?;
            self.schemas.insert(id, schema);
        }
        let schema = &self.schemas[&id];
        let value = apache_avro::from_avro_datum(schema, &mut &bytes[5..], None).map_err(|e| {
            DecodeError::Avro {
                id,
                message: e.to_string(),
            }
        })?;
        Ok(to_json(value))
    }
}

/// An Avro value as JSON: unions unwrapped, bytes as base64 (as Connect's
/// JSON converter shows them), logical types as their underlying numbers.
pub fn to_json(value: apache_avro::types::Value) -> Json {
    use apache_avro::types::Value as A;
    let b64 = |b: &[u8]| json!(base64::engine::general_purpose::STANDARD.encode(b));
    match value {
        A::Null => Json::Null,
        A::Boolean(b) => json!(b),
        A::Int(v) | A::Date(v) | A::TimeMillis(v) => json!(v),
        A::Long(v)
        | A::TimeMicros(v)
        | A::TimestampMillis(v)
        | A::TimestampMicros(v)
        | A::TimestampNanos(v)
        | A::LocalTimestampMillis(v)
        | A::LocalTimestampMicros(v)
        | A::LocalTimestampNanos(v) => json!(v),
        A::Float(v) => json!(v),
        A::Double(v) => json!(v),
        A::Bytes(b) | A::Fixed(_, b) => b64(&b),
        A::String(s) | A::Enum(_, s) => json!(s),
        A::Union(_, inner) => to_json(*inner),
        A::Array(items) => Json::Array(items.into_iter().map(to_json).collect()),
        A::Map(entries) => {
            let mut sorted: Vec<_> = entries.into_iter().collect();
            sorted.sort_by(|a, b| a.0.cmp(&b.0));
            Json::Object(sorted.into_iter().map(|(k, v)| (k, to_json(v))).collect())
        }
        A::Record(fields) => {
            Json::Object(fields.into_iter().map(|(k, v)| (k, to_json(v))).collect())
        }
        A::Decimal(d) => {
            let bytes: Vec<u8> = (&d).try_into().unwrap_or_default();
            b64(&bytes)
        }
        A::BigDecimal(d) => json!(d.to_string()),
        A::Uuid(u) => json!(u.to_string()),
        A::Duration(d) => json!(format!("{d:?}")),
    }
}
