//! Running sacct: its argv, `TZ=UTC` so every printed time is an unambiguous UTC instant,
//! the hints its errors give, and retries with back-off.
//!
//! Starting, timing out and killing the child is [`crate::slurm::run`]'s job, shared with
//! every other SLURM command; this module adds what only sacct needs.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;

use super::fields::FieldLayout;
use crate::slurm::run::{ChunkPool, CommandError, Finished, Hints, SlurmCommand};

/// What sacct's errors tell the admin to do.
const SACCT_HINTS: Hints = Hints {
    not_found: "install the SLURM client tools, or set `sacct = \"/path/to/sacct\"` under [collect] in the config",
    timeout: "raise `sacct_timeout` under [collect], or check slurmdbd",
};

/// How to start sacct: the program, and arguments that go before ours (used by the demo,
/// which runs this binary's own synthetic sacct).
#[derive(Debug, Clone)]
pub struct SacctProgram {
    pub program: PathBuf,
    pub prefix_args: Vec<OsString>,
}

impl SacctProgram {
    /// The configured program, no prefix.
    pub fn new(program: impl Into<PathBuf>) -> Self {
        SacctProgram {
            program: program.into(),
            prefix_args: Vec::new(),
        }
    }

    /// sacct with `args` under `TZ=UTC`, so every printed time is a UTC instant, and without
    /// `SLURM_TIME_FORMAT`, which would change how it prints them.
    pub fn command(&self, args: &[OsString]) -> SlurmCommand {
        SlurmCommand::new(&self.program, SACCT_HINTS)
            .args(&self.prefix_args)
            .args(args)
            .env("TZ", "UTC")
            .env_remove("SLURM_TIME_FORMAT")
    }
}

/// The argv for one date's window `[start, end]` (UTC, since the child runs with `TZ=UTC`),
/// of `cluster` (`--clusters <name>`, sacct's `-M`) or, with `None`, of the local cluster.
pub fn sacct_args(
    layout: &FieldLayout,
    cluster: Option<&str>,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Vec<OsString> {
    let fmt = "%Y-%m-%dT%H:%M:%S";
    let mut args: Vec<OsString> = vec!["--allusers".into()];
    if let Some(c) = cluster {
        args.push("--clusters".into());
        args.push(c.into());
    }
    args.extend([
        "--starttime".into(),
        start.format(fmt).to_string().into(),
        "--endtime".into(),
        end.format(fmt).to_string().into(),
        "--parsable2".into(),
        "--noheader".into(),
        format!("--delimiter={}", layout.delimiter as char).into(),
        format!("--format={}", layout.format_arg()).into(),
    ]);
    args
}

/// Runs sacct once with `args` and returns its whole stdout, killing it after `timeout` or
/// on `cancel`.
pub async fn run_once(
    prog: &SacctProgram,
    args: &[OsString],
    timeout: Duration,
    cancel: &CancellationToken,
) -> Result<Finished, CommandError> {
    prog.command(args).output(timeout, cancel).await
}

/// Runs sacct once with `args`, sending its stdout to `out` in chunks as it prints (see
/// [`SlurmCommand::stream`]); the consumer hands chunks back to `pool`.
pub async fn run_streaming(
    prog: &SacctProgram,
    args: &[OsString],
    timeout: Duration,
    cancel: &CancellationToken,
    out: tokio::sync::mpsc::Sender<Vec<u8>>,
    pool: &ChunkPool,
) -> Result<Finished, CommandError> {
    prog.command(args).stream(timeout, cancel, out, pool).await
}

/// What a retried call needs to know about its errors.
pub trait AttemptError: std::fmt::Display {
    /// Worth another attempt?
    fn is_retryable(&self) -> bool;
    fn is_timeout(&self) -> bool;
    fn is_cancelled(&self) -> bool;
}

impl AttemptError for CommandError {
    /// A missing program or a shutdown is not worth another attempt; anything else (slurmdbd
    /// busy, a timeout) may pass.
    fn is_retryable(&self) -> bool {
        !matches!(
            self,
            CommandError::NotFound { .. } | CommandError::Cancelled
        )
    }
    fn is_timeout(&self) -> bool {
        matches!(self, CommandError::Timeout { .. })
    }
    fn is_cancelled(&self) -> bool {
        matches!(self, CommandError::Cancelled)
    }
}

/// Attempts made and the outcome of a call with retries.
#[derive(Debug)]
pub struct Attempts<T, E = CommandError> {
    pub result: Result<T, E>,
    /// Calls made (1 + retries used).
    pub calls: u32,
    /// Calls that failed, and of those how many timed out.
    pub failures: u32,
    pub timeouts: u32,
    /// Time spent inside the calls over all attempts.
    pub sacct_time: Duration,
}

/// Calls `call` until it succeeds, fails for good, or `retries` retries are used, waiting
/// `delay x 2^attempt` between attempts (cut short by `cancel`).
pub async fn with_retries<T, E, F, Fut>(
    retries: u32,
    delay: Duration,
    cancel: &CancellationToken,
    what: &str,
    mut call: F,
) -> Attempts<T, E>
where
    E: AttemptError + From<Cancelled>,
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
{
    let mut attempts = Attempts {
        result: Err(E::from(Cancelled)),
        calls: 0,
        failures: 0,
        timeouts: 0,
        sacct_time: Duration::ZERO,
    };
    for attempt in 0..=retries {
        attempts.calls += 1;
        let t0 = Instant::now();
        let result = call().await;
        attempts.sacct_time += t0.elapsed();
        match result {
            Ok(run) => {
                attempts.result = Ok(run);
                return attempts;
            }
            Err(err) => {
                if !err.is_cancelled() {
                    attempts.failures += 1;
                }
                if err.is_timeout() {
                    attempts.timeouts += 1;
                }
                let last = attempt == retries || !err.is_retryable();
                if last {
                    attempts.result = Err(err);
                    return attempts;
                }
                let wait = backoff(delay, attempt);
                tracing::warn!(
                    target: "slurm_usage::sacct",
                    date = what,
                    attempt = attempt + 1,
                    retry_in = ?wait,
                    "sacct failed: {err}"
                );
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = cancel.cancelled() => {
                        attempts.result = Err(E::from(Cancelled));
                        return attempts;
                    }
                }
            }
        }
    }
    attempts
}

/// A shutdown cut the work short.
#[derive(Debug, Clone, Copy)]
pub struct Cancelled;

impl From<Cancelled> for CommandError {
    fn from(_: Cancelled) -> Self {
        CommandError::Cancelled
    }
}

/// `delay x 2^attempt`, at most five minutes.
pub fn backoff(delay: Duration, attempt: u32) -> Duration {
    delay
        .saturating_mul(1u32 << attempt.min(16))
        .min(Duration::from_secs(300))
}

/// `sacct --version` (e.g. `slurm-wlm 22.05.8`), or the error.
pub async fn version(
    prog: &SacctProgram,
    timeout: Duration,
    cancel: &CancellationToken,
) -> Result<String, CommandError> {
    let run = run_once(prog, &["--version".into()], timeout, cancel).await?;
    Ok(run.stdout_text().trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    /// A "sacct" that is a shell script.
    fn sh(script: &str) -> SacctProgram {
        SacctProgram {
            program: "/bin/sh".into(),
            prefix_args: vec!["-c".into(), script.into()],
        }
    }

    #[test]
    fn args_are_utc_window_with_unit_separator() {
        let layout = FieldLayout::ours();
        let s = Utc.with_ymd_and_hms(2026, 11, 24, 23, 0, 0).unwrap();
        let e = Utc.with_ymd_and_hms(2026, 11, 25, 23, 0, 0).unwrap();
        let args: Vec<String> = sacct_args(&layout, None, s, e)
            .into_iter()
            .map(|a| a.into_string().unwrap())
            .collect();
        assert_eq!(
            args[..5],
            [
                "--allusers",
                "--starttime",
                "2026-11-24T23:00:00",
                "--endtime",
                "2026-11-25T23:00:00"
            ]
        );
        assert!(args.contains(&"--delimiter=\u{1f}".to_string()));
        assert!(args.last().unwrap().starts_with("--format=JobID,JobIDRaw,"));
        assert!(!args.iter().any(|a| a == "--clusters"));
        let of_beta: Vec<String> = sacct_args(&layout, Some("beta"), s, e)
            .into_iter()
            .map(|a| a.into_string().unwrap())
            .collect();
        assert_eq!(
            of_beta[..4],
            ["--allusers", "--clusters", "beta", "--starttime"]
        );
        assert_eq!(of_beta.len(), args.len() + 2);
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let d = Duration::from_secs(2);
        assert_eq!(backoff(d, 0), Duration::from_secs(2));
        assert_eq!(backoff(d, 1), Duration::from_secs(4));
        assert_eq!(backoff(d, 3), Duration::from_secs(16));
        assert_eq!(backoff(d, 30), Duration::from_secs(300));
    }

    #[tokio::test]
    async fn missing_program_says_how_to_fix_it() {
        let prog = SacctProgram::new("/nonexistent/sacct");
        let err = run_once(
            &prog,
            &[],
            Duration::from_secs(5),
            &CancellationToken::new(),
        )
        .await
        .unwrap_err();
        assert!(matches!(err, CommandError::NotFound { .. }));
        assert!(err.to_string().contains("[collect]"), "{err}");
    }

    /// sacct prints its times in UTC whatever the host's zone.
    #[tokio::test]
    async fn runs_under_utc() {
        let prog = sh("echo \"$TZ\"");
        let run = run_once(
            &prog,
            &[],
            Duration::from_secs(5),
            &CancellationToken::new(),
        )
        .await
        .unwrap();
        assert_eq!(run.stdout_text(), "UTC\n");
    }

    #[tokio::test]
    async fn retries_then_gives_up_with_the_last_error() {
        let prog = sh("exit 3");
        let cancel = CancellationToken::new();
        let a = with_retries(2, Duration::from_millis(10), &cancel, "t", || {
            run_once(&prog, &[], Duration::from_secs(5), &cancel)
        })
        .await;
        assert_eq!(a.calls, 3);
        assert_eq!(a.failures, 3);
        assert!(matches!(a.result, Err(CommandError::Failed { .. })));
    }
}
