//! Records gathered for one hand-over to the runtime. A batch is full at
//! `max.batch.size` records or at a byte bound, whichever comes first, so
//! a table of wide rows is handed over a few rows at a time instead of
//! thousands of them sitting in memory at once (see [`crate::footprint`]).

use crate::footprint::{BATCH_BYTES, EVENT_OVERHEAD};
use crate::record::SourceRecord;

/// When a batch is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchLimit {
    /// The most records (`max.batch.size`).
    pub records: usize,
    /// The most bytes, by [`SourceRecord::footprint`].
    pub bytes: usize,
}

impl BatchLimit {
    /// Full at `max_batch_size` records, or at [`BATCH_BYTES`] — or at
    /// `max_queue_bytes` (`max.queue.size.in.bytes`) when that is set
    /// (not 0) and smaller: a batch larger than the queue may hold would
    /// go whole past its bound.
    pub fn new(max_batch_size: usize, max_queue_bytes: usize) -> Self {
        let bytes = match max_queue_bytes {
            0 => BATCH_BYTES,
            queue => queue.min(BATCH_BYTES),
        };
        Self {
            records: max_batch_size.max(1),
            bytes,
        }
    }

    /// Whether `records` records of `bytes` bytes fill a batch.
    pub fn reached(&self, records: usize, bytes: usize) -> bool {
        records >= self.records || bytes >= self.bytes
    }
}

/// Records being gathered, with their bytes counted as they come.
#[derive(Debug)]
pub struct Batch {
    records: Vec<SourceRecord>,
    bytes: usize,
    limit: BatchLimit,
}

impl Batch {
    /// An empty batch that fills at `limit`.
    pub fn new(limit: BatchLimit) -> Self {
        Self::with_capacity(0, limit)
    }

    /// An empty batch with room for `records` records.
    pub fn with_capacity(records: usize, limit: BatchLimit) -> Self {
        Self {
            records: Vec::with_capacity(records),
            bytes: 0,
            limit,
        }
    }

    /// Adds a record.
    #[inline]
    pub fn push(&mut self, record: SourceRecord) {
        self.records.push(record);
        self.bytes += self.records.last().map_or(0, SourceRecord::footprint);
    }

    /// Adds the events made of one row change, weighed as the row's
    /// values (`row_bytes`, their [`Value::footprint`](crate::Value::footprint))
    /// plus [`EVENT_OVERHEAD`] per event: what a source that reads rows
    /// knows cheaply.
    #[inline]
    pub fn extend_row(
        &mut self,
        records: impl IntoIterator<Item = SourceRecord>,
        row_bytes: usize,
    ) {
        let start = self.records.len();
        self.records.extend(records);
        self.bytes += row_bytes + (self.records.len() - start) * EVENT_OVERHEAD;
    }

    /// Whether the batch should be handed over now.
    pub fn is_full(&self) -> bool {
        self.limit.reached(self.records.len(), self.bytes)
    }

    /// How many records it holds.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// The records, to amend before they are handed over.
    pub fn records_mut(&mut self) -> &mut [SourceRecord] {
        &mut self.records
    }

    /// Takes the records out and leaves the batch empty, with room for as
    /// many: a steady stream then fills each batch without growing it
    /// from nothing again.
    pub fn take(&mut self) -> Vec<SourceRecord> {
        self.bytes = 0;
        let next = Vec::with_capacity(self.records.len());
        std::mem::replace(&mut self.records, next)
    }
}

impl Extend<SourceRecord> for Batch {
    fn extend<I: IntoIterator<Item = SourceRecord>>(&mut self, records: I) {
        // Through the vector's own extend, then weighed in place: a push
        // per record moved each one once more (callgrind,
        // `scripts/bench-mysql`).
        let start = self.records.len();
        self.records.extend(records);
        self.bytes += self.records[start..]
            .iter()
            .map(SourceRecord::footprint)
            .sum::<usize>();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::Value;

    fn row(text_bytes: usize) -> SourceRecord {
        SourceRecord::holding(Value::String("x".repeat(text_bytes).into()))
    }

    /// Narrow rows fill a batch at max.batch.size; wide rows at the byte
    /// bound, long before.
    #[test]
    fn a_batch_fills_at_its_record_count_or_its_bytes() {
        let limit = BatchLimit::new(2048, 0);
        let mut narrow = Batch::new(limit);
        for _ in 0..2047 {
            narrow.push(row(10));
        }
        assert!(!narrow.is_full());
        narrow.push(row(10));
        assert!(narrow.is_full());

        let mut wide = Batch::new(limit);
        let mut pushed = 0;
        while !wide.is_full() {
            wide.push(row(1 << 20));
            pushed += 1;
        }
        assert_eq!(pushed, BATCH_BYTES >> 20, "8 rows of 1 MiB fill 8 MiB");
    }

    /// A queue bound smaller than the batch bound closes batches at it.
    #[test]
    fn a_smaller_queue_bound_closes_batches_sooner() {
        assert_eq!(BatchLimit::new(100, 0).bytes, BATCH_BYTES);
        assert_eq!(BatchLimit::new(100, 1 << 30).bytes, BATCH_BYTES);
        assert_eq!(BatchLimit::new(100, 4096).bytes, 4096);
        let mut batch = Batch::new(BatchLimit::new(100, 4096));
        batch.push(row(3000));
        assert!(!batch.is_full());
        batch.push(row(3000));
        assert!(batch.is_full());
    }

    /// Row changes count their row and an event's overhead per event.
    #[test]
    fn row_changes_are_weighed_by_their_rows() {
        let mut batch = Batch::new(BatchLimit::new(100, 10 * EVENT_OVERHEAD));
        batch.extend_row([row(0), row(0)], 7 * EVENT_OVERHEAD);
        assert!(!batch.is_full(), "9 of 10");
        batch.extend_row([row(0)], 0);
        assert!(batch.is_full());
        assert_eq!(batch.len(), 3);
    }

    /// Taking the records empties the batch and its byte count.
    #[test]
    fn taking_starts_the_count_again() {
        let mut batch = Batch::new(BatchLimit::new(10, 8000));
        batch.extend([row(5000), row(5000)]);
        assert!(batch.is_full());
        assert_eq!(batch.take().len(), 2);
        assert!(batch.is_empty() && !batch.is_full());
        batch.extend([row(10)]);
        assert_eq!(batch.len(), 1);
        assert!(!batch.is_full());
    }
}
