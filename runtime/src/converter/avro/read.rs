//! Reading Confluent-framed Avro back into the record model, for sink
//! tasks: the writer schema (fetched by id, once) becomes a Connect schema
//! the way Confluent's `AvroData` does it — `connect.name`,
//! `connect.parameters`, `connect.type` and logical types restored — and
//! the datum becomes a value of that schema.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde_json::{Map, Value as Json};
use sluice_connector_api::logical::{DATE, DECIMAL, DECIMAL_SCALE, TIME, TIMESTAMP};
use sluice_connector_api::{Field, FieldSelector, Schema, SchemaKind, Value};

use super::number_hash::NumberHashing;
use super::plan::Plan;
use super::projection::Projection;
use crate::converter::ConvertError;
use crate::registry::client::RegistryClient;
use crate::registry::AvroModel;

/// A writer schema: its model (how a datum is laid out), its Connect
/// form, and the fields of it that are decoded.
struct Writer {
    model: AvroModel,
    connect: Arc<Schema>,
    /// How each datum is read: the model met with `connect` and the
    /// fields decoded.
    plan: Plan,
}

/// Decodes framed Avro into schemas and values, caching writer schemas.
pub struct AvroReader {
    client: RegistryClient,
    writers: Mutex<HashMap<i32, Arc<Writer>, NumberHashing>>,
    /// The fields a sink task reads, when it named them.
    selector: Option<Arc<dyn FieldSelector>>,
}

impl AvroReader {
    /// A reader asking `client` for writer schemas.
    pub fn new(client: RegistryClient) -> Self {
        Self {
            client,
            writers: Mutex::new(HashMap::default()),
            selector: None,
        }
    }

    /// Decodes from now on only the fields `selector` chooses per schema
    /// (the others read as `Null`).
    pub fn select_fields(&mut self, selector: Arc<dyn FieldSelector>) {
        self.selector = Some(selector);
        // Writers cached before were resolved without it.
        self.writers
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }

    /// The schema and value of a framed message. Blocking on the first
    /// message of each schema id (registry look-up).
    pub fn read(&self, bytes: &[u8]) -> Result<(Arc<Schema>, Value), ConvertError> {
        let id = framed_id(bytes)?;
        read_with(&*self.writer(id)?, id, bytes)
    }

    /// [`Self::read`] without asking the registry: `None` when the
    /// message's writer schema is not cached yet (fetch it first). Nearly
    /// every message is read here, with one look-up of its schema.
    pub fn read_cached(&self, bytes: &[u8]) -> Option<Result<(Arc<Schema>, Value), ConvertError>> {
        let id = match framed_id(bytes) {
            Ok(id) => id,
            Err(e) => return Some(Err(e)),
        };
        let writer = self.cached(id)?;
        Some(read_with(&writer, id, bytes))
    }

    /// The schema id of a framed message whose writer schema is not
    /// cached yet.
    pub fn unknown_schema(&self, bytes: &[u8]) -> Option<i32> {
        let id = framed_id(bytes).ok()?;
        self.cached(id).is_none().then_some(id)
    }

    fn cached(&self, id: i32) -> Option<Arc<Writer>> {
        self.writers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&id)
            .cloned()
    }

    /// Fetches writer schema `id` into the cache. Blocking.
    pub fn fetch(&self, id: i32) -> Result<(), ConvertError> {
        self.writer(id).map(drop)
    }

    fn writer(&self, id: i32) -> Result<Arc<Writer>, ConvertError> {
        if let Some(writer) = self.cached(id) {
            return Ok(writer);
        }
        let text = self.client.schema(id)?;
        let bad = |message: String| ConvertError::Mismatch {
            path: "<schema>".into(),
            message: format!("writer schema {id}: {message}"),
        };
        // Parsed once by the Avro library too, so a schema it would refuse
        // is refused here rather than read by a more lenient layout.
        crate::registry::untrusted::parse_schema_text(&text).map_err(bad)?;
        let json: Json = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
        let connect = Arc::new(to_connect(&json, &mut HashMap::new()).map_err(bad)?);
        let model = AvroModel::from_json(&json).map_err(|e| bad(e.to_string()))?;
        let projection = self
            .selector
            .as_ref()
            .and_then(|selector| selector.select(&connect))
            .map_or(Projection::All, |selection| {
                Projection::of(&connect, &selection)
            });
        let plan = Plan::new(&model, &connect, &projection);
        let writer = Arc::new(Writer {
            model,
            connect,
            plan,
        });
        self.writers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, writer.clone());
        Ok(writer)
    }
}

/// The writer schema id of a message in Confluent's wire format.
fn framed_id(bytes: &[u8]) -> Result<i32, ConvertError> {
    match bytes {
        [0, a, b, c, d, ..] => Ok(i32::from_be_bytes([*a, *b, *c, *d])),
        _ => Err(ConvertError::Mismatch {
            path: "<message>".into(),
            message: "not in the Confluent Avro wire format (magic byte 0, 4-byte schema id); was it written by the JSON converter?".into(),
        }),
    }
}

/// The datum after the frame of `bytes`, read with `writer` (schema `id`).
fn read_with(writer: &Writer, id: i32, bytes: &[u8]) -> Result<(Arc<Schema>, Value), ConvertError> {
    let value = writer
        .plan
        .read(&writer.model, &mut &bytes[5..])
        .map_err(|e| ConvertError::Mismatch {
            path: "<message>".into(),
            message: format!("decoding with writer schema {id}: {e}"),
        })?;
    Ok((writer.connect.clone(), value))
}

/// A Connect schema from an Avro schema's JSON; `named` holds records
/// defined so far, for later references by name.
pub fn to_connect(json: &Json, named: &mut HashMap<String, Schema>) -> Result<Schema, String> {
    match json {
        Json::String(name) => primitive(name)
            .map(Schema::new)
            .or_else(|| named.get(name).cloned())
            .or_else(|| {
                named
                    .iter()
                    .find(|(full, _)| full.rsplit('.').next() == name.rsplit('.').next())
                    .map(|(_, s)| s.clone())
            })
            .ok_or_else(|| format!("unknown type {name}")),
        Json::Array(branches) => {
            let non_null: Vec<&Json> = branches.iter().filter(|b| *b != "null").collect();
            match non_null.as_slice() {
                [only] if branches.len() == 2 => {
                    let mut schema = to_connect(only, named)?.optional();
                    if branches.first() != Some(&Json::from("null")) {
                        // A default other than null puts the type first; the
                        // field's default carries it.
                        schema.default = None;
                    }
                    Ok(schema)
                }
                _ => Err("unions other than [null, T] are not Connect schemas".into()),
            }
        }
        Json::Object(map) => object(map, named),
        other => Err(format!("not an Avro schema: {other}")),
    }
}

fn primitive(name: &str) -> Option<SchemaKind> {
    Some(match name {
        "int" => SchemaKind::Int32,
        "long" => SchemaKind::Int64,
        "float" => SchemaKind::Float32,
        "double" => SchemaKind::Float64,
        "boolean" => SchemaKind::Boolean,
        "string" => SchemaKind::String,
        "bytes" | "fixed" => SchemaKind::Bytes,
        _ => return None,
    })
}

fn object(map: &Map<String, Json>, named: &mut HashMap<String, Schema>) -> Result<Schema, String> {
    let ty = map.get("type").ok_or("a schema object without a type")?;
    let mut schema = match ty.as_str() {
        Some("record") => record(map, named)?,
        Some("array") => {
            let items = to_connect(map.get("items").ok_or("an array without items")?, named)?;
            match &items.kind {
                // Maps with non-string keys are arrays of key/value records.
                SchemaKind::Struct(fields)
                    if fields.len() == 2
                        && fields[0].name == "key"
                        && fields[1].name == "value"
                        && items
                            .name
                            .as_deref()
                            .is_some_and(|n| n.contains("MapEntry")) =>
                {
                    Schema::map((*fields[0].schema).clone(), (*fields[1].schema).clone())
                }
                _ => Schema::array(items),
            }
        }
        Some("map") => Schema::map(
            Schema::string(),
            to_connect(map.get("values").ok_or("a map without values")?, named)?,
        ),
        Some("enum") => Schema::string(),
        Some(p) => Schema::new(primitive(p).ok_or_else(|| format!("unknown type {p}"))?),
        None => to_connect(ty, named)?,
    };
    if let (Some("enum" | "fixed"), Some(name)) =
        (ty.as_str(), map.get("name").and_then(Json::as_str))
    {
        // Named like records, so later fields may refer to them.
        let full = match map.get("namespace").and_then(Json::as_str) {
            Some(ns) if !name.contains('.') && !ns.is_empty() => format!("{ns}.{name}"),
            _ => name.to_owned(),
        };
        named.insert(full, schema.clone());
    }
    match map.get("connect.type").and_then(Json::as_str) {
        Some("int8") => schema.kind = SchemaKind::Int8,
        Some("int16") => schema.kind = SchemaKind::Int16,
        _ => {}
    }
    if let Some(name) = map.get("connect.name").and_then(Json::as_str) {
        schema.name = Some(name.to_owned());
    }
    if let Some(v) = map.get("connect.version").and_then(Json::as_i64) {
        schema.version = Some(v as i32);
    }
    if let Some(doc) = map.get("connect.doc").and_then(Json::as_str) {
        schema.doc = Some(doc.to_owned());
    }
    if let Some(Json::Object(params)) = map.get("connect.parameters") {
        for (k, v) in params {
            let v = v.as_str().map_or_else(|| v.to_string(), str::to_owned);
            schema.parameters.insert(k.clone(), v);
        }
    }
    match map.get("logicalType").and_then(Json::as_str) {
        Some("decimal") if schema.name.is_none() => {
            schema.name = Some(DECIMAL.into());
            let scale = map.get("scale").and_then(Json::as_u64).unwrap_or(0);
            schema
                .parameters
                .insert(DECIMAL_SCALE.into(), scale.to_string());
        }
        Some("date") if schema.name.is_none() => schema.name = Some(DATE.into()),
        Some("time-millis") if schema.name.is_none() => schema.name = Some(TIME.into()),
        Some("timestamp-millis") if schema.name.is_none() => schema.name = Some(TIMESTAMP.into()),
        _ => {}
    }
    Ok(schema)
}

fn record(map: &Map<String, Json>, named: &mut HashMap<String, Schema>) -> Result<Schema, String> {
    let name = map.get("name").and_then(Json::as_str).unwrap_or("record");
    let full = match map.get("namespace").and_then(Json::as_str) {
        Some(ns) if !name.contains('.') && !ns.is_empty() => format!("{ns}.{name}"),
        _ => name.to_owned(),
    };
    let mut fields = Vec::new();
    for field in map
        .get("fields")
        .and_then(Json::as_array)
        .ok_or("a record without fields")?
    {
        let field_name = field
            .get("name")
            .and_then(Json::as_str)
            .ok_or("a field without a name")?;
        let ty = field.get("type").ok_or("a field without a type")?;
        let mut schema = to_connect(ty, named).map_err(|e| format!("{field_name}: {e}"))?;
        if let Some(default) = field.get("default") {
            schema.default = default_value(&schema, default);
        }
        fields.push(Field::new(field_name, schema));
    }
    let schema = Schema::structure(full.clone(), fields);
    named.insert(full, schema.clone());
    Ok(schema)
}

/// A field default as a value of the schema (primitives only; others are
/// left out, as they do not shape target tables).
fn default_value(schema: &Schema, default: &Json) -> Option<Value> {
    Some(match (&schema.kind, default) {
        (_, Json::Null) => Value::Null,
        (SchemaKind::Boolean, Json::Bool(b)) => Value::Boolean(*b),
        (SchemaKind::Int8, Json::Number(n)) => Value::Int8(n.as_i64()? as i8),
        (SchemaKind::Int16, Json::Number(n)) => Value::Int16(n.as_i64()? as i16),
        (SchemaKind::Int32, Json::Number(n)) => Value::Int32(n.as_i64()? as i32),
        (SchemaKind::Int64, Json::Number(n)) => Value::Int64(n.as_i64()?),
        (SchemaKind::Float32, Json::Number(n)) => Value::Float32(n.as_f64()? as f32),
        (SchemaKind::Float64, Json::Number(n)) => Value::Float64(n.as_f64()?),
        (SchemaKind::String, Json::String(s)) => Value::String(s.clone().into()),
        // Avro writes bytes defaults as ISO-8859-1 text.
        (SchemaKind::Bytes, Json::String(s)) => Value::Bytes(s.chars().map(|c| c as u8).collect()),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::converter::avro::tests::value_converter_on_a_registry;

    /// A message of a schema not cached is not read without the
    /// registry (the sink fetches it off the async threads first); once
    /// fetched, it reads as the blocking read does, registry or not.
    #[test]
    fn a_message_is_read_from_the_cache_only_once_its_schema_is_fetched() {
        let (runtime, url, converter) = value_converter_on_a_registry();
        let schema = Arc::new(Schema::structure(
            "t.Value",
            vec![Field::new("id", Schema::int64())],
        ));
        converter.resolve("t", &schema).expect("registers");
        let message = converter
            .encode(
                "t",
                Some(&schema),
                Some(&Value::Struct(vec![Value::Int64(7)])),
            )
            .expect("encodes")
            .expect("bytes");

        let reader = AvroReader::new(RegistryClient::new(&url));
        assert!(reader.read_cached(&message).is_none(), "nothing cached yet");
        let id = reader.unknown_schema(&message).expect("an unknown id");
        reader.fetch(id).expect("fetched");
        assert_eq!(reader.unknown_schema(&message), None);
        runtime.shutdown_background();
        let cached = reader
            .read_cached(&message)
            .expect("cached now")
            .expect("read");
        assert_eq!(cached.1, Value::Struct(vec![Value::Int64(7)]));
        assert_eq!(cached.0.kind, schema.kind);
        let blocking = reader.read(&message).expect("read without the registry");
        assert_eq!((cached.0, cached.1), blocking);

        // Bytes in another format fail the same way either way.
        let other = br#"{"id":7}"#;
        let cached = reader.read_cached(other).expect("no schema to fetch");
        let (Err(cached), Err(blocking)) = (cached, reader.read(other)) else {
            panic!("not Avro: both fail");
        };
        assert_eq!(cached.to_string(), blocking.to_string());
        assert!(cached.to_string().contains("wire format"), "{cached}");
    }
}
