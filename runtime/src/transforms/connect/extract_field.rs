//! `ExtractField$Key` / `$Value`: replaces the key or value by one of its
//! fields (and the schema by that field's schema).

use sluice_connector_api::ConfigError;

use crate::transforms::fields::{self, Side};
use crate::transforms::settings::Settings;
use crate::transforms::{Failure, Record, Transform};

/// The configured transform.
pub struct ExtractField {
    side: Side,
    field: String,
}

impl ExtractField {
    /// Reads `field`.
    pub fn new(side: Side, settings: &Settings) -> Result<Self, ConfigError> {
        Ok(Self {
            side,
            field: settings.required("field")?.trim().to_owned(),
        })
    }
}

impl Transform for ExtractField {
    fn apply(&self, mut record: Record) -> Result<Option<Record>, Failure> {
        let (schema, value) = self.side.take(&mut record);
        let Some(value) = value else {
            self.side.put(&mut record, schema, None);
            return Ok(Some(record));
        };
        let found = fields::get(schema.as_ref(), &value, &self.field)?;
        let (schema, value) = match (found, &schema) {
            (Some((field_schema, v)), _) => (field_schema.cloned(), Some(v.clone())),
            // Connect: a schemaless record without the field gives null; a
            // schema without it is an error.
            (None, None) => (None, None),
            (None, Some(_)) => {
                return Err(Failure::new(format!(
                    "the record has no field {}",
                    self.field
                )))
            }
        };
        self.side.put(&mut record, schema, value);
        Ok(Some(record))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transforms::record::tests_support::row_record;
    use sluice_connector_api::Value;

    #[test]
    fn the_key_becomes_its_id() {
        let t = ExtractField::new(
            Side::Key,
            &Settings::from_pairs("transforms.x.", &[("field", "id")]),
        )
        .unwrap();
        let out = t.apply(row_record(5, "a", "b")).unwrap().unwrap();
        assert_eq!(out.key, Some(Value::Int32(5)));
        assert_eq!(
            out.key_schema.unwrap().kind,
            sluice_connector_api::SchemaKind::Int32
        );
    }
}
