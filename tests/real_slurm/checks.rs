//! The checks every phase's data must pass against its own sacct snapshots: records,
//! metrics, raw rows, attribution, the window, `status`. Each adds to a [`Check`], which
//! fails once with every mismatch.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, NaiveDate};

use crate::data_dir::RawRow;
use crate::expected::{close, expected};
use crate::phase::Phase;
use crate::sacct::{is_final, FIELDS, MOVING};

/// Collects every mismatch, then fails once with all of them.
#[derive(Default)]
pub struct Check {
    errors: Vec<String>,
    checked: usize,
}

impl Check {
    /// One check: `what` says what is wrong when `ok` is false.
    pub fn that(&mut self, ok: bool, what: impl FnOnce() -> String) {
        self.checked += 1;
        if !ok {
            self.errors.push(what());
        }
    }

    /// One field of a job: ours must equal sacct's.
    pub fn eq<T: PartialEq + std::fmt::Debug>(
        &mut self,
        job: &str,
        field: &str,
        ours: T,
        sacct: T,
    ) {
        self.checked += 1;
        if ours != sacct {
            self.errors.push(format!(
                "job {job}: {field}: ours {ours:?}, sacct {sacct:?}"
            ));
        }
    }

    /// One number of a job: ours must equal the expected one but for rounding.
    pub fn close(&mut self, job: &str, field: &str, ours: f64, want: f64) {
        self.checked += 1;
        if !close(ours, want) {
            self.errors
                .push(format!("job {job}: {field}: ours {ours}, expected {want}"));
        }
    }

    /// Fails with every mismatch (or when nothing was checked); else prints the count.
    pub fn done(self, what: &str) {
        assert!(self.checked > 0, "{what}: nothing was checked");
        assert!(
            self.errors.is_empty(),
            "{what}: {} of {} checks failed:\n  {}",
            self.errors.len(),
            self.checked,
            self.errors.join("\n  ")
        );
        note!("[real_slurm] {what}: {} checks passed", self.checked);
    }
}

/// Compares every manifest job's processed record with sacct's lines for it.
pub fn check_records_against_sacct(p: &Phase, c: &mut Check) {
    for job in &p.jobs {
        let lines = &p.after[&job.id];
        let e = expected(lines);
        let recs = p.records(&job.id);
        c.that(recs.len() == 1, || {
            format!(
                "job {} ({}): {} processed records, want 1",
                job.id,
                job.key,
                recs.len()
            )
        });
        let Some((_, r)) = recs.first() else { continue };
        let id = format!("{} ({})", job.id, job.key);
        c.eq(&id, "job_id", r.job_id.as_str(), e.job_id.as_str());
        c.eq(
            &id,
            "job_id_raw",
            r.job_id_raw.as_str(),
            e.job_id_raw.as_str(),
        );
        c.eq(&id, "user", r.user.as_str(), e.user.as_str());
        c.eq(&id, "user (manifest)", r.user.as_str(), job.user.as_str());
        c.eq(&id, "group", r.group.as_str(), e.group.as_str());
        c.eq(&id, "account", r.account.as_str(), e.account.as_str());
        c.eq(&id, "partition", r.partition.as_str(), e.partition.as_str());
        c.eq(&id, "qos", r.qos.as_str(), e.qos.as_str());
        c.eq(&id, "cluster", r.cluster.as_str(), e.cluster.as_str());
        c.eq(&id, "job_name", r.job_name.as_str(), e.job_name.as_str());
        c.eq(&id, "state", r.state.as_str(), e.state.as_str());
        c.eq(
            &id,
            "state (manifest)",
            r.state.as_str(),
            job.expected.as_str(),
        );
        c.eq(&id, "is_complete", r.is_complete, is_final(&e.state));
        c.eq(&id, "exit_code", r.exit_code.as_str(), e.exit_code.as_str());
        c.eq(&id, "submit_time", r.submit_time, e.submit);
        c.eq(&id, "start_time", r.start_time, e.start);
        c.eq(&id, "end_time", r.end_time, e.end);
        c.eq(
            &id,
            "wait_seconds",
            r.wait_seconds,
            e.start
                .zip(e.submit)
                .map(|(s, q)| ((s - q) / 1_000_000).max(0)),
        );
        c.eq(&id, "alloc_cpus", r.alloc_cpus, e.alloc_cpus);
        c.eq(&id, "alloc_nodes", r.alloc_nodes, e.alloc_nodes);
        c.eq(&id, "alloc_gpus", r.alloc_gpus, e.alloc_gpus);
        c.eq(&id, "node_list", r.node_list.as_str(), e.node_list.as_str());
        c.eq(&id, "timelimit_seconds", r.timelimit_seconds, e.timelimit);
        c.eq(
            &id,
            "array_job_id",
            r.array_job_id.as_deref(),
            e.array_job_id.as_deref(),
        );
        c.eq(&id, "array_task_id", r.array_task_id, e.array_task_id);
        c.close(&id, "req_mem_mb", r.req_mem_mb, e.req_mem_mb);
        c.close(&id, "alloc_mem_mb", r.alloc_mem_mb, e.alloc_mem_mb);
        c.close(
            &id,
            "total_cpu_seconds (TotalCPU)",
            r.total_cpu_seconds,
            e.total_cpu,
        );
        c.close(
            &id,
            "max_rss_mb (max over steps of TRESUsageInTot mem)",
            r.max_rss_mb,
            e.max_rss_mb,
        );
        c.eq(
            &id,
            "sacct_version",
            r.sacct_version.as_str(),
            p.sacct_version.as_str(),
        );
        // A running job's elapsed time grows: ours lies between sacct's before and after.
        let lo = expected(&p.before[&job.id]).elapsed;
        if is_final(&e.state) || e.start.is_none() {
            c.eq(
                &id,
                "elapsed_seconds (ElapsedRaw)",
                r.elapsed_seconds,
                e.elapsed,
            );
        } else {
            c.that(lo <= r.elapsed_seconds && r.elapsed_seconds <= e.elapsed, || {
                format!(
                    "job {id}: elapsed_seconds {} outside sacct's ElapsedRaw {lo}..{} around the collect",
                    r.elapsed_seconds, e.elapsed
                )
            });
        }
        let (t0, t1) = (
            p.collect_started.timestamp_micros(),
            p.collect_ended.timestamp_micros(),
        );
        c.that(t0 <= r.processed_date && r.processed_date <= t1, || {
            format!(
                "job {id}: processed_date {} not within the collect ({t0}..{t1})",
                r.processed_date
            )
        });
    }
}

/// The metrics follow from the record's own elapsed time and sacct's CPU and memory numbers.
pub fn check_metrics(p: &Phase, c: &mut Check) {
    for job in &p.jobs {
        let e = expected(&p.after[&job.id]);
        let Some((_, r)) = p.records(&job.id).first().copied() else {
            c.that(false, || format!("job {} has no processed record", job.id));
            continue;
        };
        let id = format!("{} ({})", job.id, job.key);
        let secs = r.elapsed_seconds as f64;
        let reserved = secs * e.alloc_cpus as f64;
        let pct = |num: f64, den: f64| {
            if den > 0.0 {
                (100.0 * num / den).clamp(0.0, 100.0)
            } else {
                0.0
            }
        };
        let (cpu, mem, rss) = (e.total_cpu, e.alloc_mem_mb, e.max_rss_mb);
        c.close(&id, "cpu_efficiency", r.cpu_efficiency, pct(cpu, reserved));
        c.close(&id, "memory_efficiency", r.memory_efficiency, pct(rss, mem));
        c.close(
            &id,
            "cpu_hours_wasted",
            r.cpu_hours_wasted,
            (reserved - cpu).max(0.0) / 3600.0,
        );
        c.close(
            &id,
            "memory_gb_hours_wasted",
            r.memory_gb_hours_wasted,
            (mem - rss).max(0.0) * secs / (1024.0 * 3600.0),
        );
        c.close(
            &id,
            "cpu_hours_reserved",
            r.cpu_hours_reserved,
            reserved / 3600.0,
        );
        c.close(
            &id,
            "memory_gb_hours_reserved",
            r.memory_gb_hours_reserved,
            mem * secs / (1024.0 * 3600.0),
        );
        c.close(
            &id,
            "gpu_hours_reserved",
            r.gpu_hours_reserved,
            e.alloc_gpus as f64 * secs / 3600.0,
        );
        for (name, v) in [
            ("cpu_efficiency", r.cpu_efficiency),
            ("memory_efficiency", r.memory_efficiency),
        ] {
            c.that((0.0..=100.0).contains(&v), || {
                format!("job {id}: {name} {v} outside 0..100")
            });
        }
    }
}

/// The raw partition of each job's date holds exactly sacct's lines of it, field by field.
pub fn check_raw_against_sacct(p: &Phase, c: &mut Check) {
    for job in &p.jobs {
        let lines = &p.after[&job.id];
        let id = format!("{} ({})", job.id, job.key);
        let raw_id = &lines[0]["JobIDRaw"];
        let rows = p.raw_rows(raw_id);
        c.eq(
            &id,
            "raw rows (JobIDRaw prefix) vs sacct lines",
            rows.len(),
            lines.len(),
        );
        if let Some((date, _)) = p.records(&job.id).first() {
            let elsewhere: Vec<NaiveDate> =
                rows.iter().map(|(d, _)| *d).filter(|d| d != date).collect();
            c.that(elsewhere.is_empty(), || {
                format!("job {id}: raw rows in {elsewhere:?}, but the job lives in {date}")
            });
        }
        let finished = is_final(&lines[0]["State"]);
        for line in lines {
            let key = &line["JobIDRaw"];
            let matching: Vec<&RawRow> = rows
                .iter()
                .map(|(_, r)| *r)
                .filter(|r| r.get("JobIDRaw").and_then(|v| v.as_deref()) == Some(key))
                .collect();
            c.that(matching.len() == 1, || {
                format!("job {id}: {} raw rows for {key}, want 1", matching.len())
            });
            let Some(row) = matching.first() else {
                continue;
            };
            for f in FIELDS {
                if !finished && MOVING.contains(f) {
                    continue;
                }
                let ours = row.get(*f).cloned().flatten().unwrap_or_default();
                c.eq(
                    &format!("{id} row {key}"),
                    &format!("raw {f}"),
                    ours.as_str(),
                    line[*f].as_str(),
                );
            }
            c.that(row.get("RawLine").cloned().flatten().is_none(), || {
                format!("job {id}: row {key} kept as an unparsable line")
            });
        }
        if let (Some(texts), Some((_, alloc))) = (
            p.free_text.get(&job.id),
            rows.iter()
                .find(|(_, r)| r.get("JobIDRaw").and_then(|v| v.as_deref()) == Some(raw_id)),
        ) {
            for (f, want) in ["WorkDir", "Comment", "SubmitLine"].iter().zip(texts) {
                let ours = alloc.get(*f).cloned().flatten().unwrap_or_default();
                c.eq(&id, &format!("raw {f}"), ours.as_str(), want.as_str());
            }
        }
    }
}

/// Every job sacct lists for the collected windows is archived, and nothing else is.
pub fn check_window(p: &Phase, c: &mut Check) {
    let archived: BTreeSet<&str> = p
        .processed
        .values()
        .flatten()
        .map(|j| j.job_id.as_str())
        .collect();
    for id in &p.window_before {
        c.that(archived.contains(id.as_str()), || {
            format!("job {id} is in sacct's window but not archived")
        });
    }
    for id in &archived {
        c.that(p.window_after.contains(*id), || {
            format!("archived job {id} is not in sacct's window")
        });
    }
    let mut seen = BTreeMap::<&str, usize>::new();
    for j in p.processed.values().flatten() {
        *seen.entry(j.job_id.as_str()).or_default() += 1;
    }
    for (id, n) in seen {
        c.that(n == 1, || {
            format!("job {id} is in {n} processed rows (duplicates)")
        });
    }
}

/// Each job lives in the partition of the date of its start (or submit) in the zone.
pub fn check_attribution(p: &Phase, c: &mut Check) {
    for job in &p.jobs {
        let e = expected(&p.after[&job.id]);
        let when = e
            .start
            .or(e.submit)
            .and_then(DateTime::from_timestamp_micros);
        let want = when.map(|t| p.zone.date_of(t));
        let got: Vec<NaiveDate> = p.records(&job.id).iter().map(|x| x.0).collect();
        c.eq(
            &format!("{} ({})", job.id, job.key),
            "date partition",
            got,
            want.into_iter().collect(),
        );
    }
}

/// `status` agrees with the files and the tracker: dates covered, today incomplete with its
/// job and unfinished counts.
pub fn check_status(p: &Phase, c: &mut Check) {
    let text = p.status();
    let dates: Vec<&NaiveDate> = p.processed.keys().collect();
    let (first, last) = (
        dates.first().expect("a processed file"),
        dates.last().expect("a processed file"),
    );
    c.that(text.contains(&format!("{first} .. {last}")), || {
        format!("status does not show {first} .. {last}:\n{text}")
    });
    c.that(
        text.contains(&format!(
            "{} processed, {} raw",
            p.processed.len(),
            p.raw.len()
        )),
        || {
            format!(
                "status does not count {} processed and {} raw files:\n{text}",
                p.processed.len(),
                p.raw.len()
            )
        },
    );
    let completed = p.completed_dates();
    for (d, jobs) in &p.processed {
        let Some(line) = text.lines().find(|l| l.starts_with(&d.to_string())) else {
            c.that(*d < p.today - chrono::Days::new(9), || {
                format!("status lists no line for {d}:\n{text}")
            });
            continue;
        };
        let cols: Vec<&str> = line.split_whitespace().collect();
        let state = if completed.contains(&d.to_string()) {
            "complete"
        } else {
            "incomplete"
        };
        let unfinished = jobs.iter().filter(|j| !j.is_complete).count().to_string();
        c.eq(
            &format!("status {d}"),
            "state",
            cols.get(1).copied(),
            Some(state),
        );
        c.eq(
            &format!("status {d}"),
            "jobs",
            cols.get(2).copied(),
            Some(jobs.len().to_string().as_str()),
        );
        c.eq(
            &format!("status {d}"),
            "unfinished",
            cols.get(3).copied(),
            Some(unfinished.as_str()),
        );
        c.eq(
            &format!("status {d}"),
            "bad lines",
            cols.get(4).copied(),
            Some("0"),
        );
    }
    let today = text.lines().find(|l| l.starts_with(&p.today.to_string()));
    c.that(
        today.is_some_and(|l| l.split_whitespace().nth(1) == Some("incomplete")),
        || format!("status must show today ({}) incomplete:\n{text}", p.today),
    );
}
