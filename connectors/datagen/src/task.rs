//! The datagen task: numbered records at a steady rate.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use serde_json::json;
use sluice_connector_api::offset::partition;
use sluice_connector_api::{
    logical, ConnectorConfig, ConnectorError, Field, Schema, SourceContext, SourceOffset,
    SourcePartition, SourceRecord, SourceTask, TaskProgress, TopicKind, Value,
};

use crate::config::DatagenConfig;

/// The offset key holding the last sequence number written.
const SEQ: &str = "seq";

/// A datagen task.
#[derive(Debug, Default)]
pub struct DatagenTask;

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
        SourceRecord {
            partition: Arc::clone(&self.partition),
            offset: SourceOffset::typed(Sequence(seq)),
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
                    Value::String(payload(seq, self.config.payload_bytes).into()),
                ]);
                values.extend(self.config.extra_fields.iter().map(|_| Value::Int64(seq)));
                values
            })),
            timestamp_ms: Some(ts_ms),
            headers: Vec::new(),
            topic_kind: TopicKind::Data,
        }
    }
}

impl State {
    /// The state for `config`, resuming after the stored sequence number.
    fn resume(config: DatagenConfig, context: &SourceContext) -> Self {
        let partition = partition("topic", config.topic.as_str());
        let next_seq = context
            .offset(&partition)
            .and_then(stored_seq)
            .map_or(0, |last| last + 1);
        let value_schema = Arc::new(value_schema(&config));
        State {
            config,
            partition: Arc::new(partition),
            key_schema: Arc::new(key_schema()),
            value_schema,
            next_seq,
            started: Instant::now(),
            emitted_since_start: 0,
        }
    }

    /// The next batch the rate allows, or how long to wait for one;
    /// `None` once `max.records` are written.
    fn next_batch(&mut self) -> Option<Result<Vec<SourceRecord>, Duration>> {
        if self.remaining() == Some(0) {
            return None;
        }
        let (mut count, wait) = self.allowance();
        if count == 0 {
            return Some(Err(wait));
        }
        if let Some(left) = self.remaining() {
            count = count.min(left as usize);
        }
        let ts_ms = now_ms();
        let first = self.next_seq;
        let records = (first..first + count as i64)
            .map(|seq| self.record(seq, ts_ms))
            .collect();
        self.next_seq += count as i64;
        self.emitted_since_start += count as u64;
        Some(Ok(records))
    }
}

#[async_trait]
impl SourceTask for DatagenTask {
    async fn run(
        &mut self,
        config: &ConnectorConfig,
        context: SourceContext,
    ) -> Result<(), ConnectorError> {
        let mut state = State::resume(DatagenConfig::parse(config)?, &context);
        let next_seq = Arc::new(AtomicI64::new(state.next_seq));
        context.report_progress({
            let next_seq = Arc::clone(&next_seq);
            Arc::new(move || TaskProgress {
                positions: vec![("next_seq", json!(next_seq.load(Ordering::Relaxed)))],
                ..TaskProgress::default()
            })
        });
        let emitter = context.emitter();
        let mut shutdown = context.shutdown();
        while !shutdown.requested() {
            match state.next_batch() {
                // Done: idle until stopped, like a finished Connect task.
                None => shutdown.wait().await,
                Some(Err(wait)) => {
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        _ = shutdown.wait() => {}
                    }
                }
                Some(Ok(records)) => {
                    tokio::select! {
                        sent = emitter.emit(records) => sent?,
                        _ = shutdown.wait() => {}
                    }
                    next_seq.store(state.next_seq, Ordering::Relaxed);
                }
            }
        }
        Ok(())
    }
}

/// A record's sequence number, as its offset `{"seq": n}`.
#[derive(Debug)]
struct Sequence(i64);

impl sluice_connector_api::offset::Position for Sequence {
    fn to_json(&self) -> serde_json::Map<String, serde_json::Value> {
        sluice_connector_api::offset::partition(SEQ, self.0)
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

    /// Runs a task on `cfg` from `offsets` and collects what it emits
    /// until `enough` records arrived, then stops it.
    /// The next batch; datagen stores no checkpoints.
    async fn next_batch(end: &mut sluice_connector_api::RuntimeEnd) -> Option<Vec<SourceRecord>> {
        match end.records.recv().await? {
            sluice_connector_api::Emitted::Records(batch) => Some(batch),
            sluice_connector_api::Emitted::Checkpoint(c) => panic!("a checkpoint: {c:?}"),
        }
    }

    async fn emitted(
        cfg: ConnectorConfig,
        offsets: Vec<(SourcePartition, SourceOffset)>,
        enough: usize,
    ) -> Vec<SourceRecord> {
        let (context, mut end) = sluice_connector_api::source_context(offsets, 4);
        let task = tokio::spawn(async move { DatagenTask.run(&cfg, context).await });
        let mut all = Vec::new();
        while all.len() < enough {
            match next_batch(&mut end).await {
                Some(batch) => all.extend(batch),
                None => break,
            }
        }
        end.request_shutdown();
        while end.records.recv().await.is_some() {}
        task.await.expect("joined").expect("ran");
        all
    }

    #[tokio::test]
    async fn resumes_after_the_committed_sequence_number() {
        let cfg = config(&[("topic", "t"), ("batch.size", "3")]);
        let mut offset = SourceOffset::new();
        offset.insert(SEQ.to_owned(), json!(41));
        let batch = emitted(cfg, vec![(partition("topic", "t"), offset)], 3).await;
        assert_eq!(seqs(&batch[..3]), vec![42, 43, 44]);
        assert_eq!(batch[2].offset.get(SEQ), Some(&json!(44)));
    }

    #[tokio::test]
    async fn stops_at_max_records() {
        let cfg = config(&[("topic", "t"), ("max.records", "5"), ("batch.size", "4")]);
        let (context, mut end) = sluice_connector_api::source_context(Vec::new(), 4);
        let task = tokio::spawn(async move { DatagenTask.run(&cfg, context).await });
        let mut all = next_batch(&mut end).await.expect("first batch");
        all.extend(next_batch(&mut end).await.expect("second batch"));
        assert_eq!(seqs(&all), vec![0, 1, 2, 3, 4]);
        // Nothing more, and the task idles until it is stopped.
        let more = tokio::time::timeout(Duration::from_millis(300), end.records.recv()).await;
        assert!(more.is_err(), "nothing after max.records");
        assert_eq!(
            end.progress().map(|p| p.positions),
            Some(vec![("next_seq", json!(5))])
        );
        end.request_shutdown();
        task.await.expect("joined").expect("ran");
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
