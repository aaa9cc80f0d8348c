#!/usr/bin/env bash
# A throw-away local Slurm for tests: slurmctld plus two emulated nodes (n1, n2) on this host. Root, no systemd.
# It installs nothing (slurm/local/install.sh does) and writes nothing outside $SWIFT_EXT_SLURM_DIR
# (default: .slurm/ in this checkout): its own munged with its own key and socket, free ports chosen per
# cluster, node addresses in slurm.conf instead of /etc/hosts. Each slurmd runs in its own PID, mount and UTS
# namespace (`hostname` answers n1/n2; when the node stops, every job process on it goes with it).
# Every daemon's host PID is in $DIR/run/*.pid; down.sh stops them by those PIDs. Idempotent: a second call
# finds the cluster running and only waits for the nodes. Exit 3: something needed is missing.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
DIR="${SWIFT_EXT_SLURM_DIR:-$(cd "$HERE/../.." && pwd)/.slurm}"
export SLURM_CONF="$DIR/slurm.conf"
export PATH="$PATH:/usr/sbin:/sbin"
SOCK="$DIR/munge/munge.socket"

missing=()
for bin in slurmctld slurmd sbatch scontrol sinfo munged munge unmunge unshare setsid python3; do
  command -v "$bin" >/dev/null || missing+=("$bin")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "not installed: ${missing[*]} (bash slurm/local/install.sh installs Slurm and munge)" >&2
  exit 3
fi
[ "$(id -u)" = 0 ] || { echo "the local Slurm needs root (slurmd runs jobs as any user, in its own namespaces)" >&2; exit 3; }

# A PID that is gone or a zombie (nothing may reap it here) is not alive.
alive() { [ -n "${1:-}" ] && [ -e "/proc/$1" ] && ! grep -q '^[^)]*) Z' "/proc/$1/stat" 2>/dev/null; }
alive_file() { [ -f "$1" ] && alive "$(cat "$1")"; }
wait_until() {  # wait_until SECONDS COMMAND...: poll COMMAND until it succeeds or the deadline passes
  local end=$((SECONDS + $1)); shift
  until "$@"; do [ "$SECONDS" -lt "$end" ] || return 1; sleep 0.1; done
}

folders() {
  mkdir -p "$DIR"/{state,spool/n1,spool/n2,log,run,dev,munge}
  chmod 711 "$DIR/munge"  # munged wants its socket's folder enterable by all; the key itself is 0400
  touch "$DIR/dev/gpu0" "$DIR/dev/gpu1"
}

# Ports: random free ones below the ephemeral range, so that two clusters at once do not collide (and should
# two pick the same port at the same moment, the one that loses starts again on new ones, below).
pick_ports() {
  python3 -c '
import random, socket
ports = []
while len(ports) < 3:
    port = random.randint(10000, 19999)
    with socket.socket() as s:
        try:
            s.bind(("0.0.0.0", port))
        except OSError:
            continue
    if port not in ports:
        ports.append(port)
print(*ports)' > "$DIR/ports"
}

munge_ok() { munge --socket="$SOCK" -n </dev/null 2>/dev/null | unmunge --socket="$SOCK" >/dev/null 2>&1; }

nodes_up() {  # 0: both nodes up; 1: not yet; 2: a daemon exited
  local f
  for f in "$DIR"/run/slurmctld.pid "$DIR"/run/node-n1.pid "$DIR"/run/node-n2.pid; do
    alive_file "$f" || { echo "$(basename "$f" .pid) exited; logs in $DIR/log" >&2; return 2; }
  done
  [ "$(timeout 5 sinfo -h -o '%T' -N 2>/dev/null | grep -cE '^(idle|mixed|allocated)')" = 2 ] && return 0
  timeout 5 scontrol update nodename=n1,n2 state=resume >/dev/null 2>&1 || true
  return 1
}

start() {  # start the daemons that are not running; 0 once both nodes are up
  folders
  [ -s "$DIR/ports" ] || pick_ports
  read -r CTLD_PORT N1_PORT N2_PORT < "$DIR/ports"
  sed -e "s#@DIR@#$DIR#g" -e "s#@CTLD_PORT@#$CTLD_PORT#g" -e "s#@N1_PORT@#$N1_PORT#g" -e "s#@N2_PORT@#$N2_PORT#g" \
    "$HERE/slurm.conf.in" > "$DIR/slurm.conf.new"
  mv "$DIR/slurm.conf.new" "$DIR/slurm.conf"
  sed "s#@DIR@#$DIR#g" "$HERE/gres.conf.in" > "$DIR/gres.conf"

  # munge: this cluster's own key, socket and daemon (the system's /etc/munge and munged are not used).
  # --force: munged would refuse a socket under a folder only root can enter (mkdtemp's, pytest's).
  if ! alive_file "$DIR/run/munged.pid"; then
    [ -s "$DIR/munge/munge.key" ] || { head -c 1024 /dev/urandom > "$DIR/munge/munge.key"; chmod 400 "$DIR/munge/munge.key"; }
    rm -f "$SOCK" "$SOCK.lock"
    setsid munged --foreground --force --key-file="$DIR/munge/munge.key" --socket="$SOCK" \
      --pid-file="$DIR/run/munged.pid.d" --log-file="$DIR/log/munged.log" --seed-file="$DIR/munge/munged.seed" \
      </dev/null >>"$DIR/log/munged.out" 2>&1 &
    echo $! > "$DIR/run/munged.pid"
  fi
  wait_until 10 munge_ok || { echo "munged did not start; see $DIR/log/munged.*" >&2; return 1; }

  if ! alive_file "$DIR/run/slurmctld.pid"; then
    setsid slurmctld -D -i -f "$SLURM_CONF" </dev/null >>"$DIR/log/slurmctld.out" 2>&1 &
    echo $! > "$DIR/run/slurmctld.pid"
  fi
  local n upid c
  for n in n1 n2; do
    alive_file "$DIR/run/node-$n.pid" && continue
    # PID 1 of the node's namespace is a bash that reaps the orphans slurmd leaves (each slurmstepd) and on
    # TERM stops slurmd; when it exits, the kernel kills whatever is left in the namespace (slurmstepd, job
    # steps). --kill-child: should the unshare process die, that bash gets TERM.
    setsid unshare --pid --fork --mount-proc --uts --kill-child=SIGTERM bash -c '
      hostname "$1" || exit 1
      slurmd -D -N "$1" -f "$2" & pid=$!
      trap "kill -TERM $pid" TERM INT
      while kill -0 "$pid" 2>/dev/null; do wait "$pid"; done' node "$n" "$SLURM_CONF" \
      </dev/null >>"$DIR/log/slurmd-$n.out" 2>&1 &
    upid=$!
    echo "$upid" > "$DIR/run/node-$n-unshare.pid"
    # The namespace's init as this host sees it: its PID (down.sh stops it) and its PID namespace.
    c=""
    while [ -z "$c" ]; do
      alive "$upid" || { echo "node $n exited at once; see $DIR/log/slurmd-$n.*" >&2; return 1; }
      c="$(cat "/proc/$upid/task/$upid/children" 2>/dev/null || true)"; c="${c%% *}"
      [ -n "$c" ] || sleep 0.05
    done
    echo "$c" > "$DIR/run/node-$n.pid"
    readlink "/proc/$c/ns/pid" > "$DIR/run/node-$n.pidns" || true
  done

  local end=$((SECONDS + 30)) rc
  while :; do
    rc=0; nodes_up || rc=$?
    [ "$rc" = 0 ] && return 0
    { [ "$rc" = 2 ] || [ "$SECONDS" -ge "$end" ]; } && return 1
    sleep 0.1
  done
}

for attempt in 1 2 3; do
  if start; then
    echo "local Slurm up: SLURM_CONF=$SLURM_CONF (ports $CTLD_PORT $N1_PORT $N2_PORT; bash slurm/local/down.sh stops it)" >&2
    exit 0
  fi
  grep -qs "Address already in use" "$DIR"/log/*.out || break
  echo "a port was taken meanwhile: starting again on new ones" >&2
  bash "$HERE/down.sh" --keep-logs >&2 || true
  mv "$DIR/log" "$DIR/log.attempt-$attempt"
done
echo "local Slurm did not come up; logs in $DIR/log" >&2
tail -n 3 "$DIR"/log/*.out >&2 || true
timeout 5 sinfo -N >&2 || true
exit 1
