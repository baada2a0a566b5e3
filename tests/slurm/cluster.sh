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
# default: the version the rig dir last ran, else 22.05
RIG_VERSION=${SLURM_RIG_VERSION:-$(cat "$RIG_DIR/etc/version" 2>/dev/null || echo 22.05)}
GPUS=2
ROOTFS=${SLURM_RIG_ROOTFS:-/var/cache/slurm-usage-rig/trixie}
ROOTFS_MIRROR=${SLURM_RIG_MIRROR:-http://deb.debian.org/debian}

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
# what the cached Debian 13 root must hold; change it to rebuild the cache
ROOTFS_STAMP="trixie minbase ${PACKAGES[*]} v1"
export SLURM_CONF=$ETC/slurm.conf
# the SLURM client tools of this rig's version (wrappers for 24.11; empty for 22.05)
export PATH=$RIG_DIR/bin:$PATH

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

# ---------------------------------------------------------------- Slurm 24.11 root (Debian 13)
# SLURM_RIG_VERSION=24.11 runs Debian 13's Slurm packages from a root file system that
# debootstrap builds once per machine (cached in $ROOTFS, rebuilt when $ROOTFS_STAMP changes).
# The programs do not run chrooted: each runs in a mount namespace of its own where the
# root's /usr (Debian 13 is merged-/usr: binaries, libraries, Slurm plugins) and ld.so.cache
# are bind-mounted over the host's, and /run/munge is the rig's own ($RIG_DIR/munge, where
# the rig's munged listens: a 24.11 rig does not depend on a munged another rig may stop).
# Everything else is the host's: /etc (users alice and bob with their uids, /etc/hosts, the
# munge key), /proc, /sys (cgroups), /dev, the rig dir and any path a test hands to sacct
# (SLURM_CONF in target/tmp/...). See `rig_exec` and the wrappers in $RIG_DIR/bin.
ensure_rootfs() {
  [[ $RIG_VERSION == 24.11 ]] || return 0
  if [[ $(cat "$ROOTFS/.rig-stamp" 2>/dev/null) == "$ROOTFS_STAMP" ]]; then
    return 0
  fi
  local t0 tmp=$ROOTFS.new rc=0 lock
  t0=$(now_ms)
  mkdir -p "$(dirname "$ROOTFS")" "$LOG"
  # one build at a time on this machine (two rigs may start 24.11 at once); the other waits,
  # then finds the root built
  exec {lock}>"$ROOTFS.lock"
  flock "$lock"
  if [[ $(cat "$ROOTFS/.rig-stamp" 2>/dev/null) == "$ROOTFS_STAMP" ]]; then
    exec {lock}>&-
    return 0
  fi
  command -v debootstrap >/dev/null || {
    log "installing debootstrap"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap \
      >>"$LOG/rootfs.log" 2>&1 || { apt-get update -qq >>"$LOG/rootfs.log" 2>&1 &&
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap \
      >>"$LOG/rootfs.log" 2>&1; }
  }
  log "building the Debian 13 root for Slurm 24.11 in $ROOTFS (log: $LOG/rootfs.log; once per machine)"
  umount_under "$tmp"
  rm -rf --one-file-system "$tmp"
  debootstrap --variant=minbase trixie "$tmp" "$ROOTFS_MIRROR" >>"$LOG/rootfs.log" 2>&1 || rc=$?
  if (( rc == 0 )); then
    # no service may start during the install; /proc for the postinst scripts
    printf '#!/bin/sh\nexit 101\n' >"$tmp/usr/sbin/policy-rc.d"
    chmod 755 "$tmp/usr/sbin/policy-rc.d"
    mount -t proc proc "$tmp/proc"
    chroot "$tmp" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      "${PACKAGES[@]}" >>"$LOG/rootfs.log" 2>&1 || rc=$?
    chroot "$tmp" apt-get clean >>"$LOG/rootfs.log" 2>&1 || true
    umount "$tmp/proc" || umount -l "$tmp/proc"
    rm -f "$tmp/usr/sbin/policy-rc.d"
  fi
  if (( rc != 0 )) || [[ ! -x $tmp/usr/sbin/slurmctld ]]; then
    err "building the Debian 13 root failed (exit $rc); last lines of $LOG/rootfs.log:"
    tail -n 30 "$LOG/rootfs.log" >&2
    exit 1
  fi
  echo "$ROOTFS_STAMP" >"$tmp/.rig-stamp"
  rm -rf --one-file-system "$ROOTFS"
  mv "$tmp" "$ROOTFS"
  # shellcheck disable=SC2016  # a dpkg-query format, not a shell expansion
  log "TIMING rootfs build: $(elapsed "$t0") s (slurmctld $(chroot "$ROOTFS" dpkg-query -W -f='${Version}' slurmctld))"
  echo "rootfs $(elapsed "$t0")" >>"$LOG/timings"
  exec {lock}>&-
}

umount_under() { # dir: unmount everything mounted at or below dir, deepest first
  local m
  [[ -d $1 ]] || return 0
  findmnt -rn -o TARGET | awk -v d="$1" '$0 == d || index($0, d "/") == 1' | sort -r |
    while read -r m; do umount "$m" 2>/dev/null || umount -l "$m"; done
}

# rig_exec CMD... : run CMD with this rig's Slurm: the host's for 22.05; for 24.11 in a mount
# namespace whose /usr is the Debian 13 root's (needs root; the namespace ends with CMD and
# everything it forks, daemons included).
# shellcheck disable=SC2016  # expanded by the inner sh: $0 the root, $1 the munge dir
NS_SCRIPT='mount --bind "$0/usr" /usr && mount --bind "$0/etc/ld.so.cache" /etc/ld.so.cache && mount --bind "$1" /run/munge && shift && exec "$@"'
rig_exec() {
  if [[ $RIG_VERSION == 24.11 ]]; then
    [[ -d $RIG_DIR/munge && -d /run/munge ]] || mkdir -p "$RIG_DIR/munge" /run/munge
    unshare --mount --propagation private -- /bin/sh -c "$NS_SCRIPT" "$ROOTFS" "$RIG_DIR/munge" "$@"
  else
    "$@"
  fi
}

# The SLURM commands for everything outside this script (jobs.sh, the tests, slurm-usage):
# for 24.11, $RIG_DIR/bin/<tool> runs the Debian 13 tool through the same namespace; put
# $RIG_DIR/bin first on PATH (`cluster.sh env` prints the line). For 22.05 the dir holds
# nothing and the host's tools are used.
CLIENT_TOOLS=(sacct sacctmgr sbatch scancel scontrol sinfo squeue srun salloc sstat sshare sprio sreport sdiag)
write_wrappers() {
  rm -rf "${RIG_DIR:?}/bin"
  mkdir -p "$RIG_DIR/bin"
  chmod 755 "$RIG_DIR/bin"
  [[ $RIG_VERSION == 24.11 ]] || return 0
  local t
  for t in "${CLIENT_TOOLS[@]}" rig-exec; do
    cat >"$RIG_DIR/bin/$t" <<EOF
#!/bin/sh
# written by tests/slurm/cluster.sh: Slurm $RIG_VERSION's $t from $ROOTFS (see rig_exec there).
# As root only (it makes a mount namespace); run as another user with: rig-exec runuser -u USER -- $t ...
[ "\$(id -u)" = 0 ] || { echo "$RIG_DIR/bin/$t: must run as root (use: $RIG_DIR/bin/rig-exec runuser -u USER -- $t ...)" >&2; exit 1; }
exec unshare --mount --propagation private -- /bin/sh -c '$NS_SCRIPT' \
  "$ROOTFS" "$RIG_DIR/munge" $( [[ $t == rig-exec ]] || printf '/usr/bin/%s ' "$t")"\$@"
EOF
    chmod 755 "$RIG_DIR/bin/$t"
  done
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
  line=$(rig_exec slurmd -C | head -n1)
  [[ $line == NodeName=* ]] || { err "unexpected 'slurmd -C' output: $line"; return 1; }
  mem=$(sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' <<<"$line")
  line=${line/RealMemory=$mem/RealMemory=$((mem * 95 / 100))}
  printf '%s Gres=gpu:%s NodeAddr=127.0.0.1 NodeHostname=%s State=UNKNOWN\n' "$line" "$GPUS" "$(hostname -s)"
}

render_slurm_conf() {
  local host proctrack task gather node=${NODE_LINE:-}
  host=$(hostname -s)
  [[ -n $node ]] || node=$(node_line) # second.sh calls this without render_configs
  case $RIG_MODE in
    linuxproc) proctrack=proctrack/linuxproc task=task/none gather=jobacct_gather/linux ;;
    cgroup) proctrack=proctrack/cgroup task=task/cgroup,task/affinity gather=jobacct_gather/cgroup ;;
  esac
  cat <<EOF
# written by tests/slurm/cluster.sh (Slurm $RIG_VERSION, mode: $RIG_MODE) - do not edit, it is rewritten on start
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
AccountingStorageTRES=gres/gpu
GresTypes=gpu
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
$node
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

# The node's GPUs: character devices the rig makes ($RIG_DIR/dev/gpuN, major 195 as NVIDIA's,
# no driver behind them: nothing opens them). Slurm only needs the files to exist; with
# ConstrainDevices unset (both modes) no device cgroup is set up for them.
render_gres_conf() {
  echo "# written by tests/slurm/cluster.sh"
  echo "Name=gpu File=$RIG_DIR/dev/gpu[0-$((GPUS - 1))]"
}

make_gpu_devices() {
  local i
  mkdir -p "$RIG_DIR/dev"
  for ((i = 0; i < GPUS; i++)); do
    [[ -c $RIG_DIR/dev/gpu$i ]] || mknod -m 666 "$RIG_DIR/dev/gpu$i" c 195 "$i"
  done
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
  # here, not inside the heredoc: a failing `slurmd -C` must stop the start (this function
  # runs in an `if`, where set -e does not act)
  NODE_LINE=$(node_line) || { err "cannot describe the node ('slurmd -C' of Slurm $RIG_VERSION)"; exit 1; }
  render_slurm_conf >"$ETC/slurm.conf.new"
  render_cgroup_conf >"$ETC/cgroup.conf.new"
  render_gres_conf >"$ETC/gres.conf.new"
  (umask 077; render_slurmdbd_conf >"$ETC/slurmdbd.conf.new")
  local f changed=1
  for f in slurm.conf cgroup.conf gres.conf slurmdbd.conf; do
    cmp -s "$ETC/$f" "$ETC/$f.new" || changed=0
  done
  return "$changed"
}

install_configs() {
  local f
  for f in slurm.conf cgroup.conf gres.conf slurmdbd.conf; do
    mv -f "$ETC/$f.new" "$ETC/$f"
  done
  chmod 644 "$ETC/slurm.conf" "$ETC/cgroup.conf" "$ETC/gres.conf"
  chmod 600 "$ETC/slurmdbd.conf"
  echo "$RIG_MODE" >"$ETC/mode"
  echo "$RIG_VERSION" >"$ETC/version"
}

make_dirs() {
  mkdir -p "$ETC" "$RUN" "$LOG" "$SPOOL/ctld" "$SPOOL/d" "$DB_DIR/data" "$DB_DIR/run" "$RIG_DIR/jobs"
  chmod 755 "$RIG_DIR" "$ETC" "$RUN" "$LOG"
  chmod 1777 "$RIG_DIR/jobs"
  make_gpu_devices
  chown -R mysql:mysql "$DB_DIR"
  touch "$LOG/mariadb.log" && chown mysql:mysql "$LOG/mariadb.log"
}

# ---------------------------------------------------------------- daemons
# For 24.11 inside the namespace, where /run/munge is the rig's own.
munge_works() { rig_exec munge -n -S "$MUNGE_SOCK" </dev/null | rig_exec unmunge -S "$MUNGE_SOCK" >/dev/null; }

start_munge() {
  if [[ ! -s /etc/munge/munge.key ]]; then
    log "creating /etc/munge/munge.key"
    mungekey --create --keyfile=/etc/munge/munge.key
    chown munge:munge /etc/munge/munge.key
    chmod 400 /etc/munge/munge.key
  fi
  # 22.05: the host's /run/munge, a munged found working there is used (and left alone);
  # 24.11: the rig's own munged in $RIG_DIR/munge, seen as /run/munge in the namespace
  local dir=/run/munge extra=()
  mkdir -p /run/munge && chown munge:munge /run/munge && chmod 755 /run/munge
  if [[ $RIG_VERSION == 24.11 ]]; then
    dir=$RIG_DIR/munge
    extra=(--seed-file=/run/munge/munged.seed)
  fi
  if is_up munged || munge_works 2>/dev/null; then
    return 0 # ours, or a system munged we leave alone
  fi
  mkdir -p "$dir" && chown munge:munge "$dir" && chmod 755 "$dir"
  touch "$LOG/munged.log" "${PIDFILE[munged]}"
  chown munge:munge "$LOG/munged.log" "${PIDFILE[munged]}"
  log "starting munged ($dir)"
  rig_exec runuser -u munge -- munged --socket="$MUNGE_SOCK" --pid-file="${PIDFILE[munged]}" \
    --log-file="$LOG/munged.log" "${extra[@]}"
  wait_for "$TIMEOUT" munged munge_works
}

db_client() { rig_exec mariadb --no-defaults --socket="$DB_SOCK" -u root; }
db_ping() { rig_exec mariadb-admin --no-defaults --socket="$DB_SOCK" -u root ping; }
mariadb_ready() { is_up mariadbd && db_ping; }

start_mariadb() {
  FRESH_DB=0
  if [[ ! -d $DB_DIR/data/mysql ]]; then
    FRESH_DB=1
    log "initialising MariaDB datadir $DB_DIR/data"
    rig_exec mariadb-install-db --no-defaults --user=mysql --datadir="$DB_DIR/data" \
      --auth-root-authentication-method=socket --skip-test-db >"$LOG/mariadb-install-db.log" 2>&1 ||
      { cat "$LOG/mariadb-install-db.log" >&2; return 1; }
  fi
  if ! is_up mariadbd; then
    log "starting mariadbd on 127.0.0.1:$DB_PORT"
    # setsid -w: the launcher pid lives exactly as long as mariadbd (forked or not)
    rig_exec setsid -w mariadbd --no-defaults --user=mysql --datadir="$DB_DIR/data" \
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
    rig_exec slurmdbd 2>>"$LOG/slurmdbd-launch.log"
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
    rig_exec slurmctld 2>>"$LOG/slurmctld-launch.log"
    wait_for "$TIMEOUT" "slurmctld pid file" is_up slurmctld
  fi
  wait_for "$TIMEOUT" "slurmctld to answer" timeout 10 scontrol ping
}

start_slurmd() {
  if ! is_up slurmd; then
    log "starting slurmd"
    rig_exec slurmd 2>>"$LOG/slurmd-launch.log"
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
  case $RIG_VERSION in 22.05 | 24.11) ;; *) err "SLURM_RIG_VERSION must be 22.05 or 24.11, not '$RIG_VERSION'"; exit 2 ;; esac
  local was
  was=$(cat "$ETC/version" 2>/dev/null || echo "$RIG_VERSION")
  if [[ $was != "$RIG_VERSION" ]]; then
    # the database (and MariaDB's datadir) of one version is not for the other
    err "$RIG_DIR holds a Slurm $was rig; run 'cluster.sh stop --wipe' before starting $RIG_VERSION there"
    exit 2
  fi
  local t0
  trap 'start_failed $LINENO' ERR
  ensure_packages
  ensure_rootfs
  t0=$(now_ms)
  ensure_users
  if render_configs && any_up; then
    log "configuration changed (mode $(cat "$ETC/mode" 2>/dev/null || echo '?') -> $RIG_MODE): restarting"
    cmd_stop
    render_configs || true
  fi
  make_dirs
  write_wrappers
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
  log "cluster '$CLUSTER' is up: Slurm $(rig_exec sacct --version) in $RIG_MODE mode; use:"
  cmd_env
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
    printf '%-10s %s\n' version "$(timeout 10 sacct --version 2>/dev/null || echo '?')"
    cmd_env
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

cmd_env() { # what a shell needs to use this rig's SLURM tools
  echo "export SLURM_CONF=$SLURM_CONF"
  [[ $RIG_VERSION == 24.11 ]] && echo "export PATH=$RIG_DIR/bin:\$PATH"
  return 0
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
    rootfs) need_root; RIG_VERSION=24.11 ensure_rootfs ;;
    env) cmd_env ;;
    -h | --help | help) usage ;;
    *) usage >&2; exit 2 ;;
  esac
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then main "$@"; fi # sourced by second.sh: define only
