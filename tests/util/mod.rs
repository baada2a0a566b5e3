//! Shared helpers for the integration tests: a temp data dir, a config, and a fake `sacct`
//! script whose output per date the test chooses (or makes fail, or hang).

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use chrono::{Days, NaiveDate, Utc};
use slurm_usage::sacct::fields::{DELIMITER, SACCT_FIELDS};

/// A scratch installation: data dir, config, fake sacct.
pub struct Env {
    pub dir: tempfile::TempDir,
}

impl Env {
    /// A new env whose config uses `extra` TOML lines under `[collect]`.
    pub fn new(extra_collect: &str) -> Env {
        let dir = tempfile::tempdir().unwrap();
        let env = Env { dir };
        for sub in ["out", "fail", "hang"] {
            std::fs::create_dir_all(env.path().join(sub)).unwrap();
        }
        let fake = env.path().join("sacct");
        std::fs::write(&fake, FAKE_SACCT).unwrap();
        std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
        env.write_config(extra_collect);
        env
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn data(&self) -> PathBuf {
        self.path().join("data")
    }

    pub fn config(&self) -> PathBuf {
        self.path().join("config.toml")
    }

    pub fn write_config(&self, extra_collect: &str) {
        let mut text = format!(
            "data_dir = \"{}\"\ntimezone = \"UTC\"\n[collect]\nsacct = \"{}\"\n",
            self.data().display(),
            self.path().join("sacct").display()
        );
        for (key, value) in [
            ("retries", "0"),
            ("retry_delay", "\"0s\""),
            ("settle", "\"0s\""),
            ("sacct_timeout", "\"20s\""),
        ] {
            if !extra_collect.contains(key) {
                text.push_str(&format!("{key} = {value}\n"));
            }
        }
        text.push_str(extra_collect);
        text.push('\n');
        std::fs::write(self.config(), text).unwrap();
    }

    /// What the fake sacct prints for `date`.
    pub fn set_output(&self, date: NaiveDate, lines: &[String]) {
        let mut text = lines.join("\n");
        if !text.is_empty() {
            text.push('\n');
        }
        std::fs::write(self.path().join("out").join(date.to_string()), text).unwrap();
    }

    /// Raw bytes the fake sacct prints for `date`.
    pub fn set_output_bytes(&self, date: NaiveDate, bytes: &[u8]) {
        std::fs::write(self.path().join("out").join(date.to_string()), bytes).unwrap();
    }

    /// Makes sacct for `date` fail (exit 1 with a message on stderr), or stop failing.
    pub fn set_failing(&self, date: NaiveDate, failing: bool) {
        let p = self.path().join("fail").join(date.to_string());
        if failing {
            std::fs::write(p, b"").unwrap();
        } else {
            let _ = std::fs::remove_file(p);
        }
    }

    /// Makes sacct for `date` hang.
    pub fn set_hanging(&self, date: NaiveDate) {
        std::fs::write(self.path().join("hang").join(date.to_string()), b"").unwrap();
    }

    /// The dates sacct was called for, in call order.
    pub fn calls(&self) -> Vec<String> {
        std::fs::read_to_string(self.path().join("calls.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    pub fn clear_calls(&self) {
        let _ = std::fs::remove_file(self.path().join("calls.log"));
    }

    /// Runs the binary with the env's config and `args`.
    pub fn run(&self, args: &[&str]) -> Output {
        let out = Command::new(env!("CARGO_BIN_EXE_slurm-usage"))
            .arg("--config")
            .arg(self.config())
            .args(args)
            .env_remove("RUST_LOG")
            .env("NO_COLOR", "1")
            .output()
            .unwrap();
        eprintln!(
            "$ slurm-usage {}\nstatus: {}\n--- stdout\n{}\n--- stderr\n{}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    pub fn processed(&self, date: NaiveDate) -> PathBuf {
        self.data()
            .join("processed")
            .join(format!("{date}.parquet"))
    }

    pub fn raw(&self, date: NaiveDate) -> PathBuf {
        self.data().join("raw").join(format!("{date}.parquet"))
    }

    pub fn jobs(&self, date: NaiveDate) -> Vec<slurm_usage::model::ProcessedJob> {
        let zone: slurm_usage::zone::Zone = "UTC".parse().unwrap();
        slurm_usage::store::parquet::read_processed(&self.processed(date), &zone)
            .unwrap()
            .into_inner()
    }

    /// JobIDRaw of every raw row of `date` (`<line>` for verbatim unparsable lines).
    pub fn raw_keys(&self, date: NaiveDate) -> Vec<String> {
        raw_column(&self.raw(date), "JobIDRaw")
            .into_iter()
            .map(|v| v.unwrap_or_else(|| "<line>".into()))
            .collect()
    }

    pub fn tracker(&self) -> serde_json::Value {
        serde_json::from_slice(
            &std::fs::read(self.data().join(".date_completion_tracker.json")).unwrap(),
        )
        .unwrap()
    }

    pub fn completed(&self) -> Vec<String> {
        self.tracker()["completed_dates"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect()
    }
}

/// One column of a raw partition as text.
pub fn raw_column(path: &Path, name: &str) -> Vec<Option<String>> {
    use arrow_array::cast::AsArray;
    use arrow_array::Array;
    let batches = slurm_usage::store::parquet::read_raw(path)
        .unwrap()
        .into_inner();
    let mut out = Vec::new();
    for b in batches {
        let c = arrow_cast::cast(
            b.column_by_name(name).unwrap(),
            &arrow_schema::DataType::Utf8,
        )
        .unwrap();
        let c = c.as_string::<i32>();
        for i in 0..c.len() {
            out.push(c.is_valid(i).then(|| c.value(i).to_string()));
        }
    }
    out
}

/// Today in UTC (the tests' configured zone) and `n` days before.
pub fn day(n: u64) -> NaiveDate {
    Utc::now()
        .date_naive()
        .checked_sub_days(Days::new(n))
        .unwrap()
}

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

/// The fake sacct: records each call's date, then prints `out/<date>` (or fails, or hangs)
/// where `<date>` is the date part of `--starttime`.
const FAKE_SACCT: &str = r#"#!/bin/bash
dir="$(cd "$(dirname "$0")" && pwd)"
if [[ "$1" == "--version" ]]; then echo "slurm 22.05.8"; exit 0; fi
start=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --starttime) start="$2"; shift 2 ;;
    *) shift ;;
  esac
done
d="${start%%T*}"
echo "$d" >> "$dir/calls.log"
if [[ -e "$dir/hang/$d" ]]; then exec sleep 60; fi
if [[ -e "$dir/fail/$d" ]]; then echo "sacct: error: Problem talking to the database: Connection refused" >&2; exit 1; fi
if [[ -e "$dir/out/$d" ]]; then cat "$dir/out/$d"; fi
exit 0
"#;

// ---- shared by the disk-full tests (tests/disk_full.rs, tests/daemon_faults.rs) ----

pub fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// Skips a test that cannot run here, unless `CI=true`: there it must run, so it fails.
pub fn skip(reason: &str) {
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{reason}; CI=true, so this test must run, not be skipped");
    }
    eprintln!("SKIPPED: {reason}");
}

pub fn free_bytes(dir: &Path) -> u64 {
    let out = Command::new("df")
        .args(["--output=avail", "-B1"])
        .arg(dir)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .nth(1)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// A 3 MB tmpfs mounted on a data dir for as long as it lives: unmounted on drop, also when
/// the test panics.
pub struct Tmpfs(PathBuf);

impl Tmpfs {
    /// Mounts it on `dir` (created if missing), or says why it cannot be (not root, no
    /// CAP_SYS_ADMIN): the caller skips.
    pub fn mount(dir: &Path) -> Result<Tmpfs, &'static str> {
        if !is_root() {
            return Err("mounting a tmpfs needs root");
        }
        std::fs::create_dir_all(dir).unwrap();
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=3m", "tmpfs"])
            .arg(dir)
            .status();
        if !mounted.is_ok_and(|s| s.success()) {
            return Err("cannot mount a tmpfs here (no CAP_SYS_ADMIN?)");
        }
        Ok(Tmpfs(dir.to_path_buf()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// Fills the file system of `dir` with a file `filler` but for ~64 KB; returns its path.
pub fn fill_disk(dir: &Path) -> PathBuf {
    let filler = dir.join("filler");
    let room = free_bytes(dir).saturating_sub(64 * 1024);
    std::fs::write(&filler, vec![0u8; room as usize]).unwrap();
    filler
}

/// 200 finished jobs with big names on `date`, then 3,200: more than 64 KB more.
pub fn small_and_bigger_outputs(date: NaiveDate) -> (Vec<String>, Vec<String>) {
    let small = many_jobs(date, 1000, 200);
    let mut bigger = small.clone();
    bigger.extend(many_jobs(date, 5000, 3000));
    (small, bigger)
}

/// After a write failed on a full disk: the data dir holds the same files as `before` (no
/// temp file left, nothing new; `filler` aside) and every Parquet file is byte for byte the
/// same (the lock and the tracker may record the attempt).
pub fn assert_untouched(before: &[(PathBuf, Vec<u8>)], dir: &Path, filler: &Path) {
    let after: Vec<(PathBuf, Vec<u8>)> = snapshot_bytes(dir)
        .into_iter()
        .filter(|(p, _)| p != filler)
        .collect();
    let names = |s: &[(PathBuf, Vec<u8>)]| s.iter().map(|(p, _)| p.clone()).collect::<Vec<_>>();
    assert_eq!(
        names(&after),
        names(before),
        "no temp file left, nothing new"
    );
    for ((p, a), (_, b)) in before.iter().zip(&after) {
        if p.extension().is_some_and(|e| e == "parquet") {
            assert!(a == b, "{} changed on a full disk", p.display());
        }
    }
}

/// Temp files anywhere under `dir`, by the collector's own rule for their names.
pub fn temp_files(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if slurm_usage::store::atomic::is_temp_name(&e.file_name().to_string_lossy()) {
                found.push(p);
            }
        }
    }
    found
}

/// Every file under `dir` with its bytes, sorted by path.
pub fn snapshot_bytes(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push((p.clone(), std::fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
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

/// What one look at the data dir found (the crash and daemon-fault tests).
#[derive(Default)]
pub struct Snapshot {
    /// job_id -> the dates whose processed partition holds it.
    pub processed: std::collections::HashMap<String, Vec<NaiveDate>>,
    /// JobIDRaw of every raw row.
    pub raw: std::collections::HashSet<String>,
    pub temps: usize,
}

impl Snapshot {
    /// Jobs in more than one processed partition.
    pub fn duplicates(&self) -> BTreeMap<&String, &Vec<NaiveDate>> {
        self.processed.iter().filter(|(_, d)| d.len() > 1).collect()
    }

    /// After a clean run: every job of `want` (an un-killed run's data) is here, and no job
    /// is in more than one partition.
    pub fn assert_each_job_once(&self, want: &Snapshot, when: &str) {
        assert_eq!(self.temps, 0, "temp files left {when}");
        let dups = self.duplicates();
        assert!(
            dups.is_empty(),
            "jobs in more than one partition {when}: {dups:?}"
        );
        let missing: Vec<&String> = (want.processed.keys())
            .filter(|id| !self.processed.contains_key(*id))
            .collect();
        assert!(missing.is_empty(), "jobs missing {when}: {missing:?}");
    }
}

/// A number from the environment (a knob of the long tests), else `default`.
pub fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A fixed permutation of 0..n (no rand dependency), so kill delays are spread, not ordered.
pub fn spread(n: u64) -> Vec<u64> {
    let mut v: Vec<u64> = (0..n).collect();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for i in (1..v.len()).rev() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.swap(i, (x % (i as u64 + 1)) as usize);
    }
    v
}

/// Prints how many kills landed in each phase of a run.
pub fn print_phases(prefix: &str, phases: &BTreeMap<String, u64>) {
    for (phase, n) in phases {
        eprintln!("{prefix}   {n:4} kills {phase}");
    }
}

/// Reads every partition and the tracker; panics on anything inconsistent: a partition that
/// does not load or was moved aside, a file that is neither a partition nor a temp file.
pub fn inspect(data: &Path) -> Snapshot {
    let zone: slurm_usage::zone::Zone = "UTC".parse().unwrap();
    let dd = slurm_usage::store::Archive::local(data);
    let mut snap = Snapshot::default();
    for kind in [
        slurm_usage::store::Kind::Processed,
        slurm_usage::store::Kind::Raw,
    ] {
        let Ok(entries) = std::fs::read_dir(dd.prefix(kind)) else {
            continue;
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if slurm_usage::store::atomic::is_temp_name(&name) {
                snap.temps += 1;
                continue;
            }
            assert!(
                !name.contains(".corrupt-"),
                "a partition was moved aside: {}",
                e.path().display()
            );
            assert!(
                name.ends_with(".parquet") && name.len() == "YYYY-MM-DD.parquet".len(),
                "unexpected file {}",
                e.path().display()
            );
        }
        for date in dd.dates(kind).unwrap() {
            let path = dd.name(kind, date);
            match kind {
                slurm_usage::store::Kind::Processed => {
                    match slurm_usage::store::parquet::read_processed(&path, &zone).unwrap() {
                        slurm_usage::store::parquet::Existing::Found(jobs) => {
                            for j in jobs {
                                snap.processed
                                    .entry(j.job_id.into())
                                    .or_default()
                                    .push(date);
                            }
                        }
                        other => panic!("{} does not load: {other:?}", path.display()),
                    }
                }
                slurm_usage::store::Kind::Raw => {
                    match slurm_usage::store::parquet::read_raw(&path).unwrap() {
                        slurm_usage::store::parquet::Existing::Found(batches) => {
                            use arrow_array::cast::AsArray;
                            use arrow_array::Array;
                            for b in batches {
                                let c = arrow_cast::cast(
                                    b.column_by_name("JobIDRaw").unwrap(),
                                    &arrow_schema::DataType::Utf8,
                                )
                                .unwrap();
                                let c = c.as_string::<i32>();
                                for i in 0..c.len() {
                                    if c.is_valid(i) {
                                        snap.raw.insert(c.value(i).to_string());
                                    }
                                }
                            }
                        }
                        other => panic!("{} does not load: {other:?}", path.display()),
                    }
                }
            }
        }
    }
    let tracker = dd.tracker_name();
    if tracker.exists() {
        slurm_usage::store::tracker::Tracker::load(&tracker).expect("the tracker loads");
    }
    snap
}

/// Everything archived so far, and the check that it never shrinks: fed one [`Snapshot`]
/// after another (after every kill), it lists every job or raw row that was archived once
/// and is gone.
#[derive(Default)]
pub struct Ledger {
    /// Every job id ever seen in a processed partition, with the date it was first seen in.
    pub jobs: std::collections::HashMap<String, NaiveDate>,
    pub raw: std::collections::HashSet<String>,
    /// Jobs no longer in the date they were seen in, but in another (moved to their start).
    pub moved: usize,
    pub lost: Vec<String>,
}

impl Ledger {
    /// Looks at the data dir after a kill: nothing seen before may be gone. Returns what it
    /// found; `what` says which kill, for the message.
    pub fn check_after(&mut self, data: &Path, what: &str) -> Snapshot {
        let snap = inspect(data);
        self.check(&snap);
        assert!(self.lost.is_empty(), "lost after {what}: {:?}", self.lost);
        snap
    }

    pub fn check(&mut self, snap: &Snapshot) {
        for (id, date) in &self.jobs {
            match snap.processed.get(id) {
                None => self.lost.push(format!("job {id} (was in {date})")),
                Some(ds) if !ds.contains(date) => self.moved += 1,
                Some(_) => {}
            }
        }
        for id in &self.raw {
            if !snap.raw.contains(id) {
                self.lost.push(format!("raw row {id}"));
            }
        }
        for (id, ds) in &snap.processed {
            self.jobs.entry(id.clone()).or_insert(ds[0]);
        }
        self.raw.extend(snap.raw.iter().cloned());
    }
}

/// A running `slurm-usage daemon --config CONFIG`, started as systemd starts it: stdin and
/// stdout null, stderr to a log file, `NOTIFY_SOCKET` a datagram socket that a thread drains
/// all the time (the socket queues only ~10 datagrams, and a daemon whose send blocks on a
/// full queue stalls). Killed when dropped; a panicking test prints its log and messages.
pub struct Daemon {
    pub child: Child,
    messages: mpsc::Receiver<String>,
    stop_reader: Arc<AtomicBool>,
    reader: Option<std::thread::JoinHandle<()>>,
    /// Every notify message taken so far, in order.
    pub seen: Vec<String>,
    log: PathBuf,
}

impl Daemon {
    /// Starts it with its socket and log in `dir`; `env` is added to its environment (none
    /// of the watchdog, journal or log-filter variables of the caller's is passed on).
    pub fn start(dir: &Path, config: &Path, env: &[(&str, &str)]) -> Daemon {
        static STARTED: AtomicUsize = AtomicUsize::new(0);
        let n = STARTED.fetch_add(1, Ordering::Relaxed);
        let sock = dir.join(format!("notify-{n}.sock"));
        let _ = std::fs::remove_file(&sock);
        let socket = UnixDatagram::bind(&sock).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let (tx, messages) = mpsc::channel();
        let stop_reader = Arc::new(AtomicBool::new(false));
        let stop = stop_reader.clone();
        let reader = std::thread::spawn(move || {
            let mut buf = vec![0u8; 4096];
            while !stop.load(Ordering::Relaxed) {
                if let Ok(n) = socket.recv(&mut buf) {
                    let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
                    if tx.send(msg).is_err() {
                        break;
                    }
                }
            }
        });
        let log = dir.join(format!("daemon-{n}.log"));
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_slurm-usage"));
        cmd.arg("daemon")
            .arg("--config")
            .arg(config)
            .env("NOTIFY_SOCKET", &sock)
            .env_remove("WATCHDOG_USEC")
            .env_remove("WATCHDOG_PID")
            .env_remove("JOURNAL_STREAM")
            .env_remove("RUST_LOG")
            .env("NO_COLOR", "1")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap());
        Daemon {
            child: cmd.spawn().unwrap(),
            messages,
            stop_reader,
            reader: Some(reader),
            seen: Vec::new(),
            log,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Its stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn alive(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// Takes every message sent so far: all that arrive until none has for 100 ms (the
    /// reader thread may not have passed on the last one yet).
    pub fn drain(&mut self) {
        while let Ok(m) = self.messages.recv_timeout(Duration::from_millis(100)) {
            self.seen.push(m);
        }
    }

    /// Takes the messages that arrive within `d`.
    pub fn collect_for(&mut self, d: Duration) -> Vec<String> {
        let start = self.seen.len();
        let deadline = Instant::now() + d;
        while let Ok(m) =
            (self.messages).recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            self.seen.push(m);
        }
        self.seen[start..].to_vec()
    }

    /// Takes messages until one satisfies `pred` (returned); panics after `within`.
    pub fn expect(&mut self, what: &str, within: Duration, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.messages.recv_timeout(left) {
                Ok(m) => {
                    self.seen.push(m.clone());
                    if pred(&m) {
                        return m;
                    }
                }
                Err(_) => panic!(
                    "no {what} within {within:?}; received so far: {:#?}",
                    self.seen
                ),
            }
        }
    }

    /// The text of the next `STATUS=` that starts with `prefix`.
    pub fn expect_status(&mut self, prefix: &str, within: Duration) -> String {
        let msg = self.expect(&format!("STATUS={prefix}..."), within, |m| {
            status_of(m).is_some_and(|s| s.starts_with(prefix))
        });
        status_of(&msg).unwrap().to_string()
    }

    /// Sends `sig` (`TERM`, `HUP`, `KILL`) with kill(1); panics if that fails.
    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.pid().to_string())
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{sig} {} failed", self.pid());
    }

    /// Waits for it to exit; panics after `within`.
    pub fn wait_exit(&mut self, within: Duration) -> ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "daemon still running {within:?} later"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.drain();
            eprintln!(
                "--- daemon {} log ---\n{}\n--- notifications ---\n{:#?}",
                self.pid(),
                self.log(),
                self.seen
            );
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.stop_reader.store(true, Ordering::Relaxed);
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
    }
}

/// The `STATUS=` line of a notify message.
pub fn status_of(msg: &str) -> Option<&str> {
    msg.lines().find_map(|l| l.strip_prefix("STATUS="))
}
