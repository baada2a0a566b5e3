#!/usr/bin/env bash
# ci.sh - the real-SLURM integration tests as CI runs them (issue 4). Run as root on Debian 12.
#
#   1. build the test binary (fails fast on a compile error, before any daemon starts)
#   2. for each Slurm version (22.05 from Debian 12, then 24.11 from a cached Debian 13 root):
#        cluster.sh stop --wipe     a clean slate (database, state, logs)
#        cluster.sh rootfs          24.11 only: build the Debian 13 root, or find it cached
#        for each mode (linuxproc, then cgroup):
#          cluster.sh start         installs the packages on first use; restarts on a mode change
#          jobs.sh                  submits the job mix and waits for its accounting
#          cargo test --test real_slurm with SLURM_USAGE_REAL_SLURM=1
#   3. always: cluster.sh stop (trap; a rig left on another version than 22.05 is wiped, so
#      the next `cluster.sh start` is a 22.05 one again), a timing summary
#
# On a failed start, job mix or test run it prints `cluster.sh logs`; a failed start or job
# mix skips the rest of that version. A failed test run in one mode still lets the next
# mode and version run; the exit code reports all.
#
# Environment (all optional):
#   SLURM_CI_VERSIONS Slurm versions to run, in order ("22.05 24.11")
#   SLURM_CI_MODES    modes to run, in order          ("linuxproc cgroup")
#   SLURM_CI_MODES_2411 modes on 24.11                 (SLURM_CI_MODES)
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
MODES_2411=${SLURM_CI_MODES_2411:-$MODES}
VERSIONS=${SLURM_CI_VERSIONS:-22.05 24.11}
export SLURM_RIG_DIR=${SLURM_RIG_DIR:-/tmp/slurm-usage-rig}
export SLURM_CONF=$SLURM_RIG_DIR/etc/slurm.conf
# the rig's SLURM tools first (cluster.sh writes wrappers there for 24.11)
export PATH=$SLURM_RIG_DIR/bin:$PATH
# shellcheck disable=SC2206  # split on purpose
EXTRA=(${CARGO_TEST_ARGS:-})

CI_TAG=ci
# shellcheck source=tests/slurm/ci-lib.sh
source "$HERE/ci-lib.sh"

show_logs() {
  log "daemon logs follow"
  "$CLUSTER" logs >&2 || true
}

finish() {
  local rc=$?
  trap - EXIT
  step "cluster stop" "$CLUSTER" stop || rc=1
  if [[ $(cat "$SLURM_RIG_DIR/etc/version" 2>/dev/null || echo 22.05) != 22.05 ]]; then
    step "cluster stop --wipe (not 22.05)" "$CLUSTER" stop --wipe || rc=1
  fi
  print_timings
  if (( ${#FAILED[@]} )); then
    log "FAILED: ${FAILED[*]}"
    rc=1
  fi
  (( rc == 0 )) && log "all real-SLURM tests passed (versions: $VERSIONS; modes: $MODES; on 24.11: $MODES_2411)"
  exit "$rc"
}

[[ $(id -u) -eq 0 ]] || { log "must run as root (the rig starts daemons and submits as other users)"; exit 1; }
cd "$ROOT"

step "build tests" "$CARGO" test "${EXTRA[@]}" --test real_slurm --no-run

trap finish EXIT

# run_version VERSION MODES... : the suite on one Slurm version; 1 when its rig failed.
run_version() {
  local version=$1 mode name
  shift
  export SLURM_RIG_VERSION=$version
  if ! step "cluster stop --wipe" "$CLUSTER" stop --wipe; then
    FAILED+=("cluster stop --wipe (before $version)")
    return 1
  fi
  if [[ $version != 22.05 ]] && ! step "cluster rootfs ($version)" "$CLUSTER" rootfs; then
    FAILED+=("cluster rootfs ($version)")
    return 1
  fi
  for mode in "$@"; do
    export SLURM_RIG_MODE=$mode
    name="$version $mode"
    if ! step "cluster start ($name)" "$CLUSTER" start; then
      FAILED+=("cluster start ($name)")
      show_logs
      return 1
    fi
    if ! step "jobs.sh ($name)" "$JOBS"; then
      FAILED+=("jobs.sh ($name)")
      show_logs
      return 1
    fi
    if ! step "cargo test real_slurm ($name)" env SLURM_USAGE_REAL_SLURM=1 \
      "$CARGO" test "${EXTRA[@]}" --test real_slurm -- --test-threads=1; then
      FAILED+=("tests ($name)")
      show_logs
    fi
  done
}

for version in $VERSIONS; do
  case $version in
    22.05) # shellcheck disable=SC2086  # split on purpose
      run_version "$version" $MODES || true ;;
    24.11) # shellcheck disable=SC2086
      run_version "$version" $MODES_2411 || true ;;
    *) log "unknown Slurm version '$version' in SLURM_CI_VERSIONS (22.05, 24.11)"; FAILED+=("version $version") ;;
  esac
done
