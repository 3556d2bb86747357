//! The batch a sink task has taken (`put` returned) but not yet said is
//! durable (`flush` has not returned, nor a later `put`).
//!
//! Its offsets wait for it. Its records stay too: a transient failure
//! then may be this batch's, found while the next one is put, and the
//! runner puts both again on a restarted task, in order, instead of
//! restarting the task from the committed offsets (which would count
//! against `errors.max.retries` and rejoin the consumer group).

use sluice_connector_api::SinkRecord;

use super::{release_aside, Positions};

/// A batch put and not yet durable: its records and their offsets.
pub(super) struct Unconfirmed {
    positions: Positions,
    records: Vec<SinkRecord>,
}

impl Unconfirmed {
    /// The batch of `records`, read up to `positions`.
    pub(super) fn new(positions: Positions, records: Vec<SinkRecord>) -> Self {
        Self { positions, records }
    }

    /// The records to put again, first, on a restarted task.
    pub(super) fn records(&self) -> &[SinkRecord] {
        &self.records
    }

    /// Adds the offsets of records read after this batch and never put
    /// (all sent to the dead-letter topic): they are committed with it,
    /// not before it.
    pub(super) fn extend(&mut self, positions: Positions) {
        self.positions.extend(positions);
    }

    /// The batch is durable: frees its records (off this thread) and
    /// gives the offsets to commit.
    pub(super) fn confirmed(self) -> Positions {
        release_aside(self.records);
        self.positions
    }
}

/// The records of the batch still to be confirmed, or none.
pub(super) fn earlier(unconfirmed: &Option<Unconfirmed>) -> &[SinkRecord] {
    unconfirmed.as_ref().map_or(&[], Unconfirmed::records)
}
