//! The one-screen summary printed after `collect`: a view of the cycle's [`CycleReport`],
//! as `prom` is the daemon's. It sits above the collector so that the reports, which read
//! only the archive, never depend on it.

use std::io::{self, Write};

use crate::collect::{CycleReport, DateOutcome};
use crate::report::thousands;

/// Writes the per-date table and the totals.
pub fn write_summary(r: &CycleReport, out: &mut impl Write) -> io::Result<()> {
    writeln!(
        out,
        "{:<12} {:<17} {:>9} {:>11} {:>9} {:>9}",
        "Date", "Result", "Jobs", "Unfinished", "Bad lines", "sacct s"
    )?;
    for d in &r.dates {
        let result = match &d.outcome {
            DateOutcome::AlreadyComplete => "complete (cached)".to_string(),
            DateOutcome::Complete => "complete".to_string(),
            DateOutcome::Incomplete => "incomplete".to_string(),
            DateOutcome::Failed(_) => "FAILED".to_string(),
        };
        writeln!(
            out,
            "{:<12} {:<17} {:>9} {:>11} {:>9} {:>9.2}",
            d.date.to_string(),
            result,
            thousands(d.jobs as u64),
            thousands(d.incomplete_jobs as u64),
            thousands(d.parse_errors as u64),
            d.sacct_seconds
        )?;
    }
    for d in &r.dates {
        if let DateOutcome::Failed(why) = &d.outcome {
            writeln!(out, "  {}: {why}", d.date)?;
        }
    }
    let complete = r
        .dates
        .iter()
        .filter(|d| {
            matches!(
                d.outcome,
                DateOutcome::Complete | DateOutcome::AlreadyComplete
            )
        })
        .count();
    writeln!(
        out,
        "{} dates: {complete} complete, {} incomplete, {} failed; {} jobs; {} unparsable sacct lines",
        r.dates.len(),
        r.incomplete() - r.failed(),
        r.failed(),
        thousands(r.jobs() as u64),
        thousands(r.parse_errors() as u64),
    )?;
    writeln!(
        out,
        "sacct: {} calls ({} failed, {} timed out), {:.1} s; cycle {:.1} s; sacct {}",
        r.sacct_calls,
        r.sacct_failures,
        r.sacct_timeouts,
        r.sacct_seconds,
        r.duration.as_secs_f64(),
        if r.sacct_version.is_empty() {
            "not called"
        } else {
            &r.sacct_version
        }
    )?;
    if r.sacct_calls > 0 {
        writeln!(
            out,
            "sacct rows: {} ({} per call, at most {} in one){}",
            thousands(r.sacct_rows() as u64),
            thousands(r.sacct_rows_per_call() as u64),
            thousands(r.sacct_rows_max() as u64),
            match r.incremental_since {
                Some(t) => format!(
                    "; incremental: jobs active since {}",
                    t.format("%Y-%m-%d %H:%M:%S UTC")
                ),
                None => String::new(),
            }
        )?;
    }
    if r.late_jobs > 0 {
        writeln!(
            out,
            "late job ends: {} jobs whose end reached slurmdbd after the window had passed them, asked for by id",
            thousands(r.late_jobs as u64)
        )?;
    }
    if r.cancelled {
        writeln!(out, "interrupted: the dates not listed were not collected")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::DateReport;
    use chrono::NaiveDate;

    #[test]
    fn summary_lists_dates_failures_and_totals() {
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        let rep = |date, outcome: DateOutcome, jobs| DateReport {
            date: d(date),
            // A cached date costs no call; a failed one returns no rows.
            sacct_rows: if outcome == DateOutcome::Complete {
                jobs * 2
            } else {
                0
            },
            outcome,
            jobs,
            incomplete_jobs: 0,
            moved_out: 0,
            parse_errors: 1,
            raw_rows: 0,
            sacct_seconds: 0.5,
        };
        let r = CycleReport {
            dates: vec![
                rep("2026-11-23", DateOutcome::AlreadyComplete, 10),
                rep("2026-11-24", DateOutcome::Complete, 1200),
                rep(
                    "2026-11-25",
                    DateOutcome::Failed("sacct exited with 1: boom".into()),
                    0,
                ),
            ],
            sacct_calls: 3,
            sacct_failures: 1,
            sacct_version: "slurm 22.05.8".into(),
            ..Default::default()
        };
        let mut out = Vec::new();
        write_summary(&r, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.contains("2026-11-24   complete              1,200"),
            "{text}"
        );
        assert!(
            text.contains("2026-11-25: sacct exited with 1: boom"),
            "{text}"
        );
        assert!(
            text.contains("3 dates: 2 complete, 0 incomplete, 1 failed; 1,210 jobs; 3 unparsable"),
            "{text}"
        );
        // 3 calls, one failed: 2,400 rows from the other two (one date's retry).
        assert!(
            text.contains("sacct rows: 2,400 (1,200 per call, at most 2,400 in one)\n"),
            "{text}"
        );
        // A daemon cycle that asked only for the jobs active since the one before says so.
        let since = "2026-11-25T10:50:00Z".parse().unwrap();
        let r = CycleReport {
            incremental_since: Some(since),
            ..r
        };
        let mut out = Vec::new();
        write_summary(&r, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.contains(
                "at most 2,400 in one); incremental: jobs active since 2026-11-25 10:50:00 UTC\n"
            ),
            "{text}"
        );
    }

    #[test]
    fn no_sacct_call_no_rows_line() {
        let r = CycleReport::default();
        let mut out = Vec::new();
        write_summary(&r, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(!text.contains("sacct rows"), "{text}");
        assert!(text.contains("sacct: 0 calls"), "{text}");
    }
}
