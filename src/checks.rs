//! `slurm-usage test`: is this machine ready to collect? One line per check, a tick, a cross
//! or a warning sign, and a hint for every cross and warning.
//!
//! Checks: sacct found (and its version), the Slurm version against the ones the real-SLURM
//! suite covers ([`COVERED_SLURM`]; any other warns), sinfo found, accounting enabled (sacct answers for
//! a one-minute window), the config valid, the data dir writable (a temp file is created and
//! removed), a dry collection of today (the real sacct call, parser and metrics; nothing is
//! written), and the purge margin (`sacctmgr show configuration`: PurgeJobAfter and
//! PurgeStepAfter against `lookback_days` and `max_recollect_days`).
//!
//! With `[collect] clusters`, each listed cluster gets its own lines: slurmdbd knows it and
//! its slurmctld is connected (`sacctmgr show cluster`: a name slurmdbd does not know makes
//! `sacct -M` answer with nothing and exit 0, so only this check catches a typo), and its
//! dry collection (`sacct -M NAME`). The purge settings are slurmdbd's, shared by every
//! cluster it holds, so the one purge line names them all.
//!
//! Exit status: 0 when no check failed (warnings do not fail), 1 otherwise. The purge check
//! warns rather than fails when sacctmgr cannot be asked, because many sites do not let
//! ordinary users run it.

use std::io::{self, Write};
use std::path::Path;
use std::time::Instant;

use chrono::Utc;

use crate::config::Config;
use crate::metrics::{build_jobs, Context};
use crate::sacct::command::{sacct_args, SacctProgram};
use crate::sacct::fields::FieldLayout;
use crate::sacct::parser::SacctOutput;
use crate::slurm::run::{query, tool_path, CommandError};
use crate::store::Archive;

/// A check's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    /// Works, but something deserves attention; does not fail the run.
    Warn,
    Fail,
}

/// One check's line.
#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    pub name: &'static str,
    pub verdict: Verdict,
    pub detail: String,
    /// What to do about it (for Warn and Fail).
    pub hint: Option<String>,
}

impl Check {
    fn pass(name: &'static str, detail: impl Into<String>) -> Check {
        Check {
            name,
            verdict: Verdict::Pass,
            detail: detail.into(),
            hint: None,
        }
    }
    fn warn(name: &'static str, detail: impl Into<String>, hint: impl Into<String>) -> Check {
        Check {
            name,
            verdict: Verdict::Warn,
            detail: detail.into(),
            hint: Some(hint.into()),
        }
    }
    fn fail(name: &'static str, detail: impl Into<String>, hint: impl Into<String>) -> Check {
        Check {
            name,
            verdict: Verdict::Fail,
            detail: detail.into(),
            hint: Some(hint.into()),
        }
    }
}

/// Writes the checks, one line each (plus an indented hint), and returns whether all passed.
pub fn write_checks(checks: &[Check], color: bool, out: &mut impl Write) -> io::Result<bool> {
    for c in checks {
        let (mark, code) = match c.verdict {
            Verdict::Pass => ("✓", "32"),
            Verdict::Warn => ("!", "33"),
            Verdict::Fail => ("✗", "31"),
        };
        let mark = if color {
            format!("\x1b[{code}m{mark}\x1b[0m")
        } else {
            mark.to_string()
        };
        writeln!(out, "{mark} {:<22} {}", c.name, c.detail)?;
        if let Some(h) = &c.hint {
            writeln!(out, "  {:<22} hint: {h}", "")?;
        }
    }
    let failed = checks.iter().filter(|c| c.verdict == Verdict::Fail).count();
    let warned = checks.iter().filter(|c| c.verdict == Verdict::Warn).count();
    writeln!(out)?;
    if failed == 0 {
        writeln!(
            out,
            "All {} checks passed{}.",
            checks.len(),
            if warned > 0 {
                format!(" ({warned} with a warning)")
            } else {
                String::new()
            }
        )?;
    } else {
        writeln!(out, "{failed} of {} checks failed.", checks.len())?;
    }
    Ok(failed == 0)
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or("").trim().to_string()
}

/// A multi-line error (a tool's stderr) on one line: its first and last lines, which say
/// who failed and why (`sacct exited with 1 ... fatal: Could not establish a configuration
/// source`).
fn one_line(msg: &str) -> String {
    let lines: Vec<&str> = msg
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    match lines.as_slice() {
        [] => String::new(),
        [one] => one.to_string(),
        [first, .., last] => format!("{first} ... {last}"),
    }
}

/// `sacct --version` / `sinfo --version`.
/// The version text on success.
fn version_check(name: &'static str, program: &Path, hint: &str) -> (Check, Option<String>) {
    match query(program, &["--version"]) {
        Ok(v) => {
            let c = Check::pass(name, format!("{} ({})", first_line(&v), program.display()));
            (c, Some(v))
        }
        Err(e @ CommandError::NotFound { .. }) => (Check::fail(name, e.to_string(), hint), None),
        Err(e) => (
            Check::fail(
                name,
                one_line(&e.to_string()),
                "it is installed but cannot reach Slurm: check SLURM_CONF, /etc/slurm/slurm.conf and munge",
            ),
            None,
        ),
    }
}

/// The Slurm releases (major.minor) whose real `sacct` the project's CI runs the real-SLURM
/// suite against (`tests/slurm/ci.sh`, `SLURM_RIG_VERSION`). Keep it equal to what CI runs.
pub const COVERED_SLURM: &[(u32, u32)] = &[(22, 5), (24, 11)];

/// The release in what `sacct --version` prints (`slurm-wlm 22.05.8`, `slurm 24.11.5`,
/// `slurm 23.02.7-1`): major, minor, and the micro level when there is one.
pub fn slurm_release(version: &str) -> Option<(u32, u32, Option<u32>)> {
    let word = version
        .split_whitespace()
        .find(|w| w.starts_with(|c: char| c.is_ascii_digit()))?;
    let mut parts = word.split(['.', '-']);
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    let micro = parts.next().and_then(|p| p.parse().ok());
    Some((major, minor, micro))
}

/// How a Slurm version stands against [`COVERED_SLURM`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SlurmCoverage {
    /// A release CI runs the real-SLURM suite on, as `major.minor` (`24.11`).
    Covered(String),
    /// A release it does not run on, as `major.minor`.
    NotCovered(String),
    /// `sacct --version` printed no version number.
    Unknown,
}

/// Classifies what `sacct --version` printed.
pub fn slurm_coverage(version: &str) -> SlurmCoverage {
    match slurm_release(version) {
        Some((major, minor, _)) => {
            let release = format!("{major}.{minor:02}");
            if COVERED_SLURM.contains(&(major, minor)) {
                SlurmCoverage::Covered(release)
            } else {
                SlurmCoverage::NotCovered(release)
            }
        }
        None => SlurmCoverage::Unknown,
    }
}

fn covered_list() -> String {
    COVERED_SLURM
        .iter()
        .map(|(major, minor)| format!("{major}.{minor:02}"))
        .collect::<Vec<_>>()
        .join(" and ")
}

/// The `Slurm version` line: which Slurm sacct belongs to, and a warning when the project's
/// real-SLURM suite does not run on that release (its sacct output may differ in ways no test
/// has seen).
pub fn slurm_version_check(version: &str) -> Check {
    const NAME: &str = "Slurm version";
    let shown = first_line(version);
    match slurm_coverage(version) {
        SlurmCoverage::Covered(r) => Check::pass(
            NAME,
            format!("{shown}: Slurm {r} is covered by the real-SLURM tests"),
        ),
        SlurmCoverage::NotCovered(r) => Check::warn(
            NAME,
            format!(
                "{shown}: Slurm {r} is not covered by the real-SLURM tests (covered: {})",
                covered_list()
            ),
            "collection usually works; check `slurm-usage job ID` against `sacct -j ID` for a few jobs, and report differences",
        ),
        SlurmCoverage::Unknown => Check::warn(
            NAME,
            format!("cannot tell the Slurm version from `sacct --version`: {shown:?}"),
            format!(
                "the real-SLURM tests cover Slurm {}; check `slurm-usage job ID` against `sacct -j ID`",
                covered_list()
            ),
        ),
    }
}

/// Accounting is on when sacct answers for a one-minute window.
fn accounting_check(sacct: &Path, scontrol: &Path) -> Check {
    let now = Utc::now();
    let fmt = "%Y-%m-%dT%H:%M:%S";
    let start = (now - chrono::Duration::minutes(1)).format(fmt).to_string();
    let end = now.format(fmt).to_string();
    let args = [
        "--allusers",
        "--noheader",
        "--parsable2",
        "--format=JobID,JobIDRaw",
        "--starttime",
        &start,
        "--endtime",
        &end,
    ];
    match query(sacct, &args) {
        Ok(out) => Check::pass(
            "accounting enabled",
            format!(
                "sacct answered ({} rows in the last minute)",
                out.lines().count()
            ),
        ),
        Err(e) => {
            let storage = query(scontrol, &["show", "config"]).ok().and_then(|c| {
                c.lines()
                    .find(|l| l.trim_start().starts_with("AccountingStorageType"))
                    .map(|l| l.split('=').nth(1).unwrap_or("").trim().to_string())
            });
            let hint = match storage.as_deref() {
                Some("accounting_storage/none") => "AccountingStorageType is accounting_storage/none: enable slurmdbd accounting in slurm.conf".to_string(),
                Some(s) => format!("AccountingStorageType = {s}; check that slurmdbd is running and reachable"),
                None => "check `scontrol show config | grep AccountingStorage` and that slurmdbd is running".to_string(),
            };
            Check::fail("accounting enabled", one_line(&e.to_string()), hint)
        }
    }
}

/// Whether the collector could write the archive ([`Archive::probe_writable`]).
pub fn writable_check(archive: &Archive) -> Check {
    let name = "data dir writable";
    let dir = archive.location();
    match archive.probe_writable() {
        Ok(w) if !w.missing => Check::pass(name, dir.display().to_string()),
        Ok(w) => Check::pass(
            name,
            format!(
                "{} (does not exist yet; the first `collect` creates it in {})",
                dir.display(),
                w.probed.display()
            ),
        ),
        Err((probed, e)) => Check::fail(
            name,
            format!("cannot write in {}: {e}", probed.display()),
            "run as the service user (`sudo -u slurm-usage slurm-usage test`), or fix the directory's owner and mode",
        ),
    }
}

/// Runs today's sacct through the collector's own argv, parser and metrics; writes nothing.
/// With `cluster`, for that cluster (`sacct --clusters`), and the detail says which.
fn dry_collection(config: &Config, cluster: Option<&str>) -> Check {
    let mut check = dry_collection_of(config, cluster);
    if let Some(c) = cluster {
        check.detail = format!("cluster {c}: {}", check.detail);
    }
    check
}

fn dry_collection_of(config: &Config, cluster: Option<&str>) -> Check {
    let name = "dry collection today";
    let zone = config.zone();
    let today = zone.today();
    let layout = FieldLayout::ours();
    let args = sacct_args(&layout, cluster, zone.day_start(today), zone.day_end(today));
    let t0 = Instant::now();
    let run = SacctProgram::new(&config.collect.sacct)
        .command(&args)
        .output_blocking(config.collect.sacct_timeout.0);
    match run {
        Ok(run) => {
            let out = SacctOutput::parse(run.stdout, &layout);
            let ctx = Context {
                sacct_version: Default::default(),
                processed_date: Utc::now().timestamp_micros(),
            };
            let built = build_jobs(&out, &layout, &ctx);
            let detail = format!(
                "{today}: {} sacct lines, {} jobs, {} unparsable lines in {:.1}s (nothing written)",
                out.lines,
                built.jobs.len(),
                out.malformed.len(),
                t0.elapsed().as_secs_f64()
            );
            if out.malformed.is_empty() {
                Check::pass(name, detail)
            } else {
                let first = &out.malformed[0];
                Check::warn(
                    name,
                    detail,
                    format!(
                        "line {}: {} (such lines are kept verbatim in the raw archive)",
                        first.line, first.reason
                    ),
                )
            }
        }
        Err(e) => Check::fail(
            name,
            one_line(&e.to_string()),
            "fix the checks above first; `sacct_timeout` under [collect] bounds the call",
        ),
    }
}

/// Judges one listed cluster against `sacctmgr -n -P show cluster
/// format=cluster,controlhost,controlport` output: slurmdbd must know it; a cluster whose
/// slurmctld is not connected (slurmdbd then lists it with no host and port 0) still has its
/// accounting, so that only warns.
pub fn cluster_check(sacctmgr_clusters: &str, cluster: &str) -> Check {
    let name = "cluster in slurmdbd";
    let rows: Vec<Vec<&str>> = sacctmgr_clusters
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.split('|').map(str::trim).collect())
        .collect();
    let Some(row) = rows.iter().find(|r| r[0] == cluster) else {
        let known: Vec<&str> = rows.iter().map(|r| r[0]).collect();
        return Check::fail(
            name,
            format!(
                "cluster {cluster}: slurmdbd does not know it (it knows: {}); `sacct -M {cluster}` answers with no jobs and exit 0",
                if known.is_empty() { "none".to_string() } else { known.join(", ") }
            ),
            "check the name in [collect] clusters against `sacctmgr list clusters` (sacct's Cluster column)",
        );
    };
    let host = row.get(1).copied().unwrap_or_default();
    let port = row.get(2).copied().unwrap_or_default();
    if host.is_empty() || port.is_empty() || port == "0" {
        Check::warn(
            name,
            format!("cluster {cluster}: known, but its slurmctld is not connected to slurmdbd (stopped, or cannot reach it)"),
            format!("sacct still answers from slurmdbd, so collection goes on; its running jobs keep the state of the stop until slurmctld is back, and `current`/`nodes --cluster {cluster}` fail until then"),
        )
    } else {
        Check::pass(
            name,
            format!("cluster {cluster}: slurmctld at {host}:{port} connected"),
        )
    }
}

/// A purge setting (`12months`, `30 days`, `720hours`, `NONE`) in days; `Ok(None)` is never.
pub fn parse_purge_days(v: &str) -> Result<Option<f64>, String> {
    let v = v.trim();
    if v.is_empty() || v.eq_ignore_ascii_case("none") || v == "(null)" {
        return Ok(None);
    }
    let digits: String = v.chars().take_while(char::is_ascii_digit).collect();
    let n: f64 = digits.parse().map_err(|_| format!("cannot read {v:?}"))?;
    let unit = v[digits.len()..].trim().to_ascii_lowercase();
    let days = if unit.starts_with("month") {
        // The shortest month: the margin is never overstated.
        n * 28.0
    } else if unit.starts_with("day") {
        n
    } else if unit.starts_with("hour") {
        n / 24.0
    } else if unit.starts_with("min") {
        n / 1440.0
    } else if unit.is_empty() {
        // slurmdbd.conf: a bare number is months.
        n * 28.0
    } else {
        return Err(format!("unknown unit in {v:?}"));
    };
    Ok(Some(days))
}

/// Judges `sacctmgr show configuration` output against the collector's settings.
pub fn purge_check(sacctmgr_output: &str, lookback_days: u32, max_recollect_days: u32) -> Check {
    let name = "purge margin";
    let get = |key: &str| {
        sacctmgr_output.lines().find_map(|l| {
            let (k, v) = l.split_once('=').or_else(|| l.split_once('|'))?;
            (k.trim() == key).then(|| v.trim().to_string())
        })
    };
    let mut shortest: Option<(f64, &str, String)> = None;
    let mut seen = Vec::new();
    for key in ["PurgeJobAfter", "PurgeStepAfter"] {
        let Some(v) = get(key) else { continue };
        seen.push(format!("{key}={v}"));
        match parse_purge_days(&v) {
            Ok(Some(d)) if shortest.as_ref().is_none_or(|s| d < s.0) => {
                shortest = Some((d, key, v))
            }
            Ok(_) => {}
            Err(e) => {
                return Check::warn(
                    name,
                    e,
                    "check PurgeJobAfter/PurgeStepAfter in slurmdbd.conf by hand",
                )
            }
        }
    }
    if seen.is_empty() {
        return Check::warn(
            name,
            "sacctmgr printed no PurgeJobAfter/PurgeStepAfter",
            "check the purge settings in slurmdbd.conf by hand",
        );
    }
    let Some((days, key, value)) = shortest else {
        return Check::pass(name, format!("{}: slurmdbd never purges", seen.join(", ")));
    };
    // The daily cycle needs a job's records for `lookback_days + 1` days at least; an
    // incomplete date is re-queried up to `max_recollect_days` old.
    let needed = f64::from(lookback_days + 1);
    let margin = days - needed;
    let detail = format!("{key}={value} (about {days:.0} days), lookback {lookback_days} days, re-collection up to {max_recollect_days} days");
    if margin <= 0.0 {
        Check::fail(
            name,
            detail,
            format!("slurmdbd purges job records before the daily collection has seen them settle; raise {key} well above {needed:.0} days"),
        )
    } else if days < f64::from(max_recollect_days) {
        Check::warn(
            name,
            detail,
            format!("dates older than {days:.0} days cannot be re-collected (sacct no longer has their steps): set max_recollect_days under [collect] to at most {:.0}", days.floor()),
        )
    } else if margin < 7.0 {
        Check::warn(
            name,
            detail,
            format!("a collector outage of more than {margin:.0} days loses job data for good; raise {key} or watch the collector closely"),
        )
    } else {
        Check::pass(name, format!("{detail}: {margin:.0} days to spare"))
    }
}

/// Runs every check. `config` is the loaded config or why it could not be loaded (the other
/// checks then run with the defaults).
pub fn run_checks(config: Result<&Config, String>, archive: &Archive) -> Vec<Check> {
    let mut checks = Vec::new();
    let defaults = Config::default();
    let cfg = match &config {
        Ok(c) => {
            let src = c.source.as_ref().map_or(
                "built-in defaults (no config file found)".to_string(),
                |p| p.display().to_string(),
            );
            checks.push(Check::pass("config valid", src));
            *c
        }
        Err(e) => {
            checks.push(Check::fail(
                "config valid",
                e.clone(),
                "`slurm-usage config check FILE` shows the line to fix",
            ));
            &defaults
        }
    };
    let sacct = cfg.collect.sacct.clone();
    let sinfo = tool_path(&sacct, "sinfo");
    let scontrol = tool_path(&sacct, "scontrol");
    let sacctmgr = tool_path(&sacct, "sacctmgr");
    let (c, sacct_version) = version_check(
        "sacct found",
        &sacct,
        "install the Slurm client tools, or set `sacct = \"/path/to/sacct\"` under [collect]",
    );
    checks.push(c);
    let sacct_ok = sacct_version.is_some();
    if let Some(v) = &sacct_version {
        checks.push(slurm_version_check(v));
    }
    let (c, _) = version_check(
        "sinfo found",
        &sinfo,
        "install the Slurm client tools (analyze uses sinfo for node CPU/GPU counts)",
    );
    checks.push(c);
    if sacct_ok {
        checks.push(accounting_check(&sacct, &scontrol));
    } else {
        checks.push(Check::fail(
            "accounting enabled",
            "not checked: sacct does not work",
            "fix `sacct found` first",
        ));
    }
    checks.push(writable_check(archive));
    if sacct_ok && cfg.collect.clusters.is_empty() {
        checks.push(dry_collection(cfg, None));
    } else if sacct_ok {
        // Every listed cluster: slurmdbd knows it, and sacct answers for it.
        let known = query(
            &sacctmgr,
            &[
                "-n",
                "-P",
                "show",
                "cluster",
                "format=cluster,controlhost,controlport",
            ],
        );
        for c in &cfg.collect.clusters {
            checks.push(match &known {
                Ok(out) => cluster_check(out, c),
                Err(e) => Check::warn(
                    "cluster in slurmdbd",
                    format!("cluster {c}: cannot ask sacctmgr: {}", one_line(&e.to_string())),
                    format!("`sacctmgr list clusters` must list {c}: sacct -M answers a name it does not know with no jobs"),
                ),
            });
            checks.push(dry_collection(cfg, Some(c)));
        }
    } else {
        checks.push(Check::fail(
            "dry collection today",
            "not run: sacct does not work",
            "fix `sacct found` first",
        ));
    }
    checks.push(match query(&sacctmgr, &["-n", "-P", "show", "configuration"]) {
        Ok(out) => {
            let mut c = purge_check(&out, cfg.collect.lookback_days, cfg.collect.max_recollect_days);
            if !cfg.collect.clusters.is_empty() {
                // One slurmdbd, one purge setting: the margin is the same for each cluster.
                c.detail = format!("clusters {}: {}", cfg.collect.clusters.join(", "), c.detail);
            }
            c
        }
        Err(e) => Check::warn(
            "purge margin",
            format!("cannot ask sacctmgr: {}", one_line(&e.to_string())),
            "compare PurgeJobAfter/PurgeStepAfter in slurmdbd.conf with lookback_days and max_recollect_days by hand",
        ),
    });
    checks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn purge_values() {
        assert_eq!(parse_purge_days("NONE"), Ok(None));
        assert_eq!(parse_purge_days("12months"), Ok(Some(336.0)));
        assert_eq!(parse_purge_days("30 days"), Ok(Some(30.0)));
        assert_eq!(parse_purge_days("720hours"), Ok(Some(30.0)));
        assert!(parse_purge_days("soon").is_err());
    }

    #[test]
    fn real_sacctmgr_capture_never_purges() {
        let text = include_str!("../tests/fixtures/sacctmgr-configuration.txt");
        let c = purge_check(text, 2, 60);
        assert_eq!(c.verdict, Verdict::Pass, "{c:?}");
        assert!(c.detail.contains("never purges"), "{c:?}");
    }

    #[test]
    fn purge_margins() {
        let conf = |job: &str, step: &str| {
            format!("PurgeJobAfter          = {job}\nPurgeStepAfter         = {step}\n")
        };
        assert_eq!(
            purge_check(&conf("12months", "NONE"), 2, 60).verdict,
            Verdict::Pass
        );
        // Steps purged after 2 days: the next day's collection is the last chance.
        assert_eq!(
            purge_check(&conf("NONE", "2days"), 2, 60).verdict,
            Verdict::Fail
        );
        let c = purge_check(&conf("30days", "30days"), 2, 60);
        assert_eq!(c.verdict, Verdict::Warn);
        assert!(c.hint.unwrap().contains("max_recollect_days"));
        assert_eq!(
            purge_check(&conf("8days", "8days"), 2, 7).verdict,
            Verdict::Warn
        );
        assert_eq!(purge_check("", 2, 60).verdict, Verdict::Warn);
    }

    #[test]
    fn listed_clusters_against_slurmdbd() {
        // Real `sacctmgr -n -P show cluster format=cluster,controlhost,controlport` (22.05),
        // beta's slurmctld stopped.
        let text = "beta||0\nrig|127.0.0.1|6817\n";
        let c = cluster_check(text, "rig");
        assert_eq!(c.verdict, Verdict::Pass, "{c:?}");
        assert!(c.detail.contains("127.0.0.1:6817"), "{c:?}");
        let c = cluster_check(text, "beta");
        assert_eq!(c.verdict, Verdict::Warn, "{c:?}");
        assert!(c.detail.contains("not connected"), "{c:?}");
        let c = cluster_check(text, "gamma");
        assert_eq!(c.verdict, Verdict::Fail, "{c:?}");
        assert!(c.detail.contains("knows: beta, rig"), "{c:?}");
        assert_eq!(cluster_check("", "rig").verdict, Verdict::Fail);
    }

    #[test]
    fn writable_dir_and_missing_dir() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            writable_check(&Archive::local(dir.path())).verdict,
            Verdict::Pass
        );
        let c = writable_check(&Archive::local(dir.path().join("a/b")));
        assert_eq!(c.verdict, Verdict::Pass);
        assert!(c.detail.contains("does not exist yet"));
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            0,
            "probe removed"
        );
    }

    #[test]
    fn slurm_versions_as_sacct_prints_them() {
        assert_eq!(slurm_release("slurm-wlm 22.05.8"), Some((22, 5, Some(8))));
        assert_eq!(slurm_release("slurm 24.11.5\n"), Some((24, 11, Some(5))));
        assert_eq!(slurm_release("slurm 23.02.7-1"), Some((23, 2, Some(7))));
        assert_eq!(slurm_release("slurm 25.05"), Some((25, 5, None)));
        assert_eq!(slurm_release("slurm 24.11.0-0rc1"), Some((24, 11, Some(0))));
        assert_eq!(slurm_release("slurm"), None);
        assert_eq!(slurm_release(""), None);
        assert_eq!(slurm_release("sacct version unknown"), None);
    }

    #[test]
    fn covered_slurm_versions_pass_others_warn() {
        use SlurmCoverage::*;
        assert_eq!(slurm_coverage("slurm-wlm 22.05.8"), Covered("22.05".into()));
        assert_eq!(slurm_coverage("slurm 22.05.11"), Covered("22.05".into()));
        assert_eq!(slurm_coverage("slurm 24.11.5"), Covered("24.11".into()));
        assert_eq!(slurm_coverage("slurm 23.11.10"), NotCovered("23.11".into()));
        assert_eq!(slurm_coverage("slurm 24.05.1"), NotCovered("24.05".into()));
        assert_eq!(slurm_coverage("slurm 25.05.0"), NotCovered("25.05".into()));
        assert_eq!(slurm_coverage("slurm 2.6.0"), NotCovered("2.06".into()));
        assert_eq!(slurm_coverage("what?"), Unknown);

        let c = slurm_version_check("slurm 24.11.5");
        assert_eq!(c.verdict, Verdict::Pass, "{c:?}");
        assert!(c.detail.contains("slurm 24.11.5"), "{c:?}");
        let c = slurm_version_check("slurm 23.11.10");
        assert_eq!(c.verdict, Verdict::Warn, "{c:?}");
        assert!(
            c.detail.contains("23.11") && c.detail.contains("covered: 22.05 and 24.11"),
            "{c:?}"
        );
        assert!(c.hint.is_some());
        assert_eq!(slurm_version_check("").verdict, Verdict::Warn);
    }

    #[test]
    fn lines_have_marks_and_hints() {
        let checks = vec![Check::pass("a", "ok"), Check::fail("b", "no", "do x")];
        let mut out = Vec::new();
        assert!(!write_checks(&checks, false, &mut out).unwrap());
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("✓ a"), "{text}");
        assert!(text.contains("✗ b"), "{text}");
        assert!(text.contains("hint: do x"), "{text}");
    }
}
