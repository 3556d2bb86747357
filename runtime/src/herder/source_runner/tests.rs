//! The durability core without a broker: a counting source task, the
//! in-memory record sink with scripted acknowledgements, a real offset
//! store in a temp dir.

use std::collections::BTreeMap;

use async_trait::async_trait;
use serde_json::json;
use sluice_connector_api::{
    ConfigDef, PluginInfo, PluginKind, SourceContext, SourceOffset, SourcePartition, SourceRecord,
    TaskProgress, TopicKind,
};

use super::pipeline::progress_json;
use super::*;
use crate::herder::record_sink::memory::{Answer, MemorySink};
use crate::herder::{Placement, Unit};
use crate::kafka::TopicCreator;
use crate::store::{MemoryStatusStore, OffsetStore, StateDirOffsetStore, StoreError};
use std::sync::atomic::{AtomicU64, Ordering};

/// Emits records `n` = stored + 1 ..= `count` (config key), three per
/// batch, each with offset `{"n": n}`; panics at `panic.at` if set; stores
/// a checkpoint `{"n": n}` (no record) after the batch holding
/// `checkpoint.after`, and goes on only once it is stored. Record
/// `other.at` goes to topic `others` instead of `numbers`.
struct Counter;

struct CounterTask;

fn counter_partition() -> SourcePartition {
    sluice_connector_api::offset::partition("counter", "c")
}

#[async_trait]
impl SourceConnector for Counter {
    fn info(&self) -> PluginInfo {
        PluginInfo {
            class: "counter",
            aliases: &[],
            kind: PluginKind::Source,
            version: "0",
        }
    }

    fn config_def(&self) -> ConfigDef {
        ConfigDef::new()
    }

    fn task_configs(
        &self,
        config: &ConnectorConfig,
        _: usize,
    ) -> Result<Vec<ConnectorConfig>, ConnectorError> {
        Ok(vec![config.clone()])
    }

    fn create_task(&self) -> Box<dyn SourceTask> {
        Box::new(CounterTask)
    }
}

#[async_trait]
impl SourceTask for CounterTask {
    async fn run(
        &mut self,
        config: &ConnectorConfig,
        context: SourceContext,
    ) -> Result<(), ConnectorError> {
        let count = config.i64_or("count", 0)? as u64;
        let panic_at = config.i64_or("panic.at", -1)?;
        let checkpoint_after = config.i64_or("checkpoint.after", -1)?;
        let other_at = config.i64_or("other.at", -1)?;
        let partition = Arc::new(counter_partition());
        let first = context
            .offset(&partition)
            .and_then(|o| o.get("n")?.as_u64())
            .map_or(1, |n| n + 1);
        let emitter = context.emitter();
        let numbers: Vec<u64> = (first..=count).collect();
        for chunk in numbers.chunks(3) {
            if chunk.iter().any(|n| *n as i64 == panic_at) {
                panic!("a malformed frame");
            }
            let batch = chunk
                .iter()
                .map(|n| SourceRecord {
                    partition: Arc::clone(&partition),
                    offset: sluice_connector_api::offset::partition("n", *n).into(),
                    topic: if *n as i64 == other_at {
                        "others"
                    } else {
                        "numbers"
                    }
                    .into(),
                    kafka_partition: None,
                    key_schema: None,
                    key: None,
                    value_schema: None,
                    value: Some(sluice_connector_api::Value::Int64(*n as i64)),
                    timestamp_ms: None,
                    headers: Vec::new(),
                    topic_kind: TopicKind::Data,
                })
                .collect();
            emitter.emit(batch).await?;
            if chunk.iter().any(|n| *n as i64 == checkpoint_after) {
                let last = chunk.last().copied().unwrap_or_default();
                emitter
                    .checkpoint(
                        Arc::clone(&partition),
                        sluice_connector_api::offset::partition("n", last).into(),
                    )
                    .await?;
            }
        }
        context.shutdown().wait().await;
        Ok(())
    }
}

struct Harness {
    deps: Arc<RunnerDeps>,
    _state: tempfile::TempDir,
}

impl Harness {
    fn new(flush: Duration) -> Self {
        let state = tempfile::tempdir().expect("temp dir");
        // Clients for an address nothing listens on: the memory sink
        // stands in for them.
        let producer = rdkafka::ClientConfig::new()
            .set("bootstrap.servers", "127.0.0.1:9")
            .create_with_context(crate::kafka::delivery::DeliveryContext::default())
            .expect("producer");
        let kafka = crate::kafka::KafkaSettings::plain("127.0.0.1:9");
        let deps = Arc::new(RunnerDeps {
            providers: crate::secrets::Providers::default(),
            override_policy: Default::default(),
            producer,
            topics: TopicCreator::new(&kafka).expect("admin"),
            kafka,
            placement: Arc::new(super::super::Everything),
            offsets: Arc::new(StateDirOffsetStore::new(state.path())),
            status: Arc::new(MemoryStatusStore::default()),
            metrics: Arc::default(),
            worker_id: "test:0".into(),
            offset_flush_interval: flush,
            max_in_flight: 4,
            shutdown_timeout: Duration::from_millis(500),
            converter_defaults: BTreeMap::from([(
                "value.converter.schemas.enable".into(),
                "false".into(),
            )]),
            topic_layout: TopicLayout::data(1, 1),
            active_topics: Default::default(),
            exactly_once: None,
        });
        Self {
            deps,
            _state: state,
        }
    }

    fn spec(&self, config: &[(&str, &str)]) -> SourceTaskSpec {
        SourceTaskSpec {
            connector: "counter".into(),
            task_id: 0,
            config: config.iter().copied().collect(),
            plugin: Arc::new(Counter),
        }
    }

    /// The stored `n`, if any.
    fn stored(&self) -> Option<u64> {
        let stored: Vec<(SourcePartition, SourceOffset)> =
            self.deps.offsets.get("counter").expect("offsets");
        stored
            .iter()
            .find(|(p, _)| *p == counter_partition())
            .and_then(|(_, o)| o.get("n")?.as_u64())
    }

    /// Runs the task into `sink` until `until` holds for what was
    /// sent, then asks it to stop; the run's result.
    async fn run(
        &self,
        config: &[(&str, &str)],
        sink: &MemorySink,
        until: impl Fn(&[String]) -> bool,
    ) -> Result<(), ConnectorError> {
        let spec = self.spec(config);
        let metrics = self.deps.metrics.task("counter", 0);
        let (stop, mut control) = watch::channel(Control::Run);
        let run = run_once_into(&spec, &self.deps, &metrics, &mut control, sink);
        tokio::pin!(run);
        loop {
            tokio::select! {
                result = &mut run => return result,
                () = tokio::time::sleep(Duration::from_millis(10)) => {
                    if until(&sink.values()) {
                        stop.send_replace(Control::Stop);
                    }
                }
            }
        }
    }
}

fn numbers(values: &[String]) -> Vec<u64> {
    values.iter().filter_map(|v| v.parse().ok()).collect()
}

#[tokio::test]
async fn records_a_transform_drops_still_move_the_offset() {
    let harness = Harness::new(Duration::from_millis(10));
    let sink = MemorySink::default();
    let config = [
        ("count", "10"),
        ("transforms", "dropAll"),
        (
            "transforms.dropAll.type",
            "org.apache.kafka.connect.transforms.Filter",
        ),
        ("transforms.dropAll.predicate", "isNumbers"),
        ("predicates", "isNumbers"),
        ("predicates.isNumbers.type", "TopicNameMatches"),
        ("predicates.isNumbers.pattern", "num.*"),
    ];
    harness
        .run(&config, &sink, |_| harness.stored() == Some(10))
        .await
        .expect("clean run");
    assert!(sink.values().is_empty(), "{:?}", sink.values());
    assert_eq!(harness.stored(), Some(10));
}

#[tokio::test]
async fn a_transform_failure_fails_the_task_naming_the_record_unless_tolerated() {
    let harness = Harness::new(Duration::from_millis(10));
    let failing = [
        ("count", "5"),
        ("transforms", "pick"),
        ("transforms.pick.type", "ExtractField$Value"),
        ("transforms.pick.field", "id"),
    ];
    let error = harness
        .run(&failing, &MemorySink::default(), |_| false)
        .await
        .expect_err("a plain number has no field id");
    assert!(!error.is_retriable(), "{error}");
    let text = error.to_string();
    assert!(text.contains("numbers") && text.contains("pick"), "{text}");
    assert_eq!(
        harness.stored(),
        None,
        "nothing moves past the failed record"
    );
    let mut tolerated = failing.to_vec();
    tolerated.push(("errors.tolerance", "all"));
    let sink = MemorySink::default();
    harness
        .run(&tolerated, &sink, |_| harness.stored() == Some(5))
        .await
        .expect("skipped, not failed");
    assert!(sink.values().is_empty());
}

/// Records are converted on a task of their own, ahead of the loop that
/// sends them: one that fails in the middle of a batch still fails the
/// run in its turn, after the records before it are sent and stored, and
/// nothing converted after it is sent.
#[tokio::test]
async fn a_record_failing_mid_batch_fails_the_run_after_those_before_it() {
    let harness = Harness::new(Duration::from_millis(10));
    // Only record 5 (the middle of the batch 4, 5, 6) meets the transform.
    let config = [
        ("count", "9"),
        ("other.at", "5"),
        ("transforms", "pick"),
        ("transforms.pick.type", "ExtractField$Value"),
        ("transforms.pick.field", "id"),
        ("transforms.pick.predicate", "isOther"),
        ("predicates", "isOther"),
        ("predicates.isOther.type", "TopicNameMatches"),
        ("predicates.isOther.pattern", "others"),
    ];
    let sink = MemorySink::default();
    let error = harness
        .run(&config, &sink, |_| false)
        .await
        .expect_err("record 5 has no field id");
    assert!(error.to_string().contains("others"), "{error}");
    assert_eq!(numbers(&sink.values()), vec![1, 2, 3, 4]);
    assert_eq!(harness.stored(), Some(4), "the offset stops before 5");
}

#[tokio::test]
async fn a_failed_delivery_in_the_middle_stores_only_what_precedes_it() {
    let harness = Harness::new(Duration::from_secs(3600));
    let sink = MemorySink::scripted(|i| if i == 4 { Answer::Fail } else { Answer::Ack });
    let result = harness.run(&[("count", "10")], &sink, |_| false).await;
    let error = result.expect_err("the failed delivery fails the run");
    assert!(error.is_retriable(), "{error}");
    assert!(error.to_string().contains("did not acknowledge"), "{error}");
    // Records 1..=4 were acknowledged; 5 failed: nothing after 4 moves.
    assert_eq!(harness.stored(), Some(4));
    // The restart sends 5 again, and everything after it.
    let again = MemorySink::default();
    harness
        .run(&[("count", "10")], &again, |v| numbers(v).contains(&10))
        .await
        .expect("clean run");
    assert_eq!(numbers(&again.values()), (5..=10).collect::<Vec<_>>());
    assert_eq!(harness.stored(), Some(10));
}

/// A checkpoint is stored, after the records before it, before the task
/// goes on, however far off the next periodic flush is.
#[tokio::test]
async fn a_checkpoint_is_stored_before_the_task_goes_on() {
    let harness = Harness::new(Duration::from_secs(3600));
    let sink = MemorySink::default();
    let stored_when_4_was_sent = std::sync::Mutex::new(None);
    harness
        .run(&[("count", "6"), ("checkpoint.after", "2")], &sink, |v| {
            let sent_4 = numbers(v).contains(&4);
            if sent_4 {
                stored_when_4_was_sent
                    .lock()
                    .expect("lock")
                    .get_or_insert(harness.stored());
            }
            sent_4
        })
        .await
        .expect("clean run");
    assert_eq!(
        *stored_when_4_was_sent.lock().expect("lock"),
        Some(Some(3)),
        "the checkpoint after [1 2 3] was stored before 4 was sent"
    );
    // A record before the checkpoint that fails keeps it from being
    // stored, and the task does not go on.
    let harness = Harness::new(Duration::from_secs(3600));
    let failing = MemorySink::scripted(|i| if i == 1 { Answer::Fail } else { Answer::Ack });
    let error = harness
        .run(
            &[("count", "6"), ("checkpoint.after", "2")],
            &failing,
            |_| false,
        )
        .await
        .expect_err("the failed delivery fails the run");
    assert!(error.to_string().contains("did not acknowledge"), "{error}");
    assert_eq!(harness.stored(), Some(1));
    assert!(!numbers(&failing.values()).contains(&4), "went on");
}

#[tokio::test]
async fn a_crash_between_ack_and_store_repeats_and_never_skips() {
    // Offsets are stored only at stop: the crash comes first.
    let harness = Harness::new(Duration::from_secs(3600));
    let sink = MemorySink::default();
    let crashed = tokio::time::timeout(
        Duration::from_millis(300),
        harness.run(&[("count", "9")], &sink, |_| false),
    )
    .await;
    assert!(crashed.is_err(), "the run was cut short, like kill -9");
    assert_eq!(numbers(&sink.values()), (1..=9).collect::<Vec<_>>());
    assert_eq!(
        harness.stored(),
        None,
        "nothing was stored before the crash"
    );
    // Restart: everything is sent again (repeated, not skipped).
    let again = MemorySink::default();
    harness
        .run(&[("count", "9")], &again, |v| numbers(v).contains(&9))
        .await
        .expect("clean run");
    assert_eq!(numbers(&again.values()), (1..=9).collect::<Vec<_>>());
    assert_eq!(harness.stored(), Some(9));
    // And a later run resumes after the stored offset.
    let later = MemorySink::default();
    harness
        .run(&[("count", "12")], &later, |v| numbers(v).contains(&12))
        .await
        .expect("clean run");
    assert_eq!(numbers(&later.values()), vec![10, 11, 12]);
}

/// Exactly once: what a `read_committed` consumer sees over two runs,
/// the first cut short by a failed delivery, is every record once.
#[tokio::test]
async fn with_transactions_a_failed_delivery_hides_its_batch_and_the_restart_shows_it_once() {
    let harness = Harness::new(Duration::from_secs(3600));
    let store = Arc::clone(&harness.deps.offsets);
    // Batches are [1 2 3] [4 5 6] [7 8 9] [10]; record 5 fails.
    let first = MemorySink::transactional(Arc::clone(&store), |i| {
        if i == 4 {
            Answer::Fail
        } else {
            Answer::Ack
        }
    });
    let error = harness
        .run(&[("count", "10")], &first, |_| false)
        .await
        .expect_err("the failed delivery fails the run");
    assert!(error.is_retriable(), "{error}");
    assert!(numbers(&first.values()).contains(&4), "4 was sent");
    assert_eq!(
        numbers(&first.visible()),
        vec![1, 2, 3],
        "4 and 6 aborted with 5"
    );
    assert_eq!(harness.stored(), Some(3));
    let again = MemorySink::transactional(Arc::clone(&store), |_| Answer::Ack);
    harness
        .run(&[("count", "10")], &again, |_| harness.stored() == Some(10))
        .await
        .expect("clean run");
    let mut seen = numbers(&first.visible());
    seen.extend(numbers(&again.visible()));
    assert_eq!(seen, (1..=10).collect::<Vec<_>>(), "each record once");
    assert_eq!(
        again.commits.load(Ordering::Relaxed),
        3,
        "a transaction per batch"
    );
}

/// A crash with a transaction open (its last record never
/// acknowledged) repeats that batch on the wire, yet a
/// `read_committed` consumer sees each record once.
#[tokio::test]
async fn with_transactions_a_crash_mid_batch_repeats_nothing_a_reader_sees() {
    let harness = Harness::new(Duration::from_secs(3600));
    let store = Arc::clone(&harness.deps.offsets);
    let first = MemorySink::transactional(Arc::clone(&store), |i| {
        if i == 7 {
            Answer::Hang
        } else {
            Answer::Ack
        }
    });
    let crashed = tokio::time::timeout(
        Duration::from_millis(300),
        harness.run(&[("count", "9")], &first, |_| false),
    )
    .await;
    assert!(crashed.is_err(), "the run was cut short, like kill -9");
    assert_eq!(numbers(&first.values()), (1..=9).collect::<Vec<_>>());
    assert_eq!(numbers(&first.visible()), (1..=6).collect::<Vec<_>>());
    assert_eq!(harness.stored(), Some(6));
    let again = MemorySink::transactional(Arc::clone(&store), |_| Answer::Ack);
    harness
        .run(&[("count", "9")], &again, |_| harness.stored() == Some(9))
        .await
        .expect("clean run");
    assert_eq!(
        numbers(&again.values()),
        vec![7, 8, 9],
        "sent twice on the wire"
    );
    let mut seen = numbers(&first.visible());
    seen.extend(numbers(&again.visible()));
    assert_eq!(seen, (1..=9).collect::<Vec<_>>(), "seen once");
}

/// `transaction.boundary=interval` spans batches: with a long interval
/// the one transaction commits when the task stops.
#[tokio::test]
async fn with_an_interval_boundary_one_transaction_spans_the_batches() {
    let harness = Harness::new(Duration::from_secs(3600));
    let sink = MemorySink::transactional(Arc::clone(&harness.deps.offsets), |_| Answer::Ack);
    let config = [
        ("count", "10"),
        ("transaction.boundary", "interval"),
        ("transaction.boundary.interval.ms", "3600000"),
    ];
    harness
        .run(&config, &sink, |v| numbers(v).contains(&10))
        .await
        .expect("clean run");
    assert_eq!(sink.commits.load(Ordering::Relaxed), 1);
    assert_eq!(numbers(&sink.visible()), (1..=10).collect::<Vec<_>>());
    assert_eq!(harness.stored(), Some(10));
}

#[tokio::test]
async fn a_broker_that_never_answers_stores_nothing_unacknowledged() {
    let harness = Harness::new(Duration::from_millis(20));
    // 1..=3 acknowledged, then silence.
    let sink = MemorySink::scripted(|i| if i < 3 { Answer::Ack } else { Answer::Hang });
    harness
        .run(&[("count", "6")], &sink, |v| v.len() >= 4)
        .await
        .expect("a stop that times out on the broker is still a stop");
    assert_eq!(harness.stored(), Some(3));
}

/// A share of a group that the test takes away.
struct Share(std::sync::atomic::AtomicBool);

impl Placement for Share {
    fn owns(&self, _: Unit<'_>) -> bool {
        self.0.load(Ordering::SeqCst)
    }

    fn shared(&self) -> bool {
        true
    }
}

/// An offset store on a broker this worker is cut off from: every
/// store hangs (until the test ends), as a Kafka store waits out its
/// timeout; `entered` counts the stores begun.
struct CutOffStore {
    entered: AtomicU64,
    released: std::sync::atomic::AtomicBool,
}

impl OffsetStore for CutOffStore {
    fn get(&self, _: &str) -> Result<Vec<(SourcePartition, SourceOffset)>, StoreError> {
        Ok(Vec::new())
    }

    fn put(
        &self,
        _: &str,
        _: &[(SourcePartition, Option<SourceOffset>)],
    ) -> Result<(), StoreError> {
        self.entered.fetch_add(1, Ordering::SeqCst);
        while !self.released.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(20));
        }
        Err(StoreError::Io {
            action: "writing",
            path: "the offset topic".into(),
            source: std::io::Error::other("cut off"),
        })
    }

    fn clear(&self, _: &str) -> Result<(), StoreError> {
        Ok(())
    }
}

/// CI caught a task still running on a worker cut off from the
/// broker: its periodic offset store noticed the lost lease but took
/// it for a failing store and carried on, and its next store then
/// waited for the broker with the lease no longer checked. A fenced
/// periodic store must end the task.
#[tokio::test]
async fn a_lease_lost_during_a_periodic_store_ends_the_task() {
    let mut harness = Harness::new(Duration::from_millis(20));
    let share = Arc::new(Share(true.into()));
    let store = Arc::new(CutOffStore {
        entered: AtomicU64::new(0),
        released: false.into(),
    });
    let deps = Arc::get_mut(&mut harness.deps).expect("deps not shared yet");
    deps.placement = share.clone();
    deps.offsets = store.clone();
    let sink = MemorySink::default();
    let run = harness.run(&[("count", "3")], &sink, |_| false);
    tokio::pin!(run);
    let result = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            tokio::select! {
                result = &mut run => return result,
                () = tokio::time::sleep(Duration::from_millis(10)) => {
                    if store.entered.load(Ordering::SeqCst) > 0 {
                        // The link goes while the store waits.
                        share.0.store(false, Ordering::SeqCst);
                    }
                }
            }
        }
    })
    .await;
    store.released.store(true, Ordering::SeqCst);
    let error = result
        .expect("the task ends instead of waiting on the broker")
        .expect_err("a fenced task fails");
    assert!(error.to_string().contains("lost its lease"), "{error}");
}

#[tokio::test]
async fn a_task_that_panics_fails_retriably_instead_of_going_silent() {
    let harness = Harness::new(Duration::from_millis(20));
    let sink = MemorySink::default();
    let result = harness
        .run(&[("count", "9"), ("panic.at", "5")], &sink, |_| false)
        .await;
    let error = result.expect_err("a panic ends the run");
    assert!(error.is_retriable(), "{error}");
    assert!(error.to_string().contains("panicked"), "{error}");
    // What came before the panic is durable; nothing after it.
    assert_eq!(harness.stored(), Some(3));
}

/// Issue 19, finding 7: a fatal producer error (librdkafka never
/// recovers from one) is known to the worker, which reports it on
/// `/health` and in the task's failure instead of retrying forever.
#[test]
fn a_fatal_producer_error_is_known() {
    let harness = Harness::new(Duration::from_secs(1));
    assert_eq!(harness.deps.producer_fatal_error(), None);
    let reason = std::ffi::CString::new("test: sequence broken").expect("c string");
    // SAFETY: librdkafka's test hook on a live producer handle of ours.
    unsafe {
        rdkafka::bindings::rd_kafka_test_fatal_error(
            rdkafka::producer::Producer::client(&harness.deps.producer).native_ptr(),
            rdkafka::bindings::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER,
            reason.as_ptr(),
        );
    }
    let fatal = harness
        .deps
        .producer_fatal_error()
        .expect("fatal error seen");
    assert!(fatal.contains("sequence broken"), "{fatal}");
}

#[test]
fn progress_keeps_the_status_shape() {
    let progress = TaskProgress {
        phase: Some("snapshot"),
        snapshot: vec![sluice_connector_api::TableProgress {
            table: "s.t".into(),
            rows: 5,
            estimated_rows: 10,
        }],
        positions: vec![("lsn", json!("0/16B3748"))],
    };
    assert_eq!(
        progress_json(&progress),
        json!({"phase": "snapshot", "snapshot": {"s.t": {"rows": 5, "estimated_rows": 10}}, "lsn": "0/16B3748"})
    );
    let datagen = TaskProgress {
        positions: vec![("next_seq", json!(7))],
        ..TaskProgress::default()
    };
    assert_eq!(progress_json(&datagen), json!({"next_seq": 7}));
}
