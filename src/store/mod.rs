//! The data dir: daily Parquet partitions, the completion tracker, locks.
//!
//! ```text
//! <data_dir>/raw/YYYY-MM-DD.parquet        every sacct row of the date's jobs, as text
//! <data_dir>/processed/YYYY-MM-DD.parquet  one row per job
//! <data_dir>/.date_completion_tracker.json completed dates (+ our facts)
//! ```
//! The layout is the Python tool's, so its data dirs are read and extended as they are. Every
//! file, name and schema is described in `docs/data-layout.md`.

pub mod atomic;
pub mod lock;
pub mod parquet;
pub mod raw;
pub mod tracker;

use std::io;
use std::path::{Path, PathBuf};

use chrono::{NaiveDate, Utc};

/// Paths inside one data dir.
#[derive(Debug, Clone)]
pub struct DataDir {
    pub root: PathBuf,
}

/// Which of the two partition kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Raw,
    Processed,
}

impl Kind {
    fn dir(self) -> &'static str {
        match self {
            Kind::Raw => "raw",
            Kind::Processed => "processed",
        }
    }
}

impl DataDir {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        DataDir { root: root.into() }
    }

    /// `raw/` or `processed/`.
    pub fn dir(&self, kind: Kind) -> PathBuf {
        self.root.join(kind.dir())
    }

    /// The partition file of `date`.
    pub fn partition(&self, kind: Kind, date: NaiveDate) -> PathBuf {
        self.dir(kind).join(format!("{date}.parquet"))
    }

    /// The completion tracker.
    pub fn tracker(&self) -> PathBuf {
        self.root.join(tracker::TRACKER_FILE)
    }

    /// Creates the root, `raw/` and `processed/` (mode 0750) if missing.
    pub fn create(&self) -> io::Result<()> {
        atomic::ensure_dir(&self.root)?;
        atomic::ensure_dir(&self.dir(Kind::Raw))?;
        atomic::ensure_dir(&self.dir(Kind::Processed))
    }

    /// Dates that have a partition of `kind`, sorted. Other files (temp files, moved-aside
    /// corrupt files, a stray README) are ignored.
    pub fn dates(&self, kind: Kind) -> io::Result<Vec<NaiveDate>> {
        let dir = self.dir(kind);
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut dates: Vec<NaiveDate> = entries
            .flatten()
            .filter_map(|e| {
                let name = e.file_name();
                let stem = name.to_str()?.strip_suffix(".parquet")?;
                if stem.len() != 10 {
                    return None;
                }
                NaiveDate::parse_from_str(stem, "%Y-%m-%d").ok()
            })
            .collect();
        dates.sort();
        Ok(dates)
    }

    /// Removes temp files left by a crashed writer. Call only while holding the write lock.
    pub fn remove_stale_temps(&self) -> io::Result<usize> {
        Ok(atomic::remove_stale_temps(&self.root)?
            + atomic::remove_stale_temps(&self.dir(Kind::Raw))?
            + atomic::remove_stale_temps(&self.dir(Kind::Processed))?)
    }
}

/// Renames a bad file to `<file>.corrupt-<UTC time>`; it is never deleted, so an admin can
/// inspect or recover it.
///
/// `rename` silently replaces an existing target, so when that name is taken (the same path
/// moved aside twice within a millisecond, or a copy someone put there) a counter is added,
/// `<file>.corrupt-<UTC time>-<n>`, rather than overwrite the earlier copy. The check and the
/// rename are not one atomic step, but only a collector holding the write lock moves files
/// aside, so no other mover runs in between.
pub fn move_aside(path: &Path) -> io::Result<PathBuf> {
    let stamp = Utc::now().format("%Y%m%dT%H%M%S%.3fZ").to_string();
    move_aside_stamped(path, &stamp)
}

/// [`move_aside`] with the time stamp given, so a test can make two moves collide.
fn move_aside_stamped(path: &Path, stamp: &str) -> io::Result<PathBuf> {
    let mut base = path.as_os_str().to_owned();
    base.push(format!(".corrupt-{stamp}"));
    let mut target = PathBuf::from(&base);
    // `symlink_metadata`, not `exists`: a dangling symlink there is a name taken too.
    for n in 1.. {
        if std::fs::symlink_metadata(&target).is_err() {
            break;
        }
        let mut next = base.clone();
        next.push(format!("-{n}"));
        target = PathBuf::from(next);
    }
    std::fs::rename(path, &target)?;
    if let Some(dir) = path.parent() {
        atomic::sync_dir(dir)?;
    }
    Ok(target)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_date_named_parquet_files_are_partitions() {
        let dir = tempfile::tempdir().unwrap();
        let d = DataDir::new(dir.path());
        d.create().unwrap();
        let p = d.dir(Kind::Processed);
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
        let dates: Vec<String> = d
            .dates(Kind::Processed)
            .unwrap()
            .iter()
            .map(|d| d.to_string())
            .collect();
        assert_eq!(dates, ["2026-11-24", "2026-11-25"]);
    }

    #[test]
    fn move_aside_keeps_the_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("2026-11-25.parquet");
        std::fs::write(&p, b"garbage").unwrap();
        let aside = move_aside(&p).unwrap();
        assert!(aside.to_str().unwrap().contains(".parquet.corrupt-"));
        assert_eq!(std::fs::read(aside).unwrap(), b"garbage");
    }

    #[test]
    fn move_aside_never_replaces_an_earlier_copy() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("2026-11-25.parquet");
        let stamp = "20261125T000000.000Z";
        let mut copies = Vec::new();
        // Three moves within the same millisecond: each keeps its own copy.
        for i in 0..3u8 {
            std::fs::write(&p, [i]).unwrap();
            copies.push(move_aside_stamped(&p, stamp).unwrap());
        }
        let names: Vec<String> = copies
            .iter()
            .map(|c| c.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            [
                format!("2026-11-25.parquet.corrupt-{stamp}"),
                format!("2026-11-25.parquet.corrupt-{stamp}-1"),
                format!("2026-11-25.parquet.corrupt-{stamp}-2"),
            ]
        );
        for (i, c) in copies.iter().enumerate() {
            assert_eq!(std::fs::read(c).unwrap(), [i as u8], "{}", c.display());
        }
        assert!(!p.exists());
    }
}
