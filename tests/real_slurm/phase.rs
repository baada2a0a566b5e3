//! One phase of the tests: a collection (by `collect` or by one daemon cycle) bracketed by
//! sacct's view of every job, until sacct did not change across it; everything it archived
//! read back; and the live views taken beside it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveDate, Utc};
use slurm_usage::model::ProcessedJob;
use slurm_usage::zone::Zone;

use crate::data_dir::{read_all_processed, read_all_raw, write_config, RawRow, TRACKER};
use crate::manifest::Job;
use crate::rig::{run, slurm_usage_with, Output, Rig};
use crate::sacct::{sacct_all, sacct_free_text, sacct_window, settled, Row};
use crate::util::{slurm_usage, Daemon};

/// What ran the collection of a phase.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum How {
    /// `slurm-usage collect --days 1`.
    Collect,
    /// `slurm-usage daemon` on a fresh data dir: its catch-up cycle at start, then SIGTERM.
    Daemon,
}

/// Everything one collection left, read back, plus sacct's view around it.
pub struct Phase {
    pub how: How,
    pub rig: Rig,
    pub zone: Zone,
    /// "Today" in the zone, the same at the start and end of the collect.
    pub today: NaiveDate,
    pub jobs: Vec<Job>,
    pub data: PathBuf,
    pub config: PathBuf,
    /// sacct lines per job id, just before and just after the collect.
    pub before: BTreeMap<String, Vec<Row>>,
    pub after: BTreeMap<String, Vec<Row>>,
    /// WorkDir, Comment, SubmitLine per job id (finished jobs only).
    pub free_text: BTreeMap<String, [String; 3]>,
    /// Allocation JobIDs sacct lists for the collected dates' windows, before/after.
    pub window_before: BTreeSet<String>,
    pub window_after: BTreeSet<String>,
    pub collect_out: Output,
    pub collect_started: DateTime<Utc>,
    pub collect_ended: DateTime<Utc>,
    pub processed: BTreeMap<NaiveDate, Vec<ProcessedJob>>,
    pub raw: BTreeMap<NaiveDate, Vec<RawRow>>,
    pub tracker: serde_json::Value,
    pub sacct_version: String,
    /// `current` and `nodes` with squeue's and sinfo's view, taken right after the first
    /// collect while the RUNNING and PENDING jobs are queued.
    pub live: Option<Live>,
}

/// The live views and what squeue/sinfo print at the same moment.
pub struct Live {
    pub current: Output,
    pub nodes: Output,
    /// (user, state) per queued job.
    pub squeue: Vec<(String, String)>,
    /// (node, CPUs) per node.
    pub sinfo: Vec<(String, String)>,
}

/// Runs `current` and `nodes`, with squeue before and after (it must not change meanwhile)
/// and sinfo.
pub fn capture_live(rig: &Rig, config: &Path) -> Result<Live, String> {
    let view = |name: &str| {
        run(
            slurm_usage_with(&rig.conf)
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

/// Starts `slurm-usage daemon` with `config` (fresh data dir, so it catches up at once),
/// waits for the systemd `STATUS=collected ...` of that cycle on a notify socket, then stops
/// it with SIGTERM. The output holds the notifications (stdout) and the daemon's log (stderr).
pub fn run_daemon_cycle(rig: &Rig, config: &Path, dir: &Path) -> Result<Output, String> {
    let t0 = Instant::now();
    let conf = rig.conf.to_string_lossy();
    let mut daemon = Daemon::start(dir, config, &[("SLURM_CONF", &conf)]);
    let deadline = t0 + Duration::from_secs(180);
    let failure = loop {
        if let Ok(Some(st)) = daemon.child.try_wait() {
            break Some(format!(
                "the daemon exited before its first cycle ended: {st}"
            ));
        }
        if Instant::now() > deadline {
            break Some("no `STATUS=collected ...` within 180 s".to_string());
        }
        let arrived = daemon.collect_for(Duration::from_millis(200));
        if arrived
            .iter()
            .any(|m| m.lines().any(|l| l.starts_with("STATUS=collected ")))
        {
            break None;
        }
    };
    // On a failure the daemon is killed when `daemon` is dropped.
    let status = match failure {
        None => {
            daemon.signal("TERM");
            Some(daemon.wait_exit(Duration::from_secs(15)))
        }
        Some(_) => daemon.child.try_wait().ok().flatten(),
    };
    daemon.drain();
    let out = Output {
        code: status.and_then(|s| s.code()),
        stdout: daemon.seen.join("\n"),
        stderr: daemon.log(),
        took: t0.elapsed(),
    };
    match failure {
        Some(why) => Err(format!("daemon: {why}; {}", out.describe())),
        None => Ok(out),
    }
}

/// Collects into `dir/data` until sacct is stable across the collect: every finished job is
/// settled and printed the same lines before and after. Returns the filled-in phase.
pub fn collect_phase(
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
                slurm_usage_with(&rig.conf)
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

impl Phase {
    /// Every processed record of job `id`, with its date.
    pub fn records(&self, id: &str) -> Vec<(NaiveDate, &ProcessedJob)> {
        self.processed
            .iter()
            .flat_map(|(d, jobs)| jobs.iter().filter(|j| j.job_id == id).map(move |j| (*d, j)))
            .collect()
    }

    /// The one processed record of job `id` (panics with the reason otherwise).
    pub fn record(&self, id: &str) -> (NaiveDate, &ProcessedJob) {
        let r = self.records(id);
        assert_eq!(
            r.len(),
            1,
            "job {id} must be in exactly one processed file, found {:?}",
            r.iter().map(|x| x.0).collect::<Vec<_>>()
        );
        r[0]
    }

    pub fn job(&self, key: &str) -> &Job {
        self.jobs
            .iter()
            .find(|j| j.key == key)
            .unwrap_or_else(|| panic!("no `{key}` job in the manifest"))
    }

    /// Raw rows (date, row) of the job whose allocation JobIDRaw is `raw`.
    pub fn raw_rows(&self, raw: &str) -> Vec<(NaiveDate, &RawRow)> {
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

    pub fn tracker_date(&self, d: NaiveDate) -> &serde_json::Value {
        &self.tracker["dates"][d.to_string()]
    }

    pub fn completed_dates(&self) -> BTreeSet<String> {
        self.tracker["completed_dates"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn status(&self) -> String {
        let out = run(
            slurm_usage()
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
