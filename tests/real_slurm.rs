//! Integration tests against a REAL SLURM 22.05 with slurmdbd and MariaDB (tests/slurm/).
//!
//! They run the built `slurm-usage collect` (and one `daemon` cycle) against the rig that
//! `tests/slurm/cluster.sh` starts and compare what it archived, job by job, with what the
//! real `sacct` reports for the same job (`sacct -j ID`, TZ=UTC). CPU seconds vary with the machine's load, so every
//! expected number comes from sacct's own output, never from a constant.
//!
//! Gate: they need root and the running rig, and only run when `SLURM_USAGE_REAL_SLURM=1`
//! (CI sets it: `tests/slurm/ci.sh`). Unset, every test prints one "skipped" line and passes.
//! Set, an unreachable cluster is a failure with the reason, never a silent skip.
//!
//! Flow (each phase runs once per test process, behind a `OnceLock`, whatever test asks first):
//! 1. The rig answers (`scontrol ping`, `sacctmgr`), else fail.
//! 2. The job mix: the manifest `$SLURM_RIG_DIR/jobs.tsv` is reused when it matches the
//!    cluster (the RUNNING job runs, the PENDING job is pending for at least 10 more
//!    minutes, every finished job has its expected state, the mode's job set); otherwise
//!    `tests/slurm/jobs.sh` is run (needs root). So the tests are idempotent.
//! 3. First collect into `target/tmp/real_slurm/first` (`collect --days 1`), bracketed by
//!    `sacct -j` snapshots of every job of the manifest (repeated until the finished jobs are
//!    settled and did not change across the collect).
//!    `current` and `nodes` are run right then too, with `squeue`/`sinfo` beside them.
//! 4. Second phase: `jobs.sh finish` (cancels the RUNNING and PENDING jobs, waits for their
//!    final accounting), a copy of the first data dir, a second collect into it, snapshots.
//! 5. Daemon phase: `slurm-usage daemon` on a fresh data dir (its catch-up cycle at start,
//!    `STATUS=collected ...` on a notify socket, SIGTERM, exit 0), snapshots.
//!
//! Every phase's data is checked against its own sacct snapshots with the same checks
//! (records, metrics, raw rows, attribution, window); `status`, `test` and `job` run against
//! the phases' data dirs. Tests only read the phases, so they may run in any order or in
//! parallel; what changes the cluster runs once, under a mutex.
//!
//! The configured zone is picked so that it is about noon there (`Etc/GMT±N`): the jobs of the
//! mix, which ran minutes ago, and the PENDING job's `--begin=now+1hour` eligible time all
//! fall on "today", whatever the time of day CI runs; it also exercises a non-UTC zone for
//! the `-S/-E` windows and date attribution. `SLURM_USAGE_TEST_TZ` overrides it.
//!
//! Environment: `SLURM_USAGE_REAL_SLURM` (gate), `SLURM_RIG_DIR` (/tmp/slurm-usage-rig),
//! `SLURM_CONF` (default `$SLURM_RIG_DIR/etc/slurm.conf`), `SLURM_USAGE_TEST_TZ`,
//! `SLURM_USAGE_TEST_TRACE` (print every command the tests run, with its time).

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixDatagram;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use arrow_array::cast::AsArray;
use arrow_array::Array;
use arrow_schema::DataType;
use chrono::{DateTime, NaiveDate, NaiveDateTime, Timelike, Utc};
use slurm_usage::model::ProcessedJob;
use slurm_usage::store::parquet::{read_processed, read_raw, Existing};
use slurm_usage::zone::Zone;

const GATE: &str = "SLURM_USAGE_REAL_SLURM";
const SKIP: &str = "skipped: set SLURM_USAGE_REAL_SLURM=1 and start tests/slurm/cluster.sh";
const BIN: &str = env!("CARGO_BIN_EXE_slurm-usage");
const SEP: char = '\x1f';
const TRACKER: &str = ".date_completion_tracker.json";

/// What the tests ask sacct for, per job (JobName last: it may hold `|`).
const FIELDS: &[&str] = &[
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
const MOVING: &[&str] = &["ElapsedRaw"];

/// Writes one line to the process's stderr. Not `eprintln!`: libtest captures that for
/// passing tests, and the skip line and the timings must show in CI logs.
macro_rules! note {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

/// Serializes everything that changes the cluster's state or the shared data dirs.
static CLUSTER: Mutex<()> = Mutex::new(());
static FIRST: OnceLock<Result<Phase, String>> = OnceLock::new();
static SECOND: OnceLock<Result<Phase, String>> = OnceLock::new();
static DAEMON: OnceLock<Result<Phase, String>> = OnceLock::new();

// ------------------------------------------------------------------------------ gate

fn enabled() -> bool {
    std::env::var(GATE).is_ok_and(|v| v == "1")
}

/// The first phase, or `None` (after printing the skip line) when the gate is off.
fn first() -> Option<&'static Phase> {
    if !enabled() {
        note!("{SKIP}");
        return None;
    }
    match FIRST.get_or_init(|| setup_first().map_err(|e| format!("real SLURM setup failed: {e}"))) {
        Ok(p) => Some(p),
        Err(e) => panic!("{e}"),
    }
}

/// The second phase (after `jobs.sh finish`), or `None` when the gate is off.
fn second() -> Option<(&'static Phase, &'static Phase)> {
    let one = first()?;
    match SECOND
        .get_or_init(|| setup_second(one).map_err(|e| format!("second collect failed: {e}")))
    {
        Ok(two) => Some((one, two)),
        Err(e) => panic!("{e}"),
    }
}

/// One daemon cycle on a fresh data dir, after the second phase (the cluster holds no
/// unfinished job of the mix then), or `None` when the gate is off.
fn daemon() -> Option<(&'static Phase, &'static Phase)> {
    let (_, two) = second()?;
    match DAEMON.get_or_init(|| setup_daemon(two).map_err(|e| format!("daemon cycle failed: {e}")))
    {
        Ok(d) => Some((two, d)),
        Err(e) => panic!("{e}"),
    }
}

fn cluster_lock() -> MutexGuard<'static, ()> {
    CLUSTER.lock().unwrap_or_else(|e| e.into_inner())
}

// ------------------------------------------------------------------------------ the rig

#[derive(Debug, Clone)]
struct Rig {
    dir: PathBuf,
    conf: PathBuf,
    mode: String,
    scripts: PathBuf,
}

impl Rig {
    fn from_env() -> Rig {
        let conf_env = std::env::var_os("SLURM_CONF").map(PathBuf::from);
        let dir = std::env::var_os("SLURM_RIG_DIR")
            .map(PathBuf::from)
            .or_else(|| {
                conf_env
                    .as_ref()
                    .and_then(|c| c.parent()?.parent().map(Path::to_path_buf))
                    .filter(|d| d.join("etc/mode").exists())
            })
            .unwrap_or_else(|| PathBuf::from("/tmp/slurm-usage-rig"));
        let conf = conf_env.unwrap_or_else(|| dir.join("etc/slurm.conf"));
        let mode = std::fs::read_to_string(dir.join("etc/mode"))
            .map(|m| m.trim().to_string())
            .unwrap_or_else(|_| "linuxproc".into());
        Rig {
            dir,
            conf,
            mode,
            scripts: Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/slurm"),
        }
    }

    fn cmd(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new(program);
        c.env("SLURM_CONF", &self.conf)
            .env("SLURM_RIG_DIR", &self.dir);
        c
    }

    fn cgroup(&self) -> bool {
        self.mode == "cgroup"
    }

    /// Fails with the reason (and `cluster.sh status`) when the rig does not answer.
    fn check_reachable(&self) -> Result<(), String> {
        let hint = format!(
            "start it with `sudo tests/slurm/cluster.sh start` (SLURM_RIG_DIR={}, SLURM_CONF={})",
            self.dir.display(),
            self.conf.display()
        );
        let status = || {
            run(
                self.cmd(self.scripts.join("cluster.sh")).arg("status"),
                Duration::from_secs(60),
            )
            .map(|o| format!("{}{}", o.stdout, o.stderr))
            .unwrap_or_else(|e| e)
        };
        if !self.conf.is_file() {
            return Err(format!(
                "{GATE}=1 but there is no SLURM config at {}: the cluster is not set up; {hint}",
                self.conf.display()
            ));
        }
        let checks: [(&str, &[&str]); 3] = [
            ("slurmctld (scontrol ping)", &["scontrol", "ping"]),
            (
                "slurmdbd (sacctmgr show cluster)",
                &["sacctmgr", "-n", "-P", "show", "cluster", "format=cluster"],
            ),
            ("sacct", &["sacct", "-n", "-X", "-j", "1", "-o", "JobID"]),
        ];
        for (what, argv) in checks {
            let out = run(self.cmd(argv[0]).args(&argv[1..]), Duration::from_secs(30))
                .map_err(|e| format!("{GATE}=1 but {what} failed: {e}; {hint}\n{}", status()))?;
            if !out.ok() {
                return Err(format!(
                    "{GATE}=1 but the cluster is not reachable: {what} {}; {hint}\ncluster.sh status:\n{}",
                    out.describe(),
                    status()
                ));
            }
        }
        Ok(())
    }
}

// ------------------------------------------------------------------------------ processes

#[derive(Debug)]
struct Output {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    took: Duration,
}

impl Output {
    fn ok(&self) -> bool {
        self.code == Some(0)
    }

    fn describe(&self) -> String {
        format!(
            "exited with {:?} after {:.1} s\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.code,
            self.took.as_secs_f64(),
            self.stdout.trim_end(),
            self.stderr.trim_end()
        )
    }
}

/// Runs `cmd` in its own process group; past `timeout` the whole group is killed.
fn run(cmd: &mut Command, timeout: Duration) -> Result<Output, String> {
    let desc = format!("{cmd:?}");
    let t0 = Instant::now();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .map_err(|e| format!("cannot start {desc}: {e}"))?;
    let reader = |mut r: Box<dyn Read + Send>| {
        thread::spawn(move || {
            let mut v = Vec::new();
            let _ = r.read_to_end(&mut v);
            String::from_utf8_lossy(&v).into_owned()
        })
    };
    let out = reader(Box::new(child.stdout.take().expect("piped")));
    let err = reader(Box::new(child.stderr.take().expect("piped")));
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break Some(s),
            Ok(None) if t0.elapsed() < timeout => thread::sleep(Duration::from_millis(20)),
            Ok(None) | Err(_) => {
                let _ = Command::new("kill")
                    .args(["-KILL", "--", &format!("-{}", child.id())])
                    .status();
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
        }
    };
    let (stdout, stderr) = (
        out.join().unwrap_or_default(),
        err.join().unwrap_or_default(),
    );
    if std::env::var_os("SLURM_USAGE_TEST_TRACE").is_some() {
        note!(
            "[real_slurm] {:6.3} s {:?} {desc}",
            t0.elapsed().as_secs_f64(),
            status.map(|s| s.code())
        );
    }
    match status {
        Some(s) => Ok(Output {
            code: s.code(),
            stdout,
            stderr,
            took: t0.elapsed(),
        }),
        None => Err(format!(
            "{desc} did not finish within {timeout:?} and was killed\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}"
        )),
    }
}

fn is_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

// ------------------------------------------------------------------------------ sacct

/// One sacct line: field name -> text.
type Row = BTreeMap<String, String>;

/// Splits sacct's `-P` output into records: a field may hold a newline (job name, comment,
/// submit line), so a line starts a record only when its first field is one of `ids` or a
/// step of one; any other line continues the record before it.
fn records(text: &str, ids: &[&str]) -> Vec<String> {
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
fn sacct_jobs(rig: &Rig, ids: &[&str]) -> Result<BTreeMap<String, Vec<Row>>, String> {
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
fn sacct_free_text(rig: &Rig, ids: &[&str]) -> Result<BTreeMap<String, [String; 3]>, String> {
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
fn sacct_window(
    rig: &Rig,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Result<BTreeSet<String>, String> {
    let f = "%Y-%m-%dT%H:%M:%S";
    let out = run(
        rig.cmd("sacct").env("TZ", "UTC").args([
            "-a",
            "-X",
            "-P",
            "-n",
            "-S",
            &start.format(f).to_string(),
            "-E",
            &end.format(f).to_string(),
            "-o",
            "JobID",
        ]),
        Duration::from_secs(60),
    )?;
    if !out.ok() {
        return Err(format!("sacct -S/-E {}", out.describe()));
    }
    Ok(out
        .stdout
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect())
}

fn is_final(state: &str) -> bool {
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
fn normalize(state: &str) -> String {
    state
        .split_whitespace()
        .next()
        .unwrap_or("")
        .trim_end_matches('+')
        .to_string()
}

/// Whether sacct holds a finished job's complete records: right after a job ends slurmdbd can
/// briefly show a placeholder (JobName `allocation`, no Partition) and steps without usage.
fn settled(lines: &[Row]) -> bool {
    let alloc = &lines[0];
    if alloc["Partition"].is_empty() || !is_final(&alloc["State"]) {
        return false;
    }
    lines[1..]
        .iter()
        .all(|s| is_final(&s["State"]) && !s["TRESUsageInTot"].is_empty())
}

// ------------------------------------------------------------------------------ manifest

#[derive(Debug, Clone)]
struct Job {
    key: String,
    id: String,
    user: String,
    expected: String,
}

impl Job {
    fn queued(&self) -> bool {
        self.expected == "RUNNING" || self.expected == "PENDING"
    }
}

fn read_manifest(rig: &Rig) -> Result<Vec<Job>, String> {
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
fn manifest_unusable(rig: &Rig) -> Option<String> {
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
fn ensure_job_mix(rig: &Rig) -> Result<Vec<Job>, String> {
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

// ------------------------------------------------------------------------------ data dir

/// What ran the collection of a phase.
#[derive(Debug, Clone, Copy, PartialEq)]
enum How {
    /// `slurm-usage collect --days 1`.
    Collect,
    /// `slurm-usage daemon` on a fresh data dir: its catch-up cycle at start, then SIGTERM.
    Daemon,
}

/// Everything one collection left, read back, plus sacct's view around it.
struct Phase {
    how: How,
    rig: Rig,
    zone: Zone,
    /// "Today" in the zone, the same at the start and end of the collect.
    today: NaiveDate,
    jobs: Vec<Job>,
    data: PathBuf,
    config: PathBuf,
    /// sacct lines per job id, just before and just after the collect.
    before: BTreeMap<String, Vec<Row>>,
    after: BTreeMap<String, Vec<Row>>,
    /// WorkDir, Comment, SubmitLine per job id (finished jobs only).
    free_text: BTreeMap<String, [String; 3]>,
    /// Allocation JobIDs sacct lists for the collected dates' windows, before/after.
    window_before: BTreeSet<String>,
    window_after: BTreeSet<String>,
    collect_out: Output,
    collect_started: DateTime<Utc>,
    collect_ended: DateTime<Utc>,
    processed: BTreeMap<NaiveDate, Vec<ProcessedJob>>,
    raw: BTreeMap<NaiveDate, Vec<RawRow>>,
    tracker: serde_json::Value,
    sacct_version: String,
    /// `current` and `nodes` with squeue's and sinfo's view, taken right after the first
    /// collect while the RUNNING and PENDING jobs are queued.
    live: Option<Live>,
}

/// The live views and what squeue/sinfo print at the same moment.
struct Live {
    current: Output,
    nodes: Output,
    /// (user, state) per queued job.
    squeue: Vec<(String, String)>,
    /// (node, CPUs) per node.
    sinfo: Vec<(String, String)>,
}

fn capture_live(rig: &Rig, config: &Path) -> Result<Live, String> {
    let view = |name: &str| {
        run(
            Command::new(BIN)
                .env("SLURM_CONF", &rig.conf)
                .env("NO_COLOR", "1")
                .env_remove("SLURM_USAGE_CONFIG")
                .arg(name)
                .arg("--config")
                .arg(config),
            Duration::from_secs(60),
        )
    };
    let pairs = |program: &str, args: &[&str]| -> Result<Vec<(String, String)>, String> {
        let out = run(rig.cmd(program).args(args), Duration::from_secs(60))?;
        if !out.ok() {
            return Err(format!("{program} {}", out.describe()));
        }
        Ok(out
            .stdout
            .lines()
            .filter_map(|l| l.split_once('|'))
            .map(|(a, b)| (a.trim().to_string(), b.trim().to_string()))
            .collect())
    };
    let squeue_before = pairs("squeue", &["-h", "-o", "%u|%T"])?;
    let live = Live {
        current: view("current")?,
        nodes: view("nodes")?,
        squeue: pairs("squeue", &["-h", "-o", "%u|%T"])?,
        sinfo: pairs("sinfo", &["-h", "-N", "-o", "%N|%c"])?,
    };
    if squeue_before != live.squeue {
        return Err(format!(
            "the queue changed while `current` ran: {squeue_before:?} -> {:?}",
            live.squeue
        ));
    }
    Ok(live)
}

/// One raw archive row: column -> text (None for null).
type RawRow = BTreeMap<String, Option<String>>;

fn work_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("real_slurm")
}

/// The zone where it is about noon now (so nothing of the test straddles midnight).
fn pick_zone() -> String {
    if let Ok(z) = std::env::var("SLURM_USAGE_TEST_TZ") {
        return z;
    }
    let offset = 12 - Utc::now().hour() as i32;
    match offset {
        0 => "Etc/GMT".to_string(),
        o if o > 0 => format!("Etc/GMT-{o}"), // POSIX sign: Etc/GMT-5 is UTC+5
        o => format!("Etc/GMT+{}", -o),
    }
}

fn write_config(dir: &Path, zone: &str) -> Result<PathBuf, String> {
    let path = dir.join("config.toml");
    let text = format!(
        "# written by tests/real_slurm.rs\n\
         data_dir = \"{}\"\n\
         timezone = \"{zone}\"\n\
         [schedule]\n\
         cron = \"0 15 2 * * *\"\n\
         jitter = \"0s\"\n\
         [collect]\n\
         lookback_days = 1\n\
         sacct = \"sacct\"\n\
         sacct_timeout = \"60s\"\n\
         retries = 1\n\
         retry_delay = \"1s\"\n\
         settle = \"1h\"\n",
        dir.join("data").display()
    );
    std::fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(path)
}

fn dates_in(dir: &Path) -> Vec<NaiveDate> {
    let mut v: Vec<NaiveDate> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            NaiveDate::parse_from_str(name.strip_suffix(".parquet")?, "%Y-%m-%d").ok()
        })
        .collect();
    v.sort();
    v
}

fn read_all_processed(
    data: &Path,
    zone: &Zone,
) -> Result<BTreeMap<NaiveDate, Vec<ProcessedJob>>, String> {
    let mut out = BTreeMap::new();
    for d in dates_in(&data.join("processed")) {
        let path = data.join(format!("processed/{d}.parquet"));
        match read_processed(&path, zone).map_err(|e| e.to_string())? {
            Existing::Found(jobs) => {
                out.insert(d, jobs);
            }
            other => return Err(format!("{} is not readable: {other:?}", path.display())),
        }
    }
    Ok(out)
}

fn read_all_raw(data: &Path) -> Result<BTreeMap<NaiveDate, Vec<RawRow>>, String> {
    let mut out = BTreeMap::new();
    for d in dates_in(&data.join("raw")) {
        let path = data.join(format!("raw/{d}.parquet"));
        let batches = match read_raw(&path).map_err(|e| e.to_string())? {
            Existing::Found(b) => b,
            other => return Err(format!("{} is not readable: {other:?}", path.display())),
        };
        let mut rows = Vec::new();
        for b in &batches {
            let cols: Vec<(String, arrow_array::ArrayRef)> = b
                .schema()
                .fields()
                .iter()
                .zip(b.columns())
                .map(|(f, c)| Ok((f.name().clone(), arrow_cast::cast(c, &DataType::Utf8)?)))
                .collect::<Result<_, arrow_schema::ArrowError>>()
                .map_err(|e| e.to_string())?;
            for i in 0..b.num_rows() {
                rows.push(
                    cols.iter()
                        .map(|(n, c)| {
                            let c = c.as_string::<i32>();
                            (n.clone(), c.is_valid(i).then(|| c.value(i).to_string()))
                        })
                        .collect(),
                );
            }
        }
        out.insert(d, rows);
    }
    Ok(out)
}

fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for e in std::fs::read_dir(from)? {
        let e = e?;
        let target = to.join(e.file_name());
        if e.file_type()?.is_dir() {
            copy_dir(&e.path(), &target)?;
        } else {
            std::fs::copy(e.path(), target)?;
        }
    }
    Ok(())
}

fn sacct_all(rig: &Rig, jobs: &[Job]) -> Result<BTreeMap<String, Vec<Row>>, String> {
    let ids: Vec<&str> = jobs.iter().map(|j| j.id.as_str()).collect();
    sacct_jobs(rig, &ids)
}

/// Starts `slurm-usage daemon` with `config` (fresh data dir, so it catches up at once),
/// waits for the systemd `STATUS=collected ...` of that cycle on a notify socket, then stops
/// it with SIGTERM. The output holds the notifications (stdout) and the daemon's log (stderr).
fn run_daemon_cycle(rig: &Rig, config: &Path, dir: &Path) -> Result<Output, String> {
    let t0 = Instant::now();
    let sock_path = dir.join("notify.sock");
    let _ = std::fs::remove_file(&sock_path);
    let sock = UnixDatagram::bind(&sock_path).map_err(|e| format!("notify socket: {e}"))?;
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .map_err(|e| e.to_string())?;
    let log_path = dir.join("daemon.log");
    let log = std::fs::File::create(&log_path).map_err(|e| e.to_string())?;
    let mut child = Command::new(BIN)
        .arg("daemon")
        .arg("--config")
        .arg(config)
        .env("SLURM_CONF", &rig.conf)
        .env("NOTIFY_SOCKET", &sock_path)
        .env("NO_COLOR", "1")
        .env_remove("SLURM_USAGE_CONFIG")
        .env_remove("WATCHDOG_USEC")
        .env_remove("WATCHDOG_PID")
        .env_remove("JOURNAL_STREAM")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .map_err(|e| format!("cannot start the daemon: {e}"))?;
    let mut seen: Vec<String> = Vec::new();
    let mut buf = vec![0u8; 8192];
    let deadline = t0 + Duration::from_secs(180);
    let failure = loop {
        if let Ok(Some(st)) = child.try_wait() {
            break Some(format!(
                "the daemon exited before its first cycle ended: {st}"
            ));
        }
        if Instant::now() > deadline {
            break Some("no `STATUS=collected ...` within 180 s".to_string());
        }
        if let Ok(n) = sock.recv(&mut buf) {
            let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
            let done = msg.lines().any(|l| l.starts_with("STATUS=collected "));
            seen.push(msg);
            if done {
                break None;
            }
        }
    };
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let stop_deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        match child.try_wait() {
            Ok(Some(st)) => break Some(st),
            _ if Instant::now() > stop_deadline => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            _ => thread::sleep(Duration::from_millis(20)),
        }
    };
    while let Ok(n) = sock.recv(&mut buf) {
        seen.push(String::from_utf8_lossy(&buf[..n]).into_owned());
    }
    let out = Output {
        code: status.and_then(|s| s.code()),
        stdout: seen.join("\n"),
        stderr: std::fs::read_to_string(&log_path).unwrap_or_default(),
        took: t0.elapsed(),
    };
    match (failure, status) {
        (Some(why), _) => Err(format!("daemon: {why}; {}", out.describe())),
        (None, None) => Err(format!(
            "the daemon did not exit within 15 s of SIGTERM; {}",
            out.describe()
        )),
        (None, Some(_)) => Ok(out),
    }
}

/// Collects into `dir/data` until sacct is stable across the collect: every finished job is
/// settled and printed the same lines before and after. Returns the filled-in phase.
fn collect_phase(
    rig: &Rig,
    jobs: Vec<Job>,
    dir: &Path,
    zone_name: &str,
    how: How,
) -> Result<Phase, String> {
    let zone: Zone = zone_name
        .parse()
        .map_err(|e| format!("zone {zone_name}: {e}"))?;
    let config = write_config(dir, zone_name)?;
    let data = dir.join("data");
    let deadline = Instant::now() + Duration::from_secs(180);
    let mut attempt = 0;
    loop {
        attempt += 1;
        let today = zone.today();
        let dates = [today.pred_opt().expect("a date before today"), today];
        let mut window_before = BTreeSet::new();
        for d in dates {
            window_before.extend(sacct_window(rig, zone.day_start(d), zone.day_end(d))?);
        }
        let before = sacct_all(rig, &jobs)?;
        let collect_started = Utc::now();
        let collect_out = match how {
            How::Collect => run(
                Command::new(BIN)
                    .env("SLURM_CONF", &rig.conf)
                    .env_remove("SLURM_USAGE_CONFIG")
                    .args(["collect", "--days", "1", "--config"])
                    .arg(&config)
                    .arg("--data-dir")
                    .arg(&data),
                Duration::from_secs(300),
            )?,
            How::Daemon => {
                // A fresh data dir each attempt: the cycle is the daemon's catch-up at start.
                let _ = std::fs::remove_dir_all(&data);
                run_daemon_cycle(rig, &config, dir)?
            }
        };
        let collect_ended = Utc::now();
        if !collect_out.ok() {
            return Err(format!("slurm-usage {how:?} {}", collect_out.describe()));
        }
        let after = sacct_all(rig, &jobs)?;
        let mut window_after = BTreeSet::new();
        for d in dates {
            window_after.extend(sacct_window(rig, zone.day_start(d), zone.day_end(d))?);
        }
        let unstable: Vec<String> = jobs
            .iter()
            .filter(|j| !j.queued())
            .filter(|j| before[&j.id] != after[&j.id] || !settled(&after[&j.id]))
            .map(|j| format!("{} ({})", j.id, j.key))
            .collect();
        if zone.today() != today {
            note!("[real_slurm] the day changed in {zone_name} during the collect; again");
        } else if unstable.is_empty() {
            let done: Vec<&str> = jobs
                .iter()
                .filter(|j| !j.queued())
                .map(|j| j.id.as_str())
                .collect();
            let free_text = sacct_free_text(rig, &done)?;
            let version = run(rig.cmd("sacct").arg("--version"), Duration::from_secs(30))?;
            return Ok(Phase {
                how,
                rig: rig.clone(),
                today,
                jobs,
                processed: read_all_processed(&data, &zone)?,
                raw: read_all_raw(&data)?,
                tracker: serde_json::from_slice(
                    &std::fs::read(data.join(TRACKER))
                        .map_err(|e| format!("no tracker after the collect: {e}"))?,
                )
                .map_err(|e| format!("the tracker is not JSON: {e}"))?,
                zone,
                data,
                config,
                before,
                after,
                free_text,
                window_before,
                window_after,
                collect_out,
                collect_started,
                collect_ended,
                sacct_version: version.stdout.trim().to_string(),
                live: None,
            });
        } else if Instant::now() > deadline {
            return Err(format!(
                "sacct did not settle for finished jobs {unstable:?} after {attempt} attempts (placeholder records, or lines that changed during the collect)"
            ));
        } else {
            note!("[real_slurm] sacct not settled for {unstable:?}; collecting again");
        }
        thread::sleep(Duration::from_secs(2));
    }
}

fn setup_first() -> Result<Phase, String> {
    let _guard = cluster_lock();
    let t0 = Instant::now();
    let rig = Rig::from_env();
    rig.check_reachable()?;
    let jobs = ensure_job_mix(&rig)?;
    let dir = work_dir();
    let _ = std::fs::remove_dir_all(&dir);
    let first = dir.join("first");
    std::fs::create_dir_all(&first)
        .map_err(|e| format!("cannot create {}: {e}", first.display()))?;
    let zone = pick_zone();
    let mut phase = collect_phase(&rig, jobs, &first, &zone, How::Collect)?;
    phase.live = Some(capture_live(&rig, &phase.config)?);
    note!(
        "[real_slurm] first phase ready in {:.1} s (mode {}, zone {zone}, today {}, collect {:.2} s)",
        t0.elapsed().as_secs_f64(),
        rig.mode,
        phase.today,
        phase.collect_out.took.as_secs_f64()
    );
    Ok(phase)
}

fn setup_second(one: &Phase) -> Result<Phase, String> {
    let _guard = cluster_lock();
    let t0 = Instant::now();
    let rig = &one.rig;
    if !is_root() {
        return Err("`tests/slurm/jobs.sh finish` needs root".into());
    }
    let out = run(
        rig.cmd(rig.scripts.join("jobs.sh")).arg("finish"),
        Duration::from_secs(420),
    )?;
    if !out.ok() {
        return Err(format!("tests/slurm/jobs.sh finish {}", out.describe()));
    }
    let jobs = read_manifest(rig)?;
    // jobs.sh finish waited for sacct; make sure of the final records here too.
    let deadline = Instant::now() + Duration::from_secs(120);
    let queued: Vec<Job> = one.jobs.iter().filter(|j| j.queued()).cloned().collect();
    loop {
        let now = sacct_all(rig, &queued)?;
        if now.values().all(|l| settled(l)) {
            break;
        }
        if Instant::now() > deadline {
            return Err(format!(
                "jobs {queued:?} are not final in sacct after finish: {now:?}"
            ));
        }
        thread::sleep(Duration::from_millis(500));
    }
    let dir = work_dir().join("second");
    let _ = std::fs::remove_dir_all(&dir);
    copy_dir(&one.data, &dir.join("data"))
        .map_err(|e| format!("cannot copy the first data dir: {e}"))?;
    let phase = collect_phase(rig, jobs, &dir, &one.zone.name(), How::Collect)?;
    if phase.today != one.today {
        return Err(format!(
            "the day changed between the collects ({} -> {})",
            one.today, phase.today
        ));
    }
    note!(
        "[real_slurm] second phase ready in {:.1} s (jobs.sh finish {:.1} s)",
        t0.elapsed().as_secs_f64(),
        out.took.as_secs_f64()
    );
    Ok(phase)
}

fn setup_daemon(two: &Phase) -> Result<Phase, String> {
    let _guard = cluster_lock();
    let dir = work_dir().join("daemon");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let phase = collect_phase(
        &two.rig,
        two.jobs.clone(),
        &dir,
        &two.zone.name(),
        How::Daemon,
    )?;
    note!(
        "[real_slurm] daemon cycle ready: start to clean exit in {:.1} s",
        phase.collect_out.took.as_secs_f64()
    );
    Ok(phase)
}

/// A copy of the rig's slurm.conf (and cgroup.conf) whose slurmdbd port nothing listens on:
/// sacct then fails the way it does when slurmdbd is down.
fn broken_slurm_conf(rig: &Rig, name: &str) -> PathBuf {
    let etc = work_dir().join(name);
    std::fs::create_dir_all(&etc).unwrap();
    let conf = std::fs::read_to_string(&rig.conf).expect("slurm.conf");
    let conf: String = conf
        .lines()
        .map(|l| {
            if l.starts_with("AccountingStoragePort=") {
                "AccountingStoragePort=1"
            } else {
                l
            }
        })
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(etc.join("slurm.conf"), conf).unwrap();
    if let Some(dir) = rig.conf.parent() {
        let _ = std::fs::copy(dir.join("cgroup.conf"), etc.join("cgroup.conf"));
    }
    etc.join("slurm.conf")
}

/// Every file under `dir` (relative path -> bytes).
fn snapshot_files(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if let Ok(bytes) = std::fs::read(&p) {
                out.insert(p.strip_prefix(dir).unwrap().to_path_buf(), bytes);
            }
        }
    }
    out
}

// ------------------------------------------------------------------------------ parsing

/// `MM:SS.mmm`, `HH:MM:SS`, `D-HH:MM:SS` -> seconds.
fn duration_secs(s: &str) -> Option<f64> {
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
fn memory_mb(s: &str) -> Option<f64> {
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

fn tres<'a>(s: &'a str, key: &str) -> Option<&'a str> {
    s.split(',')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v)
}

fn tres_gpus(s: &str) -> i64 {
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
fn utc_micros(s: &str) -> Option<i64> {
    NaiveDateTime::parse_from_str(s.trim(), "%Y-%m-%dT%H:%M:%S")
        .ok()
        .map(|n| n.and_utc().timestamp_micros())
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

/// What the processed record of a job must hold, computed here from its sacct lines by the
/// rules of SPEC.md "Metrics", independently of the crate's code.
#[derive(Debug, Clone)]
struct Expected {
    job_id: String,
    job_id_raw: String,
    user: String,
    group: String,
    account: String,
    partition: String,
    qos: String,
    cluster: String,
    job_name: String,
    state: String,
    exit_code: String,
    submit: Option<i64>,
    start: Option<i64>,
    end: Option<i64>,
    elapsed: i64,
    alloc_cpus: i64,
    alloc_nodes: i64,
    alloc_gpus: i64,
    node_list: String,
    req_mem_mb: f64,
    alloc_mem_mb: f64,
    total_cpu: f64,
    max_rss_mb: f64,
    timelimit: Option<i64>,
    array_job_id: Option<String>,
    array_task_id: Option<i64>,
}

fn expected(lines: &[Row]) -> Expected {
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

// ------------------------------------------------------------------------------ checks

/// Collects every mismatch, then fails once with all of them.
#[derive(Default)]
struct Check {
    errors: Vec<String>,
    checked: usize,
}

impl Check {
    fn that(&mut self, ok: bool, what: impl FnOnce() -> String) {
        self.checked += 1;
        if !ok {
            self.errors.push(what());
        }
    }

    fn eq<T: PartialEq + std::fmt::Debug>(&mut self, job: &str, field: &str, ours: T, sacct: T) {
        self.checked += 1;
        if ours != sacct {
            self.errors.push(format!(
                "job {job}: {field}: ours {ours:?}, sacct {sacct:?}"
            ));
        }
    }

    fn close(&mut self, job: &str, field: &str, ours: f64, want: f64) {
        self.checked += 1;
        if !close(ours, want) {
            self.errors
                .push(format!("job {job}: {field}: ours {ours}, expected {want}"));
        }
    }

    fn done(self, what: &str) {
        assert!(self.checked > 0, "{what}: nothing was checked");
        assert!(
            self.errors.is_empty(),
            "{what}: {} of {} checks failed:\n  {}",
            self.errors.len(),
            self.checked,
            self.errors.join("\n  ")
        );
        note!("[real_slurm] {what}: {} checks passed", self.checked);
    }
}

impl Phase {
    /// Every processed record of job `id`, with its date.
    fn records(&self, id: &str) -> Vec<(NaiveDate, &ProcessedJob)> {
        self.processed
            .iter()
            .flat_map(|(d, jobs)| jobs.iter().filter(|j| j.job_id == id).map(move |j| (*d, j)))
            .collect()
    }

    /// The one processed record of job `id` (panics with the reason otherwise).
    fn record(&self, id: &str) -> (NaiveDate, &ProcessedJob) {
        let r = self.records(id);
        assert_eq!(
            r.len(),
            1,
            "job {id} must be in exactly one processed file, found {:?}",
            r.iter().map(|x| x.0).collect::<Vec<_>>()
        );
        r[0]
    }

    fn job(&self, key: &str) -> &Job {
        self.jobs
            .iter()
            .find(|j| j.key == key)
            .unwrap_or_else(|| panic!("no `{key}` job in the manifest"))
    }

    /// Raw rows (date, row) of the job whose allocation JobIDRaw is `raw`.
    fn raw_rows(&self, raw: &str) -> Vec<(NaiveDate, &RawRow)> {
        let step = format!("{raw}.");
        self.raw
            .iter()
            .flat_map(|(d, rows)| rows.iter().map(move |r| (*d, r)))
            .filter(|(_, r)| {
                r.get("JobIDRaw")
                    .and_then(|v| v.as_deref())
                    .is_some_and(|k| k == raw || k.starts_with(&step))
            })
            .collect()
    }

    fn tracker_date(&self, d: NaiveDate) -> &serde_json::Value {
        &self.tracker["dates"][d.to_string()]
    }

    fn completed_dates(&self) -> BTreeSet<String> {
        self.tracker["completed_dates"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }

    fn status(&self) -> String {
        let out = run(
            Command::new(BIN)
                .env_remove("SLURM_USAGE_CONFIG")
                .env("NO_COLOR", "1")
                .arg("status")
                .arg("--config")
                .arg(&self.config)
                .arg("--data-dir")
                .arg(&self.data),
            Duration::from_secs(60),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert!(out.ok(), "slurm-usage status {}", out.describe());
        out.stdout
    }
}

/// Compares every manifest job's processed record with sacct's lines for it.
fn check_records_against_sacct(p: &Phase, c: &mut Check) {
    for job in &p.jobs {
        let lines = &p.after[&job.id];
        let e = expected(lines);
        let recs = p.records(&job.id);
        c.that(recs.len() == 1, || {
            format!(
                "job {} ({}): {} processed records, want 1",
                job.id,
                job.key,
                recs.len()
            )
        });
        let Some((_, r)) = recs.first() else { continue };
        let id = format!("{} ({})", job.id, job.key);
        c.eq(&id, "job_id", r.job_id.as_str(), e.job_id.as_str());
        c.eq(
            &id,
            "job_id_raw",
            r.job_id_raw.as_str(),
            e.job_id_raw.as_str(),
        );
        c.eq(&id, "user", r.user.as_str(), e.user.as_str());
        c.eq(&id, "user (manifest)", r.user.as_str(), job.user.as_str());
        c.eq(&id, "group", r.group.as_str(), e.group.as_str());
        c.eq(&id, "account", r.account.as_str(), e.account.as_str());
        c.eq(&id, "partition", r.partition.as_str(), e.partition.as_str());
        c.eq(&id, "qos", r.qos.as_str(), e.qos.as_str());
        c.eq(&id, "cluster", r.cluster.as_str(), e.cluster.as_str());
        c.eq(&id, "job_name", r.job_name.as_str(), e.job_name.as_str());
        c.eq(&id, "state", r.state.as_str(), e.state.as_str());
        c.eq(
            &id,
            "state (manifest)",
            r.state.as_str(),
            job.expected.as_str(),
        );
        c.eq(&id, "is_complete", r.is_complete, is_final(&e.state));
        c.eq(&id, "exit_code", r.exit_code.as_str(), e.exit_code.as_str());
        c.eq(&id, "submit_time", r.submit_time, e.submit);
        c.eq(&id, "start_time", r.start_time, e.start);
        c.eq(&id, "end_time", r.end_time, e.end);
        c.eq(
            &id,
            "wait_seconds",
            r.wait_seconds,
            e.start
                .zip(e.submit)
                .map(|(s, q)| ((s - q) / 1_000_000).max(0)),
        );
        c.eq(&id, "alloc_cpus", r.alloc_cpus, e.alloc_cpus);
        c.eq(&id, "alloc_nodes", r.alloc_nodes, e.alloc_nodes);
        c.eq(&id, "alloc_gpus", r.alloc_gpus, e.alloc_gpus);
        c.eq(&id, "node_list", r.node_list.as_str(), e.node_list.as_str());
        c.eq(&id, "timelimit_seconds", r.timelimit_seconds, e.timelimit);
        c.eq(
            &id,
            "array_job_id",
            r.array_job_id.as_deref(),
            e.array_job_id.as_deref(),
        );
        c.eq(&id, "array_task_id", r.array_task_id, e.array_task_id);
        c.close(&id, "req_mem_mb", r.req_mem_mb, e.req_mem_mb);
        c.close(&id, "alloc_mem_mb", r.alloc_mem_mb, e.alloc_mem_mb);
        c.close(
            &id,
            "total_cpu_seconds (TotalCPU)",
            r.total_cpu_seconds,
            e.total_cpu,
        );
        c.close(
            &id,
            "max_rss_mb (max over steps of TRESUsageInTot mem)",
            r.max_rss_mb,
            e.max_rss_mb,
        );
        c.eq(
            &id,
            "sacct_version",
            r.sacct_version.as_str(),
            p.sacct_version.as_str(),
        );
        // A running job's elapsed time grows: ours lies between sacct's before and after.
        let lo = expected(&p.before[&job.id]).elapsed;
        if is_final(&e.state) || e.start.is_none() {
            c.eq(
                &id,
                "elapsed_seconds (ElapsedRaw)",
                r.elapsed_seconds,
                e.elapsed,
            );
        } else {
            c.that(lo <= r.elapsed_seconds && r.elapsed_seconds <= e.elapsed, || {
                format!(
                    "job {id}: elapsed_seconds {} outside sacct's ElapsedRaw {lo}..{} around the collect",
                    r.elapsed_seconds, e.elapsed
                )
            });
        }
        let (t0, t1) = (
            p.collect_started.timestamp_micros(),
            p.collect_ended.timestamp_micros(),
        );
        c.that(t0 <= r.processed_date && r.processed_date <= t1, || {
            format!(
                "job {id}: processed_date {} not within the collect ({t0}..{t1})",
                r.processed_date
            )
        });
    }
}

/// The metrics follow from the record's own elapsed time and sacct's CPU and memory numbers.
fn check_metrics(p: &Phase, c: &mut Check) {
    for job in &p.jobs {
        let e = expected(&p.after[&job.id]);
        let Some((_, r)) = p.records(&job.id).first().copied() else {
            c.that(false, || format!("job {} has no processed record", job.id));
            continue;
        };
        let id = format!("{} ({})", job.id, job.key);
        let secs = r.elapsed_seconds as f64;
        let reserved = secs * e.alloc_cpus as f64;
        let pct = |num: f64, den: f64| {
            if den > 0.0 {
                (100.0 * num / den).clamp(0.0, 100.0)
            } else {
                0.0
            }
        };
        let (cpu, mem, rss) = (e.total_cpu, e.alloc_mem_mb, e.max_rss_mb);
        c.close(&id, "cpu_efficiency", r.cpu_efficiency, pct(cpu, reserved));
        c.close(&id, "memory_efficiency", r.memory_efficiency, pct(rss, mem));
        c.close(
            &id,
            "cpu_hours_wasted",
            r.cpu_hours_wasted,
            (reserved - cpu).max(0.0) / 3600.0,
        );
        c.close(
            &id,
            "memory_gb_hours_wasted",
            r.memory_gb_hours_wasted,
            (mem - rss).max(0.0) * secs / (1024.0 * 3600.0),
        );
        c.close(
            &id,
            "cpu_hours_reserved",
            r.cpu_hours_reserved,
            reserved / 3600.0,
        );
        c.close(
            &id,
            "memory_gb_hours_reserved",
            r.memory_gb_hours_reserved,
            mem * secs / (1024.0 * 3600.0),
        );
        c.close(
            &id,
            "gpu_hours_reserved",
            r.gpu_hours_reserved,
            e.alloc_gpus as f64 * secs / 3600.0,
        );
        for (name, v) in [
            ("cpu_efficiency", r.cpu_efficiency),
            ("memory_efficiency", r.memory_efficiency),
        ] {
            c.that((0.0..=100.0).contains(&v), || {
                format!("job {id}: {name} {v} outside 0..100")
            });
        }
    }
}

/// The raw partition of each job's date holds exactly sacct's lines of it, field by field.
fn check_raw_against_sacct(p: &Phase, c: &mut Check) {
    for job in &p.jobs {
        let lines = &p.after[&job.id];
        let id = format!("{} ({})", job.id, job.key);
        let raw_id = &lines[0]["JobIDRaw"];
        let rows = p.raw_rows(raw_id);
        c.eq(
            &id,
            "raw rows (JobIDRaw prefix) vs sacct lines",
            rows.len(),
            lines.len(),
        );
        if let Some((date, _)) = p.records(&job.id).first() {
            let elsewhere: Vec<NaiveDate> =
                rows.iter().map(|(d, _)| *d).filter(|d| d != date).collect();
            c.that(elsewhere.is_empty(), || {
                format!("job {id}: raw rows in {elsewhere:?}, but the job lives in {date}")
            });
        }
        let finished = is_final(&lines[0]["State"]);
        for line in lines {
            let key = &line["JobIDRaw"];
            let matching: Vec<&RawRow> = rows
                .iter()
                .map(|(_, r)| *r)
                .filter(|r| r.get("JobIDRaw").and_then(|v| v.as_deref()) == Some(key))
                .collect();
            c.that(matching.len() == 1, || {
                format!("job {id}: {} raw rows for {key}, want 1", matching.len())
            });
            let Some(row) = matching.first() else {
                continue;
            };
            for f in FIELDS {
                if !finished && MOVING.contains(f) {
                    continue;
                }
                let ours = row.get(*f).cloned().flatten().unwrap_or_default();
                c.eq(
                    &format!("{id} row {key}"),
                    &format!("raw {f}"),
                    ours.as_str(),
                    line[*f].as_str(),
                );
            }
            c.that(row.get("RawLine").cloned().flatten().is_none(), || {
                format!("job {id}: row {key} kept as an unparsable line")
            });
        }
        if let (Some(texts), Some((_, alloc))) = (
            p.free_text.get(&job.id),
            rows.iter()
                .find(|(_, r)| r.get("JobIDRaw").and_then(|v| v.as_deref()) == Some(raw_id)),
        ) {
            for (f, want) in ["WorkDir", "Comment", "SubmitLine"].iter().zip(texts) {
                let ours = alloc.get(*f).cloned().flatten().unwrap_or_default();
                c.eq(&id, &format!("raw {f}"), ours.as_str(), want.as_str());
            }
        }
    }
}

/// Every job sacct lists for the collected windows is archived, and nothing else is.
fn check_window(p: &Phase, c: &mut Check) {
    let archived: BTreeSet<&str> = p
        .processed
        .values()
        .flatten()
        .map(|j| j.job_id.as_str())
        .collect();
    for id in &p.window_before {
        c.that(archived.contains(id.as_str()), || {
            format!("job {id} is in sacct's window but not archived")
        });
    }
    for id in &archived {
        c.that(p.window_after.contains(*id), || {
            format!("archived job {id} is not in sacct's window")
        });
    }
    let mut seen = BTreeMap::<&str, usize>::new();
    for j in p.processed.values().flatten() {
        *seen.entry(j.job_id.as_str()).or_default() += 1;
    }
    for (id, n) in seen {
        c.that(n == 1, || {
            format!("job {id} is in {n} processed rows (duplicates)")
        });
    }
}

/// Each job lives in the partition of the date of its start (or submit) in the zone.
fn check_attribution(p: &Phase, c: &mut Check) {
    for job in &p.jobs {
        let e = expected(&p.after[&job.id]);
        let when = e
            .start
            .or(e.submit)
            .and_then(DateTime::from_timestamp_micros);
        let want = when.map(|t| p.zone.date_of(t));
        let got: Vec<NaiveDate> = p.records(&job.id).iter().map(|x| x.0).collect();
        c.eq(
            &format!("{} ({})", job.id, job.key),
            "date partition",
            got,
            want.into_iter().collect(),
        );
    }
}

/// `status` agrees with the files and the tracker: dates covered, today incomplete with its
/// job and unfinished counts.
fn check_status(p: &Phase, c: &mut Check) {
    let text = p.status();
    let dates: Vec<&NaiveDate> = p.processed.keys().collect();
    let (first, last) = (
        dates.first().expect("a processed file"),
        dates.last().expect("a processed file"),
    );
    c.that(text.contains(&format!("{first} .. {last}")), || {
        format!("status does not show {first} .. {last}:\n{text}")
    });
    c.that(
        text.contains(&format!(
            "{} processed, {} raw",
            p.processed.len(),
            p.raw.len()
        )),
        || {
            format!(
                "status does not count {} processed and {} raw files:\n{text}",
                p.processed.len(),
                p.raw.len()
            )
        },
    );
    let completed = p.completed_dates();
    for (d, jobs) in &p.processed {
        let Some(line) = text.lines().find(|l| l.starts_with(&d.to_string())) else {
            c.that(*d < p.today - chrono::Days::new(9), || {
                format!("status lists no line for {d}:\n{text}")
            });
            continue;
        };
        let cols: Vec<&str> = line.split_whitespace().collect();
        let state = if completed.contains(&d.to_string()) {
            "complete"
        } else {
            "incomplete"
        };
        let unfinished = jobs.iter().filter(|j| !j.is_complete).count().to_string();
        c.eq(
            &format!("status {d}"),
            "state",
            cols.get(1).copied(),
            Some(state),
        );
        c.eq(
            &format!("status {d}"),
            "jobs",
            cols.get(2).copied(),
            Some(jobs.len().to_string().as_str()),
        );
        c.eq(
            &format!("status {d}"),
            "unfinished",
            cols.get(3).copied(),
            Some(unfinished.as_str()),
        );
        c.eq(
            &format!("status {d}"),
            "bad lines",
            cols.get(4).copied(),
            Some("0"),
        );
    }
    let today = text.lines().find(|l| l.starts_with(&p.today.to_string()));
    c.that(
        today.is_some_and(|l| l.split_whitespace().nth(1) == Some("incomplete")),
        || format!("status must show today ({}) incomplete:\n{text}", p.today),
    );
}

// ------------------------------------------------------------------------------ tests: first collect

/// Every job of the mix: the processed record agrees with `sacct -j ID` field by field
/// (ids, user, group, account, partition, state, exit code, times, elapsed, AllocCPUS,
/// TotalCPU of the allocation line, peak memory over steps, AllocTRES mem, node list, array
/// ids, time limit).
#[test]
fn first_collect_matches_sacct_job_by_job() {
    let Some(p) = first() else { return };
    let mut c = Check::default();
    check_records_against_sacct(p, &mut c);
    c.done("first collect vs sacct");
}

/// cpu_efficiency, memory_efficiency, wasted and reserved hours follow from the numbers
/// sacct reported (SPEC "Metrics"), computed here independently.
#[test]
fn first_collect_metrics_follow_from_sacct_numbers() {
    let Some(p) = first() else { return };
    let mut c = Check::default();
    check_metrics(p, &mut c);
    c.done("first collect metrics");
}

/// The raw partition holds every sacct line of each job (counted by JobIDRaw prefix), every
/// requested field verbatim (a `|` in JobName and Comment, a newline in SubmitLine included).
#[test]
fn first_collect_raw_partition_holds_every_sacct_row() {
    let Some(p) = first() else { return };
    let mut c = Check::default();
    check_raw_against_sacct(p, &mut c);
    c.done("first collect raw rows");
}

/// Jobs live in the partition of their start date (submit when never started) in the
/// configured zone; every job of sacct's windows is archived exactly once.
#[test]
fn first_collect_attributes_every_job_of_the_window_once() {
    let Some(p) = first() else { return };
    let mut c = Check::default();
    check_attribution(p, &mut c);
    check_window(p, &mut c);
    c.done("first collect attribution and window");
}

/// The RUNNING and PENDING jobs are archived as not complete, with zero usage (not null),
/// and keep their date incomplete in the tracker.
#[test]
fn running_and_pending_jobs_keep_their_date_incomplete() {
    let Some(p) = first() else { return };
    let mut c = Check::default();
    let completed = p.completed_dates();
    c.that(!completed.contains(&p.today.to_string()), || {
        format!("the tracker lists today ({}) as complete", p.today)
    });
    for key in ["running", "pending"] {
        let job = p.job(key);
        let (date, r) = p.record(&job.id);
        let id = format!("{} ({key})", job.id);
        c.eq(&id, "state", r.state.as_str(), job.expected.as_str());
        c.eq(&id, "is_complete", r.is_complete, false);
        c.eq(&id, "total_cpu_seconds", r.total_cpu_seconds, 0.0);
        c.eq(&id, "max_rss_mb", r.max_rss_mb, 0.0);
        c.eq(&id, "end_time", r.end_time, None);
        c.that(!completed.contains(&date.to_string()), || {
            format!("job {id}: its date {date} is marked complete")
        });
        let info = p.tracker_date(date);
        let unfinished = p.processed[&date].iter().filter(|j| !j.is_complete).count() as u64;
        c.eq(
            &id,
            "tracker incomplete_jobs of its date",
            info["incomplete_jobs"].as_u64(),
            Some(unfinished),
        );
        c.eq(
            &id,
            "tracker jobs of its date",
            info["jobs"].as_u64(),
            Some(p.processed[&date].len() as u64),
        );
        c.that(unfinished >= 1, || {
            format!("{date}: no unfinished job counted")
        });
    }
    let pending = p.record(&p.job("pending").id).1;
    c.eq("pending", "start_time", pending.start_time, None);
    c.eq("pending", "node_list", pending.node_list.as_str(), "");
    c.eq("pending", "elapsed_seconds", pending.elapsed_seconds, 0);
    c.eq("pending", "wait_seconds", pending.wait_seconds, None);
    let running = p.record(&p.job("running").id).1;
    c.that(
        running.start_time.is_some() && !running.node_list.is_empty(),
        || "running: no start or node".into(),
    );
    c.done("running/pending incomplete");
}

/// `slurm-usage status` after the first collect: dates covered, file counts, and each
/// date's state, jobs and unfinished jobs as the files and the tracker hold them.
#[test]
fn status_after_first_collect() {
    let Some(p) = first() else { return };
    let mut c = Check::default();
    check_status(p, &mut c);
    c.done("status after the first collect");
}

/// Sanity against reality, not only against sacct (linuxproc mode: in cgroup mode the memory
/// sacct reports is not the job's RSS): mem_hog held the 500 MB that dd filled; the 2-task
/// srun step's memory is the sum of its tasks (TRESUsageInTot), more than MaxRSS alone.
#[test]
fn memory_peaks_are_real() {
    let Some(p) = first() else { return };
    if p.rig.cgroup() {
        note!("[real_slurm] cgroup mode: memory sanity checks run in linuxproc mode only");
        return;
    }
    let mem_hog = p.record(&p.job("mem_hog").id).1;
    assert!(
        mem_hog.max_rss_mb >= 450.0,
        "mem_hog max_rss_mb {} < 450",
        mem_hog.max_rss_mb
    );
    assert!(
        mem_hog.memory_efficiency > 70.0,
        "mem_hog memory_efficiency {}",
        mem_hog.memory_efficiency
    );
    let multi = &p.after[&p.job("multi_step").id];
    let two_tasks = multi
        .iter()
        .find(|s| s["NTasks"] == "2")
        .expect("multi_step has a 2-task step");
    let tres_mem = tres(&two_tasks["TRESUsageInTot"], "mem")
        .and_then(memory_mb)
        .expect("TRESUsageInTot mem");
    let max_rss = memory_mb(&two_tasks["MaxRSS"]).expect("MaxRSS");
    assert!(
        tres_mem > max_rss,
        "2-task step: TRESUsageInTot mem {tres_mem} should sum both tasks (MaxRSS {max_rss})"
    );
    let rec = p.record(&p.job("multi_step").id).1;
    assert!(
        rec.max_rss_mb >= tres_mem,
        "multi_step max_rss_mb {} < its 2-task step {tres_mem}",
        rec.max_rss_mb
    );
}

/// cgroup mode only: the OOM job is archived OUT_OF_MEMORY, final, exit code as sacct has it.
#[test]
fn out_of_memory_job_in_cgroup_mode() {
    let Some(p) = first() else { return };
    if !p.rig.cgroup() {
        note!("[real_slurm] linuxproc mode: no OUT_OF_MEMORY job in the mix");
        return;
    }
    let job = p.job("oom");
    let r = p.record(&job.id).1;
    assert_eq!(r.state, "OUT_OF_MEMORY");
    assert!(r.is_complete);
    assert_eq!(r.exit_code, p.after[&job.id][0]["ExitCode"]);
}

// ------------------------------------------------------------------------------ tests: after finish

/// After `jobs.sh finish` and a second collect: the formerly RUNNING and PENDING jobs are
/// CANCELLED and complete, their records were rewritten, and every job again agrees with
/// sacct (records and metrics).
#[test]
fn second_collect_completes_the_records() {
    let Some((one, two)) = second() else { return };
    let mut c = Check::default();
    check_records_against_sacct(two, &mut c);
    check_metrics(two, &mut c);
    for key in ["running", "pending"] {
        let job = two.job(key);
        let id = format!("{} ({key})", job.id);
        let before = one.record(&job.id).1;
        let (_, r) = two.record(&job.id);
        c.eq(&id, "state", r.state.as_str(), "CANCELLED");
        c.eq(&id, "is_complete", r.is_complete, true);
        c.that(r.end_time.is_some(), || format!("job {id}: no end_time"));
        c.that(r.processed_date > before.processed_date, || {
            format!("job {id}: record not rewritten")
        });
    }
    let running = two.record(&two.job("running").id).1;
    c.that(running.elapsed_seconds > 0, || {
        "running job: elapsed 0 after it was cancelled".into()
    });
    let pending = two.record(&two.job("pending").id).1;
    c.eq(
        "pending",
        "start_time (cancelled while pending)",
        pending.start_time,
        None,
    );
    c.eq("pending", "node_list", pending.node_list.as_str(), "");
    c.done("second collect vs sacct");
}

/// The second collect keeps every raw row of the first (no file and no job lost rows) and
/// the raw partitions still hold exactly sacct's lines of every job.
#[test]
fn second_collect_keeps_every_raw_row() {
    let Some((one, two)) = second() else { return };
    let mut c = Check::default();
    check_raw_against_sacct(two, &mut c);
    for (d, rows) in &one.raw {
        let later = two.raw.get(d).map_or(0, Vec::len);
        c.that(later >= rows.len(), || {
            format!(
                "raw {d}: {} rows after the first collect, {later} after the second",
                rows.len()
            )
        });
        let keys: BTreeSet<&str> = two
            .raw
            .get(d)
            .into_iter()
            .flatten()
            .filter_map(|r| r.get("JobIDRaw")?.as_deref())
            .collect();
        for k in rows.iter().filter_map(|r| r.get("JobIDRaw")?.as_deref()) {
            c.that(keys.contains(k), || {
                format!("raw {d}: row {k} lost by the second collect")
            });
        }
    }
    for job in &two.jobs {
        let raw = &two.after[&job.id][0]["JobIDRaw"];
        let (n1, n2) = (one.raw_rows(raw).len(), two.raw_rows(raw).len());
        c.that(n2 >= n1, || {
            format!("job {}: raw rows shrank from {n1} to {n2}", job.id)
        });
    }
    c.done("second collect raw rows");
}

/// After the second collect every job is in exactly one processed file (job ids never
/// duplicated across files), at its date, and the window is complete.
#[test]
fn second_collect_keeps_every_job_exactly_once() {
    let Some((one, two)) = second() else { return };
    let mut c = Check::default();
    check_attribution(two, &mut c);
    check_window(two, &mut c);
    for (d, jobs) in &one.processed {
        for j in jobs {
            c.that(two.records(&j.job_id).len() == 1, || {
                format!(
                    "job {} of {d} is not archived once after the second collect",
                    j.job_id
                )
            });
        }
    }
    c.done("second collect: every job once");
}

/// The tracker and `status` after the second collect: the date of the mix has no
/// unfinished job of the mix left; today is still not complete (the day is not over).
#[test]
fn second_collect_tracker_and_status() {
    let Some((_, two)) = second() else { return };
    let mut c = Check::default();
    c.that(
        !two.completed_dates().contains(&two.today.to_string()),
        || "today is marked complete before it ended".into(),
    );
    for (d, jobs) in &two.processed {
        let info = two.tracker_date(*d);
        let unfinished = jobs.iter().filter(|j| !j.is_complete).count() as u64;
        c.eq(
            &d.to_string(),
            "tracker incomplete_jobs",
            info["incomplete_jobs"].as_u64(),
            Some(unfinished),
        );
        c.eq(
            &d.to_string(),
            "tracker jobs",
            info["jobs"].as_u64(),
            Some(jobs.len() as u64),
        );
        c.eq(
            &d.to_string(),
            "tracker parse_errors",
            info["parse_errors"].as_u64(),
            Some(0),
        );
    }
    for job in &two.jobs {
        c.that(two.record(&job.id).1.is_complete, || {
            format!("job {} ({}) still incomplete", job.id, job.key)
        });
    }
    check_status(two, &mut c);
    c.done("second collect tracker and status");
}

// ------------------------------------------------------------------------------ tests: other commands

/// `slurm-usage test` passes against the rig (sacct and sinfo found, their version, accounting
/// on, dry collection) and fails when slurmdbd cannot be reached.
#[test]
fn test_command_passes_against_the_cluster_and_fails_without_slurmdbd() {
    let Some(p) = first() else { return };
    let data = work_dir().join("test-command/data");
    let test = |conf: &Path| {
        run(
            Command::new(BIN)
                .env("SLURM_CONF", conf)
                .env("NO_COLOR", "1")
                .env_remove("SLURM_USAGE_CONFIG")
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
    let before = snapshot_files(&dir.join("data"));
    let out = run(
        Command::new(BIN)
            .env("SLURM_CONF", broken_slurm_conf(&p.rig, "no-slurmdbd/etc"))
            .env_remove("SLURM_USAGE_CONFIG")
            .args(["collect", "--days", "1", "--config"])
            .arg(&p.config)
            .arg("--data-dir")
            .arg(dir.join("data")),
        Duration::from_secs(120),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        out.code,
        Some(1),
        "collect without slurmdbd {}",
        out.describe()
    );
    let after = snapshot_files(&dir.join("data"));
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
        let mut v: serde_json::Value = serde_json::from_slice(&m[Path::new(TRACKER)]).unwrap();
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
            Command::new(BIN)
                .env("NO_COLOR", "1")
                .env_remove("SLURM_USAGE_CONFIG")
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

/// One `slurm-usage daemon` cycle (its catch-up at start on a fresh data dir, then SIGTERM,
/// exit 0) archives what sacct reports, exactly as `collect` does.
#[test]
fn daemon_cycle_archives_what_sacct_reports() {
    let Some((two, d)) = daemon() else { return };
    assert_eq!(d.how, How::Daemon);
    assert_eq!(
        d.collect_out.code,
        Some(0),
        "daemon exit {}",
        d.collect_out.describe()
    );
    let mut c = Check::default();
    check_records_against_sacct(d, &mut c);
    check_metrics(d, &mut c);
    check_raw_against_sacct(d, &mut c);
    check_attribution(d, &mut c);
    check_window(d, &mut c);
    for j in &d.jobs {
        let (ours, theirs) = (d.record(&j.id), two.record(&j.id));
        c.eq(&j.id, "date (daemon vs collect)", ours.0, theirs.0);
        c.that(ours.1.same_content(theirs.1), || {
            format!(
                "job {}: the daemon's record differs from collect's:\n  {:?}\n  {:?}",
                j.id, ours.1, theirs.1
            )
        });
    }
    c.that(d.tracker["last_success"].is_string(), || {
        "the daemon cycle set no last_success".into()
    });
    c.done("daemon cycle");
}
