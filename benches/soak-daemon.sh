#!/usr/bin/env bash
# Soak run of `slurm-usage daemon`: memory, sacct concurrency, child reaping and data
# completeness over many fast cycles, optionally against a failing and hanging sacct.
#
#   benches/soak-daemon.sh [CYCLES] [JOBS_PER_DAY] [LOOKBACK_DAYS]
#   benches/soak-daemon.sh [--cycles N | --minutes M] [--jobs N] [--lookback N]
#                          [--fail-pct P] [--hang-pct P] [--sacct-timeout S] [--retries N]
#                          [--settle-phase S] [--no-idle]
#   (defaults: 1000 cycles, 100 jobs per day, lookback 6 days, no faults)
#
# Issue 7's fault soak (10 minutes, 10% failing and 5% hanging sacct calls):
#   benches/soak-daemon.sh --minutes 10 --fail-pct 10 --hang-pct 5
#
# What it does:
# 1. Idle RSS (skipped with --no-idle): a daemon on a daily schedule whose data dir had a
#    successful cycle moments ago (so no catch-up): VmRSS after 10 s of waiting. Then the
#    same after one real cycle.
# 2. Soak: a daemon with `cron = "* * * * * *"`, jitter 0, against the binary's own
#    synthetic sacct, `settle = "30d"` so no date becomes final and every cycle queries the
#    same LOOKBACK_DAYS+1 dates (max_recollect_days = LOOKBACK_DAYS) with
#    max_concurrent_sacct = 4. It samples VmRSS once a second and the daemon's child
#    processes (every sacct, with its state, so zombies show) every 50 ms; every sacct call
#    records how many calls were running when it started. Runs for CYCLES cycles, or for
#    M minutes.
#    Faults (--fail-pct, --hang-pct): each sacct call draws at random whether it fails
#    (prints a random prefix of the real output, an error on stderr, exits 1) or hangs
#    (prints a random prefix, then becomes `sleep 3600` holding stdout open, so only the
#    daemon's `sacct_timeout`, default 2 s here, ends it). Calls to `sacct --version` draw
#    too. Failed dates are retried (`retries = 1`, `retry_delay = "1s"`), and the cycle after.
#    Once a second the script also looks for any hung sacct older than the timeout plus 5 s,
#    wherever it was reparented.
# 3. Settle under faults (--settle-phase S, default 30 s; faults only): SIGHUP with
#    `settle = "1s"`, so past dates whose jobs are all final become complete, while sacct
#    still fails and hangs: a date must become complete only from a whole, successful call.
# 4. Faults off and `settle = "1s"` (SIGHUP), two clean cycles, reference taken, two more
#    clean cycles, SIGHUP to a daily schedule, idle RSS 15 s later, reference again, SIGTERM.
# 5. Checks: exit 0 after SIGTERM; never more sacct calls at once than max_concurrent_sacct;
#    no panic in the log; no zombie child seen for more than 1 s; no sacct (or its `sleep`)
#    left after the stop; every hung call killed, and every injected fault counted by the
#    daemon's metrics; and the data: for every date, the jobs in its processed file
#    (`analyze`, one date at a time) equal the distinct allocation lines the synthetic sacct
#    prints for the queried windows, attributed by start (or submit) date like the collector
#    does; no job in two files; the tracker's complete dates are exactly the past dates whose
#    jobs are all final.
#
# The binary sets the allocator as the service needs it (one arena, 1 MB mmap and trim
# thresholds: src/heap.rs) unless the environment sets a MALLOC_* variable for it, so the
# soak measures the service's behaviour without any variable.
#
# Prints a summary and exits 1 if a check failed. Uses $SLURM_USAGE_BIN, else
# target/release/slurm-usage (built if missing). Needs bash, awk, procps (ps, pgrep) and
# Linux /proc. SOAK_KEEP=1 keeps the work dir (logs, data) and prints where it is.
set -euo pipefail

cycles=""
minutes=""
jobs=100
lookback=6
fail_pct=0
hang_pct=0
sacct_timeout=2
retries=""
settle_phase=30
idle=1
positional=()
while [ $# -gt 0 ]; do
    case "$1" in
        --cycles) cycles="$2"; shift 2 ;;
        --minutes) minutes="$2"; shift 2 ;;
        --jobs) jobs="$2"; shift 2 ;;
        --lookback) lookback="$2"; shift 2 ;;
        --fail-pct) fail_pct="$2"; shift 2 ;;
        --hang-pct) hang_pct="$2"; shift 2 ;;
        --sacct-timeout) sacct_timeout="$2"; shift 2 ;;
        --retries) retries="$2"; shift 2 ;;
        --settle-phase) settle_phase="$2"; shift 2 ;;
        --no-idle) idle=0; shift ;;
        -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        -*) echo "soak-daemon.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
        *) positional+=("$1"); shift ;;
    esac
done
[ "${#positional[@]}" -ge 1 ] && cycles="${positional[0]}"
[ "${#positional[@]}" -ge 2 ] && jobs="${positional[1]}"
[ "${#positional[@]}" -ge 3 ] && lookback="${positional[2]}"
[ -z "$cycles" ] && [ -z "$minutes" ] && cycles=1000
for v in "${cycles:-0}" "${minutes:-0}" "$jobs" "$lookback" "$fail_pct" "$hang_pct" "$sacct_timeout" "$settle_phase"; do
    [[ "$v" =~ ^[0-9]+$ ]] || { echo "soak-daemon.sh: $v is not a whole number" >&2; exit 2; }
done
[ $((fail_pct + hang_pct)) -le 100 ] || { echo "soak-daemon.sh: --fail-pct + --hang-pct > 100" >&2; exit 2; }
faults=$((fail_pct + hang_pct > 0))
[ -z "$retries" ] && retries=$((faults ? 1 : 0))
[ "$faults" = 1 ] || settle_phase=0
concurrency=4

root="$(cd "$(dirname "$0")/.." && pwd)"
bin="${SLURM_USAGE_BIN:-$root/target/release/slurm-usage}"
if [ ! -x "$bin" ]; then
    (cd "$root" && cargo build --release --quiet)
fi
work="$(mktemp -d)"
# In the command line of every fake sacct process (and of the hung `sleep`), so leftovers can
# be found after the daemon is gone, whoever adopted them.
tag="soak-sacct-$$-$RANDOM"
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    for p in $(pgrep -f -- "$tag" || true); do kill -KILL "$p" 2>/dev/null || true; done
    if [ "${SOAK_KEEP:-0}" = 1 ]; then echo "work dir kept: $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }

# The fake sacct: the synthetic one, logging how many calls were in flight when it started
# and, with faults, failing or hanging at random. Not exec'd on the normal path, so it can remove its
# marker when the call ends.
mkdir -p "$work/running"
cat >"$work/sacct" <<EOF
#!/bin/bash
marker="$work/running/\$\$"
: >"\$marker"
# Live calls only: a marker whose pid is gone, or was reused by another process (pids wrap),
# is stale (a hung call killed by the daemon leaves its marker behind) and removed.
n=0
for f in "$work"/running/*; do
    args=()
    mapfile -d '' -t args 2>/dev/null <"/proc/\${f##*/}/cmdline" || true
    if [ "\${args[0]:-}" = "$tag-hang" ] || [ "\${args[1]:-}" = "$work/sacct" ]; then
        n=\$((n + 1))
    else
        rm -f "\$f"
    fi
done
echo \$n >>"$work/concurrency.log"
kind=ok
if [ ! -e "$work/faults-off" ]; then
    r=\$(( (RANDOM * 32768 + RANDOM) % 10000 ))
    if [ \$r -lt $((fail_pct * 100)) ]; then kind=fail
    elif [ \$r -lt $(((fail_pct + hang_pct) * 100)) ]; then kind=hang
    fi
fi
what=date
[ "\$1" = --version ] && what=version
echo "\$EPOCHREALTIME \$\$ \$kind \$what" >>"$work/calls.log"
case \$kind in
    fail)
        # A random prefix of the output (often all of it), then an error.
        "$bin" fake-sacct --jobs-per-day $jobs -- "\$@" --soak-tag=$tag | head -c \$((RANDOM * 8))
        echo "sacct: error: slurmdbd: Connection refused (injected failure)" >&2
        rm -f "\$marker"
        exit 1 ;;
    hang)
        "$bin" fake-sacct --jobs-per-day $jobs -- "\$@" --soak-tag=$tag | head -c \$((RANDOM * 4))
        exec -a "$tag-hang" sleep 3600 ;;
esac
"$bin" fake-sacct --jobs-per-day $jobs -- "\$@" --soak-tag=$tag
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
sacct_timeout = "$((faults ? sacct_timeout : 600))s"
retries = $retries
retry_delay = "1s"
settle = "$3"
# Every cycle the same whole dates, as the figures in docs/daemon.md were measured.
full_check = "always"
[metrics]
textfile = "$work/$1.prom"
[log]
level = "warn"
EOF
}

metric() { # $1 = prom file, $2 = sample line prefix
    awk -v k="$2" 'index($0, k) == 1 {print $NF}' "$1" 2>/dev/null | head -1
}
cycles_done() { # ok + failed cycles of the soak daemon
    local ok failed
    ok="$(metric "$work/soak.prom" 'slurm_usage_cycles_total{result="ok"}')"
    failed="$(metric "$work/soak.prom" 'slurm_usage_cycles_total{result="failed"}')"
    echo "${ok:-0} ${failed:-0}"
}
wait_ok_cycles() { # $1 = how many more ok cycles to wait for (at most 120 s)
    local want ok
    want=$(($(cycles_done | cut -d' ' -f1) + $1))
    for _ in $(seq 1 1200); do
        ok="$(cycles_done | cut -d' ' -f1)"
        [ "$ok" -ge "$want" ] && return 0
        kill -0 "$pid" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

# --- 1. idle RSS -------------------------------------------------------------------
if [ "$idle" = 1 ]; then
    config idle "0 15 2 * * *" "1h"
    mkdir -p "$work/idle-data"
    now="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
    printf '{"completed_dates": [], "last_updated": null, "version": 1, "last_success": "%s"}\n' "$now" \
        >"$work/idle-data/.date_completion_tracker.json"
    touch "$work/faults-off" # idle figures are for the happy path
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
    rm -f "$work/faults-off" "$work/calls.log" "$work/concurrency.log"
    echo "idle RSS: ${idle_fresh} kB before any cycle, ${idle_after} kB after one cycle ($((lookback + 1)) dates x $jobs jobs)"
fi

# --- 2. soak -----------------------------------------------------------------------
config soak "* * * * * *" "30d"
"$bin" daemon --config "$work/soak.toml" 2>"$work/soak.log" &
pid=$!
pids+=("$pid")
: >"$work/children.log"
(
    # Every 50 ms: the daemon's children (every sacct call) with their state: "time pid stat ...".
    while kill -0 "$pid" 2>/dev/null; do
        s="$(ps -o pid=,stat= --ppid "$pid" 2>/dev/null || true)"
        s="${s//$'\n'/ }"
        echo "$EPOCHREALTIME ${s}" >>"$work/children.log"
        sleep 0.05
    done
) &
pids+=("$!")

if [ -n "$minutes" ]; then
    goal="$minutes minutes"
    deadline=$(($(date +%s) + minutes * 60))
else
    goal="$cycles cycles"
    deadline=0
fi
if [ "$faults" = 1 ]; then
    echo "faults: ${fail_pct}% of sacct calls fail (exit 1), ${hang_pct}% hang (sacct_timeout ${sacct_timeout}s); retries = $retries"
fi
echo "soak: $goal, cron every second, $((lookback + 1)) dates x $jobs jobs per cycle, max_concurrent_sacct=$concurrency"
printf '%8s %8s %8s %10s\n' seconds ok failed rss_kB
start="$(date +%s)"
next_print=60
: >"$work/rss.log"
: >"$work/hung.log"
while :; do
    sleep 1
    kill -0 "$pid" 2>/dev/null || { echo "daemon died; log:" >&2; tail -20 "$work/soak.log" >&2; exit 1; }
    read -r ok failed < <(cycles_done)
    rss="$(rss_kb "$pid")"
    elapsed=$(($(date +%s) - start))
    echo "$elapsed $ok $failed $rss" >>"$work/rss.log"
    # The oldest hung sacct still alive, wherever it was reparented.
    hung="$(pgrep -d, -f -- "$tag-hang" || true)"
    if [ -n "$hung" ]; then
        ps -o etimes= -p "$hung" 2>/dev/null | sort -n | tail -1 >>"$work/hung.log" || true
    fi
    if [ "$elapsed" -ge "$next_print" ]; then
        printf '%8s %8s %8s %10s\n' "$elapsed" "$ok" "$failed" "$rss"
        next_print=$((next_print + 60))
    fi
    if [ -n "$minutes" ]; then
        [ "$(date +%s)" -ge "$deadline" ] && break
    else
        [ $((ok + failed)) -ge "$cycles" ] && break
    fi
done
soak_seconds=$(($(date +%s) - start))
read -r soak_ok soak_failed < <(cycles_done)

# --- 3. settle under faults ----------------------------------------------------------
if [ "$settle_phase" -gt 0 ]; then
    sed -i 's/^settle = .*/settle = "1s"/' "$work/soak.toml"
    kill -HUP "$pid"
    echo "settle under faults: settle = \"1s\" for ${settle_phase} s, faults still on"
    sleep "$settle_phase"
fi

# --- 4. faults off, final cycles, references ----------------------------------------
# The synthetic sacct's output depends on the clock (jobs are submitted, start and finish as
# time passes), so the reference is taken twice around the last cycles: if both agree, the
# last cycle saw exactly that.
reference() { # $1 = out file: "date jobs all_final" for every date a queried window shows
    local today d
    today="$(date -u +%F)"
    for i in $(seq "$lookback" -1 0); do
        d="$(date -u -d "$today - $i days" +%F)"
        "$bin" fake-sacct --jobs-per-day "$jobs" -- --starttime "${d}T00:00:00" \
            --endtime "$(date -u -d "$d + 1 day" +%F)T00:00:00" \
            --format=JobID,JobIDRaw,Submit,Start,State --delimiter='|'
    done | awk -F'|' '
        $2 ~ /\./ { next }  # steps
        {
            d = ($4 ~ /^[0-9][0-9][0-9][0-9]-/) ? substr($4, 1, 10) : substr($3, 1, 10)
            split($5, w, " "); s = w[1]; sub(/\+$/, "", s)
            date[$1] = d; state[$1] = s
        }
        END {
            final = "^(COMPLETED|FAILED|CANCELLED|TIMEOUT|OUT_OF_MEMORY|NODE_FAIL|BOOT_FAIL|DEADLINE|PREEMPTED|LAUNCH_FAILED|RECONFIG_FAIL)$"
            for (j in date) { n[date[j]]++; if (state[j] !~ final) open[date[j]]++ }
            for (d in n) print d, n[d], (open[d] ? "no" : "yes")
        }' | sort >"$1"
}
touch "$work/faults-off"
sed -i 's/^settle = .*/settle = "1s"/' "$work/soak.toml"
kill -HUP "$pid"
wait_ok_cycles 2 || echo "warning: no clean cycle after the faults were turned off" >&2
reference "$work/reference-1.txt"
wait_ok_cycles 2 || echo "warning: no clean cycle after the first reference" >&2
# Idle after the soak: reload (SIGHUP) to a daily schedule and let it sit.
sed -i 's/^cron = .*/cron = "0 15 2 * * *"/' "$work/soak.toml"
kill -HUP "$pid"
sleep 15
idle_end="$(rss_kb "$pid")"
reference "$work/reference-2.txt"
kill -TERM "$pid"
t0="$(date +%s.%N)"
wait "$pid" && code=0 || code=$?
stop_s="$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN {printf "%.2f", b - a}')"
sleep 1 # let the sampler see the daemon gone
leftover="$(pgrep -c -f -- "$tag" || true)"
leftover_wrappers="$(pgrep -c -f -- "$work/sacct" || true)"

# --- 5. figures and checks ---------------------------------------------------------
failures=0
check() { # $1 = ok (0/1), $2 = text
    if [ "$1" = 1 ]; then echo "ok:   $2"; else echo "FAIL: $2"; failures=$((failures + 1)); fi
}

# RSS after warm-up (the samples of cycles 10-50) against the last 10% of the soak's samples.
awk '
    { c = $2 + $3; t[NR] = $1; rss[NR] = $4; if ($4 > max) max = $4 }
    c >= 10 && c <= 50 { early += $4; ne++ }
    END {
        for (i = int(NR * 0.9) + 1; i <= NR; i++) { late += rss[i]; nl++ }
        printf "RSS: %d kB after warm-up (mean over cycles 10-50), %d kB over the last 10%% of the soak, max %d kB\n",
            early / (ne ? ne : 1), late / (nl ? nl : 1), max
        # Flatness: the mean of each tenth of the soak, and the trend over its second half.
        printf "RSS by tenth of the soak (mean, MB):"
        for (k = 1; k <= 10; k++) {
            s = 0; n = 0
            for (i = int(NR * (k - 1) / 10) + 1; i <= int(NR * k / 10); i++) { s += rss[i]; n++ }
            printf " %.1f", n ? s / n / 1024 : 0
        }
        sx = sy = sxy = sxx = n = 0
        for (i = int(NR / 2) + 1; i <= NR; i++) { x = t[i] / 60; sx += x; sy += rss[i]; sxy += x * rss[i]; sxx += x * x; n++ }
        slope = (n > 1 && n * sxx - sx * sx) ? (n * sxy - sx * sy) / (n * sxx - sx * sx) : 0
        printf "; trend over the second half %+.0f kB/min\n", slope
    }' "$work/rss.log"
read -r ok failed < <(cycles_done)
calls="$(metric "$work/soak.prom" 'slurm_usage_sacct_calls_total')"
sacct_failures="$(metric "$work/soak.prom" 'slurm_usage_sacct_failures_total')"
timeouts="$(metric "$work/soak.prom" 'slurm_usage_sacct_timeouts_total')"
echo "cycles: $soak_ok ok, $soak_failed failed in the ${soak_seconds} s soak; $ok ok, $failed failed in all"
echo "sacct calls (daemon's count, dates only): ${calls:-0}, ${sacct_failures:-0} failed, ${timeouts:-0} timed out"
read -r n_calls n_version date_fail date_hang version_fail version_hang < <(awk '
    { n++; if ($4 == "version") v++; k[$3 " " $4]++ }
    END { print n + 0, v + 0, k["fail date"] + 0, k["hang date"] + 0, k["fail version"] + 0, k["hang version"] + 0 }' \
    "$work/calls.log")
echo "sacct calls (fake sacct log): $n_calls, of them $n_version --version; injected: $((date_fail + version_fail)) failures ($version_fail on --version), $((date_hang + version_hang)) hangs ($version_hang on --version)"
most_calls="$(sort -n "$work/concurrency.log" | tail -1)"
# Running children only: a zombie (exited, not yet reaped) is no longer a sacct call.
most_children="$(awk '{ n = 0; for (i = 2; i < NF; i += 2) if ($(i + 1) !~ /^Z/) n++; if (n > m) m = n }
    END { print m + 0 }' "$work/children.log")"
echo "idle RSS after the soak (reloaded to a daily schedule, 15 s later): ${idle_end} kB"
echo "stop after SIGTERM: exit $code in ${stop_s} s"

check "$([ "$code" = 0 ] && echo 1 || echo 0)" "daemon exited 0 after SIGTERM"
check "$([ "${most_calls:-0}" -le "$concurrency" ] && [ "$most_children" -le "$concurrency" ] && echo 1 || echo 0)" \
    "most sacct calls at once: ${most_calls:-0} (as seen by each call at its start), $most_children (running children sampled every 50 ms); limit $concurrency"
panics="$(grep -c panicked "$work/soak.log" || true)"
check "$([ "$panics" = 0 ] && echo 1 || echo 0)" "no panic in the daemon's log ($panics)"

# Zombies: a child in state Z is normal for the moment between its exit and tokio reaping it;
# one that stays is a leak.
read -r zsamples zpids zmax < <(awk '
    { t = $1; for (i = 2; i < NF; i += 2) if ($(i + 1) ~ /^Z/) {
          zs++; p = $i; if (!(p in first)) { first[p] = t; zp++ } last[p] = t } }
    END { for (p in first) if (last[p] - first[p] > m) m = last[p] - first[p]
          printf "%d %d %.2f\n", zs, zp, m }' "$work/children.log")
samples="$(wc -l <"$work/children.log")"
check "$(awk -v m="$zmax" 'BEGIN { print (m <= 1.0) ? 1 : 0 }')" \
    "zombies: $zsamples zombie sightings of $zpids children in $samples samples; longest seen ${zmax} s (limit 1 s)"
hang_max="$(sort -n "$work/hung.log" | tail -1)"
hang_max="${hang_max// /}"
check "$([ "${hang_max:-0}" -le $((sacct_timeout + 5)) ] && echo 1 || echo 0)" \
    "hung calls killed: oldest hung sacct ever seen alive ${hang_max:-0} s (limit $((sacct_timeout + 5)) s)"
check "$([ "${timeouts:-0}" = "$date_hang" ] && [ "${sacct_failures:-0}" = $((date_fail + date_hang)) ] && echo 1 || echo 0)" \
    "the daemon counted every injected fault on a date's call: ${timeouts:-0} timeouts for $date_hang hangs, ${sacct_failures:-0} failures for $((date_fail + date_hang)) failures and hangs"
check "$([ "$leftover" = 0 ] && [ "$leftover_wrappers" = 0 ] && echo 1 || echo 0)" \
    "no sacct left after the stop: $leftover fake sacct/sleep processes, $leftover_wrappers wrappers"

# Data: every date's processed file against the reference.
if cmp -s "$work/reference-1.txt" "$work/reference-2.txt"; then
    ref_note="the synthetic sacct did not change during the last cycles"
else
    ref_note="the synthetic sacct changed during the last cycles (a job was submitted, started or ended): a difference on today or yesterday may be that"
fi
: >"$work/archive.txt"
while read -r d _; do
    got="$("$bin" --config "$work/soak.toml" analyze --since "$d" --until "$d" --format csv --table summary 2>/dev/null |
        awk -F, 'NR == 2 {print $1}')"
    echo "$d ${got:-0}" >>"$work/archive.txt"
done <"$work/reference-2.txt"
first="$(head -1 "$work/reference-2.txt" | cut -d' ' -f1)"
last="$(tail -1 "$work/reference-2.txt" | cut -d' ' -f1)"
read -r all dups < <("$bin" --config "$work/soak.toml" analyze --since "$first" --until "$last" --format csv --table summary 2>/dev/null |
    awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) c[$i] = i } NR == 2 { print $c["jobs"], $c["duplicates_removed"] }')
mism="$(join "$work/reference-2.txt" "$work/archive.txt" | awk '$2 != $4 { printf "%s want %d got %d; ", $1, $2, $4 }')"
want_total="$(awk '{ s += $2 } END { print s + 0 }' "$work/reference-2.txt")"
got_total="$(awk '{ s += $2 } END { print s + 0 }' "$work/archive.txt")"
check "$([ -z "$mism" ] && echo 1 || echo 0)" \
    "jobs per date: $(wc -l <"$work/reference-2.txt") dates $first..$last, $got_total jobs archived, $want_total generated${mism:+; differ: $mism} ($ref_note)"
check "$([ "${dups:-x}" = 0 ] && [ "${all:-x}" = "$got_total" ] && echo 1 || echo 0)" \
    "no job in two files: $all jobs over the whole range, ${dups:-?} duplicates"
today="$(date -u +%F)"
want_complete="$(awk -v t="$today" -v f="$(date -u -d "$today - $lookback days" +%F)" \
    '$1 < t && $1 >= f && $3 == "yes" { printf "%s ", $1 }' "$work/reference-2.txt")"
got_complete="$(awk '/"completed_dates"/ { on = 1; next } on && /\]/ { exit } on { gsub(/[", ]/, ""); printf "%s ", $0 }' \
    "$work/soak-data/.date_completion_tracker.json")"
check "$([ "$want_complete" = "$got_complete" ] && echo 1 || echo 0)" \
    "complete dates in the tracker: ${got_complete:-none}(expected: ${want_complete:-none})"

echo "soak: $failures check(s) failed"
[ "$failures" = 0 ]
