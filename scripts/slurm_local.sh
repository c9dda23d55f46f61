#!/usr/bin/env bash
# slurm_local.sh: a one-node Slurm cluster on this machine, for trying `cuvae sweep --slurm` and
# for its test (scripts/slurm_sweep_check.sh). Run as root:
#   scripts/slurm_local.sh install   Debian's slurm-wlm and munge, without starting their daemons
#   scripts/slurm_local.sh start     munged, slurmctld and slurmd, one node with this machine's
#                                    cores (slurmd -C's line), partition "debug"; waits until the
#                                    node is idle
#   scripts/slurm_local.sh stop      stop the three daemons
# The traps it avoids: Debian's postinst starts the daemons unless a policy-rc.d forbids it;
# munged runs as the munge user, its key 0400 and /run/munge made; the cgroup plugins fail in
# a container, so ProctrackType=proctrack/linuxproc and TaskPlugin=task/none; the node line is
# slurmd's own figures; job credentials expire after 10 s (AuthInfo=cred_expire), not 120 s, so
# a requeued task may start again soon. Files: /etc/slurm/slurm.conf, logs and state under
# /var/lib/cuvae-slurm.
set -euo pipefail
state=/var/lib/cuvae-slurm

die() { echo "slurm_local: $*" >&2; exit 1; }
[[ $(id -u) -eq 0 ]] || die "run as root (it starts daemons and writes /etc/slurm)"

install() {
  if command -v slurmctld >/dev/null && command -v munged >/dev/null; then return; fi
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
  chmod +x /usr/sbin/policy-rc.d
  trap 'rm -f /usr/sbin/policy-rc.d' RETURN
  apt-get update >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends slurm-wlm munge >/dev/null
}

start_munge() {
  if munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then return; fi
  mkdir -p /run/munge /var/log/munge /var/lib/munge
  chown munge:munge /run/munge /var/log/munge /var/lib/munge /etc/munge
  chmod 0755 /run/munge
  if [[ ! -s /etc/munge/munge.key ]]; then
    dd if=/dev/urandom of=/etc/munge/munge.key bs=128 count=1 status=none
  fi
  chown munge:munge /etc/munge/munge.key
  chmod 0400 /etc/munge/munge.key
  runuser -u munge -- munged --force
  for _ in $(seq 50); do munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && return; sleep 0.1; done
  die "munged did not start (see /var/log/munge/munged.log)"
}

write_conf() {
  local host node
  host=$(hostname -s)
  node=$(slurmd -C | head -1) # NodeName=HOST CPUs=... RealMemory=...: slurmd's own figures
  mkdir -p /etc/slurm "$state"/ctld "$state"/d
  cat > /etc/slurm/slurm.conf <<EOF
# Written by cuvae's scripts/slurm_local.sh: a one-node cluster for trying sweeps.
ClusterName=cuvae
SlurmctldHost=$host
SlurmUser=root
AuthType=auth/munge
AuthInfo=cred_expire=10
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
JobRequeue=1
MinJobAge=600
KillWait=30
StateSaveLocation=$state/ctld
SlurmdSpoolDir=$state/d
SlurmctldPidFile=$state/slurmctld.pid
SlurmdPidFile=$state/slurmd.pid
SlurmctldLogFile=$state/slurmctld.log
SlurmdLogFile=$state/slurmd.log
$node State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
}

# elsewhere NAME: a NAME daemon runs in another mount namespace than this shell's (started inside
# CI's stage 1, where an empty tmpfs hides /usr/local/cuda: the jobs it launched would not find
# the toolkit's libraries). It is stopped, to be started here again.
elsewhere() {
  local pid
  pid=$(pgrep -x "$1" | head -1) || return 1
  [[ $(readlink "/proc/$pid/ns/mnt") != "$(readlink /proc/self/ns/mnt)" ]] || return 1
  echo "slurm_local: $1 (pid $pid) runs in another mount namespace: restarting it in this one" >&2
  pkill -x "$1"
  for _ in $(seq 100); do pgrep -x "$1" >/dev/null || return 0; sleep 0.1; done
  die "$1 did not stop"
}

start() {
  start_munge
  write_conf
  elsewhere slurmctld || true
  elsewhere slurmd || true
  pgrep -x slurmctld >/dev/null || slurmctld -i
  pgrep -x slurmd >/dev/null || slurmd
  for _ in $(seq 100); do
    if sinfo -h -o %t 2>/dev/null | grep -q -E '^(idle|mix|alloc)'; then
      echo "slurm_local: node $(hostname -s) up ($(sinfo -h -o '%c CPUs, partition %P'))"
      return
    fi
    sleep 0.2
  done
  die "the node did not come up: $(sinfo 2>&1 | tail -2); logs in $state"
}

stop() {
  pkill -x slurmd || true
  pkill -x slurmctld || true
  pkill -x munged || true
}

case "${1:-}" in
  install) install ;;
  start) install; start ;;
  stop) stop ;;
  *) die "usage: scripts/slurm_local.sh install|start|stop" ;;
esac
