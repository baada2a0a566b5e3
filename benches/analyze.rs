//! `analyze` benchmark (`cargo bench --bench analyze`): a year of a busy cluster, 365 daily
//! processed files of 20,000 jobs (7.3 M jobs), aggregated into the full report.
//!
//! Budget (issue 5): under 5 s on a 2-core machine, peak RSS under 1 GB. The aggregation runs
//! in a fresh child process, so VmHWM (read from /proc/self/status) is the analysis' own peak,
//! not the generator's. Numbers are printed; nothing is asserted (shared machines vary).
//!
//! The files are generated directly as `ProcessedJob` rows and written with the collector's
//! own writer (zstd, 65,536-row groups, sorted by start). 0.2 % of each day's jobs are also
//! left behind in the previous day's file with an older record, as a crash during a move
//! would, so the dedupe path is exercised. Set `SLURM_USAGE_BENCH_DIR` to keep (and reuse)
//! the generated archive; `SLURM_USAGE_BENCH_DAYS` and `SLURM_USAGE_BENCH_JOBS` resize it.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use chrono::{Days, NaiveDate, TimeZone, Utc};
use slurm_usage::model::ProcessedJob;
use slurm_usage::report::analyze::{analyze_dir, Context, Filter, Groups, NodeInventory, Window};
use slurm_usage::store::parquet::Meta;
use slurm_usage::store::{Archive, Kind};
use slurm_usage::zone::Zone;

const CHILD: &str = "SLURM_USAGE_BENCH_CHILD";
const NODES: u64 = 500;

fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

const STATES: &[(&str, u64)] = &[
    ("COMPLETED", 70),
    ("FAILED", 9),
    ("CANCELLED", 8),
    ("TIMEOUT", 5),
    ("OUT_OF_MEMORY", 3),
    ("RUNNING", 4),
    ("PENDING", 1),
];
const PARTITIONS: &[&str] = &["cpu", "gpu", "bigmem", "debug", "long", "short"];

fn job(rng: &mut Rng, id: u64, day_start: i64, processed: i64) -> ProcessedJob {
    let mut pick = rng.below(100);
    let state = STATES
        .iter()
        .find(|(_, w)| {
            if pick < *w {
                true
            } else {
                pick -= w;
                false
            }
        })
        .map_or("COMPLETED", |s| s.0);
    let partition = PARTITIONS[rng.below(PARTITIONS.len() as u64) as usize];
    let user = format!("user{:03}", rng.below(300));
    let submit = day_start + rng.below(86_400) as i64 * 1_000_000;
    let pending = state == "PENDING";
    let wait = rng.below(3600) as i64;
    let start = (!pending).then_some(submit + wait * 1_000_000);
    let long = rng.below(10) == 0;
    let elapsed = if pending {
        0
    } else {
        rng.below(if long { 3 * 86_400 } else { 4 * 3600 }) as i64
    };
    let cpus = 1 << rng.below(6);
    let gpus = if partition == "gpu" {
        1 + rng.below(4) as i64
    } else {
        0
    };
    let nodes = if rng.below(10) == 0 {
        2 + rng.below(6)
    } else {
        1
    };
    let first = rng.below(NODES - nodes);
    let node_list = if pending {
        String::new()
    } else if nodes == 1 {
        format!("node{:04}", first)
    } else {
        format!("node[{:04}-{:04}]", first, first + nodes - 1)
    };
    let mem = 1024.0 * (1 + rng.below(64)) as f64;
    let hours = elapsed as f64 / 3600.0;
    let cpu_eff = if pending {
        0.0
    } else {
        rng.below(10_000) as f64 / 100.0
    };
    let mem_eff = if pending {
        0.0
    } else {
        rng.below(10_000) as f64 / 100.0
    };
    let reserved = cpus as f64 * hours;
    ProcessedJob {
        job_id: id.to_string().into(),
        job_id_raw: id.to_string().into(),
        user: user.clone().into(),
        job_name: format!("run-{}", rng.below(1000)).into(),
        partition: partition.into(),
        state: state.into(),
        submit_time: Some(submit),
        start_time: start,
        end_time: start
            .filter(|_| !matches!(state, "RUNNING"))
            .map(|s| s + elapsed * 1_000_000),
        node_list: node_list.into(),
        elapsed_seconds: elapsed,
        alloc_cpus: cpus,
        req_mem_mb: mem,
        max_rss_mb: mem * mem_eff / 100.0,
        total_cpu_seconds: reserved * 3600.0 * cpu_eff / 100.0,
        alloc_gpus: gpus,
        cpu_efficiency: cpu_eff,
        memory_efficiency: mem_eff,
        cpu_hours_wasted: reserved * (1.0 - cpu_eff / 100.0),
        memory_gb_hours_wasted: mem / 1024.0 * hours * (1.0 - mem_eff / 100.0),
        cpu_hours_reserved: reserved,
        memory_gb_hours_reserved: mem / 1024.0 * hours,
        gpu_hours_reserved: gpus as f64 * hours,
        processed_date: processed,
        is_complete: !matches!(state, "RUNNING" | "PENDING"),
        account: "research".into(),
        qos: "normal".into(),
        cluster: "bench".into(),
        group: user.into(),
        exit_code: "0:0".into(),
        timelimit_seconds: Some(86_400 * 3),
        alloc_nodes: nodes as i64,
        alloc_mem_mb: mem,
        array_job_id: None,
        array_task_id: None,
        wait_seconds: start.map(|_| wait),
        sacct_version: "slurm 22.05.8".into(),
        gpu_utilization: None,
        gpu_memory_max_mb: None,
        gpu_hours_wasted: None,
        energy_joules: None,
    }
}

/// Writes `days` files of `per_day` jobs ending at `last`, on two threads.
fn generate(data: &Archive, last: NaiveDate, days: u64, per_day: u64) {
    data.create().unwrap();
    let zone: Zone = "UTC".parse().unwrap();
    std::thread::scope(|s| {
        for t in 0..2u64 {
            let zone = zone.clone();
            s.spawn(move || {
                for i in (t..days).step_by(2) {
                    let date = last.checked_sub_days(Days::new(days - 1 - i)).unwrap();
                    let day_start = zone.day_start(date).timestamp_micros();
                    let processed = day_start + 2 * 86_400_000_000;
                    let mut rng = Rng(i * 7919 + 1);
                    let first_id = 1_000_000 + i * per_day;
                    let mut jobs: Vec<ProcessedJob> = (0..per_day)
                        .map(|k| job(&mut rng, first_id + k, day_start, processed))
                        .collect();
                    // Leftovers of tomorrow's jobs, as a crash between "write new" and "remove
                    // old" leaves them: an older record of the same job id.
                    if i + 1 < days {
                        let next = first_id + per_day;
                        for k in 0..per_day / 500 {
                            let mut j = job(
                                &mut rng,
                                next + k * 500,
                                day_start,
                                processed - 86_400_000_000,
                            );
                            j.state = "PENDING".into();
                            jobs.push(j);
                        }
                    }
                    let meta = Meta {
                        date,
                        sacct_version: "slurm 22.05.8".into(),
                        timezone: "UTC".into(),
                    };
                    data.write_processed(date, &jobs, &meta).unwrap();
                }
            });
        }
    });
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The measured part, in a fresh process.
fn child(dir: &Path) {
    let data = Archive::local(dir);
    let dates = data.dates(Kind::Processed).unwrap();
    let (since, until) = (dates[0], dates[dates.len() - 1]);
    let zone: Zone = "UTC".parse().unwrap();
    let now = Utc.with_ymd_and_hms(2100, 1, 1, 0, 0, 0).unwrap();
    let inventory = NodeInventory {
        nodes: (0..NODES)
            .map(|n| (format!("node{n:04}"), (64, 4)))
            .collect(),
        unavailable: None,
    };
    let threads = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .min(4);
    let ctx = Context {
        window: Window::new(since, until, zone, now).unwrap(),
        filter: Filter::default(),
        groups: Groups::default(),
        inventory,
        threads,
    };
    let rss_before = peak_rss_mb();
    let t0 = Instant::now();
    let a = analyze_dir(std::slice::from_ref(&data), &ctx).unwrap();
    let secs = t0.elapsed().as_secs_f64();
    println!(
        "analyze: {} files, {} jobs ({} duplicates dropped), {} users, {} nodes, {} days",
        a.summary.files,
        a.summary.jobs,
        a.summary.duplicates_removed,
        a.users.len(),
        a.nodes.len(),
        a.daily.len()
    );
    println!(
        "analyze: {secs:.2} s on {threads} threads ({:.2} M jobs/s), peak RSS {:.0} MB (before: {rss_before:.0} MB)",
        a.summary.jobs as f64 / secs / 1e6,
        peak_rss_mb()
    );
    let t1 = Instant::now();
    let mut sink = Vec::new();
    slurm_usage::report::json::write_json(&a, &mut sink).unwrap();
    println!(
        "json: {} KB in {:.3} s",
        sink.len() / 1024,
        t1.elapsed().as_secs_f64()
    );
}

fn main() {
    if let Ok(dir) = std::env::var(CHILD) {
        child(Path::new(&dir));
        return;
    }
    let days = env_u64("SLURM_USAGE_BENCH_DAYS", 365);
    let per_day = env_u64("SLURM_USAGE_BENCH_JOBS", 20_000);
    let (dir, _tmp) = match std::env::var("SLURM_USAGE_BENCH_DIR") {
        Ok(d) => (PathBuf::from(d), None),
        Err(_) => {
            let t = tempfile::tempdir().unwrap();
            (t.path().to_path_buf(), Some(t))
        }
    };
    let data = Archive::local(&dir);
    let have = data.dates(Kind::Processed).map(|d| d.len()).unwrap_or(0) as u64;
    if have != days {
        let t0 = Instant::now();
        let _ = std::fs::remove_dir_all(data.prefix(Kind::Processed));
        generate(
            &data,
            NaiveDate::from_ymd_opt(2026, 11, 24).unwrap(),
            days,
            per_day,
        );
        println!(
            "generated {days} days x {per_day} jobs in {:.1} s into {}",
            t0.elapsed().as_secs_f64(),
            dir.display()
        );
    } else {
        println!("reusing {days} days in {}", dir.display());
    }
    let bytes: u64 = std::fs::read_dir(data.prefix(Kind::Processed))
        .unwrap()
        .flatten()
        .filter_map(|e| e.metadata().ok())
        .map(|m| m.len())
        .sum();
    println!("archive: {:.0} MB of processed Parquet", bytes as f64 / 1e6);
    // Two runs: the first also pays for reading the files from disk into the page cache.
    for run in ["cold-ish", "warm"] {
        println!("-- run {run}");
        let status = Command::new(std::env::current_exe().unwrap())
            .env(CHILD, &dir)
            .status()
            .unwrap();
        assert!(status.success());
    }
}
