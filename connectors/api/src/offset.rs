//! Source partitions and offsets: where a source task is in its input.
//!
//! Both are small JSON objects, as in Kafka Connect, so that the offsets
//! REST API shows and accepts them unchanged (Debezium's Postgres offset is
//! `{"lsn": ..., "txId": ..., "ts_usec": ...}` under the partition
//! `{"server": "<topic.prefix>"}`).
//!
//! Every record carries an offset, but only a few are ever stored (the
//! newest acknowledged one, each flush). So a connector may hand over a
//! typed [`Position`] instead of a JSON map: it becomes JSON only when
//! something reads it — building a JSON map per record was a tenth of a
//! snapshot's CPU.

use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::{Arc, OnceLock};

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value as Json};

/// Which input stream an offset belongs to, e.g. `{"server": "dbserver1"}`.
pub type SourcePartition = Map<String, Json>;

/// A connector's own record of where it is, written as the JSON offset it
/// stores only when that is needed.
pub trait Position: Send + Sync + fmt::Debug {
    /// The offset as stored, e.g. `{"lsn": 24023128, "txId": 555}`.
    fn to_json(&self) -> Map<String, Json>;
}

/// The position within a partition, e.g. `{"lsn": 24023128}`: reads as a
/// JSON map (it dereferences to one), built from a typed [`Position`] the
/// first time it is read.
#[derive(Clone, Default)]
pub struct SourceOffset {
    typed: Option<Arc<dyn Position>>,
    /// Boxed: most offsets are never read as JSON, and every record
    /// carries one (a map in place made a record 264 bytes, not 200).
    json: OnceLock<Box<Map<String, Json>>>,
}

impl SourceOffset {
    /// An empty offset: a record that moves no offset.
    pub fn new() -> Self {
        Self::default()
    }

    /// An offset kept as `position` until read.
    pub fn typed(position: impl Position + 'static) -> Self {
        Self {
            typed: Some(Arc::new(position)),
            json: OnceLock::new(),
        }
    }

    /// Whether the offset is empty, without writing a typed one as JSON
    /// (a typed position is never empty).
    pub fn is_empty(&self) -> bool {
        self.typed.is_none() && self.json.get().is_none_or(|json| json.is_empty())
    }

    /// The offset as a JSON map, taken out.
    pub fn into_map(mut self) -> Map<String, Json> {
        std::mem::take(self.deref_mut())
    }
}

impl Deref for SourceOffset {
    type Target = Map<String, Json>;

    fn deref(&self) -> &Map<String, Json> {
        self.json.get_or_init(|| {
            Box::new(
                self.typed
                    .as_ref()
                    .map(|position| position.to_json())
                    .unwrap_or_default(),
            )
        })
    }
}

impl DerefMut for SourceOffset {
    fn deref_mut(&mut self) -> &mut Map<String, Json> {
        let json: Map<String, Json> = Deref::deref(&*self).clone();
        // Changed as JSON from here on: the typed form no longer says it.
        self.typed = None;
        self.json = OnceLock::new();
        self.json.get_or_init(|| Box::new(json));
        match self.json.get_mut() {
            Some(json) => json,
            None => unreachable!("set just above"),
        }
    }
}

impl From<Map<String, Json>> for SourceOffset {
    fn from(json: Map<String, Json>) -> Self {
        Self {
            typed: None,
            json: OnceLock::from(Box::new(json)),
        }
    }
}

impl PartialEq for SourceOffset {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl fmt::Debug for SourceOffset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl Serialize for SourceOffset {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        (**self).serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for SourceOffset {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Map::deserialize(deserializer).map(Self::from)
    }
}

/// A partition with one entry, a common case.
pub fn partition(key: &str, value: impl Into<Json>) -> SourcePartition {
    let mut map = Map::new();
    map.insert(key.to_owned(), value.into());
    map
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    static WRITTEN: AtomicUsize = AtomicUsize::new(0);

    #[derive(Debug)]
    struct Lsn(u64);

    impl Position for Lsn {
        fn to_json(&self) -> Map<String, Json> {
            WRITTEN.fetch_add(1, Ordering::SeqCst);
            partition("lsn", self.0)
        }
    }

    #[test]
    fn a_typed_offset_becomes_json_once_and_only_when_read() {
        let before = WRITTEN.load(Ordering::SeqCst);
        let offset = SourceOffset::typed(Lsn(42));
        let copy = offset.clone();
        assert!(!offset.is_empty());
        assert_eq!(WRITTEN.load(Ordering::SeqCst), before, "not written yet");
        assert_eq!(offset.get("lsn"), Some(&Json::from(42)));
        assert_eq!(offset.get("lsn"), Some(&Json::from(42)));
        assert_eq!(WRITTEN.load(Ordering::SeqCst), before + 1, "written once");
        assert_eq!(serde_json::to_string(&copy).expect("json"), r#"{"lsn":42}"#);
        assert_eq!(offset, copy);
    }

    #[test]
    fn json_offsets_read_change_and_round_trip_as_maps() {
        let mut offset = SourceOffset::typed(Lsn(7));
        offset.insert("snapshot".into(), Json::from(true));
        assert_eq!(
            serde_json::to_string(&offset).expect("json"),
            r#"{"lsn":7,"snapshot":true}"#
        );
        let back: SourceOffset =
            serde_json::from_str(r#"{"lsn":7,"snapshot":true}"#).expect("parses");
        assert_eq!(back, offset);
        assert!(SourceOffset::new().is_empty());
        assert!(SourceOffset::from(Map::new()).is_empty());
        assert_eq!(offset.into_map().len(), 2);
    }
}
