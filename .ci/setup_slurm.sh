#!/usr/bin/env bash
# A single-node SLURM cluster on localhost (Debian packages, no systemd), for tests/cluster.
#
#   bash .ci/setup_slurm.sh start    # install if needed, configure, start munge + slurmctld + slurmd
#   bash .ci/setup_slurm.sh stop     # stop the daemons this script started (by their pid files)
#
# FUSIONFM_SLURM_ACCOUNTING=dbd adds job accounting (MariaDB + slurmdbd), so sacct works, as
# on most real clusters; the default (none) is quicker to set up and needs squeue for states.
#
# Needs root. State, logs and pid files live in $FUSIONFM_SLURM_DIR (default /tmp/fusionfm-slurm);
# the config must be /etc/slurm (SLURM's compiled-in default), because the snakemake jobstep
# plugin drops SLURM_* variables (SLURM_CONF too) before its `srun`. There is no accounting
# daemon by default, so job states come from squeue (`--slurm-status-command squeue`).
# The node advertises one fake GPU (gres backed by /dev/null) so `gpu=1` jobs are schedulable.
#
# `start` always leaves a one-line verdict in $FUSIONFM_SLURM_DIR/status: "up", or
# "unavailable: <reason>"; tests/cluster reads it to skip with that reason.
set -Eeuo pipefail

SLURM_DIR=${FUSIONFM_SLURM_DIR:-/tmp/fusionfm-slurm}
STATUS=$SLURM_DIR/status
ACCOUNTING=${FUSIONFM_SLURM_ACCOUNTING:-none}
CONF=/etc/slurm/slurm.conf
OWNER_MARK="# written by fusionfm .ci/setup_slurm.sh"

unavailable() {
    mkdir -p "$SLURM_DIR"
    echo "unavailable: $*" >"$STATUS"
    echo "SLURM unavailable: $*" >&2
    exit 1
}

stop_pidfile() {
    local file=$1 pid
    [ -s "$file" ] || return 0
    pid=$(cat "$file")
    if kill -TERM "$pid" 2>/dev/null; then
        for _ in $(seq 1 40); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.25
        done
        if kill -0 "$pid" 2>/dev/null; then
            kill -KILL "$pid" 2>/dev/null || true
        fi
        echo "stopped pid $pid ($file)"
    fi
    rm -f "$file"
}

stop() {
    stop_pidfile "$SLURM_DIR/run/slurmd.pid"
    stop_pidfile "$SLURM_DIR/run/slurmctld.pid"
    stop_pidfile "$SLURM_DIR/run/slurmdbd.pid"
    stop_pidfile "$SLURM_DIR/mysql/mariadbd.pid"
    # munged only if this script started it
    if [ -f "$SLURM_DIR/run/munged.ours" ]; then
        stop_pidfile /run/munge/munged.pid
        rm -f "$SLURM_DIR/run/munged.ours"
    fi
    return 0
}

install_packages() {
    local pkgs="slurm-wlm munge" missing=0 p
    if [ "$ACCOUNTING" = dbd ]; then pkgs="$pkgs slurmdbd mariadb-server"; fi
    for p in $pkgs; do dpkg -s "$p" >/dev/null 2>&1 || missing=1; done
    [ "$missing" = 0 ] && return 0
    command -v apt-get >/dev/null || unavailable "slurm-wlm is not installed and there is no apt-get"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq || unavailable "apt-get update failed"
    # shellcheck disable=SC2086  # word splitting of the package list is intended
    apt-get install -y -qq --no-install-recommends $pkgs >/dev/null ||
        unavailable "apt-get install $pkgs failed"
}

write_config() {
    local ncpu mem_mb accounting
    ncpu=$(nproc)
    if [ "$ACCOUNTING" = dbd ]; then
        accounting="AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStoragePort=6819
JobAcctGatherType=jobacct_gather/linux"
    else
        accounting="AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none"
    fi
    mem_mb=$(($(awk '/MemTotal/{print $2}' /proc/meminfo) / 1024 - 2048))
    mkdir -p /etc/slurm
    cat >"$CONF" <<CONF
$OWNER_MARK
ClusterName=fusionfm-local
SlurmctldHost=localhost
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
SwitchType=switch/none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
$accounting
JobCompType=jobcomp/filetxt
JobCompLoc=$SLURM_DIR/log/jobcomp.txt
# finished jobs stay visible to squeue for 10 minutes (status polling needs them)
MinJobAge=600
DefMemPerCPU=1024
GresTypes=gpu
ReturnToService=2
StateSaveLocation=$SLURM_DIR/state
SlurmdSpoolDir=$SLURM_DIR/spool
SlurmctldPidFile=$SLURM_DIR/run/slurmctld.pid
SlurmdPidFile=$SLURM_DIR/run/slurmd.pid
SlurmctldLogFile=$SLURM_DIR/log/slurmctld.log
SlurmdLogFile=$SLURM_DIR/log/slurmd.log
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$ncpu RealMemory=$mem_mb Gres=gpu:1 State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
CONF
    # slurmd ignores a GPU without a device file and rejects a regular file; a char device works
    printf '%s\nNodeName=localhost Name=gpu File=/dev/null\n' "$OWNER_MARK" >/etc/slurm/gres.conf
}

start_munge() {
    if [ ! -s /etc/munge/munge.key ]; then
        dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 status=none
        chown munge:munge /etc/munge/munge.key
        chmod 400 /etc/munge/munge.key
    fi
    mkdir -p /run/munge /var/log/munge /var/lib/munge
    chown munge:munge /run/munge /var/log/munge /var/lib/munge
    if ! { [ -s /run/munge/munged.pid ] && kill -0 "$(cat /run/munge/munged.pid)" 2>/dev/null; }; then
        runuser -u munge -- /usr/sbin/munged || unavailable "munged did not start"
        touch "$SLURM_DIR/run/munged.ours"
    fi
    munge -n | unmunge >/dev/null || unavailable "munge credentials do not round-trip"
}

start_slurmdbd() {
    local db=$SLURM_DIR/mysql
    mkdir -p "$db"
    mariadb-install-db --user=mysql --datadir="$db/data" --auth-root-authentication-method=socket \
        >"$SLURM_DIR/log/mariadb-install.log" 2>&1 || unavailable "mariadb-install-db failed"
    chown -R mysql:mysql "$db"
    setsid /usr/sbin/mariadbd --user=mysql --datadir="$db/data" --socket="$db/mysqld.sock" \
        --port=3307 --bind-address=127.0.0.1 --pid-file="$db/mariadbd.pid" \
        --innodb-buffer-pool-size=128M --log-error="$db/mariadb.err" </dev/null >/dev/null 2>&1 &
    for _ in $(seq 1 60); do
        mariadb-admin --socket="$db/mysqld.sock" ping >/dev/null 2>&1 && break
        sleep 0.5
    done
    mariadb --socket="$db/mysqld.sock" -e "CREATE DATABASE slurm_acct_db;
        CREATE USER 'slurm'@'127.0.0.1' IDENTIFIED BY 'slurm-local';
        GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';
        CREATE USER 'slurm'@'localhost' IDENTIFIED BY 'slurm-local';
        GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';" ||
        unavailable "MariaDB did not start (see $db/mariadb.err)"
    cat >/etc/slurm/slurmdbd.conf <<CONF
$OWNER_MARK
AuthType=auth/munge
DbdHost=localhost
DbdPort=6819
SlurmUser=root
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=3307
StorageUser=slurm
StoragePass=slurm-local
StorageLoc=slurm_acct_db
PidFile=$SLURM_DIR/run/slurmdbd.pid
LogFile=$SLURM_DIR/log/slurmdbd.log
CONF
    chmod 600 /etc/slurm/slurmdbd.conf
    slurmdbd || unavailable "slurmdbd did not start"
    for _ in $(seq 1 60); do
        sacctmgr -n show cluster >/dev/null 2>&1 && return 0
        sleep 0.5
    done
    unavailable "slurmdbd did not answer within 30 s (logs in $SLURM_DIR/log)"
}

start() {
    mkdir -p "$SLURM_DIR"
    # overwritten by the verdict; left as it is if the setup is killed (e.g. by a timeout)
    echo "unavailable: .ci/setup_slurm.sh start did not finish" >"$STATUS"
    trap 'echo "unavailable: .ci/setup_slurm.sh failed at line $LINENO" >"$STATUS"' ERR
    [ "$(id -u)" = 0 ] || unavailable "setting up SLURM needs root"
    if [ -e "$CONF" ] && ! grep -qF "$OWNER_MARK" "$CONF"; then
        unavailable "$CONF exists and was not written by this script; not touching it"
    fi
    install_packages
    stop >/dev/null # daemons of an earlier start
    rm -rf "$SLURM_DIR"/{state,spool,log,run,mysql}
    mkdir -p "$SLURM_DIR"/{state,spool,log,run}
    write_config
    start_munge
    if [ "$ACCOUNTING" = dbd ]; then start_slurmdbd; fi
    slurmctld || unavailable "slurmctld did not start"
    slurmd -N localhost || unavailable "slurmd did not start"
    for _ in $(seq 1 60); do
        sinfo -h -o '%T' 2>/dev/null | grep -q '^idle' && break
        sleep 1
    done
    if ! sinfo -h -o '%T' 2>/dev/null | grep -q '^idle'; then
        tail -n 20 "$SLURM_DIR"/log/*.log >&2 || true
        unavailable "the node did not become idle within 60 s (logs in $SLURM_DIR/log)"
    fi
    echo up >"$STATUS"
    echo "SLURM is up (accounting: $ACCOUNTING)"
    sinfo
}

case "${1:-start}" in
start) start ;;
stop)
    stop
    if [ -d "$SLURM_DIR" ]; then echo "unavailable: stopped by .ci/setup_slurm.sh stop" >"$STATUS"; fi
    ;;
*)
    echo "usage: $0 [start|stop]" >&2
    exit 2
    ;;
esac
