#!/usr/bin/env bash
# A one-node Slurm cluster on this machine, from Debian's packages (slurmctld, slurmd,
# slurm-client, munge), for leaklab's Slurm test.
#
#   tests/slurm/cluster.sh start  [STATE_DIR]   start munged, slurmctld, slurmd; wait for the node
#   tests/slurm/cluster.sh stop   [STATE_DIR]   cancel jobs, stop the daemons, wait until they are gone
#   tests/slurm/cluster.sh status [STATE_DIR]   exit 0 when all three run and the node takes jobs
#   tests/slurm/cluster.sh env    [STATE_DIR]   print the environment clients need (SLURM_CONF, PATH)
#
# STATE_DIR (default $LEAKLAB_SLURM_DIR or /tmp/leaklab-slurm) holds everything: slurm.conf,
# the munge key and socket, spool and state, pid files, logs and the job completion file
# (log/jobcomp.txt). Nothing is written to /etc; clients find the cluster through
# SLURM_CONF=STATE_DIR/etc/slurm.conf. Daemons run directly (no systemd needed), as root.
#
# STATE_DIR/bin holds wrappers of the client commands (srun, sbatch, squeue, ...) that set
# SLURM_CONF themselves: snakemake-executor-plugin-slurm-jobstep drops every SLURM_*
# variable but a few job ids before it calls `srun` inside a job, SLURM_CONF included, so
# with the config outside /etc/slurm the job's srun finds no cluster unless STATE_DIR/bin
# comes first on the PATH that the job inherits.
#
# start and stop are idempotent. Ports: $LEAKLAB_SLURM_PORT (slurmctld, default 16817) and
# the next one (slurmd), so a system-wide Slurm on the default ports is left alone.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ACTION=${1:-status}
STATE=${2:-${LEAKLAB_SLURM_DIR:-/tmp/leaklab-slurm}}
NODE=leaklab
PARTITION=leaklab
CTLD_PORT=${LEAKLAB_SLURM_PORT:-16817}
SLURMD_PORT=$((CTLD_PORT + 1))
CONF=$STATE/etc/slurm.conf
SOCKET=$STATE/munge/munge.socket
export SLURM_CONF=$CONF
export PATH=$PATH:/usr/sbin:/sbin  # the daemons, for a caller whose PATH lacks them
# jobs and clients of another cluster must not leak in
unset SLURM_JOB_ID SLURM_JOBID SLURM_CLUSTERS

say() { echo "cluster.sh: $*" >&2; }
die() { say "$*"; exit 1; }

alive() {  # alive PID: the process exists and is not a zombie waiting to be reaped
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    [[ ${stat##*) } != Z* ]]
}

# pid from a pid file if that process is alive and is the daemon named (not a reused pid)
pid_of() {
    local file=$1 name=$2 pid
    [[ -s $file ]] || return 1
    pid=$(<"$file")
    [[ $pid =~ ^[0-9]+$ ]] && alive "$pid" || return 1
    [[ $(cat "/proc/$pid/comm" 2>/dev/null) == "$name"* ]] || return 1
    echo "$pid"
}

wait_until() {  # wait_until SECONDS COMMAND...: poll every 0.2 s
    local deadline=$((SECONDS + $1)); shift
    until "$@" >/dev/null 2>&1; do
        ((SECONDS < deadline)) || return 1
        sleep 0.2
    done
}

show_logs() {
    for log in "$STATE"/log/munged.log "$STATE"/log/slurmctld.log "$STATE"/log/slurmd.log; do
        [[ -f $log ]] && { echo "--- $log (last lines)"; tail -n 25 "$log"; }
    done >&2
}

munge_ok() { munge -n -S "$SOCKET" </dev/null | unmunge -S "$SOCKET" >/dev/null; }
ctld_ok() { scontrol ping | grep -q 'is UP'; }
node_state() { sinfo -h -n "$NODE" -o %T 2>/dev/null | head -n1; }
queue_empty() { [[ -z $(squeue -h -t PENDING,RUNNING,COMPLETING -o %A) ]]; }
node_ok() { [[ $(node_state) =~ ^(idle|mixed|allocated|completing)$ ]]; }

require() {
    local missing=() cmd
    for cmd in munged munge unmunge mungekey slurmctld slurmd slurmstepd sbatch srun squeue sinfo scontrol scancel; do
        command -v "$cmd" >/dev/null || missing+=("$cmd")
    done
    ((${#missing[@]} == 0)) || die "missing ${missing[*]}: apt-get install slurmctld slurmd slurm-client munge"
    [[ $(id -u) == 0 ]] || die "the daemons run as root here; run as root"
}

write_config() {
    mkdir -p "$STATE"/{etc,munge,spool/ctld,spool/d,run,log}
    chmod 0700 "$STATE" "$STATE/munge"
    if [[ ! -s $STATE/munge/munge.key ]]; then
        mungekey --create --keyfile="$STATE/munge/munge.key" 2>/dev/null ||
            dd if=/dev/urandom of="$STATE/munge/munge.key" bs=1024 count=1 status=none
    fi
    chmod 0600 "$STATE/munge/munge.key"
    # what this machine has: "NodeName=vm CPUs=2 Boards=1 ... RealMemory=24105"
    local hw
    hw=$(env -u SLURM_CONF slurmd -C | head -n1 | sed -E 's/^NodeName=[^ ]+ //')
    [[ $hw == CPUs=* ]] || die "unexpected 'slurmd -C' output: $hw"
    sed -e "s|@STATE@|$STATE|g" -e "s|@CTLD_HOST@|$(hostname -s)|g" \
        -e "s|@CTLD_PORT@|$CTLD_PORT|g" -e "s|@SLURMD_PORT@|$SLURMD_PORT|g" \
        -e "s|@NODE@|$NODE|g" -e "s|@PARTITION@|$PARTITION|g" -e "s|@NODE_HW@|$hw|g" \
        "$HERE/slurm.conf.in" >"$CONF.new"
    mv "$CONF.new" "$CONF"
    mkdir -p "$STATE/bin"
    local cmd real
    for cmd in srun sbatch salloc squeue sinfo scontrol scancel sacct sstat; do
        real=$(PATH=/usr/bin:/bin:/usr/sbin command -v "$cmd") || continue
        printf '#!/bin/sh\n# %s on the leaklab test cluster (see tests/slurm/cluster.sh)\nSLURM_CONF=\047%s\047 exec \047%s\047 "$@"\n' \
            "$cmd" "$CONF" "$real" >"$STATE/bin/$cmd"
        chmod 0755 "$STATE/bin/$cmd"
    done
}

start() {
    require
    if status >/dev/null 2>&1; then
        say "already running ($STATE)"
        return 0
    fi
    write_config
    if ! pid_of "$STATE/run/munged.pid" munged >/dev/null; then
        rm -f "$SOCKET" "$SOCKET.lock"
        munged --force --socket="$SOCKET" --key-file="$STATE/munge/munge.key" \
            --pid-file="$STATE/run/munged.pid" --log-file="$STATE/log/munged.log" \
            --seed-file="$STATE/munge/munged.seed"
    fi
    wait_until 20 munge_ok || { show_logs; die "munged did not come up"; }

    if ! pid_of "$STATE/run/slurmctld.pid" slurmctld >/dev/null; then
        # -c: no jobs or node states from an earlier run (stop cancels them anyway)
        slurmctld -c -f "$CONF"
    fi
    wait_until 30 ctld_ok || { show_logs; die "slurmctld did not come up"; }

    if ! pid_of "$STATE/run/slurmd.pid" slurmd >/dev/null; then
        slurmd -f "$CONF" -N "$NODE"
    fi
    if ! wait_until 30 node_ok; then
        # a node left down or drained by an earlier run: give it back
        scontrol update NodeName="$NODE" State=RESUME >/dev/null 2>&1 || true
        wait_until 30 node_ok || { show_logs; die "node $NODE is '$(node_state)', not idle"; }
    fi
    # a job really runs on the node
    timeout 60 srun --quiet -N1 -n1 -t 1 --mem=16 -J leaklab-smoke true ||
        { show_logs; die "a test job did not run"; }
    say "up: SLURM_CONF=$CONF, node $NODE ($(sinfo -h -n "$NODE" -o '%c CPUs, %m MB')), partition $PARTITION"
}

stop_pid() {  # stop_pid SECONDS PID...: TERM, wait up to SECONDS, then KILL
    local grace=$1; shift
    local pids=("$@") pid
    ((${#pids[@]})) || return 0
    kill -TERM "${pids[@]}" 2>/dev/null || true
    local deadline=$((SECONDS + grace))
    while ((SECONDS < deadline)); do
        local left=()
        for pid in "${pids[@]}"; do alive "$pid" && left+=("$pid"); done
        ((${#left[@]})) || return 0
        sleep 0.2
    done
    for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
}

descendants() {  # descendants PID: every process below PID
    local child
    for child in $(pgrep -P "$1" || true); do
        echo "$child"
        descendants "$child"
    done
}

stop() {
    local ctld slurmd munged steps=()
    ctld=$(pid_of "$STATE/run/slurmctld.pid" slurmctld) || ctld=
    slurmd=$(pid_of "$STATE/run/slurmd.pid" slurmd) || slurmd=
    munged=$(pid_of "$STATE/run/munged.pid" munged) || munged=
    if [[ -n $ctld ]] && [[ -f $CONF ]]; then
        # cancel what is still queued or running, and give it KillWait to end
        local jobs=()
        mapfile -t jobs < <(squeue -h -o %A 2>/dev/null || true)
        if ((${#jobs[@]})); then
            scancel "${jobs[@]}" 2>/dev/null || true
            wait_until 20 queue_empty || true
        fi
    fi
    stop_pid 15 ${slurmd:+"$slurmd"}
    # job step daemons (detached from slurmd) that outlived a cancel, with whatever they
    # still run: ours carry this cluster's SLURM_CONF in their environment
    local pid
    for pid in $(pgrep -x slurmstepd || true); do
        if tr '\0' '\n' 2>/dev/null <"/proc/$pid/environ" | grep -qxF "SLURM_CONF=$CONF"; then
            steps+=("$pid")
            mapfile -t -O "${#steps[@]}" steps < <(descendants "$pid")
        fi
    done
    stop_pid 3 ${steps[@]+"${steps[@]}"}  # slurmstepd ignores TERM
    stop_pid 15 ${ctld:+"$ctld"}
    stop_pid 15 ${munged:+"$munged"}
    rm -f "$STATE"/run/*.pid "$SOCKET" "$SOCKET.lock"
    say "stopped ($STATE)"
}

status() {
    local rc=0 name pid
    for name in munged slurmctld slurmd; do
        if pid=$(pid_of "$STATE/run/$name.pid" "$name"); then
            echo "$name: running (pid $pid)"
        else
            echo "$name: stopped"; rc=3
        fi
    done
    if ((rc == 0)); then
        if node_ok; then
            echo "node $NODE: $(node_state)"
        else
            echo "node $NODE: '$(node_state)'"; rc=3
        fi
    fi
    return $rc
}

case $ACTION in
    start) start ;;
    stop) stop ;;
    status) status ;;
    env) echo "SLURM_CONF=$CONF"; echo "PATH=$STATE/bin:$PATH" ;;
    *) echo "usage: $0 start|stop|status|env [STATE_DIR]" >&2; exit 2 ;;
esac
