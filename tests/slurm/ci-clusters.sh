#!/usr/bin/env bash
# ci-clusters.sh - the two-cluster tests as CI runs them (issue 15). Run as root on Debian 12.
#
#   1. build the test binary (fails fast on a compile error, before any daemon starts)
#   2. second.sh stop, cluster.sh stop --wipe     a clean slate: both job counters start at 1
#   3. second.sh start                            the rig (cluster rig, linuxproc mode) and
#                                                 cluster beta in the same slurmdbd
#   4. cargo test --test real_clusters with SLURM_USAGE_REAL_SLURM=1 (it submits its own
#      job mix with sbatch -M, stops and restarts beta's slurmctld)
#   5. always: second.sh stop, cluster.sh stop, a timing summary
#
# On a failed start or test run it prints both clusters' logs and exits non-zero.
#
# Environment (all optional):
#   SLURM_RIG_DIR     the rig directory it takes over  (/tmp/slurm-usage-rig) - it is WIPED
#   SLURM_RIG_*, SLURM_BETA_*   ports and timeouts (see cluster.sh and second.sh)
#   CARGO             cargo binary                     (cargo)
#   CARGO_TEST_ARGS   extra arguments for cargo test, e.g. "--release"
set -Eeuo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
CARGO=${CARGO:-cargo}
export SLURM_RIG_DIR=${SLURM_RIG_DIR:-/tmp/slurm-usage-rig}
export SLURM_CONF=$SLURM_RIG_DIR/etc/slurm.conf
export SLURM_RIG_MODE=linuxproc
export SLURM_RIG_VERSION=22.05 # beta runs the host's Slurm (second.sh)
# shellcheck disable=SC2206  # split on purpose
EXTRA=(${CARGO_TEST_ARGS:-})

CI_TAG=ci-clusters
# shellcheck source=tests/slurm/ci-lib.sh
source "$HERE/ci-lib.sh"

show_logs() {
  log "daemon logs follow"
  "$HERE/cluster.sh" logs >&2 || true
  "$HERE/second.sh" logs >&2 || true
}

stop_all() {
  local rc=0
  "$HERE/second.sh" stop || rc=1
  "$HERE/cluster.sh" stop "$@" || rc=1
  return "$rc"
}

finish() {
  local rc=$?
  trap - EXIT
  step "stop both clusters" stop_all || rc=1
  print_timings
  if (( ${#FAILED[@]} )); then
    log "FAILED: ${FAILED[*]}"
    rc=1
  fi
  (( rc == 0 )) && log "the two-cluster tests passed"
  exit "$rc"
}

[[ $(id -u) -eq 0 ]] || { log "must run as root (the rig starts daemons and submits as other users)"; exit 1; }
cd "$ROOT"

step "build tests" "$CARGO" test "${EXTRA[@]}" --test real_clusters --no-run

trap finish EXIT
step "stop, wipe the rig dir" stop_all --wipe
if ! step "start rig + beta" "$HERE/second.sh" start; then
  FAILED+=("start")
  show_logs
  exit 1
fi
if ! step "cargo test real_clusters" env SLURM_USAGE_REAL_SLURM=1 \
  "$CARGO" test "${EXTRA[@]}" --test real_clusters -- --test-threads=1; then
  FAILED+=("tests")
  show_logs
fi
