//! What an analysis produces: the [`Analysis`] every writer (terminal, HTML, JSON, CSV)
//! reads, and its row types. Plain data, computed by [`super::finish`]; which of these fields
//! a report table shows, and how, is declared in [`crate::report::tables`].

use chrono::NaiveDate;

use super::Filter;

/// Usage of one cluster, user, group or partition. Averages are `None` when nothing defines them
/// (no completed job, no started job).
#[derive(Debug, Clone, PartialEq)]
pub struct Usage {
    /// The cluster, user, group or partition name.
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
    pub gpu: GpuUse,
}

/// Measured GPU use and energy of a set of jobs: `None` where none of the jobs carries the
/// data (no GPU accounting, no energy plugin, or files older than schema version 2), so a
/// report never shows a 0 that was not measured.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct GpuUse {
    /// GPU hours used / GPU hours reserved, in percent, over the COMPLETED jobs with
    /// utilisation data. Each job's utilisation is a sampled peak, so this is an upper bound
    /// (`docs/metrics.md`).
    pub gpu_efficiency: Option<f64>,
    /// Reserved GPU hours x unused fraction, over the same jobs (a lower bound).
    pub gpu_hours_wasted: Option<f64>,
    /// Energy of the jobs with energy data, kWh.
    pub energy_kwh: Option<f64>,
    /// COMPLETED jobs with GPU utilisation data.
    pub gpu_measured_jobs: u64,
    /// Their reserved GPU hours: what `gpu_efficiency` and `gpu_hours_wasted` are out of.
    pub gpu_hours_measured: f64,
}

/// Which measured data a report holds: the terminal and HTML leave out columns of data no
/// job has, and say so once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Measured {
    pub gpu: bool,
    pub energy: bool,
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
    /// The node's share of measured GPU use and energy (a multi-node job's split evenly).
    pub gpu: GpuUse,
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
    pub gpu: GpuUse,
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
    /// By CPU hours, descending; they add up to the summary.
    pub clusters: Vec<Usage>,
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
    /// Users with measured GPU waste, by GPU hours wasted, descending.
    pub top_gpu_wasters: Vec<Usage>,
    /// Files that could not be read (skipped), with the reason.
    pub unreadable: Vec<String>,
}

impl Analysis {
    /// No job matched.
    pub fn is_empty(&self) -> bool {
        self.summary.jobs == 0
    }

    /// Whether any job of the report carries GPU utilisation or energy data.
    pub fn measured(&self) -> Measured {
        Measured {
            gpu: self.summary.gpu.gpu_measured_jobs > 0,
            energy: self.summary.gpu.energy_kwh.is_some(),
        }
    }
}
