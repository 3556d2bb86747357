//! `ReplaceField$Key` / `$Value`: keeps only `include`d fields, drops
//! `exclude`d ones (the older `whitelist` / `blacklist` spellings too) and
//! renames with `renames` (`old:new,…`).

use std::sync::Arc;

use sluice_connector_api::{ConfigError, Field, Value};

use crate::transforms::fields::{key_text, map_entries, struct_like, struct_values, Side};
use crate::transforms::schema_cache::SchemaCache;
use crate::transforms::settings::Settings;
use crate::transforms::{Failure, Record, Transform};

/// The configured transform.
pub struct ReplaceField {
    side: Side,
    include: Vec<String>,
    exclude: Vec<String>,
    renames: Vec<(String, String)>,
    schemas: SchemaCache,
}

impl ReplaceField {
    /// Reads `include`, `exclude` and `renames`.
    pub fn new(side: Side, settings: &Settings) -> Result<Self, ConfigError> {
        let either = |new: &str, old: &str| {
            let list = settings.list(new);
            if list.is_empty() {
                settings.list(old)
            } else {
                list
            }
        };
        let renames = settings
            .list("renames")
            .into_iter()
            .map(|pair| match pair.split_once(':') {
                Some((from, to)) if !from.trim().is_empty() && !to.trim().is_empty() => {
                    Ok((from.trim().to_owned(), to.trim().to_owned()))
                }
                _ => Err(settings.error(
                    "renames",
                    format!("{pair:?} is not old:new; write renames as a list like a:b,c:d"),
                )),
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            side,
            include: either("include", "whitelist"),
            exclude: either("exclude", "blacklist"),
            renames,
            schemas: SchemaCache::default(),
        })
    }

    fn keeps(&self, name: &str) -> bool {
        !self.exclude.iter().any(|e| e == name)
            && (self.include.is_empty() || self.include.iter().any(|i| i == name))
    }

    fn renamed<'a>(&'a self, name: &'a str) -> &'a str {
        self.renames
            .iter()
            .find(|(from, _)| from == name)
            .map_or(name, |(_, to)| to.as_str())
    }
}

impl Transform for ReplaceField {
    fn apply(&self, record: Record) -> Result<Option<Record>, Failure> {
        self.side.rewrite(record, |_, schema, value| {
            let (schema, value) = match schema {
                Some(schema) => {
                    let values = struct_values(&schema, &value)?;
                    let kept: Vec<Value> = schema
                        .fields()
                        .iter()
                        .zip(values)
                        .filter(|(f, _)| self.keeps(&f.name))
                        .map(|(_, v)| v.clone())
                        .collect();
                    let derived = self.schemas.get_or(&schema, |s| {
                        let fields = s
                            .fields()
                            .iter()
                            .filter(|f| self.keeps(&f.name))
                            .map(|f| Field {
                                name: self.renamed(&f.name).to_owned(),
                                schema: Arc::clone(&f.schema),
                            })
                            .collect();
                        Ok::<_, Failure>(struct_like(s, fields))
                    })?;
                    (Some(derived), Value::Struct(kept))
                }
                None => {
                    let entries = map_entries(&value)?
                        .iter()
                        .filter_map(|(k, v)| {
                            let name = key_text(k)?;
                            self.keeps(name)
                                .then(|| (Value::String(self.renamed(name).into()), v.clone()))
                        })
                        .collect();
                    (None, Value::Map(entries))
                }
            };
            Ok((schema, value))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transforms::record::tests_support::{row_record, schemaless};

    fn replace(pairs: &[(&str, &str)]) -> ReplaceField {
        ReplaceField::new(Side::Value, &Settings::from_pairs("transforms.r.", pairs)).unwrap()
    }

    #[test]
    fn excludes_and_renames_with_a_schema() {
        let t = replace(&[("exclude", "email"), ("renames", "name:full_name")]);
        let out = t.apply(row_record(1, "ann", "a@x")).unwrap().unwrap();
        let schema = out.value_schema.unwrap();
        let names: Vec<&str> = schema.fields().iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["id", "full_name"]);
        assert_eq!(
            out.value,
            Some(Value::Struct(vec![
                Value::Int32(1),
                Value::String("ann".into())
            ]))
        );
    }

    #[test]
    fn includes_without_a_schema() {
        let t = replace(&[("whitelist", "id")]);
        let out = t
            .apply(schemaless(row_record(1, "ann", "a@x")))
            .unwrap()
            .unwrap();
        assert_eq!(
            out.value,
            Some(Value::Map(vec![(
                Value::String("id".into()),
                Value::Int32(1)
            )]))
        );
    }

    #[test]
    fn a_bad_rename_names_the_key() {
        let e = ReplaceField::new(
            Side::Key,
            &Settings::from_pairs("transforms.r.", &[("renames", "a")]),
        )
        .err()
        .unwrap();
        assert_eq!(e.key, "transforms.r.renames");
    }
}
