//! Where each job of one date's sacct output goes: a pure decision, made before anything is
//! written (docs/collection.md, "Jobs that move between dates").
//!
//! sacct's window for a date returns the jobs that *ran* in it, so a date's output also holds
//! jobs that belong to other dates (a job belongs to the date of its start, or of its submit
//! if it never started). Each such job is written to its own date now, held until its own
//! date's output is applied in this cycle, or dropped because that output already wrote it.

use std::collections::{HashMap, HashSet};

use chrono::NaiveDate;

use super::attribution;
use crate::fxhash::FxHashSet;
use crate::model::{ProcessedJob, Text};
use crate::zone::Zone;

/// Where a job of a date's output goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Route {
    /// It belongs to the date being applied (found so while its rows streamed in).
    Here,
    /// It belongs here after all, though its rows were set aside while streaming (a job
    /// whose start or submit time is not known when its first row arrives).
    BackHere,
    /// It was archived here (pending) and started on a later date: it is written there
    /// before it is removed here, so a crash leaves a duplicate, never a loss.
    Move(NaiveDate),
    /// Written into another date's partitions now: that date is not queried this cycle, or
    /// its output was applied already and lacked the job.
    Upsert(NaiveDate),
    /// Held for another date of this cycle whose output is not applied yet: that output
    /// normally holds the job too; if its sacct fails, the job is written at the cycle's end.
    Stash(NaiveDate),
    /// Its own date's output, applied earlier this cycle, wrote it already.
    Drop,
}

impl Route {
    /// Whether the job stays in the date being applied.
    pub(super) fn stays(self) -> bool {
        matches!(self, Route::Here | Route::BackHere)
    }
}

/// What routing needs to know besides the job.
pub(super) struct Routing<'a> {
    /// The date whose output is applied.
    pub date: NaiveDate,
    pub zone: &'a Zone,
    /// Job ids in that date's archived partition.
    pub archived: &'a FxHashSet<&'a str>,
    /// Their JobIDRaw: a job archived there under another JobID (a job array's record of
    /// its tasks not started then, `writer::superseded`) counts as archived there.
    pub archived_raw: &'a FxHashSet<&'a str>,
    /// Dates this cycle queries.
    pub cycle_dates: &'a HashSet<NaiveDate>,
    /// Job ids each date of this cycle wrote from its own output so far.
    pub written: &'a HashMap<NaiveDate, FxHashSet<Text>>,
}

impl Routing<'_> {
    /// The route of `job`; `streamed_here` says its rows went to this date while streaming.
    pub(super) fn route(&self, job: &ProcessedJob, streamed_here: bool) -> Route {
        // A job found to be this date's while streaming stays: no second look.
        if streamed_here {
            return Route::Here;
        }
        let other = match attribution(job, self.zone) {
            Some(d) if d != self.date => d,
            _ => return Route::BackHere,
        };
        let raw = job.job_id_raw.as_str();
        if self.archived.contains(job.job_id.as_str())
            || (!raw.is_empty() && self.archived_raw.contains(raw))
        {
            Route::Move(other)
        } else if !self.cycle_dates.contains(&other) {
            Route::Upsert(other)
        } else {
            match self.written.get(&other) {
                Some(written) if written.contains(&job.job_id) => Route::Drop,
                Some(_) => Route::Upsert(other),
                None => Route::Stash(other),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::DateTime;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn us(s: &str) -> Option<i64> {
        Some(DateTime::parse_from_rfc3339(s).unwrap().timestamp_micros())
    }

    fn job(id: &str, submit: &str, start: Option<&str>) -> ProcessedJob {
        ProcessedJob {
            job_id: id.into(),
            submit_time: us(submit),
            start_time: start.and_then(us),
            ..Default::default()
        }
    }

    /// Routes `j` as an output of 2026-11-24 in a cycle over `cycle`, with `archived` ids in
    /// that date's partition (`id@raw` gives one its JobIDRaw) and `written` ids per date
    /// already applied.
    fn route_of(
        j: &ProcessedJob,
        streamed_here: bool,
        archived: &[&str],
        cycle: &[&str],
        written: &[(&str, &[&str])],
    ) -> Route {
        let zone: Zone = "UTC".parse().unwrap();
        let keys: Vec<(&str, Option<&str>)> = (archived.iter())
            .map(|a| match a.split_once('@') {
                Some((id, raw)) => (id, Some(raw)),
                None => (*a, None),
            })
            .collect();
        let archived: FxHashSet<&str> = keys.iter().map(|(id, _)| *id).collect();
        let archived_raw: FxHashSet<&str> = keys.iter().filter_map(|(_, raw)| *raw).collect();
        let cycle_dates: HashSet<NaiveDate> = cycle.iter().map(|s| d(s)).collect();
        let written: HashMap<NaiveDate, FxHashSet<Text>> = written
            .iter()
            .map(|(date, ids)| (d(date), ids.iter().map(|i| Text::from(*i)).collect()))
            .collect();
        Routing {
            date: d("2026-11-24"),
            zone: &zone,
            archived: &archived,
            archived_raw: &archived_raw,
            cycle_dates: &cycle_dates,
            written: &written,
        }
        .route(j, streamed_here)
    }

    const CYCLE: &[&str] = &["2026-11-23", "2026-11-24", "2026-11-25"];

    #[test]
    fn a_job_streamed_here_stays_without_a_second_look() {
        // Even one whose times say another date: streaming already decided.
        let j = job("1", "2026-11-25T10:00:00Z", Some("2026-11-25T11:00:00Z"));
        assert_eq!(route_of(&j, true, &[], CYCLE, &[]), Route::Here);
    }

    #[test]
    fn a_job_set_aside_while_streaming_that_belongs_here_comes_back() {
        let j = job("1", "2026-11-24T10:00:00Z", Some("2026-11-24T11:00:00Z"));
        assert_eq!(route_of(&j, false, &[], CYCLE, &[]), Route::BackHere);
        // No time at all: nothing to attribute it elsewhere by.
        let none = ProcessedJob {
            job_id: "2".into(),
            ..Default::default()
        };
        assert_eq!(route_of(&none, false, &[], CYCLE, &[]), Route::BackHere);
    }

    #[test]
    fn an_array_task_archived_here_as_the_pending_rest_moves() {
        // `70_[2-3]` (JobIDRaw 70) was archived here while pending; its last task `70_3`
        // keeps JobIDRaw 70 and started on the 25th: the same record, so it moves.
        let mut j = job("70_3", "2026-11-24T22:00:00Z", Some("2026-11-25T01:00:00Z"));
        j.job_id_raw = "70".into();
        assert_eq!(
            route_of(&j, false, &["70_[2-3]@70"], CYCLE, &[]),
            Route::Move(d("2026-11-25"))
        );
        // Another task, with a JobIDRaw of its own, is not that record.
        let mut other = job("70_2", "2026-11-24T22:00:00Z", Some("2026-11-25T00:30:00Z"));
        other.job_id_raw = "72".into();
        assert_eq!(
            route_of(&other, false, &["70_[2-3]@70"], &["2026-11-24"], &[]),
            Route::Upsert(d("2026-11-25"))
        );
    }

    #[test]
    fn a_pending_job_archived_here_that_started_later_moves() {
        // Submitted on the 24th, archived there while pending, started on the 25th.
        let j = job("7", "2026-11-24T22:00:00Z", Some("2026-11-25T01:00:00Z"));
        assert_eq!(
            route_of(&j, false, &["7"], CYCLE, &[]),
            Route::Move(d("2026-11-25"))
        );
        // It moves even when the 25th already wrote it this cycle: it must leave the 24th.
        assert_eq!(
            route_of(&j, false, &["7"], CYCLE, &[("2026-11-25", &["7"])]),
            Route::Move(d("2026-11-25"))
        );
        // And when the 25th is not queried at all.
        assert_eq!(
            route_of(&j, false, &["7"], &["2026-11-24"], &[]),
            Route::Move(d("2026-11-25"))
        );
    }

    #[test]
    fn a_job_of_a_date_outside_the_cycle_is_written_there_now() {
        // Started on the 20th and still running into the 24th's window.
        let j = job("3", "2026-11-20T08:00:00Z", Some("2026-11-20T09:00:00Z"));
        assert_eq!(
            route_of(&j, false, &[], CYCLE, &[]),
            Route::Upsert(d("2026-11-20"))
        );
    }

    #[test]
    fn a_job_of_a_later_date_of_the_cycle_waits_for_that_date() {
        let j = job("4", "2026-11-25T08:00:00Z", Some("2026-11-25T09:00:00Z"));
        assert_eq!(
            route_of(&j, false, &[], CYCLE, &[]),
            Route::Stash(d("2026-11-25"))
        );
    }

    #[test]
    fn a_job_its_own_date_already_wrote_is_dropped_else_written_there() {
        let j = job("5", "2026-11-23T08:00:00Z", Some("2026-11-23T09:00:00Z"));
        assert_eq!(
            route_of(&j, false, &[], CYCLE, &[("2026-11-23", &["5", "6"])]),
            Route::Drop
        );
        // That date's output lacked it (sacct's windows differ by a job at the edge).
        assert_eq!(
            route_of(&j, false, &[], CYCLE, &[("2026-11-23", &["6"])]),
            Route::Upsert(d("2026-11-23"))
        );
    }

    #[test]
    fn a_job_that_never_started_belongs_to_its_submit_date() {
        let j = job("8", "2026-11-23T23:30:00Z", None);
        assert_eq!(
            route_of(&j, false, &[], CYCLE, &[]),
            Route::Stash(d("2026-11-23"))
        );
    }

    #[test]
    fn only_here_and_back_here_stay() {
        let other = d("2026-11-25");
        for (r, stays) in [
            (Route::Here, true),
            (Route::BackHere, true),
            (Route::Move(other), false),
            (Route::Upsert(other), false),
            (Route::Stash(other), false),
            (Route::Drop, false),
        ] {
            assert_eq!(r.stays(), stays, "{r:?}");
        }
    }
}
