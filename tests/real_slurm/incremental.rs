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
    // The mix ran minutes ago: T a few minutes back splits it into jobs that ended before
    // and jobs that ended after, are running or are pending.
    let t = now - chrono::Duration::minutes(3);
    let (start, end) = (
        now - chrono::Duration::days(2),
        now + chrono::Duration::days(1),
    );
    let whole = window(&rig, start, end).unwrap_or_else(|e| panic!("{e}"));
    let incremental = window(&rig, t, end).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        whole.values().any(|(s, _)| !is_final(s)),
        "the mix has unfinished jobs: {whole:?}"
    );
    let mut missing = Vec::new();
    for (id, (state, ended)) in &whole {
        let ended_at = chrono::NaiveDateTime::parse_from_str(ended, "%Y-%m-%dT%H:%M:%S");
        let can_change = !is_final(state)
            || match ended_at {
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
}
