//! One collection cycle, shared by `slurm-usage collect` and every daemon tick, in four
//! phases (the rules: docs/collection.md):
//!
//! 1. `prepare` (plan): take the archive's write lock, remove temp files a crash left
//!    behind, load the tracker, and [`plan`] the dates: today and the lookback days, plus
//!    older dates that were queried whole before and are not complete yet (up to
//!    `max_recollect_days`), minus dates the tracker holds as complete. An older date that
//!    holds only jobs other dates' outputs wrote there is not queried whole: that would
//!    cascade further back with every cycle.
//! 2. `fetch`: one sacct per date, at most `max_concurrent_sacct` at once; its output is
//!    parsed on a blocking thread while sacct prints it (`day.rs`): jobs are built and the
//!    date's raw rows staged as they arrive. A date's semaphore permit is held until its
//!    files are written, so at most that many days are in memory at once.
//! 3. `apply`: one writer applies the dates one after another as they arrive (`writer.rs`):
//!    each job is routed to the date of its start, or submit if never started (`route.rs`);
//!    a job that moved to another date is written there before it is removed here (a crash
//!    leaves a duplicate, never a loss). A date becomes complete when its day ended `settle`
//!    ago, its sacct ran after that, and every job in it is final; the tracker is saved after
//!    every date.
//!    After an incremental window, the archived unfinished jobs it did not show (their end
//!    reached slurmdbd late) are asked for by id and written when final (`late.rs`).
//! 4. `finish`: write the jobs held for dates whose sacct failed, note the last success,
//!    save the tracker.
//!
//! A failed or hung sacct leaves its date's files untouched and the date incomplete.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Days, NaiveDate, Utc};
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::config::{Config, FullCheck};
use crate::metrics::Context;
use crate::model::ProcessedJob;
use crate::sacct::command::{sacct_args, version, with_retries, SacctProgram};
use crate::sacct::fields::FieldLayout;
use crate::slurm::run::CommandError;
use crate::store::lock::{DirLock, LockError};
use crate::store::parquet::Meta;
use crate::store::tracker::{Tracker, TrackerError};
use crate::store::{Archive, Kind};
use crate::zone::Zone;

mod day;
mod late;
mod route;
mod writer;

use day::{Day, DaySpec, FetchError};
use writer::Writer;

/// Errors that stop a whole cycle (a single date's failure does not).
#[derive(Debug, thiserror::Error)]
pub enum CollectError {
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error("cannot create the data dir {path}: {source}")]
    DataDir {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Tracker(#[from] TrackerError),
    #[error("internal error: {0}")]
    Internal(String),
}

/// What a caller asks of one cycle.
#[derive(Debug, Clone)]
pub struct CollectOptions {
    /// Collect today and this many days before it.
    pub days: u32,
    /// Wait for the write lock instead of failing with "busy".
    pub wait_for_lock: bool,
    /// Draw a progress bar on stderr.
    pub progress: bool,
}

/// Everything a cycle of one cluster needs, fixed for its duration.
#[derive(Debug, Clone)]
pub struct Collector {
    pub config: Arc<Config>,
    /// The cluster its sacct calls name (`--clusters`); `None`: the local cluster.
    pub cluster: Option<String>,
    pub archive: Archive,
    pub sacct: SacctProgram,
    pub layout: Arc<FieldLayout>,
    /// Bounds the sacct calls running at once, shared by the collectors of one cycle so
    /// that `max_concurrent_sacct` counts every call of every cluster.
    pub sacct_slots: Arc<Semaphore>,
    /// Bounds the dates being parsed and encoded at once to one per two cores (at most
    /// `max_concurrent_sacct`), shared like `sacct_slots`: a date's parser and raw encoder
    /// keep a core busy each, so more at once only adds memory (~40 MB a date in flight,
    /// most of it the compression contexts of the raw file's ~60 column writers).
    pub parse_slots: Arc<Semaphore>,
    /// May a cycle ask sacct only for the jobs that changed since the last successful one
    /// ([`choose_mode`])? The daemon's cycles may; `collect` always queries whole days.
    pub incremental: bool,
    /// The cycle's "now" when fixed (a test driving a timeline); `None`: the system clock.
    pub clock: Option<DateTime<Utc>>,
}

impl Collector {
    /// A collector of the local cluster into the data dir of `config`, running the
    /// configured sacct.
    pub fn new(config: Arc<Config>) -> Self {
        let sacct = SacctProgram::new(&config.collect.sacct);
        Collector::with_sacct(config, sacct)
    }

    /// A collector for `config` that runs `sacct` (the demo's fake one, a bench's `cat`).
    pub fn with_sacct(config: Arc<Config>, sacct: SacctProgram) -> Self {
        Collector {
            archive: Archive::of(&config),
            cluster: None,
            sacct,
            layout: Arc::new(FieldLayout::ours()),
            sacct_slots: Arc::new(Semaphore::new(config.collect.max_concurrent_sacct)),
            parse_slots: Arc::new(Semaphore::new(parse_parallelism(
                config.collect.max_concurrent_sacct,
                std::thread::available_parallelism().map_or(1, |n| n.get()),
            ))),
            config,
            incremental: false,
            clock: None,
        }
    }

    /// This collector, allowed incremental cycles (the daemon's).
    pub fn incremental(self) -> Self {
        Collector {
            incremental: true,
            ..self
        }
    }

    /// This collector with its clock fixed at `now`: the cycle's start, its sacct calls and
    /// its "today" all read `now` (a test walking through a timeline).
    pub fn at(self, now: DateTime<Utc>) -> Self {
        Collector {
            clock: Some(now),
            ..self
        }
    }

    fn now(&self) -> DateTime<Utc> {
        self.clock.unwrap_or_else(Utc::now)
    }

    /// One collector per cluster of `[collect] clusters`, each into its own
    /// `cluster=<name>/` archive, all sharing one sacct semaphore; with no clusters listed,
    /// the one collector of the local cluster ([`Collector::new`]).
    pub fn all(config: Arc<Config>) -> Vec<Collector> {
        let local = Collector::new(config.clone());
        if config.collect.clusters.is_empty() {
            return vec![local];
        }
        config
            .collect
            .clusters
            .iter()
            .map(|name| Collector {
                archive: Archive::of_cluster(&config, name),
                cluster: Some(name.clone()),
                ..local.clone()
            })
            .collect()
    }

    /// The config this collector's lake upload runs with: a listed cluster uploads under
    /// its own name (`[lake] cluster` is refused together with `[collect] clusters`).
    pub fn lake_config(&self) -> Arc<Config> {
        match &self.cluster {
            Some(name) => Arc::new(crate::lake::for_cluster(&self.config, name)),
            None => self.config.clone(),
        }
    }
}

/// Dates parsed and encoded at once: one per two cores (a date's splitter and its encoder
/// thread), at most `max_concurrent_sacct`, at least one. On 2 cores two dates at once took
/// the same time as one and ~45 MB (40%) more memory (`benches/vs_python.sh`).
fn parse_parallelism(max_concurrent_sacct: usize, cores: usize) -> usize {
    max_concurrent_sacct.min(cores / 2).max(1)
}

/// One cluster's cycle in [`run_all`].
#[derive(Debug)]
pub struct ClusterCycle {
    /// `None`: the local cluster (`[collect] clusters` empty).
    pub cluster: Option<String>,
    pub result: Result<CycleReport, CollectError>,
}

/// Runs the cycles of `collectors` (one per cluster) at once; their sacct calls share the
/// collectors' semaphore. Each has its own lock, tracker and errors: one cluster failing,
/// even as a whole, never stops the others.
pub async fn run_all(
    collectors: &[Collector],
    opts: &CollectOptions,
    cancel: &CancellationToken,
) -> Vec<ClusterCycle> {
    use tracing::Instrument;
    futures::future::join_all(collectors.iter().map(|c| async move {
        let span = match &c.cluster {
            Some(name) => tracing::info_span!("cluster", cluster = %name),
            None => tracing::Span::none(),
        };
        let result = run_cycle(c, opts, cancel).instrument(span).await;
        if let (Some(name), Err(e)) = (&c.cluster, &result) {
            error!(cluster = %name, "cycle failed: {e}");
        }
        ClusterCycle {
            cluster: c.cluster.clone(),
            result,
        }
    }))
    .await
}

/// How one date ended.
#[derive(Debug, Clone, PartialEq)]
pub enum DateOutcome {
    /// Complete before this cycle: no sacct call.
    AlreadyComplete,
    /// Collected and now final.
    Complete,
    /// Collected; not final yet (today, settle margin, or unfinished jobs).
    Incomplete,
    /// sacct or the write failed; the date's files are untouched.
    Failed(String),
}

/// One date's result.
#[derive(Debug, Clone, PartialEq)]
pub struct DateReport {
    pub date: NaiveDate,
    pub outcome: DateOutcome,
    /// Jobs in the date's partition afterwards.
    pub jobs: usize,
    /// Of those, not yet final.
    pub incomplete_jobs: usize,
    /// Jobs of this date's output that belong to (and were written to) other dates.
    pub moved_out: usize,
    /// sacct lines that could not be parsed (kept verbatim in the raw archive).
    pub parse_errors: usize,
    /// Rows written to the raw partition from this output.
    pub raw_rows: usize,
    /// Time inside sacct (all attempts).
    pub sacct_seconds: f64,
    /// Rows the successful sacct call returned (records and unparsable text); 0 when
    /// none succeeded or none ran.
    pub sacct_rows: usize,
}

/// A whole cycle's result, for the summary, STATUS and metrics.
#[derive(Debug, Clone, Default)]
pub struct CycleReport {
    pub started: Option<DateTime<Utc>>,
    pub duration: Duration,
    pub dates: Vec<DateReport>,
    pub sacct_version: String,
    pub sacct_calls: u32,
    pub sacct_failures: u32,
    pub sacct_timeouts: u32,
    pub sacct_seconds: f64,
    /// Stale temp files from an earlier crash that were removed.
    pub stale_temps_removed: usize,
    /// The cycle was cut short by shutdown.
    pub cancelled: bool,
    /// An incremental cycle: the start of its sacct window (`None`: whole days).
    pub incremental_since: Option<DateTime<Utc>>,
    /// Jobs archived unfinished that an incremental window no longer showed because their
    /// end reached slurmdbd late: asked for by id and written final (`late.rs`).
    pub late_jobs: usize,
    /// Rows the by-id queries for those jobs returned.
    pub late_rows: usize,
    /// Clusters whose cycle stopped as a whole (lock, data dir, tracker), with the error,
    /// when [`CycleReport::merge`] joined the reports of several clusters.
    pub cluster_errors: Vec<(String, String)>,
}

impl DateReport {
    /// A date with `outcome` and no counts yet.
    pub fn new(date: NaiveDate, outcome: DateOutcome) -> Self {
        DateReport {
            date,
            outcome,
            jobs: 0,
            incomplete_jobs: 0,
            moved_out: 0,
            parse_errors: 0,
            raw_rows: 0,
            sacct_seconds: 0.0,
            sacct_rows: 0,
        }
    }
}

impl CycleReport {
    /// The clusters' cycles of [`run_all`] as one report, for the daemon's metrics and
    /// STATUS: the dates of all, the sums of their counts, the longest duration, and the
    /// clusters that failed as a whole in `cluster_errors`. The error of the first cluster
    /// when none ran (as with the local cluster alone).
    pub fn merge(cycles: Vec<ClusterCycle>) -> Result<CycleReport, CollectError> {
        let mut merged: Option<CycleReport> = None;
        let mut errors = Vec::new();
        let mut first_error = None;
        for cycle in cycles {
            match cycle.result {
                Ok(r) => {
                    let m = merged.get_or_insert_with(|| CycleReport {
                        started: r.started,
                        sacct_version: r.sacct_version.clone(),
                        ..Default::default()
                    });
                    m.started = m.started.min(r.started).or(r.started);
                    m.duration = m.duration.max(r.duration);
                    if m.sacct_version.is_empty() {
                        m.sacct_version = r.sacct_version;
                    }
                    m.sacct_calls += r.sacct_calls;
                    m.sacct_failures += r.sacct_failures;
                    m.sacct_timeouts += r.sacct_timeouts;
                    m.sacct_seconds += r.sacct_seconds;
                    m.stale_temps_removed += r.stale_temps_removed;
                    m.cancelled |= r.cancelled;
                    m.incremental_since = m.incremental_since.or(r.incremental_since);
                    m.late_jobs += r.late_jobs;
                    m.late_rows += r.late_rows;
                    m.dates.extend(r.dates);
                    m.cluster_errors.extend(r.cluster_errors);
                }
                Err(e) => {
                    let name = cycle.cluster.unwrap_or_else(|| "local".to_string());
                    errors.push((name, e.to_string()));
                    first_error.get_or_insert(e);
                }
            }
        }
        match (merged, first_error) {
            (Some(mut m), _) => {
                m.cluster_errors.extend(errors);
                Ok(m)
            }
            (None, Some(e)) => Err(e),
            (None, None) => Ok(CycleReport::default()),
        }
    }

    /// Dates whose collection failed.
    pub fn failed(&self) -> usize {
        self.dates
            .iter()
            .filter(|d| matches!(d.outcome, DateOutcome::Failed(_)))
            .count()
    }
    /// Dates collected but not final.
    pub fn incomplete(&self) -> usize {
        self.dates
            .iter()
            .filter(|d| matches!(d.outcome, DateOutcome::Incomplete | DateOutcome::Failed(_)))
            .count()
    }
    /// Jobs in the partitions written this cycle.
    pub fn jobs(&self) -> usize {
        self.dates.iter().map(|d| d.jobs).sum()
    }
    /// Raw rows written this cycle.
    pub fn raw_rows(&self) -> usize {
        self.dates.iter().map(|d| d.raw_rows).sum()
    }
    /// Unparsable sacct lines this cycle.
    pub fn parse_errors(&self) -> usize {
        self.dates.iter().map(|d| d.parse_errors).sum()
    }
    /// Rows the sacct calls of this cycle returned.
    pub fn sacct_rows(&self) -> usize {
        self.dates.iter().map(|d| d.sacct_rows).sum::<usize>() + self.late_rows
    }
    /// The most rows one sacct call of this cycle returned (the by-id queries for late
    /// job ends counted as one).
    pub fn sacct_rows_max(&self) -> usize {
        let dates = self.dates.iter().map(|d| d.sacct_rows).max().unwrap_or(0);
        dates.max(self.late_rows)
    }
    /// Rows per successful sacct call of this cycle (failed attempts return none); 0 when
    /// none succeeded.
    pub fn sacct_rows_per_call(&self) -> usize {
        let ok = self.sacct_calls.saturating_sub(self.sacct_failures) as usize;
        self.sacct_rows().checked_div(ok).unwrap_or(0)
    }
}

/// The dates one cycle queries, and those it skips because they are complete.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub query: Vec<NaiveDate>,
    pub already_complete: Vec<NaiveDate>,
}

/// Which dates to query: `today` and `days` before it, plus older dates that have a
/// partition, were queried whole before ([`Tracker::queried_whole`]) and are not complete,
/// no older than `max_recollect_days`.
///
/// An older date whose partition holds only jobs that spilled over from other dates'
/// windows (they started on it and still ran later) is not queried: its own long jobs would
/// spill further back, and each cycle would reach a few more days into the past. The date
/// whose window sees such a job keeps writing it to its start date.
pub fn plan(
    today: NaiveDate,
    days: u32,
    max_recollect_days: u32,
    tracker: &Tracker,
    partitions: &[NaiveDate],
) -> Plan {
    let first = today
        .checked_sub_days(Days::new(days.into()))
        .unwrap_or(today);
    let oldest = today
        .checked_sub_days(Days::new(max_recollect_days.into()))
        .unwrap_or(today);
    let mut wanted: Vec<NaiveDate> = first.iter_days().take_while(|d| *d <= today).collect();
    // Older dates only when they still need work: a complete one is not even listed.
    wanted.extend(partitions.iter().filter(|d| {
        **d >= oldest && **d < first && !tracker.is_complete(**d) && tracker.queried_whole(**d)
    }));
    wanted.sort();
    wanted.dedup();
    let (already_complete, query) = wanted.into_iter().partition(|d| tracker.is_complete(*d));
    Plan {
        query,
        already_complete,
    }
}

/// How far an incremental window reaches back before the last successful cycle's start:
/// slurmdbd records a job's end a little after slurmctld sends it, and this host's clock
/// and slurmdbd's may differ by a little. An end recorded later than this is found by id
/// after the window (`late.rs`).
pub const OVERLAP: Duration = Duration::from_secs(10 * 60);

/// What a cycle asks sacct for.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Mode {
    /// One query per planned date, each for the date's whole window ([`plan`]).
    Full,
    /// One query for every job pending (eligible), running or ended at or after `since`
    /// (`sacct -S since -E now`, no `--state`); each job goes to its own date.
    Incremental { since: DateTime<Utc> },
}

/// Whether this cycle may be incremental, and from when. Whole days unless all of these
/// hold: the collector allows it (the daemon), `full_check` is not `always` and not due,
/// a successful cycle has recorded where the archive is synced to (`synced_to`, not in the
/// future), no partition of the window was found damaged, and every date of the window
/// that began before `synced_to` was queried whole before or is complete (a date never
/// collected, e.g. after `lookback_days` grew, is queried whole; dates that began after
/// `synced_to` are covered by the incremental windows themselves).
#[allow(clippy::too_many_arguments)]
pub fn choose_mode(
    allowed: bool,
    full_check: FullCheck,
    now: DateTime<Utc>,
    zone: &Zone,
    days: u32,
    settle: Duration,
    tracker: &Tracker,
    damaged: bool,
) -> Mode {
    let (Some(synced), Some(last_full)) = (tracker.synced_to, tracker.last_full_check) else {
        return Mode::Full;
    };
    if !allowed
        || damaged
        || synced > now
        || full_check_due(full_check, now, zone, settle, last_full)
    {
        return Mode::Full;
    }
    let today = zone.date_of(now);
    let first = today
        .checked_sub_days(Days::new(days.into()))
        .unwrap_or(today);
    let uncovered = first.iter_days().take_while(|d| *d <= today).any(|d| {
        zone.day_start(d) < synced
            && !tracker.is_complete(d)
            && tracker
                .dates
                .get(&d.to_string())
                .is_none_or(|i| i.last_collected.is_none())
    });
    if uncovered {
        return Mode::Full;
    }
    Mode::Incremental {
        since: synced - chrono::Duration::from_std(OVERLAP).unwrap_or_default(),
    }
}

/// Whether a full check is due at `now` after the last one started at `last_full`. `daily`:
/// the newest instant "start of a day plus `settle`" at or before `now` (when yesterday
/// became final-able) passed since the last check, so each date is re-queried whole soon
/// after it settled, and its completion decided then.
pub fn full_check_due(
    full_check: FullCheck,
    now: DateTime<Utc>,
    zone: &Zone,
    settle: Duration,
    last_full: DateTime<Utc>,
) -> bool {
    let settle = chrono::Duration::from_std(settle).unwrap_or_default();
    match full_check {
        FullCheck::Always => true,
        FullCheck::Every(d) => now - last_full >= chrono::Duration::from_std(d).unwrap_or_default(),
        FullCheck::Daily => {
            let today = zone.date_of(now);
            let mut point = zone.day_start(today) + settle;
            if point > now {
                point = today
                    .pred_opt()
                    .map_or(point, |y| zone.day_start(y) + settle);
            }
            last_full < point || now - last_full >= chrono::Duration::days(2)
        }
    }
}

/// A complete date costs no sacct call, so its files are never opened. For the dates of the
/// window (a few footers, some KB each) check that they still decode: a damaged one loses
/// its completion fact, so this cycle queries the date, moves the file aside and rebuilds it.
/// Returns whether any was damaged.
fn recheck_complete(archive: &Archive, tracker: &mut Tracker, today: NaiveDate, days: u32) -> bool {
    let first = today
        .checked_sub_days(Days::new(days.into()))
        .unwrap_or(today);
    let damaged: Vec<NaiveDate> = first
        .iter_days()
        .take_while(|d| *d <= today)
        .filter(|d| tracker.is_complete(*d))
        .filter(|d| {
            [Kind::Processed, Kind::Raw]
                .iter()
                .any(|k| !archive.decodes(*k, *d))
        })
        .collect();
    for d in &damaged {
        warn!(date = %d, "a partition of a complete date does not decode; collecting the date again");
        tracker.completed_dates.remove(&d.to_string());
    }
    !damaged.is_empty()
}

/// The date a job belongs to: its start, or its submit if it never started, in `zone`.
pub fn attribution(job: &ProcessedJob, zone: &Zone) -> Option<NaiveDate> {
    job.start_time
        .or(job.submit_time)
        .and_then(DateTime::from_timestamp_micros)
        .map(|t| zone.date_of(t))
}

/// Whether `date` is final: its day ended `settle` ago, the sacct that produced `jobs` ran
/// after that, and every job is in a final state. (The caller also requires that the output
/// had no unparsable line.)
pub fn is_date_complete(
    date: NaiveDate,
    zone: &Zone,
    settle: Duration,
    sacct_started: DateTime<Utc>,
    jobs: &[ProcessedJob],
) -> bool {
    let settled = zone.day_end(date) + chrono::Duration::from_std(settle).unwrap_or_default();
    sacct_started >= settled && jobs.iter().all(|j| j.is_complete)
}

/// A date's sacct output, parsed, waiting for the writer.
struct Fetched {
    date: NaiveDate,
    result: Result<(Day, DateTime<Utc>), FetchError>,
    calls: u32,
    failures: u32,
    timeouts: u32,
    sacct_time: Duration,
    _permit: OwnedSemaphorePermit,
}

/// Runs one cycle. Returns an error only for what stops every date (lock, data dir,
/// tracker); per-date failures are in the report.
pub async fn run_cycle(
    c: &Collector,
    opts: &CollectOptions,
    cancel: &CancellationToken,
) -> Result<CycleReport, CollectError> {
    let t0 = Instant::now();
    let mut report = CycleReport {
        started: Some(c.now()),
        ..Default::default()
    };
    let prepared = prepare(c, opts, &mut report).await?;
    if prepared.plan.query.is_empty() {
        report.duration = t0.elapsed();
        return Ok(report);
    }
    report.sacct_version = sacct_version(c, cancel).await;
    let fetching = fetch(c, &prepared.windows, &report, cancel);
    let writer = Writer {
        archive: c.archive.clone(),
        zone: c.config.zone(),
        settle: c.config.collect.settle.0,
        layout: c.layout.clone(),
        cycle_dates: prepared.plan.query.iter().copied().collect(),
        written: HashMap::new(),
        stash: BTreeMap::new(),
        tracker: prepared.tracker,
        sacct_version: report.sacct_version.clone(),
        refresh_unfinished: prepared.mode != Mode::Full,
    };
    let progress = opts
        .progress
        .then(|| progress_bar(prepared.plan.query.len()));
    let mut writer = apply(writer, fetching, &mut report, progress.as_ref(), cancel).await?;
    if let Some(p) = progress {
        p.finish_and_clear();
    }
    // Only after a window that succeeded: a job it did not show then really ended before it.
    if matches!(prepared.mode, Mode::Incremental { .. })
        && !report.cancelled
        && report.failed() == 0
    {
        writer = late::catch_up(c, writer, &mut report, cancel).await?;
    }
    let full_check = prepared.mode == Mode::Full && opts.days >= c.config.collect.lookback_days;
    finish(
        writer,
        &mut report,
        prepared.plan.query.len(),
        full_check,
        c.clock,
    )
    .await?;
    report.duration = t0.elapsed();
    info!(
        dates = report.dates.len(),
        jobs = report.jobs(),
        incomplete = report.incomplete(),
        failed = report.failed(),
        parse_errors = report.parse_errors(),
        sacct_calls = report.sacct_calls,
        sacct_rows = report.sacct_rows(),
        seconds = format!("{:.2}", report.duration.as_secs_f64()),
        cancelled = report.cancelled,
        "collection finished"
    );
    Ok(report)
}

/// What the plan phase leaves for the others; the lock is held until the cycle ends.
struct Prepared {
    _lock: DirLock,
    tracker: Tracker,
    plan: Plan,
    /// The sacct window of each query: (the date its jobs stream into, start, end).
    windows: Vec<(NaiveDate, DateTime<Utc>, DateTime<Utc>)>,
    mode: Mode,
}

/// Phase 1: takes the write lock, removes temp files a crash left behind, loads the tracker
/// (forgetting the completion of a window date whose partition no longer decodes), and plans
/// the dates. The complete dates go into `report` as they are.
async fn prepare(
    c: &Collector,
    opts: &CollectOptions,
    report: &mut CycleReport,
) -> Result<Prepared, CollectError> {
    c.archive.create().map_err(|source| CollectError::DataDir {
        path: c.archive.location().to_path_buf(),
        source,
    })?;
    let lock = take_lock(&c.archive, opts.wait_for_lock).await?;
    report.stale_temps_removed = c.archive.remove_stale_temps().unwrap_or(0);
    if report.stale_temps_removed > 0 {
        warn!(
            count = report.stale_temps_removed,
            "removed temp files left by an interrupted write"
        );
    }
    let mut tracker = c.archive.load_tracker()?.tracker;
    let zone = c.config.zone();
    let now = report.started.unwrap_or_else(|| c.now());
    let today = zone.date_of(now);
    let damaged = recheck_complete(&c.archive, &mut tracker, today, opts.days);
    let mode = choose_mode(
        c.incremental,
        c.config.collect.full_check,
        now,
        &zone,
        opts.days,
        c.config.collect.settle.0,
        &tracker,
        damaged,
    );
    let (plan, windows) = match mode {
        Mode::Full => {
            let partitions = c.archive.dates(Kind::Processed).unwrap_or_default();
            let plan = plan(
                today,
                opts.days,
                c.config.collect.max_recollect_days,
                &tracker,
                &partitions,
            );
            let windows = (plan.query.iter())
                .map(|d| (*d, zone.day_start(*d), zone.day_end(*d)))
                .collect();
            (plan, windows)
        }
        // One query; its jobs of today stream into today's partition, the others are
        // written into their own dates (`route.rs`).
        Mode::Incremental { since } => {
            report.incremental_since = Some(since);
            let plan = Plan {
                query: vec![today],
                already_complete: Vec::new(),
            };
            // Ends where today's whole-day window ends: a job submitted in the very second
            // of the call is in it (sacct's `time_eligible < end` is strict), as in today's.
            (plan, vec![(today, since, zone.day_end(today))])
        }
    };
    for d in &plan.already_complete {
        let jobs = tracker.dates.get(&d.to_string()).map_or(0, |i| i.jobs);
        report.dates.push(DateReport {
            jobs: jobs as usize,
            ..DateReport::new(*d, DateOutcome::AlreadyComplete)
        });
    }
    info!(
        dates = plan.query.len(),
        complete = plan.already_complete.len(),
        incremental_since = %report.incremental_since.map(|t| t.to_rfc3339()).unwrap_or_default(),
        first = %plan.query.first().map(|d| d.to_string()).unwrap_or_default(),
        last = %plan.query.last().map(|d| d.to_string()).unwrap_or_default(),
        "collection started"
    );
    Ok(Prepared {
        _lock: lock,
        tracker,
        plan,
        windows,
        mode,
    })
}

/// The sacct version, for the files' metadata; "unknown" (with a warning) if sacct will
/// not say.
async fn sacct_version(c: &Collector, cancel: &CancellationToken) -> String {
    let timeout = c
        .config
        .collect
        .sacct_timeout
        .0
        .min(Duration::from_secs(60));
    match version(&c.sacct, timeout, cancel).await {
        Ok(v) => v,
        Err(e) => {
            warn!("cannot read the sacct version: {e}");
            "unknown".to_string()
        }
    }
}

/// The dates of phase 2 as they arrive, and the tasks that fetch them.
struct Fetching {
    rx: mpsc::Receiver<Fetched>,
    tasks: JoinSet<()>,
}

/// Phase 2: starts one task per date that runs sacct (with retries) under the concurrency
/// limit and builds the date's jobs and staged raw rows while sacct prints. Each finished
/// date is sent to the writer with its semaphore permit, so a date's memory is bounded until
/// it is written.
fn fetch(
    c: &Collector,
    windows: &[(NaiveDate, DateTime<Utc>, DateTime<Utc>)],
    report: &CycleReport,
    cancel: &CancellationToken,
) -> Fetching {
    let cfg = &c.config;
    let zone = cfg.zone();
    let ctx = Context {
        sacct_version: report.sacct_version.as_str().into(),
        processed_date: report.started.unwrap_or_else(Utc::now).timestamp_micros(),
    };
    let (tx, rx) = mpsc::channel::<Fetched>(windows.len().max(1));
    let semaphore = c.sacct_slots.clone();
    let mut tasks = JoinSet::new();
    let clock = c.clock;
    for (date, from, to) in windows.iter().copied() {
        let (tx, sem, cancel) = (tx.clone(), semaphore.clone(), cancel.clone());
        let (prog, cfg, cluster) = (c.sacct.clone(), cfg.clone(), c.cluster.clone());
        let spec = DaySpec {
            date,
            zone: zone.clone(),
            layout: c.layout.clone(),
            ctx: ctx.clone(),
            meta: Meta {
                date,
                sacct_version: report.sacct_version.clone(),
                timezone: zone.name(),
            },
            archive: c.archive.clone(),
            parse_slots: c.parse_slots.clone(),
        };
        tasks.spawn(async move {
            let Ok(permit) = sem.acquire_owned().await else {
                return;
            };
            if cancel.is_cancelled() {
                return;
            }
            let args = sacct_args(&spec.layout, cluster.as_deref(), from, to);
            let timeout = cfg.collect.sacct_timeout.0;
            let a = with_retries(
                cfg.collect.retries,
                cfg.collect.retry_delay.0,
                &cancel,
                &date.to_string(),
                || day::fetch(&prog, &args, timeout, &cancel, spec.clone()),
            )
            .await;
            let result = a.result.map(|(day, run)| {
                if !run.stderr.is_empty() {
                    warn!(date = %date, "sacct succeeded but wrote to stderr: {}", run.stderr);
                }
                let ran_at = clock.unwrap_or_else(|| {
                    Utc::now() - chrono::Duration::from_std(run.elapsed).unwrap_or_default()
                });
                (day, ran_at)
            });
            let _ = tx
                .send(Fetched {
                    date,
                    result,
                    calls: a.calls,
                    failures: a.failures,
                    timeouts: a.timeouts,
                    sacct_time: a.sacct_time,
                    _permit: permit,
                })
                .await;
        });
    }
    Fetching { rx, tasks }
}

/// Phase 3: applies each date as it arrives, one at a time, on a blocking thread (encoding
/// and fsyncs). After SIGTERM only the write in flight is finished, never a date that
/// happens to be waiting (each could take seconds past the grace period).
async fn apply(
    mut writer: Writer,
    mut fetching: Fetching,
    report: &mut CycleReport,
    progress: Option<&indicatif::ProgressBar>,
    cancel: &CancellationToken,
) -> Result<Writer, CollectError> {
    loop {
        let fetched = tokio::select! {
            biased;
            _ = cancel.cancelled() => { report.cancelled = true; break }
            f = fetching.rx.recv() => match f { Some(f) => f, None => break },
        };
        report.sacct_calls += fetched.calls;
        report.sacct_failures += fetched.failures;
        report.sacct_timeouts += fetched.timeouts;
        report.sacct_seconds += fetched.sacct_time.as_secs_f64();
        let date = fetched.date;
        let failed = |why: String| DateReport {
            sacct_seconds: fetched.sacct_time.as_secs_f64(),
            ..DateReport::new(date, DateOutcome::Failed(why))
        };
        let date_report = match fetched.result {
            Err(FetchError::Sacct(CommandError::Cancelled)) => {
                report.cancelled = true;
                continue;
            }
            Err(e) => {
                error!(date = %date, calls = fetched.calls, "sacct failed, date stays incomplete: {e}");
                failed(e.to_string())
            }
            Ok((day, ran_at)) => {
                let rows = day.rows;
                let (w, r) = on_blocking(writer, move |w| w.apply(date, day, ran_at)).await?;
                writer = w;
                match r {
                    Ok(r) => DateReport {
                        sacct_seconds: fetched.sacct_time.as_secs_f64(),
                        sacct_rows: rows,
                        ..r
                    },
                    Err(e) => {
                        error!(date = %date, "writing failed, previous files kept: {e}");
                        DateReport {
                            sacct_rows: rows,
                            ..failed(e.to_string())
                        }
                    }
                }
            }
        };
        if let Some(p) = progress {
            p.set_message(date.to_string());
            p.inc(1);
        }
        report.dates.push(date_report);
    }
    // The fetch tasks end by themselves, never aborted: dropping the receiver drops the dates
    // that will not be applied and frees their permits, so a task still waiting for one sees
    // the cancellation and returns; a task mid-fetch returns once its sacct is killed and its
    // parsing thread has dropped the date's staged raw file. An aborted task would detach that
    // thread, and a daemon exiting after SIGTERM could leave its temp file behind.
    drop(fetching.rx);
    while fetching.tasks.join_next().await.is_some() {}
    Ok(writer)
}

/// Phase 4: writes the jobs still held for dates whose sacct failed, notes the last success
/// (every queried date applied, none failed, not cancelled), and saves the tracker.
async fn finish(
    writer: Writer,
    report: &mut CycleReport,
    queried: usize,
    full_check: bool,
    clock: Option<DateTime<Utc>>,
) -> Result<(), CollectError> {
    let mut writer = writer;
    if !writer.stash.is_empty() {
        let (w, r) = on_blocking(writer, Writer::flush_stash).await?;
        writer = w;
        if let Err(e) = r {
            error!("writing jobs of failed dates' neighbours failed: {e}");
        }
    }
    let done = report
        .dates
        .iter()
        .filter(|d| d.outcome != DateOutcome::AlreadyComplete)
        .count();
    if !report.cancelled && report.failed() == 0 && done == queried {
        writer.tracker.last_success = Some(clock.unwrap_or_else(Utc::now));
        // Every change before the cycle started is archived now: whole days cover every
        // job active since their first day, an incremental window every job active since
        // the last sync. A write that moved a damaged partition aside cleared the full
        // check, so the next cycle queries whole days and rebuilds it.
        writer.tracker.synced_to = report.started;
        if full_check {
            writer.tracker.last_full_check = report.started;
        }
    }
    let (_, saved) = on_blocking(writer, |w| w.archive.save_tracker(&mut w.tracker)).await?;
    saved?;
    report.dates.sort_by_key(|d| d.date);
    Ok(())
}

/// Runs `f` on the writer on a blocking thread (its writes encode and fsync) and hands the
/// writer back with the result.
async fn on_blocking<R: Send + 'static>(
    writer: Writer,
    f: impl FnOnce(&mut Writer) -> R + Send + 'static,
) -> Result<(Writer, R), CollectError> {
    tokio::task::spawn_blocking(move || {
        let mut w = writer;
        let r = f(&mut w);
        (w, r)
    })
    .await
    .map_err(|e| CollectError::Internal(format!("writer task failed: {e}")))
}

async fn take_lock(archive: &Archive, wait: bool) -> Result<DirLock, LockError> {
    match archive.try_lock_writer() {
        Err(LockError::Busy { holder, .. }) if wait => {
            info!("waiting for the data dir's write lock ({holder} holds it)");
            let a = archive.clone();
            tokio::task::spawn_blocking(move || a.lock_writer_wait())
                .await
                .map_err(|e| LockError::Io {
                    path: archive.location().to_path_buf(),
                    source: std::io::Error::other(e),
                })?
        }
        other => other,
    }
}

fn progress_bar(len: usize) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(len as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} collecting [{bar:30}] {pos}/{len} dates {msg} ({elapsed})",
        )
        .expect("static template is valid")
        .progress_chars("=> "),
    );
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn merged_report_sums_clusters_and_names_the_failed_one() {
        let of = |name: &str, result| ClusterCycle {
            cluster: Some(name.to_string()),
            result,
        };
        let report = |calls, date| CycleReport {
            sacct_calls: calls,
            duration: Duration::from_secs(u64::from(calls)),
            dates: vec![DateReport {
                jobs: 3,
                ..DateReport::new(d(date), DateOutcome::Complete)
            }],
            ..Default::default()
        };
        let m = CycleReport::merge(vec![
            of("alpha", Ok(report(2, "2026-11-23"))),
            of("beta", Ok(report(5, "2026-11-23"))),
            of("gamma", Err(CollectError::Internal("boom".into()))),
        ])
        .unwrap();
        assert_eq!(m.sacct_calls, 7);
        assert_eq!(m.duration, Duration::from_secs(5));
        assert_eq!(m.jobs(), 6);
        assert_eq!(m.dates.len(), 2);
        assert_eq!(
            m.cluster_errors,
            [("gamma".to_string(), "internal error: boom".to_string())]
        );
        // Every cluster failed as a whole: the cycle failed, with the first error.
        let e = CycleReport::merge(vec![
            of("alpha", Err(CollectError::Internal("one".into()))),
            of("beta", Err(CollectError::Internal("two".into()))),
        ])
        .unwrap_err();
        assert_eq!(e.to_string(), "internal error: one");
    }

    #[test]
    fn plan_covers_window_and_older_incomplete_dates() {
        let mut t = Tracker::default();
        t.mark_complete(d("2026-11-23"));
        t.mark_complete(d("2026-11-01"));
        let parts = [
            d("2026-09-01"),
            d("2026-11-01"),
            d("2026-11-10"),
            d("2026-11-23"),
        ];
        let p = plan(d("2026-11-25"), 2, 60, &t, &parts);
        assert_eq!(p.query, [d("2026-11-10"), d("2026-11-24"), d("2026-11-25")]);
        assert_eq!(p.already_complete, [d("2026-11-23")]);
        // max_recollect_days bounds the look back.
        let p = plan(d("2026-11-25"), 0, 10, &t, &parts);
        assert_eq!(p.query, [d("2026-11-25")]);
    }

    #[test]
    fn plan_skips_older_dates_that_hold_only_spilled_jobs() {
        use crate::store::tracker::DateInfo;
        let mut t = Tracker::default();
        let spilled = DateInfo {
            jobs: 1,
            incomplete_jobs: 1,
            ..DateInfo::default()
        };
        let queried = DateInfo {
            last_collected: Some(Utc::now()),
            ..spilled.clone()
        };
        t.dates.insert("2026-11-10".into(), spilled.clone());
        t.dates.insert("2026-11-12".into(), queried);
        t.dates.insert("2026-11-24".into(), spilled);
        let parts = [
            d("2026-11-09"),
            d("2026-11-10"),
            d("2026-11-12"),
            d("2026-11-24"),
        ];
        let p = plan(d("2026-11-25"), 1, 60, &t, &parts);
        // 11-09 has no facts (the Python tool's), 11-12 was queried: both again. 11-10 holds
        // only spilled jobs: not queried. 11-24 is in the window: queried whatever it holds.
        assert_eq!(
            p.query,
            [
                d("2026-11-09"),
                d("2026-11-12"),
                d("2026-11-24"),
                d("2026-11-25")
            ]
        );
        // Asked for, it is queried.
        let p = plan(d("2026-11-25"), 15, 60, &t, &parts);
        assert!(p.query.contains(&d("2026-11-10")));
    }

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    /// A tracker after a successful full check at `at` that queried the 24th and 25th.
    fn synced(at: &str) -> Tracker {
        use crate::store::tracker::DateInfo;
        let mut tr = Tracker {
            synced_to: Some(t(at)),
            last_full_check: Some(t(at)),
            ..Tracker::default()
        };
        for date in ["2026-11-24", "2026-11-25"] {
            tr.dates.insert(
                date.into(),
                DateInfo {
                    last_collected: Some(t(at)),
                    ..DateInfo::default()
                },
            );
        }
        tr
    }

    #[test]
    fn a_daemon_cycle_is_incremental_from_the_last_success_minus_the_overlap() {
        let utc: Zone = "UTC".parse().unwrap();
        let hour = Duration::from_secs(3600);
        let mode = |allowed, check, now: &str, tr: &Tracker, damaged| {
            choose_mode(allowed, check, t(now), &utc, 1, hour, tr, damaged)
        };
        let tr = synced("2026-11-25T02:00:00Z");
        let since = t("2026-11-25T01:50:00Z");
        assert_eq!(
            mode(true, FullCheck::Daily, "2026-11-25T03:00:00Z", &tr, false),
            Mode::Incremental { since }
        );
        // `collect`, "always", damage, nothing recorded, a clock that went back: whole days.
        for (allowed, check, damaged) in [
            (false, FullCheck::Daily, false),
            (true, FullCheck::Always, false),
            (true, FullCheck::Daily, true),
        ] {
            let m = mode(allowed, check, "2026-11-25T03:00:00Z", &tr, damaged);
            assert_eq!(m, Mode::Full, "{allowed} {check} {damaged}");
        }
        let never = Tracker::default();
        assert_eq!(
            mode(
                true,
                FullCheck::Daily,
                "2026-11-25T03:00:00Z",
                &never,
                false
            ),
            Mode::Full
        );
        assert_eq!(
            mode(true, FullCheck::Daily, "2026-11-25T01:00:00Z", &tr, false),
            Mode::Full
        );
        // The next day, the window's older date (the 25th) was queried whole: incremental
        // until the 26th has settled (01:00), then the daily full check.
        assert!(matches!(
            mode(true, FullCheck::Daily, "2026-11-26T00:30:00Z", &tr, false),
            Mode::Incremental { .. }
        ));
        assert_eq!(
            mode(true, FullCheck::Daily, "2026-11-26T01:10:00Z", &tr, false),
            Mode::Full
        );
        // A window date that began before the sync and was never queried whole: lookback
        // grew, or the archive started today.
        let mut fresh = tr.clone();
        fresh.dates.remove("2026-11-24");
        assert_eq!(
            mode(
                true,
                FullCheck::Daily,
                "2026-11-25T03:00:00Z",
                &fresh,
                false
            ),
            Mode::Full
        );
        fresh.mark_complete(d("2026-11-24"));
        assert!(matches!(
            mode(
                true,
                FullCheck::Daily,
                "2026-11-25T03:00:00Z",
                &fresh,
                false
            ),
            Mode::Incremental { .. }
        ));
        // An interval.
        let six = FullCheck::Every(Duration::from_secs(6 * 3600));
        assert!(matches!(
            mode(true, six, "2026-11-25T07:59:00Z", &tr, false),
            Mode::Incremental { .. }
        ));
        assert_eq!(
            mode(true, six, "2026-11-25T08:00:00Z", &tr, false),
            Mode::Full
        );
    }

    #[test]
    fn the_daily_full_check_is_due_once_yesterday_has_settled() {
        let ams: Zone = "Europe/Amsterdam".parse().unwrap();
        let hour = Duration::from_secs(3600);
        let due =
            |now: &str, last: &str| full_check_due(FullCheck::Daily, t(now), &ams, hour, t(last));
        // 01:00 in Amsterdam is 00:00 UTC in November.
        assert!(!due("2026-11-25T23:30:00Z", "2026-11-25T00:10:00Z"));
        assert!(due("2026-11-26T00:05:00Z", "2026-11-25T00:10:00Z"));
        assert!(!due("2026-11-26T00:05:00Z", "2026-11-26T00:01:00Z"));
        // Before today's settle point, yesterday's counts.
        assert!(due("2026-11-25T22:30:00Z", "2026-11-24T22:00:00Z"));
    }

    #[test]
    fn today_is_never_complete_and_settle_is_respected() {
        let utc: Zone = "UTC".parse().unwrap();
        let job = ProcessedJob {
            is_complete: true,
            ..Default::default()
        };
        let hour = Duration::from_secs(3600);
        let day = d("2026-11-24");
        let end = utc.day_end(day);
        assert!(!is_date_complete(
            day,
            &utc,
            hour,
            end,
            std::slice::from_ref(&job)
        ));
        assert!(!is_date_complete(
            day,
            &utc,
            hour,
            end + chrono::Duration::minutes(59),
            std::slice::from_ref(&job)
        ));
        assert!(is_date_complete(
            day,
            &utc,
            hour,
            end + chrono::Duration::minutes(60),
            std::slice::from_ref(&job)
        ));
        let running = ProcessedJob::default();
        assert!(!is_date_complete(
            day,
            &utc,
            hour,
            end + chrono::Duration::days(2),
            &[job, running]
        ));
    }

    #[test]
    fn dates_parsed_at_once_are_bounded_by_cores_and_the_sacct_limit() {
        assert_eq!(
            parse_parallelism(4, 2),
            1,
            "a splitter and an encoder per date"
        );
        assert_eq!(parse_parallelism(4, 1), 1);
        assert_eq!(parse_parallelism(4, 8), 4);
        assert_eq!(
            parse_parallelism(2, 8),
            2,
            "never more than the sacct calls"
        );
        assert_eq!(parse_parallelism(1000, 16), 8);
        assert_eq!(parse_parallelism(0, 2), 1, "a cycle always makes progress");
    }

    #[test]
    fn attribution_prefers_start_then_submit() {
        let utc: Zone = "UTC".parse().unwrap();
        let t = |s: &str| Some(DateTime::parse_from_rfc3339(s).unwrap().timestamp_micros());
        let mut j = ProcessedJob {
            submit_time: t("2026-11-24T23:59:00Z"),
            start_time: t("2026-11-25T00:01:00Z"),
            ..Default::default()
        };
        assert_eq!(attribution(&j, &utc), Some(d("2026-11-25")));
        let ams: Zone = "Europe/Amsterdam".parse().unwrap();
        assert_eq!(attribution(&j, &ams), Some(d("2026-11-25")));
        j.start_time = None;
        assert_eq!(attribution(&j, &utc), Some(d("2026-11-24")));
        assert_eq!(
            attribution(&j, &ams),
            Some(d("2026-11-25")),
            "00:59 in Amsterdam"
        );
    }
}
