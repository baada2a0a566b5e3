//! The glue behind `analyze` and `job`: pick the window, read the archive, render the
//! chosen format. `cli.rs` parses the flags and calls in here.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use chrono::{DateTime, Days, NaiveDate, Utc};

use super::analyze::{analyze_dir, Analysis, Context, Filter, Groups, NodeInventory, Window};
use super::html::{render, HtmlOptions};
use super::json::{table, write_csv, write_json};
use super::render::{write_report, Style};
use super::tables;
use crate::config::Config;
use crate::store::Archive;

/// Output format of `analyze`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Aligned tables and bar charts.
    Table,
    /// One JSON object (its keys and fields: docs/reports.md).
    Json,
    /// One table as CSV (`--table`, default users).
    Csv,
}

/// What `analyze` was asked.
#[derive(Debug, Clone)]
pub struct AnalyzeRequest {
    pub days: u32,
    pub since: Option<NaiveDate>,
    pub until: Option<NaiveDate>,
    pub filter: Filter,
    pub format: Format,
    /// CSV table name (one of [`tables::TABLES`]).
    pub table: Option<String>,
    pub html: Option<PathBuf>,
    pub top: usize,
    /// Skip sinfo (no utilisation).
    pub no_sinfo: bool,
    pub color: bool,
    pub width: usize,
}

/// Why a request cannot run; these are usage errors (exit 2).
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    #[error("--since {since} is after --until {until}")]
    Backwards { since: NaiveDate, until: NaiveDate },
    #[error("--table picks the CSV table; add --format csv")]
    TableWithoutCsv,
    #[error("unknown table {0:?}; one of: {tables}", tables = tables::names())]
    UnknownTable(String),
    #[error("the window {since} .. {until} is longer than {MAX_DAYS} days")]
    TooLong { since: NaiveDate, until: NaiveDate },
}

/// The longest window `analyze` accepts (a century): the report keeps a few numbers per
/// day, and `--days 4000000000` should be an error, not an allocation.
pub const MAX_DAYS: i64 = 36_600;

/// The window a request covers at `now`: `--since/--until` (inclusive; either alone pairs
/// with today, or with `--days` before `--until`), else today and the `--days` before.
pub fn window(
    req: &AnalyzeRequest,
    config: &Config,
    now: DateTime<Utc>,
) -> Result<Window, RequestError> {
    let zone = config.zone();
    let today = zone.date_of(now);
    let (since, until) = match (req.since, req.until) {
        (Some(s), Some(u)) => (s, u),
        (Some(s), None) => (s, today.max(s)),
        (None, Some(u)) => (
            u.checked_sub_days(Days::new(req.days.into()))
                .unwrap_or(NaiveDate::MIN),
            u,
        ),
        (None, None) => (
            today
                .checked_sub_days(Days::new(req.days.into()))
                .unwrap_or(NaiveDate::MIN),
            today,
        ),
    };
    if since > until {
        return Err(RequestError::Backwards { since, until });
    }
    if (until - since).num_days() >= MAX_DAYS {
        return Err(RequestError::TooLong { since, until });
    }
    Window::new(since, until, zone, now).map_err(|_| RequestError::Backwards { since, until })
}

/// Checks flag combinations clap cannot express, and that the window makes sense.
pub fn validate(req: &AnalyzeRequest, config: &Config) -> Result<(), RequestError> {
    window(req, config, Utc::now())?;
    if let Some(t) = &req.table {
        if req.format != Format::Csv {
            return Err(RequestError::TableWithoutCsv);
        }
        if tables::find(t).is_none() {
            return Err(RequestError::UnknownTable(t.clone()));
        }
    }
    if let (Some(s), Some(u)) = (req.since, req.until) {
        if s > u {
            return Err(RequestError::Backwards { since: s, until: u });
        }
    }
    Ok(())
}

/// A path `write_bytes_atomic` can sync: a bare file name becomes `./name`.
fn with_dir(p: &Path) -> PathBuf {
    match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => p.to_path_buf(),
        _ => Path::new(".").join(p),
    }
}

/// Where `archives` are, for messages: one location, or all of them comma-separated.
fn locations(archives: &[Archive]) -> String {
    let v: Vec<String> = archives
        .iter()
        .map(|a| a.location().display().to_string())
        .collect();
    v.join(", ")
}

/// Runs `analyze`: reads `archives` as one (one per cluster, or a single archive), writes
/// the chosen format to `out`, the HTML file if asked. Exit status is the caller's: 0 even
/// when no job matched (the output says so).
///
/// `inventory` asks the cluster for its node counts (sinfo); it is the caller's, since the
/// reports read only the archive. It is called once the request is known to be good, and not
/// at all with `--no-sinfo`.
pub fn run_analyze(
    config: &Config,
    archives: &[Archive],
    req: &AnalyzeRequest,
    inventory: impl FnOnce() -> NodeInventory,
    out: &mut impl Write,
    err: &mut impl Write,
) -> Result<Analysis> {
    for archive in archives {
        anyhow::ensure!(
            archive.exists(),
            "data dir {} does not exist (hint: run `slurm-usage collect`, or pass --data-dir)",
            archive.location().display()
        );
    }
    let now = Utc::now();
    let window = window(req, config, now)?;
    if let Some(g) = &req.filter.group {
        if g != super::analyze::UNGROUPED && !config.groups.contains_key(g) {
            let known: Vec<&str> = config.groups.keys().map(String::as_str).collect();
            writeln!(
                err,
                "slurm-usage: warning: no group {g:?} under [groups] in the config (known: {}); only \"{}\" and configured groups match users",
                if known.is_empty() { "none".to_string() } else { known.join(", ") },
                super::analyze::UNGROUPED
            )?;
        }
    }
    let inventory = if req.no_sinfo {
        NodeInventory::unavailable("--no-sinfo")
    } else {
        inventory()
    };
    let ctx = Context {
        window,
        filter: req.filter.clone(),
        groups: Groups::from_config(config),
        inventory,
        threads: std::thread::available_parallelism()
            .map_or(2, |n| n.get())
            .min(4),
    };
    let a = analyze_dir(archives, &ctx)
        .with_context(|| format!("cannot analyze {}", locations(archives)))?;
    // The file first: a reader that closes stdout early (`| head`) must not cost the report.
    if let Some(path) = &req.html {
        let html = render(
            &a,
            &HtmlOptions {
                generated_at: now.format("%Y-%m-%d %H:%M UTC").to_string(),
                top: req.top.max(1),
            },
        );
        let path = with_dir(path);
        crate::store::atomic::write_bytes_atomic(&path, html.as_bytes())?;
        writeln!(
            err,
            "Wrote the HTML report to {} (self-contained: open it in any browser, or attach it to a mail)",
            path.display()
        )?;
    }
    if req.format != Format::Table {
        // The terminal report lists these itself; JSON and CSV have no place for them.
        for u in &a.unreadable {
            writeln!(err, "slurm-usage: warning: skipped {u}")?;
        }
        if let Some(why) = &a.node_counts_unavailable {
            if !req.no_sinfo {
                writeln!(
                    err,
                    "slurm-usage: node CPU/GPU counts unavailable ({why}): no utilisation"
                )?;
            }
        }
    }
    if a.is_empty() && req.format != Format::Table {
        writeln!(
            err,
            "slurm-usage: no jobs between {} and {} in {}",
            a.since,
            a.until,
            locations(archives)
        )?;
    }
    write_analysis(&a, req, out)?;
    Ok(a)
}

/// Writes `a` in the requested terminal format (`table`, `json` or `csv`).
pub fn write_analysis(a: &Analysis, req: &AnalyzeRequest, out: &mut impl Write) -> Result<()> {
    match req.format {
        Format::Table => write_report(
            a,
            &Style {
                color: req.color,
                width: req.width,
                top: req.top.max(1),
            },
            out,
        )?,
        Format::Json => write_json(a, out)?,
        Format::Csv => {
            let name = req.table.as_deref().unwrap_or("users");
            let t = table(a, name).ok_or_else(|| RequestError::UnknownTable(name.to_string()))?;
            write_csv(&t, out)?;
        }
    }
    out.flush()?;
    Ok(())
}
