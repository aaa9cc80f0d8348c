#!/usr/bin/env bash
# A throw-away local Slurm for tests: slurmctld plus two emulated nodes (n1, n2) on this host.
# Root, no systemd. Idempotent: a second call finds it running and only waits for the nodes.
# Everything lives under $SWIFT_EXT_SLURM_DIR (default /tmp/swift-ext-slurm); `down.sh` removes the daemons.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
DIR="${SWIFT_EXT_SLURM_DIR:-/tmp/swift-ext-slurm}"
export SLURM_CONF="$DIR/slurm.conf"

need=()
for bin in slurmctld slurmd sbatch munged; do command -v "$bin" >/dev/null || need+=("$bin"); done
if [ ${#need[@]} -gt 0 ]; then
  echo "installing Slurm and munge (Debian packages) ..." >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends slurmctld slurmd slurm-client munge >/dev/null
fi

mkdir -p "$DIR"/{state,spool/n1,spool/n2,log,run,dev}
touch "$DIR/dev/gpu0" "$DIR/dev/gpu1"
# Node names resolve to their own loopback addresses, as on a cluster.
grep -q "swift-ext-slurm" /etc/hosts || printf '127.0.2.1 n1 # swift-ext-slurm\n127.0.2.2 n2 # swift-ext-slurm\n' >> /etc/hosts

sed "s#@DIR@#$DIR#g" "$HERE/slurm.conf.in" > "$DIR/slurm.conf"
sed "s#@DIR@#$DIR#g" "$HERE/gres.conf.in" > "$DIR/gres.conf"

alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

# munge: a key, then the daemon as the munge user
if ! munge -n </dev/null >/dev/null 2>&1; then
  if [ ! -s /etc/munge/munge.key ]; then
    dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
  fi
  chown munge:munge /etc/munge/munge.key; chmod 400 /etc/munge/munge.key
  mkdir -p /run/munge /var/log/munge /var/lib/munge; chown munge:munge /run/munge /var/log/munge /var/lib/munge
  pkill -x munged 2>/dev/null || true
  runuser -u munge -- /usr/sbin/munged --force
  for _ in $(seq 1 50); do munge -n </dev/null >/dev/null 2>&1 && break; sleep 0.1; done
fi

if ! alive "$DIR/run/slurmctld.pid"; then
  slurmctld -i -f "$DIR/slurm.conf"
fi
for n in n1 n2; do
  if ! alive "$DIR/run/slurmd-$n.pid"; then
    # Its own UTS namespace: `hostname` on the "node" answers n1/n2, like a real node.
    unshare -u sh -c "hostname $n && exec slurmd -N $n -f '$DIR/slurm.conf'"
  fi
done

for _ in $(seq 1 100); do
  if [ "$(timeout 5 sinfo -h -o '%T' -N 2>/dev/null | grep -cE '^(idle|mixed|allocated)')" = 2 ]; then
    echo "local Slurm up: SLURM_CONF=$DIR/slurm.conf" >&2
    exit 0
  fi
  timeout 5 scontrol update nodename=n1,n2 state=resume >/dev/null 2>&1 || true
  sleep 0.2
done
echo "local Slurm did not come up; logs in $DIR/log" >&2
sinfo -N >&2 || true
exit 1
