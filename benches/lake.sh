#!/usr/bin/env bash
# Lake benchmark (issue #14; not CI): what the lake costs a collection and what reading it
# costs a report, against a real S3 server on 127.0.0.1 (moto_server, PyPI `moto[server]`).
#
#   benches/lake.sh [BIG_DAY_JOBS] [WINDOW_DAYS] [WINDOW_JOBS_PER_DAY] [RUNS]
#   (defaults: 100000, 30, 20000, 5)
#
# 1. A daemon-like cycle of one BIG_DAY_JOBS-job day (`collect --days 0` into a fresh data
#    dir from the synthetic sacct), with [lake] against without: the extra wall time is
#    what the lake adds to a cycle (the upload of that day's raw and processed partitions).
# 2. Upload throughput: `lake sync` of that day into an empty prefix, RUNS times.
# 3. `analyze --days WINDOW_DAYS --format json` over an archive of WINDOW_DAYS+1 days x
#    WINDOW_JOBS_PER_DAY jobs: from the lake (s3://) against from the local data dir.
#
# moto is a Python server and keeps objects in memory: it is slower than a real S3 or
# Ceph RGW, so the lake figures are an upper bound for a site's object store on a LAN.
# Timings by farm-bench (median of RUNS, A/B pairs); needs target/release/slurm-usage
# (cargo build --release) and python3 with boto3 (moto brings it).
set -Eeuo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
BIG=${1:-100000}
DAYS=${2:-30}
PER_DAY=${3:-20000}
RUNS=${4:-5}
BIN=$PWD/target/release/slurm-usage
[[ -x $BIN ]] || { echo "build first: cargo build --release" >&2; exit 1; }
command -v moto_server >/dev/null || { echo "needs moto_server: pip install 'moto[server]'" >&2; exit 1; }
command -v farm-bench >/dev/null || { echo "needs farm-bench (the tool library)" >&2; exit 1; }

W=$(mktemp -d /tmp/slurm-usage-lake-bench.XXXXXX)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
moto_server -H 127.0.0.1 -p "$PORT" >"$W/moto.log" 2>&1 &
MOTO=$!
trap 'kill $MOTO 2>/dev/null || true; rm -rf "$W"' EXIT
export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench AWS_REGION=us-east-1 \
  AWS_ENDPOINT_URL=http://127.0.0.1:$PORT AWS_ALLOW_HTTP=true
for _ in $(seq 50); do
  python3 -c "import boto3; boto3.client('s3').create_bucket(Bucket='bench')" 2>/dev/null && break
  sleep 0.2
done

# A synthetic sacct of a given size, and a config for a data dir with or without a lake.
fake() { # fake NAME JOBS
  printf '#!/bin/sh\nexec %s fake-sacct --jobs-per-day %s "$@"\n' "$BIN" "$2" >"$W/$1"
  chmod +x "$W/$1"
}
config() { # config FILE DATA_DIR SACCT [LAKE_URL]
  {
    printf 'data_dir = "%s"\ntimezone = "UTC"\n[collect]\nsacct = "%s"\nsettle = "0s"\nretries = 0\n' "$2" "$3"
    if [[ -n ${4:-} ]]; then printf '[lake]\nurl = "%s"\ncluster = "bench"\n' "$4"; fi
  } >"$1"
}
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

echo "== lake benchmark: $(date -u +%F), $(nproc) cores, moto $(python3 -c 'import moto; print(moto.__version__)')"
fake sacct-big "$BIG"
config "$W/local.toml" "$W/big-local" "$W/sacct-big"
config "$W/lake.toml" "$W/big-lake" "$W/sacct-big" "s3://bench/cycle"

echo
echo "== 1. one ${BIG}-job day: collect --days 0 with [lake] (A) vs without (B)"
farm-bench -n "$RUNS" --timeout 1800 \
  --vs "sh -c 'rm -rf $W/big-local && exec $BIN --config $W/local.toml collect --days 0 --no-summary'" \
  -- sh -c "rm -rf $W/big-lake && exec $BIN --config $W/lake.toml collect --days 0 --no-summary"
BYTES=$(du -cb "$W"/big-lake/raw/*.parquet "$W"/big-lake/processed/*.parquet | tail -1 | cut -f1)
echo "bytes uploaded per cycle (raw + processed of the day): $BYTES"

echo
echo "== 2. upload throughput: lake sync of that day into an empty prefix"
: >"$W/rates"
for i in $(seq "$RUNS"); do
  config "$W/sync.toml" "$W/big-lake" "$W/sacct-big" "s3://bench/sync-$i"
  rm -f "$W/big-lake/lake-state.json"
  t0=$(date +%s.%N)
  "$BIN" --config "$W/sync.toml" lake sync >/dev/null
  t1=$(date +%s.%N)
  python3 -c "print(f'{$BYTES/1e6/($t1-$t0):.1f}')" >>"$W/rates"
done
echo "MB/s per run: $(tr '\n' ' ' <"$W/rates")-> median $(median <"$W/rates") MB/s"

echo
echo "== 3. analyze --days $DAYS over $((DAYS + 1)) days x $PER_DAY jobs: lake (A) vs local disk (B)"
fake sacct-window "$PER_DAY"
config "$W/window.toml" "$W/window" "$W/sacct-window" "s3://bench/window"
"$BIN" --config "$W/window.toml" collect --days "$DAYS" --no-summary -n 2 >/dev/null
"$BIN" --config "$W/window.toml" lake sync >/dev/null
echo "archive: $(du -sh "$W/window/processed" | cut -f1) processed, $(du -sh "$W/window/raw" | cut -f1) raw"
farm-bench -n "$RUNS" --timeout 1800 \
  --vs "sh -c 'exec $BIN --data-dir $W/window analyze --days $DAYS --no-sinfo --format json >/dev/null'" \
  -- sh -c "exec $BIN --data-dir s3://bench/window analyze --days $DAYS --no-sinfo --format json >/dev/null"
# The same answer from both places, over whole past days (a window ending now moves).
UNTIL=$(date -u -d yesterday +%F)
SINCE=$(date -u -d "$DAYS days ago" +%F)
A=$("$BIN" --data-dir "s3://bench/window" analyze --since "$SINCE" --until "$UNTIL" --no-sinfo --format json | md5sum)
B=$("$BIN" --data-dir "$W/window" analyze --since "$SINCE" --until "$UNTIL" --no-sinfo --format json | md5sum)
[[ $A == "$B" ]] && echo "same report from the lake and from local disk" || echo "REPORTS DIFFER"
GETS=$(grep -c '"GET /bench/window/processed' "$W/moto.log" || true)
echo "moto saw $GETS GETs of processed objects in all (footers + column chunks)"
