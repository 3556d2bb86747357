//! `GET`/`PATCH`/`DELETE /connectors/{name}/offsets`: a source
//! connector's offsets from the offset store, a sink connector's from its
//! consumer group, changed only while the connector is stopped.

use serde_json::{Map, Value as Json};
use sluice_connector_api::{ConnectorConfig, SourceOffset, SourcePartition};

use super::validation::{self};
use super::{Herder, HerderError};
use crate::plugins::Plugin;
use crate::store::TargetState;

impl Herder {
    /// The committed offsets of a connector, in Connect's shape (a sink's
    /// are its consumer group's, as Connect 3.6 shows them).
    pub async fn offsets(&self, name: &str) -> Result<Json, HerderError> {
        if let Some((group, topics)) = self.sink_group(name).await? {
            let positions = self
                .on_group(move |k| crate::kafka::group_offsets::committed(k, &group, &topics))
                .await?;
            return Ok(sink_offsets_json(&positions));
        }
        let offsets = self.deps.offsets.get(name)?;
        Ok(offsets_json(&offsets))
    }

    /// Alters (or with a null offset removes) offsets of a stopped connector.
    pub async fn alter_offsets(
        &self,
        name: &str,
        changes: Vec<(SourcePartition, Option<SourceOffset>)>,
    ) -> Result<(), HerderError> {
        self.require_stopped(name).await?;
        if let Some((group, _)) = self.sink_group(name).await? {
            let positions = sink_positions(&changes)?;
            let count = positions.len();
            self.on_group(move |k| crate::kafka::group_offsets::commit(k, &group, &positions))
                .await?;
            tracing::info!(connector = %name, partitions = count, "consumer group offsets altered");
            return Ok(());
        }
        self.store_offsets(name, &changes).await?;
        tracing::info!(connector = %name, partitions = changes.len(), "offsets altered");
        Ok(())
    }

    /// Removes every offset of a stopped connector (a sink's group goes
    /// back to the earliest record of every partition it reads).
    pub async fn reset_offsets(&self, name: &str) -> Result<(), HerderError> {
        self.require_stopped(name).await?;
        if let Some((group, topics)) = self.sink_group(name).await? {
            self.on_group(move |k| {
                let all = crate::kafka::group_offsets::all_partitions(k, &group, &topics)?;
                let positions: Vec<_> = all.into_iter().map(|(t, p)| (t, p, None)).collect();
                crate::kafka::group_offsets::commit(k, &group, &positions)
            })
            .await?;
            tracing::info!(connector = %name, "consumer group offsets reset to the earliest records");
            return Ok(());
        }
        if self.deps.exactly_once.is_some() {
            let resets: Vec<_> = self
                .deps
                .offsets
                .get(name)?
                .into_iter()
                .map(|(partition, _)| (partition, None))
                .collect();
            self.store_offsets(name, &resets).await?;
        } else {
            self.deps.offsets.clear(name)?;
        }
        tracing::info!(connector = %name, "offsets reset");
        Ok(())
    }

    /// Writes offsets of a stopped source connector: with exactly-once
    /// source support in one transaction that first fences every task the
    /// connector may still run on a worker cut off from the group (as
    /// Connect does), else straight to the offset store.
    async fn store_offsets(
        &self,
        name: &str,
        changes: &[(SourcePartition, Option<SourceOffset>)],
    ) -> Result<(), HerderError> {
        let Some(target) = &self.deps.exactly_once else {
            self.deps.offsets.put(name, changes)?;
            return Ok(());
        };
        let tasks = {
            let connectors = self.connectors.lock().await;
            let entry = connectors
                .get(name)
                .ok_or_else(|| HerderError::NotFound(name.to_owned()))?;
            ConnectorConfig(entry.stored.config.clone())
                .i64_or("tasks.max", 1)
                .map_err(|e| HerderError::BadRequest(e.to_string()))?
                .clamp(1, i64::from(u32::MAX)) as u32
        };
        crate::herder::transactional_sink::write_offsets(
            &self.deps.kafka,
            &self.deps.topics,
            target,
            name,
            tasks,
            changes,
        )
        .await
        .map_err(|e| HerderError::OffsetTransaction {
            connector: name.to_owned(),
            reason: e.to_string(),
        })
    }

    async fn require_stopped(&self, name: &str) -> Result<(), HerderError> {
        let connectors = self.connectors.lock().await;
        let entry = connectors
            .get(name)
            .ok_or_else(|| HerderError::NotFound(name.to_owned()))?;
        if entry.stored.target_state != TargetState::Stopped {
            return Err(HerderError::NotStopped(name.to_owned()));
        }
        Ok(())
    }

    /// A sink connector's consumer group and the topics it reads; `None`
    /// for a source connector.
    async fn sink_group(&self, name: &str) -> Result<Option<(String, Vec<String>)>, HerderError> {
        let connectors = self.connectors.lock().await;
        let entry = connectors
            .get(name)
            .ok_or_else(|| HerderError::NotFound(name.to_owned()))?;
        let config = ConnectorConfig(entry.stored.config.clone());
        let plugin =
            validation::plugin_for(&self.plugins, &config).map_err(HerderError::BadRequest)?;
        if !matches!(plugin, Plugin::Sink(_)) {
            return Ok(None);
        }
        let group = config
            .get("consumer.override.group.id")
            .map_or_else(|| format!("connect-{name}"), str::to_owned);
        let mut topics = config.list("topics");
        if topics.is_empty() {
            // topics.regex: the topics it has read.
            topics = self
                .deps
                .active_topics
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(name)
                .map(|t| t.iter().cloned().collect())
                .unwrap_or_default();
        }
        Ok(Some((group, topics)))
    }

    /// Runs a blocking consumer-group call off the async threads.
    async fn on_group<T: Send + 'static>(
        &self,
        call: impl FnOnce(&crate::kafka::KafkaSettings) -> Result<T, rdkafka::error::KafkaError>
            + Send
            + 'static,
    ) -> Result<T, HerderError> {
        let settings = self.deps.kafka.clone();
        tokio::task::spawn_blocking(move || call(&settings))
            .await
            .map_err(|e| {
                HerderError::BadRequest(format!("the consumer group call was interrupted: {e}"))
            })?
            .map_err(|e| {
                HerderError::BadRequest(format!("the broker refused the consumer group call: {e}"))
            })
    }
}

/// Offsets in Connect's `{"offsets": [{"partition": .., "offset": ..}]}` shape.
/// A sink's positions in Connect 3.6's shape.
fn sink_offsets_json(positions: &[crate::kafka::group_offsets::Position]) -> Json {
    let entries: Vec<Json> = positions
        .iter()
        .map(|(topic, partition, offset)| {
            serde_json::json!({
                "partition": {"kafka_topic": topic, "kafka_partition": partition},
                "offset": {"kafka_offset": offset},
            })
        })
        .collect();
    serde_json::json!({ "offsets": entries })
}

/// Sink offset changes (`{"kafka_topic", "kafka_partition"}` →
/// `{"kafka_offset"}` or null) as positions, or what is wrong with them.
fn sink_positions(
    changes: &[(SourcePartition, Option<SourceOffset>)],
) -> Result<Vec<(String, i32, Option<i64>)>, HerderError> {
    changes
        .iter()
        .enumerate()
        .map(|(i, (partition, offset))| {
            let topic = partition.get("kafka_topic").and_then(Json::as_str);
            let number = partition.get("kafka_partition").and_then(Json::as_i64);
            let (Some(topic), Some(number)) = (topic, number) else {
                return Err(HerderError::BadRequest(format!(
                    "offsets[{i}].partition of a sink connector must be {{\"kafka_topic\": \"...\", \"kafka_partition\": N}}"
                )));
            };
            let offset = match offset {
                None => None,
                Some(o) => Some(o.get("kafka_offset").and_then(Json::as_i64).filter(|o| *o >= 0).ok_or_else(|| {
                    HerderError::BadRequest(format!(
                        "offsets[{i}].offset of a sink connector must be {{\"kafka_offset\": N}} with N >= 0, or null"
                    ))
                })?),
            };
            Ok((topic.to_owned(), number as i32, offset))
        })
        .collect()
}

fn offsets_json(offsets: &[(SourcePartition, SourceOffset)]) -> Json {
    let entries = offsets
        .iter()
        .map(|(p, o)| {
            let mut m = Map::new();
            m.insert("partition".into(), Json::Object(p.clone()));
            m.insert("offset".into(), Json::Object((**o).clone()));
            Json::Object(m)
        })
        .collect();
    let mut root = Map::new();
    root.insert("offsets".into(), Json::Array(entries));
    Json::Object(root)
}
