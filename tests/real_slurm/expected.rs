//! What the archive must hold for a job, computed here from sacct's text alone (its own
//! parsers of durations, memory sizes and TRES strings), independently of the crate's code.

use chrono::NaiveDateTime;

use crate::sacct::{normalize, Row};

/// `MM:SS.mmm`, `HH:MM:SS`, `D-HH:MM:SS` -> seconds.
pub fn duration_secs(s: &str) -> Option<f64> {
    let s = s.trim();
    let (days, rest) = match s.split_once('-') {
        Some((d, r)) => (d.parse::<f64>().ok()?, r),
        None => (0.0, s),
    };
    let p: Vec<f64> = rest
        .split(':')
        .map(|x| x.parse::<f64>().ok())
        .collect::<Option<_>>()?;
    let (h, m, sec) = match p.as_slice() {
        [m, s] => (0.0, *m, *s),
        [h, m, s] => (*h, *m, *s),
        _ => return None,
    };
    Some(days * 86400.0 + h * 3600.0 + m * 60.0 + sec)
}

/// `5992K`, `600M`, `2G`, bytes -> MiB.
pub fn memory_mb(s: &str) -> Option<f64> {
    let s = s.trim();
    let unit = s.chars().last()?;
    let (num, mult) = match unit.to_ascii_uppercase() {
        'K' => (&s[..s.len() - 1], 1.0 / 1024.0),
        'M' => (&s[..s.len() - 1], 1.0),
        'G' => (&s[..s.len() - 1], 1024.0),
        'T' => (&s[..s.len() - 1], 1024.0 * 1024.0),
        _ => (s, 1.0 / (1024.0 * 1024.0)),
    };
    num.parse::<f64>().ok().map(|v| v * mult)
}

/// The value of `key` in a TRES string (`cpu=2,mem=1G,...`).
pub fn tres<'a>(s: &'a str, key: &str) -> Option<&'a str> {
    s.split(',')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v)
}

/// GPUs in a TRES string: `gres/gpu`, else the sum of the typed `gres/gpu:*`.
pub fn tres_gpus(s: &str) -> i64 {
    let pairs: Vec<(&str, &str)> = s.split(',').filter_map(|kv| kv.split_once('=')).collect();
    let plain: Option<i64> = pairs
        .iter()
        .find(|(k, _)| *k == "gres/gpu")
        .and_then(|(_, v)| v.parse().ok());
    plain.unwrap_or_else(|| {
        pairs
            .iter()
            .filter(|(k, _)| k.starts_with("gres/gpu:"))
            .filter_map(|(_, v)| v.parse::<i64>().ok())
            .sum()
    })
}

/// sacct's `2026-11-25T17:27:21` (TZ=UTC) -> UTC microseconds; `Unknown`/`None` -> None.
pub fn utc_micros(s: &str) -> Option<i64> {
    NaiveDateTime::parse_from_str(s.trim(), "%Y-%m-%dT%H:%M:%S")
        .ok()
        .map(|n| n.and_utc().timestamp_micros())
}

/// Equal but for rounding (relative 1e-9).
pub fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

/// What the processed record of a job must hold, computed here from its sacct lines by the
/// rules of docs/metrics.md, independently of the crate's code.
#[derive(Debug, Clone)]
pub struct Expected {
    pub job_id: String,
    pub job_id_raw: String,
    pub user: String,
    pub group: String,
    pub account: String,
    pub partition: String,
    pub qos: String,
    pub cluster: String,
    pub job_name: String,
    pub state: String,
    pub exit_code: String,
    pub submit: Option<i64>,
    pub start: Option<i64>,
    pub end: Option<i64>,
    pub elapsed: i64,
    pub alloc_cpus: i64,
    pub alloc_nodes: i64,
    pub alloc_gpus: i64,
    pub node_list: String,
    pub req_mem_mb: f64,
    pub alloc_mem_mb: f64,
    pub total_cpu: f64,
    pub max_rss_mb: f64,
    pub timelimit: Option<i64>,
    pub array_job_id: Option<String>,
    pub array_task_id: Option<i64>,
}

/// [`Expected`] from a job's sacct lines (allocation line first, then its steps).
pub fn expected(lines: &[Row]) -> Expected {
    let a = &lines[0];
    let steps = &lines[1..];
    let int = |k: &str| a[k].trim().parse::<i64>().unwrap_or(0);
    let req_mem_mb = {
        let r = a["ReqMem"].trim();
        match r.chars().last() {
            Some('c') => {
                memory_mb(&r[..r.len() - 1]).unwrap_or(0.0) * int("AllocCPUS").max(1) as f64
            }
            Some('n') => {
                memory_mb(&r[..r.len() - 1]).unwrap_or(0.0) * int("AllocNodes").max(1) as f64
            }
            _ => memory_mb(r).unwrap_or(0.0),
        }
    };
    let alloc_cpu = duration_secs(&a["TotalCPU"]).unwrap_or(0.0);
    let steps_cpu: f64 = steps
        .iter()
        .filter_map(|s| duration_secs(&s["TotalCPU"]))
        .sum();
    let total_cpu = if alloc_cpu > 0.0 {
        alloc_cpu
    } else if steps_cpu > 0.0 {
        steps_cpu
    } else {
        0.0
    };
    let max_rss_mb = steps
        .iter()
        .filter_map(|s| {
            tres(&s["TRESUsageInTot"], "mem")
                .and_then(memory_mb)
                .or_else(|| {
                    let tasks = s["NTasks"].trim().parse::<f64>().unwrap_or(1.0).max(1.0);
                    memory_mb(&s["MaxRSS"]).map(|m| m * tasks)
                })
        })
        .fold(0.0, f64::max);
    let (array_job_id, array_task_id) = match a["JobID"].split_once('_') {
        Some((base, task)) => (Some(base.to_string()), task.parse().ok()),
        None => (None, None),
    };
    let node_list = match a["NodeList"].trim() {
        "None assigned" => String::new(),
        n => n.to_string(),
    };
    Expected {
        job_id: a["JobID"].clone(),
        job_id_raw: a["JobIDRaw"].clone(),
        user: a["User"].clone(),
        group: a["Group"].clone(),
        account: a["Account"].clone(),
        partition: a["Partition"].clone(),
        qos: a["QOS"].clone(),
        cluster: a["Cluster"].clone(),
        job_name: a["JobName"].clone(),
        state: normalize(&a["State"]),
        exit_code: a["ExitCode"].clone(),
        submit: utc_micros(&a["Submit"]),
        start: utc_micros(&a["Start"]),
        end: utc_micros(&a["End"]),
        elapsed: int("ElapsedRaw"),
        alloc_cpus: int("AllocCPUS"),
        alloc_nodes: int("AllocNodes"),
        alloc_gpus: tres_gpus(&a["AllocTRES"]),
        node_list,
        req_mem_mb,
        alloc_mem_mb: tres(&a["AllocTRES"], "mem")
            .and_then(memory_mb)
            .unwrap_or(req_mem_mb),
        total_cpu,
        max_rss_mb,
        timelimit: a["TimelimitRaw"]
            .trim()
            .parse::<i64>()
            .ok()
            .filter(|m| *m < u32::MAX as i64)
            .map(|m| m * 60),
        array_job_id,
        array_task_id,
    }
}
