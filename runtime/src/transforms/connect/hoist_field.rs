//! `HoistField$Key` / `$Value`: wraps the key or value in a struct (or map)
//! with one field called `field`.

use std::sync::Arc;

use sluice_connector_api::{ConfigError, Field, Schema, SchemaKind, Value};

use crate::transforms::fields::Side;
use crate::transforms::schema_cache::SchemaCache;
use crate::transforms::settings::Settings;
use crate::transforms::{Failure, Record, Transform};

/// The configured transform.
pub struct HoistField {
    side: Side,
    field: String,
    schemas: SchemaCache,
}

impl HoistField {
    /// Reads `field`.
    pub fn new(side: Side, settings: &Settings) -> Result<Self, ConfigError> {
        Ok(Self {
            side,
            field: settings.required("field")?.trim().to_owned(),
            schemas: SchemaCache::default(),
        })
    }
}

impl Transform for HoistField {
    fn apply(&self, mut record: Record) -> Result<Option<Record>, Failure> {
        let (schema, value) = self.side.take(&mut record);
        let inner = value.unwrap_or(Value::Null);
        let (schema, value) = match schema {
            Some(schema) => {
                let wrapped = self.schemas.get_or(&schema, |s| {
                    Ok::<_, Failure>(Schema::new(SchemaKind::Struct(vec![Field {
                        name: self.field.clone(),
                        schema: Arc::new(s.clone()),
                    }])))
                })?;
                (Some(wrapped), Value::Struct(vec![inner]))
            }
            None => (
                None,
                Value::Map(vec![(Value::String(self.field.clone().into()), inner)]),
            ),
        };
        self.side.put(&mut record, schema, Some(value));
        Ok(Some(record))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transforms::record::tests_support::record_on;

    #[test]
    fn wraps_a_plain_value() {
        let t = HoistField::new(
            Side::Value,
            &Settings::from_pairs("transforms.h.", &[("field", "line")]),
        )
        .unwrap();
        let mut r = record_on("t");
        r.value_schema = Some(Arc::new(Schema::string()));
        r.value = Some(Value::String("hi".into()));
        let out = t.apply(r).unwrap().unwrap();
        assert_eq!(
            out.value,
            Some(Value::Struct(vec![Value::String("hi".into())]))
        );
        assert_eq!(out.value_schema.unwrap().fields()[0].name, "line");
    }
}
