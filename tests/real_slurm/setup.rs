//! The gate and the phases in order: each runs once per test process, whichever test asks
//! for it first, under a mutex, since it changes the cluster or the shared data dirs; the
//! tests only read the phases, so they pass in any order.

use std::sync::{Mutex, MutexGuard, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use chrono::{Timelike, Utc};

use crate::data_dir::{copy_dir, work_dir};
use crate::manifest::{ensure_job_mix, read_manifest, Job};
use crate::phase::{capture_live, collect_phase, How, Phase};
use crate::rig::{run, Rig, GATE};
use crate::sacct::{sacct_all, settled};
use crate::util::is_root;

/// What every test prints, and passes, when the gate is off.
pub const SKIP: &str = "skipped: set SLURM_USAGE_REAL_SLURM=1 and start tests/slurm/cluster.sh";

/// Serializes everything that changes the cluster's state or the shared data dirs.
static CLUSTER: Mutex<()> = Mutex::new(());
static FIRST: OnceLock<Result<Phase, String>> = OnceLock::new();
static SECOND: OnceLock<Result<Phase, String>> = OnceLock::new();
static DAEMON: OnceLock<Result<Phase, String>> = OnceLock::new();

fn enabled() -> bool {
    std::env::var(GATE).is_ok_and(|v| v == "1")
}

/// The first phase, or `None` (after printing the skip line) when the gate is off.
pub fn first() -> Option<&'static Phase> {
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
pub fn second() -> Option<(&'static Phase, &'static Phase)> {
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
pub fn daemon() -> Option<(&'static Phase, &'static Phase)> {
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
