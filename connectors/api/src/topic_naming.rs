//! Topic names as Debezium's default topic naming strategy makes them:
//! `<topic.prefix><d><schema>.<table>` for changes, `<topic.heartbeat.prefix><d><topic.prefix>`
//! for heartbeats, `<topic.prefix><d><topic.transaction>` for transaction
//! metadata and `<topic.prefix><d>message` for PostgreSQL's logical
//! decoding messages, `<d>` being `topic.delimiter`.

use crate::{ConfigDef, ConfigError, ConfigKey, ConfigType, ConnectorConfig};

/// The naming settings of one source connector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicNaming {
    prefix: String,
    delimiter: String,
    heartbeat_prefix: String,
    transaction: String,
}

/// The naming keys besides `topic.prefix`, for a source's definition.
pub fn definition() -> ConfigDef {
    let key = |name, doc, default| {
        ConfigKey::new(name, ConfigType::String, doc)
            .default(default)
            .group("Connection")
    };
    ConfigDef::new()
        .define(key("topic.delimiter", "Joins the parts of topic names (letters, digits, '.', '_' or '-').", "."))
        .define(key("topic.heartbeat.prefix", "Heartbeats go to <topic.heartbeat.prefix><topic.delimiter><topic.prefix>.", "__debezium-heartbeat"))
        .define(key("topic.transaction", "With provide.transaction.metadata, BEGIN and END events go to <topic.prefix><topic.delimiter><topic.transaction>.", "transaction"))
}

fn kafka_safe(text: &str) -> bool {
    !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

impl TopicNaming {
    /// Reads `topic.prefix` and the naming keys; parts Kafka would refuse
    /// in a topic name are refused by key.
    pub fn from_config(config: &ConnectorConfig) -> Result<Self, ConfigError> {
        let text = |key: &str, default: &str| {
            let value = config.get(key).map(str::trim).unwrap_or(default).to_owned();
            if kafka_safe(&value) {
                Ok(value)
            } else {
                Err(ConfigError::new(
                    key,
                    format!("{value:?} cannot be part of a Kafka topic name; use letters, digits, '.', '_' or '-'"),
                ))
            }
        };
        Ok(Self {
            prefix: config.required("topic.prefix")?.trim().to_owned(),
            delimiter: text("topic.delimiter", ".")?,
            heartbeat_prefix: text("topic.heartbeat.prefix", "__debezium-heartbeat")?,
            transaction: text("topic.transaction", "transaction")?,
        })
    }

    /// Default naming under `prefix` (tests, tools).
    pub fn with_prefix(prefix: &str) -> Self {
        Self {
            prefix: prefix.to_owned(),
            delimiter: ".".to_owned(),
            heartbeat_prefix: "__debezium-heartbeat".to_owned(),
            transaction: "transaction".to_owned(),
        }
    }

    /// `topic.prefix`, the logical server name.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The topic of `container.table`'s changes (characters Kafka refuses
    /// in a table's name become `_`).
    pub fn data(&self, container: &str, table: &str) -> String {
        crate::debezium::topic_name(&[&self.prefix, container, table], &self.delimiter)
    }

    /// The heartbeat topic.
    pub fn heartbeat(&self) -> String {
        format!("{}{}{}", self.heartbeat_prefix, self.delimiter, self.prefix)
    }

    /// The transaction metadata topic.
    pub fn transaction(&self) -> String {
        format!("{}{}{}", self.prefix, self.delimiter, self.transaction)
    }

    /// PostgreSQL's logical decoding message topic.
    pub fn message(&self) -> String {
        format!("{}{}message", self.prefix, self.delimiter)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_name_topics_as_debezium() {
        let naming =
            TopicNaming::from_config(&ConnectorConfig::from_pairs(&[("topic.prefix", "srv")]))
                .unwrap();
        assert_eq!(naming, TopicNaming::with_prefix("srv"));
        assert_eq!(naming.data("inventory", "orders"), "srv.inventory.orders");
        assert_eq!(naming.heartbeat(), "__debezium-heartbeat.srv");
        assert_eq!(naming.transaction(), "srv.transaction");
        assert_eq!(naming.message(), "srv.message");
    }

    #[test]
    fn the_delimiter_and_prefixes_are_used_everywhere() {
        let naming = TopicNaming::from_config(&ConnectorConfig::from_pairs(&[
            ("topic.prefix", "srv"),
            ("topic.delimiter", "_"),
            ("topic.heartbeat.prefix", "beats"),
            ("topic.transaction", "tx"),
        ]))
        .unwrap();
        assert_eq!(naming.data("inventory", "orders"), "srv_inventory_orders");
        assert_eq!(naming.heartbeat(), "beats_srv");
        assert_eq!(naming.transaction(), "srv_tx");
        assert_eq!(naming.message(), "srv_message");
        let err = TopicNaming::from_config(&ConnectorConfig::from_pairs(&[
            ("topic.prefix", "s"),
            ("topic.delimiter", "/"),
        ]))
        .unwrap_err();
        assert_eq!(err.key, "topic.delimiter");
    }
}
