//! Crash safety: `collect --days 3` against a large synthetic sacct, killed with SIGKILL (and
//! SIGTERM) at many points of its run. After every kill the data dir must be consistent: every
//! partition loads, no temp file counts as data, no job archived before the kill is gone, and
//! a final collect completes the data.
//!
//! Fast mode (plain `cargo test`): `SLURM_USAGE_CRASH_KILLS` (default 60) kills at
//! `SLURM_USAGE_CRASH_JOBS` (default 300) jobs a day. `tests/crash.sh` runs the full 250.

mod util;

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use util::{env_num, inspect, output, print_phases, slurm_usage, spread, Ledger, BIN};

/// A scratch data dir whose sacct is this binary's `fake-sacct`.
struct Setup {
    dir: tempfile::TempDir,
}

impl Setup {
    /// `settle = "1000d"`: no date becomes complete, so every run re-reads and merges every
    /// date (the path where a loss could happen) and all runs take about as long.
    /// `max_recollect_days = 7`: jobs running across midnight put partitions on older dates,
    /// which later cycles re-collect, back to this limit (60 by default); 7 bounds the size of
    /// the data dir, and so the time of the checks after every kill.
    fn new(jobs_per_day: u64) -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let s = Setup { dir };
        let sacct = s.dir.path().join("sacct");
        std::fs::write(
            &sacct,
            format!(
                "#!/bin/bash\nexec '{BIN}' fake-sacct --jobs-per-day {jobs_per_day} -- \"$@\"\n"
            ),
        )
        .unwrap();
        std::fs::set_permissions(&sacct, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::write(
            s.config(),
            format!(
                "data_dir = \"{}\"\ntimezone = \"UTC\"\n[collect]\nsacct = \"{}\"\nretries = 0\nretry_delay = \"0s\"\nsettle = \"1000d\"\nsacct_timeout = \"300s\"\nmax_recollect_days = 7\n",
                s.data().display(),
                sacct.display()
            ),
        )
        .unwrap();
        s
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn config(&self) -> PathBuf {
        self.dir.path().join("config.toml")
    }

    fn log(&self) -> PathBuf {
        self.dir.path().join("collect.log")
    }

    /// Where the last killed run was, from its log: how many dates it had written.
    fn phase(&self) -> String {
        let log = std::fs::read_to_string(self.log()).unwrap_or_default();
        let written = log.matches("date collected").count();
        if log.contains("collection finished") {
            "after the last date (final tracker save)".into()
        } else if !log.contains("collection started") {
            "before planning (start-up, lock)".into()
        } else {
            format!("{written} dates written (sacct, parse, encode, rename or tracker save of the next)")
        }
    }

    /// Starts a collect whose log goes to `log`.
    fn spawn(&self) -> Child {
        let log = std::fs::File::create(self.log()).unwrap();
        slurm_usage()
            .arg("--config")
            .arg(self.config())
            .args(["-v", "collect", "--days", "3", "--wait"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap()
    }

    /// An un-killed collect; panics unless it succeeds.
    fn collect(&self) {
        let out = output(
            slurm_usage()
                .arg("--config")
                .arg(self.config())
                .args(["collect", "--days", "3", "--wait"]),
        );
        assert!(
            out.status.success(),
            "collect failed: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Sends `signal` to `pid` with kill(1) (no unsafe code).
fn send(signal: &str, pid: u32) {
    let _ = Command::new("kill")
        .args([signal, &pid.to_string()])
        .status();
}

/// The longest of three un-killed collects from an empty data dir (the later ones merge and
/// reach back to older dates).
fn measure(jobs_per_day: u64) -> Duration {
    let s = Setup::new(jobs_per_day);
    (0..3)
        .map(|_| {
            let t0 = Instant::now();
            s.collect();
            t0.elapsed()
        })
        .max()
        .unwrap()
}

/// Lets `child` run for `delay`; `Some(how long it ran)` when it ended first.
fn run_for(child: &mut Child, delay: Duration) -> Option<Duration> {
    let started = Instant::now();
    let deadline = started + delay;
    loop {
        if child.try_wait().unwrap().is_some() {
            return Some(started.elapsed());
        }
        let now = Instant::now();
        if now >= deadline {
            return None;
        }
        std::thread::sleep((deadline - now).min(Duration::from_millis(2)));
    }
}

fn kill_run(signals: &[&str], kills: u64, jobs_per_day: u64) {
    let mut full = measure(jobs_per_day);
    eprintln!("crash: {jobs_per_day} jobs/day, an un-killed collect takes {full:?}");
    let s = Setup::new(jobs_per_day);
    let mut ledger = Ledger::default();
    let mut killed = 0u64;
    let mut finished_first = 0u64;
    let mut max_temps = 0usize;
    let mut phases: BTreeMap<String, u64> = BTreeMap::new();
    let t0 = Instant::now();
    for i in spread(kills) {
        // Delays from 0 to 95% of a full run, in an order that mixes early and late kills.
        let delay = full.mul_f64(0.95 * i as f64 / kills.max(1) as f64);
        let mut child = s.spawn();
        match run_for(&mut child, delay) {
            None => {
                send(signals[i as usize % signals.len()], child.id());
                killed += 1;
                child.wait().unwrap();
                *phases.entry(s.phase()).or_insert(0u64) += 1;
            }
            Some(took) => {
                // The reference runs were slower than this one (they may have shared the
                // cores with the other test of this file): aim the later kills at what a
                // run takes now.
                finished_first += 1;
                full = full.min(took);
            }
        }
        child.wait().unwrap();
        let snap = ledger.check_after(&s.data(), &format!("kill {killed}"));
        max_temps = max_temps.max(snap.temps);
    }
    // An un-killed collect completes the data, each job exactly once.
    let reference = Setup::new(jobs_per_day);
    reference.collect();
    let want = inspect(&reference.data());
    s.collect();
    let snap = inspect(&s.data());
    ledger.check(&snap);
    snap.assert_each_job_once(&want, "after the final collect");
    eprintln!(
        "crash: signals {signals:?}: {killed} kills ({finished_first} runs finished before their kill) \
         in {:?}; {} jobs archived, {} moved between dates, {} raw rows; at most {max_temps} temp files \
         left by a kill; {} lost",
        t0.elapsed(),
        snap.processed.len(),
        ledger.moved,
        snap.raw.len(),
        ledger.lost.len()
    );
    print_phases("crash:", &phases);
    assert!(ledger.lost.is_empty());
    assert!(
        killed * 4 >= kills,
        "too few runs were killed: {killed}/{kills}"
    );
}

#[test]
fn sigkill_at_any_point_loses_nothing() {
    kill_run(
        &["-KILL"],
        env_num("SLURM_USAGE_CRASH_KILLS", 60),
        env_num("SLURM_USAGE_CRASH_JOBS", 300),
    );
}

#[test]
fn sigterm_or_sigint_mid_write_leaves_a_consistent_data_dir() {
    // `collect` handles SIGINT (cancels the cycle); SIGTERM takes the default action.
    kill_run(
        &["-TERM", "-INT"],
        env_num("SLURM_USAGE_CRASH_TERMS", 4),
        env_num("SLURM_USAGE_CRASH_JOBS", 300),
    );
}
