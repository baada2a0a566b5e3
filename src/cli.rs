//! The command line: one clap struct, one short function per subcommand.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context as _, Result};
use clap::{ArgAction, Args, Parser, Subcommand};
use tokio_util::sync::CancellationToken;

use crate::collect::{run_cycle, CollectOptions, Collector};
use crate::config::Config;
use crate::sacct::command::SacctProgram;
use crate::sacct::fields::FieldLayout;
use crate::store::DataDir;

/// Exit code: another collector holds the data dir.
pub const EXIT_BUSY: u8 = 75;
/// Exit code: the config file is invalid.
pub const EXIT_CONFIG: u8 = 78;

#[derive(Debug, Parser)]
#[command(
    name = "slurm-usage",
    version,
    about = "Archive SLURM job accounting (sacct) into daily Parquet files and report job efficiency",
    long_about = "Archive SLURM job accounting (sacct) into daily Parquet files that outlive slurmdbd's \
purge, and report per-job CPU and memory efficiency.\n\n\
Config: --config FILE, else $SLURM_USAGE_CONFIG, else $XDG_CONFIG_HOME/slurm-usage/config.toml \
(or ~/.config/...), else /etc/slurm-usage/config.toml, else built-in defaults.",
    after_help = "Exit codes: 0 ok, 1 failure (e.g. a date could not be collected), 2 usage error, \
75 data dir busy (another collector holds it), 78 invalid config."
)]
pub struct Cli {
    /// Config file (TOML); see config/config.example.toml.
    #[arg(long, global = true, env = "SLURM_USAGE_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Data directory; overrides `data_dir` in the config.
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// More log output on stderr (-v info, -vv debug).
    #[arg(short, long, global = true, action = ArgAction::Count)]
    pub verbose: u8,
    /// Only errors on stderr.
    #[arg(short, long, global = true, action = ArgAction::Count)]
    pub quiet: u8,
    /// No colours (also when NO_COLOR is set or output is not a terminal).
    #[arg(long, global = true)]
    pub no_color: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Collect now: today and the N days before, plus older incomplete dates.
    Collect(CollectArgs),
    /// Show what the data dir holds and how fresh it is.
    Status(StatusArgs),
    /// Validate a config file.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// A first look: collect a few days into a scratch dir from the real sacct if there is
    /// one, else from a built-in synthetic sacct, and print the summary.
    Demo(DemoArgs),
    /// A synthetic sacct (for tests, benchmarks and the demo).
    #[command(hide = true)]
    FakeSacct(FakeSacctArgs),
}

#[derive(Debug, Args)]
pub struct CollectArgs {
    /// Collect today and this many days before it.
    #[arg(short, long, default_value_t = 1, value_name = "N")]
    pub days: u32,
    /// Print the summary table at the end (default).
    #[arg(long, overrides_with = "no_summary")]
    pub summary: bool,
    /// Do not print the summary.
    #[arg(long, overrides_with = "summary")]
    pub no_summary: bool,
    /// At most this many sacct processes at once (default: [collect] max_concurrent_sacct).
    #[arg(short = 'n', long, value_name = "K")]
    pub n_parallel: Option<usize>,
    /// Wait for another collector to finish instead of exiting with code 75.
    #[arg(long)]
    pub wait: bool,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// List this many recent dates.
    #[arg(long, default_value_t = 10, value_name = "N")]
    pub recent: u32,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Read and validate a config file (default: the one that would be used); exit 78 if invalid.
    Check {
        /// The file to check.
        file: Option<PathBuf>,
    },
}

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
    /// The sacct arguments (--starttime, --endtime, --format, --delimiter, --version).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub sacct_args: Vec<String>,
}

/// Runs the parsed command line.
pub fn run(cli: Cli) -> Result<ExitCode> {
    let color = !cli.no_color && std::env::var_os("NO_COLOR").is_none() && std::io::stderr().is_terminal();
    match &cli.command {
        Command::Config(ConfigCommand::Check { file }) => return config_check(file.as_ref().or(cli.config.as_ref())),
        Command::FakeSacct(args) => return crate::demo::fake_sacct(args),
        _ => {}
    }
    let mut config = Config::discover(cli.config.as_deref())?;
    if let Some(dir) = &cli.data_dir {
        config.data_dir = dir.clone();
    }
    crate::logging::init(crate::logging::cli_level(cli.verbose, cli.quiet), color);
    match cli.command {
        Command::Collect(args) => collect(config, &args),
        Command::Status(args) => status(&config, &args),
        Command::Demo(args) => crate::demo::run(config, &args, cli.data_dir.is_some()),
        Command::Config(_) | Command::FakeSacct(_) => unreachable!("handled above"),
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

fn collect(mut config: Config, args: &CollectArgs) -> Result<ExitCode> {
    if let Some(n) = args.n_parallel {
        anyhow::ensure!((1..=64).contains(&n), "--n-parallel must be between 1 and 64");
        config.collect.max_concurrent_sacct = n;
    }
    let collector = Collector::new(Arc::new(config));
    collect_with(collector, args.days, args.wait, !args.no_summary)
}

/// Runs one cycle with `collector`, prints the summary, and picks the exit code.
pub fn collect_with(collector: Collector, days: u32, wait: bool, summary: bool) -> Result<ExitCode> {
    let opts = CollectOptions {
        days,
        wait_for_lock: wait,
        progress: std::io::stdout().is_terminal(),
    };
    let cancel = CancellationToken::new();
    let report = runtime()?.block_on(async {
        let c = cancel.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                c.cancel();
            }
        });
        run_cycle(&collector, &opts, &cancel).await
    })?;
    if summary {
        let mut out = std::io::stdout().lock();
        crate::report::summary::write_summary(&report, &mut out)?;
        out.flush()?;
    }
    Ok(if report.failed() > 0 || report.cancelled {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn status(config: &Config, args: &StatusArgs) -> Result<ExitCode> {
    let data = DataDir::new(&config.data_dir);
    anyhow::ensure!(
        data.root.is_dir(),
        "data dir {} does not exist (hint: run `slurm-usage collect`, or pass --data-dir)",
        data.root.display()
    );
    let s = crate::report::status::read_status(&data)
        .with_context(|| format!("cannot read {}", data.root.display()))?;
    let mut out = std::io::stdout().lock();
    crate::report::status::write_status(&data, &config.zone(), &s, args.recent, &mut out)?;
    Ok(ExitCode::SUCCESS)
}

fn config_check(file: Option<&PathBuf>) -> Result<ExitCode> {
    let config = match file {
        Some(f) => Config::load(f)?,
        None => Config::discover(None)?,
    };
    match &config.source {
        Some(p) => println!("{}: ok", p.display()),
        None => println!("no config file found; built-in defaults are valid"),
    }
    println!("  data_dir = {}", config.data_dir.display());
    println!("  timezone = {}", config.zone());
    println!("  schedule = {:?} (jitter {})", config.schedule.cron, config.schedule.jitter);
    println!(
        "  collect  = lookback {} days, {} sacct at once, timeout {}, {} retries, settle {}",
        config.collect.lookback_days,
        config.collect.max_concurrent_sacct,
        config.collect.sacct_timeout,
        config.collect.retries,
        config.collect.settle
    );
    println!("  groups   = {} groups, {} users", config.groups.len(), config.groups.values().map(Vec::len).sum::<usize>());
    Ok(ExitCode::SUCCESS)
}

/// A collector that runs `program` with `prefix` arguments before sacct's own.
pub fn collector_with_program(config: Config, program: PathBuf, prefix: Vec<std::ffi::OsString>) -> Collector {
    Collector {
        data: DataDir::new(&config.data_dir),
        sacct: SacctProgram {
            program,
            prefix_args: prefix,
        },
        layout: Arc::new(FieldLayout::ours()),
        config: Arc::new(config),
    }
}
