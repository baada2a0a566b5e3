//! The job mix `tests/slurm/jobs.sh` submits, as its manifest `$SLURM_RIG_DIR/jobs.tsv` lists
//! it: reused when the cluster still matches it, submitted afresh otherwise.

use std::collections::BTreeSet;
use std::time::Duration;

use chrono::Utc;

use crate::expected::utc_micros;
use crate::rig::{run, Rig};
use crate::sacct::{normalize, sacct_all};
use crate::util::is_root;

/// One job of the mix: its key in jobs.sh (`cpu_burn`, `running`, ...), id, user and the
/// state sacct must show.
#[derive(Debug, Clone)]
pub struct Job {
    pub key: String,
    pub id: String,
    pub user: String,
    pub expected: String,
}

impl Job {
    /// Still in the queue while the first phase runs (RUNNING or PENDING).
    pub fn queued(&self) -> bool {
        self.expected == "RUNNING" || self.expected == "PENDING"
    }
}

/// The jobs the manifest lists.
pub fn read_manifest(rig: &Rig) -> Result<Vec<Job>, String> {
    let path = rig.dir.join("jobs.tsv");
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("cannot read the manifest {}: {e}", path.display()))?;
    let mut jobs = Vec::new();
    for line in text.lines().skip(1).filter(|l| !l.trim().is_empty()) {
        let f: Vec<&str> = line.split('\t').collect();
        let [key, id, user, expected] = f.as_slice() else {
            return Err(format!("bad manifest line {line:?} in {}", path.display()));
        };
        jobs.push(Job {
            key: key.to_string(),
            id: id.to_string(),
            user: user.to_string(),
            expected: expected.to_string(),
        });
    }
    if jobs.is_empty() {
        return Err(format!("the manifest {} lists no jobs", path.display()));
    }
    Ok(jobs)
}

/// Why the manifest cannot serve the first phase, or `None` when it can.
pub fn manifest_unusable(rig: &Rig) -> Option<String> {
    let jobs = match read_manifest(rig) {
        Ok(j) => j,
        Err(e) => return Some(e),
    };
    let keys: BTreeSet<&str> = jobs.iter().map(|j| j.key.as_str()).collect();
    for k in [
        "cpu_burn",
        "mem_hog",
        "multi_step",
        "array_1",
        "fail",
        "killed",
        "cancelled",
        "newline_fields",
        "gpu_one",
        "gpu_two",
        "running",
        "pending",
    ] {
        if !keys.contains(k) {
            return Some(format!("the manifest has no `{k}` job"));
        }
    }
    if keys.contains("oom") != rig.cgroup() {
        return Some(format!(
            "the manifest was written in the other mode than {}",
            rig.mode
        ));
    }
    let all = match sacct_all(rig, &jobs) {
        Ok(a) => a,
        Err(e) => return Some(e),
    };
    for j in &jobs {
        let lines = &all[&j.id];
        let state = normalize(&lines[0]["State"]);
        let want = match j.key.as_str() {
            "running" => "RUNNING",
            "pending" => "PENDING",
            _ => j.expected.as_str(),
        };
        if state != want {
            return Some(format!("job {} ({}) is {state}, not {want}", j.id, j.key));
        }
        if j.key == "pending" {
            let eligible = utc_micros(&lines[0]["Eligible"]);
            let soon = (Utc::now() + chrono::Duration::minutes(10)).timestamp_micros();
            if eligible.is_none_or(|e| e < soon) {
                return Some(format!(
                    "the pending job {} becomes eligible within 10 minutes",
                    j.id
                ));
            }
        }
    }
    None
}

/// Reuses the job mix when it fits, else submits a fresh one with `jobs.sh`.
pub fn ensure_job_mix(rig: &Rig) -> Result<Vec<Job>, String> {
    if let Some(why) = manifest_unusable(rig) {
        if !is_root() {
            return Err(format!("the job mix must be (re)submitted ({why}) and that needs root: run `sudo tests/slurm/jobs.sh`"));
        }
        note!("[real_slurm] submitting the job mix with tests/slurm/jobs.sh ({why})");
        let out = run(
            &mut rig.cmd(rig.scripts.join("jobs.sh")),
            Duration::from_secs(420),
        )?;
        if !out.ok() {
            return Err(format!("tests/slurm/jobs.sh {}", out.describe()));
        }
        note!("[real_slurm] jobs.sh took {:.1} s", out.took.as_secs_f64());
        if let Some(why) = manifest_unusable(rig) {
            return Err(format!(
                "after jobs.sh the job mix is still not as expected: {why}"
            ));
        }
    } else {
        note!(
            "[real_slurm] reusing the job mix of {}",
            rig.dir.join("jobs.tsv").display()
        );
    }
    read_manifest(rig)
}
