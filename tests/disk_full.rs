//! Disk full: the data dir is a 3 MB tmpfs, filled up by a filler file so that the next
//! collect cannot write its partitions. The previous files stay byte for byte, the error
//! names the file and says the disk is full, no temp file is left; once the filler is
//! removed the next collect succeeds. Needs root (mount); skipped with a message otherwise.

mod util;

use std::path::PathBuf;
use std::process::Command;

use util::*;

/// Unmounts the tmpfs when dropped, also when the test panics.
struct Mount(PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn full_disk_keeps_previous_files_and_says_which_file() {
    if !is_root() {
        eprintln!("SKIPPED: mounting a tmpfs needs root");
        return;
    }
    let env = Env::new("settle = \"1000d\""); // the date stays incomplete: re-collected
    std::fs::create_dir_all(env.data()).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=3m", "tmpfs"])
        .arg(env.data())
        .status();
    if !mounted.is_ok_and(|s| s.success()) {
        eprintln!("SKIPPED: cannot mount a tmpfs here (no CAP_SYS_ADMIN?)");
        return;
    }
    let _mount = Mount(env.data());
    let d = day(1);

    // A first collection that fits.
    env.set_output(d, &many_jobs(d, 1000, 200));
    assert!(env.run(&["collect", "--days", "1"]).status.success());
    assert_eq!(env.jobs(d).len(), 200);
    let before = snapshot_bytes(&env.data());

    // Fill the disk but for ~64 KB, then collect an output that needs more.
    let filler = env.data().join("filler");
    let room = free_bytes(&env.data()).saturating_sub(64 * 1024);
    std::fs::write(&filler, vec![0u8; room as usize]).unwrap();
    let mut bigger = many_jobs(d, 1000, 200);
    bigger.extend(many_jobs(d, 5000, 3000));
    env.set_output(d, &bigger);
    let out = env.run(&["collect", "--days", "1"]);
    let all =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "collect into a full disk must fail");
    // atomic::describe() words ENOSPC as "the disk is full"; through the Parquet writer the
    // error arrives wrapped (ParquetError::External) and only the OS text remains.
    assert!(
        all.contains("disk is full") || all.contains("No space left on device"),
        "{all}"
    );
    assert!(
        all.contains(&format!("{d}.parquet")) || all.contains("date_completion_tracker"),
        "the error names the file: {all}"
    );
    let after: Vec<(PathBuf, Vec<u8>)> = snapshot_bytes(&env.data())
        .into_iter()
        .filter(|(p, _)| p != &filler)
        .collect();
    let names = |s: &[(PathBuf, Vec<u8>)]| s.iter().map(|(p, _)| p.clone()).collect::<Vec<_>>();
    assert_eq!(
        names(&after),
        names(&before),
        "no temp file left, nothing new"
    );
    for ((p, a), (_, b)) in before.iter().zip(&after) {
        if p.extension().is_none_or(|e| e != "parquet") {
            continue; // the lock (last holder's pid) and the tracker (today's facts)
        }
        assert!(a == b, "{} changed on a full disk", p.display());
    }
    assert_eq!(env.jobs(d).len(), 200, "the previous partition still loads");
    assert!(env.tracker().is_object(), "the tracker is intact JSON");

    // Space freed: the next collect succeeds and holds every job.
    std::fs::remove_file(&filler).unwrap();
    let out = env.run(&["collect", "--days", "1"]);
    assert!(out.status.success());
    assert_eq!(env.jobs(d).len(), 3200);
}
