#!/usr/bin/env bash
# Stops the local test Slurm started by up.sh by the PIDs it recorded in $DIR/run (never by process name),
# and removes $DIR (with --keep-logs: all but its log folders). Exit 1 if a daemon would not stop.
set -uo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
DIR="${SWIFT_EXT_SLURM_DIR:-$(cd "$HERE/../.." && pwd)/.slurm}"
export SLURM_CONF="$DIR/slurm.conf"
export PATH="$PATH:/usr/sbin:/sbin"
[ -d "$DIR" ] || exit 0

alive() { [ -n "${1:-}" ] && [ -e "/proc/$1" ] && ! grep -q '^[^)]*) Z' "/proc/$1/stat" 2>/dev/null; }
wait_until() { local end=$((SECONDS + $1)); shift; until "$@"; do [ "$SECONDS" -lt "$end" ] || return 1; sleep 0.1; done; }
dead() { ! alive "$1"; }
rc=0
stop() {  # stop PIDFILE: TERM, up to 10 s, then KILL
  [ -f "$1" ] || return 0
  local pid; pid="$(cat "$1")"
  [ -n "$pid" ] && [ "$pid" -gt 1 ] || return 0
  alive "$pid" || return 0
  kill -TERM "$pid" 2>/dev/null
  wait_until 10 dead "$pid" && return 0
  kill -KILL "$pid" 2>/dev/null
  wait_until 5 dead "$pid" || { echo "PID $pid ($1) did not stop" >&2; rc=1; }
}

if [ -f "$SLURM_CONF" ] && [ -f "$DIR/run/slurmctld.pid" ] && alive "$(cat "$DIR/run/slurmctld.pid")"; then
  timeout 10 scancel --quiet --user="$(id -un)" >/dev/null 2>&1
  no_jobs() { [ -z "$(timeout 5 squeue -h -o %i 2>/dev/null)" ]; }
  wait_until 15 no_jobs
fi
# A node's slurmd is PID 1 of its PID namespace: when it exits, the kernel ends every process left in it.
for n in n1 n2; do stop "$DIR/run/node-$n.pid"; stop "$DIR/run/node-$n-unshare.pid"; done
stop "$DIR/run/slurmctld.pid"
stop "$DIR/run/munged.pid"
if [ "${1:-}" = "--keep-logs" ]; then
  find "$DIR" -mindepth 1 -maxdepth 1 ! -name 'log*' -exec rm -rf {} +
else
  rm -rf "$DIR"
fi
exit $rc
