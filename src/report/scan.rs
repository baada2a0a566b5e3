//! A projected, streaming reader of processed partitions for the reports.
//!
//! `store::parquet::read_processed` materialises every column of every row as a
//! [`crate::model::ProcessedJob`]; that is right for the collector (it rewrites whole files) and
//! far too slow and too big for `analyze` over a year of 20,000 jobs a day. This reader asks
//! Parquet for the few columns a report needs ([`REPORT_COLUMNS`]), decodes one record batch at
//! a time, and hands out borrowed [`JobRow`]s, so memory stays at one batch per thread whatever
//! the archive's size.
//!
//! It reads the same files as `model::from_record_batch`: ours (`Timestamp(us, UTC)`, Int64),
//! and the Python tool's (naive timestamps meaning wall clock in the configured zone, string
//! timestamps, Int32, `LargeUtf8`/`Utf8View`, missing extra columns). Every column is coerced
//! once per batch into one canonical type, so the per-row code has a single path.
//!
//! Reading never modifies the data dir: an unreadable file is reported to the caller, not moved
//! aside (that is the collector's job, under its write lock). So is a file that is not a
//! processed partition at all (no `job_id` column) and anything that is not a regular file
//! (a FIFO would block the reader forever).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int32Type, Int64Type};
use arrow_array::{
    Array, ArrayRef, Float64Array, Int32Array, Int64Array, RecordBatch, StringArray,
};
use arrow_schema::{ArrowError, DataType, Field, Schema};
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReader,
};
use parquet::arrow::ProjectionMask;
use parquet::errors::ParquetError;

use chrono::NaiveDate;

use crate::store::{Archive, Kind, OpenError, Partition};
use crate::zone::Zone;

/// Rows per decoded batch: the collector's row-group size, so one batch is one row group.
const BATCH_ROWS: usize = 65_536;

/// The processed columns `analyze` reads. Anything else (job names, work dirs, ...) is never
/// decoded. `cluster` is part of a job's identity (a job is `(cluster, job_id)`); files
/// without it (the Python tool's) read it as `""`. `alloc_cpus` and `req_mem_mb` are only used for old files that lack the reserved
/// hours or `alloc_mem_mb` columns.
pub const REPORT_COLUMNS: &[&str] = &[
    "job_id",
    "cluster",
    "user",
    "partition",
    "state",
    "node_list",
    "submit_time",
    "start_time",
    "elapsed_seconds",
    "alloc_cpus",
    "req_mem_mb",
    "alloc_mem_mb",
    "cpu_efficiency",
    "memory_efficiency",
    "cpu_hours_wasted",
    "memory_gb_hours_wasted",
    "cpu_hours_reserved",
    "memory_gb_hours_reserved",
    "gpu_hours_reserved",
    "processed_date",
    "wait_seconds",
    "gpu_utilization",
    "gpu_hours_wasted",
    "energy_joules",
];

/// Why a partition could not be read. Each names the file.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error("cannot open {path}: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read {path} as Parquet: {source} (hint: `slurm-usage collect` moves an unreadable file aside and re-collects its date unless the date is complete; for a complete date, take it out of `completed_dates` in .date_completion_tracker.json first)")]
    Parquet {
        path: PathBuf,
        #[source]
        source: ParquetError,
    },
    /// A Parquet file without a `job_id` column (every processed file, ours or the Python
    /// tool's, has one): read as it is, each of its rows would count as a job without id or
    /// user, so it is skipped instead.
    #[error("{path} is not a processed partition: it has no `job_id` column (hint: move it out of {})", parent(.path))]
    NotProcessed { path: PathBuf },
    /// A directory, FIFO, socket or device where a partition belongs: opening a FIFO would
    /// block until someone writes to it, so it is never opened.
    #[error("{path} is not a regular file but a {kind} (hint: move it out of {})", parent(.path))]
    NotAFile { path: PathBuf, kind: &'static str },
    #[error("{path}: column {column:?} has a type the reports cannot use: {source}")]
    Column {
        path: PathBuf,
        column: String,
        #[source]
        source: ArrowError,
    },
}

impl From<OpenError> for ScanError {
    fn from(e: OpenError) -> Self {
        match e {
            OpenError::Io { path, source } => ScanError::Open { path, source },
            OpenError::NotAFile { path, kind } => ScanError::NotAFile { path, kind },
        }
    }
}

/// The directory of a partition, for hints.
fn parent(path: &Path) -> String {
    path.parent()
        .map_or_else(|| ".".to_string(), |p| p.display().to_string())
}

/// The numbers of one job. Usage missing from a file is 0, times are `None`, as in
/// `model.rs`.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct JobMetrics {
    /// UTC microseconds. Only read from files without `wait_seconds` (see [`FALLBACKS`]).
    pub submit: Option<i64>,
    /// UTC microseconds.
    pub start: Option<i64>,
    pub elapsed_seconds: i64,
    /// The memory the job held (AllocTRES `mem=`, else the request).
    pub alloc_mem_mb: f64,
    pub cpu_efficiency: f64,
    pub memory_efficiency: f64,
    pub cpu_hours_wasted: f64,
    pub memory_gb_hours_wasted: f64,
    /// Reserved CPU hours (allocation x elapsed).
    pub cpu_hours: f64,
    pub memory_gb_hours: f64,
    pub gpu_hours: f64,
    /// UTC microseconds; the newest record of a job wins.
    pub processed_date: i64,
    /// Start minus submit; `None` for a job that has not started.
    pub wait_seconds: Option<i64>,
    /// Measured GPU utilisation (percent of the allocated GPUs); `None` without GPU
    /// accounting data, and in files written before schema version 2.
    pub gpu_utilization: Option<f64>,
    /// `None` exactly when `gpu_utilization` is.
    pub gpu_hours_wasted: Option<f64>,
    /// `None` without an energy plugin.
    pub energy_joules: Option<f64>,
}

/// One job as the reports see it: borrowed from the current batch, no allocation per row.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct JobRow<'a> {
    pub job_id: &'a str,
    /// The cluster the job ran on (`""` when the file has no `cluster` column).
    pub cluster: &'a str,
    pub user: &'a str,
    pub partition: &'a str,
    pub state: &'a str,
    pub node_list: &'a str,
    pub m: JobMetrics,
}

/// An owned [`JobRow`], for the few rows kept across batches (duplicate candidates, tests).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct OwnedRow {
    pub job_id: String,
    pub cluster: String,
    pub user: String,
    pub partition: String,
    pub state: String,
    pub node_list: String,
    pub m: JobMetrics,
}

impl OwnedRow {
    /// Copies a borrowed row.
    pub fn from_row(r: &JobRow<'_>) -> Self {
        OwnedRow {
            job_id: r.job_id.to_string(),
            cluster: r.cluster.to_string(),
            user: r.user.to_string(),
            partition: r.partition.to_string(),
            state: r.state.to_string(),
            node_list: r.node_list.to_string(),
            m: r.m,
        }
    }

    /// Borrows it back as a row.
    pub fn as_row(&self) -> JobRow<'_> {
        JobRow {
            job_id: &self.job_id,
            cluster: &self.cluster,
            user: &self.user,
            partition: &self.partition,
            state: &self.state,
            node_list: &self.node_list,
            m: self.m,
        }
    }
}

/// A text column: plain, or dictionary-encoded as Parquet stores low-cardinality columns
/// (users, partitions, states, node lists), which lets the aggregation look each distinct
/// value up once per batch instead of once per row.
pub enum StrCol {
    Plain(StringArray),
    Dict {
        keys: Int32Array,
        values: StringArray,
    },
}

impl StrCol {
    /// The text of row `i` (`""` when null).
    #[inline]
    pub fn get(&self, i: usize) -> &str {
        match self {
            StrCol::Plain(a) => {
                if a.is_valid(i) {
                    a.value(i)
                } else {
                    ""
                }
            }
            StrCol::Dict { keys, values } => {
                if keys.is_valid(i) {
                    let k = keys.value(i) as usize;
                    if k < values.len() && values.is_valid(k) {
                        return values.value(k);
                    }
                }
                ""
            }
        }
    }

    /// Fills `out` with an id per row: `id_of` is asked once per distinct dictionary value
    /// (once per row for a plain column).
    pub fn ids(&self, rows: usize, mut id_of: impl FnMut(&str) -> u32, out: &mut Vec<u32>) {
        out.clear();
        match self {
            StrCol::Plain(_) => out.extend((0..rows).map(|i| id_of(self.get(i)))),
            StrCol::Dict { keys, values } => {
                let map: Vec<u32> = (0..values.len())
                    .map(|k| {
                        id_of(if values.is_valid(k) {
                            values.value(k)
                        } else {
                            ""
                        })
                    })
                    .collect();
                let null = if keys.null_count() > 0 { id_of("") } else { 0 };
                out.extend((0..rows).map(|i| {
                    if keys.is_valid(i) {
                        map.get(keys.value(i) as usize).copied().unwrap_or(null)
                    } else {
                        null
                    }
                }));
            }
        }
    }
}

/// The text columns a batch can give ids for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextColumn {
    Cluster,
    User,
    Partition,
    State,
    NodeList,
}

/// One batch with every report column coerced to its canonical type; a missing column is
/// `None` and reads as the documented default.
pub struct Batch {
    rows: usize,
    job_id: Option<StrCol>,
    cluster: Option<StrCol>,
    user: Option<StrCol>,
    partition: Option<StrCol>,
    state: Option<StrCol>,
    node_list: Option<StrCol>,
    submit: Option<Int64Array>,
    start: Option<Int64Array>,
    elapsed: Option<Int64Array>,
    alloc_cpus: Option<Int64Array>,
    req_mem: Option<Float64Array>,
    alloc_mem: Option<Float64Array>,
    cpu_eff: Option<Float64Array>,
    mem_eff: Option<Float64Array>,
    cpu_wasted: Option<Float64Array>,
    mem_wasted: Option<Float64Array>,
    cpu_reserved: Option<Float64Array>,
    mem_reserved: Option<Float64Array>,
    gpu_reserved: Option<Float64Array>,
    processed: Option<Int64Array>,
    wait: Option<Int64Array>,
    gpu_util: Option<Float64Array>,
    gpu_wasted: Option<Float64Array>,
    energy: Option<Float64Array>,
}

#[inline]
fn str_at(a: &Option<StrCol>, i: usize) -> &str {
    a.as_ref().map_or("", |c| c.get(i))
}

#[inline]
fn int_at(a: &Option<Int64Array>, i: usize) -> Option<i64> {
    match a {
        Some(a) if a.is_valid(i) => Some(a.value(i)),
        _ => None,
    }
}

#[inline]
fn float_at(a: &Option<Float64Array>, i: usize) -> Option<f64> {
    match a {
        Some(a) if a.is_valid(i) => Some(a.value(i)),
        _ => None,
    }
}

impl Batch {
    /// Coerces `batch` (any processed schema we know) into the canonical column types.
    /// Naive and string timestamps are wall clock in `zone`, as the Python tool wrote them.
    pub fn new(batch: &RecordBatch, zone: &Zone) -> Result<Batch, (String, ArrowError)> {
        let col = |name: &str| batch.column_by_name(name);
        let wrap = |name: &str| {
            let name = name.to_string();
            move |e: ArrowError| (name, e)
        };
        let s = |name: &str| {
            col(name)
                .map(|c| to_strings(c).map_err(wrap(name)))
                .transpose()
        };
        let i = |name: &str| {
            col(name)
                .map(|c| to_ints(c).map_err(wrap(name)))
                .transpose()
        };
        let f = |name: &str| {
            col(name)
                .map(|c| to_floats(c).map_err(wrap(name)))
                .transpose()
        };
        let t = |name: &str| {
            col(name)
                .map(|c| crate::model::times_as_utc_micros(c, zone).map_err(wrap(name)))
                .transpose()
        };
        Ok(Batch {
            rows: batch.num_rows(),
            job_id: s("job_id")?,
            cluster: s("cluster")?,
            user: s("user")?,
            partition: s("partition")?,
            state: s("state")?,
            node_list: s("node_list")?,
            submit: t("submit_time")?,
            start: t("start_time")?,
            elapsed: i("elapsed_seconds")?,
            alloc_cpus: i("alloc_cpus")?,
            req_mem: f("req_mem_mb")?,
            alloc_mem: f("alloc_mem_mb")?,
            cpu_eff: f("cpu_efficiency")?,
            mem_eff: f("memory_efficiency")?,
            cpu_wasted: f("cpu_hours_wasted")?,
            mem_wasted: f("memory_gb_hours_wasted")?,
            cpu_reserved: f("cpu_hours_reserved")?,
            mem_reserved: f("memory_gb_hours_reserved")?,
            gpu_reserved: f("gpu_hours_reserved")?,
            processed: t("processed_date")?,
            wait: i("wait_seconds")?,
            gpu_util: f("gpu_utilization")?,
            gpu_wasted: f("gpu_hours_wasted")?,
            energy: f("energy_joules")?,
        })
    }

    /// Rows in the batch.
    pub fn len(&self) -> usize {
        self.rows
    }

    /// Whether the batch has no rows.
    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// The job id of row `i`.
    #[inline]
    pub fn job_id(&self, i: usize) -> &str {
        str_at(&self.job_id, i)
    }

    /// Ids for every row of a text column (see [`StrCol::ids`]); a missing column is `""`.
    pub fn ids(&self, which: TextColumn, mut id_of: impl FnMut(&str) -> u32, out: &mut Vec<u32>) {
        let c = match which {
            TextColumn::Cluster => &self.cluster,
            TextColumn::User => &self.user,
            TextColumn::Partition => &self.partition,
            TextColumn::State => &self.state,
            TextColumn::NodeList => &self.node_list,
        };
        match c {
            Some(c) => c.ids(self.rows, id_of, out),
            None => {
                let id = id_of("");
                out.clear();
                out.resize(self.rows, id);
            }
        }
    }

    /// The numbers of row `i`. Old files without the reserved-hours columns get them
    /// computed from elapsed x allocation, as the Python tool did (GPU hours are then
    /// unknown: 0).
    #[inline]
    pub fn metrics(&self, i: usize) -> JobMetrics {
        let elapsed = int_at(&self.elapsed, i).unwrap_or(0).max(0);
        let hours = elapsed as f64 / 3600.0;
        let req_mem = || float_at(&self.req_mem, i).unwrap_or(0.0);
        let alloc_mem = match &self.alloc_mem {
            Some(_) => float_at(&self.alloc_mem, i).unwrap_or(0.0),
            None => req_mem(),
        };
        let cpu_hours = match &self.cpu_reserved {
            Some(_) => float_at(&self.cpu_reserved, i).unwrap_or(0.0),
            None => int_at(&self.alloc_cpus, i).unwrap_or(0) as f64 * hours,
        };
        let memory_gb_hours = match &self.mem_reserved {
            Some(_) => float_at(&self.mem_reserved, i).unwrap_or(0.0),
            None => req_mem() / 1024.0 * hours,
        };
        let submit = int_at(&self.submit, i);
        let start = int_at(&self.start, i);
        let wait_seconds = match &self.wait {
            Some(_) => int_at(&self.wait, i),
            None => match (submit, start) {
                (Some(s), Some(t)) => Some(((t - s) / 1_000_000).max(0)),
                _ => None,
            },
        };
        JobMetrics {
            submit,
            start,
            elapsed_seconds: elapsed,
            alloc_mem_mb: alloc_mem,
            cpu_efficiency: float_at(&self.cpu_eff, i).unwrap_or(0.0),
            memory_efficiency: float_at(&self.mem_eff, i).unwrap_or(0.0),
            cpu_hours_wasted: float_at(&self.cpu_wasted, i).unwrap_or(0.0),
            memory_gb_hours_wasted: float_at(&self.mem_wasted, i).unwrap_or(0.0),
            cpu_hours,
            memory_gb_hours,
            gpu_hours: float_at(&self.gpu_reserved, i).unwrap_or(0.0),
            processed_date: int_at(&self.processed, i).unwrap_or(0),
            wait_seconds,
            gpu_utilization: float_at(&self.gpu_util, i),
            gpu_hours_wasted: float_at(&self.gpu_wasted, i),
            energy_joules: float_at(&self.energy, i),
        }
    }

    /// Row `i` with its text.
    pub fn row(&self, i: usize) -> JobRow<'_> {
        JobRow {
            job_id: str_at(&self.job_id, i),
            cluster: str_at(&self.cluster, i),
            user: str_at(&self.user, i),
            partition: str_at(&self.partition, i),
            state: str_at(&self.state, i),
            node_list: str_at(&self.node_list, i),
            m: self.metrics(i),
        }
    }
}

fn to_strings(c: &ArrayRef) -> Result<StrCol, ArrowError> {
    match c.data_type() {
        DataType::Utf8 => Ok(StrCol::Plain(c.as_string::<i32>().clone())),
        DataType::Dictionary(k, v) if **k == DataType::Int32 && **v == DataType::Utf8 => {
            let d = c.as_dictionary::<Int32Type>();
            Ok(StrCol::Dict {
                keys: d.keys().clone(),
                values: d.values().as_string::<i32>().clone(),
            })
        }
        _ => Ok(StrCol::Plain(
            arrow_cast::cast(c, &DataType::Utf8)?
                .as_string::<i32>()
                .clone(),
        )),
    }
}

fn to_ints(c: &ArrayRef) -> Result<Int64Array, ArrowError> {
    match c.data_type() {
        DataType::Int64 => Ok(c.as_primitive::<Int64Type>().clone()),
        _ => Ok(arrow_cast::cast(c, &DataType::Int64)?
            .as_primitive::<Int64Type>()
            .clone()),
    }
}

fn to_floats(c: &ArrayRef) -> Result<Float64Array, ArrowError> {
    match c.data_type() {
        DataType::Float64 => Ok(c.as_primitive::<Float64Type>().clone()),
        _ => Ok(arrow_cast::cast(c, &DataType::Float64)?
            .as_primitive::<Float64Type>()
            .clone()),
    }
}

/// Columns read only for old files: each is skipped when the file has all the columns it
/// stands in for (our files do; the Python tool's older ones do not).
pub const FALLBACKS: &[(&str, &[&str])] = &[
    ("alloc_cpus", &["cpu_hours_reserved"]),
    ("req_mem_mb", &["alloc_mem_mb", "memory_gb_hours_reserved"]),
    ("submit_time", &["wait_seconds"]),
];

/// Text columns read dictionary-encoded when the file stores them as plain `Utf8`: Parquet
/// keeps them as dictionaries on disk, so this skips materialising one string per row.
pub const DICTIONARY_COLUMNS: &[&str] = &[
    "job_id",
    "cluster",
    "user",
    "partition",
    "state",
    "node_list",
];

/// Reads only `columns` of `part` (those it has), in batches of one row group, with the
/// [`DICTIONARY_COLUMNS`] among them as dictionaries: the footer and those columns' chunks
/// are all that is read.
pub fn open_projected(
    part: &Partition,
    columns: &[&str],
) -> Result<ParquetRecordBatchReader, ScanError> {
    let path = part.name();
    let perr = |source| ScanError::Parquet {
        path: path.to_path_buf(),
        source,
    };
    let meta = part.metadata(ArrowReaderOptions::new()).map_err(perr)?;
    let schema = meta.schema();
    if schema.field_with_name("job_id").is_err() {
        return Err(ScanError::NotProcessed {
            path: path.to_path_buf(),
        });
    }
    let hinted: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| {
            let f = f.as_ref().clone();
            if DICTIONARY_COLUMNS.contains(&f.name().as_str()) && *f.data_type() == DataType::Utf8 {
                let t = DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8));
                f.with_data_type(t)
            } else {
                f
            }
        })
        .collect();
    let hint = Arc::new(Schema::new_with_metadata(hinted, schema.metadata().clone()));
    let meta = ArrowReaderMetadata::try_new(
        meta.metadata().clone(),
        ArrowReaderOptions::new().with_schema(hint),
    )
    .map_err(perr)?;
    let builder = part.reader_with(meta);
    let present: Vec<&str> = builder
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().as_str())
        .collect();
    let wanted = columns.iter().copied().filter(|c| {
        // A fallback column is only read when the file lacks what it stands in for.
        FALLBACKS
            .iter()
            .find(|(f, _)| f == c)
            .is_none_or(|(_, primaries)| !primaries.iter().all(|p| present.contains(p)))
    });
    let mask = ProjectionMask::columns(builder.parquet_schema(), wanted);
    // In a lake: the wanted column chunks in a few coalesced GETs, not one each.
    part.prefetch(builder.metadata(), &mask).map_err(perr)?;
    builder
        .with_projection(mask)
        .with_batch_size(BATCH_ROWS)
        .build()
        .map_err(perr)
}

/// Streams the batches of `date`'s processed partition with `columns`, coerced, into
/// `each`. A partition gone since the archive was listed reads as empty.
pub fn for_each_batch(
    archive: &Archive,
    date: NaiveDate,
    zone: &Zone,
    columns: &[&str],
    mut each: impl FnMut(&Batch),
) -> Result<(), ScanError> {
    let Some(part) = archive.open(Kind::Processed, date)? else {
        return Ok(());
    };
    let path = part.name();
    for batch in open_projected(&part, columns)? {
        let batch = batch.map_err(|e| ScanError::Parquet {
            path: path.to_path_buf(),
            source: ParquetError::from(e),
        })?;
        let batch = Batch::new(&batch, zone).map_err(|(column, source)| ScanError::Column {
            path: path.to_path_buf(),
            column,
            source,
        })?;
        each(&batch);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ProcessedJob;
    use crate::store::parquet::Meta;

    #[test]
    fn reads_back_what_the_collector_wrote() {
        let dir = tempfile::tempdir().unwrap();
        let archive = Archive::local(dir.path());
        archive.create().unwrap();
        let jobs = vec![ProcessedJob {
            job_id: "7".into(),
            user: "alice".into(),
            partition: "gpu".into(),
            state: "COMPLETED".into(),
            start_time: Some(2_000_000),
            submit_time: Some(1_000_000),
            elapsed_seconds: 3600,
            cpu_hours_reserved: 4.0,
            gpu_hours_reserved: 1.0,
            alloc_mem_mb: 2048.0,
            wait_seconds: Some(1),
            processed_date: 99,
            node_list: "n[1-2]".into(),
            cluster: "rig".into(),
            ..Default::default()
        }];
        let meta = Meta {
            date: NaiveDate::from_ymd_opt(2026, 11, 25).unwrap(),
            sacct_version: "x".into(),
            timezone: "UTC".into(),
        };
        archive.write_processed(meta.date, &jobs, &meta).unwrap();
        let mut rows = Vec::new();
        for_each_batch(&archive, meta.date, &Zone::Local, REPORT_COLUMNS, |b| {
            rows.extend((0..b.len()).map(|i| OwnedRow::from_row(&b.row(i))));
        })
        .unwrap();
        assert_eq!(rows.len(), 1);
        let r = &rows[0];
        assert_eq!(
            (
                r.job_id.as_str(),
                r.cluster.as_str(),
                r.user.as_str(),
                r.node_list.as_str()
            ),
            ("7", "rig", "alice", "n[1-2]")
        );
        let m = r.m;
        // submit_time is a fallback column: not read when wait_seconds is there.
        assert_eq!(
            (m.start, m.submit, m.processed_date, m.wait_seconds),
            (Some(2_000_000), None, 99, Some(1))
        );
        assert_eq!(
            (m.cpu_hours, m.gpu_hours, m.alloc_mem_mb),
            (4.0, 1.0, 2048.0)
        );
    }
}
