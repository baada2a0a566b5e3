//! Reading and writing the daily Parquet partitions.
//!
//! Writes go through [`super::atomic::write_atomic`]: the `ArrowWriter` is closed (which
//! writes the footer and surfaces any error) before the temp file is synced and renamed.
//! A partition that cannot be read as Parquet is moved aside (`.corrupt-<time>`), never
//! deleted, and treated as empty so its date is re-collected.
//!
//! Raw partitions hold every sacct field as text, one row per sacct line, keyed by
//! `JobIDRaw` (`123`, `123.batch`). A merge keeps every archived row that the fresh output
//! does not replace, so a raw file never shrinks on re-collection. The fresh rows are
//! turned into Arrow arrays in chunks, so a 350,000-line day never holds a second full copy
//! of its text.

use std::collections::HashSet;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::builder::StringBuilder;
use arrow_array::cast::AsArray;
use arrow_array::{Array, ArrayRef, BooleanArray, RecordBatch};
use arrow_schema::{ArrowError, DataType, Field, Schema, SchemaRef};
use chrono::NaiveDate;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::{ArrowWriter, ProjectionMask};
use parquet::basic::{Compression, ZstdLevel};
use parquet::errors::ParquetError;
use parquet::file::metadata::KeyValue;
use parquet::file::properties::{EnabledStatistics, WriterProperties};

use super::atomic::{stage, write_atomic, Staged, WriteError};
use crate::model::{self, ProcessedJob};
use crate::sacct::fields::FieldLayout;
use crate::sacct::parser::{job_of_step, split_fields, split_prefix};
use crate::zone::Zone;

/// Column of the raw archive that holds a line sacct printed but we could not split.
pub const RAW_LINE_COLUMN: &str = "RawLine";
/// Rows per Arrow batch and Parquet row group.
const CHUNK: usize = 65_536;

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
    fn key_values(&self, schema_version: &str) -> Vec<KeyValue> {
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

impl<T: Default> Existing<T> {
    /// The content, or empty.
    pub fn into_inner(self) -> T {
        match self {
            Existing::Found(t) => t,
            _ => T::default(),
        }
    }
}

fn props(meta: &Meta, schema_version: &str) -> WriterProperties {
    WriterProperties::builder()
        .set_compression(Compression::ZSTD(
            ZstdLevel::try_new(3).expect("level 3 is valid"),
        ))
        .set_max_row_group_row_count(Some(CHUNK))
        .set_key_value_metadata(Some(meta.key_values(schema_version)))
        .build()
}

/// Raw files: 62 text columns read rarely and whole, so no page statistics (min/max of long
/// strings cost more to compute than they ever save) and the fastest zstd level.
fn raw_props(meta: &Meta) -> WriterProperties {
    WriterProperties::builder()
        .set_compression(Compression::ZSTD(
            ZstdLevel::try_new(1).expect("level 1 is valid"),
        ))
        .set_max_row_group_row_count(Some(CHUNK))
        .set_statistics_enabled(EnabledStatistics::None)
        .set_dictionary_enabled(false)
        .set_key_value_metadata(Some(meta.key_values("1")))
        .build()
}

/// Opens a Parquet file; `Ok(None)` when it does not exist.
fn open(path: &Path) -> Result<Option<File>, StoreError> {
    match File::open(path) {
        Ok(f) => Ok(Some(f)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(StoreError::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// A file we cannot decode: move it aside and say so loudly.
fn quarantine<T>(path: &Path, why: &dyn std::fmt::Display) -> Result<Existing<T>, StoreError> {
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
fn read_batches(file: File, projection: Option<&[&str]>) -> Result<Vec<RecordBatch>, ParquetError> {
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

/// Reads a processed partition (ours or the Python tool's).
pub fn read_processed(path: &Path, zone: &Zone) -> Result<Existing<Vec<ProcessedJob>>, StoreError> {
    let Some(file) = open(path)? else {
        return Ok(Existing::Missing);
    };
    let batches = match read_batches(file, None) {
        Ok(b) => b,
        Err(e) => return quarantine(path, &e),
    };
    let mut jobs = Vec::new();
    for batch in &batches {
        match model::from_record_batch(batch, zone) {
            Ok(mut j) => jobs.append(&mut j),
            Err(e) => return quarantine(path, &format!("columns of an unknown type: {e}")),
        }
    }
    Ok(Existing::Found(jobs))
}

/// Writes a processed partition, sorted by start time (jobs that never started last, by
/// submit time), atomically.
pub fn write_processed(
    path: &Path,
    jobs: &mut [ProcessedJob],
    meta: &Meta,
) -> Result<(), StoreError> {
    Ok(stage_processed(path, jobs, meta)?.commit()?)
}

/// Encodes a processed partition into a synced temp file; [`Staged::commit`] puts it in
/// place. Lets the collector encode it on one core while the raw partition is written on the
/// other, and still rename raw first.
pub fn stage_processed(
    path: &Path,
    jobs: &mut [ProcessedJob],
    meta: &Meta,
) -> Result<Staged, StoreError> {
    jobs.sort_by(|a, b| {
        (
            a.start_time.is_none(),
            a.start_time,
            a.submit_time,
            &a.job_id_raw,
        )
            .cmp(&(
                b.start_time.is_none(),
                b.start_time,
                b.submit_time,
                &b.job_id_raw,
            ))
    });
    let batch = model::to_record_batch(jobs).map_err(|source| StoreError::Encode {
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

/// Fresh raw rows for one date: complete records (split with `layout`) and verbatim lines
/// that could not be split.
pub struct FreshRaw<'a> {
    pub layout: &'a FieldLayout,
    pub records: Vec<&'a str>,
    pub malformed: Vec<&'a str>,
}

/// Counts from a raw merge.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RawMerge {
    pub kept: usize,
    pub fresh: usize,
}

/// Merges `fresh` into the raw partition at `path`: archived rows whose key is in the fresh
/// set, or whose job is in `moved_jobs` (it now lives in another date), are replaced or
/// dropped; every other archived row stays, with any columns we do not know.
pub fn merge_raw(
    path: &Path,
    fresh: &FreshRaw<'_>,
    moved_jobs: &HashSet<&str>,
    meta: &Meta,
) -> Result<RawMerge, StoreError> {
    let layout = fresh.layout;
    let mut buf = Vec::with_capacity(layout.len());
    let mut fresh_keys: HashSet<&str> = HashSet::with_capacity(fresh.records.len());
    for text in &fresh.records {
        split_prefix(text, layout, layout.job_id_raw + 1, &mut buf);
        fresh_keys.insert(buf[layout.job_id_raw].trim());
    }
    let fresh_lines: HashSet<&str> = fresh.malformed.iter().copied().collect();
    let drop_row = |key: Option<&str>, line: Option<&str>| match (key, line) {
        (_, Some(l)) => fresh_lines.contains(l),
        (Some(k), None) => fresh_keys.contains(k) || moved_jobs.contains(job_of_step(k)),
        (None, None) => false,
    };

    // Archived rows that stay: first look at the keys only, read everything only if needed.
    let mut kept_batches: Vec<RecordBatch> = Vec::new();
    if let Some(file) = open(path)? {
        let keys = match read_batches(file, Some(&["JobIDRaw", RAW_LINE_COLUMN])) {
            Ok(k) => Some(k),
            Err(e) => {
                quarantine::<()>(path, &e)?;
                None
            }
        };
        if let Some(keys) = keys {
            let masks: Vec<BooleanArray> = keys
                .iter()
                .map(|b| keep_mask(b, &drop_row))
                .collect::<Result<_, _>>()
                .map_err(|source| StoreError::Encode {
                    path: path.to_path_buf(),
                    source,
                })?;
            if masks.iter().any(|m| m.true_count() > 0) {
                let file = open(path)?.ok_or_else(|| StoreError::Read {
                    path: path.to_path_buf(),
                    source: io::Error::new(io::ErrorKind::NotFound, "vanished while reading"),
                })?;
                match read_batches(file, None) {
                    Ok(all) => {
                        for (batch, mask) in all.iter().zip(&masks) {
                            let kept = arrow_select::filter::filter_record_batch(batch, mask)
                                .map_err(|source| StoreError::Encode {
                                    path: path.to_path_buf(),
                                    source,
                                })?;
                            if kept.num_rows() > 0 {
                                kept_batches.push(kept);
                            }
                        }
                    }
                    Err(e) => {
                        quarantine::<()>(path, &e)?;
                    }
                }
            }
        }
    }

    // Output columns: ours, then any the archive has that we do not ask sacct for.
    let mut names: Vec<String> = layout.names.clone();
    names.push(RAW_LINE_COLUMN.to_string());
    for b in &kept_batches {
        for f in b.schema().fields() {
            if !names.iter().any(|n| n == f.name()) {
                names.push(f.name().clone());
            }
        }
    }
    let schema: SchemaRef = Arc::new(Schema::new(
        names
            .iter()
            .map(|n| Field::new(n, DataType::Utf8, true))
            .collect::<Vec<_>>(),
    ));
    let kept_rows: usize = kept_batches.iter().map(|b| b.num_rows()).sum();
    write_atomic(path, |file| {
        let mut w = ArrowWriter::try_new(file, schema.clone(), Some(raw_props(meta)))
            .map_err(io::Error::other)?;
        for b in &kept_batches {
            let batch = conform(b, &schema).map_err(io::Error::other)?;
            w.write(&batch).map_err(io::Error::other)?;
        }
        let mut fields = Vec::with_capacity(layout.len());
        for chunk in fresh.records.chunks(CHUNK) {
            let mut builders: Vec<StringBuilder> = (0..names.len())
                .map(|_| StringBuilder::with_capacity(chunk.len(), chunk.len() * 8))
                .collect();
            for text in chunk {
                split_fields(text, layout, &mut fields);
                for (i, b) in builders.iter_mut().enumerate() {
                    match fields.get(i) {
                        Some(v) => b.append_value(v),
                        None => b.append_null(),
                    }
                }
            }
            w.write(&finish(schema.clone(), builders).map_err(io::Error::other)?)
                .map_err(io::Error::other)?;
        }
        if !fresh.malformed.is_empty() {
            let raw_line = layout.len();
            let mut builders: Vec<StringBuilder> =
                (0..names.len()).map(|_| StringBuilder::new()).collect();
            for line in &fresh.malformed {
                for (i, b) in builders.iter_mut().enumerate() {
                    if i == raw_line {
                        b.append_value(line);
                    } else {
                        b.append_null();
                    }
                }
            }
            w.write(&finish(schema.clone(), builders).map_err(io::Error::other)?)
                .map_err(io::Error::other)?;
        }
        w.close().map_err(io::Error::other)?;
        Ok(())
    })?;
    Ok(RawMerge {
        kept: kept_rows,
        fresh: fresh.records.len() + fresh.malformed.len(),
    })
}

fn finish(schema: SchemaRef, builders: Vec<StringBuilder>) -> Result<RecordBatch, ArrowError> {
    let cols: Vec<ArrayRef> = builders
        .into_iter()
        .map(|mut b| Arc::new(b.finish()) as ArrayRef)
        .collect();
    RecordBatch::try_new(schema, cols)
}

/// Which rows of a (projected) archived batch to keep.
fn keep_mask(
    batch: &RecordBatch,
    drop_row: &dyn Fn(Option<&str>, Option<&str>) -> bool,
) -> Result<BooleanArray, ArrowError> {
    let n = batch.num_rows();
    let as_text = |name: &str| -> Result<Option<ArrayRef>, ArrowError> {
        batch
            .column_by_name(name)
            .map(|c| arrow_cast::cast(c, &DataType::Utf8))
            .transpose()
    };
    let keys = as_text("JobIDRaw")?;
    let lines = as_text(RAW_LINE_COLUMN)?;
    let keys = keys.as_ref().map(|k| k.as_string::<i32>());
    let lines = lines.as_ref().map(|k| k.as_string::<i32>());
    Ok((0..n)
        .map(|i| {
            let key = keys.filter(|k| k.is_valid(i)).map(|k| k.value(i).trim());
            let line = lines.filter(|l| l.is_valid(i)).map(|l| l.value(i));
            Some(!drop_row(key, line))
        })
        .collect())
}

/// Casts an archived batch to the output schema (all text; missing columns null).
fn conform(batch: &RecordBatch, schema: &SchemaRef) -> Result<RecordBatch, ArrowError> {
    let n = batch.num_rows();
    let cols: Vec<ArrayRef> = schema
        .fields()
        .iter()
        .map(|f| match batch.column_by_name(f.name()) {
            Some(c) => arrow_cast::cast(c, &DataType::Utf8),
            None => Ok(arrow_array::new_null_array(&DataType::Utf8, n)),
        })
        .collect::<Result<_, _>>()?;
    RecordBatch::try_new(schema.clone(), cols)
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
mod tests {
    use super::*;
    use crate::sacct::parser::SacctOutput;

    fn meta() -> Meta {
        Meta {
            date: NaiveDate::from_ymd_opt(2026, 11, 25).unwrap(),
            sacct_version: "slurm 22.05.8".into(),
            timezone: "UTC".into(),
        }
    }

    fn raw_keys(path: &Path) -> Vec<String> {
        let batches = read_raw(path).unwrap().into_inner();
        let mut keys = Vec::new();
        for b in batches {
            let c =
                arrow_cast::cast(b.column_by_name("JobIDRaw").unwrap(), &DataType::Utf8).unwrap();
            let c = c.as_string::<i32>();
            for i in 0..c.len() {
                keys.push(if c.is_valid(i) {
                    c.value(i).to_string()
                } else {
                    "<line>".into()
                });
            }
        }
        keys
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
        write_processed(&path, &mut jobs, &meta()).unwrap();
        let back = read_processed(&path, &Zone::Local).unwrap().into_inner();
        let ids: Vec<&str> = back.iter().map(|j| j.job_id.as_str()).collect();
        assert_eq!(ids, ["1", "2", "3"], "sorted by start, never-started last");
        assert_eq!(back, jobs);
        let md = read_metadata(&path).unwrap();
        assert!(md.contains(&("slurm_usage.schema_version".into(), "1".into())));
        assert!(md.contains(&("slurm_usage.sacct_version".into(), "slurm 22.05.8".into())));
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

    #[test]
    fn raw_merge_never_shrinks_and_replaces_by_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("2026-11-25.parquet");
        let layout = FieldLayout::new(["JobID", "JobIDRaw", "State"], b'|').unwrap();
        let first = SacctOutput::parse(
            b"1|1|RUNNING\n1.batch|1.batch|RUNNING\n2|2|COMPLETED\n".to_vec(),
            &layout,
        );
        let fresh = FreshRaw {
            layout: &layout,
            records: first.records.iter().map(|r| first.record_text(r)).collect(),
            malformed: vec!["garbage line"],
        };
        merge_raw(&path, &fresh, &HashSet::new(), &meta()).unwrap();
        assert_eq!(raw_keys(&path), ["1", "1.batch", "2", "<line>"]);

        // Job 2 has been purged from sacct; job 1 finished and gained a step.
        let second = SacctOutput::parse(
            b"1|1|COMPLETED\n1.batch|1.batch|COMPLETED\n1.0|1.0|COMPLETED\n".to_vec(),
            &layout,
        );
        let fresh = FreshRaw {
            layout: &layout,
            records: second
                .records
                .iter()
                .map(|r| second.record_text(r))
                .collect(),
            malformed: vec![],
        };
        let m = merge_raw(&path, &fresh, &HashSet::new(), &meta()).unwrap();
        assert_eq!(m, RawMerge { kept: 2, fresh: 3 });
        let mut keys = raw_keys(&path);
        keys.sort();
        assert_eq!(keys, ["1", "1.0", "1.batch", "2", "<line>"]);

        // Job 1 moved to another date: its rows leave this one.
        let empty = FreshRaw {
            layout: &layout,
            records: vec![],
            malformed: vec![],
        };
        merge_raw(&path, &empty, &HashSet::from(["1"]), &meta()).unwrap();
        let mut keys = raw_keys(&path);
        keys.sort();
        assert_eq!(keys, ["2", "<line>"]);
    }

    #[test]
    fn raw_merge_keeps_foreign_columns() {
        use arrow_array::{BooleanArray, StringArray};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("2026-11-25.parquet");
        // A Python-tool raw file: its own columns, one boolean.
        let schema = Arc::new(Schema::new(vec![
            Field::new("JobID", DataType::Utf8, false),
            Field::new("JobIDRaw", DataType::Utf8, false),
            Field::new("is_main_job", DataType::Boolean, false),
        ]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(StringArray::from(vec!["9"])),
                Arc::new(StringArray::from(vec!["9"])),
                Arc::new(BooleanArray::from(vec![true])),
            ],
        )
        .unwrap();
        let f = File::create(&path).unwrap();
        let mut w = ArrowWriter::try_new(f, schema, None).unwrap();
        w.write(&batch).unwrap();
        w.close().unwrap();

        let layout = FieldLayout::new(["JobID", "JobIDRaw", "State"], b'|').unwrap();
        let out = SacctOutput::parse(b"10|10|COMPLETED\n".to_vec(), &layout);
        let fresh = FreshRaw {
            layout: &layout,
            records: out.records.iter().map(|r| out.record_text(r)).collect(),
            malformed: vec![],
        };
        merge_raw(&path, &fresh, &HashSet::new(), &meta()).unwrap();
        let batches = read_raw(&path).unwrap().into_inner();
        let schema = batches[0].schema();
        assert!(schema.field_with_name("is_main_job").is_ok());
        let total: usize = batches.iter().map(|b| b.num_rows()).sum();
        assert_eq!(total, 2);
    }
}
