//! `analyze`, `job` and the report outputs, on a small fixture archive the test builds.
//!
//! - Golden files (`tests/golden/`) pin the terminal table, the JSON, two CSV tables and the
//!   HTML. Regenerate them with `UPDATE_GOLDEN=1 cargo test --test analyze` and review the diff.
//! - The key numbers are also computed here independently from the fixture jobs (dedupe by
//!   hand, the daily split minute by minute in the zone) and compared with the JSON.
//! - A data dir in the Python tool's schema (naive local timestamps, Int32, LargeUtf8, no
//!   extra columns, and an older file without the reserved-hours columns).
//! - Node list expansion, an empty data dir, a missing data dir, exit codes of the binary.
//! - The HTML rendered by a real headless Chromium (skipped when `chromium` is missing,
//!   except under `CI=true`, where a missing Chromium fails the test).

mod util;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;

use arrow_array::{
    ArrayRef, BooleanArray, Float64Array, Int32Array, LargeStringArray, RecordBatch,
    TimestampMicrosecondArray,
};
use arrow_schema::{DataType, Field, Schema, TimeUnit};
use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone, Utc};
use slurm_usage::config::Config;
use slurm_usage::model::ProcessedJob;
use slurm_usage::report::analyze::{
    analyze_dir, Analysis, Context, Filter, Groups, NodeInventory, Window,
};
use slurm_usage::report::html::{render, HtmlOptions};
use slurm_usage::report::json::{table, write_csv, write_json};
use slurm_usage::report::render::{write_report, Style};
use slurm_usage::store::parquet::{write_processed, Meta};
use slurm_usage::store::{Archive, Kind};
use slurm_usage::zone::Zone;

const ZONE: &str = "Europe/Amsterdam";
const CONFIG: &str = "timezone = \"Europe/Amsterdam\"\n[groups]\nphysics = [\"alice\", \"bob\"]\nbio = [\"carol\"]\n";

fn utc(s: &str) -> i64 {
    NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M")
        .unwrap()
        .and_utc()
        .timestamp_micros()
}

fn date(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

/// A job as the fixture describes it; the derived numbers follow the metrics rules.
#[allow(clippy::too_many_arguments)]
fn job(
    id: &str,
    user: &str,
    partition: &str,
    state: &str,
    start: Option<&str>,
    minutes: i64,
    cpus: i64,
    gpus: i64,
    mem_mb: f64,
    cpu_eff: f64,
    mem_eff: f64,
    nodes: &str,
    wait: Option<i64>,
    processed: &str,
) -> ProcessedJob {
    let secs = minutes * 60;
    let hours = secs as f64 / 3600.0;
    let start = start.map(utc);
    let cpu_reserved = cpus as f64 * hours;
    let (cpu_used, mem_used) = if matches!(state, "RUNNING" | "PENDING") {
        (0.0, 0.0)
    } else {
        (cpu_reserved * cpu_eff / 100.0, mem_mb * mem_eff / 100.0)
    };
    ProcessedJob {
        job_id: id.into(),
        job_id_raw: id.into(),
        user: user.into(),
        job_name: format!("job-{id}").into(),
        partition: partition.into(),
        state: state.into(),
        submit_time: Some(start.unwrap_or(utc("2026-11-25 09:00")) - wait.unwrap_or(0) * 1_000_000),
        start_time: start,
        end_time: start
            .filter(|_| !matches!(state, "RUNNING" | "PENDING"))
            .map(|s| s + secs * 1_000_000),
        node_list: nodes.into(),
        elapsed_seconds: secs,
        alloc_cpus: cpus,
        req_mem_mb: mem_mb,
        max_rss_mb: mem_used,
        total_cpu_seconds: cpu_used * 3600.0,
        alloc_gpus: gpus,
        cpu_efficiency: cpu_eff,
        memory_efficiency: mem_eff,
        cpu_hours_wasted: cpu_reserved - cpu_used,
        memory_gb_hours_wasted: (mem_mb - mem_used) * hours / 1024.0,
        cpu_hours_reserved: cpu_reserved,
        memory_gb_hours_reserved: mem_mb / 1024.0 * hours,
        gpu_hours_reserved: gpus as f64 * hours,
        processed_date: utc(processed),
        is_complete: !matches!(state, "RUNNING" | "PENDING"),
        account: "research".into(),
        qos: "normal".into(),
        cluster: "rig".into(),
        group: user.into(),
        exit_code: if state == "FAILED" {
            "1:0".into()
        } else {
            "0:0".into()
        },
        timelimit_seconds: Some(86_400),
        alloc_nodes: 1,
        alloc_mem_mb: mem_mb,
        array_job_id: None,
        array_task_id: None,
        wait_seconds: wait,
        sacct_version: "slurm-wlm 22.05.8".into(),
        // The synthetic archive of the goldens has no GPU accounting and no energy plugin.
        gpu_utilization: None,
        gpu_memory_max_mb: None,
        gpu_hours_wasted: None,
        energy_joules: None,
    }
}

/// The fixture archive: (file date, jobs). Job 107 is in two files (an older PENDING record
/// and the newer COMPLETED one); 2026-11-22 is outside the test window.
fn fixture() -> Vec<(&'static str, Vec<ProcessedJob>)> {
    vec![
        (
            "2026-11-22",
            vec![job(
                "100",
                "alice",
                "cpu",
                "COMPLETED",
                Some("2026-11-22 08:00"),
                600,
                64,
                0,
                1024.0,
                10.0,
                10.0,
                "cpu-01",
                Some(0),
                "2026-11-23 02:00",
            )],
        ),
        (
            "2026-11-23",
            vec![
                job(
                    "101",
                    "alice",
                    "gpu",
                    "COMPLETED",
                    Some("2026-11-23 09:00"),
                    120,
                    4,
                    2,
                    8192.0,
                    50.0,
                    25.0,
                    "gpu[01-02]",
                    Some(3600),
                    "2026-11-24 02:00",
                ),
                // 23:00-02:00 local: one hour on the 23rd, two on the 24th.
                job(
                    "102",
                    "alice",
                    "cpu",
                    "COMPLETED",
                    Some("2026-11-23 22:00"),
                    180,
                    2,
                    0,
                    2048.0,
                    80.0,
                    60.0,
                    "cpu-01",
                    Some(600),
                    "2026-11-24 02:00",
                ),
            ],
        ),
        (
            "2026-11-24",
            vec![
                job(
                    "103",
                    "bob",
                    "cpu",
                    "FAILED",
                    Some("2026-11-24 10:00"),
                    60,
                    8,
                    0,
                    4096.0,
                    10.0,
                    5.0,
                    "cpu-[01-02]",
                    Some(0),
                    "2026-11-25 02:00",
                ),
                job(
                    "106",
                    "carol",
                    "gpu",
                    "COMPLETED",
                    Some("2026-11-24 08:00"),
                    30,
                    1,
                    1,
                    512.0,
                    100.0,
                    90.0,
                    "gpu02",
                    Some(60),
                    "2026-11-25 02:00",
                ),
                job(
                    "107",
                    "dave",
                    "cpu",
                    "PENDING",
                    None,
                    0,
                    2,
                    0,
                    2048.0,
                    0.0,
                    0.0,
                    "",
                    None,
                    "2026-11-24 03:00",
                ),
            ],
        ),
        (
            "2026-11-25",
            vec![
                job(
                    "104",
                    "bob",
                    "cpu",
                    "RUNNING",
                    Some("2026-11-25 12:00"),
                    240,
                    4,
                    0,
                    1024.0,
                    0.0,
                    0.0,
                    "cpu-02",
                    Some(120),
                    "2026-11-25 16:00",
                ),
                job(
                    "105",
                    "carol",
                    "debug",
                    "PENDING",
                    None,
                    0,
                    1,
                    0,
                    1000.0,
                    0.0,
                    0.0,
                    "",
                    None,
                    "2026-11-25 16:00",
                ),
                job(
                    "107",
                    "dave",
                    "cpu",
                    "COMPLETED",
                    Some("2026-11-25 01:00"),
                    120,
                    2,
                    0,
                    2048.0,
                    40.0,
                    50.0,
                    "cpu-01",
                    Some(18000),
                    "2026-11-26 02:00",
                ),
            ],
        ),
    ]
}

fn write_fixture(dir: &Path) -> Archive {
    let data = Archive::local(dir);
    data.create().unwrap();
    for (d, jobs) in fixture() {
        let meta = Meta {
            date: date(d),
            sacct_version: "slurm-wlm 22.05.8".into(),
            timezone: ZONE.into(),
        };
        write_processed(&data.name(Kind::Processed, date(d)), &jobs, &meta).unwrap();
    }
    data
}

fn config() -> Config {
    Config::from_toml(CONFIG).unwrap()
}

fn inventory() -> NodeInventory {
    NodeInventory {
        nodes: BTreeMap::from([
            ("gpu01".to_string(), (32, 4)),
            ("gpu02".to_string(), (32, 4)),
            ("cpu-01".to_string(), (16, 0)),
            ("cpu-02".to_string(), (16, 0)),
        ]),
        unavailable: None,
    }
}

fn context(filter: Filter) -> Context {
    let config = config();
    // "Now" is after the window: utilisation counts all 72 hours.
    let now = Utc.with_ymd_and_hms(2026, 11, 26, 12, 0, 0).unwrap();
    Context {
        window: Window::new(date("2026-11-23"), date("2026-11-25"), config.zone(), now).unwrap(),
        filter,
        groups: Groups::from_config(&config),
        inventory: inventory(),
        threads: 2,
    }
}

fn analysis(data: &Archive) -> Analysis {
    analyze_dir(std::slice::from_ref(data), &context(Filter::default())).unwrap()
}

/// Compares `text` with `tests/golden/<name>`, or rewrites it under `UPDATE_GOLDEN=1`.
fn golden(name: &str, text: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (hint: UPDATE_GOLDEN=1 cargo test --test analyze)",
            path.display()
        )
    });
    if want != text {
        let diff: Vec<String> = want
            .lines()
            .zip(text.lines())
            .enumerate()
            .filter(|(_, (a, b))| a != b)
            .take(5)
            .map(|(i, (a, b))| format!("line {}:\n  golden: {a}\n  actual: {b}", i + 1))
            .collect();
        panic!(
            "{} differs ({} vs {} lines):\n{}\n(hint: if the change is intended, UPDATE_GOLDEN=1 cargo test --test analyze)",
            path.display(),
            want.lines().count(),
            text.lines().count(),
            diff.join("\n")
        );
    }
}

fn text_of(f: impl FnOnce(&mut Vec<u8>)) -> String {
    let mut out = Vec::new();
    f(&mut out);
    String::from_utf8(out).unwrap()
}

#[test]
fn golden_table_json_csv_html() {
    let dir = tempfile::tempdir().unwrap();
    let a = analysis(&write_fixture(dir.path()));
    let style = Style {
        color: false,
        width: 100,
        top: 15,
    };
    golden(
        "analyze.txt",
        &text_of(|o| write_report(&a, &style, o).unwrap()),
    );
    golden("analyze.json", &text_of(|o| write_json(&a, o).unwrap()));
    golden(
        "users.csv",
        &text_of(|o| write_csv(&table(&a, "users").unwrap(), o).unwrap()),
    );
    golden(
        "daily.csv",
        &text_of(|o| write_csv(&table(&a, "daily").unwrap(), o).unwrap()),
    );
    let html = render(
        &a,
        &HtmlOptions {
            generated_at: "2026-11-26 12:00 UTC".into(),
            top: 15,
        },
    );
    golden("analyze.html", &html);
}

fn get<'a>(v: &'a serde_json::Value, list: &str, key: &str, name: &str) -> &'a serde_json::Value {
    v[list]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e[key] == name)
        .unwrap_or_else(|| panic!("no {key} {name} in {list}"))
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * b.abs().max(1.0)
}

/// The same numbers as the report, computed the plain way from the fixture.
#[test]
fn numbers_match_an_independent_computation() {
    let dir = tempfile::tempdir().unwrap();
    let a = analysis(&write_fixture(dir.path()));
    let v: serde_json::Value =
        serde_json::from_str(&text_of(|o| write_json(&a, o).unwrap())).unwrap();

    // Dedupe by hand: the newest processed_date per job id, over the window's files.
    let mut jobs: HashMap<String, ProcessedJob> = HashMap::new();
    for (d, list) in fixture() {
        if !(date("2026-11-23")..=date("2026-11-25")).contains(&date(d)) {
            continue;
        }
        for j in list {
            match jobs.get(j.job_id.as_str()) {
                Some(old) if old.processed_date >= j.processed_date => {}
                _ => {
                    jobs.insert(j.job_id.to_string(), j);
                }
            }
        }
    }
    let jobs: Vec<ProcessedJob> = jobs.into_values().collect();
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    let mut want = [
        "period",
        "summary",
        "clusters",
        "users",
        "groups",
        "partitions",
        "nodes",
        "daily",
        "states",
        "efficiency",
        "top_wasters",
        "top_gpu_wasters",
    ];
    want.sort();
    assert_eq!(
        keys, want,
        "exactly the contract's keys (serde_json sorts them)"
    );
    assert_eq!(v["summary"]["jobs"], jobs.len());
    assert_eq!(v["summary"]["duplicates_removed"], 1);
    // One cluster: the clusters list is the summary again.
    assert_eq!(get(&v, "clusters", "cluster", "rig")["jobs"], jobs.len());
    assert_eq!(v["clusters"].as_array().unwrap().len(), 1);
    let sum = |f: &dyn Fn(&ProcessedJob) -> f64| jobs.iter().map(f).sum::<f64>();
    assert!(close(
        v["summary"]["cpu_hours"].as_f64().unwrap(),
        sum(&|j| j.cpu_hours_reserved)
    ));
    assert!(close(
        v["summary"]["gpu_hours"].as_f64().unwrap(),
        sum(&|j| j.gpu_hours_reserved)
    ));
    assert!(close(
        v["summary"]["ram_gb"].as_f64().unwrap(),
        sum(&|j| j.alloc_mem_mb) / 1024.0
    ));

    // Efficiency over COMPLETED jobs only.
    let mut cpu: Vec<f64> = jobs
        .iter()
        .filter(|j| j.state == "COMPLETED")
        .map(|j| j.cpu_efficiency)
        .collect();
    cpu.sort_by(f64::total_cmp);
    let mean = cpu.iter().sum::<f64>() / cpu.len() as f64;
    let median = (cpu[cpu.len() / 2 - 1] + cpu[cpu.len() / 2]) / 2.0;
    let e = &v["efficiency"];
    assert_eq!(e["completed_jobs"], cpu.len());
    assert!(close(e["avg_cpu_efficiency"].as_f64().unwrap(), mean));
    assert!(close(e["median_cpu_efficiency"].as_f64().unwrap(), median));
    assert_eq!(e["min_cpu_efficiency"].as_f64().unwrap(), cpu[0]);
    assert_eq!(
        e["max_cpu_efficiency"].as_f64().unwrap(),
        cpu[cpu.len() - 1]
    );

    // Per user, groups from the config.
    for user in ["alice", "bob", "carol", "dave"] {
        let mine: Vec<&ProcessedJob> = jobs.iter().filter(|j| j.user == user).collect();
        let u = get(&v, "users", "user", user);
        assert_eq!(u["jobs"], mine.len(), "{user}");
        assert!(
            close(
                u["cpu_hours"].as_f64().unwrap(),
                mine.iter().map(|j| j.cpu_hours_reserved).sum()
            ),
            "{user}"
        );
        let done: Vec<&&ProcessedJob> = mine.iter().filter(|j| j.state == "COMPLETED").collect();
        if done.is_empty() {
            assert!(u["avg_cpu_efficiency"].is_null(), "{user}");
        } else {
            let m = done.iter().map(|j| j.memory_efficiency).sum::<f64>() / done.len() as f64;
            assert!(
                close(u["avg_memory_efficiency"].as_f64().unwrap(), m),
                "{user}"
            );
            let w: f64 = done.iter().map(|j| j.cpu_hours_wasted).sum();
            assert!(close(u["cpu_hours_wasted"].as_f64().unwrap(), w), "{user}");
        }
        let waits: Vec<i64> = mine.iter().filter_map(|j| j.wait_seconds).collect();
        if !waits.is_empty() {
            let avg = waits.iter().sum::<i64>() as f64 / waits.len() as f64 / 3600.0;
            assert!(close(u["avg_wait_hours"].as_f64().unwrap(), avg), "{user}");
        }
    }
    assert_eq!(get(&v, "users", "user", "dave")["group"], "ungrouped");
    let physics = get(&v, "groups", "group", "physics");
    assert_eq!(physics["users"], 2);
    assert_eq!(physics["jobs"], 4);
    assert_eq!(v["top_wasters"][0]["user"], "alice");

    // Daily: each job's hours split minute by minute over the local days it ran.
    let zone: chrono_tz::Tz = ZONE.parse().unwrap();
    let mut daily: BTreeMap<NaiveDate, f64> = BTreeMap::new();
    for j in &jobs {
        let Some(start) = j.start_time else { continue };
        let minutes = j.elapsed_seconds / 60;
        for m in 0..minutes {
            let t = DateTime::from_timestamp_micros(start + m * 60_000_000).unwrap();
            *daily
                .entry(t.with_timezone(&zone).date_naive())
                .or_default() += j.cpu_hours_reserved / minutes as f64;
        }
    }
    for d in v["daily"].as_array().unwrap() {
        let day = date(d["date"].as_str().unwrap());
        let want = daily.get(&day).copied().unwrap_or(0.0);
        assert!(
            close(d["cpu_hours"].as_f64().unwrap(), want),
            "{day}: {} vs {want}",
            d["cpu_hours"]
        );
    }
    assert_eq!(v["daily"].as_array().unwrap().len(), 3);

    // Nodes: a job's hours split evenly over its expanded nodes; utilisation over 72 hours.
    let cpu02 = get(&v, "nodes", "node", "cpu-02");
    assert!(close(
        cpu02["cpu_hours"].as_f64().unwrap(),
        8.0 / 2.0 + 16.0
    ));
    assert!(close(
        cpu02["cpu_utilization"].as_f64().unwrap(),
        100.0 * 20.0 / (16.0 * 72.0)
    ));
    assert_eq!(get(&v, "nodes", "node", "gpu02")["jobs"], 2);
    assert!(get(&v, "nodes", "node", "cpu-01")["gpu_utilization"].is_null());
    assert_eq!(v["nodes"].as_array().unwrap().len(), 4);

    // States.
    assert_eq!(get(&v, "states", "state", "COMPLETED")["jobs"], 4);
    assert_eq!(get(&v, "states", "state", "PENDING")["jobs"], 1);
}

fn html_options() -> HtmlOptions {
    HtmlOptions {
        generated_at: "test".into(),
        top: 15,
    }
}

/// The fixture as a site with GPU accounting and an energy plugin records it: job 101
/// (alice, 2 GPUs x 2 h on gpu01 and gpu02) at 25%, job 106 (carol, 1 GPU x 0.5 h on gpu02)
/// at 80%, energy on both and on bob's FAILED CPU job 103 (energy counts whatever the state).
fn fixture_with_gpu_data() -> Vec<(&'static str, Vec<ProcessedJob>)> {
    let mut files = fixture();
    for (_, jobs) in &mut files {
        for j in jobs.iter_mut() {
            let (util, joules) = match j.job_id.as_str() {
                "101" => (Some(25.0), Some(7.2e6)),
                "106" => (Some(80.0), Some(1.8e6)),
                "103" => (None, Some(3.6e6)),
                _ => continue,
            };
            j.gpu_utilization = util;
            j.gpu_memory_max_mb = util.map(|_| 1024.0);
            j.gpu_hours_wasted = util.map(|u| j.gpu_hours_reserved * (1.0 - u / 100.0));
            j.energy_joules = joules;
        }
    }
    files
}

/// GPU efficiency is GPU hours used over GPU hours reserved of the measured COMPLETED jobs,
/// energy is summed over every job with data, and a node gets its share of a multi-node
/// job; computed here by hand from the fixture and compared with the JSON, the CSV and the
/// terminal.
#[test]
fn gpu_and_energy_figures_where_sacct_measured_them() {
    let dir = tempfile::tempdir().unwrap();
    let data = Archive::local(dir.path());
    data.create().unwrap();
    write_jobs(&data, fixture_with_gpu_data());
    let a = analysis(&data);
    let v: serde_json::Value =
        serde_json::from_str(&text_of(|o| write_json(&a, o).unwrap())).unwrap();
    let num = |x: &serde_json::Value| x.as_f64().unwrap_or_else(|| panic!("{x}"));
    let s = &v["summary"];
    // Used: 4 GPU h x 25% + 0.5 GPU h x 80% = 1.4 of 4.5.
    assert!(close(num(&s["gpu_efficiency"]), 100.0 * 1.4 / 4.5));
    assert!(close(num(&s["gpu_hours_wasted"]), 3.0 + 0.1));
    assert_eq!(s["gpu_jobs_measured"], 2);
    assert!(close(num(&s["gpu_hours_measured"]), 4.5));
    assert!(close(num(&s["energy_kwh"]), 2.0 + 0.5 + 1.0));
    let alice = get(&v, "users", "user", "alice");
    assert!(close(num(&alice["gpu_efficiency"]), 25.0));
    assert!(close(num(&alice["gpu_hours_wasted"]), 3.0));
    assert!(close(num(&alice["energy_kwh"]), 2.0));
    let bob = get(&v, "users", "user", "bob");
    assert!(bob["gpu_efficiency"].is_null(), "no GPU job: no figure");
    assert!(close(num(&bob["energy_kwh"]), 1.0));
    assert!(get(&v, "users", "user", "dave")["energy_kwh"].is_null());
    assert!(close(
        num(&get(&v, "groups", "group", "bio")["gpu_efficiency"]),
        80.0
    ));
    let gpu = get(&v, "partitions", "partition", "gpu");
    assert!(close(num(&gpu["gpu_efficiency"]), 100.0 * 1.4 / 4.5));
    // gpu01: half of job 101; gpu02: the other half and job 106.
    let n1 = get(&v, "nodes", "node", "gpu01");
    assert!(close(num(&n1["gpu_efficiency"]), 25.0));
    assert!(close(num(&n1["energy_kwh"]), 1.0));
    let n2 = get(&v, "nodes", "node", "gpu02");
    assert!(close(num(&n2["gpu_efficiency"]), 100.0 * 0.9 / 2.5));
    assert!(close(num(&n2["gpu_hours_wasted"]), 1.6));
    assert!(close(num(&n2["energy_kwh"]), 1.5));
    assert!(get(&v, "nodes", "node", "cpu-01")["gpu_efficiency"].is_null());
    let wasters: Vec<&str> = v["top_gpu_wasters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["user"].as_str().unwrap())
        .collect();
    assert_eq!(wasters, ["alice", "carol"], "by GPU hours wasted");

    let csv = text_of(|o| write_csv(&table(&a, "top_gpu_wasters").unwrap(), o).unwrap());
    assert!(
        csv.starts_with("user,group,gpu_jobs_measured,gpu_hours_measured,gpu_hours_wasted,gpu_efficiency\nalice,physics,1,4,3,25\n"),
        "{csv}"
    );

    let style = Style {
        color: false,
        width: 200,
        top: 15,
    };
    let text = text_of(|o| write_report(&a, &style, o).unwrap());
    assert!(!text.contains("no GPU accounting data"), "{text}");
    assert!(
        text.contains("GPU efficiency (completed, upper bound)"),
        "{text}"
    );
    assert!(text.contains("31.1%"), "{text}");
    assert!(text.contains("Top 10 GPU wasters"), "{text}");
    assert!(text.contains("kWh"), "{text}");
    let html = render(&a, &html_options());
    assert!(html.contains("Top 10 GPU wasters"));
    assert!(html.contains(">GPU eff</th>"), "GPU column in HTML");
}

/// The goldens' site has GPUs but no GPU accounting and no energy plugin: the terminal says
/// so once and shows no GPU-efficiency or energy column; JSON and CSV keep the keys, null.
#[test]
fn no_gpu_accounting_is_said_once_not_a_column() {
    let dir = tempfile::tempdir().unwrap();
    let a = analysis(&write_fixture(dir.path()));
    let style = Style {
        color: false,
        width: 200,
        top: 15,
    };
    let text = text_of(|o| write_report(&a, &style, o).unwrap());
    assert_eq!(text.matches("no GPU accounting data").count(), 1, "{text}");
    // The summary line is the only one: no "GPU eff" column header anywhere.
    assert_eq!(text.matches("GPU eff").count(), 1, "{text}");
    assert!(!text.contains("kWh"), "{text}");
    assert!(!text.contains("GPU wasters"), "{text}");
    let html = render(&a, &html_options());
    assert_eq!(html.matches("no GPU accounting data").count(), 1);
    assert!(!html.contains(">GPU eff</th>"));
    assert!(!html.contains(">kWh</th>"));
    let csv = text_of(|o| write_csv(&table(&a, "users").unwrap(), o).unwrap());
    assert!(csv
        .lines()
        .next()
        .unwrap()
        .ends_with(",gpu_efficiency,gpu_hours_wasted,energy_kwh"));
    assert!(csv.lines().nth(1).unwrap().ends_with(",,,"), "{csv}");
}

#[test]
fn filters_by_user_group_and_partition() {
    let dir = tempfile::tempdir().unwrap();
    let data = write_fixture(dir.path());
    let only = |f: Filter| analyze_dir(std::slice::from_ref(&data), &context(f)).unwrap();
    let a = only(Filter {
        group: Some("physics".into()),
        ..Default::default()
    });
    let users: Vec<&str> = a.users.iter().map(|u| u.key.as_str()).collect();
    assert_eq!(users, ["bob", "alice"]);
    let a = only(Filter {
        partition: Some("gpu".into()),
        ..Default::default()
    });
    assert_eq!(a.summary.jobs, 2);
    let a = only(Filter {
        user: Some("dave".into()),
        ..Default::default()
    });
    assert_eq!(a.summary.jobs, 1);
    assert_eq!(
        a.states[0].state, "COMPLETED",
        "the newest record of 107, not the PENDING one"
    );
    let a = only(Filter {
        group: Some("ungrouped".into()),
        ..Default::default()
    });
    assert_eq!(a.users.len(), 1);
}

#[test]
fn node_lists_are_expanded() {
    let dir = tempfile::tempdir().unwrap();
    let data = Archive::local(dir.path());
    data.create().unwrap();
    let jobs = vec![
        job(
            "1",
            "a",
            "p",
            "COMPLETED",
            Some("2026-11-24 10:00"),
            60,
            5,
            0,
            1.0,
            1.0,
            1.0,
            "node[001-004,010]",
            Some(0),
            "2026-11-25 00:00",
        ),
        job(
            "2",
            "a",
            "p",
            "COMPLETED",
            Some("2026-11-24 10:00"),
            60,
            5,
            0,
            1.0,
            1.0,
            1.0,
            "gpu-[1-2],cpu-[01-03]",
            Some(0),
            "2026-11-25 00:00",
        ),
        job(
            "3",
            "a",
            "p",
            "CANCELLED",
            None,
            0,
            1,
            0,
            1.0,
            0.0,
            0.0,
            "None assigned",
            None,
            "2026-11-25 00:00",
        ),
    ];
    let meta = Meta {
        date: date("2026-11-24"),
        sacct_version: String::new(),
        timezone: ZONE.into(),
    };
    write_processed(
        &data.name(Kind::Processed, date("2026-11-24")),
        &jobs,
        &meta,
    )
    .unwrap();
    let a = analyze_dir(std::slice::from_ref(&data), &context(Filter::default())).unwrap();
    let mut nodes: Vec<(&str, f64)> = a
        .nodes
        .iter()
        .map(|n| (n.node.as_str(), n.cpu_hours))
        .collect();
    nodes.sort_by(|x, y| x.0.cmp(y.0));
    let names: Vec<&str> = nodes.iter().map(|n| n.0).collect();
    assert_eq!(
        names,
        [
            "cpu-01", "cpu-02", "cpu-03", "gpu-1", "gpu-2", "node001", "node002", "node003",
            "node004", "node010"
        ]
    );
    // 5 CPU hours over 5 nodes each.
    assert!(nodes.iter().all(|n| close(n.1, 1.0)), "{nodes:?}");
}

/// Writes a file shaped like the Python tool's: naive local timestamps, Int32 counts,
/// LargeUtf8 strings, no extra columns; `reserved` adds the reserved-hours columns (newer
/// Python versions) or leaves them out (older ones).
fn python_file(path: &Path, reserved: bool) {
    let naive = |s: &str| {
        // Wall clock in Amsterdam, stored without a zone.
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M")
            .unwrap()
            .and_utc()
            .timestamp_micros()
    };
    let ts = || DataType::Timestamp(TimeUnit::Microsecond, None);
    let mut fields = vec![
        Field::new("job_id", DataType::LargeUtf8, false),
        Field::new("user", DataType::LargeUtf8, false),
        Field::new("partition", DataType::LargeUtf8, false),
        Field::new("state", DataType::LargeUtf8, false),
        Field::new("node_list", DataType::LargeUtf8, false),
        Field::new("submit_time", ts(), true),
        Field::new("start_time", ts(), true),
        Field::new("elapsed_seconds", DataType::Int32, false),
        Field::new("alloc_cpus", DataType::Int32, false),
        Field::new("req_mem_mb", DataType::Float64, false),
        Field::new("cpu_efficiency", DataType::Float64, false),
        Field::new("memory_efficiency", DataType::Float64, false),
        Field::new("processed_date", ts(), false),
        Field::new("is_complete", DataType::Boolean, false),
    ];
    let s = |v: &[&str]| Arc::new(LargeStringArray::from(v.to_vec())) as ArrayRef;
    let mut cols: Vec<ArrayRef> = vec![
        s(&["p1", "p2"]),
        s(&["alice", "erin"]),
        s(&["cpu", "cpu"]),
        s(&["COMPLETED", "COMPLETED"]),
        s(&["cpu-01", "cpu-02"]),
        Arc::new(TimestampMicrosecondArray::from(vec![
            Some(naive("2026-11-24 00:00")),
            Some(naive("2026-11-24 10:00")),
        ])),
        // 00:30 local on the 24th is 23:30 UTC on the 23rd: the job belongs to the 24th.
        Arc::new(TimestampMicrosecondArray::from(vec![
            Some(naive("2026-11-24 00:30")),
            Some(naive("2026-11-24 11:00")),
        ])),
        Arc::new(Int32Array::from(vec![3600, 7200])),
        Arc::new(Int32Array::from(vec![4, 2])),
        Arc::new(Float64Array::from(vec![2048.0, 1024.0])),
        Arc::new(Float64Array::from(vec![50.0, 70.0])),
        Arc::new(Float64Array::from(vec![20.0, 30.0])),
        Arc::new(TimestampMicrosecondArray::from(vec![
            naive("2026-11-25 02:00"),
            naive("2026-11-25 02:00"),
        ])),
        Arc::new(BooleanArray::from(vec![true, true])),
    ];
    if reserved {
        fields.push(Field::new("cpu_hours_reserved", DataType::Float64, false));
        fields.push(Field::new(
            "memory_gb_hours_reserved",
            DataType::Float64,
            false,
        ));
        fields.push(Field::new("gpu_hours_reserved", DataType::Float64, false));
        cols.push(Arc::new(Float64Array::from(vec![4.0, 4.0])));
        cols.push(Arc::new(Float64Array::from(vec![2.0, 2.0])));
        cols.push(Arc::new(Float64Array::from(vec![0.0, 0.0])));
    }
    let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), cols).unwrap();
    let file = std::fs::File::create(path).unwrap();
    let mut w = parquet::arrow::ArrowWriter::try_new(file, batch.schema(), None).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
}

#[test]
fn python_tool_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let data = Archive::local(dir.path());
    data.create().unwrap();
    python_file(&data.name(Kind::Processed, date("2026-11-24")), true);
    python_file(&data.name(Kind::Processed, date("2026-11-25")), false);
    let a = analyze_dir(std::slice::from_ref(&data), &context(Filter::default())).unwrap();
    // The same two job ids in both files: one record each counts.
    assert_eq!(a.summary.jobs, 2);
    assert_eq!(a.summary.duplicates_removed, 2);
    assert!(a.unreadable.is_empty(), "{:?}", a.unreadable);
    // Same processed_date: the later file (without reserved columns) wins; its hours come
    // from elapsed x CPUs and memory from the request, as the Python tool computed them.
    assert!(close(a.summary.cpu_hours, 4.0 * 1.0 + 2.0 * 2.0));
    assert!(close(a.summary.memory_gb_hours, 2.0 * 1.0 + 1.0 * 2.0));
    assert!(close(a.summary.ram_gb, 3072.0 / 1024.0));
    // Wait from start - submit: 30 and 60 minutes.
    assert!(close(a.summary.avg_wait_hours.unwrap(), 0.75));
    // Naive times are Amsterdam wall clock: alice's job runs 00:30-01:30 on the 24th.
    let d24 = a
        .daily
        .iter()
        .find(|d| d.date == date("2026-11-24"))
        .unwrap();
    assert!(close(d24.cpu_hours, 8.0), "{:?}", a.daily);
    let d23 = a
        .daily
        .iter()
        .find(|d| d.date == date("2026-11-23"))
        .unwrap();
    assert_eq!(d23.jobs, 0);
    assert_eq!(
        a.users
            .iter()
            .find(|u| u.key == "erin")
            .unwrap()
            .group
            .as_deref(),
        Some("ungrouped")
    );
    assert!(close(a.efficiency.cpu.mean.unwrap(), 60.0));
}

/// Jobs of cluster `cluster` (the fixture's are `rig`): ids 101 and 107 repeat the
/// fixture's, 201 is new, and 201 is also recorded twice (an older PENDING copy).
fn other_cluster(cluster: &str) -> Vec<(&'static str, Vec<ProcessedJob>)> {
    let on = |mut j: ProcessedJob| {
        j.cluster = cluster.into();
        j
    };
    let j = |id, user, state, start, processed| {
        on(job(
            id,
            user,
            "cpu",
            state,
            start,
            60,
            4,
            0,
            1024.0,
            50.0,
            50.0,
            "n01",
            Some(0),
            processed,
        ))
    };
    vec![
        (
            "2026-11-23",
            vec![
                j(
                    "101",
                    "erin",
                    "COMPLETED",
                    Some("2026-11-23 10:00"),
                    "2026-11-24 02:00",
                ),
                j("201", "erin", "PENDING", None, "2026-11-23 12:00"),
            ],
        ),
        (
            "2026-11-24",
            vec![
                j(
                    "107",
                    "alice",
                    "COMPLETED",
                    Some("2026-11-24 10:00"),
                    "2026-11-25 02:00",
                ),
                j(
                    "201",
                    "erin",
                    "COMPLETED",
                    Some("2026-11-24 12:00"),
                    "2026-11-25 02:00",
                ),
            ],
        ),
    ]
}

fn write_jobs(data: &Archive, files: Vec<(&str, Vec<ProcessedJob>)>) {
    for (d, jobs) in files {
        let meta = Meta {
            date: date(d),
            sacct_version: "slurm-wlm 22.05.8".into(),
            timezone: ZONE.into(),
        };
        write_processed(&data.name(Kind::Processed, date(d)), &jobs, &meta).unwrap();
    }
}

#[test]
fn two_archives_of_two_clusters_read_as_one() {
    let dir = tempfile::tempdir().unwrap();
    let rig = write_fixture(&dir.path().join("rig"));
    let other = Archive::local(dir.path().join("other"));
    other.create().unwrap();
    write_jobs(&other, other_cluster("other"));
    let both = [rig, other];
    let a = analyze_dir(&both, &context(Filter::default())).unwrap();
    // 7 of rig; 101, 107 and 201 of the other cluster count again; 201's older copy does not.
    assert_eq!(a.summary.jobs, 10);
    assert_eq!(a.summary.duplicates_removed, 2, "107 of rig, 201 of other");
    let rows: Vec<(&str, u64)> = a
        .clusters
        .iter()
        .map(|c| (c.key.as_str(), c.jobs))
        .collect();
    assert_eq!(rows, [("rig", 7), ("other", 3)]);
    let sum =
        |f: fn(&slurm_usage::report::analyze::Usage) -> f64| a.clusters.iter().map(f).sum::<f64>();
    assert!(close(sum(|c| c.cpu_hours), a.summary.cpu_hours));
    assert!(close(sum(|c| c.memory_gb_hours), a.summary.memory_gb_hours));
    assert!(close(sum(|c| c.ram_gb), a.summary.ram_gb));

    // Every output has the table: the terminal and HTML because there are two clusters.
    let style = Style {
        color: false,
        width: 100,
        top: 15,
    };
    let text = text_of(|o| write_report(&a, &style, o).unwrap());
    assert!(text.contains("Resource usage by cluster"), "{text}");
    let html = render(
        &a,
        &HtmlOptions {
            generated_at: "now".into(),
            top: 15,
        },
    );
    assert!(html.contains("<section id=\"clusters\">"));
    let v: serde_json::Value =
        serde_json::from_str(&text_of(|o| write_json(&a, o).unwrap())).unwrap();
    assert_eq!(get(&v, "clusters", "cluster", "other")["jobs"], 3);
    let csv = text_of(|o| write_csv(&table(&a, "clusters").unwrap(), o).unwrap());
    assert!(
        csv.starts_with("cluster,jobs,completed_jobs,cpu_hours,"),
        "{csv}"
    );
    assert_eq!(csv.lines().count(), 3);

    // --cluster: one cluster's jobs; with one cluster the terminal has no clusters table.
    let a = analyze_dir(
        &both,
        &context(Filter {
            cluster: Some("other".into()),
            ..Default::default()
        }),
    )
    .unwrap();
    assert_eq!(a.summary.jobs, 3);
    let users: Vec<&str> = a.users.iter().map(|u| u.key.as_str()).collect();
    assert_eq!(users, ["erin", "alice"], "by CPU hours");
    let text = text_of(|o| write_report(&a, &style, o).unwrap());
    assert!(!text.contains("Resource usage by cluster"), "{text}");
    assert!(text.contains("Only jobs with cluster=other"), "{text}");
}

/// One data dir holding two clusters' rows (as a lake's prefix above them would): `job`
/// refuses to pick a cluster for an id both hold, `--cluster` picks; `analyze --cluster`.
#[test]
fn binary_with_two_clusters_in_one_archive() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("data");
    let data = write_fixture(&d);
    let mut files = fixture();
    for (day, jobs) in &mut files {
        for (extra_day, extra) in other_cluster("other") {
            if extra_day == *day {
                jobs.extend(extra);
            }
        }
    }
    write_jobs(&data, files);
    let d = d.to_str().unwrap();

    let out = run(dir.path(), &["job", "101", "--data-dir", d]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("job 101 is archived for 2 clusters: other, rig") && err.contains("--cluster"),
        "{err}"
    );
    let out = run(
        dir.path(),
        &["job", "101", "--data-dir", d, "--cluster", "other"],
    );
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("Cluster: other") && text.contains("User/Group: erin/erin"),
        "{text}"
    );
    let out = run(
        dir.path(),
        &["job", "101", "--data-dir", d, "--cluster", "nope"],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("only for: other, rig"), "{err}");
    // An id only one cluster holds needs no --cluster.
    let out = run(dir.path(), &["job", "102", "--data-dir", d]);
    assert!(out.status.success());

    let window = [
        "--since",
        "2026-11-23",
        "--until",
        "2026-11-25",
        "--no-sinfo",
    ];
    let mut args = vec![
        "analyze",
        "--data-dir",
        d,
        "--format",
        "json",
        "--cluster",
        "rig",
    ];
    args.extend(window);
    let out = run(dir.path(), &args);
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["summary"]["jobs"], 7);
    assert_eq!(v["period"]["cluster"], "rig");
    assert_eq!(v["clusters"].as_array().unwrap().len(), 1);
    let mut args = vec!["analyze", "--data-dir", d];
    args.extend(window);
    let out = run(dir.path(), &args);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Resource usage by cluster"), "{text}");
}

// ---- the binary -------------------------------------------------------------------------

/// Runs the binary with the fixture's config (written to `dir`) and `args`.
fn run(dir: &Path, args: &[&str]) -> Output {
    let config = dir.join("config.toml");
    std::fs::write(&config, CONFIG).unwrap();
    run_with(&config, args)
}

/// Runs the binary with `config` and `args`.
fn run_with(config: &Path, args: &[&str]) -> Output {
    util::output(util::slurm_usage().arg("--config").arg(config).args(args))
}

#[test]
fn empty_and_missing_data_dirs() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty");
    Archive::local(&empty).create().unwrap();
    let e = empty.to_str().unwrap();
    let out = run(
        dir.path(),
        &[
            "analyze",
            "--data-dir",
            e,
            "--no-sinfo",
            "--since",
            "2026-11-01",
            "--until",
            "2026-11-07",
        ],
    );
    assert_eq!(out.status.code(), Some(0));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("No jobs between 2026-11-01 and 2026-11-07")
    );
    let out = run(
        dir.path(),
        &["analyze", "--data-dir", e, "--no-sinfo", "--format", "json"],
    );
    assert_eq!(out.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["summary"]["jobs"], 0);
    assert_eq!(v["users"].as_array().unwrap().len(), 0);
    assert_eq!(
        v["daily"].as_array().unwrap().len(),
        8,
        "--days 7 is 8 dates"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("no jobs between"));
    let out = run(
        dir.path(),
        &["analyze", "--data-dir", e, "--no-sinfo", "--format", "csv"],
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).lines().count(),
        1,
        "header only"
    );

    let missing = dir.path().join("nope");
    let out = run(
        dir.path(),
        &[
            "analyze",
            "--data-dir",
            missing.to_str().unwrap(),
            "--no-sinfo",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("hint"));
}

#[test]
fn binary_formats_html_and_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    write_fixture(&dir.path().join("data"));
    let d = dir.path().join("data");
    let d = d.to_str().unwrap();
    let window = [
        "--since",
        "2026-11-23",
        "--until",
        "2026-11-25",
        "--no-sinfo",
    ];
    let html = dir.path().join("report.html");
    let mut args = vec![
        "analyze",
        "--data-dir",
        d,
        "--format",
        "json",
        "--html",
        html.to_str().unwrap(),
    ];
    args.extend(window);
    let out = run(dir.path(), &args);
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["summary"]["jobs"], 7);
    assert_eq!(v["period"]["since"], "2026-11-23");
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("<svg") && page.contains("</html>"));
    assert!(
        !page.contains("<script") && !page.contains("<link") && !page.contains("src="),
        "self-contained"
    );

    let mut args = vec![
        "analyze",
        "--data-dir",
        d,
        "--format",
        "csv",
        "--table",
        "partitions",
    ];
    args.extend(window);
    let out = run(dir.path(), &args);
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("partition,jobs,"));

    let mut args = vec!["analyze", "--data-dir", d, "--table", "users"];
    args.extend(window);
    assert_eq!(
        run(dir.path(), &args).status.code(),
        Some(2),
        "--table without csv"
    );
    let out = run(
        dir.path(),
        &[
            "analyze",
            "--data-dir",
            d,
            "--since",
            "2026-11-25",
            "--until",
            "2026-11-23",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    let out = run(
        dir.path(),
        &["analyze", "--data-dir", d, "--since", "yesterday"],
    );
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn job_lookup() {
    let dir = tempfile::tempdir().unwrap();
    write_fixture(&dir.path().join("data"));
    let d = dir.path().join("data");
    let d = d.to_str().unwrap();
    let out = run(dir.path(), &["job", "102", "--data-dir", d]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Job ID: 102"), "{text}");
    assert!(text.contains("State: COMPLETED"), "{text}");
    assert!(
        text.contains("CPU Efficiency: 80.00% of 06:00:00 core-walltime"),
        "{text}"
    );
    assert!(
        text.contains("Memory Efficiency: 60.00% of 2.00 GB"),
        "{text}"
    );
    assert!(text.contains("User/Group: alice/alice"), "{text}");

    // Two records: the newest wins, the older one is mentioned.
    let out = run(dir.path(), &["job", "107", "--data-dir", d]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("State: COMPLETED"), "{text}");
    assert!(
        text.contains("Older record ignored") && text.contains("PENDING"),
        "{text}"
    );

    let out = run(dir.path(), &["job", "999999", "--data-dir", d]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("job 999999 is not in the archive"));
}

#[test]
fn job_search_reads_only_files_that_can_hold_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = write_fixture(dir.path());
    let zone: Zone = ZONE.parse().unwrap();
    let found =
        slurm_usage::report::job::lookup(std::slice::from_ref(&data), "103", None, &zone).unwrap();
    assert_eq!(found.records.len(), 1);
    assert_eq!(found.files, 4);
    // Only 2026-11-24 has "103" between its min and max job id.
    assert_eq!(found.files_read, 1);
}

// ---- a real browser ---------------------------------------------------------------------

fn chromium() -> Option<PathBuf> {
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .find_map(|n| {
            Command::new(n)
                .arg("--version")
                .output()
                .ok()
                .filter(|o| o.status.success())
                .map(|_| PathBuf::from(n))
        })
}

/// Counts the distinct colours of a PNG (python3's zlib does the inflating; no image crate).
const PNG_COLOURS: &str = r#"
import struct, sys, zlib
data = open(sys.argv[1], 'rb').read()
assert data[:8] == b'\x89PNG\r\n\x1a\n', 'not a PNG'
pos, idat, ihdr = 8, b'', None
while pos < len(data):
    n, kind = struct.unpack('>I4s', data[pos:pos + 8])
    body = data[pos + 8:pos + 8 + n]
    if kind == b'IHDR': ihdr = struct.unpack('>IIBBBBB', body)
    if kind == b'IDAT': idat += body
    pos += 12 + n
w, h, depth, ctype = ihdr[:4]
assert depth == 8 and ctype in (2, 6), ihdr
bpp = 3 if ctype == 2 else 4
raw, stride, prev, colours = zlib.decompress(idat), w * bpp, bytearray(w * bpp), set()
for y in range(h):
    f, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
    for i in range(stride):
        a = line[i - bpp] if i >= bpp else 0
        b, c = prev[i], prev[i - bpp] if i >= bpp else 0
        if f == 1: line[i] = (line[i] + a) & 255
        elif f == 2: line[i] = (line[i] + b) & 255
        elif f == 3: line[i] = (line[i] + (a + b) // 2) & 255
        elif f == 4:
            p = a + b - c; pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
    if y % 7 == 0:
        for x in range(0, stride, bpp * 3): colours.add(bytes(line[x:x + 3]))
    prev = line
print(w, h, len(colours))
"#;

#[test]
fn html_renders_in_chromium() {
    let Some(chrome) = chromium() else {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("chromium is not installed, and CI=true requires this test (hint: apt-get install -y chromium)");
        }
        eprintln!("skipped: chromium is not installed (apt-get install -y chromium)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let a = analysis(&write_fixture(&dir.path().join("data")));
    let page = dir.path().join("report.html");
    std::fs::write(
        &page,
        render(
            &a,
            &HtmlOptions {
                generated_at: "test".into(),
                top: 15,
            },
        ),
    )
    .unwrap();
    let url = format!("file://{}", page.display());
    let browser = |extra: &[&str]| {
        let profile = tempfile::tempdir().unwrap();
        let out = Command::new(&chrome)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--window-size=1200,2000",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .args(extra)
            .arg(&url)
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "chromium failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    };
    let png = dir.path().join("out.png");
    browser(&[&format!("--screenshot={}", png.display())]);
    let size = std::fs::metadata(&png).map(|m| m.len()).unwrap_or(0);
    assert!(size > 20_000, "screenshot is only {size} bytes");
    let check = Command::new("python3")
        .arg("-c")
        .arg(PNG_COLOURS)
        .arg(&png)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    let report = String::from_utf8_lossy(&check.stdout);
    let fields: Vec<u64> = report
        .split_whitespace()
        .map(|x| x.parse().unwrap())
        .collect();
    assert_eq!(fields[..2], [1200, 2000], "{report}");
    assert!(
        fields[2] > 10,
        "the screenshot has only {} colours: blank page?",
        fields[2]
    );

    let dom = browser(&["--dump-dom"]);
    let dom = String::from_utf8_lossy(&dom.stdout);
    assert!(
        dom.matches("<svg").count() >= 6,
        "charts missing from the rendered DOM"
    );
    assert!(dom.contains("<rect"), "bars missing");
    assert!(dom.contains("Resource usage by user"));
}

// ---- test, current, nodes with fake Slurm tools -------------------------------------------

/// Fake `sacct`, `sinfo`, `squeue`, `sacctmgr` and `scontrol` next to each other; the config
/// points `[collect] sacct` at the fake sacct, so the others are found beside it. They print
/// the real Slurm 22.05 captures from `tests/fixtures/`.
fn fake_slurm(dir: &Path, purge_step: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let bin = dir.join("slurm-bin");
    std::fs::create_dir_all(&bin).unwrap();
    let script = |name: &str, body: String| {
        let p = bin.join(name);
        std::fs::write(&p, format!("#!/bin/sh\nif [ \"$1\" = --version ]; then echo 'slurm-wlm 22.05.8'; exit 0; fi\n{body}")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    };
    script(
        "sacct",
        format!(
            "exec \"{}\" fake-sacct --jobs-per-day 20 -- \"$@\"\n",
            util::BIN
        ),
    );
    script(
        "sinfo",
        format!(
            "case \"$*\" in *%c*) cat \"{0}/sinfo-cpus.txt\";; *%G*) cat \"{0}/sinfo-gpus.txt\";; esac\n",
            fixtures.display()
        ),
    );
    script(
        "squeue",
        format!("cat \"{}/squeue.txt\"\n", fixtures.display()),
    );
    script(
        "sacctmgr",
        format!("sed 's/^PurgeStepAfter .*/PurgeStepAfter         = {purge_step}/' \"{}/sacctmgr-configuration.txt\"\n", fixtures.display()),
    );
    script(
        "scontrol",
        "echo 'AccountingStorageType   = accounting_storage/slurmdbd'\n".into(),
    );
    let config = dir.join("fake.toml");
    std::fs::write(
        &config,
        format!(
            "{CONFIG}[collect]\nsacct = \"{}\"\n",
            bin.join("sacct").display()
        ),
    )
    .unwrap();
    config
}

#[test]
fn test_command_passes_and_fails_with_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = fake_slurm(dir.path(), "NONE");
    let out = run_with(&config, &["test", "--data-dir", data.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    for check in [
        "config valid",
        "sacct found",
        "sinfo found",
        "accounting enabled",
        "data dir writable",
        "dry collection today",
        "purge margin",
    ] {
        assert!(
            text.lines()
                .any(|l| l.starts_with('✓') && l.contains(check)),
            "{check}: {text}"
        );
    }
    assert!(
        text.contains("jobs") && text.contains("nothing written"),
        "{text}"
    );
    assert!(!data.exists(), "the dry run wrote nothing");

    // Steps purged after a day: the daily collection cannot keep up.
    let config = fake_slurm(dir.path(), "1day");
    let out = run_with(&config, &["test", "--data-dir", data.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.lines()
            .any(|l| l.starts_with('✗') && l.contains("purge margin")),
        "{text}"
    );

    // A broken config is a failed check, and the others still run.
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[collect]\nlookback = 2\n").unwrap();
    let out = run_with(&bad, &["test", "--data-dir", data.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.lines()
            .any(|l| l.starts_with('✗') && l.contains("config valid")),
        "{text}"
    );
    assert!(text.contains("data dir writable"), "{text}");
}

#[test]
fn current_nodes_and_utilisation_from_sinfo() {
    let dir = tempfile::tempdir().unwrap();
    let config = fake_slurm(dir.path(), "NONE");
    let out = run_with(&config, &["current"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("Slurm queue: cores") && text.contains("Slurm queue: nodes"),
        "{text}"
    );
    assert!(text.contains("R=1 / PD=1"), "{text}");
    let out = run_with(&config, &["nodes"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.lines()
            .any(|l| l.contains("│ vm ") && l.contains(" 2 ")),
        "{text}"
    );

    // analyze asks sinfo for the node's CPUs: the real capture's `vm,2`.
    let data = dir.path().join("data");
    let d = Archive::local(&data);
    d.create().unwrap();
    let jobs = vec![job(
        "1",
        "alice",
        "debug",
        "COMPLETED",
        Some("2026-11-24 10:00"),
        60,
        2,
        0,
        100.0,
        50.0,
        50.0,
        "vm",
        Some(0),
        "2026-11-25 00:00",
    )];
    let meta = Meta {
        date: date("2026-11-24"),
        sacct_version: String::new(),
        timezone: ZONE.into(),
    };
    write_processed(&d.name(Kind::Processed, date("2026-11-24")), &jobs, &meta).unwrap();
    let out = run_with(
        &config,
        &[
            "analyze",
            "--data-dir",
            data.to_str().unwrap(),
            "--since",
            "2026-11-24",
            "--until",
            "2026-11-24",
            "--format",
            "json",
        ],
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["nodes"][0]["cpus"], 2);
    assert!(close(
        v["nodes"][0]["cpu_utilization"].as_f64().unwrap(),
        100.0 * 2.0 / (2.0 * 24.0)
    ));
    assert_eq!(v["nodes"][0]["gpus"], 0);
}

#[test]
fn an_unreadable_file_is_skipped_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let data = write_fixture(dir.path());
    let bad = data.name(Kind::Processed, date("2026-11-24"));
    std::fs::write(&bad, b"not parquet").unwrap();
    let a = analysis(&data);
    assert_eq!(a.unreadable.len(), 1, "{:?}", a.unreadable);
    assert!(
        a.unreadable[0].contains("2026-11-24.parquet"),
        "{:?}",
        a.unreadable
    );
    assert_eq!(a.summary.files, 2);
    // 101, 102 from the 23rd; 104, 105, 107 from the 25th.
    assert_eq!(a.summary.jobs, 5);
    assert_eq!(
        std::fs::read(&bad).unwrap(),
        b"not parquet",
        "analyze never moves or rewrites files"
    );
    let text = text_of(|o| {
        write_report(
            &a,
            &Style {
                color: false,
                width: 100,
                top: 15,
            },
            o,
        )
        .unwrap()
    });
    assert!(text.contains("warning: skipped"), "{text}");
}
