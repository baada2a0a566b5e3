//! Locks on the data dir, so two collectors never write it at once.
//!
//! Lock files, all `flock`-style (released by the kernel when the process dies, so a crash
//! never leaves a stale lock):
//! - `.slurm-usage.lock`: the write lock, held by whoever writes (a daemon cycle or a CLI
//!   `collect`) for as long as it writes.
//! - `.slurm-usage.daemon.lock`: the instance lock, held by a daemon for its lifetime.
//! - `.slurm-usage.lake.lock`: one lake uploader per data dir.
//! - `.slurm-usage.alerts.lock`: one sender of alert mails per data dir.
//!
//! The holder writes its pid into the file so the message for the loser names it. Who takes
//! which lock, and when: `docs/collection.md`, "The write lock".

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// File name of the write lock.
pub const WRITE_LOCK: &str = ".slurm-usage.lock";
/// File name of the daemon instance lock.
pub const DAEMON_LOCK: &str = ".slurm-usage.daemon.lock";
/// File name of the lake upload lock (one uploader per data dir).
pub const LAKE_LOCK: &str = ".slurm-usage.lake.lock";
/// File name of the alerts lock (one sender of alert mails per data dir).
pub const ALERTS_LOCK: &str = ".slurm-usage.alerts.lock";

/// Why a lock could not be taken. `Busy` maps to exit code 75.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("data dir {dir} is busy: {holder} holds {file} (hint: {})", hint(file))]
    Busy {
        dir: PathBuf,
        file: &'static str,
        holder: String,
    },
    #[error("cannot lock {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// What the loser of a lock can do about it.
fn hint(file: &str) -> &'static str {
    if file == DAEMON_LOCK {
        "another slurm-usage daemon runs on this data dir; stop it first (systemctl stop slurm-usage)"
    } else if file == ALERTS_LOCK {
        "another `alerts --send` (or the daemon's alerts round) is sending from this data dir; try again when it ends"
    } else if file == LAKE_LOCK {
        "another upload to the lake runs from this data dir; it uploads what is pending, try again when it ends"
    } else {
        "wait for it, or pass --wait"
    }
}

/// A held lock; released on drop.
#[derive(Debug)]
pub struct DirLock {
    _file: File,
    pub path: PathBuf,
}

/// Takes the lock `name` in `dir` without waiting.
pub fn try_lock(dir: &Path, name: &'static str) -> Result<DirLock, LockError> {
    let path = dir.join(name);
    let mut file = open(&path)?;
    match file.try_lock() {
        Ok(()) => {
            record_pid(&mut file, &path)?;
            Ok(DirLock { _file: file, path })
        }
        Err(TryLockError::WouldBlock) => Err(LockError::Busy {
            dir: dir.to_path_buf(),
            file: name,
            holder: holder(&mut file),
        }),
        Err(TryLockError::Error(source)) => Err(LockError::Io { path, source }),
    }
}

/// Takes the lock `name` in `dir`, waiting as long as it takes (blocking: call it from
/// `spawn_blocking` in async code).
pub fn lock_wait(dir: &Path, name: &'static str) -> Result<DirLock, LockError> {
    let path = dir.join(name);
    let mut file = open(&path)?;
    file.lock().map_err(|source| LockError::Io {
        path: path.clone(),
        source,
    })?;
    record_pid(&mut file, &path)?;
    Ok(DirLock { _file: file, path })
}

fn open(path: &Path) -> Result<File, LockError> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o640)
        .open(path)
        .map_err(|source| LockError::Io {
            path: path.to_path_buf(),
            source,
        })
}

fn record_pid(file: &mut File, path: &Path) -> Result<(), LockError> {
    let io = |source| LockError::Io {
        path: path.to_path_buf(),
        source,
    };
    file.set_len(0).map_err(io)?;
    file.seek(SeekFrom::Start(0)).map_err(io)?;
    writeln!(file, "{}", std::process::id()).map_err(io)
}

fn holder(file: &mut File) -> String {
    let mut s = String::new();
    let _ = file.read_to_string(&mut s);
    match s.trim().parse::<u32>() {
        Ok(pid) => format!("process {pid}"),
        Err(_) => "another process".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_is_busy_and_names_the_holder() {
        let dir = tempfile::tempdir().unwrap();
        let held = try_lock(dir.path(), WRITE_LOCK).unwrap();
        let err = try_lock(dir.path(), WRITE_LOCK).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains(&format!("process {}", std::process::id())),
            "{msg}"
        );
        assert!(msg.contains("--wait"), "{msg}");
        drop(held);
        try_lock(dir.path(), WRITE_LOCK).unwrap();
    }

    #[test]
    fn a_second_daemon_is_told_to_stop_the_first() {
        let dir = tempfile::tempdir().unwrap();
        let _d = try_lock(dir.path(), DAEMON_LOCK).unwrap();
        let msg = try_lock(dir.path(), DAEMON_LOCK).unwrap_err().to_string();
        assert!(
            msg.contains("another slurm-usage daemon") && !msg.contains("--wait"),
            "{msg}"
        );
    }

    #[test]
    fn daemon_and_write_locks_are_independent() {
        let dir = tempfile::tempdir().unwrap();
        let _d = try_lock(dir.path(), DAEMON_LOCK).unwrap();
        let _w = try_lock(dir.path(), WRITE_LOCK).unwrap();
    }
}
