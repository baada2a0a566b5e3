//! The one way the tests start the built `slurm-usage`: [`slurm_usage`] gives a `Command`
//! whose environment is cleared of everything that would make a run depend on the shell, the
//! service manager or the terminal the tests were started from; [`output`] and
//! [`output_within`] run a command and print what it did, so a failing test shows it.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The binary cargo built for these tests.
pub const BIN: &str = env!("CARGO_BIN_EXE_slurm-usage");

/// Variables removed from every run of the binary, each with the reason.
const REMOVED: &[&str] = &[
    // Where the binary looks for a config when no `--config` is given: every test names its
    // config, so a run must never pick up the developer's own file instead.
    "SLURM_USAGE_CONFIG",
    "XDG_CONFIG_HOME",
    "HOME",
    // The log filter: the log lines tests look for are the ones the command line (`-v`) and
    // the config ask for, not whatever the caller's shell set.
    "RUST_LOG",
    // Set when the tests run under systemd (a CI service): the binary would write journald
    // lines (`<3>...`) instead of plain text, and notify or keep alive the tests' service.
    // The daemon harness and the journald test set them again on purpose.
    "JOURNAL_STREAM",
    "NOTIFY_SOCKET",
    "WATCHDOG_USEC",
    "WATCHDOG_PID",
    // The width of the terminal tables: the default width, whatever the caller's terminal.
    "COLUMNS",
    // SMTP credentials of the alert mails: the test servers take mail without them.
    "SLURM_USAGE_SMTP_USER",
    "SLURM_USAGE_SMTP_PASSWORD",
];

/// Variables set for every run of the binary, each with the reason.
const SET: &[(&str, &str)] = &[
    // No escape codes in what tests compare, even when stderr is a terminal.
    ("NO_COLOR", "1"),
    // Local time only matters where a config names no `timezone` (the zone then is the
    // machine's): the same on every machine. sacct is given TZ=UTC by the binary anyway.
    ("TZ", "UTC"),
];

/// `slurm-usage` with the environment every test runs it in (see [`REMOVED`] and [`SET`]);
/// the caller adds arguments, and may set a removed variable again on purpose.
pub fn slurm_usage() -> Command {
    let mut cmd = Command::new(BIN);
    for name in REMOVED {
        cmd.env_remove(name);
    }
    cmd.envs(SET.iter().copied());
    cmd
}

/// Runs `cmd` to the end and prints the command, its status, stdout and stderr (libtest
/// shows them when the test fails).
pub fn output(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
    print(cmd, &out, None);
    out
}

/// Runs `cmd` (stdin null, in a process group of its own) like [`output`]; past `limit` the
/// whole group is killed and the error says so, with what it printed until then. A file that
/// blocks a reader, or a daemon that hangs, then fails the test instead of hanging it.
pub fn output_within(cmd: &mut Command, limit: Duration) -> Result<Output, String> {
    let t0 = Instant::now();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .map_err(|e| format!("cannot start {cmd:?}: {e}"))?;
    // Drained on threads, so a chatty child cannot block on a full pipe.
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            bytes
        })
    };
    let stdout = drain(Box::new(child.stdout.take().expect("stdout is piped")));
    let stderr = drain(Box::new(child.stderr.take().expect("stderr is piped")));
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if t0.elapsed() < limit => std::thread::sleep(Duration::from_millis(10)),
            Ok(None) | Err(_) => {
                let _ = Command::new("kill")
                    .args(["-KILL", "--", &format!("-{}", child.id())])
                    .status();
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
        }
    };
    let (stdout, stderr) = (
        stdout.join().unwrap_or_default(),
        stderr.join().unwrap_or_default(),
    );
    match status {
        Some(status) => {
            let out = Output {
                status,
                stdout,
                stderr,
            };
            print(cmd, &out, Some(t0.elapsed()));
            Ok(out)
        }
        None => Err(format!(
            "{cmd:?} did not finish within {limit:?} and was killed\n--- stdout\n{}\n--- stderr\n{}",
            String::from_utf8_lossy(&stdout),
            String::from_utf8_lossy(&stderr)
        )),
    }
}

/// The command as a shell would show it (`$ slurm-usage --config ... collect`), then its
/// status (and time), stdout and stderr.
fn print(cmd: &Command, out: &Output, took: Option<Duration>) {
    let program = std::path::Path::new(cmd.get_program())
        .file_name()
        .unwrap_or(cmd.get_program())
        .to_string_lossy();
    let args: Vec<_> = cmd.get_args().map(|a| a.to_string_lossy()).collect();
    let took = took.map_or(String::new(), |t| {
        format!(" after {:.2} s", t.as_secs_f64())
    });
    eprintln!(
        "$ {program} {}\nstatus: {}{took}\n--- stdout\n{}\n--- stderr\n{}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
