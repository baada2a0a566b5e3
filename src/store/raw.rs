//! Raw partitions: every sacct field as text, one row per sacct line, keyed by `JobIDRaw`
//! (`123`, `123.batch`), plus a `RawLine` column for text sacct printed that we could not
//! split (kept verbatim, never dropped).
//!
//! [`RawStage`] writes a partition while sacct is still printing: records go into Arrow
//! builders, full batches to an encoder thread that owns the Parquet writer, so splitting
//! and encoding run on both cores and a day is never held whole. When the output is over,
//! archived rows the fresh output does not replace are appended, the file is synced, and
//! the caller commits it (rename) when the order of renames allows. A merge never shrinks
//! the archive: every archived row stays unless a fresh row with its key replaces it or its
//! job moved to another date. Columns and keys: `docs/data-layout.md`, "Raw partitions".

use std::collections::HashSet;
use std::fs::File;
use std::io;
use std::path::Path;
use std::sync::mpsc::{sync_channel, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;

use arrow_array::builder::StringBuilder;
use arrow_array::cast::AsArray;
use arrow_array::{Array, ArrayRef, BooleanArray, RecordBatch};
use arrow_schema::{ArrowError, DataType, Field, Schema, SchemaRef};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;

use super::atomic::{Staged, TempFile, WriteError};
use super::parquet::{open, peek, quarantine, read_batches, Meta, StoreError, CHUNK};
use crate::sacct::fields::FieldLayout;
use crate::sacct::parser::{recycle, split_fields};
use crate::slurm::job::job_of_step;

/// Column of the raw archive that holds a line sacct printed but we could not split.
pub const RAW_LINE_COLUMN: &str = "RawLine";
/// Rows per batch handed to the encoder: small enough to keep memory flat, large enough
/// that the hand-over costs nothing. At ~470 bytes a sacct line a batch is ~2 MB, three in
/// flight per date (being filled, queued, being encoded).
const BATCH_ROWS: usize = 4096;

/// Counts from a raw merge.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RawMerge {
    /// Archived rows kept.
    pub kept: usize,
    /// Fresh rows written.
    pub fresh: usize,
}

/// Fields with few distinct values in a day (users, accounts, states, requests): these
/// columns are dictionary-encoded, which makes the raw archive ~15% smaller at the same CPU
/// cost (zstd then sees short indices instead of the repeated text). Parquet falls back to
/// plain pages by itself when a column turns out to have too many values.
#[rustfmt::skip]
const DICTIONARY_FIELDS: &[&str] = &[
    "State", "User", "UID", "Group", "GID", "Account", "Partition", "QOS", "ExitCode",
    "Cluster", "ReqMem", "Timelimit", "TimelimitRaw", "Reservation", "ReservationId",
    "DerivedExitCode", "Flags", "Layout", "Reason", "Container", "Constraints", "WorkDir",
    "ReqTRES", "AllocTRES", "NTasks", "AllocCPUS", "AllocNodes", "ReqCPUS", "ReqNodes",
    "NCPUS", "NNodes", "Priority",
];

/// Raw files: text columns read rarely and whole, so no page statistics (min/max of long
/// strings cost more to compute than they ever save), dictionaries only where values
/// repeat ([`DICTIONARY_FIELDS`]), the fastest zstd level.
fn raw_props(meta: &Meta) -> WriterProperties {
    let mut props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(
            ZstdLevel::try_new(1).expect("level 1 is valid"),
        ))
        .set_max_row_group_row_count(Some(CHUNK))
        .set_statistics_enabled(EnabledStatistics::None)
        .set_dictionary_enabled(false);
    for name in DICTIONARY_FIELDS {
        props = props.set_column_dictionary_enabled(ColumnPath::from(*name), true);
    }
    props
        .set_key_value_metadata(Some(meta.key_values("1")))
        .build()
}

/// What the encoder thread is handed.
enum Work {
    /// Rows to encode.
    Batch(RecordBatch),
    /// Close the row group: its pages go to the file and the column writers (page buffers,
    /// compression contexts: ~40 MB for a raw file's ~60 columns) are freed while the
    /// stage waits for its turn at the writer.
    Seal,
}

/// The Parquet writer on its own thread, fed whole batches.
struct Encoder {
    tx: Option<SyncSender<Work>>,
    handle: Option<JoinHandle<io::Result<()>>>,
}

impl Encoder {
    fn start(file: File, schema: SchemaRef, props: WriterProperties) -> io::Result<Encoder> {
        let mut w = ArrowWriter::try_new(file, schema, Some(props)).map_err(io::Error::other)?;
        // One batch in the channel and one being encoded: the splitter runs ahead by at most
        // two batches.
        let (tx, rx) = sync_channel::<Work>(1);
        let handle = std::thread::Builder::new()
            .name("raw-encoder".into())
            .spawn(move || {
                for work in rx {
                    match work {
                        Work::Batch(batch) => w.write(&batch),
                        Work::Seal => w.flush(),
                    }
                    .map_err(io::Error::other)?;
                }
                w.close().map_err(io::Error::other)?;
                Ok(())
            })?;
        Ok(Encoder {
            tx: Some(tx),
            handle: Some(handle),
        })
    }

    /// Hands work over; if the encoder stopped (a write failed), returns its error.
    fn send(&mut self, work: Work) -> io::Result<()> {
        let sent = self.tx.as_ref().map(|tx| tx.send(work));
        match sent {
            Some(Ok(())) => Ok(()),
            _ => Err(self.join().err().unwrap_or_else(|| {
                io::Error::other("the Parquet encoder stopped without an error")
            })),
        }
    }

    /// Waits for every batch to be written and the footer to be closed.
    fn join(&mut self) -> io::Result<()> {
        self.tx = None;
        match self.handle.take() {
            Some(h) => h
                .join()
                .unwrap_or_else(|_| Err(io::Error::other("the Parquet encoder panicked"))),
            None => Err(io::Error::other("the Parquet encoder already stopped")),
        }
    }
}

impl Drop for Encoder {
    fn drop(&mut self) {
        // Unblocks and ends the thread; its file is removed with the temp file.
        self.tx = None;
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// A raw partition being written: fresh rows first, archived rows at [`RawStage::finish`].
pub struct RawStage {
    layout: Arc<FieldLayout>,
    schema: SchemaRef,
    /// Column of each layout field in `schema`, and of `RawLine`.
    raw_line: usize,
    temp: TempFile,
    file: File,
    encoder: Encoder,
    builders: Vec<StringBuilder>,
    rows: usize,
    /// Keys of the fresh rows, one after another, each ended by `\n` (a key never holds
    /// one): ~10 bytes a row instead of a `String` each.
    keys: String,
    /// Fresh unparsable lines (an archived copy of one is replaced, not duplicated).
    lines: HashSet<String>,
    fresh: usize,
    /// Reused by [`RawStage::push`] for the fields of one record.
    scratch: Vec<&'static str>,
    /// Text bytes per column in the last batch: the next batch's builders start that big,
    /// so they never grow by copying.
    sizes: Vec<usize>,
}

impl RawStage {
    /// Starts the partition for `path` in a temp file beside it. The schema is our fields,
    /// `RawLine`, and any column the archived file has that we do not ask sacct for.
    pub fn open(
        path: &Path,
        layout: Arc<FieldLayout>,
        meta: &Meta,
    ) -> Result<RawStage, StoreError> {
        let mut names: Vec<String> = layout.names.clone();
        names.push(RAW_LINE_COLUMN.to_string());
        for name in archived_columns(path) {
            if !names.contains(&name) {
                names.push(name);
            }
        }
        let schema: SchemaRef = Arc::new(Schema::new(
            names
                .iter()
                .map(|n| Field::new(n, DataType::Utf8, true))
                .collect::<Vec<_>>(),
        ));
        let (file, temp) = TempFile::create(path)?;
        let write_err = |source: io::Error| {
            StoreError::Write(WriteError {
                path: path.to_path_buf(),
                source,
            })
        };
        let writer_file = file.try_clone().map_err(write_err)?;
        let encoder =
            Encoder::start(writer_file, schema.clone(), raw_props(meta)).map_err(write_err)?;
        Ok(RawStage {
            raw_line: layout.len(),
            builders: new_builders(names.len(), &[]),
            layout,
            schema,
            temp,
            file,
            encoder,
            rows: 0,
            keys: String::new(),
            lines: HashSet::new(),
            fresh: 0,
            scratch: Vec::new(),
            sizes: Vec::new(),
        })
    }

    /// The partition this stage replaces.
    pub fn target(&self) -> &Path {
        self.temp.target()
    }

    /// Adds one record (a sacct line with every field).
    pub fn push(&mut self, text: &str) -> Result<(), StoreError> {
        let mut fields = recycle(std::mem::take(&mut self.scratch));
        split_fields(text, &self.layout, &mut fields);
        let r = self.push_fields(&fields);
        self.scratch = recycle(fields);
        r
    }

    /// Adds one record already split into all its fields (see [`split_fields`]).
    pub fn push_fields(&mut self, fields: &[&str]) -> Result<(), StoreError> {
        self.keys.push_str(fields[self.layout.job_id_raw].trim());
        self.keys.push('\n');
        for (b, v) in self.builders.iter_mut().zip(fields) {
            b.append_value(v);
        }
        for b in &mut self.builders[fields.len()..] {
            b.append_null();
        }
        self.row_added()
    }

    /// Adds text sacct printed that is not a record, verbatim in `RawLine`.
    pub fn push_malformed(&mut self, line: &str) -> Result<(), StoreError> {
        for (i, b) in self.builders.iter_mut().enumerate() {
            if i == self.raw_line {
                b.append_value(line);
            } else {
                b.append_null();
            }
        }
        self.lines.insert(line.to_string());
        self.row_added()
    }

    fn row_added(&mut self) -> Result<(), StoreError> {
        self.rows += 1;
        self.fresh += 1;
        if self.rows >= BATCH_ROWS {
            self.flush()?;
        }
        Ok(())
    }

    /// Sends the rows built so far to the encoder.
    fn flush(&mut self) -> Result<(), StoreError> {
        if self.rows == 0 {
            return Ok(());
        }
        self.sizes = self
            .builders
            .iter()
            .map(|b| b.values_slice().len())
            .collect();
        let next = new_builders(self.schema.fields().len(), &self.sizes);
        let builders = std::mem::replace(&mut self.builders, next);
        self.rows = 0;
        let batch =
            finish_batch(self.schema.clone(), builders).map_err(|source| StoreError::Encode {
                path: self.target().to_path_buf(),
                source,
            })?;
        self.send(batch)
    }

    fn send(&mut self, batch: RecordBatch) -> Result<(), StoreError> {
        self.hand_over(Work::Batch(batch))
    }

    fn hand_over(&mut self, work: Work) -> Result<(), StoreError> {
        let path = self.target().to_path_buf();
        self.encoder
            .send(work)
            .map_err(|source| StoreError::Write(WriteError { path, source }))
    }

    /// Ends the streamed part: the rows so far are encoded and written, and the stage
    /// keeps no encoder state or row buffers while it waits for the writer, which appends
    /// held and archived rows at [`RawStage::finish`] (in a row group of their own).
    pub fn seal(&mut self) -> Result<(), StoreError> {
        self.flush()?;
        self.hand_over(Work::Seal)?;
        self.sizes.clear();
        self.builders = new_builders(self.schema.fields().len(), &[]);
        Ok(())
    }

    /// Appends `extra` records (rows other dates' outputs held for this one), then every
    /// archived row that stays: not replaced by a fresh row, its job not in `moved_jobs`.
    /// Returns the synced file, for the caller to commit.
    pub fn finish(
        mut self,
        extra: &[&str],
        moved_jobs: &HashSet<&str>,
    ) -> Result<(Staged, RawMerge), StoreError> {
        for text in extra {
            self.push(text)?;
        }
        self.flush()?;
        let path = self.target().to_path_buf();
        let kept = self.append_archive(&path, moved_jobs)?;
        let fresh = self.fresh;
        let RawStage {
            mut encoder,
            temp,
            file,
            ..
        } = self;
        encoder.join().map_err(|source| {
            StoreError::Write(WriteError {
                path: path.clone(),
                source,
            })
        })?;
        let staged = temp.sync(file)?;
        Ok((staged, RawMerge { kept, fresh }))
    }

    /// Sends the archived rows that stay to the encoder; returns how many.
    fn append_archive(
        &mut self,
        path: &Path,
        moved_jobs: &HashSet<&str>,
    ) -> Result<usize, StoreError> {
        let Some(file) = open(path)? else {
            return Ok(0);
        };
        let fresh_keys: HashSet<&str> = self.keys.split_terminator('\n').collect();
        let drop_row = |key: Option<&str>, line: Option<&str>| match (key, line) {
            (_, Some(l)) => self.lines.contains(l),
            (Some(k), None) => fresh_keys.contains(k) || moved_jobs.contains(job_of_step(k)),
            (None, None) => false,
        };
        let encode_err = |source: ArrowError| StoreError::Encode {
            path: path.to_path_buf(),
            source,
        };
        // First look at the keys only; read everything only if some row stays.
        let keys = match read_batches(file, Some(&["JobIDRaw", RAW_LINE_COLUMN])) {
            Ok(k) => k,
            Err(e) => {
                quarantine::<()>(path, &e)?;
                return Ok(0);
            }
        };
        let masks: Vec<BooleanArray> = keys
            .iter()
            .map(|b| keep_mask(b, &drop_row))
            .collect::<Result<_, _>>()
            .map_err(encode_err)?;
        drop(keys);
        if masks.iter().all(|m| m.true_count() == 0) {
            return Ok(0);
        }
        let file = open(path)?.ok_or_else(|| StoreError::Read {
            path: path.to_path_buf(),
            source: io::Error::new(io::ErrorKind::NotFound, "vanished while reading"),
        })?;
        let reader = match ParquetRecordBatchReaderBuilder::try_new(file)
            .and_then(|b| b.with_batch_size(CHUNK).build())
        {
            Ok(r) => r,
            Err(e) => {
                quarantine::<()>(path, &e)?;
                return Ok(0);
            }
        };
        let mut kept_batches = Vec::new();
        for (batch, mask) in reader.zip(&masks) {
            let batch = match batch {
                Ok(b) => b,
                Err(e) => {
                    quarantine::<()>(path, &e)?;
                    return Ok(0);
                }
            };
            let kept =
                arrow_select::filter::filter_record_batch(&batch, mask).map_err(encode_err)?;
            if kept.num_rows() > 0 {
                kept_batches.push(conform(&kept, &self.schema).map_err(encode_err)?);
            }
        }
        // Only now that the whole archive was read: a file that fails half way is moved
        // aside rather than half copied.
        let mut kept = 0;
        for batch in kept_batches {
            kept += batch.num_rows();
            self.send(batch)?;
        }
        Ok(kept)
    }
}

/// Builders for the next batch, as big as the last batch's columns (`sizes`); with no sizes
/// (a new or sealed stage) small ones that grow as rows come.
fn new_builders(n: usize, sizes: &[usize]) -> Vec<StringBuilder> {
    (0..n)
        .map(|i| match sizes.get(i) {
            Some(s) => StringBuilder::with_capacity(BATCH_ROWS, s + s / 8 + 64),
            None => StringBuilder::new(),
        })
        .collect()
}

/// The columns of the archived file at `path` (none when it is missing or unreadable: an
/// unreadable file is moved aside when its rows are read).
fn archived_columns(path: &Path) -> Vec<String> {
    peek(path).map_or_else(Vec::new, |b| {
        b.schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect()
    })
}

fn finish_batch(
    schema: SchemaRef,
    builders: Vec<StringBuilder>,
) -> Result<RecordBatch, ArrowError> {
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

/// Casts an archived batch to the output schema (all text; missing columns null). A column
/// the schema lacks means the archive changed since the stage opened: refuse, the date is
/// retried, nothing is dropped.
fn conform(batch: &RecordBatch, schema: &SchemaRef) -> Result<RecordBatch, ArrowError> {
    if let Some(f) = batch
        .schema()
        .fields()
        .iter()
        .find(|f| schema.field_with_name(f.name()).is_err())
    {
        return Err(ArrowError::SchemaError(format!(
            "the archived file gained the column {:?} while this date was collected",
            f.name()
        )));
    }
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

/// Merges `records` and `malformed` lines into the raw partition at `path` and commits it:
/// archived rows whose key is fresh, or whose job is in `moved_jobs` (it now lives in
/// another date), are replaced or dropped; every other archived row stays.
pub fn merge_raw(
    path: &Path,
    layout: &Arc<FieldLayout>,
    records: &[&str],
    malformed: &[&str],
    moved_jobs: &HashSet<&str>,
    meta: &Meta,
) -> Result<RawMerge, StoreError> {
    let mut stage = RawStage::open(path, layout.clone(), meta)?;
    for text in records {
        stage.push(text)?;
    }
    for line in malformed {
        stage.push_malformed(line)?;
    }
    let (staged, merge) = stage.finish(&[], moved_jobs)?;
    staged.commit()?;
    Ok(merge)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sacct::parser::SacctOutput;
    use crate::store::parquet::tests::meta;

    #[test]
    fn dictionary_fields_are_fields_we_ask_sacct_for() {
        let ours = FieldLayout::ours();
        for name in DICTIONARY_FIELDS {
            assert!(
                ours.names.iter().any(|n| n == name),
                "{name} is not a field"
            );
        }
        let props = raw_props(&meta());
        assert!(props.dictionary_enabled(&ColumnPath::from("User")));
        assert!(!props.dictionary_enabled(&ColumnPath::from("JobIDRaw")));
    }

    fn raw_keys(path: &Path) -> Vec<String> {
        let batches = super::super::parquet::read_raw(path).unwrap().into_inner();
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

    fn records(out: &SacctOutput) -> Vec<&str> {
        out.records.iter().map(|r| out.record_text(r)).collect()
    }

    #[test]
    fn raw_merge_never_shrinks_and_replaces_by_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("2026-11-25.parquet");
        let layout = Arc::new(FieldLayout::new(["JobID", "JobIDRaw", "State"], b'|').unwrap());
        let first = SacctOutput::parse(
            b"1|1|RUNNING\n1.batch|1.batch|RUNNING\n2|2|COMPLETED\n".to_vec(),
            &layout,
        );
        let none = HashSet::new();
        merge_raw(
            &path,
            &layout,
            &records(&first),
            &["garbage line"],
            &none,
            &meta(),
        )
        .unwrap();
        assert_eq!(raw_keys(&path), ["1", "1.batch", "2", "<line>"]);

        // Job 2 has been purged from sacct; job 1 finished and gained a step.
        let second = SacctOutput::parse(
            b"1|1|COMPLETED\n1.batch|1.batch|COMPLETED\n1.0|1.0|COMPLETED\n".to_vec(),
            &layout,
        );
        let m = merge_raw(&path, &layout, &records(&second), &[], &none, &meta()).unwrap();
        assert_eq!(m, RawMerge { kept: 2, fresh: 3 });
        let mut keys = raw_keys(&path);
        keys.sort();
        assert_eq!(keys, ["1", "1.0", "1.batch", "2", "<line>"]);

        // The same unparsable line again replaces its archived copy.
        let m = merge_raw(&path, &layout, &[], &["garbage line"], &none, &meta()).unwrap();
        assert_eq!(m, RawMerge { kept: 4, fresh: 1 });

        // Job 1 moved to another date: its rows leave this one.
        merge_raw(&path, &layout, &[], &[], &HashSet::from(["1"]), &meta()).unwrap();
        let mut keys = raw_keys(&path);
        keys.sort();
        assert_eq!(keys, ["2", "<line>"]);
    }

    #[test]
    fn a_stage_dropped_before_finish_leaves_the_archive_and_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("2026-11-25.parquet");
        let layout = Arc::new(FieldLayout::new(["JobID", "JobIDRaw", "State"], b'|').unwrap());
        merge_raw(
            &path,
            &layout,
            &["1|1|COMPLETED"],
            &[],
            &HashSet::new(),
            &meta(),
        )
        .unwrap();
        let before = std::fs::read(&path).unwrap();
        let mut stage = RawStage::open(&path, layout.clone(), &meta()).unwrap();
        for i in 0..20_000 {
            stage.push(&format!("{i}|{i}|RUNNING")).unwrap();
        }
        drop(stage);
        assert_eq!(std::fs::read(&path).unwrap(), before);
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "{names:?}");
    }

    #[test]
    fn many_batches_keep_every_row_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("2026-11-25.parquet");
        let layout = Arc::new(FieldLayout::new(["JobID", "JobIDRaw", "State"], b'|').unwrap());
        let rows: Vec<String> = (0..(3 * BATCH_ROWS + 5))
            .map(|i| format!("{i}|{i}|COMPLETED"))
            .collect();
        let rows: Vec<&str> = rows.iter().map(String::as_str).collect();
        let m = merge_raw(&path, &layout, &rows, &[], &HashSet::new(), &meta()).unwrap();
        assert_eq!(m.fresh, rows.len());
        let keys = raw_keys(&path);
        assert_eq!(keys.len(), rows.len());
        assert!(keys.iter().enumerate().all(|(i, k)| *k == i.to_string()));
    }

    /// A sealed stage has written its streamed rows (a row group of their own) and still
    /// takes held rows and the archive's rows at `finish`, in that order after them.
    #[test]
    fn a_sealed_stage_appends_held_and_archived_rows_after_the_streamed_ones() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("2026-11-25.parquet");
        let layout = Arc::new(FieldLayout::new(["JobID", "JobIDRaw", "State"], b'|').unwrap());
        let none = HashSet::new();
        merge_raw(&path, &layout, &["1|1|COMPLETED"], &[], &none, &meta()).unwrap();
        let mut stage = RawStage::open(&path, layout.clone(), &meta()).unwrap();
        for i in 2..(BATCH_ROWS + 10) {
            stage.push(&format!("{i}|{i}|RUNNING")).unwrap();
        }
        stage.seal().unwrap();
        let (staged, m) = stage.finish(&["3000000|3000000|PENDING"], &none).unwrap();
        staged.commit().unwrap();
        assert_eq!(
            m,
            RawMerge {
                kept: 1,
                fresh: BATCH_ROWS + 9
            }
        );
        let keys = raw_keys(&path);
        let want: Vec<String> = (2..(BATCH_ROWS + 10))
            .map(|i| i.to_string())
            .chain(["3000000".to_string(), "1".to_string()])
            .collect();
        assert_eq!(keys, want);
        let groups = ParquetRecordBatchReaderBuilder::try_new(File::open(&path).unwrap())
            .unwrap()
            .metadata()
            .num_row_groups();
        assert_eq!(groups, 2, "streamed rows, then held and archived ones");
    }

    #[test]
    fn raw_merge_keeps_foreign_columns() {
        use arrow_array::StringArray;
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

        let layout = Arc::new(FieldLayout::new(["JobID", "JobIDRaw", "State"], b'|').unwrap());
        merge_raw(
            &path,
            &layout,
            &["10|10|COMPLETED"],
            &[],
            &HashSet::new(),
            &meta(),
        )
        .unwrap();
        let batches = super::super::parquet::read_raw(&path).unwrap().into_inner();
        let schema = batches[0].schema();
        assert!(schema.field_with_name("is_main_job").is_ok());
        let total: usize = batches.iter().map(|b| b.num_rows()).sum();
        assert_eq!(total, 2);
    }
}
