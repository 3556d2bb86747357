//! The offset rule in one type, after Kafka Connect's `SubmittedRecords`:
//! a source offset may be stored only when its record and every record
//! submitted before it from the same task are acknowledged by the broker.
//!
//! Records are submitted in the order the task emitted them and
//! acknowledged in any order. The acknowledged prefix is retired from the
//! front; the newest offset per source partition within that prefix is
//! what may be stored. A failed delivery is never retired, so nothing at
//! or after it can move an offset: a restart sends it and everything after
//! it again, and skips nothing. A record with an empty offset keeps its
//! place in the order but moves no offset.

use std::collections::VecDeque;
use std::sync::Arc;

use sluice_connector_api::{SourceOffset, SourcePartition};

/// Identifies one submitted record, for [`OffsetTracker::ack`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Ticket(u64);

/// Where a submitted record stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Delivery {
    Pending,
    Acked,
    Failed,
}

/// One submitted record's offset and delivery state.
#[derive(Debug)]
struct Submitted {
    partition: Arc<SourcePartition>,
    offset: SourceOffset,
    delivery: Delivery,
}

/// Tracks submitted records of one task and yields the offsets that may
/// be stored.
#[derive(Debug, Default)]
pub struct OffsetTracker {
    /// Not yet retired, in submit order; the front has ticket `front`.
    records: VecDeque<Submitted>,
    front: u64,
    /// Newest retired offset per partition, not yet taken. Tasks share one
    /// `Arc` per partition, so its address finds the entry without hashing
    /// the JSON map; equal partitions behind other `Arc`s are merged when
    /// taken.
    committable: Vec<(Arc<SourcePartition>, SourceOffset)>,
}

impl OffsetTracker {
    /// An empty tracker.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records that a record with `offset` in `partition` was handed to the
    /// broker client; its ticket acknowledges it later.
    pub fn submit(&mut self, partition: Arc<SourcePartition>, offset: SourceOffset) -> Ticket {
        let ticket = Ticket(self.front + self.records.len() as u64);
        self.records.push_back(Submitted {
            partition,
            offset,
            delivery: Delivery::Pending,
        });
        ticket
    }

    /// The broker acknowledged the record; returns how many records were
    /// retired (the acknowledged prefix grew by that many).
    pub fn ack(&mut self, ticket: Ticket) -> usize {
        if let Some(record) = self.get(ticket) {
            if record.delivery == Delivery::Pending {
                record.delivery = Delivery::Acked;
            }
        }
        self.retire()
    }

    /// The record was not delivered: it and every later record keep their
    /// offsets from moving for good (until the task restarts).
    pub fn fail(&mut self, ticket: Ticket) {
        if let Some(record) = self.get(ticket) {
            record.delivery = Delivery::Failed;
        }
    }

    /// Whether a failed delivery blocks the offsets.
    pub fn has_failed(&self) -> bool {
        self.records.iter().any(|r| r.delivery == Delivery::Failed)
    }

    /// Records submitted but not retired (pending, or behind one that is).
    pub fn in_flight(&self) -> usize {
        self.records.len()
    }

    /// Takes the offsets that may be stored now: per partition, the newest
    /// offset whose record and all before it are acknowledged.
    pub fn take_committable(&mut self) -> Vec<(SourcePartition, SourceOffset)> {
        let mut out: Vec<(SourcePartition, SourceOffset)> = Vec::new();
        // Newest first, so the first entry seen for a partition wins.
        for (partition, offset) in std::mem::take(&mut self.committable).into_iter().rev() {
            if !out.iter().any(|(p, _)| *p == *partition) {
                out.push(((*partition).clone(), offset));
            }
        }
        out
    }

    /// Gives back offsets taken by [`Self::take_committable`] that could
    /// not be stored (a full disk, an unreachable offsets topic), so the
    /// next flush stores them — or newer ones, which win.
    pub fn restore(&mut self, taken: Vec<(SourcePartition, SourceOffset)>) {
        // In front: anything that became committable since is newer.
        let restored = taken.into_iter().map(|(p, o)| (Arc::new(p), o));
        self.committable.splice(0..0, restored);
    }

    fn get(&mut self, ticket: Ticket) -> Option<&mut Submitted> {
        let index = ticket.0.checked_sub(self.front)?;
        self.records.get_mut(usize::try_from(index).ok()?)
    }

    /// Retires the acknowledged prefix.
    fn retire(&mut self) -> usize {
        let mut retired = 0;
        while self
            .records
            .front()
            .is_some_and(|r| r.delivery == Delivery::Acked)
        {
            let Some(record) = self.records.pop_front() else {
                break;
            };
            self.front += 1;
            retired += 1;
            // A record without an offset (a transaction's BEGIN or END
            // event) moves no position, as in Connect.
            if record.offset.is_empty() {
                continue;
            }
            match self
                .committable
                .iter_mut()
                .find(|(p, _)| Arc::ptr_eq(p, &record.partition))
            {
                Some(entry) => entry.1 = record.offset,
                None => self.committable.push((record.partition, record.offset)),
            }
        }
        retired
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn partition(name: &str) -> Arc<SourcePartition> {
        Arc::new(sluice_connector_api::offset::partition("server", name))
    }

    fn offset(n: u64) -> SourceOffset {
        sluice_connector_api::offset::partition("pos", n).into()
    }

    fn positions(taken: &[(SourcePartition, SourceOffset)]) -> Vec<(String, u64)> {
        let mut out: Vec<(String, u64)> = taken
            .iter()
            .map(|(p, o)| {
                (
                    p["server"].as_str().unwrap_or_default().to_owned(),
                    o["pos"].as_u64().unwrap_or_default(),
                )
            })
            .collect();
        out.sort();
        out
    }

    #[test]
    fn out_of_order_acks_move_the_offset_only_over_the_acknowledged_prefix() {
        let mut tracker = OffsetTracker::new();
        let p = partition("db");
        let tickets: Vec<Ticket> = (1..=5)
            .map(|n| tracker.submit(Arc::clone(&p), offset(n)))
            .collect();
        // 3 and 5 first: nothing before them is acknowledged.
        assert_eq!(tracker.ack(tickets[2]), 0);
        assert_eq!(tracker.ack(tickets[4]), 0);
        assert!(tracker.take_committable().is_empty());
        // 1: the prefix is record 1.
        assert_eq!(tracker.ack(tickets[0]), 1);
        assert_eq!(positions(&tracker.take_committable()), [("db".into(), 1)]);
        // 2: the prefix reaches 3 (already acknowledged).
        assert_eq!(tracker.ack(tickets[1]), 2);
        assert_eq!(positions(&tracker.take_committable()), [("db".into(), 3)]);
        assert_eq!(tracker.in_flight(), 2);
        assert_eq!(tracker.ack(tickets[3]), 2);
        assert_eq!(positions(&tracker.take_committable()), [("db".into(), 5)]);
        assert_eq!(tracker.in_flight(), 0);
    }

    #[test]
    fn offsets_that_could_not_be_stored_are_stored_next_unless_newer_ones_came() {
        let mut tracker = OffsetTracker::new();
        let (db, other) = (partition("db"), partition("other"));
        let first = tracker.submit(Arc::clone(&db), offset(1));
        let elsewhere = tracker.submit(Arc::clone(&other), offset(7));
        tracker.ack(first);
        tracker.ack(elsewhere);
        let taken = tracker.take_committable();
        tracker.restore(taken);
        assert_eq!(
            positions(&tracker.take_committable()),
            [("db".into(), 1), ("other".into(), 7)]
        );
        // A failed store again, then a newer record of one partition.
        let taken = vec![
            (partition("db").as_ref().clone(), offset(1)),
            (partition("other").as_ref().clone(), offset(7)),
        ];
        let second = tracker.submit(Arc::clone(&db), offset(2));
        tracker.ack(second);
        tracker.restore(taken);
        assert_eq!(
            positions(&tracker.take_committable()),
            [("db".into(), 2), ("other".into(), 7)]
        );
        assert!(tracker.take_committable().is_empty());
    }

    #[test]
    fn a_record_without_an_offset_keeps_its_place_but_moves_nothing() {
        let mut tracker = OffsetTracker::new();
        let p = partition("db");
        let first = tracker.submit(Arc::clone(&p), offset(1));
        let begin = tracker.submit(Arc::clone(&p), SourceOffset::new());
        let change = tracker.submit(Arc::clone(&p), offset(2));
        assert_eq!(tracker.ack(first), 1);
        assert_eq!(tracker.ack(begin), 1);
        // The empty offset is never what is stored.
        assert_eq!(positions(&tracker.take_committable()), [("db".into(), 1)]);
        assert!(tracker.take_committable().is_empty());
        assert_eq!(tracker.ack(change), 1);
        assert_eq!(positions(&tracker.take_committable()), [("db".into(), 2)]);
    }

    #[test]
    fn a_failed_delivery_in_the_middle_holds_every_later_offset() {
        let mut tracker = OffsetTracker::new();
        let p = partition("db");
        let tickets: Vec<Ticket> = (1..=4)
            .map(|n| tracker.submit(Arc::clone(&p), offset(n)))
            .collect();
        tracker.ack(tickets[0]);
        tracker.fail(tickets[1]);
        tracker.ack(tickets[2]);
        tracker.ack(tickets[3]);
        assert!(tracker.has_failed());
        assert_eq!(positions(&tracker.take_committable()), [("db".into(), 1)]);
        // A late ack of the failed record does not undo the failure.
        tracker.ack(tickets[1]);
        assert!(tracker.take_committable().is_empty());
        assert_eq!(tracker.in_flight(), 3);
    }

    #[test]
    fn each_partition_keeps_its_own_newest_offset() {
        let mut tracker = OffsetTracker::new();
        let (data, history) = (partition("db"), partition("history"));
        let a = tracker.submit(Arc::clone(&data), offset(10));
        let b = tracker.submit(Arc::clone(&history), offset(7));
        let c = tracker.submit(Arc::clone(&data), offset(11));
        let d = tracker.submit(Arc::clone(&history), offset(8));
        for t in [d, c, b, a] {
            tracker.ack(t);
        }
        assert_eq!(
            positions(&tracker.take_committable()),
            [("db".into(), 11), ("history".into(), 8)]
        );
        // Taken once: nothing new is committable until more is retired.
        assert!(tracker.take_committable().is_empty());
    }

    #[test]
    fn equal_partitions_behind_different_arcs_resolve_to_the_newest() {
        let mut tracker = OffsetTracker::new();
        let a = tracker.submit(partition("db"), offset(1));
        let b = tracker.submit(partition("db"), offset(2));
        tracker.ack(a);
        tracker.ack(b);
        let taken = tracker.take_committable();
        assert_eq!(positions(&taken), [("db".into(), 2)]);
        assert_eq!(taken[0].0, *partition("db"));
        assert_eq!(taken[0].1, offset(2));
    }
}
