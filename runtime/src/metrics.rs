//! Worker metrics in Prometheus text format, served at `GET /metrics`.
//!
//! Counters are atomics owned by each task's runner; rendering walks them
//! under a lock that is only taken to add or remove a task.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::herder::status::State;

/// Counters of one task.
#[derive(Debug, Default)]
pub struct TaskMetrics {
    /// Records returned by the connector's poll.
    pub records_polled: AtomicU64,
    /// Records acknowledged by the broker.
    pub records_produced: AtomicU64,
    /// Bytes (key + value) acknowledged by the broker.
    pub bytes_produced: AtomicU64,
    /// Records skipped under `errors.tolerance=all`, and task failures.
    pub errors: AtomicU64,
    /// Records sent and not yet acknowledged.
    pub in_flight: AtomicI64,
    /// Records acknowledged whose offsets are not stored yet.
    pub uncommitted: AtomicI64,
    /// Offset commits done.
    pub offset_commits: AtomicU64,
    /// Unix time of the last offset commit, in milliseconds.
    pub last_commit_ms: AtomicI64,
    /// Snapshot progress per table: (table, rows read, estimated rows).
    pub snapshot: Mutex<Vec<(String, u64, i64)>>,
    /// Source: nanoseconds the task spent handing records over, nearly
    /// all of it waiting for the runtime to take them (the source's
    /// context adds to it directly).
    pub emit_nanos: Arc<AtomicU64>,
    /// Source: nanoseconds the producing loop waited for the broker (its
    /// queue full, or the most records in flight).
    pub broker_wait_nanos: AtomicU64,
    /// Sink: nanoseconds spent applying batches to the target.
    pub put_nanos: AtomicU64,
    /// Sink: batches applied to the target.
    pub puts: AtomicU64,
    /// Sink: nanoseconds spent between batches waiting for the next one to
    /// be read and decoded.
    pub next_batch_wait_nanos: AtomicU64,
}

/// Adds the time since `start` to `nanos`.
pub fn add_elapsed(nanos: &AtomicU64, start: std::time::Instant) {
    let elapsed = u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
    nanos.fetch_add(elapsed, Ordering::Relaxed);
}

/// `nanos` as seconds, for a `_seconds_total` series.
fn seconds(nanos: &AtomicU64) -> f64 {
    nanos.load(Ordering::Relaxed) as f64 / 1e9
}

impl TaskMetrics {
    /// Takes the snapshot progress out of a task's progress report (the
    /// `"snapshot": {"<table>": {"rows", "estimated_rows"}}` convention).
    pub fn record_progress(&self, progress: Option<&serde_json::Value>) {
        let Some(tables) = progress
            .and_then(|p| p.get("snapshot"))
            .and_then(serde_json::Value::as_object)
        else {
            return;
        };
        let rows = tables
            .iter()
            .map(|(table, p)| {
                (
                    table.clone(),
                    p.get("rows")
                        .and_then(serde_json::Value::as_u64)
                        .unwrap_or(0),
                    p.get("estimated_rows")
                        .and_then(serde_json::Value::as_i64)
                        .unwrap_or(0),
                )
            })
            .collect();
        *self.snapshot.lock().unwrap_or_else(|e| e.into_inner()) = rows;
    }
}

type TaskKey = (String, u32);

/// All tasks' counters and states.
#[derive(Debug, Default)]
pub struct Metrics {
    tasks: Mutex<BTreeMap<TaskKey, Arc<TaskMetrics>>>,
    states: Mutex<BTreeMap<TaskKey, State>>,
}

impl Metrics {
    /// The counters of a task, created on first use.
    pub fn task(&self, connector: &str, task: u32) -> Arc<TaskMetrics> {
        let mut tasks = self.tasks.lock().unwrap_or_else(|e| e.into_inner());
        Arc::clone(tasks.entry((connector.to_owned(), task)).or_default())
    }

    /// Records a task's state.
    pub fn set_state(&self, connector: &str, task: u32, state: State) {
        let mut states = self.states.lock().unwrap_or_else(|e| e.into_inner());
        states.insert((connector.to_owned(), task), state);
    }

    /// Forgets every task of `connector`.
    pub fn remove_connector(&self, connector: &str) {
        self.tasks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|(c, _), _| c != connector);
        self.states
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|(c, _), _| c != connector);
    }

    /// Everything in Prometheus text exposition format.
    pub fn render(&self) -> String {
        let tasks = self.tasks.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let states = self
            .states
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let mut out = String::new();
        type Getter = fn(&TaskMetrics) -> f64;
        let series: [(&str, &str, &str, Getter); 13] = [
            (
                "sluice_source_records_polled_total",
                "counter",
                "Records returned by source tasks.",
                |m| m.records_polled.load(Ordering::Relaxed) as f64,
            ),
            (
                "sluice_source_records_produced_total",
                "counter",
                "Records acknowledged by the broker.",
                |m| m.records_produced.load(Ordering::Relaxed) as f64,
            ),
            (
                "sluice_source_bytes_produced_total",
                "counter",
                "Key and value bytes acknowledged by the broker.",
                |m| m.bytes_produced.load(Ordering::Relaxed) as f64,
            ),
            (
                "sluice_task_errors_total",
                "counter",
                "Records skipped by errors.tolerance=all and task failures.",
                |m| m.errors.load(Ordering::Relaxed) as f64,
            ),
            (
                "sluice_source_records_in_flight",
                "gauge",
                "Records sent and not yet acknowledged.",
                |m| m.in_flight.load(Ordering::Relaxed) as f64,
            ),
            (
                "sluice_offset_commit_lag_records",
                "gauge",
                "Records acknowledged whose offsets are not yet stored.",
                |m| m.uncommitted.load(Ordering::Relaxed) as f64,
            ),
            (
                "sluice_offset_commits_total",
                "counter",
                "Offset commits.",
                |m| m.offset_commits.load(Ordering::Relaxed) as f64,
            ),
            (
                "sluice_offset_last_commit_timestamp_ms",
                "gauge",
                "Unix time of the last offset commit in ms.",
                |m| m.last_commit_ms.load(Ordering::Relaxed) as f64,
            ),
            (
                "sluice_source_emit_seconds_total",
                "counter",
                "Seconds source tasks spent handing records to the runtime, nearly all of it waiting for room: the share of its time a task was held back by conversion or the broker.",
                |m| seconds(&m.emit_nanos),
            ),
            (
                "sluice_source_broker_wait_seconds_total",
                "counter",
                "Seconds the runtime waited for the broker before sending more of a source task's records (the producer's queue full, or the most records in flight).",
                |m| seconds(&m.broker_wait_nanos),
            ),
            (
                "sluice_sink_put_seconds_total",
                "counter",
                "Seconds sink tasks spent applying batches to their target (Kafka Connect's put-batch time, summed).",
                |m| seconds(&m.put_nanos),
            ),
            (
                "sluice_sink_put_batches_total",
                "counter",
                "Batches sink tasks applied to their target.",
                |m| m.puts.load(Ordering::Relaxed) as f64,
            ),
            (
                "sluice_sink_next_batch_wait_seconds_total",
                "counter",
                "Seconds sink tasks waited between batches for the next one to be read from the broker and decoded.",
                |m| seconds(&m.next_batch_wait_nanos),
            ),
        ];
        for (name, kind, help, get) in series {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for ((connector, task), m) in &tasks {
                let _ = writeln!(
                    out,
                    "{name}{{connector=\"{}\",task=\"{task}\"}} {}",
                    escape(connector),
                    get(m)
                );
            }
        }
        for (name, help, estimated) in [
            (
                "sluice_snapshot_rows",
                "Rows read by the snapshot, per table.",
                false,
            ),
            (
                "sluice_snapshot_rows_estimated",
                "The database's row estimate per table (pg_class.reltuples).",
                true,
            ),
        ] {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
            for ((connector, task), m) in &tasks {
                for (table, rows, estimate) in
                    m.snapshot.lock().unwrap_or_else(|e| e.into_inner()).iter()
                {
                    let value = if estimated { *estimate } else { *rows as i64 };
                    let _ = writeln!(
                        out,
                        "{name}{{connector=\"{}\",task=\"{task}\",table=\"{}\"}} {value}",
                        escape(connector),
                        escape(table)
                    );
                }
            }
        }
        let name = "sluice_task_state";
        let _ = writeln!(
            out,
            "# HELP {name} 1 for the state each task is in.\n# TYPE {name} gauge"
        );
        for ((connector, task), current) in &states {
            for state in State::ALL {
                let _ = writeln!(
                    out,
                    "{name}{{connector=\"{}\",task=\"{task}\",state=\"{}\"}} {}",
                    escape(connector),
                    state.as_str(),
                    i32::from(*current == state)
                );
            }
        }
        out
    }
}

fn escape(label: &str) -> String {
    label
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_states_with_labels() {
        let metrics = Metrics::default();
        metrics
            .task("orders", 0)
            .records_produced
            .fetch_add(3, Ordering::Relaxed);
        metrics.set_state("orders", 0, State::Running);
        metrics
            .task("orders", 0)
            .record_progress(Some(&serde_json::json!({
                "snapshot": {"public.t": {"rows": 5, "estimated_rows": 9}}
            })));
        let text = metrics.render();
        assert!(text.contains(
            "sluice_snapshot_rows{connector=\"orders\",task=\"0\",table=\"public.t\"} 5"
        ));
        assert!(text.contains(
            "sluice_snapshot_rows_estimated{connector=\"orders\",task=\"0\",table=\"public.t\"} 9"
        ));
        assert!(text
            .contains("sluice_source_records_produced_total{connector=\"orders\",task=\"0\"} 3"));
        assert!(
            text.contains("sluice_task_state{connector=\"orders\",task=\"0\",state=\"RUNNING\"} 1")
        );
        assert!(
            text.contains("sluice_task_state{connector=\"orders\",task=\"0\",state=\"FAILED\"} 0")
        );
    }

    #[test]
    fn stage_times_are_rendered_in_seconds() {
        let metrics = Metrics::default();
        let task = metrics.task("sink", 1);
        task.put_nanos.fetch_add(2_500_000_000, Ordering::Relaxed);
        task.puts.fetch_add(4, Ordering::Relaxed);
        task.emit_nanos.fetch_add(1_000_000, Ordering::Relaxed);
        task.last_commit_ms
            .store(1_765_000_000_123, Ordering::Relaxed);
        let text = metrics.render();
        for line in [
            "sluice_sink_put_seconds_total{connector=\"sink\",task=\"1\"} 2.5",
            "sluice_sink_put_batches_total{connector=\"sink\",task=\"1\"} 4",
            "sluice_source_emit_seconds_total{connector=\"sink\",task=\"1\"} 0.001",
            "sluice_sink_next_batch_wait_seconds_total{connector=\"sink\",task=\"1\"} 0",
            // Whole numbers stay whole, however large.
            "sluice_offset_last_commit_timestamp_ms{connector=\"sink\",task=\"1\"} 1765000000123",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
        }
        let started = std::time::Instant::now();
        std::thread::sleep(std::time::Duration::from_millis(20));
        add_elapsed(&task.broker_wait_nanos, started);
        assert!(task.broker_wait_nanos.load(Ordering::Relaxed) >= 20_000_000);
    }
}
