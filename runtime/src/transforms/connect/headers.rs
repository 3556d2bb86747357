//! The header transforms: `InsertHeader` (a literal), `DropHeaders`, and
//! `HeaderFrom$Key` / `$Value` (copy or move fields into headers). Header
//! values are written as Connect's `SimpleHeaderConverter` writes them:
//! text as UTF-8.

use sluice_connector_api::{ConfigError, Value};

use crate::transforms::fields::{self, key_text, map_entries, struct_like, struct_values, Side};
use crate::transforms::schema_cache::SchemaCache;
use crate::transforms::settings::Settings;
use crate::transforms::{Failure, Record, Transform};

/// `InsertHeader`: adds `header` with `value.literal`.
pub struct InsertHeader {
    header: String,
    value: Vec<u8>,
}

impl InsertHeader {
    /// Reads `header` and `value.literal`.
    pub fn new(settings: &Settings) -> Result<Self, ConfigError> {
        Ok(Self {
            header: settings.required("header")?.to_owned(),
            value: settings.required("value.literal")?.as_bytes().to_vec(),
        })
    }
}

impl Transform for InsertHeader {
    fn apply(&self, mut record: Record) -> Result<Option<Record>, Failure> {
        record
            .headers
            .push((self.header.clone(), self.value.clone()));
        Ok(Some(record))
    }
}

/// `DropHeaders`: removes every header with one of the listed names.
pub struct DropHeaders {
    headers: Vec<String>,
}

impl DropHeaders {
    /// Reads `headers`.
    pub fn new(settings: &Settings) -> Result<Self, ConfigError> {
        let headers = settings.list("headers");
        if headers.is_empty() {
            return Err(settings.error("headers", "is required: the header names to drop"));
        }
        Ok(Self { headers })
    }
}

impl Transform for DropHeaders {
    fn apply(&self, mut record: Record) -> Result<Option<Record>, Failure> {
        record.headers.retain(|(k, _)| !self.headers.contains(k));
        Ok(Some(record))
    }
}

/// `HeaderFrom`: field i of `fields` becomes header i of `headers`.
pub struct HeaderFrom {
    side: Side,
    fields: Vec<String>,
    headers: Vec<String>,
    moves: bool,
    schemas: SchemaCache,
}

impl HeaderFrom {
    /// Reads `fields`, `headers` and `operation` (copy or move).
    pub fn new(side: Side, settings: &Settings) -> Result<Self, ConfigError> {
        let fields = settings.list("fields");
        let headers = settings.list("headers");
        if fields.is_empty() || fields.len() != headers.len() {
            return Err(settings.error(
                "headers",
                "fields and headers must be lists of the same, non-zero length",
            ));
        }
        let moves = settings.one_of("operation", &["copy", "move"], "copy")? == "move";
        Ok(Self {
            side,
            fields,
            headers,
            moves,
            schemas: SchemaCache::default(),
        })
    }
}

impl Transform for HeaderFrom {
    fn apply(&self, record: Record) -> Result<Option<Record>, Failure> {
        self.side.rewrite(record, |record, schema, value| {
            for (field, header) in self.fields.iter().zip(&self.headers) {
                let (_, v) = fields::get(schema.as_ref(), &value, field)?
                    .ok_or_else(|| Failure::new(format!("the record has no field {field}")))?;
                record
                    .headers
                    .push((header.clone(), fields::text_of(v).into_bytes()));
            }
            if !self.moves {
                return Ok((schema, value));
            }
            let keep = |name: &str| !self.fields.iter().any(|f| f == name);
            let (schema, value) = match schema {
                Some(schema) => {
                    let values = struct_values(&schema, &value)?;
                    let kept = schema
                        .fields()
                        .iter()
                        .zip(values)
                        .filter(|(f, _)| keep(&f.name))
                        .map(|(_, v)| v.clone())
                        .collect();
                    let derived = self.schemas.get_or(&schema, |s| {
                        let fields = s
                            .fields()
                            .iter()
                            .filter(|f| keep(&f.name))
                            .cloned()
                            .collect();
                        Ok::<_, Failure>(struct_like(s, fields))
                    })?;
                    (Some(derived), Value::Struct(kept))
                }
                None => (
                    None,
                    Value::Map(
                        map_entries(&value)?
                            .iter()
                            .filter(|(k, _)| key_text(k).is_some_and(keep))
                            .cloned()
                            .collect(),
                    ),
                ),
            };
            Ok((schema, value))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transforms::record::tests_support::row_record;

    #[test]
    fn insert_then_drop_headers() {
        let insert = InsertHeader::new(&Settings::from_pairs(
            "transforms.h.",
            &[("header", "origin"), ("value.literal", "eu-west")],
        ))
        .unwrap();
        let out = insert.apply(row_record(1, "a", "b")).unwrap().unwrap();
        assert_eq!(out.header("origin"), Some(&b"eu-west"[..]));
        let drop = DropHeaders::new(&Settings::from_pairs(
            "transforms.d.",
            &[("headers", "origin")],
        ))
        .unwrap();
        let out = drop.apply(out).unwrap().unwrap();
        assert!(out.headers.is_empty());
    }

    #[test]
    fn header_from_moves_a_field() {
        let t = HeaderFrom::new(
            Side::Value,
            &Settings::from_pairs(
                "transforms.h.",
                &[
                    ("fields", "email"),
                    ("headers", "contact"),
                    ("operation", "move"),
                ],
            ),
        )
        .unwrap();
        let out = t.apply(row_record(1, "ann", "a@x")).unwrap().unwrap();
        assert_eq!(out.header("contact"), Some(&b"a@x"[..]));
        assert_eq!(out.value_schema.unwrap().fields().len(), 2);
    }
}
