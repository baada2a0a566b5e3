//! Several clusters against a REAL slurmdbd that holds two (issue 15): the rig of
//! `tests/slurm/cluster.sh` (cluster `rig`) and `tests/slurm/second.sh` (cluster `beta`),
//! two slurmctld/slurmd pairs on this machine in ONE slurmdbd + MariaDB.
//!
//! Gate: only with `SLURM_USAGE_REAL_SLURM=1` (CI: `tests/slurm/ci-clusters.sh`); unset, every
//! test prints one "skipped" line and passes. Set, a cluster that does not answer is a
//! failure with the reason.
//!
//! Flow, once per test process (whichever test asks first; the tests only read the results):
//! 1. Both clusters answer (`squeue -M rig`, `squeue -M beta`).
//! 2. The job mix, submitted with `sbatch -M` to each cluster: a finished job (some CPU and
//!    memory), a failed one, a RUNNING one, a PENDING one (`--begin=now+1hour`), and a
//!    "twin": the same job id in both clusters (Slurm numbers jobs per cluster; the cluster
//!    whose counter is behind gets `--wrap=true` jobs until both counters meet; on a fresh
//!    rig there are none). Waits until sacct shows each in its expected state.
//! 3. "up": `collect --days 1` with `[collect] clusters = ["rig", "beta"]` into
//!    `target/tmp/real_clusters/up`, bracketed by `sacct -M` snapshots of each cluster
//!    (again until the finished jobs did not change across the collect); `current`, `nodes`
//!    and `test` with both clusters up.
//! 4. "down": beta's slurmctld stopped (`second.sh stop-ctld`): what sacct/squeue/sinfo `-M`
//!    do then, a second collect into a copy of the up data dir, `current`, `nodes` and `test`;
//!    then beta is started again (`second.sh start`).
//!
//! Every expected number comes from sacct's own text (`tests/real_slurm/expected.rs`, its
//! own parsers, independent of the crate's); the collector's zone is one where it is about
//! noon, as in tests/real_slurm. `SLURM_USAGE_TEST_TZ` overrides it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveDate, Timelike, Utc};
use slurm_usage::model::ProcessedJob;
use slurm_usage::zone::Zone;

/// Writes one line to stderr, past libtest's capture (the skip line, the timings).
macro_rules! note {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

#[path = "util/mod.rs"]
mod util;

/// The expectations of tests/real_slurm, computed from sacct's text alone.
#[allow(dead_code)]
#[path = "real_slurm/expected.rs"]
mod expected;

/// What `expected` needs from tests/real_slurm's `sacct` module.
mod sacct {
    pub type Row = std::collections::BTreeMap<String, String>;

    /// `CANCELLED by 0` -> `CANCELLED`.
    pub fn normalize(state: &str) -> String {
        state
            .split_whitespace()
            .next()
            .unwrap_or("")
            .trim_end_matches('+')
            .to_string()
    }
}

use expected::{close, expected};
use sacct::{normalize, Row};
use util::output_within;

const GATE: &str = "SLURM_USAGE_REAL_SLURM";
const SKIP: &str = "skipped: set SLURM_USAGE_REAL_SLURM=1 and start tests/slurm/second.sh";
const CLUSTERS: [&str; 2] = ["rig", "beta"];

/// The sacct fields `expected` reads, but JobName: names may hold `|` and newlines (the job
/// mix of tests/real_slurm has such names), which this test does not need to split.
const FIELDS: &[&str] = &[
    "JobID",
    "JobIDRaw",
    "Cluster",
    "User",
    "Group",
    "Account",
    "Partition",
    "QOS",
    "State",
    "ExitCode",
    "Submit",
    "Start",
    "End",
    "ElapsedRaw",
    "AllocCPUS",
    "AllocNodes",
    "AllocTRES",
    "NodeList",
    "ReqMem",
    "TotalCPU",
    "MaxRSS",
    "NTasks",
    "TRESUsageInTot",
    "TimelimitRaw",
];

// ---------------------------------------------------------------------------------------
// The rig

fn rig_dir() -> PathBuf {
    std::env::var_os("SLURM_RIG_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/tmp/slurm-usage-rig"))
}

/// The slurm.conf every client uses: the rig's (it names the one slurmdbd; `-M` does the rest).
fn conf() -> PathBuf {
    std::env::var_os("SLURM_CONF")
        .map(PathBuf::from)
        .unwrap_or_else(|| rig_dir().join("etc/slurm.conf"))
}

fn scripts() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/slurm")
}

fn work_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("target/tmp/real_clusters")
}

/// What a command printed.
#[derive(Debug, Clone)]
struct Out {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Out {
    fn ok(&self) -> bool {
        self.code == Some(0)
    }
    fn describe(&self) -> String {
        format!(
            "exited with {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.code,
            self.stdout.trim_end(),
            self.stderr.trim_end()
        )
    }
}

/// Runs `cmd` against the rig (SLURM_CONF, SLURM_RIG_DIR set) with the tests' shared runner.
fn run(cmd: &mut Command, limit: Duration) -> Result<Out, String> {
    cmd.env("SLURM_CONF", conf())
        .env("SLURM_RIG_DIR", rig_dir());
    let out = output_within(cmd, limit)?;
    Ok(Out {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}

fn tool(program: &str, args: &[&str]) -> Result<Out, String> {
    run(
        Command::new(program).env("TZ", "UTC").args(args),
        Duration::from_secs(60),
    )
}

/// `slurm-usage ARGS` with the test config.
fn bin(config: &Path, args: &[&str]) -> Result<Out, String> {
    run(
        util::slurm_usage().arg("--config").arg(config).args(args),
        Duration::from_secs(300),
    )
}

fn script(name: &str, arg: &str) -> Result<Out, String> {
    let out = run(
        Command::new("bash").arg(scripts().join(name)).arg(arg),
        Duration::from_secs(180),
    )?;
    if out.ok() {
        Ok(out)
    } else {
        Err(format!("{name} {arg} {}", out.describe()))
    }
}

// ---------------------------------------------------------------------------------------
// sacct

/// `sacct -M cluster -j ids` (TZ=UTC), each job's lines (allocation first) by JobIDRaw.
fn sacct_jobs(cluster: &str, ids: &[String]) -> Result<BTreeMap<String, Vec<Row>>, String> {
    let mut jobs: BTreeMap<String, Vec<Row>> = BTreeMap::new();
    for chunk in ids.chunks(200) {
        let out = tool(
            "sacct",
            &[
                "-M",
                cluster,
                "-P",
                "--delimiter=\x1f",
                "-n",
                "-j",
                &chunk.join(","),
                "-o",
                &FIELDS.join(","),
            ],
        )?;
        if !out.ok() {
            return Err(format!("sacct -M {cluster} -j {}", out.describe()));
        }
        for line in out.stdout.lines().filter(|l| !l.is_empty()) {
            let values: Vec<&str> = line.split('\x1f').collect();
            if values.len() != FIELDS.len() {
                return Err(format!("sacct line with {} fields: {line}", values.len()));
            }
            let mut row: Row = FIELDS
                .iter()
                .zip(values)
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            row.insert("JobName".into(), String::new());
            let raw = row["JobIDRaw"].clone();
            let job = raw.split('.').next().unwrap_or("").to_string();
            jobs.entry(job).or_default().push(row);
        }
    }
    Ok(jobs)
}

/// JobIDRaw of the allocation lines `sacct -M cluster` lists for `[start, end)`: what the
/// collector asks for one date.
fn sacct_window(
    cluster: &str,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Result<BTreeSet<String>, String> {
    let f = "%Y-%m-%dT%H:%M:%S";
    let out = tool(
        "sacct",
        &[
            "-M",
            cluster,
            "-a",
            "-X",
            "-P",
            "-n",
            "-S",
            &start.format(f).to_string(),
            "-E",
            &end.format(f).to_string(),
            "-o",
            "JobIDRaw",
        ],
    )?;
    if !out.ok() {
        return Err(format!("sacct -M {cluster} -S/-E {}", out.describe()));
    }
    Ok(out.stdout.lines().map(str::to_string).collect())
}

fn is_final(state: &str) -> bool {
    !matches!(
        normalize(state).as_str(),
        "RUNNING" | "PENDING" | "REQUEUED" | "RESIZING" | "SUSPENDED" | "COMPLETING" | ""
    )
}

/// A finished job whose records are complete (right after the end slurmdbd may still show a
/// placeholder, or steps without usage).
fn settled(lines: &[Row]) -> bool {
    !lines[0]["Partition"].is_empty()
        && is_final(&lines[0]["State"])
        && lines[1..]
            .iter()
            .all(|s| is_final(&s["State"]) && !s["TRESUsageInTot"].is_empty())
}

// ---------------------------------------------------------------------------------------
// The job mix

/// One job of the mix.
#[derive(Debug, Clone)]
struct Job {
    key: &'static str,
    cluster: &'static str,
    id: String,
    /// RUNNING, PENDING, or the final state.
    expected: &'static str,
}

impl Job {
    fn queued(&self) -> bool {
        matches!(self.expected, "RUNNING" | "PENDING")
    }
}

fn sbatch(cluster: &str, user: &str, args: &[&str]) -> Result<String, String> {
    let jobs = rig_dir().join("jobs");
    let mut cmd = Command::new("runuser");
    cmd.args(["-u", user, "--", "env", "-i"])
        .arg(format!(
            "PATH={}",
            std::env::var("PATH").unwrap_or_default()
        ))
        .arg(format!("SLURM_CONF={}", conf().display()))
        .args(["sbatch", "--parsable", "-M", cluster])
        .arg(format!("--chdir={}", jobs.display()))
        .arg("--output=/dev/null")
        .args(args);
    let out = run(&mut cmd, Duration::from_secs(60))?;
    if !out.ok() {
        return Err(format!("sbatch -M {cluster} {args:?} {}", out.describe()));
    }
    // `--parsable` with -M prints `ID;CLUSTER`.
    let id = out
        .stdout
        .trim()
        .split(';')
        .next()
        .unwrap_or("")
        .to_string();
    if id.parse::<u64>().is_err() {
        return Err(format!("sbatch printed no job id: {}", out.describe()));
    }
    Ok(id)
}

/// Cancels the queued jobs of earlier runs of this test (names `mc-*`) on both clusters, so
/// their RUNNING jobs do not hold the CPUs a new mix needs.
fn cancel_old_mix() -> Result<(), String> {
    for c in CLUSTERS {
        let out = tool("squeue", &["-M", c, "-h", "-o", "%A %j"])?;
        let ids: Vec<&str> = out
            .stdout
            .lines()
            .filter_map(|l| l.split_once(' '))
            .filter(|(_, name)| name.starts_with("mc-"))
            .map(|(id, _)| id)
            .collect();
        if !ids.is_empty() {
            let mut args = vec!["-M", c];
            args.extend(&ids);
            let out = tool("scancel", &args)?;
            if !out.ok() {
                return Err(format!("scancel -M {c} {ids:?} {}", out.describe()));
            }
        }
    }
    Ok(())
}

fn submit_mix() -> Result<Vec<Job>, String> {
    cancel_old_mix()?;
    let mut jobs = Vec::new();
    // The twin first: the counters are aligned, then both clusters get it.
    let mut next: BTreeMap<&str, u64> = BTreeMap::new();
    for c in CLUSTERS {
        let id = sbatch(c, "root", &["--wrap=true", "--job-name=mc-align"])?;
        next.insert(c, id.parse::<u64>().expect("checked by sbatch()") + 1);
    }
    let target = *next.values().max().expect("two clusters");
    for c in CLUSTERS {
        let gap = target - next[c];
        if gap > 3000 {
            return Err(format!(
                "cluster {c}'s job counter is {gap} behind: too many to fill (hint: `cluster.sh stop --wipe` for a fresh rig)"
            ));
        }
        for _ in 0..gap {
            sbatch(c, "root", &["--wrap=true", "--job-name=mc-filler"])?;
        }
    }
    for c in CLUSTERS {
        let id = sbatch(c, "root", &["--wrap=sleep 1", "--job-name=mc-twin"])?;
        if id != target.to_string() {
            return Err(format!(
                "twin on {c} got job id {id}, not {target}: something else submits jobs"
            ));
        }
        jobs.push(Job {
            key: "twin",
            cluster: c,
            id,
            expected: "COMPLETED",
        });
    }
    for c in CLUSTERS {
        let mix: [(&'static str, &str, &'static str, Vec<&str>); 4] = [
            (
                "done",
                "alice",
                "COMPLETED",
                vec![
                    "--job-name=mc-done",
                    "--mem=300M",
                    "--wrap=head -c 200000000 /dev/zero | tail -c 100000000 >/dev/null; sleep 2",
                ],
            ),
            (
                "fail",
                "bob",
                "FAILED",
                vec!["--job-name=mc-fail", "--wrap=sleep 1; exit 3"],
            ),
            (
                "run",
                "alice",
                "RUNNING",
                vec!["--job-name=mc-run", "--wrap=sleep 1800"],
            ),
            (
                "pend",
                "bob",
                "PENDING",
                vec!["--job-name=mc-pend", "--begin=now+1hour", "--wrap=true"],
            ),
        ];
        for (key, user, expected, args) in mix {
            let id = sbatch(c, user, &args)?;
            jobs.push(Job {
                key,
                cluster: c,
                id,
                expected,
            });
        }
    }
    Ok(jobs)
}

/// Polls sacct until every job of the mix is in its expected state (finished ones settled).
fn wait_for_mix(jobs: &[Job]) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let mut waiting = Vec::new();
        for c in CLUSTERS {
            let ids = ids_of(jobs, c);
            let sacct = sacct_jobs(c, &ids)?;
            for j in jobs.iter().filter(|j| j.cluster == c) {
                let ready = sacct.get(&j.id).is_some_and(|lines| {
                    normalize(&lines[0]["State"]) == j.expected && (j.queued() || settled(lines))
                });
                if !ready {
                    waiting.push(format!("{}:{} ({})", c, j.id, j.key));
                }
            }
        }
        if waiting.is_empty() {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!(
                "jobs not in their expected state after 180 s: {waiting:?}"
            ));
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn ids_of(jobs: &[Job], cluster: &str) -> Vec<String> {
    jobs.iter()
        .filter(|j| j.cluster == cluster)
        .map(|j| j.id.clone())
        .collect()
}

// ---------------------------------------------------------------------------------------
// One collection

/// The zone where it is about noon now: nothing of the test straddles midnight.
fn pick_zone() -> String {
    if let Ok(z) = std::env::var("SLURM_USAGE_TEST_TZ") {
        return z;
    }
    match 12 - Utc::now().hour() as i32 {
        0 => "Etc/GMT".to_string(),
        o if o > 0 => format!("Etc/GMT-{o}"),
        o => format!("Etc/GMT+{}", -o),
    }
}

fn write_config(dir: &Path, zone: &str) -> Result<PathBuf, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let path = dir.join("config.toml");
    let text = format!(
        "# written by tests/real_clusters.rs\n\
         data_dir = \"{}\"\n\
         timezone = \"{zone}\"\n\
         [collect]\n\
         clusters = [\"rig\", \"beta\"]\n\
         lookback_days = 1\n\
         sacct = \"sacct\"\n\
         sacct_timeout = \"60s\"\n\
         retries = 1\n\
         retry_delay = \"1s\"\n\
         settle = \"1h\"\n",
        dir.join("data").display()
    );
    std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(path)
}

/// Every processed record of `cluster` in the data dir, with its partition's date.
fn archived(data: &Path, cluster: &str, zone: &Zone) -> Vec<(NaiveDate, ProcessedJob)> {
    let dir = data.join(format!("cluster={cluster}/processed"));
    let mut out = Vec::new();
    for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(date) = name
            .strip_suffix(".parquet")
            .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
        else {
            continue;
        };
        let jobs = slurm_usage::store::parquet::read_processed(&e.path(), zone)
            .unwrap_or_else(|err| panic!("{}: {err}", e.path().display()))
            .into_inner();
        out.extend(jobs.into_iter().map(|j| (date, j)));
    }
    out
}

/// One collection of both clusters and sacct's view around it.
struct Collected {
    config: PathBuf,
    data: PathBuf,
    collect: Out,
    /// sacct -j of the jobs of each cluster's archive, before and after the collect.
    before: BTreeMap<&'static str, BTreeMap<String, Vec<Row>>>,
    after: BTreeMap<&'static str, BTreeMap<String, Vec<Row>>>,
    /// The JobIDRaw of sacct's windows of the collected dates, before and after.
    window_before: BTreeMap<&'static str, BTreeSet<String>>,
    window_after: BTreeMap<&'static str, BTreeSet<String>>,
    /// Per cluster: the archived records.
    records: BTreeMap<&'static str, Vec<(NaiveDate, ProcessedJob)>>,
}

/// `collect --days 1` with `[collect] clusters`, between sacct snapshots; again (up to 3
/// times) while a finished job's sacct lines changed across it.
fn collect(dir: &Path, zone_name: &str, seed: Option<&Path>) -> Result<Collected, String> {
    let zone: Zone = zone_name.parse().map_err(|e| format!("{zone_name}: {e}"))?;
    let config = write_config(dir, zone_name)?;
    let data = dir.join("data");
    for attempt in 1..=3 {
        let _ = std::fs::remove_dir_all(&data);
        if let Some(seed) = seed {
            copy_dir(seed, &data)?;
        }
        let today = zone.today();
        let dates = [today.pred_opt().expect("a date before today"), today];
        let window = |c: &str| -> Result<BTreeSet<String>, String> {
            let mut w = BTreeSet::new();
            for d in dates {
                w.extend(sacct_window(c, zone.day_start(d), zone.day_end(d))?);
            }
            Ok(w)
        };
        let mut window_before = BTreeMap::new();
        let mut before = BTreeMap::new();
        for c in CLUSTERS {
            let w = window(c)?;
            before.insert(c, sacct_jobs(c, &w.iter().cloned().collect::<Vec<_>>())?);
            window_before.insert(c, w);
        }
        let out = bin(
            &config,
            &[
                "collect",
                "--days",
                "1",
                "--data-dir",
                &data.to_string_lossy(),
            ],
        )?;
        let mut window_after = BTreeMap::new();
        let mut after = BTreeMap::new();
        for c in CLUSTERS {
            let w = window(c)?;
            after.insert(c, sacct_jobs(c, &w.iter().cloned().collect::<Vec<_>>())?);
            window_after.insert(c, w);
        }
        let changed: Vec<String> = CLUSTERS
            .iter()
            .flat_map(|c| {
                let (b, a) = (&before[c], &after[c]);
                b.iter()
                    .filter(|(id, lines)| {
                        is_final(&lines[0]["State"])
                            && (a.get(*id) != Some(lines) || !settled(lines))
                    })
                    .map(move |(id, _)| format!("{c}:{id}"))
                    .collect::<Vec<_>>()
            })
            .collect();
        if changed.is_empty() && zone.today() == today {
            let records = CLUSTERS
                .iter()
                .map(|c| (*c, archived(&data, c, &zone)))
                .collect();
            return Ok(Collected {
                config,
                data,
                collect: out,
                before,
                after,
                window_before,
                window_after,
                records,
            });
        }
        note!("[real_clusters] attempt {attempt}: finished jobs changed across the collect: {changed:?}; again");
        std::thread::sleep(Duration::from_secs(2));
    }
    Err("finished jobs kept changing in sacct across three collects".into())
}

fn copy_dir(from: &Path, to: &Path) -> Result<(), String> {
    let out = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .output()
        .map_err(|e| format!("cp: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "cp -a {} {}: {}",
            from.display(),
            to.display(),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

// ---------------------------------------------------------------------------------------
// The phases

/// Both clusters up.
struct Up {
    jobs: Vec<Job>,
    run: Collected,
    current: Out,
    current_beta: Out,
    nodes: Out,
    test: Out,
    /// `squeue -M c -h -o %u` and `sinfo -M c -h -N -o %N` per cluster, beside the views.
    squeue_users: BTreeMap<&'static str, BTreeSet<String>>,
    sinfo_nodes: BTreeMap<&'static str, BTreeSet<String>>,
}

/// Beta's slurmctld stopped.
struct Down {
    sacct_beta: Out,
    squeue_beta: Out,
    sinfo_beta: Out,
    squeue_both: Out,
    sacctmgr_clusters: Out,
    run: Collected,
    current: Out,
    nodes: Out,
    test: Out,
    restart: Result<Out, String>,
}

struct Phases {
    up: Up,
    down: Down,
}

static PHASES: OnceLock<Result<Phases, String>> = OnceLock::new();

fn phases() -> Option<&'static Phases> {
    if std::env::var(GATE).map_or(true, |v| v != "1") {
        note!("{SKIP}");
        return None;
    }
    match PHASES.get_or_init(setup) {
        Ok(p) => Some(p),
        Err(e) => panic!("real two-cluster setup failed: {e}"),
    }
}

fn lines_set(text: &str) -> BTreeSet<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("CLUSTER"))
        .map(str::to_string)
        .collect()
}

fn setup() -> Result<Phases, String> {
    let t0 = Instant::now();
    if !util::is_root() {
        return Err("needs root (submits as alice and bob, stops and starts beta)".into());
    }
    for c in CLUSTERS {
        let out = tool("squeue", &["-M", c, "-h"])?;
        if !out.ok() {
            return Err(format!(
                "cluster {c} does not answer `squeue -M {c}` (hint: `sudo tests/slurm/second.sh start` starts both): {}",
                out.describe()
            ));
        }
    }
    let jobs = submit_mix()?;
    wait_for_mix(&jobs)?;
    let t_mix = t0.elapsed();
    let _ = std::fs::remove_dir_all(work_dir());
    let zone = pick_zone();

    let run = collect(&work_dir().join("up"), &zone, None)?;
    let config = run.config.clone();
    let mut squeue_users = BTreeMap::new();
    let mut sinfo_nodes = BTreeMap::new();
    for c in CLUSTERS {
        squeue_users.insert(
            c,
            lines_set(&tool("squeue", &["-M", c, "-h", "-o", "%u"])?.stdout),
        );
        sinfo_nodes.insert(
            c,
            lines_set(&tool("sinfo", &["-M", c, "-h", "-N", "-o", "%N"])?.stdout),
        );
    }
    let up = Up {
        current: bin(&config, &["current"])?,
        current_beta: bin(&config, &["current", "--cluster", "beta"])?,
        nodes: bin(&config, &["nodes"])?,
        test: bin(&config, &["test"])?,
        jobs,
        run,
        squeue_users,
        sinfo_nodes,
    };
    let t_up = t0.elapsed();

    script("second.sh", "stop-ctld")?;
    let beta_ids = ids_of(&up.jobs, "beta").join(",");
    let sacct_beta = tool(
        "sacct",
        &[
            "-M",
            "beta",
            "-X",
            "-P",
            "-n",
            "-j",
            &beta_ids,
            "-o",
            "JobIDRaw,Cluster,State",
        ],
    )?;
    let squeue_beta = tool("squeue", &["-M", "beta"])?;
    let sinfo_beta = tool("sinfo", &["-M", "beta"])?;
    let squeue_both = tool("squeue", &["-M", "rig,beta", "-o", "%i %u"])?;
    let sacctmgr_clusters = tool(
        "sacctmgr",
        &[
            "-n",
            "-P",
            "show",
            "cluster",
            "format=cluster,controlhost,controlport",
        ],
    )?;
    let run = collect(&work_dir().join("down"), &zone, Some(&up.run.data))?;
    let config = run.config.clone();
    let down = Down {
        current: bin(&config, &["current"])?,
        nodes: bin(&config, &["nodes"])?,
        test: bin(&config, &["test"])?,
        sacct_beta,
        squeue_beta,
        sinfo_beta,
        squeue_both,
        sacctmgr_clusters,
        run,
        restart: script("second.sh", "start"),
    };
    // The mix's RUNNING and PENDING jobs are not needed any more: free the CPUs.
    if down.restart.is_ok() {
        cancel_old_mix()?;
    }
    note!(
        "[real_clusters] ready in {:.1} s (job mix {:.1} s, up phase {:.1} s, down phase and restart {:.1} s; zone {zone})",
        t0.elapsed().as_secs_f64(),
        t_mix.as_secs_f64(),
        (t_up - t_mix).as_secs_f64(),
        (t0.elapsed() - t_up).as_secs_f64()
    );
    Ok(Phases { up, down })
}

// ---------------------------------------------------------------------------------------
// Checks

/// Every job of each cluster's sacct windows is archived once, under its cluster, nothing
/// else is, and its numbers are sacct's for that cluster.
fn check_collected(run: &Collected, jobs: &[Job], what: &str) {
    assert!(
        run.collect.ok(),
        "{what}: collect {}",
        run.collect.describe()
    );
    for c in CLUSTERS {
        let records = &run.records[c];
        let mut seen: BTreeMap<&str, Vec<NaiveDate>> = BTreeMap::new();
        for (d, j) in records {
            seen.entry(j.job_id_raw.as_str()).or_default().push(*d);
            assert_eq!(
                j.cluster.as_str(),
                c,
                "{what}: job {} in cluster={c}/",
                j.job_id_raw
            );
        }
        let twice: Vec<_> = seen.iter().filter(|(_, d)| d.len() > 1).collect();
        assert!(
            twice.is_empty(),
            "{what}: {c}: archived more than once: {twice:?}"
        );
        let ids: BTreeSet<String> = seen.keys().map(|s| s.to_string()).collect();
        let missing: Vec<_> = run.window_before[c].difference(&ids).collect();
        assert!(
            missing.is_empty(),
            "{what}: {c}: in sacct's window, not archived: {missing:?}"
        );
        let extra: Vec<_> = ids.difference(&run.window_after[c]).collect();
        assert!(
            extra.is_empty(),
            "{what}: {c}: archived, not in sacct's window: {extra:?}"
        );
        for j in jobs.iter().filter(|j| j.cluster == c) {
            assert!(
                ids.contains(&j.id),
                "{what}: {c}: mix job {} ({}) not archived",
                j.id,
                j.key
            );
        }
        for (_, rec) in records {
            let id = rec.job_id_raw.as_str();
            let (Some(b), Some(a)) = (run.before[c].get(id), run.after[c].get(id)) else {
                panic!("{what}: {c}: no sacct lines for archived job {id}");
            };
            let e = expected(a);
            assert_eq!(
                e.cluster, c,
                "{what}: sacct -M {c} -j {id} says cluster {}",
                e.cluster
            );
            let ctx = format!("{what}: {c} job {id} ({})", rec.job_name);
            if is_final(&a[0]["State"]) {
                assert_eq!(rec.state.as_str(), e.state, "{ctx}: state");
                assert!(rec.is_complete, "{ctx}: final but not complete");
                assert_eq!(rec.elapsed_seconds, e.elapsed, "{ctx}: elapsed");
                assert!(
                    close(rec.total_cpu_seconds, e.total_cpu),
                    "{ctx}: TotalCPU {} vs sacct {}",
                    rec.total_cpu_seconds,
                    e.total_cpu
                );
                assert!(
                    close(rec.max_rss_mb, e.max_rss_mb),
                    "{ctx}: memory peak {} vs sacct {}",
                    rec.max_rss_mb,
                    e.max_rss_mb
                );
            } else {
                let eb = expected(b);
                assert!(
                    rec.state == eb.state || rec.state == e.state,
                    "{ctx}: state {} vs sacct {} / {}",
                    rec.state,
                    eb.state,
                    e.state
                );
                assert!(!rec.is_complete, "{ctx}: unfinished but complete");
                assert!(
                    (eb.elapsed..=e.elapsed).contains(&rec.elapsed_seconds),
                    "{ctx}: elapsed {} not within sacct's {}..={}",
                    rec.elapsed_seconds,
                    eb.elapsed,
                    e.elapsed
                );
            }
            assert_eq!(rec.alloc_cpus, e.alloc_cpus, "{ctx}: AllocCPUS");
            assert!(
                close(rec.req_mem_mb, e.req_mem_mb),
                "{ctx}: ReqMem {} vs {}",
                rec.req_mem_mb,
                e.req_mem_mb
            );
            assert!(
                close(rec.alloc_mem_mb, e.alloc_mem_mb),
                "{ctx}: AllocTRES mem {} vs {}",
                rec.alloc_mem_mb,
                e.alloc_mem_mb
            );
            assert_eq!(rec.user.as_str(), e.user, "{ctx}: user");
            assert_eq!(rec.node_list.as_str(), e.node_list, "{ctx}: node list");
        }
    }
    for j in jobs {
        let (_, rec) = run.records[j.cluster]
            .iter()
            .find(|(_, r)| r.job_id_raw.as_str() == j.id)
            .expect("checked above");
        assert_eq!(
            rec.state.as_str(),
            j.expected,
            "{what}: {}:{} ({})",
            j.cluster,
            j.id,
            j.key
        );
    }
}

#[test]
fn collect_archives_every_job_of_both_clusters_once_with_sacct_numbers() {
    let Some(p) = phases() else { return };
    check_collected(&p.up.run, &p.up.jobs, "both up");
    let out = &p.up.run.collect.stdout;
    for c in CLUSTERS {
        assert!(
            out.contains(&format!("cluster {c}:")),
            "summary per cluster:\n{out}"
        );
    }
    // The comparisons above are not 0 = 0: the finished job used CPU and memory.
    for c in CLUSTERS {
        let done =
            p.up.jobs
                .iter()
                .find(|j| j.cluster == c && j.key == "done")
                .unwrap();
        let (_, rec) = p.up.run.records[c]
            .iter()
            .find(|(_, r)| r.job_id_raw.as_str() == done.id)
            .unwrap();
        assert!(
            rec.total_cpu_seconds > 0.0 && rec.max_rss_mb > 0.0,
            "{c}: {rec:?}"
        );
    }
    // The mix on each cluster: finished, failed, running and pending, by cluster.
    for c in CLUSTERS {
        let states: BTreeSet<&str> =
            p.up.jobs
                .iter()
                .filter(|j| j.cluster == c)
                .map(|j| j.expected)
                .collect();
        assert_eq!(states.len(), 4, "{c}: {states:?}");
    }
}

#[test]
fn a_job_id_in_both_clusters_is_two_jobs() {
    let Some(p) = phases() else { return };
    let twins: Vec<&Job> = p.up.jobs.iter().filter(|j| j.key == "twin").collect();
    assert_eq!(twins.len(), 2);
    assert_eq!(
        twins[0].id, twins[1].id,
        "the twin has one id in both clusters"
    );
    let id = twins[0].id.as_str();
    for c in CLUSTERS {
        let n = p.up.run.records[c]
            .iter()
            .filter(|(_, r)| r.job_id_raw.as_str() == id)
            .count();
        assert_eq!(n, 1, "job {id} archived once for {c}");
    }
    let config = &p.up.run.config;
    let both = bin(config, &["job", id]).unwrap();
    assert_eq!(both.code, Some(1), "{}", both.describe());
    assert!(
        both.stderr.contains("2 clusters")
            && both.stderr.contains("beta")
            && both.stderr.contains("rig")
            && both.stderr.contains("--cluster"),
        "says which clusters and how to pick: {}",
        both.describe()
    );
    for c in CLUSTERS {
        let one = bin(config, &["job", id, "--cluster", c]).unwrap();
        assert!(one.ok(), "{}", one.describe());
        assert!(one.stdout.contains(id), "{}", one.describe());
    }
    // analyze counts both: its clusters table has each cluster's archived jobs, the twin
    // in each.
    let json = bin(
        config,
        &["analyze", "--days", "1", "--format", "json", "--no-sinfo"],
    )
    .unwrap();
    assert!(json.ok(), "{}", json.describe());
    let v: serde_json::Value = serde_json::from_str(&json.stdout).expect("analyze --format json");
    let clusters = v["clusters"].as_array().expect("clusters list");
    for c in CLUSTERS {
        let row = clusters
            .iter()
            .find(|r| r["cluster"] == c)
            .unwrap_or_else(|| panic!("no cluster {c} in {clusters:?}"));
        let archived = p.up.run.records[c].len() as u64;
        assert_eq!(row["jobs"].as_u64(), Some(archived), "{c}: {row}");
    }
    assert_eq!(
        v["summary"]["jobs"].as_u64(),
        Some(
            CLUSTERS
                .iter()
                .map(|c| p.up.run.records[c].len() as u64)
                .sum()
        ),
        "the summary counts the twin twice: {}",
        v["summary"]
    );
    let beta = bin(
        config,
        &[
            "analyze",
            "--days",
            "1",
            "--format",
            "json",
            "--no-sinfo",
            "--cluster",
            "beta",
        ],
    )
    .unwrap();
    let v: serde_json::Value = serde_json::from_str(&beta.stdout).expect("analyze --cluster beta");
    assert_eq!(
        v["summary"]["jobs"].as_u64(),
        Some(p.up.run.records["beta"].len() as u64)
    );
}

#[test]
fn current_and_nodes_show_each_cluster() {
    let Some(p) = phases() else { return };
    let cur = &p.up.current;
    assert!(cur.ok(), "{}", cur.describe());
    for c in CLUSTERS {
        let section = cur
            .stdout
            .split(&format!("Slurm queue on cluster {c}: cores"))
            .nth(1)
            .unwrap_or_else(|| panic!("no section for {c}: {}", cur.describe()));
        let section = section.split("Slurm queue on cluster").next().unwrap_or("");
        for u in &p.up.squeue_users[c] {
            assert!(
                section.contains(u.as_str()),
                "{c}: squeue -M {c} shows {u}: {}",
                cur.describe()
            );
        }
    }
    let beta = &p.up.current_beta;
    assert!(beta.ok(), "{}", beta.describe());
    assert!(
        beta.stdout.contains("on cluster beta") && !beta.stdout.contains("on cluster rig"),
        "{}",
        beta.describe()
    );
    let nodes = &p.up.nodes;
    assert!(nodes.ok(), "{}", nodes.describe());
    for c in CLUSTERS {
        let section = nodes
            .stdout
            .split(&format!("Nodes of cluster {c}"))
            .nth(1)
            .unwrap_or_else(|| panic!("no section for {c}: {}", nodes.describe()));
        let section = section.split("Nodes of cluster").next().unwrap_or("");
        for n in &p.up.sinfo_nodes[c] {
            assert!(
                section.contains(n.as_str()),
                "{c}: sinfo -M {c} lists {n}: {}",
                nodes.describe()
            );
        }
    }
}

#[test]
fn test_command_checks_each_cluster() {
    let Some(p) = phases() else { return };
    let t = &p.up.test;
    assert!(t.ok(), "{}", t.describe());
    for c in CLUSTERS {
        assert!(
            t.stdout
                .contains(&format!("cluster {c}: slurmctld at 127.0.0.1:")),
            "{}",
            t.describe()
        );
        assert!(
            t.stdout
                .contains(&format!("dry collection today   cluster {c}:")),
            "{}",
            t.describe()
        );
    }
    assert!(
        t.stdout
            .contains("purge margin           clusters rig, beta:"),
        "{}",
        t.describe()
    );
}

/// What real Slurm 22.05 does with beta's slurmctld stopped, as found on this rig: slurmdbd
/// forgets the controller's address at once (`sacctmgr show cluster` gives `beta||0`, also
/// after a SIGKILL: the connection drops); `sacct -M beta` still answers from slurmdbd;
/// `squeue -M beta` and `sinfo -M beta` fail at once (exit 1, "can't be reached now");
/// `squeue -M rig,beta` exits 0 and leaves beta out without a word.
#[test]
fn with_beta_slurmctld_stopped_slurm_answers_like_this() {
    let Some(p) = phases() else { return };
    let d = &p.down;
    assert!(
        d.sacctmgr_clusters.ok(),
        "{}",
        d.sacctmgr_clusters.describe()
    );
    assert!(
        d.sacctmgr_clusters.stdout.lines().any(|l| l == "beta||0"),
        "{}",
        d.sacctmgr_clusters.describe()
    );
    assert!(
        d.sacct_beta.ok(),
        "sacct -M beta answers from slurmdbd: {}",
        d.sacct_beta.describe()
    );
    for j in p.up.jobs.iter().filter(|j| j.cluster == "beta") {
        assert!(
            d.sacct_beta.stdout.contains(&format!("{}|beta|", j.id)),
            "sacct -M beta lists {} ({}): {}",
            j.id,
            j.key,
            d.sacct_beta.describe()
        );
    }
    for out in [&d.squeue_beta, &d.sinfo_beta] {
        assert_eq!(out.code, Some(1), "{}", out.describe());
        assert!(
            out.stderr.contains("'beta' can't be reached now"),
            "{}",
            out.describe()
        );
    }
    assert!(d.squeue_both.ok(), "{}", d.squeue_both.describe());
    assert!(
        d.squeue_both.stdout.contains("CLUSTER: rig"),
        "{}",
        d.squeue_both.describe()
    );
    assert!(
        !d.squeue_both.stdout.contains("CLUSTER: beta"),
        "{}",
        d.squeue_both.describe()
    );
}

#[test]
fn collect_with_beta_slurmctld_stopped_completes_and_loses_nothing() {
    let Some(p) = phases() else { return };
    let (up, down) = (&p.up.run, &p.down.run);
    // sacct -M beta still answers, so beta is collected too: nothing fails.
    check_collected(down, &p.up.jobs, "beta's slurmctld stopped");
    for c in CLUSTERS {
        let before: BTreeSet<&str> = up.records[c]
            .iter()
            .map(|(_, r)| r.job_id_raw.as_str())
            .collect();
        let after: BTreeSet<&str> = down.records[c]
            .iter()
            .map(|(_, r)| r.job_id_raw.as_str())
            .collect();
        let lost: Vec<_> = before.difference(&after).collect();
        assert!(lost.is_empty(), "{c}: lost {lost:?}");
    }
    // Beta's running job keeps the state slurmdbd had when slurmctld stopped.
    let run =
        p.up.jobs
            .iter()
            .find(|j| j.cluster == "beta" && j.key == "run")
            .unwrap();
    let (_, rec) = down.records["beta"]
        .iter()
        .find(|(_, r)| r.job_id_raw.as_str() == run.id)
        .unwrap();
    assert_eq!(rec.state.as_str(), "RUNNING");
    assert!(!rec.is_complete);
}

#[test]
fn current_nodes_and_test_name_the_stopped_cluster() {
    let Some(p) = phases() else { return };
    let d = &p.down;
    for out in [&d.current, &d.nodes] {
        assert_eq!(
            out.code,
            Some(1),
            "exit 1 when a cluster could not be asked: {}",
            out.describe()
        );
        assert!(
            out.stderr.contains("cluster beta:") && out.stderr.contains("can't be reached"),
            "{}",
            out.describe()
        );
        assert!(!out.stderr.contains("cluster rig:"), "{}", out.describe());
    }
    assert!(
        d.current
            .stdout
            .contains("Slurm queue on cluster rig: cores"),
        "rig is still shown: {}",
        d.current.describe()
    );
    assert!(
        d.nodes.stdout.contains("Nodes of cluster rig"),
        "rig is still shown: {}",
        d.nodes.describe()
    );
    // test: beta's accounting still answers, so only a warning.
    assert!(d.test.ok(), "{}", d.test.describe());
    assert!(
        d.test
            .stdout
            .contains("cluster beta: known, but its slurmctld is not connected"),
        "{}",
        d.test.describe()
    );
    assert!(
        d.test
            .stdout
            .contains("dry collection today   cluster beta:"),
        "{}",
        d.test.describe()
    );
    let restart = d.restart.as_ref().expect("second.sh start after the stop");
    assert!(restart.ok(), "{}", restart.describe());
}

#[test]
fn data_dir_layout_has_one_directory_per_cluster() {
    let Some(p) = phases() else { return };
    for c in CLUSTERS {
        let dir = p.up.run.data.join(format!("cluster={c}"));
        assert!(dir.join("processed").is_dir(), "{}", dir.display());
        assert!(dir.join("raw").is_dir(), "{}", dir.display());
    }
    assert!(
        !p.up.run.data.join("processed").exists(),
        "nothing at the top level"
    );
}
