//! When the PostgreSQL target loads rows with `COPY` straight into their
//! table instead of through a staging table and a merge (and, with the
//! same pause, when the MySQL target tries `LOAD DATA`: `mysql_load`).
//!
//! A merge (`INSERT … SELECT … ON CONFLICT`) took the server about twice
//! as long as a `COPY` into the table itself (200,000 rows of the bench
//! table: 754 ms against 389 ms), and most rows a sink meets in bulk are
//! new: an initial snapshot, an append-only table. It is only tried where
//! it writes what the merge would: a plain insert, or an upsert into a
//! table with a unique index on the key that refuses a repeat at once
//! (without one, a `COPY` would add a second row for a key where the merge
//! fails naming the missing index). A `COPY` of a key the table already
//! holds then fails the whole `COPY`, so a table where that happened
//! (updates, a replay after a crash) goes back to the merge for a while
//! rather than paying a failed `COPY` every batch.

use std::collections::HashMap;

/// Batches a table keeps to the merge after a straight `COPY` of it failed.
pub const PAUSE_BATCHES: u64 = 64;

/// Most straight `COPY`s tried in one transaction: each is a savepoint,
/// and past 64 subtransactions in one transaction PostgreSQL's snapshots
/// of it get slow for every session.
pub const MOST_PER_TRANSACTION: usize = 32;

/// The tables that went back to the merge, and until which batch.
#[derive(Debug, Default)]
pub struct StraightCopy {
    batch: u64,
    paused_until: HashMap<String, u64>,
}

impl StraightCopy {
    /// Counts a batch begun.
    pub fn next_batch(&mut self) {
        self.batch += 1;
        let now = self.batch;
        self.paused_until.retain(|_, until| *until > now);
    }

    /// Whether rows of `table` are tried with a straight `COPY` now.
    pub fn may_try(&self, table: &str) -> bool {
        !self.paused_until.contains_key(table)
    }

    /// A straight `COPY` into `table` failed: the merge for a while.
    pub fn failed(&mut self, table: &str) {
        self.paused_until
            .insert(table.to_owned(), self.batch + PAUSE_BATCHES);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_table_whose_copy_failed_is_merged_for_a_while_then_tried_again() {
        let mut straight = StraightCopy::default();
        straight.next_batch();
        assert!(straight.may_try("a"), "new rows are tried first");
        straight.failed("a");
        assert!(!straight.may_try("a"));
        assert!(straight.may_try("b"), "other tables are not touched");
        for _ in 1..PAUSE_BATCHES {
            straight.next_batch();
            assert!(!straight.may_try("a"));
        }
        straight.next_batch();
        assert!(straight.may_try("a"), "tried again after the pause");
    }
}
