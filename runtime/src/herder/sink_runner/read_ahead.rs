//! Batches read and decoded ahead of the one a sink task applies, by a
//! tokio task of its own, so reading and applying run on both cores.
//!
//! The reader starts a batch only when there is room for it: at most
//! `depth` batches wait, read, beside the one being applied, and a batch
//! is never consumed (nor sent to the dead-letter topic) before there is
//! room to hand it on. Failures come out in their turn, after the batches
//! read before them.
//!
//! Nothing here decides what is committed: offsets move after the runner
//! applies a batch. Dropped (the apply failed, the task is told to stop),
//! the reader is cancelled, a read under way included, and what it read
//! but nobody applied is read again from the committed offsets on the
//! next start.

use std::future::Future;

use sluice_connector_api::ConnectorError;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Batches read ahead by a task of their own, handed out in order.
pub(super) struct ReadAhead<T> {
    batches: mpsc::Receiver<Result<T, ConnectorError>>,
    reader: JoinHandle<()>,
}

impl<T: Send + 'static> ReadAhead<T> {
    /// Starts reading with `read`, one batch per call, keeping at most
    /// `depth` (at least one) read batches waiting. A failed read is
    /// handed out in its turn and ends the reading.
    pub(super) fn start<F, R>(depth: usize, mut read: F) -> Self
    where
        F: FnMut() -> R + Send + 'static,
        R: Future<Output = Result<T, ConnectorError>> + Send,
    {
        let (room, batches) = mpsc::channel(depth.max(1));
        let reader = tokio::spawn(async move {
            // Room first, then the read: a batch is never read (consumed
            // from the broker, dead-lettered) that could not be handed on.
            while let Ok(slot) = room.reserve().await {
                let batch = read().await;
                let failed = batch.is_err();
                slot.send(batch);
                if failed {
                    return;
                }
            }
        });
        Self { batches, reader }
    }

    /// The next batch, in the order read.
    pub(super) async fn next(&mut self) -> Result<T, ConnectorError> {
        if let Some(batch) = self.batches.recv().await {
            return batch;
        }
        // The reader ended without a failed read to hand out: it panicked.
        match (&mut self.reader).await {
            // A panic while reading is the runner's panic, as it was when
            // batches were read in the runner's own task.
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => Err(ConnectorError::retriable(format!(
                "reading the next batch ended early: {e}"
            ))),
            Ok(()) => Err(ConnectorError::retriable(
                "reading the next batch ended early",
            )),
        }
    }
}

impl<T> ReadAhead<T> {
    /// Stops reading and waits until no read is under way: whatever the
    /// reader took from the consumer is dropped with it, and it takes
    /// nothing more.
    pub(super) async fn stop(mut self) {
        self.reader.abort();
        // Cancelled or ended: either way no read is under way any more.
        let _ = (&mut self.reader).await;
    }
}

impl<T> Drop for ReadAhead<T> {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;

    /// A reader of numbered batches that counts how many it started.
    fn counting(depth: usize, fail_at: Option<usize>) -> (ReadAhead<usize>, Arc<AtomicUsize>) {
        let started = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&started);
        let ahead = ReadAhead::start(depth, move || {
            let n = counter.fetch_add(1, Ordering::SeqCst);
            async move {
                tokio::task::yield_now().await;
                match fail_at {
                    Some(at) if n == at => {
                        Err(ConnectorError::retriable(format!("broker gone at {n}")))
                    }
                    _ => Ok(n),
                }
            }
        });
        (ahead, started)
    }

    async fn settle() {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    #[tokio::test]
    async fn batches_come_out_in_the_order_read() {
        let (mut ahead, _) = counting(2, None);
        for expected in 0..20 {
            assert_eq!(ahead.next().await.expect("a batch"), expected);
        }
    }

    #[tokio::test]
    async fn the_reader_stays_at_most_depth_batches_ahead() {
        let (mut ahead, started) = counting(2, None);
        settle().await;
        assert_eq!(started.load(Ordering::SeqCst), 2, "two read, none taken");
        assert_eq!(ahead.next().await.expect("a batch"), 0);
        settle().await;
        assert_eq!(
            started.load(Ordering::SeqCst),
            3,
            "one more once one is taken"
        );
        let (_one, started) = counting(1, None);
        settle().await;
        assert_eq!(
            started.load(Ordering::SeqCst),
            1,
            "depth 1: one batch ahead"
        );
    }

    #[tokio::test]
    async fn a_failed_read_comes_after_the_batches_before_it_and_ends_reading() {
        let (mut ahead, started) = counting(3, Some(2));
        assert_eq!(ahead.next().await.expect("batch 0"), 0);
        assert_eq!(ahead.next().await.expect("batch 1"), 1);
        let error = ahead.next().await.expect_err("the failed read");
        assert!(error.to_string().contains("broker gone at 2"), "{error}");
        settle().await;
        assert_eq!(
            started.load(Ordering::SeqCst),
            3,
            "no read after the failed one"
        );
        let after = ahead.next().await.expect_err("nothing after the failure");
        assert!(after.is_retriable());
    }

    #[tokio::test]
    async fn dropping_it_cancels_a_read_under_way() {
        let finished = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&finished);
        let ahead: ReadAhead<()> = ReadAhead::start(1, move || {
            let counter = Arc::clone(&counter);
            async move {
                tokio::time::sleep(Duration::from_millis(100)).await;
                counter.fetch_add(1, Ordering::SeqCst);
                Ok(())
            }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        drop(ahead);
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(
            finished.load(Ordering::SeqCst),
            0,
            "the read went on after the drop"
        );
    }

    #[tokio::test]
    #[should_panic(expected = "decoder bug")]
    async fn a_panic_while_reading_is_the_runners_panic() {
        let mut ahead: ReadAhead<usize> = ReadAhead::start(1, || async { panic!("decoder bug") });
        let _ = ahead.next().await;
    }
}
