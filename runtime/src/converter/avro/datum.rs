//! Reading one Avro datum straight into the record model. The writer
//! schema is compiled once into a [`Wire`] layout; each message is then
//! read field by field into the value its Connect schema describes, with
//! no intermediate Avro value tree and no schema resolution per message
//! (`apache_avro::from_avro_datum` resolved the writer schema on every
//! call: two thirds of a sink's CPU went there).
//!
//! The bytes come from a topic anyone may write to, so every length and
//! count is checked against what is left of the message before anything
//! is allocated.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{Map, Value as Json};
use sluice_connector_api::{Schema, SchemaKind, Value};

/// How one Avro type is laid out on the wire.
#[derive(Debug, Clone, PartialEq)]
pub enum Wire {
    /// Nothing.
    Null,
    /// One byte, 0 or 1.
    Boolean,
    /// A zig-zag varint that fits 32 bits.
    Int,
    /// A zig-zag varint.
    Long,
    /// Four bytes, little-endian.
    Float,
    /// Eight bytes, little-endian.
    Double,
    /// A length, then that many bytes.
    Bytes,
    /// A length, then that much UTF-8.
    String,
    /// Exactly this many bytes.
    Fixed(usize),
    /// An index into these symbols.
    Enum(Arc<[String]>),
    /// Blocks of items.
    Array(Box<Wire>),
    /// Blocks of string keys and values.
    Map(Box<Wire>),
    /// A branch index, then that branch.
    Union(Vec<Wire>),
    /// The fields, in order.
    Record(Vec<Wire>),
}

impl Wire {
    /// The layout of a writer schema's JSON; `named` holds the named
    /// types defined so far, for later references by name.
    pub fn of(json: &Json, named: &mut HashMap<String, Wire>) -> Result<Wire, String> {
        match json {
            Json::String(name) => primitive(name)
                .or_else(|| named.get(name).cloned())
                .or_else(|| {
                    named
                        .iter()
                        .find(|(full, _)| full.rsplit('.').next() == name.rsplit('.').next())
                        .map(|(_, w)| w.clone())
                })
                .ok_or_else(|| format!("unknown type {name}")),
            Json::Array(branches) => Ok(Wire::Union(
                branches
                    .iter()
                    .map(|b| Wire::of(b, named))
                    .collect::<Result<_, _>>()?,
            )),
            Json::Object(map) => object(map, named),
            other => Err(format!("not an Avro schema: {other}")),
        }
    }

    /// The fewest bytes one value of this layout takes.
    fn min_width(&self) -> usize {
        match self {
            Wire::Null => 0,
            Wire::Fixed(n) => *n,
            Wire::Float => 4,
            Wire::Double => 8,
            Wire::Record(fields) => fields.iter().map(Wire::min_width).sum(),
            _ => 1,
        }
    }
}

fn primitive(name: &str) -> Option<Wire> {
    Some(match name {
        "null" => Wire::Null,
        "boolean" => Wire::Boolean,
        "int" => Wire::Int,
        "long" => Wire::Long,
        "float" => Wire::Float,
        "double" => Wire::Double,
        "bytes" => Wire::Bytes,
        "string" => Wire::String,
        _ => return None,
    })
}

fn full_name(map: &Map<String, Json>) -> Option<String> {
    let name = map.get("name").and_then(Json::as_str)?;
    Some(match map.get("namespace").and_then(Json::as_str) {
        Some(ns) if !name.contains('.') && !ns.is_empty() => format!("{ns}.{name}"),
        _ => name.to_owned(),
    })
}

fn object(map: &Map<String, Json>, named: &mut HashMap<String, Wire>) -> Result<Wire, String> {
    let ty = map.get("type").ok_or("a schema object without a type")?;
    let wire = match ty.as_str() {
        Some("record" | "error") => {
            let fields = map
                .get("fields")
                .and_then(Json::as_array)
                .ok_or("a record without fields")?;
            let mut wires = Vec::with_capacity(fields.len());
            for field in fields {
                let ty = field.get("type").ok_or("a field without a type")?;
                wires.push(Wire::of(ty, named)?);
            }
            Wire::Record(wires)
        }
        Some("enum") => Wire::Enum(
            map.get("symbols")
                .and_then(Json::as_array)
                .ok_or("an enum without symbols")?
                .iter()
                .map(|s| {
                    s.as_str()
                        .map(str::to_owned)
                        .ok_or("a symbol that is not text")
                })
                .collect::<Result<_, _>>()?,
        ),
        Some("fixed") => Wire::Fixed(
            map.get("size")
                .and_then(Json::as_u64)
                .and_then(|n| usize::try_from(n).ok())
                .ok_or("a fixed without a size")?,
        ),
        Some("array") => Wire::Array(Box::new(Wire::of(
            map.get("items").ok_or("an array without items")?,
            named,
        )?)),
        Some("map") => Wire::Map(Box::new(Wire::of(
            map.get("values").ok_or("a map without values")?,
            named,
        )?)),
        Some(p) => primitive(p).ok_or_else(|| format!("unknown type {p}"))?,
        None => Wire::of(ty, named)?,
    };
    if let (Some("record" | "error" | "enum" | "fixed"), Some(name)) = (ty.as_str(), full_name(map))
    {
        named.insert(name, wire.clone());
    }
    Ok(wire)
}

/// The next zig-zag varint.
fn long(input: &mut &[u8]) -> Result<i64, String> {
    let mut z: u64 = 0;
    for shift in (0..64).step_by(7) {
        let (&byte, rest) = input.split_first().ok_or(END)?;
        *input = rest;
        z |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok((z >> 1) as i64 ^ -((z & 1) as i64));
        }
    }
    Err("a varint longer than 10 bytes".into())
}

const END: &str = "the message ends inside a value";

fn take<'a>(input: &mut &'a [u8], n: usize) -> Result<&'a [u8], String> {
    if input.len() < n {
        return Err(END.into());
    }
    let (head, rest) = input.split_at(n);
    *input = rest;
    Ok(head)
}

/// A length prefix, checked against what is left.
fn length(input: &mut &[u8]) -> Result<usize, String> {
    let n = long(input)?;
    usize::try_from(n)
        .ok()
        .filter(|n| *n <= input.len())
        .ok_or_else(|| format!("a length of {n} where {} bytes are left", input.len()))
}

fn text(input: &mut &[u8]) -> Result<String, String> {
    let n = length(input)?;
    let raw = take(input, n)?;
    std::str::from_utf8(raw)
        .map(str::to_owned)
        .map_err(|e| format!("a string that is not UTF-8: {e}"))
}

/// The item count of the next block of an array or map (0 at the end),
/// checked so that a hostile count cannot allocate or loop beyond what
/// the message could hold.
fn block(input: &mut &[u8], item_width: usize) -> Result<usize, String> {
    let count = long(input)?;
    if count < 0 {
        // A negative count is followed by the block's size in bytes.
        long(input)?;
    }
    let count = count.unsigned_abs();
    let limit = match item_width {
        0 => 1 << 20,
        w => input.len() / w,
    };
    usize::try_from(count)
        .ok()
        .filter(|c| *c <= limit)
        .ok_or_else(|| {
            format!(
                "a block of {count} items where {} bytes are left",
                input.len()
            )
        })
}

/// Reads one datum laid out as `wire` into a value of `schema`.
pub fn read(wire: &Wire, schema: &Schema, input: &mut &[u8]) -> Result<Value, String> {
    let mismatch = || {
        format!(
            "expected {}, found Avro {}",
            schema.kind.connect_name(),
            wire_name(wire)
        )
    };
    Ok(match (wire, &schema.kind) {
        (Wire::Union(branches), _) => {
            let index = long(input)?;
            let branch = usize::try_from(index)
                .ok()
                .and_then(|i| branches.get(i))
                .ok_or_else(|| format!("union branch {index} of {}", branches.len()))?;
            return read(branch, schema, input);
        }
        (Wire::Null, _) => Value::Null,
        (Wire::Boolean, SchemaKind::Boolean) => match take(input, 1)? {
            [0] => Value::Boolean(false),
            [1] => Value::Boolean(true),
            other => return Err(format!("a boolean byte {other:?}")),
        },
        (Wire::Int, SchemaKind::Int8 | SchemaKind::Int16 | SchemaKind::Int32) => {
            let n = long(input)?;
            let n = i32::try_from(n).map_err(|_| format!("an int of {n}"))?;
            match schema.kind {
                SchemaKind::Int8 => Value::Int8(n as i8),
                SchemaKind::Int16 => Value::Int16(n as i16),
                _ => Value::Int32(n),
            }
        }
        (Wire::Long, SchemaKind::Int64) => Value::Int64(long(input)?),
        (Wire::Float, SchemaKind::Float32) => {
            let raw = take(input, 4)?;
            Value::Float32(f32::from_le_bytes([raw[0], raw[1], raw[2], raw[3]]))
        }
        (Wire::Double, SchemaKind::Float64) => {
            let mut raw = [0u8; 8];
            raw.copy_from_slice(take(input, 8)?);
            Value::Float64(f64::from_le_bytes(raw))
        }
        (Wire::String, SchemaKind::String) => Value::String(text(input)?),
        (Wire::Enum(symbols), SchemaKind::String) => {
            let index = long(input)?;
            let symbol = usize::try_from(index)
                .ok()
                .and_then(|i| symbols.get(i))
                .ok_or_else(|| format!("enum symbol {index} of {}", symbols.len()))?;
            Value::String(symbol.clone())
        }
        (Wire::Bytes, SchemaKind::Bytes) => {
            let n = length(input)?;
            Value::Bytes(take(input, n)?.to_vec())
        }
        (Wire::Fixed(n), SchemaKind::Bytes) => Value::Bytes(take(input, *n)?.to_vec()),
        (Wire::Array(items), SchemaKind::Array(item_schema)) => {
            let mut values = Vec::new();
            loop {
                let count = block(input, items.min_width())?;
                if count == 0 {
                    break Value::Array(values);
                }
                values.reserve(count);
                for i in 0..count {
                    let value =
                        read(items, item_schema, input).map_err(|e| format!("[{i}]: {e}"))?;
                    values.push(value);
                }
            }
        }
        // Maps with non-string keys: arrays of key/value records.
        (Wire::Array(items), SchemaKind::Map(keys, values)) => {
            let Wire::Record(kv) = items.as_ref() else {
                return Err(mismatch());
            };
            let [key_wire, value_wire] = kv.as_slice() else {
                return Err(mismatch());
            };
            let mut entries = Vec::new();
            loop {
                let count = block(input, items.min_width())?;
                if count == 0 {
                    break Value::Map(entries);
                }
                entries.reserve(count);
                for _ in 0..count {
                    let key = read(key_wire, keys, input)?;
                    let value = read(value_wire, values, input)?;
                    entries.push((key, value));
                }
            }
        }
        (Wire::Map(value_wire), SchemaKind::Map(_, values)) => {
            let mut entries = Vec::new();
            loop {
                // A key takes at least its length byte.
                let count = block(input, 1 + value_wire.min_width())?;
                if count == 0 {
                    break;
                }
                entries.reserve(count);
                for _ in 0..count {
                    let key = text(input)?;
                    let value =
                        read(value_wire, values, input).map_err(|e| format!("{key}: {e}"))?;
                    entries.push((Value::String(key), value));
                }
            }
            // Avro maps are unordered; a stable order makes equal maps
            // equal values.
            entries.sort_by(|a, b| match (&a.0, &b.0) {
                (Value::String(x), Value::String(y)) => x.cmp(y),
                _ => std::cmp::Ordering::Equal,
            });
            Value::Map(entries)
        }
        (Wire::Record(wires), SchemaKind::Struct(fields)) => {
            if wires.len() != fields.len() {
                return Err(format!(
                    "a record of {} fields for a schema of {}",
                    wires.len(),
                    fields.len()
                ));
            }
            let mut values = Vec::with_capacity(fields.len());
            for (w, f) in wires.iter().zip(fields) {
                values.push(read(w, &f.schema, input).map_err(|e| format!("{}: {e}", f.name))?);
            }
            Value::Struct(values)
        }
        _ => return Err(mismatch()),
    })
}

fn wire_name(wire: &Wire) -> &'static str {
    match wire {
        Wire::Null => "null",
        Wire::Boolean => "boolean",
        Wire::Int => "int",
        Wire::Long => "long",
        Wire::Float => "float",
        Wire::Double => "double",
        Wire::Bytes => "bytes",
        Wire::String => "string",
        Wire::Fixed(_) => "fixed",
        Wire::Enum(_) => "enum",
        Wire::Array(_) => "array",
        Wire::Map(_) => "map",
        Wire::Union(_) => "union",
        Wire::Record(_) => "record",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::converter::avro::encode::{encode, NullsWithDefault};
    use crate::converter::avro::read::to_connect;
    use crate::converter::avro::schema::to_avro;
    use sluice_connector_api::Field;

    /// Encodes `value` under `schema` with the converter's writer, then
    /// reads it back through the schema's Avro JSON, as a sink does.
    fn round_trip(schema: &Schema, value: &Value) -> Value {
        let json = to_avro(schema);
        let connect = to_connect(&json, &mut HashMap::new()).expect("connect schema");
        let wire = Wire::of(&json, &mut HashMap::new()).expect("wire");
        let mut bytes = Vec::new();
        encode(&mut bytes, schema, value, NullsWithDefault::WriteNull).expect("encode");
        let mut input = bytes.as_slice();
        let read = read(&wire, &connect, &mut input).expect("read");
        assert!(input.is_empty(), "the whole datum is read");
        read
    }

    fn every_kind() -> Schema {
        Schema::structure(
            "t.Value",
            vec![
                Field::new("i8", Schema::new(SchemaKind::Int8)),
                Field::new("i16", Schema::new(SchemaKind::Int16)),
                Field::new("i32", Schema::int32()),
                Field::new("i64", Schema::int64()),
                Field::new("f32", Schema::new(SchemaKind::Float32)),
                Field::new("f64", Schema::new(SchemaKind::Float64)),
                Field::new("b", Schema::new(SchemaKind::Boolean)),
                Field::new("s", Schema::string().optional()),
                Field::new("bytes", Schema::new(SchemaKind::Bytes)),
                Field::new("list", Schema::array(Schema::int64().optional())),
                Field::new("tags", Schema::map(Schema::string(), Schema::string())),
                Field::new("by_id", Schema::map(Schema::int32(), Schema::string())),
                Field::new(
                    "inner",
                    Schema::structure("t.Inner", vec![Field::new("x", Schema::int64())]).optional(),
                ),
            ],
        )
    }

    #[test]
    fn every_kind_reads_back_as_written() {
        let value = Value::Struct(vec![
            Value::Int8(-8),
            Value::Int16(-1600),
            Value::Int32(i32::MIN),
            Value::Int64(i64::MAX),
            Value::Float32(1.5),
            Value::Float64(-2.25e300),
            Value::Boolean(true),
            Value::String("ünïcode".into()),
            Value::Bytes(vec![0, 255, 7]),
            Value::Array(vec![Value::Int64(1), Value::Null, Value::Int64(-3)]),
            Value::Map(vec![
                (Value::String("a".into()), Value::String("1".into())),
                (Value::String("b".into()), Value::String("2".into())),
            ]),
            Value::Map(vec![(Value::Int32(4), Value::String("four".into()))]),
            Value::Struct(vec![Value::Int64(42)]),
        ]);
        assert_eq!(round_trip(&every_kind(), &value), value);
        let nulls = Value::Struct(vec![
            Value::Int8(0),
            Value::Int16(0),
            Value::Int32(0),
            Value::Int64(0),
            Value::Float32(0.0),
            Value::Float64(0.0),
            Value::Boolean(false),
            Value::Null,
            Value::Bytes(Vec::new()),
            Value::Array(Vec::new()),
            Value::Map(Vec::new()),
            Value::Map(Vec::new()),
            Value::Null,
        ]);
        assert_eq!(round_trip(&every_kind(), &nulls), nulls);
    }

    #[test]
    fn enums_fixed_and_named_references_read_by_their_layout() {
        let json: Json = serde_json::json!({
        "type": "record", "name": "r", "namespace": "n", "fields": [
            {"name": "e", "type": {"type": "enum", "name": "Color", "symbols": ["RED", "GREEN"]}},
            {"name": "f", "type": {"type": "fixed", "name": "Two", "size": 2}},
            {"name": "again", "type": "n.Two"},
            {"name": "d", "type": ["string", "null"], "default": "x"}
        ]});
        let connect = to_connect(&json, &mut HashMap::new()).expect("connect");
        let wire = Wire::of(&json, &mut HashMap::new()).expect("wire");
        // GREEN, fixed ab, fixed cd, union branch 1 (null).
        let bytes = [2u8, b'a', b'b', b'c', b'd', 2];
        let value = read(&wire, &connect, &mut &bytes[..]).expect("read");
        assert_eq!(
            value,
            Value::Struct(vec![
                Value::String("GREEN".into()),
                Value::Bytes(b"ab".to_vec()),
                Value::Bytes(b"cd".to_vec()),
                Value::Null,
            ])
        );
    }

    #[test]
    fn damaged_or_hostile_messages_are_errors_not_allocations() {
        let schema = Schema::structure(
            "t.V",
            vec![
                Field::new("s", Schema::string()),
                Field::new("l", Schema::array(Schema::int64())),
            ],
        );
        let json = to_avro(&schema);
        let connect = to_connect(&json, &mut HashMap::new()).expect("connect");
        let wire = Wire::of(&json, &mut HashMap::new()).expect("wire");
        let fails = |bytes: &[u8]| read(&wire, &connect, &mut &bytes[..]).expect_err("refused");
        // A string claiming 2^62 bytes.
        let huge = [0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f];
        assert!(fails(&huge).contains("length"), "{}", fails(&huge));
        // An array block claiming 2^62 items after an empty string.
        let mut many = vec![0u8];
        many.extend_from_slice(&huge);
        assert!(fails(&many).contains("block"), "{}", fails(&many));
        // Cut short inside the array.
        assert!(
            fails(&[0, 2, 0x80]).contains("ends"),
            "{}",
            fails(&[0, 2, 0x80])
        );
        // A varint that never ends.
        assert!(fails(&[0xff; 12]).contains("varint"));
        // Invalid UTF-8.
        assert!(fails(&[2, 0xff, 0]).contains("UTF-8"));
    }

    #[test]
    fn a_writer_layout_that_does_not_fit_the_schema_is_named() {
        let wire = Wire::Long;
        let err = read(&wire, &Schema::string(), &mut &[2u8][..]).expect_err("mismatch");
        assert!(err.contains("expected string, found Avro long"), "{err}");
    }
}
