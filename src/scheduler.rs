//! When the daemon runs a cycle.
//!
//! - [`Schedule`] is the `[schedule] cron` expression in the configured zone: the next tick
//!   after an instant (pure, DST-correct), the period, and whether a tick was missed while
//!   the daemon was down (catch-up, as a `Persistent=true` timer does).
//! - [`jitter`], [`Backoff`] and [`retry_at`] are the rest of the timing arithmetic, pure.
//! - [`wait_for_wake`] and [`sleep_or_cancel`] are the only places the cycle loop sleeps;
//!   both return as soon as shutdown is requested.
//! - [`CronTicker`] is the tokio-cron-scheduler job that turns the cron expression into ticks.
//!   It only `try_send`s on a channel of capacity 1 and never runs a cycle itself: a cycle
//!   that outlasts the next tick leaves one tick queued (it runs right after), never a pile.
//!
//! tokio-cron-scheduler evaluates the expression in a *fixed* UTC offset taken when the job is
//! created, so across a DST change its ticks would drift by an hour. [`CronTicker::refresh`]
//! re-creates the job with the offset that holds at the next tick whenever that differs.

use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

use chrono::{DateTime, FixedOffset, Offset, TimeZone, Utc};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_cron_scheduler::{Job, JobScheduler, JobSchedulerError};
use tokio_util::sync::CancellationToken;

use crate::config::{parse_cron, Config};
use crate::zone::Zone;

/// First delay before a failed cycle is retried; it doubles with each failure in a row.
pub const RETRY_BASE: Duration = Duration::from_secs(60);
/// The longest delay between a failed cycle and its retry.
pub const RETRY_CAP: Duration = Duration::from_secs(3600);

/// Why a schedule could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    #[error("invalid cron expression {expr:?}: {source} (hint: 6 fields, sec min hour day-of-month month day-of-week)")]
    Cron {
        expr: String,
        #[source]
        source: croner::errors::CronError,
    },
    #[error("cron expression {expr:?} never matches a future time")]
    Never { expr: String },
    #[error("the job scheduler failed: {0}")]
    Scheduler(#[from] JobSchedulerError),
}

/// A cron expression in a zone.
#[derive(Debug, Clone)]
pub struct Schedule {
    expr: String,
    cron: croner::Cron,
    zone: Zone,
}

impl Schedule {
    /// Parses `expr` exactly as the config validation and tokio-cron-scheduler do.
    pub fn new(expr: &str, zone: Zone) -> Result<Self, ScheduleError> {
        let cron = parse_cron(expr).map_err(|source| ScheduleError::Cron {
            expr: expr.to_string(),
            source,
        })?;
        Ok(Schedule {
            expr: expr.to_string(),
            cron,
            zone,
        })
    }

    /// The schedule of a (validated) config.
    pub fn from_config(config: &Config) -> Result<Self, ScheduleError> {
        Schedule::new(&config.schedule.cron, config.zone())
    }

    /// The cron expression as written.
    pub fn expr(&self) -> &str {
        &self.expr
    }

    /// The zone the expression is read in.
    pub fn zone(&self) -> &Zone {
        &self.zone
    }

    /// The first tick strictly after `t`, or `None` if the expression never fires again.
    pub fn next_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        fn next<Tz: TimeZone>(cron: &croner::Cron, t: DateTime<Tz>) -> Option<DateTime<Utc>> {
            cron.find_next_occurrence(&t, false)
                .ok()
                .map(|n| n.with_timezone(&Utc))
        }
        match &self.zone {
            Zone::Local => next(&self.cron, t.with_timezone(&chrono::Local)),
            Zone::Named(tz) => next(&self.cron, t.with_timezone(tz)),
        }
    }

    /// The gap between the next two ticks after `t`: "one schedule period" there.
    pub fn period_at(&self, t: DateTime<Utc>) -> Option<Duration> {
        let a = self.next_after(t)?;
        let b = self.next_after(a)?;
        (b - a).to_std().ok()
    }

    /// Whether a tick passed between the last successful cycle and `now`, so the daemon
    /// should collect at once instead of waiting for the next tick (`Persistent=true`).
    /// Never succeeded: yes.
    pub fn needs_catch_up(&self, last_success: Option<DateTime<Utc>>, now: DateTime<Utc>) -> bool {
        match last_success {
            None => true,
            Some(last) => self.next_after(last).is_some_and(|tick| tick <= now),
        }
    }

    /// The zone's UTC offset at `t`, which tokio-cron-scheduler needs as a fixed offset.
    pub fn offset_at(&self, t: DateTime<Utc>) -> FixedOffset {
        match &self.zone {
            Zone::Local => chrono::Local.offset_from_utc_datetime(&t.naive_utc()).fix(),
            Zone::Named(tz) => tz.offset_from_utc_datetime(&t.naive_utc()).fix(),
        }
    }

    /// A short human form of a tick for STATUS: `02:15`, `02:15:30`, or with the date when
    /// it is not within the next day.
    pub fn describe_tick(&self, tick: DateTime<Utc>, now: DateTime<Utc>) -> String {
        let local = tick.with_timezone(&self.offset_at(tick));
        let time = if local.format("%S").to_string() == "00" {
            local.format("%H:%M").to_string()
        } else {
            local.format("%H:%M:%S").to_string()
        };
        if tick - now < chrono::Duration::hours(23) {
            time
        } else {
            format!("{} {time}", local.format("%Y-%m-%d"))
        }
    }
}

/// The largest jitter actually applied: the configured one, but at most half a period, so a
/// jittered cycle never runs into the next tick.
pub fn max_jitter(configured: Duration, period: Option<Duration>) -> Duration {
    match period {
        Some(p) => configured.min(p / 2),
        None => configured,
    }
}

/// A delay in `[0, max)`, `random` spread evenly over it.
pub fn jitter(max: Duration, random: u64) -> Duration {
    // Clamped to u64 nanoseconds (584 years) so the product below fits in a u128.
    let nanos = max.as_nanos().min(u128::from(u64::MAX));
    let picked = (nanos * u128::from(random)) >> 64;
    // `picked < nanos <= u64::MAX`, so the conversion cannot fail.
    Duration::from_nanos(u64::try_from(picked).unwrap_or(u64::MAX))
}

/// 64 unpredictable-enough bits for jitter: std's per-process random hash keys over the time
/// and pid. Jitter only spreads load; it needs no cryptographic quality and no extra crate.
pub fn random_u64() -> u64 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos(),
    );
    h.write_u32(std::process::id());
    h.finish()
}

/// Exponential back-off over failed cycles in a row.
#[derive(Debug, Clone)]
pub struct Backoff {
    base: Duration,
    cap: Duration,
    failures: u32,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff::new(RETRY_BASE, RETRY_CAP)
    }
}

impl Backoff {
    /// Back-off starting at `base`, doubling, never longer than `cap`.
    pub fn new(base: Duration, cap: Duration) -> Self {
        Backoff {
            base,
            cap,
            failures: 0,
        }
    }

    /// Failed cycles in a row.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// Counts a failed cycle and returns how long to wait before retrying it.
    pub fn record_failure(&mut self) -> Duration {
        let delay = self
            .base
            .saturating_mul(1u32 << self.failures.min(20))
            .min(self.cap);
        self.failures = self.failures.saturating_add(1);
        delay
    }

    /// A cycle succeeded: the next failure starts again at `base`.
    pub fn reset(&mut self) {
        self.failures = 0;
    }
}

/// When to retry a failed cycle: after `delay`, unless the next scheduled tick comes first
/// (then the tick is the retry, and no extra cycle is needed).
pub fn retry_at(now: Instant, delay: Duration, next_tick: Option<Instant>) -> Option<Instant> {
    let at = now + delay;
    match next_tick {
        Some(tick) if tick <= at => None,
        _ => Some(at),
    }
}

/// The instant at which a UTC time falls, on tokio's clock (for `sleep_until`).
pub fn instant_of(t: DateTime<Utc>, now: DateTime<Utc>) -> Instant {
    Instant::now() + (t - now).to_std().unwrap_or(Duration::ZERO)
}

/// What ended a wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wake {
    /// A scheduled tick.
    Tick,
    /// The back-off delay of a failed cycle ran out.
    Retry,
    /// Shutdown, or the tick source is gone.
    Stop,
}

/// Waits for the next tick, the retry instant, or shutdown, whichever comes first. Shutdown
/// wins when several are ready at once.
pub async fn wait_for_wake(
    ticks: &mut mpsc::Receiver<()>,
    retry: Option<Instant>,
    cancel: &CancellationToken,
) -> Wake {
    tokio::select! {
        biased;
        _ = cancel.cancelled() => Wake::Stop,
        t = ticks.recv() => if t.is_some() { Wake::Tick } else { Wake::Stop },
        _ = sleep_until_opt(retry) => Wake::Retry,
    }
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Sleeps `d`; `false` if shutdown came first.
pub async fn sleep_or_cancel(d: Duration, cancel: &CancellationToken) -> bool {
    if d.is_zero() {
        return !cancel.is_cancelled();
    }
    tokio::select! {
        biased;
        _ = cancel.cancelled() => false,
        _ = tokio::time::sleep(d) => true,
    }
}

/// Sends a tick without waiting: if one is already queued (a cycle is running or about to),
/// this one is dropped, so ticks never pile up behind a long cycle.
pub fn offer_tick(tx: &mpsc::Sender<()>) -> bool {
    tx.try_send(()).is_ok()
}

/// The tokio-cron-scheduler job that feeds ticks into the cycle loop.
pub struct CronTicker {
    scheduler: JobScheduler,
    job: Option<Job>,
    schedule: Schedule,
    /// The fixed offset the current job was created with.
    offset: FixedOffset,
    tx: mpsc::Sender<()>,
}

impl CronTicker {
    /// Starts the scheduler with one job for `schedule`, sending ticks on `tx`.
    pub async fn start(schedule: Schedule, tx: mpsc::Sender<()>) -> Result<Self, ScheduleError> {
        let scheduler = JobScheduler::new().await?;
        let now = Utc::now();
        let mut ticker = CronTicker {
            scheduler,
            job: None,
            offset: schedule.offset_at(now),
            schedule,
            tx,
        };
        ticker.install().await?;
        ticker.scheduler.start().await?;
        Ok(ticker)
    }

    /// The schedule in force.
    pub fn schedule(&self) -> &Schedule {
        &self.schedule
    }

    /// Replaces the schedule (after a reload that changed `cron` or `timezone`).
    pub async fn set_schedule(&mut self, schedule: Schedule) -> Result<(), ScheduleError> {
        self.schedule = schedule;
        self.install().await
    }

    /// Re-creates the job if the zone's offset at the next tick differs from the one the job
    /// runs with (a DST change is coming). Cheap when nothing changed: call it every minute.
    pub async fn refresh(&mut self) -> Result<(), ScheduleError> {
        let now = Utc::now();
        let Some(next) = self.schedule.next_after(now) else {
            return Ok(());
        };
        if self.schedule.offset_at(next) != self.offset {
            self.install().await?;
        }
        Ok(())
    }

    /// (Re)creates the job with the offset that holds at the next tick.
    async fn install(&mut self) -> Result<(), ScheduleError> {
        let now = Utc::now();
        let next = self
            .schedule
            .next_after(now)
            .ok_or_else(|| ScheduleError::Never {
                expr: self.schedule.expr.clone(),
            })?;
        let offset = self.schedule.offset_at(next);
        let tx = self.tx.clone();
        let job = Job::new_async_tz(self.schedule.expr.as_str(), offset, move |_id, _sched| {
            let tx = tx.clone();
            Box::pin(async move {
                if !offer_tick(&tx) {
                    tracing::debug!("tick dropped: a cycle is still running or queued");
                }
            })
        })?;
        // Add the new job before removing the old one: if adding fails, the old schedule
        // keeps ticking. Both ticking for a moment is harmless (see `offer_tick`).
        self.scheduler.add(job.clone()).await?;
        let old = self.job.replace(job);
        self.offset = offset;
        if let Some(old) = old {
            if let Err(e) = self.scheduler.remove(&old.guid()).await {
                tracing::warn!("cannot remove the previous cron job: {e}");
            }
        }
        Ok(())
    }

    /// Stops ticking.
    pub async fn shutdown(&mut self) {
        if let Err(e) = self.scheduler.shutdown().await {
            tracing::debug!("job scheduler shutdown: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn sched(expr: &str, zone: &str) -> Schedule {
        Schedule::new(expr, zone.parse().unwrap()).unwrap()
    }

    #[test]
    fn next_after_is_strictly_after_and_in_the_zone() {
        let s = sched("0 15 2 * * *", "UTC");
        assert_eq!(
            s.next_after(utc("2026-11-24T10:00:00Z")),
            Some(utc("2026-11-25T02:15:00Z"))
        );
        assert_eq!(
            s.next_after(utc("2026-11-25T02:15:00Z")),
            Some(utc("2026-11-26T02:15:00Z"))
        );
        assert_eq!(
            s.next_after(utc("2026-11-25T02:14:59Z")),
            Some(utc("2026-11-25T02:15:00Z"))
        );
        let ams = sched("0 15 2 * * *", "Europe/Amsterdam");
        assert_eq!(
            ams.next_after(utc("2026-11-24T10:00:00Z")),
            Some(utc("2026-11-25T01:15:00Z"))
        );
        // Summer time: 02:15 CEST is 00:15 UTC.
        assert_eq!(
            ams.next_after(utc("2026-07-01T10:00:00Z")),
            Some(utc("2026-07-02T00:15:00Z"))
        );
    }

    #[test]
    fn next_after_across_dst_changes() {
        let ams = sched("0 15 4 * * *", "Europe/Amsterdam");
        // 2026-03-29: clocks go 02:00 -> 03:00; 04:15 CEST = 02:15 UTC.
        assert_eq!(
            ams.next_after(utc("2026-03-28T12:00:00Z")),
            Some(utc("2026-03-29T02:15:00Z"))
        );
        assert_eq!(
            ams.offset_at(utc("2026-03-28T03:15:00Z")).local_minus_utc(),
            3600
        );
        assert_eq!(
            ams.offset_at(utc("2026-03-29T02:15:00Z")).local_minus_utc(),
            7200
        );
        // 2026-10-25: back to CET.
        assert_eq!(
            ams.next_after(utc("2026-10-24T12:00:00Z")),
            Some(utc("2026-10-25T03:15:00Z"))
        );
    }

    #[test]
    fn every_second_and_weekdays() {
        let s = sched("* * * * * *", "UTC");
        assert_eq!(
            s.next_after(utc("2026-11-24T10:00:00Z")),
            Some(utc("2026-11-24T10:00:01Z"))
        );
        assert_eq!(
            s.period_at(utc("2026-11-24T10:00:00Z")),
            Some(Duration::from_secs(1))
        );
        // 2026-11-27 is a Friday: the next weekday run is Monday.
        let w = sched("0 0 3 * * MON-FRI", "UTC");
        assert_eq!(
            w.next_after(utc("2026-11-27T04:00:00Z")),
            Some(utc("2026-11-30T03:00:00Z"))
        );
    }

    #[test]
    fn catch_up_when_a_tick_was_missed() {
        let s = sched("0 15 2 * * *", "UTC");
        let now = utc("2026-11-25T10:00:00Z");
        assert!(s.needs_catch_up(None, now), "never collected");
        assert!(
            !s.needs_catch_up(Some(utc("2026-11-25T02:20:00Z")), now),
            "today's tick ran"
        );
        assert!(
            s.needs_catch_up(Some(utc("2026-11-24T02:20:00Z")), now),
            "today's tick was missed"
        );
        assert!(!s.needs_catch_up(
            Some(utc("2026-11-24T02:20:00Z")),
            utc("2026-11-25T02:14:00Z")
        ));
        assert!(
            !s.needs_catch_up(Some(utc("2026-11-26T00:00:00Z")), now),
            "clock skew: not due"
        );
    }

    #[test]
    fn period_of_a_daily_schedule_is_a_day_even_across_dst() {
        let s = sched("0 15 2 * * *", "UTC");
        assert_eq!(
            s.period_at(utc("2026-11-25T10:00:00Z")),
            Some(Duration::from_secs(86_400))
        );
        let ams = sched("0 15 4 * * *", "Europe/Amsterdam");
        assert_eq!(
            ams.period_at(utc("2026-03-28T03:00:00Z")),
            Some(Duration::from_secs(23 * 3600))
        );
    }

    #[test]
    fn jitter_stays_below_max_and_spreads() {
        let max = Duration::from_secs(600);
        assert_eq!(jitter(max, 0), Duration::ZERO);
        assert!(jitter(max, u64::MAX) < max);
        assert_eq!(jitter(max, 1 << 63), Duration::from_secs(300));
        assert_eq!(jitter(Duration::ZERO, 12345), Duration::ZERO);
        assert_eq!(
            max_jitter(max, Some(Duration::from_secs(1))),
            Duration::from_millis(500)
        );
        assert_eq!(max_jitter(max, Some(Duration::from_secs(86_400))), max);
        assert_eq!(max_jitter(max, None), max);
        let a = random_u64();
        let b = random_u64();
        assert_ne!(a, b, "two draws differ");
    }

    #[test]
    fn backoff_doubles_caps_and_resets() {
        let mut b = Backoff::new(Duration::from_secs(60), Duration::from_secs(3600));
        let delays: Vec<u64> = (0..8).map(|_| b.record_failure().as_secs()).collect();
        assert_eq!(delays, [60, 120, 240, 480, 960, 1920, 3600, 3600]);
        assert_eq!(b.failures(), 8);
        b.reset();
        assert_eq!(b.failures(), 0);
        assert_eq!(b.record_failure(), Duration::from_secs(60));
        for _ in 0..100 {
            b.record_failure();
        }
        assert_eq!(b.record_failure(), Duration::from_secs(3600));
    }

    #[test]
    fn describe_tick_is_short_for_today() {
        let s = sched("0 15 2 * * *", "Europe/Amsterdam");
        let now = utc("2026-11-24T10:00:00Z");
        assert_eq!(s.describe_tick(utc("2026-11-25T01:15:00Z"), now), "02:15");
        assert_eq!(
            s.describe_tick(utc("2026-11-24T10:00:05Z"), now),
            "11:00:05"
        );
        assert_eq!(
            s.describe_tick(utc("2026-11-27T01:15:00Z"), now),
            "2026-11-27 02:15"
        );
    }

    /// Real time: tokio-cron-scheduler compares against the system clock.
    #[tokio::test]
    async fn cron_ticker_ticks_and_reschedules() {
        let (tx, mut rx) = mpsc::channel(1);
        let mut t = CronTicker::start(sched("* * * * * *", "UTC"), tx)
            .await
            .unwrap();
        tokio::time::timeout(Duration::from_secs(3), rx.recv())
            .await
            .expect("a tick within 3 s")
            .unwrap();
        t.set_schedule(sched("0 0 0 1 1 * 2099", "UTC"))
            .await
            .unwrap();
        t.refresh().await.unwrap();
        assert_eq!(t.schedule().expr(), "0 0 0 1 1 * 2099");
        // A tick of the old job may still be on its way; after that, silence.
        tokio::time::sleep(Duration::from_millis(1200)).await;
        while rx.try_recv().is_ok() {}
        let quiet = tokio::time::timeout(Duration::from_millis(1500), rx.recv()).await;
        assert!(quiet.is_err(), "no tick after rescheduling to 2099");
        t.shutdown().await;
    }

    #[tokio::test(start_paused = true)]
    async fn retry_comes_before_a_distant_tick_but_not_after_a_near_one() {
        let now = Instant::now();
        let tick = now + Duration::from_secs(86_400);
        assert_eq!(
            retry_at(now, Duration::from_secs(60), Some(tick)),
            Some(now + Duration::from_secs(60))
        );
        assert_eq!(
            retry_at(
                now,
                Duration::from_secs(60),
                Some(now + Duration::from_secs(30))
            ),
            None
        );
        assert_eq!(
            retry_at(now, Duration::from_secs(60), None),
            Some(now + Duration::from_secs(60))
        );

        // The wait ends at the retry instant when no tick comes.
        let (_tx, mut rx) = mpsc::channel(1);
        let cancel = CancellationToken::new();
        let t0 = Instant::now();
        let wake = wait_for_wake(&mut rx, Some(t0 + Duration::from_secs(60)), &cancel).await;
        assert_eq!(wake, Wake::Retry);
        assert_eq!(t0.elapsed(), Duration::from_secs(60));
    }

    #[tokio::test(start_paused = true)]
    async fn a_tick_wakes_before_the_retry() {
        let (tx, mut rx) = mpsc::channel(1);
        let cancel = CancellationToken::new();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(5)).await;
            offer_tick(&tx);
            std::future::pending::<()>().await;
        });
        let t0 = Instant::now();
        let wake = wait_for_wake(&mut rx, Some(t0 + Duration::from_secs(60)), &cancel).await;
        assert_eq!(wake, Wake::Tick);
        assert_eq!(t0.elapsed(), Duration::from_secs(5));
    }

    #[tokio::test(start_paused = true)]
    async fn ticks_during_a_long_cycle_do_not_pile_up() {
        let (tx, mut rx) = mpsc::channel(1);
        let cancel = CancellationToken::new();
        // A "cycle" of 10 s while the scheduler ticks every second.
        let ticker = tokio::spawn(async move {
            let mut sent = 0;
            for _ in 0..10 {
                tokio::time::sleep(Duration::from_secs(1)).await;
                sent += u32::from(offer_tick(&tx));
            }
            sent
        });
        tokio::time::sleep(Duration::from_secs(11)).await;
        assert_eq!(ticker.await.unwrap(), 1, "only the first tick found room");
        assert_eq!(wait_for_wake(&mut rx, None, &cancel).await, Wake::Tick);
        // The channel is drained and its sender gone: the loop is told to stop.
        assert_eq!(wait_for_wake(&mut rx, None, &cancel).await, Wake::Stop);
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_interrupts_waits_and_jitter() {
        let (_tx, mut rx) = mpsc::channel(1);
        let cancel = CancellationToken::new();
        let c = cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(3)).await;
            c.cancel();
        });
        let t0 = Instant::now();
        assert!(!sleep_or_cancel(Duration::from_secs(600), &cancel).await);
        assert_eq!(t0.elapsed(), Duration::from_secs(3));
        assert_eq!(wait_for_wake(&mut rx, None, &cancel).await, Wake::Stop);
        assert!(!sleep_or_cancel(Duration::ZERO, &cancel).await);
        assert!(sleep_or_cancel(Duration::ZERO, &CancellationToken::new()).await);
    }
}
