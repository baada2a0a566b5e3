//! Deduplication: a job recorded more than once counts once, the record with the newest
//! `processed_date` winning, ties to the later file (`docs/reports.md`).
//!
//! The first pass keeps only a 64-bit hash per job id ([`id_hash`]); [`repeated_hashes`]
//! finds the hashes seen twice; the rows behind them are held back whole in the second pass
//! and [`resolve_duplicates`] compares their ids exactly, so a hash collision costs memory,
//! never a job.

use std::hash::Hasher;

use crate::fxhash::{FxHashSet, FxHasher};
use crate::report::scan::OwnedRow;

/// A 64-bit hash of a job id for the dedupe pass: Fx over the bytes, the length mixed in,
/// then a SplitMix finaliser so the bits spread well. Collisions are harmless (the ids of
/// colliding rows are compared exactly later), they only cost a little memory.
pub(super) fn id_hash(id: &str) -> u64 {
    let mut h = FxHasher::default();
    h.write(id.as_bytes());
    h.write_u64(id.len() as u64);
    let mut z = h.finish();
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Keeps one record per job id: the newest `processed_date`, ties to the later position.
/// `rows` are `(position, row)`; returns the winners in position order and how many lost.
pub(super) fn resolve_duplicates(
    mut rows: Vec<((usize, usize), OwnedRow)>,
) -> (Vec<OwnedRow>, u64) {
    let n = rows.len();
    rows.sort_by(|a, b| {
        a.1.job_id
            .cmp(&b.1.job_id)
            .then(a.1.m.processed_date.cmp(&b.1.m.processed_date))
            .then(a.0.cmp(&b.0))
    });
    let mut winners: Vec<((usize, usize), OwnedRow)> = Vec::new();
    for (pos, row) in rows {
        match winners.last_mut() {
            Some(last) if last.1.job_id == row.job_id => *last = (pos, row),
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
