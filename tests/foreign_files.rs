//! Foreign and corrupt files in the data dir (issue 7, item 4).
//!
//! Whatever a collector meets in a data dir is either read (and extended) or moved aside to
//! `<file>.corrupt-<time>` with an error line naming both paths, and its date re-collected.
//! Nothing is deleted (our own leftover temp files excepted: removing them under the write
//! lock is the documented first step of a collection), nothing is moved twice, nothing is
//! read from a moved-aside copy, nothing blocks, nothing crashes. This holds for `collect`,
//! for the daemon over several cycles in a row, and the readers (`analyze`, `status`, `job`,
//! `test`) never change the data dir at all: they skip a file they cannot read with a warning
//! that names it.
//!
//! Every run is bracketed by snapshots of the data dir (bytes of every file, symlink targets)
//! and [`assert_nothing_lost`] checks that each entry there before still exists (with the same
//! bytes, unless it is a partition or the tracker) or has a moved-aside copy with the same
//! bytes. Every run of the binary has a time limit ([`run_within`]).
//!
//! Cases:
//! - truncated, zero-byte and random-byte `YYYY-MM-DD.parquet`, raw and processed;
//! - other schemas: an older processed file of ours (no extra columns, schema version 0), the
//!   Python tool's processed and raw files, integer job ids, a newer file of ours with a
//!   column we do not know, a Parquet file with one unrelated integer column (raw and
//!   processed), a raw file with a nested column;
//! - a tracker that is not JSON, JSON of the wrong shape, empty, a directory, a FIFO; one with
//!   bad entries among good ones;
//! - stray files: `notes.txt`, leftover temp files shaped like ours, dot-files that only look
//!   like them, a directory named `2026-01-01.parquet` (and one named like a date in the
//!   window), `2026-13-45.parquet`, symlinks pointing outside the data dir, FIFOs;
//! - `<file>.corrupt-<time>` files that already exist.
//!
//! Every test here runs in `cargo test`; none is ignored.

mod util;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Output};
use std::sync::Arc;
use std::time::Duration;

use arrow_array::{
    ArrayRef, BooleanArray, Float64Array, Int32Array, Int64Array, LargeStringArray, RecordBatch,
    StringArray, TimestampMicrosecondArray,
};
use arrow_schema::{DataType, Field, Schema, TimeUnit};
use chrono::NaiveDate;
use parquet::arrow::ArrowWriter;
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;
use slurm_usage::model::ProcessedJob;
use util::*;

const TRACKER: &str = ".date_completion_tracker.json";

// ---- running the binary -----------------------------------------------------------------

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Runs the binary like [`Env::run`], but kills it and fails the test if it has not finished
/// within `limit` (a file that blocks a reader must fail the test, not hang it).
fn run_within(env: &Env, args: &[&str], limit: Duration) -> Output {
    output_within(
        slurm_usage().arg("--config").arg(env.config()).args(args),
        limit,
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

/// [`run_within`] 30 s: every run here takes well under a second.
fn run(env: &Env, args: &[&str]) -> Output {
    run_within(env, args, Duration::from_secs(30))
}

/// `collect --days 1` (today and yesterday), which must succeed; returns its stderr (the log).
fn collect_ok(env: &Env) -> String {
    let out = run(env, &["collect", "--days", "1"]);
    assert!(out.status.success(), "collect failed: {}", stderr(&out));
    stderr(&out)
}

/// The first log line that contains every one of `words`.
fn line_with<'a>(log: &'a str, words: &[&str]) -> Option<&'a str> {
    log.lines().find(|l| words.iter().all(|w| l.contains(w)))
}

fn ids(jobs: &[ProcessedJob]) -> Vec<String> {
    let mut v: Vec<String> = jobs.iter().map(|j| j.job_id.to_string()).collect();
    v.sort();
    v
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

/// `sinfo` and `sacctmgr` next to the fake sacct, so that `slurm-usage test` can pass.
fn install_slurm_tools(env: &Env) {
    use std::os::unix::fs::PermissionsExt;
    for (name, body) in [
        ("sinfo", "echo \"slurm 22.05.8\""),
        (
            "sacctmgr",
            "printf 'PurgeJobAfter|NONE\\nPurgeStepAfter|NONE\\n'",
        ),
    ] {
        let p = env.path().join(name);
        fs::write(&p, format!("#!/bin/bash\n{body}\n")).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
    }
}

// ---- snapshots of the data dir ----------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
enum Entry {
    File(Vec<u8>),
    Dir,
    Link(PathBuf),
    /// A FIFO or socket: never opened (a FIFO would block).
    Special,
}

/// Everything under `root` (not following symlinks), by path relative to it. The lock files
/// are left out: a collector rewrites its pid into them.
type Snapshot = BTreeMap<PathBuf, Entry>;

fn snapshot(root: &Path) -> Snapshot {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with(".slurm-usage") && name.ends_with(".lock") {
                continue;
            }
            let p = e.path();
            let meta = fs::symlink_metadata(&p).unwrap();
            let entry = if meta.file_type().is_symlink() {
                Entry::Link(fs::read_link(&p).unwrap())
            } else if meta.is_dir() {
                stack.push(p.clone());
                Entry::Dir
            } else if meta.is_file() {
                Entry::File(fs::read(&p).unwrap())
            } else {
                Entry::Special
            };
            out.insert(p.strip_prefix(root).unwrap().to_path_buf(), entry);
        }
    }
    out
}

/// `name.corrupt-YYYYMMDDTHHMMSS.mmmZ`?
fn is_copy_of(copy: &str, name: &str) -> bool {
    let Some(stamp) = copy
        .strip_prefix(name)
        .and_then(|s| s.strip_prefix(".corrupt-"))
    else {
        return false;
    };
    let b = stamp.as_bytes();
    b.len() == 20
        && b[8] == b'T'
        && b[15] == b'.'
        && b[19] == b'Z'
        && b.iter()
            .enumerate()
            .all(|(i, c)| [8, 15, 19].contains(&i) || c.is_ascii_digit())
}

/// Where `path` (relative, in `after`) now lives if it or a directory above it was moved aside.
fn moved_copy(after: &Snapshot, path: &Path) -> Option<PathBuf> {
    for a in path.ancestors().filter(|a| !a.as_os_str().is_empty()) {
        let name = a.file_name()?.to_string_lossy().into_owned();
        let parent = a.parent().unwrap_or(Path::new(""));
        let rest = path.strip_prefix(a).unwrap();
        for k in after.keys() {
            if k.parent().unwrap_or(Path::new("")) == parent
                && is_copy_of(&k.file_name().unwrap().to_string_lossy(), &name)
            {
                let there = if rest.as_os_str().is_empty() {
                    k.clone()
                } else {
                    k.join(rest)
                };
                if after.contains_key(&there) {
                    return Some(there);
                }
            }
        }
    }
    None
}

/// Whether a collector may rewrite `rel`: a partition (`raw/` or `processed/`
/// `YYYY-MM-DD.parquet`) or the tracker. Everything else keeps its bytes.
fn may_rewrite(rel: &Path) -> bool {
    let name = rel.file_name().unwrap().to_string_lossy();
    let parent = rel.parent().unwrap_or(Path::new("")).to_string_lossy();
    let partition = name
        .strip_suffix(".parquet")
        .is_some_and(|d| d.len() == 10 && NaiveDate::parse_from_str(d, "%Y-%m-%d").is_ok());
    (partition && (parent == "raw" || parent == "processed")) || rel == Path::new(TRACKER)
}

/// Every entry of `before` is still there (with the same content unless it is a partition or
/// the tracker, which a collection rewrites), or was moved aside with the same content; only
/// the `temps` (our leftover temp files) are gone, and they are.
fn assert_nothing_lost(before: &Snapshot, after: &Snapshot, temps: &[&str]) {
    for (path, entry) in before {
        if temps.iter().any(|t| Path::new(t) == path) {
            assert!(
                !after.contains_key(path),
                "leftover temp file {} was not removed",
                path.display()
            );
            continue;
        }
        if let Some(now) = after.get(path) {
            assert!(
                now == entry || may_rewrite(path),
                "{} was changed, though it is neither a partition nor the tracker",
                path.display()
            );
            continue;
        }
        let copy = moved_copy(after, path).unwrap_or_else(|| {
            panic!(
                "{} disappeared without a moved-aside copy; now: {:#?}",
                path.display(),
                after.keys().collect::<Vec<_>>()
            )
        });
        assert_eq!(
            &after[&copy],
            entry,
            "{} moved aside to {} with other content",
            path.display(),
            copy.display()
        );
    }
}

/// The moved-aside copies of `file` (`<file>.corrupt-<time>`).
fn copies(file: &Path) -> Vec<PathBuf> {
    let name = file.file_name().unwrap().to_string_lossy().into_owned();
    let Ok(entries) = fs::read_dir(file.parent().unwrap()) else {
        return Vec::new();
    };
    let mut v: Vec<PathBuf> = entries
        .flatten()
        .filter(|e| is_copy_of(&e.file_name().to_string_lossy(), &name))
        .map(|e| e.path())
        .collect();
    v.sort();
    v
}

/// `file` was moved aside exactly once, its copy holds `bytes`, `file` itself is no longer
/// those bytes, and `log` has an error line naming both paths.
fn assert_moved_aside(file: &Path, bytes: &[u8], log: &str) -> PathBuf {
    let c = copies(file);
    assert_eq!(
        c.len(),
        1,
        "one moved-aside copy of {}: {c:?}",
        file.display()
    );
    assert_eq!(
        fs::read(&c[0]).unwrap(),
        bytes,
        "{} holds the bytes",
        c[0].display()
    );
    let line = line_with(
        log,
        &[
            "moved aside",
            &file.display().to_string(),
            &c[0].display().to_string(),
        ],
    )
    .unwrap_or_else(|| panic!("no log line names {} and its copy:\n{log}", file.display()));
    assert!(line.contains("ERROR"), "{line}");
    c[0].clone()
}

// ---- the readers ------------------------------------------------------------------------

/// What the readers were asked and must find.
struct Readers<'a> {
    /// Processed files `analyze` and `job` must skip, each named in a warning.
    unreadable: &'a [PathBuf],
    /// A job id that `job` must find.
    job: Option<&'a str>,
    /// Also run `slurm-usage test`.
    test: bool,
    /// `analyze --since` (default: the last 7 days).
    since: Option<&'a str>,
}

/// Runs `analyze` (JSON and table), `status`, `job` and `test` on the data dir as it is:
/// none fails or changes a byte of it, and every unreadable file is named in a warning.
/// Returns the JSON report.
fn run_readers(env: &Env, r: &Readers<'_>) -> serde_json::Value {
    let before = snapshot(&env.data());
    let mut window = vec!["analyze", "--no-sinfo"];
    if let Some(s) = r.since {
        window.extend(["--since", s]);
    }
    let mut json = window.clone();
    json.extend(["--format", "json"]);
    let out = run(env, &json);
    assert!(out.status.success(), "analyze --format json failed");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        report["summary"]["files_unreadable"],
        r.unreadable.len(),
        "{}",
        stderr(&out)
    );
    for p in r.unreadable {
        let p = p.display().to_string();
        assert!(
            line_with(&stderr(&out), &["warning: skipped", &p]).is_some(),
            "analyze names {p}: {}",
            stderr(&out)
        );
    }
    let out = run(env, &window);
    assert!(out.status.success(), "analyze failed");
    for p in r.unreadable {
        let p = p.display().to_string();
        assert!(
            line_with(&stdout(&out), &["warning: skipped", &p]).is_some(),
            "the table names {p}"
        );
    }

    let out = run(env, &["status"]);
    assert!(out.status.success(), "status failed");

    if let Some(id) = r.job {
        let out = run(env, &["job", id]);
        assert!(out.status.success(), "job {id} not found");
        assert!(
            stdout(&out).contains(&format!("Job ID: {id}")),
            "{}",
            stdout(&out)
        );
        for p in r.unreadable {
            let p = p.display().to_string();
            assert!(
                line_with(&stderr(&out), &["warning: skipped", &p]).is_some(),
                "job names {p}: {}",
                stderr(&out)
            );
        }
    }

    if r.test {
        install_slurm_tools(env);
        let out = run(env, &["test"]);
        assert!(out.status.success(), "test failed: {}", stdout(&out));
        assert!(
            stdout(&out).contains("✓ data dir writable"),
            "{}",
            stdout(&out)
        );
    }

    assert_eq!(
        snapshot(&env.data()),
        before,
        "a reader changed the data dir"
    );
    report
}

/// Jobs in `analyze --format json` over the last 7 days; no file skipped.
fn analyzed_jobs(env: &Env) -> u64 {
    let out = run(env, &["analyze", "--no-sinfo", "--format", "json"]);
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["summary"]["files_unreadable"], 0, "{}", stderr(&out));
    v["summary"]["jobs"].as_u64().unwrap()
}

// ---- files to plant ---------------------------------------------------------------------

/// Deterministic noise (xorshift), never starting with the Parquet magic.
fn noise(len: usize, mut seed: u64) -> Vec<u8> {
    let mut v = Vec::with_capacity(len);
    while v.len() < len {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        v.extend_from_slice(&seed.to_le_bytes());
    }
    v.truncate(len);
    v[0] = b'#';
    v
}

fn micros(d: NaiveDate, h: u32, m: u32) -> i64 {
    d.and_hms_opt(h, m, 0).unwrap().and_utc().timestamp_micros()
}

/// Writes `batch` as a Parquet file with `metadata` in its key-value metadata.
fn write_batch(path: &Path, batch: &RecordBatch, metadata: &[(&str, &str)]) {
    let kv: Vec<KeyValue> = metadata
        .iter()
        .map(|(k, v)| KeyValue::new(k.to_string(), v.to_string()))
        .collect();
    let props = WriterProperties::builder()
        .set_key_value_metadata((!kv.is_empty()).then_some(kv))
        .build();
    let f = fs::File::create(path).unwrap();
    let mut w = ArrowWriter::try_new(f, batch.schema(), Some(props)).unwrap();
    w.write(batch).unwrap();
    w.close().unwrap();
}

/// Job 500 of user carol, 03:00-04:00 on `d`, 4 CPUs: a job only the planted file knows.
fn carol(d: NaiveDate) -> ProcessedJob {
    ProcessedJob {
        job_id: "500".into(),
        job_id_raw: "500".into(),
        user: "carol".into(),
        partition: "cpu".into(),
        state: "COMPLETED".into(),
        submit_time: Some(micros(d, 2, 50)),
        start_time: Some(micros(d, 3, 0)),
        end_time: Some(micros(d, 4, 0)),
        node_list: "node007".into(),
        elapsed_seconds: 3600,
        alloc_cpus: 4,
        req_mem_mb: 2048.0,
        max_rss_mb: 1024.0,
        total_cpu_seconds: 7200.0,
        cpu_efficiency: 50.0,
        memory_efficiency: 50.0,
        cpu_hours_wasted: 2.0,
        memory_gb_hours_wasted: 1.0,
        cpu_hours_reserved: 4.0,
        memory_gb_hours_reserved: 2.0,
        processed_date: micros(d, 23, 0),
        is_complete: true,
        alloc_mem_mb: 2048.0,
        ..Default::default()
    }
}

/// Our processed schema as an earlier version wrote it: the Python tool's columns plus
/// `processed_date` and `is_complete`, none of the extra columns, schema version 0.
fn old_processed_of_ours(path: &Path, jobs: &[ProcessedJob]) {
    let full = slurm_usage::model::to_record_batch(&jobs.iter().collect::<Vec<_>>()).unwrap();
    let upto = full.schema().index_of("is_complete").unwrap();
    let old = full.project(&(0..=upto).collect::<Vec<_>>()).unwrap();
    write_batch(
        path,
        &old,
        &[
            ("slurm_usage.schema_version", "0"),
            ("slurm_usage.tool_version", "0.0.1"),
        ],
    );
}

/// A processed file of a newer version of ours: the schema version after ours and a column
/// this version does not know (`project`).
fn newer_processed_of_ours(path: &Path, jobs: &[ProcessedJob]) {
    let full = slurm_usage::model::to_record_batch(&jobs.iter().collect::<Vec<_>>()).unwrap();
    let mut fields: Vec<Field> = full
        .schema()
        .fields()
        .iter()
        .map(|f| f.as_ref().clone())
        .collect();
    fields.push(Field::new("project", DataType::Utf8, true));
    let mut cols = full.columns().to_vec();
    cols.push(Arc::new(StringArray::from(vec![
        Some("apollo");
        jobs.len()
    ])));
    let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), cols).unwrap();
    let newer = (slurm_usage::model::SCHEMA_VERSION.parse::<u32>().unwrap() + 1).to_string();
    write_batch(
        path,
        &batch,
        &[
            ("slurm_usage.schema_version", newer.as_str()),
            ("slurm_usage.tool_version", "9.0.0"),
        ],
    );
}

/// The Python tool's processed file (its ProcessedJob as polars writes it, see
/// docs/data-layout.md): its columns only, `LargeUtf8` strings, naive timestamps (wall
/// clock; the tests' zone is UTC), Int32 counts. `int_ids` stores `job_id` as an integer, as a pandas script might.
fn python_processed(path: &Path, d: NaiveDate, int_ids: bool) {
    let ts = || DataType::Timestamp(TimeUnit::Microsecond, None);
    let s = |v: &str| Arc::new(LargeStringArray::from(vec![v])) as ArrayRef;
    let t = |v: i64| Arc::new(TimestampMicrosecondArray::from(vec![Some(v)])) as ArrayRef;
    let f = |v: f64| Arc::new(Float64Array::from(vec![v])) as ArrayRef;
    let i = |v: i32| Arc::new(Int32Array::from(vec![v])) as ArrayRef;
    let (id_type, id): (DataType, ArrayRef) = if int_ids {
        (DataType::Int64, Arc::new(Int64Array::from(vec![500])))
    } else {
        (DataType::LargeUtf8, s("500"))
    };
    let columns: Vec<(&str, DataType, ArrayRef)> = vec![
        ("job_id", id_type, id),
        ("user", DataType::LargeUtf8, s("carol")),
        ("job_name", DataType::LargeUtf8, s("sim")),
        ("partition", DataType::LargeUtf8, s("cpu")),
        ("state", DataType::LargeUtf8, s("COMPLETED")),
        ("submit_time", ts(), t(micros(d, 2, 50))),
        ("start_time", ts(), t(micros(d, 3, 0))),
        ("end_time", ts(), t(micros(d, 4, 0))),
        ("node_list", DataType::LargeUtf8, s("node007")),
        ("elapsed_seconds", DataType::Int32, i(3600)),
        ("alloc_cpus", DataType::Int32, i(4)),
        ("req_mem_mb", DataType::Float64, f(2048.0)),
        ("max_rss_mb", DataType::Float64, f(1024.0)),
        ("total_cpu_seconds", DataType::Float64, f(7200.0)),
        ("alloc_gpus", DataType::Int32, i(0)),
        ("cpu_efficiency", DataType::Float64, f(50.0)),
        ("memory_efficiency", DataType::Float64, f(50.0)),
        ("cpu_hours_wasted", DataType::Float64, f(2.0)),
        ("memory_gb_hours_wasted", DataType::Float64, f(1.0)),
        ("cpu_hours_reserved", DataType::Float64, f(4.0)),
        ("memory_gb_hours_reserved", DataType::Float64, f(2.0)),
        ("gpu_hours_reserved", DataType::Float64, f(0.0)),
        (
            "is_complete",
            DataType::Boolean,
            Arc::new(BooleanArray::from(vec![true])),
        ),
        ("processed_date", ts(), t(micros(d, 23, 0))),
    ];
    let schema = Schema::new(
        columns
            .iter()
            .map(|(n, t, _)| Field::new(*n, t.clone(), true))
            .collect::<Vec<_>>(),
    );
    let batch = RecordBatch::try_new(
        Arc::new(schema),
        columns.into_iter().map(|(_, _, c)| c).collect(),
    )
    .unwrap();
    write_batch(path, &batch, &[]);
}

/// The Python tool's raw file: sacct's field names, every value a string (`LargeUtf8`), no
/// `RawLine` column; job 500 and its batch step.
fn python_raw(path: &Path, d: NaiveDate) {
    let start = format!("{d}T03:00:00");
    let rows: [[&str; 8]; 2] = [
        [
            "500",
            "500",
            "sim",
            "carol",
            "cpu",
            "COMPLETED",
            &start,
            "3600",
        ],
        [
            "500.batch",
            "500.batch",
            "batch",
            "",
            "",
            "COMPLETED",
            &start,
            "3600",
        ],
    ];
    let names = [
        "JobID",
        "JobIDRaw",
        "JobName",
        "User",
        "Partition",
        "State",
        "Start",
        "ElapsedRaw",
    ];
    let fields: Vec<Field> = names
        .iter()
        .map(|n| Field::new(*n, DataType::LargeUtf8, true))
        .collect();
    let cols: Vec<ArrayRef> = (0..names.len())
        .map(|c| {
            Arc::new(LargeStringArray::from(
                rows.iter().map(|r| r[c]).collect::<Vec<_>>(),
            )) as ArrayRef
        })
        .collect();
    let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), cols).unwrap();
    write_batch(path, &batch, &[]);
}

/// A Parquet file that has nothing to do with us: one integer column, three rows.
fn unrelated(path: &Path) {
    let batch = RecordBatch::try_new(
        Arc::new(Schema::new(vec![Field::new("x", DataType::Int64, false)])),
        vec![Arc::new(Int64Array::from(vec![1, 2, 3]))],
    )
    .unwrap();
    write_batch(path, &batch, &[]);
}

fn processed_dir(env: &Env) -> PathBuf {
    env.data().join("processed")
}

fn raw_dir(env: &Env) -> PathBuf {
    env.data().join("raw")
}

fn make_dirs(env: &Env) {
    fs::create_dir_all(processed_dir(env)).unwrap();
    fs::create_dir_all(raw_dir(env)).unwrap();
}

/// How a case begins, after [`setup`].
enum Start {
    /// Empty `processed/` and `raw/`, to plant files in.
    Dirs,
    /// Alice's job 11 collected: `d` is archived and complete.
    Collected,
}

/// The start most cases share: a fresh env and `d`, yesterday, then `start`.
fn setup(start: Start) -> (Env, NaiveDate) {
    let env = Env::new("");
    let d = day(1);
    match start {
        Start::Dirs => make_dirs(&env),
        Start::Collected => {
            env.set_output(d, &alices_job("11", d));
            collect_ok(&env);
        }
    }
    (env, d)
}

/// Alice's job `id`, finished at 10:00 on `d`: what sacct reports in most cases (job 11, or
/// 501 beside a planted job 500).
fn alices_job(id: &str, d: NaiveDate) -> Vec<String> {
    finished_job(id, "alice", &at(d, "10:00"), "COMPLETED")
}

/// [`collect_ok`] between two snapshots of the data dir: nothing in it is lost
/// ([`assert_nothing_lost`]). Returns the log.
fn collect_losing_nothing(env: &Env) -> String {
    let before = snapshot(&env.data());
    let log = collect_ok(env);
    assert_nothing_lost(&before, &snapshot(&env.data()), &[]);
    log
}

// ---- unreadable partitions: truncated, empty, random ------------------------------------

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Raw,
    Processed,
}

#[derive(Debug, Clone, Copy)]
enum Spoil {
    /// The first half of a file we wrote: no footer.
    Truncated,
    Empty,
    Random,
}

/// Yesterday holds running job 10 (archived by a first collection); then its partition of
/// `kind` is spoiled and sacct reports only job 11 (job 10 purged). The readers skip the
/// spoiled file and change nothing; `collect` moves it aside, once, and re-collects the date.
fn spoiled_partition(kind: Kind, spoil: Spoil) {
    let env = Env::new("");
    let d = day(1);
    env.set_output(d, &running_job("10", &at(d, "08:00")));
    collect_ok(&env);
    let file = match kind {
        Kind::Raw => env.raw(d),
        Kind::Processed => env.processed(d),
    };
    let good = fs::read(&file).unwrap();
    let bad = match spoil {
        Spoil::Truncated => good[..good.len() / 2].to_vec(),
        Spoil::Empty => Vec::new(),
        Spoil::Random => noise(4096, 0x9e37_79b9_7f4a_7c15),
    };
    fs::write(&file, &bad).unwrap();

    // The readers: analyze and job skip a bad processed file (job still finds 10 when the
    // spoiled file is the raw one).
    let unreadable = if kind == Kind::Processed {
        vec![file.clone()]
    } else {
        vec![]
    };
    run_readers(
        &env,
        &Readers {
            unreadable: &unreadable,
            job: (kind == Kind::Raw).then_some("10"),
            test: matches!(spoil, Spoil::Random),
            since: None,
        },
    );

    env.set_output(d, &alices_job("11", d));
    env.clear_calls();
    let log = collect_losing_nothing(&env);
    let copy = assert_moved_aside(&file, &bad, &log);
    assert!(
        env.calls().contains(&d.to_string()),
        "the date is collected"
    );
    match kind {
        // Job 10 lived only in the moved-aside file.
        Kind::Processed => {
            assert_eq!(ids(&env.jobs(d)), ["11"]);
            assert_eq!(
                sorted(env.raw_keys(d)),
                ["10", "10.batch", "11", "11.batch"]
            );
            assert!(env.completed().contains(&d.to_string()));
        }
        // Job 10's raw rows live only in the moved-aside file; its processed record stays.
        Kind::Raw => {
            assert_eq!(ids(&env.jobs(d)), ["10", "11"]);
            assert_eq!(sorted(env.raw_keys(d)), ["11", "11.batch"]);
            assert!(!env.completed().contains(&d.to_string()), "10 still runs");
        }
    }

    // The next runs read the new file and leave the copy alone.
    let log = collect_losing_nothing(&env);
    assert!(!log.contains("moved aside"), "{log}");
    assert_eq!(copies(&file), std::slice::from_ref(&copy));
    assert_eq!(fs::read(&copy).unwrap(), bad);
    let expected = if kind == Kind::Processed { 1 } else { 2 };
    assert_eq!(
        analyzed_jobs(&env),
        expected,
        "the copy is not read as data"
    );
}

#[test]
fn truncated_processed_file_is_moved_aside() {
    spoiled_partition(Kind::Processed, Spoil::Truncated);
}

#[test]
fn truncated_raw_file_is_moved_aside() {
    spoiled_partition(Kind::Raw, Spoil::Truncated);
}

#[test]
fn empty_processed_file_is_moved_aside() {
    spoiled_partition(Kind::Processed, Spoil::Empty);
}

#[test]
fn empty_raw_file_is_moved_aside() {
    spoiled_partition(Kind::Raw, Spoil::Empty);
}

#[test]
fn random_bytes_processed_file_is_moved_aside() {
    spoiled_partition(Kind::Processed, Spoil::Random);
}

#[test]
fn random_bytes_raw_file_is_moved_aside() {
    spoiled_partition(Kind::Raw, Spoil::Random);
}

// ---- other schemas ----------------------------------------------------------------------

/// Yesterday's processed file is planted by `plant` and holds carol's job 500; sacct reports
/// alice's 501. The readers see 500; `collect` keeps it, adds 501, moves nothing, and writes
/// our current schema.
fn foreign_processed_is_read_and_extended(plant: impl Fn(&Path, NaiveDate)) {
    let (env, d) = setup(Start::Dirs);
    plant(&env.processed(d), d);
    let report = run_readers(
        &env,
        &Readers {
            unreadable: &[],
            job: Some("500"),
            test: false,
            since: None,
        },
    );
    assert_eq!(report["summary"]["jobs"], 1);
    assert_eq!(report["users"][0]["user"], "carol");
    assert_eq!(report["users"][0]["cpu_hours"], 4.0);

    env.set_output(d, &alices_job("501", d));
    let log = collect_losing_nothing(&env);
    assert!(!log.contains("moved aside"), "{log}");
    assert!(copies(&env.processed(d)).is_empty());
    let jobs = env.jobs(d);
    assert_eq!(ids(&jobs), ["500", "501"], "kept and extended");
    let c = jobs.iter().find(|j| j.job_id == "500").unwrap();
    assert_eq!(
        (
            c.user.as_str(),
            c.node_list.as_str(),
            c.alloc_cpus,
            c.cpu_hours_reserved
        ),
        ("carol", "node007", 4, 4.0)
    );
    assert_eq!(c.start_time, Some(micros(d, 3, 0)));
    let md = slurm_usage::store::parquet::read_metadata(&env.processed(d)).unwrap();
    assert!(
        md.contains(&(
            "slurm_usage.schema_version".into(),
            slurm_usage::model::SCHEMA_VERSION.into()
        )),
        "{md:?}"
    );
    assert_eq!(analyzed_jobs(&env), 2);
}

#[test]
fn older_processed_file_of_ours_is_read_and_extended() {
    foreign_processed_is_read_and_extended(|p, d| old_processed_of_ours(p, &[carol(d)]));
}

#[test]
fn python_tools_processed_file_is_read_and_extended() {
    foreign_processed_is_read_and_extended(|p, d| python_processed(p, d, false));
}

#[test]
fn processed_file_with_integer_job_ids_is_read_and_extended() {
    foreign_processed_is_read_and_extended(|p, d| python_processed(p, d, true));
}

#[test]
fn python_tools_raw_file_is_read_and_extended() {
    let (env, d) = setup(Start::Dirs);
    python_processed(&env.processed(d), d, false);
    python_raw(&env.raw(d), d);
    let out = run(&env, &["job", "500"]);
    assert!(out.status.success());
    assert!(
        stdout(&out).contains("500.batch"),
        "steps from the Python raw file: {}",
        stdout(&out)
    );

    env.set_output(d, &alices_job("501", d));
    let log = collect_losing_nothing(&env);
    assert!(!log.contains("moved aside"), "{log}");
    assert_eq!(
        sorted(env.raw_keys(d)),
        ["500", "500.batch", "501", "501.batch"]
    );
    // Fresh rows come first, archived rows after them.
    assert_eq!(
        sorted(
            raw_column(&env.raw(d), "User")
                .into_iter()
                .flatten()
                .filter(|u| !u.is_empty())
                .collect::<Vec<_>>()
        ),
        ["alice", "carol"]
    );
    assert_eq!(ids(&env.jobs(d)), ["500", "501"]);
}

#[test]
fn unrelated_raw_file_is_kept_and_extended() {
    let (env, d) = setup(Start::Dirs);
    unrelated(&env.raw(d));
    env.set_output(d, &alices_job("11", d));
    let log = collect_losing_nothing(&env);
    assert!(!log.contains("moved aside"), "{log}");
    // Its rows and its column stay (as text, like every raw column), beside sacct's rows.
    let mut x = raw_column(&env.raw(d), "x");
    x.sort();
    assert_eq!(
        x,
        [
            None,
            None,
            Some("1".into()),
            Some("2".into()),
            Some("3".into()),
        ]
    );
    assert_eq!(
        sorted(env.raw_keys(d)),
        ["11", "11.batch", "<line>", "<line>", "<line>"]
    );
    assert_eq!(ids(&env.jobs(d)), ["11"]);
}

/// A raw file with a nested column (a list, as another tool might write) is kept, the list as
/// its text form like every raw column, and extended.
#[test]
fn raw_file_with_a_nested_column_is_kept_and_extended() {
    use arrow_array::builder::{ListBuilder, StringBuilder};
    let (env, d) = setup(Start::Dirs);
    let mut tags = ListBuilder::new(StringBuilder::new());
    tags.values().append_value("a");
    tags.append(true);
    let batch = RecordBatch::try_new(
        Arc::new(Schema::new(vec![
            Field::new("JobIDRaw", DataType::Utf8, true),
            Field::new(
                "tags",
                DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))),
                true,
            ),
        ])),
        vec![
            Arc::new(StringArray::from(vec!["7"])),
            Arc::new(tags.finish()),
        ],
    )
    .unwrap();
    write_batch(&env.raw(d), &batch, &[]);
    env.set_output(d, &alices_job("11", d));
    let log = collect_losing_nothing(&env);
    assert_eq!(ids(&env.jobs(d)), ["11"], "{log}");
    assert_eq!(sorted(env.raw_keys(d)), ["11", "11.batch", "7"]);
    // Kept, as its text form.
    assert_eq!(
        raw_column(&env.raw(d), "tags")
            .into_iter()
            .flatten()
            .collect::<Vec<_>>(),
        ["[a]"]
    );
}

/// A Parquet file with one unrelated integer column named like a processed partition: it
/// holds no job, so `analyze` and `job` skip it with a warning instead of counting three
/// jobs without id or user.
#[test]
fn unrelated_processed_file_is_skipped_by_the_readers() {
    let (env, d) = setup(Start::Dirs);
    env.set_output(day(2), &alices_job("11", day(2)));
    let out = run(&env, &["collect", "--days", "2"]);
    assert!(out.status.success());
    unrelated(&env.processed(d));
    let report = run_readers(
        &env,
        &Readers {
            unreadable: &[env.processed(d)],
            job: Some("11"),
            test: false,
            since: None,
        },
    );
    assert_eq!(report["summary"]["jobs"], 1, "{report}");
}

/// `collect` must not turn a Parquet file it cannot make sense of into job records: the
/// unrelated file is moved aside (and its date collected), not rewritten with three empty
/// jobs in place of its column.
#[test]
fn unrelated_processed_file_is_moved_aside_by_collect() {
    let (env, d) = setup(Start::Dirs);
    unrelated(&env.processed(d));
    let bad = fs::read(env.processed(d)).unwrap();
    env.set_output(d, &alices_job("11", d));
    let log = collect_losing_nothing(&env);
    assert_moved_aside(&env.processed(d), &bad, &log);
    assert_eq!(ids(&env.jobs(d)), ["11"]);
}

/// A processed file of a newer schema (a downgrade) is never rewritten: its columns we do
/// not know would be lost. Its date fails with a message that names the file and says to
/// upgrade; the file keeps its bytes; other dates go on.
#[test]
fn newer_processed_file_is_left_untouched_and_its_date_fails() {
    let (env, d) = setup(Start::Dirs);
    newer_processed_of_ours(&env.processed(d), &[carol(d)]);
    let bytes = fs::read(env.processed(d)).unwrap();
    env.set_output(d, &alices_job("501", d));
    let before = snapshot(&env.data());
    let out = run(&env, &["collect", "--days", "1"]);
    let log = stderr(&out);
    assert!(
        !out.status.success(),
        "a failed date makes collect fail: {log}"
    );
    assert_nothing_lost(&before, &snapshot(&env.data()), &[]);
    assert_eq!(fs::read(env.processed(d)).unwrap(), bytes, "rewritten");
    assert!(
        line_with(
            &log,
            &[
                &env.processed(d).display().to_string(),
                "newer slurm-usage",
                "upgrade"
            ]
        )
        .is_some(),
        "{log}"
    );
    assert!(!env.completed().contains(&d.to_string()));
}

// ---- the tracker ------------------------------------------------------------------------

/// Yesterday is collected and complete; then the tracker is replaced by `bytes`. `collect`
/// moves it aside (once), names it, and re-collects yesterday, whose archived job stays.
fn spoiled_tracker(bytes: &[u8], why: &str) {
    let (env, d) = setup(Start::Collected);
    assert!(env.completed().contains(&d.to_string()));
    let tracker = env.data().join(TRACKER);
    fs::write(&tracker, bytes).unwrap();
    run_readers(
        &env,
        &Readers {
            unreadable: &[],
            job: Some("11"),
            test: false,
            since: None,
        },
    );

    env.clear_calls();
    env.set_output(d, &[]);
    let log = collect_losing_nothing(&env);
    let copy = assert_moved_aside(&tracker, bytes, &log);
    assert!(
        line_with(&log, &["completion tracker is unusable", why]).is_some(),
        "the reason ({why}): {log}"
    );
    assert!(
        env.calls().contains(&d.to_string()),
        "completion facts lost: yesterday is queried again"
    );
    assert_eq!(ids(&env.jobs(d)), ["11"], "the archived job stays");
    assert!(env.completed().contains(&d.to_string()));

    env.clear_calls();
    let log = collect_losing_nothing(&env);
    assert!(!log.contains("moved aside"), "{log}");
    assert_eq!(copies(&tracker), [copy]);
    assert_eq!(env.calls(), [day(0).to_string()], "complete again");
}

#[test]
fn tracker_that_is_not_json_is_moved_aside() {
    spoiled_tracker(b"{\"completed_dates\": [\"2026-11-2", "not valid JSON");
}

#[test]
fn empty_tracker_is_moved_aside() {
    spoiled_tracker(b"", "not valid JSON (empty or cut short)");
}

#[test]
fn tracker_of_the_wrong_shape_is_moved_aside() {
    spoiled_tracker(b"[\"2026-11-24\"]", "JSON of another shape");
}

#[test]
fn tracker_with_fields_of_the_wrong_type_is_moved_aside() {
    spoiled_tracker(
        b"{\"completed_dates\": \"all\", \"last_updated\": 7}",
        "JSON of another shape",
    );
}

#[test]
fn tracker_with_bad_date_facts_is_moved_aside() {
    spoiled_tracker(
        b"{\"completed_dates\": [], \"dates\": {\"2026-11-24\": 7}}",
        "JSON of another shape",
    );
}

/// Entries that are not dates are dropped; the good ones, and keys we do not know, stay.
#[test]
fn tracker_with_bad_entries_among_good_ones_is_read() {
    let (env, d) = setup(Start::Collected);
    let tracker = env.data().join(TRACKER);
    fs::write(
        &tracker,
        format!(
            r#"{{"completed_dates": ["{d}", "garbage", "2026-02-30"], "last_updated": "2025-08-21 02:00:03", "site": {{"note": "kept"}}}}"#
        ),
    )
    .unwrap();
    env.clear_calls();
    let log = collect_ok(&env);
    assert!(!log.contains("moved aside"), "{log}");
    assert!(copies(&tracker).is_empty());
    assert_eq!(
        env.calls(),
        [day(0).to_string()],
        "yesterday stays complete"
    );
    assert_eq!(env.completed(), [d.to_string()]);
    assert_eq!(env.tracker()["site"]["note"], "kept");
}

/// A directory where the tracker belongs is moved aside like any unreadable tracker, instead
/// of failing every collection.
#[test]
fn tracker_that_is_a_directory_is_moved_aside() {
    let (env, _) = setup(Start::Collected);
    let tracker = env.data().join(TRACKER);
    fs::remove_file(&tracker).unwrap();
    fs::create_dir(&tracker).unwrap();
    fs::write(tracker.join("inside.txt"), b"admin's notes").unwrap();
    let log = collect_losing_nothing(&env);
    let c = copies(&tracker);
    assert_eq!(c.len(), 1, "{log}");
    assert_eq!(fs::read(c[0].join("inside.txt")).unwrap(), b"admin's notes");
    assert!(
        line_with(
            &log,
            &[
                "moved aside",
                "not a regular file but a directory",
                &tracker.display().to_string()
            ]
        )
        .is_some(),
        "{log}"
    );
    assert!(tracker.is_file(), "a new tracker is written");
}

/// `status` reads the tracker for its facts: an unreadable one must be said, not shown as
/// "0 complete dates, last success never", and a moved-aside one listed like the partitions.
#[test]
fn status_names_an_unreadable_or_moved_aside_tracker() {
    let (env, _) = setup(Start::Collected);
    let tracker = env.data().join(TRACKER);
    fs::write(&tracker, b"{not json").unwrap();
    let out = run(&env, &["status"]);
    assert!(out.status.success());
    let all = stdout(&out) + &stderr(&out);
    assert!(
        line_with(&all, &[&tracker.display().to_string()]).is_some(),
        "status names the unreadable tracker: {all}"
    );
    collect_ok(&env);
    let copy = copies(&tracker).pop().unwrap();
    let out = run(&env, &["status"]);
    assert!(
        stdout(&out).contains(&copy.display().to_string()),
        "status lists the moved-aside tracker: {}",
        stdout(&out)
    );
}

// ---- stray files, directories, symlinks -------------------------------------------------

/// Files that are not partitions are never read, moved or deleted, by any command; our own
/// leftover temp files are removed (and said so) by the next collection.
#[test]
fn stray_files_are_left_alone_and_leftover_temps_removed() {
    use std::os::unix::fs::symlink;
    let (env, d) = setup(Start::Dirs);
    env.set_output(d, &alices_job("11", d));
    let outside = env.path().join("outside");
    fs::create_dir_all(&outside).unwrap();
    fs::write(outside.join("secret.parquet"), noise(512, 7)).unwrap();
    let (p, r) = (processed_dir(&env), raw_dir(&env));
    for dir in [&p, &r] {
        fs::write(dir.join("notes.txt"), b"ask Bob before deleting anything\n").unwrap();
        fs::write(dir.join("2026-13-45.parquet"), noise(300, 3)).unwrap();
        fs::create_dir(dir.join("2026-01-01.parquet")).unwrap();
        fs::write(dir.join("2026-01-01.parquet").join("part-0.parquet"), b"x").unwrap();
        symlink(&outside, dir.join("elsewhere")).unwrap();
        symlink(outside.join("secret.parquet"), dir.join("link.parquet")).unwrap();
    }
    fs::write(env.data().join("notes.txt"), b"root notes\n").unwrap();
    // Our temp naming (src/store/atomic.rs): `.<name>.tmp-<pid>-<n>`, left by a killed writer.
    let temps = [
        format!("processed/.{d}.parquet.tmp-999999-0"),
        format!("raw/.{d}.parquet.tmp-999999-1"),
        format!(".{TRACKER}.tmp-999999-2"),
    ];
    for t in &temps {
        // A complete, valid file of ours: still not data until it is renamed.
        old_processed_of_ours(&env.data().join(t), &[carol(d)]);
    }
    let secret = fs::read(outside.join("secret.parquet")).unwrap();
    let stray: Vec<PathBuf> = [&p, &r]
        .iter()
        .flat_map(|dir| {
            [
                "notes.txt",
                "2026-13-45.parquet",
                "2026-01-01.parquet",
                "elsewhere",
                "link.parquet",
            ]
            .map(|n| dir.join(n))
        })
        .chain([env.data().join("notes.txt")])
        .collect();

    // The readers skip the directory named like a partition (when the window covers it).
    run_readers(
        &env,
        &Readers {
            unreadable: &[p.join("2026-01-01.parquet")],
            job: None,
            test: true,
            since: Some("2026-01-01"),
        },
    );

    let before = snapshot(&env.data());
    let log = collect_ok(&env);
    let temp_refs: Vec<&str> = temps.iter().map(String::as_str).collect();
    assert_nothing_lost(&before, &snapshot(&env.data()), &temp_refs);
    assert!(
        line_with(
            &log,
            &["removed temp files left by an interrupted write", "count=3"]
        )
        .is_some(),
        "{log}"
    );
    assert!(!log.contains("moved aside"), "{log}");
    assert_eq!(ids(&env.jobs(d)), ["11"], "the temp file is not data");

    for _ in 0..2 {
        let before = snapshot(&env.data());
        let log = collect_ok(&env);
        assert!(
            !log.contains("moved aside") && !log.contains("temp files"),
            "{log}"
        );
        assert_eq!(snapshot(&env.data()).len(), before.len());
        assert_nothing_lost(&before, &snapshot(&env.data()), &[]);
    }
    let after = snapshot(&env.data());
    for s in &stray {
        let rel = s.strip_prefix(env.data()).unwrap();
        assert_eq!(before.get(rel), after.get(rel), "{} untouched", s.display());
        assert!(copies(s).is_empty(), "{} not moved", s.display());
    }
    assert_eq!(fs::read(outside.join("secret.parquet")).unwrap(), secret);

    let out = run(&env, &["job", "11"]);
    assert!(out.status.success());
    assert!(
        line_with(
            &stderr(&out),
            &[
                "warning: skipped",
                &p.join("2026-01-01.parquet").display().to_string()
            ]
        )
        .is_some(),
        "{}",
        stderr(&out)
    );
}

/// Only temp files of our exact shape (`.<partition or tracker>.tmp-<pid>-<n>`) are ours to
/// remove; another dot-file that merely contains `.tmp-` (an admin's, an editor's) is not.
#[test]
fn dot_files_that_only_look_like_temps_are_kept() {
    let (env, _) = setup(Start::Dirs);
    let keep = [
        processed_dir(&env).join(".notes.tmp-keep"),
        raw_dir(&env).join(".2026-11-01.parquet.tmp-backup"),
        env.data().join(".bashrc.tmp-old"),
    ];
    for k in &keep {
        fs::write(k, b"not yours").unwrap();
    }
    collect_losing_nothing(&env);
}

/// A directory named like a partition of a date in the window is moved aside (with its
/// content) like an unreadable file, and the date collected.
#[test]
fn directory_named_like_a_partition_in_the_window_is_moved_aside() {
    let (env, d) = setup(Start::Dirs);
    for file in [env.processed(d), env.raw(d)] {
        fs::create_dir(&file).unwrap();
        fs::write(file.join("keep.me"), b"contents").unwrap();
    }
    env.set_output(d, &alices_job("11", d));
    let log = collect_losing_nothing(&env);
    for file in [env.processed(d), env.raw(d)] {
        let c = copies(&file);
        assert_eq!(c.len(), 1, "{}: {log}", file.display());
        assert_eq!(fs::read(c[0].join("keep.me")).unwrap(), b"contents");
        assert!(
            line_with(&log, &["moved aside", &file.display().to_string()]).is_some(),
            "{log}"
        );
        assert!(file.is_file());
    }
    assert_eq!(ids(&env.jobs(d)), ["11"]);
    let log = collect_ok(&env);
    assert!(!log.contains("moved aside"), "{log}");
    assert_eq!(copies(&env.processed(d)).len(), 1);
}

/// Partitions that are symlinks to files outside the data dir: a readable one is read and
/// extended (the new partition is written inside the data dir, in place of the link), an
/// unreadable one is moved aside as a link; the files outside are never written or moved.
#[test]
fn symlinked_partitions_outside_the_data_dir() {
    use std::os::unix::fs::symlink;
    let (env, d) = setup(Start::Dirs);
    let outside = env.path().join("outside");
    fs::create_dir_all(&outside).unwrap();
    old_processed_of_ours(&outside.join("good.parquet"), &[carol(d)]);
    fs::write(outside.join("bad.parquet"), noise(1000, 11)).unwrap();
    let good = fs::read(outside.join("good.parquet")).unwrap();
    let bad = fs::read(outside.join("bad.parquet")).unwrap();
    symlink(outside.join("good.parquet"), env.processed(d)).unwrap();
    symlink(outside.join("bad.parquet"), env.raw(d)).unwrap();
    run_readers(
        &env,
        &Readers {
            unreadable: &[],
            job: Some("500"),
            test: false,
            since: None,
        },
    );

    env.set_output(d, &alices_job("501", d));
    let log = collect_losing_nothing(&env);
    assert_eq!(ids(&env.jobs(d)), ["500", "501"]);
    assert!(!env.processed(d).is_symlink());
    let c = copies(&env.raw(d));
    assert_eq!(c.len(), 1, "{log}");
    assert_eq!(fs::read_link(&c[0]).unwrap(), outside.join("bad.parquet"));
    assert!(
        line_with(&log, &["moved aside", &env.raw(d).display().to_string()]).is_some(),
        "{log}"
    );
    assert_eq!(sorted(env.raw_keys(d)), ["501", "501.batch"]);
    assert_eq!(fs::read(outside.join("good.parquet")).unwrap(), good);
    assert_eq!(fs::read(outside.join("bad.parquet")).unwrap(), bad);
    assert_eq!(fs::read_dir(&outside).unwrap().count(), 2);
}

/// Makes a FIFO at `path` (`mkfifo`); false when this machine cannot.
fn mkfifo(path: &Path) -> bool {
    Command::new("mkfifo")
        .arg(path)
        .status()
        .is_ok_and(|s| s.success())
}

/// A FIFO named like a partition would block whoever opens it until someone writes to it.
/// The readers never open one: `analyze` and `job` skip it with a warning naming it (and
/// `job` shows no steps rather than waiting on a FIFO raw file).
#[test]
fn fifo_named_like_a_partition_does_not_block_the_readers() {
    let (env, d) = setup(Start::Collected);
    fs::remove_file(env.raw(d)).unwrap();
    if !mkfifo(&env.raw(d)) || !mkfifo(&env.processed(day(2))) {
        eprintln!("skipped: mkfifo does not work here");
        return;
    }
    let report = run_readers(
        &env,
        &Readers {
            unreadable: &[env.processed(day(2))],
            job: Some("11"),
            test: true,
            since: None,
        },
    );
    assert_eq!(report["summary"]["jobs"], 1);
}

/// `collect` opens the partitions of the dates it queries: a FIFO there must be moved aside
/// like any unreadable file, not block the cycle (and the write lock) forever.
#[test]
fn fifo_named_like_a_partition_is_moved_aside_by_collect() {
    let (env, d) = setup(Start::Dirs);
    if !mkfifo(&env.processed(d)) {
        return;
    }
    env.set_output(d, &alices_job("11", d));
    let out = run_within(&env, &["collect", "--days", "1"], Duration::from_secs(10));
    assert!(out.status.success());
    assert_eq!(copies(&env.processed(d)).len(), 1);
    assert_eq!(ids(&env.jobs(d)), ["11"]);
}

/// A FIFO where the tracker belongs is moved aside, not read (which would block).
#[test]
fn fifo_tracker_is_moved_aside() {
    let (env, d) = setup(Start::Collected);
    let tracker = env.data().join(TRACKER);
    fs::remove_file(&tracker).unwrap();
    if !mkfifo(&tracker) {
        return;
    }
    let log = collect_losing_nothing(&env);
    assert_eq!(copies(&tracker).len(), 1);
    assert!(
        line_with(
            &log,
            &["moved aside", "FIFO", &tracker.display().to_string()]
        )
        .is_some(),
        "{log}"
    );
    assert!(env.completed().contains(&d.to_string()));
}

/// `status` and the daemon's start read the tracker too: a FIFO there must not block them.
#[test]
fn fifo_tracker_does_not_block_status_or_the_daemon() {
    let (env, _) = setup(Start::Dirs);
    if !mkfifo(&env.data().join(TRACKER)) {
        return;
    }
    let out = run_within(&env, &["status"], Duration::from_secs(10));
    assert!(out.status.success());
    let mut daemon = start_daemon(&env);
    daemon.expect_status("collected ", Duration::from_secs(10));
    assert_eq!(stop(&mut daemon).code(), Some(0));
}

// ---- moved-aside copies that already exist ----------------------------------------------

/// Copies moved aside earlier (valid Parquet and JSON, so reading them would show) are never
/// read as data nor moved again, by any command; `status` lists them.
#[test]
fn existing_moved_aside_copies_are_never_read_or_moved() {
    let (env, d) = setup(Start::Dirs);
    let stamp = "20261101T000000.000Z";
    let mut ghost = carol(d);
    ghost.job_id = "999".into();
    ghost.job_id_raw = "999".into();
    let p_copy = processed_dir(&env).join(format!("{d}.parquet.corrupt-{stamp}"));
    let r_copy = raw_dir(&env).join(format!("{d}.parquet.corrupt-{stamp}"));
    let t_copy = env.data().join(format!("{TRACKER}.corrupt-{stamp}"));
    old_processed_of_ours(&p_copy, &[ghost]);
    python_raw(&r_copy, d);
    fs::write(&t_copy, format!(r#"{{"completed_dates": ["{d}"]}}"#)).unwrap();
    env.set_output(d, &alices_job("11", d));

    let before = snapshot(&env.data());
    collect_ok(&env);
    assert!(
        env.calls().contains(&d.to_string()),
        "the copy of the tracker is not read"
    );
    let log = collect_ok(&env);
    assert!(!log.contains("moved aside"), "{log}");
    let after = snapshot(&env.data());
    assert_nothing_lost(&before, &after, &[]);
    for c in [&p_copy, &r_copy, &t_copy] {
        let rel = c.strip_prefix(env.data()).unwrap();
        assert_eq!(before[rel], after[rel], "{} untouched", c.display());
    }
    assert_eq!(ids(&env.jobs(d)), ["11"]);
    assert_eq!(sorted(env.raw_keys(d)), ["11", "11.batch"]);

    let report = run_readers(
        &env,
        &Readers {
            unreadable: &[],
            job: Some("11"),
            test: false,
            since: None,
        },
    );
    assert_eq!(report["summary"]["jobs"], 1);
    let out = run(&env, &["job", "999"]);
    assert_eq!(out.status.code(), Some(1), "job 999 is only in a copy");
    let out = run(&env, &["status"]);
    for c in [&p_copy, &r_copy] {
        assert!(
            stdout(&out).contains(&format!("Moved aside:     {}", c.display())),
            "{}",
            stdout(&out)
        );
    }
}

/// A complete date is never queried again, so nothing moves its unreadable partition aside:
/// the date should be re-collected all the same (the readers' hint promises it).
#[test]
fn unreadable_partition_of_a_complete_date_is_moved_aside() {
    let (env, d) = setup(Start::Collected);
    assert!(env.completed().contains(&d.to_string()));
    let bad = noise(2000, 5);
    fs::write(env.processed(d), &bad).unwrap();
    let log = collect_ok(&env);
    assert_moved_aside(&env.processed(d), &bad, &log);
    assert_eq!(ids(&env.jobs(d)), ["11"]);
}

// ---- the daemon -------------------------------------------------------------------------

/// A daemon on the env's data dir with a one-second schedule.
fn start_daemon(env: &Env) -> Daemon {
    env.write_config("lookback_days = 1\n[schedule]\ncron = \"* * * * * *\"\njitter = \"0s\"");
    Daemon::start(env.path(), &env.config(), &[])
}

/// SIGTERM, then the exit status (within 5 s).
fn stop(daemon: &mut Daemon) -> ExitStatus {
    daemon.signal("TERM");
    daemon.wait_exit(Duration::from_secs(5))
}

/// A data dir full of bad and foreign files under a daemon for several cycles in a row: each
/// unreadable file is moved aside once (one log line each, in the first cycle), every cycle
/// succeeds, the daemon stays up and stops cleanly, and nothing else is touched.
#[test]
fn daemon_moves_each_bad_file_aside_once_and_keeps_running() {
    use std::os::unix::fs::symlink;
    let env = Env::new("");
    let (d, today) = (day(1), day(0));
    // Yesterday still has a running job, so the daemon queries it again.
    env.set_output(d, &running_job("10", &at(d, "08:00")));
    env.set_output(
        today,
        &finished_job("20", "bob", &at(today, "00:01"), "COMPLETED"),
    );
    collect_ok(&env);
    let (p, r) = (processed_dir(&env), raw_dir(&env));
    let good = fs::read(env.processed(d)).unwrap();
    let truncated = good[..good.len() / 2].to_vec();
    fs::write(env.processed(d), &truncated).unwrap();
    let random = noise(3000, 42);
    fs::write(env.raw(today), &random).unwrap();
    let tracker = env.data().join(TRACKER);
    fs::write(&tracker, b"\0\0\0garbage").unwrap();
    fs::write(p.join("notes.txt"), b"notes").unwrap();
    fs::write(r.join("2026-13-45.parquet"), b"not a date").unwrap();
    fs::create_dir(p.join("2026-01-01.parquet")).unwrap();
    let outside = env.path().join("outside");
    fs::create_dir_all(&outside).unwrap();
    symlink(&outside, r.join("elsewhere")).unwrap();
    let old_copy = p.join(format!("{}.parquet.corrupt-20261101T000000.000Z", day(3)));
    fs::write(&old_copy, b"moved aside last month").unwrap();
    let temp = format!("raw/.{today}.parquet.tmp-999999-0");
    fs::write(env.data().join(&temp), b"half a file").unwrap();
    env.set_output(
        d,
        &finished_job("10", "bob", &at(d, "08:00"), "COMPLETED")
            .into_iter()
            .chain(alices_job("11", d))
            .collect::<Vec<_>>(),
    );

    let before = snapshot(&env.data());
    let mut daemon = start_daemon(&env);
    for cycle in 1..=4 {
        let status = daemon.expect_status("collected ", Duration::from_secs(15));
        assert!(status.contains(" 0 failed"), "cycle {cycle}: {status}");
        assert!(daemon.alive());
    }
    let log = daemon.log();
    assert_moved_aside(&env.processed(d), &truncated, &log);
    assert_moved_aside(&env.raw(today), &random, &log);
    assert_moved_aside(&tracker, b"\0\0\0garbage", &log);
    assert_eq!(
        log.lines().filter(|l| l.contains("moved aside")).count(),
        3,
        "each file once: {log}"
    );
    assert_eq!(
        log.lines()
            .filter(|l| l.contains("removed temp files"))
            .count(),
        1,
        "{log}"
    );
    assert!(copies(&old_copy).is_empty());
    assert_eq!(stop(&mut daemon).code(), Some(0), "{}", daemon.log());

    let after = snapshot(&env.data());
    assert_nothing_lost(&before, &after, &[&temp]);
    for rel in [
        "processed/notes.txt",
        "raw/2026-13-45.parquet",
        "processed/2026-01-01.parquet",
        "raw/elsewhere",
    ] {
        assert_eq!(
            before.get(Path::new(rel)),
            after.get(Path::new(rel)),
            "{rel}"
        );
    }
    let rel = old_copy.strip_prefix(env.data()).unwrap();
    assert_eq!(before[rel], after[rel]);
    assert_eq!(ids(&env.jobs(d)), ["10", "11"]);
    assert_eq!(ids(&env.jobs(today)), ["20"]);
    assert!(env.completed().contains(&d.to_string()));
}
