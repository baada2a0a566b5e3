#!/usr/bin/env bash
# Rows a daemon asks of sacct per hourly cycle (issue #18, item 3; not CI): whole days
# (today and `lookback_days` = 2 days before it, three queries, as every cycle did before
# incremental cycles) against one incremental query (the jobs active since the last cycle
# started, minus the 10-minute overlap, up to the end of today), from the synthetic sacct at
# JOBS jobs a day, at each hour of one day. Prints one line per cycle and the means.
#
#   benches/incremental_rows.sh [JOBS] [DAY]     (defaults: 100000, 2026-11-20)
#
# The rows are what sacct prints (job lines and steps), the figure the summary and
# `slurm_usage_last_cycle_sacct_rows` count. The whole-day figure leaves out older
# incomplete dates a cycle also queried whole, so "before" is a lower bound. The synthetic
# timeline scales with JOBS (each day's jobs are drawn the same way), so a smaller JOBS
# times its factor is a fair stand-in when the debug binary is all there is.
set -Eeuo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
JOBS=${1:-100000}
DAY=${2:-2026-11-20}
BIN=$PWD/target/release/slurm-usage
[[ -x $BIN ]] || BIN=$PWD/target/debug/slurm-usage
[[ -x $BIN ]] || { echo "build first: cargo build --release" >&2; exit 1; }

rows() { # now start end
  "$BIN" fake-sacct --jobs-per-day "$JOBS" --now "$1" -- --starttime "$2" --endtime "$3" | wc -l
}
day() { date -u -d "$DAY 00:00 UTC $1 day" +%Y-%m-%d; }
tomorrow=$(day 1)
total_full=0 total_incr=0 n=0
printf '%-20s %12s %12s\n' now whole-days incremental
for h in $(seq 0 23); do
  now=$(printf '%sT%02d:05:00' "$DAY" "$h")
  since=$(date -u -d "$DAY $(printf '%02d' "$h"):05:00 UTC - 70 min" +%Y-%m-%dT%H:%M:%S)
  full=0
  for back in 2 1 0; do
    full=$((full + $(rows "$now" "$(day $((-back)))T00:00:00" "$(day $((1 - back)))T00:00:00")))
  done
  incr=$(rows "$now" "$since" "${tomorrow}T00:00:00")
  printf '%-20s %12d %12d\n' "$now" "$full" "$incr"
  total_full=$((total_full + full)) total_incr=$((total_incr + incr)) n=$((n + 1))
done
printf 'mean per hourly cycle at %d jobs/day: whole days %d rows, incremental %d rows (%.1fx fewer)\n' \
  "$JOBS" $((total_full / n)) $((total_incr / n)) "$(echo "$total_full / $total_incr" | bc -l)"
