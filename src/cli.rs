//! The command line: one clap struct, one short function per subcommand.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context as _, Result};
use clap::{ArgAction, Args, Parser, Subcommand};
use tokio_util::sync::CancellationToken;

use crate::collect::{run_all, CollectOptions, Collector};
use crate::config::{Config, ConfigSource};
use crate::demo::{DemoArgs, FakeSacctArgs};
use crate::runtime::for_command as runtime;
use crate::slurm::run::{query, tool_path};
use crate::store::Archive;

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
    /// Report usage and efficiency from the archive: by cluster, user, group, partition, node and day.
    #[command(after_help = ANALYZE_HELP)]
    Analyze(AnalyzeArgs),
    /// Check that collection can work here: sacct, sinfo, accounting, config, data dir, a
    /// dry collection of today, slurmdbd's purge margin. Exit 0 only if no check fails.
    Test,
    /// Show one archived job like seff: CPU and memory used vs allocated. Exit 1 if the
    /// archive does not hold it, or holds the id for several clusters and no --cluster picks one.
    Job(JobArgs),
    /// Live queue use per user and partition (cores and nodes, running and pending) from squeue.
    #[command(after_help = LIVE_HELP)]
    Current(LiveArgs),
    /// Node CPU and GPU inventory from sinfo.
    #[command(after_help = LIVE_HELP)]
    Nodes(LiveArgs),
    /// Validate a config file.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// A first look: collect a few days into a scratch dir from the real sacct if there is
    /// one, else from a built-in synthetic sacct, and print the summary.
    Demo(DemoArgs),
    /// A synthetic sacct (for tests, benchmarks and the demo).
    #[command(hide = true)]
    FakeSacct(FakeSacctArgs),
    /// Run as a service: collect on the `[schedule]` cron, reload the config on SIGHUP, talk
    /// to systemd (Type=notify).
    Daemon(DaemonArgs),
    /// The lake (`[lake]` in the config): upload the archive to S3-compatible object storage,
    /// or show what is pending. `collect` and the daemon upload after every cycle by themselves.
    #[command(subcommand, after_help = LAKE_HELP)]
    Lake(LakeCommand),
    /// Efficiency alerts (`[alerts]` in the config): for each user whose jobs wasted enough to
    /// matter, the mail saying what to request instead, and a summary per group contact.
    /// Prints them (a dry run) unless --send.
    #[command(after_help = ALERTS_HELP)]
    Alerts(AlertsArgs),
}

const LIVE_HELP: &str = "Which cluster: --cluster NAME asks that cluster's slurmctld \
(`squeue -M NAME`, found through slurmdbd); without it, every cluster of `[collect] clusters`, \
one section each, or the local cluster when none is listed. Exit 1 when a cluster could not be \
asked (the others are still shown; the error names it).";

/// `current` and `nodes`.
#[derive(Debug, Args)]
pub struct LiveArgs {
    /// Only this cluster (`-M NAME`); any cluster slurmdbd knows, listed or not.
    #[arg(long, value_name = "NAME")]
    pub cluster: Option<String>,
}

const ALERTS_HELP: &str =
    "Rules, thresholds and throttling: docs/alerts.md. With --send, nobody gets two mails \
within `[alerts] every`; a mail that fails is retried by the next run. SMTP credentials come from \
SLURM_USAGE_SMTP_USER and SLURM_USAGE_SMTP_PASSWORD, never from the config file.\n\n\
Exit codes: 0 printed, or every due mail sent; 1 a mail failed (retried next run) or the data dir \
is missing; 75 another sender holds the alerts lock; 78 invalid config.";

#[derive(Debug, Args)]
pub struct AlertsArgs {
    /// Judge today and this many days before it (default: `days` under `[alerts]`, 7).
    #[arg(short, long, value_name = "N")]
    pub days: Option<u32>,
    /// Only this user's mail (no group summaries).
    #[arg(long, value_name = "USER")]
    pub user: Option<String>,
    /// Send the mails that are due (without it, print them and send nothing).
    #[arg(long)]
    pub send: bool,
}

const LAKE_HELP: &str =
    "Credentials come from the AWS environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, \
AWS_REGION, AWS_ENDPOINT_URL for on-premises S3, AWS_ALLOW_HTTP=true for a plain-http endpoint) or \
~/.aws/credentials, never from the config file. Layout, engines and the lease: docs/lake.md.";

#[derive(Debug, Subcommand)]
pub enum LakeCommand {
    /// Upload every local partition whose lake copy is missing or differs (a backfill of an
    /// existing archive; idempotent and resumable). Exit 0 when nothing is left pending,
    /// 1 when something is (the error says why; it is retried by the next sync or cycle).
    Sync {
        /// List what would be uploaded; upload nothing.
        #[arg(long)]
        dry_run: bool,
        /// Upload every partition again, under the pseudonym key as it is now: the explicit
        /// step after changing `pseudonym_key_file` (docs/security.md).
        #[arg(long)]
        rewrite: bool,
        /// Only this cluster of `[collect] clusters` (default: every listed cluster).
        #[arg(long, value_name = "NAME")]
        cluster: Option<String>,
    },
    /// The name behind a pseudonym of the lake (`user-3fa4...`), from the local archive and
    /// the pseudonym key: for an admin on the head node.
    Whois {
        /// The pseudonym, e.g. user-3fa4c2d19e0b7a55.
        pseudonym: String,
        /// Only this cluster of `[collect] clusters` (default: every listed cluster).
        #[arg(long, value_name = "NAME")]
        cluster: Option<String>,
    },
    /// What is pending (from the data dir), the last upload, and who holds the cluster's lease.
    Status {
        /// One JSON object instead of text (with `[collect] clusters`: an array of them,
        /// one per cluster).
        #[arg(long)]
        json: bool,
        /// Only this cluster of `[collect] clusters` (default: every listed cluster).
        #[arg(long, value_name = "NAME")]
        cluster: Option<String>,
    },
}

/// `daemon` takes only the global flags (`--config`, `--data-dir`); the rest is the config.
#[derive(Debug, Args)]
pub struct DaemonArgs {}

#[derive(Debug, Args)]
pub struct CollectArgs {
    /// Collect today and this many days before it (at most 3660, ten years, unless --force:
    /// every day is a sacct query to slurmdbd).
    #[arg(short, long, default_value_t = 1, value_name = "N")]
    pub days: u32,
    /// Allow --days above 3660.
    #[arg(long)]
    pub force: bool,
    /// Print the summary table at the end (default).
    #[arg(long, overrides_with = "no_summary")]
    pub summary: bool,
    /// Do not print the summary.
    #[arg(long, overrides_with = "summary")]
    pub no_summary: bool,
    /// At most this many sacct processes at once (default: `max_concurrent_sacct` under `[collect]`).
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

/// Runs the parsed command line.
pub fn run(cli: Cli) -> Result<ExitCode> {
    let color =
        !cli.no_color && std::env::var_os("NO_COLOR").is_none() && std::io::stderr().is_terminal();
    match &cli.command {
        Command::Config(ConfigCommand::Check { file }) => {
            return config_check(file.as_ref().or(cli.config.as_ref()))
        }
        Command::FakeSacct(args) => return crate::demo::fake_sacct(args),
        Command::Test => return test_cmd(&cli),
        Command::Daemon(_) => {
            return crate::daemon::run(crate::daemon::DaemonOptions {
                source: config_source(&cli),
                color,
            })
        }
        _ => {}
    }
    let config = config_source(&cli).load()?;
    if crate::lake::LakeUrl::is_url(&config.data_dir)
        && !matches!(cli.command, Command::Analyze(_) | Command::Job(_))
    {
        anyhow::bail!(
            "data dir {} is a lake: only `analyze` and `job` read a lake; the other commands work on the local data dir (to upload one to the lake, set [lake] url in the config: docs/lake.md)",
            config.data_dir.display()
        );
    }
    let archive = Archive::of(&config);
    crate::logging::init(crate::logging::cli_level(cli.verbose, cli.quiet), color);
    match cli.command {
        Command::Collect(args) => collect(config, &args),
        Command::Status(args) => status(&config, &archive, &args),
        Command::Demo(args) => demo(config, &args, cli.data_dir.is_some()),
        Command::Analyze(args) => {
            let archives = read_archives(&config, archive, args.cluster.as_deref())?;
            analyze(&config, &archives, &args, cli.no_color)
        }
        Command::Job(args) => {
            let archives = read_archives(&config, archive, args.cluster.as_deref())?;
            job(&config, &archives, &args)
        }
        Command::Current(args) => current(&config, &args, cli.no_color),
        Command::Nodes(args) => nodes(&config, &args, cli.no_color),
        Command::Lake(LakeCommand::Sync {
            dry_run,
            rewrite,
            cluster,
        }) => crate::lake::command::lake_sync(&config, cluster.as_deref(), dry_run, rewrite),
        Command::Lake(LakeCommand::Whois { pseudonym, cluster }) => {
            crate::lake::command::lake_whois(&config, cluster.as_deref(), &pseudonym)
        }
        Command::Lake(LakeCommand::Status { json, cluster }) => {
            crate::lake::command::lake_status(&config, cluster.as_deref(), json)
        }
        Command::Alerts(args) => alerts(&config, &archive, &args),
        Command::Config(_) | Command::FakeSacct(_) | Command::Daemon(_) | Command::Test => {
            unreachable!("handled above")
        }
    }
}

fn alerts(config: &Config, archive: &Archive, args: &AlertsArgs) -> Result<ExitCode> {
    if args.days.is_some_and(|d| d > 366) {
        usage_error("--days must be at most 366");
    }
    let req = crate::alerts::command::AlertsRequest {
        days: args.days,
        user: args.user.clone(),
    };
    crate::alerts::command::alerts_cmd(config, archive, &req, args.send)
}

/// What the reports read: the local data dir, or a lake's clusters (only `cluster` when
/// given, so the others are not even listed) when `--data-dir` is `s3://...`/`file://...`.
fn read_archives(config: &Config, local: Archive, cluster: Option<&str>) -> Result<Vec<Archive>> {
    if crate::lake::LakeUrl::is_url(&config.data_dir) {
        let url = config.data_dir.to_string_lossy();
        let archives = crate::lake::archives(&url, cluster)?;
        anyhow::ensure!(
            !archives.is_empty(),
            "lake {url} holds no cluster yet (no {}/processed/cluster=*/; hint: `slurm-usage lake sync` on a head node uploads one)",
            url.trim_end_matches('/')
        );
        return Ok(archives);
    }
    // One archive per cluster directory (Archive::local_set).
    local
        .local_set(cluster)
        .with_context(|| format!("cannot list {}", local.location().display()))
}

/// The config file and the `--data-dir` override, as the command line gives them.
fn config_source(cli: &Cli) -> ConfigSource {
    ConfigSource {
        file: cli.config.clone(),
        data_dir: cli.data_dir.clone(),
    }
}

/// `collect --days` above this needs `--force`: each day is one sacct query, and a typo
/// (`--days 100000` for `--days 10`) would ask slurmdbd for every day since 1753.
pub const MAX_DAYS: u32 = 3660;

fn collect(mut config: Config, args: &CollectArgs) -> Result<ExitCode> {
    if args.days > MAX_DAYS && !args.force {
        usage_error(format!(
            "--days {} would run {} sacct queries against slurmdbd, one per day back to {}; the limit is {MAX_DAYS} (ten years) unless you add --force",
            args.days,
            u64::from(args.days) + 1,
            config
                .zone()
                .today()
                .checked_sub_days(chrono::Days::new(args.days.into()))
                .map_or_else(|| "the earliest date".to_string(), |d| d.to_string()),
        ));
    }
    if let Some(n) = args.n_parallel {
        if !(1..=64).contains(&n) {
            usage_error("--n-parallel must be between 1 and 64");
        }
        config.collect.max_concurrent_sacct = n;
    }
    let collectors = Collector::all(Arc::new(config));
    collect_with(collectors, args.days, args.wait, !args.no_summary)
}

/// `demo`: collects a few days from the real or the synthetic sacct, then says where the
/// files are.
fn demo(config: Config, args: &DemoArgs, data_dir_given: bool) -> Result<ExitCode> {
    let collector = crate::demo::collector(config, args, data_dir_given)?;
    let archive = collector.archive.clone();
    let code = collect_with(vec![collector], args.days, false, true)?;
    crate::demo::write_files(&archive, args.days)?;
    Ok(code)
}

/// Runs one cycle of each collector (one per cluster, at once), prints the summary (one per
/// cluster when clusters are listed), and picks the exit code: failure when any cluster
/// failed as a whole or for some date. With the local cluster only, an error that stops
/// its cycle is the command's error, as before clusters existed.
fn collect_with(
    collectors: Vec<Collector>,
    days: u32,
    wait: bool,
    summary: bool,
) -> Result<ExitCode> {
    let opts = CollectOptions {
        days,
        wait_for_lock: wait,
        progress: collectors.len() == 1 && std::io::stdout().is_terminal(),
    };
    let cancel = CancellationToken::new();
    let results = runtime()?.block_on(async {
        let c = cancel.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                c.cancel();
            }
        });
        let mut cycles = run_all(&collectors, &opts, &cancel).await;
        if let [one] = cycles.as_mut_slice() {
            if one.cluster.is_none() && one.result.is_err() {
                if let Err(e) = std::mem::replace(&mut one.result, Ok(Default::default())) {
                    return Err(anyhow::Error::from(e));
                }
            }
        }
        // The local archives are committed; the lake gets its copy now. Its outcome never
        // changes the exit code: what did not go up stays pending for the next run.
        let mut results = Vec::new();
        for (collector, cycle) in collectors.iter().zip(cycles) {
            let lake = match &cycle.result {
                Ok(r) if !r.cancelled => {
                    crate::lake::command::upload_after_collect(
                        &collector.lake_config(),
                        &collector.archive,
                    )
                    .await
                }
                _ => None,
            };
            results.push((cycle, lake));
        }
        anyhow::Ok(results)
    })?;
    let mut ok = true;
    let mut out = std::io::stdout().lock();
    for (cycle, lake) in &results {
        if let Some(name) = &cycle.cluster {
            if summary {
                writeln!(out, "cluster {name}:")?;
            }
        }
        match &cycle.result {
            Ok(report) => {
                if summary {
                    crate::summary::write_summary(report, &mut out)?;
                    if let Some(lake) = lake {
                        writeln!(out, "{}", lake.line())?;
                    }
                }
                ok &= report.failed() == 0 && !report.cancelled;
            }
            Err(e) => {
                ok = false;
                if summary {
                    writeln!(out, "collection failed: {e}")?;
                }
                eprintln!(
                    "slurm-usage: error: cluster {}: {e:#}",
                    cycle.cluster.as_deref().unwrap_or("local")
                );
            }
        }
        if let Some(e) = lake.as_ref().and_then(|l| l.error.as_ref()) {
            eprintln!("slurm-usage: warning: lake upload incomplete, retried next time: {e}");
        }
    }
    out.flush()?;
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn status(config: &Config, archive: &Archive, args: &StatusArgs) -> Result<ExitCode> {
    anyhow::ensure!(
        archive.exists(),
        "data dir {} does not exist (hint: run `slurm-usage collect`, or pass --data-dir)",
        archive.location().display()
    );
    let mut out = std::io::stdout().lock();
    if config.collect.clusters.is_empty() {
        status_of(config, archive, args, &mut out)?;
        return Ok(ExitCode::SUCCESS);
    }
    // One section per listed cluster, and the top level when it still holds partitions
    // from before `[collect] clusters`.
    if archive.has_partitions() {
        writeln!(out, "Top level (collected before [collect] clusters):")?;
        status_of(config, archive, args, &mut out)?;
        writeln!(out)?;
    }
    for (i, c) in Collector::all(Arc::new(config.clone())).iter().enumerate() {
        if i > 0 {
            writeln!(out)?;
        }
        let name = c.cluster.as_deref().unwrap_or("local");
        writeln!(out, "Cluster {name}:")?;
        if c.archive.exists() {
            status_of(&c.lake_config(), &c.archive, args, &mut out)?;
        } else {
            writeln!(
                out,
                "Data dir:        {} (not collected yet)",
                c.archive.location().display()
            )?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The status of one archive (the data dir, or one cluster's dir in it).
fn status_of(
    config: &Config,
    archive: &Archive,
    args: &StatusArgs,
    out: &mut impl Write,
) -> Result<()> {
    let mut s = crate::report::status::read_status(archive)
        .with_context(|| format!("cannot read {}", archive.location().display()))?;
    s.lake = crate::lake::command::health(config, archive);
    crate::report::status::write_status(&config.zone(), &s, args.recent, out)?;
    Ok(())
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
    println!(
        "  schedule = {:?} (jitter {})",
        config.schedule.cron, config.schedule.jitter
    );
    println!(
        "  collect  = lookback {} days, {} sacct at once, timeout {}, {} retries, settle {}",
        config.collect.lookback_days,
        config.collect.max_concurrent_sacct,
        config.collect.sacct_timeout,
        config.collect.retries,
        config.collect.settle
    );
    println!(
        "  groups   = {} groups, {} users",
        config.groups.len(),
        config.groups.values().map(Vec::len).sum::<usize>()
    );
    if let Some(a) = &config.alerts {
        println!(
            "  alerts   = via {}, from {}, at most one mail every {}, {} (credentials from SLURM_USAGE_SMTP_USER/_PASSWORD)",
            a.smtp.clone().unwrap_or_else(|| a.sendmail.as_ref().map(|p| p.display().to_string()).unwrap_or_default()),
            a.from,
            a.every,
            a.cron.as_ref().map_or_else(|| "sent by hand".to_string(), |c| format!("daemon sends on {c:?}"))
        );
    }
    if let Some(l) = &config.lake {
        println!(
            "  lake     = {} (cluster {}, lease {}; credentials from the AWS environment)",
            l.url,
            l.cluster.as_deref().unwrap_or("from the archive's rows"),
            l.lease_ttl
        );
    }
    Ok(ExitCode::SUCCESS)
}

// ---- reports: analyze, test, job, current, nodes (src/report/, src/checks.rs, src/live.rs) ----

const ANALYZE_HELP: &str = "Window: --days N covers today and the N days before it (N+1 dates, in the configured \
timezone); --since/--until are inclusive dates and override --days. Hours are reserved hours \
(allocation x elapsed); efficiency and waste use COMPLETED jobs only. A job is its cluster and \
job id: the same id on two clusters counts twice, a job recorded twice on one cluster counts \
once (newest processed_date wins). The clusters table shows when the report holds more than \
one cluster in the terminal and HTML (JSON and CSV always have it).\n\n\
Exit codes: 0 report written (also when no job matched: the output says \"No jobs between X and Y\", \
JSON/CSV are empty but valid), 1 the data dir does not exist or cannot be listed, 2 usage error \
(bad date, --since after --until, --table without --format csv).";

#[derive(Debug, Args)]
pub struct AnalyzeArgs {
    /// Today and this many days before it.
    #[arg(short, long, default_value_t = 7, value_name = "N")]
    pub days: u32,
    /// Only this user's jobs.
    #[arg(long, value_name = "USER")]
    pub user: Option<String>,
    /// Only jobs of this research group's users (`[groups]` in the config; "ungrouped" for the rest).
    #[arg(long, value_name = "GROUP")]
    pub group: Option<String>,
    /// Only jobs in this partition.
    #[arg(long, value_name = "PARTITION")]
    pub partition: Option<String>,
    /// Only jobs of this cluster (sacct's Cluster, as archived in each job's `cluster` column).
    #[arg(long, value_name = "NAME")]
    pub cluster: Option<String>,
    /// First date, inclusive (YYYY-MM-DD); overrides --days.
    #[arg(long, value_name = "DATE", value_parser = parse_date_arg)]
    pub since: Option<chrono::NaiveDate>,
    /// Last date, inclusive (YYYY-MM-DD; default today).
    #[arg(long, value_name = "DATE", value_parser = parse_date_arg)]
    pub until: Option<chrono::NaiveDate>,
    /// Output on stdout.
    #[arg(long, value_enum, default_value_t = crate::report::command::Format::Table)]
    pub format: crate::report::command::Format,
    // The help lists the names of report::tables::TABLES, so it cannot miss a table.
    #[arg(
        long,
        value_name = "NAME",
        help = format!("With --format csv: which table ({})", crate::report::tables::names())
    )]
    pub table: Option<String>,
    /// Also write a self-contained HTML report (tables and SVG charts) to FILE.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// Rows in the terminal tables and charts (JSON and CSV always hold every row).
    #[arg(long, default_value_t = 15, value_name = "N")]
    pub top: usize,
    /// Do not run sinfo for node CPU/GPU counts (node utilisation is then not shown).
    #[arg(long)]
    pub no_sinfo: bool,
}

#[derive(Debug, Args)]
pub struct JobArgs {
    /// The job id as sacct prints it: 1234567, 1234567_4 (array task), 1234567+0 (het job).
    pub id: String,
    /// The job's cluster. Needed when the id is archived for more than one cluster (job ids
    /// are numbered per cluster); `job` lists the clusters then.
    #[arg(long, value_name = "NAME")]
    pub cluster: Option<String>,
}

fn parse_date_arg(s: &str) -> std::result::Result<chrono::NaiveDate, String> {
    chrono::NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
        .map_err(|_| format!("expected a date like 2026-11-25, not {s:?}"))
}

/// Colour on stdout: a terminal, and neither --no-color nor NO_COLOR.
fn stdout_color(no_color: bool) -> bool {
    !no_color && std::env::var_os("NO_COLOR").is_none() && std::io::stdout().is_terminal()
}

/// A usage error: clap's format and exit code 2.
fn usage_error(msg: impl std::fmt::Display) -> ! {
    use clap::CommandFactory;
    Cli::command()
        .error(clap::error::ErrorKind::ArgumentConflict, msg)
        .exit()
}

fn analyze(
    config: &Config,
    archives: &[Archive],
    args: &AnalyzeArgs,
    no_color: bool,
) -> Result<ExitCode> {
    use crate::report::command::{run_analyze, validate, AnalyzeRequest};
    let req = AnalyzeRequest {
        days: args.days,
        since: args.since,
        until: args.until,
        filter: crate::report::analyze::Filter {
            cluster: args.cluster.clone(),
            user: args.user.clone(),
            group: args.group.clone(),
            partition: args.partition.clone(),
        },
        format: args.format,
        table: args.table.clone(),
        html: args.html.clone(),
        top: args.top,
        no_sinfo: args.no_sinfo,
        color: stdout_color(no_color),
        width: crate::report::render::Style::terminal_width(),
    };
    if let Err(e) = validate(&req, config) {
        usage_error(e);
    }
    // sinfo runs only once the request is known to be good and the data dir exists.
    let inventory = || crate::live::node_inventory(&tool_path(&config.collect.sacct, "sinfo"));
    match run_analyze(
        config,
        archives,
        &req,
        inventory,
        &mut std::io::stdout().lock(),
        &mut std::io::stderr(),
    ) {
        Ok(_) => Ok(ExitCode::SUCCESS),
        // `analyze | head`: the reader has what it wanted.
        Err(e)
            if e.chain().any(|c| {
                c.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            }) =>
        {
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => Err(e),
    }
}

fn test_cmd(cli: &Cli) -> Result<ExitCode> {
    let source = config_source(cli);
    let loaded = source
        .load()
        .map_err(|e| crate::logging::error_chain(&e.into()));
    let archive = match &loaded {
        Ok(c) => Archive::of(c),
        Err(_) => Archive::local(source.data_dir_without_config()),
    };
    let checks = crate::checks::run_checks(loaded.as_ref().map_err(Clone::clone), &archive);
    let ok = crate::checks::write_checks(
        &checks,
        stdout_color(cli.no_color),
        &mut std::io::stdout().lock(),
    )?;
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn job(config: &Config, archives: &[Archive], args: &JobArgs) -> Result<ExitCode> {
    use crate::report::job::{lookup, raw_steps, write_job};
    if let Some(missing) = archives.iter().find(|a| !a.exists()) {
        anyhow::bail!(
            "data dir {} does not exist (hint: pass --data-dir, or run `slurm-usage collect`)",
            missing.location().display()
        );
    }
    let zone = config.zone();
    let found = lookup(archives, args.id.trim(), args.cluster.as_deref(), &zone)?;
    for u in &found.unreadable {
        eprintln!("slurm-usage: warning: skipped {u}");
    }
    if let (Some(c), true) = (
        &args.cluster,
        found.records.is_empty() && found.tasks.is_empty(),
    ) {
        anyhow::ensure!(
            found.elsewhere.is_empty(),
            "job {} is not archived for cluster {c:?}, only for: {} (hint: --cluster {})",
            args.id,
            found.elsewhere.join(", "),
            found.elsewhere[0]
        );
    }
    if found.records.is_empty() && found.tasks.is_empty() {
        anyhow::bail!(
            "job {} is not in the archive {} ({} processed files, {} had to be read) (hint: check the id with `sacct -j {}`; jobs are archived from the first collection on)",
            args.id,
            config.data_dir.display(),
            found.files,
            found.files_read,
            args.id
        );
    }
    let steps = found
        .records
        .first()
        .map(|f| raw_steps(&archives[f.archive], f.date, &f.job.job_id))
        .unwrap_or_default();
    write_job(&found, &steps, &zone, &mut std::io::stdout().lock())?;
    Ok(ExitCode::SUCCESS)
}

/// The clusters `current` and `nodes` show: `--cluster`, else every listed cluster, else the
/// local one (`None`: no `-M`, exactly as before clusters existed).
fn live_clusters(config: &Config, args: &LiveArgs) -> Vec<Option<String>> {
    match &args.cluster {
        Some(c) => vec![Some(c.clone())],
        None if config.collect.clusters.is_empty() => vec![None],
        None => config.collect.clusters.iter().cloned().map(Some).collect(),
    }
}

/// Runs `show` for each cluster of [`live_clusters`], a blank line between them. A cluster
/// that fails is named on stderr and the others are still shown; exit 1 if any failed.
fn each_live_cluster(
    config: &Config,
    args: &LiveArgs,
    mut show: impl FnMut(Option<&str>, &mut dyn std::io::Write) -> Result<()>,
) -> Result<ExitCode> {
    let clusters = live_clusters(config, args);
    if let [None] = clusters.as_slice() {
        show(None, &mut std::io::stdout().lock())?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut failed = 0;
    for (i, c) in clusters.iter().flatten().enumerate() {
        let mut out = std::io::stdout().lock();
        if i > 0 {
            writeln!(out)?;
        }
        if let Err(e) = show(Some(c), &mut out) {
            drop(out);
            eprintln!("slurm-usage: error: cluster {c}: {e:#}");
            failed += 1;
        }
    }
    Ok(if failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn live_style(no_color: bool) -> crate::report::render::Style {
    crate::report::render::Style {
        color: stdout_color(no_color),
        width: crate::report::render::Style::terminal_width(),
        top: usize::MAX,
    }
}

fn current(config: &Config, args: &LiveArgs, no_color: bool) -> Result<ExitCode> {
    use crate::live::{cluster_args, parse_squeue_of, sinfo_nodes, write_current, SQUEUE_ARGS};
    let squeue = tool_path(&config.collect.sacct, "squeue");
    let sinfo = tool_path(&config.collect.sacct, "sinfo");
    let me = std::env::var("USER").unwrap_or_default();
    let style = live_style(no_color);
    each_live_cluster(config, args, |cluster, mut out| {
        let mut argv = SQUEUE_ARGS.to_vec();
        argv.extend(cluster_args(cluster));
        let text = query(&squeue, &argv)?;
        let cpus = sinfo_nodes(&sinfo, cluster)
            .map(|n| n.into_iter().map(|(k, v)| (k, v.cpus)).collect())
            .unwrap_or_default();
        let jobs = parse_squeue_of(&text, cluster);
        write_current(&jobs, &cpus, &me, cluster, &style, &mut out)?;
        Ok(())
    })
}

fn nodes(config: &Config, args: &LiveArgs, no_color: bool) -> Result<ExitCode> {
    let sinfo = tool_path(&config.collect.sacct, "sinfo");
    let style = live_style(no_color);
    each_live_cluster(config, args, |cluster, mut out| {
        let nodes = crate::live::sinfo_nodes(&sinfo, cluster)?;
        crate::live::write_nodes(&nodes, cluster, &style, &mut out)?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn live(args: &[&str]) -> LiveArgs {
        let mut argv = vec!["slurm-usage"];
        argv.extend(args);
        match Cli::try_parse_from(argv)
            .expect("valid command line")
            .command
        {
            Command::Current(a) | Command::Nodes(a) => a,
            other => panic!("not current/nodes: {other:?}"),
        }
    }

    #[test]
    fn live_views_pick_their_clusters() {
        let mut config = Config::default();
        // No clusters listed: the local cluster, no -M (as before clusters existed).
        assert_eq!(live_clusters(&config, &live(&["current"])), [None]);
        config.collect.clusters = vec!["rig".into(), "beta".into()];
        assert_eq!(
            live_clusters(&config, &live(&["nodes"])),
            [Some("rig".to_string()), Some("beta".to_string())]
        );
        // --cluster wins, listed or not.
        for name in ["beta", "gamma"] {
            assert_eq!(
                live_clusters(&config, &live(&["current", "--cluster", name])),
                [Some(name.to_string())]
            );
        }
    }
}
