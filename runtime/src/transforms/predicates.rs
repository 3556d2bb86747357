//! Connect's predicates (`org.apache.kafka.connect.transforms.predicates.*`):
//! `TopicNameMatches`, `HasHeaderKey`, `RecordIsTombstone`.

use sluice_connector_api::ConfigError;

use super::settings::Settings;
use super::{Predicate, Record};

/// Whether the whole topic name matches `pattern`.
pub struct TopicNameMatches {
    pattern: regex_lite::Regex,
}

impl TopicNameMatches {
    /// Reads `pattern`.
    pub fn new(settings: &Settings) -> Result<Self, ConfigError> {
        Ok(Self {
            pattern: settings.whole_regex("pattern")?,
        })
    }
}

impl Predicate for TopicNameMatches {
    fn test(&self, record: &Record) -> bool {
        self.pattern.is_match(&record.topic)
    }
}

/// Whether the record has a header called `name`.
pub struct HasHeaderKey {
    name: String,
}

impl HasHeaderKey {
    /// Reads `name`.
    pub fn new(settings: &Settings) -> Result<Self, ConfigError> {
        Ok(Self {
            name: settings.required("name")?.to_owned(),
        })
    }
}

impl Predicate for HasHeaderKey {
    fn test(&self, record: &Record) -> bool {
        record.header(&self.name).is_some()
    }
}

/// Whether the record is a tombstone (null value).
pub struct RecordIsTombstone;

impl Predicate for RecordIsTombstone {
    fn test(&self, record: &Record) -> bool {
        record.value.is_none()
    }
}
