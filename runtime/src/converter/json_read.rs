//! Reading Connect's JSON format back into the record model, for sink
//! tasks: `{"schema", "payload"}` envelopes become a schema and a typed
//! value; bare payloads (schemas disabled) become schemaless values.

use std::sync::Arc;

use base64::Engine;
use serde_json::{Map, Value as Json};
use sluice_connector_api::{Field, Schema, SchemaKind, Value};

use super::ConvertError;

fn bad(path: &str, message: impl Into<String>) -> ConvertError {
    ConvertError::Mismatch {
        path: if path.is_empty() {
            "<root>".into()
        } else {
            path.to_owned()
        },
        message: message.into(),
    }
}

/// The schema (if the message carries one) and value of a JSON message.
pub fn read(
    bytes: &[u8],
    schemas_enable: bool,
) -> Result<(Option<Arc<Schema>>, Value), ConvertError> {
    let json: Json = serde_json::from_slice(bytes).map_err(|e| {
        bad(
            "",
            format!("not JSON ({e}); was it written by the Avro converter?"),
        )
    })?;
    if !schemas_enable {
        return Ok((None, schemaless(json)));
    }
    let Json::Object(mut envelope) = json else {
        return Err(bad(
            "",
            "expected {\"schema\": ..., \"payload\": ...} (schemas.enable=true); set the converter's schemas.enable=false for bare JSON",
        ));
    };
    let (Some(schema), Some(payload)) = (envelope.remove("schema"), envelope.remove("payload"))
    else {
        return Err(bad(
            "",
            "the message has no \"schema\" and \"payload\" fields; set the converter's schemas.enable=false for bare JSON",
        ));
    };
    if schema.is_null() {
        return Ok((None, schemaless(payload)));
    }
    let schema = Arc::new(to_schema(&schema, "")?);
    let value = to_value(&schema, payload, "")?;
    Ok((Some(schema), value))
}

/// A schema from Connect's JSON schema format.
pub fn to_schema(json: &Json, path: &str) -> Result<Schema, ConvertError> {
    let obj = json
        .as_object()
        .ok_or_else(|| bad(path, "a schema must be an object"))?;
    let ty = obj.get("type").and_then(Json::as_str).unwrap_or_default();
    let kind = match ty {
        "int8" => SchemaKind::Int8,
        "int16" => SchemaKind::Int16,
        "int32" => SchemaKind::Int32,
        "int64" => SchemaKind::Int64,
        "float" => SchemaKind::Float32,
        "double" => SchemaKind::Float64,
        "boolean" => SchemaKind::Boolean,
        "string" => SchemaKind::String,
        "bytes" => SchemaKind::Bytes,
        "array" => SchemaKind::Array(Arc::new(to_schema(
            obj.get("items").unwrap_or(&Json::Null),
            path,
        )?)),
        "map" => SchemaKind::Map(
            Arc::new(to_schema(obj.get("keys").unwrap_or(&Json::Null), path)?),
            Arc::new(to_schema(obj.get("values").unwrap_or(&Json::Null), path)?),
        ),
        "struct" => {
            let mut fields = Vec::new();
            for f in obj
                .get("fields")
                .and_then(Json::as_array)
                .map_or(&[][..], Vec::as_slice)
            {
                let name = f.get("field").and_then(Json::as_str).unwrap_or_default();
                let sub = format!("{path}{}{name}", if path.is_empty() { "" } else { "." });
                fields.push(Field::new(name, to_schema(f, &sub)?));
            }
            SchemaKind::Struct(fields)
        }
        other => return Err(bad(path, format!("unknown schema type {other:?}"))),
    };
    let mut schema = Schema::new(kind);
    schema.optional = obj.get("optional").and_then(Json::as_bool).unwrap_or(false);
    schema.name = obj.get("name").and_then(Json::as_str).map(str::to_owned);
    schema.version = obj.get("version").and_then(Json::as_i64).map(|v| v as i32);
    schema.doc = obj.get("doc").and_then(Json::as_str).map(str::to_owned);
    if let Some(Json::Object(params)) = obj.get("parameters") {
        for (k, v) in params {
            let v = v.as_str().map_or_else(|| v.to_string(), str::to_owned);
            schema.parameters.insert(k.clone(), v);
        }
    }
    if let Some(default) = obj.get("default") {
        schema.default = to_value(&schema, default.clone(), path).ok();
    }
    Ok(schema)
}

/// `json` as a value of `schema`.
pub fn to_value(schema: &Schema, json: Json, path: &str) -> Result<Value, ConvertError> {
    let wrong = |json: &Json| {
        bad(
            path,
            format!("expected {}, found {json}", schema.kind.connect_name()),
        )
    };
    Ok(match (&schema.kind, json) {
        (_, Json::Null) if schema.optional => Value::Null,
        (_, Json::Null) => return Err(bad(path, "null in a required field")),
        (SchemaKind::Int8, Json::Number(n)) => Value::Int8(n.as_i64().unwrap_or_default() as i8),
        (SchemaKind::Int16, Json::Number(n)) => Value::Int16(n.as_i64().unwrap_or_default() as i16),
        (SchemaKind::Int32, Json::Number(n)) => Value::Int32(n.as_i64().unwrap_or_default() as i32),
        (SchemaKind::Int64, Json::Number(n)) => Value::Int64(n.as_i64().unwrap_or_default()),
        (SchemaKind::Float32, Json::Number(n)) => {
            Value::Float32(n.as_f64().unwrap_or_default() as f32)
        }
        (SchemaKind::Float64, Json::Number(n)) => Value::Float64(n.as_f64().unwrap_or_default()),
        // Connect writes NaN and infinities as strings.
        (SchemaKind::Float32, Json::String(s)) => Value::Float32(
            s.parse()
                .map_err(|_| bad(path, format!("not a float: {s}")))?,
        ),
        (SchemaKind::Float64, Json::String(s)) => Value::Float64(
            s.parse()
                .map_err(|_| bad(path, format!("not a double: {s}")))?,
        ),
        (SchemaKind::Boolean, Json::Bool(b)) => Value::Boolean(b),
        (SchemaKind::String, Json::String(s)) => Value::String(s.into()),
        // decimal.format=NUMERIC writes decimals as numbers.
        (SchemaKind::Bytes, Json::Number(n))
            if schema.name.as_deref() == Some(sluice_connector_api::logical::DECIMAL) =>
        {
            let scale = schema
                .parameters
                .get(sluice_connector_api::logical::DECIMAL_SCALE)
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            let text = n.to_string();
            let unscaled = sluice_connector_api::calendar::parse_decimal(&text)
                .and_then(|(unscaled, from)| {
                    sluice_connector_api::calendar::rescale(unscaled, from, scale)
                })
                .ok_or_else(|| bad(path, format!("not a decimal of scale {scale}: {text}")))?;
            Value::decimal(unscaled)
        }
        (SchemaKind::Bytes, Json::String(s)) => Value::Bytes(
            base64::engine::general_purpose::STANDARD
                .decode(s.as_bytes())
                .map_err(|e| bad(path, format!("bytes must be base64: {e}")))?,
        ),
        (SchemaKind::Array(items), Json::Array(values)) => Value::Array(
            values
                .into_iter()
                .map(|v| to_value(items, v, path))
                .collect::<Result<_, _>>()?,
        ),
        (SchemaKind::Map(_, values), Json::Object(entries)) => Value::Map(
            entries
                .into_iter()
                .map(|(k, v)| Ok((Value::String(k.into()), to_value(values, v, path)?)))
                .collect::<Result<_, ConvertError>>()?,
        ),
        (SchemaKind::Map(keys, values), Json::Array(pairs)) => Value::Map(
            pairs
                .into_iter()
                .map(|pair| match pair {
                    Json::Array(mut kv) if kv.len() == 2 => {
                        let v = kv.pop().unwrap_or_default();
                        let k = kv.pop().unwrap_or_default();
                        Ok((to_value(keys, k, path)?, to_value(values, v, path)?))
                    }
                    other => Err(wrong(&other)),
                })
                .collect::<Result<_, _>>()?,
        ),
        (SchemaKind::Struct(fields), Json::Object(mut obj)) => Value::Struct(
            fields
                .iter()
                .map(|f| {
                    let sub = format!("{path}{}{}", if path.is_empty() { "" } else { "." }, f.name);
                    let v = obj.remove(&f.name).unwrap_or(Json::Null);
                    match (&f.schema.default, &v) {
                        (Some(d), Json::Null) => Ok(d.clone()),
                        _ => to_value(&f.schema, v, &sub),
                    }
                })
                .collect::<Result<_, _>>()?,
        ),
        (_, other) => return Err(wrong(&other)),
    })
}

/// A bare JSON value without a schema.
fn schemaless(json: Json) -> Value {
    match json {
        Json::Null => Value::Null,
        Json::Bool(b) => Value::Boolean(b),
        Json::Number(n) => n
            .as_i64()
            .map(Value::Int64)
            .unwrap_or_else(|| Value::Float64(n.as_f64().unwrap_or_default())),
        Json::String(s) => Value::String(s.into()),
        Json::Array(items) => Value::Array(items.into_iter().map(schemaless).collect()),
        Json::Object(map) => Value::Map(object_entries(map)),
    }
}

fn object_entries(map: Map<String, Json>) -> Vec<(Value, Value)> {
    map.into_iter()
        .map(|(k, v)| (Value::String(k.into()), schemaless(v)))
        .collect()
}
