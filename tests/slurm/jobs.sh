#!/usr/bin/env bash
# jobs.sh - submit slurm-usage's job mix to the rig started by cluster.sh and wait
# until accounting (sacct) shows every finite job in its final state.
#
#   jobs.sh [submit]   submit the mix as alice, bob and root; write $SLURM_RIG_DIR/jobs.tsv;
#                      wait for the finite jobs to be final in sacct and for the
#                      long-running job to be RUNNING and the held job PENDING
#   jobs.sh finish     cancel the RUNNING and PENDING jobs of the manifest and wait until
#                      sacct shows them CANCELLED (the manifest is updated)
#
# Manifest ($SLURM_RIG_DIR/jobs.tsv, tab-separated, one header line):
#   key  jobid  user  expected
# expected is the job line's sacct State once final (CANCELLED matches "CANCELLED by 0"),
# or RUNNING / PENDING for the two jobs left in the queue on purpose.
#
# Environment: SLURM_RIG_DIR (/tmp/slurm-usage-rig), SLURM_RIG_JOBS_TIMEOUT (240 s).
set -Eeuo pipefail

RIG_DIR=${SLURM_RIG_DIR:-/tmp/slurm-usage-rig}
TIMEOUT=${SLURM_RIG_JOBS_TIMEOUT:-240}
export SLURM_CONF=$RIG_DIR/etc/slurm.conf
MANIFEST=$RIG_DIR/jobs.tsv
WORK=$RIG_DIR/jobs
SYS_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
# The rig's SLURM tools: for Slurm 24.11, cluster.sh writes wrappers there that run the
# Debian 13 tools (and rig-exec, which runs any command with them); for 22.05 it is empty.
export PATH=$RIG_DIR/bin:$PATH
RIG_EXEC=()
[[ -x $RIG_DIR/bin/rig-exec ]] && RIG_EXEC=("$RIG_DIR/bin/rig-exec")

log() { printf '[jobs %s] %s\n' "$(date +%T)" "$*" >&2; }
die() { printf '[jobs %s] ERROR: %s\n' "$(date +%T)" "$*" >&2; exit 1; }

check_rig() {
  [[ $(id -u) -eq 0 ]] || die "must run as root (submits as alice, bob and root)"
  [[ -f $SLURM_CONF ]] || die "no $SLURM_CONF: run tests/slurm/cluster.sh start first"
  timeout 10 scontrol ping >/dev/null 2>&1 || die "slurmctld does not answer: run cluster.sh start"
  RIG_MODE=$(cat "$RIG_DIR/etc/mode" 2>/dev/null || echo linuxproc)
}

# as_user USER CMD... : run CMD as USER with a small, fixed environment (for 24.11 inside
# rig-exec, whose /usr holds the 24.11 tools: the user switch happens in there).
as_user() {
  local user=$1 home
  shift
  home=$(getent passwd "$user" | cut -d: -f6)
  local envv=(env -i "PATH=$SYS_PATH" "HOME=$home" "USER=$user" "LOGNAME=$user"
    "SHELL=/bin/bash" "LANG=C.UTF-8" "SLURM_CONF=$SLURM_CONF")
  [[ -n ${TZ:-} ]] && envv+=("TZ=$TZ")
  if [[ $user == root ]]; then
    "${RIG_EXEC[@]}" "${envv[@]}" "$@"
  else
    "${RIG_EXEC[@]}" runuser -u "$user" -- "${envv[@]}" "$@"
  fi
}

add_row() { printf '%s\t%s\t%s\t%s\n' "$@" >>"$MANIFEST"; }

# submit KEY USER EXPECTED [sbatch args...] : submit (script on stdin unless --wrap is given),
# record it in the manifest, and set SUBMITTED to the job id.
submit() {
  local key=$1 user=$2 expected=$3 out
  shift 3
  out=$(as_user "$user" sbatch --parsable --chdir="$WORK" --output="$WORK/%j.out" "$@") ||
    die "sbatch for $key as $user failed: $out"
  SUBMITTED=${out%%;*}
  [[ $SUBMITTED =~ ^[0-9]+$ ]] || die "sbatch for $key printed '$out'"
  add_row "$key" "$SUBMITTED" "$user" "$expected"
  log "submitted $key as $user: job $SUBMITTED (expect $expected)"
}

# ------------------------------------------------------------------ sacct polling
is_final_state() {
  case $1 in
    COMPLETED | FAILED | CANCELLED* | TIMEOUT | OUT_OF_MEMORY | NODE_FAIL | PREEMPTED | BOOT_FAIL | DEADLINE) return 0 ;;
    *) return 1 ;;
  esac
}

# job_status ID EXPECTED -> prints one of: ok / wait / bad:<state>
# ok when the job line has reached EXPECTED and sacct holds the complete records:
#  - the job line has its Partition: right after a short job ends, slurmdbd can briefly show
#    a placeholder row (State COMPLETED but JobName "allocation", no Partition, QOS Unknown,
#    no SubmitLine) for a few seconds;
#  - for a final job every step line is final and has TRESUsageInTot (steps first inherit the
#    job's final state, and get their usage only when their own completion record arrives),
#    and a job that started has its .batch step.
job_status() {
  local id=$1 expected=$2 lines jobstate="" partition="" jid state part tres
  local has_batch=0 steps_done=1 has_steps=0
  lines=$(timeout 20 sacct -n -P -j "$id" -o JobID,State,Partition,TRESUsageInTot 2>/dev/null) ||
    { echo wait; return; }
  while IFS='|' read -r jid state part tres; do
    [[ -n $jid ]] || continue
    if [[ $jid == "$id" ]]; then
      jobstate=$state partition=$part
    else
      has_steps=1
      [[ $jid == "$id.batch" ]] && has_batch=1
      if ! is_final_state "$state" || [[ -z $tres ]]; then steps_done=0; fi
    fi
  done <<<"$lines"
  if [[ -z $partition ]]; then echo wait; return; fi
  case $expected in
    RUNNING)
      [[ $jobstate == RUNNING && $has_batch == 1 ]] && { echo ok; return; } ;;
    PENDING)
      [[ $jobstate == PENDING ]] && { echo ok; return; } ;;
    *)
      if is_final_state "$jobstate"; then
        if [[ $jobstate != "$expected"* ]]; then
          echo "bad:$jobstate"
          return
        fi
        # a job cancelled before it started has no steps at all
        if (( steps_done )) && { (( has_batch )) || (( ! has_steps )); }; then
          echo ok
          return
        fi
      fi
      ;;
  esac
  echo wait
}

# wait_for_manifest [FILTER-EXPECTED...]: poll sacct until every row (or rows whose expected
# matches) is ok; fail with details on a wrong final state or at the deadline.
wait_for_manifest() {
  local deadline=$(( $(date +%s) + TIMEOUT )) key id user expected st pending
  while :; do
    pending=()
    while IFS=$'\t' read -r key id user expected; do
      [[ $key == key ]] && continue
      st=$(job_status "$id" "$expected")
      case $st in
        ok) ;;
        bad:*)
          timeout 20 sacct -j "$id" -o JobID%14,JobName%16,User,State%16,ExitCode,Elapsed >&2 || true
          die "$key (job $id) ended ${st#bad:}, expected $expected" ;;
        *) pending+=("$key=$id($expected)") ;;
      esac
    done <"$MANIFEST"
    (( ${#pending[@]} == 0 )) && return 0
    if (( $(date +%s) >= deadline )); then
      log "still waiting after ${TIMEOUT}s: ${pending[*]}"
      timeout 20 squeue -o '%i %u %j %T %r' >&2 || true
      timeout 20 sacct -a -o JobID%14,JobName%16,User,State%16,ExitCode,Elapsed >&2 || true
      die "accounting did not show the expected states in time"
    fi
    sleep 0.5
  done
}

wait_state_in_squeue() { # id state
  local deadline=$(( $(date +%s) + TIMEOUT ))
  until [[ $(timeout 10 squeue -h -j "$1" -o '%T' 2>/dev/null) == "$2" ]]; do
    (( $(date +%s) < deadline )) || die "job $1 did not reach $2 in ${TIMEOUT}s"
    sleep 0.2
  done
}

wait_batch_step() { # id: until sacct records the .batch step
  local deadline=$(( $(date +%s) + TIMEOUT ))
  until timeout 10 sacct -n -P -j "$1" -o JobID 2>/dev/null | grep -qx "$1.batch"; do
    (( $(date +%s) < deadline )) || die "job $1 has no .batch step in sacct after ${TIMEOUT}s"
    sleep 0.2
  done
}

# ------------------------------------------------------------------ the mix
submit_mix() {
  local t0=$SECONDS
  [[ -f $MANIFEST ]] && retire_previous
  mkdir -p "$WORK" && chmod 1777 "$WORK"
  printf 'key\tjobid\tuser\texpected\n' >"$MANIFEST"

  # CPU-bound on 2 CPUs for ~5 s; a '|' in the comment.
  submit cpu_burn alice COMPLETED -J cpu_burn -c 2 --mem=100M --time=5 \
    --comment='cpu burner|two cores' <<'EOF'
#!/bin/bash
burn() { local end=$((SECONDS + 5)); while (( SECONDS < end )); do :; done; }
burn & burn & wait
EOF

  # Holds a 500 MB buffer that dd really filled (read from /dev/zero) for ~4 s: dd blocks
  # writing into the pipe that sleep never reads. The --wrap (and so SubmitLine) has a '|'.
  submit mem_hog bob COMPLETED -J mem_hog -c 1 --mem=600M --time=5 \
    --wrap='dd if=/dev/zero bs=500M count=1 2>/dev/null | sleep 4'

  # Several srun steps, one with 2 tasks; the last step fails (exit 1) but the job completes.
  submit multi_step root COMPLETED -J multi_step -n 2 -c 1 --mem-per-cpu=100M --time=5 <<'EOF'
#!/bin/bash
srun -n1 hostname
srun -n2 bash -c 'end=$((SECONDS + 2)); while (( SECONDS < end )); do :; done'
srun -n1 sleep 1
srun -n1 false
exit 0
EOF

  # shellcheck disable=SC2016  # expanded by the job's shell, not here
  submit array alice COMPLETED -J array --array=1-3 -c 1 --mem=50M --time=2 \
    --wrap='sleep 1; echo "task $SLURM_ARRAY_TASK_ID"'
  local array_id=$SUBMITTED i
  sed -i '$d' "$MANIFEST"
  for i in 1 2 3; do add_row "array_$i" "${array_id}_$i" alice COMPLETED; done

  # Exit code 3; a '|' in the job name.
  submit fail bob FAILED -J 'exit|3' -c 1 --mem=50M --time=2 --wrap='echo failing; exit 3'

  # The batch shell kills itself with SIGKILL.
  submit killed alice FAILED -J killed -c 1 --mem=50M --time=2 <<'EOF'
#!/bin/bash
echo "about to kill myself"
kill -9 $$
EOF

  # A newline inside the --wrap text (and so inside SubmitLine).
  submit newline bob COMPLETED -J newline -c 1 --mem=50M --time=2 \
    --wrap=$'echo first line\necho second line'

  # Newlines (and a '|') in fields that are not the last of a sacct line: job name, comment.
  submit newline_fields alice COMPLETED -J $'two\nlines' -c 1 --mem=50M --time=2 \
    --comment=$'first line\nsecond|line' --wrap='true'

  # GPUs (the node has gres/gpu:2): one by --gres, two by --gpus; AllocTRES carries gres/gpu.
  submit gpu_one alice COMPLETED -J gpu_one -c 1 --mem=50M --time=2 --gres=gpu:1 \
    --wrap='sleep 3'
  submit gpu_two bob COMPLETED -J gpu_two -c 1 --mem=50M --time=2 --gpus=2 \
    --wrap='sleep 3'

  if [[ $RIG_MODE == cgroup ]]; then
    # 300 MB buffer under a 100 MB cgroup limit: the OOM killer ends it.
    submit oom bob OUT_OF_MEMORY -J oom -c 1 --mem=100M --time=2 \
      --wrap='dd if=/dev/zero of=/dev/null bs=300M count=1'
  fi

  submit cancelled root CANCELLED -J cancel_me -c 1 --mem=50M --time=10 --wrap='sleep 300'
  local cancel_id=$SUBMITTED

  submit running alice RUNNING -J stays_running -c 1 --mem=50M --wrap='sleep 1000000'
  submit pending root PENDING -J stays_pending -c 1 --mem=50M --begin=now+1hour --wrap='sleep 1'

  log "waiting for job $cancel_id to run, then cancelling it"
  wait_state_in_squeue "$cancel_id" RUNNING
  wait_batch_step "$cancel_id"
  scancel "$cancel_id"

  log "waiting for accounting (deadline ${TIMEOUT}s)"
  wait_for_manifest
  log "all jobs as expected after $((SECONDS - t0)) s; manifest: $MANIFEST"
  summary
}

summary() {
  local ids
  ids=$(awk -F'\t' 'NR > 1 { print $2 }' "$MANIFEST" | paste -sd, -)
  timeout 20 sacct -j "$ids" -X -o JobID%12,JobName%14,User%6,State%16,ExitCode,Elapsed >&2 || true
}

# A previous manifest: cancel its queued jobs and wait for them to leave the queue. Their
# final states are not checked: after a crash or a restart they may end NODE_FAIL etc.
retire_previous() {
  local ids
  ids=$(awk -F'\t' 'NR > 1 && ($4 == "RUNNING" || $4 == "PENDING") { print $2 }' "$MANIFEST")
  if [[ -n $ids ]]; then
    log "previous manifest: cancelling its queued jobs ${ids//$'\n'/ }"
    # shellcheck disable=SC2086  # one word per job id
    scancel $ids 2>/dev/null || true
    local deadline=$(( $(date +%s) + TIMEOUT )) csv
    csv=$(paste -sd, - <<<"$ids")
    while [[ -n $(timeout 10 squeue -h -o %A -j "$csv" 2>/dev/null) ]]; do
      (( $(date +%s) < deadline )) || die "previous jobs $ids still queued after ${TIMEOUT}s"
      sleep 0.2
    done
  fi
  mv -f "$MANIFEST" "$MANIFEST.prev"
}

cmd_finish() {
  local key id user expected ids=() tmp
  while IFS=$'\t' read -r key id user expected; do
    [[ $expected == RUNNING || $expected == PENDING ]] && ids+=("$id")
  done <"$MANIFEST"
  if (( ${#ids[@]} )); then
    log "cancelling ${ids[*]}"
    scancel "${ids[@]}" || true  # some may have ended already
  fi
  tmp=$(mktemp "$MANIFEST.XXXXXX")
  awk -F'\t' -v OFS='\t' 'NR > 1 && ($4 == "RUNNING" || $4 == "PENDING") { $4 = "CANCELLED" } { print }' \
    "$MANIFEST" >"$tmp"
  chmod 644 "$tmp"
  mv -f "$tmp" "$MANIFEST"
  wait_for_manifest
  log "no job of the manifest is left in the queue"
}

main() {
  case ${1:-submit} in
    submit) check_rig; submit_mix ;;
    finish)
      check_rig
      [[ -f $MANIFEST ]] || die "no manifest $MANIFEST: nothing to finish"
      cmd_finish ;;
    -h | --help | help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//' ;;
    *) die "usage: jobs.sh [submit|finish]" ;;
  esac
}

main "$@"
