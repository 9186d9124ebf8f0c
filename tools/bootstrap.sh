#!/usr/bin/env bash
# One step from a fresh Debian 12 clone to built programs: installs the missing Debian
# packages, fetches and verifies MNIST, configures and builds build/.
# Extra arguments go to `meson setup` (e.g. -Dwerror=true).
set -euo pipefail
cd "$(dirname "$0")/.."

need=(meson ninja-build pkg-config gcc libcriterion-dev zlib1g-dev libpng-dev gnuplot-nox
      libsdl2-dev libsdl2-ttf-dev fonts-dejavu-core xvfb xauth npm curl ca-certificates git)
[ -n "${SCRATCHNET_EXTRA_PKGS:-}" ] && need+=(${SCRATCHNET_EXTRA_PKGS})
missing=()
for p in "${need[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "bootstrap: installing ${missing[*]}" >&2
    if [ "$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

sh data/fetch-mnist.sh

if [ -f build/build.ninja ]; then
    [ $# -gt 0 ] && meson configure build "$@"
else
    meson setup build "$@"
fi
ninja -C build
