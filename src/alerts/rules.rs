//! The rules: what is worth telling a person about their finished jobs of the window, and
//! the concrete change to make. Pure: jobs and thresholds in, [`Finding`]s out.
//!
//! Each rule judges only the jobs it can judge (CPU and memory: COMPLETED jobs that ran;
//! killed and short jobs: every finished job that ran) and stays silent with fewer than its
//! minimum of them, so one odd job never makes a mail. The thresholds and their defaults
//! are `[alerts.rules]` in the config (`docs/alerts.md`).
//!
//! Idle GPUs are judged only on jobs whose GPU utilisation sacct measured (Slurm 23.02+
//! with GPU accounting); elsewhere that rule has no jobs to judge and stays silent.

use crate::config::AlertRules;
use crate::model::ProcessedJob;

/// What an idle GPU hour weighs against an idle core hour when people are ranked: a GPU
/// node typically holds 4-8 GPUs and 32-128 cores, and its GPUs are most of its price.
pub const GPU_HOUR_IN_CORE_HOURS: f64 = 16.0;

/// How many job ids a finding names (the worst first).
pub const EXAMPLES: usize = 5;

/// Which rule a finding comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Rule {
    LowCpu,
    Memory,
    Timeout,
    OutOfMemory,
    Short,
    IdleGpu,
}

impl Rule {
    /// A short name, for the group summary's table.
    pub fn label(self) -> &'static str {
        match self {
            Rule::LowCpu => "idle CPUs",
            Rule::Memory => "unused memory",
            Rule::Timeout => "timeouts",
            Rule::OutOfMemory => "out of memory",
            Rule::Short => "very short jobs",
            Rule::IdleGpu => "idle GPUs",
        }
    }
}

/// One thing worth telling a person, with the evidence and the change to make.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    pub rule: Rule,
    /// The jobs it is about.
    pub count: usize,
    /// The jobs the rule judged (the count is out of these).
    pub judged: usize,
    /// A few of the jobs it is about, the worst first.
    pub examples: Vec<String>,
    /// CPU hours reserved but not used (idle CPUs), or spent on jobs that were killed.
    pub cpu_hours: f64,
    /// Memory GB-hours held but not used.
    pub memory_gb_hours: f64,
    /// GPU hours reserved but not used (idle GPUs).
    pub gpu_hours: f64,
    /// What happened, in one sentence for the person who ran the jobs.
    pub what: String,
    /// The change to make.
    pub change: String,
}

impl Finding {
    /// What the finding weighs when people are ranked: CPU hours, plus memory GB-hours at
    /// the rate of a typical 4 GB per core, plus GPU hours at [`GPU_HOUR_IN_CORE_HOURS`].
    pub fn weight(&self) -> f64 {
        self.cpu_hours + self.memory_gb_hours / 4.0 + self.gpu_hours * GPU_HOUR_IN_CORE_HOURS
    }
}

/// Judges one person's finished jobs of the window (one record per job, deduplicated).
pub fn judge(jobs: &[ProcessedJob], r: &AlertRules) -> Vec<Finding> {
    let finished: Vec<&ProcessedJob> = jobs
        .iter()
        .filter(|j| j.is_complete && j.elapsed_seconds > 0)
        .collect();
    let completed: Vec<&ProcessedJob> = finished
        .iter()
        .copied()
        .filter(|j| j.state == "COMPLETED")
        .collect();
    let mut out = Vec::new();
    out.extend(low_cpu(&completed, r));
    out.extend(memory(&completed, r));
    out.extend(killed(&finished, r, "TIMEOUT"));
    out.extend(killed(&finished, r, "OUT_OF_MEMORY"));
    out.extend(short(&finished, r));
    out.extend(idle_gpu(&completed, r));
    out
}

/// GPUs allocated but idle: COMPLETED jobs with GPUs whose utilisation sacct measured. The
/// mean is weighted by GPU hours (a long 4-GPU job says more than a short 1-GPU test). A
/// job's utilisation is its busiest step's sampled peak, so the real idle time is, if
/// anything, larger than this finding says.
fn idle_gpu(completed: &[&ProcessedJob], r: &AlertRules) -> Option<Finding> {
    let jobs: Vec<(&ProcessedJob, f64)> = completed
        .iter()
        .filter(|j| j.alloc_gpus > 0 && j.gpu_hours_reserved > 0.0)
        .filter_map(|j| j.gpu_utilization.map(|u| (*j, u)))
        .collect();
    if jobs.len() < r.min_jobs {
        return None;
    }
    let reserved: f64 = jobs.iter().map(|(j, _)| j.gpu_hours_reserved).sum();
    let used: f64 = jobs
        .iter()
        .map(|(j, u)| j.gpu_hours_reserved * u / 100.0)
        .sum();
    let mean = 100.0 * used / reserved;
    let wasted: f64 = jobs
        .iter()
        .map(|(j, _)| j.gpu_hours_wasted.unwrap_or(0.0))
        .sum();
    if mean >= r.gpu_utilization_below || wasted < r.min_gpu_hours_wasted {
        return None;
    }
    let mut low: Vec<(&ProcessedJob, f64)> = jobs
        .iter()
        .copied()
        .filter(|(_, u)| *u < r.gpu_utilization_below)
        .collect();
    low.sort_by(|a, b| {
        let w = |j: &ProcessedJob| j.gpu_hours_wasted.unwrap_or(0.0);
        w(b.0).total_cmp(&w(a.0))
    });
    let low: Vec<&ProcessedJob> = low.into_iter().map(|(j, _)| j).collect();
    let gpus = median(jobs.iter().map(|(j, _)| j.alloc_gpus as f64).collect());
    let busy = (gpus * mean / 100.0).ceil().max(1.0);
    let change = if busy < gpus {
        format!(
            "Ask for fewer GPUs: your jobs kept about {busy:.0} of {gpus:.0} busy, so `--gpus={busy:.0}` would do. If your program should use every GPU, check that it is told to (e.g. a distributed launcher such as `torchrun --nproc_per_node=$SLURM_GPUS_ON_NODE`)."
        )
    } else {
        "Check that the GPU has work: that your program runs on it at all (it sees CUDA, the right module is loaded), that reading data does not keep it waiting (more loader workers, data on local disk), and run CPU-only parts (pre-processing, analysis) as jobs without GPUs.".to_string()
    };
    Some(Finding {
        rule: Rule::IdleGpu,
        count: low.len(),
        judged: jobs.len(),
        examples: ids(&low),
        cpu_hours: 0.0,
        memory_gb_hours: 0.0,
        gpu_hours: wasted,
        what: format!(
            "Your completed GPU jobs kept their GPUs busy {mean:.0}% of the time at most (Slurm samples the busiest moments); at least {wasted:.1} GPU hours stayed idle."
        ),
        change,
    })
}

fn low_cpu(completed: &[&ProcessedJob], r: &AlertRules) -> Option<Finding> {
    let jobs: Vec<&ProcessedJob> = completed
        .iter()
        .copied()
        .filter(|j| j.alloc_cpus > 0)
        .collect();
    if jobs.len() < r.min_jobs {
        return None;
    }
    let mean = jobs.iter().map(|j| j.cpu_efficiency).sum::<f64>() / jobs.len() as f64;
    let wasted: f64 = jobs.iter().map(|j| j.cpu_hours_wasted).sum();
    if mean >= r.cpu_efficiency_below || wasted < r.min_cpu_hours_wasted {
        return None;
    }
    let mut low: Vec<&ProcessedJob> = jobs
        .iter()
        .copied()
        .filter(|j| j.cpu_efficiency < r.cpu_efficiency_below)
        .collect();
    low.sort_by(|a, b| b.cpu_hours_wasted.total_cmp(&a.cpu_hours_wasted));
    let cores = median(jobs.iter().map(|j| j.alloc_cpus as f64).collect());
    let busy = (cores * mean / 100.0).ceil().max(1.0);
    let change = if busy < cores {
        format!(
            "Ask for fewer cores: your jobs kept about {busy:.0} of {cores:.0} busy, so `--cpus-per-task={busy:.0}` (or `--ntasks={busy:.0}`) would do. If your program should use every core, check that it is told how many it has (e.g. `OMP_NUM_THREADS=$SLURM_CPUS_PER_TASK`, or `srun` for MPI)."
        )
    } else {
        "Check why the CPU waits: a job that mostly reads or writes files, or waits for something, keeps its core idle; run such steps with fewer cores, or on a faster file system.".to_string()
    };
    Some(Finding {
        rule: Rule::LowCpu,
        count: low.len(),
        judged: jobs.len(),
        examples: ids(&low),
        cpu_hours: wasted,
        memory_gb_hours: 0.0,
        gpu_hours: 0.0,
        what: format!(
            "Your completed jobs used {mean:.0}% of the CPU time they reserved, on average; {wasted:.1} CPU hours stayed idle."
        ),
        change,
    })
}

fn memory(completed: &[&ProcessedJob], r: &AlertRules) -> Option<Finding> {
    // A peak of 0 means sacct reported no memory use (accounting off for it): not judged.
    let jobs: Vec<&ProcessedJob> = completed
        .iter()
        .copied()
        .filter(|j| j.alloc_mem_mb > 0.0 && j.max_rss_mb > 0.0)
        .collect();
    if jobs.len() < r.min_jobs {
        return None;
    }
    let peak = percentile(jobs.iter().map(|j| j.max_rss_mb).collect(), 95.0);
    let suggest_gb = typed_gb(peak * (1.0 + r.memory_margin) / 1024.0);
    let suggest_mb = suggest_gb * 1024.0;
    let mut over: Vec<&ProcessedJob> = jobs
        .iter()
        .copied()
        .filter(|j| j.alloc_mem_mb >= r.memory_factor * suggest_mb)
        .collect();
    let wasted: f64 = over.iter().map(|j| j.memory_gb_hours_wasted).sum();
    if over.len() < r.min_jobs || wasted < r.min_memory_gb_hours_wasted {
        return None;
    }
    over.sort_by(|a, b| {
        b.memory_gb_hours_wasted
            .total_cmp(&a.memory_gb_hours_wasted)
    });
    let asked = median(over.iter().map(|j| j.alloc_mem_mb).collect()) / 1024.0;
    Some(Finding {
        rule: Rule::Memory,
        count: over.len(),
        judged: jobs.len(),
        examples: ids(&over),
        cpu_hours: 0.0,
        memory_gb_hours: wasted,
        gpu_hours: 0.0,
        what: format!(
            "{} of your {} completed jobs asked for {} of memory (typically) and peaked at {} or less (95% of them); {wasted:.1} GB-hours of memory stayed unused.",
            over.len(),
            jobs.len(),
            gb(asked),
            gb(peak / 1024.0),
        ),
        change: format!(
            "Ask for `--mem={suggest_gb:.0}G`: your 95th percentile peak plus {:.0}% headroom. Memory you reserve but do not use is memory other jobs wait for.",
            r.memory_margin * 100.0
        ),
    })
}

fn killed(finished: &[&ProcessedJob], r: &AlertRules, state: &str) -> Option<Finding> {
    let mut hit: Vec<&ProcessedJob> = finished
        .iter()
        .copied()
        .filter(|j| j.state == state)
        .collect();
    if hit.len() < r.min_jobs || (hit.len() as f64) < r.killed_fraction * finished.len() as f64 {
        return None;
    }
    hit.sort_by(|a, b| b.cpu_hours_reserved.total_cmp(&a.cpu_hours_reserved));
    let spent: f64 = hit.iter().map(|j| j.cpu_hours_reserved).sum();
    let (rule, what, change) = if state == "TIMEOUT" {
        let limit = median(
            hit.iter()
                .filter_map(|j| j.timelimit_seconds)
                .map(|s| s as f64)
                .collect(),
        );
        let change = if limit > 0.0 {
            format!(
                "They hit their time limit (typically {}). Ask for more time (e.g. `--time={}`), or have the job save its progress (checkpoints) so a rerun continues instead of starting over.",
                hours_text(limit),
                slurm_time(limit * 1.5)
            )
        } else {
            "Ask for more time with `--time`, or have the job save its progress (checkpoints) so a rerun continues instead of starting over.".to_string()
        };
        (
            Rule::Timeout,
            format!(
                "{} of your {} finished jobs were stopped at their time limit; their {spent:.1} CPU hours may be lost.",
                hit.len(),
                finished.len()
            ),
            change,
        )
    } else {
        let held = median(hit.iter().map(|j| j.alloc_mem_mb).collect()) / 1024.0;
        let change = if held > 0.0 {
            format!(
                "They ran out of the memory they asked for (typically {}). Ask for more, e.g. `--mem={:.0}G`, or test with a small input first to see what the job needs.",
                gb(held),
                typed_gb(held * 1.5)
            )
        } else {
            "Ask for more memory with `--mem`, or test with a small input first to see what the job needs.".to_string()
        };
        (
            Rule::OutOfMemory,
            format!(
                "{} of your {} finished jobs were killed for running out of memory; their {spent:.1} CPU hours were lost.",
                hit.len(),
                finished.len()
            ),
            change,
        )
    };
    Some(Finding {
        rule,
        count: hit.len(),
        judged: finished.len(),
        examples: ids(&hit),
        cpu_hours: spent,
        memory_gb_hours: 0.0,
        gpu_hours: 0.0,
        what,
        change,
    })
}

fn short(finished: &[&ProcessedJob], r: &AlertRules) -> Option<Finding> {
    let limit = r.short_job.0.as_secs() as i64;
    let mut hit: Vec<&ProcessedJob> = finished
        .iter()
        .copied()
        .filter(|j| j.elapsed_seconds < limit)
        .collect();
    if hit.len() < r.short_min_jobs || (hit.len() as f64) < r.short_fraction * finished.len() as f64
    {
        return None;
    }
    hit.sort_by_key(|j| j.elapsed_seconds);
    Some(Finding {
        rule: Rule::Short,
        count: hit.len(),
        judged: finished.len(),
        examples: ids(&hit),
        cpu_hours: 0.0,
        memory_gb_hours: 0.0,
        gpu_hours: 0.0,
        what: format!(
            "{} of your {} finished jobs ran less than {}. Each job costs the scheduler about as much as an hour-long one, and waits in the queue on its own.",
            hit.len(),
            finished.len(),
            r.short_job
        ),
        change: "Bundle them: run many tasks one after another in one job (a loop in the job script), or use a job array whose tasks each do a batch of the work, so each job runs for at least several minutes.".to_string(),
    })
}

/// The first [`EXAMPLES`] job ids.
fn ids(jobs: &[&ProcessedJob]) -> Vec<String> {
    jobs.iter()
        .take(EXAMPLES)
        .map(|j| j.job_id.to_string())
        .collect()
}

/// The median of `v` (0 when empty).
fn median(v: Vec<f64>) -> f64 {
    percentile(v, 50.0)
}

/// The nearest-rank percentile `p` of `v` (0 when empty).
pub fn percentile(mut v: Vec<f64>, p: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
    v[rank.clamp(1, v.len()) - 1]
}

/// The smallest memory size people type (in GB) that holds `gb`: 1, 2, 3, 4, 6, 8, 12, 16,
/// 24, 32, 48, 64, 96, 128, ... (steps of a half or a third), at least 1.
pub fn typed_gb(gb: f64) -> f64 {
    let mut steps = vec![1.0, 2.0, 3.0];
    let mut base = 4.0;
    while base < 1e7 {
        steps.push(base);
        steps.push(base * 1.5);
        base *= 2.0;
    }
    steps
        .into_iter()
        .find(|s| *s >= gb - 1e-9)
        .unwrap_or(gb.ceil())
}

/// `3.1 GB`, `64 GB`, `512 MB`.
pub fn gb(v: f64) -> String {
    if v < 1.0 {
        format!("{:.0} MB", v * 1024.0)
    } else if v < 10.0 {
        format!("{v:.1} GB")
    } else {
        format!("{v:.0} GB")
    }
}

/// `2 h`, `30 min`, `1.5 h`.
fn hours_text(seconds: f64) -> String {
    if seconds < 3600.0 {
        format!("{:.0} min", seconds / 60.0)
    } else {
        let h = seconds / 3600.0;
        if h.fract() == 0.0 {
            format!("{h:.0} h")
        } else {
            format!("{h:.1} h")
        }
    }
}

/// A `--time` value Slurm takes, rounded up to a whole hour (or 15 minutes below one):
/// `0:45:00`, `3:00:00`, `2-00:00:00`.
fn slurm_time(seconds: f64) -> String {
    if seconds < 3600.0 {
        let m = ((seconds / 60.0 / 15.0).ceil() * 15.0) as u64;
        return if m >= 60 {
            "1:00:00".to_string()
        } else {
            format!("0:{m:02}:00")
        };
    }
    let h = (seconds / 3600.0).ceil() as u64;
    if h >= 24 && h.is_multiple_of(24) {
        format!("{}-00:00:00", h / 24)
    } else if h >= 24 {
        format!("{}-{:02}:00:00", h / 24, h % 24)
    } else {
        format!("{h}:00:00")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A finished job with the metrics the collector would compute.
    fn job(
        id: &str,
        state: &str,
        secs: i64,
        cpus: i64,
        eff: f64,
        mem_gb: f64,
        peak_gb: f64,
    ) -> ProcessedJob {
        let reserved = secs as f64 * cpus as f64 / 3600.0;
        ProcessedJob {
            job_id: id.into(),
            state: state.into(),
            is_complete: true,
            elapsed_seconds: secs,
            alloc_cpus: cpus,
            cpu_efficiency: eff,
            cpu_hours_reserved: reserved,
            cpu_hours_wasted: reserved * (1.0 - eff / 100.0),
            alloc_mem_mb: mem_gb * 1024.0,
            max_rss_mb: peak_gb * 1024.0,
            memory_gb_hours_wasted: (mem_gb - peak_gb).max(0.0) * secs as f64 / 3600.0,
            timelimit_seconds: Some(secs),
            ..Default::default()
        }
    }

    /// A COMPLETED GPU job of `hours` on `gpus` GPUs at `util`% (or unmeasured), CPU and
    /// memory used well so only the GPU rule can speak.
    fn gpu_job(id: &str, gpus: i64, hours: f64, util: Option<f64>) -> ProcessedJob {
        let reserved = gpus as f64 * hours;
        ProcessedJob {
            alloc_gpus: gpus,
            gpu_hours_reserved: reserved,
            gpu_utilization: util,
            gpu_hours_wasted: util.map(|u| reserved * (1.0 - u / 100.0)),
            ..job(id, "COMPLETED", (hours * 3600.0) as i64, 8, 95.0, 8.0, 6.0)
        }
    }

    #[test]
    fn idle_gpus_speak_with_fewer_gpus_to_ask_for() {
        // 6 jobs on 4 GPUs x 2 h at 10%, and one busy job: weighted mean (60 + 90) / 7.
        let mut jobs: Vec<_> = (0..6)
            .map(|i| gpu_job(&format!("g{i}"), 4, 2.0, Some(10.0)))
            .collect();
        jobs.push(gpu_job("busy", 4, 2.0, Some(90.0)));
        let f = judge(&jobs, &AlertRules::default());
        assert_eq!(rules(&f), [Rule::IdleGpu]);
        let g = &f[0];
        assert_eq!((g.count, g.judged), (6, 7));
        assert!(!g.examples.contains(&"busy".to_string()));
        assert!(g.what.contains("21%"), "{}", g.what);
        assert!((g.gpu_hours - (6.0 * 8.0 * 0.9 + 8.0 * 0.1)).abs() < 1e-9);
        // About 1 of 4 GPUs busy (4 x 21% rounded up).
        assert!(g.change.contains("`--gpus=1`"), "{}", g.change);
        assert!(g.weight() > 0.0);
    }

    #[test]
    fn idle_gpu_rule_needs_measured_jobs_and_real_waste() {
        let r = AlertRules::default();
        // No GPU accounting: nothing to judge, however many GPU jobs.
        let unmeasured: Vec<_> = (0..10)
            .map(|i| gpu_job(&i.to_string(), 4, 10.0, None))
            .collect();
        assert!(judge(&unmeasured, &r).is_empty());
        // Busy GPUs.
        let busy: Vec<_> = (0..10)
            .map(|i| gpu_job(&i.to_string(), 1, 3.0, Some(80.0)))
            .collect();
        assert!(judge(&busy, &r).is_empty());
        // Idle, but fewer than min_jobs measured jobs.
        let few: Vec<_> = (0..4)
            .map(|i| gpu_job(&i.to_string(), 4, 10.0, Some(5.0)))
            .collect();
        assert!(judge(&few, &r).is_empty());
        // Idle, but too little waste to be worth a mail: 5 x 0.5 h x 1 GPU at 10%.
        let small: Vec<_> = (0..5)
            .map(|i| gpu_job(&i.to_string(), 1, 0.5, Some(10.0)))
            .collect();
        assert!(judge(&small, &r).is_empty());
        // The threshold is the config's.
        let strict = AlertRules {
            gpu_utilization_below: 90.0,
            ..AlertRules::default()
        };
        let f = judge(&busy, &strict);
        assert_eq!(rules(&f), [Rule::IdleGpu]);
        // One GPU each already: no fewer GPUs to ask for, check the program instead.
        assert!(
            f[0].change.starts_with("Check that the GPU has work"),
            "{}",
            f[0].change
        );
    }

    fn rules(f: &[Finding]) -> Vec<Rule> {
        f.iter().map(|x| x.rule).collect()
    }

    #[test]
    fn an_efficient_user_gets_nothing() {
        let jobs: Vec<_> = (0..20)
            .map(|i| job(&i.to_string(), "COMPLETED", 7200, 8, 95.0, 8.0, 6.0))
            .collect();
        assert!(judge(&jobs, &AlertRules::default()).is_empty());
    }

    #[test]
    fn idle_cores_and_oversized_memory_are_found_with_numbers() {
        let jobs: Vec<_> = (0..10)
            .map(|i| {
                job(
                    &format!("{}", 100 + i),
                    "COMPLETED",
                    7200,
                    8,
                    12.5,
                    64.0,
                    3.1,
                )
            })
            .collect();
        let f = judge(&jobs, &AlertRules::default());
        assert_eq!(rules(&f), [Rule::LowCpu, Rule::Memory]);
        let cpu = &f[0];
        assert_eq!((cpu.count, cpu.judged), (10, 10));
        assert!((cpu.cpu_hours - 140.0).abs() < 1e-9, "{}", cpu.cpu_hours);
        assert_eq!(cpu.examples.len(), EXAMPLES);
        assert!(cpu.change.contains("--cpus-per-task=1"), "{}", cpu.change);
        let mem = &f[1];
        // 3.1 GB x 1.2 = 3.72 GB -> 4G.
        assert!(mem.change.contains("--mem=4G"), "{}", mem.change);
        assert!(
            mem.what.contains("64 GB") && mem.what.contains("3.1 GB"),
            "{}",
            mem.what
        );
        assert!((mem.memory_gb_hours - 10.0 * 60.9 * 2.0).abs() < 1e-6);
    }

    #[test]
    fn too_few_jobs_are_not_judged() {
        let jobs: Vec<_> = (0..4)
            .map(|i| job(&i.to_string(), "COMPLETED", 36_000, 16, 5.0, 256.0, 1.0))
            .collect();
        assert!(judge(&jobs, &AlertRules::default()).is_empty());
    }

    #[test]
    fn killed_and_short_jobs() {
        let mut jobs: Vec<_> = (0..6)
            .map(|i| job(&format!("t{i}"), "TIMEOUT", 7200, 1, 100.0, 1.0, 1.0))
            .collect();
        jobs.extend(
            (0..5).map(|i| job(&format!("o{i}"), "OUT_OF_MEMORY", 600, 1, 100.0, 4.0, 4.0)),
        );
        jobs.extend((0..30).map(|i| job(&format!("s{i}"), "COMPLETED", 10, 1, 100.0, 1.0, 1.0)));
        let f = judge(&jobs, &AlertRules::default());
        assert_eq!(rules(&f), [Rule::Short]);
        // 6 and 5 of 41 are under the 20% default; at 10% both speak.
        let r = AlertRules {
            killed_fraction: 0.1,
            ..Default::default()
        };
        let f = judge(&jobs, &r);
        assert_eq!(rules(&f), [Rule::Timeout, Rule::OutOfMemory, Rule::Short]);
        assert!(f[0].change.contains("--time=3:00:00"), "{}", f[0].change);
        assert!(f[1].change.contains("--mem=6G"), "{}", f[1].change);
        assert_eq!(f[2].count, 30);
    }

    #[test]
    fn memory_sizes_are_what_people_type() {
        for (gb, typed) in [
            (0.2, 1.0),
            (1.0, 1.0),
            (2.5, 3.0),
            (3.72, 4.0),
            (4.1, 6.0),
            (9.0, 12.0),
            (50.0, 64.0),
            (65.0, 96.0),
        ] {
            assert_eq!(typed_gb(gb), typed, "{gb}");
        }
        assert_eq!(percentile(vec![1.0, 2.0, 3.0, 4.0], 95.0), 4.0);
        assert_eq!(percentile(vec![5.0, 1.0, 3.0], 50.0), 3.0);
        assert_eq!(slurm_time(1800.0), "0:30:00");
        assert_eq!(slurm_time(3.0 * 3600.0), "3:00:00");
        assert_eq!(slurm_time(36.0 * 3600.0), "1-12:00:00");
    }
}
