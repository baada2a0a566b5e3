//! [`Archive`]: the one door to the stored partitions, the tracker and the locks.
//!
//! Everything outside `store` names a partition by its kind and date and asks the archive
//! for it: list the dates, open one for reading (whole, some columns, some row groups),
//! stage a new version and commit it as one step, move a bad one aside, take the write
//! lock, load or save the tracker. No caller builds a path into the data dir or opens a
//! file there itself, so a second place to keep the archive is a change in this module.
//!
//! The boundary is drawn for object storage as much as for a local disk:
//! - a write is staged whole (a temp file that is synced) and committed in one step
//!   ([`super::atomic::Staged::commit`]): a rename here, a single PUT or a completed
//!   multipart upload on object storage; a reader never sees half a partition;
//! - listing is by prefix (`raw/`, `processed/`) and by name;
//! - a reader gets a [`Source`] that serves byte ranges (Parquet's
//!   [`ChunkReader`]), so a report reads the footer and the column chunks it needs, never a
//!   whole file it does not need;
//! - the write lock and the tracker are operations of the archive, not `flock` and
//!   `rename` at the caller: object storage will hold a lease object and a tracker object.
//!
//! Local disk is the only implementation today; its file-level pieces are
//! [`super::atomic`] (temp file, fsync, rename), [`super::lock`] (`flock`),
//! [`super::parquet`] and [`super::raw`] (encoding, decoding, merging).

use std::collections::HashSet;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use chrono::NaiveDate;
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder,
};
use parquet::errors::ParquetError;
use parquet::file::reader::{ChunkReader, Length};

use super::atomic::{self, Staged};
use super::lock::{self, DirLock, LockError};
use super::object::{self, Remote, RemoteObject};
use super::parquet::{self as pq, Existing, JobKey, Meta, StoreError, Unfinished};
use super::raw::{self, RawMerge, RawStage};
use super::tracker::{Loaded, PeekError, Tracker, TrackerError};
use super::Kind;
use crate::config::Config;
use crate::model::ProcessedJob;
use crate::sacct::fields::FieldLayout;
use crate::zone::Zone;

/// Where the archive lives and every operation on it. Cheap to clone.
///
/// Two places: a local data dir (read and written), or one cluster's partitions in a lake
/// (read only: [`Archive::remote`]; the lake is written by `crate::lake` from a local data
/// dir). The write operations below are for a local data dir; the commands that write
/// refuse a lake URL before they get here.
#[derive(Debug, Clone)]
pub struct Archive {
    root: PathBuf,
    remote: Option<Arc<Remote>>,
}

impl PartialEq for Archive {
    fn eq(&self, other: &Archive) -> bool {
        self.root == other.root
            && match (&self.remote, &other.remote) {
                (None, None) => true,
                (Some(a), Some(b)) => Arc::ptr_eq(a, b),
                _ => false,
            }
    }
}

impl Eq for Archive {}

/// Why a partition could not be opened for reading. Each names the partition.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("cannot open {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// A directory, FIFO, socket or device where a partition belongs: opening a FIFO would
    /// block until someone writes to it, so it is never opened.
    #[error("{path} is not a regular file but a {kind}")]
    NotAFile { path: PathBuf, kind: &'static str },
}

/// What one prefix (`raw/` or `processed/`) holds, for `status` and `demo`.
#[derive(Debug, Default, Clone)]
pub struct Listing {
    /// Dates with a partition that is a regular file, sorted, with its size in bytes.
    pub partitions: Vec<(NaiveDate, u64)>,
    /// Bytes of every regular file under the prefix (partitions, temp and moved-aside files).
    pub bytes: u64,
    /// Files moved aside as corrupt (`<file>.corrupt-<time>`), by name, sorted.
    pub corrupt: Vec<PathBuf>,
}

/// A cluster's directory in a data dir is this followed by its name (`cluster=alpha`).
pub const CLUSTER_DIR_PREFIX: &str = "cluster=";

/// File name of the lake uploader's record, at the top of the data dir.
pub const LAKE_STATE: &str = "lake-state.json";

/// File name of the alert mails' throttle record, at the top of the data dir.
pub const ALERTS_STATE: &str = "alerts-state.json";

/// What identifies one version of a local partition without reading it: its size and
/// modification time (a commit renames a new file into place, so any change makes a new
/// mtime).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Fingerprint {
    pub size: u64,
    pub mtime_ns: i64,
}

impl Fingerprint {
    fn of(m: &std::fs::Metadata) -> Fingerprint {
        use std::os::unix::fs::MetadataExt;
        Fingerprint {
            size: m.len(),
            mtime_ns: m.mtime() * 1_000_000_000 + m.mtime_nsec(),
        }
    }
}

/// The outcome of [`Archive::probe_writable`].
#[derive(Debug)]
pub struct Writable {
    /// The directory a temp file was created in and removed from.
    pub probed: PathBuf,
    /// The archive does not exist yet; `probed` is the nearest existing parent, where the
    /// first collection will create it.
    pub missing: bool,
}

impl Archive {
    /// The archive in the local directory `root` (the Python tool's layout).
    pub fn local(root: impl Into<PathBuf>) -> Archive {
        Archive {
            root: root.into(),
            remote: None,
        }
    }

    /// One cluster's partitions in a lake, read only.
    pub fn remote(remote: Remote) -> Archive {
        Archive {
            root: remote.prefix_name(Kind::Processed),
            remote: Some(Arc::new(remote)),
        }
    }

    /// The cluster of a lake archive; `None` for a local data dir.
    pub fn cluster(&self) -> Option<&str> {
        self.remote.as_deref().map(Remote::cluster)
    }

    /// Whether this is a lake (read only) rather than a local data dir.
    pub fn is_remote(&self) -> bool {
        self.remote.is_some()
    }

    /// The archive a config names (its `data_dir`, with any `--data-dir` override already
    /// applied when the config was loaded: [`crate::config::ConfigSource::load`]).
    pub fn of(config: &Config) -> Archive {
        Archive::local(&config.data_dir)
    }

    /// The archive of cluster `name` in the data dir of `config`, when `[collect] clusters`
    /// lists clusters: `<data_dir>/cluster=<name>/` (docs/data-layout.md).
    pub fn of_cluster(config: &Config, name: &str) -> Archive {
        Archive::local(config.data_dir.join(format!("{CLUSTER_DIR_PREFIX}{name}")))
    }

    /// The cluster archives (`cluster=<name>/` with a `processed/` or `raw/` dir) in the
    /// local data dir `root`, sorted by name, with their names.
    pub fn cluster_dirs(root: &Path) -> io::Result<Vec<(String, Archive)>> {
        let entries = match std::fs::read_dir(root) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut found = Vec::new();
        for entry in entries {
            let entry = entry?;
            let Some(name) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.strip_prefix(CLUSTER_DIR_PREFIX))
                .map(str::to_string)
            else {
                continue;
            };
            let path = entry.path();
            if path.join(Kind::Processed.dir()).is_dir() || path.join(Kind::Raw.dir()).is_dir() {
                found.push((name, Archive::local(path)));
            }
        }
        found.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(found)
    }

    /// What a reader of the local data dir at `self` reads: one archive per
    /// `cluster=<name>/` directory (only `cluster`'s when given), plus the top level when it
    /// holds partitions (a data dir from before `[collect] clusters`, read as whatever
    /// cluster its rows name); the top level alone when there is no cluster directory.
    pub fn local_set(&self, cluster: Option<&str>) -> io::Result<Vec<Archive>> {
        let dirs = Archive::cluster_dirs(&self.root)?;
        if dirs.is_empty() {
            return Ok(vec![self.clone()]);
        }
        let mut archives = Vec::new();
        if self.has_partitions() {
            archives.push(self.clone());
        }
        archives.extend(
            dirs.into_iter()
                .filter(|(name, _)| cluster.is_none_or(|c| c == name))
                .map(|(_, a)| a),
        );
        Ok(archives)
    }

    /// Whether a local data dir holds partitions of its own at the top level (the layout
    /// without `[collect] clusters`).
    pub fn has_partitions(&self) -> bool {
        self.remote.is_none()
            && [Kind::Processed, Kind::Raw]
                .iter()
                .any(|k| self.dates(*k).is_ok_and(|d| !d.is_empty()))
    }

    /// Where it is, for messages.
    pub fn location(&self) -> &Path {
        &self.root
    }

    /// Whether the archive exists at all (readers refuse a missing one with a hint).
    pub fn exists(&self) -> bool {
        self.remote.is_some() || self.root.is_dir()
    }

    /// The name of a partition, for messages (and the file, on local disk).
    pub fn name(&self, kind: Kind, date: NaiveDate) -> PathBuf {
        match &self.remote {
            Some(r) => r.name(kind, date),
            None => self.prefix(kind).join(format!("{date}.parquet")),
        }
    }

    /// The name of a prefix, for messages.
    pub fn prefix(&self, kind: Kind) -> PathBuf {
        match &self.remote {
            Some(r) => r.prefix_name(kind),
            None => self.root.join(kind.dir()),
        }
    }

    /// The name of the completion tracker, for messages.
    pub fn tracker_name(&self) -> PathBuf {
        self.root.join(super::tracker::TRACKER_FILE)
    }

    // ---- listing and reading: any process, no lock ----

    /// Dates that have a partition of `kind`, sorted. Other names (temp files, moved-aside
    /// corrupt files, a stray README) are not partitions.
    pub fn dates(&self, kind: Kind) -> io::Result<Vec<NaiveDate>> {
        if let Some(r) = &self.remote {
            return Ok(r.listing(kind)?.into_iter().map(|(d, _)| d).collect());
        }
        let entries = match std::fs::read_dir(self.prefix(kind)) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut dates: Vec<NaiveDate> = entries
            .flatten()
            .filter_map(|e| date_of_name(e.file_name().to_str()?))
            .collect();
        dates.sort();
        Ok(dates)
    }

    /// Sizes and moved-aside files under `kind`'s prefix. A directory or FIFO named like a
    /// partition is not data: it is neither counted nor makes its date covered.
    pub fn listing(&self, kind: Kind) -> io::Result<Listing> {
        let mut out = Listing::default();
        if let Some(r) = &self.remote {
            out.partitions = r.listing(kind)?;
            out.bytes = out.partitions.iter().map(|(_, s)| s).sum();
            return Ok(out);
        }
        for date in self.dates(kind)? {
            if let Ok(m) = std::fs::metadata(self.name(kind, date)) {
                if m.is_file() {
                    out.partitions.push((date, m.len()));
                }
            }
        }
        if let Ok(entries) = std::fs::read_dir(self.prefix(kind)) {
            for e in entries.flatten() {
                let name = e.file_name();
                if name.to_string_lossy().contains(".corrupt-") {
                    out.corrupt.push(self.prefix(kind).join(&name));
                }
                // A directory's own size is not data.
                out.bytes += e
                    .metadata()
                    .map_or(0, |m| if m.is_file() { m.len() } else { 0 });
            }
        }
        out.corrupt.sort();
        Ok(out)
    }

    /// Every partition of `kind` with its [`Fingerprint`] (a `stat` each, no read): what
    /// the lake uploader compares with what it uploaded.
    pub fn fingerprints(&self, kind: Kind) -> io::Result<Vec<(NaiveDate, Fingerprint)>> {
        let mut out = Vec::new();
        for date in self.dates(kind)? {
            if let Ok(m) = std::fs::metadata(self.name(kind, date)) {
                if m.is_file() {
                    out.push((date, Fingerprint::of(&m)));
                }
            }
        }
        Ok(out)
    }

    /// The bytes of `date`'s partition of `kind` and the [`Fingerprint`] of exactly those
    /// bytes (taken from the open file: a commit renames a new file into place, it never
    /// changes an open one). `Ok(None)` when there is none.
    pub fn read_partition(
        &self,
        kind: Kind,
        date: NaiveDate,
    ) -> io::Result<Option<(Bytes, Fingerprint)>> {
        use std::io::Read;
        let path = self.name(kind, date);
        let mut file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io::Error::new(e.kind(), format!("{}: {e}", path.display()))),
        };
        let meta = file.metadata()?;
        if let Some(kind) = not_a_file(meta.file_type()) {
            return Err(io::Error::other(format!(
                "{} is not a regular file but a {kind}",
                path.display()
            )));
        }
        let mut buf = Vec::with_capacity(meta.len() as usize);
        file.read_to_end(&mut buf)?;
        Ok(Some((Bytes::from(buf), Fingerprint::of(&meta))))
    }

    /// The lake uploader's record of what it uploaded (`lake-state.json`); `None` if absent.
    pub fn read_lake_state(&self) -> io::Result<Option<Vec<u8>>> {
        match std::fs::read(self.root.join(LAKE_STATE)) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The name of the lake uploader's record, for messages.
    pub fn lake_state_name(&self) -> PathBuf {
        self.root.join(LAKE_STATE)
    }

    /// Saves the lake uploader's record as one committed write.
    pub fn write_lake_state(&self, bytes: &[u8]) -> Result<(), atomic::WriteError> {
        atomic::write_bytes_atomic(&self.root.join(LAKE_STATE), bytes)
    }

    /// Takes the lake upload lock without waiting: one uploader per data dir (a daemon's
    /// round and a manual `lake sync` never upload at once).
    pub fn try_lock_lake(&self) -> Result<DirLock, LockError> {
        lock::try_lock(&self.root, lock::LAKE_LOCK)
    }

    /// The alert mails' throttle record (`alerts-state.json`: who was mailed when); `None`
    /// if absent.
    pub fn read_alerts_state(&self) -> io::Result<Option<Vec<u8>>> {
        match std::fs::read(self.root.join(ALERTS_STATE)) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The name of the alert mails' throttle record, for messages.
    pub fn alerts_state_name(&self) -> PathBuf {
        self.root.join(ALERTS_STATE)
    }

    /// Saves the alert mails' throttle record as one committed write.
    pub fn write_alerts_state(&self, bytes: &[u8]) -> Result<(), atomic::WriteError> {
        atomic::write_bytes_atomic(&self.root.join(ALERTS_STATE), bytes)
    }

    /// Takes the alerts lock without waiting: one sender per data dir, so a daemon's round
    /// and a manual `alerts --send` never mail the same person twice.
    pub fn try_lock_alerts(&self) -> Result<DirLock, LockError> {
        lock::try_lock(&self.root, lock::ALERTS_LOCK)
    }

    /// Moved-aside copies of the tracker (they land beside it, at the top), sorted.
    pub fn corrupt_at_top(&self) -> Vec<PathBuf> {
        let Ok(entries) = std::fs::read_dir(&self.root) else {
            return Vec::new();
        };
        let mut out: Vec<PathBuf> = entries
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().contains(".corrupt-"))
            .map(|e| self.root.join(e.file_name()))
            .collect();
        out.sort();
        out
    }

    /// Opens `date`'s partition of `kind` for reading; `Ok(None)` when there is none. Only a
    /// regular file (or a link to one) is opened: a FIFO would block the reader forever.
    /// Never moves or changes anything, so any process may read while a collector writes.
    pub fn open(&self, kind: Kind, date: NaiveDate) -> Result<Option<Partition>, OpenError> {
        let path = self.name(kind, date);
        if let Some(r) = &self.remote {
            return match r.open(kind, date) {
                Ok(o) => Ok(o.map(|o| Partition {
                    source: Source::Remote(o),
                    name: path,
                })),
                Err(source) => Err(OpenError::Io { path, source }),
            };
        }
        match std::fs::metadata(&path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(OpenError::Io { path, source }),
            Ok(m) => {
                if let Some(kind) = not_a_file(m.file_type()) {
                    return Err(OpenError::NotAFile { path, kind });
                }
            }
        }
        match File::open(&path) {
            Ok(file) => Ok(Some(Partition {
                source: Source::Local(Arc::new(file)),
                name: path,
            })),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(OpenError::Io { path, source }),
        }
    }

    /// Whether `date`'s partition of `kind` is missing or decodes (its footer only: cheap).
    pub fn decodes(&self, kind: Kind, date: NaiveDate) -> bool {
        pq::footer_ok(&self.name(kind, date))
    }

    /// Whether `date` has a partition of `kind`.
    pub fn has(&self, kind: Kind, date: NaiveDate) -> bool {
        self.name(kind, date).exists()
    }

    /// The tracker, without changing anything (for readers and the daemon's start, which
    /// hold no write lock): an unusable one is reported, not moved aside.
    pub fn peek_tracker(&self) -> Result<Tracker, PeekError> {
        Tracker::load_read_only(&self.tracker_name())
    }

    /// Whether the archive could be written: creates and removes a temp file in it (or,
    /// when it does not exist yet, in the nearest existing parent). Writes nothing else.
    pub fn probe_writable(&self) -> Result<Writable, (PathBuf, io::Error)> {
        use std::io::Write;
        let (probed, missing) = if self.root.is_dir() {
            (self.root.clone(), false)
        } else {
            (nearest_existing_parent(&self.root), true)
        };
        let probe = probed.join(format!(".slurm-usage-test.tmp-{}", std::process::id()));
        let result = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&probe)
            .and_then(|mut f| f.write_all(b"test"))
            .and_then(|()| std::fs::remove_file(&probe));
        match result {
            Ok(()) => Ok(Writable { probed, missing }),
            Err(e) => {
                let _ = std::fs::remove_file(&probe);
                Err((probed, e))
            }
        }
    }

    // ---- writing: only under the write lock ----

    /// Creates the archive and its prefixes (mode 0750) if missing.
    pub fn create(&self) -> io::Result<()> {
        atomic::ensure_dir(&self.root)?;
        atomic::ensure_dir(&self.prefix(Kind::Raw))?;
        atomic::ensure_dir(&self.prefix(Kind::Processed))
    }

    /// Takes the write lock without waiting; [`LockError::Busy`] names the holder.
    pub fn try_lock_writer(&self) -> Result<DirLock, LockError> {
        lock::try_lock(&self.root, lock::WRITE_LOCK)
    }

    /// Takes the write lock, waiting as long as it takes (blocking: call it from
    /// `spawn_blocking` in async code).
    pub fn lock_writer_wait(&self) -> Result<DirLock, LockError> {
        lock::lock_wait(&self.root, lock::WRITE_LOCK)
    }

    /// Takes the one-daemon-per-archive lock, held for the daemon's life.
    pub fn lock_daemon(&self) -> Result<DirLock, LockError> {
        lock::try_lock(&self.root, lock::DAEMON_LOCK)
    }

    /// Removes temp files left by a crashed writer (a staged write never committed).
    pub fn remove_stale_temps(&self) -> io::Result<usize> {
        Ok(atomic::remove_stale_temps(&self.root)?
            + atomic::remove_stale_temps(&self.prefix(Kind::Raw))?
            + atomic::remove_stale_temps(&self.prefix(Kind::Processed))?)
    }

    /// Loads the tracker; an unusable one is moved aside and an empty one returned.
    pub fn load_tracker(&self) -> Result<Loaded, TrackerError> {
        Tracker::load(&self.tracker_name())
    }

    /// Saves the tracker as one committed write.
    pub fn save_tracker(&self, tracker: &mut Tracker) -> Result<(), TrackerError> {
        tracker.save(&self.tracker_name())
    }

    /// The job ids and raw ids of `date`'s processed partition (two columns only). An unreadable
    /// partition is moved aside and reads as [`Existing::MovedAside`].
    pub fn read_processed_keys(
        &self,
        date: NaiveDate,
    ) -> Result<Existing<Vec<JobKey>>, StoreError> {
        pq::read_processed_keys(&self.name(Kind::Processed, date))
    }

    /// The jobs of `date`'s processed partition not in a final state (four columns read).
    pub fn read_unfinished(
        &self,
        date: NaiveDate,
    ) -> Result<Existing<Vec<Unfinished>>, StoreError> {
        pq::read_unfinished(&self.name(Kind::Processed, date))
    }

    /// The jobs of `date`'s processed partition.
    pub fn read_processed(
        &self,
        date: NaiveDate,
        zone: &Zone,
    ) -> Result<Existing<Vec<ProcessedJob>>, StoreError> {
        pq::read_processed(&self.name(Kind::Processed, date), zone)
    }

    /// The jobs of `date`'s processed partition whose id passes `keep`.
    pub fn read_processed_where(
        &self,
        date: NaiveDate,
        zone: &Zone,
        keep: &dyn Fn(&str) -> bool,
    ) -> Result<Existing<Vec<ProcessedJob>>, StoreError> {
        pq::read_processed_where(&self.name(Kind::Processed, date), zone, keep)
    }

    /// Encodes `jobs` as `date`'s new processed partition, staged: nothing is replaced until
    /// [`Staged::commit`].
    pub fn stage_processed(
        &self,
        date: NaiveDate,
        jobs: &[ProcessedJob],
        meta: &Meta,
    ) -> Result<Staged, StoreError> {
        pq::stage_processed(&self.name(Kind::Processed, date), jobs, meta)
    }

    /// Replaces `date`'s processed partition with `jobs` (staged and committed).
    pub fn write_processed(
        &self,
        date: NaiveDate,
        jobs: &[ProcessedJob],
        meta: &Meta,
    ) -> Result<(), StoreError> {
        pq::write_processed(&self.name(Kind::Processed, date), jobs, meta)
    }

    /// Starts `date`'s new raw partition, written while sacct prints; the archived rows are
    /// merged in at [`RawStage::finish`].
    pub fn stage_raw(
        &self,
        date: NaiveDate,
        layout: Arc<FieldLayout>,
        meta: &Meta,
    ) -> Result<RawStage, StoreError> {
        RawStage::open(&self.name(Kind::Raw, date), layout, meta)
    }

    /// Merges `records` into `date`'s raw partition and commits it; archived rows of
    /// `moved_jobs` are dropped (they live in another date now), every other row stays.
    pub fn merge_raw(
        &self,
        date: NaiveDate,
        layout: &Arc<FieldLayout>,
        records: &[&str],
        moved_jobs: &HashSet<&str>,
        meta: &Meta,
    ) -> Result<RawMerge, StoreError> {
        raw::merge_raw(
            &self.name(Kind::Raw, date),
            layout,
            records,
            &[],
            moved_jobs,
            meta,
        )
    }
}

/// `YYYY-MM-DD.parquet` -> its date; any other name is not a partition.
fn date_of_name(name: &str) -> Option<NaiveDate> {
    let stem = name.strip_suffix(".parquet")?;
    if stem.len() != 10 {
        return None;
    }
    NaiveDate::parse_from_str(stem, "%Y-%m-%d").ok()
}

/// What a non-regular file is; `None` for a regular file.
fn not_a_file(t: std::fs::FileType) -> Option<&'static str> {
    use std::os::unix::fs::FileTypeExt;
    if t.is_file() {
        None
    } else if t.is_dir() {
        Some("directory")
    } else if t.is_fifo() {
        Some("FIFO")
    } else if t.is_socket() {
        Some("socket")
    } else {
        Some("device")
    }
}

fn nearest_existing_parent(dir: &Path) -> PathBuf {
    let mut p = dir.parent();
    while let Some(d) = p {
        if d.as_os_str().is_empty() {
            return PathBuf::from(".");
        }
        if d.is_dir() {
            return d.to_path_buf();
        }
        p = d.parent();
    }
    PathBuf::from(".")
}

/// One partition opened for reading: its name (for messages) and its bytes.
#[derive(Debug)]
pub struct Partition {
    name: PathBuf,
    source: Source,
}

impl Partition {
    /// The partition's name, for messages.
    pub fn name(&self) -> &Path {
        &self.name
    }

    /// Its decoded footer (schema, row groups, statistics), read once and reused by the
    /// readers built with [`Partition::reader_with`].
    pub fn metadata(
        &self,
        options: ArrowReaderOptions,
    ) -> Result<ArrowReaderMetadata, ParquetError> {
        ArrowReaderMetadata::load(&self.source, options)
    }

    /// Fetches the column chunks of `mask` in every row group at once, when the partition
    /// is in a lake (a few coalesced ranged GETs instead of one per chunk); nothing for a
    /// local file, which the reader reads by range itself.
    pub fn prefetch(
        &self,
        meta: &parquet::file::metadata::ParquetMetaData,
        mask: &parquet::arrow::ProjectionMask,
    ) -> Result<(), ParquetError> {
        let Source::Remote(o) = &self.source else {
            return Ok(());
        };
        let ranges: Vec<std::ops::Range<u64>> = meta
            .row_groups()
            .iter()
            .flat_map(|rg| {
                rg.columns()
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| mask.leaf_included(*i))
                    .map(|(_, c)| {
                        let (s, l) = c.byte_range();
                        s..s + l
                    })
            })
            .collect();
        o.prefetch(ranges).map_err(object::to_parquet)
    }

    /// A reader builder over the partition (footer decoded now).
    pub fn reader(&self) -> Result<ParquetRecordBatchReaderBuilder<Source>, ParquetError> {
        ParquetRecordBatchReaderBuilder::try_new(self.source.clone())
    }

    /// A reader builder with a footer already decoded by [`Partition::metadata`]: several
    /// passes over one partition decode its footer once.
    pub fn reader_with(
        &self,
        meta: ArrowReaderMetadata,
    ) -> ParquetRecordBatchReaderBuilder<Source> {
        ParquetRecordBatchReaderBuilder::new_with_metadata(self.source.clone(), meta)
    }
}

/// The bytes of an opened partition, served by range (Parquet's [`ChunkReader`]): a local
/// file, or an object's ranged GETs in a lake.
#[derive(Debug, Clone)]
pub enum Source {
    Local(Arc<File>),
    Remote(RemoteObject),
}

impl Length for Source {
    fn len(&self) -> u64 {
        match self {
            Source::Local(f) => f.as_ref().len(),
            Source::Remote(o) => o.len(),
        }
    }
}

impl ChunkReader for Source {
    type T = Box<dyn io::Read + Send>;

    fn get_read(&self, start: u64) -> parquet::errors::Result<Self::T> {
        Ok(match self {
            Source::Local(f) => Box::new(f.as_ref().get_read(start)?),
            Source::Remote(o) => Box::new(o.read_from(start).map_err(object::to_parquet)?),
        })
    }

    fn get_bytes(&self, start: u64, length: usize) -> parquet::errors::Result<Bytes> {
        match self {
            Source::Local(f) => f.as_ref().get_bytes(start, length),
            Source::Remote(o) => o.bytes(start, length).map_err(object::to_parquet),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_date_named_parquet_files_are_partitions() {
        let dir = tempfile::tempdir().unwrap();
        let a = Archive::local(dir.path());
        a.create().unwrap();
        let p = a.prefix(Kind::Processed);
        for name in [
            "2026-11-25.parquet",
            "2026-11-24.parquet",
            "2026-11-23.parquet.corrupt-20261125T000000Z",
            ".2026-11-22.parquet.tmp-1-0",
            "notes.txt",
            "2026-13-01.parquet",
        ] {
            std::fs::write(p.join(name), b"").unwrap();
        }
        std::fs::create_dir(p.join("2026-11-20.parquet")).unwrap();
        let dates: Vec<String> = a
            .dates(Kind::Processed)
            .unwrap()
            .iter()
            .map(|d| d.to_string())
            .collect();
        assert_eq!(dates, ["2026-11-20", "2026-11-24", "2026-11-25"]);
        // The listing counts regular files only, and names the moved-aside one.
        let l = a.listing(Kind::Processed).unwrap();
        let listed: Vec<String> = l.partitions.iter().map(|(d, _)| d.to_string()).collect();
        assert_eq!(listed, ["2026-11-24", "2026-11-25"]);
        assert_eq!(
            l.corrupt,
            [p.join("2026-11-23.parquet.corrupt-20261125T000000Z")]
        );
    }

    #[test]
    fn open_refuses_what_is_not_a_regular_file_and_misses_quietly() {
        let dir = tempfile::tempdir().unwrap();
        let a = Archive::local(dir.path());
        a.create().unwrap();
        let d = NaiveDate::from_ymd_opt(2026, 11, 25).unwrap();
        assert!(a.open(Kind::Processed, d).unwrap().is_none());
        std::fs::create_dir(a.name(Kind::Processed, d)).unwrap();
        match a.open(Kind::Processed, d) {
            Err(OpenError::NotAFile { kind, .. }) => assert_eq!(kind, "directory"),
            other => panic!("expected NotAFile, got {other:?}"),
        }
    }

    #[test]
    fn a_committed_partition_reads_back_through_its_source() {
        let dir = tempfile::tempdir().unwrap();
        let a = Archive::local(dir.path());
        a.create().unwrap();
        let d = NaiveDate::from_ymd_opt(2026, 11, 25).unwrap();
        let jobs = vec![ProcessedJob {
            job_id: "7".into(),
            ..Default::default()
        }];
        a.write_processed(d, &jobs, &pq::tests::meta()).unwrap();
        let part = a.open(Kind::Processed, d).unwrap().unwrap();
        let meta = part.metadata(ArrowReaderOptions::new()).unwrap();
        assert_eq!(meta.metadata().file_metadata().num_rows(), 1);
        let rows: usize = part
            .reader_with(meta)
            .build()
            .unwrap()
            .map(|b| b.unwrap().num_rows())
            .sum();
        assert_eq!(rows, 1);
        assert_eq!(part.name(), a.name(Kind::Processed, d));
    }

    #[test]
    fn probe_writable_finds_the_nearest_existing_parent() {
        let dir = tempfile::tempdir().unwrap();
        let a = Archive::local(dir.path().join("not/yet"));
        let w = a.probe_writable().unwrap();
        assert!(w.missing);
        assert_eq!(w.probed, dir.path());
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            0,
            "probe removed"
        );
    }
}
