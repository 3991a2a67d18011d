#!/bin/bash
# Install (if needed) and start a single-node Slurm cluster on Debian 12 without systemd,
# then wait until the node is idle. Run as root. Daemon pids go to $STATE/pids/<name>.pid.
#   SLURM_CI_STATE       state/log/pid dir                         (default /tmp/slurm-ci)
#   SLURM_CI_CPUS        CPUs to advertise; may exceed nproc       (default $(nproc))
#   SLURM_CI_ACCOUNTING  1 = also install+start MariaDB + slurmdbd so that sacct works
#   SLURM_CI_TIMEOUT     seconds to wait for the node              (default 60)
set -euo pipefail

STATE=${SLURM_CI_STATE:-/tmp/slurm-ci}
ACCT=${SLURM_CI_ACCOUNTING:-0}
TIMEOUT=${SLURM_CI_TIMEOUT:-60}
t0=$EPOCHREALTIME
log() { awk -v a="$t0" -v b="$EPOCHREALTIME" -v m="$*" 'BEGIN { printf "[slurm-ci %6.2fs] %s\n", b - a, m }'; }

# ---------------------------------------------------------------- install
pkgs="slurmctld slurmd slurm-client munge"
[ "$ACCT" = 1 ] && pkgs="$pkgs slurmdbd mariadb-server"
missing=$(for p in $pkgs; do dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed' || echo "$p"; done)
if [ -n "$missing" ]; then
    log "installing $(echo $missing)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # postinst scripts try to start the services; without systemd that is refused/skipped, fine
    apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

for d in slurmd slurmctld slurmdbd mariadbd munged; do
    if [ -s "$STATE/pids/$d.pid" ] && kill -0 "$(cat "$STATE/pids/$d.pid")" 2>/dev/null; then
        echo "$d already running (pid $(cat "$STATE/pids/$d.pid")); run tests/slurm/stop.sh first" >&2; exit 1
    fi
done
rm -rf "$STATE"/pids "$STATE"/log "$STATE"/spool   # fresh: no old jobs, job ids restart at 1
mkdir -p "$STATE"/pids "$STATE"/log "$STATE"/spool/ctld "$STATE"/spool/d
chmod 755 "$STATE"

# start <name> <command...>: run a daemon in the foreground, in the background; record its pid.
# (every command given here execs the daemon itself, so $! is the daemon's pid)
start() { local n=$1; shift; "$@" </dev/null >"$STATE/log/$n.out" 2>&1 & echo $! >"$STATE/pids/$n.pid"; }
# wait_for <what> <test command...>: poll until the test succeeds; fail fast if a daemon died
wait_for() {
    local what=$1 f; shift
    for _ in $(seq $((TIMEOUT * 10))); do
        "$@" >/dev/null 2>&1 && return 0
        for f in "$STATE"/pids/*.pid; do
            kill -0 "$(cat "$f")" 2>/dev/null || { echo "$(basename "$f" .pid) died" >&2; break 2; }
        done
        sleep 0.1
    done
    echo "failed waiting for $what; logs:" >&2; tail -n 20 "$STATE"/log/* >&2; exit 1
}

# ---------------------------------------------------------------- munge
# The munge postinst creates /etc/munge/munge.key; make one if it is missing.
[ -s /etc/munge/munge.key ] || mungekey --create --keyfile=/etc/munge/munge.key
chown munge:munge /etc/munge/munge.key; chmod 400 /etc/munge/munge.key
# systemd would create /run/munge (RuntimeDirectory=munge); without it we must.
install -d -o munge -g munge -m 755 /run/munge
if ! (munge -n | unmunge) >/dev/null 2>&1; then       # not already running (e.g. under systemd)
    log "starting munged"
    # munged must run as the user owning the key; setpriv execs (no fork), unlike runuser/su
    start munged setpriv --reuid=munge --regid=munge --init-groups /usr/sbin/munged --foreground
    wait_for munged sh -c 'munge -n | unmunge'
fi

# ---------------------------------------------------------------- slurm.conf
HOST=$(hostname -s)
CPUS=${SLURM_CI_CPUS:-$(nproc)}
MEM_MB=$(( $(awk '/MemAvailable/ {print $2}' /proc/meminfo) / 1024 * 8 / 10 ))
if [ "$ACCT" = 1 ]; then
    ACCT_CONF="AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost"
else
    ACCT_CONF="AccountingStorageType=accounting_storage/none"
fi

mkdir -p /etc/slurm
cat >/etc/slurm/slurm.conf <<EOF
ClusterName=ci
SlurmctldHost=$HOST(127.0.0.1)
SlurmUser=root
AuthType=auth/munge
# a requeued job may only restart cred_expire+1 s later (default 120 s; minimum 5)
AuthInfo=cred_expire=5
MpiDefault=none
MailProg=/bin/true
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
$ACCT_CONF
JobCompType=jobcomp/none
SchedulerType=sched/backfill
# run the schedulers every second (defaults 60 s / 30 s): else a job whose BeginTime has
# passed (e.g. after a requeue) can stay PENDING for up to 30-60 s more
SchedulerParameters=sched_interval=1,bf_interval=1
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
# use the CPUs/RealMemory below instead of what slurmd detects (allows CPUs > nproc)
SlurmdParameters=config_overrides
ReturnToService=2
StateSaveLocation=$STATE/spool/ctld
SlurmdSpoolDir=$STATE/spool/d
SlurmctldPidFile=$STATE/pids/slurmctld.pidfile
SlurmdPidFile=$STATE/pids/slurmd.pidfile
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd.log
# keep finished jobs visible to squeue/scontrol for an hour (default 300 s)
MinJobAge=3600
KillWait=5
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$MEM_MB State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF

# ---------------------------------------------------------------- accounting (optional)
if [ "$ACCT" = 1 ]; then
    log "starting mariadbd"
    install -d -o mysql -g mysql /run/mysqld
    start mariadbd /usr/sbin/mariadbd --user=mysql --skip-networking --socket=/run/mysqld/mysqld.sock
    wait_for mariadbd mariadb-admin ping
    mariadb -e 'DROP DATABASE IF EXISTS slurm_acct_db'     # fresh accounting, job ids restart
    cat >/etc/slurm/slurmdbd.conf <<EOF
AuthType=auth/munge
DbdHost=localhost
SlurmUser=root
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=root
StorageLoc=slurm_acct_db
LogFile=$STATE/log/slurmdbd.log
PidFile=$STATE/pids/slurmdbd.pidfile
EOF
    chmod 600 /etc/slurm/slurmdbd.conf          # slurmdbd refuses a world-readable file
    log "starting slurmdbd"
    start slurmdbd /usr/sbin/slurmdbd -D
    wait_for slurmdbd sacctmgr -n list cluster
fi

# ---------------------------------------------------------------- slurm daemons
log "starting slurmctld, slurmd"
start slurmctld /usr/sbin/slurmctld -D
start slurmd /usr/sbin/slurmd -D -N "$HOST"
node_idle() { [ "$(sinfo -h -N -n "$HOST" -o %t)" = idle ]; }
wait_for "node $HOST to be idle" node_idle
log "cluster ready"
sinfo
