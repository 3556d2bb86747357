//! Avro binary encoding of record-model values, walking the record
//! model's schema in step with the Avro schema [`super::schema::to_avro`]
//! derives from it, so no intermediate Avro value tree is built.

use std::cell::RefCell;
use std::sync::Arc;

use sluice_connector_api::{Schema, SchemaKind, Value};

use crate::converter::ConvertError;

/// The most bytes a zig-zag varint of an `i64` takes.
const MAX_VARINT: usize = 10;

/// Appends `n` zig-zag varint encoded.
#[inline(always)]
fn long(out: &mut Vec<u8>, n: i64) {
    out.reserve(MAX_VARINT);
    unchecked_long(out, n);
}

/// [`long`] into room the caller reserved: every value of a record goes
/// through here, and a capacity check per byte cost more than the
/// writing (callgrind, `cargo bench --bench encode`).
#[inline(always)]
fn unchecked_long(out: &mut Vec<u8>, n: i64) {
    debug_assert!(out.capacity() - out.len() >= MAX_VARINT);
    let mut z = ((n << 1) ^ (n >> 63)) as u64;
    let start = out.len();
    // SAFETY: the caller reserved MAX_VARINT bytes past the length, and a
    // 64-bit varint is at most MAX_VARINT bytes long; `set_len` covers
    // exactly the bytes written.
    unsafe {
        let at = out.as_mut_ptr().add(start);
        let mut i = 0;
        while z >= 0x80 {
            *at.add(i) = (z as u8 & 0x7f) | 0x80;
            z >>= 7;
            i += 1;
        }
        *at.add(i) = z as u8;
        out.set_len(start + i + 1);
    }
}

/// Appends `data` with its length before it.
#[inline(always)]
fn bytes(out: &mut Vec<u8>, data: &[u8]) {
    out.reserve(MAX_VARINT + data.len());
    unchecked_long(out, data.len() as i64);
    let start = out.len();
    // SAFETY: room for `data` was reserved above, past the length prefix;
    // `data` is a separate borrow, so the ranges do not overlap.
    unsafe {
        std::ptr::copy_nonoverlapping(data.as_ptr(), out.as_mut_ptr().add(start), data.len());
        out.set_len(start + data.len());
    }
}

/// A mismatch at this level; callers prefix the path while unwinding, so
/// the happy path never builds path strings.
fn mismatch(schema: &Schema, value: &Value) -> ConvertError {
    ConvertError::Mismatch {
        path: String::new(),
        message: format!(
            "expected {}{}, found {value:?}",
            schema.kind.connect_name(),
            if schema.optional { " or null" } else { "" }
        ),
    }
}

/// Prefixes a mismatch's path with `segment` (a field name or `[i]`).
fn within(error: ConvertError, segment: &str) -> ConvertError {
    match error {
        ConvertError::Mismatch { path, message } => {
            let path = if path.is_empty() {
                segment.to_owned()
            } else if path.starts_with('[') {
                format!("{segment}{path}")
            } else {
                format!("{segment}.{path}")
            };
            ConvertError::Mismatch { path, message }
        }
        other => other,
    }
}

/// What a null in a nullable field with a default becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NullsWithDefault {
    /// The default, as Confluent's AvroConverter writes it unless
    /// `ignore.default.for.nullables=true`.
    WriteDefault,
    /// Null (`ignore.default.for.nullables=true`).
    WriteNull,
}

/// Appends `value` encoded under `schema` (with its optional union).
pub fn encode(
    out: &mut Vec<u8>,
    schema: &Schema,
    value: &Value,
    nulls: NullsWithDefault,
) -> Result<(), ConvertError> {
    if schema.optional {
        // Mirrors the union order chosen in `to_avro`.
        let default = schema.default.as_ref().filter(|d| !d.is_null());
        let (null_branch, value_branch) = if default.is_some() { (1, 0) } else { (0, 1) };
        if matches!(value, Value::Null) {
            match default {
                Some(default) if nulls == NullsWithDefault::WriteDefault => {
                    long(out, value_branch);
                    return bare(out, schema, default, nulls);
                }
                _ => {
                    long(out, null_branch);
                    return Ok(());
                }
            }
        }
        long(out, value_branch);
    }
    bare(out, schema, value, nulls)
}

/// [`encode`] for a value inside a record, an array or a map: a present
/// scalar is written here without a call per value (most of a change
/// event's values; a call each cost more than the writing, by callgrind on
/// `cargo bench --bench encode`), anything else as by [`encode`].
#[inline(always)]
fn member(
    out: &mut Vec<u8>,
    schema: &Schema,
    value: &Value,
    nulls: NullsWithDefault,
) -> Result<(), ConvertError> {
    if matches!(value, Value::Null) {
        return encode(out, schema, value, nulls);
    }
    if schema.optional {
        // The value's branch: first when the default is not null.
        let value_branch = if schema.default.as_ref().is_some_and(|d| !d.is_null()) {
            0
        } else {
            1
        };
        long(out, value_branch);
    }
    if scalar(out, &schema.kind, value) {
        return Ok(());
    }
    bare(out, schema, value, nulls)
}

/// Writes `value` if it is a scalar of `kind`; false (nothing written)
/// otherwise.
#[inline(always)]
fn scalar(out: &mut Vec<u8>, kind: &SchemaKind, value: &Value) -> bool {
    match (kind, value) {
        (SchemaKind::Int8, Value::Int8(v)) => long(out, i64::from(*v)),
        (SchemaKind::Int16, Value::Int16(v)) => long(out, i64::from(*v)),
        (SchemaKind::Int32, Value::Int32(v)) => long(out, i64::from(*v)),
        (SchemaKind::Int64, Value::Int64(v)) => long(out, *v),
        (SchemaKind::Float32, Value::Float32(v)) => out.extend_from_slice(&v.to_le_bytes()),
        (SchemaKind::Float64, Value::Float64(v)) => out.extend_from_slice(&v.to_le_bytes()),
        (SchemaKind::Boolean, Value::Boolean(v)) => out.push(u8::from(*v)),
        (SchemaKind::String, Value::String(v)) => bytes(out, v.as_bytes()),
        (SchemaKind::Bytes, Value::Bytes(v)) => bytes(out, v),
        _ => return false,
    }
    true
}

fn bare(
    out: &mut Vec<u8>,
    schema: &Schema,
    value: &Value,
    nulls: NullsWithDefault,
) -> Result<(), ConvertError> {
    let value = match (value, &schema.default) {
        (Value::Null, Some(default)) => default,
        _ => value,
    };
    if scalar(out, &schema.kind, value) {
        return Ok(());
    }
    match (&schema.kind, value) {
        (SchemaKind::Array(items), Value::Array(values)) => {
            if !values.is_empty() {
                long(out, values.len() as i64);
                for (i, v) in values.iter().enumerate() {
                    member(out, items, v, nulls).map_err(|e| within(e, &format!("[{i}]")))?;
                }
            }
            long(out, 0);
        }
        (SchemaKind::Map(keys, values), Value::Map(entries)) => {
            if !entries.is_empty() {
                long(out, entries.len() as i64);
                let string_keys = matches!(keys.kind, SchemaKind::String) && !keys.optional;
                for (k, v) in entries {
                    if string_keys {
                        let Value::String(key) = k else {
                            return Err(mismatch(keys, k));
                        };
                        bytes(out, key.as_bytes());
                        member(out, values, v, nulls).map_err(|e| within(e, key))?;
                    } else {
                        // An entry record: key then value.
                        encode(out, keys, k, nulls)?;
                        encode(out, values, v, nulls)?;
                    }
                }
            }
            long(out, 0);
        }
        (SchemaKind::Struct(fields), Value::Struct(values)) if fields.len() == values.len() => {
            for (field, v) in fields.iter().zip(values) {
                member(out, &field.schema, v, nulls).map_err(|e| within(e, &field.name))?;
            }
        }
        (_, Value::Shared(shared)) => return write_shared(out, schema, shared, nulls),
        (SchemaKind::Struct(fields), Value::Patched(base, patches)) => {
            return write_patched(out, (schema, fields), base, patches, nulls)
        }
        _ => return Err(mismatch(schema, value)),
    }
    Ok(())
}

/// The shared value written last, and its bytes.
struct WrittenShared {
    value: Arc<Value>,
    /// The address of the schema it was written under.
    schema: usize,
    nulls: NullsWithDefault,
    bytes: Vec<u8>,
}

thread_local! {
    /// The rows of a snapshot share one `source` block per table: its
    /// bytes are kept here and copied into each row's event instead of
    /// walking its 14–17 members per row (about 1,000 instructions an
    /// event, callgrind, the MariaDB snapshot bench). Holding the value
    /// keeps its address from being reused; the schema is compared by
    /// address because the records that hold the value hold their schema
    /// too, so a new record with this value has this schema.
    static LAST_SHARED: RefCell<Option<WrittenShared>> = const { RefCell::new(None) };
}

/// Writes a [`Value::Shared`]: the bytes written last time when it is
/// the same value under the same schema, else its value, remembered.
fn write_shared(
    out: &mut Vec<u8>,
    schema: &Schema,
    value: &Arc<Value>,
    nulls: NullsWithDefault,
) -> Result<(), ConvertError> {
    let address = std::ptr::from_ref(schema) as usize;
    let copied = LAST_SHARED.with_borrow(|last| match last {
        Some(last)
            if Arc::ptr_eq(&last.value, value) && last.schema == address && last.nulls == nulls =>
        {
            out.extend_from_slice(&last.bytes);
            true
        }
        _ => false,
    });
    if copied {
        return Ok(());
    }
    let start = out.len();
    // Not borrowed while writing: the value may hold another shared one.
    bare(out, schema, value, nulls)?;
    let bytes = out[start..].to_vec();
    LAST_SHARED.set(Some(WrittenShared {
        value: Arc::clone(value),
        schema: address,
        nulls,
        bytes,
    }));
    Ok(())
}

/// The shared struct of a [`Value::Patched`] written last: its bytes and
/// where each member's bytes end in them.
struct WrittenBase {
    value: Arc<Value>,
    /// The address of the schema it was written under.
    schema: usize,
    nulls: NullsWithDefault,
    bytes: Vec<u8>,
    ends: Vec<usize>,
}

impl WrittenBase {
    /// `members` of `base` written under `fields` of the schema at
    /// `schema`, with where each ends.
    fn of(
        (schema, fields): (usize, &[sluice_connector_api::Field]),
        (base, members): (&Arc<Value>, &[Value]),
        nulls: NullsWithDefault,
    ) -> Result<Self, ConvertError> {
        let mut bytes = Vec::new();
        let mut ends = Vec::with_capacity(fields.len());
        for (field, value) in fields.iter().zip(members) {
            member(&mut bytes, &field.schema, value, nulls).map_err(|e| within(e, &field.name))?;
            ends.push(bytes.len());
        }
        Ok(Self {
            value: Arc::clone(base),
            schema,
            nulls,
            bytes,
            ends,
        })
    }

    /// Whether these are the bytes of `base` under the schema at `schema`.
    fn holds(&self, base: &Arc<Value>, schema: usize, nulls: NullsWithDefault) -> bool {
        Arc::ptr_eq(&self.value, base) && self.schema == schema && self.nulls == nulls
    }

    /// Where member `index`'s bytes begin (the end, past the last one).
    fn start(&self, index: usize) -> usize {
        match index.checked_sub(1) {
            None => 0,
            Some(before) => self.ends.get(before).copied().unwrap_or(self.bytes.len()),
        }
    }

    /// Appends these bytes with `patches` written in place of the members
    /// they replace; false when a patch is out of order or of range.
    fn write_around(
        &self,
        out: &mut Vec<u8>,
        fields: &[sluice_connector_api::Field],
        patches: &[(usize, Value)],
        nulls: NullsWithDefault,
    ) -> Result<bool, ConvertError> {
        let mut from = 0;
        for (at, value) in patches {
            let Some(field) = fields.get(*at).filter(|_| *at >= from) else {
                return Ok(false);
            };
            out.extend_from_slice(&self.bytes[self.start(from)..self.start(*at)]);
            member(out, &field.schema, value, nulls).map_err(|e| within(e, &field.name))?;
            from = at + 1;
        }
        out.extend_from_slice(&self.bytes[self.start(from)..]);
        Ok(true)
    }
}

thread_local! {
    /// A binlog stream's rows events share one `source` block but for its
    /// `row`: the block's bytes are kept here, and each event copies them
    /// around its own members instead of walking all 17 (about 1,400
    /// instructions an event, callgrind, `scripts/bench-mysql`). Kept as
    /// [`LAST_SHARED`] is, for the same reasons.
    static LAST_BASE: RefCell<Option<WrittenBase>> = const { RefCell::new(None) };
}

/// Writes a [`Value::Patched`] struct: its shared members as the bytes
/// written for them last time (when it is the same value under the same
/// schema, else written now and remembered), its own members in between.
fn write_patched(
    out: &mut Vec<u8>,
    (schema, fields): (&Schema, &[sluice_connector_api::Field]),
    base: &Arc<Value>,
    patches: &[(usize, Value)],
    nulls: NullsWithDefault,
) -> Result<(), ConvertError> {
    let Value::Struct(members) = base.as_ref() else {
        return Err(mismatch(schema, base));
    };
    if members.len() != fields.len() {
        return Err(mismatch(schema, base));
    }
    let address = std::ptr::from_ref(schema) as usize;
    let begun = out.len();
    let written = LAST_BASE.with(|cell| {
        // Busy only when this value is a member of one being written.
        let Ok(mut last) = cell.try_borrow_mut() else {
            return Ok(false);
        };
        if !last.as_ref().is_some_and(|w| w.holds(base, address, nulls)) {
            *last = Some(WrittenBase::of((address, fields), (base, members), nulls)?);
        }
        match last.as_ref() {
            Some(written) => written.write_around(out, fields, patches, nulls),
            None => Ok(false),
        }
    })?;
    if written {
        return Ok(());
    }
    // Member by member, as a plain struct would be (patches not in the
    // order `Value::patched` keeps are applied as it would apply them).
    out.truncate(begun);
    let plain = Value::patched(Arc::clone(base), patches.to_vec())
        .plain()
        .into_owned();
    bare(out, schema, &plain, nulls)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::converter::avro::schema::to_avro;
    use apache_avro::types::Value as Avro;
    use sluice_connector_api::{logical, Field};

    /// Encodes with our encoder, decodes with apache-avro.
    fn round_trip(schema: &Schema, value: &Value) -> Avro {
        let mut out = Vec::new();
        encode(&mut out, schema, value, NullsWithDefault::WriteNull).expect("encodes");
        let avro_schema = apache_avro::Schema::parse(&to_avro(schema)).expect("valid schema");
        apache_avro::from_avro_datum(&avro_schema, &mut out.as_slice(), None).expect("decodes")
    }

    #[test]
    fn apache_avro_reads_what_we_write() {
        let schema = Schema::new(SchemaKind::Struct(vec![
            Field::new("id", Schema::int64()),
            Field::new("name", Schema::string().optional()),
            Field::new("tiny", Schema::int8()),
            Field::new("ok", Schema::boolean()),
            Field::new("ratio", Schema::float64()),
            Field::new("price", logical::decimal(2, Some(10))),
            Field::new(
                "tags",
                Schema::new(SchemaKind::Array(std::sync::Arc::new(Schema::string()))),
            ),
            Field::new(
                "attrs",
                Schema::new(SchemaKind::Map(
                    std::sync::Arc::new(Schema::string()),
                    std::sync::Arc::new(Schema::int32().optional()),
                )),
            ),
        ]))
        .named("t.Value");
        let value = Value::Struct(vec![
            Value::Int64(-1_234_567_890_123),
            Value::Null,
            Value::Int8(-7),
            Value::Boolean(true),
            Value::Float64(0.25),
            Value::decimal(-12345),
            Value::Array(vec![Value::String("a".into()), Value::String("b".into())]),
            Value::Map(vec![(Value::String("k".into()), Value::Int32(300))]),
        ]);
        let Avro::Record(fields) = round_trip(&schema, &value) else {
            panic!("record expected")
        };
        assert_eq!(fields[0].1, Avro::Long(-1_234_567_890_123));
        assert_eq!(fields[1].1, Avro::Union(0, Box::new(Avro::Null)));
        assert_eq!(fields[2].1, Avro::Int(-7));
        assert_eq!(fields[3].1, Avro::Boolean(true));
        assert_eq!(fields[4].1, Avro::Double(0.25));
        let Avro::Decimal(decimal) = &fields[5].1 else {
            panic!("decimal expected, got {:?}", fields[5].1)
        };
        let unscaled: Vec<u8> = decimal.try_into().expect("bytes");
        assert_eq!(unscaled, vec![0xcf, 0xc7]);
        assert_eq!(
            fields[6].1,
            Avro::Array(vec![Avro::String("a".into()), Avro::String("b".into())])
        );
        let Avro::Map(attrs) = &fields[7].1 else {
            panic!("map expected")
        };
        assert_eq!(attrs["k"], Avro::Union(1, Box::new(Avro::Int(300))));
    }

    /// An envelope whose `source` block has a `query` that is null or,
    /// with `default`, that default.
    fn envelope(query_default: Option<&str>) -> Schema {
        let mut query = Schema::string().optional();
        if let Some(default) = query_default {
            query = query.with_default(Value::from(default));
        }
        let block = Schema::structure(
            "t.Source",
            vec![
                Field::new("db", Schema::string()),
                Field::new("pos", Schema::int64()),
                Field::new("query", query),
            ],
        );
        Schema::structure(
            "t.Envelope",
            vec![
                Field::new("source", block.optional()),
                Field::new("op", Schema::string()),
            ],
        )
    }

    fn written(schema: &Schema, source: Value, nulls: NullsWithDefault) -> Vec<u8> {
        let mut out = Vec::new();
        let event = Value::Struct(vec![source, Value::from("r")]);
        encode(&mut out, schema, &event, nulls).expect("encodes");
        out
    }

    /// A snapshot's source block, one copy shared by every row (and its
    /// bytes kept from one row to the next), is written as the block.
    #[test]
    fn a_shared_member_is_written_as_the_value_it_holds() {
        use NullsWithDefault::{WriteDefault, WriteNull};
        let block = |pos| {
            Value::Struct(vec![
                Value::from("inventory"),
                Value::Int64(pos),
                Value::Null,
            ])
        };
        let plain = envelope(None);
        let shared = std::sync::Arc::new(block(4));
        for _ in 0..2 {
            assert_eq!(
                written(
                    &plain,
                    Value::Shared(std::sync::Arc::clone(&shared)),
                    WriteNull
                ),
                written(&plain, block(4), WriteNull)
            );
        }
        // Another block, the same block under another schema or with nulls
        // written otherwise: each written as itself, not as the last one.
        let other = Value::Shared(std::sync::Arc::new(block(5)));
        assert_eq!(
            written(&plain, other, WriteNull),
            written(&plain, block(5), WriteNull)
        );
        let defaulted = envelope(Some("none"));
        for nulls in [WriteDefault, WriteNull, WriteDefault] {
            assert_eq!(
                written(
                    &defaulted,
                    Value::Shared(std::sync::Arc::clone(&shared)),
                    nulls
                ),
                written(&defaulted, block(4), nulls),
                "{nulls:?}"
            );
        }
        assert_ne!(
            written(&defaulted, block(4), WriteDefault),
            written(&defaulted, block(4), WriteNull),
            "the case above tells the two apart"
        );
    }

    /// A stream's source block, shared by the rows of a rows event but
    /// for its `row`, is written as the block with that row's members:
    /// whichever members are replaced, with the shared bytes kept from one
    /// event to the next, and not mistaken for another block or schema.
    #[test]
    fn a_patched_member_is_written_as_the_struct_it_reads_as() {
        use std::sync::Arc;
        use NullsWithDefault::{WriteDefault, WriteNull};
        let block = |db: &str, pos, query: Value| {
            Value::Struct(vec![Value::from(db), Value::Int64(pos), query])
        };
        let base = Arc::new(block("inventory", 4, Value::Null));
        let plain = envelope(None);
        let cases: Vec<(Vec<(usize, Value)>, Value)> = vec![
            (vec![], block("inventory", 4, Value::Null)),
            (
                vec![(1, Value::Int64(300))],
                block("inventory", 300, Value::Null),
            ),
            (vec![(0, Value::from("crm"))], block("crm", 4, Value::Null)),
            (
                vec![(2, Value::from("INSERT INTO t VALUES (1)"))],
                block("inventory", 4, Value::from("INSERT INTO t VALUES (1)")),
            ),
            (
                vec![(0, Value::from("a")), (2, Value::from("q"))],
                block("a", 4, Value::from("q")),
            ),
            (
                vec![
                    (0, Value::from("")),
                    (1, Value::Int64(-1)),
                    (2, Value::Null),
                ],
                block("", -1, Value::Null),
            ),
        ];
        // Twice over: the second pass copies the bytes kept by the first.
        for _ in 0..2 {
            for (patches, expected) in &cases {
                let patched = Value::patched(Arc::clone(&base), patches.clone());
                assert!(matches!(patched, Value::Patched(..)), "{patched:?}");
                assert_eq!(
                    written(&plain, patched, WriteNull),
                    written(&plain, expected.clone(), WriteNull),
                    "{patches:?}"
                );
            }
        }
        // Another base with the same members in turn with this one, the
        // same base under another schema, and nulls written otherwise.
        let other = Arc::new(block("inventory", 5, Value::Null));
        for (shared, pos) in [(&other, 5), (&base, 4), (&other, 5), (&base, 4)] {
            let patched = Value::patched(Arc::clone(shared), vec![(0, Value::from("x"))]);
            assert_eq!(
                written(&plain, patched, WriteNull),
                written(&plain, block("x", pos, Value::Null), WriteNull)
            );
        }
        let defaulted = envelope(Some("none"));
        for nulls in [WriteNull, WriteDefault, WriteNull] {
            let patched = Value::patched(Arc::clone(&base), vec![(1, Value::Int64(9))]);
            assert_eq!(
                written(&defaulted, patched, nulls),
                written(&defaulted, block("inventory", 9, Value::Null), nulls),
                "{nulls:?}"
            );
        }
    }

    /// Patches put in the variant directly, out of order or past the
    /// end, or a patched value inside another: written as the struct they
    /// read as, not as the bytes kept.
    #[test]
    fn a_patched_value_built_by_hand_is_written_as_it_reads() {
        use std::sync::Arc;
        let base = Arc::new(Value::Struct(vec![
            Value::from("inventory"),
            Value::Int64(4),
            Value::Null,
        ]));
        let plain = envelope(None);
        for patches in [
            vec![(2, Value::from("q")), (0, Value::from("crm"))],
            vec![(1, Value::Int64(5)), (7, Value::Int64(6))],
        ] {
            let by_hand = Value::Patched(Arc::clone(&base), patches.clone().into_boxed_slice());
            let expected = by_hand.plain().into_owned();
            assert_eq!(
                written(&plain, by_hand, NullsWithDefault::WriteNull),
                written(&plain, expected, NullsWithDefault::WriteNull),
                "{patches:?}"
            );
        }
        let block = Schema::structure(
            "t.Outer",
            vec![
                Field::new("inner", envelope(None)),
                Field::new("n", Schema::int64()),
            ],
        );
        let inner = Value::Struct(vec![
            Value::patched(Arc::clone(&base), vec![(1, Value::Int64(8))]),
            Value::from("r"),
        ]);
        let outer = Value::patched(
            Arc::new(Value::Struct(vec![inner.clone(), Value::Int64(1)])),
            vec![(0, inner), (1, Value::Int64(2))],
        );
        let mut out = Vec::new();
        encode(&mut out, &block, &outer, NullsWithDefault::WriteNull).expect("encodes");
        let mut expected = Vec::new();
        encode(
            &mut expected,
            &block,
            &outer.plain(),
            NullsWithDefault::WriteNull,
        )
        .expect("encodes");
        assert_eq!(out, expected);
    }

    /// A replaced member of the wrong type is named as a plain one is.
    #[test]
    fn a_patched_member_of_the_wrong_type_is_named() {
        let base = std::sync::Arc::new(Value::Struct(vec![
            Value::from("inventory"),
            Value::Int64(4),
            Value::Null,
        ]));
        let patched = Value::patched(base, vec![(1, Value::from("four"))]);
        let event = Value::Struct(vec![patched, Value::from("r")]);
        let error = encode(
            &mut Vec::new(),
            &envelope(None),
            &event,
            NullsWithDefault::WriteNull,
        )
        .expect_err("a string where a long goes");
        let ConvertError::Mismatch { path, .. } = error else {
            panic!("{error:?}")
        };
        assert_eq!(path, "source.pos");
    }

    #[test]
    fn values_past_the_buffer_s_room_grow_it() {
        // Every write reserves its own room: from an empty buffer, a text
        // longer than any varint and extreme longs read back whole.
        let schema = Schema::new(SchemaKind::Struct(vec![
            Field::new("big", Schema::string()),
            Field::new("low", Schema::int64()),
            Field::new("high", Schema::int64()),
            Field::new("blob", Schema::bytes()),
        ]))
        .named("t.Value");
        let big = "x".repeat(100_000);
        let value = Value::Struct(vec![
            Value::String(big.clone().into()),
            Value::Int64(i64::MIN),
            Value::Int64(i64::MAX),
            Value::Bytes(vec![7; 300]),
        ]);
        let Avro::Record(fields) = round_trip(&schema, &value) else {
            panic!("record expected")
        };
        assert_eq!(fields[0].1, Avro::String(big));
        assert_eq!(fields[1].1, Avro::Long(i64::MIN));
        assert_eq!(fields[2].1, Avro::Long(i64::MAX));
        assert_eq!(fields[3].1, Avro::Bytes(vec![7; 300]));
    }

    #[test]
    fn present_values_of_optional_members_take_the_branch_the_schema_orders() {
        // A non-null default puts the value's type first in the union; a
        // null or no default puts null first.
        let schema = Schema::new(SchemaKind::Struct(vec![
            Field::new(
                "with_default",
                Schema::int32().optional().with_default(Value::Int32(5)),
            ),
            Field::new("plain", Schema::string().optional()),
            Field::new(
                "items",
                Schema::new(SchemaKind::Array(std::sync::Arc::new(
                    Schema::int64().optional(),
                ))),
            ),
        ]))
        .named("t.Value");
        let value = Value::Struct(vec![
            Value::Int32(7),
            Value::String("x".into()),
            Value::Array(vec![Value::Int64(300), Value::Null]),
        ]);
        let Avro::Record(fields) = round_trip(&schema, &value) else {
            panic!("record expected")
        };
        assert_eq!(fields[0].1, Avro::Union(0, Box::new(Avro::Int(7))));
        assert_eq!(
            fields[1].1,
            Avro::Union(1, Box::new(Avro::String("x".into())))
        );
        assert_eq!(
            fields[2].1,
            Avro::Array(vec![
                Avro::Union(1, Box::new(Avro::Long(300))),
                Avro::Union(0, Box::new(Avro::Null)),
            ])
        );
    }

    #[test]
    fn a_scalar_of_the_wrong_type_inside_a_record_is_named() {
        let schema = Schema::new(SchemaKind::Struct(vec![Field::new(
            "qty",
            Schema::int32().optional(),
        )]));
        let err = encode(
            &mut Vec::new(),
            &schema,
            &Value::Struct(vec![Value::Int64(1)]),
            NullsWithDefault::WriteNull,
        )
        .expect_err("mismatch");
        assert!(err.to_string().contains("at qty:"), "{err}");
    }

    #[test]
    fn wrong_value_names_the_field() {
        let schema = Schema::new(SchemaKind::Struct(vec![Field::new("id", Schema::int64())]));
        let nested = Schema::new(SchemaKind::Struct(vec![Field::new("after", schema)]));
        let err = encode(
            &mut Vec::new(),
            &nested,
            &Value::Struct(vec![Value::Struct(vec![Value::String("x".into())])]),
            NullsWithDefault::WriteNull,
        )
        .expect_err("mismatch");
        assert!(err.to_string().contains("at after.id:"), "{err}");
    }

    #[test]
    fn a_null_with_a_default_is_the_default_unless_ignored() {
        let field = Schema::int32().optional().with_default(Value::Int32(5));
        let mut written = Vec::new();
        encode(
            &mut written,
            &field,
            &Value::Null,
            NullsWithDefault::WriteDefault,
        )
        .unwrap();
        // Union branch 0 (the type, first because the default is not
        // null), then zig-zag 5.
        assert_eq!(written, vec![0, 10]);
        written.clear();
        encode(
            &mut written,
            &field,
            &Value::Null,
            NullsWithDefault::WriteNull,
        )
        .unwrap();
        assert_eq!(written, vec![2], "branch 1: null");
    }
}
