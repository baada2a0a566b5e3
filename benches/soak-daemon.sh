#!/usr/bin/env bash
# Soak run of `slurm-usage daemon`: memory and sacct concurrency over many fast cycles.
#
#   benches/soak-daemon.sh [CYCLES] [JOBS_PER_DAY] [LOOKBACK_DAYS]
#   (defaults: 1000 cycles, 100 jobs per day, lookback 6 days)
#
# What it does:
# 1. Idle RSS: a daemon on a daily schedule whose data dir had a successful cycle moments
#    ago (so no catch-up): VmRSS after 10 s of waiting. Then the same after one real cycle.
# 2. Soak: a daemon with `cron = "* * * * * *"`, jitter 0, against the binary's own
#    synthetic sacct, `settle = "30d"` so no date ever becomes final and every cycle
#    queries the same LOOKBACK_DAYS+1 dates (max_recollect_days = LOOKBACK_DAYS) with
#    max_concurrent_sacct = 4. It samples VmRSS once a
#    second and the daemon's child processes (every sacct) every 50 ms, and every sacct call
#    records how many calls were running when it started. Runs until CYCLES cycles are done.
#
# 3. Idle again: SIGHUP with a daily schedule, VmRSS 15 s later.
#
# Prints a summary: idle RSS, RSS after warm-up vs at the end, the largest RSS, the most
# sacct processes seen at once, cycles ok/failed, idle RSS after the soak. Uses $SLURM_USAGE_BIN, else
# target/release/slurm-usage (built if missing). Needs bash, awk, pgrep (procps) and Linux /proc.
set -euo pipefail

cycles="${1:-1000}"
jobs="${2:-100}"
lookback="${3:-6}"
concurrency=4

root="$(cd "$(dirname "$0")/.." && pwd)"
bin="${SLURM_USAGE_BIN:-$root/target/release/slurm-usage}"
if [ ! -x "$bin" ]; then
    (cd "$root" && cargo build --release --quiet)
fi
work="$(mktemp -d)"
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }

# A sacct that runs the synthetic one and logs how many calls were in flight when it
# started (not exec'd, so it can remove its marker when the call ends).
mkdir -p "$work/running"
cat >"$work/sacct" <<EOF
#!/bin/bash
marker="$work/running/\$\$"
: >"\$marker"
ls "$work/running" | wc -l >>"$work/concurrency.log"
"$bin" fake-sacct --jobs-per-day $jobs -- "\$@"
rc=\$?
rm -f "\$marker"
exit \$rc
EOF
chmod +x "$work/sacct"

config() { # $1 = name, $2 = cron, $3 = settle
    cat >"$work/$1.toml" <<EOF
data_dir = "$work/$1-data"
timezone = "UTC"
[schedule]
cron = "$2"
jitter = "0s"
[collect]
sacct = "$work/sacct"
lookback_days = $lookback
max_recollect_days = $lookback
max_concurrent_sacct = $concurrency
retries = 0
settle = "$3"
[metrics]
textfile = "$work/$1.prom"
[log]
level = "warn"
EOF
}

metric() { # $1 = prom file, $2 = sample line prefix
    awk -v k="$2" 'index($0, k) == 1 {print $NF}' "$1" 2>/dev/null | head -1
}

# --- 1. idle RSS -------------------------------------------------------------------
config idle "0 15 2 * * *" "1h"
mkdir -p "$work/idle-data"
now="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
printf '{"completed_dates": [], "last_updated": null, "version": 1, "last_success": "%s"}\n' "$now" \
    >"$work/idle-data/.date_completion_tracker.json"
"$bin" daemon --config "$work/idle.toml" 2>"$work/idle.log" &
idle_pid=$!
pids+=("$idle_pid")
sleep 10
idle_fresh="$(rss_kb "$idle_pid")"
kill -TERM "$idle_pid"
wait "$idle_pid" || true
# Once more without the tracker: one catch-up cycle, then idle.
rm -rf "$work/idle-data"
"$bin" daemon --config "$work/idle.toml" 2>>"$work/idle.log" &
idle_pid=$!
pids+=("$idle_pid")
for _ in $(seq 1 300); do
    [ "$(metric "$work/idle.prom" 'slurm_usage_cycles_total{result="ok"}')" = "1" ] && break
    sleep 0.1
done
sleep 10
idle_after="$(rss_kb "$idle_pid")"
kill -TERM "$idle_pid"
wait "$idle_pid" || true
echo "idle RSS: ${idle_fresh} kB before any cycle, ${idle_after} kB after one cycle ($((lookback + 1)) dates x $jobs jobs)"

# --- 2. soak -----------------------------------------------------------------------
config soak "* * * * * *" "30d"
"$bin" daemon --config "$work/soak.toml" 2>"$work/soak.log" &
pid=$!
pids+=("$pid")
: >"$work/children.log"
(
    # Every 50 ms: how many children (sacct calls) the daemon has right now.
    while kill -0 "$pid" 2>/dev/null; do
        pgrep -c -P "$pid" >>"$work/children.log" || true
        sleep 0.05
    done
) &
pids+=("$!")

echo "soak: $cycles cycles, cron every second, $((lookback + 1)) dates x $jobs jobs per cycle, max_concurrent_sacct=$concurrency"
printf '%8s %8s %8s %10s\n' seconds ok failed rss_kB
start="$(date +%s)"
next_print=60
: >"$work/rss.log"
while :; do
    sleep 1
    kill -0 "$pid" 2>/dev/null || { echo "daemon died; log:" >&2; tail -20 "$work/soak.log" >&2; exit 1; }
    ok="$(metric "$work/soak.prom" 'slurm_usage_cycles_total{result="ok"}')"
    failed="$(metric "$work/soak.prom" 'slurm_usage_cycles_total{result="failed"}')"
    rss="$(rss_kb "$pid")"
    elapsed=$(($(date +%s) - start))
    echo "$elapsed ${ok:-0} ${failed:-0} $rss" >>"$work/rss.log"
    if [ "$elapsed" -ge "$next_print" ]; then
        printf '%8s %8s %8s %10s\n' "$elapsed" "${ok:-0}" "${failed:-0}" "$rss"
        next_print=$((next_print + 60))
    fi
    [ $((${ok:-0} + ${failed:-0})) -ge "$cycles" ] && break
done
# Idle after the soak: reload (SIGHUP) to a daily schedule and let it sit.
sed -i 's/^cron = .*/cron = "0 15 2 * * *"/' "$work/soak.toml"
kill -HUP "$pid"
sleep 15
idle_end="$(rss_kb "$pid")"
kill -TERM "$pid"
t0="$(date +%s.%N)"
wait "$pid" && code=0 || code=$?
stop_s="$(echo "$(date +%s.%N) - $t0" | bc 2>/dev/null || echo "?")"

# RSS after warm-up (the samples of cycles 10-50) against the last 10% of the run.
awk -v total="$cycles" '
    { c = $2 + $3; rss[NR] = $4; cyc[NR] = c; if ($4 > max) max = $4 }
    c >= 10 && c <= 50 { early += $4; ne++ }
    c >= total * 0.9 { late += $4; nl++ }
    END {
        printf "RSS: %d kB after warm-up (mean over cycles 10-50), %d kB over the last 10%% of cycles, max %d kB\n",
            early / (ne ? ne : 1), late / (nl ? nl : 1), max
    }' "$work/rss.log"
ok="$(metric "$work/soak.prom" 'slurm_usage_cycles_total{result="ok"}')"
failed="$(metric "$work/soak.prom" 'slurm_usage_cycles_total{result="failed"}')"
calls="$(metric "$work/soak.prom" 'slurm_usage_sacct_calls_total')"
echo "cycles: ${ok:-0} ok, ${failed:-0} failed, in $(tail -1 "$work/rss.log" | cut -d' ' -f1) s; sacct calls: ${calls:-0}"
echo "most sacct calls at once: $(sort -n "$work/concurrency.log" | tail -1) (as seen by each call at its start), $(sort -n "$work/children.log" | tail -1) (sampled children, every 50 ms); limit $concurrency"
echo "idle RSS after the soak (reloaded to a daily schedule, 15 s later): ${idle_end} kB"
echo "stop after SIGTERM: exit $code in ${stop_s} s"
