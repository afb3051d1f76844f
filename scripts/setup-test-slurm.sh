#!/usr/bin/env bash
# A private three-node Slurm cluster on this one host, for the slurm launcher's e2e tests:
# munged (own key and socket), slurmctld, and three `slurmd -N n1|n2|n3`, each node with its own
# loopback address (127.0.1.1-3) and port, so ompx's per-node addresses stay distinct.
# Nothing is shared with a system Slurm: own ports (16817-16820, OMPX_TEST_SLURM_PORT), own
# config (use it with SLURM_CONF=<dir>/slurm.conf), own munge socket and key, own state.
#
#   scripts/setup-test-slurm.sh [start]   # install if missing, start, wait until the nodes are idle;
#                                         # prints `export SLURM_CONF=...`
#   scripts/setup-test-slurm.sh status    # what runs (exit 1 if not everything)
#   scripts/setup-test-slurm.sh stop      # stop exactly the daemons it started (by pid)
#
# Everything lives in .cache/test-slurm/ of the repo (OMPX_TEST_SLURM_DIR), which git ignores.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dir="${OMPX_TEST_SLURM_DIR:-$repo/.cache/test-slurm}"
mkdir -p "$dir"
dir="$(cd "$dir" && pwd -P)"
base="${OMPX_TEST_SLURM_PORT:-16817}"
nodes=(n1 n2 n3)
cpus=2
say() { echo "setup-test-slurm: $*" >&2; }
action="${1:-start}"
case "$action" in start | stop | status | --stop) ;; *) say "usage: $0 [start|stop|status]"; exit 2 ;; esac
[ "$action" = --stop ] && action=stop

# The pid of a daemon of ours from its pid file: only if that process is alive and is what we
# started (its comm), so a stale file never makes us signal a stranger.
pid_of() { # name pidfile
  local pid
  pid="$(cat "$2" 2>/dev/null)" || return 1
  [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$1" ] && echo "$pid"
}
daemons() { # "name pidfile" lines, in start order
  echo "munged $dir/munged.pid"
  echo "slurmctld $dir/slurmctld.pid"
  for n in "${nodes[@]}"; do echo "slurmd $dir/slurmd-$n.pid"; done
}

mkdir -p "$dir"
chmod 700 "$dir"
# Tests may call this concurrently: one at a time.
exec 9>"$dir/.lock"
flock 9

if [ "$action" = status ]; then
  rc=0
  while read -r name file; do
    if pid="$(pid_of "$name" "$file")"; then echo "$name $(basename "$file" .pid) pid $pid"; else echo "$(basename "$file" .pid) not running"; rc=1; fi
  done < <(daemons)
  [ $rc = 0 ] && SLURM_CONF="$dir/slurm.conf" sinfo -h -N -o '%N %T' 2>/dev/null || true
  exit $rc
fi

if [ "$action" = stop ]; then
  # Jobs first, while slurmctld and the slurmds can still end their steps (slurmstepd outlives
  # a stopped slurmd); only this cluster's, as SLURM_CONF points at it.
  if pid_of slurmctld "$dir/slurmctld.pid" >/dev/null; then
    export SLURM_CONF="$dir/slurm.conf"
    scancel --full --quiet "--user=$(id -un)" 2>/dev/null || true
    for _ in $(seq 100); do [ -z "$(squeue -h -o %i 2>/dev/null)" ] && break; sleep 0.1; done
  fi
  # Reverse order: the slurmds first, munged last.
  stopped=()
  while read -r name file; do
    if pid="$(pid_of "$name" "$file")"; then
      kill "$pid" 2>/dev/null || true
      stopped+=("$name:$pid:$file")
    fi
  done < <(daemons | tac)
  for s in "${stopped[@]}"; do
    IFS=: read -r name pid file <<<"$s"
    for _ in $(seq 100); do [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$name" ] || break; sleep 0.1; done
    if [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$name" ]; then kill -KILL "$pid" 2>/dev/null || true; fi
    rm -f "$file"
  done
  say "stopped ${#stopped[@]} daemon(s)"
  exit 0
fi

# 1. Packages, as root on a bare Debian (CI). Keep the packages from starting system daemons.
need=()
[ -x /usr/sbin/munged ] && command -v munge >/dev/null 2>&1 || need+=(munge)
[ -x /usr/sbin/slurmctld ] && [ -x /usr/sbin/slurmd ] && command -v srun >/dev/null 2>&1 || need+=(slurm-wlm)
if [ ${#need[@]} -gt 0 ]; then
  # shellcheck source=apt-install.sh
  source "$repo/scripts/apt-install.sh"
  install_packages "${need[@]}"
fi

# 2. Directories, the munge key (generated once), the config (rewritten every start).
mkdir -p "$dir/state" "$dir/log" "$dir/munge"
for n in "${nodes[@]}"; do mkdir -p "$dir/spool/$n"; done
chmod 700 "$dir/munge"
if [ ! -s "$dir/munge/munge.key" ]; then
  (umask 077 && head -c 1024 /dev/urandom >"$dir/munge/munge.key")
fi
chmod 600 "$dir/munge/munge.key"
user="$(id -un)"
host="$(hostname -s)"
conf="$dir/slurm.conf"
{
  cat <<EOF
# Written by scripts/setup-test-slurm.sh; rewritten on every start.
ClusterName=ompxtest
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$base
SlurmdPort=$((base + 1))
SlurmUser=$user
SlurmdUser=$user
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$dir/munge/munge.socket
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool/%n
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd-%n.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd-%n.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/pgid
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
MpiDefault=none
SwitchType=switch/none
JobCompType=jobcomp/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
ReturnToService=2
InactiveLimit=0
KillWait=5
MinJobAge=30
MessageTimeout=20
SlurmctldTimeout=30
SlurmdTimeout=30
EOF
  i=0
  for n in "${nodes[@]}"; do
    i=$((i + 1))
    echo "NodeName=$n NodeHostname=$host NodeAddr=127.0.1.$i Port=$((base + i)) CPUs=$cpus State=UNKNOWN"
  done
  echo "PartitionName=test Nodes=$(IFS=,; echo "${nodes[*]}") Default=YES MaxTime=INFINITE State=UP"
} >"$conf"
export SLURM_CONF="$conf"
# A clean environment: daemons must not carry the caller's variables (test markers, SLURM_*).
clean=(env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin SLURM_CONF="$conf")

wait_pid() { # name pidfile
  for _ in $(seq 100); do pid_of "$1" "$2" >/dev/null && return 0; sleep 0.1; done
  return 1
}
started=()
start() { # name pidfile log command...
  local name=$1 file=$2 log=$3
  shift 3
  if pid="$(pid_of "$name" "$file")"; then return 0; fi
  rm -f "$file"
  "${clean[@]}" "$@" 9>&- </dev/null >>"$dir/log/start.log" 2>&1 || true
  if ! wait_pid "$name" "$file"; then
    say "$name did not start; see $log"
    tail -5 "$log" >&2 2>/dev/null || true
    exit 1
  fi
  started+=("$name")
}

# 3. munged, slurmctld, the slurmds (each daemonizes and writes its pid file).
start munged "$dir/munged.pid" "$dir/log/munged.log" /usr/sbin/munged --force \
  --socket="$dir/munge/munge.socket" --key-file="$dir/munge/munge.key" --pid-file="$dir/munged.pid" \
  --log-file="$dir/log/munged.log" --seed-file="$dir/munge/munged.seed"
start slurmctld "$dir/slurmctld.pid" "$dir/log/slurmctld.log" /usr/sbin/slurmctld -f "$conf"
for n in "${nodes[@]}"; do
  start slurmd "$dir/slurmd-$n.pid" "$dir/log/slurmd-$n.log" /usr/sbin/slurmd -f "$conf" -N "$n"
done
[ ${#started[@]} -gt 0 ] && say "started ${started[*]}"

# 4. Wait until every node is idle (a node left down by an earlier run is resumed).
for _ in $(seq 150); do
  states="$(sinfo -h -N -o '%N %T' 2>/dev/null | sort -u || true)"
  idle=$(grep -c ' idle$' <<<"$states" || true)
  [ "$idle" = "${#nodes[@]}" ] && break
  if grep -qE ' (down|drained|draining)' <<<"$states"; then
    scontrol update NodeName="$(IFS=,; echo "${nodes[*]}")" State=RESUME >/dev/null 2>&1 || true
  fi
  sleep 0.2
done
if [ "$idle" != "${#nodes[@]}" ]; then
  say "the nodes did not become idle within 30 s: $(tr '\n' ' ' <<<"$states"); see $dir/log/"
  tail -3 "$dir/log/slurmctld.log" >&2 2>/dev/null || true
  exit 1
fi
echo "export SLURM_CONF=$conf"
