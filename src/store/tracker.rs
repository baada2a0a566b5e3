//! `.date_completion_tracker.json`: which dates are final and need no more sacct calls.
//!
//! The Python tool wrote `{"completed_dates": [...], "last_updated": "..."}`; we keep those
//! two keys (so either tool can read the file) and add ours: a format version, the last
//! successful collection, and per-date facts for `status`. Unknown keys written by someone
//! else are kept as they are. A file that is not JSON is moved aside, never deleted.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use super::atomic::{write_bytes_atomic, WriteError};

/// The tracker's file name inside the data dir.
pub const TRACKER_FILE: &str = ".date_completion_tracker.json";

/// Per-date facts from the last collection of that date.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DateInfo {
    /// When the last successful sacct for this date ran.
    pub last_collected: Option<DateTime<Utc>>,
    /// Jobs in the date's partition after that collection.
    pub jobs: u64,
    /// Of those, jobs not yet in a final state.
    pub incomplete_jobs: u64,
    /// Lines of that sacct output that could not be parsed.
    pub parse_errors: u64,
}

/// The tracker file's content.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Tracker {
    /// Dates (`YYYY-MM-DD`) that are final: never queried again.
    pub completed_dates: BTreeSet<String>,
    /// When the file was last written.
    pub last_updated: Option<String>,
    /// Format version of our additions.
    #[serde(default)]
    pub version: u32,
    /// When the last collection in which every sacct call succeeded ended.
    #[serde(default)]
    pub last_success: Option<DateTime<Utc>>,
    /// Facts per collected date.
    #[serde(default)]
    pub dates: BTreeMap<String, DateInfo>,
    /// Keys this version does not know, kept verbatim.
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_json::Value>,
}

/// Why the tracker could not be loaded or saved.
#[derive(Debug, thiserror::Error)]
pub enum TrackerError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Write(#[from] WriteError),
}

/// What loading found.
#[derive(Debug)]
pub struct Loaded {
    pub tracker: Tracker,
    /// Where a corrupt tracker was moved (its completion facts are lost; dates get
    /// re-collected, which is slower but loses no data).
    pub moved_aside: Option<PathBuf>,
}

impl Tracker {
    /// Loads the tracker; a missing file is an empty tracker, a corrupt one is moved aside.
    pub fn load(path: &Path) -> Result<Loaded, TrackerError> {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Loaded {
                    tracker: Tracker::default(),
                    moved_aside: None,
                })
            }
            Err(source) => {
                return Err(TrackerError::Read {
                    path: path.to_path_buf(),
                    source,
                })
            }
        };
        match serde_json::from_slice::<Tracker>(&bytes) {
            Ok(mut tracker) => {
                // Keep only well-formed dates; a stray entry must not block collection.
                tracker
                    .completed_dates
                    .retain(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").is_ok());
                Ok(Loaded {
                    tracker,
                    moved_aside: None,
                })
            }
            Err(err) => {
                let aside = super::move_aside(path).map_err(|source| TrackerError::Read {
                    path: path.to_path_buf(),
                    source,
                })?;
                tracing::error!(
                    path = %path.display(),
                    moved_to = %aside.display(),
                    "completion tracker is not valid JSON ({err}); moved aside, dates will be re-collected"
                );
                Ok(Loaded {
                    tracker: Tracker::default(),
                    moved_aside: Some(aside),
                })
            }
        }
    }

    /// Writes the tracker atomically.
    pub fn save(&mut self, path: &Path) -> Result<(), TrackerError> {
        self.version = 1;
        self.last_updated = Some(Utc::now().to_rfc3339());
        let mut bytes = serde_json::to_vec_pretty(self).expect("tracker serializes");
        bytes.push(b'\n');
        write_bytes_atomic(path, &bytes)?;
        Ok(())
    }

    /// Is `date` final?
    pub fn is_complete(&self, date: NaiveDate) -> bool {
        self.completed_dates.contains(&date.to_string())
    }

    /// Marks `date` final.
    pub fn mark_complete(&mut self, date: NaiveDate) {
        self.completed_dates.insert(date.to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_python_tools_file_and_keeps_its_keys() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(TRACKER_FILE);
        std::fs::write(
            &p,
            r#"{"completed_dates": ["2025-08-19", "2025-08-20"], "last_updated": "2025-08-21 02:00:03.123456+00:00", "mystery": 7}"#,
        )
        .unwrap();
        let mut t = Tracker::load(&p).unwrap().tracker;
        assert!(t.is_complete(NaiveDate::from_ymd_opt(2025, 8, 20).unwrap()));
        t.mark_complete(NaiveDate::from_ymd_opt(2025, 8, 21).unwrap());
        t.save(&p).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
        assert_eq!(v["completed_dates"].as_array().unwrap().len(), 3);
        assert_eq!(v["mystery"], 7);
        assert!(v["last_updated"].is_string());
    }

    #[test]
    fn corrupt_tracker_is_moved_aside_not_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(TRACKER_FILE);
        std::fs::write(&p, b"{not json").unwrap();
        let loaded = Tracker::load(&p).unwrap();
        assert!(loaded.tracker.completed_dates.is_empty());
        let aside = loaded.moved_aside.unwrap();
        assert_eq!(std::fs::read(&aside).unwrap(), b"{not json");
        assert!(!p.exists());
    }

    #[test]
    fn missing_tracker_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        let loaded = Tracker::load(&dir.path().join(TRACKER_FILE)).unwrap();
        assert_eq!(loaded.tracker, Tracker::default());
    }
}
