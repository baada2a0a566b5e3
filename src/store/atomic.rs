//! Atomic file replacement: write a temp file in the same directory, fsync it, rename it over
//! the target, fsync the directory. A crash at any point leaves either the old file or the
//! new one, never a torn one. Temp names start with `.` and contain `.tmp-`, so no reader
//! mistakes them for data (partitions are `YYYY-MM-DD.parquet`). The steps and the file
//! modes: `docs/data-layout.md`, "Writing files".

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Mode of data files: readable by the service's group (analysts), by no one else.
pub const FILE_MODE: u32 = 0o640;
/// Mode of data directories.
pub const DIR_MODE: u32 = 0o750;

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A write that failed, naming the file. `ENOSPC` says so plainly.
#[derive(Debug, thiserror::Error)]
#[error("cannot write {path}: {}", describe(.source))]
pub struct WriteError {
    pub path: PathBuf,
    #[source]
    pub source: io::Error,
}

fn describe(e: &io::Error) -> String {
    // ENOSPC may arrive wrapped (the Parquet writer boxes the io::Error it got).
    let wrapped = e
        .get_ref()
        .is_some_and(|inner| inner.to_string().contains("(os error 28)"));
    if e.raw_os_error() == Some(28) || wrapped {
        "no space left on device (the disk is full; the previous file is unchanged)".to_string()
    } else {
        e.to_string()
    }
}

/// Whether a file name is one of our temp files: exactly the shape [`stage`] makes,
/// `.<name>.tmp-<pid>-<counter>`. Anything looser would let [`remove_stale_temps`] delete
/// other people's dot-files (`.bashrc.tmp-old`, `.notes.tmp-keep`), which are not ours.
pub fn is_temp_name(name: &str) -> bool {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    name.strip_prefix('.')
        .and_then(|rest| rest.rsplit_once(".tmp-"))
        .and_then(|(target, suffix)| Some((target, suffix.split_once('-')?)))
        .is_some_and(|(target, (pid, n))| !target.is_empty() && digits(pid) && digits(n))
}

/// Writes `path` atomically; `fill` writes the content into the temp file.
pub fn write_atomic<F>(path: &Path, fill: F) -> Result<(), WriteError>
where
    F: FnOnce(&mut File) -> io::Result<()>,
{
    stage(path, fill)?.commit()
}

/// A complete, synced temp file waiting to replace its target. Dropped without
/// [`Staged::commit`], the temp file is removed and the target is untouched.
#[derive(Debug)]
pub struct Staged {
    tmp: Option<PathBuf>,
    path: PathBuf,
}

impl Staged {
    /// Renames the temp file over the target and syncs the directory.
    pub fn commit(mut self) -> Result<(), WriteError> {
        let tmp = self.tmp.take().expect("a staged file is committed once");
        let dir = parent_dir(&self.path);
        let result = fs::rename(&tmp, &self.path).and_then(|()| sync_dir(dir));
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result.map_err(|source| WriteError {
            path: self.path.clone(),
            source,
        })
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if let Some(tmp) = self.tmp.take() {
            let _ = fs::remove_file(tmp);
        }
    }
}

/// The directory of `path` (`.` for a bare file name).
fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Writes the content of `path` into a synced temp file beside it, without replacing
/// `path` yet: the caller commits it when the order of renames matters.
pub fn stage<F>(path: &Path, fill: F) -> Result<Staged, WriteError>
where
    F: FnOnce(&mut File) -> io::Result<()>,
{
    let (mut file, temp) = TempFile::create(path)?;
    let filled = fill(&mut file).map_err(|source| WriteError {
        path: path.to_path_buf(),
        source,
    });
    filled?;
    temp.sync(file)
}

/// A temp file beside its target, being written over time (a partition streamed while
/// sacct prints). Dropped before [`TempFile::sync`], the temp file is removed.
#[derive(Debug)]
pub struct TempFile {
    staged: Staged,
}

impl TempFile {
    /// Creates the temp file for `path` (mode 0640, a name no reader takes for data).
    pub fn create(path: &Path) -> Result<(File, TempFile), WriteError> {
        let dir = parent_dir(path);
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
        let tmp = dir.join(format!(
            ".{name}.tmp-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(FILE_MODE)
            .open(&tmp)
            .map_err(|source| WriteError {
                path: path.to_path_buf(),
                source,
            })?;
        let staged = Staged {
            tmp: Some(tmp),
            path: path.to_path_buf(),
        };
        Ok((file, TempFile { staged }))
    }

    /// The file it will replace.
    pub fn target(&self) -> &Path {
        &self.staged.path
    }

    /// Flushes and fsyncs the written file: it is then ready to be committed.
    pub fn sync(self, mut file: File) -> Result<Staged, WriteError> {
        match file.flush().and_then(|()| file.sync_all()) {
            Ok(()) => Ok(self.staged),
            Err(source) => Err(WriteError {
                path: self.staged.path.clone(),
                source,
            }),
        }
    }
}

/// Writes bytes atomically.
pub fn write_bytes_atomic(path: &Path, bytes: &[u8]) -> Result<(), WriteError> {
    write_atomic(path, |f| f.write_all(bytes))
}

/// fsyncs a directory so a rename in it is durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Creates a directory (and parents) with [`DIR_MODE`] if it is missing.
pub fn ensure_dir(dir: &Path) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    fs::create_dir_all(dir)?;
    fs::set_permissions(dir, fs::Permissions::from_mode(DIR_MODE))
}

/// Removes temp files a crashed writer left in `dir` (only ours; called under the lock).
pub fn remove_stale_temps(dir: &Path) -> io::Result<usize> {
    let mut removed = 0;
    let Ok(entries) = fs::read_dir(dir) else {
        return Ok(0);
    };
    for entry in entries.flatten() {
        if entry.file_name().to_str().is_some_and(is_temp_name) {
            fs::remove_file(entry.path())?;
            removed += 1;
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.json");
        write_bytes_atomic(&p, b"one").unwrap();
        write_bytes_atomic(&p, b"two").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1);
        assert_eq!(
            fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            FILE_MODE
        );
    }

    #[test]
    fn failed_fill_keeps_the_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.json");
        write_bytes_atomic(&p, b"good").unwrap();
        let err = write_atomic(&p, |f| {
            f.write_all(b"partial")?;
            Err(io::Error::from_raw_os_error(28))
        })
        .unwrap_err();
        assert!(err.to_string().contains("disk is full"), "{err}");
        assert!(err.to_string().contains("a.json"), "{err}");
        assert_eq!(fs::read(&p).unwrap(), b"good");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn bare_file_name_writes_in_the_current_dir() {
        assert_eq!(parent_dir(Path::new("report.html")), Path::new("."));
        assert_eq!(parent_dir(Path::new("/a/b.txt")), Path::new("/a"));
    }

    #[test]
    fn staged_file_replaces_only_on_commit() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.parquet");
        write_bytes_atomic(&p, b"old").unwrap();
        let staged = stage(&p, |f| f.write_all(b"new")).unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"old");
        drop(staged);
        assert_eq!(fs::read(&p).unwrap(), b"old");
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            1,
            "dropped temp removed"
        );
        stage(&p, |f| f.write_all(b"new"))
            .unwrap()
            .commit()
            .unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"new");
    }

    #[test]
    fn wrapped_disk_full_is_still_said_plainly() {
        let inner = io::Error::from_raw_os_error(28);
        let wrapped = io::Error::other(format!("External: {inner}"));
        assert!(describe(&wrapped).contains("the disk is full"));
    }

    #[test]
    fn stale_temps_are_recognised() {
        assert!(is_temp_name(".2026-11-25.parquet.tmp-12-0"));
        assert!(!is_temp_name("2026-11-25.parquet"));
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(".x.parquet.tmp-1-1"), b"").unwrap();
        fs::write(dir.path().join("2026-01-01.parquet"), b"").unwrap();
        assert_eq!(remove_stale_temps(dir.path()).unwrap(), 1);
        assert!(dir.path().join("2026-01-01.parquet").exists());
    }

    #[test]
    fn only_our_exact_temp_shape_is_a_temp_name() {
        for ours in [
            ".2026-11-25.parquet.tmp-12-0",
            ".date_completion_tracker.json.tmp-999999-2",
            ".a.tmp-b.tmp-1-2",
        ] {
            assert!(is_temp_name(ours), "{ours}");
        }
        for theirs in [
            ".bashrc.tmp-old",
            ".notes.tmp-keep",
            ".2026-11-01.parquet.tmp-backup",
            ".x.tmp-12",
            ".x.tmp-12-",
            ".x.tmp--3",
            ".x.tmp-1-2-3",
            ".x.tmp-1-2.bak",
            "..tmp-1-2",
            "x.tmp-1-2",
        ] {
            assert!(!is_temp_name(theirs), "{theirs}");
        }
    }
}
