//! The incremental query against the real slurmdbd: `sacct -S T -E <end>` without
//! `--state` (what a daemon cycle between full checks asks, docs/collection.md
//! "Incremental cycles") lists every job of the whole-day windows whose record can still
//! change after T: pending, running, or ended at or after T, and nothing those windows
//! lack.

use chrono::{DateTime, Utc};
use std::collections::BTreeMap;

use crate::rig::Rig;
use crate::sacct::{is_final, window_lines, window_lines_with};
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

/// A window around the job mix: from two days ago to tomorrow.
fn recent() -> (DateTime<Utc>, DateTime<Utc>) {
    let now = Utc::now();
    (
        now - chrono::Duration::days(2),
        now + chrono::Duration::days(1),
    )
}

#[test]
fn the_incremental_window_holds_every_job_that_can_still_change() {
    let Some(_) = first() else { return };
    let rig = Rig::from_env();
    let (start, end) = recent();
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

/// The by-id query a cycle makes for jobs whose end reached slurmdbd after its window had
/// passed them (`collect/late.rs`): `sacct --jobs=<JobIDRaw,...>` within a window returns
/// the jobs named, array tasks by their own raw id included, each with its final state,
/// and no job other than those (or the tasks of an array named by its id).
#[test]
fn jobs_asked_for_by_raw_id_come_back_with_their_final_record() {
    let Some(_) = first() else { return };
    let rig = Rig::from_env();
    let (start, end) = recent();
    let lines =
        window_lines(&rig, start, end, "JobID,JobIDRaw,State").unwrap_or_else(|e| panic!("{e}"));
    let finished: BTreeMap<String, (String, String)> = lines
        .iter()
        .filter_map(|l| match l.split('|').collect::<Vec<_>>()[..] {
            [id, raw, state] if is_final(state) => {
                Some((id.to_string(), (raw.to_string(), state.to_string())))
            }
            _ => None,
        })
        .collect();
    // Every other finished job, so the answer must leave the rest out; an array task when
    // there is one, asked for by its raw id.
    let mut asked: BTreeMap<&String, &(String, String)> = finished.iter().step_by(2).collect();
    if let Some((id, v)) = finished.iter().find(|(id, _)| id.contains('_')) {
        asked.insert(id, v);
    }
    assert!(
        !asked.is_empty() && asked.len() < finished.len(),
        "the mix needs finished jobs to ask for and to leave out: {finished:?}"
    );
    let ids: Vec<&str> = asked.values().map(|(raw, _)| raw.as_str()).collect();
    let jobs = format!("--jobs={}", ids.join(","));
    let got: BTreeMap<String, String> =
        window_lines_with(&rig, start, end, "JobID,State", &[&jobs])
            .unwrap_or_else(|e| panic!("{e}"))
            .iter()
            .filter_map(|l| l.split_once('|'))
            .map(|(id, state)| (id.to_string(), state.to_string()))
            .collect();
    for (id, (raw, state)) in &asked {
        assert_eq!(
            got.get(id.as_str()),
            Some(state),
            "{id} (raw {raw}) in sacct --jobs={}: {got:?}",
            ids.join(",")
        );
    }
    // The only others: tasks of an array whose id is one of the raw ids asked for (the
    // last task of an array keeps the array's id as its raw id, and `--jobs=<array id>`
    // means every task). The collector keeps only the jobs it asked about.
    let others: Vec<&String> = got
        .keys()
        .filter(|id| !asked.contains_key(id))
        .filter(|id| {
            !id.split_once('_')
                .is_some_and(|(array, _)| ids.contains(&array))
        })
        .collect();
    assert!(
        others.is_empty(),
        "jobs not asked for in sacct --jobs={}: {others:?}",
        ids.join(",")
    );
}
