//! About how many bytes of memory a record holds: what the byte bounds on
//! records waiting between a source and the broker count (a batch closes
//! at [`BATCH_BYTES`]; `max.queue.size.in.bytes` bounds the task's queue).
//!
//! An estimate, as Debezium's is: the record's own size, its topic and
//! headers, and every value's size with its owned text and bytes. Text
//! shared between records (table names, a transaction's statement) is not
//! counted, since one copy serves many records.

use std::mem::size_of;

use crate::record::SourceRecord;
use crate::text::Text;
use crate::value::Value;

/// The most bytes a batch of records gathers before it is handed over,
/// whatever `max.batch.size` allows: 2,048 rows of a few hundred bytes
/// weigh a few MiB, but of 1 MiB rows, 2 GiB — held once as the batch
/// being filled, once per batch queued, once as it is converted. A batch of
/// 8 MiB still carries thousands of ordinary rows, so this bound only
/// closes batches of wide rows early.
pub const BATCH_BYTES: usize = 8 << 20;

/// About what a change event holds besides its row's values: the record,
/// its envelope and its source block. Sources that read rows add it to
/// the footprint of the row instead of weighing each event whole, which
/// visits every member of its source block and cost about 500
/// instructions an event (callgrind, `scripts/bench-mysql`).
pub const EVENT_OVERHEAD: usize = 1024;

impl SourceRecord {
    /// About how many bytes this record holds (see the module comment).
    pub fn footprint(&self) -> usize {
        size_of::<Self>()
            + self.topic.len()
            + self.key.as_ref().map_or(0, Value::footprint)
            + self.value.as_ref().map_or(0, Value::footprint)
            + self
                .headers
                .iter()
                .map(|(name, value)| size_of::<(String, Vec<u8>)>() + name.len() + value.len())
                .sum::<usize>()
    }
}

impl Value {
    /// About how many bytes this value holds, itself included.
    pub fn footprint(&self) -> usize {
        size_of::<Self>()
            + match self {
                Self::Struct(members) | Self::Array(members) => held(members),
                Self::Map(entries) => held_in_map(entries),
                leaf => held_by_leaf(leaf),
            }
    }
}

/// What a leaf holds outside itself: its owned text or bytes.
#[inline(always)]
fn held_by_leaf(value: &Value) -> usize {
    match value {
        Value::String(Text::Owned(text)) => text.len(),
        Value::Bytes(bytes) => bytes.len(),
        // One copy serves many records, as shared text does.
        Value::Shared(_) => 0,
        // The shared struct as above; the members replaced are this one's.
        Value::Patched(_, patches) => patches
            .iter()
            .map(|(_, member)| size_of::<usize>() + member.footprint())
            .sum(),
        _ => 0,
    }
}

/// What the members of a struct or array hold, their slots included. A
/// loop with the leaves inline: this runs for every record a source
/// emits, and a call per member (30-odd in a change event, most of them
/// scalars or shared text) cost about 500 instructions an event
/// (callgrind, `scripts/bench-mysql`).
fn held(members: &[Value]) -> usize {
    let mut total = std::mem::size_of_val(members);
    for member in members {
        total += match member {
            Value::Struct(inner) | Value::Array(inner) => held(inner),
            Value::Map(entries) => held_in_map(entries),
            leaf => held_by_leaf(leaf),
        };
    }
    total
}

fn held_in_map(entries: &[(Value, Value)]) -> usize {
    entries
        .iter()
        .map(|(k, v)| k.footprint() + v.footprint())
        .sum()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn record(value: Value) -> SourceRecord {
        SourceRecord::holding(value)
    }

    /// A row's owned text and bytes count in full, nested ones too; text
    /// and values shared with other records do not.
    #[test]
    fn owned_text_and_bytes_count_shared_text_does_not() {
        let narrow = record(Value::Struct(vec![Value::Int64(1), Value::Null]));
        let wide = record(Value::Struct(vec![
            Value::Int64(1),
            Value::Struct(vec![Value::String("x".repeat(100_000).into())]),
        ]));
        let bytes = record(Value::Struct(vec![
            Value::Int64(1),
            Value::Bytes(vec![0; 50_000]),
        ]));
        let shared = record(Value::Struct(vec![
            Value::Int64(1),
            Value::String(Text::Shared(Arc::from("y".repeat(100_000)))),
        ]));
        let base = narrow.footprint();
        assert!(base > size_of::<SourceRecord>(), "{base}");
        assert!(wide.footprint() >= base + 100_000, "{}", wide.footprint());
        assert!(wide.footprint() < base + 100_200, "{}", wide.footprint());
        assert!(bytes.footprint() >= base + 50_000);
        assert!(shared.footprint() < base + 100, "{}", shared.footprint());
        let shared_block = record(Value::Struct(vec![
            Value::Int64(1),
            Value::Shared(Arc::new(Value::Bytes(vec![0; 50_000]))),
        ]));
        assert!(
            shared_block.footprint() < base + 100,
            "{}",
            shared_block.footprint()
        );
        // A shared block with a member of its own: that member counts.
        let patched = |member: Value| {
            record(Value::Struct(vec![
                Value::Int64(1),
                Value::patched(
                    Arc::new(Value::Struct(vec![
                        Value::Bytes(vec![0; 50_000]),
                        Value::Null,
                    ])),
                    vec![(1, member)],
                ),
            ]))
        };
        let small = patched(Value::Int32(3)).footprint();
        assert!(small < base + 200, "{small}");
        let big = patched(Value::String("z".repeat(20_000).into())).footprint();
        assert!(big >= small + 20_000, "{big} against {small}");
    }

    /// Headers and map entries are part of what a record holds.
    #[test]
    fn headers_and_maps_count() {
        let mut with_header = record(Value::Null);
        let plain = with_header.footprint();
        with_header.headers.push(("h".into(), vec![0; 1000]));
        assert!(with_header.footprint() >= plain + 1001);
        let map = record(Value::Map(vec![(
            Value::String("k".into()),
            Value::Bytes(vec![0; 2000]),
        )]));
        assert!(map.footprint() >= plain + 2001);
    }
}
