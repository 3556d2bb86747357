//! Reading and rebuilding record keys and values field by field, with a
//! schema (a Connect struct) or without one (a map with text keys, what a
//! schemaless JSON converter gives a sink).

use std::sync::Arc;

use sluice_connector_api::{Field, Schema, SchemaKind, Value};

use super::schema_cache::SchemaCache;
use super::{Failure, Record};

/// Which part of a record a `$Key` / `$Value` transform works on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The record key.
    Key,
    /// The record value.
    Value,
}

impl Side {
    /// The part of a Connect class name after `$`, if it names a side.
    pub fn from_suffix(suffix: &str) -> Option<Self> {
        match suffix {
            "Key" => Some(Self::Key),
            "Value" => Some(Self::Value),
            _ => None,
        }
    }

    /// Takes this side's schema and value out of `record`.
    pub fn take(self, record: &mut Record) -> (Option<Arc<Schema>>, Option<Value>) {
        match self {
            Self::Key => (record.key_schema.take(), record.key.take()),
            Self::Value => (record.value_schema.take(), record.value.take()),
        }
    }

    /// Applies `change` to this side of `record` unless it is null (a
    /// tombstone's value, a null key), which passes unchanged as in
    /// Connect's field transforms. `change` gets the record (for its topic,
    /// headers, ...) with this side taken out.
    pub fn rewrite(
        self,
        mut record: Record,
        change: impl FnOnce(
            &mut Record,
            Option<Arc<Schema>>,
            Value,
        ) -> Result<(Option<Arc<Schema>>, Value), Failure>,
    ) -> Result<Option<Record>, Failure> {
        let (schema, value) = self.take(&mut record);
        let Some(value) = value else {
            self.put(&mut record, schema, None);
            return Ok(Some(record));
        };
        let (schema, value) = change(&mut record, schema, value)?;
        self.put(&mut record, schema, Some(value));
        Ok(Some(record))
    }

    /// Puts this side's schema and value into `record`.
    pub fn put(self, record: &mut Record, schema: Option<Arc<Schema>>, value: Option<Value>) {
        match self {
            Self::Key => {
                record.key_schema = schema;
                record.key = value;
            }
            Self::Value => {
                record.value_schema = schema;
                record.value = value;
            }
        }
    }
}

/// A struct schema like `template` (name, version, doc, optionality,
/// parameters) with other fields.
pub fn struct_like(template: &Schema, fields: Vec<Field>) -> Schema {
    Schema {
        kind: SchemaKind::Struct(fields),
        optional: template.optional,
        name: template.name.clone(),
        version: template.version,
        doc: template.doc.clone(),
        parameters: template.parameters.clone(),
        default: None,
    }
}

/// The fields of a struct value, checked against its schema.
pub fn struct_values<'a>(schema: &Schema, value: &'a Value) -> Result<&'a [Value], Failure> {
    match (&schema.kind, value) {
        (SchemaKind::Struct(fields), Value::Struct(values)) if fields.len() == values.len() => {
            Ok(values)
        }
        _ => Err(Failure::new(format!(
            "expected a struct{}, found {}",
            schema
                .name
                .as_deref()
                .map(|n| format!(" ({n})"))
                .unwrap_or_default(),
            describe(value)
        ))),
    }
}

/// The entries of a schemaless map value, or a failure naming what it is.
pub fn map_entries(value: &Value) -> Result<&[(Value, Value)], Failure> {
    match value {
        Value::Map(entries) => Ok(entries),
        other => Err(Failure::new(format!(
            "expected a map (a schemaless record), found {}",
            describe(other)
        ))),
    }
}

/// The text of a map key, for schemaless field lookups.
pub fn key_text(key: &Value) -> Option<&str> {
    match key {
        Value::String(s) => Some(s),
        _ => None,
    }
}

/// What kind of value this is, for error messages.
pub fn describe(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Boolean(_) => "a boolean",
        Value::Int8(_) | Value::Int16(_) | Value::Int32(_) | Value::Int64(_) => "an integer",
        Value::Float32(_) | Value::Float64(_) => "a float",
        Value::String(_) => "a string",
        Value::Bytes(_) => "bytes",
        Value::Array(_) => "an array",
        Value::Map(_) => "a map",
        Value::Struct(_) | Value::Patched(..) => "a struct",
        Value::Shared(shared) => describe(shared),
    }
}

/// A value as text, the way Connect's `SimpleHeaderConverter` and
/// `toString` render it for headers and topic names.
pub fn text_of(value: &Value) -> String {
    match value {
        Value::Null => "null".to_owned(),
        Value::Boolean(b) => b.to_string(),
        Value::Int8(v) => v.to_string(),
        Value::Int16(v) => v.to_string(),
        Value::Int32(v) => v.to_string(),
        Value::Int64(v) => v.to_string(),
        Value::Float32(v) => v.to_string(),
        Value::Float64(v) => v.to_string(),
        Value::String(s) => s.as_str().to_owned(),
        Value::Bytes(b) => b.iter().map(|x| format!("{x:02x}")).collect(),
        Value::Array(items) => {
            let parts: Vec<String> = items.iter().map(text_of).collect();
            format!("[{}]", parts.join(", "))
        }
        Value::Map(entries) => {
            let parts: Vec<String> = entries
                .iter()
                .map(|(k, v)| format!("{}={}", text_of(k), text_of(v)))
                .collect();
            format!("{{{}}}", parts.join(", "))
        }
        Value::Struct(values) => {
            let parts: Vec<String> = values.iter().map(text_of).collect();
            format!("Struct{{{}}}", parts.join(","))
        }
        Value::Shared(shared) => text_of(shared),
        Value::Patched(..) => text_of(&value.plain()),
    }
}

/// A field found in a record: its schema (`None` when schemaless) and value.
pub type Found<'a> = (Option<&'a Arc<Schema>>, &'a Value);

/// The named field of a struct (with schema) or map (without), if present.
pub fn get<'a>(
    schema: Option<&'a Arc<Schema>>,
    value: &'a Value,
    name: &str,
) -> Result<Option<Found<'a>>, Failure> {
    match schema {
        Some(schema) => {
            let values = struct_values(schema, value)?;
            Ok(schema
                .field(name)
                .map(|(i, f)| (Some(&f.schema), &values[i])))
        }
        None => Ok(map_entries(value)?
            .iter()
            .find(|(k, _)| key_text(k) == Some(name))
            .map(|(_, v)| (None, v))),
    }
}

/// Rewrites the named fields of a struct (with its schema) or a map (a
/// schemaless record): `change(name, field schema, value)` gives a field's
/// new value, or `None` to keep it; `retype(field)` gives the new schema
/// of a struct field whose type changes. The derived struct schema is
/// cached per input schema; with no field retyped the input is kept.
pub fn rewrite_named(
    schema: Option<Arc<Schema>>,
    value: &Value,
    cache: &SchemaCache,
    change: impl Fn(&str, Option<&Schema>, &Value) -> Result<Option<Value>, Failure>,
    retype: impl Fn(&Field) -> Option<Schema>,
) -> Result<(Option<Arc<Schema>>, Value), Failure> {
    let keep = |name: &str, field: Option<&Schema>, v: &Value| {
        change(name, field, v).map(|new| new.unwrap_or_else(|| v.clone()))
    };
    match schema {
        Some(schema) => {
            let values = struct_values(&schema, value)?;
            let out = schema
                .fields()
                .iter()
                .zip(values)
                .map(|(f, v)| keep(&f.name, Some(&f.schema), v))
                .collect::<Result<_, _>>()?;
            let derived = if schema.fields().iter().any(|f| retype(f).is_some()) {
                cache.get_or(&schema, |s| {
                    let fields = s
                        .fields()
                        .iter()
                        .map(|f| match retype(f) {
                            Some(new) => Field {
                                name: f.name.clone(),
                                schema: Arc::new(new),
                            },
                            None => f.clone(),
                        })
                        .collect();
                    Ok::<_, Failure>(struct_like(s, fields))
                })?
            } else {
                schema
            };
            Ok((Some(derived), Value::Struct(out)))
        }
        None => {
            let entries = map_entries(value)?
                .iter()
                .map(|(k, v)| {
                    let new = match key_text(k) {
                        Some(name) => keep(name, None, v)?,
                        None => v.clone(),
                    };
                    Ok((k.clone(), new))
                })
                .collect::<Result<_, Failure>>()?;
            Ok((None, Value::Map(entries)))
        }
    }
}

/// An optional copy of `schema` (fields added by transforms may be null).
pub fn optional(schema: &Schema) -> Schema {
    let mut copy = schema.clone();
    copy.optional = true;
    copy
}
