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

/// [`Positions`] being noted as records are read. A batch's records come
/// in runs from one partition: a run is widened in place and entered in
/// the map when it ends, so the map is searched (and the topic's text
/// shared once more) per run instead of per record, which cost about 150
/// instructions a record (callgrind, `scripts/bench-sink 200000`).
#[derive(Debug, Default)]
pub(super) struct Noting {
    noted: Positions,
    /// The partition of the run being read, and its first and last offsets.
    run: Option<((Text, i32), (i64, i64))>,
}

impl Noting {
    /// Notes that `record` was read.
    pub(super) fn note(&mut self, record: &SinkRecord) {
        let offset = record.kafka_offset;
        if let Some(((topic, partition), (first, last))) = &mut self.run {
            if *partition == record.kafka_partition && *topic == record.topic {
                *first = (*first).min(offset);
                *last = (*last).max(offset);
                return;
            }
        }
        self.end_run();
        self.run = Some((
            (record.topic.clone(), record.kafka_partition),
            (offset, offset),
        ));
    }

    fn end_run(&mut self) {
        if let Some((key, (first, last))) = self.run.take() {
            self.noted.widen(key, first, last);
        }
    }

    /// Everything noted.
    pub(super) fn finish(mut self) -> Positions {
        self.end_run();
        self.noted
    }
}

impl Positions {
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
        let mut positions = Noting::default();
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
        positions.finish()
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

    /// Runs broken by another topic with the same partition number, by
    /// another partition, a partition coming back after others, offsets
    /// out of order within a run: each partition spans what was read of
    /// it, as noting record by record into the map gives.
    #[test]
    fn runs_note_what_each_record_would() {
        let mut seed = 0x2545_f491_u64;
        for length in 0..200 {
            let records: Vec<(&str, i32, i64)> = (0..length)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    let topic = ["a", "b", "a.longer.topic.name"][(seed % 3) as usize];
                    (
                        topic,
                        ((seed >> 8) % 3) as i32,
                        ((seed >> 16) % 1000) as i64,
                    )
                })
                .collect();
            let mut expected: BTreeMap<(Text, i32), (i64, i64)> = BTreeMap::new();
            for (topic, partition, offset) in &records {
                let span = expected
                    .entry((Text::from(*topic), *partition))
                    .or_insert((*offset, *offset));
                *span = (span.0.min(*offset), span.1.max(*offset));
            }
            assert_eq!(read(&records), Positions(expected), "{records:?}");
        }
    }
}
