//! Connector configs and target states on a config topic, in Kafka
//! Connect's format, so a topic a Connect cluster wrote is read as it is
//! and Connect can read what sluice writes:
//!
//! | key | value |
//! |---|---|
//! | `connector-<name>` | `{"properties": {...}}`, null when deleted |
//! | `target-state-<name>` | `{"state": "PAUSED", "state.v2": "STOPPED"}` |
//!
//! Connect's `task-<name>-<n>`, `commit-<name>` and `session-key`
//! records are read past: sluice derives task configs from the connector
//! config each time it starts the tasks.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::log::{Fold, Folded, KafkaLog, LogRecord};
use crate::store::{ConfigStore, StoreError, StoredConnector, TargetState};

const CONNECTOR: &str = "connector-";
const TARGET_STATE: &str = "target-state-";

/// What the config topic says, folded record by record.
#[derive(Debug, Default)]
struct ConfigView {
    configs: BTreeMap<String, BTreeMap<String, String>>,
    states: BTreeMap<String, TargetState>,
}

impl Fold for ConfigView {
    fn apply(&mut self, (key, value): &LogRecord) {
        let Ok(key) = std::str::from_utf8(key) else {
            tracing::warn!("config topic record with a key that is not UTF-8 skipped");
            return;
        };
        if let Some(name) = key.strip_prefix(TARGET_STATE) {
            match value.as_deref().map(decode_target_state) {
                None => {
                    self.states.remove(name);
                }
                Some(Some(state)) => {
                    self.states.insert(name.to_owned(), state);
                }
                Some(None) => {
                    tracing::warn!(
                        key,
                        "config topic record with an unknown target state skipped"
                    )
                }
            }
        } else if let Some(name) = key.strip_prefix(CONNECTOR) {
            match value.as_deref().map(decode_properties) {
                None => {
                    self.configs.remove(name);
                }
                Some(Some(config)) => {
                    self.configs.insert(name.to_owned(), config);
                }
                Some(None) => tracing::warn!(
                    key,
                    "config topic record that is not {{\"properties\": {{...}}}} skipped"
                ),
            }
        }
    }
}

impl ConfigView {
    fn connectors(&self) -> Vec<StoredConnector> {
        self.configs
            .iter()
            .map(|(name, config)| StoredConnector {
                name: name.clone(),
                config: config.clone(),
                target_state: self.states.get(name).copied().unwrap_or_default(),
            })
            .collect()
    }
}

/// `{"properties": {...}}` with every value as a string, as Connect stores it.
fn encode_properties(config: &BTreeMap<String, String>) -> Vec<u8> {
    json!({ "properties": config }).to_string().into_bytes()
}

fn decode_properties(bytes: &[u8]) -> Option<BTreeMap<String, String>> {
    let value: Value = serde_json::from_slice(bytes).ok()?;
    let properties = value.get("properties")?.as_object()?;
    properties
        .iter()
        .map(|(k, v)| {
            let text = match v {
                Value::String(s) => s.clone(),
                Value::Null => return None,
                other => other.to_string(),
            };
            Some((k.clone(), text))
        })
        .collect()
}

fn state_name(state: TargetState) -> &'static str {
    match state {
        TargetState::Started => "STARTED",
        TargetState::Paused => "PAUSED",
        TargetState::Stopped => "STOPPED",
    }
}

/// Connect 3.5+ writes STOPPED as `state.v2` beside a `state` older
/// workers understand (PAUSED).
fn encode_target_state(state: TargetState) -> Vec<u8> {
    let legacy = match state {
        TargetState::Stopped => TargetState::Paused,
        other => other,
    };
    json!({"state": state_name(legacy), "state.v2": state_name(state)})
        .to_string()
        .into_bytes()
}

fn decode_target_state(bytes: &[u8]) -> Option<TargetState> {
    let value: Value = serde_json::from_slice(bytes).ok()?;
    let name = value
        .get("state.v2")
        .or_else(|| value.get("state"))?
        .as_str()?;
    match name {
        "STARTED" => Some(TargetState::Started),
        "PAUSED" => Some(TargetState::Paused),
        "STOPPED" => Some(TargetState::Stopped),
        _ => None,
    }
}

/// Connector configs on a Kafka config topic.
pub struct KafkaConfigStore {
    topic: Folded<ConfigView>,
}

impl KafkaConfigStore {
    /// A store on the log of the config topic.
    pub fn new(log: KafkaLog) -> Self {
        Self {
            topic: Folded::new(log),
        }
    }
}

impl ConfigStore for KafkaConfigStore {
    fn load(&self) -> Result<Vec<StoredConnector>, StoreError> {
        Ok(self.topic.catch_up()?.connectors())
    }

    fn put(&self, connector: &StoredConnector) -> Result<(), StoreError> {
        // The target state first, as Connect writes it for a connector
        // created STOPPED: the config never appears without its state.
        let name = &connector.name;
        self.topic.log().append(
            format!("{TARGET_STATE}{name}").as_bytes(),
            Some(&encode_target_state(connector.target_state)),
        )?;
        self.topic.log().append(
            format!("{CONNECTOR}{name}").as_bytes(),
            Some(&encode_properties(&connector.config)),
        )?;
        self.topic.catch_up().map(drop)
    }

    fn remove(&self, name: &str) -> Result<(), StoreError> {
        let log = self.topic.log();
        log.append(format!("{CONNECTOR}{name}").as_bytes(), None)?;
        log.append(format!("{TARGET_STATE}{name}").as_bytes(), None)?;
        self.topic.catch_up().map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(key: &str, value: Option<&str>) -> LogRecord {
        (
            key.as_bytes().to_vec(),
            value.map(|v| v.as_bytes().to_vec()),
        )
    }

    #[test]
    fn a_topic_connect_wrote_is_read_as_connectors_with_their_states() {
        let mut view = ConfigView::default();
        for r in [
            record(
                "target-state-a",
                Some(r#"{"state":"PAUSED","state.v2":"STOPPED"}"#),
            ),
            record(
                "connector-a",
                Some(
                    r#"{"properties":{"connector.class":"io.debezium.connector.postgresql.PostgresConnector","name":"a","tasks.max":"1"}}"#,
                ),
            ),
            record("task-a-0", Some(r#"{"properties":{"task.class":"x"}}"#)),
            record("commit-a", Some(r#"{"tasks":1}"#)),
            record("connector-b", Some(r#"{"properties":{"name":"b"}}"#)),
            record("target-state-b", Some(r#"{"state":"PAUSED"}"#)),
            record("connector-c", Some(r#"{"properties":{"name":"c"}}"#)),
            record("connector-c", None),
            record(
                "session-key",
                Some(r#"{"key":"x","algorithm":"HmacSHA256","creation-timestamp":1}"#),
            ),
        ] {
            view.apply(&r);
        }
        let connectors = view.connectors();
        assert_eq!(connectors.len(), 2, "{connectors:?}");
        assert_eq!(connectors[0].name, "a");
        assert_eq!(connectors[0].target_state, TargetState::Stopped);
        assert_eq!(connectors[0].config["tasks.max"], "1");
        assert_eq!(connectors[1].target_state, TargetState::Paused);
    }

    #[test]
    fn what_sluice_writes_reads_back_and_keeps_connects_legacy_state() {
        let config = BTreeMap::from([("name".to_owned(), "x".to_owned())]);
        let mut view = ConfigView::default();
        view.apply(&(
            b"target-state-x".to_vec(),
            Some(encode_target_state(TargetState::Stopped)),
        ));
        view.apply(&(b"connector-x".to_vec(), Some(encode_properties(&config))));
        assert_eq!(
            view.connectors(),
            vec![StoredConnector {
                name: "x".into(),
                config,
                target_state: TargetState::Stopped
            }]
        );
        let legacy: Value =
            serde_json::from_slice(&encode_target_state(TargetState::Stopped)).expect("json");
        assert_eq!(legacy, json!({"state": "PAUSED", "state.v2": "STOPPED"}));
    }

    #[test]
    fn records_that_are_not_connects_format_are_skipped() {
        let mut view = ConfigView::default();
        view.apply(&record("connector-a", Some("not json")));
        view.apply(&record("connector-b", Some(r#"{"props":{}}"#)));
        view.apply(&record("target-state-a", Some(r#"{"state":"DANCING"}"#)));
        view.apply(&(vec![0xff], Some(b"{}".to_vec())));
        assert!(view.connectors().is_empty());
    }
}
