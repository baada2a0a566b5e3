//! The first phase: a `collect` while the RUNNING and PENDING jobs of the mix are queued.

use crate::checks::{
    check_attribution, check_metrics, check_raw_against_sacct, check_records_against_sacct,
    check_status, check_window, Check,
};
use crate::expected::{memory_mb, tres};
use crate::setup::first;

/// Every job of the mix: the processed record agrees with `sacct -j ID` field by field
/// (ids, user, group, account, partition, state, exit code, times, elapsed, AllocCPUS,
/// TotalCPU of the allocation line, peak memory over steps, AllocTRES mem, node list, array
/// ids, time limit).
#[test]
fn first_collect_matches_sacct_job_by_job() {
    let Some(p) = first() else { return };
    let mut c = Check::default();
    check_records_against_sacct(p, &mut c);
    c.done("first collect vs sacct");
}

/// cpu_efficiency, memory_efficiency, wasted and reserved hours follow from the numbers
/// sacct reported (docs/metrics.md), computed here independently.
#[test]
fn first_collect_metrics_follow_from_sacct_numbers() {
    let Some(p) = first() else { return };
    let mut c = Check::default();
    check_metrics(p, &mut c);
    c.done("first collect metrics");
}

/// The raw partition holds every sacct line of each job (counted by JobIDRaw prefix), every
/// requested field verbatim (a `|` in JobName and Comment, a newline in SubmitLine included).
#[test]
fn first_collect_raw_partition_holds_every_sacct_row() {
    let Some(p) = first() else { return };
    let mut c = Check::default();
    check_raw_against_sacct(p, &mut c);
    c.done("first collect raw rows");
}

/// Jobs live in the partition of their start date (submit when never started) in the
/// configured zone; every job of sacct's windows is archived exactly once.
#[test]
fn first_collect_attributes_every_job_of_the_window_once() {
    let Some(p) = first() else { return };
    let mut c = Check::default();
    check_attribution(p, &mut c);
    check_window(p, &mut c);
    c.done("first collect attribution and window");
}

/// The RUNNING and PENDING jobs are archived as not complete, with zero usage (not null),
/// and keep their date incomplete in the tracker.
#[test]
fn running_and_pending_jobs_keep_their_date_incomplete() {
    let Some(p) = first() else { return };
    let mut c = Check::default();
    let completed = p.completed_dates();
    c.that(!completed.contains(&p.today.to_string()), || {
        format!("the tracker lists today ({}) as complete", p.today)
    });
    for key in ["running", "pending"] {
        let job = p.job(key);
        let (date, r) = p.record(&job.id);
        let id = format!("{} ({key})", job.id);
        c.eq(&id, "state", r.state.as_str(), job.expected.as_str());
        c.eq(&id, "is_complete", r.is_complete, false);
        c.eq(&id, "total_cpu_seconds", r.total_cpu_seconds, 0.0);
        c.eq(&id, "max_rss_mb", r.max_rss_mb, 0.0);
        c.eq(&id, "end_time", r.end_time, None);
        c.that(!completed.contains(&date.to_string()), || {
            format!("job {id}: its date {date} is marked complete")
        });
        let info = p.tracker_date(date);
        let unfinished = p.processed[&date].iter().filter(|j| !j.is_complete).count() as u64;
        c.eq(
            &id,
            "tracker incomplete_jobs of its date",
            info["incomplete_jobs"].as_u64(),
            Some(unfinished),
        );
        c.eq(
            &id,
            "tracker jobs of its date",
            info["jobs"].as_u64(),
            Some(p.processed[&date].len() as u64),
        );
        c.that(unfinished >= 1, || {
            format!("{date}: no unfinished job counted")
        });
    }
    let pending = p.record(&p.job("pending").id).1;
    c.eq("pending", "start_time", pending.start_time, None);
    c.eq("pending", "node_list", pending.node_list.as_str(), "");
    c.eq("pending", "elapsed_seconds", pending.elapsed_seconds, 0);
    c.eq("pending", "wait_seconds", pending.wait_seconds, None);
    let running = p.record(&p.job("running").id).1;
    c.that(
        running.start_time.is_some() && !running.node_list.is_empty(),
        || "running: no start or node".into(),
    );
    c.done("running/pending incomplete");
}

/// `slurm-usage status` after the first collect: dates covered, file counts, and each
/// date's state, jobs and unfinished jobs as the files and the tracker hold them.
#[test]
fn status_after_first_collect() {
    let Some(p) = first() else { return };
    let mut c = Check::default();
    check_status(p, &mut c);
    c.done("status after the first collect");
}

/// Sanity against reality, not only against sacct (linuxproc mode: in cgroup mode the memory
/// sacct reports is not the job's RSS): mem_hog held the 500 MB that dd filled; the 2-task
/// srun step's memory is the sum of its tasks (TRESUsageInTot), more than MaxRSS alone.
#[test]
fn memory_peaks_are_real() {
    let Some(p) = first() else { return };
    if p.rig.cgroup() {
        note!("[real_slurm] cgroup mode: memory sanity checks run in linuxproc mode only");
        return;
    }
    let mem_hog = p.record(&p.job("mem_hog").id).1;
    assert!(
        mem_hog.max_rss_mb >= 450.0,
        "mem_hog max_rss_mb {} < 450",
        mem_hog.max_rss_mb
    );
    assert!(
        mem_hog.memory_efficiency > 70.0,
        "mem_hog memory_efficiency {}",
        mem_hog.memory_efficiency
    );
    let multi = &p.after[&p.job("multi_step").id];
    let two_tasks = multi
        .iter()
        .find(|s| s["NTasks"] == "2")
        .expect("multi_step has a 2-task step");
    let tres_mem = tres(&two_tasks["TRESUsageInTot"], "mem")
        .and_then(memory_mb)
        .expect("TRESUsageInTot mem");
    let max_rss = memory_mb(&two_tasks["MaxRSS"]).expect("MaxRSS");
    assert!(
        tres_mem > max_rss,
        "2-task step: TRESUsageInTot mem {tres_mem} should sum both tasks (MaxRSS {max_rss})"
    );
    let rec = p.record(&p.job("multi_step").id).1;
    assert!(
        rec.max_rss_mb >= tres_mem,
        "multi_step max_rss_mb {} < its 2-task step {tres_mem}",
        rec.max_rss_mb
    );
}

/// cgroup mode only: the OOM job is archived OUT_OF_MEMORY, final, exit code as sacct has it.
#[test]
fn out_of_memory_job_in_cgroup_mode() {
    let Some(p) = first() else { return };
    if !p.rig.cgroup() {
        note!("[real_slurm] linuxproc mode: no OUT_OF_MEMORY job in the mix");
        return;
    }
    let job = p.job("oom");
    let r = p.record(&job.id).1;
    assert_eq!(r.state, "OUT_OF_MEMORY");
    assert!(r.is_complete);
    assert_eq!(r.exit_code, p.after[&job.id][0]["ExitCode"]);
}

/// The GPU jobs of the mix (`--gres=gpu:1`, `--gpus=2` on the node's `gres/gpu:2`): sacct's
/// AllocTRES carries `gres/gpu=N`, and the archive has those N GPUs and N x ElapsedRaw GPU
/// hours reserved; every other job reserved none.
#[test]
fn gpu_jobs_reserve_what_sacct_allocated() {
    let Some(p) = first() else { return };
    let mut c = Check::default();
    for (key, gpus) in [("gpu_one", 1), ("gpu_two", 2)] {
        let job = p.job(key);
        let line = &p.after[&job.id][0];
        let id = format!("{} ({key})", job.id);
        c.eq(
            &id,
            "sacct AllocTRES gres/gpu",
            tres(&line["AllocTRES"], "gres/gpu"),
            Some(gpus.to_string().as_str()),
        );
        let (_, r) = p.record(&job.id);
        let secs: f64 = line["ElapsedRaw"].parse().expect("ElapsedRaw");
        c.that(secs > 0.0, || format!("job {id}: ElapsedRaw {secs}"));
        c.eq(&id, "alloc_gpus", r.alloc_gpus, gpus);
        c.close(
            &id,
            "gpu_hours_reserved",
            r.gpu_hours_reserved,
            gpus as f64 * secs / 3600.0,
        );
    }
    for job in p.jobs.iter().filter(|j| !j.key.starts_with("gpu_")) {
        let (_, r) = p.record(&job.id);
        c.eq(&job.id, "alloc_gpus (no GPU asked)", r.alloc_gpus, 0);
        c.eq(&job.id, "gpu_hours_reserved", r.gpu_hours_reserved, 0.0);
    }
    c.done("GPU jobs");
}
