//! `ValueToKey`: replaces the key by a struct (or map) of the listed value
//! fields.

use sluice_connector_api::{ConfigError, Field, Schema, Value};

use crate::transforms::fields::{self, Side};
use crate::transforms::schema_cache::SchemaCache;
use crate::transforms::settings::Settings;
use crate::transforms::{Failure, Record, Transform};

/// The configured transform.
pub struct ValueToKey {
    fields: Vec<String>,
    schemas: SchemaCache,
}

impl ValueToKey {
    /// Reads `fields`.
    pub fn new(settings: &Settings) -> Result<Self, ConfigError> {
        let fields = settings.list("fields");
        if fields.is_empty() {
            return Err(settings.error("fields", "is required: the value fields that make the key"));
        }
        Ok(Self {
            fields,
            schemas: SchemaCache::default(),
        })
    }
}

impl Transform for ValueToKey {
    fn apply(&self, mut record: Record) -> Result<Option<Record>, Failure> {
        let Some(value) = &record.value else {
            // Connect fails on a null value; a tombstone keeps its key here
            // so that deletes still reach compacted topics.
            return Ok(Some(record));
        };
        let schema = record.value_schema.as_ref();
        let mut key_values = Vec::with_capacity(self.fields.len());
        for name in &self.fields {
            let (_, v) = fields::get(schema, value, name)?.ok_or_else(|| {
                Failure::new(format!("ValueToKey: the value has no field {name}"))
            })?;
            key_values.push(v.clone());
        }
        match schema {
            Some(schema) => {
                let key_schema = self.schemas.get_or(schema, |s| {
                    let fields = self
                        .fields
                        .iter()
                        .filter_map(|n| s.field(n).map(|(_, f)| f.clone()))
                        .collect::<Vec<Field>>();
                    Ok::<_, Failure>(Schema::new(sluice_connector_api::SchemaKind::Struct(
                        fields,
                    )))
                })?;
                Side::Key.put(
                    &mut record,
                    Some(key_schema),
                    Some(Value::Struct(key_values)),
                );
            }
            None => {
                let entries = self
                    .fields
                    .iter()
                    .map(|n| Value::String(n.clone().into()))
                    .zip(key_values)
                    .collect();
                Side::Key.put(&mut record, None, Some(Value::Map(entries)));
            }
        }
        Ok(Some(record))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transforms::record::tests_support::row_record;

    #[test]
    fn the_key_becomes_the_listed_value_fields() {
        let t = ValueToKey::new(&Settings::from_pairs(
            "transforms.k.",
            &[("fields", "email,id")],
        ))
        .unwrap();
        let out = t.apply(row_record(3, "ann", "a@x")).unwrap().unwrap();
        let names: Vec<String> = out
            .key_schema
            .unwrap()
            .fields()
            .iter()
            .map(|f| f.name.clone())
            .collect();
        assert_eq!(names, ["email", "id"]);
        assert_eq!(
            out.key,
            Some(Value::Struct(vec![
                Value::String("a@x".into()),
                Value::Int32(3)
            ]))
        );
    }

    #[test]
    fn a_missing_field_fails_the_record() {
        let t = ValueToKey::new(&Settings::from_pairs(
            "transforms.k.",
            &[("fields", "nope")],
        ))
        .unwrap();
        assert!(t.apply(row_record(3, "ann", "a@x")).is_err());
    }
}
