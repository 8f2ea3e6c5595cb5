#!/bin/bash
# slurm-local.sh — a throw-away single-host Slurm (slurmctld + slurmd, no munge, no
# accounting) for checking the job scripts with `sbatch --test-only` and running them
# for real on this machine. Debian 12: apt-get install slurm-wlm. Needs root (slurmd).
#   tools/slurm-local.sh start [DIR]   write DIR/slurm.conf (default /tmp/ep-slurm), start both
#   tools/slurm-local.sh stop [DIR]    stop them (by their pid files)
# then: export SLURM_CONF=DIR/slurm.conf; jobs/check-sbatch.sh
# The cluster has this host plus three configured-only nodes (fake1..3, answered by the
# same slurmd), 16 cores each, so multi-node scripts pass --test-only; jobs that really
# run must ask for this host (-w $(hostname)).
set -eu
cmd=${1:-start}
dir=${2:-/tmp/ep-slurm}
case $cmd in
stop)
  for p in slurmd slurmctld; do
    if [ -s "$dir/$p.pid" ]; then kill "$(cat "$dir/$p.pid")" 2>/dev/null || true; fi
  done
  exit 0
  ;;
start) ;;
*) echo "usage: slurm-local.sh start|stop [DIR]" >&2; exit 2 ;;
esac
command -v slurmctld >/dev/null || { echo "slurmctld not found: apt-get install slurm-wlm" >&2; exit 1; }
[ "$(id -u)" = 0 ] || { echo "slurmd needs root" >&2; exit 1; }
host=$(hostname -s)
mkdir -p "$dir/state" "$dir/spool"
cat >"$dir/slurm.conf" <<CONF
ClusterName=eplocal
SlurmctldHost=$host
AuthType=auth/none
CredType=cred/none
SlurmUser=root
SlurmdUser=root
SlurmctldPort=16817
SlurmdPort=16818
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SlurmdParameters=config_overrides
ReturnToService=2
MpiDefault=none
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/none
SlurmdTimeout=300
NodeName=$host CPUs=16 CoresPerSocket=16 ThreadsPerCore=1 RealMemory=8000 State=UNKNOWN
NodeName=fake[1-3] NodeAddr=127.0.0.1 CPUs=16 CoresPerSocket=16 ThreadsPerCore=1 RealMemory=8000 State=UNKNOWN
PartitionName=debug Nodes=$host,fake[1-3] Default=YES MaxTime=INFINITE State=UP
CONF
export SLURM_CONF=$dir/slurm.conf
slurmctld -f "$SLURM_CONF"
sleep 1
slurmd -f "$SLURM_CONF" -N "$host"
# until every node has answered (the configured-only ones through this host's slurmd)
for _ in $(seq 60); do
  if scontrol ping >/dev/null 2>&1 && [ -z "$(sinfo -h -N -t unknown,down -o %N)" ]; then break; fi
  sleep 0.5
done
sinfo
echo "export SLURM_CONF=$SLURM_CONF"
