#!/usr/bin/env bash
# cluster.sh - a real single-node SLURM 22.05 cluster with slurmdbd + MariaDB for
# slurm-usage's integration tests. Debian 12, run as root, no systemd needed.
#
#   cluster.sh start            install packages if missing, write configs, start daemons
#   cluster.sh stop [--wipe]    scancel all jobs, stop the daemons this rig started
#                               (--wipe also deletes the rig dir, database included)
#   cluster.sh status           one line per daemon; exit 1 if any is down
#   cluster.sh logs             tail of every daemon log (for CI failure output)
#   cluster.sh env              print the export line for SLURM_CONF
#
# Environment (all optional):
#   SLURM_RIG_DIR        rig directory                     (/tmp/slurm-usage-rig)
#   SLURM_RIG_MODE       linuxproc | cgroup                (linuxproc)
#   SLURM_RIG_DB_PORT    MariaDB TCP port on 127.0.0.1     (3307)
#   SLURM_RIG_DBD_PORT   slurmdbd port                     (6819)
#   SLURM_RIG_CTLD_PORT  slurmctld port                    (6817)
#   SLURM_RIG_SLURMD_PORT slurmd port                      (6818)
#   SLURM_RIG_TIMEOUT    seconds to wait for each daemon   (60)
#   SLURM_RIG_LOG_LINES  lines per log for `logs`          (40)
set -Eeuo pipefail

RIG_DIR=${SLURM_RIG_DIR:-/tmp/slurm-usage-rig}
RIG_MODE=${SLURM_RIG_MODE:-linuxproc}
DB_PORT=${SLURM_RIG_DB_PORT:-3307}
DBD_PORT=${SLURM_RIG_DBD_PORT:-6819}
CTLD_PORT=${SLURM_RIG_CTLD_PORT:-6817}
SLURMD_PORT=${SLURM_RIG_SLURMD_PORT:-6818}
TIMEOUT=${SLURM_RIG_TIMEOUT:-60}
LOG_LINES=${SLURM_RIG_LOG_LINES:-40}

CLUSTER=rig
DB_NAME=slurm_acct_db
DB_USER=slurm
DB_PASS=slurm-rig-pass
RIG_USERS=(alice:research bob:physics)
RIG_ACCOUNTS=(research physics)
PACKAGES=(slurmctld slurmd slurm-client slurmdbd munge mariadb-server)

ETC=$RIG_DIR/etc
RUN=$RIG_DIR/run
LOG=$RIG_DIR/log
SPOOL=$RIG_DIR/spool
DB_DIR=$RIG_DIR/mysql
DB_SOCK=$DB_DIR/run/mysqld.sock
DB_PIDFILE=$DB_DIR/run/mariadbd.pid
MUNGE_SOCK=/run/munge/munge.socket.2
export SLURM_CONF=$ETC/slurm.conf

# daemon name -> pid file and /proc/PID/comm
declare -A PIDFILE=(
  [munged]=$RUN/munged.pid
  [mariadbd]=$DB_PIDFILE
  [slurmdbd]=$RUN/slurmdbd.pid
  [slurmctld]=$RUN/slurmctld.pid
  [slurmd]=$RUN/slurmd.pid
)
DAEMONS=(munged mariadbd slurmdbd slurmctld slurmd)

log() { printf '[rig %s] %s\n' "$(date +%T)" "$*" >&2; }
err() { printf '[rig %s] ERROR: %s\n' "$(date +%T)" "$*" >&2; }
now_ms() { date +%s%3N; }
elapsed() { # start_ms -> "12.3"
  local d=$(( $(now_ms) - $1 ))
  printf '%d.%d' $((d / 1000)) $(((d % 1000) / 100))
}

need_root() {
  if [[ $(id -u) -ne 0 ]]; then err "must run as root"; exit 1; fi
}

# wait_for TIMEOUT WHAT CMD... : poll CMD every 0.2 s until it succeeds or TIMEOUT s pass.
wait_for() {
  local timeout=$1 what=$2; shift 2
  local deadline=$(( $(date +%s) + timeout ))
  until "$@" >/dev/null 2>&1; do
    if (( $(date +%s) >= deadline )); then
      err "timed out after ${timeout}s waiting for $what"
      return 1
    fi
    sleep 0.2
  done
}

# wait_while_alive TIMEOUT WHAT PID CMD... : like wait_for, but fail at once if PID dies.
wait_while_alive() {
  local timeout=$1 what=$2 pid=$3; shift 3
  local deadline=$(( $(date +%s) + timeout )) state
  until "$@" >/dev/null 2>&1; do
    state=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null || true)
    if [[ -z $state || $state == Z ]]; then
      err "$what: the process (pid $pid) exited"
      return 1
    fi
    if (( $(date +%s) >= deadline )); then
      err "timed out after ${timeout}s waiting for $what"
      return 1
    fi
    sleep 0.2
  done
}

# ---------------------------------------------------------------- processes
pid_of() { # name -> pid on stdout if the pid file names a live process with that comm
  local name=$1 pf=${PIDFILE[$1]} pid state
  [[ -s $pf ]] || return 1
  pid=$(tr -dc '0-9' <"$pf")
  [[ -n $pid && -r /proc/$pid/comm ]] || return 1
  [[ $(cat "/proc/$pid/comm" 2>/dev/null) == "$name" ]] || return 1
  state=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null || true)
  [[ -n $state && $state != Z ]] || return 1
  printf '%s\n' "$pid"
}
is_up() { pid_of "$1" >/dev/null; }

proc_gone() { # pid comm -> true when the process is gone (or a zombie, or recycled)
  local pid=$1 comm=$2 state
  [[ -r /proc/$pid/comm ]] || return 0
  [[ $(cat "/proc/$pid/comm" 2>/dev/null) == "$comm" ]] || return 0
  state=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null || true)
  [[ -z $state || $state == Z ]]
}

stop_daemon() { # name [term_timeout]
  local name=$1 timeout=${2:-30} pid
  if ! pid=$(pid_of "$name"); then
    rm -f "${PIDFILE[$name]}"
    return 0
  fi
  log "stopping $name (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  if ! wait_for "$timeout" "$name to exit" proc_gone "$pid" "$name"; then
    log "$name did not exit on TERM: sending KILL"
    kill -KILL "$pid" 2>/dev/null || true
    wait_for 10 "$name to die" proc_gone "$pid" "$name" || { err "$name (pid $pid) survived KILL"; return 1; }
  fi
  rm -f "${PIDFILE[$name]}"
}

# ---------------------------------------------------------------- install
ensure_packages() {
  local missing=() p
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  (( ${#missing[@]} == 0 )) && return 0

  local t0 rc=0 backup=""
  t0=$(now_ms)
  mkdir -p "$LOG"
  log "installing ${missing[*]} (log: $LOG/apt.log)"
  # Without systemd the postinst scripts would try to start the services: forbid that.
  if [[ -e /usr/sbin/policy-rc.d ]]; then
    backup=$(mktemp /usr/sbin/policy-rc.d.rig-backup.XXXXXX)
    cp -p /usr/sbin/policy-rc.d "$backup"
  fi
  # shellcheck disable=SC2064  # expand now: restore exactly what we saw
  trap "restore_policy_rc '$backup'" EXIT
  printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
  chmod 755 /usr/sbin/policy-rc.d
  {
    DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "${missing[@]}"
  } >"$LOG/apt.log" 2>&1 || rc=$?
  restore_policy_rc "$backup"
  trap - EXIT
  if (( rc != 0 )); then
    err "package install failed (exit $rc):"
    cat "$LOG/apt.log" >&2
    exit 1
  fi
  log "TIMING install: $(elapsed "$t0") s"
  echo "install $(elapsed "$t0")" >>"$LOG/timings"
}

restore_policy_rc() { # backup-path-or-empty
  if [[ -n ${1:-} && -e $1 ]]; then
    mv -f "$1" /usr/sbin/policy-rc.d
  else
    rm -f /usr/sbin/policy-rc.d
  fi
}

ensure_users() {
  local entry user
  for entry in "${RIG_USERS[@]}"; do
    user=${entry%%:*}
    if ! id -u "$user" >/dev/null 2>&1; then
      log "creating local user $user"
      useradd --create-home --shell /bin/bash "$user"
    fi
  done
}

# ---------------------------------------------------------------- configs
node_line() {
  local line mem
  line=$(slurmd -C | head -n1)
  [[ $line == NodeName=* ]] || { err "unexpected 'slurmd -C' output: $line"; return 1; }
  mem=$(sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' <<<"$line")
  line=${line/RealMemory=$mem/RealMemory=$((mem * 95 / 100))}
  printf '%s NodeAddr=127.0.0.1 NodeHostname=%s State=UNKNOWN\n' "$line" "$(hostname -s)"
}

render_slurm_conf() {
  local host proctrack task gather
  host=$(hostname -s)
  case $RIG_MODE in
    linuxproc) proctrack=proctrack/linuxproc task=task/none gather=jobacct_gather/linux ;;
    cgroup) proctrack=proctrack/cgroup task=task/cgroup,task/affinity gather=jobacct_gather/cgroup ;;
  esac
  cat <<EOF
# written by tests/slurm/cluster.sh (mode: $RIG_MODE) - do not edit, it is rewritten on start
ClusterName=$CLUSTER
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
AuthType=auth/munge
CryptoType=crypto/munge
MpiDefault=none
SwitchType=switch/none
ProctrackType=$proctrack
TaskPlugin=$task
JobAcctGatherType=$gather
JobAcctGatherFrequency=task=1
PrologFlags=Contain
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=100
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
AccountingStoragePort=$DBD_PORT
AccountingStorageEnforce=associations
AccountingStoreFlags=job_comment
JobCompType=jobcomp/none
ReturnToService=2
MailProg=/bin/true
KillWait=5
StateSaveLocation=$SPOOL/ctld
SlurmdSpoolDir=$SPOOL/d
SlurmctldPidFile=${PIDFILE[slurmctld]}
SlurmdPidFile=${PIDFILE[slurmd]}
SlurmctldLogFile=$LOG/slurmctld.log
SlurmdLogFile=$LOG/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
$(node_line)
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
}

render_cgroup_conf() {
  echo "# written by tests/slurm/cluster.sh (mode: $RIG_MODE)"
  echo "CgroupPlugin=cgroup/v1"
  if [[ $RIG_MODE == cgroup ]]; then
    echo "ConstrainRAMSpace=yes"
  fi
}

render_slurmdbd_conf() {
  cat <<EOF
# written by tests/slurm/cluster.sh
AuthType=auth/munge
DbdHost=localhost
DbdAddr=127.0.0.1
DbdPort=$DBD_PORT
SlurmUser=root
PidFile=${PIDFILE[slurmdbd]}
LogFile=$LOG/slurmdbd.log
DebugLevel=info
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$DB_PORT
StorageUser=$DB_USER
StoragePass=$DB_PASS
StorageLoc=$DB_NAME
EOF
}

# Render all configs into $ETC/*.new; return 0 if any differs from what is in place.
render_configs() {
  mkdir -p "$ETC"
  render_slurm_conf >"$ETC/slurm.conf.new"
  render_cgroup_conf >"$ETC/cgroup.conf.new"
  (umask 077; render_slurmdbd_conf >"$ETC/slurmdbd.conf.new")
  local f changed=1
  for f in slurm.conf cgroup.conf slurmdbd.conf; do
    cmp -s "$ETC/$f" "$ETC/$f.new" || changed=0
  done
  return "$changed"
}

install_configs() {
  local f
  for f in slurm.conf cgroup.conf slurmdbd.conf; do
    mv -f "$ETC/$f.new" "$ETC/$f"
  done
  chmod 644 "$ETC/slurm.conf" "$ETC/cgroup.conf"
  chmod 600 "$ETC/slurmdbd.conf"
  echo "$RIG_MODE" >"$ETC/mode"
}

make_dirs() {
  mkdir -p "$ETC" "$RUN" "$LOG" "$SPOOL/ctld" "$SPOOL/d" "$DB_DIR/data" "$DB_DIR/run" "$RIG_DIR/jobs"
  chmod 755 "$RIG_DIR" "$ETC" "$RUN" "$LOG"
  chmod 1777 "$RIG_DIR/jobs"
  chown -R mysql:mysql "$DB_DIR"
  touch "$LOG/mariadb.log" && chown mysql:mysql "$LOG/mariadb.log"
}

# ---------------------------------------------------------------- daemons
munge_works() { munge -n -S "$MUNGE_SOCK" </dev/null | unmunge -S "$MUNGE_SOCK" >/dev/null; }

start_munge() {
  if [[ ! -s /etc/munge/munge.key ]]; then
    log "creating /etc/munge/munge.key"
    mungekey --create --keyfile=/etc/munge/munge.key
    chown munge:munge /etc/munge/munge.key
    chmod 400 /etc/munge/munge.key
  fi
  if is_up munged || munge_works 2>/dev/null; then
    return 0 # ours, or a system munged we leave alone
  fi
  mkdir -p /run/munge && chown munge:munge /run/munge && chmod 755 /run/munge
  touch "$LOG/munged.log" "${PIDFILE[munged]}"
  chown munge:munge "$LOG/munged.log" "${PIDFILE[munged]}"
  log "starting munged"
  runuser -u munge -- munged --socket="$MUNGE_SOCK" --pid-file="${PIDFILE[munged]}" \
    --log-file="$LOG/munged.log"
  wait_for "$TIMEOUT" munged munge_works
}

db_client() { mariadb --no-defaults --socket="$DB_SOCK" -u root; }
db_ping() { mariadb-admin --no-defaults --socket="$DB_SOCK" -u root ping; }
mariadb_ready() { is_up mariadbd && db_ping; }

start_mariadb() {
  FRESH_DB=0
  if [[ ! -d $DB_DIR/data/mysql ]]; then
    FRESH_DB=1
    log "initialising MariaDB datadir $DB_DIR/data"
    mariadb-install-db --no-defaults --user=mysql --datadir="$DB_DIR/data" \
      --auth-root-authentication-method=socket --skip-test-db >"$LOG/mariadb-install-db.log" 2>&1 ||
      { cat "$LOG/mariadb-install-db.log" >&2; return 1; }
  fi
  if ! is_up mariadbd; then
    log "starting mariadbd on 127.0.0.1:$DB_PORT"
    # setsid -w: the launcher pid lives exactly as long as mariadbd (forked or not)
    setsid -w mariadbd --no-defaults --user=mysql --datadir="$DB_DIR/data" \
      --socket="$DB_SOCK" --pid-file="$DB_PIDFILE" --port="$DB_PORT" --bind-address=127.0.0.1 \
      --log-error="$LOG/mariadb.log" --skip-name-resolve \
      --innodb-buffer-pool-size=256M --innodb-log-file-size=64M --innodb-lock-wait-timeout=900 \
      </dev/null >>"$LOG/mariadb.log" 2>&1 &
    wait_while_alive "$TIMEOUT" "mariadbd to start" $! mariadb_ready
  fi
  wait_for "$TIMEOUT" "mariadbd to answer" mariadb_ready
  db_client <<EOF
CREATE DATABASE IF NOT EXISTS $DB_NAME;
CREATE USER IF NOT EXISTS '$DB_USER'@'127.0.0.1' IDENTIFIED BY '$DB_PASS';
CREATE USER IF NOT EXISTS '$DB_USER'@'localhost' IDENTIFIED BY '$DB_PASS';
GRANT ALL ON $DB_NAME.* TO '$DB_USER'@'127.0.0.1';
GRANT ALL ON $DB_NAME.* TO '$DB_USER'@'localhost';
EOF
}

sacctmgr_q() { timeout 20 sacctmgr -n -P "$@"; }
dbd_answers() { sacctmgr_q show cluster format=cluster >/dev/null; }

start_slurmdbd() {
  if ! is_up slurmdbd; then
    log "starting slurmdbd on 127.0.0.1:$DBD_PORT"
    slurmdbd 2>>"$LOG/slurmdbd-launch.log"
    wait_for "$TIMEOUT" "slurmdbd pid file" is_up slurmdbd
  fi
  wait_for "$TIMEOUT" "slurmdbd to answer sacctmgr" dbd_answers
}

register_accounting() {
  if ! sacctmgr_q show cluster format=cluster | grep -qx "$CLUSTER"; then
    log "registering cluster $CLUSTER"
    sacctmgr -i add cluster "$CLUSTER" >/dev/null
  fi
  local acct existing entry user
  existing=$(sacctmgr_q show account format=account)
  for acct in "${RIG_ACCOUNTS[@]}"; do
    if ! grep -qx "$acct" <<<"$existing"; then
      sacctmgr -i add account "$acct" Cluster="$CLUSTER" Description="$acct" Organization=rig >/dev/null
    fi
  done
  existing=$(sacctmgr_q show assoc format=user,account where cluster="$CLUSTER")
  for entry in "${RIG_USERS[@]}"; do
    user=${entry%%:*} acct=${entry#*:}
    if ! grep -qx "$user|$acct" <<<"$existing"; then
      sacctmgr -i add user "$user" Account="$acct" DefaultAccount="$acct" Cluster="$CLUSTER" >/dev/null
    fi
  done
}

node_ready() { # the node answers and is schedulable
  local state
  state=$(timeout 10 sinfo -h -N -o '%T' | head -n1)
  [[ $state == idle || $state == mixed || $state == allocated ]]
}

start_slurmctld() {
  if ! is_up slurmctld; then
    log "starting slurmctld"
    slurmctld 2>>"$LOG/slurmctld-launch.log"
    wait_for "$TIMEOUT" "slurmctld pid file" is_up slurmctld
  fi
  wait_for "$TIMEOUT" "slurmctld to answer" timeout 10 scontrol ping
}

start_slurmd() {
  if ! is_up slurmd; then
    log "starting slurmd"
    slurmd 2>>"$LOG/slurmd-launch.log"
    wait_for "$TIMEOUT" "slurmd pid file" is_up slurmd
  fi
  wait_for "$TIMEOUT" "node $(hostname -s) to be idle in sinfo" node_ready
}

any_up() {
  local d
  for d in "${DAEMONS[@]}"; do is_up "$d" && return 0; done
  return 1
}

start_failed() {
  trap - ERR
  err "start failed (line ${1:-?}); daemon logs follow"
  cmd_logs >&2 || true
  exit 1
}

cmd_start() {
  need_root
  case $RIG_MODE in linuxproc | cgroup) ;; *) err "SLURM_RIG_MODE must be linuxproc or cgroup, not '$RIG_MODE'"; exit 2 ;; esac
  local t0
  trap 'start_failed $LINENO' ERR
  ensure_packages
  t0=$(now_ms)
  ensure_users
  if render_configs && any_up; then
    log "configuration changed (mode $(cat "$ETC/mode" 2>/dev/null || echo '?') -> $RIG_MODE): restarting"
    cmd_stop
    render_configs || true
  fi
  make_dirs
  install_configs
  start_munge
  start_mariadb
  start_slurmdbd
  register_accounting
  start_slurmctld
  start_slurmd
  trap - ERR
  local kind=existing
  (( FRESH_DB )) && kind=fresh
  log "TIMING start ($kind state): $(elapsed "$t0") s"
  echo "start-$kind $(elapsed "$t0")" >>"$LOG/timings"
  log "cluster '$CLUSTER' is up in $RIG_MODE mode; use:"
  echo "export SLURM_CONF=$SLURM_CONF"
}

# ---------------------------------------------------------------- stop
cancel_all_jobs() {
  is_up slurmctld || return 0
  timeout 10 scontrol ping >/dev/null 2>&1 || return 0
  local ids
  ids=$(timeout 10 squeue -h -o '%A' | sort -u | tr '\n' ' ')
  [[ -n ${ids// /} ]] || return 0
  log "cancelling jobs: $ids"
  # shellcheck disable=SC2086  # word splitting of job ids intended
  scancel $ids || true
  wait_for "$TIMEOUT" "all jobs to leave the queue" queue_empty || {
    timeout 10 squeue >&2 || true
    return 1
  }
}
queue_empty() { [[ -z $(timeout 10 squeue -h -o '%A') ]]; }

cmd_stop() {
  need_root
  local wipe=0 t0 rc=0
  [[ ${1:-} == --wipe ]] && wipe=1
  t0=$(now_ms)
  if [[ -f $SLURM_CONF ]]; then
    cancel_all_jobs || rc=1
  fi
  stop_daemon slurmd || rc=1
  stop_daemon slurmctld || rc=1
  stop_daemon slurmdbd || rc=1
  stop_daemon mariadbd 60 || rc=1
  stop_daemon munged || rc=1
  if (( wipe )); then
    log "wiping $RIG_DIR"
    rm -rf --one-file-system "$RIG_DIR"
  fi
  log "TIMING stop: $(elapsed "$t0") s"
  return "$rc"
}

# ---------------------------------------------------------------- status / logs
cmd_status() {
  local d pid down=0
  for d in "${DAEMONS[@]}"; do
    if pid=$(pid_of "$d"); then
      printf '%-10s up   (pid %s)\n' "$d" "$pid"
    elif [[ $d == munged ]] && munge_works 2>/dev/null; then
      printf '%-10s up   (not started by this rig)\n' "$d"
    else
      printf '%-10s down\n' "$d"
      down=1
    fi
  done
  if (( ! down )); then
    printf '%-10s %s\n' node "$(timeout 10 sinfo -h -N -o '%N %T' 2>/dev/null || echo '?')"
    printf '%-10s %s\n' mode "$(cat "$ETC/mode" 2>/dev/null || echo '?')"
    echo "export SLURM_CONF=$SLURM_CONF"
  fi
  return "$down"
}

cmd_logs() {
  local f
  for f in "$LOG"/*.log; do
    [[ -f $f ]] || continue
    echo "===== $f (last $LOG_LINES lines) ====="
    tail -n "$LOG_LINES" "$f"
  done
}

usage() {
  sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'
}

main() {
  local cmd=${1:-}
  shift || true
  case $cmd in
    start) cmd_start "$@" ;;
    stop) cmd_stop "$@" ;;
    status) cmd_status ;;
    logs) cmd_logs ;;
    env) echo "export SLURM_CONF=$SLURM_CONF" ;;
    -h | --help | help) usage ;;
    *) usage >&2; exit 2 ;;
  esac
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then main "$@"; fi # sourced by second.sh: define only
