#!/usr/bin/env bash
# ci.sh - the real-SLURM integration tests as CI runs them (issue 4). Run as root on Debian 12.
#
#   1. build the test binary (fails fast on a compile error, before any daemon starts)
#   2. cluster.sh stop --wipe       a clean slate (database, state, logs)
#   3. for each mode (linuxproc, then cgroup):
#        cluster.sh start           installs the packages on first use; restarts on a mode change
#        jobs.sh                    submits the job mix and waits for its accounting
#        cargo test --test real_slurm with SLURM_USAGE_REAL_SLURM=1
#   4. always: cluster.sh stop (trap), a timing summary
#
# On a failed start, job mix or test run it prints `cluster.sh logs` and exits non-zero. A
# failed test run in one mode still lets the next mode run; the exit code reports both.
#
# Environment (all optional):
#   SLURM_CI_MODES    modes to run, in order          ("linuxproc cgroup")
#   SLURM_RIG_DIR     the rig directory it takes over  (/tmp/slurm-usage-rig) - it is WIPED
#   SLURM_RIG_*       ports and timeouts, passed to cluster.sh / jobs.sh (see README.md)
#   CARGO             cargo binary                     (cargo)
#   CARGO_TEST_ARGS   extra arguments for cargo test, e.g. "--release"
set -Eeuo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
CLUSTER=$HERE/cluster.sh
JOBS=$HERE/jobs.sh
CARGO=${CARGO:-cargo}
MODES=${SLURM_CI_MODES:-linuxproc cgroup}
export SLURM_RIG_DIR=${SLURM_RIG_DIR:-/tmp/slurm-usage-rig}
export SLURM_CONF=$SLURM_RIG_DIR/etc/slurm.conf
# shellcheck disable=SC2206  # split on purpose
EXTRA=(${CARGO_TEST_ARGS:-})

T0=$(date +%s%3N)
TIMINGS=()
FAILED=()

log() { printf '[ci %s] %s\n' "$(date +%T)" "$*" >&2; }
since() { # start_ms -> seconds with one decimal
  local d=$(( $(date +%s%3N) - $1 ))
  printf '%d.%d' $((d / 1000)) $(((d % 1000) / 100))
}

# step NAME CMD... : run CMD, record its time; return its status.
step() {
  local name=$1 t rc=0
  shift
  t=$(date +%s%3N)
  log "== $name"
  "$@" || rc=$?
  TIMINGS+=("$(printf '%-36s %6s s%s' "$name" "$(since "$t")" "$( ((rc)) && echo "  FAILED (exit $rc)")")")
  return "$rc"
}

show_logs() {
  log "daemon logs follow"
  "$CLUSTER" logs >&2 || true
}

finish() {
  local rc=$?
  trap - EXIT
  step "cluster stop" "$CLUSTER" stop || rc=1
  log "timings:"
  printf '  %s\n' "${TIMINGS[@]}" >&2
  printf '  %-36s %6s s\n' "total" "$(since "$T0")" >&2
  if (( ${#FAILED[@]} )); then
    log "FAILED: ${FAILED[*]}"
    rc=1
  fi
  (( rc == 0 )) && log "all real-SLURM tests passed (modes: $MODES)"
  exit "$rc"
}

[[ $(id -u) -eq 0 ]] || { log "must run as root (the rig starts daemons and submits as other users)"; exit 1; }
cd "$ROOT"

step "build tests" "$CARGO" test "${EXTRA[@]}" --test real_slurm --no-run

trap finish EXIT
step "cluster stop --wipe" "$CLUSTER" stop --wipe

for mode in $MODES; do
  export SLURM_RIG_MODE=$mode
  if ! step "cluster start ($mode)" "$CLUSTER" start; then
    FAILED+=("cluster start ($mode)")
    show_logs
    exit 1
  fi
  if ! step "jobs.sh ($mode)" "$JOBS"; then
    FAILED+=("jobs.sh ($mode)")
    show_logs
    exit 1
  fi
  if ! step "cargo test real_slurm ($mode)" env SLURM_USAGE_REAL_SLURM=1 \
    "$CARGO" test "${EXTRA[@]}" --test real_slurm -- --test-threads=1; then
    FAILED+=("tests ($mode)")
    show_logs
  fi
done
