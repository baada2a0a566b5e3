//! [`LakeState`]: what this data dir has uploaded to its lake (`lake-state.json`), and so
//! what is pending: a local partition whose [`Fingerprint`] differs from the one recorded
//! at its last upload. Pending is derived, never stored, so a crash between a commit and
//! the upload cannot lose it: a partition is pending until an upload of exactly its bytes
//! has been recorded.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::store::{Archive, Fingerprint, Kind};

/// The record, saved atomically in the data dir.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct LakeState {
    pub version: u32,
    /// The lake and cluster the entries are about. A different lake (the config changed)
    /// starts from an empty record: everything is pending there.
    pub url: String,
    pub cluster: String,
    /// What the copies leave out or pseudonymise ([`super::privacy::Transform::settings`]):
    /// a change makes every partition pending, so no old copy keeps a dropped field.
    #[serde(default)]
    pub transform: String,
    /// The fingerprint of the pseudonym key the lake's pseudonyms were made with, once
    /// one was used: a missing or other key then stops uploads.
    #[serde(default)]
    pub key_id: Option<String>,
    /// `"<kind>/<date>"` -> what was uploaded.
    pub uploaded: BTreeMap<String, Uploaded>,
    /// Unix seconds of the last completed upload.
    pub last_upload: Option<i64>,
}

/// One uploaded partition version.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Uploaded {
    #[serde(flatten)]
    pub local: Fingerprint,
    /// Size of the copy sent (smaller than the local file when fields are dropped).
    #[serde(default)]
    pub sent: Option<u64>,
    /// MD5 of the bytes sent, hex (S3's ETag of a single PUT).
    pub md5: String,
    /// The object's ETag as the store returned it.
    pub etag: Option<String>,
    /// Unix seconds of the upload.
    pub at: i64,
}

/// The record's key for a partition.
pub fn key(kind: Kind, date: NaiveDate) -> String {
    format!("{}/{date}", kind.dir())
}

/// Both kinds, raw first: a lake reader that sees a processed partition finds its raw one.
pub const KINDS: [Kind; 2] = [Kind::Raw, Kind::Processed];

impl LakeState {
    /// The record of `archive` for `url`/`cluster` with copies made by `transform`; empty
    /// when there is none, it is for another lake or other settings, or it cannot be
    /// decoded (everything is then pending, which costs uploads, never data). The key id
    /// is kept across a settings change: it says which key the lake's pseudonyms use.
    pub fn load(archive: &Archive, url: &str, cluster: &str, transform: &str) -> LakeState {
        let fresh = LakeState {
            version: 1,
            url: url.to_string(),
            cluster: cluster.to_string(),
            transform: transform.to_string(),
            ..LakeState::default()
        };
        let loaded = match archive.read_lake_state() {
            Ok(Some(bytes)) => serde_json::from_slice::<LakeState>(&bytes).ok(),
            _ => None,
        };
        match loaded {
            Some(s) if s.url == url && s.cluster == cluster && s.transform == transform => s,
            Some(old) if old.url == url && old.cluster == cluster => {
                tracing::info!(
                    old = %old.transform, new = %transform,
                    "what the lake's copies leave out changed: every partition is pending"
                );
                LakeState {
                    key_id: old.key_id,
                    last_upload: old.last_upload,
                    ..fresh
                }
            }
            Some(old) => {
                tracing::info!(
                    old = %old.url, old_cluster = %old.cluster, new = %url, cluster = %cluster,
                    "the lake or cluster changed: every partition is pending for the new one"
                );
                fresh
            }
            None => fresh,
        }
    }

    /// The cluster recorded by an earlier upload, whatever the lake (to name the cluster
    /// when the config does not and the archive has no rows yet).
    pub fn remembered_cluster(archive: &Archive) -> Option<String> {
        let bytes = archive.read_lake_state().ok()??;
        let s: LakeState = serde_json::from_slice(&bytes).ok()?;
        Some(s.cluster).filter(|c| !c.is_empty())
    }

    /// Saves the record atomically.
    pub fn save(&self, archive: &Archive) -> Result<(), crate::store::atomic::WriteError> {
        let bytes = serde_json::to_vec_pretty(self).expect("the lake state serializes");
        archive.write_lake_state(&bytes)
    }

    /// Local partitions not uploaded as they are now, raw before processed, oldest first.
    pub fn pending(&self, archive: &Archive) -> std::io::Result<Vec<(Kind, NaiveDate)>> {
        let mut out = Vec::new();
        for kind in KINDS {
            for (date, fp) in archive.fingerprints(kind)? {
                let current = self
                    .uploaded
                    .get(&key(kind, date))
                    .is_some_and(|u| u.local == fp);
                if !current {
                    out.push((kind, date));
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ProcessedJob;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn a_partition_is_pending_until_its_exact_version_is_recorded() {
        let dir = tempfile::tempdir().unwrap();
        let a = Archive::local(dir.path());
        a.create().unwrap();
        let meta = crate::store::parquet::tests::meta();
        let jobs = vec![ProcessedJob {
            job_id: "1".into(),
            ..Default::default()
        }];
        a.write_processed(d("2026-12-01"), &jobs, &meta).unwrap();
        let mut s = LakeState::load(&a, "s3://b/p", "hpc", "");
        assert_eq!(s.pending(&a).unwrap(), [(Kind::Processed, d("2026-12-01"))]);
        let (_, fp) = a
            .read_partition(Kind::Processed, d("2026-12-01"))
            .unwrap()
            .unwrap();
        s.uploaded.insert(
            key(Kind::Processed, d("2026-12-01")),
            Uploaded {
                local: fp,
                sent: None,
                md5: String::new(),
                etag: None,
                at: 0,
            },
        );
        assert!(s.pending(&a).unwrap().is_empty());
        s.save(&a).unwrap();
        // Saved and loaded back for the same lake; a new version is pending again.
        let s = LakeState::load(&a, "s3://b/p", "hpc", "");
        assert!(s.pending(&a).unwrap().is_empty());
        std::thread::sleep(std::time::Duration::from_millis(10));
        a.write_processed(d("2026-12-01"), &jobs, &meta).unwrap();
        assert_eq!(s.pending(&a).unwrap().len(), 1);
        // Other copy settings start empty too.
        assert!(LakeState::load(&a, "s3://b/p", "hpc", "drop=X")
            .uploaded
            .is_empty());
        // Another lake starts empty; the cluster is still remembered.
        let other = LakeState::load(&a, "s3://b/other", "hpc", "");
        assert!(other.uploaded.is_empty());
        assert_eq!(LakeState::remembered_cluster(&a).as_deref(), Some("hpc"));
    }
}
