//! A synthetic sacct: realistic, deterministic output for any date window.
//!
//! Used by `slurm-usage demo` on machines without SLURM, by the hidden `fake-sacct`
//! subcommand that tests and benchmarks put in place of the real program, and by the
//! benchmark directly. It is not a model of any real cluster: it exercises every code path
//! (steps, arrays, GPUs, failures, running and pending jobs, `|` in free text).

use std::fmt::Write as _;

use chrono::{DateTime, Duration, Utc};

use crate::sacct::fields::{FieldLayout, SACCT_FIELDS};

/// Knobs of the generator.
#[derive(Debug, Clone)]
pub struct Synth {
    /// Jobs whose submit time falls in each 24 h of the window.
    pub jobs_per_day: u32,
    /// Seed: the same seed and window give the same output.
    pub seed: u64,
    /// "Now": jobs not finished by then are RUNNING, not started are PENDING.
    pub now: DateTime<Utc>,
    /// Whether half the jobs run one or two `srun` steps besides `.batch` and `.extern`
    /// (3.75 sacct lines a job); without them every job has 3 lines, the shape of a day of
    /// plain batch scripts.
    pub srun_steps: bool,
    /// Whether every 50th job waits one to three days before it starts (held behind a
    /// reservation or a dependency): jobs pending for days. Off, every job waits at most
    /// 30 minutes.
    pub long_pending: bool,
    /// How long after its end every 13th finished job's end reaches the database
    /// (seconds; 0: at once). Until then sacct shows it RUNNING and, as slurmdbd does for a
    /// job without an end, in every window after its start: what a site sees when
    /// slurmctld's queue to slurmdbd backs up.
    pub record_lag: i64,
    /// Only these jobs (JobIDRaw), as `sacct --jobs` asks; `None`: every job.
    pub only: Option<std::collections::HashSet<u64>>,
}

const USERS: &[(&str, &str, &str)] = &[
    ("alice", "research", "1001"),
    ("bob", "physics", "1002"),
    ("carol", "chemistry", "1003"),
    ("dave", "physics", "1004"),
    ("erin", "bio", "1005"),
    ("frank", "research", "1006"),
];
const PARTITIONS: &[&str] = &["cpu", "gpu", "debug", "bigmem"];

/// Seeded random numbers for synthetic data and for tests that try many generated inputs.
pub(crate) struct Rng(pub(crate) u64);
impl Rng {
    fn next(&mut self) -> u64 {
        // SplitMix64: tiny, fast, good enough for test data.
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    /// Up to `max_pieces` pieces of `alphabet`, picked at random and joined.
    #[cfg(test)]
    pub(crate) fn text(&mut self, alphabet: &[&str], max_pieces: u64) -> String {
        let n = self.below(max_pieces + 1);
        (0..n)
            .map(|_| alphabet[self.below(alphabet.len() as u64) as usize])
            .collect()
    }
}

fn hms(secs: i64) -> String {
    let (d, h, m, s) = (secs / 86_400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    if d > 0 {
        format!("{d}-{h:02}:{m:02}:{s:02}")
    } else {
        format!("{h:02}:{m:02}:{s:02}")
    }
}

fn cpu_time(secs: f64) -> String {
    let whole = secs as i64;
    if whole >= 3600 {
        hms(whole)
    } else {
        format!(
            "{:02}:{:02}.{:03}",
            whole / 60,
            whole % 60,
            ((secs - whole as f64) * 1000.0) as i64
        )
    }
}

fn ts(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S").to_string()
}

impl Synth {
    /// Writes the sacct lines for jobs submitted in `[start, end)`, fields in `layout`'s order
    /// joined by its delimiter, one job's lines together, every line ending in `\n`.
    pub fn generate(
        &self,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        layout: &FieldLayout,
        out: &mut String,
    ) {
        // Like the real sacct without `--state`, the window shows every job eligible before
        // its end that had not ended before its start: pending (eligible), running, or ended
        // in the window (slurmdbd's `time_eligible < end && (time_end >= start ||
        // time_end = 0)`, docs/collection.md). Eligible is the submit time here. Jobs are
        // generated per UTC day (from that day's seed), so overlapping windows agree on
        // every job; jobs run at most ~2.3 days, and wait at most 3 days with `long_pending`.
        let reach = if self.long_pending { 6 } else { 3 };
        let first_day = start.timestamp().div_euclid(86_400) - reach;
        let last_day = (end.timestamp() - 1).div_euclid(86_400);
        for day in first_day..=last_day {
            self.generate_day(day, start, end, layout, out);
        }
    }

    fn generate_day(
        &self,
        day: i64,
        win_start: DateTime<Utc>,
        win_end: DateTime<Utc>,
        layout: &FieldLayout,
        out: &mut String,
    ) {
        let start = DateTime::from_timestamp(day * 86_400, 0).expect("day index is in range");
        let n = self.jobs_per_day as u64;
        let span = 86_400i64;
        let base_id = 1_000_000 + day.rem_euclid(10_000) as u64 * 200_000;
        let mut rng = Rng(self.seed ^ (day as u64).wrapping_mul(0x2545_f491_4f6c_dd1d));
        let order: Vec<usize> = layout
            .names
            .iter()
            .map(|n| {
                SACCT_FIELDS
                    .iter()
                    .position(|f| f == n)
                    .unwrap_or(usize::MAX)
            })
            .collect();
        let delim = layout.delimiter as char;
        let mut row: Vec<String> = vec![String::new(); SACCT_FIELDS.len()];
        let emit = |row: &[String], out: &mut String| {
            for (i, &k) in order.iter().enumerate() {
                if i > 0 {
                    out.push(delim);
                }
                if k != usize::MAX {
                    out.push_str(&row[k]);
                }
            }
            out.push('\n');
        };
        for k in 0..n {
            let id = base_id + k;
            let (user, account, uid) = USERS[rng.below(USERS.len() as u64) as usize];
            let partition = PARTITIONS[rng.below(PARTITIONS.len() as u64) as usize];
            let submit = start + Duration::seconds((k as i64 * span) / n.max(1) as i64);
            let wait = rng.below(1800) as i64;
            let long = rng.below(10) == 0;
            let elapsed = 30 + rng.below(if long { 200_000 } else { 7200 }) as i64;
            let cpus = [1u64, 2, 4, 8, 16, 32][rng.below(6) as usize];
            let gpus = if partition == "gpu" {
                1 + rng.below(4)
            } else {
                0
            };
            let mem_mb = cpus * [500u64, 1000, 2000, 4000][rng.below(4) as usize];
            let eff = (rng.below(1000) as f64 / 1000.0).powf(0.7);
            let used_mem_k =
                (mem_mb as f64 * 1024.0 * (0.05 + 0.9 * rng.below(1000) as f64 / 1000.0)) as u64;
            // Not drawn from the generator: the other jobs stay what they were without it.
            let wait = if self.long_pending && k % 50 == 7 {
                86_400 + (k as i64 * 7919) % (2 * 86_400)
            } else {
                wait
            };
            let start_t = submit + Duration::seconds(wait);
            let end_t = start_t + Duration::seconds(elapsed);
            // Draw every random number of this job before deciding to skip it, so that
            // each job is the same whichever window shows it.
            let r = rng.below(100);
            let array = rng.below(8) == 0;
            let array_base = id - rng.below(3);
            let name_pick = rng.below(20);
            let node = format!("node{:03}", 1 + rng.below(64));
            let srun = if rng.below(2) == 0 {
                0
            } else {
                1 + rng.below(2)
            };
            // Drawn either way, so both shapes give every job the same other numbers.
            let srun = if self.srun_steps { srun } else { 0 };
            // Derived from numbers already drawn, like everything below.
            let lag = if k % 13 == 5 { self.record_lag } else { 0 };
            let unfinished_now = end_t + Duration::seconds(lag) > self.now;
            if submit >= win_end || submit > self.now || (!unfinished_now && end_t < win_start) {
                continue;
            }
            if self.only.as_ref().is_some_and(|ids| !ids.contains(&id)) {
                continue;
            }
            let pending = start_t > self.now;
            let running = !pending && unfinished_now;
            let state = if pending {
                "PENDING"
            } else if running {
                "RUNNING"
            } else if r < 80 {
                "COMPLETED"
            } else if r < 88 {
                "FAILED"
            } else if r < 95 {
                "CANCELLED by 1001"
            } else if r < 98 {
                "TIMEOUT"
            } else {
                "OUT_OF_MEMORY"
            };
            // A running job's elapsed time runs to now, even past an end not recorded yet.
            let ran = if pending {
                0
            } else if running {
                (self.now - start_t).num_seconds().max(0)
            } else {
                (end_t - start_t).num_seconds().max(0)
            };
            let finished = !pending && !running;
            let cpu_used = if finished {
                ran as f64 * cpus as f64 * eff
            } else {
                0.0
            };
            let job_id = if array {
                format!("{array_base}_{}", k % 50)
            } else {
                id.to_string()
            };
            let job_name = match name_pick {
                0 => "post|process".to_string(),
                1 => "sim run".to_string(),
                _ => format!("job{}", k % 97),
            };
            let mut alloc_tres = format!("billing={cpus},cpu={cpus},mem={mem_mb}M,node=1");
            if gpus > 0 {
                let _ = write!(alloc_tres, ",gres/gpu={gpus},gres/gpu:a100={gpus}");
            }
            // GPU accounting (Slurm 24.05.1+ shape: a task's gres/gpuutil adds its GPUs) and
            // an energy plugin. Derived from numbers already drawn, never a new draw, so
            // every other number of the output stays as it was.
            let gpu_util_pct = (100.0 * eff.powf(1.5)).round();
            let gpu_mem_mb = (gpus as f64 * 40_960.0 * (0.1 + 0.8 * eff)) as u64;
            let joules = if !pending && !running {
                let watts = 8.0 * cpus as f64 + gpus as f64 * (60.0 + 3.4 * gpu_util_pct);
                (ran as f64 * watts) as u64
            } else {
                0
            };
            for s in row.iter_mut() {
                s.clear();
            }
            let set = |row: &mut Vec<String>, name: &str, v: String| {
                if let Some(i) = SACCT_FIELDS.iter().position(|f| *f == name) {
                    row[i] = v;
                }
            };
            set(&mut row, "JobID", job_id.clone());
            set(&mut row, "JobIDRaw", id.to_string());
            set(&mut row, "User", user.into());
            set(&mut row, "UID", uid.into());
            set(&mut row, "Group", user.into());
            set(&mut row, "GID", uid.into());
            set(&mut row, "Account", account.into());
            set(&mut row, "Partition", partition.into());
            set(&mut row, "QOS", "normal".into());
            set(&mut row, "State", state.into());
            set(
                &mut row,
                "ExitCode",
                if state == "FAILED" { "1:0" } else { "0:0" }.into(),
            );
            set(&mut row, "Submit", ts(submit));
            set(&mut row, "Eligible", ts(submit));
            set(
                &mut row,
                "Start",
                if pending {
                    "Unknown".into()
                } else {
                    ts(start_t)
                },
            );
            set(
                &mut row,
                "End",
                if finished {
                    ts(end_t)
                } else {
                    "Unknown".into()
                },
            );
            set(&mut row, "Elapsed", hms(ran));
            set(&mut row, "ElapsedRaw", ran.to_string());
            set(&mut row, "CPUTime", hms(ran * cpus as i64));
            set(&mut row, "CPUTimeRAW", (ran * cpus as i64).to_string());
            set(&mut row, "TotalCPU", cpu_time(cpu_used));
            set(&mut row, "UserCPU", cpu_time(cpu_used * 0.95));
            set(&mut row, "SystemCPU", cpu_time(cpu_used * 0.05));
            set(
                &mut row,
                "AllocCPUS",
                if pending {
                    "0".into()
                } else {
                    cpus.to_string()
                },
            );
            set(
                &mut row,
                "AllocNodes",
                if pending { "0".into() } else { "1".into() },
            );
            set(
                &mut row,
                "NodeList",
                if pending {
                    "None assigned".into()
                } else {
                    node.clone()
                },
            );
            set(&mut row, "ReqCPUS", cpus.to_string());
            set(&mut row, "ReqMem", format!("{mem_mb}M"));
            set(&mut row, "ReqNodes", "1".into());
            set(&mut row, "Timelimit", "1-00:00:00".into());
            set(&mut row, "TimelimitRaw", "1440".into());
            set(&mut row, "Priority", "4294901759".into());
            set(&mut row, "Cluster", "synthetic".into());
            set(
                &mut row,
                "ReqTRES",
                format!("billing={cpus},cpu={cpus},mem={mem_mb}M,node=1"),
            );
            set(
                &mut row,
                "AllocTRES",
                if pending {
                    String::new()
                } else {
                    alloc_tres.clone()
                },
            );
            set(&mut row, "ConsumedEnergyRaw", joules.to_string());
            set(&mut row, "DerivedExitCode", "0:0".into());
            set(&mut row, "Flags", "SchedMain,StartRecieved".into());
            set(&mut row, "NCPUS", cpus.to_string());
            set(&mut row, "NNodes", "1".into());
            set(
                &mut row,
                "Reason",
                if pending {
                    "Priority".into()
                } else {
                    "None".into()
                },
            );
            set(&mut row, "JobName", job_name.clone());
            set(&mut row, "WorkDir", format!("/home/{user}/runs"));
            set(
                &mut row,
                "Comment",
                if k % 13 == 0 {
                    "a|b comment".into()
                } else {
                    String::new()
                },
            );
            set(
                &mut row,
                "SubmitLine",
                format!("sbatch -J {job_name} -c {cpus} --mem={mem_mb}M run.sh"),
            );
            emit(&row, out);
            if pending {
                continue;
            }
            // Steps: .batch and .extern always, sometimes srun steps.
            for step in 0..(2 + srun) {
                let (suffix, name, tasks, share) = match step {
                    0 => (
                        "batch".to_string(),
                        "batch".to_string(),
                        1,
                        if srun > 0 { 0.1 } else { 1.0 },
                    ),
                    1 => ("extern".to_string(), "extern".to_string(), 1, 0.0),
                    s => (
                        (s - 2).to_string(),
                        "python".to_string(),
                        cpus.min(4),
                        0.9 / srun as f64,
                    ),
                };
                let step_cpu = cpu_used * share;
                let rss_k = if share > 0.0 {
                    used_mem_k / tasks
                } else {
                    1600
                };
                let step_state = if running {
                    "RUNNING"
                } else if state.starts_with("CANCELLED") {
                    "CANCELLED"
                } else {
                    state
                };
                for s in row.iter_mut() {
                    s.clear();
                }
                set(&mut row, "JobID", format!("{job_id}.{suffix}"));
                set(&mut row, "JobIDRaw", format!("{id}.{suffix}"));
                set(&mut row, "Account", account.into());
                set(&mut row, "State", step_state.into());
                set(&mut row, "ExitCode", "0:0".into());
                set(&mut row, "Submit", ts(start_t));
                set(&mut row, "Eligible", ts(start_t));
                set(&mut row, "Start", ts(start_t));
                set(
                    &mut row,
                    "End",
                    if finished {
                        ts(end_t)
                    } else {
                        "Unknown".into()
                    },
                );
                set(&mut row, "Elapsed", hms(ran));
                set(&mut row, "ElapsedRaw", ran.to_string());
                set(&mut row, "TotalCPU", cpu_time(step_cpu));
                set(&mut row, "UserCPU", cpu_time(step_cpu * 0.95));
                set(&mut row, "SystemCPU", cpu_time(step_cpu * 0.05));
                set(&mut row, "AllocCPUS", cpus.to_string());
                set(&mut row, "AllocNodes", "1".into());
                set(&mut row, "NodeList", node.clone());
                set(&mut row, "ReqCPUS", cpus.to_string());
                set(&mut row, "ReqNodes", "1".into());
                set(&mut row, "Cluster", "synthetic".into());
                set(&mut row, "AllocTRES", alloc_tres.clone());
                set(&mut row, "NCPUS", cpus.to_string());
                set(&mut row, "NNodes", "1".into());
                set(&mut row, "NTasks", tasks.to_string());
                set(&mut row, "JobName", name);
                if finished {
                    set(&mut row, "MaxRSS", format!("{rss_k}K"));
                    set(&mut row, "AveRSS", format!("{rss_k}K"));
                    set(&mut row, "MaxVMSize", format!("{}K", rss_k * 2));
                    set(&mut row, "MaxRSSNode", node.clone());
                    // The steps that do the work carry the GPU use; .extern and a .batch
                    // that only launches srun steps print 0, as Slurm does.
                    let gpu = if gpus == 0 {
                        String::new()
                    } else if share >= 0.5 || (share > 0.0 && step >= 2) {
                        format!(
                            ",gres/gpumem={gpu_mem_mb}M,gres/gpuutil={}",
                            (gpu_util_pct * gpus as f64) as u64
                        )
                    } else {
                        ",gres/gpumem=0,gres/gpuutil=0".into()
                    };
                    set(
                        &mut row,
                        "TRESUsageInTot",
                        format!(
                            "cpu={},energy=0,fs/disk=8100{gpu},mem={}K,pages=0,vmem={}K",
                            hms(step_cpu as i64),
                            rss_k * tasks,
                            rss_k * tasks * 2
                        ),
                    );
                }
                emit(&row, out);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{build_jobs, Context};
    use crate::sacct::parser::SacctOutput;
    use chrono::TimeZone;
    use std::collections::HashSet;

    /// Jobs of a window as `(job_id, job_id_raw, state, end)`.
    fn window_jobs(
        synth: &Synth,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> Vec<(String, String, String, Option<i64>)> {
        let layout = FieldLayout::ours();
        let mut text = String::new();
        synth.generate(start, end, &layout, &mut text);
        let out = SacctOutput::parse(text.into_bytes(), &layout);
        let ctx = Context {
            sacct_version: "x".into(),
            processed_date: 0,
        };
        (build_jobs(&out, &layout, &ctx).jobs.into_iter())
            .map(|j| {
                let (id, raw) = (j.job_id.to_string(), j.job_id_raw.to_string());
                (id, raw, j.state.to_string(), j.end_time)
            })
            .collect()
    }

    /// `record_lag`: a lagged job is RUNNING in every window after its start until its end
    /// is recorded, then it has its end and leaves the windows that begin after it; `only`
    /// keeps the jobs named by JobIDRaw.
    #[test]
    fn late_recorded_ends_and_jobs_by_id() {
        let day = Utc.with_ymd_and_hms(2026, 11, 20, 0, 0, 0).unwrap();
        let at = |now: DateTime<Utc>, lag: i64, only: Option<HashSet<u64>>| Synth {
            jobs_per_day: 200,
            seed: 42,
            now,
            srun_steps: true,
            long_pending: false,
            record_lag: lag,
            only,
        };
        let noon = day + Duration::hours(12);
        let prompt = window_jobs(&at(noon, 0, None), day, day + Duration::days(1));
        let lagged = window_jobs(&at(noon, 7200, None), day, day + Duration::days(1));
        assert_eq!(
            prompt.len(),
            lagged.len(),
            "the same jobs, some not ended yet"
        );
        // The jobs that ended within the last two hours before noon, and are lagged.
        let late: Vec<_> = prompt
            .iter()
            .zip(&lagged)
            .filter(|(p, l)| p.2 != l.2)
            .collect();
        assert!(!late.is_empty(), "some ends are not recorded yet at noon");
        for (p, l) in &late {
            let ended = p.3.expect("ended in the prompt view");
            assert!(
                ended > (noon - Duration::hours(2)).timestamp_micros(),
                "{p:?}"
            );
            assert_eq!((l.2.as_str(), l.3), ("RUNNING", None), "{l:?}");
        }
        // A window from noon: the lagged ones are in it (no end recorded), the prompt ones
        // that ended before noon are not.
        let from_noon = |lag| window_jobs(&at(noon, lag, None), noon, day + Duration::days(1));
        let (p_ids, l_ids): (Vec<_>, Vec<_>) = (from_noon(0), from_noon(7200));
        for (p, _) in &late {
            assert!(
                !p_ids.iter().any(|j| j.0 == p.0),
                "{} ended before noon",
                p.0
            );
            assert!(l_ids.iter().any(|j| j.0 == p.0), "{} shows as running", p.0);
        }
        // Four hours on, the ends are recorded: no window from noon shows them, by id they
        // come back final.
        let later = noon + Duration::hours(4);
        let after = window_jobs(&at(later, 7200, None), noon, day + Duration::days(1));
        let ids: HashSet<u64> = late.iter().map(|(p, _)| p.1.parse().unwrap()).collect();
        for (p, _) in &late {
            assert!(
                !after.iter().any(|j| j.0 == p.0),
                "{} ended before noon",
                p.0
            );
        }
        let by_id = window_jobs(&at(later, 7200, Some(ids.clone())), day, later);
        let mut got: Vec<_> = by_id.iter().map(|j| (j.0.clone(), j.2.clone())).collect();
        let mut want: Vec<_> = late
            .iter()
            .map(|(p, _)| (p.0.clone(), p.2.clone()))
            .collect();
        got.sort();
        want.sort();
        assert_eq!(got, want);
    }

    #[test]
    fn output_parses_cleanly_into_the_requested_number_of_jobs() {
        let layout = FieldLayout::ours();
        let start = Utc.with_ymd_and_hms(2026, 11, 20, 0, 0, 0).unwrap();
        let synth = Synth {
            jobs_per_day: 500,
            seed: 7,
            now: start + Duration::hours(30),
            srun_steps: true,
            long_pending: false,
            record_lag: 0,
            only: None,
        };
        let mut text = String::new();
        synth.generate(start, start + Duration::days(1), &layout, &mut text);
        let out = SacctOutput::parse(text.into_bytes(), &layout);
        assert!(out.malformed.is_empty(), "{:?}", &out.malformed[..1]);
        let built = build_jobs(
            &out,
            &layout,
            &Context {
                sacct_version: "x".into(),
                processed_date: 0,
            },
        );
        // The day's 500 jobs, plus earlier jobs still running into it.
        let of_the_day = built
            .jobs
            .iter()
            .filter(|j| j.submit_time.unwrap() >= start.timestamp_micros())
            .count();
        assert_eq!(of_the_day, 500);
        assert!(built.jobs.len() > 500);
        assert!(built.orphan_records.is_empty());
        assert!(built.jobs.iter().any(|j| j.state == "RUNNING"));
        assert!(built.jobs.iter().any(|j| j.alloc_gpus > 0));
        // Finished GPU jobs carry measured GPU use and energy; CPU jobs no GPU figures.
        for j in built
            .jobs
            .iter()
            .filter(|j| j.is_complete && j.elapsed_seconds > 0)
        {
            assert_eq!(
                j.gpu_utilization.is_some(),
                j.alloc_gpus > 0,
                "job {}",
                j.job_id
            );
            assert!(j.energy_joules.is_some(), "job {}", j.job_id);
            if let Some(u) = j.gpu_utilization {
                assert!((0.0..=100.0).contains(&u), "job {}: {u}", j.job_id);
            }
        }
        assert!(built.jobs.iter().any(|j| j.gpu_utilization.is_some()));
        assert!(built.jobs.iter().any(|j| j.job_name == "post|process"));
        assert!(out.records.len() > 1500);
    }

    #[test]
    fn without_srun_steps_the_same_jobs_have_three_lines_at_most() {
        let layout = FieldLayout::ours();
        let start = Utc.with_ymd_and_hms(2026, 11, 20, 0, 0, 0).unwrap();
        let lines = |srun_steps: bool| {
            let synth = Synth {
                jobs_per_day: 400,
                seed: 3,
                now: start + Duration::hours(30),
                srun_steps,
                long_pending: false,
                record_lag: 0,
                only: None,
            };
            let mut text = String::new();
            synth.generate(start, start + Duration::days(1), &layout, &mut text);
            text.lines().map(str::to_string).collect::<Vec<_>>()
        };
        let ids = |lines: &[String]| -> Vec<String> {
            lines
                .iter()
                .map(|l| {
                    l.split(char::from(layout.delimiter))
                        .nth(layout.job_id_raw)
                        .unwrap()
                        .to_string()
                })
                .collect()
        };
        let (with, without) = (lines(true), lines(false));
        let (with_ids, without_ids) = (ids(&with), ids(&without));
        let jobs = |ids: &[String]| {
            ids.iter()
                .filter(|i| !i.contains('.'))
                .cloned()
                .collect::<Vec<_>>()
        };
        // The same jobs, with the same allocation lines.
        assert_eq!(jobs(&with_ids), jobs(&without_ids));
        let job_lines = |l: &[String], ids: &[String]| {
            l.iter()
                .zip(ids)
                .filter(|(_, i)| !i.contains('.'))
                .map(|(l, _)| l.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            job_lines(&with, &with_ids),
            job_lines(&without, &without_ids)
        );
        // Only .batch and .extern steps, so at most 3 lines a job; srun steps otherwise.
        let numbered = |ids: &[String]| {
            ids.iter()
                .filter(|i| {
                    i.rsplit_once('.')
                        .is_some_and(|(_, s)| s.parse::<u32>().is_ok())
                })
                .count()
        };
        assert_eq!(numbered(&without_ids), 0);
        assert!(numbered(&with_ids) > 100);
        assert!(without.len() <= 3 * jobs(&without_ids).len());
        assert!(without.len() > 2 * jobs(&without_ids).len());
    }

    #[test]
    fn same_seed_same_output() {
        let layout = FieldLayout::ours();
        let start = Utc.with_ymd_and_hms(2026, 11, 20, 0, 0, 0).unwrap();
        let synth = Synth {
            jobs_per_day: 50,
            seed: 1,
            now: start,
            srun_steps: true,
            long_pending: false,
            record_lag: 0,
            only: None,
        };
        let (mut a, mut b) = (String::new(), String::new());
        synth.generate(start, start + Duration::days(1), &layout, &mut a);
        synth.generate(start, start + Duration::days(1), &layout, &mut b);
        assert_eq!(a, b);
    }
}
