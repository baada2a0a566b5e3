//! `slurm-usage lake sync` and `lake status`, and the upload round that follows `collect`.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use anyhow::{Context as _, Result};
use chrono::{DateTime, Utc};

use super::{sync, Lake, LakeHealth, LakeState, SyncOptions, SyncReport};
use crate::config::{Config, LakeConfig};
use crate::runtime::for_command as runtime;
use crate::store::Archive;

/// The `[lake]` section, or an error that says how to add one.
fn lake_config(config: &Config) -> Result<&LakeConfig> {
    config.lake.as_ref().with_context(|| {
        format!(
            "no [lake] in {} (hint: add [lake] url = \"s3://bucket/prefix\"; see docs/lake.md)",
            config.source.as_ref().map_or_else(
                || "the config (built-in defaults)".to_string(),
                |p| p.display().to_string()
            )
        )
    })
}

/// The (config, archive) pairs a lake command works on ([`super::targets`]), or an error
/// when `--cluster` names no listed cluster.
fn checked_targets(config: &Config, only: Option<&str>) -> Result<Vec<(Config, Archive)>> {
    if let Some(name) = only {
        let listed = &config.collect.clusters;
        anyhow::ensure!(
            listed.iter().any(|c| c == name),
            "--cluster {name}: {} (the lake commands take --cluster with [collect] clusters)",
            if listed.is_empty() {
                "no [collect] clusters are configured".to_string()
            } else {
                format!("not in [collect] clusters ({})", listed.join(", "))
            }
        );
    }
    Ok(super::targets(config, only))
}

/// "cluster NAME: " before a line when there are several clusters, nothing otherwise.
fn label(targets: usize, config: &Config) -> String {
    match config.lake.as_ref().and_then(|l| l.cluster.as_deref()) {
        Some(name) if targets > 1 => format!("cluster {name}: "),
        _ => String::new(),
    }
}

/// `lake sync [--dry-run] [--cluster NAME]`: uploads every local partition the lake lacks
/// or holds in another version, of every listed cluster. Exit 0 when nothing is left
/// pending, 1 otherwise; one cluster failing never stops the others.
pub fn lake_sync(
    config: &Config,
    only: Option<&str>,
    dry_run: bool,
    rewrite: bool,
) -> Result<ExitCode> {
    lake_config(config)?;
    let targets = checked_targets(config, only)?;
    let runtime = runtime()?;
    let mut out = std::io::stdout().lock();
    let (mut errors, mut pending) = (Vec::new(), false);
    for (config, archive) in &targets {
        let label = label(targets.len(), config);
        if !archive.exists() {
            let e = format!(
                "{label}data dir {} does not exist (hint: run `slurm-usage collect` first, or pass --data-dir)",
                archive.location().display()
            );
            if targets.len() == 1 {
                anyhow::bail!(e);
            }
            writeln!(out, "{e}")?;
            continue;
        }
        let lake = Lake::open(lake_config(config)?)?;
        let opts = SyncOptions {
            dry_run,
            rewrite,
            verify: true,
            progress: std::io::stderr().is_terminal(),
        };
        let report = runtime.block_on(sync(&lake, archive, opts));
        if dry_run {
            writeln!(
                out,
                "lake: {} (cluster {}): {} partitions would be uploaded",
                report.url,
                report.cluster,
                report.pending.len()
            )?;
            for (kind, date) in &report.pending {
                writeln!(out, "  {}/{date}", kind.dir())?;
            }
        } else {
            writeln!(out, "{label}{}", report.line())?;
            pending |= !report.pending.is_empty();
        }
        if let Some(e) = &report.error {
            errors.push(format!("{label}{e}"));
        }
    }
    out.flush()?;
    if !errors.is_empty() {
        anyhow::bail!("{}", errors.join("\n"));
    }
    Ok(if pending {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// `lake status [--json] [--cluster NAME]`: per cluster, what is pending (from the data
/// dir alone), when the last upload was, and who holds the cluster's lease (one request
/// to the lake each). JSON: one object, or an array of them with `[collect] clusters`.
pub fn lake_status(config: &Config, only: Option<&str>, json: bool) -> Result<ExitCode> {
    lake_config(config)?;
    let targets = checked_targets(config, only)?;
    let runtime = runtime()?;
    let mut out = std::io::stdout().lock();
    let mut values = Vec::new();
    for (i, (config, archive)) in targets.iter().enumerate() {
        let status = LakeStatus::read(&runtime, config, archive)?;
        if json {
            values.push(status.json());
        } else {
            if i > 0 {
                writeln!(out)?;
            }
            status.write(&mut out)?;
        }
    }
    if json {
        let v = match (config.collect.clusters.is_empty(), values.len()) {
            (true, 1) => values.pop().expect("one"),
            _ => serde_json::Value::Array(values),
        };
        writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// One cluster's lake status.
struct LakeStatus {
    url: String,
    cluster: String,
    state: LakeState,
    pending: Vec<(crate::store::Kind, chrono::NaiveDate)>,
    lease: Result<Option<super::lease::LeaseDoc>, String>,
}

impl LakeStatus {
    fn read(
        runtime: &tokio::runtime::Runtime,
        config: &Config,
        archive: &Archive,
    ) -> Result<LakeStatus> {
        let lake = Lake::open(lake_config(config)?)?;
        let cluster = lake.cluster(archive).unwrap_or_default();
        let state = LakeState::load(archive, &lake.url.text, &cluster, &lake.settings());
        let pending = state.pending(archive).unwrap_or_default();
        let lease = if cluster.is_empty() {
            Ok(None)
        } else {
            runtime
                .block_on(lake.lease(&cluster))
                .map_err(|e| e.to_string())
        };
        Ok(LakeStatus {
            url: lake.url.text.clone(),
            cluster,
            state,
            pending,
            lease,
        })
    }

    fn json(&self) -> serde_json::Value {
        let (state, lease) = (&self.state, &self.lease);
        let new = self
            .pending
            .iter()
            .filter(|p| !state.uploaded.contains_key(&super::state::key(p.0, p.1)))
            .count();
        serde_json::json!({
            "url": self.url,
            "cluster": self.cluster,
            "partitions": state.uploaded.len() + new,
            "uploaded": state.uploaded.len(),
            "pending": self.pending.iter().map(|(k, d)| serde_json::json!({"kind": k.dir(), "date": d.to_string()})).collect::<Vec<_>>(),
            "last_upload": state.last_upload,
            "holder": lease.as_ref().ok().and_then(|l| l.as_ref().map(|l| l.holder.clone())),
            "lease_expires": lease.as_ref().ok().and_then(|l| l.as_ref().map(|l| l.expires.clone())),
            "lease_error": lease.as_ref().err(),
        })
    }

    fn write(&self, out: &mut impl Write) -> std::io::Result<()> {
        writeln!(out, "Lake:            {}", self.url)?;
        writeln!(
            out,
            "Cluster:         {}",
            if self.cluster.is_empty() {
                "(not known yet: no job names it; set [lake] cluster)"
            } else {
                &self.cluster
            }
        )?;
        writeln!(
            out,
            "Uploaded:        {} partitions",
            self.state.uploaded.len()
        )?;
        writeln!(out, "Pending:         {} partitions", self.pending.len())?;
        for (kind, date) in self.pending.iter().take(20) {
            writeln!(out, "                 {}/{date}", kind.dir())?;
        }
        if self.pending.len() > 20 {
            writeln!(
                out,
                "                 ... and {} more",
                self.pending.len() - 20
            )?;
        }
        writeln!(
            out,
            "Last upload:     {}",
            describe_unix(self.state.last_upload)
        )?;
        match &self.lease {
            Ok(Some(l)) => writeln!(
                out,
                "Lease:           held by {} until {}",
                l.holder, l.expires
            ),
            Ok(None) => writeln!(out, "Lease:           none (taken by the first upload)"),
            Err(e) => writeln!(out, "Lease:           unknown: {e}"),
        }
    }
}

/// `2026-12-07 03:00:00 UTC` or `never`.
pub fn describe_unix(t: Option<i64>) -> String {
    t.and_then(|t| DateTime::<Utc>::from_timestamp(t, 0))
        .map_or_else(
            || "never".to_string(),
            |t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
        )
}

/// The upload round after a `collect` (or a daemon cycle): never an error for the caller;
/// what did not go up is in the report and stays pending.
pub async fn upload_after_collect(config: &Config, archive: &Archive) -> Option<SyncReport> {
    let cfg = config.lake.as_ref()?;
    let lake = match Lake::open(cfg) {
        Ok(l) => l,
        Err(e) => {
            return Some(SyncReport {
                url: cfg.url.clone(),
                error: Some(e.to_string()),
                ..SyncReport::default()
            })
        }
    };
    let mut report = sync(&lake, archive, SyncOptions::default()).await;
    if report.error.is_some() && report.pending.is_empty() {
        // Stopped before it listed anything (lock, cluster): count from the data dir.
        let cluster = lake.cluster(archive).unwrap_or_default();
        report.pending = LakeState::load(archive, &lake.url.text, &cluster, &lake.settings())
            .pending(archive)
            .unwrap_or_default();
    }
    Some(report)
}

/// The lake's health for `status`: from the data dir alone, no request.
pub fn health(config: &Config, archive: &Archive) -> Option<LakeHealth> {
    config.lake.as_ref().map(|cfg| super::health(cfg, archive))
}

/// The lake's health of every target ([`super::targets`]), for the daemon's gauges: one per
/// listed cluster. From the data dirs alone, no request.
pub fn health_all(config: &Config) -> Vec<LakeHealth> {
    super::targets(config, None)
        .iter()
        .filter_map(|(config, archive)| health(config, archive))
        .collect()
}

/// `lake whois PSEUDONYM`: the name behind a pseudonym, found by pseudonymising every
/// distinct name of its kind in the local archive with the key (newest dates first).
pub fn lake_whois(config: &Config, only: Option<&str>, pseudonym: &str) -> Result<ExitCode> {
    use crate::store::Kind;
    let lake = Lake::open(lake_config(config)?)?;
    let targets = checked_targets(config, only)?;
    let (kind, _) = pseudonym.split_once('-').with_context(|| {
        format!("{pseudonym:?} is not a pseudonym (they look like user-3fa4c2d19e0b7a55)")
    })?;
    // The column that holds names of this kind, and the partitions it is in.
    let (part_kind, column) = match kind {
        "user" => (Kind::Processed, "user"),
        "account" => (Kind::Processed, "account"),
        "group" => (Kind::Processed, "group"),
        "uid" => (Kind::Raw, "UID"),
        "gid" => (Kind::Raw, "GID"),
        _ => anyhow::bail!(
            "{pseudonym:?}: unknown kind {kind:?} (pseudonyms start with user-, uid-, account-, group- or gid-)"
        ),
    };
    let key = lake.key()?;
    // One key for the whole lake: a name has the same pseudonym in every cluster.
    let mut seen = std::collections::HashSet::new();
    for (config, archive) in &targets {
        let mut dates = archive.dates(part_kind).unwrap_or_default();
        dates.reverse();
        for date in dates {
            for name in super::distinct_values(archive, part_kind, date, column) {
                if seen.insert(name.clone()) && key.pseudonym(kind, &name) == pseudonym {
                    let label = label(targets.len(), config);
                    println!("{pseudonym} is {kind} {name:?} ({label}last seen {date})");
                    return Ok(ExitCode::SUCCESS);
                }
            }
        }
    }
    let places: Vec<String> = targets
        .iter()
        .map(|(_, a)| a.location().display().to_string())
        .collect();
    anyhow::bail!(
        "{pseudonym} matches none of the {} {kind} names in {} under key {} (hint: a pseudonym of another key, or a name this data dir never archived)",
        seen.len(),
        places.join(", "),
        key.id
    )
}
