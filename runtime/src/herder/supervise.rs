//! Keeping one task alive: run it, and after a failure either restart it
//! with exponential backoff (retriable) or park it FAILED with the fix
//! (fatal) until the operator restarts it. Shared by source and sink tasks.

use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sluice_connector_api::ConnectorError;
use tokio::sync::watch;

use super::source_runner::Control;
use super::status::TaskStatus;
use super::RunnerDeps;

/// Runs `attempt` until it returns `Ok` or the herder says stop.
pub async fn supervise<F, Fut>(
    connector: &str,
    task_id: u32,
    deps: &Arc<RunnerDeps>,
    control: watch::Receiver<Control>,
    mut attempt: F,
) where
    F: FnMut(watch::Receiver<Control>) -> Fut,
    Fut: Future<Output = Result<(), ConnectorError>>,
{
    let metrics = deps.metrics.task(connector, task_id);
    let mut failures: u32 = 0;
    loop {
        if control.borrow().is_stop() {
            return;
        }
        let started = Instant::now();
        let error = match attempt(control.clone()).await {
            Ok(()) => return,
            Err(e) => e,
        };
        metrics.errors.fetch_add(1, Ordering::Relaxed);
        if started.elapsed() > Duration::from_secs(60) {
            failures = 0;
        }
        let retriable = error.is_retriable();
        let backoff = Duration::from_secs(1u64 << failures.min(6)).min(Duration::from_secs(60));
        let trace = if retriable {
            format!(
                "{error}\n(retriable: the task restarts in {}s)",
                backoff.as_secs()
            )
        } else {
            format!("{error}\n(the task stays FAILED until it is restarted: POST /connectors/{connector}/tasks/{task_id}/restart)")
        };
        tracing::error!(connector = %connector, task = task_id, retriable, error = %error, "task failed");
        let status = TaskStatus::failed(&deps.worker_id, trace);
        deps.metrics.set_state(connector, task_id, status.state);
        deps.status.put_task(connector, task_id, status);
        let mut watching = control.clone();
        let wait_for_stop = watching.wait_for(|c| c.is_stop());
        if retriable {
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
