//! Collection benchmark (`cargo bench --bench collect`): per-line cost of parse + metrics,
//! a whole 100,000-job day collected from a file (parse, metrics, raw and processed Parquet
//! written atomically), peak memory, and memory against the number of days collected.
//!
//! Peak RSS is read from /proc/self/status (VmHWM) in a fresh child process per scenario,
//! so the generator's own memory does not count. Numbers are printed; nothing is asserted
//! (budgets are checked by a person reading them, as timings on a shared 2-core machine vary).

use std::io::Write as _;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use chrono::{Days, Utc};
use slurm_usage::collect::{run_cycle, CollectOptions, Collector};
use slurm_usage::config::Config;
use slurm_usage::metrics::{build_jobs, Context};
use slurm_usage::sacct::command::SacctProgram;
use slurm_usage::sacct::fields::FieldLayout;
use slurm_usage::sacct::parser::SacctOutput;
use slurm_usage::synth::Synth;
use slurm_usage::zone::Zone;

fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Writes synthetic sacct output for each of `days` UTC days ending today into `dir`, and a
/// script that prints the file of the date in `--starttime`. `srun_steps`: see [`Synth`].
fn prepare(dir: &Path, jobs_per_day: u32, days: u32, srun_steps: bool) -> (PathBuf, usize, usize) {
    let layout = FieldLayout::ours();
    let zone: Zone = "UTC".parse().unwrap();
    let today = Utc::now().date_naive();
    // Whole past days: every job submitted and most finished.
    let synth = Synth {
        jobs_per_day,
        seed: 42,
        now: Utc::now(),
        srun_steps,
        long_pending: false,
        record_lag: 0,
        only: None,
    };
    let (mut lines, mut bytes) = (0, 0);
    for n in 1..=days {
        let date = today.checked_sub_days(Days::new(n.into())).unwrap();
        let mut text = String::new();
        synth.generate(zone.day_start(date), zone.day_end(date), &layout, &mut text);
        lines += text.lines().count();
        bytes += text.len();
        std::fs::write(dir.join(format!("{date}.txt")), text).unwrap();
    }
    let script = dir.join("sacct");
    let body = format!(
        "#!/bin/sh\nif [ \"$1\" = --version ]; then echo 'slurm 22.05.8 (bench)'; exit 0; fi\n\
         while [ $# -gt 0 ]; do if [ \"$1\" = --starttime ]; then d=\"${{2%%T*}}\"; fi; shift; done\n\
         if [ -f \"{}/$d.txt\" ]; then exec cat \"{}/$d.txt\"; fi\n",
        dir.display(),
        dir.display()
    );
    std::fs::write(&script, body).unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    (script, lines, bytes)
}

/// Child process: one collection cycle of `days` days, then print seconds and peak RSS.
fn child_collect(dir: &Path, days: u32) {
    // BENCH_LOG=slurm_usage=debug shows where a cycle's time goes.
    if let Ok(filter) = std::env::var("BENCH_LOG") {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_writer(std::io::stderr)
            .init();
    }
    let mut config =
        Config::from_toml("timezone = \"UTC\"\n[collect]\nsettle = \"0s\"\nretries = 0\n").unwrap();
    config.data_dir = dir.join("data");
    let collector = Collector::with_sacct(Arc::new(config), SacctProgram::new(dir.join("sacct")));
    // Today (empty output) and the `days` whole days before it.
    let opts = CollectOptions {
        days,
        wait_for_lock: false,
        progress: false,
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let t0 = Instant::now();
    let report = rt
        .block_on(run_cycle(
            &collector,
            &opts,
            &tokio_util::sync::CancellationToken::new(),
        ))
        .unwrap();
    let secs = t0.elapsed().as_secs_f64();
    assert_eq!(report.failed(), 0);
    println!(
        "{secs:.3} {:.1} {} {}",
        peak_rss_mb(),
        report.jobs(),
        report.raw_rows()
    );
}

/// Runs one collection in a fresh process, with glibc's default allocator settings or the
/// ones the binary sets itself (`unit`; `heap::SETTINGS`, given through the environment as
/// the bench child is not the binary's `main`).
fn run_child(dir: &Path, days: u32, unit: bool) -> (f64, f64, usize, usize) {
    let mut cmd = std::process::Command::new(std::env::current_exe().unwrap());
    cmd.env("BENCH_CHILD", format!("{}:{days}", dir.display()));
    for s in slurm_usage::heap::SETTINGS {
        if unit {
            cmd.env(s.variable, s.value.to_string());
        } else {
            cmd.env_remove(s.variable);
        }
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let v: Vec<&str> = text.split_whitespace().collect();
    (
        v[0].parse().unwrap(),
        v[1].parse().unwrap(),
        v[2].parse().unwrap(),
        v[3].parse().unwrap(),
    )
}

fn main() {
    if let Ok(spec) = std::env::var("BENCH_CHILD") {
        let (dir, days) = spec.rsplit_once(':').unwrap();
        child_collect(Path::new(dir), days.parse().unwrap());
        return;
    }
    // BENCH_PREPARE=DIR:DAYS:JOBS writes the inputs of a child run into DIR (for profiling
    // the child under perf, or timing old and new binaries on the same input:
    // BENCH_CHILD=DIR:DAYS); BENCH_BATCH_ONLY=1 for the 3-lines-a-job shape.
    if let Ok(spec) = std::env::var("BENCH_PREPARE") {
        let v: Vec<&str> = spec.rsplitn(3, ':').collect();
        prepare(
            Path::new(v[2]),
            v[0].parse().unwrap(),
            v[1].parse().unwrap(),
            std::env::var_os("BENCH_BATCH_ONLY").is_none(),
        );
        return;
    }
    // `cargo bench` passes `--bench`; a filter argument is ignored.
    let jobs_per_day: u32 = std::env::var("BENCH_JOBS_PER_DAY")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);

    // 1. Parse + metrics, in memory, one thread.
    let layout = FieldLayout::ours();
    let zone: Zone = "UTC".parse().unwrap();
    let day = Utc::now()
        .date_naive()
        .checked_sub_days(Days::new(1))
        .unwrap();
    let mut text = String::new();
    Synth {
        jobs_per_day,
        seed: 42,
        now: Utc::now(),
        srun_steps: true,
        long_pending: false,
        record_lag: 0,
        only: None,
    }
    .generate(zone.day_start(day), zone.day_end(day), &layout, &mut text);
    let bytes = text.into_bytes();
    let lines = bytes.iter().filter(|&&b| b == b'\n').count();
    let ctx = Context {
        sacct_version: "bench".into(),
        processed_date: 0,
    };
    let (mut best, mut best_split, mut best_metrics) = (f64::MAX, f64::MAX, f64::MAX);
    let mut jobs = 0;
    for _ in 0..5 {
        let input = bytes.clone();
        let t0 = Instant::now();
        let out = SacctOutput::parse(input, &layout);
        let t1 = Instant::now();
        let built = build_jobs(&out, &layout, &ctx);
        let t2 = Instant::now();
        best = best.min((t2 - t0).as_secs_f64());
        best_split = best_split.min((t1 - t0).as_secs_f64());
        best_metrics = best_metrics.min((t2 - t1).as_secs_f64());
        jobs = built.jobs.len();
        assert!(out.malformed.is_empty());
    }
    println!(
        "  split into records {:.0} ns/line, metrics {:.0} ns/line",
        best_split * 1e9 / lines as f64,
        best_metrics * 1e9 / lines as f64
    );
    println!(
        "parse + metrics: {lines} sacct lines ({:.0} MB), {jobs} jobs",
        bytes.len() as f64 / 1e6
    );
    println!(
        "  best of 5: {:.3} s = {:.2} M lines/s on one core, {:.0} ns per line",
        best,
        lines as f64 / best / 1e6,
        best * 1e9 / lines as f64
    );
    drop(bytes);
    if std::env::var_os("BENCH_ONLY_PARSE").is_some() {
        return;
    }

    // 2. A whole day collected from a file: sacct (cat) + parse + metrics + Parquet + rename.
    // First in the shape (100,000 jobs in ~350,000 lines: plain batch jobs, 3 lines
    // each), then with srun steps in half the jobs (3.75 lines a job).
    let yesterday = Utc::now()
        .date_naive()
        .checked_sub_days(Days::new(1))
        .unwrap();
    for (srun_steps, shape) in [
        (false, "3 lines a job (the issue's shape)"),
        (true, "srun steps in half the jobs"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let (_, lines, size) = prepare(dir.path(), jobs_per_day, 1, srun_steps);
        let (secs, rss, jobs, rows) = run_child(dir.path(), 1, false);
        println!(
            "collect one day from a file, {shape}: {lines} lines ({:.0} MB), {jobs} jobs, {rows} raw rows",
            size as f64 / 1e6
        );
        println!(
            "  {secs:.2} s wall ({:.2} us per line), peak RSS {rss:.0} MB",
            secs * 1e6 / lines as f64
        );
        // What every incremental cycle reads to find the ends recorded late
        // (`collect/late.rs`): the unfinished jobs of a partition, four columns of it.
        let archive = slurm_usage::store::Archive::local(dir.path().join("data"));
        let (mut best_read, mut unfinished) = (f64::MAX, 0);
        for _ in 0..5 {
            let t0 = Instant::now();
            let found = archive.read_unfinished(yesterday).unwrap();
            best_read = best_read.min(t0.elapsed().as_secs_f64());
            if let slurm_usage::store::parquet::Existing::Found(u) = found {
                unfinished = u.len();
            }
        }
        println!(
            "  late-end check, the unfinished jobs of that partition (4 columns): {:.1} ms, {unfinished} found (best of 5)",
            best_read * 1e3
        );
        std::fs::remove_dir_all(dir.path().join("data")).unwrap();
        let (secs, rss, _, _) = run_child(dir.path(), 1, true);
        println!("  with the program's allocator settings: {secs:.2} s wall, peak RSS {rss:.0} MB");
        // The day's own partitions (the earlier dates it reports have small ones of theirs).
        let size_of = |sub: &str| -> u64 {
            let path = dir.path().join(format!("data/{sub}/{yesterday}.parquet"));
            std::fs::metadata(path).unwrap().len()
        };
        println!(
            "  on disk: raw {:.1} MB, processed {:.1} MB ({:.0} bytes per job)",
            size_of("raw") as f64 / 1e6,
            size_of("processed") as f64 / 1e6,
            size_of("processed") as f64 / jobs as f64
        );
        // Re-collecting the same day merges with what is archived.
        let (secs, rss, _, _) = run_child(dir.path(), 1, false);
        println!(
            "  re-collect the same day (merge with the archive): {secs:.2} s, peak RSS {rss:.0} MB"
        );
    }

    // 3. Memory against the number of days (max_concurrent_sacct = 4 bounds days in flight).
    let per_day = (jobs_per_day / 5).max(1000);
    let mut row = String::new();
    for days in [1u32, 4, 8, 16] {
        let dir = tempfile::tempdir().unwrap();
        prepare(dir.path(), per_day, days, true);
        let (secs, rss, jobs, _) = run_child(dir.path(), days, false);
        std::fs::remove_dir_all(dir.path().join("data")).unwrap();
        let (_, unit_rss, _, _) = run_child(dir.path(), days, true);
        row.push_str(&format!(
            "  {days:>2} days: {jobs:>8} jobs, {secs:6.2} s, peak RSS {rss:5.0} MB ({unit_rss:.0} MB with the program's allocator settings)\n"
        ));
    }
    println!("memory against days collected ({per_day} jobs/day):\n{row}");
    std::io::stdout().flush().unwrap();
}
