//! `TimestampRouter`: sends each record to a topic named from its topic
//! and timestamp, `topic.format` with `${topic}` and `${timestamp}`, the
//! timestamp written with Java's `SimpleDateFormat` pattern
//! `timestamp.format` (letters y M d H m s S; quoted text; UTC).

use sluice_connector_api::ConfigError;

use crate::transforms::date_format::{format_millis, parse_pattern, Piece};

use crate::transforms::settings::Settings;
use crate::transforms::{Failure, Record, Transform};

/// The configured transform.
pub struct TimestampRouter {
    topic_format: String,
    pattern: Vec<Piece>,
}

impl TimestampRouter {
    /// Reads `topic.format` and `timestamp.format`.
    pub fn new(settings: &Settings) -> Result<Self, ConfigError> {
        let pattern = parse_pattern(settings.get_or("timestamp.format", "yyyyMMdd"))
            .map_err(|m| settings.error("timestamp.format", m))?;
        Ok(Self {
            topic_format: settings
                .get_or("topic.format", "${topic}-${timestamp}")
                .to_owned(),
            pattern,
        })
    }
}

impl Transform for TimestampRouter {
    fn apply(&self, mut record: Record) -> Result<Option<Record>, Failure> {
        let Some(ts) = record.timestamp_ms else {
            return Err(Failure::new(
                "TimestampRouter needs a record timestamp and this record has none",
            ));
        };
        record.topic = self
            .topic_format
            .replace("${topic}", &record.topic)
            .replace("${timestamp}", &format_millis(&self.pattern, ts))
            .into();
        Ok(Some(record))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transforms::record::tests_support::record_on;

    #[test]
    fn routes_by_day_by_default() {
        let t = TimestampRouter::new(&Settings::from_pairs("transforms.t.", &[])).unwrap();
        // 1_700_000_000_000 ms = 2023-11-14T22:13:20Z
        let out = t.apply(record_on("orders")).unwrap().unwrap();
        assert_eq!(out.topic, "orders-20231114");
    }

    #[test]
    fn formats_hours_and_quoted_text() {
        let t = TimestampRouter::new(&Settings::from_pairs(
            "transforms.t.",
            &[
                ("topic.format", "${timestamp}_${topic}"),
                ("timestamp.format", "yyyy-MM-dd'T'HH"),
            ],
        ))
        .unwrap();
        let out = t.apply(record_on("orders")).unwrap().unwrap();
        assert_eq!(out.topic, "2023-11-14T22_orders");
    }

    #[test]
    fn an_unsupported_letter_names_the_key() {
        let e = TimestampRouter::new(&Settings::from_pairs(
            "transforms.t.",
            &[("timestamp.format", "EEE")],
        ))
        .err()
        .unwrap();
        assert_eq!(e.key, "transforms.t.timestamp.format");
    }
}
