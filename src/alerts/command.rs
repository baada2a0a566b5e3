//! `slurm-usage alerts [--days N] [--user U] [--send]` and the daemon's alerts round.
//!
//! A round: read the window's processed partitions (one record per job: (cluster, job id),
//! the newest `processed_date` winning, ties to the later file), judge each user's jobs
//! ([`super::rules`]), compose one mail per user with findings and one summary per group
//! contact whose group has any ([`super::mail`]). A dry run prints them. `--send` takes the
//! alerts lock, skips whoever was mailed within `[alerts] every`, delivers the rest one by
//! one and records each success at once ([`super::throttle`]). A mail that fails stays due
//! and goes in the next round.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;

use anyhow::{Context as _, Result};
use chrono::{DateTime, Days, NaiveDate, Utc};
use parquet::arrow::ProjectionMask;
use tracing::{info, warn};

use super::deliver::Transport;
use super::mail::{group_mail, user_mail, Mail, UserReport, Window};
use super::rules::judge;
use super::throttle::Throttle;
use crate::config::{AlertsConfig, Config};
use crate::model::{self, ProcessedJob};
use crate::store::{Archive, Kind};
use crate::zone::Zone;

/// The processed columns a round reads; nothing else (job names and the like) is decoded.
pub const ALERT_COLUMNS: &[&str] = &[
    "job_id",
    "cluster",
    "user",
    "state",
    "is_complete",
    "elapsed_seconds",
    "alloc_cpus",
    "req_mem_mb",
    "alloc_mem_mb",
    "max_rss_mb",
    "cpu_efficiency",
    "cpu_hours_wasted",
    "memory_gb_hours_wasted",
    "cpu_hours_reserved",
    "timelimit_seconds",
    "processed_date",
    // The idle-GPU rule (absent from files before schema version 2: read as null).
    "alloc_gpus",
    "gpu_hours_reserved",
    "gpu_utilization",
    "gpu_hours_wasted",
];

/// What a round works on.
#[derive(Debug, Clone, Default)]
pub struct AlertsRequest {
    /// Today and this many days before it; `None`: `[alerts] days`.
    pub days: Option<u32>,
    /// Only this user's mail (no group summaries).
    pub user: Option<String>,
}

/// Everything a round would send.
#[derive(Debug, Clone)]
pub struct Plan {
    pub window: Window,
    /// Every user with jobs in the window (not excluded), findings or not.
    pub users: Vec<UserReport>,
    pub mails: Vec<Mail>,
    /// Partitions that could not be read (skipped), with the reason.
    pub unreadable: Vec<String>,
}

/// What a sending round did.
#[derive(Debug, Clone, Default)]
pub struct RoundReport {
    pub sent: Vec<String>,
    /// Mailed within the period: (key, last mail).
    pub throttled: Vec<(String, DateTime<Utc>)>,
    /// (key, error) of each mail that failed.
    pub failed: Vec<(String, String)>,
    /// Not tried because the server went away earlier in the round.
    pub pending: Vec<String>,
}

impl RoundReport {
    /// One line for the journal or the terminal.
    pub fn line(&self) -> String {
        let mut s = format!(
            "alerts: {} sent, {} held back by the throttle",
            self.sent.len(),
            self.throttled.len()
        );
        if !self.failed.is_empty() || !self.pending.is_empty() {
            s.push_str(&format!(
                ", {} failed and {} not tried (retried next round)",
                self.failed.len(),
                self.pending.len()
            ));
        }
        s
    }
}

/// The `[alerts]` section, or an error that says how to add one.
pub fn alerts_config(config: &Config) -> Result<&AlertsConfig> {
    config.alerts.as_ref().with_context(|| {
        format!(
            "no [alerts] in {} (hint: add [alerts] with smtp (or sendmail), from and domain; see docs/alerts.md)",
            config.source.as_ref().map_or_else(
                || "the config (built-in defaults)".to_string(),
                |p| p.display().to_string()
            )
        )
    })
}

/// Reads the window and composes the mails (no lock, nothing written).
pub fn plan(
    config: &Config,
    archive: &Archive,
    req: &AlertsRequest,
    today: NaiveDate,
) -> Result<Plan> {
    let ac = alerts_config(config)?;
    anyhow::ensure!(
        archive.exists(),
        "data dir {} does not exist (hint: run `slurm-usage collect`, or pass --data-dir)",
        archive.location().display()
    );
    let days = req.days.unwrap_or(ac.days);
    let first = today
        .checked_sub_days(Days::new(days.into()))
        .unwrap_or(today);
    let window = Window { first, last: today };
    let zone = config.zone();
    // Every cluster's directory with `[collect] clusters` (and an older top level).
    let archives = archive
        .local_set(None)
        .with_context(|| format!("cannot list {}", archive.location().display()))?;
    let (jobs, unreadable) = read_jobs(&archives, first, today, &zone)?;
    let mut by_user: BTreeMap<String, Vec<ProcessedJob>> = BTreeMap::new();
    for j in jobs {
        if ac.exclude.iter().any(|u| *u == j.user.as_str()) {
            continue;
        }
        if req.user.as_deref().is_some_and(|u| u != j.user.as_str()) {
            continue;
        }
        by_user.entry(j.user.to_string()).or_default().push(j);
    }
    let users: Vec<UserReport> = by_user
        .iter()
        .map(|(user, jobs)| UserReport {
            user: user.clone(),
            group: config.group_of(user).to_string(),
            jobs: jobs.len(),
            cpu_hours: jobs.iter().map(|j| j.cpu_hours_reserved).sum(),
            findings: judge(jobs, &ac.rules),
        })
        .collect();
    let mut mails: Vec<Mail> = users
        .iter()
        .filter(|u| !u.findings.is_empty())
        .map(|u| user_mail(u, &ac.address_of(&u.user), &ac.from, window))
        .collect();
    if req.user.is_none() {
        for (group, contact) in &ac.group_contacts {
            let members: Vec<UserReport> = users
                .iter()
                .filter(|u| u.group == *group)
                .cloned()
                .collect();
            if members.iter().any(|u| !u.findings.is_empty()) {
                mails.push(group_mail(group, &members, contact, &ac.from, window));
            }
        }
    }
    Ok(Plan {
        window,
        users,
        mails,
        unreadable,
    })
}

/// The jobs of `first..=last` in `archives` (one per cluster directory), one record per
/// (cluster, job id): the newest `processed_date` wins, a tie goes to the later file.
/// Unreadable partitions are skipped and named; nothing is moved or changed (a reader takes no lock).
fn read_jobs(
    archives: &[Archive],
    first: NaiveDate,
    last: NaiveDate,
    zone: &Zone,
) -> Result<(Vec<ProcessedJob>, Vec<String>)> {
    let mut best: HashMap<(String, String), ProcessedJob> = HashMap::new();
    let mut unreadable = Vec::new();
    for archive in archives {
        let dates = archive.dates(Kind::Processed).with_context(|| {
            format!("cannot list {}", archive.prefix(Kind::Processed).display())
        })?;
        for date in dates.into_iter().filter(|d| (first..=last).contains(d)) {
            match read_partition(archive, date, zone) {
                Ok(jobs) => {
                    for j in jobs {
                        let key = (j.cluster.to_string(), j.job_id.to_string());
                        match best.get(&key) {
                            Some(old) if old.processed_date > j.processed_date => {}
                            _ => {
                                best.insert(key, j);
                            }
                        }
                    }
                }
                Err(e) => unreadable.push(format!("{e:#}")),
            }
        }
    }
    let mut jobs: Vec<ProcessedJob> = best.into_values().collect();
    jobs.sort_by(|a, b| (&a.cluster, &a.job_id).cmp(&(&b.cluster, &b.job_id)));
    Ok((jobs, unreadable))
}

fn read_partition(archive: &Archive, date: NaiveDate, zone: &Zone) -> Result<Vec<ProcessedJob>> {
    let Some(part) = archive.open(Kind::Processed, date)? else {
        return Ok(Vec::new());
    };
    let name = part.name().display().to_string();
    let builder = part
        .reader()
        .with_context(|| format!("cannot read {name}"))?;
    let mask = ProjectionMask::columns(builder.parquet_schema(), ALERT_COLUMNS.iter().copied());
    let reader = builder
        .with_projection(mask)
        .build()
        .with_context(|| format!("cannot read {name}"))?;
    let mut jobs = Vec::new();
    for batch in reader {
        let batch = batch.with_context(|| format!("cannot read {name}"))?;
        jobs.extend(
            model::from_record_batch(&batch, zone)
                .with_context(|| format!("cannot read {name}"))?,
        );
    }
    Ok(jobs)
}

/// Prints what a round would send (the dry run), noting who the throttle holds back.
pub fn print_plan(
    plan: &Plan,
    throttle: &Throttle,
    ac: &AlertsConfig,
    now: DateTime<Utc>,
    out: &mut impl Write,
) -> Result<()> {
    let n = plan.mails.len();
    let mut held = 0;
    for (i, m) in plan.mails.iter().enumerate() {
        writeln!(out, "=== mail {} of {n}: {} -> {} ===", i + 1, m.key, m.to)?;
        if let Some(last) = throttle.blocked_since(&m.key, now, ac.every.0) {
            held += 1;
            writeln!(
                out,
                "(not due: last mailed {}, at most one mail every {})",
                last.format("%Y-%m-%d %H:%M UTC"),
                ac.every
            )?;
        }
        writeln!(
            out,
            "From: {}\nTo: {}\nSubject: {}\n",
            ac.from, m.to, m.subject
        )?;
        writeln!(out, "{}", m.text)?;
    }
    let quiet = plan.users.iter().filter(|u| u.findings.is_empty()).count();
    writeln!(
        out,
        "Dry run, {} to {}: {n} mails ({} due now, {held} held back by the throttle); {quiet} of {} users with jobs have nothing to change. Nothing was sent: add --send to send.",
        plan.window.first,
        plan.window.last,
        n - held,
        plan.users.len()
    )?;
    Ok(())
}

/// Sends what `plan` holds, under the alerts lock, skipping whoever the throttle holds
/// back and recording each success as it happens. Blocking.
pub fn send(
    archive: &Archive,
    ac: &AlertsConfig,
    plan: &Plan,
    transport: &Transport,
    now: impl Fn() -> DateTime<Utc>,
) -> Result<RoundReport> {
    let _lock = archive.try_lock_alerts()?;
    // Loaded under the lock: another sender that just finished has saved its record.
    let mut throttle = Throttle::load(archive)?;
    let mut report = RoundReport::default();
    let mut stopped = false;
    for m in &plan.mails {
        if stopped {
            report.pending.push(m.key.clone());
            continue;
        }
        if let Some(last) = throttle.blocked_since(&m.key, now(), ac.every.0) {
            report.throttled.push((m.key.clone(), last));
            continue;
        }
        match transport.send(m, &ac.from) {
            Ok(()) => {
                info!(source = "alerts", to = %m.to, "sent {}", m.key);
                // If the record cannot be saved, stop: sending on would mail people twice.
                throttle.record(archive, &m.key, now())?;
                report.sent.push(m.key.clone());
            }
            Err(e) => {
                warn!(source = "alerts", to = %m.to, "{} not sent, retried next round: {e}", m.key);
                stopped = e.stops_round();
                report.failed.push((m.key.clone(), e.to_string()));
            }
        }
    }
    Ok(report)
}

/// One round as the daemon runs it: plan the configured window, send what is due.
pub fn round(config: &Config) -> Result<RoundReport> {
    let ac = alerts_config(config)?;
    let archive = Archive::of(config);
    let plan = plan(
        config,
        &archive,
        &AlertsRequest::default(),
        config.zone().today(),
    )?;
    for u in &plan.unreadable {
        warn!(source = "alerts", "skipped {u}");
    }
    let transport = Transport::from_config(ac)?;
    send(&archive, ac, &plan, &transport, Utc::now)
}

/// `alerts [--days N] [--user U] [--send]`. Exit 1 when a mail failed (it is retried by the
/// next run), 75 when another sender holds the alerts lock.
pub fn alerts_cmd(
    config: &Config,
    archive: &Archive,
    req: &AlertsRequest,
    send_now: bool,
) -> Result<std::process::ExitCode> {
    let ac = alerts_config(config)?;
    let plan = plan(config, archive, req, config.zone().today())?;
    for u in &plan.unreadable {
        eprintln!("slurm-usage: warning: skipped {u}");
    }
    let mut out = std::io::stdout().lock();
    if !send_now {
        let throttle = Throttle::load(archive)?;
        print_plan(&plan, &throttle, ac, Utc::now(), &mut out)?;
        return Ok(std::process::ExitCode::SUCCESS);
    }
    let transport = Transport::from_config(ac)?;
    let report = send(archive, ac, &plan, &transport, Utc::now)?;
    for key in &report.sent {
        writeln!(out, "sent: {key}")?;
    }
    for (key, last) in &report.throttled {
        writeln!(
            out,
            "not due: {key} (last mailed {}, at most one mail every {})",
            last.format("%Y-%m-%d %H:%M UTC"),
            ac.every
        )?;
    }
    for (key, e) in &report.failed {
        writeln!(out, "failed: {key}: {e}")?;
    }
    for key in &report.pending {
        writeln!(out, "not tried: {key}")?;
    }
    writeln!(out, "{} via {}", report.line(), transport.describe())?;
    Ok(if report.failed.is_empty() && report.pending.is_empty() {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::FAILURE
    })
}
