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

/// `lake sync [--dry-run]`: uploads every local partition the lake lacks or holds in
/// another version. Exit 0 when nothing is left pending, 1 otherwise.
pub fn lake_sync(
    config: &Config,
    archive: &Archive,
    dry_run: bool,
    rewrite: bool,
) -> Result<ExitCode> {
    let cfg = lake_config(config)?;
    anyhow::ensure!(
        archive.exists(),
        "data dir {} does not exist (hint: run `slurm-usage collect` first, or pass --data-dir)",
        archive.location().display()
    );
    let lake = Lake::open(cfg)?;
    let opts = SyncOptions {
        dry_run,
        rewrite,
        verify: true,
        progress: std::io::stderr().is_terminal(),
    };
    let report = runtime()?.block_on(sync(&lake, archive, opts));
    let mut out = std::io::stdout().lock();
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
        writeln!(out, "{}", report.line())?;
    }
    out.flush()?;
    if let Some(e) = &report.error {
        anyhow::bail!("{e}");
    }
    Ok(if report.pending.is_empty() || dry_run {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// `lake status [--json]`: what is pending (from the data dir alone), when the last upload
/// was, and who holds the cluster's lease (one request to the lake).
pub fn lake_status(config: &Config, archive: &Archive, json: bool) -> Result<ExitCode> {
    let cfg = lake_config(config)?;
    let lake = Lake::open(cfg)?;
    let cluster = lake.cluster(archive).unwrap_or_default();
    let state = LakeState::load(archive, &lake.url.text, &cluster, &lake.settings());
    let pending = state.pending(archive).unwrap_or_default();
    let lease = if cluster.is_empty() {
        Ok(None)
    } else {
        runtime()?.block_on(lake.lease(&cluster))
    };
    let mut out = std::io::stdout().lock();
    if json {
        let v = serde_json::json!({
            "url": lake.url.text,
            "cluster": cluster,
            "partitions": state.uploaded.len() + pending.iter().filter(|p| !state.uploaded.contains_key(&super::state::key(p.0, p.1))).count(),
            "uploaded": state.uploaded.len(),
            "pending": pending.iter().map(|(k, d)| serde_json::json!({"kind": k.dir(), "date": d.to_string()})).collect::<Vec<_>>(),
            "last_upload": state.last_upload,
            "holder": lease.as_ref().ok().and_then(|l| l.as_ref().map(|l| l.holder.clone())),
            "lease_expires": lease.as_ref().ok().and_then(|l| l.as_ref().map(|l| l.expires.clone())),
            "lease_error": lease.as_ref().err().map(|e| e.to_string()),
        });
        writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    writeln!(out, "Lake:            {}", lake.url.text)?;
    writeln!(
        out,
        "Cluster:         {}",
        if cluster.is_empty() {
            "(not known yet: no job names it; set [lake] cluster)"
        } else {
            &cluster
        }
    )?;
    writeln!(out, "Uploaded:        {} partitions", state.uploaded.len())?;
    writeln!(out, "Pending:         {} partitions", pending.len())?;
    for (kind, date) in pending.iter().take(20) {
        writeln!(out, "                 {}/{date}", kind.dir())?;
    }
    if pending.len() > 20 {
        writeln!(out, "                 ... and {} more", pending.len() - 20)?;
    }
    writeln!(out, "Last upload:     {}", describe_unix(state.last_upload))?;
    match lease {
        Ok(Some(l)) => writeln!(
            out,
            "Lease:           held by {} until {}",
            l.holder, l.expires
        )?,
        Ok(None) => writeln!(out, "Lease:           none (taken by the first upload)")?,
        Err(e) => writeln!(out, "Lease:           unknown: {e}")?,
    }
    Ok(ExitCode::SUCCESS)
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

/// The lake's health for `status` and the daemon: from the data dir alone, no request.
pub fn health(config: &Config, archive: &Archive) -> Option<LakeHealth> {
    config.lake.as_ref().map(|cfg| super::health(cfg, archive))
}

/// `lake whois PSEUDONYM`: the name behind a pseudonym, found by pseudonymising every
/// distinct name of its kind in the local archive with the key (newest dates first).
pub fn lake_whois(config: &Config, archive: &Archive, pseudonym: &str) -> Result<ExitCode> {
    use crate::store::Kind;
    let cfg = lake_config(config)?;
    let lake = Lake::open(cfg)?;
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
    let mut seen = std::collections::HashSet::new();
    let mut dates = archive.dates(part_kind)?;
    dates.reverse();
    for date in dates {
        for name in super::distinct_values(archive, part_kind, date, column) {
            if seen.insert(name.clone()) && key.pseudonym(kind, &name) == pseudonym {
                println!("{pseudonym} is {kind} {name:?} (last seen {date})");
                return Ok(ExitCode::SUCCESS);
            }
        }
    }
    anyhow::bail!(
        "{pseudonym} matches none of the {} {kind} names in {} under key {} (hint: a pseudonym of another key, or a name this data dir never archived)",
        seen.len(),
        archive.location().display(),
        key.id
    )
}
