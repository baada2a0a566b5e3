//! Deduplication: a job recorded more than once counts once, the record with the newest
//! `processed_date` winning, ties to the later file (`docs/reports.md`).
//!
//! A job is `(cluster, job_id)`: Slurm numbers jobs per cluster, so the same id on two
//! clusters is two jobs, and the same id on one cluster in two files is one job recorded
//! twice.
//!
//! The first pass keeps only a 64-bit hash per job ([`job_hash`] of the row's cluster and
//! id); [`repeated_hashes`] finds the hashes seen twice; the rows behind them are held back
//! whole in the second pass and [`resolve_duplicates`] compares cluster and id exactly, so
//! a hash collision costs memory, never a job.

use std::hash::Hasher;

use crate::fxhash::{FxHashSet, FxHasher};
use crate::report::scan::OwnedRow;

/// The hasher state after a cluster name: computed once per distinct cluster of a batch
/// (the column is dictionary-encoded), then copied for each row's [`job_hash`].
pub(super) fn cluster_seed(cluster: &str) -> FxHasher {
    let mut h = FxHasher::default();
    h.write(cluster.as_bytes());
    h.write_u64(cluster.len() as u64);
    h
}

/// A 64-bit hash of a job (its cluster's [`cluster_seed`] and its id) for the dedupe pass:
/// Fx over the bytes, the lengths mixed in, then a SplitMix finaliser so the bits spread
/// well. Collisions are harmless (the cluster and id of colliding rows are compared exactly
/// later), they only cost a little memory.
#[inline]
pub(super) fn job_hash(mut h: FxHasher, id: &str) -> u64 {
    h.write(id.as_bytes());
    h.write_u64(id.len() as u64);
    let mut z = h.finish();
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Keeps one record per job `(cluster, job_id)`: the newest `processed_date`, ties to the
/// later position.
/// `rows` are `(position, row)`; returns the winners in position order and how many lost.
pub(super) fn resolve_duplicates(
    mut rows: Vec<((usize, usize), OwnedRow)>,
) -> (Vec<OwnedRow>, u64) {
    let n = rows.len();
    rows.sort_by(|a, b| {
        (a.1.cluster.as_str(), a.1.job_id.as_str())
            .cmp(&(b.1.cluster.as_str(), b.1.job_id.as_str()))
            .then(a.1.m.processed_date.cmp(&b.1.m.processed_date))
            .then(a.0.cmp(&b.0))
    });
    let mut winners: Vec<((usize, usize), OwnedRow)> = Vec::new();
    for (pos, row) in rows {
        match winners.last_mut() {
            Some(last) if last.1.job_id == row.job_id && last.1.cluster == row.cluster => {
                *last = (pos, row)
            }
            _ => winners.push((pos, row)),
        }
    }
    let lost = (n - winners.len()) as u64;
    winners.sort_by_key(|w| w.0);
    (winners.into_iter().map(|(_, r)| r).collect(), lost)
}

/// Hashes that occur more than once in `all`: sorted in `threads` chunks at once, then the
/// sorted chunks are walked together (k is small, so picking the smallest head is a scan).
pub(super) fn repeated_hashes(mut all: Vec<u64>, threads: usize) -> FxHashSet<u64> {
    let mut out = FxHashSet::default();
    if all.is_empty() {
        return out;
    }
    let chunk = all.len().div_ceil(threads.max(1));
    std::thread::scope(|s| {
        for c in all.chunks_mut(chunk) {
            s.spawn(move || c.sort_unstable());
        }
    });
    let lists: Vec<&[u64]> = all.chunks(chunk).collect();
    let mut idx = vec![0usize; lists.len()];
    let mut last: Option<u64> = None;
    loop {
        let mut best: Option<(usize, u64)> = None;
        for (k, l) in lists.iter().enumerate() {
            if let Some(&v) = l.get(idx[k]) {
                if best.is_none_or(|(_, b)| v < b) {
                    best = Some((k, v));
                }
            }
        }
        let Some((k, v)) = best else { break };
        if last == Some(v) {
            out.insert(v);
        }
        last = Some(v);
        idx[k] += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_hashes_across_and_within_chunks() {
        for threads in [1, 2, 3, 8] {
            let s = repeated_hashes(vec![5, 1, 3, 2, 3, 9, 9, 7, 5], threads);
            let mut v: Vec<u64> = s.into_iter().collect();
            v.sort();
            assert_eq!(v, [3, 5, 9], "{threads} threads");
        }
    }

    #[test]
    fn a_job_is_its_cluster_and_id() {
        let h = |c: &str, id: &str| job_hash(cluster_seed(c), id);
        assert_eq!(h("a", "1"), h("a", "1"));
        assert_ne!(h("a", "1"), h("b", "1"));
        // The lengths are mixed in: the boundary between cluster and id matters.
        assert_ne!(h("a", "11"), h("a1", "1"));
        let rec = |cluster: &str, id: &str, processed: i64| {
            let mut r = OwnedRow {
                job_id: id.into(),
                cluster: cluster.into(),
                ..Default::default()
            };
            r.m.processed_date = processed;
            r
        };
        let rows = vec![
            ((0, 0), rec("a", "1", 1)),
            ((1, 0), rec("b", "1", 1)),
            ((0, 1), rec("a", "1", 2)),
        ];
        let (winners, lost) = resolve_duplicates(rows);
        let kept: Vec<(&str, i64)> = winners
            .iter()
            .map(|r| (r.cluster.as_str(), r.m.processed_date))
            .collect();
        assert_eq!(kept, [("a", 2), ("b", 1)]);
        assert_eq!(lost, 1);
    }

    #[test]
    fn the_newest_record_wins_and_ties_go_to_the_later_position() {
        let rec = |id: &str, processed: i64, user: &str| {
            let mut r = OwnedRow {
                job_id: id.into(),
                user: user.into(),
                ..Default::default()
            };
            r.m.processed_date = processed;
            r
        };
        let rows = vec![
            ((0, 0), rec("1", 2, "newest")),
            ((0, 1), rec("2", 1, "only")),
            ((1, 0), rec("1", 1, "older")),
            ((1, 1), rec("3", 1, "first")),
            ((2, 0), rec("3", 1, "later file")),
        ];
        let (winners, lost) = resolve_duplicates(rows);
        let users: Vec<&str> = winners.iter().map(|r| r.user.as_str()).collect();
        assert_eq!(users, ["newest", "only", "later file"]);
        assert_eq!(lost, 2);
    }
}
