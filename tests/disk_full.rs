//! Disk full: the data dir is a 3 MB tmpfs, filled up by a filler file so that the next
//! collect cannot write its partitions. The previous files stay byte for byte, the error
//! names the file and says the disk is full, no temp file is left; once the filler is
//! removed the next collect succeeds. Needs root (mount); skipped with a message otherwise.

mod util;

use util::*;

#[test]
fn full_disk_keeps_previous_files_and_says_which_file() {
    let env = Env::new("settle = \"1000d\""); // the date stays incomplete: re-collected
    let _mount = match Tmpfs::mount(&env.data()) {
        Ok(m) => m,
        Err(why) => return skip(why),
    };
    let d = day(1);
    let (small, bigger) = small_and_bigger_outputs(d);

    // A first collection that fits.
    env.set_output(d, &small);
    assert!(env.run(&["collect", "--days", "1"]).status.success());
    assert_eq!(env.jobs(d).len(), 200);
    let before = snapshot_bytes(&env.data());

    // Fill the disk but for ~64 KB, then collect an output that needs more.
    let filler = fill_disk(&env.data());
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
    assert_untouched(&before, &env.data(), &filler);
    assert_eq!(env.jobs(d).len(), 200, "the previous partition still loads");
    assert!(env.tracker().is_object(), "the tracker is intact JSON");

    // Space freed: the next collect succeeds and holds every job.
    std::fs::remove_file(&filler).unwrap();
    let out = env.run(&["collect", "--days", "1"]);
    assert!(out.status.success());
    assert_eq!(env.jobs(d).len(), 3200);
}
