//! A hasher for maps looked up once or twice per record with a number for
//! key (a schema's address, a schema id): one multiplication instead of
//! SipHash's ~140 instructions (callgrind, `scripts/bench-postgres` and
//! `scripts/bench-sink`).
//!
//! Only for keys nobody outside can pile into one bucket: addresses are
//! the allocator's, and the schema ids cached are the registry's (a
//! message naming an unknown id is looked up, not cached).

use std::hash::{BuildHasherDefault, Hasher};

/// The `BuildHasher` of maps keyed by addresses or schema ids.
pub type NumberHashing = BuildHasherDefault<NumberHasher>;

/// See the module documentation.
#[derive(Default)]
pub struct NumberHasher(u64);

const SPREAD: u64 = 0x9e_37_79_b9_7f_4a_7c_15;

impl Hasher for NumberHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(5) ^ u64::from(b)).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
        }
    }

    fn write_usize(&mut self, address: usize) {
        // Allocations are aligned: the low bits carry nothing.
        self.0 = ((address as u64) >> 4).wrapping_mul(SPREAD);
    }

    fn write_i32(&mut self, id: i32) {
        self.0 = u64::from(id as u32).wrapping_mul(SPREAD);
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[test]
    fn neighbouring_ids_and_addresses_land_apart() {
        let hash = |f: &dyn Fn(&mut NumberHasher)| {
            let mut h = NumberHasher::default();
            f(&mut h);
            h.finish()
        };
        // hashbrown picks buckets by the low bits and groups by the top 7.
        let ids: std::collections::HashSet<u64> = (1..=64)
            .map(|id| hash(&|h| h.write_i32(id)) >> 57)
            .collect();
        assert!(ids.len() > 32, "ids 1..=64 share top bits: {ids:?}");
        let addresses: std::collections::HashSet<u64> = (0..64usize)
            .map(|i| hash(&|h| h.write_usize(0x7f00_0000 + i * 16)) & 63)
            .collect();
        assert!(
            addresses.len() > 32,
            "addresses share low bits: {addresses:?}"
        );
        let mut map: HashMap<i32, i32, NumberHashing> = HashMap::default();
        map.extend((-5..100).map(|id| (id, id * 2)));
        assert!((-5..100).all(|id| map.get(&id) == Some(&(id * 2))));
    }
}
