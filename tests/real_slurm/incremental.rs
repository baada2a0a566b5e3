//! The incremental query against the real slurmdbd: `sacct -S T -E <end>` without
//! `--state` (what a daemon cycle between full checks asks, docs/collection.md
//! "Incremental cycles") lists every job of the whole-day windows whose record can still
//! change after T: pending, running, or ended at or after T, and nothing those windows
//! lack.

use chrono::{DateTime, Utc};
use std::collections::BTreeMap;

use crate::rig::Rig;
use crate::sacct::{is_final, window_lines};
use crate::setup::first;

/// Allocation lines of `sacct -a -X` for `[start, end)`: JobID -> (State, End).
fn window(
    rig: &Rig,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Result<BTreeMap<String, (String, String)>, String> {
    window_lines(rig, start, end, "JobID,State,End")?
        .iter()
        .map(|l| match l.split('|').collect::<Vec<_>>()[..] {
            [id, state, end] => Ok((id.to_string(), (state.to_string(), end.to_string()))),
            _ => Err(format!("sacct: unexpected line {l:?}")),
        })
        .collect()
}

#[test]
fn the_incremental_window_holds_every_job_that_can_still_change() {
    let Some(_) = first() else { return };
    let rig = Rig::from_env();
    let now = Utc::now();
    let (start, end) = (
        now - chrono::Duration::days(2),
        now + chrono::Duration::days(1),
    );
    let whole = window(&rig, start, end).unwrap_or_else(|e| panic!("{e}"));
    // T splits the mix: the middle of the distinct times its finished jobs ended at, so
    // some ended before T (the window must leave them out) and some at or after it (it must
    // hold them), whatever else ran or was cancelled before this test. Running and pending
    // jobs, when there are any, must be in it too.
    let parse = |e: &str| chrono::NaiveDateTime::parse_from_str(e, "%Y-%m-%dT%H:%M:%S");
    let mut ends: Vec<chrono::NaiveDateTime> = whole
        .values()
        .filter(|(s, _)| is_final(s))
        .filter_map(|(_, e)| parse(e).ok())
        .collect();
    ends.sort();
    ends.dedup();
    assert!(
        ends.len() >= 2,
        "the mix needs jobs that ended at two different times: {whole:?}"
    );
    let t = ends[ends.len() / 2].and_utc();
    let incremental = window(&rig, t, end).unwrap_or_else(|e| panic!("{e}"));
    let mut missing = Vec::new();
    for (id, (state, ended)) in &whole {
        let can_change = !is_final(state)
            || match parse(ended) {
                Ok(e) => e.and_utc() >= t,
                Err(_) => true,
            };
        if can_change && !incremental.contains_key(id) {
            missing.push(format!("{id} {state} end {ended}"));
        }
    }
    assert!(
        missing.is_empty(),
        "jobs of the whole window that can still change but are not in -S {t}: {missing:?}"
    );
    let extra: Vec<&String> = incremental
        .keys()
        .filter(|id| !whole.contains_key(*id))
        .collect();
    assert!(
        extra.is_empty(),
        "jobs only in the incremental window: {extra:?}"
    );
    assert!(
        incremental.len() < whole.len(),
        "-S {t} left out none of the jobs that ended before it: {whole:?}"
    );
}
