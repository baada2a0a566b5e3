//! `slurm-usage daemon` as a real process: a temp data dir, a fake `sacct` (the binary's own
//! synthetic sacct behind a bash script that can also fail or hang on request), and a unix
//! datagram socket as `NOTIFY_SOCKET` that records what the daemon tells systemd.
//!
//! Every daemon runs on a one-second schedule. On a failed assertion the daemon's stderr is
//! printed (see `Drop for Daemon`).

mod util;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use util::{output, slurm_usage, temp_files, Daemon, BIN};

/// The fake sacct: answers `--version`, logs each call, fails while `<dir>/fail` exists,
/// hangs (as `sleep`, via exec, so the daemon's kill reaches it) while `<dir>/hang` exists,
/// and otherwise prints synthetic jobs for the window it is asked.
const FAKE_SACCT: &str = r#"#!/bin/bash
dir="$(dirname "$0")"
for a in "$@"; do
  if [ "$a" = "--version" ]; then echo "slurm 23.02.7"; exit 0; fi
done
if [ -e "$dir/fail" ]; then
  echo "call fail $$" >> "$dir/calls.log"
  echo "sacct: error: Problem talking to the database: Connection refused" >&2
  exit 1
fi
if [ -e "$dir/hang" ]; then
  echo "call hang $$" >> "$dir/calls.log"
  exec sleep 30
fi
echo "call ok $$" >> "$dir/calls.log"
exec "@BIN@" fake-sacct --jobs-per-day 20 -- "$@"
"#;

/// One scratch installation.
struct Setup {
    dir: tempfile::TempDir,
}

impl Setup {
    fn new() -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let s = Setup { dir };
        let fake = s.path().join("sacct");
        std::fs::write(&fake, FAKE_SACCT.replace("@BIN@", BIN)).unwrap();
        std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
        s.write_config("");
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

    /// Writes the config; `extra` TOML lines go at the end (under `[metrics]`).
    fn write_config_with(&self, collect: &str, extra: &str) {
        let text = format!(
            "data_dir = \"{data}\"\ntimezone = \"UTC\"\n\
             [schedule]\ncron = \"* * * * * *\"\njitter = \"0s\"\n\
             [collect]\nsacct = \"{sacct}\"\nlookback_days = 1\nretries = 0\nsettle = \"0s\"\n{collect}\n\
             [metrics]\n{extra}\n",
            data = self.data().display(),
            sacct = self.path().join("sacct").display(),
        );
        std::fs::write(self.config(), text).unwrap();
    }

    fn write_config(&self, collect: &str) {
        self.write_config_with(collect, "");
    }

    fn set(&self, flag: &str, on: bool) {
        let p = self.path().join(flag);
        if on {
            std::fs::write(p, b"").unwrap();
        } else {
            let _ = std::fs::remove_file(p);
        }
    }

    fn calls(&self) -> Vec<String> {
        std::fs::read_to_string(self.path().join("calls.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// Starts a daemon; `env` is added to its environment.
    fn start(&self, env: &[(&str, &str)]) -> Daemon {
        Daemon::start(self.path(), &self.config(), env)
    }
}

const SHORT: Duration = Duration::from_secs(10);

/// Every processed partition loads, and together they hold some jobs.
fn assert_data_loadable(data: &Path) -> usize {
    let zone: slurm_usage::zone::Zone = "UTC".parse().unwrap();
    let mut jobs = 0;
    for e in std::fs::read_dir(data.join("processed")).unwrap().flatten() {
        let p = e.path();
        assert!(
            !p.to_string_lossy().contains(".corrupt-"),
            "a file was moved aside: {}",
            p.display()
        );
        match slurm_usage::store::parquet::read_processed(&p, &zone).unwrap() {
            slurm_usage::store::parquet::Existing::Found(j) => jobs += j.len(),
            other => panic!("{}: {other:?}", p.display()),
        }
    }
    assert!(jobs > 0, "no jobs archived");
    jobs
}

/// The process is gone or a zombie waiting for its reaper: it no longer runs.
fn not_running(pid: &str) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z')),
    }
}

#[test]
fn ready_then_status_after_each_cycle_then_clean_stop() {
    let s = Setup::new();
    let mut d = s.start(&[]);
    let ready = d.expect("READY=1", SHORT, |m| m.lines().any(|l| l == "READY=1"));
    assert!(ready.contains("STATUS=ready"), "{ready}");
    let status = d.expect_status("collected ", SHORT);
    assert!(
        status.contains(" jobs, ") && status.contains(" 0 failed, next "),
        "{status}"
    );
    // A second cycle follows on the one-second schedule.
    d.expect_status("collected ", SHORT);
    assert!(
        !d.seen.iter().any(|m| m.contains("WATCHDOG=1")),
        "no watchdog without WATCHDOG_USEC"
    );

    d.signal("TERM");
    d.expect("STOPPING=1", SHORT, |m| m.contains("STOPPING=1"));
    let status = d.wait_exit(Duration::from_secs(5));
    assert_eq!(status.code(), Some(0), "{}", d.log());
    assert!(
        temp_files(&s.data()).is_empty(),
        "{:?}",
        temp_files(&s.data())
    );
    assert_data_loadable(&s.data());
    let log = d.log();
    assert!(
        log.contains("daemon ready") && log.contains("collection finished"),
        "{log}"
    );
}

#[test]
fn under_journald_lines_carry_the_syslog_priority_and_no_timestamp() {
    let s = Setup::new();
    let mut d = s.start(&[("JOURNAL_STREAM", "8:12345")]);
    d.expect_status("collected ", SHORT);
    d.signal("TERM");
    assert_eq!(d.wait_exit(Duration::from_secs(5)).code(), Some(0));
    let log = d.log();
    let ready = log
        .lines()
        .find(|l| l.contains("daemon ready"))
        .unwrap_or_else(|| panic!("{log}"));
    assert!(ready.starts_with("<6>daemon ready "), "{ready}");
    assert!(log.lines().all(|l| l.starts_with('<')), "{log}");
    assert!(!log.contains('\x1b'), "no colours");
}

#[test]
fn sighup_reloads_a_valid_config_and_keeps_the_old_one_on_error() {
    let s = Setup::new();
    let first = s.path().join("first.prom");
    let second = s.path().join("second.prom");
    s.write_config_with("", &format!("textfile = \"{}\"", first.display()));
    let mut d = s.start(&[]);
    d.expect("READY=1", SHORT, |m| m.lines().any(|l| l == "READY=1"));
    d.expect_status("collected ", SHORT);
    assert!(first.exists(), "metrics textfile written");

    // A valid change: the next cycles write the metrics to the new path.
    s.write_config_with("", &format!("textfile = \"{}\"", second.display()));
    d.signal("HUP");
    let reloading = d.expect("RELOADING=1", SHORT, |m| m.contains("RELOADING=1"));
    assert!(
        reloading
            .lines()
            .any(|l| l.starts_with("MONOTONIC_USEC=") && l[15..].parse::<u64>().is_ok()),
        "MONOTONIC_USEC in the same message: {reloading:?}"
    );
    d.expect("READY=1 after reload", SHORT, |m| {
        m.lines().any(|l| l == "READY=1")
    });
    d.expect_status("collected ", SHORT);
    d.expect_status("collected ", SHORT);
    assert!(second.exists(), "the new config is in force");
    let text = std::fs::read_to_string(&second).unwrap();
    assert!(
        text.contains("slurm_usage_cycles_total{result=\"ok\"} "),
        "{text}"
    );

    // A broken file: logged with file, line and reason; READY anyway; old config stays.
    std::fs::write(
        s.config(),
        std::fs::read_to_string(s.config())
            .unwrap()
            .replace("lookback_days = 1", "lookback_days = 1\nlookbak = 3"),
    )
    .unwrap();
    let line = std::fs::read_to_string(s.config())
        .unwrap()
        .lines()
        .position(|l| l.starts_with("lookbak"))
        .unwrap()
        + 1;
    d.signal("HUP");
    d.expect("RELOADING=1", SHORT, |m| m.contains("RELOADING=1"));
    let ready = d.expect("READY=1 after a rejected reload", SHORT, |m| {
        m.lines().any(|l| l == "READY=1")
    });
    assert!(ready.contains("STATUS=reload rejected"), "{ready}");
    std::fs::remove_file(&second).unwrap();
    d.expect_status("collected ", SHORT);
    d.expect_status("collected ", SHORT);
    assert!(
        second.exists(),
        "still the config from before the broken reload"
    );
    let log = d.log();
    let err = log
        .lines()
        .find(|l| l.contains("config reload failed"))
        .unwrap_or_else(|| panic!("no reload error logged:\n{log}"));
    assert!(err.contains("ERROR"), "{err}");
    assert!(
        err.contains(&s.config().display().to_string()),
        "names the file: {err}"
    );
    assert!(
        err.contains(&format!("line {line}")) && err.contains("lookbak"),
        "line and reason: {err}"
    );

    d.signal("TERM");
    assert_eq!(d.wait_exit(Duration::from_secs(5)).code(), Some(0));
}

#[test]
fn watchdog_pings_at_half_the_interval() {
    let s = Setup::new();
    let mut d = s.start(&[("WATCHDOG_USEC", "1000000")]);
    d.expect("READY=1", SHORT, |m| m.lines().any(|l| l == "READY=1"));
    let got = d.collect_for(Duration::from_millis(2600));
    let pings = got
        .iter()
        .filter(|m| m.lines().any(|l| l == "WATCHDOG=1"))
        .count();
    // Every 0.5 s: about 5 in 2.6 s (timing on a busy machine varies a little).
    assert!((3..=7).contains(&pings), "{pings} pings in 2.6 s: {got:#?}");
    d.signal("TERM");
    assert_eq!(d.wait_exit(Duration::from_secs(5)).code(), Some(0));
}

#[test]
fn sigterm_while_sacct_hangs_kills_it_and_exits_cleanly() {
    let s = Setup::new();
    s.write_config("sacct_timeout = \"60s\"");
    let mut d = s.start(&[]);
    d.expect_status("collected ", SHORT);
    // The next cycle's sacct hangs; wait until it is running.
    s.set("hang", true);
    let deadline = Instant::now() + SHORT;
    let hung = loop {
        if let Some(l) = s.calls().iter().find(|l| l.starts_with("call hang ")) {
            break l.rsplit(' ').next().unwrap().to_string();
        }
        assert!(
            Instant::now() < deadline,
            "sacct never hung; calls: {:?}",
            s.calls()
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    std::thread::sleep(Duration::from_millis(200));
    let t0 = Instant::now();
    d.signal("TERM");
    d.expect("STOPPING=1", SHORT, |m| m.contains("STOPPING=1"));
    let status = d.wait_exit(Duration::from_secs(5));
    assert_eq!(status.code(), Some(0), "{}", d.log());
    assert!(
        t0.elapsed() < Duration::from_secs(5),
        "took {:?}",
        t0.elapsed()
    );
    assert!(
        not_running(&hung),
        "the hanging sacct (pid {hung}) was killed"
    );
    assert!(
        temp_files(&s.data()).is_empty(),
        "{:?}",
        temp_files(&s.data())
    );
    assert_data_loadable(&s.data());
    let tracker = std::fs::read_to_string(s.data().join(".date_completion_tracker.json")).unwrap();
    serde_json::from_str::<serde_json::Value>(&tracker).expect("tracker is valid JSON");
}

#[test]
fn a_second_daemon_on_the_same_data_dir_exits_75() {
    let s = Setup::new();
    let mut d = s.start(&[]);
    d.expect("READY=1", SHORT, |m| m.lines().any(|l| l == "READY=1"));
    let out = output(slurm_usage().arg("daemon").arg("--config").arg(s.config()));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(75), "{stderr}");
    assert!(
        stderr.contains(&format!("process {}", d.pid())),
        "names the holder: {stderr}"
    );
    // Under journald the same error also goes out with priority 3, for `journalctl -p err`.
    let out = output(
        slurm_usage()
            .arg("daemon")
            .arg("--config")
            .arg(s.config())
            .env("JOURNAL_STREAM", "8:12345"),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(75), "{stderr}");
    assert!(
        stderr
            .lines()
            .any(|l| l.starts_with("<3>") && l.contains("busy")),
        "{stderr}"
    );
    d.signal("TERM");
    assert_eq!(d.wait_exit(Duration::from_secs(5)).code(), Some(0));
}

#[test]
fn an_invalid_config_at_start_exits_78() {
    let s = Setup::new();
    std::fs::write(s.config(), "[schedule]\ncron = \"15 2 * *\"\n").unwrap();
    let out = output(slurm_usage().arg("daemon").arg("--config").arg(s.config()));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(78), "{stderr}");
    assert!(
        stderr.contains("line 2") && stderr.contains("cron"),
        "{stderr}"
    );
}

#[test]
fn a_hanging_sacct_is_killed_at_the_timeout_and_the_next_cycle_runs() {
    let s = Setup::new();
    let prom = s.path().join("m.prom");
    s.write_config_with(
        "sacct_timeout = \"1s\"",
        &format!("textfile = \"{}\"", prom.display()),
    );
    s.set("hang", true);
    let mut d = s.start(&[]);
    let t0 = Instant::now();
    let status = d.expect_status("collected ", SHORT);
    assert!(
        status.contains("failed, retry") || status.contains(" failed, next"),
        "{status}"
    );
    assert!(!status.contains(" 0 failed"), "{status}");
    assert!(
        t0.elapsed() < Duration::from_secs(8),
        "killed at the 1 s timeout, not later"
    );
    let metrics = std::fs::read_to_string(&prom).unwrap();
    assert!(
        !metrics.contains("slurm_usage_sacct_timeouts_total 0\n"),
        "{metrics}"
    );
    let hung: Vec<String> = s
        .calls()
        .iter()
        .filter(|l| l.starts_with("call hang "))
        .map(|l| l.rsplit(' ').next().unwrap().to_string())
        .collect();
    assert!(!hung.is_empty());

    s.set("hang", false);
    let status = d.expect_status("collected ", SHORT);
    let status = if status.contains(" 0 failed") {
        status
    } else {
        d.expect_status("collected ", SHORT)
    };
    assert!(
        status.contains(" 0 failed"),
        "the next cycle succeeds: {status}"
    );
    for pid in &hung {
        assert!(not_running(pid), "hung sacct {pid} was killed");
    }
    assert!(d.log().contains("did not finish within"), "timeout logged");
    d.signal("TERM");
    assert_eq!(d.wait_exit(Duration::from_secs(5)).code(), Some(0));
}

#[test]
fn failing_cycles_keep_the_daemon_alive_and_it_recovers() {
    let s = Setup::new();
    let mut d = s.start(&[]);
    d.expect_status("collected ", SHORT);
    // sacct fails (slurmdbd down): dates fail, the daemon goes on.
    s.set("fail", true);
    let status = d.expect_status("collected ", SHORT);
    let status = if status.contains(" 0 failed") {
        d.expect_status("collected ", SHORT)
    } else {
        status
    };
    assert!(!status.contains(" 0 failed"), "{status}");
    assert!(
        d.log().contains("Connection refused"),
        "sacct's stderr is logged"
    );
    s.set("fail", false);
    // The data dir is replaced by a file: whole cycles fail, the daemon goes on.
    std::fs::remove_dir_all(s.data()).unwrap();
    std::fs::write(s.data(), b"not a dir").unwrap();
    let status = d.expect_status("cycle failed", SHORT);
    assert!(status.contains("in a row"), "{status}");
    std::fs::remove_file(s.data()).unwrap();
    let status = d.expect_status("collected ", SHORT);
    let status = if status.contains(" 0 failed") {
        status
    } else {
        d.expect_status("collected ", SHORT)
    };
    assert!(status.contains(" 0 failed"), "{status}");
    assert!(d.child.try_wait().unwrap().is_none(), "still running");
    d.signal("TERM");
    assert_eq!(d.wait_exit(Duration::from_secs(5)).code(), Some(0));
    assert_data_loadable(&s.data());
}

/// With `[lake]`, every cycle is followed by an upload round: the STATUS line and the
/// textfile carry the lake's pending count and last upload, and the lake ends up holding
/// every local partition (a `file://` lake: the same code path as S3 above the store).
#[test]
fn the_daemon_uploads_to_the_lake_after_its_cycles() {
    let s = Setup::new();
    let lake = s.path().join("lake");
    let prom = s.path().join("slurm_usage.prom");
    s.write_config_with(
        "",
        &format!(
            "textfile = \"{}\"\n[lake]\nurl = \"file://{}\"\ncluster = \"t\"\n",
            prom.display(),
            lake.display()
        ),
    );
    let mut d = s.start(&[]);
    let status = d.expect(
        "a STATUS with the lake drained",
        Duration::from_secs(30),
        |m| m.contains("; lake 0 pending"),
    );
    assert!(status.contains("collected "), "{status}");
    let text = std::fs::read_to_string(&prom).unwrap();
    assert!(
        text.contains("slurm_usage_lake_pending_partitions{cluster=\"t\"}"),
        "{text}"
    );
    let last = text
        .lines()
        .find_map(|l| {
            l.strip_prefix("slurm_usage_lake_last_upload_timestamp_seconds{cluster=\"t\"} ")
        })
        .unwrap_or_else(|| panic!("no last-upload gauge in {text}"));
    assert!(last.parse::<i64>().unwrap() > 1_700_000_000, "{last}");
    d.signal("TERM");
    assert_eq!(
        d.wait_exit(Duration::from_secs(10)).code(),
        Some(0),
        "{}",
        d.log()
    );
    // Every local partition is in the lake (the last round may have been cut by the stop,
    // so a date collected by the last cycle can differ in bytes, never be missing).
    for kind in ["processed", "raw"] {
        for e in std::fs::read_dir(s.data().join(kind)).unwrap().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let Some(date) = name.strip_suffix(".parquet") else {
                continue;
            };
            let object = lake.join(format!("{kind}/cluster=t/date={date}/part-0.parquet"));
            assert!(object.is_file(), "{} missing", object.display());
        }
    }
    assert!(
        d.log().contains("source=lake") || d.log().contains("lake:"),
        "{}",
        d.log()
    );
}

/// `[collect] clusters`: each cycle collects every listed cluster into its own dir, the
/// textfile labels their gauges; a SIGHUP that adds one takes effect from the next cycle,
/// and one that removes a cluster keeps its files.
#[test]
fn sighup_adds_and_removes_clusters_and_never_deletes_their_data() {
    let s = Setup::new();
    let prom = s.path().join("m.prom");
    let textfile = format!("textfile = \"{}\"", prom.display());
    s.write_config_with("clusters = [\"alpha\"]", &textfile);
    let mut d = s.start(&[]);
    d.expect("READY=1", SHORT, |m| m.lines().any(|l| l == "READY=1"));
    d.expect_status("collected ", SHORT);
    let alpha = s.data().join("cluster=alpha");
    assert!(assert_data_loadable(&alpha) > 0);
    assert!(!s.data().join("processed").exists(), "nothing at the top");
    let text = std::fs::read_to_string(&prom).unwrap();
    assert!(
        text.contains("slurm_usage_cluster_last_cycle_failed{cluster=\"alpha\"} 0"),
        "{text}"
    );

    s.write_config_with("clusters = [\"alpha\", \"beta\"]", &textfile);
    d.signal("HUP");
    d.expect("READY=1 after reload", SHORT, |m| {
        m.lines().any(|l| l == "READY=1")
    });
    d.expect_status("collected ", SHORT);
    d.expect_status("collected ", SHORT);
    assert!(assert_data_loadable(&s.data().join("cluster=beta")) > 0);
    let text = std::fs::read_to_string(&prom).unwrap();
    assert!(
        text.contains("slurm_usage_cluster_jobs_written{cluster=\"beta\"} "),
        "{text}"
    );

    s.write_config_with("clusters = [\"beta\"]", &textfile);
    d.signal("HUP");
    d.expect("READY=1 after reload", SHORT, |m| {
        m.lines().any(|l| l == "READY=1")
    });
    d.expect_status("collected ", SHORT);
    d.expect_status("collected ", SHORT);
    assert!(
        assert_data_loadable(&alpha) > 0,
        "a removed cluster keeps its files"
    );
    let text = std::fs::read_to_string(&prom).unwrap();
    assert!(!text.contains("cluster=\"alpha\""), "{text}");

    d.signal("TERM");
    assert_eq!(d.wait_exit(Duration::from_secs(5)).code(), Some(0));
}
