//! A PostgreSQL transaction whose `BEGIN` goes out with its first
//! statement instead of in a round trip of its own.
//!
//! `tokio_postgres`'s `Client::transaction` waits for the server's answer
//! to `BEGIN` before anything else is sent: one round trip in every batch
//! in which the target does nothing. The server reads a connection's
//! messages in order, so a `BEGIN` sent just before the first statement
//! starts the transaction all the same. A batch then waits on three round
//! trips instead of four (the savepoint with the `COPY`, the `COPY`'s end,
//! the commit), which counts on a target across a network. On loopback
//! the wait was 0.4–1.3 ms of the ~17 ms a batch of 5,000 rows took in
//! `scripts/bench-sink`, and the sink's rate did not move beyond the
//! machine's noise. The server's own work took most of a batch's apply
//! there; the last two waits now overlap the next batch's preparation
//! ([`super::batch_tail`]).
//!
//! The transaction is committed by the batch's tail ([`super::batch_tail`]),
//! when [`PipelinedTransaction::has_begun`]. One dropped before its commit
//! is not rolled back here (that would need a round trip, and `Drop`
//! cannot wait for one): the target remembers that one may be open and
//! rolls it back before its next batch ([`super::postgres_target`]).

use std::sync::atomic::{AtomicBool, Ordering};

use futures_util::future::join;
use tokio_postgres::{Client, CopyInSink, Error, Statement};

/// One batch's transaction on `client`, begun with its first statement.
pub struct PipelinedTransaction<'c> {
    client: &'c Client,
    /// Whether `BEGIN` is still to be sent. Atomic rather than a `Cell`:
    /// the futures that borrow the transaction must stay `Send`.
    begin_pending: AtomicBool,
}

impl<'c> PipelinedTransaction<'c> {
    /// A transaction nothing has been sent for yet.
    pub fn new(client: &'c Client) -> Self {
        Self {
            client,
            begin_pending: AtomicBool::new(true),
        }
    }

    /// Whether this call sends the `BEGIN`; the first one to ask does.
    /// Asked when a statement's future is first polled, which is when it
    /// is sent: of two statements joined, the one polled first goes first
    /// and carries the `BEGIN`.
    fn takes_begin(&self) -> bool {
        self.begin_pending.swap(false, Ordering::Relaxed)
    }

    /// Runs `sql` (one or more statements, no parameters) in the
    /// transaction.
    pub async fn batch_execute(&self, sql: &str) -> Result<(), Error> {
        if self.takes_begin() {
            // One simple query: a `BEGIN` in it opens a transaction that
            // outlasts the query.
            self.client.batch_execute(&format!("BEGIN; {sql}")).await
        } else {
            self.client.batch_execute(sql).await
        }
    }

    /// Starts the prepared `COPY … FROM STDIN` `statement` in the
    /// transaction.
    pub async fn copy_in(&self, statement: &Statement) -> Result<CopyInSink<bytes::Bytes>, Error> {
        if self.takes_begin() {
            // Both go out before either answer is awaited; `join` polls
            // the `BEGIN` first, so it is sent first.
            let (begun, copy) = join(
                self.client.batch_execute("BEGIN"),
                self.client.copy_in(statement),
            )
            .await;
            begun?;
            copy
        } else {
            self.client.copy_in(statement).await
        }
    }

    /// Whether anything was sent, so there is a transaction to end.
    pub fn has_begun(&self) -> bool {
        !self.begin_pending.load(Ordering::Relaxed)
    }
}
