//! Builders of sacct output lines in the tool's field order (what the fake sacct of
//! [`super::env::Env`] prints): one line, a finished, pending or running job with its steps,
//! many finished jobs at once.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use slurm_usage::sacct::fields::{DELIMITER, SACCT_FIELDS};

/// A sacct line in the tool's field order: `fields` overrides, everything else empty.
pub fn line(fields: &[(&str, &str)]) -> String {
    let map: BTreeMap<&str, &str> = fields.iter().copied().collect();
    SACCT_FIELDS
        .iter()
        .map(|f| *map.get(f).unwrap_or(&""))
        .collect::<Vec<_>>()
        .join(&(DELIMITER as char).to_string())
}

/// A finished job: its allocation line and a `.batch` step, started at `start` (ISO, UTC).
pub fn finished_job(id: &str, user: &str, start: &str, state: &str) -> Vec<String> {
    vec![
        line(&[
            ("JobID", id),
            ("JobIDRaw", id),
            ("User", user),
            ("Account", "research"),
            ("Partition", "cpu"),
            ("State", state),
            ("ExitCode", "0:0"),
            ("Submit", start),
            ("Eligible", start),
            ("Start", start),
            ("End", start),
            ("ElapsedRaw", "100"),
            ("TotalCPU", "01:40.000"),
            ("AllocCPUS", "2"),
            ("AllocNodes", "1"),
            ("NodeList", "node001"),
            ("ReqMem", "1G"),
            ("AllocTRES", "billing=2,cpu=2,mem=1G,node=1"),
            ("JobName", "work"),
            ("SubmitLine", "sbatch work.sh"),
        ]),
        line(&[
            ("JobID", &format!("{id}.batch")),
            ("JobIDRaw", &format!("{id}.batch")),
            ("State", state),
            ("Start", start),
            ("ElapsedRaw", "100"),
            ("TotalCPU", "01:40.000"),
            ("MaxRSS", "524288K"),
            ("NTasks", "1"),
            ("TRESUsageInTot", "cpu=00:01:40,mem=524288K"),
        ]),
    ]
}

/// A job that has not started: pending since `submit`.
pub fn pending_job(id: &str, submit: &str) -> Vec<String> {
    vec![line(&[
        ("JobID", id),
        ("JobIDRaw", id),
        ("User", "bob"),
        ("Partition", "cpu"),
        ("State", "PENDING"),
        ("Submit", submit),
        ("Eligible", submit),
        ("Start", "Unknown"),
        ("End", "Unknown"),
        ("ElapsedRaw", "0"),
        ("AllocCPUS", "0"),
        ("NodeList", "None assigned"),
        ("ReqMem", "1G"),
        ("JobName", "waiting"),
    ])]
}

/// A running job started at `start`.
pub fn running_job(id: &str, start: &str) -> Vec<String> {
    running_job_submitted(id, start, start)
}

/// A running job submitted at `submit`, started at `start`.
pub fn running_job_submitted(id: &str, submit: &str, start: &str) -> Vec<String> {
    vec![
        line(&[
            ("JobID", id),
            ("JobIDRaw", id),
            ("User", "bob"),
            ("Partition", "cpu"),
            ("State", "RUNNING"),
            ("Submit", submit),
            ("Start", start),
            ("End", "Unknown"),
            ("ElapsedRaw", "60"),
            ("TotalCPU", "00:00:00"),
            ("AllocCPUS", "1"),
            ("NodeList", "node002"),
            ("AllocTRES", "cpu=1,mem=1G,node=1"),
            ("JobName", "long"),
        ]),
        line(&[
            ("JobID", &format!("{id}.batch")),
            ("JobIDRaw", &format!("{id}.batch")),
            ("State", "RUNNING"),
            ("Start", start),
            ("TotalCPU", "00:00:00"),
        ]),
    ]
}

/// ISO timestamp `hh:mm` on `date`.
pub fn at(date: NaiveDate, hm: &str) -> String {
    format!("{date}T{hm}:00")
}

/// `n` finished jobs on `date` with incompressible job names (so the Parquet files are big).
pub fn many_jobs(date: NaiveDate, first: u64, n: u64) -> Vec<String> {
    let mut lines = Vec::new();
    let mut x: u64 = first.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    for i in first..first + n {
        let mut name = String::new();
        for _ in 0..4 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            name.push_str(&format!("{x:016x}"));
        }
        let mut job = finished_job(&i.to_string(), "alice", &at(date, "00:10"), "COMPLETED");
        job[0] = job[0].replace("\u{1f}work\u{1f}", &format!("\u{1f}{name}\u{1f}"));
        lines.extend(job);
    }
    lines
}

/// `lines` with field `name` set to `value` on every line (e.g. each line's `Cluster`).
pub fn with_field(lines: &[String], name: &str, value: &str) -> Vec<String> {
    let at = SACCT_FIELDS
        .iter()
        .position(|f| *f == name)
        .unwrap_or_else(|| panic!("{name} is not a sacct field of the tool"));
    let delimiter = (DELIMITER as char).to_string();
    lines
        .iter()
        .map(|l| {
            let mut fields: Vec<&str> = l.split(delimiter.as_str()).collect();
            fields[at] = value;
            fields.join(&delimiter)
        })
        .collect()
}
