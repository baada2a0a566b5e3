//! Bad sacct output and hostile values, end to end (issue 7): truncated output, garbage with
//! exit 0, a wrong field count, a 64 MB line (stands in for the 1 GB line, to keep the
//! test fast), an empty day, a sacct killed by a signal, shell metacharacters / `../` /
//! newlines in job and user names. Each: no panic, counted, nothing archived lost.

mod util;

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use util::*;

fn all_output(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr)
}

/// Exit 0 (all good) or 1 (something failed), never a panic (101) or a signal.
fn no_panic(o: &std::process::Output) {
    assert!(
        matches!(o.status.code(), Some(0) | Some(1)),
        "collect crashed: {:?}\n{}",
        o.status,
        all_output(o)
    );
    assert!(!all_output(o).contains("panicked"), "{}", all_output(o));
}

/// A first collection of `d` with jobs `ids`; returns the partitions' bytes.
fn archived(env: &Env, d: chrono::NaiveDate, ids: &[&str]) -> (Vec<u8>, Vec<u8>) {
    let mut lines = Vec::new();
    for id in ids {
        lines.extend(finished_job(id, "alice", &at(d, "10:00"), "COMPLETED"));
    }
    env.set_output(d, &lines);
    assert!(env.run(&["collect", "--days", "1"]).status.success());
    (
        std::fs::read(env.processed(d)).unwrap(),
        std::fs::read(env.raw(d)).unwrap(),
    )
}

fn job_ids(env: &Env, d: chrono::NaiveDate) -> BTreeSet<String> {
    env.jobs(d).into_iter().map(|j| j.job_id.into()).collect()
}

#[test]
fn truncated_output_keeps_the_cut_line_and_loses_no_job() {
    // Days stay incomplete (settle far away) so each collect re-reads the date.
    let env = Env::new("settle = \"1000d\"");
    let d = day(1);
    archived(&env, d, &["40"]);
    let mut text = finished_job("41", "alice", &at(d, "10:00"), "COMPLETED").join("\n");
    text.push('\n');
    let cut = finished_job("42", "bob", &at(d, "11:00"), "COMPLETED")[0].clone();
    text.push_str(&cut[..cut.len() / 2]); // the last line cut, no newline
    env.set_output_bytes(d, text.as_bytes());
    let out = env.run(&["collect", "--days", "1"]);
    no_panic(&out);
    assert!(
        all_output(&out).contains("1 unparsable sacct lines"),
        "{}",
        all_output(&out)
    );
    assert_eq!(job_ids(&env, d), ["40", "41"].map(String::from).into());
    assert!(raw_column(&env.raw(d), "RawLine").contains(&Some(cut[..cut.len() / 2].into())));
    assert!(!env.completed().contains(&d.to_string()));
}

#[test]
fn exit_0_with_garbage_keeps_the_archive() {
    let env = Env::new("settle = \"1000d\"");
    let d = day(1);
    let (_, raw_before) = archived(&env, d, &["50", "51"]);
    env.set_output_bytes(
        d,
        b"sacct: this is not accounting data\n\x00\x01\x02\xff\xfe garbage\n<html>502 Bad Gateway</html>\n",
    );
    let out = env.run(&["collect", "--days", "1"]);
    no_panic(&out);
    assert!(
        all_output(&out).contains("3 unparsable sacct lines"),
        "{}",
        all_output(&out)
    );
    assert_eq!(job_ids(&env, d), ["50", "51"].map(String::from).into());
    let keys = env.raw_keys(d);
    assert!(keys.iter().filter(|k| *k == "50" || *k == "51").count() >= 2);
    assert!(std::fs::read(env.raw(d)).unwrap().len() >= raw_before.len() / 2);
    assert!(!env.completed().contains(&d.to_string()));
}

#[test]
fn wrong_field_count_is_counted_and_the_rest_goes_on() {
    let env = Env::new("");
    let d = day(1);
    let mut lines = finished_job("61", "alice", &at(d, "10:00"), "COMPLETED");
    lines.push("62\u{1f}62\u{1f}bob\u{1f}cpu\u{1f}COMPLETED".into()); // 5 of 62 fields
    lines.extend(finished_job("63", "bob", &at(d, "11:00"), "COMPLETED"));
    env.set_output(d, &lines);
    let out = env.run(&["collect", "--days", "1"]);
    no_panic(&out);
    assert!(
        all_output(&out).contains("1 unparsable sacct lines"),
        "{}",
        all_output(&out)
    );
    assert_eq!(job_ids(&env, d), ["61", "63"].map(String::from).into());
    assert_eq!(env.tracker()["dates"][d.to_string()]["parse_errors"], 1);
}

#[test]
fn a_64_mb_line_is_not_fatal() {
    let env = Env::new("");
    let d = day(1);
    let mut text = finished_job("71", "alice", &at(d, "10:00"), "COMPLETED").join("\n");
    text.push('\n');
    text.push_str("72\u{1f}");
    text.push_str(&"x".repeat(64 << 20));
    text.push('\n');
    text.push_str(&finished_job("73", "bob", &at(d, "11:00"), "COMPLETED").join("\n"));
    text.push('\n');
    env.set_output_bytes(d, text.as_bytes());
    let out = env.run(&["collect", "--days", "1"]);
    no_panic(&out);
    let ids = job_ids(&env, d);
    assert!(ids.contains("71") && ids.contains("73"), "{ids:?}");
    assert!(
        all_output(&out).contains("1 unparsable sacct lines"),
        "{}",
        all_output(&out)
    );
}

#[test]
fn an_empty_day_keeps_what_was_archived() {
    let env = Env::new("settle = \"1000d\"");
    let d = day(1);
    let (before, _) = archived(&env, d, &["81", "82"]);
    env.set_output(d, &[]);
    let out = env.run(&["collect", "--days", "1"]);
    no_panic(&out);
    assert!(out.status.success());
    assert_eq!(job_ids(&env, d), ["81", "82"].map(String::from).into());
    assert!(!before.is_empty());
    // A date that never had jobs: no panic, nothing invented.
    let e = day(2);
    env.set_output(e, &[]);
    no_panic(&env.run(&["collect", "--days", "2"]));
    if env.processed(e).exists() {
        assert!(env.jobs(e).is_empty());
    }
}

#[test]
fn sacct_killed_by_a_signal_fails_the_date_and_touches_nothing() {
    let env = Env::new("settle = \"1000d\"");
    let d = day(1);
    let (proc_before, raw_before) = archived(&env, d, &["91", "92"]);
    let killer = env.path().join("sacct");
    let half = finished_job("93", "bob", &at(d, "11:00"), "COMPLETED")[0].clone();
    std::fs::write(
        &killer,
        format!(
            "#!/bin/bash\nif [[ \"$1\" == \"--version\" ]]; then echo 'slurm 22.05.8'; exit 0; fi\nprintf '%s\\n' '{}'\nkill -9 $$\n",
            half
        ),
    )
    .unwrap();
    std::fs::set_permissions(&killer, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = env.run(&["collect", "--days", "1"]);
    no_panic(&out);
    assert_eq!(out.status.code(), Some(1), "a killed sacct is a failure");
    assert!(all_output(&out).contains("signal"), "{}", all_output(&out));
    assert_eq!(std::fs::read(env.processed(d)).unwrap(), proc_before);
    assert_eq!(std::fs::read(env.raw(d)).unwrap(), raw_before);
    assert!(!env.completed().contains(&d.to_string()));
}

/// Every path under `dir` except the data dir and the fake sacct's bookkeeping.
fn listing(dir: &Path, skip: &Path) -> BTreeSet<PathBuf> {
    let mut out = BTreeSet::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p == skip || p.ends_with("calls.log") {
                continue;
            }
            if p.is_dir() {
                stack.push(p.clone());
            }
            out.insert(p);
        }
    }
    out
}

#[test]
fn hostile_names_change_nothing_outside_the_data_dir() {
    let env = Env::new("");
    let d = day(1);
    let user = "$(touch pwned-user)`touch pwned-tick`;rm -rf ..;../../etc";
    let name = "../../../pwned-name && touch pwned-name2 | cat /etc/passwd > x";
    let submit = "sbatch --wrap='touch pwned-submit'\n../../escape\n$(reboot)";
    let mut lines = finished_job("101", user, &at(d, "10:00"), "COMPLETED");
    lines[0] = lines[0]
        .replace("\u{1f}work\u{1f}", &format!("\u{1f}{name}\u{1f}"))
        .replace("sbatch work.sh", submit);
    env.set_output(d, &lines);
    let outside_before = listing(env.path(), &env.data());
    let out = env.run(&["collect", "--days", "1"]);
    no_panic(&out);
    assert!(out.status.success());
    assert_eq!(
        listing(env.path(), &env.data()),
        outside_before,
        "files appeared outside the data dir"
    );
    // Nothing the names would create, where a shell would have created it (the collector's
    // working directory, the env, its parent).
    let cwd = std::env::current_dir().unwrap();
    for dir in [cwd.as_path(), env.path(), env.path().parent().unwrap()] {
        for f in [
            "pwned-user",
            "pwned-tick",
            "pwned-name",
            "pwned-name2",
            "pwned-submit",
            "x",
        ] {
            assert!(!dir.join(f).exists(), "{} appeared", dir.join(f).display());
        }
    }
    let jobs = env.jobs(d);
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].user, user, "archived verbatim");
    assert_eq!(jobs[0].job_name, name, "archived verbatim");
    // Only partitions, the tracker and the lock in the data dir; 0640 files, 0750 dirs.
    let mut stack = vec![env.data()];
    while let Some(dir) = stack.pop() {
        assert_eq!(
            std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
            0o750,
            "{}",
            dir.display()
        );
        for e in std::fs::read_dir(&dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            let n = p.file_name().unwrap().to_string_lossy().into_owned();
            assert!(
                n.ends_with(".parquet")
                    || n.starts_with(".date_completion")
                    || n.starts_with(".slurm-usage.lock"),
                "unexpected file {}",
                p.display()
            );
            assert_eq!(
                e.metadata().unwrap().permissions().mode() & 0o777,
                0o640,
                "{}",
                p.display()
            );
        }
    }
}

/// A past date whose sacct output had an unparsable line may be missing a job (only its
/// verbatim text is in the raw archive), so it must stay incomplete and be queried again: a
/// complete date is never queried again, and the cut job would stay out of the processed
/// partition for good.
#[test]
fn truncated_output_of_a_past_day_is_not_marked_complete() {
    let env = Env::new("");
    let d = day(1);
    let mut text = finished_job("45", "alice", &at(d, "10:00"), "COMPLETED").join("\n");
    text.push('\n');
    let cut = finished_job("46", "bob", &at(d, "11:00"), "COMPLETED")[0].clone();
    text.push_str(&cut[..cut.len() / 2]);
    env.set_output_bytes(d, text.as_bytes());
    no_panic(&env.run(&["collect", "--days", "1"]));
    assert!(
        !env.completed().contains(&d.to_string()),
        "a date whose output had an unparsable line may miss a job, yet is complete"
    );
}
