//! Reading only the fields a sink task reads. A task that names its fields
//! ([`FieldSelection`]) gets values whose other fields are `Null`: those
//! are stepped over in the message without being decoded or allocated —
//! for the JDBC sink that is a change event's `before`, most of its source
//! block and its transaction block, about half of what a decoded event
//! weighed.

use sluice_connector_api::{FieldSelection, Schema, SchemaKind};

use super::datum::{block, chosen, length, min_width, skip_long, take};
use crate::registry::avro_model::{AvroModel, NamedKind, Node};

/// Which fields of a value to decode, resolved against its schema once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Projection {
    /// The whole value.
    All,
    /// A struct: per field in schema order, how much of it to decode
    /// (`None`: step over it and leave it `Null`).
    Fields(Vec<Option<Projection>>),
}

/// The whole value, for places a projection does not reach into (array
/// items, map values).
pub static ALL: Projection = Projection::All;

impl Projection {
    /// `selection` resolved against `schema` (a selection naming fields of
    /// something that is not a struct selects all of it).
    pub fn of(schema: &Schema, selection: &FieldSelection) -> Self {
        let SchemaKind::Struct(fields) = &schema.kind else {
            return Self::All;
        };
        Self::Fields(
            fields
                .iter()
                .map(|field| {
                    let (_, inner) = selection.fields.iter().find(|(n, _)| *n == field.name)?;
                    Some(match inner {
                        None => Self::All,
                        Some(inner) => Self::of(&field.schema, inner),
                    })
                })
                .collect(),
        )
    }
}

/// Steps over one datum of `node`, checking every length against what is
/// left, without decoding it. Inlined into the record reader, which calls
/// it for every field a sink does not read (most of a source block).
#[inline(always)]
pub fn skip(model: &AvroModel, node: &Node, input: &mut &[u8]) -> Result<(), String> {
    // A primitive here, without a call: most fields stepped over are.
    match skip_primitive(node, input)? {
        Some(rest) => skip_at(model, rest, input, 0),
        None => Ok(()),
    }
}

/// Steps over one datum of `node` if it is a primitive, or a union whose
/// chosen branch is one; otherwise returns what is left to step over
/// (past the union's branch index if there was one). Most of what a sink steps over is such fields (a source
/// block's, a `before` that is null), and a call through [`skip_at`] for
/// each cost more than the stepping (callgrind, `scripts/bench-sink`).
#[inline(always)]
fn skip_primitive<'n>(node: &'n Node, input: &mut &[u8]) -> Result<Option<&'n Node>, String> {
    let node = chosen(node, input)?;
    match node {
        Node::Null => {}
        Node::Boolean => {
            take(input, 1)?;
        }
        Node::Int | Node::Long => skip_long(input)?,
        Node::Float => {
            take(input, 4)?;
        }
        Node::Double => {
            take(input, 8)?;
        }
        Node::String | Node::Bytes => {
            let n = length(input)?;
            take(input, n)?;
        }
        // Left to the caller, past the branch index if there was one.
        other => return Ok(Some(other)),
    }
    Ok(None)
}

fn skip_at(model: &AvroModel, node: &Node, input: &mut &[u8], depth: u32) -> Result<(), String> {
    // A recursive schema is stepped through as deep as the message nests
    // it; the bound keeps a hostile message from exhausting the stack.
    if depth > 64 {
        return Err("values nested more than 64 deep".into());
    }
    let Some(node) = skip_primitive(node, input)? else {
        return Ok(());
    };
    match node {
        Node::Array(items) => loop {
            let count = block(input, min_width(model, items, 0))?;
            if count == 0 {
                break;
            }
            for _ in 0..count {
                skip_at(model, items, input, depth + 1)?;
            }
        },
        Node::Map(values) => loop {
            let count = block(input, 1 + min_width(model, values, 0))?;
            if count == 0 {
                break;
            }
            for _ in 0..count {
                let n = length(input)?;
                take(input, n)?;
                skip_at(model, values, input, depth + 1)?;
            }
        },
        Node::Union(_) => skip_at(model, chosen(node, input)?, input, depth + 1)?,
        Node::Named(i) => match model.named.get(*i).map(|n| &n.kind) {
            Some(NamedKind::Record(fields)) => {
                for field in fields {
                    if let Some(rest) = skip_primitive(&field.node, input)? {
                        skip_at(model, rest, input, depth + 1)?;
                    }
                }
            }
            Some(NamedKind::Enum { .. }) => skip_long(input)?,
            Some(NamedKind::Fixed { size }) => {
                let n = usize::try_from(*size).map_err(|_| format!("a fixed of {size} bytes"))?;
                take(input, n)?;
            }
            None => return Err(format!("named type {i} missing from the writer schema")),
        },
        // Stepped over by `skip_primitive` already.
        Node::Null
        | Node::Boolean
        | Node::Int
        | Node::Long
        | Node::Float
        | Node::Double
        | Node::String
        | Node::Bytes => {}
    }
    Ok(())
}
