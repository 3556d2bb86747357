//! `SetSchemaMetadata$Key` / `$Value`: sets the schema's name and/or
//! version (the Avro record name and `connect.version` in the registry).

use sluice_connector_api::ConfigError;

use crate::transforms::fields::Side;
use crate::transforms::schema_cache::SchemaCache;
use crate::transforms::settings::Settings;
use crate::transforms::{Failure, Record, Transform};

/// The configured transform.
pub struct SetSchemaMetadata {
    side: Side,
    name: Option<String>,
    version: Option<i32>,
    schemas: SchemaCache,
}

impl SetSchemaMetadata {
    /// Reads `schema.name` and `schema.version`.
    pub fn new(side: Side, settings: &Settings) -> Result<Self, ConfigError> {
        let name = settings
            .get("schema.name")
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(str::to_owned);
        let version = match settings.get("schema.version").map(str::trim) {
            None | Some("") => None,
            Some(v) => Some(v.parse::<i32>().map_err(|_| {
                settings.error("schema.version", format!("{v:?} is not an integer"))
            })?),
        };
        if name.is_none() && version.is_none() {
            return Err(settings.error(
                "schema.name",
                "set schema.name and/or schema.version; with neither this transform does nothing",
            ));
        }
        Ok(Self {
            side,
            name,
            version,
            schemas: SchemaCache::default(),
        })
    }
}

impl Transform for SetSchemaMetadata {
    fn apply(&self, mut record: Record) -> Result<Option<Record>, Failure> {
        let (schema, value) = self.side.take(&mut record);
        let schema = match schema {
            Some(schema) => Some(self.schemas.get_or(&schema, |s| {
                let mut s = s.clone();
                if let Some(name) = &self.name {
                    s.name = Some(name.clone());
                }
                if let Some(version) = self.version {
                    s.version = Some(version);
                }
                Ok::<_, Failure>(s)
            })?),
            None => {
                return Err(Failure::new(
                    "SetSchemaMetadata needs a record with a schema (schemaless JSON has none)",
                ))
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

    #[test]
    fn renames_the_value_schema() {
        let t = SetSchemaMetadata::new(
            Side::Value,
            &Settings::from_pairs(
                "transforms.s.",
                &[
                    ("schema.name", "com.example.Customer"),
                    ("schema.version", "3"),
                ],
            ),
        )
        .unwrap();
        let out = t.apply(row_record(1, "a", "b")).unwrap().unwrap();
        let schema = out.value_schema.unwrap();
        assert_eq!(schema.name.as_deref(), Some("com.example.Customer"));
        assert_eq!(schema.version, Some(3));
    }
}
