//! Jobs whose end reached slurmdbd late.
//!
//! An incremental window (`sacct -S since`) shows every job pending, running or ended at or
//! after `since` as slurmdbd knows it when asked. slurmctld sends job ends to slurmdbd
//! through a queue; when that queue backs up (slurmdbd restarted or busy, the database
//! slow), a job can end before `since` and have its end recorded only after the last cycle
//! ran. No later window shows it again, and its archived record would stay RUNNING until a
//! whole-day query of a date whose window it ended in, which for a job archived under an
//! older date may never come.
//!
//! After an incremental cycle, those jobs are exactly the archived unfinished jobs whose
//! record this cycle did not write: every unfinished job the answer showed was rewritten
//! with this cycle's `processed_date`. They are asked for by id (`sacct --jobs`, within
//! a window that reaches back to the oldest of their dates), and the ones now final are
//! written into their dates as a whole-day query would have written them. Jobs the answer
//! still shows unfinished are left as they are: no window shows them either (slurmdbd
//! lists only jobs with an eligible time), so whole-day queries would not change them.

use std::collections::HashSet;
use std::ffi::OsString;

use chrono::{DateTime, Days, NaiveDate, Utc};
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use super::writer::{Stashed, Writer};
use super::{on_blocking, CollectError, Collector, CycleReport};
use crate::metrics::{build_jobs, Context};
use crate::sacct::command::{run_once, sacct_args, with_retries};
use crate::sacct::parser::SacctOutput;
use crate::store::parquet::Existing;

/// Job ids per `sacct --jobs` call: ~10 bytes each keeps the command line near 10 KB.
const IDS_PER_CALL: usize = 1000;

/// An archived unfinished job that this cycle's answer did not show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Missed {
    pub job_id: String,
    pub job_id_raw: String,
    pub date: NaiveDate,
}

/// The archived unfinished jobs whose record is older than `this_cycle` (UTC microseconds),
/// in the dates that can hold any: not complete, with unfinished jobs by the tracker, no
/// older than `oldest`. A partition that does not decode is skipped (the next whole-day
/// check deals with it).
pub(super) fn missed(writer: &Writer, oldest: NaiveDate, this_cycle: i64) -> Vec<Missed> {
    let dates = writer.tracker.dates.iter().filter_map(|(key, info)| {
        let date = NaiveDate::parse_from_str(key, "%Y-%m-%d").ok()?;
        (date >= oldest && info.incomplete_jobs > 0 && !writer.tracker.is_complete(date))
            .then_some(date)
    });
    let mut out = Vec::new();
    for date in dates {
        match writer.archive.read_unfinished(date) {
            Ok(Existing::Found(jobs)) => out.extend(
                jobs.into_iter()
                    .filter(|j| j.processed_date.is_some_and(|t| t < this_cycle))
                    .filter(|j| !j.job_id_raw.is_empty())
                    .map(|j| Missed {
                        job_id: j.job_id,
                        job_id_raw: j.job_id_raw,
                        date,
                    }),
            ),
            Ok(_) => {}
            Err(e) => warn!(date = %date, "cannot read the unfinished jobs of the date: {e}"),
        }
    }
    out
}

/// The arguments of one by-id query: our fields, the window `[from, to)`, the ids.
fn args(c: &Collector, from: DateTime<Utc>, to: DateTime<Utc>, ids: &[Missed]) -> Vec<OsString> {
    let mut args = sacct_args(&c.layout, c.cluster.as_deref(), from, to);
    let list: Vec<&str> = ids.iter().map(|m| m.job_id_raw.as_str()).collect();
    args.push(format!("--jobs={}", list.join(",")).into());
    args
}

/// Asks sacct for the jobs the incremental answer missed and writes the final ones. A
/// failed query is logged and counted; its jobs stay as archived and are asked for again
/// by the next incremental cycle.
pub(super) async fn catch_up(
    c: &Collector,
    writer: Writer,
    report: &mut CycleReport,
    cancel: &CancellationToken,
) -> Result<Writer, CollectError> {
    let Some(started) = report.started else {
        return Ok(writer);
    };
    let this_cycle = started.timestamp_micros();
    let zone = c.config.zone();
    let today = zone.date_of(started);
    let oldest = today
        .checked_sub_days(Days::new(c.config.collect.max_recollect_days.into()))
        .unwrap_or(today);
    let (writer, missed) = on_blocking(writer, move |w| missed(w, oldest, this_cycle)).await?;
    let Some(first) = missed.iter().map(|m| m.date).min() else {
        return Ok(writer);
    };
    let (from, to) = (zone.day_start(first), zone.day_end(today));
    // By JobID, or by JobIDRaw for a job array's record of its tasks not started then: its
    // last task keeps the array's raw id (and `--jobs` with it answers every task).
    let wanted: HashSet<&str> = missed.iter().map(|m| m.job_id.as_str()).collect();
    let wanted_raw: HashSet<&str> = missed.iter().map(|m| m.job_id_raw.as_str()).collect();
    let ctx = Context {
        sacct_version: report.sacct_version.as_str().into(),
        processed_date: this_cycle,
    };
    let cfg = &c.config.collect;
    let mut found: Vec<Stashed> = Vec::new();
    for chunk in missed.chunks(IDS_PER_CALL) {
        let args = args(c, from, to, chunk);
        let a = with_retries(
            cfg.retries,
            cfg.retry_delay.0,
            cancel,
            "late job ends",
            || run_once(&c.sacct, &args, cfg.sacct_timeout.0, cancel),
        )
        .await;
        report.sacct_calls += a.calls;
        report.sacct_failures += a.failures;
        report.sacct_timeouts += a.timeouts;
        report.sacct_seconds += a.sacct_time.as_secs_f64();
        let run = match a.result {
            Ok(run) => run,
            // Shutting down: what was found so far is written, the rest asked next time.
            Err(_) if cancel.is_cancelled() => break,
            Err(e) => {
                warn!(
                    jobs = chunk.len(),
                    "sacct by job id failed; the jobs are asked for again next cycle: {e}"
                );
                continue;
            }
        };
        let out = SacctOutput::parse(run.stdout, &c.layout);
        report.late_rows += out.records.len() + out.malformed.len();
        let built = build_jobs(&out, &c.layout, &ctx);
        for (job, records) in built.jobs.into_iter().zip(built.records) {
            let asked = wanted.contains(job.job_id.as_str())
                || wanted_raw.contains(job.job_id_raw.as_str());
            if !job.is_complete || !asked {
                continue;
            }
            let raw = (records.iter())
                .map(|&r| out.record_text(&out.records[r as usize]).to_string())
                .collect();
            found.push(Stashed::new(job, raw));
        }
    }
    let (writer, written) = on_blocking(writer, move |w| w.write_late(found)).await?;
    match written {
        Ok(0) => debug!(
            jobs = missed.len(),
            "unfinished jobs the incremental window did not show are not final by id either"
        ),
        Ok(n) => {
            report.late_jobs += n;
            info!(
                jobs = n,
                asked = missed.len(),
                "jobs whose end reached slurmdbd after the last cycle's window, asked for by id and written"
            );
        }
        // Their dates' files stay as they were; the jobs are asked for again next cycle.
        Err(e) => {
            error!("writing jobs whose end reached slurmdbd late failed, previous files kept: {e}")
        }
    }
    Ok(writer)
}
