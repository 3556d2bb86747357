//! Reading one Avro datum straight into the record model. The writer
//! schema is parsed once into the registry's [`AvroModel`]; each message
//! is then read field by field into the value its Connect schema
//! describes, with no intermediate Avro value tree and no schema
//! resolution per message (`apache_avro::from_avro_datum` resolved the
//! writer schema on every call: two thirds of a sink's CPU went there).
//!
//! The bytes come from a topic anyone may write to, so every length and
//! count is checked against what is left of the message before anything
//! is allocated.

use sluice_connector_api::{Schema, SchemaKind, Text, Value};

use super::projection::{skip, Projection, ALL};
use crate::registry::avro_model::{AvroModel, NamedKind, Node};

/// The fewest bytes one value of `node` takes (bounded in depth, so a
/// recursive type cannot loop).
pub(super) fn min_width(model: &AvroModel, node: &Node, depth: u32) -> usize {
    match node {
        Node::Null => 0,
        Node::Float => 4,
        Node::Double => 8,
        Node::Named(i) if depth < 32 => match model.named.get(*i).map(|n| &n.kind) {
            Some(NamedKind::Record(fields)) => fields
                .iter()
                .map(|f| min_width(model, &f.node, depth + 1))
                .sum(),
            Some(NamedKind::Fixed { size }) => usize::try_from(*size).unwrap_or(usize::MAX),
            _ => 1,
        },
        Node::Named(_) => 0,
        _ => 1,
    }
}

/// The next zig-zag varint. Inlined for the one-byte case (union
/// branches, short lengths, small numbers): it runs for every number,
/// length and union branch of every message (`#[inline]` alone left it a
/// call of 40 instructions from the record reader: callgrind,
/// `scripts/bench-sink`).
#[inline(always)]
pub(super) fn long(input: &mut &[u8]) -> Result<i64, String> {
    match input.first() {
        Some(&byte) if byte < 0x80 => {
            *input = &input[1..];
            Ok(i64::from(byte >> 1) ^ -i64::from(byte & 1))
        }
        _ => long_wide(input),
    }
}

fn long_wide(input: &mut &[u8]) -> Result<i64, String> {
    let bytes = *input;
    let mut z: u64 = 0;
    for (i, &byte) in bytes.iter().take(10).enumerate() {
        z |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            *input = &bytes[i + 1..];
            return Ok((z >> 1) as i64 ^ -((z & 1) as i64));
        }
    }
    Err(if bytes.len() < 10 {
        END.into()
    } else {
        "a varint longer than 10 bytes".into()
    })
}

/// Steps over the next varint without computing it.
#[inline]
pub(super) fn skip_long(input: &mut &[u8]) -> Result<(), String> {
    let bytes = *input;
    // The last byte is the first without its high bit: found in eight at
    // once. A change event's times (ts_ms, ts_us, ts_ns) take 6 to 9
    // bytes, and a byte at a time was most of what stepping over a source
    // block cost (callgrind, `scripts/bench-sink`).
    if let Some(word) = bytes.first_chunk::<8>() {
        let ends = !u64::from_le_bytes(*word) & 0x8080_8080_8080_8080;
        if ends != 0 {
            *input = &bytes[(ends.trailing_zeros() / 8) as usize + 1..];
            return Ok(());
        }
    }
    let mut i = 0;
    while i < bytes.len() && i < 10 {
        if bytes[i] < 0x80 {
            *input = &bytes[i + 1..];
            return Ok(());
        }
        i += 1;
    }
    Err(if bytes.len() < 10 {
        END.into()
    } else {
        "a varint longer than 10 bytes".into()
    })
}

const END: &str = "the message ends inside a value";

/// The next `n` bytes. Inlined with [`length`]: stepping over a `source`
/// block's text takes both for each of its 8–10 strings, and as calls they
/// cost about 50 instructions a string more (callgrind,
/// `scripts/bench-sink`).
#[inline(always)]
pub(super) fn take<'a>(input: &mut &'a [u8], n: usize) -> Result<&'a [u8], String> {
    if input.len() < n {
        return Err(END.into());
    }
    let (head, rest) = input.split_at(n);
    *input = rest;
    Ok(head)
}

/// A length prefix, checked against what is left.
#[inline(always)]
pub(super) fn length(input: &mut &[u8]) -> Result<usize, String> {
    let n = long(input)?;
    usize::try_from(n)
        .ok()
        .filter(|n| *n <= input.len())
        .ok_or_else(|| format!("a length of {n} where {} bytes are left", input.len()))
}

/// A length-prefixed UTF-8 string.
pub(super) fn text(input: &mut &[u8]) -> Result<Text, String> {
    let n = length(input)?;
    let raw = take(input, n)?;
    // Straight from the message: short text (`op`, codes, short names) is
    // held in place, never allocated.
    sluice_connector_api::text::utf8(raw)
        .map(Text::from)
        .map_err(|e| format!("a string that is not UTF-8: {e}"))
}

/// The item count of the next block of an array or map (0 at the end),
/// checked so that a hostile count cannot allocate or loop beyond what
/// the message could hold.
pub(super) fn block(input: &mut &[u8], item_width: usize) -> Result<usize, String> {
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

/// Reads one datum of the writer schema `model` into a value of `schema`,
/// decoding the fields `projection` selects (the others are `Null`).
pub fn read(
    model: &AvroModel,
    schema: &Schema,
    projection: &Projection,
    input: &mut &[u8],
) -> Result<Value, String> {
    read_node(model, &model.root, schema, projection, input)
}

/// The node a datum of `node` is read as: for a union, the branch whose
/// index comes next in the message; anything else as it is.
#[inline(always)]
pub(super) fn chosen<'n>(node: &'n Node, input: &mut &[u8]) -> Result<&'n Node, String> {
    match node {
        Node::Union(branches) => {
            let index = long(input)?;
            usize::try_from(index)
                .ok()
                .and_then(|i| branches.get(i))
                .ok_or_else(|| format!("union branch {index} of {}", branches.len()))
        }
        other => Ok(other),
    }
}

/// What [`scalar`] made of a datum.
enum Scalar<'n> {
    /// The value, read.
    Read(Value),
    /// Not a scalar: the node to read it as (past the union's branch
    /// index if there was one).
    Other(&'n Node),
}

/// Reads a datum of `node` if it is a scalar the schema takes as one, or a
/// union whose chosen branch is. Most of a change event's fields are such,
/// and a recursive [`read_node`] call for each (and one more for its union)
/// cost more than the reading (callgrind, `scripts/bench-sink`).
#[inline(always)]
fn scalar<'n>(node: &'n Node, schema: &Schema, input: &mut &[u8]) -> Result<Scalar<'n>, String> {
    let node = chosen(node, input)?;
    Ok(Scalar::Read(match (node, &schema.kind) {
        (Node::Null, _) => Value::Null,
        (Node::Boolean, SchemaKind::Boolean) => match take(input, 1)? {
            [0] => Value::Boolean(false),
            [1] => Value::Boolean(true),
            other => return Err(format!("a boolean byte {other:?}")),
        },
        (Node::Int, SchemaKind::Int8 | SchemaKind::Int16 | SchemaKind::Int32) => {
            let n = long(input)?;
            let n = i32::try_from(n).map_err(|_| format!("an int of {n}"))?;
            match schema.kind {
                SchemaKind::Int8 => Value::Int8(n as i8),
                SchemaKind::Int16 => Value::Int16(n as i16),
                _ => Value::Int32(n),
            }
        }
        (Node::Long, SchemaKind::Int64) => Value::Int64(long(input)?),
        (Node::Float, SchemaKind::Float32) => {
            let raw = take(input, 4)?;
            Value::Float32(f32::from_le_bytes([raw[0], raw[1], raw[2], raw[3]]))
        }
        (Node::Double, SchemaKind::Float64) => {
            let mut raw = [0u8; 8];
            raw.copy_from_slice(take(input, 8)?);
            Value::Float64(f64::from_le_bytes(raw))
        }
        (Node::String, SchemaKind::String) => Value::String(text(input)?),
        (Node::Bytes, SchemaKind::Bytes) => {
            let n = length(input)?;
            Value::Bytes(take(input, n)?.to_vec())
        }
        _ => return Ok(Scalar::Other(node)),
    }))
}

/// Reads one datum of `node` as a value of `schema`, decoding the fields
/// `projection` selects.
pub(super) fn read_node(
    model: &AvroModel,
    node: &Node,
    schema: &Schema,
    projection: &Projection,
    input: &mut &[u8],
) -> Result<Value, String> {
    let node = match scalar(node, schema, input)? {
        Scalar::Read(value) => return Ok(value),
        Scalar::Other(node) => node,
    };
    let named = match node {
        Node::Named(i) => Some(
            &model
                .named
                .get(*i)
                .ok_or_else(|| format!("named type {i} missing from the writer schema"))?
                .kind,
        ),
        _ => None,
    };
    let mismatch = || {
        format!(
            "expected {}, found Avro {}",
            schema.kind.connect_name(),
            node.type_name(model)
        )
    };
    Ok(match (node, named, &schema.kind) {
        (_, Some(NamedKind::Enum { symbols, .. }), SchemaKind::String) => {
            let index = long(input)?;
            let symbol = usize::try_from(index)
                .ok()
                .and_then(|i| symbols.get(i))
                .ok_or_else(|| format!("enum symbol {index} of {}", symbols.len()))?;
            Value::String(symbol.as_str().into())
        }
        (_, Some(NamedKind::Fixed { size }), SchemaKind::Bytes) => {
            let n = usize::try_from(*size).map_err(|_| format!("a fixed of {size} bytes"))?;
            Value::Bytes(take(input, n)?.to_vec())
        }
        (Node::Array(items), _, SchemaKind::Array(item_schema)) => {
            let width = min_width(model, items, 0);
            let mut values = Vec::new();
            loop {
                let count = block(input, width)?;
                if count == 0 {
                    break Value::Array(values);
                }
                values.reserve(count);
                for i in 0..count {
                    let value = read_node(model, items, item_schema, &ALL, input)
                        .map_err(|e| format!("[{i}]: {e}"))?;
                    values.push(value);
                }
            }
        }
        // Maps with non-string keys: arrays of key/value records.
        (Node::Array(items), _, SchemaKind::Map(keys, values)) => {
            let Node::Named(i) = items.as_ref() else {
                return Err(mismatch());
            };
            let Some(NamedKind::Record(kv)) = model.named.get(*i).map(|n| &n.kind) else {
                return Err(mismatch());
            };
            let [key_field, value_field] = kv.as_slice() else {
                return Err(mismatch());
            };
            let width = min_width(model, items, 0);
            let mut entries = Vec::new();
            loop {
                let count = block(input, width)?;
                if count == 0 {
                    break Value::Map(entries);
                }
                entries.reserve(count);
                for _ in 0..count {
                    let key = read_node(model, &key_field.node, keys, &ALL, input)?;
                    let value = read_node(model, &value_field.node, values, &ALL, input)?;
                    entries.push((key, value));
                }
            }
        }
        (Node::Map(value_node), _, SchemaKind::Map(_, values)) => {
            // A key takes at least its length byte.
            let width = 1 + min_width(model, value_node, 0);
            let mut entries = Vec::new();
            loop {
                let count = block(input, width)?;
                if count == 0 {
                    break;
                }
                entries.reserve(count);
                for _ in 0..count {
                    let key = text(input)?;
                    let value = read_node(model, value_node, values, &ALL, input)
                        .map_err(|e| format!("{key}: {e}"))?;
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
        (_, Some(NamedKind::Record(defs)), SchemaKind::Struct(fields)) => {
            if defs.len() != fields.len() {
                return Err(format!(
                    "a record of {} fields for a schema of {}",
                    defs.len(),
                    fields.len()
                ));
            }
            let kept = match projection {
                Projection::Fields(kept) if kept.len() == fields.len() => Some(kept),
                _ => None,
            };
            let mut values = Vec::with_capacity(fields.len());
            for (i, (def, f)) in defs.iter().zip(fields).enumerate() {
                let inner = match kept.map(|k| &k[i]) {
                    None => &ALL,
                    Some(Some(inner)) => inner,
                    Some(None) => {
                        skip(model, &def.node, input).map_err(|e| format!("{}: {e}", f.name))?;
                        values.push(Value::Null);
                        continue;
                    }
                };
                let value = match scalar(&def.node, &f.schema, input) {
                    Ok(Scalar::Read(value)) => Ok(value),
                    Ok(Scalar::Other(node)) => read_node(model, node, &f.schema, inner, input),
                    Err(e) => Err(e),
                };
                values.push(value.map_err(|e| format!("{}: {e}", f.name))?);
            }
            Value::Struct(values)
        }
        _ => return Err(mismatch()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::converter::avro::encode::{encode, NullsWithDefault};
    use crate::converter::avro::plan::Plan;
    use crate::converter::avro::read::to_connect;
    use crate::converter::avro::schema::to_avro;
    use serde_json::Value as Json;
    use sluice_connector_api::Field;
    use std::collections::HashMap;

    /// Reads as [`super::read`] does, and with a [`Plan`] of the same
    /// schemas, and checks that the two agree: the same value or the same
    /// error, and the input left at the same byte. Every test here reads
    /// through it, so each is a test of the plan too.
    fn read(
        model: &AvroModel,
        schema: &Schema,
        projection: &Projection,
        input: &mut &[u8],
    ) -> Result<Value, String> {
        let mut planned_input = *input;
        let planned = Plan::new(model, schema, projection).read(model, &mut planned_input);
        let read = super::read(model, schema, projection, input);
        // Compared as text: a NaN read from random bytes equals no value.
        assert_eq!(format!("{planned:?}"), format!("{read:?}"));
        if read.is_ok() {
            assert_eq!(planned_input.len(), input.len(), "left at the same byte");
        }
        read
    }

    /// Encodes `value` under `schema` with the converter's writer, then
    /// reads it back through the schema's Avro JSON, as a sink does.
    fn round_trip(schema: &Schema, value: &Value) -> Value {
        let json = to_avro(schema);
        let connect = to_connect(&json, &mut HashMap::new()).expect("connect schema");
        let model = AvroModel::from_json(&json).expect("model");
        let mut bytes = Vec::new();
        encode(&mut bytes, schema, value, NullsWithDefault::WriteNull).expect("encode");
        let mut input = bytes.as_slice();
        let read = read(&model, &connect, &ALL, &mut input).expect("read");
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
    fn varints_read_and_skip_at_every_width() {
        let values = [
            0,
            -1,
            1,
            63,
            -64,
            64,
            1 << 20,
            -(1 << 35),
            i64::MAX,
            i64::MIN,
        ];
        for n in values {
            let mut bytes = Vec::new();
            encode(
                &mut bytes,
                &Schema::int64(),
                &Value::Int64(n),
                NullsWithDefault::WriteNull,
            )
            .expect("encode");
            bytes.push(0x55);
            let mut input = bytes.as_slice();
            assert_eq!(long(&mut input), Ok(n));
            assert_eq!(input, [0x55]);
            let mut input = bytes.as_slice();
            skip_long(&mut input).expect("skip");
            assert_eq!(input, [0x55]);
            let cut = &bytes[..bytes.len() - 2];
            assert!(long(&mut &cut[..]).is_err() || cut.is_empty());
            assert!(skip_long(&mut &cut[..]).is_err());
            // With eight bytes or more in reach, the varint's end is found
            // a word at a time: the same place.
            let end = bytes.len() - 1;
            let mut long_tail = bytes[..end].to_vec();
            long_tail.extend([0x80, 0x01, 0x7f, 0xff, 0x00, 0x81, 0x02, 0x03, 0x04]);
            let mut input = long_tail.as_slice();
            skip_long(&mut input).expect("skip");
            assert_eq!(input, &long_tail[end..], "{n}");
        }
        // Ten bytes with the high bit set are no varint, read either way.
        let endless = [0xffu8; 16];
        assert!(skip_long(&mut &endless[..]).is_err());
        assert!(long(&mut &[0x80u8; 11][..]).is_err());
        assert!(skip_long(&mut &[0x80u8; 11][..]).is_err());
    }

    /// A projection decodes what it selects exactly as a whole read does,
    /// leaves the rest `Null`, and steps over every kind of value to the
    /// datum's end — so the next message is read from the right byte.
    #[test]
    fn unselected_fields_are_stepped_over_and_read_as_null() {
        let schema = every_kind();
        let value = Value::Struct(vec![
            Value::Int8(-8),
            Value::Int16(-1600),
            Value::Int32(7),
            Value::Int64(i64::MAX),
            Value::Float32(1.5),
            Value::Float64(-2.5),
            Value::Boolean(true),
            Value::String("ünïcode".into()),
            Value::Bytes(vec![0, 255, 7]),
            Value::Array(vec![Value::Int64(1), Value::Null]),
            Value::Map(vec![(Value::String("a".into()), Value::String("1".into()))]),
            Value::Map(vec![(Value::Int32(4), Value::String("four".into()))]),
            Value::Struct(vec![Value::Int64(42)]),
        ]);
        let json = to_avro(&schema);
        let connect = to_connect(&json, &mut HashMap::new()).expect("connect schema");
        let model = AvroModel::from_json(&json).expect("model");
        let mut bytes = Vec::new();
        encode(&mut bytes, &schema, &value, NullsWithDefault::WriteNull).expect("encode");
        // A second datum behind the first: it must read whole afterwards.
        encode(&mut bytes, &schema, &value, NullsWithDefault::WriteNull).expect("encode");
        let selection = sluice_connector_api::FieldSelection::default()
            .whole("i32")
            .whole("s")
            .part("inner", sluice_connector_api::FieldSelection::default());
        let projection = Projection::of(&connect, &selection);
        let mut input = bytes.as_slice();
        let read_part = read(&model, &connect, &projection, &mut input).expect("projected read");
        let mut expected = vec![Value::Null; 13];
        expected[2] = Value::Int32(7);
        expected[7] = Value::String("ünïcode".into());
        expected[12] = Value::Struct(vec![Value::Null]);
        assert_eq!(read_part, Value::Struct(expected));
        let read_whole = read(&model, &connect, &ALL, &mut input).expect("the next datum");
        assert_eq!(read_whole, value);
        assert!(input.is_empty());
        // A length past the end is refused while stepping over, too.
        let cut = &bytes[..bytes.len() / 2 - 3];
        assert!(read(&model, &connect, &projection, &mut &cut[..]).is_err());
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
        let model = AvroModel::from_json(&json).expect("model");
        // GREEN, fixed ab, fixed cd, union branch 1 (null).
        let bytes = [2u8, b'a', b'b', b'c', b'd', 2];
        let value = read(&model, &connect, &ALL, &mut &bytes[..]).expect("read");
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
        let model = AvroModel::from_json(&json).expect("model");
        let fails =
            |bytes: &[u8]| read(&model, &connect, &ALL, &mut &bytes[..]).expect_err("refused");
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
    fn random_and_mutated_bytes_are_errors_never_panics() {
        let schema = every_kind();
        let json = to_avro(&schema);
        let connect = to_connect(&json, &mut HashMap::new()).expect("connect");
        let model = AvroModel::from_json(&json).expect("model");
        let mut valid = Vec::new();
        let value = Value::Struct(vec![
            Value::Int8(1),
            Value::Int16(2),
            Value::Int32(3),
            Value::Int64(4),
            Value::Float32(5.0),
            Value::Float64(6.0),
            Value::Boolean(true),
            Value::String("seven".into()),
            Value::Bytes(vec![8; 8]),
            Value::Array(vec![Value::Int64(9), Value::Null]),
            Value::Map(vec![(Value::String("k".into()), Value::String("v".into()))]),
            Value::Map(vec![(Value::Int32(10), Value::String("ten".into()))]),
            Value::Struct(vec![Value::Int64(11)]),
        ]);
        encode(&mut valid, &schema, &value, NullsWithDefault::WriteNull).expect("encode");
        let selection = sluice_connector_api::FieldSelection::default()
            .whole("i64")
            .whole("s")
            .part("inner", sluice_connector_api::FieldSelection::default());
        let projection = Projection::of(&connect, &selection);
        // A fixed xorshift sequence: the same inputs every run.
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for round in 0..20_000 {
            let bytes: Vec<u8> = if round % 2 == 0 {
                // Random bytes of random length.
                let len = (next() % 64) as usize;
                (0..len).map(|_| next() as u8).collect()
            } else {
                // The valid message with a few bytes changed, cut short or not.
                let mut bytes = valid.clone();
                for _ in 0..1 + next() % 3 {
                    let at = (next() as usize) % bytes.len();
                    bytes[at] = next() as u8;
                }
                bytes.truncate(1 + (next() as usize) % bytes.len());
                bytes
            };
            // An error is fine; a panic or an abort is not.
            let _ = read(&model, &connect, &ALL, &mut bytes.as_slice());
            let _ = read(&model, &connect, &projection, &mut bytes.as_slice());
        }
    }

    /// Structs nested past the depth a plan resolves are read on by the
    /// datum reader, to the same value.
    #[test]
    fn values_nested_past_the_planned_depth_read_whole() {
        let mut schema = Schema::structure("t.L0", vec![Field::new("n", Schema::int64())]);
        let mut value = Value::Struct(vec![Value::Int64(7)]);
        for depth in 1..40 {
            schema = Schema::structure(
                format!("t.L{depth}"),
                vec![
                    Field::new("inner", schema.optional()),
                    Field::new("skipped", Schema::string()),
                ],
            );
            value = Value::Struct(vec![value, Value::String(format!("{depth}").into())]);
        }
        assert_eq!(round_trip(&schema, &value), value);
        let json = to_avro(&schema);
        let connect = to_connect(&json, &mut HashMap::new()).expect("connect");
        let model = AvroModel::from_json(&json).expect("model");
        let mut bytes = Vec::new();
        encode(&mut bytes, &schema, &value, NullsWithDefault::WriteNull).expect("encode");
        let selection = sluice_connector_api::FieldSelection::default()
            .part("inner", sluice_connector_api::FieldSelection::default());
        let projection = Projection::of(&connect, &selection);
        let mut input = bytes.as_slice();
        read(&model, &connect, &projection, &mut input).expect("projected read");
        assert!(input.is_empty());
    }

    #[test]
    fn a_writer_layout_that_does_not_fit_the_schema_is_named() {
        let model = AvroModel::from_json(&serde_json::json!("long")).expect("model");
        let err = read(&model, &Schema::string(), &ALL, &mut &[2u8][..]).expect_err("mismatch");
        assert!(err.contains("expected string, found Avro long"), "{err}");
    }
}
