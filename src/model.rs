//! `ProcessedJob`: one row of `processed/YYYY-MM-DD.parquet`, its Arrow schema, and the
//! conversions to and from record batches.
//!
//! Column names and types are a contract with the Python tool's users and with analysts'
//! scripts (`docs/data-layout.md`, "Processed partitions"): the original columns keep their
//! names, extra columns are added after them, timestamps are `Timestamp(us, UTC)`.
//!
//! Reading is lenient on purpose: a file written by the Python tool (naive or string
//! timestamps, missing extra columns, other integer widths) is coerced column by column, so
//! an old archive is extended, not rejected (`docs/data-layout.md`, "Files of the Python
//! tool").

use std::sync::Arc;

use arrow_array::builder::{
    BooleanBuilder, Float64Builder, Int64Builder, StringBuilder, TimestampMicrosecondBuilder,
};
use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int64Type, TimestampMicrosecondType};
use arrow_array::{Array, ArrayRef, Int64Array, RecordBatch};
use arrow_schema::{ArrowError, DataType, Field, Schema, SchemaRef, TimeUnit};
use chrono::NaiveDateTime;

use crate::zone::Zone;

/// Version of the processed schema, stored in Parquet metadata. Bump on any change: a file of
/// a higher version is never rewritten (`docs/data-layout.md`, "Parquet metadata and schema
/// versions").
///
/// 2: `gpu_utilization`, `gpu_memory_max_mb`, `gpu_hours_wasted`, `energy_joules` (nullable;
/// a version-1 file reads them as null).
pub const SCHEMA_VERSION: &str = "2";

/// Text of a job record: inline up to 24 bytes (ids, users, states, partitions, most node
/// lists), so a record is one allocation-free value instead of ~14 heap strings.
pub type Text = compact_str::CompactString;

/// One job with its efficiency metrics. Times are UTC microseconds since the epoch.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ProcessedJob {
    /// sacct's JobID of the allocation (`123`, `4_1`, `7+0`).
    pub job_id: Text,
    pub user: Text,
    pub job_name: Text,
    pub partition: Text,
    /// Normalized state (`CANCELLED by 0` -> `CANCELLED`).
    pub state: Text,
    pub submit_time: Option<i64>,
    pub start_time: Option<i64>,
    pub end_time: Option<i64>,
    /// Slurm host list; empty for a job that never started.
    pub node_list: Text,
    pub elapsed_seconds: i64,
    pub alloc_cpus: i64,
    pub req_mem_mb: f64,
    pub max_rss_mb: f64,
    pub total_cpu_seconds: f64,
    pub alloc_gpus: i64,
    pub cpu_efficiency: f64,
    pub memory_efficiency: f64,
    pub cpu_hours_wasted: f64,
    pub memory_gb_hours_wasted: f64,
    pub cpu_hours_reserved: f64,
    pub memory_gb_hours_reserved: f64,
    pub gpu_hours_reserved: f64,
    /// When this record was computed (readers keep the newest per job_id).
    pub processed_date: i64,
    /// The job is in a final state.
    pub is_complete: bool,
    // Ours, after the Python tool's columns (`docs/data-layout.md`, "Processed partitions").
    pub account: Text,
    pub qos: Text,
    pub cluster: Text,
    /// The job's Unix group as sacct reports it (research groups come from the config).
    pub group: Text,
    pub exit_code: Text,
    pub timelimit_seconds: Option<i64>,
    pub alloc_nodes: i64,
    /// The memory the job held: AllocTRES `mem=`, else the request.
    pub alloc_mem_mb: f64,
    pub array_job_id: Option<Text>,
    pub array_task_id: Option<i64>,
    /// Start minus submit; `None` while the job has not started.
    pub wait_seconds: Option<i64>,
    pub job_id_raw: Text,
    pub sacct_version: Text,
    // Schema version 2: measured GPU use and energy. `None` means sacct had no such data
    // (no GPU accounting, no energy plugin, no GPU allocated), never a measured zero.
    /// Percent of the allocated GPUs the busiest step was sampled at, 0-100 (an upper bound
    /// on the time average: `docs/metrics.md`).
    pub gpu_utilization: Option<f64>,
    /// Peak GPU memory of the busiest step, summed over its tasks (MiB).
    pub gpu_memory_max_mb: Option<f64>,
    /// `gpu_hours_reserved` x the unused fraction; `None` without utilisation data.
    pub gpu_hours_wasted: Option<f64>,
    /// ConsumedEnergyRaw of the allocation line (joules).
    pub energy_joules: Option<f64>,
}

impl ProcessedJob {
    /// Equal in everything but `processed_date`: used to skip rewriting unchanged partitions.
    pub fn same_content(&self, other: &ProcessedJob) -> bool {
        let mut a = self.clone();
        a.processed_date = other.processed_date;
        a == *other
    }
}

fn ts() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

/// The processed schema, in column order.
pub fn schema() -> SchemaRef {
    use DataType::*;
    let f = |n: &str, t: DataType, null: bool| Field::new(n, t, null);
    Arc::new(Schema::new(vec![
        f("job_id", Utf8, false),
        f("user", Utf8, false),
        f("job_name", Utf8, false),
        f("partition", Utf8, false),
        f("state", Utf8, false),
        f("submit_time", ts(), true),
        f("start_time", ts(), true),
        f("end_time", ts(), true),
        f("node_list", Utf8, false),
        f("elapsed_seconds", Int64, false),
        f("alloc_cpus", Int64, false),
        f("req_mem_mb", Float64, false),
        f("max_rss_mb", Float64, false),
        f("total_cpu_seconds", Float64, false),
        f("alloc_gpus", Int64, false),
        f("cpu_efficiency", Float64, false),
        f("memory_efficiency", Float64, false),
        f("cpu_hours_wasted", Float64, false),
        f("memory_gb_hours_wasted", Float64, false),
        f("cpu_hours_reserved", Float64, false),
        f("memory_gb_hours_reserved", Float64, false),
        f("gpu_hours_reserved", Float64, false),
        f("processed_date", ts(), false),
        f("is_complete", Boolean, false),
        f("account", Utf8, false),
        f("qos", Utf8, false),
        f("cluster", Utf8, false),
        f("group", Utf8, false),
        f("exit_code", Utf8, false),
        f("timelimit_seconds", Int64, true),
        f("alloc_nodes", Int64, false),
        f("alloc_mem_mb", Float64, false),
        f("array_job_id", Utf8, true),
        f("array_task_id", Int64, true),
        f("wait_seconds", Int64, true),
        f("job_id_raw", Utf8, false),
        f("sacct_version", Utf8, false),
        f("gpu_utilization", Float64, true),
        f("gpu_memory_max_mb", Float64, true),
        f("gpu_hours_wasted", Float64, true),
        f("energy_joules", Float64, true),
    ]))
}

/// Builds one record batch in [`schema`] order.
///
/// One pass over the jobs, appending each to every column: a job (~1 KB with its strings)
/// is read from memory once, where a pass per column would fetch it 37 times.
pub fn to_record_batch(jobs: &[&ProcessedJob]) -> Result<RecordBatch, ArrowError> {
    let n = jobs.len();
    let text = |bytes_per_row: usize| StringBuilder::with_capacity(n, n * bytes_per_row);
    let ints = || Int64Builder::with_capacity(n);
    let floats = || Float64Builder::with_capacity(n);
    let times = || TimestampMicrosecondBuilder::with_capacity(n).with_timezone("UTC");
    let (mut job_id, mut user, mut job_name, mut partition, mut state) =
        (text(8), text(8), text(16), text(8), text(9));
    let (mut submit, mut start, mut end) = (times(), times(), times());
    let mut node_list = text(8);
    let (mut elapsed, mut alloc_cpus) = (ints(), ints());
    let (mut req_mem, mut max_rss, mut total_cpu) = (floats(), floats(), floats());
    let mut alloc_gpus = ints();
    let mut metrics: [Float64Builder; 7] = std::array::from_fn(|_| floats());
    let mut processed = times();
    let mut complete = BooleanBuilder::with_capacity(n);
    let (mut account, mut qos, mut cluster, mut group, mut exit_code) =
        (text(8), text(8), text(8), text(8), text(4));
    let (mut timelimit, mut alloc_nodes) = (ints(), ints());
    let mut alloc_mem = floats();
    let mut array_job_id = text(4);
    let (mut array_task_id, mut wait) = (ints(), ints());
    let (mut job_id_raw, mut sacct_version) = (text(8), text(16));
    let mut measured: [Float64Builder; 4] = std::array::from_fn(|_| floats());
    for j in jobs {
        job_id.append_value(&j.job_id);
        user.append_value(&j.user);
        job_name.append_value(&j.job_name);
        partition.append_value(&j.partition);
        state.append_value(&j.state);
        submit.append_option(j.submit_time);
        start.append_option(j.start_time);
        end.append_option(j.end_time);
        node_list.append_value(&j.node_list);
        elapsed.append_value(j.elapsed_seconds);
        alloc_cpus.append_value(j.alloc_cpus);
        req_mem.append_value(j.req_mem_mb);
        max_rss.append_value(j.max_rss_mb);
        total_cpu.append_value(j.total_cpu_seconds);
        alloc_gpus.append_value(j.alloc_gpus);
        let values = [
            j.cpu_efficiency,
            j.memory_efficiency,
            j.cpu_hours_wasted,
            j.memory_gb_hours_wasted,
            j.cpu_hours_reserved,
            j.memory_gb_hours_reserved,
            j.gpu_hours_reserved,
        ];
        for (b, v) in metrics.iter_mut().zip(values) {
            b.append_value(v);
        }
        processed.append_value(j.processed_date);
        complete.append_value(j.is_complete);
        account.append_value(&j.account);
        qos.append_value(&j.qos);
        cluster.append_value(&j.cluster);
        group.append_value(&j.group);
        exit_code.append_value(&j.exit_code);
        timelimit.append_option(j.timelimit_seconds);
        alloc_nodes.append_value(j.alloc_nodes);
        alloc_mem.append_value(j.alloc_mem_mb);
        array_job_id.append_option(j.array_job_id.as_deref());
        array_task_id.append_option(j.array_task_id);
        wait.append_option(j.wait_seconds);
        job_id_raw.append_value(&j.job_id_raw);
        sacct_version.append_value(&j.sacct_version);
        let values = [
            j.gpu_utilization,
            j.gpu_memory_max_mb,
            j.gpu_hours_wasted,
            j.energy_joules,
        ];
        for (b, v) in measured.iter_mut().zip(values) {
            b.append_option(v);
        }
    }
    let mut columns: Vec<ArrayRef> = vec![
        Arc::new(job_id.finish()),
        Arc::new(user.finish()),
        Arc::new(job_name.finish()),
        Arc::new(partition.finish()),
        Arc::new(state.finish()),
        Arc::new(submit.finish()),
        Arc::new(start.finish()),
        Arc::new(end.finish()),
        Arc::new(node_list.finish()),
        Arc::new(elapsed.finish()),
        Arc::new(alloc_cpus.finish()),
        Arc::new(req_mem.finish()),
        Arc::new(max_rss.finish()),
        Arc::new(total_cpu.finish()),
        Arc::new(alloc_gpus.finish()),
    ];
    columns.extend(metrics.iter_mut().map(|b| Arc::new(b.finish()) as ArrayRef));
    columns.extend([
        Arc::new(processed.finish()) as ArrayRef,
        Arc::new(complete.finish()),
        Arc::new(account.finish()),
        Arc::new(qos.finish()),
        Arc::new(cluster.finish()),
        Arc::new(group.finish()),
        Arc::new(exit_code.finish()),
        Arc::new(timelimit.finish()),
        Arc::new(alloc_nodes.finish()),
        Arc::new(alloc_mem.finish()),
        Arc::new(array_job_id.finish()),
        Arc::new(array_task_id.finish()),
        Arc::new(wait.finish()),
        Arc::new(job_id_raw.finish()),
        Arc::new(sacct_version.finish()),
    ]);
    columns.extend(
        measured
            .iter_mut()
            .map(|b| Arc::new(b.finish()) as ArrayRef),
    );
    RecordBatch::try_new(schema(), columns)
}

/// Reads jobs back from a batch of any processed schema we know: ours, an older one, or
/// the Python tool's. Missing columns get defaults; naive or string timestamps are wall
/// clock in `zone` (the Python tool stored sacct's local times).
///
/// A batch without a `job_id` column is an error, not jobs with empty ids: every processed
/// schema we know has one, so such a file is someone else's, and the collector must move it
/// aside rather than rewrite it as job records (which would destroy it).
pub fn from_record_batch(
    batch: &RecordBatch,
    zone: &Zone,
) -> Result<Vec<ProcessedJob>, ArrowError> {
    let n = batch.num_rows();
    let col = |name: &str| batch.column_by_name(name);
    if col("job_id").is_none() {
        return Err(ArrowError::SchemaError(
            "no `job_id` column: not a processed partition".into(),
        ));
    }
    let strings = |name: &str| -> Result<Vec<Option<Text>>, ArrowError> {
        let Some(c) = col(name) else {
            return Ok(vec![None; n]);
        };
        let c = arrow_cast::cast(c, &DataType::Utf8)?;
        let c = c.as_string::<i32>();
        Ok((0..n)
            .map(|i| c.is_valid(i).then(|| Text::from(c.value(i))))
            .collect())
    };
    let ints = |name: &str| -> Result<Vec<Option<i64>>, ArrowError> {
        let Some(c) = col(name) else {
            return Ok(vec![None; n]);
        };
        let c = arrow_cast::cast(c, &DataType::Int64)?;
        let c = c.as_primitive::<Int64Type>();
        Ok((0..n).map(|i| c.is_valid(i).then(|| c.value(i))).collect())
    };
    let floats = |name: &str| -> Result<Vec<f64>, ArrowError> {
        let Some(c) = col(name) else {
            return Ok(vec![0.0; n]);
        };
        let c = arrow_cast::cast(c, &DataType::Float64)?;
        let c = c.as_primitive::<Float64Type>();
        Ok((0..n)
            .map(|i| if c.is_valid(i) { c.value(i) } else { 0.0 })
            .collect())
    };
    // Nullable measurements: a missing column (an older file) or a null cell stays `None`.
    let measured = |name: &str| -> Result<Vec<Option<f64>>, ArrowError> {
        let Some(c) = col(name) else {
            return Ok(vec![None; n]);
        };
        let c = arrow_cast::cast(c, &DataType::Float64)?;
        let c = c.as_primitive::<Float64Type>();
        Ok((0..n).map(|i| c.is_valid(i).then(|| c.value(i))).collect())
    };
    let bools = |name: &str| -> Result<Vec<Option<bool>>, ArrowError> {
        let Some(c) = col(name) else {
            return Ok(vec![None; n]);
        };
        let c = arrow_cast::cast(c, &DataType::Boolean)?;
        let c = c.as_boolean();
        Ok((0..n).map(|i| c.is_valid(i).then(|| c.value(i))).collect())
    };
    let times = |name: &str| -> Result<Vec<Option<i64>>, ArrowError> {
        let Some(c) = col(name) else {
            return Ok(vec![None; n]);
        };
        let a = times_as_utc_micros(c, zone)?;
        Ok((0..n).map(|i| a.is_valid(i).then(|| a.value(i))).collect())
    };
    let job_id = strings("job_id")?;
    let (user, job_name, partition, state) = (
        strings("user")?,
        strings("job_name")?,
        strings("partition")?,
        strings("state")?,
    );
    let (submit, start, end) = (
        times("submit_time")?,
        times("start_time")?,
        times("end_time")?,
    );
    let node_list = strings("node_list")?;
    let (elapsed, cpus, gpus) = (
        ints("elapsed_seconds")?,
        ints("alloc_cpus")?,
        ints("alloc_gpus")?,
    );
    let (req_mem, max_rss, total_cpu) = (
        floats("req_mem_mb")?,
        floats("max_rss_mb")?,
        floats("total_cpu_seconds")?,
    );
    let (cpu_eff, mem_eff) = (floats("cpu_efficiency")?, floats("memory_efficiency")?);
    let (cpu_w, mem_w) = (
        floats("cpu_hours_wasted")?,
        floats("memory_gb_hours_wasted")?,
    );
    let (cpu_r, mem_r, gpu_r) = (
        floats("cpu_hours_reserved")?,
        floats("memory_gb_hours_reserved")?,
        floats("gpu_hours_reserved")?,
    );
    let processed = times("processed_date")?;
    let complete = bools("is_complete")?;
    let (account, qos, cluster, group, exit_code) = (
        strings("account")?,
        strings("qos")?,
        strings("cluster")?,
        strings("group")?,
        strings("exit_code")?,
    );
    let (timelimit, alloc_nodes) = (ints("timelimit_seconds")?, ints("alloc_nodes")?);
    let alloc_mem = match col("alloc_mem_mb") {
        Some(_) => floats("alloc_mem_mb")?,
        None => req_mem.clone(),
    };
    let (array_job, array_task, wait) = (
        strings("array_job_id")?,
        ints("array_task_id")?,
        ints("wait_seconds")?,
    );
    let (raw, version) = (strings("job_id_raw")?, strings("sacct_version")?);
    let (gpu_util, gpu_mem, gpu_w, energy) = (
        measured("gpu_utilization")?,
        measured("gpu_memory_max_mb")?,
        measured("gpu_hours_wasted")?,
        measured("energy_joules")?,
    );

    let mut jobs = Vec::with_capacity(n);
    for i in 0..n {
        let take = |v: &Vec<Option<Text>>| v[i].clone().unwrap_or_default();
        let id = take(&job_id);
        let st = take(&state);
        jobs.push(ProcessedJob {
            job_id_raw: raw[i].clone().unwrap_or_else(|| id.clone()),
            job_id: id,
            user: take(&user),
            job_name: take(&job_name),
            partition: take(&partition),
            is_complete: complete[i].unwrap_or_else(|| crate::slurm::job::is_final_state(&st)),
            state: st,
            submit_time: submit[i],
            start_time: start[i],
            end_time: end[i],
            node_list: take(&node_list),
            elapsed_seconds: elapsed[i].unwrap_or(0),
            alloc_cpus: cpus[i].unwrap_or(0),
            req_mem_mb: req_mem[i],
            max_rss_mb: max_rss[i],
            total_cpu_seconds: total_cpu[i],
            alloc_gpus: gpus[i].unwrap_or(0),
            cpu_efficiency: cpu_eff[i],
            memory_efficiency: mem_eff[i],
            cpu_hours_wasted: cpu_w[i],
            memory_gb_hours_wasted: mem_w[i],
            cpu_hours_reserved: cpu_r[i],
            memory_gb_hours_reserved: mem_r[i],
            gpu_hours_reserved: gpu_r[i],
            processed_date: processed[i].unwrap_or(0),
            account: take(&account),
            qos: take(&qos),
            cluster: take(&cluster),
            group: take(&group),
            exit_code: take(&exit_code),
            timelimit_seconds: timelimit[i],
            alloc_nodes: alloc_nodes[i].unwrap_or(0),
            alloc_mem_mb: alloc_mem[i],
            array_job_id: array_job[i].clone(),
            array_task_id: array_task[i],
            wait_seconds: wait[i],
            sacct_version: take(&version),
            gpu_utilization: gpu_util[i],
            gpu_memory_max_mb: gpu_mem[i],
            gpu_hours_wasted: gpu_w[i],
            energy_joules: energy[i],
        });
    }
    Ok(jobs)
}

/// Any time column as UTC microseconds. Zone-aware timestamps are exact instants; naive ones
/// and text are wall clock in `zone` (the Python tool stored sacct's local times).
pub fn times_as_utc_micros(c: &ArrayRef, zone: &Zone) -> Result<Int64Array, ArrowError> {
    let micros = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
    match c.data_type() {
        DataType::Timestamp(TimeUnit::Microsecond, Some(_)) => {
            let a = c.as_primitive::<TimestampMicrosecondType>();
            Ok(Int64Array::new(a.values().clone(), a.nulls().cloned()))
        }
        DataType::Timestamp(_, Some(_)) => {
            let a = arrow_cast::cast(c, &micros)?;
            let a = a.as_primitive::<TimestampMicrosecondType>();
            Ok(Int64Array::new(a.values().clone(), a.nulls().cloned()))
        }
        DataType::Timestamp(_, None) | DataType::Date32 | DataType::Date64 => {
            let a = arrow_cast::cast(c, &DataType::Timestamp(TimeUnit::Microsecond, None))?;
            let a = a.as_primitive::<TimestampMicrosecondType>();
            Ok((0..a.len())
                .map(|i| {
                    a.is_valid(i)
                        .then(|| chrono::DateTime::from_timestamp_micros(a.value(i)))
                        .flatten()
                        .map(|t| zone.resolve(t.naive_utc()).timestamp_micros())
                })
                .collect())
        }
        _ => {
            let a = arrow_cast::cast(c, &DataType::Utf8)?;
            let a = a.as_string::<i32>();
            Ok((0..a.len())
                .map(|i| {
                    a.is_valid(i)
                        .then(|| parse_loose_time(a.value(i), zone))
                        .flatten()
                })
                .collect())
        }
    }
}

/// A timestamp written as text by older tools: RFC 3339 with an offset, or naive ISO wall
/// clock (`2025-08-19T10:30:00`, `2025-08-19 10:30:00.123`) in `zone`.
fn parse_loose_time(s: &str, zone: &Zone) -> Option<i64> {
    let s = s.trim();
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Some(t.timestamp_micros());
    }
    for fmt in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"] {
        if let Ok(n) = NaiveDateTime::parse_from_str(s, fmt) {
            return Some(zone.resolve(n).timestamp_micros());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(id: &str) -> ProcessedJob {
        ProcessedJob {
            job_id: id.into(),
            job_id_raw: id.into(),
            user: "alice".into(),
            state: "COMPLETED".into(),
            submit_time: Some(1_764_088_920_000_000),
            start_time: None,
            elapsed_seconds: 6,
            alloc_cpus: 2,
            cpu_efficiency: 45.4,
            array_job_id: Some("4".into()),
            array_task_id: Some(1),
            is_complete: true,
            ..Default::default()
        }
    }

    #[test]
    fn measured_gpu_and_energy_round_trip_and_null_stays_null() {
        let mut gpu = job("5");
        gpu.alloc_gpus = 2;
        gpu.gpu_utilization = Some(37.5);
        gpu.gpu_memory_max_mb = Some(0.0);
        gpu.gpu_hours_wasted = Some(1.25);
        gpu.energy_joules = Some(3.6e6);
        let jobs = vec![gpu, job("6")];
        let batch = to_record_batch(&jobs.iter().collect::<Vec<_>>()).unwrap();
        let back = from_record_batch(&batch, &Zone::Local).unwrap();
        assert_eq!(back, jobs);
        assert_eq!(
            back[0].gpu_memory_max_mb,
            Some(0.0),
            "a measured zero stays zero"
        );
        assert_eq!(back[1].gpu_utilization, None, "no data stays null");
        assert_eq!(
            batch.column_by_name("energy_joules").unwrap().null_count(),
            1
        );
    }

    /// A batch in the version-1 schema (every column up to `sacct_version`) reads with the
    /// version-2 columns null.
    #[test]
    fn version_1_batch_reads_with_null_measurements() {
        let mut j = job("7");
        j.alloc_gpus = 4;
        j.gpu_hours_reserved = 8.0;
        let batch = to_record_batch(&[&j]).unwrap();
        let v1: Vec<usize> = (0..batch.num_columns())
            .filter(|&i| {
                let name = batch.schema().field(i).name().clone();
                !matches!(
                    name.as_str(),
                    "gpu_utilization" | "gpu_memory_max_mb" | "gpu_hours_wasted" | "energy_joules"
                )
            })
            .collect();
        assert_eq!(v1.len(), 37, "the version-1 schema had 37 columns");
        let old = batch.project(&v1).unwrap();
        let back = from_record_batch(&old, &Zone::Local).unwrap();
        assert_eq!(back[0].gpu_utilization, None);
        assert_eq!(back[0].gpu_hours_wasted, None);
        assert_eq!(back[0].energy_joules, None);
        assert_eq!(back[0].gpu_hours_reserved, 8.0);
        assert_eq!(back[0], j);
    }

    #[test]
    fn round_trip_through_a_batch() {
        let jobs = vec![job("1"), job("4_1")];
        let batch = to_record_batch(&jobs.iter().collect::<Vec<_>>()).unwrap();
        assert_eq!(batch.schema(), schema());
        let back = from_record_batch(&batch, &Zone::Local).unwrap();
        assert_eq!(back, jobs);
    }

    #[test]
    fn python_shaped_batch_is_coerced() {
        use arrow_array::{Int32Array, StringArray, TimestampMicrosecondArray};
        // The Python tool: naive timestamps (local wall clock), int32, no extra columns.
        let schema = Arc::new(Schema::new(vec![
            Field::new("job_id", DataType::Utf8, false),
            Field::new("state", DataType::Utf8, false),
            Field::new("alloc_cpus", DataType::Int32, false),
            Field::new(
                "start_time",
                DataType::Timestamp(TimeUnit::Microsecond, None),
                true,
            ),
            Field::new("submit_time", DataType::Utf8, true),
            Field::new("req_mem_mb", DataType::Float64, false),
        ]));
        let batch = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(StringArray::from(vec!["7"])),
                Arc::new(StringArray::from(vec!["RUNNING"])),
                Arc::new(Int32Array::from(vec![4])),
                Arc::new(TimestampMicrosecondArray::from(vec![Some(
                    1_764_000_000_000_000,
                )])),
                Arc::new(StringArray::from(vec![Some("2025-11-24T16:00:00")])),
                Arc::new(arrow_array::Float64Array::from(vec![2048.0])),
            ],
        )
        .unwrap();
        let zone: Zone = "Europe/Amsterdam".parse().unwrap();
        let jobs = from_record_batch(&batch, &zone).unwrap();
        assert_eq!(jobs[0].alloc_cpus, 4);
        assert!(!jobs[0].is_complete, "RUNNING is not final");
        // Naive wall clock in Amsterdam (UTC+1 in November) is one hour earlier in UTC.
        assert_eq!(
            jobs[0].start_time,
            Some(1_764_000_000_000_000 - 3_600_000_000)
        );
        let submit = chrono::DateTime::from_timestamp_micros(jobs[0].submit_time.unwrap()).unwrap();
        assert_eq!(submit.to_rfc3339(), "2025-11-24T15:00:00+00:00");
        assert_eq!(jobs[0].alloc_mem_mb, 2048.0, "falls back to the request");
        assert_eq!(jobs[0].job_id_raw, "7");
    }

    #[test]
    fn batch_without_job_id_is_not_read_as_jobs() {
        let schema = Arc::new(Schema::new(vec![Field::new(
            "measurement",
            DataType::Int64,
            false,
        )]));
        let batch =
            RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from(vec![1, 2, 3]))]).unwrap();
        let err = from_record_batch(&batch, &Zone::Local).unwrap_err();
        assert!(err.to_string().contains("no `job_id` column"), "{err}");
    }

    #[test]
    fn loose_times() {
        let utc: Zone = "UTC".parse().unwrap();
        assert_eq!(
            parse_loose_time("1970-01-01T00:00:01", &utc),
            Some(1_000_000)
        );
        assert_eq!(
            parse_loose_time("1970-01-01T01:00:01+01:00", &utc),
            Some(1_000_000)
        );
        assert_eq!(parse_loose_time("nonsense", &utc), None);
    }
}
