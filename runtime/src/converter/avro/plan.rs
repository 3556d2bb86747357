//! Reading plans: a writer schema, the Connect schema its data is read
//! as and the fields a sink reads, resolved once per writer schema into
//! what to do with each datum. [`super::datum`] reads the same way, but
//! works out at every value of every message which writer type meets
//! which Connect type, looks named types up and consults the projection:
//! for a JDBC sink that was 2,600 of the 4,600 instructions decoding a
//! change event took (callgrind, `scripts/bench-sink`). A plan decides
//! all that when the writer schema is first seen, and a message is then
//! read with one branch per value.
//!
//! A plan reads exactly as [`super::datum::read`] does, errors included
//! (the tests below compare the two on valid, damaged and random
//! messages). Where a schema refers to itself, the plan hands the rest of
//! the datum to [`super::datum`] past a fixed depth.

use sluice_connector_api::{Schema, SchemaKind, Value};

use super::datum::{self, block, length, long, min_width, skip_long, take};
use super::projection::{self, Projection, ALL};
use crate::registry::avro_model::{AvroModel, NamedKind, Node};

/// How deep a plan goes before it hands a recursive type to the datum
/// reader (no schema written by a source nests this deep).
const PLANNED_DEPTH: u32 = 24;

/// What to do with one datum of the writer schema.
#[derive(Debug)]
pub struct Plan(Step);

impl Plan {
    /// The plan for data of `model` read as `schema`, decoding the fields
    /// `projection` selects.
    pub fn new(model: &AvroModel, schema: &Schema, projection: &Projection) -> Self {
        Self(step(model, &model.root, schema, projection, 0))
    }

    /// Reads one datum, as [`datum::read`] reads it.
    pub fn read(&self, model: &AvroModel, input: &mut &[u8]) -> Result<Value, String> {
        run(&self.0, model, input)
    }
}

/// Reading one datum into a value.
#[derive(Debug)]
enum Step {
    Null,
    Boolean,
    Int8,
    Int16,
    Int32,
    Int64,
    Float32,
    Float64,
    String,
    Bytes,
    /// An enum's symbol, as text.
    Enum(Box<[String]>),
    /// A fixed's bytes.
    Fixed(usize),
    /// The branch the message names, read by its own step.
    Union(Box<[Step]>),
    /// A record into a struct, member by member.
    Record(Box<[Member]>),
    /// Array items; `width` is the fewest bytes an item takes.
    Array {
        items: Box<Step>,
        width: usize,
    },
    /// A map with text keys.
    Map {
        values: Box<Step>,
        width: usize,
    },
    /// A map with other keys, written as an array of key/value records.
    Entries {
        key: Box<Step>,
        value: Box<Step>,
        width: usize,
    },
    /// A datum the schemas cannot meet in: the error reading one gives.
    Fail(String),
    /// Past [`PLANNED_DEPTH`]: read by the datum reader.
    Deep {
        node: Node,
        schema: Schema,
        projection: Projection,
    },
}

/// One record field: read, or stepped over (left `Null`).
#[derive(Debug)]
struct Member {
    name: Box<str>,
    how: How,
}

#[derive(Debug)]
enum How {
    Read(Step),
    Skip(Pass),
}

/// Stepping over one datum without decoding it.
#[derive(Debug)]
enum Pass {
    /// A fixed number of bytes (null, boolean, float, double, fixed).
    Width(usize),
    /// A varint (int, long, enum).
    Varint,
    /// A length and that many bytes (string, bytes).
    Sized,
    /// The branch the message names.
    Union(Box<[Pass]>),
    /// A record's fields in turn.
    Record(Box<[Pass]>),
    /// Arrays, maps and what lies past [`PLANNED_DEPTH`]: stepped over
    /// by the projection's own walk.
    Deep(Node),
}

fn step(
    model: &AvroModel,
    node: &Node,
    schema: &Schema,
    projection: &Projection,
    depth: u32,
) -> Step {
    if depth > PLANNED_DEPTH {
        return Step::Deep {
            node: node.clone(),
            schema: schema.clone(),
            projection: projection.clone(),
        };
    }
    if let Node::Union(branches) = node {
        return Step::Union(
            branches
                .iter()
                .map(|branch| chosen_step(model, branch, schema, projection, depth + 1))
                .collect(),
        );
    }
    chosen_step(model, node, schema, projection, depth)
}

/// The step for `node` once a union's branch is chosen (or there was no
/// union), in the order [`datum`]'s reader tries them.
fn chosen_step(
    model: &AvroModel,
    node: &Node,
    schema: &Schema,
    projection: &Projection,
    depth: u32,
) -> Step {
    match (node, &schema.kind) {
        (Node::Null, _) => return Step::Null,
        (Node::Boolean, SchemaKind::Boolean) => return Step::Boolean,
        (Node::Int, SchemaKind::Int8) => return Step::Int8,
        (Node::Int, SchemaKind::Int16) => return Step::Int16,
        (Node::Int, SchemaKind::Int32) => return Step::Int32,
        (Node::Long, SchemaKind::Int64) => return Step::Int64,
        (Node::Float, SchemaKind::Float32) => return Step::Float32,
        (Node::Double, SchemaKind::Float64) => return Step::Float64,
        (Node::String, SchemaKind::String) => return Step::String,
        (Node::Bytes, SchemaKind::Bytes) => return Step::Bytes,
        _ => {}
    }
    let named = match node {
        Node::Named(i) => match model.named.get(*i) {
            Some(named) => Some(&named.kind),
            None => return Step::Fail(format!("named type {i} missing from the writer schema")),
        },
        _ => None,
    };
    let mismatch = || {
        Step::Fail(format!(
            "expected {}, found Avro {}",
            schema.kind.connect_name(),
            node.type_name(model)
        ))
    };
    let inner = |node: &Node, schema: &Schema| step(model, node, schema, &ALL, depth + 1);
    match (node, named, &schema.kind) {
        (_, Some(NamedKind::Enum { symbols, .. }), SchemaKind::String) => {
            Step::Enum(symbols.clone().into_boxed_slice())
        }
        (_, Some(NamedKind::Fixed { size }), SchemaKind::Bytes) => match usize::try_from(*size) {
            Ok(n) => Step::Fixed(n),
            Err(_) => Step::Fail(format!("a fixed of {size} bytes")),
        },
        (Node::Array(items), _, SchemaKind::Array(item_schema)) => Step::Array {
            items: Box::new(inner(items, item_schema)),
            width: min_width(model, items, 0),
        },
        (Node::Array(items), _, SchemaKind::Map(keys, values)) => {
            let Node::Named(i) = items.as_ref() else {
                return mismatch();
            };
            let Some(NamedKind::Record(kv)) = model.named.get(*i).map(|n| &n.kind) else {
                return mismatch();
            };
            let [key_field, value_field] = kv.as_slice() else {
                return mismatch();
            };
            Step::Entries {
                key: Box::new(inner(&key_field.node, keys)),
                value: Box::new(inner(&value_field.node, values)),
                width: min_width(model, items, 0),
            }
        }
        (Node::Map(value_node), _, SchemaKind::Map(_, values)) => Step::Map {
            values: Box::new(inner(value_node, values)),
            width: 1 + min_width(model, value_node, 0),
        },
        (_, Some(NamedKind::Record(defs)), SchemaKind::Struct(fields)) => {
            if defs.len() != fields.len() {
                return Step::Fail(format!(
                    "a record of {} fields for a schema of {}",
                    defs.len(),
                    fields.len()
                ));
            }
            let kept = match projection {
                Projection::Fields(kept) if kept.len() == fields.len() => Some(kept),
                _ => None,
            };
            let members = defs
                .iter()
                .zip(fields)
                .enumerate()
                .map(|(i, (def, field))| {
                    let how = match kept.map(|k| &k[i]) {
                        None => How::Read(step(model, &def.node, &field.schema, &ALL, depth + 1)),
                        Some(Some(inner)) => {
                            How::Read(step(model, &def.node, &field.schema, inner, depth + 1))
                        }
                        Some(None) => How::Skip(pass(model, &def.node, depth + 1)),
                    };
                    Member {
                        name: field.name.as_str().into(),
                        how,
                    }
                })
                .collect();
            Step::Record(members)
        }
        _ => mismatch(),
    }
}

fn pass(model: &AvroModel, node: &Node, depth: u32) -> Pass {
    if depth > PLANNED_DEPTH {
        return Pass::Deep(node.clone());
    }
    match node {
        Node::Null => Pass::Width(0),
        Node::Boolean => Pass::Width(1),
        Node::Int | Node::Long => Pass::Varint,
        Node::Float => Pass::Width(4),
        Node::Double => Pass::Width(8),
        Node::String | Node::Bytes => Pass::Sized,
        Node::Union(branches) => Pass::Union(
            branches
                .iter()
                .map(|branch| pass(model, branch, depth + 1))
                .collect(),
        ),
        Node::Named(i) => match model.named.get(*i).map(|n| &n.kind) {
            Some(NamedKind::Record(fields)) => Pass::Record(
                fields
                    .iter()
                    .map(|field| pass(model, &field.node, depth + 1))
                    .collect(),
            ),
            Some(NamedKind::Enum { .. }) => Pass::Varint,
            Some(NamedKind::Fixed { size }) => match usize::try_from(*size) {
                Ok(n) => Pass::Width(n),
                Err(_) => Pass::Deep(node.clone()),
            },
            None => Pass::Deep(node.clone()),
        },
        Node::Array(_) | Node::Map(_) => Pass::Deep(node.clone()),
    }
}

/// The branch of `branches` the message names next.
#[inline(always)]
fn branch<'s, T>(branches: &'s [T], input: &mut &[u8]) -> Result<&'s T, String> {
    let index = long(input)?;
    usize::try_from(index)
        .ok()
        .and_then(|i| branches.get(i))
        .ok_or_else(|| format!("union branch {index} of {}", branches.len()))
}

/// Reads `step` if it is a scalar, or a union whose chosen branch is one
/// (most of a change event's fields): without a call per value, which
/// cost more than the reading. Otherwise the step left to [`run`].
#[inline(always)]
fn leaf<'s>(step: &'s Step, input: &mut &[u8]) -> Result<Result<Value, &'s Step>, String> {
    let step = match step {
        Step::Union(branches) => branch(branches, input)?,
        other => other,
    };
    Ok(Ok(match step {
        Step::Null => Value::Null,
        Step::Int64 => Value::Int64(long(input)?),
        Step::Int32 => Value::Int32(int(input)?),
        Step::String => Value::String(datum::text(input)?),
        Step::Int16 => Value::Int16(int(input)? as i16),
        Step::Int8 => Value::Int8(int(input)? as i8),
        Step::Boolean => match take(input, 1)? {
            [0] => Value::Boolean(false),
            [1] => Value::Boolean(true),
            other => return Err(format!("a boolean byte {other:?}")),
        },
        Step::Float32 => {
            let raw = take(input, 4)?;
            Value::Float32(f32::from_le_bytes([raw[0], raw[1], raw[2], raw[3]]))
        }
        Step::Float64 => {
            let mut raw = [0u8; 8];
            raw.copy_from_slice(take(input, 8)?);
            Value::Float64(f64::from_le_bytes(raw))
        }
        Step::Bytes => {
            let n = length(input)?;
            Value::Bytes(take(input, n)?.to_vec())
        }
        other => return Ok(Err(other)),
    }))
}

/// An Avro int.
#[inline(always)]
fn int(input: &mut &[u8]) -> Result<i32, String> {
    let n = long(input)?;
    i32::try_from(n).map_err(|_| format!("an int of {n}"))
}

fn run(step: &Step, model: &AvroModel, input: &mut &[u8]) -> Result<Value, String> {
    let step = match leaf(step, input)? {
        Ok(value) => return Ok(value),
        Err(step) => step,
    };
    Ok(match step {
        Step::Record(members) => {
            let mut values = Vec::with_capacity(members.len());
            for member in members.iter() {
                let value = match &member.how {
                    How::Read(step) => match leaf(step, input) {
                        Ok(Ok(value)) => Ok(value),
                        Ok(Err(step)) => run(step, model, input),
                        Err(e) => Err(e),
                    },
                    How::Skip(p) => skip(p, model, input).map(|()| Value::Null),
                };
                values.push(value.map_err(|e| format!("{}: {e}", member.name))?);
            }
            Value::Struct(values)
        }
        Step::Enum(symbols) => {
            let index = long(input)?;
            let symbol = usize::try_from(index)
                .ok()
                .and_then(|i| symbols.get(i))
                .ok_or_else(|| format!("enum symbol {index} of {}", symbols.len()))?;
            Value::String(symbol.as_str().into())
        }
        Step::Fixed(n) => Value::Bytes(take(input, *n)?.to_vec()),
        Step::Array { items, width } => {
            let mut values = Vec::new();
            blocks(input, *width, &mut values, |input, i| {
                run(items, model, input).map_err(|e| format!("[{i}]: {e}"))
            })?;
            Value::Array(values)
        }
        Step::Entries { key, value, width } => {
            let mut entries = Vec::new();
            blocks(input, *width, &mut entries, |input, _| {
                Ok((run(key, model, input)?, run(value, model, input)?))
            })?;
            Value::Map(entries)
        }
        Step::Map { values, width } => {
            let mut entries = Vec::new();
            blocks(input, *width, &mut entries, |input, _| {
                let key = datum::text(input)?;
                let value = run(values, model, input).map_err(|e| format!("{key}: {e}"))?;
                Ok((Value::String(key), value))
            })?;
            // As the datum reader orders them: equal maps, equal values.
            entries.sort_by(|a, b| match (&a.0, &b.0) {
                (Value::String(x), Value::String(y)) => x.cmp(y),
                _ => std::cmp::Ordering::Equal,
            });
            Value::Map(entries)
        }
        Step::Fail(why) => return Err(why.clone()),
        Step::Deep {
            node,
            schema,
            projection,
        } => datum::read_node(model, node, schema, projection, input)?,
        // A branch of a union chosen by `leaf` that is a union itself.
        Step::Union(_) => return Err("a union directly inside a union".into()),
        // Read by `leaf`.
        Step::Null
        | Step::Boolean
        | Step::Int8
        | Step::Int16
        | Step::Int32
        | Step::Int64
        | Step::Float32
        | Step::Float64
        | Step::String
        | Step::Bytes => return Err("a scalar step left unread".into()),
    })
}

/// Reads the blocks of an array or map into `out`, an item at a time
/// (with its index in its block), until the empty block that ends them.
fn blocks<T>(
    input: &mut &[u8],
    width: usize,
    out: &mut Vec<T>,
    mut item: impl FnMut(&mut &[u8], usize) -> Result<T, String>,
) -> Result<(), String> {
    loop {
        let count = block(input, width)?;
        if count == 0 {
            return Ok(());
        }
        out.reserve(count);
        for i in 0..count {
            out.push(item(input, i)?);
        }
    }
}

/// Steps over one datum as `pass` says.
#[inline(always)]
fn skip(pass: &Pass, model: &AvroModel, input: &mut &[u8]) -> Result<(), String> {
    match skip_leaf(pass, input)? {
        Some(rest) => skip_rest(rest, model, input),
        None => Ok(()),
    }
}

/// Steps over a datum that is a primitive, or a union whose chosen branch
/// is one (nearly every field a sink steps over), without a call;
/// otherwise what is left to step over. As a call per field, stepping
/// over a `source` block cost more than reading the row.
#[inline(always)]
fn skip_leaf<'p>(pass: &'p Pass, input: &mut &[u8]) -> Result<Option<&'p Pass>, String> {
    let pass = match pass {
        Pass::Union(branches) => branch(branches, input)?,
        other => other,
    };
    match pass {
        Pass::Width(n) => {
            take(input, *n)?;
        }
        Pass::Varint => skip_long(input)?,
        Pass::Sized => {
            let n = length(input)?;
            take(input, n)?;
        }
        other => return Ok(Some(other)),
    }
    Ok(None)
}

fn skip_rest(pass: &Pass, model: &AvroModel, input: &mut &[u8]) -> Result<(), String> {
    match pass {
        Pass::Record(fields) => {
            for field in fields.iter() {
                if let Some(rest) = skip_leaf(field, input)? {
                    skip_rest(rest, model, input)?;
                }
            }
            Ok(())
        }
        Pass::Deep(node) => projection::skip(model, node, input),
        // A union's branch that is a union itself.
        Pass::Union(_) => skip(pass, model, input),
        // Stepped over by `skip_leaf`.
        Pass::Width(_) | Pass::Varint | Pass::Sized => Ok(()),
    }
}
