//! `slurm-usage daemon`: the long-running collector under systemd.
//!
//! Startup, in this order, each step fatal if it fails: load and validate the config (exit
//! 78), logging at its level (`RUST_LOG` wins), signal handlers, the data dir's instance lock
//! (a second daemon exits 75 naming the first one's pid), the cron scheduler; then `READY=1`.
//! After that nothing is fatal: a failed cycle is logged, counted, shown in `STATUS=` and the
//! metrics file, and retried with exponential back-off sooner than the next tick.
//!
//! Tasks (all on one [`TaskTracker`], all stopped through one root [`CancellationToken`]):
//! - the main loop ([`serve`]): signals (SIGHUP reload, SIGTERM/SIGINT stop), the systemd
//!   watchdog, and the DST refresh of the cron job. The watchdog is fed from here, and only
//!   while the cycle loop is alive and not overdue, so a stuck scheduler gets us restarted.
//! - the cycle loop (`CycleLoop`): waits for a tick, a retry or shutdown, adds jitter, runs
//!   [`run_all`] (one cycle per listed cluster, the same code path as `slurm-usage
//!   collect`) in a task of its own (a
//!   panic fails that cycle, not the daemon), then reports. Cycles never overlap: it is the
//!   only place that starts one, and the tick channel holds at most one tick.
//!
//! Shutdown: `STOPPING=1`, cancel the token (run_cycle kills its sacct children, lets an
//! in-flight write finish, saves the tracker), wait up to [`GRACE`], exit 0.

use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context as _, Result};
use chrono::{DateTime, NaiveDate, Utc};
use sd_notify::NotifyState;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, error, info, warn};

use crate::collect::{run_all, CollectOptions, Collector, CycleReport, DateOutcome};
use crate::config::{Config, ConfigSource};
use crate::heap;
use crate::logging::error_chain;
use crate::prom::{self, Metrics};
use crate::report::thousands;
use crate::scheduler::{self, Backoff, CronTicker, Schedule, Wake};
use crate::store::lock::DirLock;
use crate::store::Archive;

/// How long shutdown waits for an interrupted cycle to finish its write and save the
/// tracker. systemd's default stop timeout is 90 s; we promise 5.
pub const GRACE: Duration = Duration::from_secs(4);
/// How often the cron job's fixed UTC offset is compared with the zone's (DST changes).
const REFRESH_EVERY: Duration = Duration::from_secs(60);
/// How late (beyond the tick and its jitter) a cycle may start before the scheduler counts
/// as stuck and the watchdog is no longer fed.
const STUCK_AFTER: Duration = Duration::from_secs(300);
/// STATUS= is one line; long error texts (sacct's stderr) are cut to this many characters.
const STATUS_MAX: usize = 240;

/// What the command line gives the daemon.
#[derive(Debug, Clone, Default)]
pub struct DaemonOptions {
    /// The config file and `--data-dir`, loaded again on SIGHUP.
    pub source: ConfigSource,
    /// Colours in the terminal log format (never under journald).
    pub color: bool,
}

/// Runs the daemon until SIGTERM/SIGINT. Startup errors are returned (and become the exit
/// code in `main`); once `READY=1` is sent it returns `Ok`.
pub fn run(opts: DaemonOptions) -> Result<ExitCode> {
    let result = start(opts);
    if let Err(e) = &result {
        // `main` prints the error as plain text, which journald files at priority info;
        // logged here too, it carries `<3>` and shows up in `journalctl -p err`.
        if crate::logging::under_journald() {
            crate::logging::init("error", false);
            error!("{}", error_chain(e));
        }
    }
    result
}

fn start(opts: DaemonOptions) -> Result<ExitCode> {
    let config = opts.source.load()?;
    anyhow::ensure!(
        !crate::lake::LakeUrl::is_url(&config.data_dir),
        "data_dir {} is a lake URL; the daemon writes a local data dir and uploads it to [lake] url",
        config.data_dir.display()
    );
    // tokio-cron-scheduler logs every job it adds at info; that is noise in our journal.
    crate::logging::init(
        &format!("{},tokio_cron_scheduler=warn", config.log.level.0),
        opts.color,
    );

    // Handlers go in before anything that can block, so a SIGTERM during startup waits in
    // the channel for the main loop instead of killing us half-way. A plain thread with
    // signal-hook's iterator: it only forwards, it never decides anything.
    let mut signals =
        Signals::new([SIGHUP, SIGTERM, SIGINT]).context("cannot install signal handlers")?;
    let signal_handle = signals.handle();
    let (sig_tx, sig_rx) = mpsc::unbounded_channel();
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            for sig in signals.forever() {
                if sig_tx.send(sig).is_err() {
                    break;
                }
            }
        })
        .context("cannot start the signal thread")?;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("slurm-usage")
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let result = runtime.block_on(serve(opts, config, sig_rx, CancellationToken::new()));
    signal_handle.close();
    // Blocking work that outlived GRACE (a write, a wait for the write lock) gets one more
    // second. Writes are atomic, so abandoning one leaves the previous file intact.
    runtime.shutdown_timeout(Duration::from_secs(1));
    result
}

/// The daemon proper, after logging and signals are set up. `signals` delivers SIGHUP,
/// SIGTERM and SIGINT numbers; cancelling `cancel` stops it like SIGTERM does.
pub async fn serve(
    opts: DaemonOptions,
    config: Config,
    mut signals: mpsc::UnboundedReceiver<i32>,
    cancel: CancellationToken,
) -> Result<ExitCode> {
    let mut instance = instance_lock(&config)?;
    let schedule = Schedule::from_config(&config).context("cannot use [schedule] cron")?;
    let (tick_tx, tick_rx) = mpsc::channel(1);
    let mut ticker = CronTicker::start(schedule.clone(), tick_tx)
        .await
        .context("cannot start the scheduler")?;

    let last_success = last_success_of(&config);
    let now = Utc::now();
    let catch_up = schedule.needs_catch_up(last_success, now);
    let next = schedule.next_after(now);
    let config = Arc::new(config);
    let (config_tx, config_rx) = watch::channel(config.clone());
    let health = Arc::new(Health::default());
    let tasks = TaskTracker::new();
    let metrics = Metrics {
        last_success,
        ..Metrics::default()
    };
    write_metrics(&config, &metrics).await;

    let next_text = next.map_or_else(|| "never".to_string(), |t| schedule.describe_tick(t, now));
    let status = if catch_up {
        format!(
            "ready, catching up now (last success: {})",
            describe_time(last_success)
        )
    } else {
        format!("ready, next {next_text}")
    };
    notify(&[NotifyState::Ready, NotifyState::Status(&status)]);
    info!(
        pid = std::process::id(),
        config = %config.source.as_ref().map_or("built-in defaults".to_string(), |p| p.display().to_string()),
        data_dir = %config.data_dir.display(),
        cron = %config.schedule.cron,
        timezone = %config.zone().name(),
        jitter = %config.schedule.jitter,
        next = %next_text,
        catch_up,
        "daemon ready"
    );
    if catch_up {
        info!(last_success = %describe_time(last_success), "a scheduled collection was missed: collecting now");
    }
    let mut cycle_loop = tasks.spawn(
        CycleLoop {
            config: config_rx,
            ticks: tick_rx,
            catch_up,
            cancel: cancel.clone(),
            tasks: tasks.clone(),
            health: health.clone(),
            metrics: Arc::new(Mutex::new(metrics)),
            backoff: Backoff::default(),
            upload: None,
            last_status: Arc::new(Mutex::new(String::new())),
        }
        .run(),
    );

    // `[alerts] cron`: a second schedule, its own task; a reload that changes it applies at
    // once (the task watches the config).
    tasks.spawn(alerts_loop(config_tx.subscribe(), cancel.clone()));

    let watchdog = sd_notify::watchdog_enabled()
        .map(|d| d / 2)
        .filter(|d| !d.is_zero());
    if let Some(every) = watchdog {
        info!(every = ?every, "feeding the systemd watchdog");
    }
    let mut watchdog_timer = tokio::time::interval(watchdog.unwrap_or(Duration::from_secs(3600)));
    watchdog_timer.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut refresh = tokio::time::interval_at(Instant::now() + REFRESH_EVERY, REFRESH_EVERY);
    refresh.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut reported_stuck = false;

    let code = loop {
        tokio::select! {
            sig = signals.recv() => match sig {
                Some(SIGHUP) => {
                    reload(&opts, &config_tx, &mut ticker, &mut instance).await;
                }
                Some(sig) => {
                    info!(signal = signal_name(sig), "shutting down");
                    break ExitCode::SUCCESS;
                }
                None => {
                    error!("the signal thread ended; shutting down");
                    break ExitCode::FAILURE;
                }
            },
            _ = cancel.cancelled() => break ExitCode::SUCCESS,
            _ = watchdog_timer.tick(), if watchdog.is_some() => {
                let jitter = config_tx.borrow().schedule.jitter.0;
                match health.overdue(ticker.schedule(), jitter, Utc::now()) {
                    None => {
                        notify(&[NotifyState::Watchdog]);
                        reported_stuck = false;
                    }
                    Some(late) if !reported_stuck => {
                        error!(late = ?late, "no cycle started although one was due: not feeding the watchdog, so systemd restarts the daemon");
                        reported_stuck = true;
                    }
                    Some(_) => {}
                }
            },
            _ = refresh.tick() => {
                if let Err(e) = ticker.refresh().await {
                    warn!("cannot re-create the cron job for a UTC offset change: {e}");
                }
                let jitter = config_tx.borrow().schedule.jitter.0;
                if watchdog.is_none() && health.overdue(ticker.schedule(), jitter, Utc::now()).is_some() && !reported_stuck {
                    // No watchdog to restart us: try to heal the tick source ourselves.
                    error!("no cycle started although one was due: re-creating the cron job");
                    reported_stuck = true;
                    let schedule = ticker.schedule().clone();
                    if let Err(e) = ticker.set_schedule(schedule).await {
                        error!("cannot re-create the cron job: {e}");
                    }
                }
            },
            r = &mut cycle_loop => {
                error!("the cycle loop ended unexpectedly ({r:?}); exiting so systemd restarts the daemon");
                break ExitCode::FAILURE;
            }
        }
    };

    notify(&[NotifyState::Stopping]);
    let t0 = Instant::now();
    cancel.cancel();
    ticker.shutdown().await;
    tasks.close();
    if tokio::time::timeout(GRACE, tasks.wait()).await.is_err() {
        warn!(
            grace = ?GRACE,
            "the running cycle did not stop in time; exiting anyway (writes are atomic: no partial file replaces a good one)"
        );
    }
    drop(instance);
    info!(
        seconds = format!("{:.2}", t0.elapsed().as_secs_f64()),
        "stopped"
    );
    Ok(code)
}

/// Runs an alerts round (`crate::alerts`) at every tick of `[alerts] cron`, with the config
/// in force at that tick; idle while the config has no such schedule. A round that fails is
/// logged and the next tick runs anyway. Wall-clock ticks are checked at least once a minute,
/// so a suspended machine or a changed clock never leaves a tick a week late.
async fn alerts_loop(mut config: watch::Receiver<Arc<Config>>, cancel: CancellationToken) {
    loop {
        let current = config.borrow_and_update().clone();
        let schedule = current
            .alerts
            .as_ref()
            .and_then(|a| a.cron.as_deref())
            .and_then(|c| Schedule::new(c, current.zone()).ok());
        let next = schedule.as_ref().and_then(|s| s.next_after(Utc::now()));
        if let (Some(s), Some(t)) = (&schedule, next) {
            info!(source = "alerts", cron = %s.expr(), next = %s.describe_tick(t, Utc::now()), "alert mails scheduled");
        }
        let due = loop {
            let step = match next {
                Some(t) => (t - Utc::now())
                    .to_std()
                    .unwrap_or_default()
                    .min(Duration::from_secs(60)),
                None => Duration::from_secs(3600),
            };
            tokio::select! {
                _ = cancel.cancelled() => return,
                r = config.changed() => {
                    if r.is_err() {
                        return;
                    }
                    break false;
                }
                _ = tokio::time::sleep(step) => {
                    if next.is_some_and(|t| Utc::now() >= t) {
                        break true;
                    }
                }
            }
        };
        if !due {
            continue;
        }
        let c = current.clone();
        match tokio::task::spawn_blocking(move || crate::alerts::command::round(&c)).await {
            Ok(Ok(report)) => info!(source = "alerts", "{}", report.line()),
            Ok(Err(e)) => error!(source = "alerts", "round failed: {}", error_chain(&e)),
            Err(e) => error!(source = "alerts", "round ended abnormally: {e}"),
        }
    }
}

/// Creates the data dir if needed and takes its instance lock for the daemon's lifetime.
fn instance_lock(config: &Config) -> Result<DirLock> {
    let archive = Archive::of(config);
    // With clusters listed the top level holds only their directories (and the locks).
    let created = if config.collect.clusters.is_empty() {
        archive.create()
    } else {
        std::fs::create_dir_all(archive.location())
    };
    created.with_context(|| {
        format!(
            "cannot create the data dir {}",
            archive.location().display()
        )
    })?;
    archive.lock_daemon().with_context(|| {
        format!(
            "another slurm-usage daemon is running on {} (stop it first, or give this one another data_dir)",
            archive.location().display()
        )
    })
}

/// The last success of the data dir, or with `[collect] clusters` the oldest of the
/// clusters' (a cluster never collected is "never"): a catch-up cycle runs when any
/// cluster is behind.
fn last_success_of(config: &Config) -> Option<DateTime<Utc>> {
    if config.collect.clusters.is_empty() {
        return read_last_success(&Archive::of(config));
    }
    config
        .collect
        .clusters
        .iter()
        .map(|c| read_last_success(&Archive::of_cluster(config, c)))
        .collect::<Option<Vec<_>>>()?
        .into_iter()
        .min()
}

/// The tracker's last successful cycle, read without side effects (a corrupt tracker is
/// the next cycle's business, under the write lock): unreadable means "never", with a
/// warning. [`Archive::peek_tracker`] checks the file type first: a FIFO there must not
/// hang the start before READY.
fn read_last_success(archive: &Archive) -> Option<DateTime<Utc>> {
    match archive.peek_tracker() {
        Ok(tracker) => tracker.last_success,
        Err(e) => {
            warn!("{e}; taking the last success as never");
            None
        }
    }
}

/// SIGHUP: `RELOADING=1` + `MONOTONIC_USEC`, re-read and validate, apply or keep the old
/// config, then `READY=1` either way (so `Type=notify-reload` works too).
async fn reload(
    opts: &DaemonOptions,
    config_tx: &watch::Sender<Arc<Config>>,
    ticker: &mut CronTicker,
    instance: &mut DirLock,
) {
    match NotifyState::monotonic_usec_now() {
        Ok(usec) => notify(&[NotifyState::Reloading, usec]),
        Err(e) => {
            warn!("cannot read the monotonic clock for MONOTONIC_USEC: {e}");
            notify(&[NotifyState::Reloading]);
        }
    }
    match apply_reload(opts, config_tx, ticker, instance).await {
        Ok(new) => {
            info!(
                config = %new.source.as_ref().map_or("built-in defaults".to_string(), |p| p.display().to_string()),
                cron = %new.schedule.cron,
                "config reloaded; it applies from the next cycle"
            );
            notify(&[NotifyState::Ready]);
        }
        Err(e) => {
            error!(
                "config reload failed, keeping the previous config: {}",
                error_chain(&e)
            );
            let status = one_line(
                &format!(
                    "reload rejected, previous config in force: {}",
                    error_chain(&e)
                ),
                STATUS_MAX,
            );
            notify(&[NotifyState::Ready, NotifyState::Status(&status)]);
        }
    }
}

async fn apply_reload(
    opts: &DaemonOptions,
    config_tx: &watch::Sender<Arc<Config>>,
    ticker: &mut CronTicker,
    instance: &mut DirLock,
) -> Result<Arc<Config>> {
    let new = opts.source.load()?;
    let old = config_tx.borrow().clone();
    // Everything fallible first, so a failure leaves the old config fully in force.
    let (old_archive, new_archive) = (Archive::of(&old), Archive::of(&new));
    let new_lock = if new_archive != old_archive {
        Some(instance_lock(&new)?)
    } else {
        None
    };
    if new.schedule.cron != old.schedule.cron || new.zone() != old.zone() {
        let schedule = Schedule::from_config(&new).context("cannot use the new [schedule] cron")?;
        ticker
            .set_schedule(schedule)
            .await
            .context("cannot reschedule")?;
    }
    if let Some(l) = new_lock {
        info!(from = %old_archive.location().display(), to = %new_archive.location().display(), "data dir changed");
        *instance = l;
    }
    if new.collect.clusters != old.collect.clusters {
        // Collectors are built per cycle: the next one collects the new list. A cluster
        // left out keeps its directory and files; nothing is deleted.
        info!(from = ?old.collect.clusters, to = ?new.collect.clusters, "clusters changed; the next cycle collects the new list");
    }
    if new.log.level != old.log.level {
        warn!(
            "[log] level = {:?} takes effect at the next restart (RUST_LOG still wins)",
            new.log.level.0
        );
    }
    let new = Arc::new(new);
    config_tx.send_replace(new.clone());
    Ok(new)
}

/// Whether the cycle loop is waiting for a tick that should have come long ago.
#[derive(Debug, Default)]
struct Health {
    /// When the cycle loop last went idle; `None` while a cycle runs.
    idle_since: Mutex<Option<DateTime<Utc>>>,
}

impl Health {
    fn set(&self, v: Option<DateTime<Utc>>) {
        // A poisoned lock only means a panic elsewhere; the value is still a plain Option.
        *self.idle_since.lock().unwrap_or_else(|e| e.into_inner()) = v;
    }

    /// How late the cycle loop is: it went idle, the next tick after that plus the largest
    /// jitter plus [`STUCK_AFTER`] has passed, and still no cycle started.
    fn overdue(
        &self,
        schedule: &Schedule,
        jitter: Duration,
        now: DateTime<Utc>,
    ) -> Option<Duration> {
        let since = (*self.idle_since.lock().unwrap_or_else(|e| e.into_inner()))?;
        let tick = schedule.next_after(since)?;
        let slack = scheduler::max_jitter(jitter, schedule.period_at(since)) + STUCK_AFTER;
        let deadline = tick + chrono::Duration::from_std(slack).ok()?;
        (now > deadline).then(|| (now - deadline).to_std().unwrap_or_default())
    }
}

/// Why a cycle starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Why {
    CatchUp,
    Tick,
    Retry,
}

/// The single loop that runs cycles, one at a time.
struct CycleLoop {
    config: watch::Receiver<Arc<Config>>,
    ticks: mpsc::Receiver<()>,
    catch_up: bool,
    cancel: CancellationToken,
    tasks: TaskTracker,
    health: Arc<Health>,
    /// Shared with the lake upload task, which updates the lake gauges when it ends.
    metrics: Arc<Mutex<Metrics>>,
    backoff: Backoff,
    /// The lake upload round started after the last cycle, while it runs.
    upload: Option<tokio::task::JoinHandle<()>>,
    /// The last cycle's STATUS text, for the upload task to add the lake's state to.
    last_status: Arc<Mutex<String>>,
}

/// How a cycle ended.
enum Outcome {
    /// It ran; some dates may have failed.
    Report(CycleReport),
    /// It stopped before collecting (lock, data dir, tracker, panic).
    Error(anyhow::Error, Duration),
}

impl CycleLoop {
    async fn run(mut self) {
        let mut retry: Option<Instant> = None;
        let mut due = self.catch_up.then_some(Why::CatchUp);
        loop {
            let why = match due.take() {
                Some(why) => why,
                None => {
                    self.health.set(Some(Utc::now()));
                    match scheduler::wait_for_wake(&mut self.ticks, retry, &self.cancel).await {
                        Wake::Tick => Why::Tick,
                        Wake::Retry => Why::Retry,
                        Wake::Stop => break,
                    }
                }
            };
            if why == Why::Tick {
                let config = self.config.borrow().clone();
                let period = Schedule::from_config(&config)
                    .ok()
                    .and_then(|s| s.period_at(Utc::now()));
                let delay = scheduler::jitter(
                    scheduler::max_jitter(config.schedule.jitter.0, period),
                    scheduler::random_u64(),
                );
                if !delay.is_zero() {
                    debug!(delay = ?delay, "tick; waiting for the jitter");
                }
                if !scheduler::sleep_or_cancel(delay, &self.cancel).await {
                    break;
                }
            }
            // The config in force for this whole cycle (a reload during the jitter counts);
            // a reload while it runs applies to the next one.
            let config = self.config.borrow_and_update().clone();
            let schedule = Schedule::from_config(&config).ok();
            self.health.set(None);
            let started = Utc::now();
            notify(&[NotifyState::Status(&format!(
                "collecting since {} ({})",
                started.format("%H:%M:%S UTC"),
                match why {
                    Why::CatchUp => "catch-up",
                    Why::Tick => "scheduled",
                    Why::Retry => "retry",
                }
            ))]);
            let outcome = self.cycle(config.clone()).await;
            if self.cancel.is_cancelled() {
                // Shutdown interrupted it; what it wrote is consistent and the tracker saved.
                break;
            }
            let now = Utc::now();
            let ok = match &outcome {
                Outcome::Report(r) => {
                    let ok = r.failed() == 0 && r.cluster_errors.is_empty() && !r.cancelled;
                    lock(&self.metrics).record_cycle(r, ok, now);
                    ok
                }
                Outcome::Error(e, took) => {
                    error!(source = "cycle", "cycle failed: {}", error_chain(e));
                    lock(&self.metrics).record_error(took.as_secs_f64());
                    false
                }
            };
            let next_tick = schedule.as_ref().and_then(|s| s.next_after(now));
            retry = if ok {
                self.backoff.reset();
                None
            } else {
                let delay = self.backoff.record_failure();
                scheduler::retry_at(
                    Instant::now(),
                    delay,
                    next_tick.map(|t| scheduler::instant_of(t, now)),
                )
            };
            let retry_text = retry.map(|at| {
                let at = now
                    + chrono::Duration::from_std(at.saturating_duration_since(Instant::now()))
                        .unwrap_or_default();
                schedule.as_ref().map_or_else(
                    || at.format("%H:%M:%S").to_string(),
                    |s| s.describe_tick(at, now),
                )
            });
            let next_text = match (&schedule, next_tick) {
                (Some(s), Some(t)) => s.describe_tick(t, now),
                _ => "never".to_string(),
            };
            if !ok {
                warn!(
                    failures_in_a_row = self.backoff.failures(),
                    retry = %retry_text.as_deref().unwrap_or("at the next tick"),
                    next = %next_text,
                    "cycle did not collect everything; it will be retried"
                );
            }
            // Metrics first: whoever reads STATUS may look at the textfile next.
            let lake = lake_health(&config).await;
            let snapshot = {
                let mut m = lock(&self.metrics);
                m.lake = lake.clone();
                m.clone()
            };
            write_metrics(&config, &snapshot).await;
            let status = status_line(
                &outcome,
                self.backoff.failures(),
                retry_text.as_deref(),
                &next_text,
            );
            *lock(&self.last_status) = status.clone();
            let status = with_lake(&status, &lake);
            notify(&[NotifyState::Status(&status)]);
            debug!(status = %status, "status");
            self.start_upload(&config);
            // Idle until the next tick: the cycle's freed memory goes back to the system.
            match tokio::task::spawn_blocking(heap::release_free_memory).await {
                Ok(released) => debug!(released, "freed memory handed back after the cycle"),
                Err(e) => warn!("handing freed memory back failed: {e}"),
            }
        }
        self.health.set(None);
    }

    /// Starts the lake upload round for what the cycle committed, in a task of its own: a
    /// slow or failing upload never holds back the next cycle. When one still runs from
    /// the last cycle, none is started; the next round takes what is pending then.
    fn start_upload(&mut self, config: &Arc<Config>) {
        if config.lake.is_none() {
            return;
        }
        if self.upload.as_ref().is_some_and(|h| !h.is_finished()) {
            info!(
                source = "lake",
                "the previous upload round still runs; the next cycle starts the next one"
            );
            return;
        }
        let (config, metrics, status, cancel) = (
            config.clone(),
            self.metrics.clone(),
            self.last_status.clone(),
            self.cancel.clone(),
        );
        self.upload = Some(self.tasks.spawn(async move {
            // One round per cluster, each under its own `cluster=` name.
            for c in Collector::all(config.clone()) {
                let lake_config = c.lake_config();
                let round = tokio::select! {
                    r = crate::lake::command::upload_after_collect(&lake_config, &c.archive) => r,
                    () = cancel.cancelled() => return,
                };
                let Some(report) = round else { continue };
                match &report.error {
                    Some(_) => warn!(
                        source = "lake",
                        "{}; retried after the next cycle",
                        report.line()
                    ),
                    None => info!(source = "lake", "{}", report.line()),
                }
            }
            let lake = lake_health(&config).await;
            let snapshot = {
                let mut m = lock(&metrics);
                m.lake = lake.clone();
                m.clone()
            };
            write_metrics(&config, &snapshot).await;
            let text = with_lake(&lock(&status).clone(), &lake);
            notify(&[NotifyState::Status(&text)]);
        }));
    }

    /// Runs one cycle in a task of its own, so a panic fails this cycle only.
    async fn cycle(&self, config: Arc<Config>) -> Outcome {
        let opts = CollectOptions {
            days: config.collect.lookback_days,
            wait_for_lock: true,
            progress: false,
        };
        let listed = config.collect.clusters.clone();
        // The daemon's cycles ask only for what changed since the last success, with a
        // whole-day check every `[collect] full_check` (docs/collection.md).
        let collectors: Vec<Collector> = Collector::all(config)
            .into_iter()
            .map(Collector::incremental)
            .collect();
        let (cancel, metrics) = (self.cancel.clone(), self.metrics.clone());
        let t0 = Instant::now();
        let handle = self.tasks.spawn(async move {
            let cycles = run_all(&collectors, &opts, &cancel).await;
            // Each listed cluster's gauges; a cluster a reload removed loses its series.
            let now = Utc::now();
            let mut m = lock(&metrics);
            m.clusters.retain(|name, _| listed.contains(name));
            for c in &cycles {
                if let Some(name) = &c.cluster {
                    m.record_cluster(name, c.result.as_ref().ok(), now);
                }
            }
            drop(m);
            CycleReport::merge(cycles)
        });
        match handle.await {
            Ok(Ok(report)) => Outcome::Report(report),
            Ok(Err(e)) => Outcome::Error(e.into(), t0.elapsed()),
            Err(e) => Outcome::Error(anyhow::anyhow!("the cycle panicked: {e}"), t0.elapsed()),
        }
    }
}

/// A poisoned lock still holds usable metrics: a panic elsewhere must not stop reporting.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The lake's upload state of every cluster from the data dir (a `stat` per partition),
/// when a lake is configured: one entry per cluster uploaded.
async fn lake_health(config: &Arc<Config>) -> Vec<crate::lake::LakeHealth> {
    if config.lake.is_none() {
        return Vec::new();
    }
    let c = config.clone();
    tokio::task::spawn_blocking(move || crate::lake::command::health_all(&c))
        .await
        .unwrap_or_default()
}

/// The STATUS text with the lake's pending count (of all clusters) appended, when there is
/// a lake.
fn with_lake(status: &str, lake: &[crate::lake::LakeHealth]) -> String {
    if lake.is_empty() {
        return status.to_string();
    }
    let pending: usize = lake.iter().map(|l| l.pending).sum();
    one_line(
        &format!("{status}; lake {} pending", thousands(pending as u64)),
        STATUS_MAX,
    )
}

/// Writes the metrics textfile if one is configured; a failure is logged, never fatal.
async fn write_metrics(config: &Config, metrics: &Metrics) {
    let Some(path) = config.metrics.textfile.clone() else {
        return;
    };
    let metrics = metrics.clone();
    let shown = path.clone();
    match tokio::task::spawn_blocking(move || prom::write_textfile(&path, &metrics)).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => warn!("cannot write the metrics textfile: {e}"),
        Err(e) => warn!(path = %shown.display(), "writing the metrics textfile failed: {e}"),
    }
}

/// The one-line `STATUS=` after a cycle, e.g.
/// `collected 2026-11-23..25: 41,210 jobs, 3 dates incomplete, 0 failed, next 02:15`.
fn status_line(
    outcome: &Outcome,
    failures_in_a_row: u32,
    retry: Option<&str>,
    next: &str,
) -> String {
    let retry = match retry {
        Some(at) => format!(", retry {at}"),
        None => String::new(),
    };
    let text = match outcome {
        Outcome::Report(r) if !r.cluster_errors.is_empty() => {
            let failed: Vec<String> = r
                .cluster_errors
                .iter()
                .map(|(c, e)| format!("{c} ({e})"))
                .collect();
            format!(
                "{} jobs, {} incomplete, {} failed; cluster failed: {}{retry}, next {next}",
                thousands(prom::jobs_written(r)),
                plural(r.incomplete(), "date"),
                r.failed(),
                one_line(&failed.join(", "), STATUS_MAX / 2)
            )
        }
        Outcome::Report(r) => {
            let collected: Vec<NaiveDate> = r
                .dates
                .iter()
                .filter(|d| d.outcome != DateOutcome::AlreadyComplete)
                .map(|d| d.date)
                .collect();
            match (collected.iter().min(), collected.iter().max()) {
                (Some(first), Some(last)) => format!(
                    "collected {}: {} jobs, {} incomplete, {} failed{retry}, next {next}",
                    date_range(*first, *last),
                    thousands(prom::jobs_written(r)),
                    plural(r.incomplete(), "date"),
                    r.failed(),
                ),
                _ => format!(
                    "nothing to collect ({} complete), next {next}",
                    plural(r.dates.len(), "date")
                ),
            }
        }
        Outcome::Error(e, _) => format!(
            "cycle failed ({failures_in_a_row} in a row): {}{retry}, next {next}",
            // Shorter than STATUS_MAX so that the retry and next times survive the cut.
            one_line(&error_chain(e), STATUS_MAX * 2 / 3)
        ),
    };
    one_line(&text, STATUS_MAX)
}

fn plural(n: usize, what: &str) -> String {
    format!("{n} {what}{}", if n == 1 { "" } else { "s" })
}

/// `2026-11-23..25`, `2026-10-31..11-02`, `2025-12-31..2026-01-01`, or one date.
fn date_range(first: NaiveDate, last: NaiveDate) -> String {
    use chrono::Datelike;
    if first == last {
        first.to_string()
    } else if (first.year(), first.month()) == (last.year(), last.month()) {
        format!("{first}..{}", last.format("%d"))
    } else if first.year() == last.year() {
        format!("{first}..{}", last.format("%m-%d"))
    } else {
        format!("{first}..{last}")
    }
}

/// STATUS= must be one line: newlines (sacct's stderr) become `; `, and it is kept to
/// `max` characters.
fn one_line(s: &str, max: usize) -> String {
    let joined = s
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ");
    if joined.chars().count() > max {
        let cut: String = joined.chars().take(max.saturating_sub(1)).collect();
        format!("{cut}…")
    } else {
        joined
    }
}

fn describe_time(t: Option<DateTime<Utc>>) -> String {
    t.map_or_else(
        || "never".to_string(),
        |t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
    )
}

fn signal_name(sig: i32) -> &'static str {
    match sig {
        SIGTERM => "SIGTERM",
        SIGINT => "SIGINT",
        SIGHUP => "SIGHUP",
        _ => "signal",
    }
}

/// Sends to systemd's notify socket; a no-op without `NOTIFY_SOCKET`, never fatal.
fn notify(states: &[NotifyState]) {
    if let Err(e) = sd_notify::notify(states) {
        debug!("sd_notify failed: {e}");
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::collect::DateReport;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn date(s: &str, outcome: DateOutcome, jobs: usize) -> DateReport {
        DateReport {
            date: d(s),
            outcome,
            jobs,
            incomplete_jobs: 0,
            moved_out: 0,
            parse_errors: 0,
            raw_rows: 0,
            sacct_seconds: 0.0,
            sacct_rows: 0,
        }
    }

    #[test]
    fn status_line_after_a_cycle() {
        let r = CycleReport {
            dates: vec![
                date("2026-11-22", DateOutcome::AlreadyComplete, 5000),
                date("2026-11-23", DateOutcome::Complete, 40_000),
                date("2026-11-24", DateOutcome::Incomplete, 1200),
                date("2026-11-25", DateOutcome::Incomplete, 10),
            ],
            ..Default::default()
        };
        assert_eq!(
            status_line(&Outcome::Report(r), 0, None, "02:15"),
            "collected 2026-11-23..25: 41,210 jobs, 2 dates incomplete, 0 failed, next 02:15"
        );
        let r = CycleReport {
            dates: vec![date(
                "2026-11-25",
                DateOutcome::Failed("sacct exited with 1".into()),
                0,
            )],
            ..Default::default()
        };
        assert_eq!(
            status_line(&Outcome::Report(r), 1, Some("02:16"), "02:15"),
            "collected 2026-11-25: 0 jobs, 1 date incomplete, 1 failed, retry 02:16, next 02:15"
        );
        let r = CycleReport {
            dates: vec![date("2026-11-25", DateOutcome::AlreadyComplete, 3)],
            ..Default::default()
        };
        assert_eq!(
            status_line(&Outcome::Report(r), 0, None, "02:15"),
            "nothing to collect (1 date complete), next 02:15"
        );
    }

    #[test]
    fn status_line_after_an_error_is_one_short_line() {
        let e = anyhow::anyhow!("line one\nline two\n").context("cannot create the data dir /x");
        let s = status_line(
            &Outcome::Error(e, Duration::ZERO),
            3,
            Some("02:20"),
            "2026-11-26 02:15",
        );
        assert_eq!(
            s,
            "cycle failed (3 in a row): cannot create the data dir /x: line one; line two, retry 02:20, next 2026-11-26 02:15"
        );
        let long = anyhow::anyhow!("{}", "x".repeat(1000));
        let s = status_line(&Outcome::Error(long, Duration::ZERO), 1, None, "02:15");
        assert!(s.chars().count() <= STATUS_MAX, "{s}");
        assert!(s.ends_with("…, next 02:15"), "{s}");
    }

    #[test]
    fn status_line_names_a_cluster_that_failed_as_a_whole() {
        let r = CycleReport {
            dates: vec![date("2026-11-24", DateOutcome::Complete, 9)],
            cluster_errors: vec![("beta".into(), "data dir busy".into())],
            ..Default::default()
        };
        let s = status_line(&Outcome::Report(r), 1, None, "02:15");
        assert_eq!(
            s,
            "9 jobs, 0 dates incomplete, 0 failed; cluster failed: beta (data dir busy), next 02:15"
        );
    }

    #[test]
    fn date_ranges_are_compact() {
        assert_eq!(
            date_range(d("2026-11-23"), d("2026-11-25")),
            "2026-11-23..25"
        );
        assert_eq!(
            date_range(d("2026-10-31"), d("2026-11-02")),
            "2026-10-31..11-02"
        );
        assert_eq!(
            date_range(d("2025-12-31"), d("2026-01-01")),
            "2025-12-31..2026-01-01"
        );
        assert_eq!(date_range(d("2026-11-25"), d("2026-11-25")), "2026-11-25");
    }

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn overdue_only_when_idle_past_tick_jitter_and_slack() {
        let s = Schedule::new("0 15 2 * * *", "UTC".parse().unwrap()).unwrap();
        let h = Health::default();
        let jitter = Duration::from_secs(600);
        assert_eq!(
            h.overdue(&s, jitter, utc("2026-11-26T10:00:00Z")),
            None,
            "busy"
        );
        h.set(Some(utc("2026-11-25T03:00:00Z")));
        // Next tick 2026-11-26 02:15, + 10 min jitter + 5 min slack = 02:30.
        assert_eq!(h.overdue(&s, jitter, utc("2026-11-26T02:29:59Z")), None);
        assert_eq!(
            h.overdue(&s, jitter, utc("2026-11-26T02:31:00Z")),
            Some(Duration::from_secs(60))
        );
        h.set(None);
        assert_eq!(h.overdue(&s, jitter, utc("2026-11-26T10:00:00Z")), None);
    }
}
