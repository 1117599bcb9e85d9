#!/usr/bin/env bash
# Sets up everything the tests need, builds Juke and runs every test:
# formatting and lint checks, unit tests, and integration tests that start
# real etcd and storage daemon processes.
#
#   scripts/test.sh            everything
#   scripts/test.sh -R Chunk   only the ctest tests matching a regex
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${JUKE_BUILD_DIR:-$root/build}
export JUKE_BUILD_DIR=$build

if [[ $(id -u) -eq 0 ]]; then
  "$root/scripts/install-deps.sh"
else
  echo "test: not root, assuming dependencies are installed"
fi

echo "== build"
"$root/scripts/build.sh"

echo "== format"
"$root/scripts/lint.sh" format

echo "== lint"
"$root/scripts/lint.sh" tidy

echo "== tests"
cd "$build"
ctest --output-on-failure --timeout 300 -j2 "$@"
