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
use super::route::{Route, Routing};
use super::{is_date_complete, DateOutcome, DateReport};
use crate::fxhash::{FxHashMap, FxHashSet};
use crate::model::{ProcessedJob, Text};
use crate::sacct::fields::FieldLayout;
use crate::store::parquet::{Existing, JobKey, Meta, StoreError};
use crate::store::raw::{RawMerge, RawStage};
use crate::store::tracker::{DateInfo, Tracker, TrackerError};
use crate::store::{Archive, Kind};
use crate::zone::Zone;

/// A job with its raw rows, on its way to another date's partitions.
pub(super) struct Stashed {
    job: ProcessedJob,
    raw: Vec<String>,
}

impl Stashed {
    pub(super) fn new(job: ProcessedJob, raw: Vec<String>) -> Stashed {
        Stashed { job, raw }
    }
}

/// The single writer: applies one date's fresh output to the archive.
pub(super) struct Writer {
    pub(super) archive: Archive,
    pub(super) zone: Zone,
    pub(super) settle: Duration,
    pub(super) layout: Arc<FieldLayout>,
    /// Dates this cycle queries.
    pub(super) cycle_dates: HashSet<NaiveDate>,
    /// Job ids each date of this cycle has written from its own output.
    pub(super) written: HashMap<NaiveDate, FxHashSet<Text>>,
    /// Jobs held for dates of this cycle whose output is not applied yet ([`Route::Stash`]).
    pub(super) stash: BTreeMap<NaiveDate, Vec<Stashed>>,
    pub(super) tracker: Tracker,
    pub(super) sacct_version: String,
    /// Rewrite an unfinished job written into another date even when only its raw rows can
    /// have changed (an incremental cycle): a pending job's priority or reason is in its
    /// raw row, not in its processed record, and a whole-day query would refresh it.
    pub(super) refresh_unfinished: bool,
}

/// A date's output after routing: the jobs that stay, and those that leave.
#[derive(Default)]
struct Routed {
    /// Fresh jobs that stay in the date.
    fresh: Vec<ProcessedJob>,
    /// Raw rows of jobs that stay but were set aside while streaming ([`Route::BackHere`]).
    back_here: Vec<String>,
    /// Archived jobs that move to a later date ([`Route::Move`]): job ids and raw ids.
    moved_ids: HashSet<Text>,
    moved_raw: HashSet<Text>,
    /// Jobs written into other dates now ([`Route::Move`], [`Route::Upsert`]).
    upserts: BTreeMap<NaiveDate, Vec<Stashed>>,
    /// Jobs held for later dates of this cycle ([`Route::Stash`]).
    stash: Vec<(NaiveDate, Stashed)>,
}

/// Splits a date's jobs by `routes`. Jobs that leave are taken out by moving the last job
/// into their place: the partition is sorted when written, so the order here does not
/// matter, and a 100,000-job day (~60 MB of records) is never shifted as a whole.
fn split(
    jobs: Vec<ProcessedJob>,
    mut elsewhere: FxHashMap<usize, Vec<String>>,
    routes: &[Route],
) -> Routed {
    let mut out = Routed {
        fresh: jobs,
        ..Routed::default()
    };
    for (i, route) in routes.iter().enumerate() {
        if *route == Route::BackHere {
            out.back_here
                .extend(elsewhere.remove(&i).unwrap_or_default());
        }
    }
    // From the end: every job above `i` that leaves is out already, so the job moved into
    // `i` stays.
    let mut gone: Vec<(usize, ProcessedJob)> = Vec::new();
    for (i, route) in routes.iter().enumerate().rev() {
        if !route.stays() {
            gone.push((i, out.fresh.swap_remove(i)));
        }
    }
    for (i, job) in gone.into_iter().rev() {
        let raw = elsewhere.remove(&i).unwrap_or_default();
        match routes[i] {
            Route::Move(d) => {
                out.moved_ids.insert(job.job_id.clone());
                out.moved_raw.insert(job.job_id_raw.clone());
                out.upserts.entry(d).or_default().push(Stashed { job, raw });
            }
            Route::Upsert(d) => out.upserts.entry(d).or_default().push(Stashed { job, raw }),
            Route::Stash(d) => out.stash.push((d, Stashed { job, raw })),
            Route::Here | Route::BackHere | Route::Drop => {}
        }
    }
    out
}

/// A date's new content, ready to encode.
struct Content {
    /// Fresh jobs, archived jobs not replaced or moved away, jobs held for this date.
    jobs: Vec<ProcessedJob>,
    /// Raw rows to add besides the streamed ones: set aside while streaming, or held.
    extra_rows: Vec<String>,
    /// Older copies of these jobs in other dates, to remove once this date is committed.
    stale: BTreeMap<NaiveDate, Vec<(Text, Text)>>,
}

impl Writer {
    pub(super) fn meta(&self, date: NaiveDate) -> Meta {
        Meta {
            date,
            sacct_version: self.sacct_version.clone(),
            timezone: self.zone.name(),
        }
    }

    /// Merges `date`'s fresh output into the archive and updates the tracker: route each
    /// job, gather the date's new content, write jobs that leave to their dates, commit the
    /// date, remove stale copies elsewhere, record the outcome.
    pub(super) fn apply(
        &mut self,
        date: NaiveDate,
        day: Day,
        ran_at: DateTime<Utc>,
    ) -> Result<DateReport, StoreError> {
        warn_about(date, &day);
        let Day {
            jobs,
            here,
            elsewhere,
            raw: stage,
            malformed,
            ..
        } = day;
        let started = Instant::now();
        // The archived keys only: the archived jobs this output replaces are never built.
        let archived = self.unless_moved_aside(date, self.archive.read_processed_keys(date)?);
        let routes = self.routes(date, &jobs, &here, &archived);
        let Routed {
            fresh,
            back_here,
            moved_ids,
            moved_raw,
            upserts,
            stash,
        } = split(jobs, elsewhere, &routes);
        drop(routes);
        for (d, s) in stash {
            self.stash.entry(d).or_default().push(s);
        }
        if !moved_ids.is_empty() {
            info!(date = %date, jobs = moved_ids.len(), "jobs moved to the date they started on");
        }
        let content = self.content(date, fresh, back_here, archived, &moved_ids, &moved_raw)?;
        let routed = started.elapsed();
        let raw = self.commit(date, &content, stage, &upserts, &moved_raw)?;
        let committed = started.elapsed();
        self.remove_stale(date, content.stale)?;
        self.remember_written(date, &content.jobs);
        let report = self.record(date, ran_at, &content.jobs, malformed.len(), raw)?;
        tracing::debug!(
            date = %date,
            routed = routed.as_secs_f64(),
            committed = committed.as_secs_f64(),
            recorded = started.elapsed().as_secs_f64(),
            "date applied (seconds since the start of the apply)"
        );
        Ok(DateReport {
            moved_out: moved_ids.len(),
            ..report
        })
    }

    /// The route of each job of `date`'s output ([`Routing::route`]).
    fn routes(
        &self,
        date: NaiveDate,
        jobs: &[ProcessedJob],
        here: &[bool],
        archived: &[JobKey],
    ) -> Vec<Route> {
        let archived_ids: FxHashSet<&str> = archived.iter().map(|k| k.id.as_str()).collect();
        let archived_raw: FxHashSet<&str> = (archived.iter())
            .map(|k| k.raw.as_str())
            .filter(|r| !r.is_empty())
            .collect();
        let routing = Routing {
            date,
            zone: &self.zone,
            archived: &archived_ids,
            archived_raw: &archived_raw,
            cycle_dates: &self.cycle_dates,
            written: &self.written,
        };
        jobs.iter()
            .zip(here)
            .map(|(job, here)| routing.route(job, *here))
            .collect()
    }

    /// `date`'s new content: the fresh jobs, the archived jobs not replaced or moved away
    /// (read in full only when some stay), and the jobs other dates' outputs held for this
    /// date that this output lacks.
    fn content(
        &mut self,
        date: NaiveDate,
        fresh: Vec<ProcessedJob>,
        back_here: Vec<String>,
        archived: Vec<JobKey>,
        moved_ids: &HashSet<Text>,
        moved_raw: &HashSet<Text>,
    ) -> Result<Content, StoreError> {
        // The ids of this output are gathered only when there is something to hold them
        // against.
        let held = self.stash.remove(&date).unwrap_or_default();
        let fresh_ids: FxHashSet<&str> = if held.is_empty() && archived.is_empty() {
            FxHashSet::default()
        } else {
            fresh.iter().map(|j| j.job_id.as_str()).collect()
        };
        let held: Vec<Stashed> = held
            .into_iter()
            .filter(|s| !fresh_ids.contains(s.job.job_id.as_str()))
            .collect();
        let held_ids: HashSet<&str> = held.iter().map(|s| s.job.job_id.as_str()).collect();
        let replaced =
            |id: &str| fresh_ids.contains(id) || moved_ids.contains(id) || held_ids.contains(id);
        let raws = (fresh.iter().map(|j| j.job_id_raw.as_str()))
            .chain(held.iter().map(|s| s.job.job_id_raw.as_str()))
            .chain(moved_raw.iter().map(Text::as_str));
        let superseded = superseded(&archived, &replaced, raws);
        let stays = |id: &str| !replaced(id) && !superseded.contains(id);
        let kept = if archived.iter().any(|k| stays(&k.id)) {
            let kept = self
                .archive
                .read_processed_where(date, &self.zone, &stays)?;
            self.unless_moved_aside(date, kept)
        } else {
            Vec::new()
        };
        if !superseded.is_empty() {
            info!(date = %date, jobs = superseded.len(), "records replaced by a job of the same JobIDRaw (a job array's tasks not started then)");
        }
        drop((fresh_ids, held_ids, superseded));
        // A fresh job here that was archived earlier under its submit date (pending then, and
        // outside that date's own sacct window as it became eligible later) leaves that date
        // once its new record is safely committed.
        let stale = self.stale_copies(date, fresh.iter().chain(held.iter().map(|s| &s.job)));
        let mut jobs = fresh;
        jobs.extend(kept);
        let mut extra_rows = back_here;
        for Stashed { job, raw } in held {
            jobs.push(job);
            extra_rows.extend(raw);
        }
        Ok(Content {
            jobs,
            extra_rows,
            stale,
        })
    }

    /// Encodes `date`'s partitions (one thread each) while the jobs that leave are written
    /// into their dates, then commits. Commit only when all of it succeeded: jobs moving away
    /// are committed at their new date first, and raw is committed before processed, so a
    /// crash in between leaves raw rows without their processed job (rebuilt by the next
    /// collection), never a processed job without its raw rows.
    fn commit(
        &mut self,
        date: NaiveDate,
        content: &Content,
        stage: RawStage,
        upserts: &BTreeMap<NaiveDate, Vec<Stashed>>,
        moved_raw: &HashSet<Text>,
    ) -> Result<RawMerge, StoreError> {
        let meta = self.meta(date);
        let none_moved = moved_raw.is_empty();
        let moved_raw: HashSet<&str> = moved_raw.iter().map(Text::as_str).collect();
        let extra: Vec<&str> = content.extra_rows.iter().map(String::as_str).collect();
        let archive = self.archive.clone();
        let (raw, processed, upserted) = std::thread::scope(|scope| {
            let encode = scope.spawn(|| archive.stage_processed(date, &content.jobs, &meta));
            let finish = scope.spawn(move || stage.finish(&extra, &moved_raw));
            let upserted = upserts
                .iter()
                .try_for_each(|(other, items)| self.upsert(*other, items, Some(date)));
            let raw = finish.join().expect("encoding a partition does not panic");
            let processed = encode.join().expect("encoding a partition does not panic");
            (raw, processed, upserted)
        });
        upserted?;
        let (raw_staged, raw) = raw?;
        let processed = processed?;
        if self.unchanged_and_empty(date, content, &raw, none_moved) {
            // Dropping the staged files removes them: the archived ones stay as they are.
            tracing::debug!(date = %date, "no jobs before or now: files left untouched");
            return Ok(raw);
        }
        raw_staged.commit()?;
        processed.commit()?;
        Ok(raw)
    }

    /// Whether `date` had no jobs and no raw rows and still has none, with both files in
    /// place: a date without jobs (a quiet cluster, the window of a weekend) then costs its
    /// query and no file churn (no rewrite, no fsync, no new mtime for a lake to upload).
    /// Nothing archived left: no job moved away (`none_moved`), none kept, no raw row kept.
    fn unchanged_and_empty(
        &self,
        date: NaiveDate,
        content: &Content,
        raw: &RawMerge,
        none_moved: bool,
    ) -> bool {
        content.jobs.is_empty()
            && none_moved
            && raw.kept == 0
            && raw.fresh == 0
            && self.archive.has(Kind::Processed, date)
            && self.archive.has(Kind::Raw, date)
    }

    /// Dates applied later in this cycle look up the jobs this date wrote; after the last
    /// one, nothing does (a busy day's list is 100,000 ids).
    fn remember_written(&mut self, date: NaiveDate, jobs: &[ProcessedJob]) {
        let later = (self.cycle_dates.iter()).any(|d| *d != date && !self.written.contains_key(d));
        if later {
            self.written
                .insert(date, jobs.iter().map(|j| j.job_id.clone()).collect());
        }
    }

    /// Records `date`'s facts in the tracker, marks it complete when it is final, and saves
    /// the tracker (after every date: a crash later in the cycle keeps this date's facts).
    fn record(
        &mut self,
        date: NaiveDate,
        ran_at: DateTime<Utc>,
        jobs: &[ProcessedJob],
        parse_errors: usize,
        raw: RawMerge,
    ) -> Result<DateReport, StoreError> {
        let incomplete_jobs = jobs.iter().filter(|j| !j.is_complete).count();
        // A line that could not be parsed may hide a job: such a date is never final.
        let complete =
            parse_errors == 0 && is_date_complete(date, &self.zone, self.settle, ran_at, jobs);
        self.tracker.dates.insert(
            date.to_string(),
            DateInfo {
                last_collected: Some(ran_at),
                jobs: jobs.len() as u64,
                incomplete_jobs: incomplete_jobs as u64,
                parse_errors: parse_errors as u64,
            },
        );
        if complete {
            self.tracker.mark_complete(date);
        }
        self.save_tracker()?;
        info!(
            date = %date,
            jobs = jobs.len(),
            incomplete_jobs,
            parse_errors,
            raw_rows = raw.fresh,
            complete,
            "date collected"
        );
        let outcome = if complete {
            DateOutcome::Complete
        } else {
            DateOutcome::Incomplete
        };
        Ok(DateReport {
            jobs: jobs.len(),
            incomplete_jobs,
            parse_errors,
            raw_rows: raw.fresh,
            ..DateReport::new(date, outcome)
        })
    }

    /// What a read of `date`'s processed partition found; a file moved aside as unreadable
    /// reads as empty and the date loses its completion fact.
    fn unless_moved_aside<T: Default>(&mut self, date: NaiveDate, found: Existing<T>) -> T {
        if let Existing::MovedAside(_) = found {
            self.tracker.completed_dates.remove(&date.to_string());
            // Its other jobs are gone with the file: only whole-day queries bring them back,
            // so the next cycle is a full check.
            self.tracker.last_full_check = None;
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
            if !self.archive.has(Kind::Processed, date) {
                continue;
            }
            // The date's ids first (one column): most dates hold none of these jobs, and
            // only a date that does is decoded whole. A set, not a scan per id: a busy day
            // can have 10^4 stale ids against 10^5 jobs.
            // A partition that does not decode is moved aside; its date loses its completion
            // fact, so it is collected again rather than trusted with its jobs gone.
            // A job is archived there under its JobID, or, for a job array's record of the
            // tasks not started then, under its JobIDRaw (`superseded`).
            let found = self.archive.read_processed_keys(date)?;
            let archived = self.unless_moved_aside(date, found);
            let stale_ids: HashSet<&str> = ids.iter().map(|(id, _)| id.as_str()).collect();
            let stale_raw: HashSet<&str> = (ids.iter())
                .map(|(_, raw)| raw.as_str())
                .filter(|r| !r.is_empty())
                .collect();
            let (mut gone, mut raw_ids) = (HashSet::new(), HashSet::new());
            for k in &archived {
                let by_raw = stale_raw.contains(k.raw.as_str());
                if stale_ids.contains(k.id.as_str()) || by_raw {
                    gone.insert(k.id.as_str());
                }
                if by_raw {
                    raw_ids.insert(k.raw.as_str());
                }
            }
            if gone.is_empty() {
                continue;
            }
            // Raw rows go by JobIDRaw: those of the jobs found by JobID too.
            raw_ids.extend(
                (ids.iter())
                    .filter(|(id, _)| gone.contains(id.as_str()))
                    .map(|(_, raw)| raw.as_str()),
            );
            let found = self.archive.read_processed(date, &self.zone)?;
            let jobs = self.unless_moved_aside(date, found);
            let kept: Vec<ProcessedJob> = jobs
                .iter()
                .filter(|j| !gone.contains(j.job_id.as_str()))
                .cloned()
                .collect();
            let meta = self.meta(date);
            self.archive
                .merge_raw(date, &self.layout, &[], &raw_ids, &meta)?;
            self.archive.write_processed(date, &kept, &meta)?;
            info!(from = %date, to = %now_in, jobs = gone.len(), "jobs moved to the date they started on");
            self.count_jobs(date, &kept, false);
        }
        Ok(())
    }

    /// Writes jobs whose end reached slurmdbd late (`late.rs`), each into its date, as a
    /// whole-day query would have: replacing the archived record, and leaving the date it
    /// was held in when it started elsewhere. Returns the jobs written.
    pub(super) fn write_late(&mut self, jobs: Vec<Stashed>) -> Result<usize, StoreError> {
        let mut by_date: BTreeMap<NaiveDate, Vec<Stashed>> = BTreeMap::new();
        for s in jobs {
            if let Some(d) = super::attribution(&s.job, &self.zone) {
                by_date.entry(d).or_default().push(s);
            }
        }
        let written = by_date.values().map(Vec::len).sum();
        for (date, items) in by_date {
            self.upsert(date, &items, None)?;
        }
        Ok(written)
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
        self.archive
            .save_tracker(&mut self.tracker)
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
        let found = self.archive.read_processed(date, &self.zone)?;
        let created = matches!(found, Existing::Missing);
        let mut existing = self.unless_moved_aside(date, found);
        let mut at: HashMap<Text, usize> = existing
            .iter()
            .enumerate()
            .map(|(i, j)| (j.job_id.clone(), i))
            .collect();
        // A job archived here under another JobID with the same JobIDRaw (a job array's
        // record of its tasks not started then, `superseded`) is replaced too.
        let by_raw: HashMap<Text, usize> = (existing.iter().enumerate())
            .filter(|(_, j)| !j.job_id_raw.is_empty())
            .map(|(i, j)| (j.job_id_raw.clone(), i))
            .collect();
        let mut raw: Vec<&str> = Vec::new();
        for Stashed { job, raw: rows } in items {
            let found = at.get(&job.job_id).copied().or_else(|| {
                let k = *by_raw.get(&job.job_id_raw)?;
                // Its old JobID is gone; the new one points at the same record.
                at.remove(&existing[k].job_id);
                at.insert(job.job_id.clone(), k);
                Some(k)
            });
            match found.as_ref() {
                Some(&k)
                    if existing[k].same_content(job)
                        && (job.is_complete || !self.refresh_unfinished) =>
                {
                    continue
                }
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
        self.archive
            .merge_raw(date, &self.layout, &raw, &HashSet::new(), &meta)?;
        self.archive.write_processed(date, &existing, &meta)?;
        let mut stale = self.stale_copies(date, items.iter().map(|s| &s.job));
        if let Some(d) = applying {
            stale.remove(&d);
        }
        self.remove_stale(date, stale)?;
        // A date this write gave its first partition holds only jobs of other dates' outputs:
        // its facts say it was never queried, so it is not queried whole unless it is in the
        // window or asked for (`collect::plan`); the windows that see its jobs keep them up
        // to date.
        self.count_jobs(date, &existing, created);
        Ok(())
    }

    /// Updates `date`'s job counts in the tracker after a write that did not come from its
    /// own output. A date without facts gets them only when `created` (this write made its
    /// partition): it then holds only spilled-over jobs. A partition of unknown origin (the
    /// Python tool's, or one whose tracker save a crash prevented) gets none, so it still
    /// counts as queried whole ([`Tracker::queried_whole`]) and is collected again.
    fn count_jobs(&mut self, date: NaiveDate, jobs: &[ProcessedJob], created: bool) {
        let key = date.to_string();
        let info = match self.tracker.dates.get_mut(&key) {
            Some(info) => info,
            None if created => self.tracker.dates.entry(key).or_default(),
            None => return,
        };
        info.jobs = jobs.len() as u64;
        info.incomplete_jobs = jobs.iter().filter(|j| !j.is_complete).count() as u64;
    }
}

/// The archived job ids that a job of this write replaces under another JobID: their
/// database record ([`JobKey::raw`]) is the same. That is a job array's record of its tasks
/// not started yet (`70_[2-3]`, JobIDRaw 70): sacct prints the shrinking rest under a new
/// JobID as tasks start, and the last task (`70_3`) keeps JobIDRaw 70. `replaced`: ids
/// this write replaces by JobID already; `raws`: the JobIDRaw of every job it writes or
/// moves. Usually no archived job is absent from the write by JobID, and `raws` is not
/// even walked.
fn superseded<'a, 'r>(
    archived: &'a [JobKey],
    replaced: &dyn Fn(&str) -> bool,
    raws: impl Iterator<Item = &'r str>,
) -> FxHashSet<&'a str> {
    let candidates: FxHashMap<&str, &str> = (archived.iter())
        .filter(|k| !k.raw.is_empty() && !replaced(&k.id))
        .map(|k| (k.raw.as_str(), k.id.as_str()))
        .collect();
    if candidates.is_empty() {
        return FxHashSet::default();
    }
    raws.filter_map(|r| candidates.get(r).copied()).collect()
}

/// Says what was odd about a date's output: unparsable lines (the first 20), invalid UTF-8,
/// step rows without their job line.
fn warn_about(date: NaiveDate, day: &Day) {
    for m in day.malformed.iter().take(20) {
        let shown: String = m.text.chars().take(200).collect();
        warn!(date = %date, line = m.line, "unparsable sacct line kept verbatim in the raw archive: {}: {shown:?}", m.reason);
    }
    if day.malformed.len() > 20 {
        warn!(date = %date, more = day.malformed.len() - 20, "more unparsable sacct lines not shown");
    }
    if day.lossy {
        warn!(date = %date, "sacct output held invalid UTF-8; replaced with U+FFFD");
    }
    if day.orphans > 0 {
        warn!(date = %date, rows = day.orphans, "step rows without their job line; kept in the raw archive only");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn job(id: &str) -> ProcessedJob {
        ProcessedJob {
            job_id: id.into(),
            job_id_raw: format!("{id}r").into(),
            ..Default::default()
        }
    }

    fn ids<'a>(jobs: impl IntoIterator<Item = &'a ProcessedJob>) -> Vec<String> {
        let mut v: Vec<String> = jobs.into_iter().map(|j| j.job_id.to_string()).collect();
        v.sort();
        v
    }

    #[test]
    fn split_sends_each_job_and_its_rows_where_its_route_says() {
        let (d2, d3) = (d("2026-11-25"), d("2026-11-20"));
        let routes = [
            Route::Here,
            Route::Move(d2),
            Route::BackHere,
            Route::Upsert(d3),
            Route::Stash(d2),
            Route::Drop,
            Route::Here,
        ];
        let jobs: Vec<ProcessedJob> = (0..routes.len()).map(|i| job(&i.to_string())).collect();
        let elsewhere: FxHashMap<usize, Vec<String>> =
            (1..6).map(|i| (i, vec![format!("row of {i}")])).collect();
        let r = split(jobs, elsewhere, &routes);
        assert_eq!(ids(&r.fresh), ["0", "2", "6"]);
        assert_eq!(r.back_here, ["row of 2"]);
        assert_eq!(r.moved_ids, HashSet::from([Text::from("1")]));
        assert_eq!(r.moved_raw, HashSet::from([Text::from("1r")]));
        let upserts: Vec<(NaiveDate, Vec<String>, Vec<String>)> = r
            .upserts
            .iter()
            .map(|(d, items)| {
                let rows = items.iter().flat_map(|s| s.raw.clone()).collect();
                (*d, ids(items.iter().map(|s| &s.job)), rows)
            })
            .collect();
        assert_eq!(
            upserts,
            [
                (d3, vec!["3".to_string()], vec!["row of 3".to_string()]),
                (d2, vec!["1".to_string()], vec!["row of 1".to_string()]),
            ]
        );
        assert_eq!(r.stash.len(), 1);
        assert_eq!((r.stash[0].0, r.stash[0].1.job.job_id.as_str()), (d2, "4"));
        assert_eq!(r.stash[0].1.raw, ["row of 4"]);
    }

    /// A raw row of job `id` whose `Priority` is `priority`, every other field empty.
    fn row(id: &str, priority: &str) -> String {
        let fields = FieldLayout::ours();
        let row: Vec<&str> = (fields.names.iter())
            .map(|n| match n.as_str() {
                "JobIDRaw" | "JobID" => id,
                "Priority" => priority,
                _ => "",
            })
            .collect();
        row.join(&char::from(crate::sacct::fields::DELIMITER).to_string())
    }

    fn writer(archive: &Archive, refresh_unfinished: bool) -> Writer {
        Writer {
            archive: archive.clone(),
            zone: "UTC".parse().unwrap(),
            settle: Duration::ZERO,
            layout: Arc::new(FieldLayout::ours()),
            cycle_dates: HashSet::new(),
            written: HashMap::new(),
            stash: BTreeMap::new(),
            tracker: Tracker::default(),
            sacct_version: "slurm 22.05.8".into(),
            refresh_unfinished,
        }
    }

    #[test]
    fn an_incremental_cycle_refreshes_the_raw_row_of_an_unchanged_pending_job() {
        let dir = tempfile::tempdir().unwrap();
        let archive = Archive::local(dir.path());
        archive.create().unwrap();
        let date = d("2026-11-20");
        let priorities = |a: &Archive| {
            let path = a.name(Kind::Raw, date);
            let batches = crate::store::parquet::read_raw(&path).unwrap().into_inner();
            let mut out = Vec::new();
            for b in batches {
                let c = b.column_by_name("Priority").unwrap();
                let c = arrow_cast::cast(c, &arrow_schema::DataType::Utf8).unwrap();
                let c = arrow_array::cast::AsArray::as_string::<i32>(&c);
                out.extend((0..arrow_array::Array::len(c)).map(|i| c.value(i).to_string()));
            }
            out
        };
        let pending = |priority: &str| Stashed {
            job: job("7"),
            raw: vec![row("7", priority)],
        };
        // A whole-day cycle writing into another date skips a job whose record is the same.
        let mut w = writer(&archive, false);
        w.upsert(date, &[pending("100")], None).unwrap();
        w.upsert(date, &[pending("200")], None).unwrap();
        assert_eq!(priorities(&archive), ["100"]);
        // An incremental cycle is that date's only query: the unfinished job's raw row is
        // refreshed, as the date's own whole-day query would have done.
        let mut w = writer(&archive, true);
        w.upsert(date, &[pending("300")], None).unwrap();
        assert_eq!(priorities(&archive), ["300"]);
        // A final job with the same record is still skipped.
        let done = |priority: &str| Stashed {
            job: ProcessedJob {
                is_complete: true,
                ..job("8")
            },
            raw: vec![row("8", priority)],
        };
        w.upsert(date, &[done("1")], None).unwrap();
        w.upsert(date, &[done("2")], None).unwrap();
        let mut p = priorities(&archive);
        p.sort();
        assert_eq!(p, ["1", "300"]);
    }

    /// The record of a job array's tasks not started yet (`70_[2-3]`, JobIDRaw 70) is
    /// replaced by the last task, which keeps JobIDRaw 70 (`70_3`), when that is written
    /// into the date from another date's output: one job, one raw row.
    #[test]
    fn a_job_written_into_a_date_replaces_the_record_with_its_jobidraw() {
        let dir = tempfile::tempdir().unwrap();
        let archive = Archive::local(dir.path());
        archive.create().unwrap();
        let date = d("2026-11-20");
        let record = |id: &str, done: bool| Stashed {
            job: ProcessedJob {
                job_id: id.into(),
                job_id_raw: "70".into(),
                is_complete: done,
                ..Default::default()
            },
            raw: vec![row("70", id)],
        };
        let mut w = writer(&archive, true);
        w.upsert(date, &[record("70_[2-3]", false)], None).unwrap();
        w.upsert(date, &[record("70_3", true)], None).unwrap();
        let jobs = archive.read_processed(date, &w.zone).unwrap().into_inner();
        assert_eq!(ids(&jobs), ["70_3"]);
        let raw = crate::store::parquet::read_raw(&archive.name(Kind::Raw, date))
            .unwrap()
            .into_inner();
        assert_eq!(raw.iter().map(|b| b.num_rows()).sum::<usize>(), 1);
        assert_eq!(w.tracker.dates[&date.to_string()].incomplete_jobs, 0);
    }

    #[test]
    fn a_job_written_into_a_complete_date_whose_file_is_corrupt_reopens_that_date() {
        let dir = tempfile::tempdir().unwrap();
        let archive = Archive::local(dir.path());
        archive.create().unwrap();
        let date = d("2026-11-20");
        let path = archive.name(Kind::Processed, date);
        std::fs::write(&path, b"not parquet").unwrap();
        let mut w = writer(&archive, false);
        w.tracker.mark_complete(date);
        let fields = FieldLayout::ours();
        let row: Vec<&str> = fields
            .names
            .iter()
            .map(|n| {
                if n == "JobIDRaw" || n == "JobID" {
                    "7"
                } else {
                    ""
                }
            })
            .collect();
        let item = Stashed {
            job: job("7"),
            raw: vec![row.join(&char::from(crate::sacct::fields::DELIMITER).to_string())],
        };
        w.upsert(date, &[item], None).unwrap();
        // The unreadable file is kept aside, the job is written, and the date is no longer
        // complete: its other jobs are collected again, not lost with the old file.
        assert!(!w.tracker.is_complete(date));
        let aside: Vec<String> = std::fs::read_dir(archive.prefix(Kind::Processed))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains(".corrupt-"))
            .collect();
        assert_eq!(aside.len(), 1, "{aside:?}");
        let now = archive.read_processed(date, &w.zone).unwrap().into_inner();
        assert_eq!(ids(&now), ["7"]);
    }
}
