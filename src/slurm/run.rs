//! The one way this crate runs a SLURM command (sacct, squeue, sinfo, scontrol, sacctmgr):
//! argv built in code (never a shell), no stdin, a timeout or a cancellation that kills the
//! child's whole process group, stderr kept for the error, and one error type whose messages
//! name the program and say what to do.
//!
//! The collector streams sacct's stdout through [`SlurmCommand::stream`]; the command-line
//! views and `test` take it whole with [`SlurmCommand::output_blocking`], which drives the same
//! async code on a current-thread runtime, so the timeout and kill are written once.

use std::ffi::OsStr;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::AsyncReadExt;
use tokio::process::Command;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// How long a quick query (squeue, sinfo, scontrol, sacctmgr, `test`'s sacct calls) may take
/// before it is killed: a down slurmctld makes them wait a long time.
pub const QUERY_TIMEOUT: Duration = Duration::from_secs(15);

/// What the errors of one program tell the admin to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hints {
    /// When the program is not installed (or not where the config says).
    pub not_found: &'static str,
    /// When it hung until the timeout.
    pub timeout: &'static str,
}

/// The hints for the client tools found by [`tool_path`].
pub const CLIENT_HINTS: Hints = Hints {
    not_found: "install the Slurm client tools, or put them on PATH",
    timeout: "is slurmctld up?",
};

/// Why a SLURM command gave no usable output.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error("{program:?} not found (hint: {hint})")]
    NotFound {
        program: PathBuf,
        hint: &'static str,
    },
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
    #[error("{program:?} did not finish within {after:?} and was killed (hint: {hint})")]
    Timeout {
        program: PathBuf,
        after: Duration,
        hint: &'static str,
    },
    #[error("reading the output of {program:?} failed: {source}")]
    Io {
        program: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cancelled")]
    Cancelled,
    #[error("the command's output was no longer wanted (its reader stopped)")]
    Abandoned,
}

/// What a command that exited with status 0 left behind.
#[derive(Debug)]
pub struct Finished {
    /// Its stdout; empty after [`SlurmCommand::stream`], which handed it over as it came.
    pub stdout: Vec<u8>,
    /// Anything it printed on stderr although it succeeded (the last 4 KiB, trimmed).
    pub stderr: String,
    pub elapsed: Duration,
}

impl Finished {
    /// Stdout as text (invalid UTF-8 replaced).
    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
}

/// Bytes per chunk handed over while a command prints.
const CHUNK_BYTES: usize = 1 << 20;

/// Chunk buffers handed back by the consumer for the next reads. A fresh 1 MB buffer per
/// chunk is a fresh mapping whose every page the kernel must fault in and zero (a quarter
/// of the page faults of a collection); a handful of reused ones are faulted in once.
#[derive(Debug, Clone, Default)]
pub struct ChunkPool(Arc<Mutex<Pool>>);

#[derive(Debug, Default)]
struct Pool {
    free: Vec<Vec<u8>>,
    /// Buffers allocated so far.
    made: usize,
}

impl ChunkPool {
    /// An empty buffer: a returned one when there is one, else a new one.
    fn take(&self) -> Vec<u8> {
        let mut pool = self.0.lock().unwrap_or_else(|e| e.into_inner());
        pool.free.pop().unwrap_or_else(|| {
            pool.made += 1;
            Vec::with_capacity(CHUNK_BYTES)
        })
    }

    /// Hands a consumed chunk back for a later read.
    pub fn give(&self, mut chunk: Vec<u8>) {
        chunk.clear();
        let mut pool = self.0.lock().unwrap_or_else(|e| e.into_inner());
        pool.free.push(chunk);
    }

    /// Buffers allocated so far (the chunks in flight at most, when they are handed back).
    pub fn made(&self) -> usize {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).made
    }
}

/// Stderr kept for a message: the end, where a failing tool says why.
const STDERR_TAIL: usize = 4096;

/// One SLURM command line, ready to run: the program, its arguments and environment, and the
/// hints its errors carry.
#[derive(Debug)]
pub struct SlurmCommand {
    cmd: Command,
    program: PathBuf,
    hints: Hints,
}

impl SlurmCommand {
    /// `program` with no arguments yet, stdin closed, stdout and stderr piped, in a process
    /// group of its own so that a timeout can end whatever it started too.
    pub fn new(program: impl Into<PathBuf>, hints: Hints) -> Self {
        let program = program.into();
        let mut cmd = Command::new(&program);
        // The daemon's systemd handles are not the child's business.
        cmd.env_remove("NOTIFY_SOCKET")
            .env_remove("WATCHDOG_USEC")
            .env_remove("WATCHDOG_PID")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        SlurmCommand {
            cmd,
            program,
            hints,
        }
    }

    /// Appends arguments.
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.cmd.args(args);
        self
    }

    /// Sets an environment variable for the child.
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.cmd.env(key, value);
        self
    }

    /// Removes an environment variable from the child's environment.
    pub fn env_remove(mut self, key: &str) -> Self {
        self.cmd.env_remove(key);
        self
    }

    /// Runs the command to the end and returns its whole stdout. Killed after `timeout` or
    /// on `cancel`.
    pub async fn output(
        self,
        timeout: Duration,
        cancel: &CancellationToken,
    ) -> Result<Finished, CommandError> {
        let (tx, mut rx) = mpsc::channel::<Vec<u8>>(4);
        let pool = ChunkPool::default();
        let returned = pool.clone();
        let collect = async move {
            let mut stdout = Vec::new();
            while let Some(chunk) = rx.recv().await {
                stdout.extend_from_slice(&chunk);
                returned.give(chunk);
            }
            stdout
        };
        let (run, stdout) = tokio::join!(self.stream(timeout, cancel, tx, &pool), collect);
        let mut run = run?;
        run.stdout = stdout;
        Ok(run)
    }

    /// [`Self::output`] for synchronous code (the command-line views and `test`): runs it on a
    /// current-thread runtime of its own. Must not be called from inside a tokio runtime.
    pub fn output_blocking(self, timeout: Duration) -> Result<Finished, CommandError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|source| CommandError::Spawn {
                program: self.program.clone(),
                source,
            })?;
        rt.block_on(self.output(timeout, &CancellationToken::new()))
    }

    /// Runs the command, sending its stdout to `out` in chunks as it arrives (so sacct's day
    /// is parsed while sacct still prints it, and never held whole). Killed after `timeout`
    /// or on `cancel`. The returned [`Finished`] has an empty `stdout`.
    ///
    /// Sending waits while the receiver is behind, which stalls the child on a full pipe
    /// rather than buffering without bound. When the receiver is gone (its consumer failed),
    /// the child is killed and [`CommandError::Abandoned`] returned: the consumer holds the
    /// real error.
    pub async fn stream(
        mut self,
        timeout: Duration,
        cancel: &CancellationToken,
        out: mpsc::Sender<Vec<u8>>,
        pool: &ChunkPool,
    ) -> Result<Finished, CommandError> {
        let started = Instant::now();
        let program = self.program;
        let mut child = self.cmd.spawn().map_err(|source| match source.kind() {
            ErrorKind::NotFound => CommandError::NotFound {
                program: program.clone(),
                hint: self.hints.not_found,
            },
            _ => CommandError::Spawn {
                program: program.clone(),
                source,
            },
        })?;
        let mut group = GroupKill(child.id());
        let io_err = |source| CommandError::Io {
            program: program.clone(),
            source,
        };
        let mut stdout = child.stdout.take().expect("stdout is piped");
        let mut stderr = child.stderr.take().expect("stderr is piped");
        let run = async {
            let read_stderr = async {
                let mut buf = Vec::new();
                stderr.read_to_end(&mut buf).await.map(|_| buf)
            };
            let read_stdout = pump(&mut stdout, &out, pool);
            let (wanted, err_bytes) = tokio::try_join!(read_stdout, read_stderr).map_err(io_err)?;
            if !wanted {
                return Err(CommandError::Abandoned);
            }
            let status = child.wait().await.map_err(io_err)?;
            Ok((status, err_bytes))
        };
        let (status, err_bytes) = tokio::select! {
            r = tokio::time::timeout(timeout, run) => match r {
                Ok(r) => r?,
                Err(_) => return Err(CommandError::Timeout {
                    program,
                    after: timeout,
                    hint: self.hints.timeout,
                }),
            },
            _ = cancel.cancelled() => return Err(CommandError::Cancelled),
        };
        // It exited by itself: its process group is its own business.
        group.0 = None;
        let stderr = tail_text(&err_bytes, STDERR_TAIL);
        if !status.success() {
            return Err(CommandError::Failed {
                program,
                status,
                stderr: if stderr.is_empty() {
                    "(no stderr)".into()
                } else {
                    stderr
                },
            });
        }
        Ok(Finished {
            stdout: Vec::new(),
            stderr,
            elapsed: started.elapsed(),
        })
    }
}

/// Sends `stdout` to `out` in chunks of [`CHUNK_BYTES`] (buffers from `pool`) until it ends
/// (`true`) or `out`'s receiver is gone (`false`).
async fn pump(
    stdout: &mut tokio::process::ChildStdout,
    out: &mpsc::Sender<Vec<u8>>,
    pool: &ChunkPool,
) -> std::io::Result<bool> {
    loop {
        let mut chunk = pool.take();
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
}

/// Kills the child's whole process group when a run ends early (timeout, cancellation, a
/// failed reader): `kill_on_drop` ends only the child itself, and a site's wrapper script put
/// in its place may have started programs that would otherwise outlive it. Disarmed once the
/// child exits by itself. Uses `kill(1)`, as this crate has no unsafe code to call kill(2).
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

/// The last `max` bytes of a child's stderr, as text.
fn tail_text(bytes: &[u8], max: usize) -> String {
    let start = bytes.len().saturating_sub(max);
    String::from_utf8_lossy(&bytes[start..]).trim().to_string()
}

/// Where to find a Slurm tool: next to the configured sacct when that is a path (a site with
/// Slurm in /opt/slurm/bin), else by name on PATH.
pub fn tool_path(sacct: &Path, name: &str) -> PathBuf {
    if sacct.components().count() > 1 {
        if let Some(dir) = sacct.parent() {
            let p = dir.join(name);
            if p.is_file() {
                return p;
            }
        }
    }
    PathBuf::from(name)
}

/// Runs a quick query (`sinfo -h -N ...`) from synchronous code with [`CLIENT_HINTS`] and
/// [`QUERY_TIMEOUT`]; returns its stdout as text.
pub fn query(program: &Path, args: &[&str]) -> Result<String, CommandError> {
    SlurmCommand::new(program, CLIENT_HINTS)
        .args(args)
        .output_blocking(QUERY_TIMEOUT)
        .map(|f| f.stdout_text())
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEST_HINTS: Hints = Hints {
        not_found: "set the path",
        timeout: "look at the server",
    };

    /// A command that is a shell script.
    fn sh(script: &str) -> SlurmCommand {
        SlurmCommand::new("/bin/sh", TEST_HINTS).args(["-c", script])
    }

    async fn run(cmd: SlurmCommand, timeout: Duration) -> Result<Finished, CommandError> {
        cmd.output(timeout, &CancellationToken::new()).await
    }

    #[tokio::test]
    async fn missing_program_says_how_to_fix_it() {
        let cmd = SlurmCommand::new("/nonexistent/sacct", TEST_HINTS);
        let err = run(cmd, Duration::from_secs(5)).await.unwrap_err();
        assert!(matches!(err, CommandError::NotFound { .. }));
        assert!(
            err.to_string().ends_with("not found (hint: set the path)"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn failure_keeps_stderr_and_status() {
        let cmd = sh("echo 'slurmdbd: connection refused' >&2; exit 1");
        let err = run(cmd, Duration::from_secs(5)).await.unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("connection refused") && msg.contains("exit status: 1"),
            "{msg}"
        );
    }

    #[tokio::test]
    async fn stdout_and_the_stderr_of_a_success_are_kept() {
        let cmd = sh("echo out; echo warned >&2");
        let f = run(cmd, Duration::from_secs(5)).await.unwrap();
        assert_eq!(f.stdout_text(), "out\n");
        assert_eq!(f.stderr, "warned");
    }

    /// A consumer that hands chunks back keeps the reader at a few buffers, however long
    /// the output.
    #[tokio::test]
    async fn chunk_buffers_are_reused_once_handed_back() {
        let (tx, mut rx) = mpsc::channel::<Vec<u8>>(2);
        let pool = ChunkPool::default();
        let returned = pool.clone();
        let consume = async move {
            let (mut bytes, mut chunks) = (0, 0);
            while let Some(chunk) = rx.recv().await {
                bytes += chunk.len();
                chunks += 1;
                returned.give(chunk);
            }
            (bytes, chunks)
        };
        let cmd = sh("head -c 12000000 /dev/zero");
        let cancel = CancellationToken::new();
        let (run, (bytes, chunks)) = tokio::join!(
            cmd.stream(Duration::from_secs(30), &cancel, tx, &pool),
            consume
        );
        run.unwrap();
        assert_eq!(bytes, 12_000_000);
        assert!(chunks >= 12, "{chunks} chunks");
        // In flight at most: two in the channel, one being consumed, one being filled.
        assert!(
            pool.made() <= 4,
            "{} buffers for {chunks} chunks",
            pool.made()
        );
    }

    #[tokio::test]
    async fn hanging_child_is_killed_at_the_timeout() {
        let t0 = Instant::now();
        let err = run(sh("exec sleep 30"), Duration::from_millis(300))
            .await
            .unwrap_err();
        assert!(matches!(err, CommandError::Timeout { .. }), "{err}");
        assert!(err.to_string().contains("look at the server"), "{err}");
        assert!(t0.elapsed() < Duration::from_secs(10));
    }

    #[tokio::test]
    async fn cancelling_ends_the_run() {
        let cancel = CancellationToken::new();
        cancel.cancel();
        let err = sh("exec sleep 30")
            .output(Duration::from_secs(30), &cancel)
            .await
            .unwrap_err();
        assert!(matches!(err, CommandError::Cancelled), "{err}");
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
        let err = run(
            sh(&format!("sleep {marker} & wait")),
            Duration::from_millis(300),
        )
        .await
        .unwrap_err();
        assert!(matches!(err, CommandError::Timeout { .. }), "{err}");
        let deadline = Instant::now() + Duration::from_secs(5);
        while running_with(&format!("sleep\0{marker}")) > 0 {
            assert!(
                Instant::now() < deadline,
                "the wrapper's child outlived the timeout"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The synchronous entry point gives the same errors, for the tools `current`, `nodes`
    /// and `test` run.
    #[test]
    fn queries_from_synchronous_code() {
        let err = query(Path::new("/nonexistent/sinfo"), &[]).unwrap_err();
        assert!(matches!(err, CommandError::NotFound { .. }), "{err}");
        assert!(err.to_string().contains("put them on PATH"), "{err}");
        let err = query(Path::new("/bin/sh"), &["-c", "echo boom >&2; exit 3"]).unwrap_err();
        assert!(err.to_string().contains("boom"), "{err}");
        assert_eq!(
            query(Path::new("/bin/sh"), &["-c", "echo vm,2"]).unwrap(),
            "vm,2\n"
        );
        let t0 = Instant::now();
        let err = sh("exec sleep 30")
            .output_blocking(Duration::from_millis(200))
            .unwrap_err();
        assert!(matches!(err, CommandError::Timeout { .. }), "{err}");
        assert!(t0.elapsed() < Duration::from_secs(10));
    }

    #[test]
    fn tools_are_found_next_to_a_configured_sacct() {
        let dir = std::env::temp_dir().join(format!("slurm-usage-tool-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("sinfo"), "").unwrap();
        assert_eq!(tool_path(&dir.join("sacct"), "sinfo"), dir.join("sinfo"));
        assert_eq!(
            tool_path(&dir.join("sacct"), "squeue"),
            PathBuf::from("squeue")
        );
        assert_eq!(
            tool_path(Path::new("sacct"), "sinfo"),
            PathBuf::from("sinfo")
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
