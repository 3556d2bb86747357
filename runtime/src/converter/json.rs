//! Kafka Connect's JSON format: `{"schema": ..., "payload": ...}` with
//! schemas enabled, the bare payload without; bytes and decimals as base64,
//! exactly as `org.apache.kafka.connect.json.JsonConverter` writes them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use base64::Engine;
use serde_json::{Map, Value as Json};
use sluice_connector_api::{Schema, SchemaKind, Value};

use super::{ConvertError, Converter};

/// Cached schema JSON, keyed by the schema's address.
type SchemaCache = HashMap<usize, (Arc<Schema>, Arc<str>)>;

/// Connect's JSON converter.
pub struct JsonConverter {
    schemas_enable: bool,
    /// Schema JSON by schema identity: schemas are shared `Arc`s, so the
    /// pointer is a cheap key, and the held `Arc` keeps it valid.
    schema_cache: Mutex<SchemaCache>,
}

impl JsonConverter {
    /// A converter that embeds schemas when `schemas_enable`.
    pub fn new(schemas_enable: bool) -> Self {
        Self {
            schemas_enable,
            schema_cache: Mutex::new(HashMap::new()),
        }
    }

    /// The schema's JSON text, rendered once per schema.
    fn schema_json(&self, schema: &Arc<Schema>) -> Arc<str> {
        let key = Arc::as_ptr(schema) as usize;
        let mut cache = self.schema_cache.lock().unwrap_or_else(|e| e.into_inner());
        Arc::clone(
            &cache
                .entry(key)
                .or_insert_with(|| {
                    (
                        Arc::clone(schema),
                        Arc::from(schema_to_json(schema).to_string()),
                    )
                })
                .1,
        )
    }
}

impl Converter for JsonConverter {
    fn encode(
        &self,
        _topic: &str,
        schema: Option<&Arc<Schema>>,
        value: Option<&Value>,
    ) -> Result<Option<Vec<u8>>, ConvertError> {
        let Some(value) = value else {
            return Ok(None);
        };
        let payload = match schema {
            Some(s) => value_to_json(s, value, "")?,
            None => schemaless_to_json(value),
        };
        let payload = serde_json::to_vec(&payload).map_err(|e| ConvertError::Mismatch {
            path: String::new(),
            message: e.to_string(),
        })?;
        if !self.schemas_enable {
            return Ok(Some(payload));
        }
        // The envelope is written by hand around the cached schema text so
        // the schema is not rebuilt or re-serialised for every record.
        let schema_text = schema.map_or_else(|| Arc::from("null"), |s| self.schema_json(s));
        let mut out = Vec::with_capacity(schema_text.len() + payload.len() + 24);
        out.extend_from_slice(b"{\"schema\":");
        out.extend_from_slice(schema_text.as_bytes());
        out.extend_from_slice(b",\"payload\":");
        out.extend_from_slice(&payload);
        out.push(b'}');
        Ok(Some(out))
    }
}

/// A schema in Connect's JSON schema format.
pub fn schema_to_json(schema: &Schema) -> Json {
    let mut obj = Map::new();
    obj.insert("type".into(), Json::from(schema.kind.connect_name()));
    match &schema.kind {
        SchemaKind::Struct(fields) => {
            let fields = fields
                .iter()
                .map(|f| {
                    let mut field = match schema_to_json(&f.schema) {
                        Json::Object(m) => m,
                        _ => Map::new(),
                    };
                    field.insert("field".into(), Json::from(f.name.clone()));
                    Json::Object(field)
                })
                .collect();
            obj.insert("fields".into(), Json::Array(fields));
        }
        SchemaKind::Array(items) => {
            obj.insert("items".into(), schema_to_json(items));
        }
        SchemaKind::Map(k, v) => {
            obj.insert("keys".into(), schema_to_json(k));
            obj.insert("values".into(), schema_to_json(v));
        }
        _ => {}
    }
    obj.insert("optional".into(), Json::from(schema.optional));
    if let Some(name) = &schema.name {
        obj.insert("name".into(), Json::from(name.clone()));
    }
    if let Some(version) = schema.version {
        obj.insert("version".into(), Json::from(version));
    }
    if let Some(doc) = &schema.doc {
        obj.insert("doc".into(), Json::from(doc.clone()));
    }
    if !schema.parameters.is_empty() {
        let params = schema
            .parameters
            .iter()
            .map(|(k, v)| (k.clone(), Json::from(v.clone())))
            .collect();
        obj.insert("parameters".into(), Json::Object(params));
    }
    if let Some(default) = &schema.default {
        obj.insert("default".into(), schemaless_to_json(default));
    }
    Json::Object(obj)
}

fn mismatch(path: &str, schema: &Schema, value: &Value) -> ConvertError {
    ConvertError::Mismatch {
        path: if path.is_empty() {
            "<root>".into()
        } else {
            path.to_owned()
        },
        message: format!(
            "expected {}{}, found {value:?}",
            schema.kind.connect_name(),
            if schema.optional { " or null" } else { "" }
        ),
    }
}

fn float(v: f64) -> Json {
    serde_json::Number::from_f64(v).map_or_else(|| Json::from(v.to_string()), Json::Number)
}

/// `value` as JSON, checked against `schema`.
pub fn value_to_json(schema: &Schema, value: &Value, path: &str) -> Result<Json, ConvertError> {
    let b64 = base64::engine::general_purpose::STANDARD;
    Ok(match (&schema.kind, value) {
        (_, Value::Null) if schema.optional || schema.default.is_some() => Json::Null,
        (SchemaKind::Int8, Value::Int8(v)) => Json::from(*v),
        (SchemaKind::Int16, Value::Int16(v)) => Json::from(*v),
        (SchemaKind::Int32, Value::Int32(v)) => Json::from(*v),
        (SchemaKind::Int64, Value::Int64(v)) => Json::from(*v),
        (SchemaKind::Float32, Value::Float32(v)) => float(f64::from(*v)),
        (SchemaKind::Float64, Value::Float64(v)) => float(*v),
        (SchemaKind::Boolean, Value::Boolean(v)) => Json::from(*v),
        (SchemaKind::String, Value::String(v)) => Json::from(v.as_str()),
        (SchemaKind::Bytes, Value::Bytes(v)) => Json::from(b64.encode(v)),
        (SchemaKind::Array(items), Value::Array(vs)) => Json::Array(
            vs.iter()
                .enumerate()
                .map(|(i, v)| value_to_json(items, v, &format!("{path}[{i}]")))
                .collect::<Result<_, _>>()?,
        ),
        (SchemaKind::Map(ks, vs), Value::Map(entries)) => {
            if matches!(ks.kind, SchemaKind::String) {
                let mut obj = Map::with_capacity(entries.len());
                for (k, v) in entries {
                    let Value::String(name) = k else {
                        return Err(mismatch(path, ks, k));
                    };
                    obj.insert(
                        name.clone(),
                        value_to_json(vs, v, &format!("{path}.{name}"))?,
                    );
                }
                Json::Object(obj)
            } else {
                Json::Array(
                    entries
                        .iter()
                        .map(|(k, v)| {
                            Ok(Json::Array(vec![
                                value_to_json(ks, k, path)?,
                                value_to_json(vs, v, path)?,
                            ]))
                        })
                        .collect::<Result<_, ConvertError>>()?,
                )
            }
        }
        (SchemaKind::Struct(fields), Value::Struct(values)) => {
            if fields.len() != values.len() {
                return Err(ConvertError::Mismatch {
                    path: path.to_owned(),
                    message: format!(
                        "struct has {} fields but {} values",
                        fields.len(),
                        values.len()
                    ),
                });
            }
            let mut obj = Map::with_capacity(fields.len());
            for (field, v) in fields.iter().zip(values) {
                let child = if path.is_empty() {
                    field.name.clone()
                } else {
                    format!("{path}.{}", field.name)
                };
                obj.insert(field.name.clone(), value_to_json(&field.schema, v, &child)?);
            }
            Json::Object(obj)
        }
        _ => return Err(mismatch(path, schema, value)),
    })
}

/// `value` as JSON without a schema to check against.
fn schemaless_to_json(value: &Value) -> Json {
    let b64 = base64::engine::general_purpose::STANDARD;
    match value {
        Value::Null => Json::Null,
        Value::Boolean(v) => Json::from(*v),
        Value::Int8(v) => Json::from(*v),
        Value::Int16(v) => Json::from(*v),
        Value::Int32(v) => Json::from(*v),
        Value::Int64(v) => Json::from(*v),
        Value::Float32(v) => float(f64::from(*v)),
        Value::Float64(v) => float(*v),
        Value::String(v) => Json::from(v.as_str()),
        Value::Bytes(v) => Json::from(b64.encode(v)),
        Value::Array(vs) => Json::Array(vs.iter().map(schemaless_to_json).collect()),
        Value::Map(entries) => Json::Array(
            entries
                .iter()
                .map(|(k, v)| Json::Array(vec![schemaless_to_json(k), schemaless_to_json(v)]))
                .collect(),
        ),
        Value::Struct(vs) => Json::Array(vs.iter().map(schemaless_to_json).collect()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use sluice_connector_api::{logical, Field};

    fn schema() -> Arc<Schema> {
        Arc::new(Schema::structure(
            "db.inventory.Value",
            vec![
                Field::new("id", Schema::int32()),
                Field::new("price", logical::decimal(2, Some(8))),
                Field::new("note", Schema::string().optional()),
            ],
        ))
    }

    fn row() -> Value {
        Value::Struct(vec![Value::Int32(7), Value::decimal(1999), Value::Null])
    }

    #[test]
    fn schemas_enabled_matches_connects_envelope() {
        let bytes = JsonConverter::new(true)
            .encode("t", Some(&schema()), Some(&row()))
            .expect("convert")
            .expect("not a tombstone");
        let doc: Json = serde_json::from_slice(&bytes).expect("json");
        assert_eq!(
            doc,
            json!({
                "schema": {
                    "type": "struct", "optional": false, "name": "db.inventory.Value",
                    "fields": [
                        {"type": "int32", "optional": false, "field": "id"},
                        {"type": "bytes", "optional": false, "field": "price",
                         "name": "org.apache.kafka.connect.data.Decimal", "version": 1,
                         "parameters": {"scale": "2", "connect.decimal.precision": "8"}},
                        {"type": "string", "optional": true, "field": "note"}
                    ]
                },
                "payload": {"id": 7, "price": "B88=", "note": null}
            })
        );
    }

    #[test]
    fn schemas_disabled_writes_the_bare_payload_and_null_is_a_tombstone() {
        let converter = JsonConverter::new(false);
        let bytes = converter
            .encode("t", Some(&schema()), Some(&row()))
            .expect("convert")
            .expect("value");
        assert_eq!(
            serde_json::from_slice::<Json>(&bytes).expect("json"),
            json!({"id": 7, "price": "B88=", "note": null})
        );
        assert_eq!(
            converter.encode("t", Some(&schema()), None).expect("ok"),
            None
        );
    }

    #[test]
    fn a_null_in_a_required_field_names_the_field() {
        let bad = Value::Struct(vec![Value::Null, Value::decimal(1), Value::Null]);
        let err = JsonConverter::new(true)
            .encode("t", Some(&schema()), Some(&bad))
            .expect_err("null id");
        assert!(err.to_string().contains("at id"), "{err}");
    }
}
