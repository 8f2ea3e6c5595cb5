#!/bin/sh
# install-deps.sh — install the Debian 12 packages edgeprune builds and runs with.
# As root it runs apt-get; otherwise it prints the exact command to run.
set -eu
PKGS="build-essential cmake pkg-config git procps python3
 libopenmpi-dev openmpi-bin
 libhdf5-openmpi-dev hdf5-tools
 libscalapack-openmpi-dev libopenblas-dev liblapack-dev
 libyaml-dev libcjson-dev
 graphviz libgraphviz-dev"

missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -z "$missing" ]; then
  echo "install-deps: all packages present"
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: missing packages:$missing"
  echo "run as root:  apt-get update && apt-get install -y --no-install-recommends$missing"
  exit 1
fi
echo "install-deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >/dev/null
# shellcheck disable=SC2086
apt-get install -y -q --no-install-recommends $missing >/dev/null
echo "install-deps: done"
