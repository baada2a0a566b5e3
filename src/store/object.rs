//! The archive of one cluster in a lake (object storage, or a `file://` directory laid out
//! the same way), read through [`object_store`]: listing by prefix, and partitions served
//! to the Parquet reader by ranged GETs.
//!
//! The lake's layout is Hive style, one `date=` partition per cluster and day:
//! ```text
//! <prefix>/processed/cluster=<c>/date=<YYYY-MM-DD>/part-0.parquet
//! <prefix>/raw/cluster=<c>/date=<YYYY-MM-DD>/part-0.parquet
//! ```
//! The bytes are the local partition's, so a lake partition has the local schema and rows.
//!
//! Reading a partition costs one GET for its tail (footer and page index, usually all of
//! it is in the last 64 KiB) and one GET per column chunk the reader asks for: the chunk is
//! fetched whole the first time any byte of it is read and kept while the partition is
//! open, so the reader's many small reads (page headers, then page bodies) are served from
//! memory. A report that reads 20 of 60 columns downloads about a third of the bytes.
//!
//! The reports read synchronously from plain threads; object storage is async. A
//! [`Remote`] owns a small tokio runtime and waits for each request on it with
//! `futures::executor::block_on`, which works from any thread, also one inside another
//! runtime's context.

use std::collections::{BTreeMap, HashMap};
use std::io::{self, Read};
use std::ops::Range;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use bytes::{Buf, Bytes};
use chrono::NaiveDate;
use futures::TryStreamExt;
use object_store::path::Path as ObjPath;
use object_store::{ObjectStore, ObjectStoreExt};
use parquet::errors::ParquetError;
use parquet::file::metadata::ParquetMetaDataReader;

use super::Kind;

/// Bytes fetched from the end of a partition when it is opened: the footer of a
/// 100,000-job day is about 20 KiB.
const TAIL: u64 = 64 * 1024;

/// The object key of `date`'s partition of `kind` for `cluster` under `prefix`.
pub fn partition_key(prefix: &ObjPath, kind: Kind, cluster: &str, date: NaiveDate) -> ObjPath {
    cluster_prefix(prefix, kind, cluster)
        .join(format!("date={date}"))
        .join("part-0.parquet")
}

/// `<prefix>/<kind>/cluster=<c>`.
pub fn cluster_prefix(prefix: &ObjPath, kind: Kind, cluster: &str) -> ObjPath {
    prefix
        .clone()
        .join(kind.dir())
        .join(format!("cluster={cluster}"))
}

/// The date of a key below a cluster prefix, `date=YYYY-MM-DD/part-0.parquet`; other names
/// (an engine's `_SUCCESS`, a stray file) are not partitions.
pub fn date_of_key(rest: &str) -> Option<NaiveDate> {
    let d = rest
        .strip_prefix("date=")?
        .strip_suffix("/part-0.parquet")?;
    NaiveDate::parse_from_str(d, "%Y-%m-%d").ok()
}

/// Why a lake request failed, naming the object or prefix.
#[derive(Debug, thiserror::Error)]
#[error("{what} {url}: {source}")]
pub struct RemoteError {
    pub what: &'static str,
    pub url: String,
    #[source]
    pub source: object_store::Error,
}

impl From<RemoteError> for io::Error {
    fn from(e: RemoteError) -> io::Error {
        io::Error::other(e)
    }
}

/// One cluster's partitions in a lake, for reading.
pub struct Remote {
    store: Arc<dyn ObjectStore>,
    prefix: ObjPath,
    cluster: String,
    /// `s3://bucket/prefix` as the user wrote it, for messages.
    url: String,
    runtime: tokio::runtime::Runtime,
    /// Sizes from the last listing, so opening a listed partition needs no HEAD.
    sizes: Mutex<HashMap<(&'static str, NaiveDate), u64>>,
}

impl std::fmt::Debug for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Remote({}, cluster={})", self.url, self.cluster)
    }
}

impl Remote {
    /// A reader of `cluster`'s partitions under `prefix` of `store` (`url` is for messages).
    pub fn new(
        store: Arc<dyn ObjectStore>,
        prefix: ObjPath,
        url: String,
        cluster: String,
    ) -> io::Result<Remote> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("lake-read")
            .enable_all()
            .build()?;
        Ok(Remote {
            store,
            prefix,
            cluster,
            url,
            runtime,
            sizes: Mutex::new(HashMap::new()),
        })
    }

    /// The cluster this reader serves.
    pub fn cluster(&self) -> &str {
        &self.cluster
    }

    /// The name of a prefix, for messages: `s3://bucket/prefix/processed/cluster=c`.
    pub fn prefix_name(&self, kind: Kind) -> PathBuf {
        PathBuf::from(format!(
            "{}/{}/cluster={}",
            self.url.trim_end_matches('/'),
            kind.dir(),
            self.cluster
        ))
    }

    /// The name of a partition, for messages.
    pub fn name(&self, kind: Kind, date: NaiveDate) -> PathBuf {
        self.prefix_name(kind)
            .join(format!("date={date}"))
            .join("part-0.parquet")
    }

    /// Runs `fut` on this reader's runtime and waits for it, from any thread.
    fn wait<T: Send + 'static>(
        &self,
        fut: impl std::future::Future<Output = T> + Send + 'static,
    ) -> io::Result<T> {
        futures::executor::block_on(self.runtime.spawn(fut)).map_err(io::Error::other)
    }

    /// The dates with a partition of `kind`, sorted, with their sizes.
    pub fn listing(&self, kind: Kind) -> io::Result<Vec<(NaiveDate, u64)>> {
        let under = cluster_prefix(&self.prefix, kind, &self.cluster);
        let store = Arc::clone(&self.store);
        let list_prefix = under.clone();
        let metas =
            self.wait(async move { store.list(Some(&list_prefix)).try_collect::<Vec<_>>().await })?;
        let metas = metas.map_err(|source| RemoteError {
            what: "cannot list",
            url: self.prefix_name(kind).display().to_string(),
            source,
        })?;
        let base = format!("{under}/");
        let mut out: Vec<(NaiveDate, u64)> = metas
            .iter()
            .filter_map(|m| {
                let rest = m.location.as_ref().strip_prefix(&base)?;
                Some((date_of_key(rest)?, m.size))
            })
            .collect();
        out.sort();
        if let Ok(mut sizes) = self.sizes.lock() {
            for (d, s) in &out {
                sizes.insert((kind.dir(), *d), *s);
            }
        }
        Ok(out)
    }

    /// Opens `date`'s partition of `kind`: fetches its tail and decodes the footer, to know
    /// where its column chunks are. `Ok(None)` when there is none.
    pub fn open(self: &Arc<Self>, kind: Kind, date: NaiveDate) -> io::Result<Option<RemoteObject>> {
        let key = partition_key(&self.prefix, kind, &self.cluster, date);
        let known = self
            .sizes
            .lock()
            .ok()
            .and_then(|s| s.get(&(kind.dir(), date)).copied());
        let size = match known {
            Some(s) => s,
            None => {
                let store = Arc::clone(&self.store);
                let k = key.clone();
                match self.wait(async move { store.head(&k).await })? {
                    Ok(m) => m.size,
                    Err(object_store::Error::NotFound { .. }) => return Ok(None),
                    Err(source) => {
                        return Err(RemoteError {
                            what: "cannot read",
                            url: self.name(kind, date).display().to_string(),
                            source,
                        }
                        .into())
                    }
                }
            }
        };
        let object = RemoteObject {
            remote: Arc::clone(self),
            name: self.name(kind, date),
            key,
            size,
            cache: Arc::new(Mutex::new(Cache::default())),
        };
        match object.load_tail() {
            Ok(()) => Ok(Some(object)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// What an open partition has fetched so far.
#[derive(Default)]
struct Cache {
    /// The last bytes of the object, from `tail_start`.
    tail_start: u64,
    tail: Bytes,
    /// Every column chunk's byte range, from the footer, sorted by start.
    chunks: Vec<Range<u64>>,
    /// Fetched column chunks by start offset.
    fetched: BTreeMap<u64, Bytes>,
}

/// One partition in a lake, read by range. Cheap to clone (the cache is shared).
#[derive(Clone)]
pub struct RemoteObject {
    remote: Arc<Remote>,
    name: PathBuf,
    key: ObjPath,
    size: u64,
    cache: Arc<Mutex<Cache>>,
}

impl std::fmt::Debug for RemoteObject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RemoteObject({})", self.name.display())
    }
}

impl RemoteObject {
    /// The object's size in bytes.
    pub fn len(&self) -> u64 {
        self.size
    }

    /// Whether the object is empty (never a valid partition).
    pub fn is_empty(&self) -> bool {
        self.size == 0
    }

    fn get(&self, range: Range<u64>) -> io::Result<Bytes> {
        let store = Arc::clone(&self.remote.store);
        let key = self.key.clone();
        let r = range.clone();
        self.remote
            .wait(async move { store.get_range(&key, r).await })?
            .map_err(|source| {
                let e = RemoteError {
                    what: "cannot read",
                    url: self.name.display().to_string(),
                    source,
                };
                match e.source {
                    object_store::Error::NotFound { .. } => {
                        io::Error::new(io::ErrorKind::NotFound, e)
                    }
                    _ => io::Error::other(e),
                }
            })
    }

    /// Fetches the tail and learns the column chunks' ranges from the footer.
    fn load_tail(&self) -> io::Result<()> {
        let start = self.size.saturating_sub(TAIL);
        let mut tail_start = start;
        let mut tail = self.get(start..self.size)?;
        let footer = parquet_footer_len(&tail).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{} is not a Parquet file (no footer)", self.name.display()),
            )
        })?;
        let needed = footer + 8;
        if needed > tail.len() as u64 {
            if needed > self.size {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{}: footer longer than the file", self.name.display()),
                ));
            }
            tail_start = self.size - needed;
            tail = self.get(tail_start..self.size)?;
        }
        let meta_bytes = tail.slice(tail.len() - needed as usize..tail.len() - 8);
        let meta = ParquetMetaDataReader::decode_metadata(&meta_bytes).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}: {e}", self.name.display()),
            )
        })?;
        let mut chunks: Vec<Range<u64>> = meta
            .row_groups()
            .iter()
            .flat_map(|rg| rg.columns().iter())
            .map(|c| {
                let (s, l) = c.byte_range();
                s..s + l
            })
            .collect();
        chunks.sort_by_key(|r| r.start);
        let mut cache = self
            .cache
            .lock()
            .map_err(|_| io::Error::other("poisoned"))?;
        cache.tail_start = tail_start;
        cache.tail = tail;
        cache.chunks = chunks;
        Ok(())
    }

    /// `length` bytes from `start`, from the tail, a fetched chunk, or a new GET.
    pub fn bytes(&self, start: u64, length: usize) -> io::Result<Bytes> {
        let end = start + length as u64;
        if end > self.size {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "{}: range {start}..{end} past its end ({})",
                    self.name.display(),
                    self.size
                ),
            ));
        }
        let chunk = {
            let cache = self
                .cache
                .lock()
                .map_err(|_| io::Error::other("poisoned"))?;
            if start >= cache.tail_start && !cache.tail.is_empty() {
                let s = (start - cache.tail_start) as usize;
                return Ok(cache.tail.slice(s..s + length));
            }
            if let Some((&at, b)) = cache.fetched.range(..=start).next_back() {
                if end <= at + b.len() as u64 {
                    let s = (start - at) as usize;
                    return Ok(b.slice(s..s + length));
                }
            }
            let i = cache.chunks.partition_point(|r| r.start <= start);
            i.checked_sub(1)
                .map(|i| cache.chunks[i].clone())
                .filter(|r| end <= r.end)
        };
        let Some(chunk) = chunk else {
            return self.get(start..end);
        };
        let b = self.get(chunk.clone())?;
        let s = (start - chunk.start) as usize;
        let out = b.slice(s..s + length);
        if let Ok(mut cache) = self.cache.lock() {
            cache.fetched.insert(chunk.start, b);
        }
        Ok(out)
    }

    /// Fetches these column chunks now, in as few requests as object_store's coalescing
    /// makes of them (neighbours less than 1 MiB apart share one GET), and keeps them.
    pub fn prefetch(&self, mut ranges: Vec<Range<u64>>) -> io::Result<()> {
        {
            let cache = self
                .cache
                .lock()
                .map_err(|_| io::Error::other("poisoned"))?;
            ranges.retain(|r| !cache.fetched.contains_key(&r.start) && r.start < cache.tail_start);
        }
        if ranges.is_empty() {
            return Ok(());
        }
        let store = Arc::clone(&self.remote.store);
        let key = self.key.clone();
        let asked = ranges.clone();
        let got = self
            .remote
            .wait(async move { store.get_ranges(&key, &asked).await })?
            .map_err(|source| {
                io::Error::other(RemoteError {
                    what: "cannot read",
                    url: self.name.display().to_string(),
                    source,
                })
            })?;
        let mut cache = self
            .cache
            .lock()
            .map_err(|_| io::Error::other("poisoned"))?;
        for (r, b) in ranges.into_iter().zip(got) {
            cache.fetched.insert(r.start, b);
        }
        Ok(())
    }

    /// A reader from `start` to the end of the column chunk holding it (or of the object).
    pub fn read_from(&self, start: u64) -> io::Result<impl Read + Send> {
        let end = {
            let cache = self
                .cache
                .lock()
                .map_err(|_| io::Error::other("poisoned"))?;
            let i = cache.chunks.partition_point(|r| r.start <= start);
            i.checked_sub(1)
                .map(|i| cache.chunks[i].end)
                .filter(|&e| e > start)
                .unwrap_or(self.size)
        };
        Ok(self.bytes(start, (end - start) as usize)?.reader())
    }
}

/// The footer length a Parquet file's last 8 bytes give (`<len u32 le>PAR1`).
fn parquet_footer_len(tail: &[u8]) -> Option<u64> {
    let n = tail.len();
    if n < 8 || &tail[n - 4..] != b"PAR1" {
        return None;
    }
    let len = u32::from_le_bytes(tail[n - 8..n - 4].try_into().ok()?);
    Some(u64::from(len))
}

/// Maps a lake read error into the Parquet reader's error type.
pub fn to_parquet(e: io::Error) -> ParquetError {
    ParquetError::External(Box::new(e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_hive_style() {
        let d = NaiveDate::from_ymd_opt(2026, 12, 1).unwrap();
        let k = partition_key(&ObjPath::from("lake/x"), Kind::Processed, "hpc", d);
        assert_eq!(
            k.as_ref(),
            "lake/x/processed/cluster=hpc/date=2026-12-01/part-0.parquet"
        );
        assert_eq!(date_of_key("date=2026-12-01/part-0.parquet"), Some(d));
        assert_eq!(date_of_key("date=2026-12-01/part-1.parquet"), None);
        assert_eq!(date_of_key("_SUCCESS"), None);
    }

    #[test]
    fn footer_length_needs_the_magic() {
        assert_eq!(parquet_footer_len(b"xxxx\x10\x00\x00\x00PAR1"), Some(16));
        assert_eq!(parquet_footer_len(b"xxxx\x10\x00\x00\x00PAR2"), None);
        assert_eq!(parquet_footer_len(b"PAR1"), None);
    }
}
