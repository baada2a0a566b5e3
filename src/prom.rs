//! The Prometheus textfile: what the daemon's cycles did, for node_exporter's textfile
//! collector (`--collector.textfile.directory`).
//!
//! The file is rewritten atomically after every cycle (temp file + rename in the same
//! directory; the temp name starts with `.` and does not end in `.prom`, so the collector
//! never reads a half-written file). Counters (`*_total`) count since the daemon started, as
//! Prometheus expects of counters; gauges describe the last cycle.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use chrono::{DateTime, Utc};

use crate::collect::{CycleReport, DateOutcome};
use crate::store::atomic::{write_bytes_atomic, WriteError};

/// What the daemon has done since it started.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Metrics {
    /// End of the last cycle in which every sacct call succeeded.
    pub last_success: Option<DateTime<Utc>>,
    /// Wall time of the last cycle.
    pub last_cycle_seconds: f64,
    /// Cycles that collected every date they planned.
    pub cycles_ok: u64,
    /// Cycles that failed as a whole (lock, data dir, tracker) or for some dates.
    pub cycles_failed: u64,
    /// Failed cycles in a row (0 after a success).
    pub consecutive_failures: u64,
    /// Jobs in the partitions written by the last cycle.
    pub jobs_written: u64,
    /// Raw sacct rows written by the last cycle.
    pub raw_rows_written: u64,
    /// Dates of the last cycle that are not final yet (incl. failed ones).
    pub incomplete_dates: u64,
    pub sacct_calls: u64,
    pub sacct_failures: u64,
    pub sacct_timeouts: u64,
    pub sacct_seconds: f64,
    /// Rows sacct returned, since the daemon started.
    pub sacct_rows: u64,
    /// What the last cycle asked of slurmdbd: sacct calls (retries included), the rows they
    /// returned, and the most rows of one call.
    pub last_cycle_sacct_calls: u64,
    /// The last cycle asked sacct only for the jobs active since the cycle before
    /// (docs/collection.md, "Incremental cycles"), not for whole days.
    pub last_cycle_incremental: bool,
    pub last_cycle_sacct_rows: u64,
    pub last_cycle_sacct_rows_max: u64,
    /// Unparsable sacct lines (kept verbatim in the raw archive).
    pub parse_errors: u64,
    /// Jobs whose end reached slurmdbd after an incremental window had passed them, found
    /// by id (docs/collection.md, "Ends recorded late"): a sign of slurmctld's queue to
    /// slurmdbd backing up.
    pub late_job_ends: u64,
    /// The lake's upload state, one per cluster uploaded, when `[lake]` is configured.
    pub lake: Vec<crate::lake::LakeHealth>,
    /// Per listed cluster (`[collect] clusters`), its last cycle, by name; empty for the
    /// local cluster alone, whose numbers are the unlabelled ones above.
    pub clusters: BTreeMap<String, ClusterMetrics>,
}

/// One listed cluster's gauges, labelled `cluster="<name>"` in the textfile.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClusterMetrics {
    /// End of the last cycle in which every sacct call of this cluster succeeded.
    pub last_success: Option<DateTime<Utc>>,
    /// Jobs in the partitions this cluster's last cycle wrote.
    pub jobs_written: u64,
    /// Dates of its last cycle not final yet (incl. failed ones).
    pub incomplete_dates: u64,
    /// Its last cycle failed as a whole or for some date.
    pub last_cycle_failed: bool,
}

/// Jobs in the partitions a cycle actually wrote (dates that were complete before the cycle
/// cost no sacct call and are not counted).
pub fn jobs_written(r: &CycleReport) -> u64 {
    r.dates
        .iter()
        .filter(|d| matches!(d.outcome, DateOutcome::Complete | DateOutcome::Incomplete))
        .map(|d| d.jobs as u64)
        .sum()
}

impl Metrics {
    /// Counts a cycle that ran to its end; `ok` is false when some date failed.
    pub fn record_cycle(&mut self, r: &CycleReport, ok: bool, now: DateTime<Utc>) {
        self.last_cycle_seconds = r.duration.as_secs_f64();
        self.record_result(ok);
        if ok {
            self.last_success = Some(now);
        }
        self.jobs_written = jobs_written(r);
        self.raw_rows_written = r.raw_rows() as u64;
        self.incomplete_dates = r.incomplete() as u64;
        self.sacct_calls += u64::from(r.sacct_calls);
        self.sacct_failures += u64::from(r.sacct_failures);
        self.sacct_timeouts += u64::from(r.sacct_timeouts);
        self.sacct_seconds += r.sacct_seconds;
        self.sacct_rows += r.sacct_rows() as u64;
        self.last_cycle_sacct_calls = u64::from(r.sacct_calls);
        self.last_cycle_incremental = r.incremental_since.is_some();
        self.last_cycle_sacct_rows = r.sacct_rows() as u64;
        self.last_cycle_sacct_rows_max = r.sacct_rows_max() as u64;
        self.parse_errors += r.parse_errors() as u64;
        self.late_job_ends += r.late_jobs as u64;
    }

    /// Records the last cycle of listed cluster `name`: its report, or `None` when it
    /// stopped as a whole.
    pub fn record_cluster(&mut self, name: &str, r: Option<&CycleReport>, now: DateTime<Utc>) {
        let m = self.clusters.entry(name.to_string()).or_default();
        match r {
            Some(r) => {
                let ok = r.failed() == 0 && !r.cancelled;
                if ok {
                    m.last_success = Some(now);
                }
                m.jobs_written = jobs_written(r);
                m.incomplete_dates = r.incomplete() as u64;
                m.last_cycle_failed = !ok;
            }
            None => {
                m.jobs_written = 0;
                m.last_cycle_failed = true;
            }
        }
    }

    /// Counts a cycle that failed before collecting anything (lock, data dir, tracker).
    pub fn record_error(&mut self, seconds: f64) {
        self.last_cycle_seconds = seconds;
        self.jobs_written = 0;
        self.raw_rows_written = 0;
        self.last_cycle_sacct_calls = 0;
        self.last_cycle_incremental = false;
        self.last_cycle_sacct_rows = 0;
        self.last_cycle_sacct_rows_max = 0;
        self.record_result(false);
    }

    fn record_result(&mut self, ok: bool) {
        if ok {
            self.cycles_ok += 1;
            self.consecutive_failures = 0;
        } else {
            self.cycles_failed += 1;
            self.consecutive_failures += 1;
        }
    }

    /// The node_exporter textfile text.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(2048);
        let mut metric = |name: &str, kind: &str, help: &str, samples: &[(&str, String)]| {
            // Writing to a String cannot fail.
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} {kind}");
            for (labels, value) in samples {
                let _ = writeln!(out, "{name}{labels} {value}");
            }
        };
        let plain = |v: String| [("", v)];
        metric(
            "slurm_usage_last_success_timestamp_seconds",
            "gauge",
            "Unix time of the end of the last cycle in which every sacct call succeeded (0: none since the data dir was created).",
            &plain(self.last_success.map_or(0, |t| t.timestamp()).to_string()),
        );
        metric(
            "slurm_usage_last_cycle_duration_seconds",
            "gauge",
            "Wall time of the last collection cycle.",
            &plain(float(self.last_cycle_seconds)),
        );
        metric(
            "slurm_usage_cycles_total",
            "counter",
            "Collection cycles since the daemon started, by result.",
            &[
                ("{result=\"ok\"}", self.cycles_ok.to_string()),
                ("{result=\"failed\"}", self.cycles_failed.to_string()),
            ],
        );
        metric(
            "slurm_usage_consecutive_failed_cycles",
            "gauge",
            "Failed cycles in a row (0 after a successful one).",
            &plain(self.consecutive_failures.to_string()),
        );
        metric(
            "slurm_usage_jobs_written",
            "gauge",
            "Jobs in the daily partitions written by the last cycle.",
            &plain(self.jobs_written.to_string()),
        );
        metric(
            "slurm_usage_raw_rows_written",
            "gauge",
            "Raw sacct rows written by the last cycle.",
            &plain(self.raw_rows_written.to_string()),
        );
        metric(
            "slurm_usage_incomplete_dates",
            "gauge",
            "Dates of the last cycle that are not final yet (running or pending jobs, settle margin, or a failed sacct).",
            &plain(self.incomplete_dates.to_string()),
        );
        metric(
            "slurm_usage_sacct_calls_total",
            "counter",
            "sacct processes started (retries included).",
            &plain(self.sacct_calls.to_string()),
        );
        metric(
            "slurm_usage_sacct_failures_total",
            "counter",
            "sacct calls that failed (non-zero exit, missing program, timeout).",
            &plain(self.sacct_failures.to_string()),
        );
        metric(
            "slurm_usage_sacct_timeouts_total",
            "counter",
            "sacct calls killed at [collect] sacct_timeout.",
            &plain(self.sacct_timeouts.to_string()),
        );
        metric(
            "slurm_usage_sacct_seconds_total",
            "counter",
            "Time spent waiting for sacct.",
            &plain(float(self.sacct_seconds)),
        );
        metric(
            "slurm_usage_sacct_rows_total",
            "counter",
            "Rows sacct returned (records and unparsable text) to calls that succeeded.",
            &plain(self.sacct_rows.to_string()),
        );
        metric(
            "slurm_usage_last_cycle_sacct_calls",
            "gauge",
            "sacct processes the last cycle started (retries included): its queries to slurmdbd.",
            &plain(self.last_cycle_sacct_calls.to_string()),
        );
        metric(
            "slurm_usage_last_cycle_incremental",
            "gauge",
            "1 when the last cycle asked sacct only for the jobs active since the cycle before, 0 when it queried whole days.",
            &plain(u8::from(self.last_cycle_incremental).to_string()),
        );
        metric(
            "slurm_usage_last_cycle_sacct_rows",
            "gauge",
            "Rows the last cycle's sacct calls returned (divide by the calls for rows per call).",
            &plain(self.last_cycle_sacct_rows.to_string()),
        );
        metric(
            "slurm_usage_last_cycle_sacct_rows_max",
            "gauge",
            "The most rows one sacct call of the last cycle returned.",
            &plain(self.last_cycle_sacct_rows_max.to_string()),
        );
        metric(
            "slurm_usage_parse_errors_total",
            "counter",
            "sacct output lines that could not be parsed (kept verbatim in the raw archive).",
            &plain(self.parse_errors.to_string()),
        );
        metric(
            "slurm_usage_late_job_ends_total",
            "counter",
            "Jobs whose end reached slurmdbd after an incremental window had passed them, found by id (slurmctld's queue to slurmdbd backed up).",
            &plain(self.late_job_ends.to_string()),
        );
        if !self.clusters.is_empty() {
            let per = |f: &dyn Fn(&ClusterMetrics) -> String| -> Vec<(String, String)> {
                self.clusters
                    .iter()
                    .map(|(name, m)| (format!("{{cluster=\"{}\"}}", escape_label(name)), f(m)))
                    .collect()
            };
            fn samples(v: &[(String, String)]) -> Vec<(&str, String)> {
                v.iter().map(|(l, x)| (l.as_str(), x.clone())).collect()
            }
            metric(
                "slurm_usage_cluster_last_success_timestamp_seconds",
                "gauge",
                "Unix time of the end of the last cycle in which every sacct call of the cluster succeeded (0: none since the daemon started).",
                &samples(&per(&|m| m.last_success.map_or(0, |t| t.timestamp()).to_string())),
            );
            metric(
                "slurm_usage_cluster_jobs_written",
                "gauge",
                "Jobs in the partitions the cluster's last cycle wrote.",
                &samples(&per(&|m| m.jobs_written.to_string())),
            );
            metric(
                "slurm_usage_cluster_incomplete_dates",
                "gauge",
                "Dates of the cluster's last cycle that are not final yet (incl. failed ones).",
                &samples(&per(&|m| m.incomplete_dates.to_string())),
            );
            metric(
                "slurm_usage_cluster_last_cycle_failed",
                "gauge",
                "1 when the cluster's last cycle failed as a whole or for some date, else 0.",
                &samples(&per(&|m| u8::from(m.last_cycle_failed).to_string())),
            );
        }
        if !self.lake.is_empty() {
            let labels: Vec<String> = self
                .lake
                .iter()
                .map(|l| format!("{{cluster=\"{}\"}}", escape_label(&l.cluster)))
                .collect();
            let per = |f: &dyn Fn(&crate::lake::LakeHealth) -> String| -> Vec<(&str, String)> {
                labels
                    .iter()
                    .zip(&self.lake)
                    .map(|(label, l)| (label.as_str(), f(l)))
                    .collect()
            };
            metric(
                "slurm_usage_lake_pending_partitions",
                "gauge",
                "Local partitions not yet uploaded to the lake as they are now (retried every cycle).",
                &per(&|l| l.pending.to_string()),
            );
            metric(
                "slurm_usage_lake_last_upload_timestamp_seconds",
                "gauge",
                "Unix time of the last completed upload to the lake (0: none yet).",
                &per(&|l| l.last_upload.unwrap_or(0).to_string()),
            );
        }
        out
    }
}

/// A label value with `\`, `"` and newlines escaped, as the text format requires.
fn escape_label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// A float the way Prometheus' text format reads it (no exponent needed, millisecond-ish
/// precision is plenty for durations).
fn float(v: f64) -> String {
    if v.is_finite() {
        format!("{:.3}", v.max(0.0))
    } else {
        "0".to_string()
    }
}

/// Writes the textfile atomically.
pub fn write_textfile(path: &Path, metrics: &Metrics) -> Result<(), WriteError> {
    write_bytes_atomic(path, metrics.render().as_bytes())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use chrono::NaiveDate;

    use super::*;
    use crate::collect::DateReport;

    fn date_report(day: u32, outcome: DateOutcome, jobs: usize) -> DateReport {
        // Dates complete before the cycle wrote nothing.
        let raw_rows = if outcome == DateOutcome::AlreadyComplete {
            0
        } else {
            jobs * 3
        };
        // A cached date costs no call; a failed one returned nothing.
        let sacct_rows = if matches!(outcome, DateOutcome::Complete | DateOutcome::Incomplete) {
            raw_rows + 1
        } else {
            0
        };
        DateReport {
            date: NaiveDate::from_ymd_opt(2026, 11, day).unwrap(),
            outcome,
            jobs,
            incomplete_jobs: 0,
            moved_out: 0,
            parse_errors: 2,
            raw_rows,
            sacct_seconds: 0.5,
            sacct_rows,
        }
    }

    fn report() -> CycleReport {
        CycleReport {
            duration: Duration::from_millis(1500),
            dates: vec![
                date_report(22, DateOutcome::AlreadyComplete, 900),
                date_report(23, DateOutcome::Complete, 100),
                date_report(24, DateOutcome::Incomplete, 20),
                date_report(25, DateOutcome::Failed("boom".into()), 0),
            ],
            sacct_calls: 5,
            sacct_failures: 2,
            sacct_timeouts: 1,
            sacct_seconds: 2.25,
            late_jobs: 3,
            late_rows: 11,
            ..Default::default()
        }
    }

    #[test]
    fn renders_every_metric_with_help_and_type() {
        let mut m = Metrics::default();
        let now = DateTime::from_timestamp(1_764_040_503, 0).unwrap();
        m.record_cycle(&report(), false, now);
        m.record_cycle(&report(), true, now);
        let text = m.render();
        let expected = [
            "slurm_usage_last_success_timestamp_seconds 1764040503",
            "slurm_usage_last_cycle_duration_seconds 1.500",
            "slurm_usage_cycles_total{result=\"ok\"} 1",
            "slurm_usage_cycles_total{result=\"failed\"} 1",
            "slurm_usage_consecutive_failed_cycles 0",
            "slurm_usage_jobs_written 120",
            "slurm_usage_raw_rows_written 360",
            "slurm_usage_incomplete_dates 2",
            "slurm_usage_sacct_calls_total 10",
            "slurm_usage_sacct_failures_total 4",
            "slurm_usage_sacct_timeouts_total 2",
            "slurm_usage_sacct_seconds_total 4.500",
            "slurm_usage_parse_errors_total 16",
            "slurm_usage_late_job_ends_total 6",
            // 301 + 61 per cycle, and the 11 rows of the by-id query for late ends.
            "slurm_usage_sacct_rows_total 746",
            "slurm_usage_last_cycle_sacct_calls 5",
            "slurm_usage_last_cycle_sacct_rows 373",
            "slurm_usage_last_cycle_sacct_rows_max 301",
            "slurm_usage_last_cycle_incremental 0",
        ];
        for line in expected {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
        // Every sample has its HELP and TYPE, in that order, right before it.
        let incremental = CycleReport {
            incremental_since: Some(now),
            ..report()
        };
        let mut inc = m.clone();
        inc.record_cycle(&incremental, true, now);
        assert!(inc
            .render()
            .lines()
            .any(|l| l == "slurm_usage_last_cycle_incremental 1"));
        let lines: Vec<&str> = text.lines().collect();
        for (i, l) in lines.iter().enumerate() {
            if l.starts_with('#') {
                continue;
            }
            let name = l.split(['{', ' ']).next().unwrap();
            let header = lines[..i]
                .iter()
                .rev()
                .find(|h| h.starts_with("# HELP"))
                .unwrap();
            assert!(header.starts_with(&format!("# HELP {name} ")), "{l}");
            assert!(lines.contains(
                &format!(
                    "# TYPE {name} {}",
                    if name.ends_with("_total") {
                        "counter"
                    } else {
                        "gauge"
                    }
                )
                .as_str()
            ));
        }
        assert_eq!(text.matches("# TYPE").count(), 18);
        assert!(text.ends_with('\n'));
    }

    #[test]
    fn never_succeeded_is_zero_and_errors_count_as_failed() {
        let mut m = Metrics::default();
        m.record_error(0.25);
        m.record_error(0.25);
        let text = m.render();
        assert!(
            text.contains("\nslurm_usage_last_cycle_sacct_calls 0\n"),
            "{text}"
        );
        assert!(
            text.contains("\nslurm_usage_last_success_timestamp_seconds 0\n"),
            "{text}"
        );
        assert!(
            text.contains("slurm_usage_cycles_total{result=\"failed\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("slurm_usage_consecutive_failed_cycles 2\n"),
            "{text}"
        );
    }

    #[test]
    fn textfile_is_replaced_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("slurm_usage.prom");
        write_textfile(&p, &Metrics::default()).unwrap();
        let mut m = Metrics::default();
        m.record_error(1.0);
        write_textfile(&p, &m).unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), m.render());
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temp file left"
        );
    }

    #[test]
    fn listed_clusters_get_labelled_gauges_and_the_local_one_none() {
        let mut m = Metrics::default();
        assert!(!m.render().contains("cluster="));
        let now = DateTime::from_timestamp(1_765_000_000, 0).unwrap();
        m.record_cluster("alpha", Some(&report()), now);
        m.record_cluster("beta", None, now);
        let text = m.render();
        assert!(
            text.contains("slurm_usage_cluster_last_cycle_failed{cluster=\"beta\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains(
                "slurm_usage_cluster_last_success_timestamp_seconds{cluster=\"beta\"} 0\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("# TYPE slurm_usage_cluster_jobs_written gauge\n"),
            "{text}"
        );
        assert!(
            text.contains("slurm_usage_cluster_jobs_written{cluster=\"alpha\"} "),
            "{text}"
        );
    }

    #[test]
    fn lake_gauges_only_with_a_lake_and_labelled_by_cluster() {
        let mut m = Metrics::default();
        assert!(!m.render().contains("slurm_usage_lake_"));
        let health = |cluster: &str, pending, last_upload| crate::lake::LakeHealth {
            url: "s3://b/p".into(),
            cluster: cluster.into(),
            pending,
            last_upload,
        };
        m.lake = vec![
            health("hpc", 3, Some(1_765_000_000)),
            health("gpu", 0, None),
        ];
        let text = m.render();
        assert!(
            text.contains("slurm_usage_lake_pending_partitions{cluster=\"hpc\"} 3\n"),
            "{text}"
        );
        assert!(
            text.contains(
                "slurm_usage_lake_last_upload_timestamp_seconds{cluster=\"hpc\"} 1765000000\n"
            ),
            "{text}"
        );
        // One sample per cluster under one HELP/TYPE.
        assert!(
            text.contains("slurm_usage_lake_pending_partitions{cluster=\"gpu\"} 0\n"),
            "{text}"
        );
        assert!(
            text.contains("slurm_usage_lake_last_upload_timestamp_seconds{cluster=\"gpu\"} 0\n"),
            "{text}"
        );
        assert_eq!(
            text.matches("# TYPE slurm_usage_lake_pending_partitions gauge")
                .count(),
            1
        );
        assert_eq!(escape_label("a\"b\\c"), "a\\\"b\\\\c");
    }
}
