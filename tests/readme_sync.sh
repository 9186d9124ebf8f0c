#!/bin/sh
# README.md's benchmark tables are generated (tools/readme-report.sh from docs/report/):
# regenerating them into a copy must change nothing. Fails, with the difference, when
# someone typed into the generated block or changed docs/report/ without regenerating.
# Usage: readme_sync.sh SOURCE_ROOT BUILD_DIR
set -eu
src=$1
build=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp "$src/README.md" "$tmp/README.md"
cd "$src"
README="$tmp/README.md" REPORT_OUT="$tmp/report.md" tools/readme-report.sh "$build" docs/report >/dev/null
if ! cmp -s README.md "$tmp/README.md"; then
    echo "README.md's generated tables differ from docs/report/ (run tools/readme-report.sh):" >&2
    diff -u README.md "$tmp/README.md" >&2 || true
    exit 1
fi
cmp -s docs/report/report.md "$tmp/report.md" || { echo "docs/report/report.md is stale (run tools/readme-report.sh)" >&2; exit 1; }
echo "README.md and docs/report/report.md match docs/report/"
