//! Kafka Connect's JSON format: `{"schema": ..., "payload": ...}` with
//! schemas enabled, the bare payload without; bytes and decimals as base64,
//! exactly as `org.apache.kafka.connect.json.JsonConverter` writes them,
//! with its `decimal.format` and `replace.null.with.default` options.
//! Payloads are written straight to bytes, without a JSON tree.

use std::collections::HashMap;
use std::io::Write as _;
use std::sync::{Arc, Mutex};

use base64::Engine;
use serde_json::{Map, Value as Json};
use sluice_connector_api::decimal::decimal_text;
use sluice_connector_api::{logical, Schema, SchemaKind, Value};

use super::{ConvertError, Converter};

/// Cached schema JSON, keyed by the schema's address.
type SchemaCache = HashMap<usize, (Arc<Schema>, Arc<str>)>;

/// How values are written: JsonConverter's `decimal.format` and
/// `replace.null.with.default`, with Connect's defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JsonOptions {
    /// `decimal.format=NUMERIC`: decimals as JSON numbers (BASE64, the
    /// default, writes their unscaled bytes in base64).
    pub decimal_numeric: bool,
    /// `replace.null.with.default` (default true): a null whose schema has
    /// a default is written as the default.
    pub replace_null_with_default: bool,
}

impl Default for JsonOptions {
    fn default() -> Self {
        Self {
            decimal_numeric: false,
            replace_null_with_default: true,
        }
    }
}

/// Connect's JSON converter.
pub struct JsonConverter {
    schemas_enable: bool,
    options: JsonOptions,
    /// Schema JSON by schema identity: schemas are shared `Arc`s, so the
    /// pointer is a cheap key, and the held `Arc` keeps it valid.
    schema_cache: Mutex<SchemaCache>,
}

impl JsonConverter {
    /// A converter that embeds schemas when `schemas_enable`.
    pub fn new(schemas_enable: bool, options: JsonOptions) -> Self {
        Self {
            schemas_enable,
            options,
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
        // The envelope is written by hand around the cached schema text so
        // the schema is not rebuilt or re-serialised for every record.
        let mut out = Vec::with_capacity(256);
        if self.schemas_enable {
            let schema_text = schema.map_or_else(|| Arc::from("null"), |s| self.schema_json(s));
            out.extend_from_slice(b"{\"schema\":");
            out.extend_from_slice(schema_text.as_bytes());
            out.extend_from_slice(b",\"payload\":");
        }
        match schema {
            Some(s) => write_value(&mut out, s, value, self.options).map_err(|e| e.at_root())?,
            None => write_schemaless(&mut out, value),
        }
        if self.schemas_enable {
            out.push(b'}');
        }
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
        obj.insert("default".into(), default_json(schema, default));
    }
    Json::Object(obj)
}

/// A value that does not fit its schema, at `path` (filled in on the way
/// out, so the common case builds no path).
struct Mismatch {
    path: Vec<String>,
    message: String,
}

impl Mismatch {
    fn new(schema: &Schema, value: &Value) -> Self {
        Self {
            path: Vec::new(),
            message: format!(
                "expected {}{}, found {value:?}",
                schema.kind.connect_name(),
                if schema.optional { " or null" } else { "" }
            ),
        }
    }

    fn within(mut self, name: &str) -> Self {
        self.path.push(name.to_owned());
        self
    }

    fn at_root(self) -> ConvertError {
        let path = if self.path.is_empty() {
            "<root>".to_owned()
        } else {
            self.path
                .iter()
                .rev()
                .cloned()
                .collect::<Vec<_>>()
                .join(".")
        };
        ConvertError::Mismatch {
            path,
            message: self.message,
        }
    }
}

fn write_float(out: &mut Vec<u8>, v: f64) {
    if v.is_finite() {
        // Writing to a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *out, &v);
    } else {
        // Connect writes NaN and infinities as strings.
        let _ = write!(out, "\"{v}\"");
    }
}

/// Appends `n` in decimal (`write!` through `core::fmt` cost five times
/// as much, by callgrind on `cargo bench --bench encode`).
fn write_int(out: &mut Vec<u8>, n: impl itoa::Integer) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

/// Whether JSON must escape anything in `text`: a control character, a
/// quote or a backslash (what serde_json and Jackson escape).
fn needs_escaping(text: &[u8]) -> bool {
    // Eight bytes at a time: a byte below 0x20, or equal to '"' or '\\',
    // sets its high bit in `found` (the classic "has a zero byte" test).
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let below = |word: u64, n: u8| word.wrapping_sub(ONES * u64::from(n)) & !word & HIGHS;
    let zero = |word: u64| word.wrapping_sub(ONES) & !word & HIGHS;
    let mut chunks = text.chunks_exact(8);
    for chunk in &mut chunks {
        let mut word = [0; 8];
        word.copy_from_slice(chunk);
        let word = u64::from_le_bytes(word);
        let found = below(word, 0x20)
            | zero(word ^ (ONES * u64::from(b'"')))
            | zero(word ^ (ONES * u64::from(b'\\')));
        if found != 0 {
            return true;
        }
    }
    chunks
        .remainder()
        .iter()
        .any(|&b| b < 0x20 || b == b'"' || b == b'\\')
}

/// Appends `text` as a JSON string: copied whole when nothing in it needs
/// escaping (nearly all text), else escaped as serde_json does.
fn write_text(out: &mut Vec<u8>, text: &str) {
    if needs_escaping(text.as_bytes()) {
        let _ = serde_json::to_writer(&mut *out, text);
    } else {
        out.reserve(text.len() + 2);
        out.push(b'"');
        out.extend_from_slice(text.as_bytes());
        out.push(b'"');
    }
}

/// Appends `bytes` as a base64 JSON string, encoded in place.
fn write_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    let engine = &base64::engine::general_purpose::STANDARD;
    out.push(b'"');
    let start = out.len();
    out.resize(start + bytes.len().div_ceil(3) * 4, 0);
    let written = engine
        .encode_slice(bytes, &mut out[start..])
        .unwrap_or_default();
    out.truncate(start + written);
    out.push(b'"');
}

/// `value` as JSON, checked against `schema`.
fn write_value(
    out: &mut Vec<u8>,
    schema: &Schema,
    value: &Value,
    options: JsonOptions,
) -> Result<(), Mismatch> {
    match (&schema.kind, value) {
        (_, Value::Shared(shared)) => return write_value(out, schema, shared, options),
        (_, Value::Patched(..)) => return write_value(out, schema, &value.plain(), options),
        (_, Value::Null) => match &schema.default {
            Some(default) if options.replace_null_with_default && !default.is_null() => {
                return write_value(out, schema, default, options)
            }
            _ if schema.optional || schema.default.is_some() => out.extend_from_slice(b"null"),
            _ => return Err(Mismatch::new(schema, value)),
        },
        (SchemaKind::Int8, Value::Int8(v)) => write_int(out, *v),
        (SchemaKind::Int16, Value::Int16(v)) => write_int(out, *v),
        (SchemaKind::Int32, Value::Int32(v)) => write_int(out, *v),
        (SchemaKind::Int64, Value::Int64(v)) => write_int(out, *v),
        (SchemaKind::Float32, Value::Float32(v)) => write_float(out, f64::from(*v)),
        (SchemaKind::Float64, Value::Float64(v)) => write_float(out, *v),
        (SchemaKind::Boolean, Value::Boolean(v)) => {
            out.extend_from_slice(if *v { b"true" } else { b"false" });
        }
        (SchemaKind::String, Value::String(v)) => write_text(out, v),
        (SchemaKind::Bytes, Value::Bytes(v))
            if options.decimal_numeric && schema.name.as_deref() == Some(logical::DECIMAL) =>
        {
            let scale = schema
                .parameters
                .get(logical::DECIMAL_SCALE)
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            out.extend_from_slice(decimal_text(v, scale).as_bytes());
        }
        (SchemaKind::Bytes, Value::Bytes(v)) => write_bytes(out, v),
        (SchemaKind::Array(items), Value::Array(vs)) => {
            out.push(b'[');
            for (i, v) in vs.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(out, items, v, options).map_err(|e| e.within(&format!("[{i}]")))?;
            }
            out.push(b']');
        }
        (SchemaKind::Map(ks, vs), Value::Map(entries)) if matches!(ks.kind, SchemaKind::String) => {
            out.push(b'{');
            for (i, (k, v)) in entries.iter().enumerate() {
                let Value::String(name) = k else {
                    return Err(Mismatch::new(ks, k));
                };
                if i > 0 {
                    out.push(b',');
                }
                write_text(out, name);
                out.push(b':');
                write_value(out, vs, v, options).map_err(|e| e.within(name))?;
            }
            out.push(b'}');
        }
        (SchemaKind::Map(ks, vs), Value::Map(entries)) => {
            out.push(b'[');
            for (i, (k, v)) in entries.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.push(b'[');
                write_value(out, ks, k, options)?;
                out.push(b',');
                write_value(out, vs, v, options)?;
                out.push(b']');
            }
            out.push(b']');
        }
        (SchemaKind::Struct(fields), Value::Struct(values)) => {
            if fields.len() != values.len() {
                return Err(Mismatch {
                    path: Vec::new(),
                    message: format!(
                        "struct has {} fields but {} values",
                        fields.len(),
                        values.len()
                    ),
                });
            }
            out.push(b'{');
            for (i, (field, v)) in fields.iter().zip(values).enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_text(out, &field.name);
                out.push(b':');
                write_value(out, &field.schema, v, options).map_err(|e| e.within(&field.name))?;
            }
            out.push(b'}');
        }
        _ => return Err(Mismatch::new(schema, value)),
    }
    Ok(())
}

/// `value` as JSON without a schema to check against.
fn write_schemaless(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Boolean(v) => out.extend_from_slice(if *v { b"true" } else { b"false" }),
        Value::Int8(v) => write_int(out, *v),
        Value::Int16(v) => write_int(out, *v),
        Value::Int32(v) => write_int(out, *v),
        Value::Int64(v) => write_int(out, *v),
        Value::Float32(v) => write_float(out, f64::from(*v)),
        Value::Float64(v) => write_float(out, *v),
        Value::String(v) => write_text(out, v),
        Value::Bytes(v) => write_bytes(out, v),
        Value::Shared(shared) => write_schemaless(out, shared),
        Value::Patched(..) => write_schemaless(out, &value.plain()),
        Value::Array(vs) | Value::Struct(vs) => {
            out.push(b'[');
            for (i, v) in vs.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_schemaless(out, v);
            }
            out.push(b']');
        }
        Value::Map(entries) => {
            out.push(b'[');
            for (i, (k, v)) in entries.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.push(b'[');
                write_schemaless(out, k);
                out.push(b',');
                write_schemaless(out, v);
                out.push(b']');
            }
            out.push(b']');
        }
    }
}

/// A schema's default as Connect writes it in the schema JSON.
fn default_json(schema: &Schema, default: &Value) -> Json {
    let mut out = Vec::new();
    let written = write_value(&mut out, schema, default, JsonOptions::default());
    if written.is_err() {
        out.clear();
        write_schemaless(&mut out, default);
    }
    serde_json::from_slice(&out).unwrap_or(Json::Null)
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
    fn text_is_written_exactly_as_serde_json_escapes_it() {
        let mut samples: Vec<String> = (0u32..0x80)
            .chain([0x7f, 0xe9, 0x2028, 0x1f600])
            .filter_map(char::from_u32)
            .map(String::from)
            .collect();
        // Every position of an escaped character within and across the
        // eight-byte words the scan reads, and text with none.
        for special in ['"', '\\', '\n', '\u{1f}', '\u{0}'] {
            for at in 0..20 {
                let mut chars: Vec<char> = "abcdéfghijklmnopqrs".chars().collect();
                chars.insert(at.min(chars.len()), special);
                samples.push(chars.into_iter().collect());
            }
        }
        samples.push("plain text with nothing to escape, longer than a word".into());
        samples.push(String::new());
        for text in samples {
            let mut ours = Vec::new();
            write_text(&mut ours, &text);
            assert_eq!(
                String::from_utf8(ours).expect("utf-8"),
                serde_json::to_string(&text).expect("json"),
                "{text:?}"
            );
        }
    }

    #[test]
    fn integers_and_bytes_are_written_as_connect_writes_them() {
        let mut out = Vec::new();
        for n in [i64::MIN, -1, 0, 7, i64::MAX] {
            out.clear();
            write_int(&mut out, n);
            assert_eq!(out, n.to_string().into_bytes());
        }
        for len in 0..10 {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 37) as u8).collect();
            out.clear();
            write_bytes(&mut out, &bytes);
            let expected = format!(
                "\"{}\"",
                base64::engine::general_purpose::STANDARD.encode(&bytes)
            );
            assert_eq!(String::from_utf8(out.clone()).expect("utf-8"), expected);
        }
    }

    #[test]
    fn schemas_enabled_matches_connects_envelope() {
        let bytes = JsonConverter::new(true, JsonOptions::default())
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
    fn a_shared_value_is_written_as_the_value_it_holds() {
        let shared = Value::Shared(Arc::new(row()));
        for schemas in [true, false] {
            let converter = JsonConverter::new(schemas, JsonOptions::default());
            let write = |value: &Value| converter.encode("t", Some(&schema()), Some(value));
            assert_eq!(
                write(&shared).expect("shared"),
                write(&row()).expect("plain")
            );
        }
    }

    #[test]
    fn schemas_disabled_writes_the_bare_payload_and_null_is_a_tombstone() {
        let converter = JsonConverter::new(false, JsonOptions::default());
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
        let err = JsonConverter::new(true, JsonOptions::default())
            .encode("t", Some(&schema()), Some(&bad))
            .expect_err("null id");
        assert!(err.to_string().contains("at id"), "{err}");
    }

    #[test]
    fn decimal_format_numeric_writes_numbers_that_read_back() {
        let converter = JsonConverter::new(
            true,
            JsonOptions {
                decimal_numeric: true,
                ..JsonOptions::default()
            },
        );
        let negative = Value::Struct(vec![Value::Int32(7), Value::decimal(-1250), Value::Null]);
        let bytes = converter
            .encode("t", Some(&schema()), Some(&negative))
            .expect("convert")
            .expect("value");
        let text = String::from_utf8(bytes.clone()).expect("utf-8");
        assert!(text.contains(r#""price":-12.50"#), "{text}");
        let (_, value) = super::super::json_read::read(&bytes, true).expect("read back");
        assert_eq!(value, negative);
    }

    #[test]
    fn nulls_become_the_default_unless_told_otherwise() {
        let schema = Arc::new(Schema::structure(
            "v",
            vec![Field::new(
                "qty",
                Schema::int32().optional().with_default(Value::Int32(5)),
            )],
        ));
        let row = Value::Struct(vec![Value::Null]);
        let write = |options| {
            let bytes = JsonConverter::new(false, options)
                .encode("t", Some(&schema), Some(&row))
                .expect("convert")
                .expect("value");
            serde_json::from_slice::<Json>(&bytes).expect("json")
        };
        assert_eq!(
            write(JsonOptions::default()),
            json!({"qty": 5}),
            "Connect's default"
        );
        let keep_null = JsonOptions {
            replace_null_with_default: false,
            ..JsonOptions::default()
        };
        assert_eq!(write(keep_null), json!({"qty": null}));
    }

    #[test]
    fn a_nested_mismatch_names_its_path() {
        let schema = Arc::new(Schema::structure(
            "v",
            vec![Field::new(
                "after",
                Schema::structure(
                    "row",
                    vec![Field::new("tags", Schema::array(Schema::string()))],
                ),
            )],
        ));
        let bad = Value::Struct(vec![Value::Struct(vec![Value::Array(vec![
            Value::String("a".into()),
            Value::Int32(1),
        ])])]);
        let err = JsonConverter::new(false, JsonOptions::default())
            .encode("t", Some(&schema), Some(&bad))
            .expect_err("an int among strings");
        assert!(err.to_string().contains("after.tags.[1]"), "{err}");
    }
}
