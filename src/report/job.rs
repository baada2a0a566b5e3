//! `slurm-usage job ID`: a seff-like view of one archived job, long after slurmdbd purged it.
//!
//! The job is found without reading the archive: each processed file's footer holds, per row
//! group, the min and max of `job_id` (and of `array_job_id`); only row groups whose range can
//! hold the id are read, first the id columns alone, then the full rows that match. Ids
//! compare as byte strings there, which is how Parquet orders them, so the check is exact
//! even though `"10" < "9"`. Files without statistics (some older writers) or with integer
//! ids (another tool's) are searched by their id column. When several records of the job
//! exist, the newest `processed_date` wins. A file without a `job_id` column, or that is not
//! a regular file, is listed as unreadable, never opened as a partition.
//!
//! Job ids are numbered per cluster, so a job is `(cluster, job_id)`: the search runs over a
//! set of archives (one per cluster, or one holding several) and, when the id is archived
//! for more than one cluster and no cluster was named, it says so
//! ([`JobError::Ambiguous`]) rather than picking one. A record without a cluster (the
//! Python tool's files have no `cluster` column) conflicts with no named cluster.
//!
//! The raw archive of the same date adds the job's steps (`.batch`, `.extern`, `.0`, ...)
//! when it is there. Nothing is written, nothing is moved.

use std::io::{self, Write};
use std::path::PathBuf;

use arrow_array::cast::AsArray;
use arrow_array::{Array, RecordBatch};
use arrow_schema::DataType;
use chrono::{DateTime, NaiveDate};
use parquet::arrow::ProjectionMask;
use parquet::basic::Type as PhysicalType;
use parquet::file::metadata::ParquetMetaData;

use crate::model::{self, ProcessedJob};
use crate::store::{Archive, Kind, Partition};
use crate::zone::Zone;

/// Why the archive could not be searched (a job that is simply absent is not an error).
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("cannot list {path}: {source}")]
    List {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The id is archived for several clusters and no `--cluster` picked one.
    #[error("job {id} is archived for {} clusters: {} (hint: pick one with --cluster NAME)", .clusters.len(), .clusters.join(", "))]
    Ambiguous { id: String, clusters: Vec<String> },
}

/// One record of the job and where it was found.
#[derive(Debug, Clone)]
pub struct Found {
    pub job: ProcessedJob,
    /// The index of its archive in the set searched.
    pub archive: usize,
    /// The partition's date and name.
    pub date: NaiveDate,
    pub file: PathBuf,
}

/// What a search found.
#[derive(Debug, Default)]
pub struct Lookup {
    /// Every record of the job, newest `processed_date` first.
    pub records: Vec<Found>,
    /// Array tasks of `ID` when `ID` is an array's base id (`123` for `123_4`).
    pub tasks: Vec<Found>,
    /// Files in the archive, and how many had to be opened beyond their footer.
    pub files: usize,
    pub files_read: usize,
    /// Files that could not be read, with the reason.
    pub unreadable: Vec<String>,
    /// With a cluster asked for: the other clusters the id is archived for (left out).
    pub elsewhere: Vec<String>,
}

/// The distinct clusters of `found`, sorted; records without a cluster are left out.
fn clusters_of<'a>(found: impl Iterator<Item = &'a Found>) -> Vec<String> {
    let mut v: Vec<String> = found
        .map(|f| f.job.cluster.to_string())
        .filter(|c| !c.is_empty())
        .collect();
    v.sort();
    v.dedup();
    v
}

/// A step from the raw archive.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Step {
    pub id: String,
    pub name: String,
    pub state: String,
    pub elapsed: String,
    pub total_cpu: String,
    pub max_rss: String,
    pub exit_code: String,
}

/// Whether a column's statistics in `rg` allow `id` (true when there are none).
///
/// Only a text column's statistics compare with the id's bytes: those of a column another
/// tool wrote as integers (`job_id` = 500) are the number's little-endian bytes, which say
/// nothing about `"500"`, so such a column is always read.
fn may_hold(meta: &ParquetMetaData, rg: usize, col: Option<usize>, id: &[u8]) -> bool {
    let Some(col) = col else { return false };
    let physical = meta
        .file_metadata()
        .schema_descr()
        .column(col)
        .physical_type();
    if !matches!(
        physical,
        PhysicalType::BYTE_ARRAY | PhysicalType::FIXED_LEN_BYTE_ARRAY
    ) {
        return true;
    }
    let group = meta.row_group(rg);
    let Some(stats) = group.column(col).statistics() else {
        return true;
    };
    match (stats.min_bytes_opt(), stats.max_bytes_opt()) {
        (Some(min), Some(max)) => min <= id && id <= max,
        // No min/max because every value is null (`array_job_id` of a file without arrays).
        _ => stats
            .null_count_opt()
            .is_none_or(|n| i64::try_from(n).ok() != Some(group.num_rows())),
    }
}

fn column_index(meta: &ParquetMetaData, name: &str) -> Option<usize> {
    let schema = meta.file_metadata().schema_descr();
    (0..schema.num_columns()).find(|&i| schema.column(i).name() == name)
}

/// The rows of `batch` whose `column` equals `id`.
fn matching_rows(batch: &RecordBatch, column: &str, id: &str) -> Vec<usize> {
    let Some(c) = batch.column_by_name(column) else {
        return Vec::new();
    };
    let Ok(c) = arrow_cast::cast(c, &DataType::Utf8) else {
        return Vec::new();
    };
    let c = c.as_string::<i32>();
    (0..c.len())
        .filter(|&i| c.is_valid(i) && c.value(i) == id)
        .collect()
}

type SearchResult = (Vec<ProcessedJob>, Vec<ProcessedJob>, bool);

/// Searches one partition; returns (exact records, array tasks, whether column data was
/// read).
fn search_partition(part: &Partition, id: &str, zone: &Zone) -> Result<SearchResult, String> {
    let path = part.name();
    let builder = || {
        part.reader()
            .map_err(|e| format!("{}: {e}", path.display()))
    };
    let meta = builder()?.metadata().clone();
    let id_col = column_index(&meta, "job_id");
    if id_col.is_none() {
        // Not silently: a file in processed/ that holds no jobs deserves a look.
        return Err(format!(
            "{}: not a processed partition (no `job_id` column)",
            path.display()
        ));
    }
    let array_col = column_index(&meta, "array_job_id");
    // An array's base id never contains `_`; `123_4` is a task and only matches exactly.
    let want_tasks = !id.contains('_');
    let groups: Vec<usize> = (0..meta.num_row_groups())
        .filter(|&rg| {
            may_hold(&meta, rg, id_col, id.as_bytes())
                || (want_tasks && may_hold(&meta, rg, array_col, id.as_bytes()))
        })
        .collect();
    if groups.is_empty() {
        return Ok((Vec::new(), Vec::new(), false));
    }
    let mut exact = Vec::new();
    let mut tasks = Vec::new();
    for rg in groups {
        // First the id columns only; the full row group only when something matches.
        let keys: Vec<&str> = ["job_id", "array_job_id"].into_iter().collect();
        let b = builder()?;
        let mask = ProjectionMask::columns(b.parquet_schema(), keys.iter().copied());
        let reader = b
            .with_row_groups(vec![rg])
            .with_projection(mask)
            .build()
            .map_err(|e| format!("{}: {e}", path.display()))?;
        let mut hit = false;
        for batch in reader {
            let batch = batch.map_err(|e| format!("{}: {e}", path.display()))?;
            hit |= !matching_rows(&batch, "job_id", id).is_empty()
                || (want_tasks && !matching_rows(&batch, "array_job_id", id).is_empty());
        }
        if !hit {
            continue;
        }
        let reader = builder()?
            .with_row_groups(vec![rg])
            .build()
            .map_err(|e| format!("{}: {e}", path.display()))?;
        for batch in reader {
            let batch = batch.map_err(|e| format!("{}: {e}", path.display()))?;
            let exact_rows = matching_rows(&batch, "job_id", id);
            let task_rows = if want_tasks {
                matching_rows(&batch, "array_job_id", id)
            } else {
                Vec::new()
            };
            if exact_rows.is_empty() && task_rows.is_empty() {
                continue;
            }
            let jobs = model::from_record_batch(&batch, zone)
                .map_err(|e| format!("{}: {e}", path.display()))?;
            exact.extend(exact_rows.iter().map(|&i| jobs[i].clone()));
            tasks.extend(
                task_rows
                    .iter()
                    .filter(|i| !exact_rows.contains(i))
                    .map(|&i| jobs[i].clone()),
            );
        }
    }
    Ok((exact, tasks, true))
}

/// Finds every record of job `id` in `archives` (read as one: one per cluster, or a single
/// archive). With `cluster`, only that cluster's records count, and the other clusters
/// holding the id are listed in [`Lookup::elsewhere`]; without it, an id archived for more
/// than one cluster is [`JobError::Ambiguous`].
pub fn lookup(
    archives: &[Archive],
    id: &str,
    cluster: Option<&str>,
    zone: &Zone,
) -> Result<Lookup, JobError> {
    let mut out = Lookup::default();
    for (a, archive) in archives.iter().enumerate() {
        let dates = archive
            .dates(Kind::Processed)
            .map_err(|source| JobError::List {
                path: archive.prefix(Kind::Processed),
                source,
            })?;
        out.files += dates.len();
        search_archive(archive, a, &dates, id, zone, &mut out);
    }
    match cluster {
        Some(c) => {
            let is = |f: &Found| f.job.cluster == c;
            out.elsewhere = clusters_of(out.records.iter().chain(&out.tasks).filter(|f| !is(f)));
            out.records.retain(is);
            out.tasks.retain(is);
        }
        None => {
            let clusters = clusters_of(out.records.iter().chain(&out.tasks));
            if clusters.len() > 1 {
                return Err(JobError::Ambiguous {
                    id: id.to_string(),
                    clusters,
                });
            }
        }
    }
    out.records
        .sort_by_key(|r| std::cmp::Reverse(r.job.processed_date));
    // A task can sit in two files too: keep its newest record.
    out.tasks.sort_by(|a, b| {
        (&a.job.cluster, &a.job.job_id)
            .cmp(&(&b.job.cluster, &b.job.job_id))
            .then(b.job.processed_date.cmp(&a.job.processed_date))
    });
    out.tasks
        .dedup_by(|a, b| a.job.job_id == b.job.job_id && a.job.cluster == b.job.cluster);
    out.tasks
        .sort_by_key(|t| (t.job.array_task_id, t.job.job_id.clone()));
    Ok(out)
}

/// Searches the partitions `dates` of `archive` (number `a` of the set), newest first.
fn search_archive(
    archive: &Archive,
    a: usize,
    dates: &[NaiveDate],
    id: &str,
    zone: &Zone,
    out: &mut Lookup,
) {
    for &date in dates.iter().rev() {
        let part = match archive.open(Kind::Processed, date) {
            Ok(Some(p)) => p,
            // Gone since the listing (a collector moved it aside): nothing to search.
            Ok(None) => continue,
            Err(e) => {
                out.unreadable.push(e.to_string());
                continue;
            }
        };
        let found = |job| Found {
            job,
            archive: a,
            date,
            file: part.name().to_path_buf(),
        };
        match search_partition(&part, id, zone) {
            Ok((exact, tasks, read)) => {
                out.files_read += usize::from(read);
                out.records.extend(exact.into_iter().map(found));
                out.tasks.extend(tasks.into_iter().map(found));
            }
            Err(e) => out.unreadable.push(e),
        }
    }
}

/// The job's steps from the raw partition of `date`, if it is there and readable.
pub fn raw_steps(archive: &Archive, date: NaiveDate, job_id: &str) -> Vec<Step> {
    // A FIFO is never opened (it would block); any other failure means no steps to show.
    let Ok(Some(part)) = archive.open(Kind::Raw, date) else {
        return Vec::new();
    };
    let Ok(b) = part.reader() else {
        return Vec::new();
    };
    let cols = [
        "JobID", "JobName", "State", "Elapsed", "TotalCPU", "MaxRSS", "ExitCode",
    ];
    let mask = ProjectionMask::columns(b.parquet_schema(), cols);
    let Ok(reader) = b.with_projection(mask).build() else {
        return Vec::new();
    };
    let prefix = format!("{job_id}.");
    let mut steps = Vec::new();
    for batch in reader.flatten() {
        let text = |name: &str| {
            batch
                .column_by_name(name)
                .and_then(|c| arrow_cast::cast(c, &DataType::Utf8).ok())
        };
        let Some(ids) = text("JobID") else { continue };
        let ids = ids.as_string::<i32>();
        let others: Vec<_> = cols[1..].iter().map(|c| text(c)).collect();
        for i in 0..ids.len() {
            if !ids.is_valid(i) || !ids.value(i).starts_with(&prefix) {
                continue;
            }
            let get = |k: usize| {
                others[k]
                    .as_ref()
                    .map(|a| a.as_string::<i32>())
                    .filter(|a| a.is_valid(i))
                    .map_or(String::new(), |a| a.value(i).to_string())
            };
            steps.push(Step {
                id: ids.value(i).to_string(),
                name: get(0),
                state: get(1),
                elapsed: get(2),
                total_cpu: get(3),
                max_rss: get(4),
                exit_code: get(5),
            });
        }
    }
    steps
}

/// `HH:MM:SS`, with `D-` for a day or more, as seff prints times.
pub fn clock(secs: f64) -> String {
    let s = secs.max(0.0).round() as i64;
    let (d, h, m, s) = (s / 86_400, s / 3600 % 24, s / 60 % 60, s % 60);
    if d > 0 {
        format!("{d}-{h:02}:{m:02}:{s:02}")
    } else {
        format!("{h:02}:{m:02}:{s:02}")
    }
}

/// Memory in MB as seff prints it (`5.96 MB`, `1.50 GB`, `2.00 TB`).
pub fn mem(mb: f64) -> String {
    if mb >= 1024.0 * 1024.0 {
        format!("{:.2} TB", mb / (1024.0 * 1024.0))
    } else if mb >= 1024.0 {
        format!("{:.2} GB", mb / 1024.0)
    } else {
        format!("{mb:.2} MB")
    }
}

fn when(t: Option<i64>, zone: &Zone) -> String {
    let Some(t) = t.and_then(DateTime::from_timestamp_micros) else {
        return "-".into();
    };
    match zone {
        Zone::Named(tz) => t
            .with_timezone(tz)
            .format("%Y-%m-%d %H:%M:%S %Z")
            .to_string(),
        Zone::Local => t
            .with_timezone(&chrono::Local)
            .format("%Y-%m-%d %H:%M:%S %:z")
            .to_string(),
    }
}

/// Writes the seff-like view of `found` (the newest record), its other records and steps.
pub fn write_job(l: &Lookup, steps: &[Step], zone: &Zone, out: &mut impl Write) -> io::Result<()> {
    let Some(f) = l.records.first() else {
        return write_tasks(l, out);
    };
    let j = &f.job;
    let or_dash = |s: &str| {
        if s.is_empty() {
            "-".to_string()
        } else {
            s.to_string()
        }
    };
    writeln!(out, "Job ID: {}", j.job_id)?;
    if let (Some(a), Some(t)) = (&j.array_job_id, j.array_task_id) {
        writeln!(out, "Array Job ID: {a}_{t}")?;
    }
    if !j.cluster.is_empty() {
        writeln!(out, "Cluster: {}", j.cluster)?;
    }
    writeln!(out, "User/Group: {}/{}", j.user, or_dash(&j.group))?;
    if !j.account.is_empty() || !j.qos.is_empty() {
        writeln!(
            out,
            "Account: {}  QOS: {}",
            or_dash(&j.account),
            or_dash(&j.qos)
        )?;
    }
    writeln!(out, "Job Name: {}", or_dash(&j.job_name))?;
    writeln!(out, "Partition: {}", or_dash(&j.partition))?;
    let exit = if j.exit_code.is_empty() {
        String::new()
    } else {
        format!(" (exit code {})", j.exit_code)
    };
    writeln!(out, "State: {}{exit}", j.state)?;
    let nodes = crate::slurm::hostlist::expand_nodelist(&j.node_list).len();
    writeln!(
        out,
        "Nodes: {}{}",
        j.alloc_nodes.max(nodes as i64),
        if j.node_list.is_empty() {
            String::new()
        } else {
            format!(" ({})", j.node_list)
        }
    )?;
    let n = j.alloc_nodes.max(nodes as i64).max(1);
    if j.alloc_cpus % n == 0 {
        writeln!(out, "Cores per node: {}", j.alloc_cpus / n)?;
    } else {
        writeln!(out, "Cores: {}", j.alloc_cpus)?;
    }
    writeln!(out, "Submit: {}", when(j.submit_time, zone))?;
    writeln!(out, "Start:  {}", when(j.start_time, zone))?;
    writeln!(out, "End:    {}", when(j.end_time, zone))?;
    if let Some(w) = j.wait_seconds {
        writeln!(out, "Wait time: {}", clock(w as f64))?;
    }
    let core_walltime = j.elapsed_seconds as f64 * j.alloc_cpus as f64;
    writeln!(out, "CPU Utilized: {}", clock(j.total_cpu_seconds))?;
    writeln!(
        out,
        "CPU Efficiency: {:.2}% of {} core-walltime",
        j.cpu_efficiency,
        clock(core_walltime)
    )?;
    writeln!(
        out,
        "Job Wall-clock time: {}",
        clock(j.elapsed_seconds as f64)
    )?;
    if let Some(t) = j.timelimit_seconds {
        writeln!(out, "Time limit: {}", clock(t as f64))?;
    }
    writeln!(out, "Memory Utilized: {}", mem(j.max_rss_mb))?;
    writeln!(
        out,
        "Memory Efficiency: {:.2}% of {}",
        j.memory_efficiency,
        mem(j.alloc_mem_mb)
    )?;
    if j.alloc_gpus > 0 {
        writeln!(
            out,
            "GPUs: {} ({:.2} GPU hours)",
            j.alloc_gpus, j.gpu_hours_reserved
        )?;
        match j.gpu_utilization {
            // Each step's figure is its tasks' sampled peaks: an upper bound on the average.
            Some(u) => writeln!(
                out,
                "GPU Utilization: {u:.2}% of {} GPU{} (busiest step, sampled peak: an upper bound)",
                j.alloc_gpus,
                if j.alloc_gpus == 1 { "" } else { "s" }
            )?,
            None => writeln!(out, "GPU Utilization: no GPU accounting data")?,
        }
        if let Some(m) = j.gpu_memory_max_mb {
            writeln!(out, "GPU Memory Utilized: {}", mem(m))?;
        }
        if let Some(w) = j.gpu_hours_wasted {
            writeln!(out, "GPU hours wasted: {w:.2}")?;
        }
    }
    if let Some(e) = j.energy_joules {
        writeln!(out, "Energy Consumed: {:.3} kWh ({e:.0} joules)", e / 3.6e6)?;
    }
    writeln!(
        out,
        "Reserved: {:.2} CPU hours, {:.2} memory GB-hours",
        j.cpu_hours_reserved, j.memory_gb_hours_reserved
    )?;
    writeln!(
        out,
        "Wasted: {:.2} CPU hours, {:.2} memory GB-hours",
        j.cpu_hours_wasted, j.memory_gb_hours_wasted
    )?;
    if !j.is_complete {
        writeln!(
            out,
            "Note: the job was {} when it was last collected; its usage is final only once it has finished.",
            j.state
        )?;
    }
    writeln!(out)?;
    writeln!(
        out,
        "Archived in {} (record of {})",
        f.file.display(),
        when(Some(j.processed_date), &Zone::Named(chrono_tz::UTC))
    )?;
    for older in &l.records[1..] {
        writeln!(
            out,
            "Older record ignored: {} ({}, record of {})",
            older.file.display(),
            older.job.state,
            when(Some(older.job.processed_date), &Zone::Named(chrono_tz::UTC))
        )?;
    }
    if !steps.is_empty() {
        writeln!(out)?;
        writeln!(out, "Steps (raw archive):")?;
        let w = steps.iter().map(|s| s.id.len()).max().unwrap_or(4).max(4);
        writeln!(
            out,
            "  {:<w$} {:<12} {:<11} {:>11} {:>12} {:>10} {:>6}",
            "Step", "Name", "State", "Elapsed", "TotalCPU", "MaxRSS", "Exit"
        )?;
        for s in steps {
            let name: String = s.name.chars().take(12).collect();
            writeln!(
                out,
                "  {:<w$} {:<12} {:<11} {:>11} {:>12} {:>10} {:>6}",
                s.id, name, s.state, s.elapsed, s.total_cpu, s.max_rss, s.exit_code
            )?;
        }
    }
    if !l.tasks.is_empty() {
        writeln!(out)?;
        write_tasks(l, out)?;
    }
    Ok(())
}

fn write_tasks(l: &Lookup, out: &mut impl Write) -> io::Result<()> {
    writeln!(out, "Array tasks ({}):", l.tasks.len())?;
    writeln!(
        out,
        "  {:<16} {:<11} {:>11} {:>8} {:>8}",
        "Job ID", "State", "Elapsed", "CPU eff", "Mem eff"
    )?;
    for t in &l.tasks {
        let j = &t.job;
        writeln!(
            out,
            "  {:<16} {:<11} {:>11} {:>7.1}% {:>7.1}%",
            j.job_id,
            j.state,
            clock(j.elapsed_seconds as f64),
            j.cpu_efficiency,
            j.memory_efficiency
        )?;
    }
    writeln!(out, "Show one with `slurm-usage job <task id>`.")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seff_formats() {
        assert_eq!(clock(5.448), "00:00:05");
        assert_eq!(clock(12.0), "00:00:12");
        assert_eq!(clock(90061.0), "1-01:01:01");
        assert_eq!(mem(6108.0 / 1024.0), "5.96 MB");
        assert_eq!(mem(1536.0), "1.50 GB");
    }

    fn view(job: ProcessedJob) -> String {
        let l = Lookup {
            records: vec![Found {
                job,
                archive: 0,
                date: NaiveDate::from_ymd_opt(2026, 11, 25).unwrap(),
                file: PathBuf::from("processed/2026-11-25.parquet"),
            }],
            ..Default::default()
        };
        let mut out = Vec::new();
        write_job(&l, &[], &Zone::Named(chrono_tz::UTC), &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    /// seff-style GPU and energy lines where sacct measured them; one line saying there is
    /// no data where it did not; nothing about GPUs for a CPU job.
    #[test]
    fn gpu_and_energy_lines() {
        let gpu = ProcessedJob {
            job_id: "41".into(),
            state: "COMPLETED".into(),
            is_complete: true,
            alloc_gpus: 4,
            gpu_hours_reserved: 8.0,
            gpu_utilization: Some(75.0),
            gpu_memory_max_mb: Some(61440.0),
            gpu_hours_wasted: Some(2.0),
            energy_joules: Some(7_200_000.0),
            ..Default::default()
        };
        let text = view(gpu.clone());
        assert!(text.contains("GPUs: 4 (8.00 GPU hours)\n"), "{text}");
        assert!(
            text.contains(
                "GPU Utilization: 75.00% of 4 GPUs (busiest step, sampled peak: an upper bound)\n"
            ),
            "{text}"
        );
        assert!(text.contains("GPU Memory Utilized: 60.00 GB\n"), "{text}");
        assert!(text.contains("GPU hours wasted: 2.00\n"), "{text}");
        assert!(
            text.contains("Energy Consumed: 2.000 kWh (7200000 joules)\n"),
            "{text}"
        );

        let unmeasured = ProcessedJob {
            gpu_utilization: None,
            gpu_memory_max_mb: None,
            gpu_hours_wasted: None,
            energy_joules: None,
            ..gpu
        };
        let text = view(unmeasured);
        assert_eq!(text.matches("no GPU accounting data").count(), 1, "{text}");
        assert!(!text.contains("GPU Memory"), "{text}");
        assert!(!text.contains("Energy"), "{text}");

        let cpu = ProcessedJob {
            job_id: "1".into(),
            state: "COMPLETED".into(),
            ..Default::default()
        };
        let text = view(cpu);
        assert!(!text.contains("GPU"), "{text}");
    }
}
