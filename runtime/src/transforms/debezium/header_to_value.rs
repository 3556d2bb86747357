//! `io.debezium.transforms.HeaderToValue`: header i of `headers` becomes
//! field i of `fields` in the value (an optional string, the header's
//! UTF-8 text), copied or, with `operation=move`, removed from the headers.

use std::sync::Arc;

use sluice_connector_api::{ConfigError, Field, Schema, Value};

use crate::transforms::fields::{self, struct_like, Side};
use crate::transforms::schema_cache::SchemaCache;
use crate::transforms::settings::Settings;
use crate::transforms::{Failure, Record, Transform};

/// The configured transform.
pub struct HeaderToValue {
    headers: Vec<String>,
    fields: Vec<String>,
    moves: bool,
    schemas: SchemaCache,
}

impl HeaderToValue {
    /// Reads `headers`, `fields` and `operation`.
    pub fn new(settings: &Settings) -> Result<Self, ConfigError> {
        let headers = settings.list("headers");
        let fields = settings.list("fields");
        if headers.is_empty() || headers.len() != fields.len() {
            return Err(settings.error(
                "fields",
                "headers and fields must be lists of the same, non-zero length",
            ));
        }
        Ok(Self {
            headers,
            fields,
            moves: settings.one_of("operation", &["copy", "move"], "copy")? == "move",
            schemas: SchemaCache::default(),
        })
    }
}

impl Transform for HeaderToValue {
    fn apply(&self, record: Record) -> Result<Option<Record>, Failure> {
        Side::Value.rewrite(record, |record, schema, value| {
            let Some(schema) = schema else {
                return Err(Failure::new(
                    "HeaderToValue needs a value with a schema (a struct)",
                ));
            };
            let mut values = fields::struct_values(&schema, &value)?.to_vec();
            for header in &self.headers {
                values.push(record.header(header).map_or(Value::Null, |bytes| {
                    Value::String(String::from_utf8_lossy(bytes).into_owned().into())
                }));
            }
            if self.moves {
                record.headers.retain(|(k, _)| !self.headers.contains(k));
            }
            let derived = self.schemas.get_or(&schema, |s| {
                let mut out = s.fields().to_vec();
                out.extend(self.fields.iter().map(|name| Field {
                    name: name.clone(),
                    schema: Arc::new(Schema::string().optional()),
                }));
                Ok::<_, Failure>(struct_like(s, out))
            })?;
            Ok((Some(derived), Value::Struct(values)))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transforms::record::tests_support::row_record;

    #[test]
    fn headers_become_value_fields_and_move_removes_them() {
        let t = HeaderToValue::new(&Settings::from_pairs(
            "transforms.h.",
            &[
                ("headers", "origin,missing"),
                ("fields", "from,other"),
                ("operation", "move"),
            ],
        ))
        .unwrap();
        let mut record = row_record(1, "a", "b");
        record.headers.push(("origin".into(), b"eu".to_vec()));
        let out = t.apply(record).unwrap().unwrap();
        let Some(Value::Struct(values)) = &out.value else {
            panic!()
        };
        assert_eq!(values[3..], [Value::String("eu".into()), Value::Null]);
        assert_eq!(out.value_schema.unwrap().fields()[3].name, "from");
        assert!(out.headers.is_empty());
    }

    #[test]
    fn mismatched_lists_name_the_key() {
        let e = HeaderToValue::new(&Settings::from_pairs(
            "transforms.h.",
            &[("headers", "a,b"), ("fields", "x")],
        ))
        .err()
        .unwrap();
        assert_eq!(e.key, "transforms.h.fields");
    }
}
