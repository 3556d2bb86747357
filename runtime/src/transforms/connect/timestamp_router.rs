//! `TimestampRouter`: sends each record to a topic named from its topic
//! and timestamp, `topic.format` with `${topic}` and `${timestamp}`, the
//! timestamp written with Java's `SimpleDateFormat` pattern
//! `timestamp.format` (letters y M d H m s S; quoted text; UTC).

use sluice_connector_api::calendar;
use sluice_connector_api::ConfigError;

use crate::transforms::settings::Settings;
use crate::transforms::{Failure, Record, Transform};

/// One piece of a date pattern.
#[derive(Debug, Clone, PartialEq)]
enum Piece {
    Literal(String),
    /// A field letter and how many times it was repeated.
    Field(char, usize),
}

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

/// Splits a `SimpleDateFormat` pattern into fields and literal text.
fn parse_pattern(pattern: &str) -> Result<Vec<Piece>, String> {
    let mut pieces = Vec::new();
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                let mut text = String::new();
                loop {
                    match chars.next() {
                        Some('\'') if chars.peek() == Some(&'\'') => {
                            chars.next();
                            text.push('\'');
                        }
                        Some('\'') => break,
                        Some(other) => text.push(other),
                        None => return Err("an unterminated quote".to_owned()),
                    }
                }
                if text.is_empty() {
                    text.push('\'');
                }
                pieces.push(Piece::Literal(text));
            }
            'y' | 'M' | 'd' | 'H' | 'm' | 's' | 'S' => {
                let mut count = 1;
                while chars.peek() == Some(&c) {
                    chars.next();
                    count += 1;
                }
                pieces.push(Piece::Field(c, count));
            }
            c if c.is_ascii_alphabetic() => {
                return Err(format!(
                    "the pattern letter {c:?} is not supported; use y, M, d, H, m, s and S"
                ))
            }
            other => pieces.push(Piece::Literal(other.to_string())),
        }
    }
    Ok(pieces)
}

/// `millis` since the epoch in UTC, written with `pattern`.
fn format_millis(pattern: &[Piece], millis: i64) -> String {
    let (year, month, day, in_day) = calendar::civil(millis.saturating_mul(1000));
    let ms = in_day / 1000;
    let mut out = String::new();
    for piece in pattern {
        match piece {
            Piece::Literal(text) => out.push_str(text),
            Piece::Field(letter, width) => {
                let value = match letter {
                    'y' if *width == 2 => year.rem_euclid(100),
                    'y' => year,
                    'M' => month,
                    'd' => day,
                    'H' => ms / 3_600_000,
                    'm' => (ms / 60_000) % 60,
                    's' => (ms / 1000) % 60,
                    _ => ms % 1000,
                };
                out.push_str(&format!("{value:0width$}"));
            }
        }
    }
    out
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
            .replace("${timestamp}", &format_millis(&self.pattern, ts));
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
