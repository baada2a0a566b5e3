#!/bin/bash
# The full crash-safety run (issue 7): 250 SIGKILLs (and 20 SIGTERMs) spread over
# `collect --days 3` against this binary's synthetic sacct; prints the kills and losses.
# Override: SLURM_USAGE_CRASH_KILLS, SLURM_USAGE_CRASH_TERMS, SLURM_USAGE_CRASH_JOBS (jobs/day).
set -euo pipefail
cd "$(dirname "$0")/.."
export SLURM_USAGE_CRASH_KILLS="${SLURM_USAGE_CRASH_KILLS:-250}"
export SLURM_USAGE_CRASH_TERMS="${SLURM_USAGE_CRASH_TERMS:-20}"
export SLURM_USAGE_CRASH_JOBS="${SLURM_USAGE_CRASH_JOBS:-500}"
cargo test --test crash -- --nocapture --test-threads 1 2>&1 | grep -E '^crash:|^test |test result|panicked|lost'
