//! sacct rows -> [`ProcessedJob`]s with seff-compatible efficiency metrics.
//!
//! A job is its allocation line (JobIDRaw without a `.`) plus every step (`.batch`,
//! `.extern`, `.interactive`, `.N`). All steps count, not just `.batch`: an `srun` step's CPU
//! and memory are real use. The rules (`docs/metrics.md` has every formula):
//! - CPU used: the allocation line's TotalCPU (sacct sums finished steps there); when that is
//!   zero or empty, the sum of the steps' TotalCPU; when UserCPU and SystemCPU are missing
//!   (Slurm 25.05.0-25.05.6 prints them empty and TotalCPU wrong), TRESUsageInTot `cpu`.
//! - Peak memory: the max over steps of the step's TRESUsageInTot `mem` (sum of its tasks'
//!   peaks), or MaxRSS x NTasks for a step without TRESUsageInTot.
//! - Memory held: AllocTRES `mem=`, else ReqMem (per CPU / per node forms multiplied out).
//! - GPU use (Slurm 23.02 and later, where GPUs are accounted): the busiest step's
//!   TRESUsageInTot `gres/gpuutil` over the allocated GPUs, and its `gres/gpumem`; energy:
//!   the allocation line's ConsumedEnergyRaw. All null when sacct has no such data.
//!
//! Pure: no I/O. Tested with the real captured sacct output of Slurm 22.05.

use crate::fxhash::FxHashMap;

use crate::model::{ProcessedJob, Text};
use crate::sacct::fields::FieldLayout;
use crate::sacct::parser::{
    parse_req_mem, parse_time_utc, parse_timelimit_seconds, recycle, split_fields, split_prefix,
    MemPer, SacctOutput,
};
use crate::slurm::job::{array_parts, is_final_state, job_of_step, normalize_state};
use crate::slurm::tres::{tres_cpu_seconds, tres_gpus, tres_mem_mb, TresUsage};
use crate::slurm::units::{parse_duration, parse_int, parse_memory_mb, trim};

/// What every job of one sacct run shares.
#[derive(Debug, Clone)]
pub struct Context {
    /// `slurm-wlm 22.05.8` as `sacct --version` printed it.
    pub sacct_version: Text,
    /// When the records were computed (UTC microseconds).
    pub processed_date: i64,
}

/// Jobs built from one sacct output, each with the indices of its records (allocation line
/// first), so the raw archive can follow the job to its date.
#[derive(Debug, Default)]
pub struct BuiltJobs {
    pub jobs: Vec<ProcessedJob>,
    /// For each job, its records' indices in `SacctOutput::records`.
    pub records: Vec<Vec<u32>>,
    /// Step records whose allocation line was not in the output (kept in the raw archive).
    pub orphan_records: Vec<u32>,
}

/// Per-job sums over steps, filled while records stream past.
#[derive(Default)]
struct Acc {
    /// The job built from the allocation line, once it was seen.
    job: Option<usize>,
    alloc: AllocUsage,
    step_cpu: f64,
    step_tres_cpu: Option<f64>,
    peak_mem_mb: Option<f64>,
    /// The largest step TRESUsageInTot `gres/gpuutil` (percent, summed over the step's tasks).
    step_gpu_util: Option<f64>,
    /// The largest step TRESUsageInTot `gres/gpumem` (MiB).
    step_gpu_mem_mb: Option<f64>,
}

/// The larger of a running maximum and a new value, either of which may be absent.
fn max_of(acc: Option<f64>, v: Option<f64>) -> Option<f64> {
    match (acc, v) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

/// ConsumedEnergyRaw in joules. Without an energy plugin sacct prints 0 on every line (the
/// real Slurm 22.05 captures), and a job that ran cannot have used no energy, so 0 is "no
/// data"; NO_VAL64 does not fit an `i64` and is no data too.
fn energy_joules(s: &str) -> Option<f64> {
    parse_int(s).filter(|&j| j > 0).map(|j| j as f64)
}

/// The CPU facts of the allocation line that the steps' sums are weighed against.
#[derive(Default, Clone, Copy)]
struct AllocUsage {
    /// TotalCPU of the allocation line (sacct's sum over finished steps).
    total_cpu: f64,
    /// TRESUsageInTot `cpu` of the allocation line.
    tres_cpu: Option<f64>,
    /// UserCPU and SystemCPU printed empty (Slurm 25.05.0-25.05.6).
    user_sys_missing: bool,
}

/// Where [`JobBuilder::push`] put a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    /// A line of job `n` (an index into the jobs [`JobBuilder::finish`] returns).
    Job(usize),
    /// A step whose allocation line has not been seen (yet): group `n`, resolved by
    /// [`Built::job_of_group`] once the output is over.
    Pending(usize),
}

/// Jobs built from one output, and which job each pending group turned out to belong to.
#[derive(Debug, Default)]
pub struct Built {
    pub jobs: Vec<ProcessedJob>,
    /// For each group of [`Slot::Pending`], its job, or `None` (steps without their job).
    pub group_jobs: Vec<Option<usize>>,
}

impl Built {
    /// The job of a pending group; `None` for steps whose job never appeared.
    pub fn job_of_group(&self, group: usize) -> Option<usize> {
        self.group_jobs.get(group).copied().flatten()
    }
}

/// Builds jobs from records fed one at a time, in output order, so a day never has to be
/// held as a whole: the allocation line makes the job (its times, so its date, are known
/// at once), steps add their usage, and [`JobBuilder::finish`] computes the efficiencies.
pub struct JobBuilder<'l> {
    layout: &'l FieldLayout,
    ctx: Context,
    /// Base job id (inline, no allocation per job) -> its accumulator.
    index: FxHashMap<Text, usize>,
    accs: Vec<Acc>,
    jobs: Vec<ProcessedJob>,
    /// The accumulator of the last record: sacct prints a job's lines together.
    last: Option<usize>,
    last_base: String,
    /// Reused by [`JobBuilder::push`] for the fields of one record.
    scratch: Vec<&'static str>,
}

impl<'l> JobBuilder<'l> {
    pub fn new(layout: &'l FieldLayout, ctx: &Context) -> Self {
        JobBuilder {
            layout,
            ctx: ctx.clone(),
            index: FxHashMap::default(),
            accs: Vec::new(),
            jobs: Vec::new(),
            last: None,
            last_base: String::new(),
            scratch: Vec::new(),
        }
    }

    pub fn layout(&self) -> &'l FieldLayout {
        self.layout
    }

    /// The jobs built so far (usage not final until [`JobBuilder::finish`]).
    pub fn job(&self, n: usize) -> &ProcessedJob {
        &self.jobs[n]
    }

    /// Feeds one record's text.
    pub fn push(&mut self, text: &str) -> Slot {
        let layout = self.layout;
        let mut f = recycle(std::mem::take(&mut self.scratch));
        // A step line is read only up to the last field the metrics use there; only an
        // allocation line is split in full.
        split_prefix(text, layout, layout.step_prefix, &mut f);
        let id = match trim(f[layout.job_id_raw]) {
            "" => trim(f[layout.job_id]),
            raw => raw,
        };
        if job_of_step(id).len() == id.len() {
            split_fields(text, layout, &mut f);
        }
        let slot = self.push_fields(&f);
        self.scratch = recycle(f);
        slot
    }

    /// Feeds one record already split into all its fields (see [`split_fields`]).
    pub fn push_fields(&mut self, f: &[&str]) -> Slot {
        let layout = self.layout;
        let raw = trim(f[layout.job_id_raw]);
        let raw = if raw.is_empty() {
            trim(f[layout.job_id])
        } else {
            raw
        };
        let base = job_of_step(raw);
        let slot = match self.last {
            Some(slot) if self.last_base == base => slot,
            _ => {
                let slot = match self.index.get(base) {
                    Some(&slot) => slot,
                    None => {
                        self.accs.push(Acc::default());
                        self.index.insert(Text::from(base), self.accs.len() - 1);
                        self.accs.len() - 1
                    }
                };
                self.last_base.clear();
                self.last_base.push_str(base);
                self.last = Some(slot);
                slot
            }
        };
        let is_step = raw.len() != base.len();
        let acc = &mut self.accs[slot];
        // Memory: TRESUsageInTot mem, else MaxRSS x NTasks. The allocation line normally has
        // neither; when it does, it cannot exceed its steps, so taking the max is safe.
        let get = |i: Option<usize>| i.map_or("", |i| f[i]);
        let tres = TresUsage::parse(get(layout.tres_usage_in_tot));
        let mem = tres.mem_mb().or_else(|| {
            parse_memory_mb(get(layout.max_rss)).map(|rss| {
                let tasks = parse_int(get(layout.ntasks)).unwrap_or(1).max(1);
                rss * tasks as f64
            })
        });
        if let Some(m) = mem {
            acc.peak_mem_mb = Some(acc.peak_mem_mb.map_or(m, |p: f64| p.max(m)));
        }
        if is_step {
            // GPU use from steps only: an allocation line that sacct filled by adding its
            // steps' totals would add sequential steps' peaks.
            acc.step_gpu_util = max_of(acc.step_gpu_util, tres.gpu_util());
            acc.step_gpu_mem_mb = max_of(acc.step_gpu_mem_mb, tres.gpu_mem_mb());
            acc.step_cpu += parse_duration(get(layout.total_cpu)).unwrap_or(0.0);
            if let Some(c) = tres.cpu_seconds() {
                acc.step_tres_cpu = Some(acc.step_tres_cpu.unwrap_or(0.0) + c);
            }
            return match acc.job {
                Some(j) => Slot::Job(j),
                None => Slot::Pending(slot),
            };
        }
        let (job, alloc) = compute_alloc(f, layout, &self.ctx);
        acc.alloc = alloc;
        // A second allocation line for the same job (never seen from sacct) replaces the
        // first, as the later line is the newer state.
        let j = match acc.job {
            Some(j) => {
                self.jobs[j] = job;
                j
            }
            None => {
                self.jobs.push(job);
                self.jobs.len() - 1
            }
        };
        acc.job = Some(j);
        Slot::Job(j)
    }

    /// Ends the output: every job gets its usage and efficiencies.
    pub fn finish(mut self) -> Built {
        for acc in &self.accs {
            if let Some(j) = acc.job {
                finish_usage(&mut self.jobs[j], acc);
            }
        }
        Built {
            jobs: self.jobs,
            group_jobs: self.accs.iter().map(|a| a.job).collect(),
        }
    }
}

/// Groups records into jobs and computes each job's metrics.
pub fn build_jobs(out: &SacctOutput, layout: &FieldLayout, ctx: &Context) -> BuiltJobs {
    let mut builder = JobBuilder::new(layout, ctx);
    let mut records: Vec<Vec<u32>> = Vec::new();
    let mut pending: Vec<Vec<u32>> = Vec::new();
    for (ri, rec) in out.records.iter().enumerate() {
        match builder.push(out.record_text(rec)) {
            Slot::Job(j) => {
                if records.len() <= j {
                    records.resize_with(j + 1, Vec::new);
                }
                records[j].push(ri as u32);
            }
            Slot::Pending(g) => {
                if pending.len() <= g {
                    pending.resize_with(g + 1, Vec::new);
                }
                pending[g].push(ri as u32);
            }
        }
    }
    let built = builder.finish();
    records.resize_with(built.jobs.len(), Vec::new);
    let mut orphan_records = Vec::new();
    for (g, rows) in pending.into_iter().enumerate() {
        match built.job_of_group(g) {
            Some(j) => {
                // Steps printed before their allocation line: allocation line first, then
                // the steps in output order.
                records[j].extend(rows);
                records[j][1..].sort_unstable();
            }
            None => orphan_records.extend(rows),
        }
    }
    orphan_records.sort_unstable();
    BuiltJobs {
        jobs: built.jobs,
        records,
        orphan_records,
    }
}

/// The job as its allocation line describes it; CPU and memory use come from the steps
/// later ([`finish_usage`]).
fn compute_alloc(f: &[&str], l: &FieldLayout, ctx: &Context) -> (ProcessedJob, AllocUsage) {
    let get = |i: Option<usize>| i.map_or("", |i| f[i]);
    let job_id = Text::from(trim(f[l.job_id]));
    let state = Text::from(normalize_state(get(l.state)));
    let submit = parse_time_utc(get(l.submit));
    let start = parse_time_utc(get(l.start));
    let end = parse_time_utc(get(l.end));
    let elapsed = parse_int(get(l.elapsed_raw))
        .or_else(|| parse_duration(get(l.elapsed)).map(|s| s as i64))
        .unwrap_or(0)
        .max(0);
    let alloc_cpus = parse_int(get(l.alloc_cpus)).unwrap_or(0);
    let alloc_nodes = parse_int(get(l.alloc_nodes)).unwrap_or(0);
    let req_cpus = parse_int(get(l.req_cpus)).unwrap_or(0);
    let req_mem_mb = match parse_req_mem(get(l.req_mem)) {
        Some((mb, MemPer::Job)) => mb,
        Some((mb, MemPer::Cpu)) => mb * alloc_cpus.max(req_cpus).max(1) as f64,
        Some((mb, MemPer::Node)) => mb * alloc_nodes.max(1) as f64,
        None => 0.0,
    };
    let alloc_tres = get(l.alloc_tres);
    let alloc_mem_mb = tres_mem_mb(alloc_tres).unwrap_or(req_mem_mb);
    let alloc_gpus = tres_gpus(alloc_tres);
    let usage = AllocUsage {
        user_sys_missing: l.user_cpu.is_some()
            && trim(get(l.user_cpu)).is_empty()
            && trim(get(l.system_cpu)).is_empty(),
        total_cpu: parse_duration(get(l.total_cpu)).unwrap_or(0.0),
        tres_cpu: tres_cpu_seconds(get(l.tres_usage_in_tot)),
    };

    let secs = elapsed as f64;
    let cpu_secs_reserved = secs * alloc_cpus as f64;
    let (array_job_id, array_task_id) = match array_parts(&job_id) {
        Some((base, task)) => (Some(Text::from(base)), task),
        None => (None, None),
    };
    let node_list = trim(get(l.node_list));
    let node_list = if node_list == "None assigned" {
        ""
    } else {
        node_list
    };
    let user = trim(get(l.user));
    let user = if user.is_empty() {
        // sacct prints no name for a UID it cannot resolve; keep the UID, never lose the job.
        compact_str::format_compact!("uid_{}", trim(get(l.uid)))
    } else {
        Text::from(user)
    };
    let job = ProcessedJob {
        is_complete: is_final_state(&state),
        job_id_raw: trim(f[l.job_id_raw]).into(),
        job_id,
        user,
        job_name: get(l.job_name).into(),
        partition: trim(get(l.partition)).into(),
        state,
        submit_time: submit.map(|t| t.timestamp_micros()),
        start_time: start.map(|t| t.timestamp_micros()),
        end_time: end.map(|t| t.timestamp_micros()),
        node_list: node_list.into(),
        elapsed_seconds: elapsed,
        alloc_cpus,
        req_mem_mb,
        max_rss_mb: 0.0,
        total_cpu_seconds: 0.0,
        alloc_gpus,
        cpu_efficiency: 0.0,
        memory_efficiency: 0.0,
        cpu_hours_wasted: 0.0,
        memory_gb_hours_wasted: 0.0,
        cpu_hours_reserved: cpu_secs_reserved / 3600.0,
        memory_gb_hours_reserved: alloc_mem_mb / 1024.0 * secs / 3600.0,
        gpu_hours_reserved: alloc_gpus as f64 * secs / 3600.0,
        processed_date: ctx.processed_date,
        account: trim(get(l.account)).into(),
        qos: trim(get(l.qos)).into(),
        cluster: trim(get(l.cluster)).into(),
        group: trim(get(l.group)).into(),
        exit_code: trim(get(l.exit_code)).into(),
        timelimit_seconds: parse_timelimit_seconds(
            l.timelimit_raw.map(|i| f[i]),
            l.timelimit.map(|i| f[i]),
        ),
        alloc_nodes,
        alloc_mem_mb,
        array_job_id,
        array_task_id,
        wait_seconds: match (submit, start) {
            (Some(s), Some(t)) => Some((t - s).num_seconds().max(0)),
            _ => None,
        },
        sacct_version: ctx.sacct_version.clone(),
        gpu_utilization: None,
        gpu_memory_max_mb: None,
        gpu_hours_wasted: None,
        energy_joules: energy_joules(get(l.consumed_energy_raw)),
    };
    (job, usage)
}

/// CPU and memory use from the steps' sums, and the efficiencies that follow.
fn finish_usage(job: &mut ProcessedJob, acc: &Acc) {
    let a = acc.alloc;
    let tres_cpu = a.tres_cpu.or(acc.step_tres_cpu);
    let total_cpu = match (a.user_sys_missing, tres_cpu) {
        (true, Some(c)) => c,
        _ if a.total_cpu > 0.0 => a.total_cpu,
        _ if acc.step_cpu > 0.0 => acc.step_cpu,
        _ => tres_cpu.unwrap_or(0.0),
    };
    let max_rss_mb = acc.peak_mem_mb.unwrap_or(0.0);
    let secs = job.elapsed_seconds as f64;
    let cpu_secs_reserved = secs * job.alloc_cpus as f64;
    let pct = |num: f64, den: f64| {
        if den > 0.0 && num.is_finite() {
            (100.0 * num / den).clamp(0.0, 100.0)
        } else {
            0.0
        }
    };
    job.total_cpu_seconds = total_cpu;
    job.max_rss_mb = max_rss_mb;
    job.cpu_efficiency = pct(total_cpu, cpu_secs_reserved);
    job.memory_efficiency = pct(max_rss_mb, job.alloc_mem_mb);
    job.cpu_hours_wasted = (cpu_secs_reserved - total_cpu).max(0.0) / 3600.0;
    job.memory_gb_hours_wasted =
        (job.alloc_mem_mb - max_rss_mb).max(0.0) * secs / (1024.0 * 3600.0);
    finish_gpu(job, acc);
}

/// GPU utilisation, memory and waste. A job without GPUs has none (its steps may still
/// print `gres/gpuutil=0` on a site that accounts GPUs: that is not a measurement of a GPU).
fn finish_gpu(job: &mut ProcessedJob, acc: &Acc) {
    if job.alloc_gpus <= 0 {
        return;
    }
    job.gpu_memory_max_mb = acc.step_gpu_mem_mb;
    job.gpu_utilization = acc
        .step_gpu_util
        .map(|u| (u / job.alloc_gpus as f64).clamp(0.0, 100.0));
    job.gpu_hours_wasted = job
        .gpu_utilization
        .map(|u| job.gpu_hours_reserved * (1.0 - u / 100.0));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> Context {
        Context {
            sacct_version: "slurm-wlm 22.05.8".into(),
            processed_date: 0,
        }
    }

    /// Builds jobs from a `|`-separated capture whose first line is the header.
    fn jobs_from(capture: &str) -> Vec<ProcessedJob> {
        let (header, body) = capture.split_once('\n').unwrap();
        let layout = FieldLayout::new(header.split('|'), b'|').unwrap();
        let out = SacctOutput::parse(body.as_bytes().to_vec(), &layout);
        assert!(out.malformed.is_empty());
        let built = build_jobs(&out, &layout, &ctx());
        assert!(built.orphan_records.is_empty());
        built.jobs
    }

    fn find<'a>(jobs: &'a [ProcessedJob], id: &str) -> &'a ProcessedJob {
        jobs.iter()
            .find(|j| j.job_id == id)
            .unwrap_or_else(|| panic!("no job {id}"))
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9 * b.abs().max(1.0)
    }

    const REAL: &str = include_str!("../tests/fixtures/sacct/sacct-parsable-with-header.txt");
    const CGROUP: &str =
        include_str!("../tests/fixtures/sacct/cgroup-sacct-parsable-with-header.txt");

    #[test]
    fn every_job_of_the_real_capture_is_built() {
        let jobs = jobs_from(REAL);
        let ids: Vec<&str> = jobs.iter().map(|j| j.job_id.as_str()).collect();
        assert_eq!(
            ids,
            ["1", "2", "3", "5", "6", "7", "8", "4_1", "4_2", "4_3", "11", "12"]
        );
    }

    /// Job 1: `cpu_burn`, 2 CPUs for 6 s, TotalCPU 00:05.448, peak 6108K in `.batch`.
    #[test]
    fn cpu_burner_matches_sacct() {
        let jobs = jobs_from(REAL);
        let j = find(&jobs, "1");
        assert_eq!(j.elapsed_seconds, 6);
        assert_eq!(j.alloc_cpus, 2);
        assert!(close(j.total_cpu_seconds, 5.448));
        assert!(close(j.cpu_efficiency, 100.0 * 5.448 / 12.0));
        assert!(close(j.max_rss_mb, 6108.0 / 1024.0));
        assert!(close(j.alloc_mem_mb, 100.0));
        assert!(close(
            j.memory_efficiency,
            100.0 * (6108.0 / 1024.0) / 100.0
        ));
        assert!(close(j.cpu_hours_wasted, (12.0 - 5.448) / 3600.0));
        assert!(close(
            j.memory_gb_hours_wasted,
            (100.0 - 6108.0 / 1024.0) * 6.0 / (1024.0 * 3600.0)
        ));
        assert!(close(j.cpu_hours_reserved, 12.0 / 3600.0));
        assert!(close(
            j.memory_gb_hours_reserved,
            100.0 / 1024.0 * 6.0 / 3600.0
        ));
        assert_eq!(j.state, "COMPLETED");
        assert!(j.is_complete);
        assert_eq!(j.user, "alice");
        assert_eq!(j.account, "research");
        assert_eq!(j.node_list, "vm");
        assert_eq!(j.timelimit_seconds, Some(300));
        assert_eq!(j.wait_seconds, Some(2));
        assert_eq!(j.sacct_version, "slurm-wlm 22.05.8");
    }

    /// Job 3: srun steps; the allocation line's TotalCPU (00:01.256) counts them, `.batch`
    /// alone (00:00.038) would not; peak memory is `.batch` 12452K vs 2 x 3136K in `.1`.
    #[test]
    fn multi_step_job_counts_all_steps() {
        let jobs = jobs_from(REAL);
        let j = find(&jobs, "3");
        assert!(close(j.total_cpu_seconds, 1.256));
        assert!(close(j.max_rss_mb, 12452.0 / 1024.0));
        assert!(close(j.alloc_mem_mb, 200.0));
        assert!(close(j.req_mem_mb, 200.0));
        assert_eq!(j.exit_code, "0:0");
    }

    #[test]
    fn states_are_normalized() {
        let jobs = jobs_from(REAL);
        assert_eq!(find(&jobs, "6").state, "CANCELLED");
        assert_eq!(find(&jobs, "7").state, "TIMEOUT");
        assert_eq!(find(&jobs, "8").state, "FAILED");
        assert_eq!(find(&jobs, "8").exit_code, "0:9");
        assert_eq!(find(&jobs, "5").exit_code, "3:0");
        assert!(!find(&jobs, "11").is_complete);
        assert!(!find(&jobs, "12").is_complete);
    }

    #[test]
    fn array_tasks_are_jobs_of_their_own() {
        let jobs = jobs_from(REAL);
        let j = find(&jobs, "4_3");
        assert_eq!(j.job_id_raw, "4");
        assert_eq!(j.array_job_id.as_deref(), Some("4"));
        assert_eq!(j.array_task_id, Some(3));
        assert!(close(j.max_rss_mb, 4696.0 / 1024.0));
        assert_eq!(find(&jobs, "4_1").job_id_raw, "9");
    }

    #[test]
    fn running_and_pending_jobs_have_zero_usage_not_null() {
        let jobs = jobs_from(REAL);
        let r = find(&jobs, "11");
        assert_eq!(r.state, "RUNNING");
        assert_eq!(r.total_cpu_seconds, 0.0);
        assert_eq!(r.max_rss_mb, 0.0);
        assert_eq!(r.end_time, None);
        let p = find(&jobs, "12");
        assert_eq!(p.state, "PENDING");
        assert_eq!(p.start_time, None);
        assert_eq!(p.node_list, "");
        assert_eq!(p.elapsed_seconds, 0);
        assert_eq!(p.wait_seconds, None);
        assert!(close(p.alloc_mem_mb, 50.0), "pending: the request");
    }

    #[test]
    fn out_of_memory_job_in_cgroup_mode() {
        let jobs = jobs_from(CGROUP);
        let j = find(&jobs, "9");
        assert_eq!(j.state, "OUT_OF_MEMORY");
        assert!(j.is_complete);
        assert_eq!(j.exit_code, "0:125");
        assert!(close(j.total_cpu_seconds, 0.070));
    }

    /// Every finished job of both real captures: recompute the metrics from the sacct
    /// fields independently and compare.
    #[test]
    fn every_finished_job_agrees_with_its_sacct_lines() {
        for capture in [REAL, CGROUP] {
            let (header, body) = capture.split_once('\n').unwrap();
            let names: Vec<&str> = header.split('|').collect();
            let col = |line: &str, name: &str| -> String {
                let i = names.iter().position(|n| *n == name).unwrap();
                line.split('|').nth(i).unwrap().to_string()
            };
            let jobs = jobs_from(capture);
            for j in jobs.iter().filter(|j| j.is_complete) {
                let lines: Vec<&str> = body
                    .lines()
                    .filter(|l| {
                        let raw = l.split('|').nth(1).unwrap();
                        raw == j.job_id_raw || raw.starts_with(&format!("{}.", j.job_id_raw))
                    })
                    .collect();
                let alloc = lines[0];
                let elapsed: f64 = col(alloc, "ElapsedRaw").parse().unwrap();
                let cpus: f64 = col(alloc, "AllocCPUS").parse().unwrap();
                let cpu = parse_duration(&col(alloc, "TotalCPU")).unwrap();
                let peak = lines[1..]
                    .iter()
                    .filter_map(|s| {
                        let rss = parse_memory_mb(&col(s, "MaxRSS"))?;
                        Some(rss * col(s, "NTasks").parse::<f64>().unwrap_or(1.0))
                    })
                    .fold(0.0, f64::max);
                let mem = tres_mem_mb(&col(alloc, "AllocTRES")).unwrap();
                assert!(close(j.total_cpu_seconds, cpu), "job {}", j.job_id);
                assert!(close(j.max_rss_mb, peak), "job {}", j.job_id);
                let eff = if elapsed * cpus > 0.0 {
                    (100.0 * cpu / (elapsed * cpus)).min(100.0)
                } else {
                    0.0
                };
                assert!(close(j.cpu_efficiency, eff), "job {}", j.job_id);
                assert!(
                    close(j.memory_efficiency, (100.0 * peak / mem).min(100.0)),
                    "job {}",
                    j.job_id
                );
                assert_eq!(j.elapsed_seconds as f64, elapsed);
            }
        }
    }

    fn one_job(header: &str, lines: &[&str]) -> ProcessedJob {
        let layout = FieldLayout::new(header.split('|'), b'|').unwrap();
        let text = lines.join("\n");
        let out = SacctOutput::parse(text.into_bytes(), &layout);
        let mut built = build_jobs(&out, &layout, &ctx());
        assert_eq!(built.jobs.len(), 1);
        built.jobs.remove(0)
    }

    #[test]
    fn tres_usage_in_tot_wins_over_max_rss() {
        let h = "JobID|JobIDRaw|State|ElapsedRaw|AllocCPUS|TotalCPU|UserCPU|SystemCPU|MaxRSS|NTasks|AllocTRES|TRESUsageInTot";
        let j = one_job(
            h,
            &[
                "3|3|COMPLETED|10|2|00:10.000|00:09.000|00:01.000|||billing=2,cpu=2,mem=1G,node=1|",
                "3.1|3.1|COMPLETED|10|2|00:10.000|00:09.000|00:01.000|3136K|2|cpu=2,mem=1G|cpu=00:00:10,mem=6232K",
            ],
        );
        assert!(close(j.max_rss_mb, 6232.0 / 1024.0));
        assert!(close(j.memory_efficiency, 100.0 * 6232.0 / 1024.0 / 1024.0));
    }

    #[test]
    fn empty_allocation_total_cpu_falls_back_to_steps() {
        let h =
            "JobID|JobIDRaw|State|ElapsedRaw|AllocCPUS|TotalCPU|UserCPU|SystemCPU|AllocTRES|ReqMem";
        let j = one_job(
            h,
            &[
                "5|5|COMPLETED|100|1|00:00:00|00:00:00|00:00:00|cpu=1,mem=4000M|4000M",
                "5.batch|5.batch|COMPLETED|100|1|00:30.000|00:30.000|00:00:00|cpu=1,mem=4000M|",
                "5.0|5.0|COMPLETED|50|1|00:20.000|00:20.000|00:00:00|cpu=1,mem=4000M|",
            ],
        );
        assert!(close(j.total_cpu_seconds, 50.0));
        assert!(close(j.cpu_efficiency, 50.0));
    }

    #[test]
    fn slurm_25_05_missing_user_cpu_uses_tres_usage() {
        let h =
            "JobID|JobIDRaw|State|ElapsedRaw|AllocCPUS|TotalCPU|UserCPU|SystemCPU|TRESUsageInTot";
        let j = one_job(
            h,
            &[
                "8|8|COMPLETED|100|4|00:00:00|||",
                "8.batch|8.batch|COMPLETED|100|4|00:00:00|||cpu=00:03:20,mem=1G",
                "8.0|8.0|COMPLETED|100|4|00:00:00|||cpu=00:01:00,mem=2G",
            ],
        );
        assert!(close(j.total_cpu_seconds, 260.0));
        assert!(close(j.max_rss_mb, 2048.0));
    }

    #[test]
    fn old_per_cpu_and_per_node_req_mem_and_typed_gpus() {
        let h = "JobID|JobIDRaw|State|ElapsedRaw|AllocCPUS|AllocNodes|ReqMem|AllocTRES";
        let j = one_job(
            h,
            &["9|9|COMPLETED|3600|4|1|4000Mc|cpu=4,gres/gpu:a100=2,gres/gpu:v100=1"],
        );
        assert!(close(j.req_mem_mb, 16000.0));
        assert!(close(j.alloc_mem_mb, 16000.0));
        assert_eq!(j.alloc_gpus, 3);
        assert!(close(j.gpu_hours_reserved, 3.0));
        let j = one_job(h, &["10|10|COMPLETED|3600|8|2|2Gn|cpu=8"]);
        assert!(close(j.req_mem_mb, 4096.0));
    }

    /// The header of the GPU and energy shapes below: the fields these metrics read.
    const GPU_HEADER: &str = "JobID|JobIDRaw|State|ElapsedRaw|AllocCPUS|TotalCPU|UserCPU|SystemCPU|NTasks|AllocTRES|TRESUsageInTot|ConsumedEnergyRaw";

    fn close_opt(a: Option<f64>, b: f64) -> bool {
        a.is_some_and(|a| close(a, b))
    }

    /// Slurm 23.02-24.05.0: one task per GPU step, `gres/gpuutil` of the last GPU only, typed
    /// and untyped GPU entries in AllocTRES, TRESUsageInTot sorted by name as sacct prints it
    /// (gres.html), an energy plugin's joules on the allocation line.
    #[test]
    fn gpu_job_in_the_shape_of_23_02() {
        let j = one_job(
            GPU_HEADER,
            &[
                "40|40|COMPLETED|3600|8|02:00:00|01:50:00|00:10:00||billing=8,cpu=8,gres/gpu:a100=1,gres/gpu=1,mem=64G,node=1||1800000",
                "40.batch|40.batch|COMPLETED|3600|8|02:00:00|01:50:00|00:10:00|1|cpu=8,gres/gpu:a100=1,gres/gpu=1,mem=64G,node=1|cpu=02:00:00,energy=0,fs/disk=87613,gres/gpumem=36266M,gres/gpuutil=62,mem=628748K,pages=0,vmem=0|1799000",
                "40.extern|40.extern|COMPLETED|3600|8|00:00:00|00:00:00|00:00:00|1|billing=8,cpu=8,gres/gpu:a100=1,gres/gpu=1,mem=64G,node=1|cpu=00:00:00,energy=0,fs/disk=5273,gres/gpumem=0,gres/gpuutil=0,mem=262144,pages=0,vmem=0|1800000",
            ],
        );
        assert_eq!(j.alloc_gpus, 1);
        assert!(close_opt(j.gpu_utilization, 62.0));
        assert!(close_opt(j.gpu_memory_max_mb, 36266.0));
        assert!(close(j.gpu_hours_reserved, 1.0));
        assert!(close_opt(j.gpu_hours_wasted, 0.38));
        assert!(close_opt(j.energy_joules, 1_800_000.0));
    }

    /// Slurm 24.05.1 and later (24.11 alike): a task's `gres/gpuutil` adds every GPU it
    /// sees, and TRESUsageInTot adds the tasks. Two srun steps, 4 GPUs: the busiest step
    /// counts, over all 4 GPUs.
    #[test]
    fn several_gpus_and_tasks_in_the_shape_of_24_11() {
        let j = one_job(
            GPU_HEADER,
            &[
                "41|41|COMPLETED|7200|16|10:00:00|09:00:00|01:00:00||billing=16,cpu=16,gres/gpu=4,mem=128G,node=1||0",
                "41.batch|41.batch|COMPLETED|7200|16|00:01:00|00:01:00|00:00:00|1|cpu=16,gres/gpu=4,mem=128G,node=1|cpu=00:01:00,energy=0,fs/disk=1000,gres/gpumem=0,gres/gpuutil=0,mem=10M,pages=0,vmem=0|0",
                "41.0|41.0|COMPLETED|3600|16|05:00:00|04:30:00|00:30:00|4|cpu=16,gres/gpu=4,mem=128G,node=1|cpu=05:00:00,energy=0,fs/disk=1000,gres/gpumem=60G,gres/gpuutil=300,mem=8G,pages=0,vmem=0|0",
                "41.1|41.1|COMPLETED|3600|16|04:59:00|04:29:00|00:30:00|4|cpu=16,gres/gpu=4,mem=128G,node=1|cpu=04:59:00,energy=0,fs/disk=1000,gres/gpumem=20G,gres/gpuutil=100,mem=8G,pages=0,vmem=0|0",
            ],
        );
        assert_eq!(j.alloc_gpus, 4);
        assert!(
            close_opt(j.gpu_utilization, 75.0),
            "{:?}",
            j.gpu_utilization
        );
        assert!(close_opt(j.gpu_memory_max_mb, 60.0 * 1024.0));
        assert!(close(j.gpu_hours_reserved, 8.0));
        assert!(close_opt(j.gpu_hours_wasted, 2.0));
        assert_eq!(j.energy_joules, None, "0 joules: no energy plugin");
    }

    /// Peaks summed over tasks can pass 100% of the GPUs (tasks peaking at different
    /// times): clamped, never more than the GPUs could give.
    #[test]
    fn summed_peaks_are_clamped_to_the_allocation() {
        let j = one_job(
            GPU_HEADER,
            &[
                "42|42|COMPLETED|100|2|00:01:00||||cpu=2,gres/gpu=1,mem=1G||",
                "42.0|42.0|COMPLETED|100|2|00:01:00|||2|cpu=2,gres/gpu=1|gres/gpumem=1G,gres/gpuutil=160|",
            ],
        );
        assert!(close_opt(j.gpu_utilization, 100.0));
        assert!(close_opt(j.gpu_hours_wasted, 0.0));
    }

    /// Slurm 25.05: UserCPU and SystemCPU empty (25.05.0-25.05.6), typed-only GPUs, GPU use in
    /// TRESUsageInTot as before.
    #[test]
    fn gpu_job_in_the_shape_of_25_05() {
        let j = one_job(
            GPU_HEADER,
            &[
                "43|43|COMPLETED|1800|4|00:00:00||||billing=4,cpu=4,gres/gpu:h100=2,mem=32G,node=1||900000",
                "43.batch|43.batch|COMPLETED|1800|4|00:00:00|||1|cpu=4,gres/gpu:h100=2,mem=32G,node=1|cpu=00:20:00,energy=0,fs/disk=10,gres/gpumem=10240M,gres/gpuutil=20,mem=2G,pages=0,vmem=0|",
            ],
        );
        assert!(close(j.total_cpu_seconds, 1200.0));
        assert_eq!(j.alloc_gpus, 2);
        assert!(close_opt(j.gpu_utilization, 10.0));
        assert!(close_opt(j.gpu_memory_max_mb, 10240.0));
        assert!(close_opt(j.gpu_hours_wasted, 0.9));
        assert!(close_opt(j.energy_joules, 900_000.0));
    }

    /// No GPU accounting (Slurm 22.05, or a site without `AccountingStorageTRES=gres/gpu`):
    /// a GPU job's figures are null, not 0; a CPU job on a site that does account GPUs prints
    /// `gres/gpuutil=0`, which says nothing about a GPU: null too. A step that was never
    /// sampled (empty TRESUsageInTot) adds nothing.
    #[test]
    fn no_gpu_data_is_null_never_zero() {
        let plugin_absent = one_job(
            GPU_HEADER,
            &[
                "44|44|COMPLETED|3600|8|01:00:00||||cpu=8,gres/gpu=2,mem=8G||0",
                "44.batch|44.batch|COMPLETED|3600|8|01:00:00|||1|cpu=8,gres/gpu=2|cpu=01:00:00,energy=0,fs/disk=8100,mem=6108K,pages=0,vmem=13080K|0",
                "44.extern|44.extern|COMPLETED|3600|8|00:00:00|||1|cpu=8,gres/gpu=2||0",
            ],
        );
        assert!(close(plugin_absent.gpu_hours_reserved, 2.0));
        assert_eq!(plugin_absent.gpu_utilization, None);
        assert_eq!(plugin_absent.gpu_memory_max_mb, None);
        assert_eq!(plugin_absent.gpu_hours_wasted, None);
        assert_eq!(plugin_absent.energy_joules, None);
        let cpu_job = one_job(
            GPU_HEADER,
            &[
                "45|45|COMPLETED|60|1|00:01:00||||cpu=1,mem=1G||",
                "45.batch|45.batch|COMPLETED|60|1|00:01:00|||1|cpu=1,mem=1G|cpu=00:01:00,gres/gpumem=0,gres/gpuutil=0,mem=1M|",
            ],
        );
        assert_eq!(cpu_job.gpu_utilization, None);
        assert_eq!(cpu_job.gpu_memory_max_mb, None);
        // A GPU plugin that could not read the device stores INFINITE64.
        let unreadable = one_job(
            GPU_HEADER,
            &[
                "46|46|COMPLETED|60|1|00:01:00||||cpu=1,gres/gpu=1||18446744073709551614",
                "46.batch|46.batch|COMPLETED|60|1|00:01:00|||1|cpu=1,gres/gpu=1|gres/gpumem=18446744073709551615,gres/gpuutil=18446744073709551615|",
            ],
        );
        assert_eq!(unreadable.gpu_utilization, None);
        assert_eq!(unreadable.gpu_memory_max_mb, None);
        assert_eq!(unreadable.energy_joules, None, "NO_VAL64");
    }

    /// Both real Slurm 22.05 captures have no GPU accounting and no energy plugin
    /// (ConsumedEnergyRaw 0 on every line): every job's GPU and energy figures are null.
    #[test]
    fn real_22_05_captures_have_no_gpu_or_energy_data() {
        for capture in [REAL, CGROUP] {
            for j in jobs_from(capture) {
                assert_eq!(j.gpu_utilization, None, "job {}", j.job_id);
                assert_eq!(j.gpu_memory_max_mb, None, "job {}", j.job_id);
                assert_eq!(j.gpu_hours_wasted, None, "job {}", j.job_id);
                assert_eq!(j.energy_joules, None, "job {}", j.job_id);
            }
        }
    }

    #[test]
    fn steps_without_allocation_are_orphans_not_jobs() {
        let layout = FieldLayout::new(["JobID", "JobIDRaw", "State"], b'|').unwrap();
        let out = SacctOutput::parse(b"7.batch|7.batch|COMPLETED\n".to_vec(), &layout);
        let built = build_jobs(&out, &layout, &ctx());
        assert!(built.jobs.is_empty());
        assert_eq!(built.orphan_records, [0]);
    }

    #[test]
    fn heterogeneous_components_are_separate_jobs() {
        let h = "JobID|JobIDRaw|State|AllocCPUS";
        let layout = FieldLayout::new(h.split('|'), b'|').unwrap();
        let text = "20+0|20|COMPLETED|2\n20+0.batch|20.batch|COMPLETED|2\n20+1|21|COMPLETED|4\n20+1.0|21.0|COMPLETED|4\n";
        let out = SacctOutput::parse(text.as_bytes().to_vec(), &layout);
        let built = build_jobs(&out, &layout, &ctx());
        let ids: Vec<&str> = built.jobs.iter().map(|j| j.job_id.as_str()).collect();
        assert_eq!(ids, ["20+0", "20+1"]);
        assert_eq!(built.records, [vec![0, 1], vec![2, 3]]);
    }
}

/// The capture made with our own kind of call (unit separator, TZ=UTC, TRESUsageInTot) on
/// the real Slurm 22.05 rig: `|` and newlines inside fields, srun steps, arrays.
#[cfg(test)]
mod real_unit_separator_capture {
    use super::*;

    const CAPTURE: &str = include_str!("../tests/fixtures/sacct/real-22.05-unitsep.txt");
    const COMMAND: &str = include_str!("../tests/fixtures/sacct/real-22.05-command.txt");

    fn jobs() -> Vec<ProcessedJob> {
        let format = COMMAND
            .lines()
            .next()
            .unwrap()
            .split("--format=")
            .nth(1)
            .unwrap()
            .trim();
        let layout = FieldLayout::new(format.split(','), 0x1f).unwrap();
        let out = SacctOutput::parse(CAPTURE.as_bytes().to_vec(), &layout);
        assert!(out.malformed.is_empty(), "{:?}", out.malformed);
        let ctx = Context {
            sacct_version: "slurm-wlm 22.05.8".into(),
            processed_date: 0,
        };
        let built = build_jobs(&out, &layout, &ctx);
        assert!(built.orphan_records.is_empty());
        built.jobs
    }

    fn job(jobs: &[ProcessedJob], id: &str) -> ProcessedJob {
        jobs.iter().find(|j| j.job_id == id).cloned().unwrap()
    }

    #[test]
    fn no_job_is_lost_to_pipes_or_newlines() {
        let jobs = jobs();
        let ids: Vec<&str> = jobs.iter().map(|j| j.job_id.as_str()).collect();
        assert_eq!(
            ids,
            ["1", "2", "3", "5", "6", "7", "8", "9", "10", "4_1", "4_2", "4_3"]
        );
        assert_eq!(job(&jobs, "5").job_name, "exit|3");
        assert_eq!(job(&jobs, "5").state, "FAILED");
        assert_eq!(job(&jobs, "7").state, "COMPLETED");
    }

    #[test]
    fn peaks_come_from_tres_usage_in_tot() {
        let jobs = jobs();
        // `.batch` 12216K beats the 2-task srun step's summed 6272K.
        assert!((job(&jobs, "3").max_rss_mb - 12216.0 / 1024.0).abs() < 1e-9);
        assert!((job(&jobs, "3").total_cpu_seconds - 2.287).abs() < 1e-9);
        assert!((job(&jobs, "2").max_rss_mb - 516856.0 / 1024.0).abs() < 1e-9);
        assert!((job(&jobs, "1").total_cpu_seconds - 4.731).abs() < 1e-9);
        assert_eq!(job(&jobs, "8").state, "CANCELLED");
        assert_eq!(job(&jobs, "10").node_list, "");
        assert!(!job(&jobs, "9").is_complete);
    }
}
