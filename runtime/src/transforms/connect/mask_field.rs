//! `MaskField$Key` / `$Value`: replaces the listed fields by the empty
//! value of their type (0, false, "", empty bytes) or by `replacement`
//! parsed as that type, so the schema stays the same.

use sluice_connector_api::{ConfigError, Schema, SchemaKind, Value};

use crate::transforms::fields::{self, Side};
use crate::transforms::schema_cache::SchemaCache;
use crate::transforms::settings::Settings;
use crate::transforms::{Failure, Record, Transform};

/// The configured transform.
pub struct MaskField {
    side: Side,
    fields: Vec<String>,
    replacement: Option<String>,
}

impl MaskField {
    /// Reads `fields` and `replacement`.
    pub fn new(side: Side, settings: &Settings) -> Result<Self, ConfigError> {
        let fields = settings.list("fields");
        if fields.is_empty() {
            return Err(settings.error("fields", "is required: the fields to mask"));
        }
        Ok(Self {
            side,
            fields,
            replacement: settings.get("replacement").map(str::to_owned),
        })
    }

    fn masks(&self, name: &str) -> bool {
        self.fields.iter().any(|f| f == name)
    }

    /// The masked form of `value` (typed by `schema` when there is one).
    fn mask(&self, schema: Option<&Schema>, value: &Value) -> Result<Value, Failure> {
        if value.is_null() {
            return Ok(Value::Null);
        }
        let replacement = self.replacement.as_deref();
        let bad = |what: &str| {
            Failure::new(format!(
                "replacement {:?} is not a valid {what}",
                replacement.unwrap_or_default()
            ))
        };
        let kind = schema.map(|s| &s.kind);
        Ok(match (value, replacement) {
            (Value::Shared(shared), _) => return self.mask(schema, shared),
            (Value::Patched(..), _) => return self.mask(schema, &value.plain()),
            (Value::String(_), r) => Value::String(r.unwrap_or("").into()),
            (Value::Boolean(_), None) => Value::Boolean(false),
            (Value::Boolean(_), Some(r)) => Value::Boolean(r.parse().map_err(|_| bad("boolean"))?),
            (Value::Int8(_), r) => {
                Value::Int8(r.map_or(Ok(0), str::parse).map_err(|_| bad("int8"))?)
            }
            (Value::Int16(_), r) => {
                Value::Int16(r.map_or(Ok(0), str::parse).map_err(|_| bad("int16"))?)
            }
            (Value::Int32(_), r) => {
                Value::Int32(r.map_or(Ok(0), str::parse).map_err(|_| bad("int32"))?)
            }
            (Value::Int64(_), r) => {
                Value::Int64(r.map_or(Ok(0), str::parse).map_err(|_| bad("int64"))?)
            }
            (Value::Float32(_), r) => {
                Value::Float32(r.map_or(Ok(0.0), str::parse).map_err(|_| bad("float"))?)
            }
            (Value::Float64(_), r) => {
                Value::Float64(r.map_or(Ok(0.0), str::parse).map_err(|_| bad("double"))?)
            }
            // A decimal keeps its schema: masked to zero.
            (Value::Bytes(_), None) if schema.is_some_and(is_decimal) => Value::decimal(0),
            (Value::Bytes(_), None) => Value::Bytes(Vec::new()),
            (Value::Bytes(_), Some(_)) => {
                return Err(Failure::new(
                    "MaskField cannot mask bytes with a replacement",
                ))
            }
            (Value::Array(_), _) => Value::Array(Vec::new()),
            (Value::Map(_), _) => Value::Map(Vec::new()),
            (Value::Struct(_), _) | (Value::Null, _) => {
                return Err(Failure::new(format!(
                    "MaskField cannot mask a {}",
                    kind.map_or("struct", SchemaKind::connect_name)
                )))
            }
        })
    }
}

fn is_decimal(schema: &Schema) -> bool {
    schema.name.as_deref() == Some("org.apache.kafka.connect.data.Decimal")
}

impl Transform for MaskField {
    fn apply(&self, record: Record) -> Result<Option<Record>, Failure> {
        self.side.rewrite(record, |_, schema, value| {
            fields::rewrite_named(
                schema,
                &value,
                &SchemaCache::default(),
                |name, field, v| {
                    if self.masks(name) {
                        self.mask(field, v).map(Some)
                    } else {
                        Ok(None)
                    }
                },
                |_| None,
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transforms::record::tests_support::{row_record, schemaless};

    #[test]
    fn masks_text_keeping_the_schema() {
        let t = MaskField::new(
            Side::Value,
            &Settings::from_pairs("transforms.m.", &[("fields", "email,id")]),
        )
        .unwrap();
        let input = row_record(7, "ann", "ann@example.com");
        let schema = input.value_schema.clone();
        let out = t.apply(input).unwrap().unwrap();
        assert_eq!(out.value_schema, schema);
        assert_eq!(
            out.value,
            Some(Value::Struct(vec![
                Value::Int32(0),
                Value::String("ann".into()),
                Value::String(String::new().into())
            ]))
        );
    }

    #[test]
    fn a_replacement_is_used_without_a_schema() {
        let t = MaskField::new(
            Side::Value,
            &Settings::from_pairs(
                "transforms.m.",
                &[("fields", "email"), ("replacement", "****")],
            ),
        )
        .unwrap();
        let out = t
            .apply(schemaless(row_record(7, "ann", "a@x")))
            .unwrap()
            .unwrap();
        let Some(Value::Map(entries)) = out.value else {
            panic!()
        };
        assert_eq!(entries[2].1, Value::String("****".into()));
    }
}
