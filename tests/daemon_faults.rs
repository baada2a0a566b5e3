//! Faults injected into a running `slurm-usage daemon` (issue 7): SIGKILL mid-cycle over and
//! over, a disk that fills up while it runs, SIGHUP during a cycle, a CLI `collect` (and a
//! second daemon) while a cycle holds the write lock, SIGTERM/SIGINT while a partition is
//! being written. After each fault the data dir must be consistent: every partition loads, no
//! temp file counts as data, nothing archived before the fault is gone, no lock is left
//! behind, and the daemon (or its successor) goes on collecting.
//!
//! Every daemon runs on a one-second schedule without jitter, with a fake sacct: this
//! binary's synthetic `fake-sacct` behind a bash script that logs each call (`start`/`end`
//! with its pid and its parent's, so the test knows whose call it was) and can be slowed
//! (`delay` file: seconds to sleep) or held (`gate` file: waits while it exists). The notify
//! socket is read by a thread of its own, so the daemon never blocks on a full socket queue.
//!
//! `SLURM_USAGE_DAEMON_KILLS` (default 40) and `SLURM_USAGE_DAEMON_JOBS` (default 150 jobs a
//! day) size the SIGKILL run: `SLURM_USAGE_DAEMON_KILLS=200 cargo test --test daemon_faults
//! -- --nocapture sigkill` for the long one. The disk-full test needs root (a tmpfs); it is
//! skipped with a message otherwise, and fails instead of skipping when `CI=true`.
//! `sigterm_mid_write_starts_no_further_write`: once SIGTERM arrives, the cycle finishes the
//! write in hand and starts no other (cancellation must win over the next date's write).

mod util;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use slurm_usage::store::atomic::is_temp_name;
use slurm_usage::store::lock;
use slurm_usage::store::{Archive, Kind};
use util::{
    assert_untouched, env_num, fill_disk, inspect, print_phases, skip, small_and_bigger_outputs,
    snapshot_bytes, spread, status_of, temp_files, Daemon, Ledger, Tmpfs,
};
use util::{output, slurm_usage, BIN};
const SHORT: Duration = Duration::from_secs(15);
/// The daemon's promise: SIGTERM to exit in at most this long.
const STOP_WITHIN: Duration = Duration::from_secs(5);

/// The fake sacct (see the module doc). Not `exec`: the `end` line needs the exit status.
const FAKE_SACCT: &str = r#"#!/bin/bash
dir="$(dirname "$0")"
for a in "$@"; do
  if [ "$a" = "--version" ]; then echo "slurm 23.02.7"; exit 0; fi
done
echo "start $$ $PPID" >> "$dir/calls.log"
if [ -e "$dir/gate" ]; then
  echo "gated $$ $PPID" >> "$dir/calls.log"
  while [ -e "$dir/gate" ]; do sleep 0.02; done
fi
if [ -e "$dir/delay" ]; then
  echo "slow $$ $PPID" >> "$dir/calls.log"
  sleep "$(cat "$dir/delay")"
fi
@RUN@ "$@"
rc=$?
echo "end $$ $PPID $rc" >> "$dir/calls.log"
exit $rc
"#;

/// Writes the fake sacct to `dir/sacct-fake`; `run` is the command that prints the output.
fn write_fake(dir: &Path, run: &str) -> PathBuf {
    let path = dir.join("sacct-fake");
    std::fs::write(&path, FAKE_SACCT.replace("@RUN@", run)).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// A daemon config: every second, no jitter, `collect` lines under `[collect]` (they override
/// nothing: pick keys not set here), `metrics` lines under `[metrics]`.
fn daemon_config(data: &Path, sacct: &Path, collect: &str, metrics: &str) -> String {
    format!(
        "data_dir = \"{data}\"\ntimezone = \"UTC\"\n\
         [schedule]\ncron = \"* * * * * *\"\njitter = \"0s\"\n\
         [collect]\nsacct = \"{sacct}\"\nretries = 0\nretry_delay = \"0s\"\nsacct_timeout = \"60s\"\n{collect}\n\
         [metrics]\n{metrics}\n",
        data = data.display(),
        sacct = sacct.display(),
    )
}

/// A scratch installation with the synthetic fake sacct.
struct Setup {
    dir: tempfile::TempDir,
}

impl Setup {
    /// `collect`: extra `[collect]` lines (lookback, settle, recollect window).
    fn new(jobs_per_day: u64, collect: &str) -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let s = Setup { dir };
        write_fake(
            s.path(),
            &format!("'{BIN}' fake-sacct --jobs-per-day {jobs_per_day} --"),
        );
        s.write_config(collect, "");
        s
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn data(&self) -> PathBuf {
        self.path().join("data")
    }

    fn config(&self) -> PathBuf {
        self.path().join("config.toml")
    }

    fn write_config(&self, collect: &str, metrics: &str) {
        let text = daemon_config(
            &self.data(),
            &self.path().join("sacct-fake"),
            collect,
            metrics,
        );
        std::fs::write(self.config(), text).unwrap();
    }

    fn start(&self) -> Daemon {
        Daemon::start(self.path(), &self.config(), &[])
    }

    /// Runs the binary with this config; prints what it did.
    fn run(&self, args: &[&str]) -> std::process::Output {
        output(slurm_usage().arg("--config").arg(self.config()).args(args))
    }
}

/// Sets or removes a flag file of the fake sacct (`gate`, `delay`).
fn set_flag(dir: &Path, name: &str, content: Option<&str>) {
    let p = dir.join(name);
    match content {
        Some(c) => std::fs::write(p, c).unwrap(),
        None => {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// The fake sacct's log: `[event, pid, ppid, (rc)]` per line.
fn calls(dir: &Path) -> Vec<Vec<String>> {
    std::fs::read_to_string(dir.join("calls.log"))
        .unwrap_or_default()
        .lines()
        .map(|l| l.split(' ').map(str::to_string).collect())
        .collect()
}

fn count_calls(dir: &Path, event: &str) -> usize {
    calls(dir).iter().filter(|c| c[0] == event).count()
}

/// Polls `cond` every 10 ms; panics with `what` after `within`.
fn wait_until(what: &str, within: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !cond() {
        assert!(Instant::now() < deadline, "{what}: not within {within:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Holds the next sacct call at the gate and returns once one is waiting there: the cycle
/// that made it holds the write lock and (one date, or one sacct at a time) writes nothing.
fn freeze(dir: &Path) {
    let before = count_calls(dir, "gated");
    set_flag(dir, "gate", Some(""));
    wait_until("a sacct call held at the gate", SHORT, || {
        count_calls(dir, "gated") > before
    });
}

/// What these tests wait for besides util::Daemon's messages.
impl Daemon {
    /// Waits for the `STATUS=collecting since ...` that starts a cycle.
    fn expect_cycle_start(&mut self, within: Duration) {
        self.expect("STATUS=collecting since ...", within, |m| {
            status_of(m).is_some_and(|s| s.starts_with("collecting since"))
        });
    }

    /// Waits for the next end-of-cycle STATUS= (`collected ...`, `nothing to collect ...` or
    /// `cycle failed ...`); returns its text.
    fn expect_cycle_end(&mut self, within: Duration) -> String {
        let msg = self.expect("STATUS= at the end of a cycle", within, |m| {
            status_of(m).is_some_and(is_cycle_end)
        });
        status_of(&msg).unwrap().to_string()
    }

    /// SIGTERM, `STOPPING=1`, exit 0 within [`STOP_WITHIN`]; returns how long it took.
    fn stop(&mut self) -> Duration {
        let t0 = Instant::now();
        self.signal("TERM");
        let status = self.wait_exit(STOP_WITHIN);
        let took = t0.elapsed();
        assert_eq!(status.code(), Some(0), "exit status after SIGTERM");
        self.drain();
        assert!(
            self.seen.iter().any(|m| m.contains("STOPPING=1")),
            "STOPPING=1 sent"
        );
        took
    }
}

fn is_cycle_end(status: &str) -> bool {
    status.starts_with("collected ")
        || status.starts_with("nothing to collect")
        || status.starts_with("cycle failed")
}

/// Both locks of the data dir can be taken: the killed holder left nothing behind.
fn assert_locks_free(data: &Path) {
    for name in [lock::DAEMON_LOCK, lock::WRITE_LOCK] {
        match lock::try_lock(data, name) {
            Ok(held) => drop(held),
            Err(e) => panic!("{name} still held after the daemon died: {e}"),
        }
    }
}

/// Where in its life a killed daemon was, from its log.
fn phase(log: &str) -> String {
    if !log.contains("daemon ready") {
        return "start-up (before READY)".into();
    }
    let Some(at) = log.rfind("collection started") else {
        return "ready, before its first cycle".into();
    };
    let current = &log[at..];
    if current.contains("collection finished") {
        return "between cycles".into();
    }
    let dates = current
        .lines()
        .next()
        .and_then(|l| l.split(" dates=").nth(1))
        .and_then(|v| v.split(' ').next())
        .unwrap_or("?")
        .to_string();
    let written = current.matches("date collected").count();
    format!("in a cycle, {written:>2} of {dates} dates written")
}

/// How long the last finished cycle in a daemon log took (`collection finished ... seconds="X"`).
fn last_cycle_seconds(log: &str) -> Option<f64> {
    log.lines()
        .rev()
        .find(|l| l.contains("collection finished"))?
        .split("seconds=\"")
        .nth(1)?
        .split('"')
        .next()?
        .parse()
        .ok()
}

#[test]
fn sigkill_mid_cycle_over_and_over_loses_nothing() {
    let kills = env_num("SLURM_USAGE_DAEMON_KILLS", 40);
    let jobs = env_num("SLURM_USAGE_DAEMON_JOBS", 150);
    // `settle = "1000d"`: no date ever becomes complete, so every cycle re-reads and merges
    // every date (where a loss could happen); `max_recollect_days` bounds how many.
    let s = Setup::new(
        jobs,
        "lookback_days = 1\nsettle = \"1000d\"\nmax_recollect_days = 3",
    );

    // Warm-up: cycles until the set of dates is stable; the last one's length is the window
    // the kills are spread over.
    let mut d = s.start();
    let mut cycle = Duration::ZERO;
    let mut status = String::new();
    for _ in 0..3 {
        d.expect_cycle_start(Duration::from_secs(60));
        let t0 = Instant::now();
        status = d.expect_cycle_end(Duration::from_secs(60));
        cycle = t0.elapsed();
        assert!(status.contains(" 0 failed"), "{status}");
    }
    d.stop();
    drop(d);
    eprintln!("daemon kill: {jobs} jobs/day; a cycle takes {cycle:?} ({status})");

    let mut ledger = Ledger::default();
    ledger.check(&inspect(&s.data()));
    let mut phases: BTreeMap<String, u64> = BTreeMap::new();
    let mut killed = 0u64;
    let mut in_cycle = 0u64;
    let mut max_temps = 0usize;
    // Temp files the last kill left, and kills whose temp files the next cycle removed.
    let mut left = 0usize;
    let mut cleaned = 0u64;
    let t0 = Instant::now();
    for i in spread(kills) {
        // One kill in five during start-up (0-200 ms after the exec), the others from the
        // start of a cycle to 10% past its expected end. Timed from the cycle's start, not
        // from the exec: a daemon whose last success is less than a tick old waits for the
        // next tick (no catch-up), up to a second.
        let frac = i as f64 / kills.max(1) as f64;
        let mut d = s.start();
        let delay = if i % 5 == 0 {
            Duration::from_millis(200).mul_f64(frac)
        } else {
            d.expect_cycle_start(SHORT);
            cycle.mul_f64(1.1 * frac)
        };
        std::thread::sleep(delay);
        if let Some(status) = d.child.try_wait().unwrap() {
            panic!(
                "the daemon exited by itself ({status}) before its kill (a stale lock?):\n{}",
                d.log()
            );
        }
        d.signal("KILL");
        let status = d.wait_exit(SHORT);
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&status),
            Some(9)
        );
        killed += 1;
        let log = d.log();
        if left > 0 && log.contains("collection started") {
            assert!(
                log.contains("removed temp files left by an interrupted write"),
                "the {left} temp files of the kill before were not cleaned up:\n{log}"
            );
            cleaned += 1;
        }
        // The machine's load changes (other tests, other builds): a cycle this daemon
        // finished is the new estimate of how long one takes.
        if let Some(secs) = last_cycle_seconds(&log) {
            cycle = Duration::from_secs_f64(secs);
        }
        let p = phase(&log);
        if p.starts_with("in a cycle") {
            in_cycle += 1;
        }
        *phases.entry(p).or_insert(0) += 1;
        drop(d);

        let snap = ledger.check_after(&s.data(), &format!("kill {killed} (delay {delay:?})"));
        max_temps = max_temps.max(snap.temps);
        left = snap.temps;
        assert_locks_free(&s.data());
    }
    let killing = t0.elapsed();

    // The reference: a fresh data dir, one un-killed collect of the same window.
    let reference = s.path().join("reference");
    let out = s.run(&[
        "--data-dir",
        reference.to_str().unwrap(),
        "collect",
        "--days",
        "1",
        "--no-summary",
    ]);
    assert!(out.status.success(), "reference collect failed");
    let want = inspect(&reference);

    // A clean cycle of a restarted daemon completes the data: each job exactly once.
    let mut d = s.start();
    let status = d.expect_cycle_end(Duration::from_secs(60));
    assert!(status.contains(" 0 failed"), "{status}");
    d.stop();
    if left > 0 {
        assert!(
            d.log()
                .contains("removed temp files left by an interrupted write"),
            "the {left} temp files of the last kill were not cleaned up"
        );
        cleaned += 1;
    }
    drop(d);
    let snap = inspect(&s.data());
    ledger.check(&snap);
    let temps = temp_files(&s.data());
    assert!(
        temps.is_empty(),
        "temp files left after a clean cycle: {temps:?}"
    );
    snap.assert_each_job_once(&want, "after the clean cycle");
    let raw_missing: Vec<&String> = want.raw.iter().filter(|r| !snap.raw.contains(*r)).collect();
    assert!(raw_missing.is_empty(), "raw rows missing: {raw_missing:?}");

    eprintln!(
        "daemon kill: {killed} SIGKILLs in {killing:?} ({in_cycle} mid-cycle); {} jobs and {} raw \
         rows archived, {} moved between dates; at most {max_temps} temp files left by a kill \
         ({cleaned} times removed by the next cycle); {} lost; no stale lock after any kill",
        snap.processed.len(),
        snap.raw.len(),
        ledger.moved,
        ledger.lost.len()
    );
    print_phases("daemon kill:", &phases);
    assert!(ledger.lost.is_empty(), "{:?}", ledger.lost);
    assert!(
        in_cycle * 3 >= killed,
        "too few kills landed mid-cycle ({in_cycle} of {killed}): the test does not test much"
    );
}

#[test]
fn disk_full_while_the_daemon_runs_keeps_files_and_it_recovers() {
    // util's fake sacct prints what the test chose for each date; ours holds it at the gate.
    let env = util::Env::new("");
    let sacct = write_fake(
        env.path(),
        &format!("'{}'", env.path().join("sacct").display()),
    );
    let _mount = match Tmpfs::mount(&env.data()) {
        Ok(m) => m,
        Err(why) => return skip(why),
    };
    // One date (today, never final), so a cycle held at the gate writes nothing.
    let d = util::day(0);
    std::fs::write(
        env.config(),
        daemon_config(
            &env.data(),
            &sacct,
            "lookback_days = 0\nsettle = \"1000d\"",
            "",
        ),
    )
    .unwrap();
    let (small, bigger) = small_and_bigger_outputs(d);
    env.set_output(d, &small);
    let mut dm = Daemon::start(env.path(), &env.config(), &[]);
    let status = dm.expect_cycle_end(SHORT);
    assert!(status.contains(" 0 failed"), "{status}");
    assert_eq!(env.jobs(d).len(), 200);

    // Hold a cycle at the gate, fill the disk but for ~64 KB, give sacct more than that.
    freeze(env.path());
    dm.drain();
    let before = snapshot_bytes(&env.data());
    let filler = fill_disk(&env.data());
    env.set_output(d, &bigger);
    set_flag(env.path(), "gate", None);

    // That cycle fails; the daemon says so and goes on.
    let status = dm.expect_cycle_end(SHORT);
    let full_status = status.clone();
    assert!(
        !status.contains(" 0 failed")
            && (status.contains(" failed") || status.contains("cycle failed")),
        "the cycle on a full disk is reported failed: {status}"
    );
    let log = dm.log();
    let line = log
        .lines()
        .find(|l| l.contains("disk is full"))
        .map(str::to_string)
        .unwrap_or_else(|| panic!("no disk-full error logged:\n{log}"));
    assert!(line.contains("ERROR"), "logged as an error: {line}");
    assert!(
        line.contains(&format!("{d}.parquet")) || line.contains("date_completion_tracker"),
        "the error names the file: {line}"
    );
    // Hold the next cycle (a retry on the still-full disk) so the data dir is at rest.
    freeze(env.path());
    assert!(dm.alive(), "the daemon keeps running on a full disk");
    assert_untouched(&before, &env.data(), &filler);
    assert_eq!(env.jobs(d).len(), 200, "the previous partition still loads");
    assert!(env.tracker().is_object(), "the tracker is intact JSON");

    // Space freed: the held cycle goes on and succeeds.
    std::fs::remove_file(&filler).unwrap();
    dm.drain();
    set_flag(env.path(), "gate", None);
    let status = dm.expect_cycle_end(SHORT);
    assert!(
        status.contains(" 0 failed"),
        "after freeing space: {status}"
    );
    assert_eq!(env.jobs(d).len(), 3200);
    let took = dm.stop();
    assert!(
        temp_files(&env.data()).is_empty(),
        "{:?}",
        temp_files(&env.data())
    );
    eprintln!("disk full: logged {line:?}; STATUS {full_status:?}; files kept; recovered; stopped in {took:?}");
}

#[test]
fn sighup_during_a_cycle_reloads_and_the_cycle_completes() {
    let collect = "lookback_days = 1\nmax_recollect_days = 2\nsettle = \"1000d\"";
    let s = Setup::new(200, collect);
    let first = s.path().join("first.prom");
    let second = s.path().join("second.prom");
    s.write_config(collect, &format!("textfile = \"{}\"", first.display()));
    let mut d = s.start();
    d.expect("READY=1", SHORT, |m| m.lines().any(|l| l == "READY=1"));
    let status = d.expect_cycle_end(SHORT);
    assert!(status.contains(" 0 failed"), "{status}");

    // Slow sacct: wait until a call sleeps, i.e. a cycle is in its sacct phase.
    let slow_before = count_calls(s.path(), "slow");
    set_flag(s.path(), "delay", Some("2"));
    wait_until("a slow sacct call", SHORT, || {
        count_calls(s.path(), "slow") > slow_before
    });
    let slow: Vec<String> = calls(s.path())
        .into_iter()
        .filter(|c| c[0] == "slow")
        .skip(slow_before)
        .map(|c| c[1].clone())
        .collect();
    d.drain();
    let mark = d.seen.len();

    // A new config, and three SIGHUPs while that cycle runs.
    s.write_config(collect, &format!("textfile = \"{}\"", second.display()));
    for _ in 0..3 {
        d.signal("HUP");
        d.expect("RELOADING=1", SHORT, |m| m.contains("RELOADING=1"));
        d.expect("READY=1 after the reload", SHORT, |m| {
            m.lines().any(|l| l == "READY=1")
        });
    }
    assert!(
        !d.seen[mark..]
            .iter()
            .any(|m| status_of(m).is_some_and(is_cycle_end)),
        "the reloads happened while the cycle ran: {:#?}",
        &d.seen[mark..]
    );
    let still_slow: Vec<&String> = slow
        .iter()
        .filter(|pid| {
            !calls(s.path())
                .iter()
                .any(|c| c[0] == "end" && &&c[1] == pid)
        })
        .collect();
    assert!(
        !still_slow.is_empty(),
        "sacct finished before the reloads: the delay is too short for this machine"
    );

    // The cycle finishes undisturbed, under the config it started with.
    let status = d.expect_cycle_end(Duration::from_secs(30));
    assert!(status.contains(" 0 failed"), "{status}");
    for pid in &slow {
        let end = calls(s.path())
            .into_iter()
            .find(|c| c[0] == "end" && &c[1] == pid)
            .unwrap_or_else(|| panic!("sacct {pid} has no end line"));
        assert_eq!(end[3], "0", "sacct {pid} finished normally, not killed");
    }
    assert!(
        !second.exists(),
        "a reload during a cycle applies from the next cycle"
    );
    set_flag(s.path(), "delay", None);
    let status = d.expect_cycle_end(Duration::from_secs(30));
    assert!(status.contains(" 0 failed"), "{status}");
    assert!(second.exists(), "the next cycle runs under the new config");
    assert!(d.alive());
    let log = d.log();
    assert_eq!(
        log.matches("config reloaded").count(),
        3,
        "three reloads logged:\n{log}"
    );
    d.stop();
    assert!(
        temp_files(&s.data()).is_empty(),
        "{:?}",
        temp_files(&s.data())
    );
    let snap = inspect(&s.data());
    assert!(!snap.processed.is_empty(), "no jobs archived");
    let dups = snap.duplicates();
    assert!(dups.is_empty(), "{dups:?}");
}

#[test]
fn collect_while_the_daemon_writes_exits_75_or_waits() {
    let collect = "lookback_days = 1\nmax_recollect_days = 2\nsettle = \"1000d\"";
    let s = Setup::new(200, collect);
    let mut d = s.start();
    let status = d.expect_cycle_end(SHORT);
    assert!(status.contains(" 0 failed"), "{status}");
    let daemon = d.pid().to_string();

    // A cycle in its sacct phase holds the write lock.
    let slow_before = count_calls(s.path(), "slow");
    set_flag(s.path(), "delay", Some("3"));
    wait_until("a slow sacct call of the daemon", SHORT, || {
        calls(s.path())
            .iter()
            .filter(|c| c[0] == "slow")
            .skip(slow_before)
            .any(|c| c[2] == daemon)
    });
    let t0 = Instant::now();

    // `collect` without --wait: exit 75, naming who holds which lock.
    let out = s.run(&["collect", "--days", "1", "--no-summary"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(75), "{stderr}");
    assert!(
        stderr.contains("busy")
            && stderr.contains(&format!("process {daemon}"))
            && stderr.contains(lock::WRITE_LOCK)
            && stderr.contains("--wait"),
        "names the daemon as the holder and the way out: {stderr}"
    );

    // A second daemon at the same time: refused, naming the first; the cycle goes on.
    let out = output(slurm_usage().arg("daemon").arg("--config").arg(s.config()));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(75), "{stderr}");
    assert!(stderr.contains(&format!("process {daemon}")), "{stderr}");

    // `collect --wait`: waits for the cycle, then collects.
    let mut waiting = slurm_usage()
        .arg("--config")
        .arg(s.config())
        .args(["-v", "collect", "--days", "1", "--no-summary", "--wait"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(s.path().join("collect-wait.log")).unwrap())
        .spawn()
        .unwrap();
    let collector = waiting.id().to_string();
    assert!(
        t0.elapsed() < Duration::from_secs(2),
        "still inside the daemon's 3 s sacct call (took {:?})",
        t0.elapsed()
    );
    set_flag(s.path(), "delay", None);
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = waiting.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "collect --wait never finished");
        std::thread::sleep(Duration::from_millis(20));
    };
    let log = std::fs::read_to_string(s.path().join("collect-wait.log")).unwrap();
    assert!(status.success(), "collect --wait: {status}\n{log}");
    assert!(
        log.contains("waiting for the data dir's write lock")
            && log.contains(&format!("process {daemon}")),
        "it said whom it waited for: {log}"
    );

    // Whose sacct calls ran when: never the daemon's and the collect's at once.
    let mut open: HashMap<String, HashSet<String>> = HashMap::new();
    let mut collects = 0;
    for c in calls(s.path()) {
        let who = &c[2];
        match c[0].as_str() {
            "start" => {
                if who == &collector {
                    collects += 1;
                }
                open.entry(who.clone()).or_default().insert(c[1].clone());
            }
            "end" => {
                open.entry(who.clone()).or_default().remove(&c[1]);
            }
            _ => {}
        }
        let busy: Vec<&String> = open
            .iter()
            .filter(|(_, pids)| !pids.is_empty())
            .map(|(who, _)| who)
            .collect();
        assert!(
            busy.len() <= 1,
            "sacct calls of two collectors overlap: {busy:?}\n{:?}",
            calls(s.path())
        );
    }
    assert!(collects > 0, "the waiting collect ran sacct");

    // The daemon goes on.
    d.drain();
    let status = d.expect_cycle_end(Duration::from_secs(30));
    assert!(status.contains(" 0 failed"), "{status}");
    d.stop();
    assert!(
        temp_files(&s.data()).is_empty(),
        "{:?}",
        temp_files(&s.data())
    );
    let snap = inspect(&s.data());
    assert!(!snap.processed.is_empty(), "no jobs archived");
    let dups = snap.duplicates();
    assert!(dups.is_empty(), "{dups:?}");
}

/// What [`signal_mid_write`] saw.
struct MidWrite {
    /// The temp file that existed when the signal went out.
    temp: String,
    /// From the signal to the exit.
    took: Duration,
    /// Dates whose write finished after the signal (`date collected` after `shutting down`).
    writes_after: usize,
}

/// Starts a daemon, waits until a processed partition's temp file exists (mid-encode or
/// mid-fsync: the raw partition is written while sacct prints, so its temp file marks the
/// fetch, not the write),
/// waits `pause` more, sends `sig`; checks exit 0 within [`STOP_WITHIN`] with `STOPPING=1`,
/// no temp file left, the data dir consistent and nothing in `ledger` lost.
fn signal_mid_write(s: &Setup, ledger: &mut Ledger, sig: &str, pause: Duration) -> MidWrite {
    let dd = Archive::local(s.data());
    let mut d = s.start();
    let deadline = Instant::now() + Duration::from_secs(60);
    let temp = loop {
        let found = [Kind::Processed].iter().find_map(|k| {
            std::fs::read_dir(dd.prefix(*k))
                .ok()?
                .flatten()
                .find_map(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    is_temp_name(&name).then_some(name)
                })
        });
        if let Some(name) = found {
            break name;
        }
        assert!(Instant::now() < deadline, "no partition write seen");
        assert!(d.alive(), "the daemon died:\n{}", d.log());
        std::thread::sleep(Duration::from_millis(1));
    };
    std::thread::sleep(pause);
    let t0 = Instant::now();
    d.signal(sig);
    let status = d.wait_exit(STOP_WITHIN);
    let took = t0.elapsed();
    assert_eq!(status.code(), Some(0), "exit status after SIG{sig}");
    d.drain();
    assert!(
        d.seen.iter().any(|m| m.contains("STOPPING=1")),
        "STOPPING=1 sent"
    );
    let log = d.log();
    let after = &log[log.find("shutting down").expect("shutdown logged")..];
    assert!(after.contains("stopped"), "{log}");
    assert!(
        !after.contains("did not stop in time"),
        "the cycle outlived the grace period:\n{log}"
    );
    let writes_after = after.matches("date collected").count();
    drop(d);
    let temps = temp_files(&s.data());
    assert!(temps.is_empty(), "temp files left: {temps:?}");
    let snap = inspect(&s.data());
    ledger.check(&snap);
    assert!(ledger.lost.is_empty(), "lost: {:?}", ledger.lost);
    eprintln!(
        "write stop: SIG{sig} {pause:?} after {temp} appeared: exit 0 in {took:?}; {writes_after} \
         dates written after the signal; {} jobs archived",
        snap.processed.len()
    );
    MidWrite {
        temp,
        took,
        writes_after,
    }
}

#[test]
fn sigterm_or_sigint_while_a_partition_is_written_exits_cleanly() {
    let jobs = env_num("SLURM_USAGE_DAEMON_WRITE_JOBS", 1500);
    let s = Setup::new(
        jobs,
        "lookback_days = 0\nmax_recollect_days = 2\nsettle = \"1000d\"",
    );
    let mut ledger = Ledger::default();
    let mut finished_after = 0;
    let mut slowest = Duration::ZERO;
    for (sig, pause_ms) in [("TERM", 0u64), ("TERM", 40), ("INT", 10)] {
        let w = signal_mid_write(&s, &mut ledger, sig, Duration::from_millis(pause_ms));
        // The write in flight is finished, not abandoned: its date is logged as collected
        // after the signal, and the file it was writing loads (checked in signal_mid_write).
        if w.writes_after > 0 {
            finished_after += 1;
        }
        assert!(w.temp.contains(".parquet.tmp-"), "{}", w.temp);
        slowest = slowest.max(w.took);
    }
    assert!(
        finished_after > 0,
        "no signal landed while a write was in flight"
    );
    eprintln!("write stop: slowest exit {slowest:?}");
}

/// Shutdown finishes the write in flight and starts no other. Fails today (most runs): the
/// writer loop in `collect::run_cycle` picks at random between the next fetched date and the
/// cancellation (`tokio::select!` without `biased;`), so after SIGTERM it often goes on to
/// write the dates whose sacct output is already in memory (up to `max_concurrent_sacct`),
/// each a full Parquet write; with large days that outlasts the 4 s grace period and the last
/// write is abandoned (temp file left, the 5 s promise kept only by dropping it).
#[test]
fn sigterm_mid_write_starts_no_further_write() {
    let s = Setup::new(
        2000,
        "lookback_days = 5\nmax_recollect_days = 5\nsettle = \"1000d\"\nmax_concurrent_sacct = 4",
    );
    let mut ledger = Ledger::default();
    let mut extra = Vec::new();
    for round in 0..4 {
        let w = signal_mid_write(&s, &mut ledger, "TERM", Duration::ZERO);
        if w.writes_after > 1 {
            extra.push(format!(
                "round {round}: {} dates written after SIGTERM (in flight: {})",
                w.writes_after, w.temp
            ));
        }
    }
    assert!(
        extra.is_empty(),
        "dates started after the signal: {extra:#?}"
    );
}
