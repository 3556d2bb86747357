//! Storing offsets (or committing the open transaction with them) once
//! their records are acknowledged, then telling the task they are
//! durable; the periodic flush keeps a task running through a store that
//! refuses.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use sluice_connector_api::{ConnectorError, RuntimeEnd, SourceOffset, SourcePartition};

use super::{Pipeline, FENCED, FENCE_CHECK};
use crate::herder::record_sink::{RecordSink, TransactionError, Transactions};
use crate::herder::status::State;

impl<'a, S: RecordSink> Pipeline<'a, S> {
    /// The flush every `offset.flush.interval.ms`. A store that refuses
    /// (a full disk) does not stop the task, as in Connect: the offsets
    /// wait for the next flush, nothing past the stored ones is confirmed
    /// to the database, and the status trace says why. A transaction that
    /// does not commit fails the task: its records were aborted; so does a
    /// lease lost while storing.
    pub(super) async fn periodic_commit(&mut self, end: &RuntimeEnd) -> Result<(), ConnectorError> {
        match self.commit(end).await {
            Ok(()) => {
                if let Some((since, _)) = self.store_failing.take() {
                    tracing::info!(connector = %self.spec.connector, failing_for_s = since.elapsed().as_secs(), "offsets are stored again");
                }
                self.report(State::Running, end);
            }
            Err(e) if self.sink.transactions().is_some() => return Err(e),
            // Not a failing store: the worker lost its share, and a task
            // that kept running would wait on the next store with nothing
            // left to fence it.
            Err(e) if self.fenced => return Err(e),
            Err(e) => {
                let first = self.store_failing.is_none();
                let since = self
                    .store_failing
                    .as_ref()
                    .map_or_else(Instant::now, |(s, _)| *s);
                let trace = format!(
                    "{e}; the task keeps running and tries again every flush, but no position past the stored one is confirmed to the database until it succeeds (free the disk, or fix the offset store)"
                );
                if first {
                    tracing::warn!(connector = %self.spec.connector, task = self.spec.task_id, error = %trace, "cannot store offsets");
                }
                self.store_failing = Some((since, trace));
                self.report(State::Running, end);
            }
        }
        Ok(())
    }

    /// Stores the offsets that may be stored, then tells the task they
    /// are durable.
    pub(super) async fn commit(&mut self, end: &RuntimeEnd) -> Result<(), ConnectorError> {
        self.last_commit = Instant::now();
        if let Some(transactions) = self.sink.transactions() {
            return self.commit_transaction(transactions, end).await;
        }
        let entries = self.offsets.take_committable();
        if entries.is_empty() {
            return Ok(());
        }
        let writes: Vec<_> = entries
            .iter()
            .map(|(p, o)| (p.clone(), Some(o.clone())))
            .collect();
        let store = Arc::clone(&self.deps.offsets);
        let connector = self.spec.connector.clone();
        let mut storing = tokio::task::spawn_blocking(move || store.put(&connector, &writes));
        // A store to a broker this worker is cut off from waits out its
        // timeout; a worker that lost the connector meanwhile stops waiting
        // (the store may still land: it holds acknowledged offsets only).
        let joined = loop {
            tokio::select! {
                joined = &mut storing => break joined,
                () = tokio::time::sleep(FENCE_CHECK) => {
                    if !self.fenced && !self.deps.placement.owns(self.spec.unit()) {
                        self.fenced = true;
                        self.offsets.restore(entries);
                        return Err(ConnectorError::retriable(FENCED));
                    }
                }
            }
        };
        let stored = joined
            .map_err(|e| ConnectorError::retriable(format!("offset commit was interrupted: {e}")))
            .and_then(|r| {
                r.map_err(|e| ConnectorError::retriable(format!("storing offsets: {e}")))
            });
        if let Err(e) = stored {
            self.offsets.restore(entries);
            return Err(e);
        }
        self.committed(entries, end);
        Ok(())
    }

    /// Commits the open transaction with the offsets its records reach.
    /// Every record must be acknowledged first: only then are its offsets
    /// known to be the next ones in line.
    async fn commit_transaction(
        &mut self,
        transactions: &dyn Transactions,
        end: &RuntimeEnd,
    ) -> Result<(), ConnectorError> {
        self.drain_all().await?;
        let entries = self.offsets.take_committable();
        let mut committing = transactions.commit(&self.spec.connector, &entries);
        let committed = loop {
            tokio::select! {
                committed = &mut committing => break committed,
                () = tokio::time::sleep(FENCE_CHECK) => {
                    // The next owner's producer fences this one whatever
                    // happens to the commit; stop waiting for it.
                    if !self.fenced && !self.deps.placement.owns(self.spec.unit()) {
                        self.fenced = true;
                        return Err(ConnectorError::retriable(FENCED));
                    }
                }
            }
        };
        drop(committing);
        committed.map_err(|e| {
            let message = format!(
                "the transaction of connector {} task {} did not commit: {e}; nothing of it is visible, and the task restarts from the last committed offsets",
                self.spec.connector, self.spec.task_id
            );
            match e {
                TransactionError::Unsupported(_) => ConnectorError::fatal(message),
                _ => ConnectorError::retriable(message),
            }
        })?;
        if !entries.is_empty() {
            self.committed(entries, end);
        }
        Ok(())
    }

    /// Counts a store and tells the task which offsets are durable.
    fn committed(&mut self, entries: Vec<(SourcePartition, SourceOffset)>, end: &RuntimeEnd) {
        self.uncommitted = 0;
        self.metrics.uncommitted.store(0, Ordering::Relaxed);
        self.metrics.offset_commits.fetch_add(1, Ordering::Relaxed);
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        self.metrics.last_commit_ms.store(now_ms, Ordering::Relaxed);
        end.publish_durable(entries);
    }
}
