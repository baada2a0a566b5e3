//! What this machine lets a test do: run as root (a tmpfs, a real SLURM's `jobs.sh`), or
//! skip a test it cannot run, except under `CI=true`.

use std::os::unix::fs::MetadataExt;

/// Whether the tests run as root (`/proc/self` belongs to the process's user).
pub fn is_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// Skips a test that cannot run here, unless `CI=true`: there it must run, so it fails.
pub fn skip(reason: &str) {
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{reason}; CI=true, so this test must run, not be skipped");
    }
    eprintln!("SKIPPED: {reason}");
}
