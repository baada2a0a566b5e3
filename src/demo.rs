//! `slurm-usage demo` and the hidden `fake-sacct`: a first look without a cluster.
//!
//! The demo runs the real collection code path: it spawns sacct as a child process. With a
//! working `sacct` on PATH that is the real one; otherwise it is this binary's own
//! `fake-sacct`, which prints synthetic output in sacct's format for the window it is asked.

use std::io::Write;
use std::process::ExitCode;

use anyhow::{Context as _, Result};
use chrono::{NaiveDateTime, Utc};

use crate::cli::{collect_with, collector_with_program, DemoArgs, FakeSacctArgs};
use crate::config::Config;
use crate::sacct::fields::{FieldLayout, DELIMITER};
use crate::store::Kind;
use crate::synth::Synth;

/// Runs the demo collection and prints where the files are.
pub fn run(mut config: Config, args: &DemoArgs, data_dir_given: bool) -> Result<ExitCode> {
    if !data_dir_given {
        let stamp = Utc::now().format("%Y%m%d-%H%M%S");
        config.data_dir =
            std::env::temp_dir().join(format!("slurm-usage-demo-{stamp}-{}", std::process::id()));
    }
    let real = !args.synthetic && real_sacct_works(&config);
    let collector = if real {
        println!(
            "Collecting from the real sacct ({}) into {}",
            config.collect.sacct.display(),
            config.data_dir.display()
        );
        crate::collect::Collector::new(std::sync::Arc::new(config.clone()))
    } else {
        println!(
            "No sacct that answers here: collecting from the built-in synthetic sacct ({} jobs/day) into {}",
            args.jobs_per_day,
            config.data_dir.display()
        );
        let exe = std::env::current_exe().context("cannot find this program's path")?;
        let prefix = vec![
            "fake-sacct".into(),
            "--jobs-per-day".into(),
            args.jobs_per_day.to_string().into(),
            "--".into(),
        ];
        // The synthetic cluster's days are UTC days.
        config.timezone = Some("UTC".parse().expect("UTC is a zone"));
        collector_with_program(config.clone(), exe, prefix)
    };
    let archive = collector.archive.clone();
    let code = collect_with(collector, args.days, false, true)?;
    println!();
    println!("Files written:");
    for kind in [Kind::Raw, Kind::Processed] {
        for (date, bytes) in archive.listing(kind)?.partitions {
            println!(
                "  {} ({})",
                archive.name(kind, date).display(),
                crate::report::human_bytes(bytes)
            );
        }
    }
    println!();
    println!("Look around:");
    println!(
        "  slurm-usage status --data-dir {}",
        config.data_dir.display()
    );
    println!(
        "  python3 -c \"import polars as pl; print(pl.read_parquet('{}/processed/*.parquet').group_by('user').agg(pl.col('cpu_hours_reserved').sum()))\"",
        config.data_dir.display()
    );
    Ok(code)
}

/// Whether sacct is installed *and* answers a query: on a machine with the SLURM client but no
/// reachable slurmdbd the demo uses the synthetic sacct instead of showing only failures.
fn real_sacct_works(config: &Config) -> bool {
    let child = std::process::Command::new(&config.collect.sacct)
        .args([
            "--noheader",
            "--allusers",
            "--starttime",
            "now",
            "--endtime",
            "now",
            "--format=JobID",
        ])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
    let Ok(mut child) = child else { return false };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return status.success(),
            Ok(None) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(50))
            }
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return false;
            }
        }
    }
}

/// The synthetic sacct: understands `--version`, `--starttime/-S`, `--endtime/-E`,
/// `--format`, `--delimiter` and ignores the rest.
pub fn fake_sacct(args: &FakeSacctArgs) -> Result<ExitCode> {
    let mut start = None;
    let mut end = None;
    let mut format: Option<String> = None;
    let mut delimiter = DELIMITER;
    let mut it = args.sacct_args.iter();
    while let Some(a) = it.next() {
        let (key, inline) = match a.split_once('=') {
            Some((k, v)) => (k, Some(v.to_string())),
            None => (a.as_str(), None),
        };
        let mut value = || inline.clone().or_else(|| it.next().cloned());
        match key {
            "--version" | "-V" => {
                println!("slurm 22.05.8 (slurm-usage synthetic)");
                return Ok(ExitCode::SUCCESS);
            }
            "--starttime" | "-S" => start = value(),
            "--endtime" | "-E" => end = value(),
            "--format" | "-o" => format = value(),
            "--delimiter" => delimiter = value().and_then(|v| v.bytes().next()).unwrap_or(b'|'),
            _ => {}
        }
    }
    let parse = |s: Option<String>, what: &str| -> Result<chrono::DateTime<Utc>> {
        let s = s.with_context(|| format!("fake-sacct needs {what}"))?;
        Ok(NaiveDateTime::parse_from_str(&s, "%Y-%m-%dT%H:%M:%S")
            .with_context(|| format!("bad {what} {s:?}"))?
            .and_utc())
    };
    let (start, end) = (parse(start, "--starttime")?, parse(end, "--endtime")?);
    let layout = match &format {
        Some(f) => FieldLayout::new(f.split(','), delimiter)?,
        None => FieldLayout::new(
            crate::sacct::fields::SACCT_FIELDS.iter().copied(),
            delimiter,
        )?,
    };
    let synth = Synth {
        jobs_per_day: args.jobs_per_day,
        seed: 42,
        now: Utc::now(),
        srun_steps: true,
    };
    let mut text = String::new();
    synth.generate(start, end, &layout, &mut text);
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}
