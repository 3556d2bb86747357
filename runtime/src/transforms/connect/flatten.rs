//! `Flatten$Key` / `$Value`: nested structs (or maps) become top-level
//! fields named by their path joined with `delimiter` (default `.`). A
//! field inside an optional struct becomes optional; a null struct gives
//! nulls for all its fields.

use std::sync::Arc;

use sluice_connector_api::{ConfigError, Field, Schema, SchemaKind, Value};

use crate::transforms::fields::{self, key_text, map_entries, struct_like, Side};
use crate::transforms::schema_cache::SchemaCache;
use crate::transforms::settings::Settings;
use crate::transforms::{Failure, Record, Transform};

/// The configured transform.
pub struct Flatten {
    side: Side,
    delimiter: String,
    schemas: SchemaCache,
}

impl Flatten {
    /// Reads `delimiter`.
    pub fn new(side: Side, settings: &Settings) -> Result<Self, ConfigError> {
        Ok(Self {
            side,
            delimiter: settings.get_or("delimiter", ".").to_owned(),
            schemas: SchemaCache::default(),
        })
    }

    fn flat_fields(&self, prefix: &str, schema: &Schema, optional: bool, out: &mut Vec<Field>) {
        for field in schema.fields() {
            let name = self.join(prefix, &field.name);
            if let SchemaKind::Struct(_) = field.schema.kind {
                self.flat_fields(&name, &field.schema, optional || field.schema.optional, out);
            } else {
                let schema = if optional && !field.schema.optional {
                    Arc::new(fields::optional(&field.schema))
                } else {
                    Arc::clone(&field.schema)
                };
                out.push(Field { name, schema });
            }
        }
    }

    fn flat_values(&self, schema: &Schema, value: &Value, out: &mut Vec<Value>) {
        let values = match value {
            Value::Struct(values) => Some(values),
            _ => None,
        };
        for (i, field) in schema.fields().iter().enumerate() {
            let v = values.and_then(|vs| vs.get(i)).unwrap_or(&Value::Null);
            if let SchemaKind::Struct(_) = field.schema.kind {
                self.flat_values(&field.schema, v, out);
            } else {
                out.push(v.clone());
            }
        }
    }

    fn flat_map(&self, prefix: &str, entries: &[(Value, Value)], out: &mut Vec<(Value, Value)>) {
        for (k, v) in entries {
            let Some(name) = key_text(k) else { continue };
            let name = self.join(prefix, name);
            match v {
                Value::Map(inner) => self.flat_map(&name, inner, out),
                other => out.push((Value::String(name.into()), other.clone())),
            }
        }
    }

    fn join(&self, prefix: &str, name: &str) -> String {
        if prefix.is_empty() {
            name.to_owned()
        } else {
            format!("{prefix}{}{name}", self.delimiter)
        }
    }
}

impl Transform for Flatten {
    fn apply(&self, record: Record) -> Result<Option<Record>, Failure> {
        self.side.rewrite(record, |_, schema, value| {
            let (schema, value) = match schema {
                Some(schema) => {
                    fields::struct_values(&schema, &value)?;
                    let derived = self.schemas.get_or(&schema, |s| {
                        let mut out = Vec::new();
                        self.flat_fields("", s, false, &mut out);
                        Ok::<_, Failure>(struct_like(s, out))
                    })?;
                    let mut out = Vec::with_capacity(derived.fields().len());
                    self.flat_values(&schema, &value, &mut out);
                    (Some(derived), Value::Struct(out))
                }
                None => {
                    let mut out = Vec::new();
                    self.flat_map("", map_entries(&value)?, &mut out);
                    (None, Value::Map(out))
                }
            };
            Ok((schema, value))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transforms::record::tests_support::{envelope_with, row};

    #[test]
    fn an_envelope_flattens_with_a_delimiter() {
        let envelope = envelope_with(vec![Field::new("op", Schema::string())]);
        let mut record = crate::transforms::record::tests_support::record_on("t");
        record.value_schema = Some(envelope);
        record.value = Some(Value::Struct(vec![
            Value::Null,
            row(1, "ann", "a@x"),
            Value::String("c".into()),
        ]));
        let t = Flatten::new(
            Side::Value,
            &Settings::from_pairs("transforms.f.", &[("delimiter", "_")]),
        )
        .unwrap();
        let out = t.apply(record).unwrap().unwrap();
        let schema = out.value_schema.unwrap();
        let names: Vec<&str> = schema.fields().iter().map(|f| f.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "before_id",
                "before_name",
                "before_email",
                "after_id",
                "after_name",
                "after_email",
                "op"
            ]
        );
        // id is required in the row, optional once its struct may be null.
        assert!(schema.fields()[0].schema.optional);
        let Some(Value::Struct(values)) = out.value else {
            panic!()
        };
        assert_eq!(values[0], Value::Null);
        assert_eq!(values[3], Value::Int32(1));
        assert_eq!(values[6], Value::String("c".into()));
    }
}
