//! Which connectors and tasks this worker runs: those whose unit
//! (`herder::task_unit`: a connector's name for the connector and its task
//! 0, `<connector>-<n>` for each further task) hashes into a partition the
//! group assigned it, while its lease on the group holds.
//!
//! The hash is Kafka's murmur2 (the Java client's partitioner,
//! `kafka::murmur2`), so where a
//! connector runs follows from its name and the assignment alone, the same
//! on every worker.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use super::lease::Lease;
use crate::herder::Placement;

/// The partition a unit of placement belongs to among `partitions`.
pub fn partition_of(unit: &str, partitions: i32) -> i32 {
    crate::kafka::murmur2::partition_for_key(unit.as_bytes(), partitions)
}

/// The partitions assigned to this worker and when each may be used.
#[derive(Debug, Default)]
struct Held {
    /// Assigned partitions, each usable from its instant on.
    usable_from: BTreeMap<i32, Instant>,
}

/// A worker's share of the group's connectors.
pub struct GroupPlacement {
    partitions: i32,
    takeover_delay: Duration,
    held: RwLock<Held>,
    lease: Arc<Lease>,
}

impl GroupPlacement {
    /// A placement over `partitions` units, owning none until assigned;
    /// a partition another worker held is used only `takeover_delay`
    /// after it was assigned here.
    pub fn new(partitions: i32, takeover_delay: Duration, lease: Arc<Lease>) -> Self {
        Self {
            partitions,
            takeover_delay,
            held: RwLock::new(Held::default()),
            lease,
        }
    }

    fn held(&self) -> std::sync::RwLockWriteGuard<'_, Held> {
        self.held.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Partitions added to this worker's assignment, usable after the
    /// takeover delay, in which a previous owner that heard of the
    /// rebalance late (a broker that does not wait for every member) has
    /// stopped. Even a partition this worker held before: another worker may
    /// have held it in a generation this one never saw. Partitions kept from
    /// before stay usable (an incremental rebalance moves only what moves).
    pub fn assign(&self, added: BTreeSet<i32>) {
        let from = Instant::now() + self.takeover_delay;
        let mut held = self.held();
        for partition in added {
            held.usable_from.insert(partition, from);
        }
    }

    /// Partitions taken back (their tasks are stopped next).
    pub fn revoke(&self, removed: &BTreeSet<i32>) {
        self.held().usable_from.retain(|p, _| !removed.contains(p));
    }

    /// Forgets everything held (a lost lease, leaving the group).
    pub fn clear(&self) {
        *self.held() = Held::default();
    }

    /// The partitions assigned to this worker, usable yet or not.
    pub fn owned(&self) -> BTreeSet<i32> {
        self.held
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .usable_from
            .keys()
            .copied()
            .collect()
    }

    /// The partitions the named units belong to.
    pub fn partitions_of<'a>(&self, units: impl IntoIterator<Item = &'a String>) -> BTreeSet<i32> {
        units
            .into_iter()
            .map(|unit| partition_of(unit, self.partitions))
            .collect()
    }

    /// The partitions usable now.
    pub fn usable(&self) -> BTreeSet<i32> {
        let now = Instant::now();
        self.held
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .usable_from
            .iter()
            .filter(|(_, from)| **from <= now)
            .map(|(p, _)| *p)
            .collect()
    }
}

impl Placement for GroupPlacement {
    fn owns(&self, unit: &str) -> bool {
        let partition = partition_of(unit, self.partitions);
        self.lease.holds()
            && self
                .held
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .usable_from
                .get(&partition)
                .is_some_and(|from| *from <= Instant::now())
    }

    fn shared(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_worker_owns_what_hashes_into_its_partitions_while_its_lease_holds() {
        let lease = Arc::new(Lease::new(Duration::from_secs(5)));
        let placement = GroupPlacement::new(25, Duration::from_millis(300), Arc::clone(&lease));
        let p = partition_of("orders", 25);
        placement.assign(BTreeSet::from([p]));
        lease.renewed(Instant::now());
        assert!(
            !placement.owns("orders"),
            "taken over from another worker: not yet"
        );
        std::thread::sleep(Duration::from_millis(350));
        assert!(placement.owns("orders"), "after the takeover delay");
        // Another partition added: the one kept stays usable.
        let other = (p + 1) % 25;
        placement.assign(BTreeSet::from([other]));
        assert!(
            placement.owns("orders"),
            "kept across an incremental rebalance"
        );
        assert_eq!(placement.usable(), BTreeSet::from([p]));
        // Revoked and given back: another worker may have had it in
        // between, so the delay applies again.
        placement.revoke(&BTreeSet::from([p]));
        assert!(!placement.owns("orders"));
        placement.assign(BTreeSet::from([p]));
        assert!(!placement.owns("orders"));
        std::thread::sleep(Duration::from_millis(350));
        assert_eq!(placement.usable().len(), 2);
        lease.reset();
        assert!(!placement.owns("orders"), "no lease, no share");
    }

    /// Task 0 goes with its connector; each further task is a unit of its
    /// own, so a worker may hold a connector's second task and not the
    /// connector.
    #[test]
    fn tasks_after_the_first_are_placed_on_their_own() {
        use crate::herder::task_unit;
        assert_eq!(task_unit("sink", 0), "sink");
        assert_eq!(task_unit("sink", 2), "sink-2");
        let lease = Arc::new(Lease::new(Duration::from_secs(5)));
        lease.renewed(Instant::now());
        let placement = GroupPlacement::new(25, Duration::ZERO, Arc::clone(&lease));
        // A connector name whose second task hashes elsewhere than it.
        let name = (0..)
            .map(|k| format!("sink{k}"))
            .find(|n| partition_of(n, 25) != partition_of(&task_unit(n, 1), 25))
            .expect("some name");
        placement.assign(BTreeSet::from([partition_of(&task_unit(&name, 1), 25)]));
        assert!(placement.owns(&task_unit(&name, 1)));
        assert!(!placement.owns(&task_unit(&name, 0)));
        assert!(!placement.owns(&name));
    }
}
