//! The other commands against the cluster and the first phase's archive: `test`, a
//! `collect` without slurmdbd, the live views `current` and `nodes`, and `job`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::checks::Check;
use crate::data_dir::{copy_dir, work_dir, TRACKER};
use crate::rig::{broken_slurm_conf, run, slurm_usage_with};
use crate::setup::first;
use crate::util::{slurm_usage, snapshot_bytes};

/// `slurm-usage test` passes against the rig (sacct and sinfo found, their version, the rig's
/// Slurm release covered, accounting on, dry collection) and fails when slurmdbd cannot be
/// reached.
#[test]
fn test_command_passes_against_the_cluster_and_fails_without_slurmdbd() {
    let Some(p) = first() else { return };
    let data = work_dir().join("test-command/data");
    let test = |conf: &Path| {
        run(
            slurm_usage_with(conf)
                .arg("test")
                .arg("--config")
                .arg(&p.config)
                .arg("--data-dir")
                .arg(&data),
            Duration::from_secs(120),
        )
        .unwrap_or_else(|e| panic!("{e}"))
    };
    let ok = test(&p.rig.conf);
    assert!(
        ok.ok(),
        "slurm-usage test against the rig {}",
        ok.describe()
    );
    assert!(
        ok.stdout.contains(&p.sacct_version),
        "slurm-usage test does not report the sacct version {:?}:\n{}",
        p.sacct_version,
        ok.stdout
    );
    // The rig runs a release CI covers: a passing `Slurm version` line that names it.
    let release = p.rig.version();
    assert!(
        p.sacct_version.contains(&format!(" {release}.")),
        "the rig says Slurm {release} (etc/version) but sacct is {:?}",
        p.sacct_version
    );
    assert!(
        ok.stdout.lines().any(|l| l.starts_with('✓')
            && l.contains("Slurm version")
            && l.contains(&format!("Slurm {release} is covered"))),
        "slurm-usage test does not pass Slurm {release} as covered:\n{}",
        ok.stdout
    );
    let broken = test(&broken_slurm_conf(&p.rig, "test-command/etc"));
    assert_eq!(
        broken.code,
        Some(1),
        "slurm-usage test with slurmdbd unreachable must fail {}",
        broken.describe()
    );
}

/// A collect while slurmdbd cannot be reached fails (exit 1) and leaves every partition
/// byte for byte as it was; the tracker keeps its facts (only `last_updated` moves).
#[test]
fn collect_without_slurmdbd_fails_and_touches_no_partition() {
    let Some(p) = first() else { return };
    let dir = work_dir().join("no-slurmdbd");
    let _ = std::fs::remove_dir_all(&dir);
    copy_dir(&p.data, &dir.join("data")).unwrap();
    let data = dir.join("data");
    let snapshot = || -> BTreeMap<PathBuf, Vec<u8>> { snapshot_bytes(&data).into_iter().collect() };
    let before = snapshot();
    let out = run(
        slurm_usage_with(&broken_slurm_conf(&p.rig, "no-slurmdbd/etc"))
            .args(["collect", "--days", "1", "--config"])
            .arg(&p.config)
            .arg("--data-dir")
            .arg(&data),
        Duration::from_secs(120),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        out.code,
        Some(1),
        "collect without slurmdbd {}",
        out.describe()
    );
    let after = snapshot();
    let mut c = Check::default();
    for (path, bytes) in &before {
        let name = path.display().to_string();
        if name.ends_with(".parquet") {
            c.that(after.get(path) == Some(bytes), || format!("{name} changed"));
        }
    }
    let parquet = |m: &BTreeMap<PathBuf, Vec<u8>>| -> BTreeSet<PathBuf> {
        m.keys()
            .filter(|k| k.extension().is_some_and(|e| e == "parquet"))
            .cloned()
            .collect()
    };
    c.eq(
        "data dir",
        "parquet files",
        parquet(&after),
        parquet(&before),
    );
    let tracker = |m: &BTreeMap<PathBuf, Vec<u8>>| {
        let mut v: serde_json::Value = serde_json::from_slice(&m[&data.join(TRACKER)]).unwrap();
        v.as_object_mut().unwrap().remove("last_updated");
        v
    };
    c.eq(
        "tracker",
        "everything but last_updated",
        tracker(&after),
        tracker(&before),
    );
    c.done("collect without slurmdbd");
}

/// `slurm-usage current` (taken while the RUNNING and PENDING jobs were queued) names every
/// user squeue showed; `slurm-usage nodes` lists every node of sinfo with its CPU count.
#[test]
fn current_and_nodes_views_agree_with_squeue_and_sinfo() {
    let Some(p) = first() else { return };
    let live = p
        .live
        .as_ref()
        .expect("the first phase captures the live views");
    assert!(
        live.current.ok(),
        "slurm-usage current {}",
        live.current.describe()
    );
    assert!(
        live.squeue
            .iter()
            .any(|(u, s)| u == "alice" && s == "RUNNING")
            && live
                .squeue
                .iter()
                .any(|(u, s)| u == "root" && s == "PENDING"),
        "squeue did not show the mix's RUNNING and PENDING jobs: {:?}",
        live.squeue
    );
    for (user, _) in &live.squeue {
        assert!(
            live.current.stdout.contains(user.as_str()),
            "`current` does not name {user}, who has jobs in squeue {:?}:\n{}",
            live.squeue,
            live.current.stdout
        );
    }
    assert!(
        live.nodes.ok(),
        "slurm-usage nodes {}",
        live.nodes.describe()
    );
    assert!(!live.sinfo.is_empty(), "sinfo listed no node");
    for (node, cpus) in &live.sinfo {
        let line = live.nodes.stdout.lines().find(|l| {
            l.split(|c: char| !c.is_alphanumeric() && c != '-' && c != '_' && c != '.')
                .any(|w| w == node)
        });
        let line =
            line.unwrap_or_else(|| panic!("`nodes` does not list {node}:\n{}", live.nodes.stdout));
        assert!(
            line.split(|c: char| !c.is_ascii_digit()).any(|w| w == cpus),
            "`nodes` shows no {cpus} CPUs for {node}: {line:?}"
        );
    }
}

/// `slurm-usage job ID` (seff-like) shows each archived job of the mix with the state and
/// the CPU and memory efficiency the archive holds; an unknown id exits 1.
#[test]
fn job_view_shows_the_archived_records() {
    let Some(p) = first() else { return };
    let job = |id: &str| {
        run(
            slurm_usage()
                .args(["job", id, "--config"])
                .arg(&p.config)
                .arg("--data-dir")
                .arg(&p.data),
            Duration::from_secs(60),
        )
        .unwrap_or_else(|e| panic!("{e}"))
    };
    let mut c = Check::default();
    for j in p.jobs.iter().filter(|j| !j.queued()) {
        let r = p.record(&j.id).1;
        let out = job(&j.id);
        c.that(out.ok(), || format!("job {}: {}", j.id, out.describe()));
        for want in [
            j.id.clone(),
            r.state.to_string(),
            format!("{:.2}%", r.cpu_efficiency),
            format!("{:.2}%", r.memory_efficiency),
        ] {
            c.that(out.stdout.contains(&want), || {
                format!("`job {}` does not show {want:?}:\n{}", j.id, out.stdout)
            });
        }
    }
    let missing = job("999999999");
    c.eq(
        "999999999",
        "exit code of `job` for an unknown id",
        missing.code,
        Some(1),
    );
    c.done("job view");
}
