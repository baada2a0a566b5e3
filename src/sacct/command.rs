//! Running sacct: argv built in code (never a shell), `TZ=UTC` so every printed time is an
//! unambiguous UTC instant, a timeout that kills the child, and retries with back-off.
//!
//! The child is spawned with `kill_on_drop(true)`: when the timeout or a cancellation drops
//! the future, the process is killed and tokio reaps it, so a hung sacct never outlives the
//! collection that started it.

use std::ffi::OsString;
use std::io::ErrorKind;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tokio::io::AsyncReadExt;
use tokio::process::{Child, Command};
use tokio_util::sync::CancellationToken;

use super::fields::FieldLayout;

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
}

/// Why a sacct call gave no usable output.
#[derive(Debug, thiserror::Error)]
pub enum SacctError {
    #[error("sacct program {program:?} not found (hint: install the SLURM client tools, or set `sacct = \"/path/to/sacct\"` under [collect] in the config)")]
    NotFound { program: PathBuf },
    #[error("failed to start {program:?}: {source}")]
    Spawn {
        program: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{program:?} exited with {status}: {stderr}")]
    Failed {
        program: PathBuf,
        status: ExitStatus,
        stderr: String,
    },
    #[error("{program:?} did not finish within {after:?} and was killed (hint: raise `sacct_timeout` under [collect], or check slurmdbd)")]
    Timeout { program: PathBuf, after: Duration },
    #[error("reading the output of {program:?} failed: {source}")]
    Io {
        program: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cancelled")]
    Cancelled,
    #[error("sacct's output was no longer wanted (its reader stopped)")]
    Abandoned,
}

impl SacctError {
    /// Worth another attempt? A missing program or a shutdown is not.
    pub fn is_retryable(&self) -> bool {
        !matches!(self, SacctError::NotFound { .. } | SacctError::Cancelled)
    }

    /// Short label for metrics and summaries.
    pub fn kind(&self) -> &'static str {
        match self {
            SacctError::NotFound { .. } => "not_found",
            SacctError::Spawn { .. } => "spawn",
            SacctError::Failed { .. } => "failed",
            SacctError::Timeout { .. } => "timeout",
            SacctError::Io { .. } => "io",
            SacctError::Cancelled => "cancelled",
            SacctError::Abandoned => "abandoned",
        }
    }
}

/// The argv for one date's window `[start, end]` (UTC, since the child runs with `TZ=UTC`).
pub fn sacct_args(layout: &FieldLayout, start: DateTime<Utc>, end: DateTime<Utc>) -> Vec<OsString> {
    let fmt = "%Y-%m-%dT%H:%M:%S";
    vec![
        "--allusers".into(),
        "--starttime".into(),
        start.format(fmt).to_string().into(),
        "--endtime".into(),
        end.format(fmt).to_string().into(),
        "--parsable2".into(),
        "--noheader".into(),
        format!("--delimiter={}", layout.delimiter as char).into(),
        format!("--format={}", layout.format_arg()).into(),
    ]
}

/// What one successful call returned.
#[derive(Debug)]
pub struct SacctRun {
    pub stdout: Vec<u8>,
    /// Anything sacct printed on stderr although it succeeded (logged as a warning).
    pub stderr: String,
    pub elapsed: Duration,
}

/// Starts sacct with `args` under `TZ=UTC`, stdout and stderr piped.
fn spawn(prog: &SacctProgram, args: &[OsString]) -> Result<Child, SacctError> {
    let mut cmd = Command::new(&prog.program);
    cmd.args(&prog.prefix_args)
        .args(args)
        .env("TZ", "UTC")
        .env_remove("SLURM_TIME_FORMAT")
        // The daemon's systemd handles are not sacct's business.
        .env_remove("NOTIFY_SOCKET")
        .env_remove("WATCHDOG_USEC")
        .env_remove("WATCHDOG_PID")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own process group, so a timeout can end whatever it started too (see
        // [`GroupKill`]).
        .process_group(0)
        .kill_on_drop(true);
    cmd.spawn().map_err(|source| match source.kind() {
        ErrorKind::NotFound => SacctError::NotFound {
            program: prog.program.clone(),
        },
        _ => SacctError::Spawn {
            program: prog.program.clone(),
            source,
        },
    })
}

/// Runs sacct once with `args`, killing it after `timeout` or on `cancel`.
pub async fn run_once(
    prog: &SacctProgram,
    args: &[OsString],
    timeout: Duration,
    cancel: &CancellationToken,
) -> Result<SacctRun, SacctError> {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<u8>>(4);
    let collect = async move {
        let mut stdout = Vec::new();
        while let Some(chunk) = rx.recv().await {
            stdout.extend_from_slice(&chunk);
        }
        stdout
    };
    let (run, stdout) = tokio::join!(run_streaming(prog, args, timeout, cancel, tx), collect);
    let mut run = run?;
    run.stdout = stdout;
    Ok(run)
}

/// Bytes per chunk handed over while sacct prints.
const CHUNK_BYTES: usize = 1 << 20;

/// Runs sacct once with `args`, sending its stdout to `out` in chunks as it arrives (so a
/// day's output is parsed while sacct still prints it, and never held whole). Kills it
/// after `timeout` or on `cancel`. The returned [`SacctRun`] has an empty `stdout`.
///
/// Sending waits while the receiver is behind, which stalls sacct on a full pipe rather
/// than buffering without bound. When the receiver is gone (its consumer failed), sacct is
/// killed and [`SacctError::Abandoned`] returned: the consumer holds the real error.
pub async fn run_streaming(
    prog: &SacctProgram,
    args: &[OsString],
    timeout: Duration,
    cancel: &CancellationToken,
    out: tokio::sync::mpsc::Sender<Vec<u8>>,
) -> Result<SacctRun, SacctError> {
    let started = Instant::now();
    let mut child = spawn(prog, args)?;
    let mut group = GroupKill(child.id());
    let io_err = |source| SacctError::Io {
        program: prog.program.clone(),
        source,
    };
    let mut stdout = child.stdout.take().expect("stdout is piped");
    let mut stderr = child.stderr.take().expect("stderr is piped");
    let run = async {
        let read_stderr = async {
            let mut buf = Vec::new();
            stderr.read_to_end(&mut buf).await.map(|_| buf)
        };
        let read_stdout = async {
            loop {
                let mut chunk = Vec::with_capacity(CHUNK_BYTES);
                while chunk.len() < CHUNK_BYTES {
                    if stdout.read_buf(&mut chunk).await? == 0 {
                        break;
                    }
                }
                if chunk.is_empty() {
                    return Ok(true);
                }
                if out.send(chunk).await.is_err() {
                    return Ok(false);
                }
            }
        };
        let (wanted, err_bytes) = tokio::try_join!(read_stdout, read_stderr).map_err(io_err)?;
        if !wanted {
            return Err(SacctError::Abandoned);
        }
        let status = child.wait().await.map_err(io_err)?;
        Ok((status, err_bytes))
    };
    let (status, err_bytes) = tokio::select! {
        r = tokio::time::timeout(timeout, run) => match r {
            Ok(r) => r?,
            Err(_) => return Err(SacctError::Timeout { program: prog.program.clone(), after: timeout }),
        },
        _ = cancel.cancelled() => return Err(SacctError::Cancelled),
    };
    // It exited by itself: its process group is its own business.
    group.0 = None;
    let stderr = tail_text(&err_bytes, 4096);
    if !status.success() {
        return Err(SacctError::Failed {
            program: prog.program.clone(),
            status,
            stderr: if stderr.is_empty() {
                "(no stderr)".into()
            } else {
                stderr
            },
        });
    }
    Ok(SacctRun {
        stdout: Vec::new(),
        stderr,
        elapsed: started.elapsed(),
    })
}

/// Kills sacct's whole process group when a call ends early (timeout, shutdown, a failed
/// reader): `kill_on_drop` ends only sacct itself, and a site's wrapper script put in its
/// place may have started programs that would otherwise outlive it. Disarmed once sacct
/// exits by itself. Uses `kill(1)`, as this crate has no unsafe code to call kill(2).
struct GroupKill(Option<u32>);

impl Drop for GroupKill {
    fn drop(&mut self) {
        if let Some(pgid) = self.0.take() {
            let _ = std::process::Command::new("kill")
                .args(["-s", "KILL", "--", &format!("-{pgid}")])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// What a retried call needs to know about its errors.
pub trait AttemptError: std::fmt::Display {
    /// Worth another attempt?
    fn is_retryable(&self) -> bool;
    fn is_timeout(&self) -> bool;
    fn is_cancelled(&self) -> bool;
}

impl AttemptError for SacctError {
    fn is_retryable(&self) -> bool {
        SacctError::is_retryable(self)
    }
    fn is_timeout(&self) -> bool {
        matches!(self, SacctError::Timeout { .. })
    }
    fn is_cancelled(&self) -> bool {
        matches!(self, SacctError::Cancelled)
    }
}

/// Attempts made and the outcome of a call with retries.
#[derive(Debug)]
pub struct Attempts<T, E = SacctError> {
    pub result: Result<T, E>,
    /// Calls made (1 + retries used).
    pub calls: u32,
    /// Calls that failed, and of those how many timed out.
    pub failures: u32,
    pub timeouts: u32,
    /// Time spent inside the calls over all attempts.
    pub sacct_time: Duration,
}

/// Runs sacct, retrying failures up to `retries` times with exponential back-off starting at
/// `delay` (capped at 5 minutes). Every failure is logged with its exit status and stderr.
pub async fn run_with_retries(
    prog: &SacctProgram,
    args: &[OsString],
    timeout: Duration,
    retries: u32,
    delay: Duration,
    cancel: &CancellationToken,
    what: &str,
) -> Attempts<SacctRun> {
    with_retries(retries, delay, cancel, what, || {
        run_once(prog, args, timeout, cancel)
    })
    .await
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

impl From<Cancelled> for SacctError {
    fn from(_: Cancelled) -> Self {
        SacctError::Cancelled
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
) -> Result<String, SacctError> {
    let run = run_once(prog, &["--version".into()], timeout, cancel).await?;
    Ok(String::from_utf8_lossy(&run.stdout).trim().to_string())
}

/// The last `max` bytes of a child's stderr, as text on one line per line.
fn tail_text(bytes: &[u8], max: usize) -> String {
    let start = bytes.len().saturating_sub(max);
    String::from_utf8_lossy(&bytes[start..]).trim().to_string()
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
        let args: Vec<String> = sacct_args(&layout, s, e)
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
        assert!(matches!(err, SacctError::NotFound { .. }));
        assert!(err.to_string().contains("[collect]"), "{err}");
    }

    #[tokio::test]
    async fn failure_keeps_stderr_and_status() {
        let prog = sh("echo 'slurmdbd: connection refused' >&2; exit 1");
        let err = run_once(
            &prog,
            &[],
            Duration::from_secs(5),
            &CancellationToken::new(),
        )
        .await
        .unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("connection refused") && msg.contains("exit status: 1"),
            "{msg}"
        );
    }

    #[tokio::test]
    async fn hanging_child_is_killed_at_the_timeout() {
        let prog = sh("exec sleep 30");
        let t0 = Instant::now();
        let err = run_once(
            &prog,
            &[],
            Duration::from_millis(300),
            &CancellationToken::new(),
        )
        .await
        .unwrap_err();
        assert!(matches!(err, SacctError::Timeout { .. }), "{err}");
        assert!(t0.elapsed() < Duration::from_secs(10));
    }

    /// Processes with `marker` in their command line.
    fn running_with(marker: &str) -> usize {
        std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
            .filter(|c| String::from_utf8_lossy(c).contains(marker))
            .count()
    }

    #[tokio::test]
    async fn a_timeout_also_ends_what_a_wrapper_script_started() {
        // A wrapper that starts a child and waits for it, as a site's sacct script might.
        let marker = format!(
            "{}.{}",
            3000 + std::process::id() % 1000,
            std::process::id()
        );
        let prog = sh(&format!("sleep {marker} & wait"));
        let err = run_once(
            &prog,
            &[],
            Duration::from_millis(300),
            &CancellationToken::new(),
        )
        .await
        .unwrap_err();
        assert!(matches!(err, SacctError::Timeout { .. }), "{err}");
        let deadline = Instant::now() + Duration::from_secs(5);
        while running_with(&format!("sleep\0{marker}")) > 0 {
            assert!(
                Instant::now() < deadline,
                "the wrapper's child outlived the timeout"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    #[tokio::test]
    async fn retries_then_gives_up_with_the_last_error() {
        let prog = sh("exit 3");
        let a = run_with_retries(
            &prog,
            &[],
            Duration::from_secs(5),
            2,
            Duration::from_millis(10),
            &CancellationToken::new(),
            "t",
        )
        .await;
        assert_eq!(a.calls, 3);
        assert_eq!(a.failures, 3);
        assert!(matches!(a.result, Err(SacctError::Failed { .. })));
    }
}
