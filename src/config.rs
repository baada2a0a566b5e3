//! The TOML configuration: where it is searched, what each key means, and how it is validated.
//!
//! Invariants: a loaded [`Config`] is fully validated (known keys only, durations parsed,
//! time zone known, every user in at most one group, group names safe to print and to use in
//! paths). Errors name the file, the line and the key, because an admin edits this file by
//! hand at 2 a.m. and `systemctl reload` must tell them exactly what is wrong.
//!
//! This module is pure: no tokio, no network; it reads one file.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Deserializer};

use crate::zone::Zone;

/// Where the packaged config lives; the last place searched.
pub const SYSTEM_CONFIG: &str = "/etc/slurm-usage/config.toml";

/// Errors from finding, reading or validating a config file. All map to exit code 78.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid config file {path}, {message}")]
    Invalid { path: PathBuf, message: String },
}

/// The whole configuration. Every field has a default, so an empty file is valid.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Root of the archive (`raw/`, `processed/`, tracker). Default `./data` for the CLI.
    pub data_dir: PathBuf,
    /// IANA zone whose calendar days partition the archive. `None`: the system's zone.
    pub timezone: Option<Zone>,
    /// When the daemon collects.
    pub schedule: ScheduleConfig,
    /// How collection talks to sacct.
    pub collect: CollectConfig,
    /// Research group name -> its users. A user in no group is reported as "ungrouped".
    pub groups: BTreeMap<String, Vec<String>>,
    /// Prometheus textfile output.
    pub metrics: MetricsConfig,
    /// Log verbosity.
    pub log: LogConfig,
    /// `[lake]`: a copy of every partition in object storage. `None`: no lake.
    pub lake: Option<LakeConfig>,
    /// `[alerts]`: efficiency mails to users and group contacts. `None`: no mails.
    pub alerts: Option<AlertsConfig>,
    /// Where this config came from (`None`: built-in defaults). Not a TOML key.
    #[serde(skip)]
    pub source: Option<PathBuf>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("./data"),
            timezone: None,
            schedule: ScheduleConfig::default(),
            collect: CollectConfig::default(),
            groups: BTreeMap::new(),
            metrics: MetricsConfig::default(),
            log: LogConfig::default(),
            lake: None,
            alerts: None,
            source: None,
        }
    }
}

/// `[schedule]`: a cron expression with seconds, plus random jitter.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ScheduleConfig {
    /// `sec min hour day-of-month month day-of-week`; default daily at 02:15:00.
    pub cron: String,
    /// A random delay up to this long is added to each tick, so many clusters sharing one
    /// slurmdbd do not all query it at 02:15:00.
    pub jitter: HumanDuration,
}

impl Default for ScheduleConfig {
    fn default() -> Self {
        ScheduleConfig {
            cron: "0 15 2 * * *".to_string(),
            jitter: HumanDuration(Duration::from_secs(600)),
        }
    }
}

/// `[collect]`: how many dates, how hard to push sacct, and when a day counts as final.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct CollectConfig {
    /// The daemon collects today and this many days before it.
    pub lookback_days: u32,
    /// At most this many sacct processes run at once (slurmdbd protection).
    pub max_concurrent_sacct: usize,
    /// The sacct program: a name looked up on PATH, or a path.
    pub sacct: PathBuf,
    /// A sacct call running longer than this is killed and counts as failed.
    pub sacct_timeout: HumanDuration,
    /// Extra attempts after a failed sacct call, with exponential back-off.
    pub retries: u32,
    /// The first back-off delay; it doubles with every retry.
    pub retry_delay: HumanDuration,
    /// Incomplete dates older than this many days are no longer re-queried.
    pub max_recollect_days: u32,
    /// A day is final this long after it ends (late accounting records settle).
    pub settle: HumanDuration,
    /// The clusters to collect, each with its own `sacct -M <name>` calls and its own
    /// `cluster=<name>/` directory in the data dir. Empty: the local cluster only, in the
    /// data dir itself (docs/data-layout.md).
    pub clusters: Vec<String>,
    /// How often the daemon queries its lookback dates whole again; in between its cycles
    /// ask sacct only for the jobs that changed since the last successful cycle
    /// (docs/collection.md, "Incremental cycles").
    pub full_check: FullCheck,
}

/// `[collect] full_check`: when a daemon cycle queries whole days instead of only the jobs
/// that changed since the last successful cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FullCheck {
    /// Every cycle queries whole days (no incremental cycles).
    Always,
    /// Once a day: the first cycle after yesterday has settled (its end plus `settle`).
    Daily,
    /// When the last full check started at least this long ago.
    Every(Duration),
}

impl FullCheck {
    /// Parses `"always"`, `"daily"` or a duration (`"6h"`).
    pub fn parse(s: &str) -> Result<Self, String> {
        match s.trim() {
            "always" => Ok(FullCheck::Always),
            "daily" => Ok(FullCheck::Daily),
            other => HumanDuration::parse(other)
                .map(|d| FullCheck::Every(d.0))
                .map_err(|e| format!("{e} (or \"daily\", \"always\")")),
        }
    }
}

impl fmt::Display for FullCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FullCheck::Always => write!(f, "always"),
            FullCheck::Daily => write!(f, "daily"),
            FullCheck::Every(d) => write!(f, "{}", HumanDuration(*d)),
        }
    }
}

impl<'de> Deserialize<'de> for FullCheck {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        FullCheck::parse(&s).map_err(serde::de::Error::custom)
    }
}

impl Default for CollectConfig {
    fn default() -> Self {
        CollectConfig {
            lookback_days: 2,
            max_concurrent_sacct: 4,
            sacct: PathBuf::from("sacct"),
            sacct_timeout: HumanDuration(Duration::from_secs(600)),
            retries: 3,
            retry_delay: HumanDuration(Duration::from_secs(2)),
            max_recollect_days: 60,
            settle: HumanDuration(Duration::from_secs(3600)),
            clusters: Vec::new(),
            full_check: FullCheck::Daily,
        }
    }
}

/// `[metrics]`: optional node_exporter textfile.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Path of the `.prom` file written after each daemon cycle; off when unset.
    pub textfile: Option<PathBuf>,
}

/// `[lake]`: where the copy of the archive goes (`docs/lake.md`). Credentials never come
/// from here: they come from the AWS environment and files, so the config can stay 0644.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LakeConfig {
    /// `s3://bucket/prefix` or `file:///srv/lake`.
    pub url: String,
    /// The lake's `cluster=` partition. `None`: the `cluster` column of the archive's rows.
    #[serde(default)]
    pub cluster: Option<String>,
    /// How long this writer's lease on its cluster's prefix lasts without a renewal; every
    /// upload round renews it. Another head node may take the prefix over only after it.
    #[serde(default = "default_lease_ttl")]
    pub lease_ttl: HumanDuration,
    /// Raw sacct fields left out of the lake's copies (and their processed equivalents).
    #[serde(default = "crate::lake::privacy::default_drop_fields")]
    pub drop_fields: Vec<String>,
    /// Names replaced by keyed pseudonyms in the lake's copies: `user`, `account`, `group`.
    #[serde(default)]
    pub pseudonymise: Vec<String>,
    /// The pseudonym key (hex, 0600), created on first use.
    #[serde(default = "crate::lake::privacy::default_key_file")]
    pub pseudonym_key_file: PathBuf,
}

fn default_lease_ttl() -> HumanDuration {
    HumanDuration(Duration::from_secs(6 * 3600))
}

/// `[alerts]`: efficiency mails (`docs/alerts.md`). SMTP credentials never come from here:
/// they come from `SLURM_USAGE_SMTP_USER` and `SLURM_USAGE_SMTP_PASSWORD`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AlertsConfig {
    /// `host[:port]` of the SMTP server (port 25 when left out); STARTTLS when it offers it.
    #[serde(default)]
    pub smtp: Option<String>,
    /// A sendmail program, run as `sendmail -t -i` with the mail on stdin (instead of `smtp`).
    #[serde(default)]
    pub sendmail: Option<PathBuf>,
    /// The sender, e.g. `hpc-support@example.org`.
    pub from: String,
    /// A user's address is `<user>@<domain>` unless `[alerts.addresses]` names one.
    pub domain: String,
    /// At most one mail per person in this period.
    #[serde(default = "default_alerts_every")]
    pub every: HumanDuration,
    /// When the daemon sends (a `[schedule]`-style cron with seconds). `None`: only by hand.
    #[serde(default)]
    pub cron: Option<String>,
    /// The window judged: today and this many days before it (`--days` overrides it).
    #[serde(default = "default_alerts_days")]
    pub days: u32,
    /// Users who never get a mail and are left out of their group's summary.
    #[serde(default)]
    pub exclude: Vec<String>,
    /// User -> address, where `<user>@<domain>` is wrong.
    #[serde(default)]
    pub addresses: BTreeMap<String, String>,
    /// Research group (`[groups]`) -> the address that gets the group's summary.
    #[serde(default)]
    pub group_contacts: BTreeMap<String, String>,
    /// The rules' thresholds.
    #[serde(default)]
    pub rules: AlertRules,
}

fn default_alerts_every() -> HumanDuration {
    HumanDuration(Duration::from_secs(7 * 86_400))
}

fn default_alerts_days() -> u32 {
    7
}

/// `[alerts.rules]`: when a rule speaks up. Each rule judges a person's finished jobs of the
/// window and stays silent with fewer than its minimum of jobs (`docs/alerts.md`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AlertRules {
    /// The fewest jobs a rule judges (CPU, memory, killed jobs).
    pub min_jobs: usize,
    /// Low CPU efficiency: the mean `cpu_efficiency` of COMPLETED jobs below this (percent) ...
    pub cpu_efficiency_below: f64,
    /// ... and at least this many CPU hours wasted.
    pub min_cpu_hours_wasted: f64,
    /// Memory: the suggested `--mem` is the 95th percentile peak plus this fraction ...
    pub memory_margin: f64,
    /// ... and a job is flagged when it held at least this many times the suggestion ...
    pub memory_factor: f64,
    /// ... and the flagged jobs wasted at least this many GB-hours.
    pub min_memory_gb_hours_wasted: f64,
    /// TIMEOUT or OUT_OF_MEMORY: at least this fraction of the finished jobs (and `min_jobs`).
    pub killed_fraction: f64,
    /// Short jobs: ran less than this ...
    pub short_job: HumanDuration,
    /// ... at least this many of them ...
    pub short_min_jobs: usize,
    /// ... and at least this fraction of the finished jobs.
    pub short_fraction: f64,
    /// Idle GPUs: COMPLETED GPU jobs with measured utilisation kept their GPUs busy less than
    /// this (percent, weighted by GPU hours) ...
    pub gpu_utilization_below: f64,
    /// ... and at least this many GPU hours stayed idle.
    pub min_gpu_hours_wasted: f64,
}

impl Default for AlertRules {
    fn default() -> Self {
        AlertRules {
            min_jobs: 5,
            cpu_efficiency_below: 50.0,
            min_cpu_hours_wasted: 10.0,
            memory_margin: 0.2,
            memory_factor: 2.0,
            min_memory_gb_hours_wasted: 20.0,
            killed_fraction: 0.2,
            short_job: HumanDuration(Duration::from_secs(60)),
            short_min_jobs: 20,
            short_fraction: 0.5,
            gpu_utilization_below: 25.0,
            min_gpu_hours_wasted: 4.0,
        }
    }
}

/// `[log]`
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `error`, `warn`, `info`, `debug` or `trace`; `RUST_LOG` overrides it.
    pub level: LogLevel,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: LogLevel("info".to_string()),
        }
    }
}

/// A validated log level name.
#[derive(Debug, Clone, PartialEq)]
pub struct LogLevel(pub String);

impl<'de> Deserialize<'de> for LogLevel {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        match s.to_ascii_lowercase().as_str() {
            l @ ("error" | "warn" | "info" | "debug" | "trace") => Ok(LogLevel(l.to_string())),
            _ => Err(serde::de::Error::custom(format!(
                "unknown log level {s:?}, expected one of error, warn, info, debug, trace"
            ))),
        }
    }
}

/// A duration written as `"30s"`, `"10m"`, `"1h"`, `"2d"` or a combination like `"1h30m"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct HumanDuration(pub Duration);

impl HumanDuration {
    /// Parses `"90s"`, `"10m"`, `"1h30m"`, `"2d"`, `"0s"`; a bare number is rejected so that
    /// nobody has to guess the unit.
    pub fn parse(s: &str) -> Result<Self, String> {
        let text = s.trim();
        if text.is_empty() {
            return Err("empty duration (hint: write e.g. \"30s\", \"10m\", \"1h\")".into());
        }
        let mut total: u64 = 0;
        let mut digits = String::new();
        for c in text.chars() {
            if c.is_ascii_digit() {
                digits.push(c);
                continue;
            }
            let unit = match c {
                's' => 1,
                'm' => 60,
                'h' => 3600,
                'd' => 86_400,
                _ => {
                    return Err(format!(
                    "invalid duration {s:?}: unknown unit {c:?} (use s, m, h or d, e.g. \"10m\")"
                ))
                }
            };
            let n: u64 = digits
                .parse()
                .map_err(|_| format!("invalid duration {s:?}: a number must precede {c:?}"))?;
            total = n
                .checked_mul(unit)
                .and_then(|v| total.checked_add(v))
                .ok_or_else(|| format!("duration {s:?} is too large"))?;
            digits.clear();
        }
        if !digits.is_empty() {
            return Err(format!(
                "invalid duration {s:?}: missing unit after {digits} (use s, m, h or d, e.g. \"{digits}s\")"
            ));
        }
        Ok(HumanDuration(Duration::from_secs(total)))
    }
}

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.0.as_secs();
        if s == 0 {
            return write!(f, "0s");
        }
        let (d, h, m, sec) = (s / 86_400, s / 3600 % 24, s / 60 % 60, s % 60);
        for (v, u) in [(d, "d"), (h, "h"), (m, "m"), (sec, "s")] {
            if v > 0 {
                write!(f, "{v}{u}")?;
            }
        }
        Ok(())
    }
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        HumanDuration::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// Where a command's config comes from: the file (`--config`, `$SLURM_USAGE_CONFIG`, or the
/// search path) and the `--data-dir` override. Every command and the daemon's reload load
/// through [`ConfigSource::load`], so the override is applied in one place.
#[derive(Debug, Clone, Default)]
pub struct ConfigSource {
    /// The file given; `None`: the search path (searched again on every load).
    pub file: Option<PathBuf>,
    /// `--data-dir`: replaces the file's `data_dir`, also after a reload.
    pub data_dir: Option<PathBuf>,
}

impl ConfigSource {
    /// Loads and validates the config, with the override applied.
    pub fn load(&self) -> Result<Config, ConfigError> {
        let mut config = Config::discover(self.file.as_deref())?;
        if let Some(dir) = &self.data_dir {
            config.data_dir = dir.clone();
        }
        Ok(config)
    }

    /// The data dir to use when the config cannot be loaded (`test` still checks it).
    pub fn data_dir_without_config(&self) -> PathBuf {
        self.data_dir
            .clone()
            .unwrap_or_else(|| Config::default().data_dir)
    }
}

impl Config {
    /// Finds the config file by the documented search order and loads it; `None` found means
    /// built-in defaults. `explicit` is `--config` or `$SLURM_USAGE_CONFIG` (clap merges them):
    /// a missing explicit file is an error, a missing searched file is not.
    pub fn discover(explicit: Option<&Path>) -> Result<Config, ConfigError> {
        if let Some(path) = explicit {
            return Config::load(path);
        }
        for path in search_path() {
            if path.is_file() {
                return Config::load(&path);
            }
        }
        Ok(Config::default())
    }

    /// Reads and validates one file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let mut config = Config::from_toml(&text).map_err(|message| ConfigError::Invalid {
            path: path.to_path_buf(),
            message,
        })?;
        config.source = Some(path.to_path_buf());
        Ok(config)
    }

    /// Parses and validates TOML text. The error names the line and the key.
    pub fn from_toml(text: &str) -> Result<Config, String> {
        let config: Config = toml::from_str(text).map_err(|e| describe_toml_error(text, &e))?;
        config.validate(text)?;
        Ok(config)
    }

    /// Checks what serde cannot: cross-field rules and value ranges.
    fn validate(&self, text: &str) -> Result<(), String> {
        let at = |key: &str| match line_of(text, key) {
            Some(l) => format!("line {l}"),
            None => "default value".to_string(),
        };
        if self.collect.max_concurrent_sacct == 0 || self.collect.max_concurrent_sacct > 64 {
            return Err(format!(
                "{}: [collect] max_concurrent_sacct = {} must be between 1 and 64",
                at("max_concurrent_sacct"),
                self.collect.max_concurrent_sacct
            ));
        }
        for (i, c) in self.collect.clusters.iter().enumerate() {
            if !valid_name(c) {
                return Err(format!(
                    "{}: [collect] clusters: {c:?} may only hold letters, digits, '.', '_' and '-'",
                    at("clusters")
                ));
            }
            if self.collect.clusters[..i].contains(c) {
                return Err(format!(
                    "{}: [collect] clusters: {c:?} is listed twice",
                    at("clusters")
                ));
            }
        }
        if self.collect.sacct_timeout.0 < Duration::from_secs(1) {
            return Err(format!(
                "{}: [collect] sacct_timeout must be at least \"1s\"",
                at("sacct_timeout")
            ));
        }
        if self.collect.full_check == FullCheck::Every(Duration::ZERO) {
            return Err(format!(
                "{}: [collect] full_check = \"0s\" would never be due (hint: \"always\" queries whole days every cycle)",
                at("full_check")
            ));
        }
        if self.collect.retries > 20 {
            return Err(format!(
                "{}: [collect] retries = {} is more than 20",
                at("retries"),
                self.collect.retries
            ));
        }
        if self.collect.sacct.as_os_str().is_empty() {
            return Err(format!(
                "{}: [collect] sacct must not be empty",
                at("sacct")
            ));
        }
        if self.data_dir.as_os_str().is_empty() {
            return Err(format!("{}: data_dir must not be empty", at("data_dir")));
        }
        // Parsed exactly as the daemon's scheduler parses it, so `config check` and a
        // reload reject what the daemon could not run.
        match parse_cron(&self.schedule.cron) {
            Err(e) => {
                return Err(format!(
                    "{}: [schedule] cron = {:?} is not a valid cron expression: {e} \
                     (hint: 6 fields, sec min hour day-of-month month day-of-week, e.g. \"0 15 2 * * *\")",
                    at("cron"),
                    self.schedule.cron
                ))
            }
            Ok(cron) if cron.find_next_occurrence(&chrono::Utc::now(), false).is_err() => {
                return Err(format!(
                    "{}: [schedule] cron = {:?} never matches a future time",
                    at("cron"),
                    self.schedule.cron
                ))
            }
            Ok(_) => {}
        }
        if let Some(lake) = &self.lake {
            if let Err(e) = crate::lake::url::LakeUrl::parse(&lake.url) {
                return Err(format!("{}: [lake] url = {:?}: {e}", at("url"), lake.url));
            }
            if let Some(c) = &lake.cluster {
                if !self.collect.clusters.is_empty() {
                    return Err(format!(
                        "{}: [lake] cluster {c:?} cannot be set with [collect] clusters: each listed cluster uploads under its own name (hint: remove it)",
                        at("cluster")
                    ));
                }
                if !valid_name(c) {
                    return Err(format!(
                        "{}: [lake] cluster {c:?} may only hold letters, digits, '.', '_' and '-'",
                        at("cluster")
                    ));
                }
            }
            use crate::lake::privacy::{KEPT, PSEUDONYMS};
            use crate::sacct::fields::SACCT_FIELDS;
            for f in &lake.drop_fields {
                if !SACCT_FIELDS.contains(&f.as_str()) {
                    return Err(format!(
                        "{}: [lake] drop_fields: {f:?} is not a sacct field we archive (names are sacct's, e.g. \"SubmitLine\", \"WorkDir\", \"Comment\", \"JobName\")",
                        at("drop_fields")
                    ));
                }
                if KEPT.contains(&f.as_str()) {
                    return Err(format!(
                        "{}: [lake] drop_fields: {f:?} identifies the rows and cannot be dropped",
                        at("drop_fields")
                    ));
                }
            }
            for p in &lake.pseudonymise {
                if !PSEUDONYMS.iter().any(|(n, _, _)| n == p) {
                    return Err(format!(
                        "{}: [lake] pseudonymise: {p:?} is not one of \"user\", \"account\", \"group\"",
                        at("pseudonymise")
                    ));
                }
            }
            if lake.lease_ttl.0.is_zero() {
                return Err(format!(
                    "{}: [lake] lease_ttl must be more than \"0s\" (hint: longer than the time between cycles, e.g. \"6h\")",
                    at("lease_ttl")
                ));
            }
        }
        if let Some(alerts) = &self.alerts {
            alerts.validate(text)?;
        }
        let mut owner: BTreeMap<&str, &str> = BTreeMap::new();
        for (group, users) in &self.groups {
            if !valid_name(group) {
                return Err(format!(
                    "{}: [groups] name {group:?} may only hold letters, digits, '.', '_' and '-'",
                    at(group)
                ));
            }
            for user in users {
                if !valid_name(user) {
                    return Err(format!(
                        "{}: [groups] {group}: user name {user:?} may only hold letters, digits, '.', '_' and '-'",
                        at(group)
                    ));
                }
                if let Some(first) = owner.insert(user, group) {
                    return Err(format!(
                        "{}: [groups] user {user:?} is in both {first:?} and {group:?}; a user belongs to one group",
                        at(group)
                    ));
                }
            }
        }
        Ok(())
    }

    /// The zone whose calendar days partition the archive.
    pub fn zone(&self) -> Zone {
        self.timezone.clone().unwrap_or_default()
    }

    /// The research group of `user`, or `"ungrouped"`.
    pub fn group_of(&self, user: &str) -> &str {
        self.groups
            .iter()
            .find(|(_, users)| users.iter().any(|u| u == user))
            .map(|(g, _)| g.as_str())
            .unwrap_or("ungrouped")
    }
}

impl AlertsConfig {
    /// The `[alerts]` rules serde cannot check; errors name the line in `[alerts]`.
    fn validate(&self, text: &str) -> Result<(), String> {
        let at = |key: &str| match line_in_section(text, "alerts", key) {
            Some(l) => format!("line {l}"),
            None => "default value".to_string(),
        };
        let section = line_in_section(text, "alerts", "")
            .map_or_else(|| "[alerts]".to_string(), |l| format!("line {l}"));
        match (&self.smtp, &self.sendmail) {
            (Some(_), Some(_)) => {
                return Err(format!(
                    "{}: [alerts] has both smtp and sendmail; pick one",
                    at("sendmail")
                ))
            }
            (None, None) => {
                return Err(format!(
                    "{section}: [alerts] needs smtp = \"host:port\" or sendmail = \"/usr/sbin/sendmail\""
                ))
            }
            _ => {}
        }
        if let Some(smtp) = &self.smtp {
            if let Err(e) = smtp_host_port(smtp) {
                return Err(format!("{}: [alerts] smtp = {smtp:?}: {e}", at("smtp")));
            }
        }
        if self
            .sendmail
            .as_ref()
            .is_some_and(|p| p.as_os_str().is_empty())
        {
            return Err(format!(
                "{}: [alerts] sendmail must not be empty",
                at("sendmail")
            ));
        }
        if !plausible_address(&self.from) {
            return Err(format!(
                "{}: [alerts] from = {:?} is not a mail address (hint: e.g. \"hpc-support@example.org\")",
                at("from"),
                self.from
            ));
        }
        if self.domain.is_empty() || self.domain.contains(['@', ' ', '<', '>']) {
            return Err(format!(
                "{}: [alerts] domain = {:?} is not a mail domain (hint: e.g. \"example.org\")",
                at("domain"),
                self.domain
            ));
        }
        if self.every.0.is_zero() {
            return Err(format!(
                "{}: [alerts] every must be more than \"0s\" (hint: e.g. \"7d\")",
                at("every")
            ));
        }
        if let Some(cron) = &self.cron {
            if let Err(e) = parse_cron(cron) {
                return Err(format!(
                    "{}: [alerts] cron = {cron:?} is not a valid cron expression: {e} \
                     (hint: 6 fields, sec min hour day-of-month month day-of-week, e.g. \"0 0 8 * * Mon\")",
                    at("cron")
                ));
            }
        }
        if self.days > 366 {
            return Err(format!(
                "{}: [alerts] days = {} is more than 366",
                at("days"),
                self.days
            ));
        }
        for (user, address) in &self.addresses {
            if !plausible_address(address) {
                return Err(format!(
                    "{}: [alerts.addresses] {user} = {address:?} is not a mail address",
                    at(user)
                ));
            }
        }
        for (group, address) in &self.group_contacts {
            if !plausible_address(address) {
                return Err(format!(
                    "{}: [alerts.group_contacts] {group} = {address:?} is not a mail address",
                    at(group)
                ));
            }
        }
        let r = &self.rules;
        for (key, v, lo, hi) in [
            ("cpu_efficiency_below", r.cpu_efficiency_below, 0.0, 100.0),
            ("gpu_utilization_below", r.gpu_utilization_below, 0.0, 100.0),
            (
                "min_gpu_hours_wasted",
                r.min_gpu_hours_wasted,
                0.0,
                f64::MAX,
            ),
            ("memory_margin", r.memory_margin, 0.0, 10.0),
            ("memory_factor", r.memory_factor, 1.0, 1000.0),
            ("killed_fraction", r.killed_fraction, 0.0, 1.0),
            ("short_fraction", r.short_fraction, 0.0, 1.0),
            (
                "min_cpu_hours_wasted",
                r.min_cpu_hours_wasted,
                0.0,
                f64::MAX,
            ),
            (
                "min_memory_gb_hours_wasted",
                r.min_memory_gb_hours_wasted,
                0.0,
                f64::MAX,
            ),
        ] {
            if !(lo..=hi).contains(&v) {
                return Err(format!(
                    "{}: [alerts.rules] {key} = {v} must be between {lo} and {hi}",
                    at(key)
                ));
            }
        }
        if r.min_jobs == 0 || r.short_min_jobs == 0 {
            return Err(format!(
                "{}: [alerts.rules] min_jobs and short_min_jobs must be at least 1",
                at(if r.min_jobs == 0 {
                    "min_jobs"
                } else {
                    "short_min_jobs"
                })
            ));
        }
        Ok(())
    }

    /// Where `user`'s mail goes: `[alerts.addresses]`, else `<user>@<domain>`.
    pub fn address_of(&self, user: &str) -> String {
        self.addresses
            .get(user)
            .cloned()
            .unwrap_or_else(|| format!("{user}@{}", self.domain))
    }
}

/// `host[:port]` of an `[alerts] smtp` value; the port defaults to 25.
pub fn smtp_host_port(s: &str) -> Result<(String, u16), String> {
    let s = s.trim();
    if s.is_empty() || s.contains("://") || s.contains(['/', ' ', '@']) {
        return Err(
            "expected host or host:port, e.g. \"127.0.0.1:25\" or \"smtp.example.org:587\"".into(),
        );
    }
    match s.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && !host.contains(':') => port
            .parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .map(|p| (host.to_string(), p))
            .ok_or_else(|| format!("port {port:?} is not a number from 1 to 65535")),
        Some(_) => {
            Err("expected host or host:port (an IPv6 address is not supported; use a name)".into())
        }
        None => Ok((s.to_string(), 25)),
    }
}

/// `local@domain` with nothing that would break a header: a check for typos, not RFC 5321.
fn plausible_address(s: &str) -> bool {
    match s.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && !domain.is_empty()
                && !domain.contains('@')
                && !s.contains(|c: char| c.is_whitespace() || matches!(c, '<' | '>' | ',' | '"'))
        }
        None => false,
    }
}

/// The 1-based line where `key` is assigned inside `[section]` or one of its sub-tables
/// (`[section.x]`); with `key` empty, the line of the `[section]` header itself.
fn line_in_section(text: &str, section: &str, key: &str) -> Option<usize> {
    let mut inside = false;
    for (i, l) in text.lines().enumerate() {
        let t = l.trim();
        if let Some(h) = t.strip_prefix('[') {
            let name = h
                .trim_start_matches('[')
                .split(']')
                .next()
                .unwrap_or("")
                .trim();
            inside = name == section || name.starts_with(&format!("{section}."));
            if inside && key.is_empty() {
                return Some(i + 1);
            }
            continue;
        }
        if inside && !key.is_empty() && line_of(l, key).is_some() {
            return Some(i + 1);
        }
    }
    None
}

/// Parses a `[schedule] cron` expression the way tokio-cron-scheduler does (seconds
/// required, an optional year field, day-of-month AND day-of-week), so a file that passes
/// validation is one the scheduler accepts.
pub fn parse_cron(expr: &str) -> Result<croner::Cron, croner::errors::CronError> {
    croner::parser::CronParser::builder()
        .seconds(croner::parser::Seconds::Required)
        .dom_and_dow(true)
        .build()
        .parse(expr)
}

/// The files searched when neither `--config` nor `$SLURM_USAGE_CONFIG` is given.
pub fn search_path() -> Vec<PathBuf> {
    let mut paths = Vec::new();
    if let Some(xdg) = std::env::var_os("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
        paths.push(PathBuf::from(xdg).join("slurm-usage/config.toml"));
    } else if let Some(home) = std::env::var_os("HOME").filter(|v| !v.is_empty()) {
        paths.push(PathBuf::from(home).join(".config/slurm-usage/config.toml"));
    }
    paths.push(PathBuf::from(SYSTEM_CONFIG));
    paths
}

pub(crate) fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s != "."
        && s != ".."
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// The 1-based line where `key` is assigned, for messages about values serde accepted.
fn line_of(text: &str, key: &str) -> Option<usize> {
    text.lines()
        .position(|l| {
            let l = l.trim_start();
            let l = l.strip_prefix('"').unwrap_or(l);
            l.starts_with(key)
                && l[key.len()..]
                    .trim_start_matches('"')
                    .trim_start()
                    .starts_with('=')
        })
        .map(|i| i + 1)
}

/// Turns toml's error into one line: `line 4, column 1: unknown field ...`.
fn describe_toml_error(text: &str, err: &toml::de::Error) -> String {
    let message = err.message().trim().to_string();
    match err.span() {
        Some(span) => {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
            let key = text[span.clone()].trim();
            let key = if key.len() > 40 { "" } else { key };
            if key.is_empty() {
                format!("line {line}, column {column}: {message}")
            } else {
                format!("line {line}, column {column}, at `{key}`: {message}")
            }
        }
        None => message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_is_all_defaults() {
        let c = Config::from_toml("").unwrap();
        assert_eq!(c.collect.lookback_days, 2);
        assert_eq!(c.collect.max_concurrent_sacct, 4);
        assert_eq!(c.collect.max_recollect_days, 60);
        assert_eq!(c.collect.settle.0, Duration::from_secs(3600));
        assert_eq!(c.schedule.cron, "0 15 2 * * *");
        assert_eq!(c.data_dir, PathBuf::from("./data"));
    }

    #[test]
    fn full_check_is_daily_by_default_and_names_its_line_when_wrong() {
        assert_eq!(
            Config::from_toml("").unwrap().collect.full_check,
            FullCheck::Daily
        );
        for (text, want) in [
            ("always", FullCheck::Always),
            ("daily", FullCheck::Daily),
            ("6h", FullCheck::Every(Duration::from_secs(6 * 3600))),
        ] {
            let c = Config::from_toml(&format!("[collect]\nfull_check = \"{text}\"\n")).unwrap();
            assert_eq!(c.collect.full_check, want);
            assert_eq!(want.to_string(), text);
        }
        let e = Config::from_toml("[collect]\nretries = 1\nfull_check = \"weekly\"\n").unwrap_err();
        assert!(e.starts_with("line 3"), "{e}");
        assert!(e.contains("\"daily\""), "{e}");
        let e = Config::from_toml("[collect]\n\nfull_check = \"0s\"\n").unwrap_err();
        assert!(e.starts_with("line 3: [collect] full_check"), "{e}");
        assert!(e.contains("always"), "{e}");
    }

    #[test]
    fn full_example_parses() {
        let c = Config::from_toml(
            r#"
data_dir = "/var/lib/slurm-usage"
timezone = "Europe/Amsterdam"
[schedule]
cron = "0 15 2 * * *"
jitter = "10m"
[collect]
lookback_days = 3
max_concurrent_sacct = 2
sacct = "/usr/bin/sacct"
sacct_timeout = "1h30m"
retries = 5
max_recollect_days = 30
settle = "2h"
[groups]
physics = ["alice", "bob"]
chem = ["carol"]
[metrics]
textfile = "/tmp/x.prom"
[log]
level = "debug"
"#,
        )
        .unwrap();
        assert_eq!(c.collect.sacct_timeout.0, Duration::from_secs(5400));
        assert_eq!(c.group_of("bob"), "physics");
        assert_eq!(c.group_of("zed"), "ungrouped");
        assert_eq!(c.zone().name(), "Europe/Amsterdam");
        assert_eq!(c.log.level.0, "debug");
    }

    #[test]
    fn unknown_key_names_line_and_valid_keys() {
        let err = Config::from_toml("[collect]\nlookback_days = 1\nlookbak = 2\n").unwrap_err();
        assert!(err.contains("line 3"), "{err}");
        assert!(err.contains("lookbak"), "{err}");
        assert!(err.contains("lookback_days"), "{err}");
    }

    #[test]
    fn bad_duration_names_line() {
        let err = Config::from_toml("[collect]\n\nsacct_timeout = \"10\"\n").unwrap_err();
        assert!(err.contains("line 3"), "{err}");
        assert!(err.contains("missing unit"), "{err}");
    }

    #[test]
    fn bad_timezone_is_rejected() {
        let err = Config::from_toml("timezone = \"Mars/Olympus\"\n").unwrap_err();
        assert!(
            err.contains("line 1") && err.contains("Mars/Olympus"),
            "{err}"
        );
    }

    #[test]
    fn user_in_two_groups_is_rejected() {
        let err =
            Config::from_toml("[groups]\na = [\"alice\"]\nb = [\"bob\", \"alice\"]\n").unwrap_err();
        assert!(err.contains("alice") && err.contains("line 3"), "{err}");
    }

    #[test]
    fn group_name_with_traversal_is_rejected() {
        let err = Config::from_toml("[groups]\n\"../etc\" = [\"alice\"]\n").unwrap_err();
        assert!(err.contains("../etc"), "{err}");
    }

    #[test]
    fn clusters_are_names_listed_once() {
        let c = Config::from_toml("[collect]\nclusters = [\"alpha\", \"beta\"]\n").unwrap();
        assert_eq!(c.collect.clusters, ["alpha", "beta"]);
        assert!(Config::from_toml("").unwrap().collect.clusters.is_empty());
        let err = Config::from_toml("[collect]\nclusters = [\"a/b\"]\n").unwrap_err();
        assert!(err.contains("line 2") && err.contains("a/b"), "{err}");
        let err = Config::from_toml("[collect]\nclusters = [\"a\", \"a\"]\n").unwrap_err();
        assert!(err.contains("twice"), "{err}");
    }

    #[test]
    fn zero_concurrency_is_rejected() {
        let err = Config::from_toml("[collect]\nmax_concurrent_sacct = 0\n").unwrap_err();
        assert!(
            err.contains("line 2") && err.contains("max_concurrent_sacct"),
            "{err}"
        );
    }

    #[test]
    fn wrong_type_names_line() {
        let err = Config::from_toml("[collect]\nretries = \"three\"\n").unwrap_err();
        assert!(err.contains("line 2"), "{err}");
    }

    #[test]
    fn durations_parse_and_print() {
        for (s, secs) in [
            ("30s", 30),
            ("10m", 600),
            ("1h30m", 5400),
            ("2d", 172_800),
            ("0s", 0),
        ] {
            let d = HumanDuration::parse(s).unwrap();
            assert_eq!(d.0.as_secs(), secs, "{s}");
            assert_eq!(d.to_string(), s);
        }
        assert!(HumanDuration::parse("10x").is_err());
        assert!(HumanDuration::parse("m").is_err());
        assert!(HumanDuration::parse("").is_err());
    }

    #[test]
    fn cron_is_parsed_like_the_scheduler_does() {
        for ok in [
            "0 15 2 * * *",
            "* * * * * *",
            "0 */5 * * * *",
            "0 0 3 * * MON-FRI",
            "0 15 2 * * * 2099",
        ] {
            Config::from_toml(&format!("[schedule]\ncron = {ok:?}\n"))
                .unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        let err =
            Config::from_toml("[schedule]\njitter = \"1m\"\ncron = \"15 2 * * *\"\n").unwrap_err();
        assert!(
            err.contains("line 3") && err.contains("not a valid cron expression"),
            "{err}"
        );
        let err = Config::from_toml("[schedule]\ncron = \"0 61 2 * * *\"\n").unwrap_err();
        assert!(err.contains("line 2") && err.contains("0 61 2"), "{err}");
        let err = Config::from_toml("[schedule]\ncron = \"0 0 0 1 1 * 2001\"\n").unwrap_err();
        assert!(err.contains("never matches"), "{err}");
    }

    const ALERTS: &str = "[schedule]\ncron = \"0 15 2 * * *\"\n[alerts]\nsmtp = \"127.0.0.1:2525\"\nfrom = \"hpc@example.org\"\ndomain = \"example.org\"\n";

    #[test]
    fn alerts_parse_with_defaults() {
        let c = Config::from_toml(&format!(
            "{ALERTS}exclude = [\"root\"]\n[alerts.addresses]\nalice = \"a.s@physics.example.org\"\n[alerts.group_contacts]\nphysics = \"pi@example.org\"\n[alerts.rules]\nmin_jobs = 3\n"
        ))
        .unwrap();
        let a = c.alerts.unwrap();
        assert_eq!(a.every.0, Duration::from_secs(7 * 86_400));
        assert_eq!(a.days, 7);
        assert_eq!(a.rules.min_jobs, 3);
        assert_eq!(a.rules.cpu_efficiency_below, 50.0);
        assert_eq!(a.address_of("alice"), "a.s@physics.example.org");
        assert_eq!(a.address_of("bob"), "bob@example.org");
        assert_eq!(
            smtp_host_port("mail.example.org").unwrap(),
            ("mail.example.org".into(), 25)
        );
        assert!(smtp_host_port("smtp://x").is_err());
        assert!(smtp_host_port("x:0").is_err());
    }

    #[test]
    fn alerts_errors_name_the_line_in_their_section() {
        // The [schedule] cron on line 2 is fine; the [alerts] one on line 7 is not.
        let err = Config::from_toml(&format!("{ALERTS}cron = \"0 8 * *\"\n")).unwrap_err();
        assert!(
            err.contains("line 7") && err.contains("[alerts] cron"),
            "{err}"
        );
        let err = Config::from_toml(&ALERTS.replace("hpc@example.org", "hpc")).unwrap_err();
        assert!(err.contains("line 5") && err.contains("from"), "{err}");
        let err =
            Config::from_toml(&format!("{ALERTS}sendmail = \"/usr/sbin/sendmail\"\n")).unwrap_err();
        assert!(err.contains("line 7") && err.contains("pick one"), "{err}");
        let err = Config::from_toml("[alerts]\nfrom = \"a@b\"\ndomain = \"b\"\n").unwrap_err();
        assert!(
            err.contains("line 1") && err.contains("needs smtp"),
            "{err}"
        );
        let err = Config::from_toml(&format!("{ALERTS}every = \"0s\"\n")).unwrap_err();
        assert!(err.contains("line 7"), "{err}");
        let err = Config::from_toml(&format!("{ALERTS}[alerts.rules]\nkilled_fraction = 2.0\n"))
            .unwrap_err();
        assert!(
            err.contains("line 8") && err.contains("killed_fraction"),
            "{err}"
        );
        let err = Config::from_toml(&format!("{ALERTS}[alerts.rules]\nmin_job = 2\n")).unwrap_err();
        assert!(err.contains("line 8") && err.contains("min_jobs"), "{err}");
        let err = Config::from_toml(&format!("{ALERTS}[alerts.addresses]\nbob = \"bob at x\"\n"))
            .unwrap_err();
        assert!(err.contains("line 8") && err.contains("bob"), "{err}");
    }

    #[test]
    fn example_config_in_repo_is_valid() {
        let text = include_str!("../config/config.example.toml");
        let c = Config::from_toml(text).unwrap();
        assert_eq!(c.schedule.cron, "0 15 2 * * *");
    }
}
