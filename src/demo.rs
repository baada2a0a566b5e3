//! `slurm-usage demo` and the hidden `fake-sacct`: a first look without a cluster.
//!
//! The demo runs the real collection code path: it spawns sacct as a child process. With a
//! working `sacct` on PATH that is the real one; otherwise it is this binary's own
//! `fake-sacct`, which prints synthetic output in sacct's format for the window it is asked.
//! `cli` runs the collection itself, between [`collector`] and [`write_files`].

use std::ffi::OsString;
use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result};
use chrono::{NaiveDateTime, Utc};
use clap::Args;

use crate::collect::Collector;
use crate::config::Config;
use crate::sacct::command::SacctProgram;
use crate::sacct::fields::{FieldLayout, DELIMITER};
use crate::store::{Archive, Kind};
use crate::synth::Synth;

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Collect today and this many days before it.
    #[arg(short, long, default_value_t = 3, value_name = "N")]
    pub days: u32,
    /// Jobs per day of the synthetic sacct.
    #[arg(long, default_value_t = 2000, value_name = "N")]
    pub jobs_per_day: u32,
    /// Use the synthetic sacct even when a real one is installed.
    #[arg(long)]
    pub synthetic: bool,
}

#[derive(Debug, Args)]
pub struct FakeSacctArgs {
    /// Jobs per day to generate.
    #[arg(long, default_value_t = 1000)]
    pub jobs_per_day: u32,
    /// Every 50th job waits one to three days before it starts (a timeline with jobs
    /// pending for days).
    #[arg(long)]
    pub long_pending: bool,
    /// Every 13th finished job's end reaches the database this many seconds late: until
    /// then sacct shows it RUNNING (slurmctld's queue to slurmdbd backed up).
    #[arg(long, default_value_t = 0, value_name = "SECONDS")]
    pub record_lag: i64,
    /// "Now" of the synthetic cluster (`YYYY-MM-DDTHH:MM:SS`, UTC): jobs not finished by
    /// then are RUNNING, not started PENDING, not submitted absent. A test walks a timeline
    /// by setting it per call. Default: the system clock.
    #[arg(long, env = "SLURM_USAGE_FAKE_NOW", value_name = "TIME")]
    pub now: Option<String>,
    /// The sacct arguments (--starttime, --endtime, --jobs, --format, --delimiter,
    /// --version). `--jobs` matches JobIDRaw only, within the window.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub sacct_args: Vec<String>,
}

/// A collector for the demo (its data dir a scratch dir unless one was given), for
/// the real sacct when it answers, else for the synthetic one. Says which on stdout.
pub fn collector(mut config: Config, args: &DemoArgs, data_dir_given: bool) -> Result<Collector> {
    if !data_dir_given {
        let stamp = Utc::now().format("%Y%m%d-%H%M%S");
        config.data_dir =
            std::env::temp_dir().join(format!("slurm-usage-demo-{stamp}-{}", std::process::id()));
    }
    if !args.synthetic && real_sacct_works(&config) {
        println!(
            "Collecting from the real sacct ({}) into {}",
            config.collect.sacct.display(),
            config.data_dir.display()
        );
        return Ok(Collector::new(Arc::new(config)));
    }
    println!(
        "No sacct that answers here: collecting from the built-in synthetic sacct ({} jobs/day) into {}",
        args.jobs_per_day,
        config.data_dir.display()
    );
    let exe = std::env::current_exe().context("cannot find this program's path")?;
    // The synthetic cluster's days are UTC days.
    config.timezone = Some("UTC".parse().expect("UTC is a zone"));
    let sacct = SacctProgram {
        program: exe,
        prefix_args: vec![
            "fake-sacct".into(),
            "--jobs-per-day".into(),
            args.jobs_per_day.to_string().into(),
            "--".into(),
        ],
    };
    Ok(Collector::with_sacct(Arc::new(config), sacct))
}

/// After the collection: the files written and what to try next.
pub fn write_files(archive: &Archive, days: u32) -> Result<()> {
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
    // The program as it was started (`target/release/slurm-usage` after `cargo run`): a bare
    // `slurm-usage` is not on PATH until the package is installed.
    let me = std::env::args()
        .next()
        .unwrap_or_else(|| "slurm-usage".into());
    let dir = archive.location().display();
    println!("  {me} status --data-dir {dir}");
    println!("  {me} analyze --data-dir {dir} --days {}", days);
    println!(
        "  python3 -c \"import polars as pl; print(pl.read_parquet('{}/processed/*.parquet').group_by('user').agg(pl.col('cpu_hours_reserved').sum()))\"",
        archive.location().display()
    );
    Ok(())
}

/// Whether sacct is installed *and* answers a query: on a machine with the SLURM client but no
/// reachable slurmdbd the demo uses the synthetic sacct instead of showing only failures.
fn real_sacct_works(config: &Config) -> bool {
    let args: Vec<OsString> = [
        "--noheader",
        "--allusers",
        "--starttime",
        "now",
        "--endtime",
        "now",
        "--format=JobID",
    ]
    .map(OsString::from)
    .to_vec();
    SacctProgram::new(&config.collect.sacct)
        .command(&args)
        .output_blocking(Duration::from_secs(10))
        .is_ok()
}

/// The synthetic sacct: understands `--version`, `--starttime/-S`, `--endtime/-E` (default:
/// now, as sacct's), `--format`, `--delimiter` and ignores the rest.
pub fn fake_sacct(args: &FakeSacctArgs) -> Result<ExitCode> {
    let mut start = None;
    let mut end = None;
    let mut format: Option<String> = None;
    // Like sacct: `--delimiter` wins; `-P` alone means `|` (the Python tool's call).
    let mut delimiter = None;
    let mut parsable = false;
    let mut jobs: Option<String> = None;
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
            "--jobs" | "-j" => jobs = value(),
            "--delimiter" => {
                delimiter = Some(value().and_then(|v| v.bytes().next()).unwrap_or(b'|'))
            }
            "-P" | "--parsable2" => parsable = true,
            _ => {}
        }
    }
    let parse = |s: Option<String>, what: &str| -> Result<chrono::DateTime<Utc>> {
        let s = s.with_context(|| format!("fake-sacct needs {what}"))?;
        Ok(NaiveDateTime::parse_from_str(&s, "%Y-%m-%dT%H:%M:%S")
            .with_context(|| format!("bad {what} {s:?}"))?
            .and_utc())
    };
    let now = match &args.now {
        Some(t) => parse(Some(t.clone()), "--now")?,
        None => Utc::now(),
    };
    // Like sacct: without `--endtime` the window ends now.
    let end = end.or_else(|| Some(now.format("%Y-%m-%dT%H:%M:%S").to_string()));
    let (start, end) = (parse(start, "--starttime")?, parse(end, "--endtime")?);
    let delimiter = delimiter.unwrap_or(if parsable { b'|' } else { DELIMITER });
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
        now,
        srun_steps: true,
        long_pending: args.long_pending,
        record_lag: args.record_lag,
        only: match jobs {
            Some(list) => Some(
                list.split(',')
                    .map(|id| {
                        id.parse::<u64>()
                            .with_context(|| format!("bad job id {id:?}"))
                    })
                    .collect::<Result<_>>()?,
            ),
            None => None,
        },
    };
    let mut text = String::new();
    synth.generate(start, end, &layout, &mut text);
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}
