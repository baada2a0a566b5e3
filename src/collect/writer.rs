//! The single writer: applies one date's fresh output to the data dir, one date at a time.
//!
//! Jobs are attributed to the date of their start (or submit, if never started). A job that
//! moved to another date is written there before it is removed here, and raw is renamed
//! before processed: a crash leaves a duplicate or raw rows without their processed job
//! (rebuilt by the next collection), never a loss.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveDate, Utc};
use tracing::{info, warn};

use super::day::Day;
use super::{attribution, is_date_complete, DateOutcome, DateReport};
use crate::fxhash::FxHashSet;
use crate::model::{ProcessedJob, Text};
use crate::sacct::fields::FieldLayout;
use crate::sacct::parser::Malformed;
use crate::store::parquet::{self, Existing, Meta, StoreError};
use crate::store::raw;
use crate::store::tracker::{DateInfo, Tracker, TrackerError};
use crate::store::{DataDir, Kind};
use crate::zone::Zone;

/// A job of one date's output that belongs to another date of this cycle, kept until that
/// date's own output is applied (it normally holds the job too, being what sacct reports for
/// that day) or, if that date fails, written on its own at the end of the cycle.
/// Where a job of a date's output goes.
#[derive(Clone, Copy)]
enum Route {
    /// It belongs to the date being applied.
    Here,
    /// It belongs here, though its rows were set aside while streaming.
    BackHere,
    /// Written into another date's partitions now.
    Upsert(NaiveDate),
    /// Held for another date of this cycle (see [`Stashed`]).
    Stash(NaiveDate),
    /// Already written by its own date's output this cycle.
    Drop,
}

pub(super) struct Stashed {
    job: ProcessedJob,
    raw: Vec<String>,
}

/// The single writer: applies one date's fresh output to the data dir.
pub(super) struct Writer {
    pub(super) data: DataDir,
    pub(super) zone: Zone,
    pub(super) settle: Duration,
    pub(super) layout: Arc<FieldLayout>,
    /// Dates this cycle queries.
    pub(super) cycle_dates: HashSet<NaiveDate>,
    /// Job ids each date of this cycle has written from its own output.
    pub(super) written: HashMap<NaiveDate, FxHashSet<Text>>,
    /// Jobs waiting for their date's output (see [`Stashed`]).
    pub(super) stash: BTreeMap<NaiveDate, Vec<Stashed>>,
    pub(super) tracker: Tracker,
    pub(super) sacct_version: String,
}

impl Writer {
    pub(super) fn meta(&self, date: NaiveDate) -> Meta {
        Meta {
            date,
            sacct_version: self.sacct_version.clone(),
            timezone: self.zone.name(),
        }
    }

    /// Merges date `date`'s fresh output into the archive and updates the tracker.
    pub(super) fn apply(
        &mut self,
        date: NaiveDate,
        day: Day,
        ran_at: DateTime<Utc>,
    ) -> Result<DateReport, StoreError> {
        log_malformed(date, &day.malformed);
        if day.lossy {
            warn!(date = %date, "sacct output held invalid UTF-8; replaced with U+FFFD");
        }
        if day.orphans > 0 {
            warn!(date = %date, rows = day.orphans, "step rows without their job line; kept in the raw archive only");
        }
        let Day {
            jobs,
            here: is_here,
            mut elsewhere,
            raw: stage,
            malformed,
            ..
        } = day;
        let started = Instant::now();
        let proc_path = self.data.partition(Kind::Processed, date);
        // The archived ids only: the archived jobs this output replaces are never built.
        let archived = self.unless_moved_aside(date, parquet::read_processed_ids(&proc_path)?);

        // Where each job of this output goes.
        let existing_ids: FxHashSet<&str> = archived.iter().map(String::as_str).collect();
        let mut moved_ids: HashSet<Text> = HashSet::new();
        let mut moved_raw: HashSet<Text> = HashSet::new();
        let routes: Vec<Route> = jobs
            .iter()
            .enumerate()
            .map(|(i, job)| {
                // A job found to be this date's while streaming stays: no second look.
                if is_here[i] {
                    return Route::Here;
                }
                let other = match attribution(job, &self.zone) {
                    Some(d) if d != date => d,
                    // Rows routed away while streaming whose job stays (never expected).
                    _ => return Route::BackHere,
                };
                if existing_ids.contains(job.job_id.as_str()) {
                    // It lived here (e.g. pending) and started on a later date: it moves,
                    // and must be written there before it is removed here.
                    moved_ids.insert(job.job_id.clone());
                    moved_raw.insert(job.job_id_raw.clone());
                    Route::Upsert(other)
                } else if !self.cycle_dates.contains(&other) {
                    Route::Upsert(other)
                } else if let Some(written) = self.written.get(&other) {
                    if written.contains(&job.job_id) {
                        Route::Drop
                    } else {
                        Route::Upsert(other)
                    }
                } else {
                    Route::Stash(other)
                }
            })
            .collect();
        drop(existing_ids);
        // Jobs that leave for other dates are taken out, each by moving the last job into its
        // place: the partition is sorted when written, so the order here does not matter, and
        // a 100,000-job day (~60 MB of records) is never shifted as a whole.
        let mut fresh = jobs;
        let mut back_here: Vec<String> = Vec::new();
        for (i, route) in routes.iter().enumerate() {
            if matches!(route, Route::BackHere) {
                back_here.extend(elsewhere.remove(&i).unwrap_or_default());
            }
        }
        // From the end: every job above `i` that leaves is out already, so the job moved
        // into `i` stays.
        let mut gone: Vec<(usize, ProcessedJob)> = Vec::new();
        for (i, route) in routes.iter().enumerate().rev() {
            if !matches!(route, Route::Here | Route::BackHere) {
                gone.push((i, fresh.swap_remove(i)));
            }
        }
        let mut upserts: BTreeMap<NaiveDate, Vec<Stashed>> = BTreeMap::new();
        for (i, job) in gone.into_iter().rev() {
            let raw = elsewhere.remove(&i).unwrap_or_default();
            match routes[i] {
                Route::Upsert(d) => upserts.entry(d).or_default().push(Stashed { job, raw }),
                Route::Stash(d) => self.stash.entry(d).or_default().push(Stashed { job, raw }),
                Route::Here | Route::BackHere | Route::Drop => {}
            }
        }
        drop(elsewhere);
        drop(routes);
        if !moved_ids.is_empty() {
            info!(date = %date, jobs = moved_ids.len(), "jobs moved to the date they started on");
        }

        // Jobs other dates' outputs held for this date and this output lacks. The ids of
        // this output are gathered only when there is something to hold them against.
        let held = self.stash.remove(&date).unwrap_or_default();
        let fresh_ids: FxHashSet<&str> = if held.is_empty() && archived.is_empty() {
            FxHashSet::default()
        } else {
            fresh.iter().map(|j| j.job_id.as_str()).collect()
        };
        let stashed: Vec<Stashed> = held
            .into_iter()
            .filter(|s| !fresh_ids.contains(s.job.job_id.as_str()))
            .collect();

        // This date: the fresh jobs, archived jobs not replaced or moved, stashed jobs.
        let stashed_ids: HashSet<&str> = stashed.iter().map(|s| s.job.job_id.as_str()).collect();
        let stays = |id: &str| {
            !fresh_ids.contains(id) && !moved_ids.contains(id) && !stashed_ids.contains(id)
        };
        let kept: Vec<ProcessedJob> = if archived.iter().any(|id| stays(id)) {
            let kept = parquet::read_processed_where(&proc_path, &self.zone, &stays)?;
            self.unless_moved_aside(date, kept)
        } else {
            Vec::new()
        };
        drop(archived);
        drop(fresh_ids);
        drop(stashed_ids);
        let moved_raw: HashSet<&str> = moved_raw.iter().map(Text::as_str).collect();
        let extra_rows: Vec<&str> = back_here
            .iter()
            .map(String::as_str)
            .chain(
                stashed
                    .iter()
                    .flat_map(|s| s.raw.iter().map(String::as_str)),
            )
            .collect();
        let moved_out = moved_ids.len();
        // A fresh job here that was archived earlier under its submit date (pending then, and
        // outside that date's own sacct window as it became eligible later) leaves that date
        // once its new record is safely on disk.
        let stale = self.stale_copies(date, fresh.iter().chain(stashed.iter().map(|s| &s.job)));
        let mut merged = fresh;
        merged.extend(kept);
        merged.extend(stashed.iter().map(|s| s.job.clone()));

        let meta = self.meta(date);
        let routed = started.elapsed();
        // Encode this date's partitions (one thread each) while jobs that belong to other
        // dates are written there. Commit only when all of it succeeded: jobs moving away
        // are on disk at their new date first, and raw is renamed before processed, so a
        // crash in between leaves raw rows without their processed job (rebuilt by the next
        // collection), never a processed job without its raw rows.
        let t0 = Instant::now();
        let (raw, processed, upserted) = std::thread::scope(|scope| {
            let encode = scope.spawn(|| {
                let staged = parquet::stage_processed(&proc_path, &merged, &meta);
                (staged, t0.elapsed())
            });
            let finish = scope.spawn(|| {
                let raw = stage.finish(&extra_rows, &moved_raw);
                (raw, t0.elapsed())
            });
            let upserted = upserts
                .iter()
                .try_for_each(|(other, items)| self.upsert(*other, items, Some(date)));
            let (raw, raw_time) = finish.join().expect("encoding a partition does not panic");
            let (processed, processed_time) =
                encode.join().expect("encoding a partition does not panic");
            tracing::debug!(date = %date, raw_seconds = raw_time.as_secs_f64(), processed_seconds = processed_time.as_secs_f64(), "partitions encoded");
            (raw, processed, upserted)
        });
        upserted?;
        let upserted = started.elapsed();
        let (raw_staged, raw) = raw?;
        let processed = processed?;
        raw_staged.commit()?;
        processed.commit()?;
        let committed = started.elapsed();
        self.remove_stale(date, stale)?;
        let unstaled = started.elapsed();
        // Dates applied later in this cycle look up the jobs this date wrote; after the last
        // one, nothing does (a busy day's list is 100,000 ids).
        let later = (self.cycle_dates.iter()).any(|d| *d != date && !self.written.contains_key(d));
        if later {
            self.written
                .insert(date, merged.iter().map(|j| j.job_id.clone()).collect());
        }

        let incomplete_jobs = merged.iter().filter(|j| !j.is_complete).count();
        // A line that could not be parsed may hide a job: such a date is never final.
        let complete = malformed.is_empty()
            && is_date_complete(date, &self.zone, self.settle, ran_at, &merged);
        self.tracker.dates.insert(
            date.to_string(),
            DateInfo {
                last_collected: Some(ran_at),
                jobs: merged.len() as u64,
                incomplete_jobs: incomplete_jobs as u64,
                parse_errors: malformed.len() as u64,
            },
        );
        if complete {
            self.tracker.mark_complete(date);
        }
        // Save after every date: a crash later in the cycle keeps this date's facts.
        self.save_tracker()?;
        tracing::debug!(
            date = %date,
            routed = routed.as_secs_f64(),
            upserted = upserted.as_secs_f64(),
            committed = committed.as_secs_f64(),
            stale_removed = unstaled.as_secs_f64(),
            tracker_saved = started.elapsed().as_secs_f64(),
            "date applied (seconds since the start of the apply)"
        );
        info!(
            date = %date,
            jobs = merged.len(),
            incomplete_jobs,
            parse_errors = malformed.len(),
            raw_rows = raw.fresh,
            complete,
            "date collected"
        );
        Ok(DateReport {
            date,
            outcome: if complete {
                DateOutcome::Complete
            } else {
                DateOutcome::Incomplete
            },
            jobs: merged.len(),
            incomplete_jobs,
            moved_out,
            parse_errors: malformed.len(),
            raw_rows: raw.fresh,
            sacct_seconds: 0.0,
        })
    }

    /// What a read of `date`'s processed partition found; a file moved aside as unreadable
    /// reads as empty and the date loses its completion fact.
    fn unless_moved_aside<T: Default>(&mut self, date: NaiveDate, found: Existing<T>) -> T {
        if let Existing::MovedAside(_) = found {
            self.tracker.completed_dates.remove(&date.to_string());
        }
        found.into_inner()
    }

    /// Jobs just written to `date` whose submit date is another date: (that date, job id,
    /// raw id). Only those can have a stale copy elsewhere (a job lives under its submit date
    /// until it starts).
    fn stale_copies<'a>(
        &self,
        date: NaiveDate,
        jobs: impl Iterator<Item = &'a ProcessedJob>,
    ) -> BTreeMap<NaiveDate, Vec<(Text, Text)>> {
        let mut out: BTreeMap<NaiveDate, Vec<(Text, Text)>> = BTreeMap::new();
        // Most jobs were submitted on `date` itself: a range check, no time zone lookup.
        let (first, end) = (
            self.zone.day_start(date).timestamp_micros(),
            self.zone.day_end(date).timestamp_micros(),
        );
        for j in jobs {
            if j.submit_time.is_some_and(|t| (first..end).contains(&t)) {
                continue;
            }
            let submitted = j
                .submit_time
                .and_then(DateTime::from_timestamp_micros)
                .map(|t| self.zone.date_of(t));
            if let Some(s) = submitted.filter(|s| *s != date) {
                out.entry(s)
                    .or_default()
                    .push((j.job_id.clone(), j.job_id_raw.clone()));
            }
        }
        out
    }

    /// Removes stale copies of jobs now archived under `now_in` from the other dates'
    /// partitions (processed and raw). Dates without such a copy are left untouched.
    fn remove_stale(
        &mut self,
        now_in: NaiveDate,
        stale: BTreeMap<NaiveDate, Vec<(Text, Text)>>,
    ) -> Result<(), StoreError> {
        for (date, ids) in stale {
            let path = self.data.partition(Kind::Processed, date);
            if !path.exists() {
                continue;
            }
            // The date's ids first (one column): most dates hold none of these jobs, and
            // only a date that does is decoded whole. A set, not a scan per id: a busy day
            // can have 10^4 stale ids against 10^5 jobs.
            let archived_ids = parquet::read_processed_ids(&path)?.into_inner();
            let archived: HashSet<&str> = archived_ids.iter().map(String::as_str).collect();
            let gone: HashSet<&str> = ids
                .iter()
                .filter(|(id, _)| archived.contains(id.as_str()))
                .map(|(id, _)| id.as_str())
                .collect();
            if gone.is_empty() {
                continue;
            }
            let jobs = parquet::read_processed(&path, &self.zone)?.into_inner();
            let raw_ids: HashSet<&str> = ids
                .iter()
                .filter(|(id, _)| gone.contains(id.as_str()))
                .map(|(_, raw)| raw.as_str())
                .collect();
            let kept: Vec<ProcessedJob> = jobs
                .iter()
                .filter(|j| !gone.contains(j.job_id.as_str()))
                .cloned()
                .collect();
            let meta = self.meta(date);
            raw::merge_raw(
                &self.data.partition(Kind::Raw, date),
                &self.layout,
                &[],
                &[],
                &raw_ids,
                &meta,
            )?;
            parquet::write_processed(&path, &kept, &meta)?;
            info!(from = %date, to = %now_in, jobs = gone.len(), "jobs moved to the date they started on");
            let info = self.tracker.dates.entry(date.to_string()).or_default();
            info.jobs = kept.len() as u64;
            info.incomplete_jobs = kept.iter().filter(|j| !j.is_complete).count() as u64;
        }
        Ok(())
    }

    /// Writes the jobs still stashed for dates whose own output never came (sacct failed).
    pub(super) fn flush_stash(&mut self) -> Result<(), StoreError> {
        let stash = std::mem::take(&mut self.stash);
        for (date, items) in stash {
            self.upsert(date, &items, None)?;
        }
        self.save_tracker()
    }

    fn save_tracker(&mut self) -> Result<(), StoreError> {
        self.tracker
            .save(&self.data.tracker())
            .map_err(|e| match e {
                TrackerError::Write(w) => StoreError::Write(w),
                TrackerError::Read { path, source } => StoreError::Read { path, source },
            })
    }

    /// Writes `items` (jobs with their raw rows) into `date`'s partitions, replacing older
    /// records of the same jobs; skips the write when nothing changed.
    /// `applying` is the date being applied meanwhile: its own stale copies are its
    /// business (it drops jobs that moved away when it commits), so they are left alone.
    fn upsert(
        &mut self,
        date: NaiveDate,
        items: &[Stashed],
        applying: Option<NaiveDate>,
    ) -> Result<(), StoreError> {
        let path = self.data.partition(Kind::Processed, date);
        let mut existing = parquet::read_processed(&path, &self.zone)?.into_inner();
        let mut at: HashMap<Text, usize> = existing
            .iter()
            .enumerate()
            .map(|(i, j)| (j.job_id.clone(), i))
            .collect();
        let mut raw: Vec<&str> = Vec::new();
        for Stashed { job, raw: rows } in items {
            match at.get(&job.job_id) {
                Some(&k) if existing[k].same_content(job) => continue,
                Some(&k) => existing[k] = job.clone(),
                None => {
                    at.insert(job.job_id.clone(), existing.len());
                    existing.push(job.clone());
                }
            }
            raw.extend(rows.iter().map(String::as_str));
        }
        if raw.is_empty() {
            return Ok(());
        }
        let meta = self.meta(date);
        raw::merge_raw(
            &self.data.partition(Kind::Raw, date),
            &self.layout,
            &raw,
            &[],
            &HashSet::new(),
            &meta,
        )?;
        parquet::write_processed(&path, &existing, &meta)?;
        let mut stale = self.stale_copies(date, items.iter().map(|s| &s.job));
        if let Some(d) = applying {
            stale.remove(&d);
        }
        self.remove_stale(date, stale)?;
        // A date that was never collected now has a partition: it is not complete, so it is
        // re-collected (within max_recollect_days) to fill in its other jobs.
        let info = self.tracker.dates.entry(date.to_string()).or_default();
        info.jobs = existing.len() as u64;
        info.incomplete_jobs = existing.iter().filter(|j| !j.is_complete).count() as u64;
        Ok(())
    }
}

fn log_malformed(date: NaiveDate, malformed: &[Malformed]) {
    for m in malformed.iter().take(20) {
        let shown: String = m.text.chars().take(200).collect();
        warn!(date = %date, line = m.line, "unparsable sacct line kept verbatim in the raw archive: {}: {shown:?}", m.reason);
    }
    if malformed.len() > 20 {
        warn!(date = %date, more = malformed.len() - 20, "more unparsable sacct lines not shown");
    }
}
