//! Which connectors this worker runs: those whose name hashes into a
//! partition the group assigned it, while its lease on the group holds.
//!
//! The hash is Kafka's murmur2 (the Java client's partitioner), so where a
//! connector runs follows from its name and the assignment alone, the same
//! on every worker.

use std::collections::BTreeSet;
use std::sync::RwLock;

use super::lease::Lease;
use crate::herder::Placement;

/// Kafka's `Utils.murmur2`.
pub fn murmur2(data: &[u8]) -> i32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let mut h = SEED ^ data.len() as u32;
    let mut chunks = data.chunks_exact(4);
    for chunk in &mut chunks {
        let mut k = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let rest = chunks.remainder();
    if rest.len() >= 3 {
        h ^= u32::from(rest[2]) << 16;
    }
    if rest.len() >= 2 {
        h ^= u32::from(rest[1]) << 8;
    }
    if !rest.is_empty() {
        h ^= u32::from(rest[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// The partition a connector belongs to among `partitions`.
pub fn partition_of(connector: &str, partitions: i32) -> i32 {
    (murmur2(connector.as_bytes()) & 0x7fff_ffff) % partitions.max(1)
}

/// A worker's share of the group's connectors.
pub struct GroupPlacement {
    partitions: i32,
    owned: RwLock<BTreeSet<i32>>,
    lease: std::sync::Arc<Lease>,
}

impl GroupPlacement {
    /// A placement over `partitions` units, owning none until assigned.
    pub fn new(partitions: i32, lease: std::sync::Arc<Lease>) -> Self {
        Self {
            partitions,
            owned: RwLock::new(BTreeSet::new()),
            lease,
        }
    }

    /// Replaces the partitions this worker owns.
    pub fn set_owned(&self, owned: BTreeSet<i32>) {
        *self.owned.write().unwrap_or_else(|e| e.into_inner()) = owned;
    }

    /// The partitions this worker owns.
    pub fn owned(&self) -> BTreeSet<i32> {
        self.owned.read().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl Placement for GroupPlacement {
    fn owns(&self, connector: &str) -> bool {
        self.lease.holds()
            && self
                .owned
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .contains(&partition_of(connector, self.partitions))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn murmur2_is_kafkas() {
        // Kafka's own test vectors (UtilsTest.testMurmur2).
        for (text, hash) in [
            ("21", -973_932_308),
            ("foobar", -790_332_482),
            ("a-little-bit-long-string", -985_981_536),
            ("a-little-bit-longer-string", -1_486_304_829),
            (
                "lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
                -58_897_971,
            ),
            ("abc", 479_470_107),
        ] {
            assert_eq!(murmur2(text.as_bytes()), hash, "{text}");
        }
    }

    #[test]
    fn a_worker_owns_what_hashes_into_its_partitions_while_its_lease_holds() {
        let lease = std::sync::Arc::new(Lease::new(std::time::Duration::from_secs(5)));
        let placement = GroupPlacement::new(25, std::sync::Arc::clone(&lease));
        let p = partition_of("orders", 25);
        placement.set_owned(BTreeSet::from([p]));
        assert!(!placement.owns("orders"), "no lease yet");
        lease.renewed(std::time::Instant::now());
        assert!(placement.owns("orders"));
        placement.set_owned(BTreeSet::from([(p + 1) % 25]));
        assert!(!placement.owns("orders"));
    }
}
