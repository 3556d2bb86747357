//! Which connectors and tasks this worker runs: those whose [`Unit`] falls
//! into a partition the group assigned it, while its lease on the group
//! holds.
//!
//! Where a unit falls follows from its name and the partition count alone,
//! the same on every worker, whatever each has read of the configs so far:
//! two workers that disagree on what exists still never both hold one unit.
//! A connector (with its task 0) falls where Kafka's murmur2 (the Java
//! client's partitioner, `kafka::murmur2`) puts its name. Its further tasks
//! take the partitions next to it, so its first `n` tasks hold `n`
//! neighbouring partitions; the group's round-robin assignor deals
//! neighbouring partitions to different members, so those tasks run on `n`
//! different workers while there are that many, and evenly over fewer.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use super::lease::Lease;
use crate::herder::{Placement, Unit};

/// The partition `unit` belongs to among `partitions`: the connector's
/// own partition for task 0, then the partitions above it up to the last,
/// then those below it downward. Tasks `0..n` so hold one run of
/// neighbouring partitions with no wrap from the last to the first (where
/// a partition count not a multiple of the group's size would deal two
/// of them to one member).
pub fn partition_of(unit: Unit<'_>, partitions: i32) -> i32 {
    let partitions = partitions.max(1);
    let home = crate::kafka::murmur2::partition_for_key(unit.connector.as_bytes(), partitions);
    // Beyond one task per partition the runs repeat.
    let task = (unit.task % partitions as u32) as i32;
    if task < partitions - home {
        home + task
    } else {
        partitions - 1 - task
    }
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
    pub fn partitions_of<'a>(&self, units: impl IntoIterator<Item = Unit<'a>>) -> BTreeSet<i32> {
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
    fn owns(&self, unit: Unit<'_>) -> bool {
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

    const ORDERS: Unit<'static> = Unit {
        connector: "orders",
        task: 0,
    };

    #[test]
    fn a_worker_owns_what_hashes_into_its_partitions_while_its_lease_holds() {
        let lease = Arc::new(Lease::new(Duration::from_secs(5)));
        let placement = GroupPlacement::new(25, Duration::from_millis(300), Arc::clone(&lease));
        let p = partition_of(Unit::connector("orders"), 25);
        placement.assign(BTreeSet::from([p]));
        lease.renewed(Instant::now());
        assert!(
            !placement.owns(ORDERS),
            "taken over from another worker: not yet"
        );
        std::thread::sleep(Duration::from_millis(350));
        assert!(placement.owns(ORDERS), "after the takeover delay");
        // Another partition added: the one kept stays usable.
        let other = (p + 1) % 25;
        placement.assign(BTreeSet::from([other]));
        assert!(
            placement.owns(ORDERS),
            "kept across an incremental rebalance"
        );
        assert_eq!(placement.usable(), BTreeSet::from([p]));
        // Revoked and given back: another worker may have had it in
        // between, so the delay applies again.
        placement.revoke(&BTreeSet::from([p]));
        assert!(!placement.owns(ORDERS));
        placement.assign(BTreeSet::from([p]));
        assert!(!placement.owns(ORDERS));
        std::thread::sleep(Duration::from_millis(350));
        assert_eq!(placement.usable().len(), 2);
        lease.reset();
        assert!(!placement.owns(ORDERS), "no lease, no share");
    }

    /// Task 0 goes with its connector; each further task is a unit of its
    /// own, so a worker may hold a connector's second task and not the
    /// connector.
    #[test]
    fn tasks_after_the_first_are_placed_on_their_own() {
        let lease = Arc::new(Lease::new(Duration::from_secs(5)));
        lease.renewed(Instant::now());
        let placement = GroupPlacement::new(25, Duration::ZERO, Arc::clone(&lease));
        placement.assign(BTreeSet::from([partition_of(Unit::task("sink", 1), 25)]));
        assert!(placement.owns(Unit::task("sink", 1)));
        assert!(!placement.owns(Unit::task("sink", 0)));
        assert!(!placement.owns(Unit::connector("sink")));
    }

    /// What the group's leader computes with librdkafka's round-robin
    /// assignor over the one topic of units: partition `p` to the
    /// `p % members`-th member.
    fn round_robin(partition: i32, members: i32) -> i32 {
        partition % members
    }

    /// A connector stays where its name hashes (so does the registry's
    /// writer); its tasks hold neighbouring partitions, so the round-robin
    /// assignment gives them to as many different workers as there are
    /// (tasks up to the group's size), and evenly when there are more
    /// tasks than workers — for every partition count and every home
    /// partition, the last ones included, where a run that wrapped to
    /// partition 0 would meet a member twice.
    #[test]
    fn a_connectors_tasks_spread_evenly_over_the_group() {
        for partitions in [1, 2, 3, 5, 7, 24, 25, 50] {
            let mut homes = BTreeSet::new();
            for name in (0..2000).map(|k| format!("connector-{k}")) {
                let home = crate::kafka::murmur2::partition_for_key(name.as_bytes(), partitions);
                homes.insert(home);
                assert_eq!(partition_of(Unit::connector(&name), partitions), home);
                let held: Vec<i32> = (0..partitions as u32)
                    .map(|task| partition_of(Unit::task(&name, task), partitions))
                    .collect();
                let distinct: BTreeSet<i32> = held.iter().copied().collect();
                assert_eq!(distinct.len(), partitions as usize, "{name}: {held:?}");
                for members in 1..=partitions.min(6) {
                    for tasks in 1..=partitions as usize {
                        let mut per_member = vec![0usize; members as usize];
                        for partition in &held[..tasks] {
                            per_member[round_robin(*partition, members) as usize] += 1;
                        }
                        let (fewest, most) = (
                            per_member.iter().min().copied().unwrap_or_default(),
                            per_member.iter().max().copied().unwrap_or_default(),
                        );
                        assert!(
                            most - fewest <= 1,
                            "{tasks} tasks of {name} over {members} of {partitions} partitions: {per_member:?}"
                        );
                    }
                }
                // More tasks than partitions: the run repeats.
                assert_eq!(
                    partition_of(Unit::task(&name, partitions as u32 + 1), partitions),
                    held[1 % partitions as usize]
                );
            }
            assert_eq!(homes.len(), partitions as usize, "every home is used");
        }
    }
}
