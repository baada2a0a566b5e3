//! `slurm-usage alerts`: the right people get the right numbers, by a real SMTP server
//! (Python's aiosmtpd, `tests/alerts/smtpd.py`, on 127.0.0.1) or a sendmail program.
//!
//! The archive is built the way a site builds it: fake sacct lines, `collect`. Then:
//! a dry run sends nothing; `--send` mails the wasteful users and the group contact, never
//! the efficient or the excluded user; a temporary refusal and a server that is down leave
//! the mails that went recorded and the rest due; the next run inside the period sends
//! nothing. The HTML part is rendered by headless Chromium.
//!
//! Without aiosmtpd (`pip install aiosmtpd`) or Chromium the tests that need them are
//! skipped, except under `CI=true`, where they fail.

mod util;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use util::{day, line, skip, Env};

const SMTPD: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/alerts/smtpd.py");

/// A running `smtpd.py`; killed (and waited for) on drop.
struct Smtpd {
    child: Child,
}

impl Smtpd {
    /// Starts the server on `port`, writing messages to `out`; `None` (after [`skip`]) when
    /// aiosmtpd is not installed.
    fn start(port: u16, out: &Path, reject: Option<&str>) -> Option<Smtpd> {
        let has = Command::new("python3")
            .args(["-c", "import aiosmtpd"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !has {
            skip("aiosmtpd is not installed (pip install aiosmtpd)");
            return None;
        }
        std::fs::create_dir_all(out).unwrap();
        let mut cmd = Command::new("python3");
        cmd.arg(SMTPD).arg(port.to_string()).arg(out);
        cmd.args(reject);
        let mut child = cmd.stdout(Stdio::piped()).spawn().unwrap();
        let mut first = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        assert_eq!(first.trim(), "ready", "smtpd.py did not start");
        Some(Smtpd { child })
    }
}

impl Drop for Smtpd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A finished job: `cpus` cores for `minutes`, `cpu_used` seconds of CPU, `mem` requested
/// and held, `peak` its `.batch` step's peak, `limit` minutes.
#[allow(clippy::too_many_arguments)]
fn job(
    id: &str,
    user: &str,
    state: &str,
    minutes: i64,
    cpus: i64,
    cpu_used: i64,
    mem: &str,
    peak: &str,
    limit: i64,
) -> Vec<String> {
    let d = day(1);
    let start = format!("{d}T08:00:00");
    let end = (chrono::NaiveDateTime::parse_from_str(&start, "%Y-%m-%dT%H:%M:%S").unwrap()
        + chrono::Duration::minutes(minutes))
    .format("%Y-%m-%dT%H:%M:%S")
    .to_string();
    let secs = (minutes * 60).to_string();
    let cpu = format!(
        "{:02}:{:02}:{:02}",
        cpu_used / 3600,
        cpu_used / 60 % 60,
        cpu_used % 60
    );
    let cpus_s = cpus.to_string();
    let tres = format!("billing={cpus},cpu={cpus},mem={mem},node=1");
    let limit = limit.to_string();
    let batch_tres = format!("cpu={cpu},mem={peak}");
    vec![
        line(&[
            ("JobID", id),
            ("JobIDRaw", id),
            ("User", user),
            ("Account", "research"),
            ("Partition", "cpu"),
            ("State", state),
            ("ExitCode", "0:0"),
            ("Submit", &start),
            ("Eligible", &start),
            ("Start", &start),
            ("End", &end),
            ("ElapsedRaw", &secs),
            ("TotalCPU", &cpu),
            ("AllocCPUS", &cpus_s),
            ("AllocNodes", "1"),
            ("NodeList", "node001"),
            ("ReqMem", mem),
            ("AllocTRES", &tres),
            ("TimelimitRaw", &limit),
            ("JobName", "work"),
            ("SubmitLine", "sbatch --secret-flag work.sh"),
            ("WorkDir", "/home/private/project-x"),
        ]),
        line(&[
            ("JobID", &format!("{id}.batch")),
            ("JobIDRaw", &format!("{id}.batch")),
            ("State", state),
            ("Start", &start),
            ("ElapsedRaw", &secs),
            ("TotalCPU", &cpu),
            ("NTasks", "1"),
            ("TRESUsageInTot", &batch_tres),
        ]),
    ]
}

/// alice (physics): 10 jobs, 8 cores for 2 h at 10% CPU, 64G held, 3G peak: 144 CPU hours
/// and 1,220 GB-hours wasted, `--mem=4G`. bob (physics): efficient. carol: as wasteful as
/// alice, but excluded. dave (no contact): 8 of 10 jobs hit their 60-minute limit.
fn archive(env: &Env) {
    let mut lines = Vec::new();
    for i in 0..10 {
        lines.extend(job(
            &format!("{}", 1000 + i),
            "alice",
            "COMPLETED",
            120,
            8,
            5760,
            "64G",
            "3G",
            240,
        ));
        lines.extend(job(
            &format!("{}", 2000 + i),
            "bob",
            "COMPLETED",
            120,
            4,
            27_360,
            "8G",
            "6G",
            240,
        ));
        lines.extend(job(
            &format!("{}", 3000 + i),
            "carol",
            "COMPLETED",
            120,
            8,
            5760,
            "64G",
            "3G",
            240,
        ));
        let state = if i < 8 { "TIMEOUT" } else { "COMPLETED" };
        lines.extend(job(
            &format!("{}", 4000 + i),
            "dave",
            state,
            60,
            1,
            3600,
            "2G",
            "1G",
            60,
        ));
    }
    env.set_output(day(1), &lines);
    let out = env.run(&["collect", "--days", "1", "--no-summary"]);
    assert!(out.status.success());
}

fn config(env: &Env, delivery: &str) {
    env.write_config(&format!(
        "[groups]\nphysics = [\"alice\", \"bob\", \"carol\"]\n\
[alerts]\n{delivery}\nfrom = \"hpc-support@example.org\"\ndomain = \"example.org\"\nevery = \"7d\"\nexclude = [\"carol\"]\n\
[alerts.addresses]\nalice = \"alice.smith@physics.example.org\"\n\
[alerts.group_contacts]\nphysics = \"pi-physics@example.org\"\n"
    ));
}

fn text(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The messages a server or program received: (recipients, .eml text, plain, html) by name.
fn received(dir: &Path) -> Vec<(String, String, String, String)> {
    let mut names: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    names.retain(|p| p.extension().is_some_and(|e| e == "eml"));
    names.sort();
    names
        .iter()
        .map(|p| {
            let read =
                |ext: &str| std::fs::read_to_string(p.with_extension(ext)).unwrap_or_default();
            (read("rcpt"), read("eml"), read("txt"), read("html"))
        })
        .collect()
}

fn state(env: &Env) -> Vec<String> {
    let p = env.data().join("alerts-state.json");
    let Ok(bytes) = std::fs::read(p) else {
        return Vec::new();
    };
    let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    v["sent"].as_object().unwrap().keys().cloned().collect()
}

#[test]
fn dry_run_then_send_throttle_outage_and_retry() {
    let env = Env::new("");
    archive(&env);
    let port = free_port();
    config(&env, &format!("smtp = \"127.0.0.1:{port}\""));

    // The dry run prints the three mails and sends nothing (no server is even running).
    let dry = env.run(&["alerts"]);
    assert!(dry.status.success());
    let out = text(&dry);
    assert!(
        out.contains("user:alice -> alice.smith@physics.example.org"),
        "{out}"
    );
    assert!(out.contains("user:dave -> dave@example.org"), "{out}");
    assert!(
        out.contains("group:physics -> pi-physics@example.org"),
        "{out}"
    );
    assert!(!out.contains("user:bob") && !out.contains("carol"), "{out}");
    assert!(
        out.contains("3 mails (3 due now") && out.contains("Nothing was sent"),
        "{out}"
    );
    assert!(state(&env).is_empty());

    // The server refuses the group contact for now (451): the users' mails go and are
    // recorded, the summary stays due.
    let mail = env.path().join("mail");
    let Some(server) = Smtpd::start(port, &mail, Some("pi-physics")) else {
        return;
    };
    let first = env.run(&["alerts", "--send"]);
    assert_eq!(first.status.code(), Some(1), "a mail failed");
    assert!(
        text(&first).contains("failed: group:physics"),
        "{}",
        text(&first)
    );
    let got = received(&mail);
    let to: Vec<&str> = got.iter().map(|m| m.0.trim()).collect();
    assert_eq!(to, ["alice.smith@physics.example.org", "dave@example.org"]);
    let (_, eml, alice, alice_html) = &got[0];
    for want in [
        "Hello alice",
        "10 jobs",
        "used 10% of the CPU time",
        "144.0 CPU hours stayed idle",
        "--cpus-per-task=1",
        "asked for 64 GB",
        "peaked at 3.0 GB",
        "1220.0 GB-hours",
        "--mem=4G",
        "e.g. 1000, 1001",
    ] {
        assert!(alice.contains(want), "{want:?} not in:\n{alice}");
    }
    assert!(alice_html.contains("<code>--mem=4G</code>"), "{alice_html}");
    assert!(eml.contains("From: hpc-support@example.org"), "{eml}");
    // Nothing of the submit line or working directory reaches a mail.
    for secret in ["secret-flag", "project-x", "work.sh"] {
        assert!(!eml.contains(secret) && !alice.contains(secret), "{secret}");
    }
    let dave = &got[1].2;
    assert!(
        dave.contains("8 of your 10 finished jobs were stopped at their time limit"),
        "{dave}"
    );
    assert!(
        dave.contains("--time=2:00:00") && dave.contains("8.0 CPU hours"),
        "{dave}"
    );
    assert_eq!(state(&env), ["user:alice", "user:dave"]);

    // The server is down: nobody is due but the group contact, whose mail fails again.
    drop(server);
    let down = env.run(&["alerts", "--send"]);
    assert_eq!(down.status.code(), Some(1));
    let out = text(&down);
    assert!(
        out.contains("not due: user:alice") && out.contains("failed: group:physics"),
        "{out}"
    );
    assert_eq!(
        state(&env),
        ["user:alice", "user:dave"],
        "the record of those sent is kept"
    );

    // Up again: the pending summary goes, and only it.
    let _server = Smtpd::start(port, &mail, None).unwrap();
    let up = env.run(&["alerts", "--send"]);
    assert!(up.status.success(), "{}", text(&up));
    let got = received(&mail);
    assert_eq!(got.len(), 3);
    let summary = &got[2];
    assert_eq!(summary.0.trim(), "pi-physics@example.org");
    let s = &summary.2;
    assert!(s.contains("2 users of physics ran 20 jobs"), "{s}");
    assert!(
        !s.contains("carol") && !s.contains("dave"),
        "only physics, never the excluded: {s}"
    );
    assert!(s.contains("alice") && !s.contains("bob"), "{s}");
    assert!(s.contains("144.0") && s.contains("1220.0"), "{s}");
    assert_eq!(state(&env), ["group:physics", "user:alice", "user:dave"]);

    // Inside the period a second run sends nothing.
    let again = env.run(&["alerts", "--send"]);
    assert!(again.status.success());
    assert!(
        text(&again).contains("alerts: 0 sent, 3 held back"),
        "{}",
        text(&again)
    );
    assert_eq!(received(&mail).len(), 3);
}

/// A sendmail that checks its arguments and writes each mail (and its To:) to `out`.
fn fake_sendmail(env: &Env) -> (PathBuf, PathBuf) {
    let out = env.path().join("sendmail-out");
    std::fs::create_dir_all(&out).unwrap();
    let program = env.path().join("sendmail");
    std::fs::write(
        &program,
        format!(
            "#!/bin/sh\nn=$(date +%s%N)\n[ \"$*\" = \"-t -i\" ] || {{ echo \"bad args: $*\" >&2; exit 64; }}\ncat > {0}/$n.eml\ngrep -m1 '^To:' {0}/$n.eml | sed 's/^To: //' > {0}/$n.rcpt\n",
            out.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755)).unwrap();
    (program, out)
}

#[test]
fn a_sendmail_program_gets_each_mail_on_stdin() {
    let env = Env::new("");
    archive(&env);
    let (program, out) = fake_sendmail(&env);
    config(&env, &format!("sendmail = \"{}\"", program.display()));
    let run = env.run(&["alerts", "--send", "--user", "alice"]);
    assert!(run.status.success(), "{}", text(&run));
    let got = received(&out);
    assert_eq!(got.len(), 1, "only alice's mail (--user), no group summary");
    assert_eq!(got[0].0.trim(), "alice.smith@physics.example.org");
    assert!(
        got[0].1.contains("Subject: Your Slurm jobs"),
        "{}",
        got[0].1
    );
    assert!(got[0].1.contains("text/html"), "{}", got[0].1);
    assert_eq!(state(&env), ["user:alice"]);
}

#[test]
fn the_daemon_sends_on_its_alerts_cron_once_per_period() {
    let env = Env::new("");
    archive(&env);
    let (program, out) = fake_sendmail(&env);
    config(
        &env,
        &format!(
            "sendmail = \"{}\"\ncron = \"* * * * * *\"",
            program.display()
        ),
    );
    let mut d = util::Daemon::start(env.path(), &env.config(), &[]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while received(&out).len() < 3 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(received(&out).len(), 3, "{}", d.log());
    // Ticks every second go on; the throttle holds every later round back.
    std::thread::sleep(std::time::Duration::from_secs(3));
    assert_eq!(received(&out).len(), 3, "{}", d.log());
    assert_eq!(state(&env), ["group:physics", "user:alice", "user:dave"]);
    d.signal("TERM");
    assert_eq!(
        d.wait_exit(std::time::Duration::from_secs(10)).code(),
        Some(0),
        "{}",
        d.log()
    );
    let log = d.log();
    assert!(
        log.contains("alerts: 3 sent") && log.contains("alerts: 0 sent, 3 held back"),
        "{log}"
    );
}

#[test]
fn an_efficient_archive_sends_nothing() {
    let env = Env::new("");
    let mut lines = Vec::new();
    for i in 0..10 {
        lines.extend(job(
            &format!("{}", 2000 + i),
            "bob",
            "COMPLETED",
            120,
            4,
            27_360,
            "8G",
            "6G",
            240,
        ));
    }
    env.set_output(day(1), &lines);
    assert!(env
        .run(&["collect", "--days", "1", "--no-summary"])
        .status
        .success());
    // Nothing is due, so nothing is sent: the unreachable server is never asked.
    config(&env, "smtp = \"127.0.0.1:1\"");
    let run = env.run(&["alerts", "--send"]);
    assert!(run.status.success(), "{}", text(&run));
    assert!(text(&run).contains("alerts: 0 sent"), "{}", text(&run));
}

fn chromium() -> Option<PathBuf> {
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .find_map(|n| {
            Command::new(n)
                .arg("--version")
                .output()
                .ok()
                .filter(|o| o.status.success())
                .map(|_| PathBuf::from(n))
        })
}

#[test]
fn the_html_part_renders_in_chromium() {
    let Some(chrome) = chromium() else {
        skip("chromium is not installed (apt-get install -y chromium)");
        return;
    };
    let env = Env::new("");
    archive(&env);
    let port = free_port();
    config(&env, &format!("smtp = \"127.0.0.1:{port}\""));
    let mail = env.path().join("mail");
    let Some(_server) = Smtpd::start(port, &mail, None) else {
        return;
    };
    assert!(env.run(&["alerts", "--send"]).status.success());
    for (to, _, _, html) in received(&mail) {
        let page = env.path().join("mail.html");
        std::fs::write(&page, &html).unwrap();
        let profile = tempfile::tempdir().unwrap();
        let out = Command::new(&chrome)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--dump-dom",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg(format!("file://{}", page.display()))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let dom = String::from_utf8_lossy(&out.stdout);
        // The browser parsed it into the structure we wrote: nothing left as text.
        if to.contains("pi-physics") {
            assert!(
                dom.contains("<td>alice</td>") && dom.contains("<tfoot>"),
                "{dom}"
            );
        } else {
            assert!(dom.contains("<ol><li><h2>"), "{dom}");
            assert!(dom.contains("<code>"), "{dom}");
        }
        assert!(
            !dom.contains("&lt;p") && !dom.contains("&lt;td"),
            "escaped markup: {dom}"
        );
    }
}
