//! Connect's `StringConverter` and `ByteArrayConverter`: no envelope, no
//! schema on the wire. Strings are UTF-8 (any other value written as its
//! text, as Connect's `toString`), byte arrays pass as they are; read
//! back, they are an optional string or optional bytes.

use std::sync::Arc;

use sluice_connector_api::{Schema, Value};

use super::{ConvertError, Converter};
use crate::transforms::fields::text_of;

/// Connect's string converter class.
pub const STRING_CONVERTER: &str = "org.apache.kafka.connect.storage.StringConverter";
/// Connect's byte-array converter class.
pub const BYTE_ARRAY_CONVERTER: &str = "org.apache.kafka.connect.converters.ByteArrayConverter";

/// Which of the two.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plain {
    /// `StringConverter`.
    Text,
    /// `ByteArrayConverter`.
    Bytes,
}

impl Converter for Plain {
    fn encode(
        &self,
        _topic: &str,
        _schema: Option<&Arc<Schema>>,
        value: Option<&Value>,
    ) -> Result<Option<Vec<u8>>, ConvertError> {
        let Some(value) = value.filter(|v| !v.is_null()) else {
            return Ok(None);
        };
        match (self, value) {
            (Self::Text, Value::String(s)) => Ok(Some(s.as_bytes().to_vec())),
            (Self::Text, other) => Ok(Some(text_of(other).into_bytes())),
            (Self::Bytes, Value::Bytes(b)) => Ok(Some(b.clone())),
            (Self::Bytes, other) => Err(ConvertError::Mismatch {
                path: String::new(),
                message: format!(
                    "ByteArrayConverter writes bytes only, not {}; use StringConverter, JsonConverter or AvroConverter",
                    crate::transforms::fields::describe(other)
                ),
            }),
        }
    }
}

impl Plain {
    /// What a message's bytes read as.
    pub fn decode(self, bytes: &[u8]) -> (Arc<Schema>, Value) {
        match self {
            Self::Text => (
                Arc::new(Schema::string().optional()),
                Value::String(String::from_utf8_lossy(bytes).into_owned().into()),
            ),
            Self::Bytes => (
                Arc::new(Schema::bytes().optional()),
                Value::Bytes(bytes.to_vec()),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_and_bytes_round_trip_without_an_envelope() {
        let text = Plain::Text
            .encode("t", None, Some(&Value::String("o-42".into())))
            .unwrap();
        assert_eq!(text.as_deref(), Some(&b"o-42"[..]));
        assert_eq!(Plain::Text.decode(b"o-42").1, Value::String("o-42".into()));
        let number = Plain::Text
            .encode("t", None, Some(&Value::Int32(7)))
            .unwrap();
        assert_eq!(number.as_deref(), Some(&b"7"[..]));
        assert!(Plain::Bytes
            .encode("t", None, Some(&Value::Int32(7)))
            .is_err());
        assert_eq!(Plain::Bytes.encode("t", None, None).unwrap(), None);
    }
}
