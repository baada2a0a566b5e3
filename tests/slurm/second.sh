#!/usr/bin/env bash
# second.sh - a second SLURM cluster, `beta`, beside the rig of cluster.sh, in the SAME
# slurmdbd + MariaDB: one accounting database that holds two clusters (issue 15).
#
#   second.sh start            start the rig (cluster.sh start) if needed, then register
#                              cluster beta in its slurmdbd and start beta's slurmctld + slurmd
#   second.sh stop             scancel beta's jobs, stop beta's slurmctld and slurmd (the rig
#                              and its slurmdbd keep running: stop them with cluster.sh stop)
#   second.sh stop-ctld        stop only beta's slurmctld (the "one cluster is down" case)
#   second.sh status           one line per beta daemon; exit 1 if one is down
#   second.sh logs             tail of beta's logs
#   second.sh env              the export line for beta's SLURM_CONF
#
# Both slurmctlds run on 127.0.0.1 with their own ports; a client finds each cluster's
# controller through slurmdbd's cluster table (`squeue -M beta`, `sinfo -M beta`), so any
# slurm.conf that names the slurmdbd works for `-M`. Beta runs in linuxproc mode only (two
# slurmds on one machine must not share a cgroup tree); its node is `beta1` (slurmd -N),
# the same machine as the rig's node. Its files live in $SLURM_RIG_DIR/beta/, so
# `cluster.sh stop --wipe` removes them too.
#
# Environment (all optional; the rig's SLURM_RIG_* apply to the rig and the slurmdbd):
#   SLURM_BETA_CTLD_PORT    beta's slurmctld port   (6837)
#   SLURM_BETA_SLURMD_PORT  beta's slurmd port      (6838)
set -Eeuo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# The helpers (log, wait_for, pid_of, stop_daemon, node_line, sacctmgr_q...) and the rig's
# settings (RIG_DIR, DBD_PORT, RIG_USERS...). cluster.sh runs nothing when sourced.
# shellcheck source-path=SCRIPTDIR source=cluster.sh
source "$HERE/cluster.sh"
RIG_SCRIPT=$HERE/cluster.sh
RIG_CONF=$SLURM_CONF

BETA=beta
BETA_NODE=beta1
BETA_CTLD_PORT=${SLURM_BETA_CTLD_PORT:-6837}
BETA_SLURMD_PORT=${SLURM_BETA_SLURMD_PORT:-6838}
BETA_DIR=$RIG_DIR/beta
# cluster.sh's helpers read these globals: from here on they mean beta's files.
ETC=$BETA_DIR/etc
RUN=$BETA_DIR/run
LOG=$BETA_DIR/log
SPOOL=$BETA_DIR/spool
CLUSTER=$BETA
CTLD_PORT=$BETA_CTLD_PORT
SLURMD_PORT=$BETA_SLURMD_PORT
RIG_MODE=linuxproc
BETA_CONF=$ETC/slurm.conf
PIDFILE[slurmctld]=$RUN/slurmctld.pid
PIDFILE[slurmd]=$RUN/slurmd.pid
BETA_DAEMONS=(slurmctld slurmd)

log() { printf '[beta %s] %s\n' "$(date +%T)" "$*" >&2; }
err() { printf '[beta %s] ERROR: %s\n' "$(date +%T)" "$*" >&2; }

# cluster.sh's slurm.conf with beta's name, ports, files and node name.
render_beta_conf() {
  render_slurm_conf |
    sed -e "s/^# written by tests\/slurm\/cluster.sh.*/# written by tests\/slurm\/second.sh - rewritten on start/" \
      -e "s/^NodeName=$(hostname -s) /NodeName=$BETA_NODE Port=$BETA_SLURMD_PORT /" \
      -e "s/^PartitionName=debug Nodes=$(hostname -s) /PartitionName=debug Nodes=$BETA_NODE /"
}

# Cluster beta and the rig's accounts and users on it, in the rig's slurmdbd.
register_beta() {
  if ! sacctmgr_q show cluster format=cluster | grep -qx "$BETA"; then
    log "registering cluster $BETA in the slurmdbd on 127.0.0.1:$DBD_PORT"
    sacctmgr -i add cluster "$BETA" >/dev/null
  fi
  local acct entry user existing
  existing=$(sacctmgr_q show assoc format=account,user where cluster="$BETA")
  for acct in "${RIG_ACCOUNTS[@]}"; do
    if ! grep -qx "$acct|" <<<"$existing"; then
      sacctmgr -i add account "$acct" Cluster="$BETA" >/dev/null
    fi
  done
  for entry in "${RIG_USERS[@]}"; do
    user=${entry%%:*} acct=${entry#*:}
    if ! grep -qx "$acct|$user" <<<"$existing"; then
      sacctmgr -i add user "$user" Account="$acct" DefaultAccount="$acct" Cluster="$BETA" >/dev/null
    fi
  done
}

beta_ping() { SLURM_CONF=$BETA_CONF timeout 10 scontrol ping | grep -q 'is UP'; }
beta_node_ready() {
  local state
  state=$(timeout 10 sinfo -M "$BETA" -h -N -o '%T' | grep -v '^CLUSTER' | head -n1)
  [[ $state == idle || $state == mixed || $state == allocated ]]
}
# slurmdbd knows where beta's slurmctld listens (what `-M beta` clients use).
beta_registered() {
  [[ $(sacctmgr_q show cluster "$BETA" format=controlport) == "$BETA_CTLD_PORT" ]]
}

beta_start_failed() {
  trap - ERR
  err "start failed (line ${1:-?}); logs follow"
  beta_logs >&2 || true
  exit 1
}

beta_start() {
  need_root
  local t0
  t0=$(now_ms)
  if ! SLURM_RIG_MODE=linuxproc "$RIG_SCRIPT" status >/dev/null 2>&1; then
    SLURM_RIG_MODE=linuxproc "$RIG_SCRIPT" start >/dev/null
  elif [[ $(cat "$RIG_DIR/etc/mode" 2>/dev/null) != linuxproc ]]; then
    err "the rig runs in $(cat "$RIG_DIR/etc/mode") mode; beta needs it in linuxproc mode"
    exit 1
  fi
  if [[ $RIG_VERSION != 22.05 ]]; then
    # beta's slurmctld and slurmd are the host's (Debian 12) programs
    err "the rig runs Slurm $RIG_VERSION; beta runs on 22.05 only"
    exit 1
  fi
  trap 'beta_start_failed $LINENO' ERR
  mkdir -p "$ETC" "$RUN" "$LOG" "$SPOOL/ctld" "$SPOOL/d"
  chmod 755 "$BETA_DIR" "$ETC" "$RUN" "$LOG"
  render_beta_conf >"$ETC/slurm.conf.new"
  render_cgroup_conf >"$ETC/cgroup.conf"
  render_gres_conf >"$ETC/gres.conf" # the rig's GPU device files: nothing opens them
  if ! cmp -s "$ETC/slurm.conf" "$ETC/slurm.conf.new" && { is_up slurmctld || is_up slurmd; }; then
    log "configuration changed: restarting beta"
    beta_stop_daemons
  fi
  mv -f "$ETC/slurm.conf.new" "$BETA_CONF"
  chmod 644 "$BETA_CONF" "$ETC/cgroup.conf" "$ETC/gres.conf"
  register_beta
  if ! is_up slurmctld; then
    log "starting beta's slurmctld on 127.0.0.1:$BETA_CTLD_PORT"
    slurmctld -f "$BETA_CONF" 2>>"$LOG/slurmctld-launch.log"
    wait_for "$TIMEOUT" "beta's slurmctld pid file" is_up slurmctld
  fi
  wait_for "$TIMEOUT" "beta's slurmctld to answer" beta_ping
  wait_for "$TIMEOUT" "slurmdbd to list beta's controller port" beta_registered
  if ! is_up slurmd; then
    log "starting beta's slurmd (node $BETA_NODE) on port $BETA_SLURMD_PORT"
    slurmd -f "$BETA_CONF" -N "$BETA_NODE" 2>>"$LOG/slurmd-launch.log"
    wait_for "$TIMEOUT" "beta's slurmd pid file" is_up slurmd
  fi
  wait_for "$TIMEOUT" "node $BETA_NODE to be idle in sinfo -M $BETA" beta_node_ready
  trap - ERR
  log "TIMING start: $(elapsed "$t0") s"
  log "cluster '$BETA' is up beside '$(sed -n 's/^ClusterName=//p' "$RIG_CONF")' in one slurmdbd; use:"
  echo "export SLURM_CONF=$RIG_CONF   # then: squeue -M all, sacct -M $BETA, sbatch -M $BETA"
}

beta_cancel_jobs() {
  beta_ping 2>/dev/null || return 0
  local ids
  ids=$(SLURM_CONF=$BETA_CONF timeout 10 squeue -h -o '%A' | sort -u | tr '\n' ' ')
  [[ -n ${ids// /} ]] || return 0
  log "cancelling beta's jobs: $ids"
  # shellcheck disable=SC2086  # word splitting of job ids intended
  SLURM_CONF=$BETA_CONF scancel $ids || true
  wait_for "$TIMEOUT" "beta's queue to empty" beta_queue_empty
}
beta_queue_empty() { [[ -z $(SLURM_CONF=$BETA_CONF timeout 10 squeue -h -o '%A') ]]; }

beta_stop_daemons() {
  local rc=0
  stop_daemon slurmd || rc=1
  stop_daemon slurmctld || rc=1
  return "$rc"
}

beta_stop() {
  need_root
  local t0 rc=0
  t0=$(now_ms)
  [[ -f $BETA_CONF ]] && { beta_cancel_jobs || rc=1; }
  beta_stop_daemons || rc=1
  log "TIMING stop: $(elapsed "$t0") s"
  return "$rc"
}

beta_status() {
  local d pid down=0
  for d in "${BETA_DAEMONS[@]}"; do
    if pid=$(pid_of "$d"); then
      printf 'beta %-10s up   (pid %s)\n' "$d" "$pid"
    else
      printf 'beta %-10s down\n' "$d"
      down=1
    fi
  done
  if (( ! down )); then
    printf 'beta %-10s %s\n' node "$(timeout 10 sinfo -M "$BETA" -h -N -o '%N %T' 2>/dev/null | grep -v '^CLUSTER' || echo '?')"
  fi
  return "$down"
}

beta_logs() { cmd_logs; } # cluster.sh's, over beta's $LOG

beta_usage() { sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//'; }

beta_main() {
  local cmd=${1:-}
  shift || true
  case $cmd in
    start) beta_start ;;
    stop) beta_stop ;;
    stop-ctld) need_root; stop_daemon slurmctld ;;
    status) beta_status ;;
    logs) beta_logs ;;
    env) echo "export SLURM_CONF=$BETA_CONF" ;;
    -h | --help | help) beta_usage ;;
    *) beta_usage >&2; exit 2 ;;
  esac
}

beta_main "$@"
