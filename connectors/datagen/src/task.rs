//! The datagen task: numbered records at a steady rate.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use serde_json::json;
use sluice_connector_api::offset::partition;
use sluice_connector_api::{
    logical, ConnectorConfig, ConnectorError, Field, Schema, SourceOffset, SourcePartition,
    SourceRecord, SourceTask, SourceTaskContext, Value,
};

use crate::config::DatagenConfig;

/// The offset key holding the last sequence number written.
const SEQ: &str = "seq";

/// A running datagen task.
#[derive(Debug, Default)]
pub struct DatagenTask {
    state: Option<State>,
}

#[derive(Debug)]
struct State {
    config: DatagenConfig,
    partition: Arc<SourcePartition>,
    key_schema: Arc<Schema>,
    value_schema: Arc<Schema>,
    /// The sequence number of the next record.
    next_seq: i64,
    /// When the rate clock started and how many records it has paid out.
    started: Instant,
    emitted_since_start: u64,
}

/// The key schema: the record's key number.
pub(crate) fn key_schema() -> Schema {
    Schema::structure(
        "io.sluice.datagen.Key",
        vec![Field::new("id", Schema::int64())],
    )
}

/// The value schema: sequence number, key, creation time and filler,
/// plus any configured extra fields.
pub(crate) fn value_schema(config: &DatagenConfig) -> Schema {
    let mut fields = vec![
        Field::new("seq", Schema::int64()),
        Field::new("id", Schema::int64()),
        Field::new("ts_ms", logical::timestamp_millis()),
        Field::new("payload", Schema::string()),
    ];
    for name in &config.extra_fields {
        let schema = if config.extra_fields_optional {
            Schema::int64().optional()
        } else {
            Schema::int64()
        };
        fields.push(Field::new(name.clone(), schema));
    }
    Schema::structure("io.sluice.datagen.Value", fields)
}

/// The resume point stored in `offset`, if it is one of ours.
fn stored_seq(offset: &SourceOffset) -> Option<i64> {
    offset.get(SEQ).and_then(serde_json::Value::as_i64)
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// A filler string of `len` characters that depends on `seq`, so payloads
/// differ between records but are reproducible.
fn payload(seq: i64, len: usize) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let start = seq.unsigned_abs() as usize;
    (0..len)
        .map(|i| ALPHABET[(start + i) % ALPHABET.len()] as char)
        .collect()
}

impl State {
    /// How many records the rate limit allows now, and how long to wait if none.
    fn allowance(&self) -> (usize, Duration) {
        let batch = self.config.batch_size;
        if self.config.rate_per_sec <= 0.0 {
            return (batch, Duration::ZERO);
        }
        let due = self.started.elapsed().as_secs_f64() * self.config.rate_per_sec;
        let owed = (due as u64).saturating_sub(self.emitted_since_start);
        if owed > 0 {
            return (batch.min(owed as usize), Duration::ZERO);
        }
        let next_due = (self.emitted_since_start + 1) as f64 / self.config.rate_per_sec;
        let wait = next_due - self.started.elapsed().as_secs_f64();
        (0, Duration::from_secs_f64(wait.clamp(0.001, 0.1)))
    }

    fn remaining(&self) -> Option<u64> {
        (self.config.max_records > 0)
            .then(|| self.config.max_records.saturating_sub(self.next_seq).max(0) as u64)
    }

    fn record(&self, seq: i64, ts_ms: i64) -> SourceRecord {
        let id = seq % self.config.key_cardinality;
        let mut offset = SourceOffset::new();
        offset.insert(SEQ.to_owned(), json!(seq));
        SourceRecord {
            partition: Arc::clone(&self.partition),
            offset,
            topic: self.config.topic.clone(),
            kafka_partition: None,
            key_schema: Some(Arc::clone(&self.key_schema)),
            key: Some(Value::Struct(vec![Value::Int64(id)])),
            value_schema: Some(Arc::clone(&self.value_schema)),
            value: Some(Value::Struct({
                let mut values = Vec::with_capacity(4 + self.config.extra_fields.len());
                values.extend([
                    Value::Int64(seq),
                    Value::Int64(id),
                    Value::Int64(ts_ms),
                    Value::String(payload(seq, self.config.payload_bytes)),
                ]);
                values.extend(self.config.extra_fields.iter().map(|_| Value::Int64(seq)));
                values
            })),
            timestamp_ms: Some(ts_ms),
            headers: Vec::new(),
        }
    }
}

#[async_trait]
impl SourceTask for DatagenTask {
    async fn start(
        &mut self,
        config: &ConnectorConfig,
        context: SourceTaskContext,
    ) -> Result<(), ConnectorError> {
        let config = DatagenConfig::parse(config)?;
        let partition = partition("topic", config.topic.clone());
        let next_seq = context
            .offset(&partition)
            .and_then(stored_seq)
            .map_or(0, |last| last + 1);
        let value_schema = Arc::new(value_schema(&config));
        self.state = Some(State {
            config,
            partition: Arc::new(partition),
            key_schema: Arc::new(key_schema()),
            value_schema,
            next_seq,
            started: Instant::now(),
            emitted_since_start: 0,
        });
        Ok(())
    }

    async fn poll(&mut self) -> Result<Vec<SourceRecord>, ConnectorError> {
        let state = self
            .state
            .as_mut()
            .ok_or_else(|| ConnectorError::fatal("datagen task polled before start"))?;
        if state.remaining() == Some(0) {
            // Done: idle politely so the runtime can still serve pause/stop.
            tokio::time::sleep(Duration::from_millis(200)).await;
            return Ok(Vec::new());
        }
        let (mut count, wait) = state.allowance();
        if count == 0 {
            tokio::time::sleep(wait).await;
            return Ok(Vec::new());
        }
        if let Some(left) = state.remaining() {
            count = count.min(left as usize);
        }
        let ts_ms = now_ms();
        let first = state.next_seq;
        let records = (first..first + count as i64)
            .map(|seq| state.record(seq, ts_ms))
            .collect();
        state.next_seq += count as i64;
        state.emitted_since_start += count as u64;
        Ok(records)
    }

    fn progress(&self) -> Option<serde_json::Value> {
        let state = self.state.as_ref()?;
        Some(json!({ "next_seq": state.next_seq }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, &str)]) -> ConnectorConfig {
        pairs.iter().copied().collect()
    }

    fn seqs(records: &[SourceRecord]) -> Vec<i64> {
        records
            .iter()
            .map(|r| match &r.value {
                Some(Value::Struct(fields)) => match fields[0] {
                    Value::Int64(seq) => seq,
                    ref other => panic!("seq is not an int64: {other:?}"),
                },
                other => panic!("value is not a struct: {other:?}"),
            })
            .collect()
    }

    #[tokio::test]
    async fn resumes_after_the_committed_sequence_number() {
        let mut task = DatagenTask::default();
        let cfg = config(&[("topic", "t"), ("batch.size", "3")]);
        let mut offset = SourceOffset::new();
        offset.insert(SEQ.to_owned(), json!(41));
        let context = SourceTaskContext {
            offsets: vec![(partition("topic", "t"), offset)],
        };
        task.start(&cfg, context).await.expect("start");
        let batch = task.poll().await.expect("poll");
        assert_eq!(seqs(&batch), vec![42, 43, 44]);
        assert_eq!(batch[2].offset.get(SEQ), Some(&json!(44)));
    }

    #[tokio::test]
    async fn stops_at_max_records() {
        let mut task = DatagenTask::default();
        let cfg = config(&[("topic", "t"), ("max.records", "5"), ("batch.size", "4")]);
        task.start(&cfg, SourceTaskContext::default())
            .await
            .expect("start");
        let mut all = task.poll().await.expect("poll");
        all.extend(task.poll().await.expect("poll"));
        all.extend(task.poll().await.expect("poll"));
        assert_eq!(seqs(&all), vec![0, 1, 2, 3, 4]);
    }

    #[test]
    fn keys_cycle_through_the_cardinality() {
        let config = DatagenConfig {
            topic: "t".into(),
            rate_per_sec: 0.0,
            key_cardinality: 3,
            max_records: 0,
            payload_bytes: 4,
            batch_size: 1,
            extra_fields: vec!["x".into()],
            extra_fields_optional: false,
        };
        let value_schema = Arc::new(value_schema(&config));
        let state = State {
            config,
            partition: Arc::new(partition("topic", "t")),
            key_schema: Arc::new(key_schema()),
            value_schema,
            next_seq: 0,
            started: Instant::now(),
            emitted_since_start: 0,
        };
        let record = state.record(7, 0);
        assert_eq!(record.key, Some(Value::Struct(vec![Value::Int64(1)])));
        let Some(Value::Struct(values)) = record.value else {
            panic!("struct value expected")
        };
        assert_eq!(
            values.last(),
            Some(&Value::Int64(7)),
            "extra field holds seq"
        );
    }
}
