//! Source offsets on an offset topic, in Kafka Connect's format: key
//! `["<connector>", {source partition}]`, value `{source offset}`, both as
//! schemaless JSON, a tombstone when an offset is reset. The source
//! connectors' partitions and offsets carry Debezium's fields, so offsets a
//! Debezium connector left in `connect-offsets` are where sluice resumes a
//! connector of the same name.

use std::collections::BTreeMap;

use serde_json::Value;
use sluice_connector_api::{SourceOffset, SourcePartition};

use super::log::{Fold, Folded, KafkaLog, LogRecord};
use crate::store::{OffsetStore, StoreError};

/// The key bytes Connect writes: compact JSON, the connector name first.
fn encode_key(connector: &str, partition: &SourcePartition) -> Vec<u8> {
    Value::Array(vec![
        Value::String(connector.to_owned()),
        Value::Object(partition.clone()),
    ])
    .to_string()
    .into_bytes()
}

/// One offset as the record Connect writes for it: the key, and the
/// offset as a JSON object (`None`, a tombstone, resets it). Also what a
/// transactional producer writes inside a task's transaction.
pub fn offset_record(
    connector: &str,
    partition: &SourcePartition,
    offset: Option<&SourceOffset>,
) -> (Vec<u8>, Option<Vec<u8>>) {
    let value = offset.map(|o| Value::Object((**o).clone()).to_string().into_bytes());
    (encode_key(connector, partition), value)
}

fn decode_key(bytes: &[u8]) -> Option<(String, SourcePartition)> {
    let value: Value = serde_json::from_slice(bytes).ok()?;
    match value {
        Value::Array(mut parts) if parts.len() == 2 => {
            let partition = match parts.pop()? {
                Value::Object(map) => map,
                _ => return None,
            };
            let connector = parts.pop()?.as_str()?.to_owned();
            Some((connector, partition))
        }
        _ => None,
    }
}

/// Offsets by connector, each partition with its newest offset.
#[derive(Debug, Default)]
struct OffsetView {
    by_connector: BTreeMap<String, Vec<(SourcePartition, SourceOffset)>>,
}

impl Fold for OffsetView {
    fn apply(&mut self, (key, value): &LogRecord) {
        let Some((connector, partition)) = decode_key(key) else {
            tracing::warn!(
                key = %String::from_utf8_lossy(key),
                "offset topic record whose key is not [\"<connector>\", {{partition}}] skipped"
            );
            return;
        };
        let offset = match value.as_deref().map(serde_json::from_slice::<Value>) {
            None | Some(Ok(Value::Null)) => None,
            Some(Ok(Value::Object(offset))) => Some(offset),
            Some(_) => {
                tracing::warn!(
                    connector,
                    "offset topic record whose value is not a JSON object skipped"
                );
                return;
            }
        };
        self.set(&connector, partition, offset.map(SourceOffset::from));
    }
}

impl OffsetView {
    fn set(&mut self, connector: &str, partition: SourcePartition, offset: Option<SourceOffset>) {
        let entries = self.by_connector.entry(connector.to_owned()).or_default();
        entries.retain(|(p, _)| p != &partition);
        if let Some(offset) = offset {
            entries.push((partition, offset));
        }
        if entries.is_empty() {
            self.by_connector.remove(connector);
        }
    }
}

/// Source offsets on a Kafka offset topic.
pub struct KafkaOffsetStore {
    topic: Folded<OffsetView>,
}

impl KafkaOffsetStore {
    /// A store on the log of the offset topic.
    pub fn new(log: KafkaLog) -> Self {
        Self {
            topic: Folded::new(log),
        }
    }

    /// How many partitions the offset topic has (the group's units of work).
    pub fn partitions(&self) -> i32 {
        self.topic.log().partitions()
    }
}

impl OffsetStore for KafkaOffsetStore {
    fn get(&self, connector: &str) -> Result<Vec<(SourcePartition, SourceOffset)>, StoreError> {
        Ok(self
            .topic
            .catch_up()?
            .by_connector
            .get(connector)
            .cloned()
            .unwrap_or_default())
    }

    fn put(
        &self,
        connector: &str,
        offsets: &[(SourcePartition, Option<SourceOffset>)],
    ) -> Result<(), StoreError> {
        for (partition, offset) in offsets {
            let (key, value) = offset_record(connector, partition, offset.as_ref());
            self.topic.log().append(&key, value.as_deref())?;
            // Only the worker running a connector writes its offsets, so
            // the view can follow its own appends without reading them back.
            self.topic
                .view()
                .set(connector, partition.clone(), offset.clone());
        }
        Ok(())
    }

    fn clear(&self, connector: &str) -> Result<(), StoreError> {
        let partitions: Vec<SourcePartition> = self
            .topic
            .catch_up()?
            .by_connector
            .get(connector)
            .map(|entries| entries.iter().map(|(p, _)| p.clone()).collect())
            .unwrap_or_default();
        let resets: Vec<_> = partitions.into_iter().map(|p| (p, None)).collect();
        self.put(connector, &resets)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use sluice_connector_api::offset::partition;

    fn apply(view: &mut OffsetView, key: &str, value: Option<&str>) {
        view.apply(&(
            key.as_bytes().to_vec(),
            value.map(|v| v.as_bytes().to_vec()),
        ));
    }

    #[test]
    fn keys_are_byte_for_byte_what_connect_writes() {
        let key = encode_key("inventory", &partition("server", "dbserver1"));
        assert_eq!(key, br#"["inventory",{"server":"dbserver1"}]"#);
        assert_eq!(
            decode_key(&key),
            Some(("inventory".into(), partition("server", "dbserver1")))
        );
    }

    #[test]
    fn debezium_offsets_are_read_and_the_newest_wins() {
        let mut view = OffsetView::default();
        let key = r#"["inventory",{"server":"dbserver1"}]"#;
        apply(&mut view, key, Some(r#"{"lsn":100,"txId":5,"ts_usec":1}"#));
        apply(
            &mut view,
            key,
            Some(
                r#"{"transaction_id":null,"lsn_proc":240,"messageType":"UPDATE","lsn_commit":232,"lsn":240,"txId":7,"ts_usec":2}"#,
            ),
        );
        apply(
            &mut view,
            r#"["other",{"server":"x"}]"#,
            Some(r#"{"file":"b.1","pos":4}"#),
        );
        let offsets = &view.by_connector["inventory"];
        assert_eq!(offsets.len(), 1);
        assert_eq!(offsets[0].1["lsn_commit"], json!(232));
        apply(&mut view, key, None);
        assert!(!view.by_connector.contains_key("inventory"));
        assert!(view.by_connector.contains_key("other"));
    }

    #[test]
    fn records_that_are_not_connects_format_are_skipped() {
        let mut view = OffsetView::default();
        apply(&mut view, "plain", Some("{}"));
        apply(&mut view, r#"["a"]"#, Some("{}"));
        apply(&mut view, r#"["a",{"p":1}]"#, Some("[1]"));
        apply(&mut view, r#"[1,{"p":1}]"#, Some("{}"));
        assert!(view.by_connector.is_empty());
    }
}
