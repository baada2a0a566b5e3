//! `analyze`: aggregate the archive into the report every renderer prints (terminal, JSON,
//! CSV, HTML). Computed from the processed Parquet files only, never from sacct.
//!
//! Semantics (SPEC.md "Contracts"):
//! - The window is the inclusive dates `since..=until` in the configured zone; the files read
//!   are those dates' partitions (a job lives in the file of the date it started, or was
//!   submitted if it never started).
//! - A job that appears more than once (a pending job that moved to its start date and a crash
//!   left the old copy, or the Python tool's files) counts once: the record with the newest
//!   `processed_date` wins, ties going to the later file.
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
//! the unrounded numbers do not depend on thread timing. Deduplication takes a first pass
//! over the `job_id` column only (a 64-bit hash per job, and a sorted copy, freed before the
//! second pass); the rows whose id hash is seen twice are kept aside in full in the second
//! pass and resolved exactly by id at the end, so a hash collision costs memory, never a job.
//! Only the files holding such rows read `job_id` again.
//!
//! Known limit: only the window's files are read, so a stale copy of a job in the window
//! whose newer record lives in a later file *outside* the window still counts (a job moves
//! to later dates only, so this needs `--until` in the past and a crash mid-move).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use chrono::{DateTime, Days, NaiveDate, Utc};

use super::scan::{self, JobMetrics, JobRow, OwnedRow, ScanError, TextColumn, REPORT_COLUMNS};
use crate::config::Config;
use crate::slurm::hostlist::expand_nodelist;
use crate::store::{Archive, Kind};
use crate::zone::Zone;

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

// ---------------------------------------------------------------------------------------
// Hashing: the inner loops hash short strings millions of times; SipHash's DoS resistance
// buys nothing for our own files, so use the Fx hash (as rustc does).

/// The Fx hasher: one multiply-rotate per word.
#[derive(Default, Clone, Copy)]
pub struct FxHasher(u64);

const FX_SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl FxHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(FX_SEED);
    }
}

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.add(u64::from_le_bytes(w));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(w));
        }
    }
    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }
    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }
    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }
    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
}

/// A `HashMap` with the Fx hash.
pub type FxMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;
type FxSet<K> = HashSet<K, BuildHasherDefault<FxHasher>>;

/// A 64-bit hash of a job id for the dedupe pass: Fx over the bytes, the length mixed in,
/// then a SplitMix finaliser so the bits spread well. Collisions are harmless (the ids of
/// colliding rows are compared exactly later), they only cost a little memory.
fn id_hash(id: &str) -> u64 {
    let mut h = FxHasher::default();
    h.write(id.as_bytes());
    h.add(id.len() as u64);
    let mut z = h.finish();
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

// ---------------------------------------------------------------------------------------
// Inputs.

/// The calendar window of a report and its day boundaries.
#[derive(Debug, Clone)]
pub struct Window {
    pub since: NaiveDate,
    pub until: NaiveDate,
    pub zone: Zone,
    /// UTC microseconds at which each date of the window starts, plus the end of the last.
    bounds: Vec<i64>,
    /// Where utilisation stops counting: the window's end, or now if that is earlier.
    pub end_micros: i64,
}

impl Window {
    /// `since..=until` in `zone`; `now` caps the time a node could have been used.
    pub fn new(
        since: NaiveDate,
        until: NaiveDate,
        zone: Zone,
        now: DateTime<Utc>,
    ) -> Result<Window, AnalyzeError> {
        if since > until {
            return Err(AnalyzeError::EmptyWindow { since, until });
        }
        let mut bounds = Vec::new();
        let mut d = since;
        while d <= until {
            bounds.push(zone.day_start(d).timestamp_micros());
            match d.checked_add_days(Days::new(1)) {
                Some(n) => d = n,
                None => break,
            }
        }
        bounds.push(zone.day_end(until).timestamp_micros());
        let end_micros = bounds[bounds.len() - 1].min(now.timestamp_micros());
        Ok(Window {
            since,
            until,
            zone,
            bounds,
            end_micros,
        })
    }

    /// `--days N`: today and the N days before it (N+1 dates, as the Python tool does).
    pub fn last_days(days: u32, zone: Zone, now: DateTime<Utc>) -> Result<Window, AnalyzeError> {
        let today = zone.date_of(now);
        let since = today
            .checked_sub_days(Days::new(days.into()))
            .unwrap_or(NaiveDate::MIN);
        Window::new(since, today, zone, now)
    }

    /// Dates in the window.
    pub fn days(&self) -> usize {
        self.bounds.len() - 1
    }

    /// The date of day index `i`.
    pub fn date(&self, i: usize) -> NaiveDate {
        self.since
            .checked_add_days(Days::new(i as u64))
            .unwrap_or(self.until)
    }

    /// Hours from the window's start to [`Window::end_micros`]: the time a node was there to
    /// be used (0 for a window entirely in the future).
    pub fn hours(&self) -> f64 {
        ((self.end_micros - self.bounds[0]).max(0)) as f64 / 3.6e9
    }
}

/// Which jobs count. Empty fields match everything.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub user: Option<String>,
    pub group: Option<String>,
    pub partition: Option<String>,
}

/// User -> research group, from the config's `[groups]`.
#[derive(Debug, Clone, Default)]
pub struct Groups {
    map: HashMap<String, String>,
}

/// The group of users that are in none.
pub const UNGROUPED: &str = "ungrouped";

impl Groups {
    /// From the config (validated: a user is in at most one group).
    pub fn from_config(config: &Config) -> Groups {
        let mut map = HashMap::new();
        for (g, users) in &config.groups {
            for u in users {
                map.insert(u.clone(), g.clone());
            }
        }
        Groups { map }
    }

    /// The group of `user`, or [`UNGROUPED`].
    pub fn of<'a>(&'a self, user: &str) -> &'a str {
        self.map.get(user).map_or(UNGROUPED, String::as_str)
    }
}

/// CPU and GPU counts per node, as `sinfo` reports them.
#[derive(Debug, Clone, Default)]
pub struct NodeInventory {
    /// node -> (CPUs, GPUs).
    pub nodes: BTreeMap<String, (u64, u64)>,
    /// Why the counts are missing (sinfo not installed, failed, ...); `None` when they came
    /// from sinfo.
    pub unavailable: Option<String>,
}

impl NodeInventory {
    /// No inventory, and why.
    pub fn unavailable(why: impl Into<String>) -> Self {
        NodeInventory {
            nodes: BTreeMap::new(),
            unavailable: Some(why.into()),
        }
    }
}

/// Everything an analysis needs besides the rows.
#[derive(Debug, Clone)]
pub struct Context {
    pub window: Window,
    pub filter: Filter,
    pub groups: Groups,
    pub inventory: NodeInventory,
    /// Reader threads (at least 1).
    pub threads: usize,
}

// ---------------------------------------------------------------------------------------
// Accumulators.

/// Sums for one user, group or partition.
#[derive(Debug, Clone, Default, PartialEq)]
struct Acc {
    jobs: u64,
    completed: u64,
    cpu_hours: f64,
    gpu_hours: f64,
    mem_gb_hours: f64,
    ram_mb: f64,
    wait_seconds: f64,
    waited: u64,
    cpu_eff: f64,
    mem_eff: f64,
    cpu_wasted: f64,
    mem_wasted: f64,
}

impl Acc {
    #[inline]
    fn add(&mut self, m: &JobMetrics, completed: bool) {
        self.jobs += 1;
        self.cpu_hours += m.cpu_hours;
        self.gpu_hours += m.gpu_hours;
        self.mem_gb_hours += m.memory_gb_hours;
        self.ram_mb += m.alloc_mem_mb;
        if let Some(w) = m.wait_seconds {
            self.wait_seconds += w as f64;
            self.waited += 1;
        }
        if completed {
            self.completed += 1;
            self.cpu_eff += m.cpu_efficiency;
            self.mem_eff += m.memory_efficiency;
            self.cpu_wasted += m.cpu_hours_wasted;
            self.mem_wasted += m.memory_gb_hours_wasted;
        }
    }

    fn merge(&mut self, o: &Acc) {
        self.jobs += o.jobs;
        self.completed += o.completed;
        self.cpu_hours += o.cpu_hours;
        self.gpu_hours += o.gpu_hours;
        self.mem_gb_hours += o.mem_gb_hours;
        self.ram_mb += o.ram_mb;
        self.wait_seconds += o.wait_seconds;
        self.waited += o.waited;
        self.cpu_eff += o.cpu_eff;
        self.mem_eff += o.mem_eff;
        self.cpu_wasted += o.cpu_wasted;
        self.mem_wasted += o.mem_wasted;
    }
}

#[derive(Debug, Clone, Default)]
struct UserAcc {
    acc: Acc,
    /// Bit d: the user had a job running on day d of the window.
    days: Vec<u64>,
}

#[derive(Debug, Clone, Copy, Default)]
struct NodeAcc {
    jobs: u64,
    cpu_hours: f64,
    gpu_hours: f64,
}

#[derive(Debug, Clone, Copy, Default)]
struct StateAcc {
    jobs: u64,
    cpu_hours: f64,
}

#[derive(Debug, Clone, Copy, Default)]
struct DayAcc {
    jobs: u64,
    cpu_hours: f64,
    gpu_hours: f64,
    mem_gb_hours: f64,
}

/// Names -> small ids, one table per text column, kept by one reader thread across its
/// files. With dictionary-encoded columns a batch asks once per distinct value, so the
/// per-row work is indexing, not hashing strings. Per-id answers that depend only on the
/// name (does the filter keep this user? is this state COMPLETED? which nodes are in this
/// node list?) are computed once, here.
#[derive(Default)]
struct Interner {
    users: FxMap<String, u32>,
    user_names: Vec<String>,
    user_ok: Vec<bool>,
    partitions: FxMap<String, u32>,
    partition_names: Vec<String>,
    partition_ok: Vec<bool>,
    states: FxMap<String, u32>,
    state_names: Vec<String>,
    state_completed: Vec<bool>,
    node_lists: FxMap<String, u32>,
    /// Node ids of each node list.
    lists: Vec<Box<[u32]>>,
    nodes: FxMap<String, u32>,
    node_names: Vec<String>,
}

fn intern(map: &mut FxMap<String, u32>, names: &mut Vec<String>, s: &str) -> (u32, bool) {
    if let Some(&id) = map.get(s) {
        return (id, false);
    }
    let id = names.len() as u32;
    map.insert(s.to_string(), id);
    names.push(s.to_string());
    (id, true)
}

impl Interner {
    fn user(&mut self, s: &str, ctx: &Context) -> u32 {
        let (id, new) = intern(&mut self.users, &mut self.user_names, s);
        if new {
            let f = &ctx.filter;
            let ok = f.user.as_deref().is_none_or(|u| u == s)
                && f.group.as_deref().is_none_or(|g| ctx.groups.of(s) == g);
            self.user_ok.push(ok);
        }
        id
    }

    fn partition(&mut self, s: &str, ctx: &Context) -> u32 {
        let (id, new) = intern(&mut self.partitions, &mut self.partition_names, s);
        if new {
            self.partition_ok
                .push(ctx.filter.partition.as_deref().is_none_or(|p| p == s));
        }
        id
    }

    fn state(&mut self, s: &str) -> u32 {
        let (id, new) = intern(&mut self.states, &mut self.state_names, s);
        if new {
            self.state_completed.push(s == "COMPLETED");
        }
        id
    }

    fn node_list(&mut self, s: &str) -> u32 {
        if let Some(&id) = self.node_lists.get(s) {
            return id;
        }
        let ids: Box<[u32]> = expand_nodelist(s)
            .iter()
            .map(|n| intern(&mut self.nodes, &mut self.node_names, n).0)
            .collect();
        let id = self.lists.len() as u32;
        self.node_lists.insert(s.to_string(), id);
        self.lists.push(ids);
        id
    }

    /// Ids of one row's text (the slow path: duplicates, tests).
    fn slots(&mut self, r: &JobRow<'_>, ctx: &Context) -> Slots {
        Slots {
            user: self.user(r.user, ctx),
            partition: self.partition(r.partition, ctx),
            state: self.state(r.state),
            node_list: self.node_list(r.node_list),
        }
    }
}

/// A row's text as interner ids.
#[derive(Debug, Clone, Copy)]
struct Slots {
    user: u32,
    partition: u32,
    state: u32,
    node_list: u32,
}

/// The aggregate of one file's rows, indexed by the reading thread's interner ids.
#[derive(Default)]
struct Partial {
    users: Vec<UserAcc>,
    partitions: Vec<Acc>,
    states: Vec<StateAcc>,
    nodes: Vec<NodeAcc>,
    daily: Vec<DayAcc>,
    cpu_eff: Vec<f64>,
    mem_eff: Vec<f64>,
}

fn slot<T: Default>(v: &mut Vec<T>, id: u32) -> &mut T {
    let i = id as usize;
    if v.len() <= i {
        v.resize_with(i + 1, T::default);
    }
    &mut v[i]
}

impl Partial {
    fn new(days: usize) -> Self {
        Partial {
            daily: vec![DayAcc::default(); days],
            ..Default::default()
        }
    }

    /// Whether the filter keeps a row.
    #[inline]
    fn keep(s: Slots, it: &Interner) -> bool {
        it.user_ok[s.user as usize] && it.partition_ok[s.partition as usize]
    }

    /// Counts one (deduplicated, kept) row.
    #[inline]
    fn add(&mut self, m: &JobMetrics, s: Slots, it: &Interner, w: &Window) {
        let completed = it.state_completed[s.state as usize];
        let user = slot(&mut self.users, s.user);
        if user.days.is_empty() {
            user.days = vec![0; w.days().div_ceil(64)];
        }
        user.acc.add(m, completed);
        slot(&mut self.partitions, s.partition).add(m, completed);
        let st = slot(&mut self.states, s.state);
        st.jobs += 1;
        st.cpu_hours += m.cpu_hours;
        if completed {
            self.cpu_eff.push(m.cpu_efficiency);
            self.mem_eff.push(m.memory_efficiency);
        }
        let nodes = &it.lists[s.node_list as usize];
        if !nodes.is_empty() {
            let n = nodes.len() as f64;
            for &node in nodes.iter() {
                let acc = slot(&mut self.nodes, node);
                acc.jobs += 1;
                acc.cpu_hours += m.cpu_hours / n;
                acc.gpu_hours += m.gpu_hours / n;
            }
        }
        split_days(m, w, &mut self.daily, &mut user.days);
    }

    /// Re-keys the aggregate by name, keeping only what was touched, so partials from
    /// different threads (different interners) can be merged.
    fn named(self, it: &Interner) -> Named {
        let mut n = Named {
            daily: self.daily,
            cpu_eff: self.cpu_eff,
            mem_eff: self.mem_eff,
            ..Default::default()
        };
        for (i, u) in self.users.into_iter().enumerate() {
            if u.acc.jobs > 0 {
                n.users.insert(it.user_names[i].clone(), u);
            }
        }
        for (i, p) in self.partitions.into_iter().enumerate() {
            if p.jobs > 0 {
                n.partitions.insert(it.partition_names[i].clone(), p);
            }
        }
        for (i, st) in self.states.into_iter().enumerate() {
            if st.jobs > 0 {
                n.states.insert(it.state_names[i].clone(), st);
            }
        }
        for (i, nd) in self.nodes.into_iter().enumerate() {
            if nd.jobs > 0 {
                n.nodes.insert(it.node_names[i].clone(), nd);
            }
        }
        n
    }
}

/// An aggregate keyed by name: what partials become to be merged.
#[derive(Default)]
struct Named {
    users: FxMap<String, UserAcc>,
    partitions: FxMap<String, Acc>,
    states: FxMap<String, StateAcc>,
    nodes: FxMap<String, NodeAcc>,
    daily: Vec<DayAcc>,
    cpu_eff: Vec<f64>,
    mem_eff: Vec<f64>,
}

impl Named {
    fn merge(&mut self, mut o: Named) {
        for (k, v) in o.users.drain() {
            match self.users.get_mut(&k) {
                Some(u) => {
                    u.acc.merge(&v.acc);
                    if u.days.len() < v.days.len() {
                        u.days.resize(v.days.len(), 0);
                    }
                    for (a, b) in u.days.iter_mut().zip(&v.days) {
                        *a |= b;
                    }
                }
                None => {
                    self.users.insert(k, v);
                }
            }
        }
        for (k, v) in o.partitions.drain() {
            self.partitions.entry(k).or_default().merge(&v);
        }
        for (k, v) in o.states.drain() {
            let s = self.states.entry(k).or_default();
            s.jobs += v.jobs;
            s.cpu_hours += v.cpu_hours;
        }
        for (k, v) in o.nodes.drain() {
            let n = self.nodes.entry(k).or_default();
            n.jobs += v.jobs;
            n.cpu_hours += v.cpu_hours;
            n.gpu_hours += v.gpu_hours;
        }
        if self.daily.len() < o.daily.len() {
            self.daily.resize(o.daily.len(), DayAcc::default());
        }
        for (a, b) in self.daily.iter_mut().zip(&o.daily) {
            a.jobs += b.jobs;
            a.cpu_hours += b.cpu_hours;
            a.gpu_hours += b.gpu_hours;
            a.mem_gb_hours += b.mem_gb_hours;
        }
        self.cpu_eff.append(&mut o.cpu_eff);
        self.mem_eff.append(&mut o.mem_eff);
    }
}

/// Adds a job's hours to the window days it ran on, in proportion to the time it ran on
/// each (its run is `[start, start + elapsed]`, so the days add up to its reserved hours
/// when it ran entirely inside the window). A job that never started is on no day.
fn split_days(m: &JobMetrics, w: &Window, daily: &mut [DayAcc], user_days: &mut [u64]) {
    let Some(start) = m.start else { return };
    let b = &w.bounds;
    let days = b.len() - 1;
    if start >= b[days] {
        return;
    }
    let first = b.partition_point(|&x| x <= start).saturating_sub(1);
    let run = m.elapsed_seconds.max(0).saturating_mul(1_000_000);
    let mut mark = |d: usize, frac: f64| {
        let day = &mut daily[d];
        day.jobs += 1;
        day.cpu_hours += m.cpu_hours * frac;
        day.gpu_hours += m.gpu_hours * frac;
        day.mem_gb_hours += m.memory_gb_hours * frac;
        user_days[d / 64] |= 1 << (d % 64);
    };
    if run == 0 {
        if start >= b[0] {
            mark(first, 0.0);
        }
        return;
    }
    let end = start.saturating_add(run);
    for d in first..days {
        if b[d] >= end {
            break;
        }
        let lo = start.max(b[d]);
        let hi = end.min(b[d + 1]);
        if hi > lo {
            mark(d, (hi - lo) as f64 / run as f64);
        }
    }
}

// ---------------------------------------------------------------------------------------
// Output.

/// Usage of one user, group or partition. Averages are `None` when nothing defines them
/// (no completed job, no started job).
#[derive(Debug, Clone, PartialEq)]
pub struct Usage {
    /// The user, group or partition name.
    pub key: String,
    /// Users only: their research group.
    pub group: Option<String>,
    /// Groups only: how many users had jobs.
    pub users: Option<u64>,
    pub jobs: u64,
    pub completed_jobs: u64,
    pub cpu_hours: f64,
    pub gpu_hours: f64,
    pub memory_gb_hours: f64,
    /// Memory the jobs held, summed (GB).
    pub ram_gb: f64,
    pub avg_wait_hours: Option<f64>,
    pub avg_cpu_efficiency: Option<f64>,
    pub avg_memory_efficiency: Option<f64>,
    /// Of COMPLETED jobs.
    pub cpu_hours_wasted: f64,
    /// Of COMPLETED jobs.
    pub memory_gb_hours_wasted: f64,
}

impl Usage {
    fn from_acc(key: String, a: &Acc) -> Usage {
        let avg = |sum: f64, n: u64| (n > 0).then(|| sum / n as f64);
        Usage {
            key,
            group: None,
            users: None,
            jobs: a.jobs,
            completed_jobs: a.completed,
            cpu_hours: a.cpu_hours,
            gpu_hours: a.gpu_hours,
            memory_gb_hours: a.mem_gb_hours,
            ram_gb: a.ram_mb / 1024.0,
            avg_wait_hours: avg(a.wait_seconds / 3600.0, a.waited),
            avg_cpu_efficiency: avg(a.cpu_eff, a.completed),
            avg_memory_efficiency: avg(a.mem_eff, a.completed),
            cpu_hours_wasted: a.cpu_wasted,
            memory_gb_hours_wasted: a.mem_wasted,
        }
    }
}

/// One node: its share of the jobs that ran on it.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeUsage {
    pub node: String,
    pub jobs: u64,
    pub cpu_hours: f64,
    pub gpu_hours: f64,
    /// From sinfo; `None` when unknown.
    pub cpus: Option<u64>,
    pub gpus: Option<u64>,
    /// CPU hours / (CPUs x hours of the window up to now), in percent.
    pub cpu_utilization: Option<f64>,
    /// GPU hours / (GPUs x hours), in percent; `None` for a node without GPUs.
    pub gpu_utilization: Option<f64>,
}

/// One calendar day of the window.
#[derive(Debug, Clone, PartialEq)]
pub struct DayUsage {
    pub date: NaiveDate,
    /// Jobs that ran on this day (a job spanning three days counts on each).
    pub jobs: u64,
    /// Users with a job running on this day.
    pub users: u64,
    pub cpu_hours: f64,
    pub gpu_hours: f64,
    pub memory_gb_hours: f64,
}

/// Jobs in one state.
#[derive(Debug, Clone, PartialEq)]
pub struct StateCount {
    pub state: String,
    pub jobs: u64,
    /// Share of all jobs, percent.
    pub percent: f64,
    pub cpu_hours: f64,
}

/// Distribution of an efficiency over COMPLETED jobs.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Spread {
    pub mean: Option<f64>,
    pub median: Option<f64>,
    pub min: Option<f64>,
    pub max: Option<f64>,
}

impl Spread {
    fn of(mut v: Vec<f64>) -> Spread {
        if v.is_empty() {
            return Spread::default();
        }
        let n = v.len();
        let mean = v.iter().sum::<f64>() / n as f64;
        let min = v.iter().copied().fold(f64::INFINITY, f64::min);
        let max = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        // Selection, not a sort: linear in the number of completed jobs.
        let (_, &mut upper, _) = v.select_nth_unstable_by(n / 2, f64::total_cmp);
        let median = if n % 2 == 1 {
            upper
        } else {
            let lower = v[..n / 2].iter().copied().fold(f64::NEG_INFINITY, f64::max);
            (lower + upper) / 2.0
        };
        Spread {
            mean: Some(mean),
            median: Some(median),
            min: Some(min),
            max: Some(max),
        }
    }
}

/// The efficiency section: COMPLETED jobs only.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Efficiency {
    pub completed_jobs: u64,
    pub cpu: Spread,
    pub memory: Spread,
    pub cpu_hours_wasted: f64,
    pub memory_gb_hours_wasted: f64,
}

/// Cluster-wide totals.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Summary {
    pub jobs: u64,
    pub users: u64,
    pub groups: u64,
    pub partitions: u64,
    pub nodes: u64,
    pub completed_jobs: u64,
    pub running_jobs: u64,
    pub pending_jobs: u64,
    pub cpu_hours: f64,
    pub gpu_hours: f64,
    pub memory_gb_hours: f64,
    pub ram_gb: f64,
    pub avg_wait_hours: Option<f64>,
    pub avg_cpu_efficiency: Option<f64>,
    pub avg_memory_efficiency: Option<f64>,
    pub cpu_hours_wasted: f64,
    pub memory_gb_hours_wasted: f64,
    /// Partitions read.
    pub files: u64,
    /// Records dropped because a newer record of the same job exists.
    pub duplicates_removed: u64,
}

/// The whole report. Lists hold every entry; renderers cut them to `--top`.
#[derive(Debug, Clone)]
pub struct Analysis {
    pub since: NaiveDate,
    pub until: NaiveDate,
    pub zone: String,
    /// Hours of the window up to now (the denominator of utilisation).
    pub hours: f64,
    pub filter: Filter,
    pub summary: Summary,
    /// By CPU hours, descending.
    pub users: Vec<Usage>,
    pub groups: Vec<Usage>,
    pub partitions: Vec<Usage>,
    pub nodes: Vec<NodeUsage>,
    /// Why node CPU/GPU counts are missing, if they are.
    pub node_counts_unavailable: Option<String>,
    /// Every date of the window, in order.
    pub daily: Vec<DayUsage>,
    /// By jobs, descending.
    pub states: Vec<StateCount>,
    pub efficiency: Efficiency,
    /// Users with COMPLETED jobs, by CPU hours wasted, descending.
    pub top_wasters: Vec<Usage>,
    /// Files that could not be read (skipped), with the reason.
    pub unreadable: Vec<String>,
}

impl Analysis {
    /// No job matched.
    pub fn is_empty(&self) -> bool {
        self.summary.jobs == 0
    }
}

fn by_cpu_hours(a: &Usage, b: &Usage) -> std::cmp::Ordering {
    b.cpu_hours
        .total_cmp(&a.cpu_hours)
        .then_with(|| a.key.cmp(&b.key))
}

fn finish(
    p: Named,
    ctx: &Context,
    files: u64,
    duplicates: u64,
    unreadable: Vec<String>,
) -> Analysis {
    let w = &ctx.window;
    // Users, sorted by name first so every later sum runs in one fixed order.
    let mut names: Vec<&String> = p.users.keys().collect();
    names.sort();
    let mut users = Vec::with_capacity(names.len());
    let mut group_accs: BTreeMap<String, (Acc, u64)> = BTreeMap::new();
    let mut total = Acc::default();
    for name in &names {
        let u = &p.users[*name];
        let group = ctx.groups.of(name).to_string();
        let g = group_accs.entry(group.clone()).or_default();
        g.0.merge(&u.acc);
        g.1 += 1;
        total.merge(&u.acc);
        let mut usage = Usage::from_acc((*name).clone(), &u.acc);
        usage.group = Some(group);
        users.push(usage);
    }
    let mut top_wasters: Vec<Usage> = users
        .iter()
        .filter(|u| u.completed_jobs > 0)
        .cloned()
        .collect();
    top_wasters.sort_by(|a, b| {
        b.cpu_hours_wasted
            .total_cmp(&a.cpu_hours_wasted)
            .then_with(|| {
                b.memory_gb_hours_wasted
                    .total_cmp(&a.memory_gb_hours_wasted)
            })
            .then_with(|| a.key.cmp(&b.key))
    });
    users.sort_by(by_cpu_hours);
    let mut groups: Vec<Usage> = group_accs
        .into_iter()
        .map(|(g, (acc, n))| {
            let mut u = Usage::from_acc(g, &acc);
            u.users = Some(n);
            u
        })
        .collect();
    groups.sort_by(by_cpu_hours);
    let mut partitions: Vec<Usage> = p
        .partitions
        .iter()
        .map(|(k, a)| Usage::from_acc(k.clone(), a))
        .collect();
    partitions.sort_by(by_cpu_hours);

    let hours = w.hours();
    let util = |used: f64, count: Option<u64>| match count {
        Some(c) if c > 0 && hours > 0.0 => Some(100.0 * used / (c as f64 * hours)),
        _ => None,
    };
    let mut nodes: Vec<NodeUsage> = p
        .nodes
        .iter()
        .map(|(name, a)| {
            let counts = ctx.inventory.nodes.get(name);
            let cpus = counts.map(|c| c.0);
            let gpus = counts.map(|c| c.1);
            NodeUsage {
                node: name.clone(),
                jobs: a.jobs,
                cpu_hours: a.cpu_hours,
                gpu_hours: a.gpu_hours,
                cpus,
                gpus,
                cpu_utilization: util(a.cpu_hours, cpus),
                gpu_utilization: util(a.gpu_hours, gpus),
            }
        })
        .collect();
    nodes.sort_by(|a, b| {
        b.cpu_hours
            .total_cmp(&a.cpu_hours)
            .then_with(|| a.node.cmp(&b.node))
    });

    let mut day_users = vec![0u64; w.days()];
    for name in &names {
        for (d, n) in day_users.iter_mut().enumerate() {
            if p.users[*name]
                .days
                .get(d / 64)
                .is_some_and(|bits| bits & (1 << (d % 64)) != 0)
            {
                *n += 1;
            }
        }
    }
    let daily = (0..w.days())
        .map(|d| {
            let a = p.daily.get(d).copied().unwrap_or_default();
            DayUsage {
                date: w.date(d),
                jobs: a.jobs,
                users: day_users[d],
                cpu_hours: a.cpu_hours,
                gpu_hours: a.gpu_hours,
                memory_gb_hours: a.mem_gb_hours,
            }
        })
        .collect();

    let mut states: Vec<StateCount> = p
        .states
        .iter()
        .map(|(s, a)| StateCount {
            state: s.clone(),
            jobs: a.jobs,
            percent: if total.jobs > 0 {
                100.0 * a.jobs as f64 / total.jobs as f64
            } else {
                0.0
            },
            cpu_hours: a.cpu_hours,
        })
        .collect();
    states.sort_by(|a, b| b.jobs.cmp(&a.jobs).then_with(|| a.state.cmp(&b.state)));
    let count_state = |s: &str| p.states.get(s).map_or(0, |a| a.jobs);

    let t = Usage::from_acc(String::new(), &total);
    let summary = Summary {
        jobs: total.jobs,
        users: users.len() as u64,
        groups: groups.len() as u64,
        partitions: partitions.len() as u64,
        nodes: nodes.len() as u64,
        completed_jobs: total.completed,
        running_jobs: count_state("RUNNING"),
        pending_jobs: count_state("PENDING"),
        cpu_hours: t.cpu_hours,
        gpu_hours: t.gpu_hours,
        memory_gb_hours: t.memory_gb_hours,
        ram_gb: t.ram_gb,
        avg_wait_hours: t.avg_wait_hours,
        avg_cpu_efficiency: t.avg_cpu_efficiency,
        avg_memory_efficiency: t.avg_memory_efficiency,
        cpu_hours_wasted: t.cpu_hours_wasted,
        memory_gb_hours_wasted: t.memory_gb_hours_wasted,
        files,
        duplicates_removed: duplicates,
    };
    let efficiency = Efficiency {
        completed_jobs: total.completed,
        cpu: Spread::of(p.cpu_eff),
        memory: Spread::of(p.mem_eff),
        cpu_hours_wasted: total.cpu_wasted,
        memory_gb_hours_wasted: total.mem_wasted,
    };
    Analysis {
        since: w.since,
        until: w.until,
        zone: w.zone.name(),
        hours,
        filter: ctx.filter.clone(),
        summary,
        users,
        groups,
        partitions,
        nodes,
        node_counts_unavailable: ctx.inventory.unavailable.clone(),
        daily,
        states,
        efficiency,
        top_wasters,
        unreadable,
    }
}

// ---------------------------------------------------------------------------------------
// Drivers.

/// Keeps one record per job id: the newest `processed_date`, ties to the later position.
/// `rows` are `(position, row)`; returns the winners in position order and how many lost.
fn resolve_duplicates(mut rows: Vec<((usize, usize), OwnedRow)>) -> (Vec<OwnedRow>, u64) {
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

/// Aggregates owned rows one by one (the slow path: resolved duplicates, tests).
fn aggregate_owned(rows: &[OwnedRow], ctx: &Context) -> Named {
    let mut it = Interner::default();
    let mut p = Partial::new(ctx.window.days());
    for r in rows {
        let r = r.as_row();
        let s = it.slots(&r, ctx);
        if Partial::keep(s, &it) {
            p.add(&r.m, s, &it, &ctx.window);
        }
    }
    p.named(&it)
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

/// The processed partitions of the window that exist, in date order.
pub fn window_files(archive: &Archive, w: &Window) -> Result<Vec<NaiveDate>, AnalyzeError> {
    let dates = archive
        .dates(Kind::Processed)
        .map_err(|source| AnalyzeError::List {
            path: archive.prefix(Kind::Processed),
            source,
        })?;
    Ok(dates
        .into_iter()
        .filter(|d| (w.since..=w.until).contains(d))
        .collect())
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
    users: Vec<u32>,
    partitions: Vec<u32>,
    states: Vec<u32>,
    node_lists: Vec<u32>,
}

/// Analyzes the window's partitions in `data`. Files that cannot be read are skipped and
/// listed in the result; a missing `processed/` dir is an empty archive.
pub fn analyze_dir(archive: &Archive, ctx: &Context) -> Result<Analysis, AnalyzeError> {
    let files = window_files(archive, &ctx.window)?;
    let zone = &ctx.window.zone;
    let n = files.len();
    let errors: Mutex<BTreeMap<usize, String>> = Mutex::new(BTreeMap::new());
    let fail = |i: usize, e: ScanError| {
        if let Ok(mut m) = errors.lock() {
            m.insert(i, e.to_string());
        }
    };

    // Pass 1: job id hashes only (8 bytes a job), to find ids that occur more than once.
    let per_thread = parallel::<Vec<(usize, Vec<u64>)>>(n, ctx.threads, |i, out| {
        let mut v = Vec::new();
        let r = scan::for_each_batch(archive, files[i], zone, &["job_id"], |b| {
            v.extend((0..b.len()).map(|j| id_hash(b.job_id(j))));
        });
        match r {
            Ok(()) => out.push((i, v)),
            Err(e) => fail(i, e),
        }
    })?;
    let mut by_file: Vec<Vec<u64>> = vec![Vec::new(); n];
    for (i, v) in per_thread.into_iter().flatten() {
        by_file[i] = v;
    }
    let mut all: Vec<u64> = Vec::with_capacity(by_file.iter().map(Vec::len).sum());
    for v in &by_file {
        all.extend_from_slice(v);
    }
    let repeated = repeated_hashes(all, ctx.threads);
    // The rows to hold back, per file (usually none), in row order.
    let held_rows: Vec<Vec<usize>> = by_file
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
        .collect();
    drop(repeated);
    let bad: FxSet<usize> = errors
        .lock()
        .map(|m| m.keys().copied().collect())
        .unwrap_or_default();
    let without_id: Vec<&str> = REPORT_COLUMNS
        .iter()
        .copied()
        .filter(|c| *c != "job_id")
        .collect();

    // Pass 2: aggregate, one partial per file, merged in file order. Rows whose id hash was
    // seen twice are held back whole and resolved exactly at the end; only their files need
    // the job_id column again.
    let merger = Mutex::new(Merger {
        next: 0,
        waiting: BTreeMap::new(),
        total: Named {
            daily: vec![DayAcc::default(); ctx.window.days()],
            ..Default::default()
        },
    });
    let held: Mutex<Vec<((usize, usize), OwnedRow)>> = Mutex::new(Vec::new());
    let w = &ctx.window;
    parallel::<Worker>(n, ctx.threads, |i, wk| {
        let mut p = Partial::new(w.days());
        let mut kept = Vec::new();
        if !bad.contains(&i) {
            let hold = &held_rows[i];
            let mut next_hold = hold.iter().copied().peekable();
            let columns: &[&str] = if hold.is_empty() {
                &without_id
            } else {
                REPORT_COLUMNS
            };
            let mut row_no = 0usize;
            let r = scan::for_each_batch(archive, files[i], zone, columns, |b| {
                let it = &mut wk.it;
                // Node-list ids live only within a batch (partials keep node ids), so the
                // cache of expansions can be dropped between batches to bound it.
                if it.lists.len() > 200_000 {
                    it.node_lists.clear();
                    it.lists.clear();
                }
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
            });
            if let Err(e) = r {
                // Changed or broke between the passes: count none of it.
                fail(i, e);
                p = Partial::new(w.days());
                kept.clear();
            }
        }
        let named = p.named(&wk.it);
        if let Ok(mut h) = held.lock() {
            h.append(&mut kept);
        }
        if let Ok(mut m) = merger.lock() {
            m.offer(i, named);
        }
    })?;
    let mut total = merger.into_inner().map_err(|_| AnalyzeError::Worker)?.total;
    let (winners, lost) = resolve_duplicates(held.into_inner().map_err(|_| AnalyzeError::Worker)?);
    total.merge(aggregate_owned(&winners, ctx));
    let errors = errors.into_inner().unwrap_or_default();
    let read = (n - errors.len()) as u64;
    Ok(finish(
        total,
        ctx,
        read,
        lost,
        errors.into_values().collect(),
    ))
}

/// Hashes that occur more than once in `all`: sorted in `threads` chunks at once, then the
/// sorted chunks are walked together (k is small, so picking the smallest head is a scan).
fn repeated_hashes(mut all: Vec<u64>, threads: usize) -> FxSet<u64> {
    let mut out = FxSet::default();
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
    use chrono::TimeZone;

    fn utc() -> Zone {
        "UTC".parse().unwrap()
    }

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn ctx(since: &str, until: &str) -> Context {
        let now = Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0).unwrap();
        Context {
            window: Window::new(d(since), d(until), utc(), now).unwrap(),
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
        c.groups.map.insert("alice".into(), "physics".into());
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
    fn window_days_follow_the_zone() {
        let z: Zone = "Europe/Amsterdam".parse().unwrap();
        let now = Utc.with_ymd_and_hms(2026, 3, 30, 12, 0, 0).unwrap();
        let w = Window::last_days(1, z, now).unwrap();
        assert_eq!((w.since, w.until), (d("2026-03-29"), d("2026-03-30")));
        // 23 h on the DST day, then 14 h up to now (12:00 UTC is 14:00 CEST).
        assert_eq!(w.hours(), 23.0 + 14.0);
    }
}
