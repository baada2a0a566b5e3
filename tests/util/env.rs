//! [`Env`]: a scratch installation for one test (temp dir, data dir, config, and a fake
//! `sacct` whose output per date the test chooses, or makes fail or hang), and [`day`], the
//! dates it collects.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use chrono::{Days, NaiveDate, Utc};

use super::archive::raw_column;
use super::bin::{output, slurm_usage};

/// A scratch installation: data dir, config, fake sacct.
pub struct Env {
    pub dir: tempfile::TempDir,
}

impl Env {
    /// A new env whose config uses `extra` TOML lines under `[collect]`.
    pub fn new(extra_collect: &str) -> Env {
        let dir = tempfile::tempdir().unwrap();
        let env = Env { dir };
        for sub in ["out", "fail", "hang"] {
            std::fs::create_dir_all(env.path().join(sub)).unwrap();
        }
        let fake = env.path().join("sacct");
        std::fs::write(&fake, FAKE_SACCT).unwrap();
        std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
        env.write_config(extra_collect);
        env
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn data(&self) -> PathBuf {
        self.path().join("data")
    }

    pub fn config(&self) -> PathBuf {
        self.path().join("config.toml")
    }

    pub fn write_config(&self, extra_collect: &str) {
        let mut text = format!(
            "data_dir = \"{}\"\ntimezone = \"UTC\"\n[collect]\nsacct = \"{}\"\n",
            self.data().display(),
            self.path().join("sacct").display()
        );
        for (key, value) in [
            ("retries", "0"),
            ("retry_delay", "\"0s\""),
            ("settle", "\"0s\""),
            ("sacct_timeout", "\"20s\""),
        ] {
            if !extra_collect.contains(key) {
                text.push_str(&format!("{key} = {value}\n"));
            }
        }
        text.push_str(extra_collect);
        text.push('\n');
        std::fs::write(self.config(), text).unwrap();
    }

    /// What the fake sacct prints for `date`.
    pub fn set_output(&self, date: NaiveDate, lines: &[String]) {
        let mut text = lines.join("\n");
        if !text.is_empty() {
            text.push('\n');
        }
        std::fs::write(self.path().join("out").join(date.to_string()), text).unwrap();
    }

    /// What the fake sacct prints for `date` of `cluster` (`--clusters cluster`).
    pub fn set_cluster_output(&self, cluster: &str, date: NaiveDate, lines: &[String]) {
        let dir = self.path().join("out").join(cluster);
        std::fs::create_dir_all(&dir).unwrap();
        let mut text = lines.join("\n");
        if !text.is_empty() {
            text.push('\n');
        }
        std::fs::write(dir.join(date.to_string()), text).unwrap();
    }

    /// Makes sacct for `date` of `cluster` fail, or stop failing.
    pub fn set_cluster_failing(&self, cluster: &str, date: NaiveDate, failing: bool) {
        let dir = self.path().join("fail").join(cluster);
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join(date.to_string());
        if failing {
            std::fs::write(p, b"").unwrap();
        } else {
            let _ = std::fs::remove_file(p);
        }
    }

    /// Raw bytes the fake sacct prints for `date`.
    pub fn set_output_bytes(&self, date: NaiveDate, bytes: &[u8]) {
        std::fs::write(self.path().join("out").join(date.to_string()), bytes).unwrap();
    }

    /// Makes sacct for `date` fail (exit 1 with a message on stderr), or stop failing.
    pub fn set_failing(&self, date: NaiveDate, failing: bool) {
        let p = self.path().join("fail").join(date.to_string());
        if failing {
            std::fs::write(p, b"").unwrap();
        } else {
            let _ = std::fs::remove_file(p);
        }
    }

    /// Makes sacct for `date` hang.
    pub fn set_hanging(&self, date: NaiveDate) {
        std::fs::write(self.path().join("hang").join(date.to_string()), b"").unwrap();
    }

    /// The dates sacct was called for, in call order.
    pub fn calls(&self) -> Vec<String> {
        std::fs::read_to_string(self.path().join("calls.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    pub fn clear_calls(&self) {
        let _ = std::fs::remove_file(self.path().join("calls.log"));
    }

    /// Runs the binary with the env's config and `args`.
    pub fn run(&self, args: &[&str]) -> Output {
        output(&mut self.command(args))
    }

    /// The binary with the env's config and `args`, not started: for a caller that adds to
    /// its environment (the lake's AWS variables) or starts it itself.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = slurm_usage();
        cmd.arg("--config").arg(self.config()).args(args);
        cmd
    }

    pub fn processed(&self, date: NaiveDate) -> PathBuf {
        self.data()
            .join("processed")
            .join(format!("{date}.parquet"))
    }

    /// The data dir of `cluster` when `[collect] clusters` lists it.
    pub fn cluster_data(&self, cluster: &str) -> PathBuf {
        self.data().join(format!("cluster={cluster}"))
    }

    /// The jobs of `cluster`'s processed partition of `date`.
    pub fn cluster_jobs(
        &self,
        cluster: &str,
        date: NaiveDate,
    ) -> Vec<slurm_usage::model::ProcessedJob> {
        let zone: slurm_usage::zone::Zone = "UTC".parse().unwrap();
        let path = self
            .cluster_data(cluster)
            .join("processed")
            .join(format!("{date}.parquet"));
        slurm_usage::store::parquet::read_processed(&path, &zone)
            .unwrap()
            .into_inner()
    }

    /// The dates `cluster`'s tracker holds as complete (none without a tracker).
    pub fn cluster_completed(&self, cluster: &str) -> Vec<String> {
        let path = self
            .cluster_data(cluster)
            .join(".date_completion_tracker.json");
        let Ok(bytes) = std::fs::read(path) else {
            return Vec::new();
        };
        let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        v["completed_dates"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect()
    }

    pub fn raw(&self, date: NaiveDate) -> PathBuf {
        self.data().join("raw").join(format!("{date}.parquet"))
    }

    pub fn jobs(&self, date: NaiveDate) -> Vec<slurm_usage::model::ProcessedJob> {
        let zone: slurm_usage::zone::Zone = "UTC".parse().unwrap();
        slurm_usage::store::parquet::read_processed(&self.processed(date), &zone)
            .unwrap()
            .into_inner()
    }

    /// JobIDRaw of every raw row of `date` (`<line>` for verbatim unparsable lines).
    pub fn raw_keys(&self, date: NaiveDate) -> Vec<String> {
        raw_column(&self.raw(date), "JobIDRaw")
            .into_iter()
            .map(|v| v.unwrap_or_else(|| "<line>".into()))
            .collect()
    }

    pub fn tracker(&self) -> serde_json::Value {
        tracker_of(&self.data())
    }

    pub fn completed(&self) -> Vec<String> {
        completed_dates(&self.data())
    }
}

/// The completion tracker of the data dir `data`, as JSON.
pub fn tracker_of(data: &std::path::Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(data.join(".date_completion_tracker.json")).unwrap())
        .unwrap()
}

/// The dates the tracker of the data dir `data` holds as complete, in its order.
pub fn completed_dates(data: &std::path::Path) -> Vec<String> {
    tracker_of(data)["completed_dates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

/// Today in UTC (the tests' configured zone) and `n` days before.
pub fn day(n: u64) -> NaiveDate {
    Utc::now()
        .date_naive()
        .checked_sub_days(Days::new(n))
        .unwrap()
}

/// The fake sacct: records each call's date, then prints `out/<date>` (or fails, or hangs)
/// where `<date>` is the date part of `--starttime`. A call for one cluster
/// (`--clusters NAME`/`-M NAME`) is logged as `NAME/<date>` and answers from `out/NAME/<date>`
/// (fails with `fail/NAME/<date>`, hangs with `hang/NAME/<date>`).
const FAKE_SACCT: &str = r#"#!/bin/bash
dir="$(cd "$(dirname "$0")" && pwd)"
if [[ "$1" == "--version" ]]; then echo "slurm 22.05.8"; exit 0; fi
start=""
cluster=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --starttime) start="$2"; shift 2 ;;
    --clusters|-M) cluster="$2/"; shift 2 ;;
    *) shift ;;
  esac
done
d="$cluster${start%%T*}"
echo "$d" >> "$dir/calls.log"
if [[ -e "$dir/hang/$d" ]]; then exec sleep 60; fi
if [[ -e "$dir/fail/$d" ]]; then echo "sacct: error: Problem talking to the database: Connection refused" >&2; exit 1; fi
if [[ -e "$dir/out/$d" ]]; then cat "$dir/out/$d"; fi
exit 0
"#;
