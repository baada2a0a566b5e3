//! `heap::release_free_memory` gives freed memory inside the heap back to the system: what
//! an idle daemon needs after a cycle, as glibc's `free` returns only the top of the heap.
//! A test binary of its own, so no other test allocates while the resident size is read.

use slurm_usage::heap::release_free_memory;

/// VmRSS of this process, in KB.
fn rss_kb() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[test]
fn memory_freed_below_a_live_block_goes_back_to_the_system() {
    // 64 MB in 4 KB blocks (below the mmap threshold: they live in the heap), written so
    // they are resident, then one small block above them that stays: it pins the heap's
    // top, so freeing the big ones returns nothing by itself.
    let blocks: Vec<Vec<u8>> = (0..16_384).map(|i| vec![i as u8; 4096]).collect();
    let pin = Box::new([1u8; 64]);
    let with_blocks = rss_kb();
    drop(blocks);
    let freed = rss_kb();
    let released = release_free_memory();
    let trimmed = rss_kb();
    eprintln!(
        "RSS with the blocks {with_blocks} KB, after free {freed} KB, after release {trimmed} KB"
    );
    assert!(released, "malloc_trim said nothing came back");
    assert!(
        freed > trimmed + 32 * 1024,
        "at least half of the 64 MB goes back: {freed} -> {trimmed} KB"
    );
    assert_eq!(pin[0], 1);
}
