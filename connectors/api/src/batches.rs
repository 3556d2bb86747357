//! Handing records from a source's background capture pipeline to the
//! runtime's `poll`: the pipeline sends batches (or the error that stopped
//! it) through a bounded channel, and `poll` takes what is ready.

use std::time::Duration;

use tokio::sync::mpsc;

use crate::error::ConnectorError;
use crate::record::SourceRecord;

/// What a capture pipeline sends: a batch of records or why it stopped.
pub type Batch = Result<Vec<SourceRecord>, ConnectorError>;

/// Waits up to a second for the next batch, then adds whatever else is
/// ready, up to `max` records. An ended pipeline (a snapshot-only run that
/// finished) yields empty polls.
pub async fn next_batch(
    records: &mut mpsc::Receiver<Batch>,
    max: usize,
) -> Result<Vec<SourceRecord>, ConnectorError> {
    let mut batch = match tokio::time::timeout(Duration::from_secs(1), records.recv()).await {
        Err(_) => return Ok(Vec::new()),
        Ok(None) => {
            tokio::time::sleep(Duration::from_secs(1)).await;
            return Ok(Vec::new());
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
