//! Partitions of the group that no live worker holds, and when to ask for
//! a new assignment because of them.
//!
//! With a broker that runs Kafka's group protocol to the letter this never
//! fires: every partition of a generation belongs to a live member of it.
//! Tansu 0.6 does not: a member it drops (it died, or stalled past the
//! session) stays in the assignment — the survivors rejoin with unchanged
//! metadata and get their old shares back — so the dead member's
//! partitions, and the connectors on them, run nowhere for good while
//! every live member heartbeats happily (seen in CI: connectors stopped
//! after a worker woke from a 9 s stall; and after every `kill -9`).
//!
//! So every worker publishes its share with a counter on the status topic
//! (key `sluice-worker-<id>`, which Connect's readers skip), every worker
//! reads the others', and a partition that a connector needs and no live
//! worker has held for longer than any handover takes makes a worker
//! rejoin, which has the group assign everything anew. A worker counts as
//! live while its counter moves, judged on the reader's own clock.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

/// One worker's published share: its counter and its partitions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Share {
    /// Grows with each publication; a stuck counter means a dead worker.
    pub seq: u64,
    /// The partitions the group assigned it.
    pub partitions: BTreeSet<i32>,
}

/// Watches which partitions no live worker holds; says when to rejoin.
#[derive(Debug)]
pub struct OrphanWatch {
    /// How long a needed partition may be held by no live worker before
    /// the group is asked for a new assignment: longer than a handover (a
    /// dead member's session timeout, a rebalance, the takeover delay).
    patience: Duration,
    /// How long a worker whose counter stopped still counts as live.
    freshness: Duration,
    /// Each worker's last share and when its counter last moved.
    seen: BTreeMap<String, (Share, Instant)>,
    /// Since when each partition has been held by nobody, without a break.
    orphaned_since: BTreeMap<i32, Instant>,
}

impl OrphanWatch {
    /// A watch that asks for a new assignment once a needed partition has
    /// been held by no live worker for `patience`; a worker is live while
    /// its counter moved within `freshness`.
    pub fn new(patience: Duration, freshness: Duration) -> Self {
        Self {
            patience,
            freshness,
            seen: BTreeMap::new(),
            orphaned_since: BTreeMap::new(),
        }
    }

    /// Takes in, at `now`, this worker's own partitions, the shares the
    /// others published (by worker id) and the partitions some connector
    /// hashes to; returns the partitions held by no live worker for longer
    /// than the patience — the caller rejoins the group — and then counts
    /// afresh, so the new assignment gets its chance.
    pub fn observe(
        &mut self,
        now: Instant,
        mine: &BTreeSet<i32>,
        published: &BTreeMap<String, Share>,
        needed: &BTreeSet<i32>,
    ) -> BTreeSet<i32> {
        self.seen.retain(|worker, _| published.contains_key(worker));
        for (worker, share) in published {
            match self.seen.get_mut(worker) {
                Some((last, _)) if last.seq == share.seq => {
                    last.partitions.clone_from(&share.partitions);
                }
                _ => {
                    self.seen.insert(worker.clone(), (share.clone(), now));
                }
            }
        }
        let held: BTreeSet<i32> = self
            .seen
            .values()
            .filter(|(_, moved)| now.saturating_duration_since(*moved) < self.freshness)
            .flat_map(|(share, _)| share.partitions.iter().copied())
            .chain(mine.iter().copied())
            .collect();
        let orphaned: BTreeSet<i32> = needed.difference(&held).copied().collect();
        self.orphaned_since.retain(|p, _| orphaned.contains(p));
        for partition in &orphaned {
            self.orphaned_since.entry(*partition).or_insert(now);
        }
        let overdue: BTreeSet<i32> = self
            .orphaned_since
            .iter()
            .filter(|(_, since)| now.saturating_duration_since(**since) >= self.patience)
            .map(|(p, _)| *p)
            .collect();
        if !overdue.is_empty() {
            self.orphaned_since.clear();
        }
        overdue
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PATIENCE: Duration = Duration::from_secs(20);
    const FRESH: Duration = Duration::from_secs(8);

    fn set(list: &[i32]) -> BTreeSet<i32> {
        list.iter().copied().collect()
    }

    fn shares(list: &[(&str, u64, &[i32])]) -> BTreeMap<String, Share> {
        list.iter()
            .map(|(w, seq, p)| {
                (
                    w.to_string(),
                    Share {
                        seq: *seq,
                        partitions: set(p),
                    },
                )
            })
            .collect()
    }

    #[test]
    fn partitions_held_by_live_workers_are_never_orphans() {
        let mut watch = OrphanWatch::new(PATIENCE, FRESH);
        let t0 = Instant::now();
        for step in 0..10u64 {
            let published = shares(&[("b", step, &[1, 3]), ("c", step, &[2])]);
            let at = t0 + Duration::from_secs(5 * step);
            assert!(watch
                .observe(at, &set(&[0]), &published, &set(&[0, 1, 2, 3]))
                .is_empty());
        }
    }

    #[test]
    fn a_dead_workers_partitions_ask_for_a_rejoin_after_the_patience() {
        let mut watch = OrphanWatch::new(PATIENCE, FRESH);
        let t0 = Instant::now();
        let needed = set(&[0, 1, 2]);
        // `c` publishes once, then its counter stops: killed.
        let mut overdue_at = None;
        for step in 0..12u64 {
            let published = shares(&[("b", step, &[1]), ("c", 7, &[2])]);
            let at = t0 + Duration::from_secs(5 * step);
            let overdue = watch.observe(at, &set(&[0]), &published, &needed);
            if !overdue.is_empty() {
                assert_eq!(overdue, set(&[2]));
                overdue_at = Some(at - t0);
                break;
            }
        }
        let overdue_at = overdue_at.expect("the dead worker's partition is noticed");
        assert!(
            overdue_at >= FRESH + PATIENCE,
            "not before its counter went stale and the patience ran out: {overdue_at:?}"
        );
    }

    #[test]
    fn a_partition_assigned_to_nobody_alive_asks_once_per_patience() {
        let mut watch = OrphanWatch::new(PATIENCE, FRESH);
        let t0 = Instant::now();
        let needed = set(&[0, 1, 2]);
        let live = |step: u64| shares(&[("b", step, &[1])]);
        assert!(watch.observe(t0, &set(&[0]), &live(0), &needed).is_empty());
        assert_eq!(
            watch.observe(t0 + PATIENCE, &set(&[0]), &live(1), &needed),
            set(&[2])
        );
        // The rejoin gets a full patience of its own.
        assert!(watch
            .observe(
                t0 + PATIENCE + Duration::from_secs(5),
                &set(&[0]),
                &live(2),
                &needed
            )
            .is_empty());
        // A partition no connector needs is nobody's concern.
        let mut calm = OrphanWatch::new(PATIENCE, FRESH);
        assert!(calm
            .observe(t0, &set(&[0]), &live(0), &set(&[0, 1]))
            .is_empty());
        assert!(calm
            .observe(t0 + PATIENCE * 2, &set(&[0]), &live(1), &set(&[0, 1]))
            .is_empty());
    }

    #[test]
    fn an_owner_in_between_starts_the_count_again() {
        let mut watch = OrphanWatch::new(PATIENCE, FRESH);
        let t0 = Instant::now();
        let needed = set(&[0, 1]);
        let none = BTreeMap::new();
        watch.observe(t0, &set(&[0]), &none, &needed);
        watch.observe(t0 + Duration::from_secs(15), &set(&[0, 1]), &none, &needed);
        assert!(watch
            .observe(t0 + Duration::from_secs(30), &set(&[0]), &none, &needed)
            .is_empty());
        assert_eq!(
            watch.observe(t0 + Duration::from_secs(50), &set(&[0]), &none, &needed),
            set(&[1])
        );
    }
}
