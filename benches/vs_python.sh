#!/usr/bin/env bash
# vs_python.sh - slurm-usage against the Python tool it replaces, on the same cached sacct
# output, as a shell user runs them (no special environment): issue #18's case.
#
#   benches/vs_python.sh [RUNS]        (default 5 interleaved pairs; farm-bench if present)
#
# Then the engine floor (benches/engine_floor.py): what Polars' native reader and writer
# spend on the same sacct text and raw rows, on one thread and on all.
#
# The case: `collect --days 7 --no-summary -n 4` (8 dates) into a fresh data dir, with a
# `sacct` on PATH that answers each distinct call from a cache filled by the synthetic sacct
# (`slurm-usage fake-sacct`, 10,000 jobs a day, 3.75 lines a job), so both tools read bytes
# from a `cat`, not a generator. The Python tool (slurm-usage 3.1.0 from PyPI) is installed
# into a venv under the work dir on first use; nothing of it is kept in the repository.
#
# Environment: VSPY_DIR (work dir, /tmp/slurm-usage-vspy), VSPY_JOBS (10000),
# VSPY_DAYS (7), BIN (target/release/slurm-usage, built if missing).
set -Eeuo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
RUNS=${1:-5}
DIR=${VSPY_DIR:-/tmp/slurm-usage-vspy}
JOBS=${VSPY_JOBS:-10000}
DAYS=${VSPY_DAYS:-7}
BIN=${BIN:-$PWD/target/release/slurm-usage}
[[ -x $BIN ]] || cargo build --release --quiet
mkdir -p "$DIR/cache" "$DIR/bin"

if [[ ! -x $DIR/venv/bin/slurm-usage ]]; then
  python3 -m venv "$DIR/venv"
  "$DIR/venv/bin/pip" install --quiet --disable-pip-version-check 'slurm-usage==3.1.0'
fi

# The cached sacct: the first call with a set of arguments runs the synthetic sacct (whose
# "now" is the wall clock, so one cache is one snapshot), every later call is a `cat`.
cat >"$DIR/bin/sacct" <<EOF
#!/bin/sh
key=\$(printf '%s\n' "\$@" | md5sum | cut -c1-16)
f="$DIR/cache/\$key"
if [ ! -f "\$f" ]; then
  "$BIN" fake-sacct --jobs-per-day $JOBS -- "\$@" >"\$f.tmp" && mv "\$f.tmp" "\$f"
fi
[ -z "\${VSPY_LOG:-}" ] || echo "\$f" >>"\$VSPY_LOG"
exec cat "\$f"
EOF
chmod +x "$DIR/bin/sacct"
export PATH="$DIR/bin:$PATH"

# One run: a fresh data dir, removed before the next run starts.
cat >"$DIR/bin/run-rust" <<EOF
#!/bin/sh
rm -rf "$DIR/data-rust" && exec "$BIN" collect --days $DAYS --no-summary -n 4 --data-dir "$DIR/data-rust"
EOF
cat >"$DIR/bin/run-python" <<EOF
#!/bin/sh
rm -rf "$DIR/data-python" && cd "$DIR" && exec "$DIR/venv/bin/slurm-usage" collect --days $DAYS --no-summary -n 4 --data-dir "$DIR/data-python"
EOF
chmod +x "$DIR/bin/run-rust" "$DIR/bin/run-python"

echo "filling the sacct cache (one run of each tool)"
"$DIR/bin/run-rust" >/dev/null
"$DIR/bin/run-python" >/dev/null
printf 'sacct bytes a run: rust %s, python %s\n' \
  "$(du -cb "$DIR"/cache/* | tail -1 | cut -f1)" "(both in the total above)"
rust_jobs=$("$BIN" analyze --data-dir "$DIR/data-rust" --days $((DAYS + 1)) --format json 2>/dev/null |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["summary"]["jobs"])' 2>/dev/null || echo '?')
echo "jobs archived by slurm-usage: $rust_jobs"

if command -v farm-bench >/dev/null; then
  farm-bench -n "$RUNS" --timeout 1800 --vs "$DIR/bin/run-python" -- "$DIR/bin/run-rust"
else
  for _ in $(seq "$RUNS"); do
    for t in rust python; do
      /usr/bin/time -f "$t %e s %M KiB" "$DIR/bin/run-$t" >/dev/null
    done
  done
fi

# The engine floor: the sacct outputs one run of ours reads, and the raw partitions it wrote.
rm -f "$DIR/used.log"
VSPY_LOG="$DIR/used.log" "$DIR/bin/run-rust" >/dev/null
mapfile -t used < <(sort -u "$DIR/used.log")
echo "engine floor (Polars, the Python tool's engine, without Python per row):"
floor=("$DIR/venv/bin/python" benches/engine_floor.py $'\x1f' "$DIR/data-rust/raw" "${used[@]}")
POLARS_MAX_THREADS=1 "${floor[@]}"
env -u POLARS_MAX_THREADS "${floor[@]}"
