//! The record model's schemas as Avro schemas, the way Confluent's
//! `AvroData` (and so Debezium) writes them: records named after the
//! Connect schema name with `connect.name` / `connect.version`, optional
//! values as `["null", T]` unions defaulting to null, `int8`/`int16` as
//! `int` with `connect.type`, and Connect's Decimal, Date, Time and
//! Timestamp with Avro logical types.

use std::collections::HashSet;

use base64::Engine;
use serde_json::{json, Map, Value as Json};
use sluice_connector_api::logical::{
    DATE, DECIMAL, DECIMAL_PRECISION, DECIMAL_SCALE, TIME, TIMESTAMP,
};
use sluice_connector_api::{Schema, SchemaKind, Value};

/// The record name Connect uses for unnamed structs.
const DEFAULT_RECORD: &str = "io.confluent.connect.avro.ConnectDefault";
/// The record name for entries of maps with non-string keys.
const MAP_ENTRY: &str = "io.confluent.connect.avro.MapEntry";

/// Replaces characters Avro does not allow in names with `_`, as
/// Debezium's `avro` name adjustment does.
pub fn avro_name(name: &str) -> String {
    let mut out: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    out
}

/// A dotted full name with each part made a valid Avro name.
pub fn avro_full_name(name: &str) -> String {
    name.split('.').map(avro_name).collect::<Vec<_>>().join(".")
}

/// The Avro schema for `schema`.
pub fn to_avro(schema: &Schema) -> Json {
    let mut writer = Writer::default();
    writer.schema(schema)
}

#[derive(Default)]
struct Writer {
    /// Named types already defined: Avro forbids redefining a name, so
    /// later uses are references.
    defined: HashSet<String>,
    /// Unnamed structs and map entries get numbered names.
    default_count: usize,
    entry_count: usize,
}

impl Writer {
    fn schema(&mut self, schema: &Schema) -> Json {
        let bare = self.bare(schema);
        if schema.optional {
            let default_first = schema.default.as_ref().is_some_and(|d| *d != Value::Null);
            if default_first {
                Json::Array(vec![bare, json!("null")])
            } else {
                Json::Array(vec![json!("null"), bare])
            }
        } else {
            bare
        }
    }

    /// The schema without its optional union.
    fn bare(&mut self, schema: &Schema) -> Json {
        let primitive = match &schema.kind {
            SchemaKind::Int8 | SchemaKind::Int16 | SchemaKind::Int32 => "int",
            SchemaKind::Int64 => "long",
            SchemaKind::Float32 => "float",
            SchemaKind::Float64 => "double",
            SchemaKind::Boolean => "boolean",
            SchemaKind::String => "string",
            SchemaKind::Bytes => "bytes",
            SchemaKind::Array(items) => {
                let items = self.schema(items);
                return self.with_connect_props(json!({"type": "array", "items": items}), schema);
            }
            SchemaKind::Map(keys, values) => return self.map(schema, keys, values),
            SchemaKind::Struct(_) => return self.record(schema),
        };
        let mut object = Map::new();
        object.insert("type".into(), json!(primitive));
        match schema.kind {
            SchemaKind::Int8 => {
                object.insert("connect.type".into(), json!("int8"));
            }
            SchemaKind::Int16 => {
                object.insert("connect.type".into(), json!("int16"));
            }
            _ => {}
        }
        let logical = match schema.name.as_deref() {
            Some(DECIMAL) => {
                let scale: u64 = schema
                    .parameters
                    .get(DECIMAL_SCALE)
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0);
                let precision: u64 = schema
                    .parameters
                    .get(DECIMAL_PRECISION)
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(64);
                object.insert("scale".into(), json!(scale));
                object.insert("precision".into(), json!(precision));
                Some("decimal")
            }
            Some(DATE) => Some("date"),
            Some(TIME) => Some("time-millis"),
            Some(TIMESTAMP) => Some("timestamp-millis"),
            _ => None,
        };
        let mut out = self.with_connect_props(Json::Object(object), schema);
        if let (Some(logical), Json::Object(map)) = (logical, &mut out) {
            map.insert("logicalType".into(), json!(logical));
        }
        if out.as_object().is_some_and(|m| m.len() == 1) {
            return json!(primitive);
        }
        out
    }

    /// Adds `connect.doc`, `connect.version`, `connect.parameters` and
    /// `connect.name` for a non-record schema.
    fn with_connect_props(&self, mut out: Json, schema: &Schema) -> Json {
        let Json::Object(map) = &mut out else {
            return out;
        };
        if let Some(doc) = &schema.doc {
            map.insert("connect.doc".into(), json!(doc));
        }
        if let Some(version) = schema.version {
            map.insert("connect.version".into(), json!(version));
        }
        if !schema.parameters.is_empty() {
            map.insert("connect.parameters".into(), json!(schema.parameters));
        }
        if let Some(name) = &schema.name {
            map.insert("connect.name".into(), json!(name));
        }
        out
    }

    fn map(&mut self, schema: &Schema, keys: &Schema, values: &Schema) -> Json {
        if matches!(keys.kind, SchemaKind::String) && !keys.optional {
            let values = self.schema(values);
            return self.with_connect_props(json!({"type": "map", "values": values}), schema);
        }
        // Avro maps have string keys; other maps become entry arrays.
        self.entry_count += 1;
        let name = if self.entry_count == 1 {
            MAP_ENTRY.to_owned()
        } else {
            format!("{MAP_ENTRY}{}", self.entry_count)
        };
        self.defined.insert(name.clone());
        let entry = json!({
            "type": "record",
            "name": name,
            "fields": [
                {"name": "key", "type": self.schema(keys)},
                {"name": "value", "type": self.schema(values)},
            ],
        });
        self.with_connect_props(json!({"type": "array", "items": entry}), schema)
    }

    fn record(&mut self, schema: &Schema) -> Json {
        let SchemaKind::Struct(fields) = &schema.kind else {
            return json!("null");
        };
        let full_name = match &schema.name {
            Some(name) => avro_full_name(name),
            None => {
                self.default_count += 1;
                if self.default_count == 1 {
                    DEFAULT_RECORD.to_owned()
                } else {
                    format!("{DEFAULT_RECORD}{}", self.default_count)
                }
            }
        };
        if !self.defined.insert(full_name.clone()) {
            return json!(full_name);
        }
        let mut object = Map::new();
        object.insert("type".into(), json!("record"));
        object.insert("name".into(), json!(full_name));
        if let Some(doc) = &schema.doc {
            object.insert("doc".into(), json!(doc));
        }
        let fields: Vec<Json> = fields
            .iter()
            .map(|field| {
                let mut out = Map::new();
                out.insert("name".into(), json!(avro_name(&field.name)));
                out.insert("type".into(), self.schema(&field.schema));
                if let Some(default) = field_default(&field.schema) {
                    out.insert("default".into(), default);
                }
                Json::Object(out)
            })
            .collect();
        object.insert("fields".into(), Json::Array(fields));
        if let Some(version) = schema.version {
            object.insert("connect.version".into(), json!(version));
        }
        if !schema.parameters.is_empty() {
            object.insert("connect.parameters".into(), json!(schema.parameters));
        }
        if let Some(name) = &schema.name {
            object.insert("connect.name".into(), json!(name));
        }
        Json::Object(object)
    }
}

/// A field's Avro default: its declared default, or null when optional.
fn field_default(schema: &Schema) -> Option<Json> {
    match &schema.default {
        Some(value) => Some(default_json(schema, value)),
        None if schema.optional => Some(Json::Null),
        None => None,
    }
}

/// A value as an Avro default literal (bytes as ISO-8859-1 strings).
fn default_json(schema: &Schema, value: &Value) -> Json {
    match (value, &schema.kind) {
        (Value::Null, _) => Json::Null,
        (Value::Boolean(b), _) => json!(b),
        (Value::Int8(v), _) => json!(v),
        (Value::Int16(v), _) => json!(v),
        (Value::Int32(v), _) => json!(v),
        (Value::Int64(v), _) => json!(v),
        (Value::Float32(v), _) => json!(v),
        (Value::Float64(v), _) => json!(v),
        (Value::String(s), _) => json!(s),
        (Value::Bytes(b), _) => Json::String(b.iter().map(|&c| char::from(c)).collect()),
        (Value::Array(items), SchemaKind::Array(item_schema)) => {
            Json::Array(items.iter().map(|i| default_json(item_schema, i)).collect())
        }
        (Value::Struct(values), SchemaKind::Struct(fields)) => Json::Object(
            fields
                .iter()
                .zip(values)
                .map(|(f, v)| (avro_name(&f.name), default_json(&f.schema, v)))
                .collect(),
        ),
        (Value::Map(entries), SchemaKind::Map(_, value_schema)) => Json::Object(
            entries
                .iter()
                .filter_map(|(k, v)| match k {
                    Value::String(k) => {
                        Some((k.as_str().to_owned(), default_json(value_schema, v)))
                    }
                    _ => None,
                })
                .collect(),
        ),
        // Shapes the schema does not describe: keep the information.
        (other, _) => json!(base64::engine::general_purpose::STANDARD.encode(format!("{other:?}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_connector_api::{logical, Field};

    #[test]
    fn debezium_shaped_record() {
        let value = Schema::new(SchemaKind::Struct(vec![
            Field::new("id", Schema::int32()),
            Field::new("price", logical::decimal(2, Some(10))),
            Field::new("note", Schema::string().optional()),
            Field::new("small", Schema::int16()),
        ]))
        .named("db.public.items.Value");
        let avro = to_avro(&value);
        assert_eq!(avro["type"], "record");
        assert_eq!(avro["name"], "db.public.items.Value");
        assert_eq!(avro["connect.name"], "db.public.items.Value");
        assert_eq!(avro["fields"][0]["type"], "int");
        assert_eq!(avro["fields"][1]["type"]["logicalType"], "decimal");
        assert_eq!(avro["fields"][1]["type"]["precision"], 10);
        assert_eq!(avro["fields"][1]["type"]["scale"], 2);
        assert_eq!(avro["fields"][2]["type"], json!(["null", "string"]));
        assert_eq!(avro["fields"][2]["default"], Json::Null);
        assert_eq!(avro["fields"][3]["type"]["connect.type"], "int16");
        apache_avro::Schema::parse(&avro).expect("valid Avro");
    }

    #[test]
    fn repeated_records_are_referenced_and_names_are_sanitized() {
        let row = Arc::new(
            Schema::new(SchemaKind::Struct(vec![Field::new(
                "my-col",
                Schema::int64(),
            )]))
            .named("srv.db.my-table.Value")
            .optional(),
        );
        let envelope = Schema::new(SchemaKind::Struct(vec![
            Field {
                name: "before".into(),
                schema: Arc::clone(&row),
            },
            Field {
                name: "after".into(),
                schema: row,
            },
        ]))
        .named("srv.db.my-table.Envelope");
        let avro = to_avro(&envelope);
        assert_eq!(
            avro["fields"][0]["type"][1]["name"],
            "srv.db.my_table.Value"
        );
        assert_eq!(avro["fields"][0]["type"][1]["fields"][0]["name"], "my_col");
        assert_eq!(
            avro["fields"][1]["type"],
            json!(["null", "srv.db.my_table.Value"])
        );
        apache_avro::Schema::parse(&avro).expect("valid Avro");
    }

    use std::sync::Arc;
}
