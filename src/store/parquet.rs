//! Reading and writing the daily Parquet partitions.
//!
//! Writes go through [`super::atomic::write_atomic`]: the `ArrowWriter` is closed (which
//! writes the footer and surfaces any error) before the temp file is synced and renamed.
//! A partition that cannot be read as Parquet is moved aside (`.corrupt-<time>`), never
//! deleted, and treated as empty so its date is re-collected.
//!
//! Processed partitions live here; raw partitions (written while sacct prints) in
//! [`super::raw`].

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use arrow_array::cast::AsArray;
use arrow_array::Array;
use arrow_array::RecordBatch;
use arrow_schema::ArrowError;
use chrono::NaiveDate;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::{ArrowWriter, ProjectionMask};
use parquet::basic::{Compression, ZstdLevel};
use parquet::errors::ParquetError;
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;
use parquet::schema::types::ColumnPath;

use super::atomic::{stage, Staged, WriteError};
use crate::model::{self, ProcessedJob};
use crate::zone::Zone;

pub use super::raw::RAW_LINE_COLUMN;
/// Rows per Arrow batch and Parquet row group.
pub(super) const CHUNK: usize = 65_536;

/// Errors reading or writing partitions. Each names the file.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Write(#[from] WriteError),
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot move the corrupt file {path} aside: {source}")]
    MoveAside {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path} was written by a newer slurm-usage (processed schema {found}; this version writes {ours}): left untouched, its date is not updated (hint: upgrade slurm-usage)")]
    NewerSchema {
        path: PathBuf,
        found: u32,
        ours: &'static str,
    },
    #[error("building the Parquet data for {path} failed: {source}")]
    Encode {
        path: PathBuf,
        #[source]
        source: ArrowError,
    },
}

/// Facts recorded in every file's Parquet key-value metadata.
#[derive(Debug, Clone)]
pub struct Meta {
    pub date: NaiveDate,
    pub sacct_version: String,
    pub timezone: String,
}

impl Meta {
    pub(super) fn key_values(&self, schema_version: &str) -> Vec<KeyValue> {
        vec![
            KeyValue::new(
                "slurm_usage.schema_version".into(),
                schema_version.to_string(),
            ),
            KeyValue::new(
                "slurm_usage.tool_version".into(),
                env!("CARGO_PKG_VERSION").to_string(),
            ),
            KeyValue::new(
                "slurm_usage.sacct_version".into(),
                self.sacct_version.clone(),
            ),
            KeyValue::new("slurm_usage.date".into(), self.date.to_string()),
            KeyValue::new("slurm_usage.timezone".into(), self.timezone.clone()),
        ]
    }
}

/// What reading an existing partition found.
#[derive(Debug)]
pub enum Existing<T> {
    /// No file yet.
    Missing,
    /// The file's content.
    Found(T),
    /// The file was unreadable and now lives at this path.
    MovedAside(PathBuf),
}

impl<T> Existing<T> {
    /// The same finding with the content turned into something else.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Existing<U> {
        match self {
            Existing::Found(t) => Existing::Found(f(t)),
            Existing::Missing => Existing::Missing,
            Existing::MovedAside(p) => Existing::MovedAside(p),
        }
    }
}

impl<T: Default> Existing<T> {
    /// The content, or empty.
    pub fn into_inner(self) -> T {
        match self {
            Existing::Found(t) => t,
            _ => T::default(),
        }
    }
}

/// Processed columns whose values rarely repeat (ids, times, per-job metrics): plain
/// pages, as a dictionary of 100,000 distinct values costs a hash per value and saves
/// nothing. Texts like user, partition and state keep their dictionaries.
#[rustfmt::skip]
const PLAIN_COLUMNS: &[&str] = &[
    "job_id", "job_id_raw", "submit_time", "start_time", "end_time", "elapsed_seconds",
    "max_rss_mb", "total_cpu_seconds", "cpu_efficiency", "memory_efficiency",
    "cpu_hours_wasted", "memory_gb_hours_wasted", "cpu_hours_reserved",
    "memory_gb_hours_reserved", "gpu_hours_reserved", "wait_seconds", "array_task_id",
    "gpu_memory_max_mb", "gpu_hours_wasted", "energy_joules",
];

fn props(meta: &Meta, schema_version: &str) -> WriterProperties {
    let mut props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(
            ZstdLevel::try_new(1).expect("level 1 is valid"),
        ))
        .set_max_row_group_row_count(Some(CHUNK));
    for name in PLAIN_COLUMNS {
        props = props.set_column_dictionary_enabled(ColumnPath::from(*name), false);
    }
    props
        .set_key_value_metadata(Some(meta.key_values(schema_version)))
        .build()
}

/// Opens a Parquet file; `Ok(None)` when it does not exist.
///
/// Only a regular file (or a link to one) is opened: a FIFO named like a partition would
/// block the collector forever, a directory never decodes. Anything else is moved aside
/// like a corrupt file, so its date is re-collected and nothing is deleted.
pub(super) fn open(path: &Path) -> Result<Option<File>, StoreError> {
    match std::fs::metadata(path) {
        Ok(m) if !m.is_file() => {
            let what = if m.is_dir() {
                "a directory"
            } else {
                "not a regular file"
            };
            quarantine::<()>(path, &what)?;
            return Ok(None);
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        _ => {}
    }
    match File::open(path) {
        Ok(f) => Ok(Some(f)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(StoreError::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Whether the partition at `path` is missing or a regular file whose Parquet footer
/// decodes (a cheap check: the footer only). Moves nothing.
pub fn footer_ok(path: &Path) -> bool {
    match std::fs::metadata(path) {
        Err(e) => e.kind() == io::ErrorKind::NotFound,
        Ok(_) => peek(path).is_some(),
    }
}

/// The decoded footer of a regular file at `path`, or `None` (missing, not a regular file,
/// not Parquet). Only looks: moving a bad file aside is the writer's business.
pub(super) fn peek(path: &Path) -> Option<ParquetRecordBatchReaderBuilder<File>> {
    let regular = std::fs::metadata(path).is_ok_and(|m| m.is_file());
    let file = regular.then(|| File::open(path).ok()).flatten()?;
    ParquetRecordBatchReaderBuilder::try_new(file).ok()
}

/// A file we cannot decode: move it aside and say so loudly.
pub(super) fn quarantine<T>(
    path: &Path,
    why: &dyn std::fmt::Display,
) -> Result<Existing<T>, StoreError> {
    let aside = super::move_aside(path).map_err(|source| StoreError::MoveAside {
        path: path.to_path_buf(),
        source,
    })?;
    tracing::error!(
        path = %path.display(),
        moved_to = %aside.display(),
        "unreadable Parquet file moved aside ({why}); its date will be re-collected"
    );
    Ok(Existing::MovedAside(aside))
}

/// Reads every batch of a file, or the error that makes it unreadable.
pub(super) fn read_batches(
    file: File,
    projection: Option<&[&str]>,
) -> Result<Vec<RecordBatch>, ParquetError> {
    let mut builder = ParquetRecordBatchReaderBuilder::try_new(file)?.with_batch_size(CHUNK);
    if let Some(names) = projection {
        let schema = builder.parquet_schema();
        let indices: Vec<usize> = (0..schema.num_columns())
            .filter(|&i| names.contains(&schema.column(i).name()))
            .collect();
        let mask = ProjectionMask::leaves(schema, indices);
        builder = builder.with_projection(mask);
    }
    builder
        .build()?
        .map(|b| b.map_err(ParquetError::from))
        .collect()
}

/// Reads a processed partition (ours or the Python tool's). A file of a newer schema than
/// ours is an error, not data to rewrite: its columns we do not know would be lost.
pub fn read_processed(path: &Path, zone: &Zone) -> Result<Existing<Vec<ProcessedJob>>, StoreError> {
    read_processed_where(path, zone, &|_| true)
}

/// Reads the jobs of a processed partition whose `job_id` passes `keep`, a batch at a time:
/// re-collecting a 100,000-job day replaces nearly every archived job, and building them
/// all only to drop them cost ~100 MB and a third of a second.
pub fn read_processed_where(
    path: &Path,
    zone: &Zone,
    keep: &dyn Fn(&str) -> bool,
) -> Result<Existing<Vec<ProcessedJob>>, StoreError> {
    let reader = match processed_reader(path, None)? {
        Existing::Found(r) => r,
        other => return Ok(other.map(|_| Vec::new())),
    };
    let mut jobs = Vec::new();
    for batch in reader {
        let batch = match batch {
            Ok(b) => b,
            Err(e) => return quarantine(path, &e),
        };
        let kept = job_id_mask(&batch, keep)
            .and_then(|mask| arrow_select::filter::filter_record_batch(&batch, &mask));
        let jobs_of = kept.and_then(|b| model::from_record_batch(&b, zone));
        match jobs_of {
            Ok(mut j) => jobs.append(&mut j),
            Err(e) => return quarantine(path, &format!("columns of an unknown type: {e}")),
        }
    }
    Ok(Existing::Found(jobs))
}

/// A job's identity in a processed partition ([`read_processed_keys`]).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct JobKey {
    /// sacct's JobID (`123`, `123_4`, `123_[5-9]`, `123+0`): the key records merge on.
    pub id: String,
    /// sacct's JobIDRaw: the database record. A job array's record of its tasks not started
    /// yet (`123_[5-9]`) has the array's own id, which the last task to start keeps
    /// (`123_9`), so a fresh job with the same JobIDRaw replaces an archived one of another
    /// JobID. Empty when the file has no `job_id_raw` (the Python tool's).
    pub raw: String,
}

/// The [`JobKey`]s of a processed partition (two columns only).
pub fn read_processed_keys(path: &Path) -> Result<Existing<Vec<JobKey>>, StoreError> {
    let mut keys = Vec::new();
    let found = each_processed_batch(path, &["job_id", "job_id_raw"], |batch| {
        let Some(ids) = text_column(batch, "job_id")? else {
            return Err("no `job_id` column: not a processed partition".into());
        };
        let raws = text_column(batch, "job_id_raw")?;
        keys.extend((0..batch.num_rows()).map(|i| JobKey {
            id: text_at(&ids, i),
            raw: raws.as_ref().map(|r| text_at(r, i)).unwrap_or_default(),
        }));
        Ok(())
    })?;
    Ok(found.map(|()| keys))
}

/// A job of a processed partition that is not in a final state ([`read_unfinished`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unfinished {
    pub job_id: String,
    pub job_id_raw: String,
    /// When its record was computed (UTC microseconds); `None` when the file has no
    /// `processed_date`.
    pub processed_date: Option<i64>,
}

/// The jobs of a processed partition whose `is_complete` is false, read from four columns
/// only (an hourly cycle reads today's 100,000-job partition this way). A partition
/// without `is_complete` or `job_id_raw` yields none.
pub fn read_unfinished(path: &Path) -> Result<Existing<Vec<Unfinished>>, StoreError> {
    const COLUMNS: [&str; 4] = ["job_id", "job_id_raw", "is_complete", "processed_date"];
    let mut out = Vec::new();
    let found = each_processed_batch(path, &COLUMNS, |batch| {
        let (Some(ids), Some(raws)) = (
            text_column(batch, "job_id")?,
            text_column(batch, "job_id_raw")?,
        ) else {
            return Ok(());
        };
        let Some(done) = batch
            .column_by_name("is_complete")
            .and_then(|c| c.as_boolean_opt())
        else {
            return Ok(());
        };
        let when = (batch.column_by_name("processed_date"))
            .map(|c| arrow_cast::cast(c, &arrow_schema::DataType::Int64))
            .transpose()
            .map_err(|e| format!("columns of an unknown type: {e}"))?;
        let when = (when.as_ref()).map(|w| w.as_primitive::<arrow_array::types::Int64Type>());
        for i in (0..batch.num_rows()).filter(|&i| done.is_valid(i) && !done.value(i)) {
            out.push(Unfinished {
                job_id: text_at(&ids, i),
                job_id_raw: text_at(&raws, i),
                processed_date: when.filter(|w| w.is_valid(i)).map(|w| w.value(i)),
            });
        }
        Ok(())
    })?;
    Ok(found.map(|()| out))
}

/// Runs `read` on each batch of `columns` of a processed partition. A batch that does not
/// decode, or that `read` cannot make sense of (its message), moves the file aside.
fn each_processed_batch(
    path: &Path,
    columns: &[&str],
    mut read: impl FnMut(&RecordBatch) -> Result<(), String>,
) -> Result<Existing<()>, StoreError> {
    let reader = match processed_reader(path, Some(columns))? {
        Existing::Found(r) => r,
        other => return Ok(other.map(|_| ())),
    };
    for batch in reader {
        let batch = match batch {
            Ok(b) => b,
            Err(e) => return quarantine(path, &e),
        };
        if let Err(why) = read(&batch) {
            return quarantine(path, &why);
        }
    }
    Ok(Existing::Found(()))
}

/// Column `name` of `batch` as text; `None` when the file has no such column.
fn text_column(batch: &RecordBatch, name: &str) -> Result<Option<arrow_array::ArrayRef>, String> {
    (batch.column_by_name(name))
        .map(|c| arrow_cast::cast(c, &arrow_schema::DataType::Utf8))
        .transpose()
        .map_err(|e| format!("columns of an unknown type: {e}"))
}

/// Row `i` of a text column from [`text_column`]; null reads as empty.
fn text_at(c: &arrow_array::ArrayRef, i: usize) -> String {
    let c = c.as_string::<i32>();
    if c.is_valid(i) {
        c.value(i).to_string()
    } else {
        String::new()
    }
}

/// Which rows of a processed batch have a `job_id` that passes `keep` (a missing id reads
/// as empty, as [`model::from_record_batch`] reads it).
fn job_id_mask(
    batch: &RecordBatch,
    keep: &dyn Fn(&str) -> bool,
) -> Result<arrow_array::BooleanArray, ArrowError> {
    let Some(col) = batch.column_by_name("job_id") else {
        // from_record_batch rejects such a batch with the reason.
        return Ok(arrow_array::BooleanArray::from(vec![
            true;
            batch.num_rows()
        ]));
    };
    let c = arrow_cast::cast(col, &arrow_schema::DataType::Utf8)?;
    let c = c.as_string::<i32>();
    Ok((0..c.len())
        .map(|i| Some(keep(if c.is_valid(i) { c.value(i) } else { "" })))
        .collect())
}

/// A batch reader over a processed partition (all columns, or one), after refusing a file
/// of a newer schema than ours.
fn processed_reader(
    path: &Path,
    columns: Option<&[&str]>,
) -> Result<Existing<parquet::arrow::arrow_reader::ParquetRecordBatchReader>, StoreError> {
    let Some(file) = open(path)? else {
        // Missing, or not a regular file (then moved aside by `open`).
        return Ok(Existing::Missing);
    };
    let builder = match ParquetRecordBatchReaderBuilder::try_new(file) {
        Ok(b) => b.with_batch_size(CHUNK),
        Err(e) => return quarantine(path, &e),
    };
    let ours: u32 = model::SCHEMA_VERSION.parse().expect("a number");
    let found = builder
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .and_then(|kvs| kvs.iter().find(|kv| kv.key == "slurm_usage.schema_version"))
        .and_then(|kv| kv.value.as_deref()?.parse::<u32>().ok());
    if let Some(found) = found.filter(|v| *v > ours) {
        return Err(StoreError::NewerSchema {
            path: path.to_path_buf(),
            found,
            ours: model::SCHEMA_VERSION,
        });
    }
    let builder = match columns {
        Some(names) => {
            let schema = builder.parquet_schema();
            let indices: Vec<usize> = (0..schema.num_columns())
                .filter(|&i| names.contains(&schema.column(i).name()))
                .collect();
            let mask = ProjectionMask::leaves(schema, indices);
            builder.with_projection(mask)
        }
        None => builder,
    };
    match builder.build() {
        Ok(r) => Ok(Existing::Found(r)),
        Err(e) => quarantine(path, &e),
    }
}

/// Writes a processed partition, sorted by start time (jobs that never started last, by
/// submit time), atomically.
pub fn write_processed(path: &Path, jobs: &[ProcessedJob], meta: &Meta) -> Result<(), StoreError> {
    Ok(stage_processed(path, jobs, meta)?.commit()?)
}

/// Encodes a processed partition into a synced temp file; [`Staged::commit`] puts it in
/// place. Lets the collector encode it on one core while the raw partition is written on the
/// other, and still rename raw first.
pub fn stage_processed(
    path: &Path,
    jobs: &[ProcessedJob],
    meta: &Meta,
) -> Result<Staged, StoreError> {
    // Sort references, not the ~1 KB records, by keys gathered once: comparing would
    // otherwise fetch two records from memory per comparison.
    let mut jobs: Vec<&ProcessedJob> = jobs.iter().collect();
    jobs.sort_by_cached_key(|j| {
        (
            j.start_time.is_none(),
            j.start_time,
            j.submit_time,
            j.job_id_raw.as_str(),
        )
    });
    let batch = model::to_record_batch(&jobs).map_err(|source| StoreError::Encode {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(stage(path, |file| {
        let mut w = ArrowWriter::try_new(
            file,
            batch.schema(),
            Some(props(meta, model::SCHEMA_VERSION)),
        )
        .map_err(io::Error::other)?;
        w.write(&batch).map_err(io::Error::other)?;
        w.close().map_err(io::Error::other)?;
        Ok(())
    })?)
}

/// Reads a raw partition's rows as text maps, for tests and `job` lookups.
pub fn read_raw(path: &Path) -> Result<Existing<Vec<RecordBatch>>, StoreError> {
    let Some(file) = open(path)? else {
        return Ok(Existing::Missing);
    };
    match read_batches(file, None) {
        Ok(b) => Ok(Existing::Found(b)),
        Err(e) => quarantine(path, &e),
    }
}

/// Reads the key-value metadata of a Parquet file.
pub fn read_metadata(path: &Path) -> Result<Vec<(String, String)>, StoreError> {
    let file = open(path)?.ok_or_else(|| StoreError::Read {
        path: path.to_path_buf(),
        source: io::Error::new(io::ErrorKind::NotFound, "no such file"),
    })?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| StoreError::Read {
        path: path.to_path_buf(),
        source: io::Error::other(e),
    })?;
    Ok(builder
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .map(|kv| {
            kv.iter()
                .map(|k| (k.key.clone(), k.value.clone().unwrap_or_default()))
                .collect()
        })
        .unwrap_or_default())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The metadata of a partition of 2026-11-25 (also for the raw partition tests).
    pub(crate) fn meta() -> Meta {
        Meta {
            date: NaiveDate::from_ymd_opt(2026, 11, 25).unwrap(),
            sacct_version: "slurm 22.05.8".into(),
            timezone: "UTC".into(),
        }
    }

    #[test]
    fn plain_columns_are_processed_columns() {
        let schema = model::schema();
        for name in PLAIN_COLUMNS {
            assert!(
                schema.field_with_name(name).is_ok(),
                "{name} is not a column"
            );
        }
        let props = props(&meta(), model::SCHEMA_VERSION);
        assert!(!props.dictionary_enabled(&ColumnPath::from("job_id")));
        assert!(props.dictionary_enabled(&ColumnPath::from("user")));
    }

    #[test]
    fn processed_round_trip_with_metadata() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("2026-11-25.parquet");
        let mut jobs = vec![
            ProcessedJob {
                job_id: "2".into(),
                job_id_raw: "2".into(),
                start_time: Some(20),
                ..Default::default()
            },
            ProcessedJob {
                job_id: "3".into(),
                job_id_raw: "3".into(),
                start_time: None,
                ..Default::default()
            },
            ProcessedJob {
                job_id: "1".into(),
                job_id_raw: "1".into(),
                start_time: Some(10),
                ..Default::default()
            },
        ];
        write_processed(&path, &jobs, &meta()).unwrap();
        let back = read_processed(&path, &Zone::Local).unwrap().into_inner();
        let ids: Vec<&str> = back.iter().map(|j| j.job_id.as_str()).collect();
        assert_eq!(ids, ["1", "2", "3"], "sorted by start, never-started last");
        jobs.sort_by_key(|j| j.job_id.clone());
        assert_eq!(back, jobs);
        let md = read_metadata(&path).unwrap();
        assert!(md.contains(&(
            "slurm_usage.schema_version".into(),
            model::SCHEMA_VERSION.into()
        )));
        assert!(md.contains(&("slurm_usage.sacct_version".into(), "slurm 22.05.8".into())));
    }

    #[test]
    fn ids_alone_and_only_the_jobs_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("2026-11-25.parquet");
        let jobs: Vec<ProcessedJob> = ["1", "2", "3"]
            .iter()
            .map(|id| ProcessedJob {
                job_id: id.to_string().into(),
                job_id_raw: id.to_string().into(),
                ..Default::default()
            })
            .collect();
        write_processed(&path, &jobs, &meta()).unwrap();
        let mut keys = read_processed_keys(&path).unwrap().into_inner();
        keys.sort_by(|a, b| a.id.cmp(&b.id));
        let key = |id: &str| JobKey {
            id: id.into(),
            raw: id.into(),
        };
        assert_eq!(keys, [key("1"), key("2"), key("3")]);
        let kept = read_processed_where(&path, &Zone::Local, &|id| id != "2")
            .unwrap()
            .into_inner();
        let mut kept: Vec<&str> = kept.iter().map(|j| j.job_id.as_str()).collect();
        kept.sort();
        assert_eq!(kept, ["1", "3"]);
        assert!(matches!(
            read_processed_keys(&dir.path().join("missing.parquet")).unwrap(),
            Existing::Missing
        ));
    }

    #[test]
    fn unfinished_jobs_with_when_their_record_was_made() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("2026-11-25.parquet");
        let job = |id: &str, done: bool, when: i64| ProcessedJob {
            job_id: format!("{id}_1").into(),
            job_id_raw: id.to_string().into(),
            is_complete: done,
            processed_date: when,
            ..Default::default()
        };
        let jobs = [job("1", true, 5), job("2", false, 7), job("3", false, 9)];
        write_processed(&path, &jobs, &meta()).unwrap();
        let mut got = read_unfinished(&path).unwrap().into_inner();
        got.sort_by(|a, b| a.job_id.cmp(&b.job_id));
        let want = |id: &str, when: i64| Unfinished {
            job_id: format!("{id}_1"),
            job_id_raw: id.to_string(),
            processed_date: Some(when),
        };
        assert_eq!(got, [want("2", 7), want("3", 9)]);
        // A partition without `is_complete` (not ours) names none.
        let batch = model::to_record_batch(&jobs.iter().collect::<Vec<_>>()).unwrap();
        let keep: Vec<usize> = (0..batch.num_columns())
            .filter(|&i| batch.schema().field(i).name() != "is_complete")
            .collect();
        let theirs = batch.project(&keep).unwrap();
        let other = dir.path().join("2026-11-26.parquet");
        let mut w =
            ArrowWriter::try_new(File::create(&other).unwrap(), theirs.schema(), None).unwrap();
        w.write(&theirs).unwrap();
        w.close().unwrap();
        assert_eq!(read_unfinished(&other).unwrap().into_inner(), []);
        assert!(matches!(
            read_unfinished(&dir.path().join("missing.parquet")).unwrap(),
            Existing::Missing
        ));
    }

    #[test]
    fn corrupt_processed_file_is_moved_aside() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("2026-11-25.parquet");
        std::fs::write(&path, b"PAR1 this is not parquet").unwrap();
        match read_processed(&path, &Zone::Local).unwrap() {
            Existing::MovedAside(p) => {
                assert_eq!(std::fs::read(p).unwrap(), b"PAR1 this is not parquet")
            }
            other => panic!("{other:?}"),
        }
        assert!(!path.exists());
    }

    /// A partition written by version 1 (no GPU or energy columns, schema version "1" in
    /// its metadata) is read, not refused: the new columns read as null, the rest as written.
    #[test]
    fn version_1_partition_reads_with_null_gpu_and_energy() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("2026-11-25.parquet");
        let job = ProcessedJob {
            job_id: "9".into(),
            job_id_raw: "9".into(),
            alloc_gpus: 2,
            gpu_hours_reserved: 4.0,
            elapsed_seconds: 7200,
            ..Default::default()
        };
        let batch = model::to_record_batch(&[&job]).unwrap();
        let v1_columns: Vec<usize> = (0..37).collect();
        assert_eq!(batch.schema().field(36).name(), "sacct_version");
        let v1 = batch.project(&v1_columns).unwrap();
        let file = File::create(&path).unwrap();
        let mut w = ArrowWriter::try_new(file, v1.schema(), Some(props(&meta(), "1"))).unwrap();
        w.write(&v1).unwrap();
        w.close().unwrap();

        let back = read_processed(&path, &Zone::Local).unwrap().into_inner();
        assert_eq!(
            back,
            vec![job],
            "every version-1 value, and null for the rest"
        );
        assert_eq!(back[0].gpu_utilization, None);
        assert_eq!(back[0].energy_joules, None);
        assert!(read_metadata(&path)
            .unwrap()
            .contains(&("slurm_usage.schema_version".into(), "1".into())));
    }
}
