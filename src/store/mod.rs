//! The archive: daily Parquet partitions, the completion tracker, locks. Every reader and
//! writer goes through [`Archive`]; the modules below it are its local-disk implementation.
//!
//! ```text
//! <data_dir>/raw/YYYY-MM-DD.parquet        every sacct row of the date's jobs, as text
//! <data_dir>/processed/YYYY-MM-DD.parquet  one row per job
//! <data_dir>/.date_completion_tracker.json completed dates (+ our facts)
//! ```
//! The layout is the Python tool's, so its data dirs are read and extended as they are. Every
//! file, name and schema is described in `docs/data-layout.md`.

mod archive;
pub mod atomic;
pub mod lock;
pub mod object;
pub mod parquet;
pub mod raw;
pub mod tracker;

use std::io;
use std::path::{Path, PathBuf};

use chrono::Utc;

pub use archive::{
    Archive, Fingerprint, Listing, OpenError, Partition, Source, Writable, ALERTS_STATE, LAKE_STATE,
};

/// Which of the two partition kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Raw,
    Processed,
}

impl Kind {
    /// The prefix's name: `raw` or `processed`.
    pub fn dir(self) -> &'static str {
        match self {
            Kind::Raw => "raw",
            Kind::Processed => "processed",
        }
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
