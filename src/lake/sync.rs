//! One upload round: every local partition not yet in the lake as it is now goes up whole
//! (a single PUT: S3 and its clones make the object visible whole or not at all, and no
//! multipart upload is ever started, so none is left behind by a crash), the record of
//! what went up is saved as it goes, and whatever did not go up stays pending for the
//! next round.
//!
//! The round never touches the local partitions, and a failure ends the round, not the
//! caller: collect and the daemon report it and go on; the next round retries.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use chrono::{NaiveDate, Utc};
use futures::{StreamExt, TryStreamExt};
use md5::{Digest, Md5};
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

use super::lease::{self, Holder};
use super::privacy::Transform;
use super::state::{key, LakeState, Uploaded, KINDS};
use super::Lake;
use crate::store::object::{cluster_prefix, date_of_key, partition_key};
use crate::store::{Archive, Kind};

/// Uploads at once: enough to fill a link with 10-50 MB objects, few enough not to crowd
/// the head node.
const UPLOADS_AT_ONCE: usize = 4;
/// A single PUT takes up to 5 GiB on S3; a partition is tens of MB.
const MAX_OBJECT: u64 = 5 << 30;
/// How often the record is saved during a long round (and always at its end).
const SAVE_EVERY: Duration = Duration::from_secs(2);

/// How a round runs.
#[derive(Debug, Clone, Copy, Default)]
pub struct SyncOptions {
    /// Report what would be uploaded; upload nothing, take no lease, save nothing.
    pub dry_run: bool,
    /// Also list the lake and upload what is missing or differs there, not only what
    /// changed locally (`lake sync`; the cycles trust the record).
    pub verify: bool,
    /// Show a progress bar (a terminal).
    pub progress: bool,
    /// Upload everything again, under the pseudonym key as it is now (`lake sync
    /// --rewrite`: the explicit step after changing the key).
    pub rewrite: bool,
}

/// What a round did.
#[derive(Debug, Default, Clone)]
pub struct SyncReport {
    pub url: String,
    pub cluster: String,
    /// Partitions uploaded, and their bytes.
    pub uploaded: usize,
    pub uploaded_bytes: u64,
    /// Partitions found current in the lake without an upload (same bytes).
    pub current: usize,
    /// Partitions still to upload after the round (for a dry run: what would be).
    pub pending: Vec<(Kind, NaiveDate)>,
    /// Why the round stopped early, if it did.
    pub error: Option<String>,
    /// Unix seconds of the last completed upload (this round or an earlier one).
    pub last_upload: Option<i64>,
    pub seconds: f64,
}

impl SyncReport {
    /// One line for a summary or a log.
    pub fn line(&self) -> String {
        let mut s = format!("lake: {}", self.url);
        if !self.cluster.is_empty() {
            s.push_str(&format!(" (cluster {})", self.cluster));
        }
        s.push_str(&format!(
            ": {} uploaded ({:.1} MB)",
            self.uploaded,
            self.uploaded_bytes as f64 / 1e6
        ));
        if self.current > 0 {
            s.push_str(&format!(", {} already current", self.current));
        }
        s.push_str(&format!(", {} pending", self.pending.len()));
        if let Some(e) = &self.error {
            s.push_str(&format!(" ({e})"));
        }
        s
    }
}

/// The lake's objects of one cluster: (kind, date) -> (size, ETag).
type Listed = HashMap<(Kind, NaiveDate), (u64, Option<String>)>;

/// One upload round from `archive` to `lake`.
pub async fn sync(lake: &Lake, archive: &Archive, opts: SyncOptions) -> SyncReport {
    let t0 = Instant::now();
    let mut report = SyncReport {
        url: lake.url.text.clone(),
        ..SyncReport::default()
    };
    if let Err(e) = round(lake, archive, opts, &mut report).await {
        report.error = Some(e);
    }
    report.seconds = t0.elapsed().as_secs_f64();
    report
}

async fn round(
    lake: &Lake,
    archive: &Archive,
    opts: SyncOptions,
    report: &mut SyncReport,
) -> Result<(), String> {
    if !archive.exists() {
        return Ok(());
    }
    let _lock = if opts.dry_run {
        None
    } else {
        Some(archive.try_lock_lake().map_err(|e| e.to_string())?)
    };
    let cluster = lake.cluster(archive)?;
    report.cluster = cluster.clone();
    let mut state = LakeState::load(archive, &lake.url.text, &cluster, &lake.settings());
    report.last_upload = state.last_upload;
    if opts.rewrite && !opts.dry_run {
        state.uploaded.clear();
    }
    let mut todo = state
        .pending(archive)
        .map_err(|e| format!("cannot list {}: {e}", archive.location().display()))?;
    report.pending = todo.clone();
    let listed = if opts.verify {
        Some(list(lake, &cluster).await?)
    } else {
        None
    };
    if let Some(listed) = &listed {
        // Also what the lake lacks or holds in another version than recorded.
        for kind in KINDS {
            for (date, fp) in archive.fingerprints(kind).map_err(|e| e.to_string())? {
                if todo.contains(&(kind, date)) {
                    continue;
                }
                let recorded = state.uploaded.get(&key(kind, date));
                let ok = match (listed.get(&(kind, date)), recorded) {
                    (Some((size, etag)), Some(u)) => {
                        *size == u.sent.unwrap_or(fp.size) && (u.etag.is_none() || etag == &u.etag)
                    }
                    _ => false,
                };
                if !ok {
                    todo.push((kind, date));
                }
            }
        }
        todo.sort_by_key(|(k, d)| (*d, *k == Kind::Processed));
        report.pending = todo.clone();
    }
    if opts.dry_run || todo.is_empty() {
        return Ok(());
    }
    // The key is read (or made) only when something is to go up, and before anything does.
    let transform = Arc::new(
        lake.transform(state.key_id.as_deref(), opts.rewrite, true)
            .map_err(|e| e.to_string())?,
    );
    if let Some(k) = &transform.key {
        state.key_id = Some(k.id.clone());
    }
    let holder = Holder::this(archive.location());
    lease::acquire(
        &lake.store,
        &lake.url.prefix,
        &lake.url.text,
        &cluster,
        &holder,
        lake.ttl,
        Utc::now(),
    )
    .await
    .map_err(|e| e.to_string())?;

    let bar = opts.progress.then(|| {
        let b = indicatif::ProgressBar::new(todo.len() as u64);
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "lake {bar:30} {pos}/{len} partitions {elapsed}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        b
    });
    let mut done: Vec<(Kind, NaiveDate)> = Vec::new();
    let mut last_save = Instant::now();
    let work: Vec<_> = todo
        .iter()
        .map(|&(kind, date)| {
            let previous = state.uploaded.get(&key(kind, date)).cloned();
            let in_lake = listed.as_ref().map(|l| l.get(&(kind, date)).cloned());
            (kind, date, previous, in_lake)
        })
        .collect();
    let mut uploads = futures::stream::iter(work)
        .map(|(kind, date, previous, in_lake)| {
            upload_one(
                lake,
                archive,
                &transform,
                &cluster,
                (kind, date),
                previous,
                in_lake,
            )
        })
        .buffer_unordered(UPLOADS_AT_ONCE);
    let mut failure = None;
    while let Some(r) = uploads.next().await {
        match r {
            Ok((kind, date, outcome)) => {
                done.push((kind, date));
                match outcome {
                    Outcome::Gone => {
                        state.uploaded.remove(&key(kind, date));
                    }
                    Outcome::Current(u) => {
                        report.current += 1;
                        state.uploaded.insert(key(kind, date), u);
                    }
                    Outcome::Put(u, bytes) => {
                        report.uploaded += 1;
                        report.uploaded_bytes += bytes;
                        state.last_upload = Some(u.at);
                        state.uploaded.insert(key(kind, date), u);
                    }
                }
                if let Some(b) = &bar {
                    b.inc(1);
                }
                if last_save.elapsed() >= SAVE_EVERY {
                    save(&state, archive)?;
                    last_save = Instant::now();
                }
            }
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
    }
    drop(uploads);
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    save(&state, archive)?;
    report.last_upload = state.last_upload;
    report.pending = todo.into_iter().filter(|p| !done.contains(p)).collect();
    match failure {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

fn save(state: &LakeState, archive: &Archive) -> Result<(), String> {
    state
        .save(archive)
        .map_err(|e| format!("cannot save {}: {e}", archive.lake_state_name().display()))
}

/// What became of one partition.
enum Outcome {
    /// Uploaded now: the record, and the bytes sent.
    Put(Uploaded, u64),
    /// The lake already holds these bytes.
    Current(Uploaded),
    /// The local partition is gone (moved aside as corrupt since it was listed).
    Gone,
}

/// Reads one local partition, makes its lake copy (rewritten when the settings drop or
/// pseudonymise something) and uploads it unless the lake already holds those bytes.
async fn upload_one(
    lake: &Lake,
    archive: &Archive,
    transform: &Arc<Transform>,
    cluster: &str,
    (kind, date): (Kind, NaiveDate),
    previous: Option<Uploaded>,
    in_lake: Option<Option<(u64, Option<String>)>>,
) -> Result<(Kind, NaiveDate, Outcome), String> {
    let (a, t) = (archive.clone(), Arc::clone(transform));
    let read = tokio::task::spawn_blocking(move || -> Result<_, String> {
        let name = a.name(kind, date).display().to_string();
        let Some((local, fp)) = a
            .read_partition(kind, date)
            .map_err(|e| format!("cannot read {name}: {e}"))?
        else {
            return Ok(None);
        };
        let bytes = t.apply(kind, local, &name).map_err(|e| e.to_string())?;
        let md5 = hex(&Md5::digest(&bytes));
        Ok(Some((bytes, fp, md5)))
    })
    .await
    .map_err(|e| e.to_string())??;
    let Some((bytes, fp, md5)) = read else {
        return Ok((kind, date, Outcome::Gone));
    };
    let sent = bytes.len() as u64;
    let now = Utc::now().timestamp();
    let lake_etag = |l: &Option<(u64, Option<String>)>| {
        l.as_ref()
            .filter(|(size, _)| *size == sent)
            .and_then(|(_, e)| e.as_deref().map(|e| e.trim_matches('"').to_string()))
    };
    // Same bytes as recorded, and the lake (when listed) still holds that version.
    if let Some(p) = &previous {
        let lake_ok = match &in_lake {
            None => true,
            Some(l) => l
                .as_ref()
                .is_some_and(|(size, etag)| *size == sent && (p.etag.is_none() || *etag == p.etag)),
        };
        if p.md5 == md5 && lake_ok {
            return Ok((
                kind,
                date,
                Outcome::Current(Uploaded {
                    local: fp,
                    ..p.clone()
                }),
            ));
        }
    }
    // No record, but the lake holds an object whose ETag is these bytes' MD5 (a backfill
    // after the record was lost): nothing to send.
    if let Some(l) = &in_lake {
        if lake_etag(l).as_deref() == Some(md5.as_str()) {
            let etag = l.as_ref().and_then(|(_, e)| e.clone());
            return Ok((
                kind,
                date,
                Outcome::Current(Uploaded {
                    local: fp,
                    sent: Some(sent),
                    md5,
                    etag,
                    at: now,
                }),
            ));
        }
    }
    let size = bytes.len() as u64;
    if size > MAX_OBJECT {
        return Err(format!(
            "{} is {size} bytes, more than a single PUT takes (5 GiB)",
            archive.name(kind, date).display()
        ));
    }
    let object = partition_key(&lake.url.prefix, kind, cluster, date);
    let put = lake
        .store
        .put(&object, PutPayload::from_bytes(Bytes::clone(&bytes)))
        .await
        .map_err(|e| format!("cannot upload {}: {e}", lake.url.object_url(&object)))?;
    Ok((
        kind,
        date,
        Outcome::Put(
            Uploaded {
                local: fp,
                sent: Some(sent),
                md5,
                etag: put.e_tag,
                at: Utc::now().timestamp(),
            },
            size,
        ),
    ))
}

/// Lists the lake's partitions of `cluster`, both kinds.
async fn list(lake: &Lake, cluster: &str) -> Result<Listed, String> {
    let mut out = Listed::new();
    for kind in KINDS {
        let under = cluster_prefix(&lake.url.prefix, kind, cluster);
        let store: &Arc<dyn ObjectStore> = &lake.store;
        let metas: Vec<_> = store
            .list(Some(&under))
            .try_collect()
            .await
            .map_err(|e| format!("cannot list {}: {e}", lake.url.object_url(&under)))?;
        let base = format!("{under}/");
        for m in metas {
            if let Some(date) = m
                .location
                .as_ref()
                .strip_prefix(&base)
                .and_then(date_of_key)
            {
                out.insert((kind, date), (m.size, m.e_tag.clone()));
            }
        }
    }
    Ok(out)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
