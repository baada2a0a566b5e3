//! [`MotoServer`]: a real S3 endpoint for the lake tests (moto's `moto_server`, from PyPI
//! `moto[server]`) on 127.0.0.1 with a bucket, killed on drop; the AWS variables that point
//! a child at it; its objects seen through boto3 (`tests/lake/s3ctl.py`); the requests it
//! served (its log); and an outage: [`MotoServer::stop`] then [`MotoServer::restart`] on the
//! same port with the same objects.
//!
//! moto accepts any keys unless told otherwise. [`MotoServer::start_with_auth`] turns its auth
//! on (`INITIAL_NO_AUTH_ACTION_COUNT`): the first three requests, unchecked, create an IAM
//! user allowed everything and an access key for it; every later request must be signed with
//! that key, so other keys get `403 InvalidAccessKeyId` (or `SignatureDoesNotMatch`).
//!
//! Without moto, [`MotoServer::start`] returns `None` after [`super::host::skip`]: the test is
//! skipped, except under `CI=true`, where it fails (the pattern of the Chromium test).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::host::skip;

/// `tests/lake/`: the Python helpers.
pub const LAKE_SCRIPTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/lake");

/// How long moto may take to answer after it was started (its import alone takes ~1 s).
const READY_WITHIN: Duration = Duration::from_secs(30);

/// One S3 object as a listing shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct S3Object {
    pub key: String,
    pub size: u64,
    /// Without the quotes.
    pub etag: String,
    /// RFC 3339; moto keeps whole seconds.
    pub last_modified: String,
}

/// One request moto served, from its log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    /// Percent-decoded, without the query: `/<bucket>/<key>` (path-style addressing).
    pub path: String,
    pub status: u16,
}

/// A running `moto_server` with one bucket; killed (and waited for) on drop.
pub struct MotoServer {
    child: Option<Child>,
    port: u16,
    pub bucket: String,
    key_id: String,
    secret: String,
    auth: bool,
    /// The server's log (one line per request), dumps across restarts.
    dir: tempfile::TempDir,
}

/// How to start moto here: `moto_server` on PATH, else `python3 -m moto.server`; `None`
/// when neither works or boto3 (which the helpers use) is missing.
fn moto_command() -> Option<Command> {
    let python_has = |modules: &str| {
        Command::new("python3")
            .args(["-c", &format!("import {modules}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if !python_has("boto3") {
        return None;
    }
    let on_path = std::env::var_os("PATH").is_some_and(|paths| {
        std::env::split_paths(&paths).any(|d| d.join("moto_server").is_file())
    });
    if on_path {
        Some(Command::new("moto_server"))
    } else if python_has("moto.server, flask") {
        let mut cmd = Command::new("python3");
        cmd.args(["-m", "moto.server"]);
        Some(cmd)
    } else {
        None
    }
}

/// Whether the Python engines of `tests/lake/read_lake.py` (pyarrow, polars) are installed;
/// if not, skips the calling test (fails it under `CI=true`) and returns false.
pub fn have_engines() -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import pyarrow.dataset, polars"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        skip("pyarrow or polars is not installed (hint: pip install pyarrow polars)");
    }
    ok
}

/// A port nobody listens on right now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port on 127.0.0.1")
}

/// Whether something on `port` answers moto's own API with an HTTP status line.
fn answers(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect_timeout(
        &format!("127.0.0.1:{port}").parse().expect("an address"),
        Duration::from_millis(500),
    ) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(b"GET /moto-api/ HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut head = [0u8; 12];
    s.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.") && &head[9..12] == b"200"
}

impl MotoServer {
    /// A server that accepts any keys, with `bucket` created; `None` when moto is not
    /// installed (the test is then skipped, or fails under `CI=true`).
    pub fn start(bucket: &str) -> Option<MotoServer> {
        Self::launch(bucket, false)
    }

    /// A server that checks signatures: only [`MotoServer::key_id`] / [`MotoServer::secret`]
    /// (an IAM user's access key, allowed everything) are accepted.
    pub fn start_with_auth(bucket: &str) -> Option<MotoServer> {
        Self::launch(bucket, true)
    }

    fn launch(bucket: &str, auth: bool) -> Option<MotoServer> {
        if moto_command().is_none() {
            skip("moto is not installed (hint: pip install 'moto[server]' boto3)");
            return None;
        }
        let mut server = MotoServer {
            child: None,
            port: 0,
            bucket: bucket.to_string(),
            key_id: "testing".into(),
            secret: "testing".into(),
            auth,
            dir: tempfile::tempdir().unwrap(),
        };
        // The free port can be taken between the look and moto's bind: try another.
        for attempt in 0.. {
            server.port = free_port();
            match server.spawn() {
                Ok(()) => break,
                Err(e) if attempt < 3 => eprintln!("moto on port {}: {e}; again", server.port),
                Err(e) => panic!("moto does not start: {e}"),
            }
        }
        if auth {
            // The three unchecked requests: the user, its policy, its key.
            let out = server.ctl(&["iam-user", "lake-tests"]);
            let key: serde_json::Value = serde_json::from_slice(&out).unwrap();
            server.key_id = key["id"].as_str().unwrap().to_string();
            server.secret = key["secret"].as_str().unwrap().to_string();
        }
        server.ctl(&["bucket", bucket]);
        Some(server)
    }

    /// Starts moto on `self.port` and waits until it answers.
    fn spawn(&mut self) -> Result<(), String> {
        let mut cmd = moto_command().expect("moto was found before");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log())
            .unwrap();
        cmd.args(["-H", "127.0.0.1", "-p", &self.port.to_string()])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            // Nothing of the caller's AWS setup (a profile, a real endpoint) reaches moto.
            .env_remove("AWS_PROFILE")
            .env_remove("AWS_ENDPOINT_URL")
            // Each request becomes a log line; the first three of an auth server go unchecked.
            .env("PYTHONUNBUFFERED", "1");
        if self.auth {
            cmd.env("INITIAL_NO_AUTH_ACTION_COUNT", "3");
        }
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("cannot start {cmd:?}: {e}"))?;
        let t0 = Instant::now();
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!(
                    "{cmd:?} exited with {status}:\n{}",
                    std::fs::read_to_string(self.log()).unwrap_or_default()
                ));
            }
            if answers(self.port) {
                self.child = Some(child);
                return Ok(());
            }
            if t0.elapsed() > READY_WITHIN {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("{cmd:?} did not answer within {READY_WITHIN:?}"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn log(&self) -> PathBuf {
        self.dir.path().join("moto.log")
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `s3://<bucket>/<prefix>` (`prefix` without slashes at either end; may be empty).
    pub fn url(&self, prefix: &str) -> String {
        format!("s3://{}/{prefix}", self.bucket)
    }

    /// Turns signature checking off again (moto's `/moto-api/reset-auth`). moto 5.2 cannot
    /// check the signature of a request whose key holds `=` (every Hive key): its canonical
    /// request decodes `%3D` where S3's does not, so a test that needs the right key to
    /// succeed after the wrong ones were refused ends with this.
    pub fn stop_checking_keys(&self) {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).expect("moto answers");
        let body = "1e18";
        let req = format!(
            "POST /moto-api/reset-auth HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        s.write_all(req.as_bytes()).expect("request sent");
        let mut head = [0u8; 12];
        s.read_exact(&mut head).expect("a reply");
        assert_eq!(&head[9..12], b"200", "reset-auth refused");
    }

    /// The access key id the server accepts (any when started by [`MotoServer::start`]).
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    pub fn secret(&self) -> &str {
        &self.secret
    }

    /// Points `cmd` at this server with its accepted keys.
    pub fn aws_env<'c>(&self, cmd: &'c mut Command) -> &'c mut Command {
        self.aws_env_with_keys(cmd, &self.key_id, &self.secret)
    }

    /// Points `cmd` at this server with the given keys (wrong ones, for the auth tests).
    pub fn aws_env_with_keys<'c>(
        &self,
        cmd: &'c mut Command,
        key_id: &str,
        secret: &str,
    ) -> &'c mut Command {
        // The caller's own AWS setup must not leak in: a profile, a session token, a config
        // file with another region or endpoint.
        for name in [
            "AWS_PROFILE",
            "AWS_DEFAULT_PROFILE",
            "AWS_SESSION_TOKEN",
            "AWS_SECURITY_TOKEN",
            "AWS_DEFAULT_REGION",
            "AWS_CONFIG_FILE",
            "AWS_SHARED_CREDENTIALS_FILE",
            "AWS_WEB_IDENTITY_TOKEN_FILE",
            "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
            "AWS_CONTAINER_CREDENTIALS_FULL_URI",
            "AWS_ENDPOINT",
            "AWS_VIRTUAL_HOSTED_STYLE_REQUEST",
        ] {
            cmd.env_remove(name);
        }
        cmd.env("AWS_ACCESS_KEY_ID", key_id)
            .env("AWS_SECRET_ACCESS_KEY", secret)
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ENDPOINT_URL", self.endpoint())
            .env("AWS_ALLOW_HTTP", "true")
            // No instance-metadata probe (169.254.169.254) when a key is refused.
            .env("AWS_EC2_METADATA_DISABLED", "true")
    }

    /// Runs `tests/lake/s3ctl.py args…` against this server; panics with its stderr on failure.
    fn ctl(&self, args: &[&str]) -> Vec<u8> {
        let mut cmd = Command::new("python3");
        cmd.arg(Path::new(LAKE_SCRIPTS).join("s3ctl.py")).args(args);
        self.aws_env(&mut cmd);
        let out = cmd
            .output()
            .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
        assert!(
            out.status.success(),
            "s3ctl.py {args:?} failed ({}):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    /// The objects under `prefix` (a key prefix, no leading slash), sorted by key.
    pub fn list(&self, prefix: &str) -> Vec<S3Object> {
        let mut objects: Vec<S3Object> =
            serde_json::from_slice(&self.ctl(&["list", &self.bucket, prefix])).unwrap();
        objects.sort_by(|a, b| a.key.cmp(&b.key));
        objects
    }

    /// The keys under `prefix`, sorted.
    pub fn keys(&self, prefix: &str) -> Vec<String> {
        self.list(prefix).into_iter().map(|o| o.key).collect()
    }

    /// The bytes of `key`, or `None` when there is no such object.
    pub fn get(&self, key: &str) -> Option<Vec<u8>> {
        let file = self.dir.path().join("get");
        let _ = std::fs::remove_file(&file);
        let mut cmd = Command::new("python3");
        cmd.arg(Path::new(LAKE_SCRIPTS).join("s3ctl.py")).args([
            "get",
            &self.bucket,
            key,
            file.to_str().unwrap(),
        ]);
        let out = self.aws_env(&mut cmd).output().unwrap();
        match out.status.code() {
            Some(0) => Some(std::fs::read(file).unwrap()),
            Some(3) => None,
            _ => panic!(
                "s3ctl.py get {key} failed ({}):\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            ),
        }
    }

    /// Every object under `prefix` with its bytes, by key (one download of them all).
    pub fn objects(&self, prefix: &str) -> std::collections::BTreeMap<String, Vec<u8>> {
        let dump = tempfile::tempdir_in(self.dir.path()).unwrap();
        self.ctl(&["dump", &self.bucket, dump.path().to_str().unwrap(), prefix]);
        let mut out = std::collections::BTreeMap::new();
        let mut stack = vec![dump.path().to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap().flatten() {
                let p = e.path();
                if p.is_dir() {
                    stack.push(p);
                } else {
                    let key = p
                        .strip_prefix(dump.path())
                        .unwrap()
                        .to_string_lossy()
                        .into_owned();
                    out.insert(key, std::fs::read(&p).unwrap());
                }
            }
        }
        out
    }

    /// Uploads `bytes` as `key`.
    pub fn put(&self, key: &str, bytes: &[u8]) {
        let file = self.dir.path().join("put");
        std::fs::write(&file, bytes).unwrap();
        self.ctl(&["put", &self.bucket, key, file.to_str().unwrap()]);
    }

    /// Every request served so far, in order (the server's log).
    pub fn requests(&self) -> Vec<Request> {
        let log = std::fs::read_to_string(self.log()).unwrap_or_default();
        log.lines().filter_map(parse_request).collect()
    }

    /// The keys of the successful PUTs so far whose key starts with `prefix`, in order.
    pub fn puts_under(&self, prefix: &str) -> Vec<String> {
        let start = format!("/{}/{prefix}", self.bucket);
        self.requests()
            .into_iter()
            .filter(|r| r.method == "PUT" && r.status < 300 && r.path.starts_with(&start))
            .map(|r| r.path[self.bucket.len() + 2..].to_string())
            .collect()
    }

    /// The endpoint goes down: every object is saved aside, then the server is killed, so
    /// connections to the port are refused until [`MotoServer::restart`].
    pub fn stop(&mut self) {
        assert!(
            !self.auth,
            "a restarted auth server would hand out other keys: not supported"
        );
        let dump = self.dir.path().join("dump");
        let _ = std::fs::remove_dir_all(&dump);
        std::fs::create_dir_all(&dump).unwrap();
        self.ctl(&["dump", &self.bucket, dump.to_str().unwrap()]);
        self.kill();
    }

    /// The endpoint comes back on the same port with the bucket and the objects saved by
    /// [`MotoServer::stop`] (same bytes, so same ETags; new last-modified times).
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "restart() without stop()");
        let t0 = Instant::now();
        // The port was just freed; give a slow close a few tries.
        loop {
            match self.spawn() {
                Ok(()) => break,
                Err(e) if t0.elapsed() < Duration::from_secs(10) => {
                    eprintln!("moto restart on port {}: {e}; again", self.port);
                    std::thread::sleep(Duration::from_millis(200));
                }
                Err(e) => panic!("moto does not restart on port {}: {e}", self.port),
            }
        }
        self.ctl(&["bucket", &self.bucket]);
        let dump = self.dir.path().join("dump");
        self.ctl(&["load", &self.bucket, dump.to_str().unwrap()]);
    }

    /// Whether the server is up (between [`MotoServer::stop`] and [`MotoServer::restart`] not).
    pub fn is_up(&self) -> bool {
        self.child.is_some()
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A werkzeug log line: `127.0.0.1 - - [date] "PUT /bucket/key?x=y HTTP/1.1" 200 -`.
pub fn parse_request(line: &str) -> Option<Request> {
    let (_, rest) = line.split_once("] \"")?;
    let (request, rest) = rest.split_once("\" ")?;
    let mut parts = request.split(' ');
    let method = parts.next()?.to_string();
    let target = parts.next()?;
    let status = rest.split(' ').next()?.parse().ok()?;
    let path = target.split('?').next()?;
    Some(Request {
        method,
        path: percent_decode(path),
        status,
    })
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Whether `bytes` look like a whole Parquet file: `PAR1` at both ends.
pub fn is_whole_parquet(bytes: &[u8]) -> bool {
    bytes.len() >= 12 && bytes.starts_with(b"PAR1") && bytes.ends_with(b"PAR1")
}

/// Runs `tests/lake/read_lake.py <lake>` with `server`'s AWS env (when given) and returns its
/// JSON: per engine (`pyarrow`, `polars`) `rows`, `distinct`, `clusters`, `duplicates`.
pub fn read_lake(lake: &str, server: Option<&MotoServer>) -> serde_json::Value {
    let mut cmd = Command::new("python3");
    cmd.arg(Path::new(LAKE_SCRIPTS).join("read_lake.py"))
        .arg(lake);
    if let Some(s) = server {
        s.aws_env(&mut cmd);
    }
    let out = super::bin::output(&mut cmd);
    assert!(out.status.success(), "read_lake.py {lake} failed");
    serde_json::from_slice(&out.stdout).unwrap()
}
