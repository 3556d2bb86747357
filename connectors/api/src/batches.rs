//! Handing records from a source's background capture pipeline to the
//! runtime's `poll`: the pipeline sends batches (or the error that stopped
//! it) through a bounded channel, and `poll` takes what is ready.

use std::time::Duration;

use tokio::sync::mpsc;

use crate::error::ConnectorError;
use crate::record::SourceRecord;

/// What a capture pipeline sends: a batch of records or why it stopped.
pub type Batch = Result<Vec<SourceRecord>, ConnectorError>;

/// Runs a capture pipeline that sends its batches to `out`. An error that
/// ends it is sent as the last item. When it ends well (a snapshot-only
/// run that finished), `out` is held until the task lets go of the other
/// end: the channel then closes only when the pipeline vanished (a panic,
/// an abort), which [`next_batch`] reports as an error.
pub async fn run_pipeline(
    out: mpsc::Sender<Batch>,
    pipeline: impl std::future::Future<Output = Result<(), ConnectorError>>,
) {
    match pipeline.await {
        Ok(()) => out.closed().await,
        Err(e) => {
            let _ = out.send(Err(e)).await;
        }
    }
}

/// Waits up to a second for the next batch, then adds whatever else is
/// ready, up to `max` records. A finished pipeline (see [`run_pipeline`])
/// yields empty polls; one that vanished without a word is an error, so
/// the task restarts from its stored offset instead of idling while the
/// database keeps its log.
pub async fn next_batch(
    records: &mut mpsc::Receiver<Batch>,
    max: usize,
) -> Result<Vec<SourceRecord>, ConnectorError> {
    let mut batch = match tokio::time::timeout(Duration::from_secs(1), records.recv()).await {
        Err(_) => return Ok(Vec::new()),
        Ok(None) => {
            return Err(ConnectorError::retriable(
                "the capture pipeline stopped without a reason (a bug: its panic is in the worker log); the task restarts from its stored offset",
            ))
        }
        Ok(Some(result)) => result?,
    };
    while batch.len() < max {
        match records.try_recv() {
            Ok(result) => batch.extend(result?),
            Err(_) => break,
        }
    }
    Ok(batch)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 19, finding 5: a pipeline that panics drops its sender
    /// without a word. That must end the poll with an error (the task
    /// restarts from its stored offset), not read as "no records" forever
    /// while the database keeps its log for a task that does nothing.
    #[tokio::test]
    async fn a_pipeline_that_vanished_is_an_error_not_silence() {
        let (out, mut records) = mpsc::channel::<Batch>(1);
        let pipeline = tokio::spawn(async move {
            let _out = out;
            panic!("a malformed frame");
        });
        assert!(pipeline.await.is_err());
        let polled = next_batch(&mut records, 10).await;
        let error = polled.expect_err("a vanished pipeline must fail the poll");
        assert!(error.is_retriable(), "{error}");
    }
}
