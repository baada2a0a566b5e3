//! The second phase: after `jobs.sh finish`, a second `collect` into a copy of the first
//! phase's data dir.

use std::collections::BTreeSet;

use crate::checks::{
    check_attribution, check_metrics, check_raw_against_sacct, check_records_against_sacct,
    check_status, check_window, Check,
};
use crate::setup::second;

/// After `jobs.sh finish` and a second collect: the formerly RUNNING and PENDING jobs are
/// CANCELLED and complete, their records were rewritten, and every job again agrees with
/// sacct (records and metrics).
#[test]
fn second_collect_completes_the_records() {
    let Some((one, two)) = second() else { return };
    let mut c = Check::default();
    check_records_against_sacct(two, &mut c);
    check_metrics(two, &mut c);
    for key in ["running", "pending"] {
        let job = two.job(key);
        let id = format!("{} ({key})", job.id);
        let before = one.record(&job.id).1;
        let (_, r) = two.record(&job.id);
        c.eq(&id, "state", r.state.as_str(), "CANCELLED");
        c.eq(&id, "is_complete", r.is_complete, true);
        c.that(r.end_time.is_some(), || format!("job {id}: no end_time"));
        c.that(r.processed_date > before.processed_date, || {
            format!("job {id}: record not rewritten")
        });
    }
    let running = two.record(&two.job("running").id).1;
    c.that(running.elapsed_seconds > 0, || {
        "running job: elapsed 0 after it was cancelled".into()
    });
    let pending = two.record(&two.job("pending").id).1;
    c.eq(
        "pending",
        "start_time (cancelled while pending)",
        pending.start_time,
        None,
    );
    c.eq("pending", "node_list", pending.node_list.as_str(), "");
    c.done("second collect vs sacct");
}

/// The second collect keeps every raw row of the first (no file and no job lost rows) and
/// the raw partitions still hold exactly sacct's lines of every job.
#[test]
fn second_collect_keeps_every_raw_row() {
    let Some((one, two)) = second() else { return };
    let mut c = Check::default();
    check_raw_against_sacct(two, &mut c);
    for (d, rows) in &one.raw {
        let later = two.raw.get(d).map_or(0, Vec::len);
        c.that(later >= rows.len(), || {
            format!(
                "raw {d}: {} rows after the first collect, {later} after the second",
                rows.len()
            )
        });
        let keys: BTreeSet<&str> = two
            .raw
            .get(d)
            .into_iter()
            .flatten()
            .filter_map(|r| r.get("JobIDRaw")?.as_deref())
            .collect();
        for k in rows.iter().filter_map(|r| r.get("JobIDRaw")?.as_deref()) {
            c.that(keys.contains(k), || {
                format!("raw {d}: row {k} lost by the second collect")
            });
        }
    }
    for job in &two.jobs {
        let raw = &two.after[&job.id][0]["JobIDRaw"];
        let (n1, n2) = (one.raw_rows(raw).len(), two.raw_rows(raw).len());
        c.that(n2 >= n1, || {
            format!("job {}: raw rows shrank from {n1} to {n2}", job.id)
        });
    }
    c.done("second collect raw rows");
}

/// After the second collect every job is in exactly one processed file (job ids never
/// duplicated across files), at its date, and the window is complete.
#[test]
fn second_collect_keeps_every_job_exactly_once() {
    let Some((one, two)) = second() else { return };
    let mut c = Check::default();
    check_attribution(two, &mut c);
    check_window(two, &mut c);
    for (d, jobs) in &one.processed {
        for j in jobs {
            c.that(two.records(&j.job_id).len() == 1, || {
                format!(
                    "job {} of {d} is not archived once after the second collect",
                    j.job_id
                )
            });
        }
    }
    c.done("second collect: every job once");
}

/// The tracker and `status` after the second collect: the date of the mix has no
/// unfinished job of the mix left; today is still not complete (the day is not over).
#[test]
fn second_collect_tracker_and_status() {
    let Some((_, two)) = second() else { return };
    let mut c = Check::default();
    c.that(
        !two.completed_dates().contains(&two.today.to_string()),
        || "today is marked complete before it ended".into(),
    );
    for (d, jobs) in &two.processed {
        let info = two.tracker_date(*d);
        let unfinished = jobs.iter().filter(|j| !j.is_complete).count() as u64;
        c.eq(
            &d.to_string(),
            "tracker incomplete_jobs",
            info["incomplete_jobs"].as_u64(),
            Some(unfinished),
        );
        c.eq(
            &d.to_string(),
            "tracker jobs",
            info["jobs"].as_u64(),
            Some(jobs.len() as u64),
        );
        c.eq(
            &d.to_string(),
            "tracker parse_errors",
            info["parse_errors"].as_u64(),
            Some(0),
        );
    }
    for job in &two.jobs {
        c.that(two.record(&job.id).1.is_complete, || {
            format!("job {} ({}) still incomplete", job.id, job.key)
        });
    }
    check_status(two, &mut c);
    c.done("second collect tracker and status");
}
