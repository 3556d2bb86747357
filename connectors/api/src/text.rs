//! Text inside a [`crate::Value`]: owned, or shared by many values.
//!
//! Every change event repeats the same strings in its `source` block —
//! the connector name, the server, the database and table, the binlog file
//! — and building each as its own `String` cost an allocation, a copy and
//! a free per string per event. A shared text is one allocation per
//! table or per file, and a copy of it is a reference count.

use std::borrow::Borrow;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;
use std::sync::Arc;

/// `raw` as text if it is UTF-8, checking for plain ASCII first: column
/// values and timestamps mostly are, and the check for that is less than
/// half of what `std::str::from_utf8` spends on a short string (callgrind:
/// 53 against 126 instructions for 25 bytes). Every text value a source
/// decodes or a sink reads goes through here.
#[inline]
pub fn utf8(raw: &[u8]) -> Result<&str, std::str::Utf8Error> {
    if raw.is_ascii() {
        // SAFETY: ASCII bytes are valid UTF-8.
        Ok(unsafe { std::str::from_utf8_unchecked(raw) })
    } else {
        std::str::from_utf8(raw)
    }
}

/// Text that reads as a `str` whether it is owned, shared or held in
/// place. Equality, ordering and hashing are those of the text, whichever
/// form holds it.
#[derive(Clone)]
pub enum Text {
    /// Text of this value alone (a long column value, or text changed
    /// through [`Text::make_mut`]).
    Owned(String),
    /// Text shared with other values (a table name in every event).
    Shared(Arc<str>),
    /// Text of at most [`Inline::MAX`] bytes, held in the value itself.
    Inline(Inline),
}

/// Short text held in place: many values of a change event (a code, a
/// short name, a date, the sink's `op`) are short, and an allocation and a
/// free each, often on another thread than the one that allocated, cost
/// more than the rest of handling them. At most [`Inline::MAX`] bytes, so
/// it fits in the room a `String` leaves beside its capacity's spare
/// values: `Text` stays 24 bytes and `Value` 32, laid out as before. A
/// larger one (30 bytes, for timestamps too) made `Text` 32 bytes and put
/// `Value`'s tag inside it, and every match on a value then cost more than
/// the allocations saved (callgrind, `scripts/bench-sink` and
/// `scripts/bench-mysql`).
#[derive(Clone, Copy)]
pub struct Inline {
    len: u8,
    bytes: [u8; Inline::MAX],
}

impl Inline {
    /// The most bytes held in place.
    pub const MAX: usize = 15;

    /// `text` held in place, if it is short enough.
    #[inline]
    pub fn new(text: &str) -> Option<Self> {
        let len = text.len();
        if len > Self::MAX {
            return None;
        }
        let mut bytes = [0; Self::MAX];
        bytes[..len].copy_from_slice(text.as_bytes());
        Some(Self {
            len: len as u8,
            bytes,
        })
    }

    /// The text.
    #[inline]
    pub fn as_str(&self) -> &str {
        let held = &self.bytes[..usize::from(self.len).min(Self::MAX)];
        // SAFETY: `new` is the only way in, and it copies `len` bytes of a
        // `str`, a whole number of characters.
        unsafe { std::str::from_utf8_unchecked(held) }
    }
}

impl Text {
    /// The text.
    #[inline]
    pub fn as_str(&self) -> &str {
        match self {
            Self::Owned(s) => s,
            Self::Shared(s) => s,
            Self::Inline(s) => s.as_str(),
        }
    }

    /// The text to change in place (shared or in-place text is copied
    /// out first, so the other values keep theirs).
    pub fn make_mut(&mut self) -> &mut String {
        if !matches!(self, Self::Owned(_)) {
            *self = Self::Owned(self.as_str().to_owned());
        }
        match self {
            Self::Owned(s) => s,
            Self::Shared(_) | Self::Inline(_) => unreachable!("made owned above"),
        }
    }

    /// The text as an owned `String` (a copy unless it was owned).
    pub fn into_string(self) -> String {
        match self {
            Self::Owned(s) => s,
            other => other.as_str().to_owned(),
        }
    }
}

impl Default for Text {
    fn default() -> Self {
        Self::Owned(String::new())
    }
}

impl Deref for Text {
    type Target = str;

    #[inline]
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for Text {
    #[inline]
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl Borrow<str> for Text {
    #[inline]
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl From<String> for Text {
    /// Short text is copied in place and its allocation freed here, by
    /// the thread that made it, rather than by whichever frees the value.
    #[inline]
    fn from(s: String) -> Self {
        Inline::new(&s).map_or(Self::Owned(s), Self::Inline)
    }
}

impl From<&str> for Text {
    #[inline]
    fn from(s: &str) -> Self {
        Inline::new(s).map_or_else(|| Self::Owned(s.to_owned()), Self::Inline)
    }
}

impl From<&String> for Text {
    fn from(s: &String) -> Self {
        Self::from(s.as_str())
    }
}

impl From<Arc<str>> for Text {
    fn from(s: Arc<str>) -> Self {
        Self::Shared(s)
    }
}

impl From<&Arc<str>> for Text {
    fn from(s: &Arc<str>) -> Self {
        Self::Shared(Arc::clone(s))
    }
}

impl From<Text> for String {
    fn from(t: Text) -> Self {
        t.into_string()
    }
}

impl FromIterator<String> for Text {
    fn from_iter<I: IntoIterator<Item = String>>(iter: I) -> Self {
        Self::from(iter.into_iter().collect::<String>())
    }
}

impl FromIterator<char> for Text {
    fn from_iter<I: IntoIterator<Item = char>>(iter: I) -> Self {
        Self::from(iter.into_iter().collect::<String>())
    }
}

impl PartialEq for Text {
    #[inline]
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Text {}

impl PartialEq<str> for Text {
    #[inline]
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Text {
    #[inline]
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<String> for Text {
    #[inline]
    fn eq(&self, other: &String) -> bool {
        self.as_str() == other.as_str()
    }
}

impl PartialOrd for Text {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Text {
    #[inline]
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl Hash for Text {
    #[inline]
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl serde::Serialize for Text {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl fmt::Debug for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self.as_str(), f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf8_reads_ascii_and_multibyte_text_and_refuses_what_is_not() {
        assert_eq!(utf8(b"2026-12-04T11:12:02Z"), Ok("2026-12-04T11:12:02Z"));
        assert_eq!(utf8(b""), Ok(""));
        assert_eq!(utf8("Zürich, 東京".as_bytes()), Ok("Zürich, 東京"));
        assert!(utf8(b"caf\xe9").is_err());
        assert!(utf8(b"\xff\xfe plain after").is_err());
    }

    #[test]
    fn owned_and_shared_text_are_the_same_text() {
        let shared: Arc<str> = Arc::from("inventory");
        let a = Text::from(&shared);
        let b = Text::from("inventory".to_owned());
        assert_eq!(a, b);
        assert_eq!(a, "inventory");
        assert_eq!(format!("{a:?}"), "\"inventory\"");
        let mut hashes = std::collections::HashSet::new();
        hashes.insert(a.clone());
        assert!(hashes.contains("inventory"));
        assert_eq!(b.clone().into_string(), "inventory");
        // A copy of shared text is a reference, not an allocation.
        let copy = a.clone();
        let (Text::Shared(x), Text::Shared(y)) = (&a, &copy) else {
            panic!("shared text stays shared");
        };
        assert!(Arc::ptr_eq(x, y));
    }

    #[test]
    fn short_text_is_held_in_place_and_reads_as_any_other() {
        // Exactly the most held in place, two-byte characters included.
        let at_most = format!(
            "{}{}",
            "é".repeat(Inline::MAX / 2),
            "x".repeat(Inline::MAX % 2)
        );
        assert_eq!(at_most.len(), Inline::MAX);
        let longer = format!("{at_most}x");
        for text in ["", "c", "2024-01-01", &at_most] {
            for held in [Text::from(text), Text::from(text.to_owned())] {
                assert!(matches!(held, Text::Inline(_)), "{text:?}");
                assert_eq!(held.as_str(), text);
                assert_eq!(held, Text::Shared(Arc::from(text)));
                assert_eq!(held.clone().into_string(), text);
            }
        }
        for held in [Text::from(longer.as_str()), Text::from(longer.clone())] {
            assert!(matches!(held, Text::Owned(_)));
            assert_eq!(held, longer.as_str());
        }
        // Changed in place: copied out, the rest of the text kept.
        let mut held = Text::from("note 1");
        held.make_mut().push_str("23");
        assert_eq!(held, "note 123");
        assert!(matches!(held, Text::Owned(_)));
        let chars: Text = "naïve".chars().collect();
        assert_eq!(chars, "naïve");
        assert!(matches!(chars, Text::Inline(_)));
    }
}
