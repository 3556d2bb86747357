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

/// Text that reads as a `str` whether it is owned or shared. Equality,
/// ordering and hashing are those of the text, whichever form holds it.
#[derive(Clone)]
pub enum Text {
    /// Text of this value alone (a column's value).
    Owned(String),
    /// Text shared with other values (a table name in every event).
    Shared(Arc<str>),
}

impl Text {
    /// The text.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Owned(s) => s,
            Self::Shared(s) => s,
        }
    }

    /// The text to change in place (shared text is copied first, so the
    /// other values keep theirs).
    pub fn make_mut(&mut self) -> &mut String {
        if let Self::Shared(shared) = self {
            *self = Self::Owned(shared.as_ref().to_owned());
        }
        match self {
            Self::Owned(s) => s,
            Self::Shared(_) => unreachable!("made owned above"),
        }
    }

    /// The text as an owned `String` (a copy only when shared).
    pub fn into_string(self) -> String {
        match self {
            Self::Owned(s) => s,
            Self::Shared(s) => s.as_ref().to_owned(),
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

    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for Text {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl Borrow<str> for Text {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl From<String> for Text {
    fn from(s: String) -> Self {
        Self::Owned(s)
    }
}

impl From<&str> for Text {
    fn from(s: &str) -> Self {
        Self::Owned(s.to_owned())
    }
}

impl From<&String> for Text {
    fn from(s: &String) -> Self {
        Self::Owned(s.clone())
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
        Self::Owned(iter.into_iter().collect())
    }
}

impl FromIterator<char> for Text {
    fn from_iter<I: IntoIterator<Item = char>>(iter: I) -> Self {
        Self::Owned(iter.into_iter().collect())
    }
}

impl PartialEq for Text {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Text {}

impl PartialEq<str> for Text {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Text {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<String> for Text {
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
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl Hash for Text {
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
}
