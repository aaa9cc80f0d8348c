#!/usr/bin/env bash
# Stops the local test Slurm started by up.sh and leaves no daemon behind.
set -uo pipefail
DIR="${SWIFT_EXT_SLURM_DIR:-/tmp/swift-ext-slurm}"
export SLURM_CONF="$DIR/slurm.conf"
[ -f "$SLURM_CONF" ] && timeout 10 scancel --quiet --user=root >/dev/null 2>&1
for pidfile in "$DIR"/run/slurmd-*.pid "$DIR"/run/slurmctld.pid; do
  [ -f "$pidfile" ] || continue
  pid="$(cat "$pidfile")"
  kill "$pid" 2>/dev/null
  for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null
  rm -f "$pidfile"
done
pkill -x slurmstepd 2>/dev/null
pkill -x munged 2>/dev/null
for _ in $(seq 1 50); do pgrep -x munged >/dev/null || break; sleep 0.1; done
sed -i '/swift-ext-slurm/d' /etc/hosts 2>/dev/null
rm -rf "$DIR"
exit 0
