//! Incremental cycles against whole-day cycles over the same timeline: two archives, one
//! built the way the daemon builds it now (sacct asked only for what changed since the last
//! successful cycle, a whole-day check once a day), one by whole-day queries every cycle,
//! must hold the same jobs, record for record and raw row for raw row.
//!
//! The sacct is this binary's synthetic one (`fake-sacct --long-pending --record-lag`)
//! behind a script that reads "now" from a file, so each cycle of both archives sees the
//! same cluster at the same instant; the collectors' clocks are fixed at that instant too
//! (`Collector::at`). Every 13th job's end reaches its database two hours late, so the
//! incremental archive must also find the jobs whose end was recorded after its window had
//! passed them (`collect/late.rs`).

mod util;

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::Array;
use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use slurm_usage::collect::{run_cycle, CollectOptions, Collector, CycleReport};
use slurm_usage::config::Config;
use slurm_usage::model::ProcessedJob;
use slurm_usage::sacct::command::SacctProgram;
use slurm_usage::store::parquet::{read_processed, read_raw};
use tokio_util::sync::CancellationToken;

use util::BIN;

/// One archive and its sacct: a data dir, the script, the file holding "now".
struct Side {
    dir: PathBuf,
    /// Rows and calls sacct answered, over every cycle.
    rows: usize,
    calls: u32,
    rows_per_cycle: Vec<usize>,
}

impl Side {
    fn new(root: &Path, name: &str) -> Side {
        let dir = root.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        let script = dir.join("sacct");
        std::fs::write(
            &script,
            format!(
                "#!/bin/bash\n\
                 dir='{d}'\n\
                 if [[ -e \"$dir/fail\" && \"$1\" != --version ]]; then echo 'sacct: error: Problem talking to the database' >&2; exit 1; fi\n\
                 if [[ -e \"$dir/fail-by-id\" && \"$*\" == *--jobs=* ]]; then echo 'sacct: error: Problem talking to the database' >&2; exit 1; fi\n\
                 SLURM_USAGE_FAKE_NOW=\"$(cat \"$dir/now\")\" exec '{BIN}' fake-sacct --jobs-per-day 80 --long-pending --record-lag 7200 -- \"$@\"\n",
                d = dir.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        Side {
            dir,
            rows: 0,
            calls: 0,
            rows_per_cycle: Vec::new(),
        }
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// One cycle at `now` (`incremental` allowed or not), as the daemon runs it with
    /// `lookback_days = 1`, dates in Amsterdam (the synthetic jobs are drawn per UTC day,
    /// so the archive's midnight is not theirs). A new collector each time, as after a
    /// restart: all an incremental cycle knows of the last is in the tracker.
    fn cycle(&mut self, now: DateTime<Utc>, incremental: bool) -> CycleReport {
        std::fs::write(
            self.dir.join("now"),
            now.format("%Y-%m-%dT%H:%M:%S").to_string(),
        )
        .unwrap();
        let text = format!(
            "data_dir = \"{}\"\ntimezone = \"Europe/Amsterdam\"\n[collect]\nsacct = \"{}\"\n\
             lookback_days = 1\nretries = 0\nretry_delay = \"0s\"\nsettle = \"1h\"\nfull_check = \"daily\"\n",
            self.data().display(),
            self.dir.join("sacct").display()
        );
        let config = Arc::new(Config::from_toml(&text).unwrap());
        let mut c =
            Collector::with_sacct(config, SacctProgram::new(self.dir.join("sacct"))).at(now);
        if incremental {
            c = c.incremental();
        }
        let opts = CollectOptions {
            days: 1,
            wait_for_lock: false,
            progress: false,
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let report = rt
            .block_on(run_cycle(&c, &opts, &CancellationToken::new()))
            .unwrap();
        self.rows += report.sacct_rows();
        self.calls += report.sacct_calls;
        self.rows_per_cycle.push(report.sacct_rows());
        report
    }

    fn set_failing(&self, failing: bool) {
        self.set_flag("fail", failing);
    }

    /// Only the by-id queries for late job ends fail (`sacct --jobs=...`).
    fn set_failing_by_id(&self, failing: bool) {
        self.set_flag("fail-by-id", failing);
    }

    fn set_flag(&self, name: &str, on: bool) {
        let p = self.dir.join(name);
        if on {
            std::fs::write(p, b"").unwrap();
        } else {
            std::fs::remove_file(p).unwrap();
        }
    }

    fn completed(&self) -> BTreeSet<String> {
        util::env::completed_dates(&self.data())
            .into_iter()
            .collect()
    }

    /// Every processed partition: date -> its jobs by job id, `processed_date` cleared (when
    /// a record was computed differs by design).
    fn processed(&self) -> BTreeMap<NaiveDate, BTreeMap<String, ProcessedJob>> {
        let zone: slurm_usage::zone::Zone = "Europe/Amsterdam".parse().unwrap();
        partitions(&self.data().join("processed"))
            .into_iter()
            .map(|(date, path)| {
                let jobs = read_processed(&path, &zone).unwrap().into_inner();
                let jobs = jobs
                    .into_iter()
                    .map(|mut j| {
                        j.processed_date = 0;
                        (j.job_id.to_string(), j)
                    })
                    .collect();
                (date, jobs)
            })
            .collect()
    }

    /// Every raw partition: date -> its rows, every column as text, sorted.
    fn raw(&self) -> BTreeMap<NaiveDate, Vec<String>> {
        partitions(&self.data().join("raw"))
            .into_iter()
            .map(|(date, path)| {
                let mut rows = Vec::new();
                for b in read_raw(&path).unwrap().into_inner() {
                    let cols: Vec<_> = b
                        .columns()
                        .iter()
                        .map(|c| arrow_cast::cast(c, &arrow_schema::DataType::Utf8).unwrap())
                        .collect();
                    for i in 0..b.num_rows() {
                        let row: Vec<String> = cols
                            .iter()
                            .map(|c| {
                                let c = c.as_string::<i32>();
                                if c.is_valid(i) {
                                    c.value(i).to_string()
                                } else {
                                    "<null>".into()
                                }
                            })
                            .collect();
                        rows.push(row.join("\u{1f}"));
                    }
                }
                rows.sort();
                (date, rows)
            })
            .collect()
    }
}

/// The partitions of a `processed/` or `raw/` directory by date.
fn partitions(dir: &Path) -> BTreeMap<NaiveDate, PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return BTreeMap::new();
    };
    entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let date =
                NaiveDate::parse_from_str(name.strip_suffix(".parquet")?, "%Y-%m-%d").ok()?;
            Some((date, e.path()))
        })
        .collect()
}

/// Says where two archives differ, job by job and row by row; empty when they do not.
fn differences(full: &Side, inc: &Side) -> Vec<String> {
    let mut out = Vec::new();
    let (a, b) = (full.processed(), inc.processed());
    let dates: BTreeSet<&NaiveDate> = a.keys().chain(b.keys()).collect();
    let none = BTreeMap::new();
    for d in dates {
        let (ja, jb) = (a.get(d).unwrap_or(&none), b.get(d).unwrap_or(&none));
        if !a.contains_key(d) || !b.contains_key(d) {
            out.push(format!(
                "{d}: processed partition only in the {} archive",
                if a.contains_key(d) {
                    "full"
                } else {
                    "incremental"
                }
            ));
        }
        let ids: BTreeSet<&String> = ja.keys().chain(jb.keys()).collect();
        for id in ids {
            match (ja.get(id), jb.get(id)) {
                (Some(x), Some(y)) if x == y => {}
                (Some(x), Some(y)) => {
                    out.push(format!("{d} job {id} differs:\n full {x:?}\n incr {y:?}"))
                }
                (Some(x), None) => out.push(format!(
                    "{d} job {id} ({}) only in the full archive",
                    x.state
                )),
                (None, Some(y)) => out.push(format!(
                    "{d} job {id} ({}) only in the incremental archive",
                    y.state
                )),
                (None, None) => unreachable!(),
            }
        }
    }
    let (ra, rb) = (full.raw(), inc.raw());
    let dates: BTreeSet<&NaiveDate> = ra.keys().chain(rb.keys()).collect();
    for d in dates {
        let (x, y) = (
            ra.get(d).cloned().unwrap_or_default(),
            rb.get(d).cloned().unwrap_or_default(),
        );
        if x != y {
            let only_a: Vec<&String> = x.iter().filter(|r| !y.contains(r)).take(3).collect();
            let only_b: Vec<&String> = y.iter().filter(|r| !x.contains(r)).take(3).collect();
            out.push(format!(
                "{d}: raw rows differ ({} vs {}); only full: {only_a:?}; only incremental: {only_b:?}",
                x.len(),
                y.len()
            ));
        }
    }
    out
}

#[test]
fn an_archive_built_incrementally_equals_one_built_by_whole_day_queries() {
    let root = tempfile::tempdir().unwrap();
    let mut full = Side::new(root.path(), "full");
    let mut inc = Side::new(root.path(), "incremental");
    // Five days of cycles about every 70 minutes (so they fall at every minute of the hour,
    // around midnight too), with one failed incremental cycle on the way.
    let t0 = Utc.with_ymd_and_hms(2026, 11, 20, 0, 20, 0).unwrap();
    let step = Duration::minutes(70);
    let cycles = 5 * 24 * 60 / 70;
    let mut kinds = BTreeMap::<&str, usize>::new();
    let mut late = 0;
    for i in 0..cycles {
        let now = t0 + step * i;
        let a = full.cycle(now, false);
        assert_eq!(a.failed(), 0, "full cycle {i} at {now}");
        assert!(a.incremental_since.is_none());
        if i == 40 {
            inc.set_failing(true);
            let b = inc.cycle(now, true);
            assert!(b.failed() > 0, "the failing sacct failed the cycle");
            inc.set_failing(false);
            continue;
        }
        let b = inc.cycle(now, true);
        assert_eq!(b.failed(), 0, "incremental cycle {i} at {now}");
        late += b.late_jobs;
        match b.incremental_since {
            Some(since) => {
                *kinds.entry("incremental").or_default() += 1;
                assert!(since < now - Duration::minutes(70), "{since} at {now}");
                if i == 41 {
                    // After the failed cycle the window starts from the last success.
                    assert!(since <= now - step * 2, "{since} at {now}");
                }
            }
            None => *kinds.entry("whole days").or_default() += 1,
        }
        // Reading both archives back is most of the test's time: every few cycles, and
        // around the failed one.
        if i % 8 != 7 && !(40..=42).contains(&i) {
            continue;
        }
        let diff = differences(&full, &inc);
        assert!(
            diff.is_empty(),
            "after cycle {i} at {now}, {} differences:\n{}",
            diff.len(),
            diff.iter().take(10).cloned().collect::<Vec<_>>().join("\n")
        );
    }
    // The timeline held what the comparison is about.
    let jobs: Vec<ProcessedJob> = full
        .processed()
        .into_values()
        .flat_map(|j| j.into_values())
        .collect();
    let waited_days = jobs
        .iter()
        .filter(|j| j.wait_seconds.is_some_and(|w| w > 86_400))
        .count();
    assert!(waited_days > 5, "jobs pending for days: {waited_days}");
    assert!(
        jobs.iter().any(|j| j.array_task_id.is_some()),
        "array tasks"
    );
    let after_midnight = jobs
        .iter()
        .filter(|j| match (j.submit_time, j.start_time) {
            (Some(s), Some(t)) => s.div_euclid(86_400_000_000) < t.div_euclid(86_400_000_000),
            _ => false,
        })
        .count();
    assert!(
        after_midnight > 5,
        "jobs started on a later date than submitted: {after_midnight}"
    );
    assert!(jobs.iter().any(|j| j.state == "PENDING") && jobs.iter().any(|j| j.state == "RUNNING"));
    // Every 13th job's end reached the database two hours late: many of them after the
    // incremental window had passed their end, found by id.
    assert!(
        late > 20,
        "jobs whose end was recorded late, caught by id: {late}"
    );
    // One whole-day check a day; the rest incremental.
    assert!((4..=7).contains(&kinds["whole days"]), "{kinds:?}");
    assert!(kinds["incremental"] > 90, "{kinds:?}");
    // Completion: after a whole-day check at the same instant, the same dates are final.
    let last = t0 + step * (cycles - 1);
    inc.cycle(last, false);
    assert_eq!(full.completed(), inc.completed());
    assert!(full.completed().len() >= 3, "{:?}", full.completed());
    let diff = differences(&full, &inc);
    assert!(diff.is_empty(), "{}", diff.join("\n"));
    eprintln!(
        "sacct rows over {cycles} cycles: whole days {} in {} calls, incremental {} in {} calls",
        full.rows, full.calls, inc.rows, inc.calls
    );
    assert!(inc.rows * 3 < full.rows, "{} vs {}", inc.rows, full.rows);
}

/// A by-id query for late job ends that fails costs the cycle nothing else: the window is
/// applied, the cycle succeeds, the failure is counted, and the jobs stay as archived until
/// the next cycle asks again and the archive equals the whole-day one.
#[test]
fn a_failed_query_for_late_ends_is_asked_again_next_cycle() {
    let root = tempfile::tempdir().unwrap();
    let mut full = Side::new(root.path(), "full");
    let mut inc = Side::new(root.path(), "incremental");
    inc.set_failing_by_id(true);
    let t0 = Utc.with_ymd_and_hms(2026, 11, 20, 0, 20, 0).unwrap();
    let step = Duration::minutes(70);
    let mut failed_at = None;
    for i in 0..30 {
        let now = t0 + step * i;
        full.cycle(now, false);
        let b = inc.cycle(now, true);
        assert_eq!(b.failed(), 0, "cycle {i} at {now}");
        if b.incremental_since.is_some() && b.sacct_failures > 0 {
            assert_eq!(b.late_jobs, 0);
            failed_at = Some(i);
            break;
        }
    }
    let i = failed_at.expect("a cycle asked for late ends by id within 30 cycles");
    let missed = differences(&full, &inc);
    assert!(
        !missed.is_empty(),
        "the failed query left late ends out (cycle {i})"
    );
    assert!(
        missed
            .iter()
            .all(|d| d.contains("differs") || d.contains("raw rows differ")),
        "only records not yet final differ, nothing is lost: {missed:?}"
    );
    inc.set_failing_by_id(false);
    let now = t0 + step * (i + 1);
    full.cycle(now, false);
    let b = inc.cycle(now, true);
    assert!(b.incremental_since.is_some(), "still incremental");
    assert!(b.late_jobs > 0, "asked again and written");
    assert_eq!(b.sacct_failures, 0);
    let diff = differences(&full, &inc);
    assert!(diff.is_empty(), "{}", diff.join("\n"));
}
