# ci-lib.sh - the step timer shared by ci.sh and ci-clusters.sh (sourced, not run).
#
#   CI_TAG=ci source ci-lib.sh
#   step NAME CMD...     run CMD, log it, record its time; returns its status
#   print_timings        every step's time and the total, FAILED steps marked
# shellcheck shell=bash

T0=$(date +%s%3N)
TIMINGS=()
# shellcheck disable=SC2034  # filled and read by the sourcing script
FAILED=()

log() { printf '[%s %s] %s\n' "${CI_TAG:-ci}" "$(date +%T)" "$*" >&2; }
since() { # start_ms -> seconds with one decimal
  local d=$(( $(date +%s%3N) - $1 ))
  printf '%d.%d' $((d / 1000)) $(((d % 1000) / 100))
}

step() {
  local name=$1 t rc=0
  shift
  t=$(date +%s%3N)
  log "== $name"
  "$@" || rc=$?
  TIMINGS+=("$(printf '%-42s %6s s%s' "$name" "$(since "$t")" "$( ((rc)) && echo "  FAILED (exit $rc)")")")
  return "$rc"
}

print_timings() {
  log "timings:"
  printf '  %s\n' "${TIMINGS[@]}" >&2
  printf '  %-42s %6s s\n' "total" "$(since "$T0")" >&2
}
