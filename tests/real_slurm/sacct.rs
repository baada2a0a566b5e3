//! What the real `sacct` says about the jobs of the mix (TZ=UTC, so its times read as UTC):
//! every line of a job, its free-text fields, the jobs of a date's window, and the states.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::manifest::Job;
use crate::rig::{run, Rig};

/// The delimiter the tests ask sacct for: a byte no field holds (`|` and newlines do).
pub const SEP: char = '\x1f';

/// What the tests ask sacct for, per job (JobName last: it may hold `|`).
pub const FIELDS: &[&str] = &[
    "JobID",
    "JobIDRaw",
    "User",
    "Group",
    "Account",
    "Partition",
    "QOS",
    "Cluster",
    "State",
    "ExitCode",
    "Submit",
    "Eligible",
    "Start",
    "End",
    "ElapsedRaw",
    "AllocCPUS",
    "AllocNodes",
    "NodeList",
    "ReqMem",
    "TimelimitRaw",
    "TotalCPU",
    "UserCPU",
    "SystemCPU",
    "MaxRSS",
    "NTasks",
    "AllocTRES",
    "TRESUsageInTot",
    "JobName",
];
/// Fields that change while a job runs: compared only for finished jobs.
pub const MOVING: &[&str] = &["ElapsedRaw"];

/// One sacct line: field name -> text.
pub type Row = BTreeMap<String, String>;

/// Splits sacct's `-P` output into records: a field may hold a newline (job name, comment,
/// submit line), so a line starts a record only when its first field is one of `ids` or a
/// step of one; any other line continues the record before it.
pub fn records(text: &str, ids: &[&str]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for line in text.strip_suffix('\n').unwrap_or(text).split('\n') {
        let first = line.split(SEP).next().unwrap_or("");
        let starts = line.contains(SEP)
            && ids
                .iter()
                .any(|id| first == *id || first.starts_with(&format!("{id}.")));
        match out.last_mut() {
            Some(r) if !starts => {
                r.push('\n');
                r.push_str(line);
            }
            _ if line.is_empty() => {}
            _ => out.push(line.to_string()),
        }
    }
    out
}

/// `sacct -j ID,ID,...` (TZ=UTC): each job's lines, allocation line first, then its steps.
pub fn sacct_jobs(rig: &Rig, ids: &[&str]) -> Result<BTreeMap<String, Vec<Row>>, String> {
    let out = run(
        rig.cmd("sacct")
            .env("TZ", "UTC")
            .args(["-a", "-j", &ids.join(","), "-P", "-n"])
            .arg(format!("--delimiter={SEP}"))
            .arg(format!("--format={}", FIELDS.join(","))),
        Duration::from_secs(60),
    )?;
    if !out.ok() {
        return Err(format!("sacct -j {} {}", ids.join(","), out.describe()));
    }
    let mut jobs: BTreeMap<String, Vec<Row>> = BTreeMap::new();
    for line in records(&out.stdout, ids) {
        let parts: Vec<&str> = line.split(SEP).collect();
        if parts.len() != FIELDS.len() {
            return Err(format!(
                "sacct: {} fields instead of {} in {line:?}",
                parts.len(),
                FIELDS.len()
            ));
        }
        let row: Row = FIELDS
            .iter()
            .zip(parts)
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let job = ids
            .iter()
            .find(|id| row["JobID"] == **id || row["JobID"].starts_with(&format!("{id}.")));
        if let Some(id) = job {
            let lines = jobs.entry(id.to_string()).or_default();
            // Allocation line first.
            if row["JobID"] == **id {
                lines.insert(0, row);
            } else {
                lines.push(row);
            }
        }
    }
    for id in ids {
        if jobs.get(*id).is_none_or(|l| l[0]["JobID"] != *id) {
            return Err(format!(
                "sacct -j {} printed no allocation line for job {id}:\n{}",
                ids.join(","),
                out.stdout
            ));
        }
    }
    Ok(jobs)
}

/// `sacct -X -j ID,...` text fields that may hold `|` or newlines: WorkDir, Comment,
/// SubmitLine (last, so a newline in it continues the record on the next line).
pub fn sacct_free_text(rig: &Rig, ids: &[&str]) -> Result<BTreeMap<String, [String; 3]>, String> {
    let out = run(
        rig.cmd("sacct")
            .env("TZ", "UTC")
            .args(["-a", "-X", "-j", &ids.join(","), "-P", "-n"])
            .arg(format!("--delimiter={SEP}"))
            .arg("--format=JobID,WorkDir,Comment,SubmitLine"),
        Duration::from_secs(60),
    )?;
    if !out.ok() {
        return Err(format!("sacct -X -j {} {}", ids.join(","), out.describe()));
    }
    let mut map = BTreeMap::new();
    for r in records(&out.stdout, ids) {
        match r.splitn(4, SEP).collect::<Vec<_>>().as_slice() {
            [id, work, comment, submit] => {
                map.insert(
                    id.to_string(),
                    [work.to_string(), comment.to_string(), submit.to_string()],
                );
            }
            _ => return Err(format!("sacct -X: unexpected record {r:?}")),
        }
    }
    Ok(map)
}

/// The JobIDs of allocation lines sacct lists for the window `[start, end)` (what the
/// collector asks for one date).
pub fn sacct_window(
    rig: &Rig,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Result<BTreeSet<String>, String> {
    Ok(window_lines(rig, start, end, "JobID")?
        .into_iter()
        .collect())
}

/// The lines of `sacct -a -X -P -n -o FIELDS` for the window `[start, end)`, times in UTC.
pub fn window_lines(
    rig: &Rig,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    fields: &str,
) -> Result<Vec<String>, String> {
    window_lines_with(rig, start, end, fields, &[])
}

/// [`window_lines`] with more sacct arguments (`--jobs=...`).
pub fn window_lines_with(
    rig: &Rig,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    fields: &str,
    more: &[&str],
) -> Result<Vec<String>, String> {
    let f = "%Y-%m-%dT%H:%M:%S";
    let (start, end) = (start.format(f).to_string(), end.format(f).to_string());
    let mut args = vec![
        "-a", "-X", "-P", "-n", "-S", &start, "-E", &end, "-o", fields,
    ];
    args.extend_from_slice(more);
    let out = run(
        rig.cmd("sacct").env("TZ", "UTC").args(&args),
        Duration::from_secs(60),
    )?;
    if !out.ok() {
        return Err(format!("sacct -S/-E {} {}", more.join(" "), out.describe()));
    }
    Ok(out
        .stdout
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect())
}

/// Whether a job in `state` (as sacct prints it) will not change any more. Written out here
/// rather than taken from `slurm_usage::slurm::job`: the test's expectations must not follow
/// the code they check.
pub fn is_final(state: &str) -> bool {
    matches!(
        normalize(state).as_str(),
        "COMPLETED"
            | "FAILED"
            | "CANCELLED"
            | "TIMEOUT"
            | "OUT_OF_MEMORY"
            | "NODE_FAIL"
            | "BOOT_FAIL"
            | "DEADLINE"
            | "PREEMPTED"
            | "LAUNCH_FAILED"
            | "RECONFIG_FAIL"
    )
}

/// `CANCELLED by 0` -> `CANCELLED`.
pub fn normalize(state: &str) -> String {
    state
        .split_whitespace()
        .next()
        .unwrap_or("")
        .trim_end_matches('+')
        .to_string()
}

/// Whether sacct holds a finished job's complete records: right after a job ends slurmdbd can
/// briefly show a placeholder (JobName `allocation`, no Partition) and steps without usage.
pub fn settled(lines: &[Row]) -> bool {
    let alloc = &lines[0];
    if alloc["Partition"].is_empty() || !is_final(&alloc["State"]) {
        return false;
    }
    lines[1..]
        .iter()
        .all(|s| is_final(&s["State"]) && !s["TRESUsageInTot"].is_empty())
}

/// `sacct -j` of every job of the manifest.
pub fn sacct_all(rig: &Rig, jobs: &[Job]) -> Result<BTreeMap<String, Vec<Row>>, String> {
    let ids: Vec<&str> = jobs.iter().map(|j| j.id.as_str()).collect();
    sacct_jobs(rig, &ids)
}
