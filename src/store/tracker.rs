//! `.date_completion_tracker.json`: which dates are final and need no more sacct calls.
//!
//! The Python tool wrote `{"completed_dates": [...], "last_updated": "..."}`; we keep those
//! two keys (so either tool can read the file) and add ours: a format version, the last
//! successful collection, and per-date facts for `status`. Unknown keys written by someone
//! else are kept as they are. A file that is not JSON (or not of this shape, or not a regular
//! file at all) is moved aside, never deleted. Every key: `docs/data-layout.md`, "The
//! completion tracker".

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
    /// When the last successful sacct for this date's own window ran. `None` for a date
    /// whose partition holds only jobs that other dates' outputs wrote there (a job that
    /// started on it and still ran in a later window): such a date was never queried whole.
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
    /// Every change sacct recorded before this instant is in the archive: when the last
    /// successful cycle started (before any of its sacct calls). The next incremental cycle
    /// asks sacct for the jobs active since then, minus a small overlap; a failed cycle
    /// leaves it alone, so the next window starts from the last success.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub synced_to: Option<DateTime<Utc>>,
    /// When the last successful cycle that queried every date of the daemon's lookback
    /// window whole started (`[collect] full_check` counts from it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_full_check: Option<DateTime<Utc>>,
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

/// Why [`Tracker::load_read_only`] found no usable tracker. Nothing was changed: the next
/// collection (which holds the write lock) moves an unusable file aside.
#[derive(Debug, thiserror::Error)]
pub enum PeekError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("completion tracker {path} is unusable ({why}) (hint: the next `slurm-usage collect` moves it aside and collects its dates again; no data is lost)")]
    Unusable { path: PathBuf, why: Unusable },
}

/// What loading found.
#[derive(Debug)]
pub struct Loaded {
    pub tracker: Tracker,
    /// Where a corrupt tracker was moved (its completion facts are lost; dates get
    /// re-collected, which is slower but loses no data).
    pub moved_aside: Option<PathBuf>,
}

/// Why a file where the tracker belongs cannot be used; [`Tracker::load`] then moves it aside.
#[derive(Debug, thiserror::Error)]
pub enum Unusable {
    /// A directory cannot be read and a FIFO would block the read (and with it the collector,
    /// which holds the write lock) forever; failing every cycle instead would stop collection.
    #[error("not a regular file but a {0}")]
    NotAFile(&'static str),
    /// Not JSON, or JSON of another shape.
    #[error("{problem}: {source}", problem = json_problem(.0), source = .0)]
    Json(serde_json::Error),
}

fn json_problem(e: &serde_json::Error) -> &'static str {
    match e.classify() {
        serde_json::error::Category::Eof => "not valid JSON (empty or cut short)",
        serde_json::error::Category::Syntax => "not valid JSON",
        serde_json::error::Category::Data => "JSON of another shape",
        serde_json::error::Category::Io => "unreadable",
    }
}

/// What a non-regular file is.
fn kind_of(t: std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if t.is_dir() {
        "directory"
    } else if t.is_fifo() {
        "FIFO"
    } else if t.is_socket() {
        "socket"
    } else {
        "device"
    }
}

impl Tracker {
    /// Loads the tracker; a missing file is an empty tracker. One that cannot be used (not
    /// JSON, JSON of another shape, empty, or not a regular file at all) is moved aside.
    /// Call only while holding the write lock.
    pub fn load(path: &Path) -> Result<Loaded, TrackerError> {
        match Self::load_read_only(path) {
            Ok(tracker) => Ok(Loaded {
                tracker,
                moved_aside: None,
            }),
            Err(PeekError::Unusable { why, .. }) => Self::set_aside(path, &why),
            Err(PeekError::Read { path, source }) => Err(TrackerError::Read { path, source }),
        }
    }

    /// Loads the tracker without changing anything, for `status` and the daemon's start
    /// (which hold no write lock, so moving the file is not theirs to do): a missing file is
    /// an empty tracker, an unusable one is [`PeekError::Unusable`] for the caller to
    /// report. The file type is checked before opening, so a FIFO there never blocks.
    pub fn load_read_only(path: &Path) -> Result<Tracker, PeekError> {
        let read_error = |source| PeekError::Read {
            path: path.to_path_buf(),
            source,
        };
        let unusable = |why| PeekError::Unusable {
            path: path.to_path_buf(),
            why,
        };
        let bytes = match std::fs::metadata(path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Tracker::default()),
            Err(source) => return Err(read_error(source)),
            Ok(m) if !m.is_file() => {
                return Err(unusable(Unusable::NotAFile(kind_of(m.file_type()))))
            }
            Ok(_) => match std::fs::read(path) {
                Ok(b) => b,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Tracker::default()),
                Err(source) => return Err(read_error(source)),
            },
        };
        let mut tracker: Tracker =
            serde_json::from_slice(&bytes).map_err(|e| unusable(Unusable::Json(e)))?;
        // Keep only well-formed dates; a stray entry must not block collection.
        tracker
            .completed_dates
            .retain(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").is_ok());
        Ok(tracker)
    }

    /// Moves an unusable tracker aside, says so, and starts from an empty one.
    fn set_aside(path: &Path, why: &Unusable) -> Result<Loaded, TrackerError> {
        let aside = super::move_aside(path).map_err(|source| TrackerError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        tracing::error!(
            path = %path.display(),
            moved_to = %aside.display(),
            "completion tracker is unusable ({why}); moved aside, dates will be re-collected"
        );
        Ok(Loaded {
            tracker: Tracker::default(),
            moved_aside: Some(aside),
        })
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

    /// Whether `date` was ever collected by a query of its own window, so that its partition
    /// is meant to hold all its jobs and is collected again while incomplete. A date whose
    /// facts say it was never queried holds only jobs that spilled over from other dates'
    /// windows: querying it whole would be a backfill nobody asked for (and its own long jobs
    /// would spill further back). A date without facts counts as queried: the Python tool's
    /// partitions (it queried every date it wrote) and a partition whose tracker save a crash
    /// prevented are collected again as before.
    pub fn queried_whole(&self, date: NaiveDate) -> bool {
        self.dates
            .get(&date.to_string())
            .is_none_or(|i| i.last_collected.is_some())
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
    fn directory_or_fifo_tracker_is_moved_aside() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(TRACKER_FILE);
        std::fs::create_dir(&p).unwrap();
        let aside = Tracker::load(&p).unwrap().moved_aside.unwrap();
        assert!(aside.is_dir());
        assert!(!p.exists());
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(TRACKER_FILE);
        let made = std::process::Command::new("mkfifo").arg(&p).status();
        if made.is_ok_and(|s| s.success()) {
            // Would block forever if it were opened.
            let loaded = Tracker::load(&p).unwrap();
            assert_eq!(loaded.tracker, Tracker::default());
            assert!(loaded.moved_aside.is_some());
            assert!(!p.exists());
        }
    }

    #[test]
    fn read_only_load_reports_and_moves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(TRACKER_FILE);
        assert_eq!(Tracker::load_read_only(&p).unwrap(), Tracker::default());
        std::fs::write(&p, b"{not json").unwrap();
        let err = Tracker::load_read_only(&p).unwrap_err();
        assert!(matches!(err, PeekError::Unusable { .. }), "{err:?}");
        assert!(err.to_string().contains(&p.display().to_string()), "{err}");
        assert_eq!(std::fs::read(&p).unwrap(), b"{not json");
        std::fs::remove_file(&p).unwrap();
        let made = std::process::Command::new("mkfifo").arg(&p).status();
        if made.is_ok_and(|s| s.success()) {
            // Would block forever if it were opened.
            let err = Tracker::load_read_only(&p).unwrap_err();
            assert!(err.to_string().contains("FIFO"), "{err}");
            assert!(p.exists());
        }
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_date_with_only_spilled_jobs_was_not_queried_whole() {
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        let mut t: Tracker = serde_json::from_str(
            r#"{"completed_dates": [], "last_updated": null, "dates": {
                "2026-11-20": {"last_collected": null, "jobs": 1, "incomplete_jobs": 1, "parse_errors": 0},
                "2026-11-21": {"last_collected": "2026-11-22T01:00:00Z", "jobs": 9, "incomplete_jobs": 1, "parse_errors": 0}
            }}"#,
        )
        .unwrap();
        assert!(!t.queried_whole(d("2026-11-20")));
        assert!(t.queried_whole(d("2026-11-21")));
        assert!(
            t.queried_whole(d("2026-11-19")),
            "no facts: the Python tool's"
        );
        t.dates.get_mut("2026-11-20").unwrap().last_collected = Some(Utc::now());
        assert!(t.queried_whole(d("2026-11-20")));
    }

    #[test]
    fn missing_tracker_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        let loaded = Tracker::load(&dir.path().join(TRACKER_FILE)).unwrap();
        assert_eq!(loaded.tracker, Tracker::default());
    }
}
