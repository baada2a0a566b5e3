//! From sums to the report: turns the merged [`Named`] aggregate into the [`Analysis`]
//! (averages, utilisation, shares, the efficiency spread) and puts every list in its order.
//!
//! Sums run in one fixed order (users by name, groups by name), so the unrounded numbers
//! are the same on every run whatever order the files were read in.

use std::collections::BTreeMap;

use super::aggregate::{Acc, GpuAcc, Named};
use super::{
    Analysis, Context, DayUsage, Efficiency, GpuUse, Groups, NodeUsage, Spread, StateCount,
    Summary, Usage, Window,
};

impl GpuUse {
    fn from_acc(g: &GpuAcc) -> GpuUse {
        let measured = g.measured_jobs > 0;
        GpuUse {
            gpu_efficiency: (measured && g.measured_hours > 0.0)
                .then(|| (100.0 * g.used_hours / g.measured_hours).clamp(0.0, 100.0)),
            gpu_hours_wasted: measured.then_some(g.wasted_hours),
            energy_kwh: (g.energy_jobs > 0).then(|| g.energy_j / 3.6e6),
            gpu_measured_jobs: g.measured_jobs,
            gpu_hours_measured: g.measured_hours,
        }
    }
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
            gpu: GpuUse::from_acc(&a.gpu),
        }
    }
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

fn by_cpu_hours(a: &Usage, b: &Usage) -> std::cmp::Ordering {
    b.cpu_hours
        .total_cmp(&a.cpu_hours)
        .then_with(|| a.key.cmp(&b.key))
}

/// The report of the merged aggregate `p`; `files` read, `duplicates` dropped and the
/// `unreadable` files are the driver's bookkeeping.
pub(super) fn finish(
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
    let (mut users, groups, total) = users_and_groups(&p, &names, &ctx.groups);
    let top_wasters = top_wasters(&users);
    let top_gpu_wasters = top_gpu_wasters(&users);
    users.sort_by(by_cpu_hours);
    let ranked = |m: &crate::fxhash::FxHashMap<String, Acc>| {
        let mut v: Vec<Usage> = m
            .iter()
            .map(|(k, a)| Usage::from_acc(k.clone(), a))
            .collect();
        v.sort_by(by_cpu_hours);
        v
    };
    let clusters = ranked(&p.clusters);
    let partitions = ranked(&p.partitions);
    let nodes = nodes(&p, ctx);
    let daily = daily(&p, &names, w);
    let states = states(&p, total.jobs);
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
        gpu: t.gpu,
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
        hours: w.hours(),
        filter: ctx.filter.clone(),
        summary,
        clusters,
        users,
        groups,
        partitions,
        nodes,
        node_counts_unavailable: ctx.inventory.unavailable.clone(),
        daily,
        states,
        efficiency,
        top_wasters,
        top_gpu_wasters,
        unreadable,
    }
}

/// Users (in `names` order), the groups by CPU hours, and the cluster total: group and total
/// sums run over users in name order.
fn users_and_groups(p: &Named, names: &[&String], of: &Groups) -> (Vec<Usage>, Vec<Usage>, Acc) {
    let mut users = Vec::with_capacity(names.len());
    let mut group_accs: BTreeMap<String, (Acc, u64)> = BTreeMap::new();
    let mut total = Acc::default();
    for name in names {
        let u = &p.users[*name];
        let group = of.of(name).to_string();
        let g = group_accs.entry(group.clone()).or_default();
        g.0.merge(&u.acc);
        g.1 += 1;
        total.merge(&u.acc);
        let mut usage = Usage::from_acc((*name).clone(), &u.acc);
        usage.group = Some(group);
        users.push(usage);
    }
    let mut groups: Vec<Usage> = group_accs
        .into_iter()
        .map(|(g, (acc, n))| {
            let mut u = Usage::from_acc(g, &acc);
            u.users = Some(n);
            u
        })
        .collect();
    groups.sort_by(by_cpu_hours);
    (users, groups, total)
}

/// Users with COMPLETED jobs, by CPU hours wasted, then memory wasted, then name.
fn top_wasters(users: &[Usage]) -> Vec<Usage> {
    let mut v: Vec<Usage> = users
        .iter()
        .filter(|u| u.completed_jobs > 0)
        .cloned()
        .collect();
    v.sort_by(|a, b| {
        b.cpu_hours_wasted
            .total_cmp(&a.cpu_hours_wasted)
            .then_with(|| {
                b.memory_gb_hours_wasted
                    .total_cmp(&a.memory_gb_hours_wasted)
            })
            .then_with(|| a.key.cmp(&b.key))
    });
    v
}

/// Users whose COMPLETED jobs carry GPU utilisation data, by GPU hours wasted, then measured
/// GPU hours, then name.
fn top_gpu_wasters(users: &[Usage]) -> Vec<Usage> {
    let mut v: Vec<Usage> = users
        .iter()
        .filter(|u| u.gpu.gpu_measured_jobs > 0)
        .cloned()
        .collect();
    let wasted = |u: &Usage| u.gpu.gpu_hours_wasted.unwrap_or(0.0);
    v.sort_by(|a, b| {
        wasted(b)
            .total_cmp(&wasted(a))
            .then_with(|| {
                b.gpu
                    .gpu_hours_measured
                    .total_cmp(&a.gpu.gpu_hours_measured)
            })
            .then_with(|| a.key.cmp(&b.key))
    });
    v
}

/// Nodes by CPU hours, with utilisation where sinfo gave the node's CPU (GPU) count.
fn nodes(p: &Named, ctx: &Context) -> Vec<NodeUsage> {
    let hours = ctx.window.hours();
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
                gpu: GpuUse::from_acc(&a.gpu),
            }
        })
        .collect();
    nodes.sort_by(|a, b| {
        b.cpu_hours
            .total_cmp(&a.cpu_hours)
            .then_with(|| a.node.cmp(&b.node))
    });
    nodes
}

/// Every date of the window, with the users who had a job running on it.
fn daily(p: &Named, names: &[&String], w: &Window) -> Vec<DayUsage> {
    let mut day_users = vec![0u64; w.days()];
    for name in names {
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
    (0..w.days())
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
        .collect()
}

/// States by jobs, with their share of all `jobs`.
fn states(p: &Named, jobs: u64) -> Vec<StateCount> {
    let mut states: Vec<StateCount> = p
        .states
        .iter()
        .map(|(s, a)| StateCount {
            state: s.clone(),
            jobs: a.jobs,
            percent: if jobs > 0 {
                100.0 * a.jobs as f64 / jobs as f64
            } else {
                0.0
            },
            cpu_hours: a.cpu_hours,
        })
        .collect();
    states.sort_by(|a, b| b.jobs.cmp(&a.jobs).then_with(|| a.state.cmp(&b.state)));
    states
}
