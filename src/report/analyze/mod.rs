//! `analyze`: aggregate the archive into the report every renderer prints (terminal, JSON,
//! CSV, HTML). Computed from the processed Parquet files only, never from sacct.
//!
//! Semantics (`docs/reports.md`; the per-job numbers are `docs/metrics.md`):
//! - The input is a set of archives read as one (one per cluster, or a single archive). The
//!   window is the inclusive dates `since..=until` in the configured zone; the files read are
//!   those dates' partitions in every archive, in order (archive, date) (a job lives in the
//!   file of the date it started, or was submitted if it never started).
//! - A job is `(cluster, job_id)`, the cluster taken from each row's `cluster` column: the
//!   same id on two clusters is two jobs. A job that appears more than once (a pending job
//!   that moved to its start date and a crash left the old copy, or the Python tool's files)
//!   counts once: the record with the newest `processed_date` wins, ties going to the later
//!   file.
//! - "Jobs" counts every job in the window, pending included. CPU, GPU and memory hours are
//!   *reserved* hours (allocation x elapsed). RAM is the memory the jobs held, summed.
//! - Efficiency averages, waste and the top wasters use COMPLETED jobs only: the usage of a
//!   running job is not known yet, and a failed job's numbers are not a fair efficiency.
//! - Daily usage splits each job's hours over the calendar days it ran; nodes split a job's
//!   hours evenly over its nodes.
//!
//! Scale: the archive can hold millions of jobs, so nothing here keeps a row after it is
//! counted. Files are read column-projected, batch by batch ([`super::scan`]), on a few
//! threads; each file gives a partial aggregate, and partials are merged in file order so
//! the unrounded numbers do not depend on thread timing. Deduplication (`dedup.rs`) takes a
//! first pass over the `cluster` and `job_id` columns only (`cluster` is dictionary-encoded:
//! one hash per distinct value a batch); the rows whose job hash is seen twice are kept
//! aside in full in the second pass and resolved exactly by cluster and id at the end. Only
//! the files holding such rows read `job_id` again.
//!
//! Known limit: only the window's files are read, so a stale copy of a job in the window
//! whose newer record lives in a later file *outside* the window still counts (a job moves
//! to later dates only, so this needs `--until` in the past and a crash mid-move).
//!
//! This file is the driver (the two passes over the files); `context.rs` holds what an
//! analysis is asked, `aggregate.rs` the sums, `dedup.rs` the duplicate resolution,
//! `finish.rs` the step from sums to the report and `types.rs` the report itself.

mod aggregate;
mod context;
mod dedup;
mod finish;
mod types;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use chrono::NaiveDate;

use super::scan::{self, JobRow, OwnedRow, ScanError, TextColumn, REPORT_COLUMNS};
use crate::fxhash::FxHashSet;
use crate::store::{Archive, Kind};
use aggregate::{aggregate_owned, Interner, Named, Partial, Slots};
use dedup::{cluster_seed, job_hash, repeated_hashes, resolve_duplicates};
use finish::finish;

pub use context::{Context, Filter, Groups, NodeInventory, Window, UNGROUPED};
pub use types::{
    Analysis, DayUsage, Efficiency, GpuUse, Measured, NodeUsage, Spread, StateCount, Summary, Usage,
};

/// Errors that stop an analysis. An unreadable single file does not: it is skipped and
/// listed in [`Analysis::unreadable`].
#[derive(Debug, thiserror::Error)]
pub enum AnalyzeError {
    #[error("cannot list {path}: {source}")]
    List {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("--since {since} is after --until {until}")]
    EmptyWindow { since: NaiveDate, until: NaiveDate },
    #[error("a worker thread panicked while reading the archive")]
    Worker,
}

/// Aggregates rows held in memory (tests, small inputs): the same rules as
/// [`analyze_dir`], deduplication included.
pub fn analyze_rows<'a>(rows: impl IntoIterator<Item = JobRow<'a>>, ctx: &Context) -> Analysis {
    let owned: Vec<((usize, usize), OwnedRow)> = rows
        .into_iter()
        .enumerate()
        .map(|(i, r)| ((0, i), OwnedRow::from_row(&r)))
        .collect();
    let (winners, lost) = resolve_duplicates(owned);
    finish(aggregate_owned(&winners, ctx), ctx, 0, lost, Vec::new())
}

/// One partition to read: the index of its archive in the set, and its date.
pub type FileRef = (usize, NaiveDate);

/// The partitions of the window, as `(archive index, date)`: every archive's processed
/// dates in the window, archive by archive, each in date order.
pub fn window_dates(archives: &[Archive], w: &Window) -> Result<Vec<FileRef>, AnalyzeError> {
    let mut files = Vec::new();
    for (a, archive) in archives.iter().enumerate() {
        let dates = archive
            .dates(Kind::Processed)
            .map_err(|source| AnalyzeError::List {
                path: archive.prefix(Kind::Processed),
                source,
            })?;
        files.extend(
            dates
                .into_iter()
                .filter(|d| (w.since..=w.until).contains(d))
                .map(|d| (a, d)),
        );
    }
    Ok(files)
}

/// Analyzes the window's partitions in `archives`, read as one (one archive per cluster, or
/// a single archive holding any number of clusters). Partitions that cannot be read are
/// skipped and listed in the result; a missing `processed/` prefix is an empty archive.
pub fn analyze_dir(archives: &[Archive], ctx: &Context) -> Result<Analysis, AnalyzeError> {
    let files = window_dates(archives, &ctx.window)?;
    let failures = Failures::default();
    let hold = rows_to_hold(archives, &files, ctx, &failures)?;
    let (mut total, held) = aggregate_files(archives, &files, ctx, &hold, &failures)?;
    let (winners, lost) = resolve_duplicates(held);
    total.merge(aggregate_owned(&winners, ctx));
    let errors = failures.0.into_inner().unwrap_or_default();
    let read = (files.len() - errors.len()) as u64;
    Ok(finish(
        total,
        ctx,
        read,
        lost,
        errors.into_values().collect(),
    ))
}

/// The files that could not be read, by index, with the reason (the first failure wins the
/// slot; a file failing in both passes is listed once).
#[derive(Default)]
struct Failures(Mutex<BTreeMap<usize, String>>);

impl Failures {
    fn record(&self, i: usize, e: ScanError) {
        if let Ok(mut m) = self.0.lock() {
            m.insert(i, e.to_string());
        }
    }

    fn indices(&self) -> FxHashSet<usize> {
        self.0
            .lock()
            .map(|m| m.keys().copied().collect())
            .unwrap_or_default()
    }
}

/// One pass-1 thread's results and its reusable buffers.
#[derive(Default)]
struct Hashes {
    /// `(file, hash of each row)`.
    files: Vec<(usize, Vec<u64>)>,
    /// The batch's cluster ids and the hasher state of each.
    clusters: Vec<u32>,
    seeds: Vec<crate::fxhash::FxHasher>,
}

/// Pass 1: job hashes only (8 bytes a job: cluster and id), to find jobs that occur more
/// than once. Returns, per file, the rows to hold back for exact resolution (usually none),
/// in order.
fn rows_to_hold(
    archives: &[Archive],
    files: &[FileRef],
    ctx: &Context,
    failures: &Failures,
) -> Result<Vec<Vec<usize>>, AnalyzeError> {
    let n = files.len();
    let zone = &ctx.window.zone;
    let per_thread = parallel::<Hashes>(n, ctx.threads, |i, hs| {
        let (a, date) = files[i];
        let mut v = Vec::new();
        let columns = &["job_id", "cluster"];
        let r = scan::for_each_batch(&archives[a], date, zone, columns, |b| {
            // Once per distinct cluster of the batch (it is a dictionary), not per row.
            hs.seeds.clear();
            let seeds = &mut hs.seeds;
            b.ids(
                TextColumn::Cluster,
                |c| {
                    seeds.push(cluster_seed(c));
                    (seeds.len() - 1) as u32
                },
                &mut hs.clusters,
            );
            let (clusters, seeds) = (&hs.clusters, &hs.seeds);
            v.extend((0..b.len()).map(|j| job_hash(seeds[clusters[j] as usize], b.job_id(j))));
        });
        match r {
            Ok(()) => hs.files.push((i, v)),
            Err(e) => failures.record(i, e),
        }
    })?;
    let mut by_file: Vec<Vec<u64>> = vec![Vec::new(); n];
    for (i, v) in per_thread.into_iter().flat_map(|h| h.files) {
        by_file[i] = v;
    }
    let mut all: Vec<u64> = Vec::with_capacity(by_file.iter().map(Vec::len).sum());
    for v in &by_file {
        all.extend_from_slice(v);
    }
    let repeated = repeated_hashes(all, ctx.threads);
    Ok(by_file
        .into_iter()
        .map(|v| {
            if repeated.is_empty() {
                return Vec::new();
            }
            v.iter()
                .enumerate()
                .filter(|(_, h)| repeated.contains(h))
                .map(|(r, _)| r)
                .collect()
        })
        .collect())
}

/// A row held back for exact deduplication, with its position `(file, row)`.
type Held = ((usize, usize), OwnedRow);

/// Pass 2: aggregate, one partial per file, merged in file order. Rows in `hold` are kept
/// back whole (returned for [`resolve_duplicates`]); only their files read job_id again.
fn aggregate_files(
    archives: &[Archive],
    files: &[FileRef],
    ctx: &Context,
    hold: &[Vec<usize>],
    failures: &Failures,
) -> Result<(Named, Vec<Held>), AnalyzeError> {
    let bad = failures.indices();
    let without_id: Vec<&str> = REPORT_COLUMNS
        .iter()
        .copied()
        .filter(|c| *c != "job_id")
        .collect();
    let merger = Mutex::new(Merger {
        next: 0,
        waiting: BTreeMap::new(),
        total: Named::new(ctx.window.days()),
    });
    let held: Mutex<Vec<Held>> = Mutex::new(Vec::new());
    parallel::<Worker>(files.len(), ctx.threads, |i, wk| {
        let (p, mut kept) = if bad.contains(&i) {
            (Partial::new(ctx.window.days()), Vec::new())
        } else {
            let columns: &[&str] = if hold[i].is_empty() {
                &without_id
            } else {
                REPORT_COLUMNS
            };
            match aggregate_file(archives, files[i], i, columns, &hold[i], ctx, wk) {
                Ok(r) => r,
                Err(e) => {
                    // Changed or broke between the passes: count none of it.
                    failures.record(i, e);
                    (Partial::new(ctx.window.days()), Vec::new())
                }
            }
        };
        let named = p.named(&wk.it);
        if let Ok(mut h) = held.lock() {
            h.append(&mut kept);
        }
        if let Ok(mut m) = merger.lock() {
            m.offer(i, named);
        }
    })?;
    let total = merger.into_inner().map_err(|_| AnalyzeError::Worker)?.total;
    let held = held.into_inner().map_err(|_| AnalyzeError::Worker)?;
    Ok((total, held))
}

/// Reads file `i` (the partition `file`) with `columns` and counts its rows, except the
/// `hold` rows, which come back whole.
fn aggregate_file(
    archives: &[Archive],
    (a, date): FileRef,
    i: usize,
    columns: &[&str],
    hold: &[usize],
    ctx: &Context,
    wk: &mut Worker,
) -> Result<(Partial, Vec<Held>), ScanError> {
    let w = &ctx.window;
    let mut p = Partial::new(w.days());
    let mut kept = Vec::new();
    let mut next_hold = hold.iter().copied().peekable();
    let mut row_no = 0usize;
    scan::for_each_batch(&archives[a], date, &w.zone, columns, |b| {
        let it = &mut wk.it;
        it.trim_node_lists();
        b.ids(
            TextColumn::Cluster,
            |s| it.cluster(s, ctx),
            &mut wk.clusters,
        );
        b.ids(TextColumn::User, |s| it.user(s, ctx), &mut wk.users);
        b.ids(
            TextColumn::Partition,
            |s| it.partition(s, ctx),
            &mut wk.partitions,
        );
        b.ids(TextColumn::State, |s| it.state(s), &mut wk.states);
        b.ids(
            TextColumn::NodeList,
            |s| it.node_list(s),
            &mut wk.node_lists,
        );
        for j in 0..b.len() {
            if next_hold.peek() == Some(&(row_no + j)) {
                next_hold.next();
                kept.push(((i, row_no + j), OwnedRow::from_row(&b.row(j))));
                continue;
            }
            let s = Slots {
                cluster: wk.clusters[j],
                user: wk.users[j],
                partition: wk.partitions[j],
                state: wk.states[j],
                node_list: wk.node_lists[j],
            };
            if Partial::keep(s, it) {
                p.add(&b.metrics(j), s, it, w);
            }
        }
        row_no += b.len();
    })?;
    Ok((p, kept))
}

/// Runs `work(i, state)` for every index in `0..n` on `threads` scoped threads, handing out
/// indices one at a time so a big file does not leave the other thread idle. Returns each
/// thread's final state.
fn parallel<S: Default + Send>(
    n: usize,
    threads: usize,
    work: impl Fn(usize, &mut S) + Sync,
) -> Result<Vec<S>, AnalyzeError> {
    let next = AtomicUsize::new(0);
    let threads = threads.clamp(1, n.max(1));
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let mut state = S::default();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= n {
                            break;
                        }
                        work(i, &mut state);
                    }
                    state
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().map_err(|_| AnalyzeError::Worker))
            .collect()
    })
}

/// Partials arrive from threads in any order; they are merged strictly in file order, so
/// the floating-point sums do not depend on thread timing.
struct Merger {
    next: usize,
    waiting: BTreeMap<usize, Named>,
    total: Named,
}

impl Merger {
    fn offer(&mut self, i: usize, p: Named) {
        self.waiting.insert(i, p);
        while let Some(p) = self.waiting.remove(&self.next) {
            self.total.merge(p);
            self.next += 1;
        }
    }
}

/// One reader thread's reusable state.
#[derive(Default)]
struct Worker {
    it: Interner,
    clusters: Vec<u32>,
    users: Vec<u32>,
    partitions: Vec<u32>,
    states: Vec<u32>,
    node_lists: Vec<u32>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    use crate::config::Config;
    use crate::zone::Zone;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn ctx(since: &str, until: &str) -> Context {
        let now = Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0).unwrap();
        let utc: Zone = "UTC".parse().unwrap();
        Context {
            window: Window::new(d(since), d(until), utc, now).unwrap(),
            filter: Filter::default(),
            groups: Groups::default(),
            inventory: NodeInventory::default(),
            threads: 1,
        }
    }

    fn at(s: &str) -> i64 {
        chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M")
            .unwrap()
            .and_utc()
            .timestamp_micros()
    }

    fn row(id: &str, user: &str, state: &str) -> OwnedRow {
        OwnedRow {
            job_id: id.into(),
            cluster: "rig".into(),
            user: user.into(),
            partition: "cpu".into(),
            state: state.into(),
            ..Default::default()
        }
    }

    #[test]
    fn a_job_over_three_days_counts_on_each() {
        let c = ctx("2026-11-23", "2026-11-26");
        let mut r = row("1", "alice", "COMPLETED");
        r.m.start = Some(at("2026-11-23 12:00"));
        r.m.elapsed_seconds = 48 * 3600; // to Wednesday 12:00
        r.m.cpu_hours = 96.0; // 2 CPUs
        let a = analyze_rows([r.as_row()], &c);
        let hours: Vec<f64> = a.daily.iter().map(|d| d.cpu_hours).collect();
        assert_eq!(hours, [24.0, 48.0, 24.0, 0.0]);
        let jobs: Vec<u64> = a.daily.iter().map(|d| d.jobs).collect();
        assert_eq!(jobs, [1, 1, 1, 0]);
        assert_eq!(a.daily[1].users, 1);
        assert_eq!(a.summary.cpu_hours, 96.0);
    }

    #[test]
    fn newest_processed_date_wins() {
        let c = ctx("2026-11-23", "2026-11-23");
        let mut old = row("9", "alice", "PENDING");
        old.m.processed_date = 1;
        let mut new = row("9", "alice", "COMPLETED");
        new.m.processed_date = 2;
        new.m.cpu_efficiency = 50.0;
        let a = analyze_rows([new.as_row(), old.as_row()], &c);
        assert_eq!(a.summary.jobs, 1);
        assert_eq!(a.summary.duplicates_removed, 1);
        assert_eq!(a.states[0].state, "COMPLETED");
        assert_eq!(a.efficiency.cpu.mean, Some(50.0));
    }

    #[test]
    fn efficiency_uses_completed_jobs_only() {
        let c = ctx("2026-11-23", "2026-11-23");
        let mut a1 = row("1", "alice", "COMPLETED");
        a1.m.cpu_efficiency = 20.0;
        let mut a2 = row("2", "alice", "COMPLETED");
        a2.m.cpu_efficiency = 40.0;
        let mut a3 = row("3", "alice", "FAILED");
        a3.m.cpu_efficiency = 100.0;
        a3.m.cpu_hours_wasted = 7.0;
        let a = analyze_rows([a1.as_row(), a2.as_row(), a3.as_row()], &c);
        assert_eq!(a.users[0].jobs, 3);
        assert_eq!(a.users[0].avg_cpu_efficiency, Some(30.0));
        assert_eq!(a.users[0].cpu_hours_wasted, 0.0);
        assert_eq!(a.efficiency.cpu.median, Some(30.0));
        assert_eq!(
            (a.efficiency.cpu.min, a.efficiency.cpu.max),
            (Some(20.0), Some(40.0))
        );
    }

    #[test]
    fn nodes_share_a_job_evenly() {
        let mut c = ctx("2026-11-23", "2026-11-23");
        c.inventory.nodes.insert("n1".into(), (4, 0));
        let mut r = row("1", "alice", "COMPLETED");
        r.node_list = "n[1-2]".into();
        r.m.cpu_hours = 8.0;
        let a = analyze_rows([r.as_row()], &c);
        assert_eq!(a.nodes.len(), 2);
        assert_eq!(a.nodes[0].cpu_hours, 4.0);
        let n1 = a.nodes.iter().find(|n| n.node == "n1").unwrap();
        assert_eq!(n1.cpu_utilization, Some(100.0 * 4.0 / (4.0 * 24.0)));
        assert_eq!(
            a.nodes
                .iter()
                .find(|n| n.node == "n2")
                .unwrap()
                .cpu_utilization,
            None
        );
    }

    #[test]
    fn filters_and_groups() {
        let mut c = ctx("2026-11-23", "2026-11-23");
        let mut config = Config::default();
        config.groups.insert("physics".into(), vec!["alice".into()]);
        c.groups = Groups::from_config(&config);
        c.filter.group = Some("ungrouped".into());
        let a = analyze_rows(
            [
                row("1", "alice", "COMPLETED").as_row(),
                row("2", "bob", "COMPLETED").as_row(),
            ],
            &c,
        );
        assert_eq!(a.users.len(), 1);
        assert_eq!(a.users[0].key, "bob");
        assert_eq!(a.groups[0].key, UNGROUPED);
    }
}

#[cfg(test)]
mod cluster_tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    use crate::model::ProcessedJob;
    use crate::store::parquet::Meta;
    use crate::zone::Zone;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn ctx(filter: Filter) -> Context {
        let now = Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0).unwrap();
        let utc: Zone = "UTC".parse().unwrap();
        Context {
            window: Window::new(d("2026-11-23"), d("2026-11-24"), utc, now).unwrap(),
            filter,
            groups: Groups::default(),
            inventory: NodeInventory::default(),
            threads: 2,
        }
    }

    fn rec(cluster: &str, id: &str, user: &str, cpu_hours: f64, processed: i64) -> OwnedRow {
        let mut r = OwnedRow {
            job_id: id.into(),
            cluster: cluster.into(),
            user: user.into(),
            partition: "cpu".into(),
            state: "COMPLETED".into(),
            ..Default::default()
        };
        r.m.cpu_hours = cpu_hours;
        r.m.processed_date = processed;
        r
    }

    fn clusters(a: &Analysis) -> Vec<(&str, u64, f64)> {
        a.clusters
            .iter()
            .map(|c| (c.key.as_str(), c.jobs, c.cpu_hours))
            .collect()
    }

    #[test]
    fn the_same_id_on_two_clusters_is_two_jobs() {
        let rows = [rec("a", "7", "alice", 2.0, 1), rec("b", "7", "bob", 3.0, 1)];
        let a = analyze_rows(rows.iter().map(OwnedRow::as_row), &ctx(Filter::default()));
        assert_eq!(a.summary.jobs, 2);
        assert_eq!(a.summary.duplicates_removed, 0);
        assert_eq!(clusters(&a), [("b", 1, 3.0), ("a", 1, 2.0)]);
    }

    #[test]
    fn the_same_id_on_one_cluster_twice_is_one_job() {
        let rows = [
            rec("a", "7", "alice", 2.0, 1),
            rec("a", "7", "alice", 5.0, 2),
            rec("b", "7", "bob", 3.0, 1),
        ];
        let a = analyze_rows(rows.iter().map(OwnedRow::as_row), &ctx(Filter::default()));
        assert_eq!(a.summary.jobs, 2);
        assert_eq!(a.summary.duplicates_removed, 1);
        assert_eq!(
            clusters(&a),
            [("a", 1, 5.0), ("b", 1, 3.0)],
            "newest record of a/7"
        );
    }

    #[test]
    fn cluster_filter_keeps_one_cluster() {
        let rows = [
            rec("a", "1", "alice", 2.0, 1),
            rec("a", "2", "bob", 1.0, 1),
            rec("b", "1", "bob", 3.0, 1),
        ];
        let only_b = Filter {
            cluster: Some("b".into()),
            ..Default::default()
        };
        let a = analyze_rows(rows.iter().map(OwnedRow::as_row), &ctx(only_b));
        assert_eq!(a.summary.jobs, 1);
        assert_eq!(a.summary.cpu_hours, 3.0);
        let users: Vec<&str> = a.users.iter().map(|u| u.key.as_str()).collect();
        assert_eq!(users, ["bob"]);
        assert_eq!(clusters(&a), [("b", 1, 3.0)]);
        let none = Filter {
            cluster: Some("c".into()),
            ..Default::default()
        };
        assert!(analyze_rows(rows.iter().map(OwnedRow::as_row), &ctx(none)).is_empty());
    }

    fn job(cluster: &str, id: &str, user: &str, hours: f64, processed: i64) -> ProcessedJob {
        ProcessedJob {
            job_id: id.into(),
            cluster: cluster.into(),
            user: user.into(),
            partition: "cpu".into(),
            state: "COMPLETED".into(),
            cpu_hours_reserved: hours,
            gpu_hours_reserved: hours / 4.0,
            memory_gb_hours_reserved: hours * 2.0,
            cpu_efficiency: 50.0,
            processed_date: processed,
            ..Default::default()
        }
    }

    fn write(archive: &Archive, date: &str, jobs: &[ProcessedJob]) {
        let meta = Meta {
            date: d(date),
            sacct_version: "x".into(),
            timezone: "UTC".into(),
        };
        archive.write_processed(meta.date, jobs, &meta).unwrap();
    }

    /// Two archives (one a cluster), read as one: ids repeat across them and within one.
    #[test]
    fn archives_read_as_one() {
        let dir = tempfile::tempdir().unwrap();
        let a = Archive::local(dir.path().join("a"));
        let b = Archive::local(dir.path().join("b"));
        a.create().unwrap();
        b.create().unwrap();
        // a/1 on two dates (the newer record wins), a/2 once; b/1 and b/3.
        write(
            &a,
            "2026-11-23",
            &[job("a", "1", "alice", 1.0, 1), job("a", "2", "bob", 2.0, 1)],
        );
        write(&a, "2026-11-24", &[job("a", "1", "alice", 10.0, 2)]);
        write(&b, "2026-11-23", &[job("b", "1", "carol", 4.0, 1)]);
        write(&b, "2026-11-24", &[job("b", "3", "alice", 8.0, 1)]);
        let both = [a, b];
        let r = analyze_dir(&both, &ctx(Filter::default())).unwrap();
        assert_eq!(r.summary.files, 4);
        assert_eq!(r.summary.jobs, 4);
        assert_eq!(r.summary.duplicates_removed, 1);
        assert_eq!(clusters(&r), [("a", 2, 12.0), ("b", 2, 12.0)]);
        // The clusters add up to the totals.
        let sum = |f: fn(&Usage) -> f64| r.clusters.iter().map(f).sum::<f64>();
        assert_eq!(
            r.clusters.iter().map(|c| c.jobs).sum::<u64>(),
            r.summary.jobs
        );
        assert_eq!(sum(|c| c.cpu_hours), r.summary.cpu_hours);
        assert_eq!(sum(|c| c.gpu_hours), r.summary.gpu_hours);
        assert_eq!(sum(|c| c.memory_gb_hours), r.summary.memory_gb_hours);
        assert_eq!(
            r.clusters.iter().map(|c| c.completed_jobs).sum::<u64>(),
            r.summary.completed_jobs
        );
        assert_eq!(
            window_dates(&both, &ctx(Filter::default()).window).unwrap(),
            [
                (0, d("2026-11-23")),
                (0, d("2026-11-24")),
                (1, d("2026-11-23")),
                (1, d("2026-11-24"))
            ]
        );

        let only_a = Filter {
            cluster: Some("a".into()),
            ..Default::default()
        };
        let r = analyze_dir(&both, &ctx(only_a)).unwrap();
        assert_eq!(r.summary.jobs, 2);
        assert_eq!(r.summary.cpu_hours, 12.0);
        let users: Vec<&str> = r.users.iter().map(|u| u.key.as_str()).collect();
        assert_eq!(users, ["alice", "bob"]);
    }
}
