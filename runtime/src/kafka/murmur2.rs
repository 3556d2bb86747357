//! The partition the Java client (and so Kafka Connect) puts a keyed
//! record in: `toPositive(murmur2(key)) % partitions`. Data records get it
//! from librdkafka's `murmur2_random` partitioner (`producer.rs`); this is
//! for where sluice must name the partition itself: the offset records a
//! transactional producer writes, so compaction keeps one value per key
//! as on a topic Connect writes; and the group's placement of a connector
//! by its name.

/// Kafka's 32-bit murmur2 of `data` (seed 0x9747b28c), as the Java client
/// computes it.
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
    let tail = chunks.remainder();
    if tail.len() >= 3 {
        h ^= u32::from(tail[2]) << 16;
    }
    if tail.len() >= 2 {
        h ^= u32::from(tail[1]) << 8;
    }
    if !tail.is_empty() {
        h ^= u32::from(tail[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// The partition of `key` on a topic of `partitions` partitions, as the
/// Java client's default partitioner chooses it.
pub fn partition_for_key(key: &[u8], partitions: i32) -> i32 {
    (murmur2(key) & 0x7fff_ffff) % partitions.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The Java client's own test vectors (`UtilsTest.testMurmur2`), and
    /// one Connect offset key checked against kafka-python's port.
    #[test]
    fn hashes_as_the_java_client() {
        let cases: [(&[u8], i32); 6] = [
            (b"21", -973_932_308),
            (b"foobar", -790_332_482),
            (b"a-little-bit-long-string", -985_981_536),
            (b"a-little-bit-longer-string", -1_486_304_829),
            (
                b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
                -58_897_971,
            ),
            (b"abc", 479_470_107),
        ];
        for (data, hash) in cases {
            assert_eq!(murmur2(data), hash, "{}", String::from_utf8_lossy(data));
        }
        assert_eq!(partition_for_key(br#"["pg",{"server":"x"}]"#, 25), 22);
        assert_eq!(partition_for_key(b"21", 25), 15);
    }
}
