//! The allocator's settings, and giving a finished cycle's memory back to the system.
//!
//! glibc's malloc gives every thread that contends for a lock an arena of its own (up to 8
//! per core), keeps freed memory below a 128 KB trim threshold, and raises its mmap
//! threshold as large blocks are freed, so the Parquet pages and row builders of a cycle end
//! up in heaps that are never handed back. [`tune_allocator`] sets one arena and fixed 1 MB
//! mmap and trim thresholds for every command, so `collect` from a shell is as lean as the
//! daemon. A setting the user's environment already makes (the `MALLOC_*` variable, or its
//! `GLIBC_TUNABLES` entry) is left to glibc, which has applied it already.
//!
//! Why 1 MB and not the 64 KB the systemd unit once set (`MALLOC_MMAP_THRESHOLD_=65536`):
//! with 64 KB every row builder, Parquet page buffer and read chunk of a collection was a
//! mapping of its own, mapped, faulted in page by page, zeroed by the kernel and unmapped
//! again: 138,000 page faults and 1.1 s of system time out of 3.4 s of CPU for 8 dates of
//! 10,000 jobs (`benches/vs_python.sh`). At 1 MB those buffers are reused from the heap:
//! system time roughly halved, 0.8x the CPU time, for ~18 MB more peak memory at the same
//! parallelism (4 MB thresholds: no faster, ~10 MB more again).
//!
//! glibc's malloc hands freed memory back to the kernel only from the top of its heap. A
//! collection cycle allocates tens of MB in small pieces (records, row builders, Parquet
//! pages); a few pieces that outlive it (tracker, metrics, runtime state) pin the top, and
//! an idle daemon then stays at its busiest cycle's size: 40-51 MB after a 150-cycle soak
//! with the unit's allocator settings, of which 1.5 MB was live. `malloc_trim(0)` also
//! returns the free pages inside the heap (madvise), which took that daemon to 16 MB.
//!
//! This is the only module with `unsafe` code (Cargo.toml's lints deny it elsewhere).

/// One allocator setting: the environment variable and the tunable that would set it, and
/// the value the program picks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Setting {
    /// glibc's environment variable (`MALLOC_ARENA_MAX`).
    pub variable: &'static str,
    /// Its name in `GLIBC_TUNABLES` (`glibc.malloc.arena_max`).
    pub tunable: &'static str,
    /// Our value.
    pub value: i32,
}

/// What [`tune_allocator`] sets: one arena (the threads of a cycle take turns at one heap
/// instead of each keeping its own), and blocks of 1 MB and more mapped and unmapped on their
/// own, with free memory above 1 MB at the top of the heap returned at once.
pub const SETTINGS: [Setting; 3] = [
    Setting {
        variable: "MALLOC_ARENA_MAX",
        tunable: "glibc.malloc.arena_max",
        value: 1,
    },
    Setting {
        variable: "MALLOC_MMAP_THRESHOLD_",
        tunable: "glibc.malloc.mmap_threshold",
        value: 1 << 20,
    },
    Setting {
        variable: "MALLOC_TRIM_THRESHOLD_",
        tunable: "glibc.malloc.trim_threshold",
        value: 1 << 20,
    },
];

/// The settings the environment leaves to us: those whose variable is not set and whose
/// tunable `GLIBC_TUNABLES` does not name. `var` reads the environment (a parameter, so the
/// choice is tested without touching the process's own).
pub fn left_to_us(var: impl Fn(&str) -> Option<String>) -> Vec<Setting> {
    let tunables = var("GLIBC_TUNABLES").unwrap_or_default();
    let tuned = |name: &str| {
        tunables
            .split(':')
            .any(|t| t.split('=').next() == Some(name))
    };
    SETTINGS
        .into_iter()
        .filter(|s| var(s.variable).is_none() && !tuned(s.tunable))
        .collect()
}

/// Sets the allocator as the unit used to through its environment, for every command; the
/// first thing `main` does, before any thread starts. A setting the user's environment makes
/// is respected. Returns the settings applied.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
pub fn tune_allocator() -> Vec<Setting> {
    let ours = left_to_us(|name| std::env::var_os(name).map(|v| v.to_string_lossy().into_owned()));
    let param = |s: &Setting| match s.variable {
        "MALLOC_ARENA_MAX" => libc::M_ARENA_MAX,
        "MALLOC_MMAP_THRESHOLD_" => libc::M_MMAP_THRESHOLD,
        _ => libc::M_TRIM_THRESHOLD,
    };
    ours.into_iter()
        // SAFETY: mallopt takes two plain integers and changes the allocator's parameters
        // under the allocator's own lock; it has no precondition on its caller. It returns 0
        // (and changes nothing) for a value it refuses.
        .filter(|s| unsafe { libc::mallopt(param(s), s.value) } == 1)
        .collect()
}

/// Other allocators (musl, macOS) have no such settings: nothing to do.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn tune_allocator() -> Vec<Setting> {
    Vec::new()
}

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

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        }
    }

    fn names(s: &[Setting]) -> Vec<&str> {
        s.iter().map(|s| s.variable).collect()
    }

    #[test]
    fn a_plain_environment_gets_every_setting() {
        assert_eq!(left_to_us(env(&[])), SETTINGS);
        assert_eq!(
            SETTINGS.map(|s| s.value),
            [1, 1 << 20, 1 << 20],
            "one arena, 1 MB thresholds"
        );
    }

    #[test]
    fn a_setting_the_environment_makes_is_respected() {
        let ours = left_to_us(env(&[("MALLOC_ARENA_MAX", "4")]));
        assert_eq!(
            names(&ours),
            ["MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_"]
        );
        // Set, even empty, is the user's choice: glibc applied it already, as it reads it.
        let ours = left_to_us(env(&[("MALLOC_TRIM_THRESHOLD_", "")]));
        assert_eq!(names(&ours), ["MALLOC_ARENA_MAX", "MALLOC_MMAP_THRESHOLD_"]);
        let ours = left_to_us(env(&[(
            "GLIBC_TUNABLES",
            "glibc.malloc.mmap_threshold=131072:glibc.malloc.arena_max=2",
        )]));
        assert_eq!(names(&ours), ["MALLOC_TRIM_THRESHOLD_"]);
        // A tunable whose name merely starts like ours is not ours.
        let ours = left_to_us(env(&[("GLIBC_TUNABLES", "glibc.malloc.arena_maxx=2")]));
        assert_eq!(ours, SETTINGS);
    }

    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[test]
    fn glibc_accepts_the_settings() {
        // The test runner's environment may set some; whatever is left must be accepted.
        let left = left_to_us(|n| std::env::var(n).ok());
        assert_eq!(tune_allocator(), left);
    }
}
