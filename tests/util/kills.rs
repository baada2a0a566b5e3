//! Knobs and reporting of the long SIGKILL runs (tests/crash.rs, tests/daemon_faults.rs).

use std::collections::BTreeMap;

/// A number from the environment (a knob of the long tests), else `default`.
pub fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A fixed permutation of 0..n (no rand dependency), so kill delays are spread, not ordered.
pub fn spread(n: u64) -> Vec<u64> {
    let mut v: Vec<u64> = (0..n).collect();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for i in (1..v.len()).rev() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.swap(i, (x % (i as u64 + 1)) as usize);
    }
    v
}

/// Prints how many kills landed in each phase of a run.
pub fn print_phases(prefix: &str, phases: &BTreeMap<String, u64>) {
    for (phase, n) in phases {
        eprintln!("{prefix}   {n:4} kills {phase}");
    }
}
