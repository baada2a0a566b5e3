//! A disk that fills up under a collector (tests/disk_full.rs, tests/daemon_faults.rs): a
//! small tmpfs on the data dir, a filler file, sacct outputs that no longer fit, and the check
//! that a failed write left the archive as it was.

use std::path::{Path, PathBuf};
use std::process::Command;

use chrono::NaiveDate;

use super::archive::snapshot_bytes;
use super::host::is_root;
use super::sacct_lines::many_jobs;

/// Bytes available on the file system of `dir` (`df`).
pub fn free_bytes(dir: &Path) -> u64 {
    let out = Command::new("df")
        .args(["--output=avail", "-B1"])
        .arg(dir)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .nth(1)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// A 3 MB tmpfs mounted on a data dir for as long as it lives: unmounted on drop, also when
/// the test panics.
pub struct Tmpfs(PathBuf);

impl Tmpfs {
    /// Mounts it on `dir` (created if missing), or says why it cannot be (not root, no
    /// CAP_SYS_ADMIN): the caller skips.
    pub fn mount(dir: &Path) -> Result<Tmpfs, &'static str> {
        if !is_root() {
            return Err("mounting a tmpfs needs root");
        }
        std::fs::create_dir_all(dir).unwrap();
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=3m", "tmpfs"])
            .arg(dir)
            .status();
        if !mounted.is_ok_and(|s| s.success()) {
            return Err("cannot mount a tmpfs here (no CAP_SYS_ADMIN?)");
        }
        Ok(Tmpfs(dir.to_path_buf()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// Fills the file system of `dir` with a file `filler` but for ~64 KB; returns its path.
pub fn fill_disk(dir: &Path) -> PathBuf {
    let filler = dir.join("filler");
    let room = free_bytes(dir).saturating_sub(64 * 1024);
    std::fs::write(&filler, vec![0u8; room as usize]).unwrap();
    filler
}

/// 200 finished jobs with big names on `date`, then 3,200: more than 64 KB more.
pub fn small_and_bigger_outputs(date: NaiveDate) -> (Vec<String>, Vec<String>) {
    let small = many_jobs(date, 1000, 200);
    let mut bigger = small.clone();
    bigger.extend(many_jobs(date, 5000, 3000));
    (small, bigger)
}

/// After a write failed on a full disk: the data dir holds the same files as `before` (no
/// temp file left, nothing new; `filler` aside) and every Parquet file is byte for byte the
/// same (the lock and the tracker may record the attempt).
pub fn assert_untouched(before: &[(PathBuf, Vec<u8>)], dir: &Path, filler: &Path) {
    let after: Vec<(PathBuf, Vec<u8>)> = snapshot_bytes(dir)
        .into_iter()
        .filter(|(p, _)| p != filler)
        .collect();
    let names = |s: &[(PathBuf, Vec<u8>)]| s.iter().map(|(p, _)| p.clone()).collect::<Vec<_>>();
    assert_eq!(
        names(&after),
        names(before),
        "no temp file left, nothing new"
    );
    for ((p, a), (_, b)) in before.iter().zip(&after) {
        if p.extension().is_some_and(|e| e == "parquet") {
            assert!(a == b, "{} changed on a full disk", p.display());
        }
    }
}
