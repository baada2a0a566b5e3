//! `slurm-usage collect` end to end: the built binary against a fake sacct script.

mod util;

use std::time::{Duration, Instant};

use util::*;

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn several_days_are_collected_and_past_days_complete() {
    let env = Env::new("");
    for n in 1..=3 {
        let d = day(n);
        let mut lines = finished_job(&format!("{n}01"), "alice", &at(d, "10:00"), "COMPLETED");
        lines.extend(finished_job(
            &format!("{n}02"),
            "bob",
            &at(d, "11:00"),
            "FAILED",
        ));
        env.set_output(d, &lines);
    }
    env.set_output(day(0), &running_job("900", &at(day(0), "00:05")));
    let out = env.run(&["collect", "--days", "3"]);
    assert!(out.status.success());
    let text = stdout(&out);
    assert!(
        text.contains("4 dates: 3 complete, 1 incomplete, 0 failed; 7 jobs"),
        "{text}"
    );
    for n in 1..=3 {
        let jobs = env.jobs(day(n));
        assert_eq!(jobs.len(), 2);
        let a = jobs.iter().find(|j| j.user == "alice").unwrap();
        assert_eq!(a.total_cpu_seconds, 100.0);
        assert_eq!(a.cpu_efficiency, 50.0);
        assert_eq!(a.max_rss_mb, 512.0);
        assert_eq!(a.memory_efficiency, 50.0);
        assert_eq!(env.raw_keys(day(n)).len(), 4);
    }
    let mut completed = env.completed();
    completed.sort();
    assert_eq!(
        completed,
        [day(3).to_string(), day(2).to_string(), day(1).to_string()]
    );

    // Complete dates cost no sacct call; today is never complete.
    env.clear_calls();
    let out = env.run(&["collect", "--days", "3"]);
    assert!(out.status.success());
    assert_eq!(env.calls(), [day(0).to_string()]);
    assert!(stdout(&out).contains("complete (cached)"));
    assert!(!env.completed().contains(&day(0).to_string()));
}

#[test]
fn failing_sacct_leaves_files_untouched_and_date_incomplete() {
    let env = Env::new("");
    let d = day(1);
    let mut lines = finished_job("11", "alice", &at(d, "10:00"), "COMPLETED");
    lines.extend(running_job("12", &at(d, "12:00")));
    env.set_output(d, &lines);
    assert!(env.run(&["collect", "--days", "1"]).status.success());
    let before = std::fs::read(env.processed(d)).unwrap();
    let raw_before = std::fs::read(env.raw(d)).unwrap();

    env.set_failing(d, true);
    let out = env.run(&["collect", "--days", "1"]);
    assert_eq!(out.status.code(), Some(1));
    let all = stdout(&out) + &stderr(&out);
    assert!(
        all.contains("Connection refused"),
        "the child's stderr is shown"
    );
    assert!(all.contains("exit status: 1"));
    assert_eq!(std::fs::read(env.processed(d)).unwrap(), before);
    assert_eq!(std::fs::read(env.raw(d)).unwrap(), raw_before);
    assert!(!env.completed().contains(&d.to_string()));

    // Once sacct works again the date is collected (and is still incomplete: job 12 runs).
    env.set_failing(d, false);
    assert!(env.run(&["collect", "--days", "1"]).status.success());
    assert_eq!(env.jobs(d).len(), 2);
}

#[test]
fn hanging_sacct_is_killed_at_the_timeout() {
    let env = Env::new("");
    env.write_config("sacct_timeout = \"1s\"");
    env.set_hanging(day(0));
    env.set_output(
        day(1),
        &finished_job("21", "alice", &at(day(1), "09:00"), "COMPLETED"),
    );
    let t0 = Instant::now();
    let out = env.run(&["collect", "--days", "1"]);
    assert!(
        t0.elapsed() < Duration::from_secs(15),
        "took {:?}",
        t0.elapsed()
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).contains("did not finish within 1s"),
        "{}",
        stdout(&out)
    );
    // The other date is collected all the same.
    assert_eq!(env.jobs(day(1)).len(), 1);
    assert!(!env.processed(day(0)).exists());
}

#[test]
fn pipes_and_newlines_in_free_text_lose_no_job() {
    let env = Env::new("");
    let d = day(1);
    let mut lines = finished_job("31", "alice", &at(d, "10:00"), "COMPLETED");
    lines[0] = lines[0]
        .replace("\u{1f}work\u{1f}", "\u{1f}a|b job\u{1f}")
        .replace(
            "sbatch work.sh",
            "sbatch --wrap='grep x | wc -l\necho done'",
        );
    lines.extend(finished_job("32", "bob", &at(d, "11:00"), "COMPLETED"));
    env.set_output(d, &lines);
    let out = env.run(&["collect", "--days", "1"]);
    assert!(out.status.success());
    let jobs = env.jobs(d);
    assert_eq!(jobs.len(), 2);
    assert_eq!(
        jobs.iter().find(|j| j.job_id == "31").unwrap().job_name,
        "a|b job"
    );
    let submit = raw_column(&env.raw(d), "SubmitLine");
    assert!(
        submit.contains(&Some(
            "sbatch --wrap='grep x | wc -l\necho done'".to_string()
        )),
        "{submit:?}"
    );
}

#[test]
fn pending_job_moves_to_its_start_date_exactly_once() {
    let env = Env::new("");
    let (d, next) = (day(1), day(0));
    env.set_output(d, &pending_job("41", &at(d, "23:00")));
    assert!(env.run(&["collect", "--days", "1"]).status.success());
    assert_eq!(env.jobs(d).len(), 1);
    assert!(
        !env.completed().contains(&d.to_string()),
        "a pending job keeps its date open"
    );

    // It starts after midnight: both days' sacct show it, running.
    let started = running_job("41", &at(next, "00:30"));
    env.set_output(d, &started);
    env.set_output(next, &started);
    assert!(env.run(&["collect", "--days", "1"]).status.success());
    assert_eq!(env.jobs(d).len(), 0, "moved out of its submit date");
    let today = env.jobs(next);
    assert_eq!(today.len(), 1);
    assert_eq!(today[0].state, "RUNNING");
    assert!(env.raw_keys(d).is_empty());
    assert_eq!(env.raw_keys(next), ["41", "41.batch"]);
}

#[test]
fn pending_job_is_not_lost_when_its_start_date_fails() {
    let env = Env::new("");
    let (d, next) = (day(1), day(0));
    env.set_output(d, &pending_job("51", &at(d, "23:00")));
    assert!(env.run(&["collect", "--days", "1"]).status.success());
    env.set_output(d, &running_job("51", &at(next, "00:30")));
    env.set_failing(next, true);
    let out = env.run(&["collect", "--days", "1"]);
    assert_eq!(out.status.code(), Some(1));
    let total = env.jobs(d).len()
        + if env.processed(next).exists() {
            env.jobs(next).len()
        } else {
            0
        };
    assert_eq!(total, 1, "the job is in exactly one partition");
    assert_eq!(env.jobs(next)[0].job_id, "51");
}

#[test]
fn job_seen_in_next_days_window_is_written_once_to_its_start_date() {
    let env = Env::new("");
    let (d, next) = (day(2), day(1));
    // A long job started on d is reported again in next's window (it still ran then).
    let long = finished_job("61", "alice", &at(d, "22:00"), "COMPLETED");
    env.set_output(d, &long);
    env.set_output(next, &long);
    assert!(env.run(&["collect", "--days", "2"]).status.success());
    assert_eq!(env.jobs(d).len(), 1);
    assert_eq!(env.jobs(next).len(), 0);
}

#[test]
fn recollection_never_shrinks_raw_rows() {
    let env = Env::new("");
    let d = day(1);
    let mut lines = running_job("71", &at(d, "08:00"));
    lines.extend(finished_job("72", "alice", &at(d, "09:00"), "COMPLETED"));
    env.set_output(d, &lines);
    assert!(env.run(&["collect", "--days", "1"]).status.success());
    assert_eq!(env.raw_keys(d).len(), 4);

    // Job 71 finished; job 72 is gone from sacct (purged): it stays archived.
    env.set_output(d, &finished_job("71", "bob", &at(d, "08:00"), "COMPLETED"));
    assert!(env.run(&["collect", "--days", "1"]).status.success());
    let mut keys = env.raw_keys(d);
    keys.sort();
    assert_eq!(keys, ["71", "71.batch", "72", "72.batch"]);
    let jobs = env.jobs(d);
    assert_eq!(jobs.len(), 2);
    assert_eq!(
        jobs.iter().find(|j| j.job_id == "71").unwrap().state,
        "COMPLETED"
    );
    assert!(env.completed().contains(&d.to_string()));
}

#[test]
fn unparsable_line_is_counted_kept_and_the_rest_goes_on() {
    let env = Env::new("");
    let d = day(1);
    let mut lines = finished_job("81", "alice", &at(d, "10:00"), "COMPLETED");
    lines.push("81.0\u{1f}81.0\u{1f}truncated".into());
    lines.extend(finished_job("82", "bob", &at(d, "11:00"), "COMPLETED"));
    env.set_output(d, &lines);
    let out = env.run(&["collect", "--days", "1"]);
    assert!(out.status.success());
    assert!(
        stdout(&out).contains("1 unparsable sacct lines"),
        "{}",
        stdout(&out)
    );
    assert!(
        stderr(&out).contains("line=3"),
        "logged with its line number"
    );
    assert_eq!(env.jobs(d).len(), 2);
    let lines = raw_column(&env.raw(d), "RawLine");
    assert!(lines.contains(&Some("81.0\u{1f}81.0\u{1f}truncated".into())));
    assert_eq!(env.tracker()["dates"][d.to_string()]["parse_errors"], 1);
}

#[test]
fn invalid_utf8_is_replaced_not_fatal() {
    let env = Env::new("");
    let d = day(1);
    let mut bytes = finished_job("91", "alice", &at(d, "10:00"), "COMPLETED")
        .join("\n")
        .into_bytes();
    let pos = bytes.windows(4).position(|w| w == b"work").unwrap();
    bytes[pos] = 0xff;
    bytes.push(b'\n');
    env.set_output_bytes(d, &bytes);
    assert!(env.run(&["collect", "--days", "1"]).status.success());
    assert_eq!(env.jobs(d)[0].job_name, "\u{fffd}ork");
}

#[test]
fn corrupt_partition_is_moved_aside_and_the_date_recollected() {
    let env = Env::new("");
    let d = day(1);
    env.set_output(
        d,
        &finished_job("101", "alice", &at(d, "10:00"), "COMPLETED"),
    );
    std::fs::create_dir_all(env.data().join("processed")).unwrap();
    std::fs::write(env.processed(d), b"PAR1 not really").unwrap();
    let out = env.run(&["collect", "--days", "1"]);
    assert!(out.status.success());
    assert!(stderr(&out).contains("moved aside"), "logged");
    let aside: Vec<_> = std::fs::read_dir(env.data().join("processed"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.contains(".corrupt-"))
        .collect();
    assert_eq!(aside.len(), 1);
    assert_eq!(
        std::fs::read(env.data().join("processed").join(&aside[0])).unwrap(),
        b"PAR1 not really"
    );
    assert_eq!(env.jobs(d).len(), 1);
}

#[test]
fn python_tool_data_dir_is_read_and_extended() {
    use arrow_array::{
        BooleanArray, Float64Array, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
    };
    use arrow_schema::{DataType, Field, Schema, TimeUnit};
    use std::sync::Arc;

    let env = Env::new("");
    let d = day(1);
    let old = day(5);
    let processed = env.data().join("processed");
    std::fs::create_dir_all(&processed).unwrap();
    std::fs::create_dir_all(env.data().join("raw")).unwrap();
    // A processed file as the Python tool wrote it: naive timestamps, no extra columns.
    let schema = Arc::new(Schema::new(vec![
        Field::new("job_id", DataType::Utf8, false),
        Field::new("user", DataType::Utf8, false),
        Field::new("state", DataType::Utf8, false),
        Field::new(
            "start_time",
            DataType::Timestamp(TimeUnit::Microsecond, None),
            true,
        ),
        Field::new("elapsed_seconds", DataType::Int64, false),
        Field::new("cpu_hours_reserved", DataType::Float64, false),
        Field::new("is_complete", DataType::Boolean, false),
        Field::new(
            "processed_date",
            DataType::Timestamp(TimeUnit::Microsecond, None),
            false,
        ),
    ]));
    let start = d.and_hms_opt(3, 0, 0).unwrap().and_utc().timestamp_micros();
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(StringArray::from(vec!["500"])),
            Arc::new(StringArray::from(vec!["carol"])),
            Arc::new(StringArray::from(vec!["COMPLETED"])),
            Arc::new(TimestampMicrosecondArray::from(vec![Some(start)])),
            Arc::new(Int64Array::from(vec![3600])),
            Arc::new(Float64Array::from(vec![4.0])),
            Arc::new(BooleanArray::from(vec![true])),
            Arc::new(TimestampMicrosecondArray::from(vec![start])),
        ],
    )
    .unwrap();
    let f = std::fs::File::create(env.processed(d)).unwrap();
    let mut w = parquet::arrow::ArrowWriter::try_new(f, schema, None).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
    std::fs::write(
        env.data().join(".date_completion_tracker.json"),
        format!(r#"{{"completed_dates": ["{old}"], "last_updated": "2025-08-21 02:00:03.123456+00:00"}}"#),
    )
    .unwrap();

    env.set_output(
        d,
        &finished_job("501", "alice", &at(d, "10:00"), "COMPLETED"),
    );
    env.set_output(old, &finished_job("1", "x", &at(old, "10:00"), "COMPLETED"));
    let out = env.run(&["collect", "--days", "5"]);
    assert!(out.status.success());
    assert!(
        !env.calls().contains(&old.to_string()),
        "the Python tool's complete date is not queried"
    );
    let jobs = env.jobs(d);
    let ids: Vec<&str> = jobs.iter().map(|j| j.job_id.as_str()).collect();
    assert_eq!(
        ids,
        ["500", "501"],
        "the old job is kept, the new one added"
    );
    assert_eq!(jobs[0].user, "carol");
    assert_eq!(jobs[0].cpu_hours_reserved, 4.0);
    assert!(env.completed().contains(&old.to_string()));
    assert!(env.tracker()["last_updated"].is_string());
}

#[test]
fn second_collector_is_told_the_data_dir_is_busy() {
    let env = Env::new("");
    std::fs::create_dir_all(env.data()).unwrap();
    let held =
        slurm_usage::store::lock::try_lock(&env.data(), slurm_usage::store::lock::WRITE_LOCK)
            .unwrap();
    let out = env.run(&["collect"]);
    assert_eq!(out.status.code(), Some(75));
    assert!(stderr(&out).contains("busy"), "{}", stderr(&out));
    assert!(stderr(&out).contains(&format!("process {}", std::process::id())));

    // With --wait it waits for the holder and then runs.
    let child = slurm_usage()
        .args([
            "--config",
            env.config().to_str().unwrap(),
            "collect",
            "--wait",
            "--no-summary",
        ])
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(700));
    drop(held);
    let status = child.wait_with_output().unwrap().status;
    assert!(status.success());
}

#[test]
fn bad_config_names_the_file_and_line_and_exits_78() {
    let env = Env::new("");
    std::fs::write(
        env.config(),
        "[collect]\nlookback_days = 2\nmax_concurent_sacct = 4\n",
    )
    .unwrap();
    let out = env.run(&["collect"]);
    assert_eq!(out.status.code(), Some(78));
    let err = stderr(&out);
    assert!(
        err.contains("config.toml")
            && err.contains("line 3")
            && err.contains("max_concurent_sacct"),
        "{err}"
    );
    let out = env.run(&["config", "check"]);
    assert_eq!(out.status.code(), Some(78));
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/config/config.example.toml");
    let out = env.run(&["config", "check", example]);
    assert!(out.status.success());
}

#[test]
fn missing_sacct_says_how_to_set_its_path() {
    let env = Env::new("");
    env.write_config("");
    let text = std::fs::read_to_string(env.config()).unwrap().replace(
        &env.path().join("sacct").display().to_string(),
        "/nonexistent/sacct",
    );
    std::fs::write(env.config(), text).unwrap();
    let out = env.run(&["collect"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).contains("sacct = "),
        "hint names the config key: {}",
        stdout(&out)
    );
}

#[test]
fn status_reports_dates_and_completion() {
    let env = Env::new("");
    env.set_output(
        day(1),
        &finished_job("111", "alice", &at(day(1), "10:00"), "COMPLETED"),
    );
    assert!(env.run(&["collect", "--days", "1"]).status.success());
    let out = env.run(&["status"]);
    assert!(out.status.success());
    let text = stdout(&out);
    assert!(text.contains("2 processed, 2 raw"), "{text}");
    assert!(text.contains(&format!("{}   complete", day(1))), "{text}");
    assert!(text.contains(&format!("{}   incomplete", day(0))), "{text}");
    assert!(text.contains("Last success:"), "{text}");
}

#[test]
fn files_are_private_to_the_service_group() {
    use std::os::unix::fs::PermissionsExt;
    let env = Env::new("");
    env.set_output(
        day(1),
        &finished_job("121", "alice", &at(day(1), "10:00"), "COMPLETED"),
    );
    assert!(env.run(&["collect", "--days", "1"]).status.success());
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&env.processed(day(1))), 0o640);
    assert_eq!(mode(&env.raw(day(1))), 0o640);
    assert_eq!(mode(&env.data().join("processed")), 0o750);
    let leftovers: Vec<_> = std::fs::read_dir(env.data().join("processed"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.contains(".tmp-"))
        .collect();
    assert!(leftovers.is_empty());
}

/// Found on the real rig: a job submitted before midnight but eligible after it is not in
/// its submit date's sacct window; it is archived under its submit date from the next
/// date's output while pending, and must leave that date when it starts.
#[test]
fn job_eligible_after_midnight_moves_out_of_its_submit_date() {
    let env = Env::new("");
    let (d, next) = (day(1), day(0));
    env.set_output(
        d,
        &finished_job("131", "alice", &at(d, "10:00"), "COMPLETED"),
    );
    env.set_output(next, &pending_job("132", &at(d, "23:48")));
    assert!(env.run(&["collect", "--days", "1"]).status.success());
    assert_eq!(
        env.jobs(d).len(),
        2,
        "pending: archived under its submit date"
    );

    env.set_output(
        next,
        &running_job_submitted("132", &at(d, "23:48"), &at(next, "00:01")),
    );
    assert!(env.run(&["collect", "--days", "1"]).status.success());
    assert_eq!(
        env.jobs(d)
            .iter()
            .map(|j| j.job_id.as_str())
            .collect::<Vec<_>>(),
        ["131"]
    );
    assert_eq!(env.jobs(next).len(), 1);
    assert_eq!(env.raw_keys(d), ["131", "131.batch"]);

    assert!(env.run(&["collect", "--days", "1"]).status.success());
    assert!(
        env.completed().contains(&d.to_string()),
        "no stale pending copy keeps it open"
    );
}

/// The README's first command: the demo collects from the built-in synthetic sacct (here
/// forced) through the real collection path, a child process per date.
#[test]
fn demo_collects_from_the_synthetic_sacct() {
    let env = Env::new("");
    let out = env.run(&[
        "--data-dir",
        env.data().to_str().unwrap(),
        "demo",
        "--synthetic",
        "--days",
        "1",
        "--jobs-per-day",
        "200",
    ]);
    assert!(out.status.success());
    let text = stdout(&out);
    assert!(text.contains("synthetic sacct (200 jobs/day)"), "{text}");
    assert!(text.contains("0 failed"), "{text}");
    let jobs = env.jobs(day(1));
    assert!(jobs.len() >= 150, "{} jobs", jobs.len());
    assert!(jobs.iter().any(|j| j.cpu_efficiency > 0.0));
}

#[test]
fn an_out_of_range_n_parallel_is_a_usage_error_and_asks_nothing_of_sacct() {
    let env = Env::new("");
    for n in ["0", "65"] {
        let out = env.run(&["collect", "-n", n]);
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        assert!(
            stderr(&out).contains("--n-parallel must be between 1 and 64"),
            "{}",
            stderr(&out)
        );
    }
    assert!(env.calls().is_empty(), "{:?}", env.calls());
}

#[test]
fn an_error_names_its_cause_once() {
    let env = Env::new("");
    let file = env.path().join("a-file");
    std::fs::write(&file, b"").unwrap();
    let data = file.join("data");
    let out = env.run(&["--data-dir", data.to_str().unwrap(), "collect"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("cannot create the data dir"), "{err}");
    assert_eq!(err.matches("Not a directory").count(), 1, "{err}");
}

#[test]
fn days_beyond_ten_years_are_refused_without_force_and_ask_nothing_of_sacct() {
    let env = Env::new("");
    let out = env.run(&["collect", "--days", "100000"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("--days 100000 would run 100001 sacct queries"),
        "{err}"
    );
    assert!(err.contains("unless you add --force"), "{err}");
    assert!(env.calls().is_empty(), "{:?}", env.calls());
    assert!(
        !env.data().join("processed").exists(),
        "no partition was created"
    );
}

/// Issue #18: a job still running in a date's window is written to the date it started on;
/// that date then held only such jobs, counted as incomplete, and the next cycle queried it
/// whole, whose long jobs reached further back, and so on down to `max_recollect_days`.
/// Here each older date's output holds a job started 4 days before it: three cycles of
/// `collect --days 1` must ask sacct for today and yesterday only, and the jobs that spilled
/// over are still archived and kept up to date by the window that sees them.
#[test]
fn jobs_running_into_the_window_do_not_cascade_into_older_whole_days() {
    let env = Env::new("");
    let (today, yesterday) = (day(0), day(1));
    // Job 901 started 5 days ago and still runs: both window dates print it.
    let long = running_job("901", &at(day(5), "08:00"));
    let mut y = finished_job("902", "alice", &at(yesterday, "10:00"), "COMPLETED");
    y.extend(long.clone());
    env.set_output(yesterday, &y);
    env.set_output(today, &long);
    // If day 5 were queried whole it would bring job 903 of day 9, and day 9 job 904 of day 13.
    let mut d5 = long.clone();
    d5.extend(running_job("903", &at(day(9), "08:00")));
    env.set_output(day(5), &d5);
    let mut d9 = running_job("903", &at(day(9), "08:00"));
    d9.extend(running_job("904", &at(day(13), "08:00")));
    env.set_output(day(9), &d9);

    let mut asked = std::collections::BTreeSet::new();
    let mut calls = Vec::new();
    for cycle in 0..3 {
        if cycle == 2 {
            // Job 901 ended this morning: today's output says so.
            let done = with_field(
                &finished_job("901", "bob", &at(day(5), "08:00"), "COMPLETED"),
                "End",
                &at(today, "00:30"),
            );
            env.set_output(today, &done);
        }
        env.clear_calls();
        let out = env.run(&["collect", "--days", "1"]);
        assert!(out.status.success(), "{}", stderr(&out));
        calls.push(env.calls().len());
        asked.extend(env.calls());
    }
    let window = [yesterday.to_string(), today.to_string()];
    assert_eq!(
        asked.into_iter().collect::<Vec<_>>(),
        window,
        "only the window is queried whole"
    );
    // Yesterday is complete after the first cycle (its own job finished): today only.
    assert_eq!(calls, [2, 1, 1], "sacct calls per cycle");
    // The spilled job is archived at its start date and was kept up to date.
    let spilled = env.jobs(day(5));
    assert_eq!(spilled.len(), 1);
    assert_eq!(spilled[0].job_id, "901");
    assert_eq!(spilled[0].state, "COMPLETED");
    assert!(!env.processed(day(9)).exists());
    assert_eq!(env.jobs(yesterday).len(), 1, "job 902 only");

    // Asked for explicitly, the date is queried whole (and finds its other job's start date).
    env.clear_calls();
    assert!(env.run(&["collect", "--days", "5"]).status.success());
    assert!(env.calls().contains(&day(5).to_string()));
    assert_eq!(env.jobs(day(9)).len(), 1);
}

/// Issue #18: a date with no jobs costs one small query and no file churn. Today is queried
/// every cycle (it is never complete); when its output stays empty its files are not
/// rewritten (a rewrite would also re-upload them to a lake).
#[test]
fn an_empty_date_is_not_rewritten_when_nothing_changed() {
    let env = Env::new("");
    let today = day(0);
    env.set_output(today, &[]);
    assert!(env.run(&["collect", "--days", "0"]).status.success());
    let mtimes = || {
        [env.processed(today), env.raw(today)].map(|p| {
            std::fs::metadata(&p)
                .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
                .modified()
                .unwrap()
        })
    };
    let before = mtimes();
    assert!(env.jobs(today).is_empty());
    std::thread::sleep(Duration::from_millis(100));
    env.clear_calls();
    let out = env.run(&["collect", "--days", "0"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(env.calls(), [today.to_string()], "one query");
    assert_eq!(mtimes(), before, "files untouched");
    assert!(env.tracker()["dates"][today.to_string()]["last_collected"].is_string());

    // A job appears: the date is written.
    env.set_output(today, &running_job("1001", &at(today, "00:05")));
    assert!(env.run(&["collect", "--days", "0"]).status.success());
    assert_eq!(env.jobs(today).len(), 1);
    assert_ne!(mtimes(), before);
}

/// Issue #18: what a cycle asks of slurmdbd shows in the summary and the daemon's textfile:
/// sacct calls, the rows they returned, per call and at most. Yesterday prints 6 rows (two
/// finished jobs and a running one, each with its step), today 4: every cycle is the same 2
/// calls (yesterday stays open: its job runs) and 10 rows. The daemon queries whole days
/// every cycle here (`full_check = "always"`); its incremental cycles are
/// tests/incremental.rs's.
#[test]
fn sacct_calls_and_rows_show_in_the_summary_and_the_textfile() {
    let prom = tempfile::tempdir().unwrap();
    let textfile = prom.path().join("slurm_usage.prom");
    let env = Env::new(&format!(
        "lookback_days = 1\nfull_check = \"always\"\n[schedule]\ncron = \"* * * * * *\"\njitter = \"0s\"\n\
         [metrics]\ntextfile = \"{}\"",
        textfile.display()
    ));
    let (today, yesterday) = (day(0), day(1));
    let mut y = finished_job("1101", "alice", &at(yesterday, "01:00"), "COMPLETED");
    y.extend(finished_job(
        "1102",
        "bob",
        &at(yesterday, "02:00"),
        "FAILED",
    ));
    y.extend(running_job("1103", &at(yesterday, "03:00")));
    env.set_output(yesterday, &y);
    let mut t = finished_job("1104", "alice", &at(today, "00:01"), "COMPLETED");
    t.extend(running_job("1105", &at(today, "00:02")));
    env.set_output(today, &t);

    let out = env.run(&["collect", "--days", "1"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("sacct: 2 calls (0 failed"), "{text}");
    assert!(
        text.contains("sacct rows: 10 (5 per call, at most 6 in one)\n"),
        "{text}"
    );

    let mut d = Daemon::start(env.path(), &env.config(), &[]);
    d.expect_status("collected ", Duration::from_secs(20));
    let deadline = Instant::now() + Duration::from_secs(10);
    let metrics = loop {
        let m = std::fs::read_to_string(&textfile).unwrap_or_default();
        if m.contains("slurm_usage_last_cycle_sacct_rows ") || Instant::now() > deadline {
            break m;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    for line in [
        "slurm_usage_last_cycle_sacct_calls 2",
        "slurm_usage_last_cycle_sacct_rows 10",
        "slurm_usage_last_cycle_sacct_rows_max 6",
    ] {
        assert!(metrics.lines().any(|l| l == line), "{line} in\n{metrics}");
    }
    let total: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("slurm_usage_sacct_rows_total "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(total >= 10 && total.is_multiple_of(10), "{metrics}");
    d.signal("TERM");
    assert!(d.wait_exit(Duration::from_secs(10)).success());
}

/// `lines` of a job of `cluster` (sacct -M prints the cluster's name in `Cluster`).
fn of(cluster: &str, lines: Vec<String>) -> Vec<String> {
    with_field(&lines, "Cluster", cluster)
}

fn json(o: &std::process::Output) -> serde_json::Value {
    assert!(o.status.success(), "{}", stderr(o));
    serde_json::from_slice(&o.stdout).unwrap()
}

fn cluster_jobs_in_report(v: &serde_json::Value, cluster: &str) -> u64 {
    v["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["cluster"] == cluster)
        .unwrap_or_else(|| panic!("no cluster {cluster} in {v}"))["jobs"]
        .as_u64()
        .unwrap()
}

#[test]
fn every_listed_cluster_is_collected_into_its_own_dir_and_read_back() {
    let env = Env::new("clusters = [\"alpha\", \"beta\"]");
    let d = day(1);
    let start = at(d, "10:00");
    env.set_cluster_output(
        "alpha",
        d,
        &of("alpha", finished_job("101", "alice", &start, "COMPLETED")),
    );
    let mut beta = finished_job("101", "bob", &start, "COMPLETED");
    beta.extend(finished_job("102", "bob", &at(d, "11:00"), "FAILED"));
    env.set_cluster_output("beta", d, &of("beta", beta));

    let out = env.run(&["collect", "--days", "1"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("cluster alpha:") && text.contains("cluster beta:"),
        "{text}"
    );
    let mut calls = env.calls();
    calls.sort();
    assert_eq!(
        calls,
        [
            format!("alpha/{d}"),
            format!("alpha/{}", day(0)),
            format!("beta/{d}"),
            format!("beta/{}", day(0)),
        ]
    );
    // Each cluster's jobs once, in its own dir, with its own tracker; nothing at the top.
    let alpha = env.cluster_jobs("alpha", d);
    assert_eq!(alpha.len(), 1);
    assert!(alpha.iter().all(|j| j.cluster == "alpha"));
    let beta = env.cluster_jobs("beta", d);
    assert_eq!(beta.len(), 2);
    assert!(beta.iter().all(|j| j.cluster == "beta"));
    assert!(!env.data().join("processed").exists());
    assert!(!env.data().join(".date_completion_tracker.json").exists());
    assert_eq!(env.cluster_completed("alpha"), [d.to_string()]);
    assert_eq!(env.cluster_completed("beta"), [d.to_string()]);

    // The reports read one archive per cluster: 101 counts once per cluster.
    let v = json(&env.run(&["analyze", "--no-sinfo", "--format", "json", "--days", "3"]));
    assert_eq!(cluster_jobs_in_report(&v, "alpha"), 1);
    assert_eq!(cluster_jobs_in_report(&v, "beta"), 2);
    let v = json(&env.run(&[
        "analyze",
        "--no-sinfo",
        "--format",
        "json",
        "--days",
        "3",
        "--cluster",
        "beta",
    ]));
    assert_eq!(v["clusters"].as_array().unwrap().len(), 1);
    let out = env.run(&["job", "101"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("job 101 is archived for 2 clusters: alpha, beta"),
        "{err}"
    );
    let out = env.run(&["job", "101", "--cluster", "beta"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("Cluster: beta"), "{}", stdout(&out));

    // `status` has a section per cluster; `test` asks sacct about each.
    let out = env.run(&["status"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("Cluster alpha:") && text.contains("Cluster beta:"),
        "{text}"
    );
    assert!(text.contains("cluster=beta"), "{text}");
    assert!(!text.contains("Top level"), "{text}");
    env.clear_calls();
    let text = stdout(&env.run(&["test"]));
    assert!(
        text.contains("cluster alpha: ") && text.contains("cluster beta: "),
        "{text}"
    );
    // (The accounting check's one call asks the local cluster.)
    let mut calls: Vec<String> = env
        .calls()
        .into_iter()
        .filter(|c| c.contains('/'))
        .collect();
    calls.sort();
    assert_eq!(
        calls,
        [format!("alpha/{}", day(0)), format!("beta/{}", day(0))]
    );

    // Complete dates cost no call, per cluster.
    env.clear_calls();
    assert!(env.run(&["collect", "--days", "1"]).status.success());
    let mut calls = env.calls();
    calls.sort();
    assert_eq!(
        calls,
        [format!("alpha/{}", day(0)), format!("beta/{}", day(0))]
    );
}

#[test]
fn one_cluster_failing_never_holds_back_the_other() {
    let env = Env::new("clusters = [\"alpha\", \"beta\"]\nmax_concurrent_sacct = 1");
    let d = day(1);
    env.set_cluster_output(
        "alpha",
        d,
        &of(
            "alpha",
            finished_job("7", "alice", &at(d, "10:00"), "COMPLETED"),
        ),
    );
    env.set_cluster_output(
        "beta",
        d,
        &of(
            "beta",
            finished_job("8", "bob", &at(d, "10:00"), "COMPLETED"),
        ),
    );
    env.set_cluster_failing("alpha", d, true);

    let out = env.run(&["collect", "--days", "1"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(stdout(&out).contains("FAILED"), "{}", stdout(&out));
    assert_eq!(env.cluster_completed("beta"), [d.to_string()]);
    assert_eq!(env.cluster_jobs("beta", d).len(), 1);
    assert!(env.cluster_completed("alpha").is_empty());
    assert!(!env
        .cluster_data("alpha")
        .join("processed")
        .join(format!("{d}.parquet"))
        .exists());

    // Once alpha answers, it catches up; beta's complete date costs no call.
    env.set_cluster_failing("alpha", d, false);
    env.clear_calls();
    let out = env.run(&["collect", "--days", "1"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!env.calls().contains(&format!("beta/{d}")));
    assert_eq!(env.cluster_completed("alpha"), [d.to_string()]);
    assert_eq!(env.cluster_jobs("alpha", d)[0].cluster, "alpha");
}

/// A data dir collected before `clusters` was set keeps its top level; the reports read
/// it as the cluster its rows name, next to the clusters' dirs.
#[test]
fn the_top_level_of_an_older_data_dir_is_still_read() {
    let env = Env::new("");
    let (old, new) = (day(2), day(1));
    env.set_output(
        old,
        &of(
            "alpha",
            finished_job("5", "alice", &at(old, "10:00"), "COMPLETED"),
        ),
    );
    assert!(env.run(&["collect", "--days", "2"]).status.success());
    assert_eq!(env.jobs(old).len(), 1);

    env.write_config("clusters = [\"alpha\"]");
    env.set_cluster_output(
        "alpha",
        new,
        &of(
            "alpha",
            finished_job("6", "alice", &at(new, "10:00"), "COMPLETED"),
        ),
    );
    // The same job in both places counts once.
    env.set_cluster_output(
        "alpha",
        old,
        &of(
            "alpha",
            finished_job("5", "alice", &at(old, "10:00"), "COMPLETED"),
        ),
    );
    assert!(env.run(&["collect", "--days", "2"]).status.success());
    assert_eq!(env.jobs(old).len(), 1, "the top level is kept");
    let v = json(&env.run(&["analyze", "--no-sinfo", "--format", "json", "--days", "5"]));
    assert_eq!(cluster_jobs_in_report(&v, "alpha"), 2);
    assert!(env.run(&["job", "5"]).status.success());
    let text = stdout(&env.run(&["status"]));
    assert!(
        text.contains("Top level (collected before [collect] clusters):")
            && text.contains("Cluster alpha:"),
        "{text}"
    );
}

/// With a lake, each listed cluster uploads its own directory under its own `cluster=`.
#[test]
fn each_listed_cluster_uploads_under_its_own_name() {
    let env = Env::new("");
    let lake = env.path().join("lake");
    std::fs::create_dir_all(&lake).unwrap();
    env.write_config(&format!(
        "clusters = [\"alpha\", \"beta\"]\n[lake]\nurl = \"file://{}\"",
        lake.display()
    ));
    let d = day(1);
    for c in ["alpha", "beta"] {
        env.set_cluster_output(
            c,
            d,
            &of(c, finished_job("1", "alice", &at(d, "10:00"), "COMPLETED")),
        );
    }
    let out = env.run(&["collect", "--days", "1"]);
    assert!(out.status.success(), "{}", stderr(&out));
    for c in ["alpha", "beta"] {
        let part = lake
            .join("processed")
            .join(format!("cluster={c}"))
            .join(format!("date={d}"))
            .join("part-0.parquet");
        assert!(
            part.is_file(),
            "{} missing\n{}",
            part.display(),
            stdout(&out)
        );
        assert!(env.cluster_data(c).join("lake-state.json").is_file());
    }
    // `[lake] cluster` would send every cluster under one name: refused.
    env.write_config(&format!(
        "clusters = [\"alpha\"]\n[lake]\nurl = \"file://{}\"\ncluster = \"x\"",
        lake.display()
    ));
    let out = env.run(&["collect", "--days", "1"]);
    assert_eq!(out.status.code(), Some(78), "{}", stderr(&out));
}

/// `lake sync` and `lake status` work per listed cluster: `--cluster` picks one, without it
/// every cluster is synced and reported (a JSON array with `[collect] clusters`).
#[test]
fn lake_commands_work_per_listed_cluster() {
    let env = Env::new("");
    let lake = env.path().join("lake");
    std::fs::create_dir_all(&lake).unwrap();
    let d = day(1);
    for c in ["alpha", "beta"] {
        env.set_cluster_output(
            c,
            d,
            &of(c, finished_job("1", "alice", &at(d, "10:00"), "COMPLETED")),
        );
    }
    // Collected before the lake was configured: everything is pending.
    env.write_config("clusters = [\"alpha\", \"beta\"]");
    let out = env.run(&["collect", "--days", "1"]);
    assert!(out.status.success(), "{}", stderr(&out));
    env.write_config(&format!(
        "clusters = [\"alpha\", \"beta\"]\n[lake]\nurl = \"file://{}\"",
        lake.display()
    ));
    let pending = |env: &Env| -> Vec<(String, usize)> {
        let out = env.run(&["lake", "status", "--json"]);
        assert!(out.status.success(), "{}", stderr(&out));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        v.as_array()
            .expect("one object per cluster")
            .iter()
            .map(|c| {
                let n = c["pending"].as_array().unwrap().len();
                (c["cluster"].as_str().unwrap().to_string(), n)
            })
            .collect()
    };
    let before = pending(&env);
    assert_eq!(before.len(), 2, "{before:?}");
    assert!(before.iter().all(|(_, n)| *n > 0), "{before:?}");

    let out = env.run(&["lake", "sync", "--cluster", "beta"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let object = |c: &str| {
        lake.join("processed")
            .join(format!("cluster={c}"))
            .join(format!("date={d}"))
            .join("part-0.parquet")
    };
    assert!(object("beta").is_file());
    assert!(!object("alpha").exists(), "--cluster beta uploaded alpha");
    let mid = pending(&env);
    assert_eq!(mid[0].0, "alpha");
    assert_eq!(
        (mid[0].1 > 0, mid[1].clone()),
        (true, ("beta".to_string(), 0))
    );

    let out = env.run(&["lake", "sync"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(object("alpha").is_file());
    assert!(pending(&env).iter().all(|(_, n)| *n == 0));

    let out = env.run(&["lake", "sync", "--cluster", "gamma"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("not in [collect] clusters (alpha, beta)"),
        "{}",
        stderr(&out)
    );
}

/// sacct prints a job array's tasks that have not started as one record whose JobID names
/// what is left (`70_[2-3]`) and whose JobIDRaw is the array's own id (70), which the last
/// task to start keeps (`70_3`, JobIDRaw 70). The record of the pending rest is replaced as
/// the rest shrinks, never kept beside it: else the date keeps a pending job forever and
/// never completes.
/// A job array's record submitted at `submit`: a task started at `start`, or (`None`) the
/// record of the tasks not started yet.
fn array_record(
    id: &str,
    raw: &str,
    state: &str,
    submit: &str,
    start: Option<String>,
) -> Vec<String> {
    let mut alloc = vec![
        ("JobID", id),
        ("JobIDRaw", raw),
        ("User", "alice"),
        ("Partition", "cpu"),
        ("State", state),
        ("Submit", submit),
        ("Eligible", submit),
        ("Start", start.as_deref().unwrap_or("Unknown")),
        ("End", start.as_deref().unwrap_or("Unknown")),
        ("ElapsedRaw", if start.is_some() { "60" } else { "0" }),
        ("AllocCPUS", if start.is_some() { "1" } else { "0" }),
        ("ReqMem", "1G"),
        ("JobName", "arr"),
    ];
    if start.is_none() {
        alloc.push(("NodeList", "None assigned"));
    }
    vec![line(&alloc)]
}

#[test]
fn a_pending_array_record_is_replaced_as_its_tasks_start() {
    let env = Env::new("");
    let d = day(2);
    let submit = at(d, "10:00");
    let array = |id: &str, raw: &str, state: &str, start: Option<&str>| {
        array_record(id, raw, state, &submit, start.map(|hm| at(d, hm)))
    };
    let done = |id: &str, raw: &str, hm: &str| array(id, raw, "COMPLETED", Some(hm));
    let ids = |env: &Env| {
        let mut v: Vec<String> = env.jobs(d).iter().map(|j| j.job_id.to_string()).collect();
        v.sort();
        v
    };
    env.set_output(d, &array("70_[1-3]", "70", "PENDING", None));
    assert!(env.run(&["collect", "--days", "2"]).status.success());
    assert_eq!(ids(&env), ["70_[1-3]"]);

    let mut lines = done("70_1", "71", "10:05");
    lines.extend(array("70_[2-3]", "70", "PENDING", None));
    env.set_output(d, &lines);
    assert!(env.run(&["collect", "--days", "2"]).status.success());
    assert_eq!(ids(&env), ["70_1", "70_[2-3]"]);

    let mut lines = done("70_1", "71", "10:05");
    lines.extend(done("70_2", "72", "10:06"));
    lines.extend(done("70_3", "70", "10:07"));
    env.set_output(d, &lines);
    assert!(env.run(&["collect", "--days", "2"]).status.success());
    assert_eq!(ids(&env), ["70_1", "70_2", "70_3"]);
    assert!(env.completed().contains(&d.to_string()), "every job final");
}

/// The same when the tasks start on the next day and the submit date's own sacct fails: the
/// record of the pending rest leaves the submit date once the last task (same JobIDRaw) is
/// written at its start date.
#[test]
fn a_pending_array_record_leaves_its_submit_date_when_the_last_task_starts_later() {
    let env = Env::new("");
    let (d, next) = (day(1), day(0));
    let submit = at(d, "23:00");
    let pending = array_record("80_[1-2]", "80", "PENDING", &submit, None);
    env.set_output(d, &pending);
    assert!(env.run(&["collect", "--days", "1"]).status.success());
    assert_eq!(env.jobs(d).len(), 1);
    assert_eq!(env.raw_keys(d), ["80"]);

    let mut started = array_record("80_1", "81", "COMPLETED", &submit, Some(at(next, "00:10")));
    started.extend(array_record(
        "80_2",
        "80",
        "COMPLETED",
        &submit,
        Some(at(next, "00:20")),
    ));
    env.set_output(next, &started);
    env.set_failing(d, true);
    let out = env.run(&["collect", "--days", "1"]);
    assert_eq!(out.status.code(), Some(1), "the submit date's sacct failed");
    let mut ids: Vec<String> = env
        .jobs(next)
        .iter()
        .map(|j| j.job_id.to_string())
        .collect();
    ids.sort();
    assert_eq!(ids, ["80_1", "80_2"]);
    assert!(env.jobs(d).is_empty(), "the pending rest's record left {d}");
    assert!(env.raw_keys(d).is_empty());
}
