//! [`Daemon`]: the real `slurm-usage daemon` as systemd runs it, with a real `NOTIFY_SOCKET`
//! whose messages the test reads, instead of a mock of systemd.

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use super::bin::slurm_usage;

/// A running `slurm-usage daemon --config CONFIG`, started as systemd starts it: stdin and
/// stdout null, stderr to a log file, `NOTIFY_SOCKET` a datagram socket that a thread drains
/// all the time (the socket queues only ~10 datagrams, and a daemon whose send blocks on a
/// full queue stalls). Killed when dropped; a panicking test prints its log and messages.
pub struct Daemon {
    pub child: Child,
    messages: mpsc::Receiver<String>,
    stop_reader: Arc<AtomicBool>,
    reader: Option<std::thread::JoinHandle<()>>,
    /// Every notify message taken so far, in order.
    pub seen: Vec<String>,
    log: PathBuf,
}

impl Daemon {
    /// Starts it with its socket and log in `dir`; `env` is added to the environment every
    /// test runs the binary in ([`slurm_usage`]: none of the caller's watchdog, journal or
    /// log-filter variables is passed on).
    pub fn start(dir: &Path, config: &Path, env: &[(&str, &str)]) -> Daemon {
        static STARTED: AtomicUsize = AtomicUsize::new(0);
        let n = STARTED.fetch_add(1, Ordering::Relaxed);
        let sock = dir.join(format!("notify-{n}.sock"));
        let _ = std::fs::remove_file(&sock);
        let socket = UnixDatagram::bind(&sock).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let (tx, messages) = mpsc::channel();
        let stop_reader = Arc::new(AtomicBool::new(false));
        let stop = stop_reader.clone();
        let reader = std::thread::spawn(move || {
            let mut buf = vec![0u8; 4096];
            while !stop.load(Ordering::Relaxed) {
                if let Ok(n) = socket.recv(&mut buf) {
                    let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
                    if tx.send(msg).is_err() {
                        break;
                    }
                }
            }
        });
        let log = dir.join(format!("daemon-{n}.log"));
        let mut cmd = slurm_usage();
        cmd.arg("daemon")
            .arg("--config")
            .arg(config)
            .env("NOTIFY_SOCKET", &sock)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap());
        Daemon {
            child: cmd.spawn().unwrap(),
            messages,
            stop_reader,
            reader: Some(reader),
            seen: Vec::new(),
            log,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Its stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn alive(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// Takes every message sent so far: all that arrive until none has for 100 ms (the
    /// reader thread may not have passed on the last one yet).
    pub fn drain(&mut self) {
        while let Ok(m) = self.messages.recv_timeout(Duration::from_millis(100)) {
            self.seen.push(m);
        }
    }

    /// Takes the messages that arrive within `d`.
    pub fn collect_for(&mut self, d: Duration) -> Vec<String> {
        let start = self.seen.len();
        let deadline = Instant::now() + d;
        while let Ok(m) =
            (self.messages).recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            self.seen.push(m);
        }
        self.seen[start..].to_vec()
    }

    /// Takes messages until one satisfies `pred` (returned); panics after `within`.
    pub fn expect(&mut self, what: &str, within: Duration, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.messages.recv_timeout(left) {
                Ok(m) => {
                    self.seen.push(m.clone());
                    if pred(&m) {
                        return m;
                    }
                }
                Err(_) => panic!(
                    "no {what} within {within:?}; received so far: {:#?}",
                    self.seen
                ),
            }
        }
    }

    /// The text of the next `STATUS=` that starts with `prefix`.
    pub fn expect_status(&mut self, prefix: &str, within: Duration) -> String {
        let msg = self.expect(&format!("STATUS={prefix}..."), within, |m| {
            status_of(m).is_some_and(|s| s.starts_with(prefix))
        });
        status_of(&msg).unwrap().to_string()
    }

    /// Sends `sig` (`TERM`, `HUP`, `KILL`) with kill(1); panics if that fails.
    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.pid().to_string())
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{sig} {} failed", self.pid());
    }

    /// Waits for it to exit; panics after `within`.
    pub fn wait_exit(&mut self, within: Duration) -> ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "daemon still running {within:?} later"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.drain();
            eprintln!(
                "--- daemon {} log ---\n{}\n--- notifications ---\n{:#?}",
                self.pid(),
                self.log(),
                self.seen
            );
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.stop_reader.store(true, Ordering::Relaxed);
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
    }
}

/// The `STATUS=` line of a notify message.
pub fn status_of(msg: &str) -> Option<&str> {
    msg.lines().find_map(|l| l.strip_prefix("STATUS="))
}
