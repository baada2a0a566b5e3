//! Counting rows: the per-cluster, per-user, per-partition, per-state, per-node and per-day sums one
//! reader thread keeps for one file ([`Partial`], indexed by interned ids so the hot loop
//! does not hash strings), re-keyed by name ([`Named`]) so partials from different threads
//! merge. Which numbers are summed, and over which jobs, is the metric definition of
//! `docs/reports.md`; [`super::finish`] turns the sums into the report.

use super::{Context, Window};
use crate::fxhash::FxHashMap;
use crate::report::scan::{JobMetrics, JobRow, OwnedRow};
use crate::slurm::hostlist::expand_nodelist;

/// Sums for one user, group or partition.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct Acc {
    pub(super) jobs: u64,
    pub(super) completed: u64,
    pub(super) cpu_hours: f64,
    pub(super) gpu_hours: f64,
    pub(super) mem_gb_hours: f64,
    pub(super) ram_mb: f64,
    pub(super) wait_seconds: f64,
    pub(super) waited: u64,
    pub(super) cpu_eff: f64,
    pub(super) mem_eff: f64,
    pub(super) cpu_wasted: f64,
    pub(super) mem_wasted: f64,
    pub(super) gpu: GpuAcc,
}

/// Measured GPU use and energy: only jobs that carry the data count, so a site (or a file)
/// without GPU accounting adds nothing here, and a report can tell "no data" from "idle".
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(super) struct GpuAcc {
    /// Reserved GPU hours of COMPLETED jobs with utilisation data.
    pub(super) measured_hours: f64,
    /// Those hours x each job's utilisation.
    pub(super) used_hours: f64,
    /// `gpu_hours_wasted` of the same jobs.
    pub(super) wasted_hours: f64,
    /// COMPLETED jobs with utilisation data.
    pub(super) measured_jobs: u64,
    /// Joules of the jobs with energy data (any state: energy used is used).
    pub(super) energy_j: f64,
    pub(super) energy_jobs: u64,
}

impl GpuAcc {
    /// Adds a job's share (`frac`: 1, or its share of a multi-node job's nodes).
    #[inline]
    pub(super) fn add(&mut self, m: &JobMetrics, completed: bool, frac: f64) {
        if completed {
            if let Some(u) = m.gpu_utilization {
                self.measured_jobs += 1;
                self.measured_hours += m.gpu_hours * frac;
                self.used_hours += m.gpu_hours * frac * u / 100.0;
                self.wasted_hours += m.gpu_hours_wasted.unwrap_or(0.0) * frac;
            }
        }
        if let Some(e) = m.energy_joules {
            self.energy_j += e * frac;
            self.energy_jobs += 1;
        }
    }

    pub(super) fn merge(&mut self, o: &GpuAcc) {
        self.measured_hours += o.measured_hours;
        self.used_hours += o.used_hours;
        self.wasted_hours += o.wasted_hours;
        self.measured_jobs += o.measured_jobs;
        self.energy_j += o.energy_j;
        self.energy_jobs += o.energy_jobs;
    }
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
        self.gpu.add(m, completed, 1.0);
    }

    pub(super) fn merge(&mut self, o: &Acc) {
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
        self.gpu.merge(&o.gpu);
    }
}

#[derive(Debug, Clone, Default)]
pub(super) struct UserAcc {
    pub(super) acc: Acc,
    /// Bit d: the user had a job running on day d of the window.
    pub(super) days: Vec<u64>,
}

#[derive(Debug, Clone, Copy, Default)]
pub(super) struct NodeAcc {
    pub(super) jobs: u64,
    pub(super) cpu_hours: f64,
    pub(super) gpu_hours: f64,
    pub(super) gpu: GpuAcc,
}

#[derive(Debug, Clone, Copy, Default)]
pub(super) struct StateAcc {
    pub(super) jobs: u64,
    pub(super) cpu_hours: f64,
}

#[derive(Debug, Clone, Copy, Default)]
pub(super) struct DayAcc {
    pub(super) jobs: u64,
    pub(super) cpu_hours: f64,
    pub(super) gpu_hours: f64,
    pub(super) mem_gb_hours: f64,
}

/// Names -> small ids, one table per text column, kept by one reader thread across its
/// files. With dictionary-encoded columns a batch asks once per distinct value, so the
/// per-row work is indexing, not hashing strings. Per-id answers that depend only on the
/// name (does the filter keep this user? is this state COMPLETED? which nodes are in this
/// node list?) are computed once, here.
#[derive(Default)]
pub(super) struct Interner {
    clusters: FxHashMap<String, u32>,
    cluster_names: Vec<String>,
    cluster_ok: Vec<bool>,
    users: FxHashMap<String, u32>,
    user_names: Vec<String>,
    user_ok: Vec<bool>,
    partitions: FxHashMap<String, u32>,
    partition_names: Vec<String>,
    partition_ok: Vec<bool>,
    states: FxHashMap<String, u32>,
    state_names: Vec<String>,
    state_completed: Vec<bool>,
    node_lists: FxHashMap<String, u32>,
    /// Node ids of each node list.
    lists: Vec<Box<[u32]>>,
    nodes: FxHashMap<String, u32>,
    node_names: Vec<String>,
}

fn intern(map: &mut FxHashMap<String, u32>, names: &mut Vec<String>, s: &str) -> (u32, bool) {
    if let Some(&id) = map.get(s) {
        return (id, false);
    }
    let id = names.len() as u32;
    map.insert(s.to_string(), id);
    names.push(s.to_string());
    (id, true)
}

impl Interner {
    pub(super) fn cluster(&mut self, s: &str, ctx: &Context) -> u32 {
        let (id, new) = intern(&mut self.clusters, &mut self.cluster_names, s);
        if new {
            self.cluster_ok
                .push(ctx.filter.cluster.as_deref().is_none_or(|c| c == s));
        }
        id
    }

    pub(super) fn user(&mut self, s: &str, ctx: &Context) -> u32 {
        let (id, new) = intern(&mut self.users, &mut self.user_names, s);
        if new {
            let f = &ctx.filter;
            let ok = f.user.as_deref().is_none_or(|u| u == s)
                && f.group.as_deref().is_none_or(|g| ctx.groups.of(s) == g);
            self.user_ok.push(ok);
        }
        id
    }

    pub(super) fn partition(&mut self, s: &str, ctx: &Context) -> u32 {
        let (id, new) = intern(&mut self.partitions, &mut self.partition_names, s);
        if new {
            self.partition_ok
                .push(ctx.filter.partition.as_deref().is_none_or(|p| p == s));
        }
        id
    }

    pub(super) fn state(&mut self, s: &str) -> u32 {
        let (id, new) = intern(&mut self.states, &mut self.state_names, s);
        if new {
            self.state_completed.push(s == "COMPLETED");
        }
        id
    }

    pub(super) fn node_list(&mut self, s: &str) -> u32 {
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

    /// Forgets the node-list expansions once there are many. Node-list ids live only within
    /// a batch (partials keep node ids), so the cache can be dropped between batches to bound it.
    pub(super) fn trim_node_lists(&mut self) {
        if self.lists.len() > 200_000 {
            self.node_lists.clear();
            self.lists.clear();
        }
    }

    /// Ids of one row's text (the slow path: duplicates, tests).
    pub(super) fn slots(&mut self, r: &JobRow<'_>, ctx: &Context) -> Slots {
        Slots {
            cluster: self.cluster(r.cluster, ctx),
            user: self.user(r.user, ctx),
            partition: self.partition(r.partition, ctx),
            state: self.state(r.state),
            node_list: self.node_list(r.node_list),
        }
    }
}

/// A row's text as interner ids.
#[derive(Debug, Clone, Copy)]
pub(super) struct Slots {
    pub(super) cluster: u32,
    pub(super) user: u32,
    pub(super) partition: u32,
    pub(super) state: u32,
    pub(super) node_list: u32,
}

/// The aggregate of one file's rows, indexed by the reading thread's interner ids.
#[derive(Default)]
pub(super) struct Partial {
    clusters: Vec<Acc>,
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
    pub(super) fn new(days: usize) -> Self {
        Partial {
            daily: vec![DayAcc::default(); days],
            ..Default::default()
        }
    }

    /// Whether the filter keeps a row.
    #[inline]
    pub(super) fn keep(s: Slots, it: &Interner) -> bool {
        it.cluster_ok[s.cluster as usize]
            && it.user_ok[s.user as usize]
            && it.partition_ok[s.partition as usize]
    }

    /// Counts one (deduplicated, kept) row.
    #[inline]
    pub(super) fn add(&mut self, m: &JobMetrics, s: Slots, it: &Interner, w: &Window) {
        let completed = it.state_completed[s.state as usize];
        let user = slot(&mut self.users, s.user);
        if user.days.is_empty() {
            user.days = vec![0; w.days().div_ceil(64)];
        }
        user.acc.add(m, completed);
        slot(&mut self.clusters, s.cluster).add(m, completed);
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
                acc.gpu.add(m, completed, 1.0 / n);
            }
        }
        split_days(m, w, &mut self.daily, &mut user.days);
    }

    /// Re-keys the aggregate by name, keeping only what was touched, so partials from
    /// different threads (different interners) can be merged.
    pub(super) fn named(self, it: &Interner) -> Named {
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
        for (i, c) in self.clusters.into_iter().enumerate() {
            if c.jobs > 0 {
                n.clusters.insert(it.cluster_names[i].clone(), c);
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
pub(super) struct Named {
    pub(super) clusters: FxHashMap<String, Acc>,
    pub(super) users: FxHashMap<String, UserAcc>,
    pub(super) partitions: FxHashMap<String, Acc>,
    pub(super) states: FxHashMap<String, StateAcc>,
    pub(super) nodes: FxHashMap<String, NodeAcc>,
    pub(super) daily: Vec<DayAcc>,
    pub(super) cpu_eff: Vec<f64>,
    pub(super) mem_eff: Vec<f64>,
}

impl Named {
    /// Nothing counted yet, over a window of `days` dates.
    pub(super) fn new(days: usize) -> Self {
        Named {
            daily: vec![DayAcc::default(); days],
            ..Default::default()
        }
    }

    pub(super) fn merge(&mut self, mut o: Named) {
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
        for (k, v) in o.clusters.drain() {
            self.clusters.entry(k).or_default().merge(&v);
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
            n.gpu.merge(&v.gpu);
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

/// Aggregates owned rows one by one (the slow path: resolved duplicates, tests).
pub(super) fn aggregate_owned(rows: &[OwnedRow], ctx: &Context) -> Named {
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
