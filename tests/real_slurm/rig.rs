//! The rig `tests/slurm/cluster.sh` runs: where it lives, how to point a command at it,
//! whether it answers; and running a command against it with a deadline.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::data_dir::work_dir;
use crate::util::{output_within, slurm_usage};

/// The variable that turns these tests on.
pub const GATE: &str = "SLURM_USAGE_REAL_SLURM";

/// Where the rig lives (`$SLURM_RIG_DIR`, its `slurm.conf`) and the mode it runs in.
#[derive(Debug, Clone)]
pub struct Rig {
    pub dir: PathBuf,
    pub conf: PathBuf,
    pub mode: String,
    pub scripts: PathBuf,
}

impl Rig {
    pub fn from_env() -> Rig {
        let conf_env = std::env::var_os("SLURM_CONF").map(PathBuf::from);
        let dir = std::env::var_os("SLURM_RIG_DIR")
            .map(PathBuf::from)
            .or_else(|| {
                conf_env
                    .as_ref()
                    .and_then(|c| c.parent()?.parent().map(Path::to_path_buf))
                    .filter(|d| d.join("etc/mode").exists())
            })
            .unwrap_or_else(|| PathBuf::from("/tmp/slurm-usage-rig"));
        let conf = conf_env.unwrap_or_else(|| dir.join("etc/slurm.conf"));
        let mode = std::fs::read_to_string(dir.join("etc/mode"))
            .map(|m| m.trim().to_string())
            .unwrap_or_else(|_| "linuxproc".into());
        Rig {
            dir,
            conf,
            mode,
            scripts: Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/slurm"),
        }
    }

    /// `program` (a SLURM tool or a script of the rig) pointed at the rig.
    pub fn cmd(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        // a bare name (`sacct`) is looked up in the PATH set here, the rig's bin/ first
        let mut c = Command::new(program);
        c.env("SLURM_CONF", &self.conf)
            .env("SLURM_RIG_DIR", &self.dir)
            .env("PATH", rig_path(&self.dir));
        c
    }

    /// The Slurm release the rig runs (`22.05`, `24.11`), as `cluster.sh` wrote it.
    pub fn version(&self) -> String {
        std::fs::read_to_string(self.dir.join("etc/version"))
            .map(|v| v.trim().to_string())
            .unwrap_or_else(|_| "22.05".into())
    }

    pub fn cgroup(&self) -> bool {
        self.mode == "cgroup"
    }

    /// Fails with the reason (and `cluster.sh status`) when the rig does not answer.
    pub fn check_reachable(&self) -> Result<(), String> {
        let hint = format!(
            "start it with `sudo tests/slurm/cluster.sh start` (SLURM_RIG_DIR={}, SLURM_CONF={})",
            self.dir.display(),
            self.conf.display()
        );
        let status = || {
            run(
                self.cmd(self.scripts.join("cluster.sh")).arg("status"),
                Duration::from_secs(60),
            )
            .map(|o| format!("{}{}", o.stdout, o.stderr))
            .unwrap_or_else(|e| e)
        };
        if !self.conf.is_file() {
            return Err(format!(
                "{GATE}=1 but there is no SLURM config at {}: the cluster is not set up; {hint}",
                self.conf.display()
            ));
        }
        let checks: [(&str, &[&str]); 3] = [
            ("slurmctld (scontrol ping)", &["scontrol", "ping"]),
            (
                "slurmdbd (sacctmgr show cluster)",
                &["sacctmgr", "-n", "-P", "show", "cluster", "format=cluster"],
            ),
            ("sacct", &["sacct", "-n", "-X", "-j", "1", "-o", "JobID"]),
        ];
        for (what, argv) in checks {
            let out = run(self.cmd(argv[0]).args(&argv[1..]), Duration::from_secs(30))
                .map_err(|e| format!("{GATE}=1 but {what} failed: {e}; {hint}\n{}", status()))?;
            if !out.ok() {
                return Err(format!(
                    "{GATE}=1 but the cluster is not reachable: {what} {}; {hint}\ncluster.sh status:\n{}",
                    out.describe(),
                    status()
                ));
            }
        }
        Ok(())
    }
}

/// `slurm-usage` as every test runs it ([`slurm_usage`]), its SLURM tools pointed at `conf`
/// (and, for a Slurm 24.11 rig, found in the rig's `bin/` first).
pub fn slurm_usage_with(conf: &Path) -> Command {
    let mut c = slurm_usage();
    c.env("SLURM_CONF", conf)
        .env("PATH", rig_path(&Rig::from_env().dir));
    c
}

/// `PATH` with the rig's `bin/` first: for Slurm 24.11 `cluster.sh` writes wrappers there
/// that run the Debian 13 tools (for 22.05 it is empty and the host's tools are found).
pub fn rig_path(dir: &Path) -> std::ffi::OsString {
    let mut dirs = vec![dir.join("bin")];
    dirs.extend(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into()),
    ));
    std::env::join_paths(dirs).expect("PATH entries without ':'")
}

/// What a command that finished printed, and how long it took.
#[derive(Debug)]
pub struct Output {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub took: Duration,
}

impl Output {
    pub fn ok(&self) -> bool {
        self.code == Some(0)
    }

    pub fn describe(&self) -> String {
        format!(
            "exited with {:?} after {:.1} s\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.code,
            self.took.as_secs_f64(),
            self.stdout.trim_end(),
            self.stderr.trim_end()
        )
    }
}

/// Runs `cmd` with the tests' shared runner ([`output_within`]: its own process group, the
/// whole group killed past `timeout`, everything it printed shown when a test fails);
/// `SLURM_USAGE_TEST_TRACE` also prints each command with its time as it ends.
pub fn run(cmd: &mut Command, timeout: Duration) -> Result<Output, String> {
    let t0 = Instant::now();
    let result = output_within(cmd, timeout);
    if std::env::var_os("SLURM_USAGE_TEST_TRACE").is_some() {
        note!(
            "[real_slurm] {:6.3} s {:?} {cmd:?}",
            t0.elapsed().as_secs_f64(),
            result.as_ref().ok().map(|o| o.status.code())
        );
    }
    let out = result?;
    Ok(Output {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        took: t0.elapsed(),
    })
}

/// A copy of the rig's slurm.conf (and cgroup.conf) whose slurmdbd port nothing listens on:
/// sacct then fails the way it does when slurmdbd is down.
pub fn broken_slurm_conf(rig: &Rig, name: &str) -> PathBuf {
    let etc = work_dir().join(name);
    std::fs::create_dir_all(&etc).unwrap();
    let conf = std::fs::read_to_string(&rig.conf).expect("slurm.conf");
    let conf: String = conf
        .lines()
        .map(|l| {
            if l.starts_with("AccountingStoragePort=") {
                "AccountingStoragePort=1"
            } else {
                l
            }
        })
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(etc.join("slurm.conf"), conf).unwrap();
    if let Some(dir) = rig.conf.parent() {
        let _ = std::fs::copy(dir.join("cgroup.conf"), etc.join("cgroup.conf"));
    }
    etc.join("slurm.conf")
}
