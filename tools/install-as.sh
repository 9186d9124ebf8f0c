#!/bin/sh
# meson install helper: installs a built program under another name in bindir, so that
# installed programs do not collide with other packages' (bench -> scratchnet-bench)
# while the build directory keeps the short names (./bench, ./draw).
#   install-as.sh BUILT_PROGRAM NAME BINDIR
set -eu
dest="${MESON_INSTALL_DESTDIR_PREFIX:?run by meson install}"
case "$3" in /*) dir="${DESTDIR:-}$3" ;; *) dir="$dest/$3" ;; esac
mkdir -p "$dir"
install -m 755 "$1" "$dir/$2"
echo "Installing $1 to $dir/$2"
