//! The lease: one writer per cluster prefix of a lake.
//!
//! Two head nodes configured with the same cluster name would overwrite each other's
//! partitions. Each upload round first takes (or renews) a lease object,
//! `<prefix>/_slurm_usage/lease/cluster=<c>.json`, that names its holder (host and data
//! dir) and when it expires:
//! - no lease yet: created with a conditional PUT (`If-None-Match: *`), so of two writers
//!   starting at once exactly one creates it;
//! - our own lease, or an expired one: replaced with a conditional PUT on the ETag read
//!   (`If-Match`), so a takeover races cleanly too;
//! - someone else's that has not expired: refused, naming the holder and the expiry.
//!
//! A `file://` lake has no `If-Match`: there the replacement is a plain overwrite after the
//! same checks (a shared filesystem with two writers racing within milliseconds is the one
//! case it does not settle). The `_slurm_usage` prefix starts with `_`, which Spark,
//! pyarrow and Polars skip when they read the lake.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use object_store::path::Path as ObjPath;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, UpdateVersion};
use serde::{Deserialize, Serialize};

/// Who holds a lease: the identity that may renew it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    /// `<host>:<data dir>`: stable across restarts of the same daemon, different for a
    /// second data dir or a second host.
    pub id: String,
}

impl Holder {
    /// This process, writing from `data_dir`.
    pub fn this(data_dir: &std::path::Path) -> Holder {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .ok()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "unknown-host".to_string());
        let dir = std::fs::canonicalize(data_dir).unwrap_or_else(|_| data_dir.to_path_buf());
        Holder {
            id: format!("{host}:{}", dir.display()),
        }
    }
}

/// The lease object's content.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LeaseDoc {
    pub holder: String,
    pub pid: u32,
    /// RFC 3339, UTC.
    pub renewed: String,
    pub expires: String,
    pub expires_unix: i64,
}

/// Why the lease could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    #[error(
        "cluster {cluster} of lake {url} is held by {holder} until {expires}; one writer per \
         cluster (hint: give this head node its own [lake] cluster, or stop the other writer \
         and wait for its lease to expire)"
    )]
    Held {
        url: String,
        cluster: String,
        holder: String,
        expires: String,
    },
    #[error("lease {url}: {source}")]
    Store {
        url: String,
        key: String,
        #[source]
        source: object_store::Error,
    },
    #[error("lease {url}: changed by another writer while taking it, three times")]
    Contended { url: String, key: String },
}

/// The lease object's key for `cluster`.
pub fn lease_key(prefix: &ObjPath, cluster: &str) -> ObjPath {
    prefix
        .clone()
        .join("_slurm_usage")
        .join("lease")
        .join(format!("cluster={cluster}.json"))
}

/// Reads the lease of `cluster`, if any (for `lake status`).
pub async fn read(
    store: &Arc<dyn ObjectStore>,
    prefix: &ObjPath,
    url: &str,
    cluster: &str,
) -> Result<Option<LeaseDoc>, LeaseError> {
    let key = lease_key(prefix, cluster);
    Ok(get(store, &key, url).await?.map(|(doc, _)| doc))
}

async fn get(
    store: &Arc<dyn ObjectStore>,
    key: &ObjPath,
    url: &str,
) -> Result<Option<(LeaseDoc, UpdateVersion)>, LeaseError> {
    let err = |source| LeaseError::Store {
        url: url.to_string(),
        key: key.to_string(),
        source,
    };
    let got = match store.get(key).await {
        Ok(g) => g,
        Err(object_store::Error::NotFound { .. }) => return Ok(None),
        Err(e) => return Err(err(e)),
    };
    let version = UpdateVersion {
        e_tag: got.meta.e_tag.clone(),
        version: got.meta.version.clone(),
    };
    let bytes = got.bytes().await.map_err(err)?;
    // An unreadable lease is treated as expired: it holds nobody.
    let doc = serde_json::from_slice(&bytes).unwrap_or(LeaseDoc {
        holder: "(unreadable lease)".to_string(),
        pid: 0,
        renewed: String::new(),
        expires: String::new(),
        expires_unix: 0,
    });
    Ok(Some((doc, version)))
}

/// Takes or renews the lease of `cluster` for `me` until `now + ttl`.
pub async fn acquire(
    store: &Arc<dyn ObjectStore>,
    prefix: &ObjPath,
    url: &str,
    cluster: &str,
    me: &Holder,
    ttl: Duration,
    now: DateTime<Utc>,
) -> Result<LeaseDoc, LeaseError> {
    let key = lease_key(prefix, cluster);
    let expires = now + chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::hours(6));
    let doc = LeaseDoc {
        holder: me.id.clone(),
        pid: std::process::id(),
        renewed: now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        expires: expires.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        expires_unix: expires.timestamp(),
    };
    let body = serde_json::to_vec_pretty(&doc).expect("a lease serializes");
    let err = |source| LeaseError::Store {
        url: url.to_string(),
        key: key.to_string(),
        source,
    };
    for _ in 0..3 {
        let mode = match get(store, &key, url).await? {
            None => PutMode::Create,
            Some((held, version)) => {
                if held.holder != me.id && held.expires_unix > now.timestamp() {
                    return Err(LeaseError::Held {
                        url: url.to_string(),
                        cluster: cluster.to_string(),
                        holder: held.holder,
                        expires: held.expires,
                    });
                }
                PutMode::Update(version)
            }
        };
        let opts = PutOptions {
            mode: mode.clone(),
            ..PutOptions::default()
        };
        match store.put_opts(&key, body.clone().into(), opts).await {
            Ok(_) => return Ok(doc),
            Err(
                object_store::Error::AlreadyExists { .. }
                | object_store::Error::Precondition { .. },
            ) => continue,
            Err(object_store::Error::NotImplemented { .. })
                if matches!(mode, PutMode::Update(_)) =>
            {
                // A file:// lake: no If-Match; the checks above are all there is.
                store
                    .put_opts(&key, body.clone().into(), PutOptions::default())
                    .await
                    .map_err(err)?;
                return Ok(doc);
            }
            Err(e) => return Err(err(e)),
        }
    }
    Err(LeaseError::Contended {
        url: url.to_string(),
        key: key.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::local::LocalFileSystem;

    fn store(dir: &std::path::Path) -> Arc<dyn ObjectStore> {
        Arc::new(LocalFileSystem::new_with_prefix(dir).unwrap())
    }

    #[tokio::test]
    async fn one_holder_at_a_time_until_the_lease_expires() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path());
        let p = ObjPath::from("lake");
        let a = Holder { id: "a:/x".into() };
        let b = Holder { id: "b:/y".into() };
        let ttl = Duration::from_secs(3600);
        let t0 = Utc::now();
        acquire(&s, &p, "file:///l", "hpc", &a, ttl, t0)
            .await
            .unwrap();
        // a renews; b is refused, named holder and all.
        acquire(&s, &p, "file:///l", "hpc", &a, ttl, t0)
            .await
            .unwrap();
        let e = acquire(&s, &p, "file:///l", "hpc", &b, ttl, t0)
            .await
            .unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("held by a:/x"), "{msg}");
        // Another cluster is free.
        acquire(&s, &p, "file:///l", "gpu", &b, ttl, t0)
            .await
            .unwrap();
        // After expiry b takes it over, and then a is refused.
        let later = t0 + chrono::Duration::hours(2);
        acquire(&s, &p, "file:///l", "hpc", &b, ttl, later)
            .await
            .unwrap();
        let doc = read(&s, &p, "file:///l", "hpc").await.unwrap().unwrap();
        assert_eq!(doc.holder, "b:/y");
        assert!(acquire(&s, &p, "file:///l", "hpc", &a, ttl, later)
            .await
            .is_err());
    }
}
