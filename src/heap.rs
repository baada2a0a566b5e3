//! Giving a finished cycle's memory back to the system.
//!
//! glibc's malloc hands freed memory back to the kernel only from the top of its heap. A
//! collection cycle allocates tens of MB in small pieces (records, row builders, Parquet
//! pages); a few pieces that outlive it (tracker, metrics, runtime state) pin the top, and
//! an idle daemon then stays at its busiest cycle's size: 40-51 MB after a 150-cycle soak
//! with the unit's allocator settings, of which 1.5 MB was live. `malloc_trim(0)` also
//! returns the free pages inside the heap (madvise), which took that daemon to 16 MB.

/// Asks the allocator to return the memory it holds free; whether any came back. For when
/// the daemon goes idle: it walks the heap under its lock, so allocating threads wait.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
pub fn release_free_memory() -> bool {
    // SAFETY: malloc_trim takes a plain integer, works only on the allocator's own free
    // lists under the allocator's own locks, and has no precondition on its caller.
    unsafe { libc::malloc_trim(0) != 0 }
}

/// Other allocators (musl, macOS) keep no such free memory: nothing to do.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn release_free_memory() -> bool {
    false
}
