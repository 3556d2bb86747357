//! Values of the record model, interpreted against a [`crate::Schema`].

/// A value. Struct values are positional: the n-th entry belongs to the
/// n-th field of the struct schema, which keeps records compact and makes
/// encoding a walk over two parallel lists.
#[derive(Debug, Clone)]
pub enum Value {
    /// The absent value of an optional schema.
    Null,
    /// A boolean.
    Boolean(bool),
    /// An 8-bit integer.
    Int8(i8),
    /// A 16-bit integer.
    Int16(i16),
    /// A 32-bit integer (also dates and millisecond times).
    Int32(i32),
    /// A 64-bit integer (also timestamps and durations).
    Int64(i64),
    /// A 32-bit float.
    Float32(f32),
    /// A 64-bit float.
    Float64(f64),
    /// Text (also JSON, UUID and zoned timestamps), owned or shared.
    String(crate::Text),
    /// Raw bytes (also decimals, as unscaled two's complement).
    Bytes(Vec<u8>),
    /// The items of an array.
    Array(Vec<Value>),
    /// The entries of a map, in order.
    Map(Vec<(Value, Value)>),
    /// The field values of a struct, in schema order.
    Struct(Vec<Value>),
    /// A value many records hold alike (a snapshot's `source` block, the
    /// same for every row of a table): one copy serves them all, and a
    /// converter may write it once. It reads as the value it holds; code
    /// that changes values (transforms) gets them plain, see
    /// [`Value::unshare`].
    Shared(std::sync::Arc<Value>),
    /// A shared struct with some of its members replaced for this value,
    /// by position, in ascending order: a stream's `source` block, alike
    /// for every row of a binlog rows event but for its `row`. It reads as
    /// the struct with the replacements; a converter may copy the shared
    /// members' bytes. Built by [`Value::patched`], which keeps that shape;
    /// code that changes values (transforms) gets them plain, see
    /// [`Value::unshare`].
    Patched(std::sync::Arc<Value>, Box<[(usize, Value)]>),
}

// Short text held in place (`Text::Inline`) keeps `Text` and `Value` at
// the sizes and layout they had: a bigger value would make every record
// bigger, and a tag packed into `Text` made every match on a value cost
// more (see `text::Inline`).
const _: () = assert!(std::mem::size_of::<crate::Text>() == 24);
const _: () = assert!(std::mem::size_of::<Value>() == 32);

impl PartialEq for Value {
    /// Values are equal when what they hold is, shared or not.
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Shared(a), Self::Shared(b)) if std::sync::Arc::ptr_eq(a, b) => true,
            (Self::Shared(a), b) => **a == *b,
            (a, Self::Shared(b)) => *a == **b,
            (Self::Patched(..), b) => self.plain().as_ref() == b,
            (a, Self::Patched(..)) => a == other.plain().as_ref(),
            (Self::Null, Self::Null) => true,
            (Self::Boolean(a), Self::Boolean(b)) => a == b,
            (Self::Int8(a), Self::Int8(b)) => a == b,
            (Self::Int16(a), Self::Int16(b)) => a == b,
            (Self::Int32(a), Self::Int32(b)) => a == b,
            (Self::Int64(a), Self::Int64(b)) => a == b,
            (Self::Float32(a), Self::Float32(b)) => a == b,
            (Self::Float64(a), Self::Float64(b)) => a == b,
            (Self::String(a), Self::String(b)) => a == b,
            (Self::Bytes(a), Self::Bytes(b)) => a == b,
            (Self::Array(a), Self::Array(b)) | (Self::Struct(a), Self::Struct(b)) => a == b,
            (Self::Map(a), Self::Map(b)) => a == b,
            _ => false,
        }
    }
}

impl Value {
    /// The bytes of a decimal whose unscaled value is `unscaled`: the
    /// shortest big-endian two's-complement form, as Connect writes it.
    pub fn decimal(unscaled: i128) -> Self {
        // Leading bytes that only repeat the sign bit are dropped: as many
        // whole bytes as the sign repeats, keeping one sign bit. Counted,
        // not looked for byte by byte: this runs for every decimal of
        // every row.
        let repeated = if unscaled < 0 {
            unscaled.leading_ones()
        } else {
            unscaled.leading_zeros()
        };
        let start = (repeated.saturating_sub(1) / 8).min(15) as usize;
        Self::Bytes(unscaled.to_be_bytes()[start..].to_vec())
    }

    /// The unscaled integer of decimal bytes, if they fit in 128 bits.
    pub fn decimal_unscaled(bytes: &[u8]) -> Option<i128> {
        if bytes.is_empty() || bytes.len() > 16 {
            return None;
        }
        let fill = if bytes[0] & 0x80 != 0 { 0xff } else { 0x00 };
        let mut buf = [fill; 16];
        buf[16 - bytes.len()..].copy_from_slice(bytes);
        Some(i128::from_be_bytes(buf))
    }

    /// Replaces every shared value inside this one with a copy of its
    /// own, so code that matches and changes values (a transform) meets
    /// only plain ones. Costs a copy of each shared value, so it is only
    /// done where values are changed.
    pub fn unshare(&mut self) {
        match self {
            Self::Shared(inner) => {
                let mut own = Self::clone(inner);
                own.unshare();
                *self = own;
            }
            Self::Patched(..) => {
                let mut own = self.plain().into_owned();
                own.unshare();
                *self = own;
            }
            Self::Struct(members) | Self::Array(members) => {
                members.iter_mut().for_each(Self::unshare)
            }
            Self::Map(entries) => entries.iter_mut().for_each(|(k, v)| {
                k.unshare();
                v.unshare();
            }),
            _ => {}
        }
    }

    /// A [`Value::Patched`]: `base` with the members at the positions of
    /// `patches` replaced. When `base` is not a struct, or the positions
    /// are not ascending within it, the struct is built plain instead, so
    /// a patched value always has the shape converters rely on.
    pub fn patched(base: std::sync::Arc<Value>, patches: Vec<(usize, Value)>) -> Self {
        let fits = match base.as_ref() {
            Self::Struct(members) => {
                patches.windows(2).all(|w| w[0].0 < w[1].0)
                    && patches.last().is_none_or(|(at, _)| *at < members.len())
            }
            _ => false,
        };
        if fits {
            return Self::Patched(base, patches.into_boxed_slice());
        }
        replaced(&base, patches)
    }

    /// This value with a [`Value::Patched`] at its top made a plain
    /// struct (a copy); any other value as it is.
    pub fn plain(&self) -> std::borrow::Cow<'_, Value> {
        let Self::Patched(base, patches) = self else {
            return std::borrow::Cow::Borrowed(self);
        };
        std::borrow::Cow::Owned(replaced(base, patches.iter().cloned()))
    }

    /// Whether this is [`Value::Null`].
    pub fn is_null(&self) -> bool {
        matches!(self, Self::Null)
    }

    /// Frees the value, as dropping it would, in fewer steps: the drop
    /// glue calls itself once per member, scalars included, which for a
    /// change event (30-odd members, most of them scalars or shared text)
    /// cost about 1,500 instructions (callgrind, the MariaDB stream
    /// bench). For the places that free a record per event.
    pub fn release(self) {
        match self {
            Self::Struct(members) | Self::Array(members) => release_all(members),
            other => drop(other),
        }
    }
}

/// A copy of `base` with the struct members at the positions of `patches`
/// replaced (positions past its end, or a `base` that is no struct, left
/// as they are).
fn replaced(base: &Value, patches: impl IntoIterator<Item = (usize, Value)>) -> Value {
    let mut own = base.clone();
    if let Value::Struct(members) = &mut own {
        for (at, value) in patches {
            if let Some(member) = members.get_mut(at) {
                *member = value;
            }
        }
    }
    own
}

/// Frees `members` and what they hold, without a call per scalar.
fn release_all(members: Vec<Value>) {
    for member in members {
        match member {
            Value::Struct(inner) | Value::Array(inner) => release_all(inner),
            Value::String(text) => drop(text),
            Value::Bytes(bytes) => drop(bytes),
            Value::Map(entries) => drop(entries),
            Value::Shared(shared) => drop(shared),
            Value::Patched(base, patches) => drop((base, patches)),
            // Owns nothing: there is nothing to free.
            scalar @ (Value::Null
            | Value::Boolean(_)
            | Value::Int8(_)
            | Value::Int16(_)
            | Value::Int32(_)
            | Value::Int64(_)
            | Value::Float32(_)
            | Value::Float64(_)) => std::mem::forget(scalar),
        }
    }
}

impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Self::Int64(v)
    }
}

impl From<i32> for Value {
    fn from(v: i32) -> Self {
        Self::Int32(v)
    }
}

impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Self::Boolean(v)
    }
}

impl From<String> for Value {
    fn from(v: String) -> Self {
        Self::String(v.into())
    }
}

impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Self::String(v.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_patched_value_reads_as_its_struct_with_the_members_replaced() {
        use std::sync::Arc;
        let base = Arc::new(Value::Struct(vec![
            Value::from("inventory"),
            Value::Int64(7),
            Value::Int32(0),
        ]));
        let plain = |row| {
            Value::Struct(vec![
                Value::from("inventory"),
                Value::Int64(7),
                Value::Int32(row),
            ])
        };
        let patched = Value::patched(Arc::clone(&base), vec![(2, Value::Int32(3))]);
        assert!(matches!(patched, Value::Patched(..)));
        assert_eq!(patched, plain(3));
        assert_eq!(plain(3), patched);
        assert_ne!(patched, plain(0), "the replaced member counts");
        assert_eq!(*base, plain(0), "the shared struct is left alone");
        // Nested, as a source block sits in an envelope.
        let mut event = Value::Struct(vec![Value::Null, patched, Value::from("c")]);
        event.unshare();
        assert!(
            matches!(&event, Value::Struct(members) if matches!(members[1], Value::Struct(_))),
            "{event:?}"
        );
        assert_eq!(
            event,
            Value::Struct(vec![Value::Null, plain(3), Value::from("c")])
        );
        assert_eq!(Arc::strong_count(&base), 1, "the copy holds no share");
        // Positions out of order or past the end, or a base that is no
        // struct: built plain, never a patched value converters misread.
        let unordered = Value::patched(
            Arc::clone(&base),
            vec![(2, Value::Int32(1)), (0, Value::from("crm"))],
        );
        assert!(matches!(unordered, Value::Struct(_)), "{unordered:?}");
        assert_eq!(
            unordered,
            Value::Struct(vec![Value::from("crm"), Value::Int64(7), Value::Int32(1)])
        );
        let past = Value::patched(Arc::clone(&base), vec![(3, Value::Int32(1))]);
        assert!(matches!(past, Value::Struct(_)), "{past:?}");
        assert_eq!(past, plain(0));
        let scalar = Value::patched(Arc::new(Value::Int64(1)), vec![(0, Value::Int64(2))]);
        assert_eq!(scalar, Value::Int64(1));
    }

    #[test]
    fn a_shared_value_compares_as_what_it_holds_and_unshares_into_a_copy() {
        use std::sync::Arc;
        let block = Value::Struct(vec![Value::from("inventory"), Value::Int64(7)]);
        let shared = Arc::new(block.clone());
        let held = Value::Shared(Arc::clone(&shared));
        assert_eq!(held, block);
        assert_eq!(block, held);
        assert_ne!(
            held,
            Value::Struct(vec![Value::from("inventory"), Value::Int64(8)])
        );
        // Nested, as a source block sits in an envelope.
        let mut event = Value::Struct(vec![Value::Null, held, Value::from("r")]);
        event.unshare();
        assert!(
            matches!(&event, Value::Struct(members) if matches!(members[1], Value::Struct(_))),
            "{event:?}"
        );
        assert_eq!(
            event,
            Value::Struct(vec![Value::Null, block, Value::from("r")])
        );
        assert_eq!(Arc::strong_count(&shared), 1, "the copy holds no share");
    }

    #[test]
    fn decimal_bytes_are_minimal_twos_complement() {
        assert_eq!(Value::decimal(0), Value::Bytes(vec![0]));
        assert_eq!(Value::decimal(127), Value::Bytes(vec![0x7f]));
        assert_eq!(Value::decimal(128), Value::Bytes(vec![0x00, 0x80]));
        assert_eq!(Value::decimal(-1), Value::Bytes(vec![0xff]));
        assert_eq!(Value::decimal(-129), Value::Bytes(vec![0xff, 0x7f]));
    }

    #[test]
    fn a_released_tree_lets_go_of_everything_it_holds() {
        use std::sync::Arc;
        let shared: Arc<str> = Arc::from("inventory");
        let text = || Value::String(crate::Text::from(Arc::clone(&shared)));
        let tree = Value::Struct(vec![
            Value::Int64(1),
            text(),
            Value::Struct(vec![text(), Value::Null, Value::Bytes(vec![1, 2])]),
            Value::Array(vec![text(), Value::Float64(0.5)]),
            Value::Map(vec![(text(), Value::Boolean(true))]),
            Value::patched(
                Arc::new(Value::Struct(vec![text(), Value::Null])),
                vec![(1, text())],
            ),
        ]);
        assert_eq!(Arc::strong_count(&shared), 7);
        tree.release();
        assert_eq!(Arc::strong_count(&shared), 1);
        text().release();
        assert_eq!(Arc::strong_count(&shared), 1);
    }

    #[test]
    fn decimal_bytes_round_trip() {
        for n in [
            0i128,
            1,
            -1,
            12345,
            -98765,
            i64::MAX as i128 * 7,
            i128::MIN,
            i128::MAX,
        ] {
            let Value::Bytes(b) = Value::decimal(n) else {
                unreachable!("decimal always yields bytes")
            };
            assert_eq!(Value::decimal_unscaled(&b), Some(n));
        }
    }

    #[test]
    fn decimal_bytes_are_the_shortest_two_s_complement() {
        // The shortest form, found byte by byte.
        let shortest = |n: i128| {
            let bytes = n.to_be_bytes();
            let mut start = 0;
            while start < 15 {
                let (b, next) = (bytes[start], bytes[start + 1]);
                if !((b == 0x00 && next & 0x80 == 0) || (b == 0xff && next & 0x80 != 0)) {
                    break;
                }
                start += 1;
            }
            bytes[start..].to_vec()
        };
        let mut cases = vec![i128::MIN, i128::MAX, 0, -1];
        for bit in 0..127 {
            let p = 1i128 << bit;
            cases.extend([p, p - 1, p + 1, -p, -p - 1, -p + 1]);
        }
        for n in cases {
            assert_eq!(Value::decimal(n), Value::Bytes(shortest(n)), "{n}");
        }
    }
}
