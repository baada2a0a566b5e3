//! The lake: a copy of every partition in S3-compatible object storage (or a `file://`
//! directory on a shared filesystem), laid out Hive style for Spark, Polars, DuckDB and
//! pyarrow, one `cluster=` directory per cluster. `docs/lake.md` is the admin's guide.
//!
//! The local data dir stays the source of truth and is written exactly as without a lake.
//! After a cycle commits, [`sync()`] uploads what changed; a failed or slow upload is
//! reported and retried by the next round, never fails the collection. The pieces:
//! - [`url`]: the URL, and the store it names (credentials from the AWS environment);
//! - [`state`]: what this data dir has uploaded, and so what is pending;
//! - [`lease`]: one writer per cluster prefix;
//! - [`mod@sync`]: an upload round;
//! - reading a lake is the store's job ([`crate::store::object`]); [`archives`] opens one
//!   read-only [`Archive`] per cluster for the reports.

pub mod command;
pub mod lease;
pub mod privacy;
pub mod state;
pub mod sync;
pub mod url;

use std::sync::Arc;
use std::time::Duration;

use arrow_array::Array;
use object_store::path::Path as ObjPath;
use object_store::ObjectStore;

use crate::config::{Config, LakeConfig};
use crate::store::object::Remote;
use crate::store::{Archive, Kind};
pub use state::LakeState;
pub use sync::{sync, SyncOptions, SyncReport};
pub use url::{ConnectError, LakeUrl};

/// A lake to write to, from `[lake]`.
#[derive(Debug, Clone)]
pub struct Lake {
    pub url: LakeUrl,
    store: Arc<dyn ObjectStore>,
    ttl: Duration,
    cluster: Option<String>,
    drop_fields: Vec<String>,
    pseudonymise: Vec<String>,
    key_file: std::path::PathBuf,
}

impl Lake {
    /// Connects to the lake `[lake]` names (no request is made yet). A `file://` lake's
    /// directory is created if missing.
    pub fn open(config: &LakeConfig) -> Result<Lake, ConnectError> {
        let url = LakeUrl::parse(&config.url).map_err(|message| ConnectError::Config {
            url: config.url.clone(),
            message,
        })?;
        let store = url::connect(&url, true)?;
        Ok(Lake {
            url,
            store,
            ttl: config.lease_ttl.0,
            cluster: config.cluster.clone(),
            drop_fields: config.drop_fields.clone(),
            pseudonymise: config.pseudonymise.clone(),
            key_file: config.pseudonym_key_file.clone(),
        })
    }

    /// What the copies leave out and pseudonymise, without the key (for the record).
    pub fn settings(&self) -> String {
        privacy::Transform::new(&self.drop_fields, &self.pseudonymise, None).settings()
    }

    /// The rewrite of this lake's copies, with the pseudonym key when one is needed:
    /// read, or created when no upload used one yet (`recorded` is the key id of earlier
    /// uploads). `rewrite`: a new or missing key is accepted (everything is re-uploaded).
    pub fn transform(
        &self,
        recorded: Option<&str>,
        rewrite: bool,
        create: bool,
    ) -> Result<privacy::Transform, privacy::PrivacyError> {
        let mut t = privacy::Transform::new(&self.drop_fields, &self.pseudonymise, None);
        if !t.needs_key() {
            return Ok(t);
        }
        let path = &self.key_file;
        let key = match (privacy::Key::read(path)?, recorded) {
            (Some(k), Some(r)) if k.id != r && !rewrite => {
                return Err(privacy::PrivacyError::KeyChanged {
                    path: path.clone(),
                    found: k.id,
                    recorded: r.to_string(),
                })
            }
            (Some(k), _) => k,
            (None, Some(r)) if !rewrite => {
                return Err(privacy::PrivacyError::KeyMissing {
                    path: path.clone(),
                    key_id: r.to_string(),
                })
            }
            (None, _) if create => privacy::Key::create(path)?,
            (None, _) => {
                return Err(privacy::PrivacyError::KeyUnusable {
                    path: path.clone(),
                    message: "missing (it is created by the first upload)".to_string(),
                })
            }
        };
        t.key = Some(key);
        Ok(t)
    }

    /// The pseudonym key, for `lake whois`.
    pub fn key(&self) -> Result<privacy::Key, privacy::PrivacyError> {
        privacy::Key::read(&self.key_file)?.ok_or_else(|| privacy::PrivacyError::KeyUnusable {
            path: self.key_file.clone(),
            message: "missing".to_string(),
        })
    }

    /// The cluster this data dir uploads as: `[lake] cluster`, else the `cluster` column of
    /// the newest partitions with rows, else the one an earlier upload used.
    pub fn cluster(&self, archive: &Archive) -> Result<String, String> {
        cluster_for(self.cluster.as_deref(), archive)
    }

    /// The lease of this data dir's cluster, if any (`lake status`).
    pub async fn lease(&self, cluster: &str) -> Result<Option<lease::LeaseDoc>, lease::LeaseError> {
        lease::read(&self.store, &self.url.prefix, &self.url.text, cluster).await
    }
}

/// The cluster a data dir uploads as: the configured one, else the `cluster` column of the
/// newest partitions with rows, else the one an earlier upload used.
pub fn cluster_for(configured: Option<&str>, archive: &Archive) -> Result<String, String> {
    if let Some(c) = configured {
        return Ok(c.to_string());
    }
    if let Some(c) = cluster_of_rows(archive) {
        return Ok(c);
    }
    LakeState::remembered_cluster(archive).ok_or_else(|| {
        "no job in the archive names its cluster yet (hint: set [lake] cluster)".to_string()
    })
}

/// What this data dir has not uploaded yet, without asking the lake (for `status`, the
/// daemon's STATUS line and the Prometheus textfile).
pub fn health(cfg: &LakeConfig, archive: &Archive) -> LakeHealth {
    let url = LakeUrl::parse(&cfg.url).map_or_else(|_| cfg.url.clone(), |u| u.text);
    let cluster = cluster_for(cfg.cluster.as_deref(), archive).unwrap_or_default();
    let settings = privacy::Transform::new(&cfg.drop_fields, &cfg.pseudonymise, None).settings();
    let state = LakeState::load(archive, &url, &cluster, &settings);
    LakeHealth {
        url,
        cluster,
        pending: state.pending(archive).map(|p| p.len()).unwrap_or(0),
        last_upload: state.last_upload,
    }
}

/// What the lake commands and the daemon's lake gauges work on: with `[collect] clusters`,
/// one (config, archive) per listed cluster (only `only` when given), each uploading its
/// own `cluster=<name>/` archive under its own name; without, the data dir itself.
///
/// The top level of a data dir that also has cluster directories (collected before
/// `[collect] clusters`) is not a target: it went up under its cluster's name back then,
/// and a second archive uploading under that name would contend for the cluster's lease.
pub fn targets(config: &Config, only: Option<&str>) -> Vec<(Config, Archive)> {
    if config.collect.clusters.is_empty() {
        return vec![(config.clone(), Archive::of(config))];
    }
    config
        .collect
        .clusters
        .iter()
        .filter(|name| only.is_none_or(|o| o == name.as_str()))
        .map(|name| (for_cluster(config, name), Archive::of_cluster(config, name)))
        .collect()
}

/// `config` as one listed cluster uploads with it: `[lake] cluster` set to its name
/// (`[lake] cluster` itself is refused together with `[collect] clusters`).
pub fn for_cluster(config: &Config, name: &str) -> Config {
    let mut config = config.clone();
    if let Some(lake) = &mut config.lake {
        lake.cluster = Some(name.to_string());
    }
    config
}

/// The lake's state as seen from the data dir.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LakeHealth {
    pub url: String,
    pub cluster: String,
    pub pending: usize,
    pub last_upload: Option<i64>,
}

/// The `cluster` value of the newest processed partition that has a row.
fn cluster_of_rows(archive: &Archive) -> Option<String> {
    let dates = archive.dates(Kind::Processed).ok()?;
    for date in dates.into_iter().rev().take(30) {
        let Ok(Some(part)) = archive.open(Kind::Processed, date) else {
            continue;
        };
        let Ok(builder) = part.reader() else { continue };
        let mask = parquet::arrow::ProjectionMask::columns(builder.parquet_schema(), ["cluster"]);
        let Ok(reader) = builder.with_projection(mask).with_batch_size(1).build() else {
            continue;
        };
        for batch in reader.flatten() {
            if batch.num_rows() == 0 || batch.num_columns() == 0 {
                continue;
            }
            let col = arrow_cast::cast(batch.column(0), &arrow_schema::DataType::Utf8).ok()?;
            let s = col.as_any().downcast_ref::<arrow_array::StringArray>()?;
            if s.is_valid(0) && crate::config::valid_name(s.value(0)) {
                return Some(s.value(0).to_string());
            }
        }
    }
    None
}

/// The distinct non-empty values of `column` in `date`'s partition of `kind` (`lake whois`).
fn distinct_values(
    archive: &Archive,
    kind: Kind,
    date: chrono::NaiveDate,
    column: &str,
) -> Vec<String> {
    let mut out = std::collections::BTreeSet::new();
    let Ok(Some(part)) = archive.open(kind, date) else {
        return Vec::new();
    };
    let Ok(builder) = part.reader() else {
        return Vec::new();
    };
    let mask = parquet::arrow::ProjectionMask::columns(builder.parquet_schema(), [column]);
    let Ok(reader) = builder.with_projection(mask).build() else {
        return Vec::new();
    };
    for batch in reader.flatten() {
        if batch.num_columns() == 0 {
            continue;
        }
        let Ok(col) = arrow_cast::cast(batch.column(0), &arrow_schema::DataType::Utf8) else {
            continue;
        };
        if let Some(s) = col.as_any().downcast_ref::<arrow_array::StringArray>() {
            for i in 0..s.len() {
                if s.is_valid(i) && !s.value(i).is_empty() {
                    out.insert(s.value(i).to_string());
                }
            }
        }
    }
    out.into_iter().collect()
}

/// Why a lake could not be opened for reading.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error(transparent)]
    Connect(#[from] ConnectError),
    #[error("lake {url}: cannot list {prefix}: {source}")]
    List {
        url: String,
        prefix: String,
        #[source]
        source: object_store::Error,
    },
    #[error("lake {url} has no cluster {cluster:?} (it has: {have})")]
    NoSuchCluster {
        url: String,
        cluster: String,
        have: String,
    },
    #[error("lake {url}: {source}")]
    Runtime {
        url: String,
        #[source]
        source: std::io::Error,
    },
}

/// One read-only [`Archive`] per cluster of the lake at `url` (only `cluster` when given),
/// for the reports. Lists `<prefix>/processed/` once.
pub fn archives(url: &str, cluster: Option<&str>) -> Result<Vec<Archive>, ReadError> {
    let parsed = LakeUrl::parse(url).map_err(|message| ConnectError::Config {
        url: url.to_string(),
        message,
    })?;
    let store = url::connect(&parsed, false)?;
    let names = clusters(&store, &parsed)?;
    let chosen: Vec<String> = match cluster {
        Some(c) if names.iter().any(|n| n == c) => vec![c.to_string()],
        Some(c) => {
            return Err(ReadError::NoSuchCluster {
                url: parsed.text.clone(),
                cluster: c.to_string(),
                have: if names.is_empty() {
                    "none".to_string()
                } else {
                    names.join(", ")
                },
            })
        }
        None => names,
    };
    chosen
        .into_iter()
        .map(|c| {
            Remote::new(
                Arc::clone(&store),
                parsed.prefix.clone(),
                parsed.text.clone(),
                c,
            )
            .map(Archive::remote)
            .map_err(|source| ReadError::Runtime {
                url: parsed.text.clone(),
                source,
            })
        })
        .collect()
}

/// The clusters with a `processed/cluster=<c>/` directory in the lake, sorted.
fn clusters(store: &Arc<dyn ObjectStore>, url: &LakeUrl) -> Result<Vec<String>, ReadError> {
    let under: ObjPath = url.prefix.clone().join(Kind::Processed.dir());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|source| ReadError::Runtime {
            url: url.text.clone(),
            source,
        })?;
    let s = Arc::clone(store);
    let u = under.clone();
    let listed = rt
        .block_on(async move { s.list_with_delimiter(Some(&u)).await })
        .map_err(|source| ReadError::List {
            url: url.text.clone(),
            prefix: under.to_string(),
            source,
        })?;
    let mut names: Vec<String> = listed
        .common_prefixes
        .iter()
        .filter_map(|p| p.filename()?.strip_prefix("cluster=").map(str::to_string))
        .collect();
    names.sort();
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::HumanDuration;
    use crate::model::ProcessedJob;
    use chrono::NaiveDate;

    fn job(id: &str, cluster: &str) -> ProcessedJob {
        ProcessedJob {
            job_id: id.into(),
            cluster: cluster.into(),
            ..Default::default()
        }
    }

    /// Uploads to a `file://` lake and reads it back through the lake's archive: same
    /// bytes, same rows, one archive per cluster, and a re-sync uploads nothing.
    #[test]
    fn a_file_lake_round_trips_through_sync_and_the_remote_archive() {
        let dir = tempfile::tempdir().unwrap();
        let local = Archive::local(dir.path().join("data"));
        local.create().unwrap();
        let meta = crate::store::parquet::tests::meta();
        let d = NaiveDate::from_ymd_opt(2026, 12, 1).unwrap();
        let jobs: Vec<ProcessedJob> = (1..=50).map(|i| job(&i.to_string(), "alpha")).collect();
        local.write_processed(d, &jobs, &meta).unwrap();
        let url = format!("file://{}/lake", dir.path().display());
        let cfg = LakeConfig {
            url: url.clone(),
            cluster: None,
            lease_ttl: HumanDuration(Duration::from_secs(3600)),
            drop_fields: Vec::new(),
            pseudonymise: Vec::new(),
            pseudonym_key_file: dir.path().join("key"),
        };
        let lake = Lake::open(&cfg).unwrap();
        let rt = tokio::runtime::Runtime::new().unwrap();
        let opts = SyncOptions {
            verify: true,
            ..SyncOptions::default()
        };
        let first = rt.block_on(sync(&lake, &local, opts));
        assert_eq!(first.error, None);
        assert_eq!((first.cluster.as_str(), first.uploaded), ("alpha", 1));
        let again = rt.block_on(sync(&lake, &local, opts));
        assert_eq!((again.uploaded, again.pending.len()), (0, 0));
        drop(rt);

        let object = dir
            .path()
            .join("lake/processed/cluster=alpha/date=2026-12-01/part-0.parquet");
        assert_eq!(
            std::fs::read(&object).unwrap(),
            std::fs::read(local.name(Kind::Processed, d)).unwrap()
        );
        let archives = archives(&url, None).unwrap();
        assert_eq!(archives.len(), 1);
        let lake_archive = &archives[0];
        assert_eq!(lake_archive.cluster(), Some("alpha"));
        assert_eq!(lake_archive.dates(Kind::Processed).unwrap(), [d]);
        let part = lake_archive.open(Kind::Processed, d).unwrap().unwrap();
        let ids: Vec<String> = part
            .reader()
            .unwrap()
            .build()
            .unwrap()
            .flat_map(|b| {
                let b = b.unwrap();
                let col = b.column_by_name("job_id").unwrap().clone();
                let s = arrow_cast::cast(&col, &arrow_schema::DataType::Utf8).unwrap();
                let s = s
                    .as_any()
                    .downcast_ref::<arrow_array::StringArray>()
                    .unwrap()
                    .clone();
                (0..s.len()).map(move |i| s.value(i).to_string())
            })
            .collect();
        let want: Vec<String> = (1..=50).map(|i| i.to_string()).collect();
        assert_eq!(ids, want);
        assert!(matches!(
            super::archives(&url, Some("beta")),
            Err(ReadError::NoSuchCluster { .. })
        ));
    }
}
