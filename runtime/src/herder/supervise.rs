//! Keeping one task alive: run it, and after a failure either restart it
//! with exponential backoff (retriable) or park it FAILED with the fix
//! (fatal, or retriable past the retry limits) until the operator restarts
//! it. Shared by source and sink tasks.
//!
//! A task that had been working (it stored offsets, or ran a minute) and
//! hits a retriable error stays RUNNING while it retries, as a
//! Connect task does, with the error in its trace and in the worker log; a
//! task that never got going (the database unreachable at start, a bad
//! certificate) shows FAILED with the retriable trace while it retries, so
//! a wrong setting is visible at once.

use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sluice_connector_api::{ConfigError, ConnectorConfig, ConnectorError};
use tokio::sync::watch;

use super::source_runner::Control;
use super::status::{State, TaskStatus};
use super::RunnerDeps;

/// A run this long counts as healthy: the next failure starts a new series.
const HEALTHY_RUN: Duration = Duration::from_secs(60);

/// How retriable failures are retried: Connect's `errors.retry.timeout`
/// and `errors.retry.delay.max.ms`, Debezium's `errors.max.retries`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Consecutive retries before giving up (`None`: no limit).
    pub max_retries: Option<u32>,
    /// How long a series of retries may last (`None`: no limit).
    pub timeout: Option<Duration>,
    /// The longest wait between two attempts.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_retries: None,
            timeout: None,
            max_delay: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// The policy a connector config sets; unset keys keep retrying for
    /// ever (Debezium's `errors.max.retries=-1`), at most a minute apart.
    pub fn from_config(config: &ConnectorConfig) -> Result<Self, ConfigError> {
        let max_retries = config.i64_or("errors.max.retries", -1)?;
        let timeout = config.i64_or("errors.retry.timeout", -1)?;
        let max_delay = config.i64_or("errors.retry.delay.max.ms", 60_000)?;
        if max_delay < 1 {
            return Err(ConfigError::new(
                "errors.retry.delay.max.ms",
                "must be at least 1 (milliseconds)",
            ));
        }
        Ok(Self {
            max_retries: u32::try_from(max_retries).ok(),
            timeout: u64::try_from(timeout).ok().map(Duration::from_millis),
            max_delay: Duration::from_millis(max_delay as u64),
        })
    }

    /// The wait before retry number `failures` (0-based): doubling from
    /// one second, capped.
    fn backoff(&self, failures: u32) -> Duration {
        Duration::from_secs(1u64 << failures.min(16)).min(self.max_delay)
    }

    /// Why the series must stop retrying, if it must.
    fn exhausted(&self, failures: u32, series: Duration) -> Option<String> {
        if self.max_retries.is_some_and(|max| failures >= max) {
            return Some(format!(
                "gave up after {failures} retries (errors.max.retries)"
            ));
        }
        if self.timeout.is_some_and(|limit| series >= limit) {
            return Some(format!(
                "gave up after retrying for {} s (errors.retry.timeout)",
                series.as_secs()
            ));
        }
        None
    }
}

/// Runs `attempt` until it returns `Ok` or the herder says stop.
pub async fn supervise<F, Fut>(
    connector: &str,
    task_id: u32,
    deps: &Arc<RunnerDeps>,
    control: watch::Receiver<Control>,
    policy: RetryPolicy,
    mut attempt: F,
) where
    F: FnMut(watch::Receiver<Control>) -> Fut,
    Fut: Future<Output = Result<(), ConnectorError>>,
{
    let metrics = deps.metrics.task(connector, task_id);
    let mut failures: u32 = 0;
    let mut series_started = Instant::now();
    // Whether the task had been working when this series of failures began.
    let mut was_working = false;
    loop {
        if control.borrow().is_stop() {
            return;
        }
        let started = Instant::now();
        let commits_before = metrics.offset_commits.load(Ordering::Relaxed);
        let error = match attempt(control.clone()).await {
            Ok(()) => return,
            Err(e) => e,
        };
        metrics.errors.fetch_add(1, Ordering::Relaxed);
        // Durable progress (stored offsets), not records merely read: a
        // task that reads but cannot deliver was not working.
        let moved = metrics.offset_commits.load(Ordering::Relaxed) != commits_before;
        if moved || started.elapsed() > HEALTHY_RUN {
            failures = 0;
            series_started = started;
            was_working = true;
        } else if failures == 0 {
            was_working = false;
            series_started = started;
        }
        let retriable = error.is_retriable();
        let exhausted = policy.exhausted(failures, series_started.elapsed());
        let backoff = policy.backoff(failures);
        let status = match (&exhausted, retriable) {
            (None, true) => {
                let trace = format!(
                    "{error}\n(retriable: the task restarts in {} s, retry {})",
                    backoff.as_secs_f32(),
                    failures + 1
                );
                if was_working {
                    tracing::warn!(connector = %connector, task = task_id, error = %error, retry_in_ms = backoff.as_millis() as u64, "task failed and is retried; it stays RUNNING");
                    TaskStatus {
                        trace: Some(trace),
                        ..TaskStatus::new(State::Running, &deps.worker_id)
                    }
                } else {
                    tracing::error!(connector = %connector, task = task_id, retriable, error = %error, "task failed");
                    TaskStatus::failed(&deps.worker_id, trace)
                }
            }
            (Some(why), true) => {
                tracing::error!(connector = %connector, task = task_id, error = %error, "task failed: {why}");
                TaskStatus::failed(
                    &deps.worker_id,
                    format!("{error}\n({why}; the task stays FAILED until it is restarted: POST /connectors/{connector}/tasks/{task_id}/restart)"),
                )
            }
            (_, false) => {
                tracing::error!(connector = %connector, task = task_id, retriable, error = %error, "task failed");
                TaskStatus::failed(
                    &deps.worker_id,
                    format!("{error}\n(the task stays FAILED until it is restarted: POST /connectors/{connector}/tasks/{task_id}/restart)"),
                )
            }
        };
        deps.metrics.set_state(connector, task_id, status.state);
        deps.status.put_task(connector, task_id, status);
        let mut watching = control.clone();
        let wait_for_stop = watching.wait_for(|c| c.is_stop());
        if retriable && exhausted.is_none() {
            if tokio::time::timeout(backoff, wait_for_stop).await.is_ok() {
                return;
            }
            failures = failures.saturating_add(1);
        } else {
            let _ = wait_for_stop.await;
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unset_keys_retry_for_ever_at_most_a_minute_apart() {
        let policy = RetryPolicy::from_config(&ConnectorConfig::from_pairs(&[])).unwrap();
        assert_eq!(policy, RetryPolicy::default());
        assert_eq!(policy.backoff(0), Duration::from_secs(1));
        assert_eq!(policy.backoff(3), Duration::from_secs(8));
        assert_eq!(policy.backoff(30), Duration::from_secs(60));
        assert_eq!(policy.exhausted(1_000, Duration::from_secs(86_400)), None);
    }

    #[test]
    fn limits_stop_the_series_and_name_their_key() {
        let policy = RetryPolicy::from_config(&ConnectorConfig::from_pairs(&[
            ("errors.max.retries", "3"),
            ("errors.retry.timeout", "10000"),
            ("errors.retry.delay.max.ms", "2500"),
        ]))
        .unwrap();
        assert_eq!(policy.backoff(5), Duration::from_millis(2500));
        assert_eq!(policy.exhausted(2, Duration::from_secs(1)), None);
        assert!(policy
            .exhausted(3, Duration::from_secs(1))
            .is_some_and(|why| why.contains("errors.max.retries")));
        assert!(policy
            .exhausted(0, Duration::from_secs(11))
            .is_some_and(|why| why.contains("errors.retry.timeout")));
        // 0 retries: the first retriable failure is final.
        let none =
            RetryPolicy::from_config(&ConnectorConfig::from_pairs(&[("errors.max.retries", "0")]))
                .unwrap();
        assert!(none.exhausted(0, Duration::ZERO).is_some());
        let bad = RetryPolicy::from_config(&ConnectorConfig::from_pairs(&[(
            "errors.retry.delay.max.ms",
            "0",
        )]));
        assert_eq!(bad.unwrap_err().key, "errors.retry.delay.max.ms");
    }
}
