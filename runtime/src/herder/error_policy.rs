//! What happens to a record that cannot be converted, transformed or
//! written, from Connect's `errors.*` keys: fail the task (`none`) or skip
//! it (`all`) — to a sink's dead-letter topic when one is set, with the
//! `__connect.errors.*` context headers when asked — and how it is logged.
//! A record dropped with no dead-letter topic is always logged as a
//! warning: it is gone, and that must not be silent.

use sluice_connector_api::{ConfigError, ConnectorConfig};

/// Longest key or value text put in a log line by
/// `errors.log.include.messages`.
const MAX_LOGGED_BYTES: usize = 1024;

/// The `errors.*` settings of one connector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorPolicy {
    /// `errors.tolerance=all`.
    pub tolerate: bool,
    /// `errors.log.enable`.
    pub log: bool,
    /// `errors.log.include.messages`.
    pub log_messages: bool,
    /// `errors.deadletterqueue.topic.name` (sinks).
    pub dead_letter_topic: Option<String>,
    /// `errors.deadletterqueue.topic.replication.factor` (`None`: the
    /// worker's topic replication factor).
    pub dead_letter_replication: Option<i32>,
    /// `errors.deadletterqueue.context.headers.enable`.
    pub context_headers: bool,
}

/// Where a skipped record came from, for the log line.
pub struct Skipped<'a> {
    /// The connector.
    pub connector: &'a str,
    /// Its topic.
    pub topic: &'a str,
    /// Partition and offset, when it was read from Kafka.
    pub position: Option<(i32, i64)>,
    /// Its key and value as text, for `errors.log.include.messages`.
    pub content: (Option<String>, Option<String>),
    /// Why it failed.
    pub cause: &'a str,
}

impl ErrorPolicy {
    /// Reads the `errors.*` keys (validated with the connector's config).
    pub fn from_config(config: &ConnectorConfig) -> Result<Self, ConfigError> {
        Ok(Self {
            tolerate: config.get("errors.tolerance").map(str::trim) == Some("all"),
            log: config.bool_or("errors.log.enable", false)?,
            log_messages: config.bool_or("errors.log.include.messages", false)?,
            dead_letter_topic: config
                .get("errors.deadletterqueue.topic.name")
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(str::to_owned),
            dead_letter_replication: match config
                .get("errors.deadletterqueue.topic.replication.factor")
                .map(str::trim)
                .filter(|v| !v.is_empty())
            {
                None => None,
                Some(_) => Some(
                    i32::try_from(
                        config.i64_or("errors.deadletterqueue.topic.replication.factor", -1)?,
                    )
                    .map_err(|_| {
                        ConfigError::new(
                            "errors.deadletterqueue.topic.replication.factor",
                            "must be a small whole number (-1 for the broker's default)",
                        )
                    })?,
                ),
            },
            context_headers: config
                .bool_or("errors.deadletterqueue.context.headers.enable", false)?,
        })
    }

    /// Logs a record skipped under `errors.tolerance=all`; `dead_letter`
    /// names the topic it went to, if any.
    pub fn log_skipped(&self, skipped: &Skipped<'_>, dead_letter: Option<&str>) {
        let (partition, offset) = skipped.position.unwrap_or((-1, -1));
        let (key, value) = if self.log_messages {
            let cut = |text: &Option<String>| {
                text.as_deref().map(|t| {
                    let mut end = t.len().min(MAX_LOGGED_BYTES);
                    while !t.is_char_boundary(end) {
                        end -= 1;
                    }
                    t[..end].to_owned()
                })
            };
            (cut(&skipped.content.0), cut(&skipped.content.1))
        } else {
            (None, None)
        };
        match dead_letter {
            None => {
                tracing::warn!(connector = %skipped.connector, topic = %skipped.topic, partition, offset, key, value, cause = %skipped.cause, "record skipped (errors.tolerance=all, no dead-letter topic)")
            }
            Some(dlq) if self.log => {
                tracing::warn!(connector = %skipped.connector, topic = %skipped.topic, partition, offset, key, value, dead_letter_topic = %dlq, cause = %skipped.cause, "record sent to the dead-letter topic")
            }
            Some(dlq) => {
                tracing::debug!(connector = %skipped.connector, topic = %skipped.topic, partition, offset, dead_letter_topic = %dlq, cause = %skipped.cause, "record sent to the dead-letter topic")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connects_defaults_and_settings_are_read() {
        let defaults = ErrorPolicy::from_config(&ConnectorConfig::default()).unwrap();
        assert_eq!(
            defaults,
            ErrorPolicy {
                tolerate: false,
                log: false,
                log_messages: false,
                dead_letter_topic: None,
                dead_letter_replication: None,
                context_headers: false,
            }
        );
        let set: ConnectorConfig = [
            ("errors.tolerance", "all"),
            ("errors.log.enable", "true"),
            ("errors.deadletterqueue.topic.name", "dlq"),
            ("errors.deadletterqueue.topic.replication.factor", "1"),
            ("errors.deadletterqueue.context.headers.enable", "true"),
        ]
        .into_iter()
        .collect();
        let policy = ErrorPolicy::from_config(&set).unwrap();
        assert!(policy.tolerate && policy.log && policy.context_headers);
        assert_eq!(policy.dead_letter_topic.as_deref(), Some("dlq"));
        assert_eq!(policy.dead_letter_replication, Some(1));
    }
}
