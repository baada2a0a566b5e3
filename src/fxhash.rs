//! A fast hasher for maps keyed by job ids, row indices and the names a report counts by.
//!
//! The standard SipHash guards against keys chosen to collide; our keys are Slurm job ids
//! (digits, `_`, `+`, `.`), indices, and user, partition, state and node names from our own
//! archive, which nobody shapes to collide. Hashing them was a few percent of a collection
//! and of an `analyze` over millions of jobs. This is the multiply-rotate hash rustc uses
//! (FxHash); the one copy in the crate.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

/// See the module docs.
#[derive(Default, Clone, Copy)]
pub struct FxHasher {
    hash: u64,
}

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl FxHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.add(u64::from_le_bytes(c.try_into().expect("8 bytes")));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut last = [0u8; 8];
            last[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(last));
        }
    }

    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(i.into());
    }

    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }

    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.hash
    }
}

/// A `HashMap` with the Fx hash.
pub type FxHashMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;
/// A `HashSet` with the Fx hash.
pub type FxHashSet<K> = HashSet<K, BuildHasherDefault<FxHasher>>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distinct_ids_land_in_a_map_and_are_found() {
        let mut m: FxHashMap<String, usize> = FxHashMap::default();
        for i in 0..10_000 {
            m.insert(format!("{i}_{}.batch", i % 7), i);
        }
        assert_eq!(m.len(), 10_000);
        assert_eq!(m.get("4242_0.batch"), Some(&4242));
        assert_eq!(m.get("4242_1.batch"), None);
    }

    #[test]
    fn a_u64_hashes_as_its_little_endian_bytes() {
        let (mut a, mut b) = (FxHasher::default(), FxHasher::default());
        a.write_u64(0x0123_4567_89ab_cdef);
        b.write(&0x0123_4567_89ab_cdef_u64.to_le_bytes());
        assert_eq!(a.finish(), b.finish());
    }
}
