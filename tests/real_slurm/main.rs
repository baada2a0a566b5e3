//! Integration tests against a REAL SLURM 22.05 with slurmdbd and MariaDB (tests/slurm/).
//!
//! They run the built `slurm-usage collect` (and one `daemon` cycle) against the rig that
//! `tests/slurm/cluster.sh` starts and compare what it archived, job by job, with what the
//! real `sacct` reports for the same job (`sacct -j ID`, TZ=UTC). CPU seconds vary with the
//! machine's load, so every expected number comes from sacct's own output, never from a
//! constant.
//!
//! Gate: they need root and the running rig, and only run when `SLURM_USAGE_REAL_SLURM=1`
//! (CI sets it: `tests/slurm/ci.sh`). Unset, every test prints one "skipped" line and passes.
//! Set, an unreachable cluster is a failure with the reason, never a silent skip.
//!
//! Flow (each phase runs once per test process, behind a `OnceLock`, whatever test asks first):
//! 1. The rig answers (`scontrol ping`, `sacctmgr`), else fail.
//! 2. The job mix: the manifest `$SLURM_RIG_DIR/jobs.tsv` is reused when it matches the
//!    cluster (the RUNNING job runs, the PENDING job is pending for at least 10 more
//!    minutes, every finished job has its expected state, the mode's job set); otherwise
//!    `tests/slurm/jobs.sh` is run (needs root). So the tests are idempotent.
//! 3. First collect into `target/tmp/real_slurm/first` (`collect --days 1`), bracketed by
//!    `sacct -j` snapshots of every job of the manifest (repeated until the finished jobs are
//!    settled and did not change across the collect).
//!    `current` and `nodes` are run right then too, with `squeue`/`sinfo` beside them.
//! 4. Second phase: `jobs.sh finish` (cancels the RUNNING and PENDING jobs, waits for their
//!    final accounting), a copy of the first data dir, a second collect into it, snapshots.
//! 5. Daemon phase: `slurm-usage daemon` on a fresh data dir (its catch-up cycle at start,
//!    `STATUS=collected ...` on a notify socket, SIGTERM, exit 0), snapshots.
//!
//! Every phase's data is checked against its own sacct snapshots with the same checks
//! (records, metrics, raw rows, attribution, window); `status`, `test` and `job` run against
//! the phases' data dirs. Tests only read the phases, so they may run in any order or in
//! parallel; what changes the cluster runs once, under a mutex.
//!
//! The configured zone is picked so that it is about noon there (`Etc/GMT±N`): the jobs of the
//! mix, which ran minutes ago, and the PENDING job's `--begin=now+1hour` eligible time all
//! fall on "today", whatever the time of day CI runs; it also exercises a non-UTC zone for
//! the `-S/-E` windows and date attribution. `SLURM_USAGE_TEST_TZ` overrides it.
//!
//! Environment: `SLURM_USAGE_REAL_SLURM` (gate), `SLURM_RIG_DIR` (/tmp/slurm-usage-rig),
//! `SLURM_CONF` (default `$SLURM_RIG_DIR/etc/slurm.conf`), `SLURM_USAGE_TEST_TZ`,
//! `SLURM_USAGE_TEST_TRACE` (print every command the tests run, with its time).
//!
//! Modules: the rig and running commands against it (`rig`), what sacct says (`sacct`), the
//! job mix (`manifest`), one collection and its data read back (`phase`, `data_dir`), the
//! gate and the phases in order (`setup`), the numbers computed from sacct's text
//! (`expected`) and the checks (`checks`); the tests by phase (`first_collect`,
//! `second_collect`, `daemon_cycle`), for the other commands (`commands`), and where sacct
//! differs between the Slurm releases the rig runs (`versions`). The binary is
//! started through the shared runner of `tests/util` (one environment rule for every test).

/// Writes one line to the process's stderr. Not `eprintln!`: libtest captures that for
/// passing tests, and the skip line and the timings must show in CI logs.
macro_rules! note {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

#[path = "../util/mod.rs"]
mod util;

mod checks;
mod data_dir;
mod expected;
mod manifest;
mod phase;
mod rig;
mod sacct;
mod setup;

mod commands;
mod daemon_cycle;
mod first_collect;
mod incremental;
mod second_collect;
mod versions;
