//! The offsets a run of consumed records covers, per topic partition: the
//! last one read, which a commit moves past once the records are durable,
//! and the first, where the consumer is sent back to read them again when
//! a batch put earlier turns out not to be durable.

use std::collections::BTreeMap;

use sluice_connector_api::{SinkRecord, Text};

/// The first and last offsets read per topic partition (the topic's text
/// shared with the records: a key is noted for every record).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(super) struct Positions(BTreeMap<(Text, i32), (i64, i64)>);

impl Positions {
    /// Notes that `record` was read.
    pub(super) fn note(&mut self, record: &SinkRecord) {
        let key = (record.topic.clone(), record.kafka_partition);
        self.widen(key, record.kafka_offset, record.kafka_offset);
    }

    /// Makes the partition's span reach from `first` to `last` too.
    fn widen(&mut self, key: (Text, i32), first: i64, last: i64) {
        self.0
            .entry(key)
            .and_modify(|(f, l)| {
                *f = (*f).min(first);
                *l = (*l).max(last);
            })
            .or_insert((first, last));
    }

    /// Whether no record was read.
    pub(super) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Adds the records read in `other`: each partition then spans from
    /// the first offset either read to the last.
    pub(super) fn extend(&mut self, other: Positions) {
        for (key, (first, last)) in other.0 {
            self.widen(key, first, last);
        }
    }

    /// Per partition, the next offset to read once these records are
    /// durable: what a consumer commit stores.
    pub(super) fn next_offsets(&self) -> impl Iterator<Item = (&str, i32, i64)> {
        self.0
            .iter()
            .map(|((topic, partition), (_, last))| (&**topic, *partition, last + 1))
    }

    /// Per partition, the first offset read: where reading starts again
    /// to read every one of these records once more.
    pub(super) fn first_offsets(&self) -> impl Iterator<Item = (&str, i32, i64)> {
        self.0
            .iter()
            .map(|((topic, partition), (first, _))| (&**topic, *partition, *first))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(records: &[(&str, i32, i64)]) -> Positions {
        let mut positions = Positions::default();
        for (topic, partition, offset) in records {
            positions.note(&SinkRecord {
                topic: Text::from(*topic),
                kafka_partition: *partition,
                kafka_offset: *offset,
                key_schema: None,
                key: None,
                value_schema: None,
                value: None,
                timestamp_ms: None,
                headers: Vec::new(),
            });
        }
        positions
    }

    #[test]
    fn a_commit_moves_past_the_last_offset_and_a_rewind_goes_to_the_first() {
        let positions = read(&[("a", 0, 7), ("a", 1, 3), ("a", 0, 9), ("a", 0, 8)]);
        assert_eq!(
            positions.next_offsets().collect::<Vec<_>>(),
            [("a", 0, 10), ("a", 1, 4)]
        );
        assert_eq!(
            positions.first_offsets().collect::<Vec<_>>(),
            [("a", 0, 7), ("a", 1, 3)]
        );
    }

    #[test]
    fn batches_read_one_after_another_span_both() {
        let mut earlier = read(&[("a", 0, 10), ("a", 0, 19)]);
        earlier.extend(read(&[("a", 0, 20), ("a", 0, 29), ("b", 0, 5)]));
        assert_eq!(
            earlier.first_offsets().collect::<Vec<_>>(),
            [("a", 0, 10), ("b", 0, 5)]
        );
        assert_eq!(
            earlier.next_offsets().collect::<Vec<_>>(),
            [("a", 0, 30), ("b", 0, 6)]
        );
        assert!(Positions::default().is_empty());
        assert!(!earlier.is_empty());
    }
}
