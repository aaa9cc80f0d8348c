#!/usr/bin/env bash
# Installs what the local test Slurm (up.sh) runs: Debian's Slurm 22.05 and munge. Root. Used by .ci/run
# before `make test` and by `make slurm-up`; `make test` itself installs nothing (the Slurm tests skip,
# saying why, when these are missing). A no-op when everything is already there.
set -euo pipefail
need=()
for bin in slurmctld slurmd sbatch munged munge unshare; do
  command -v "$bin" >/dev/null || [ -x "/usr/sbin/$bin" ] || need+=("$bin")
done
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  echo "missing ${need[*]}: install Slurm and munge (Debian: apt-get install slurmctld slurmd slurm-client munge) as root" >&2
  exit 1
fi
echo "installing Slurm and munge (Debian packages) for ${need[*]} ..." >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq --no-install-recommends slurmctld slurmd slurm-client munge util-linux >/dev/null
