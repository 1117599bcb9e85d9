#!/usr/bin/env bash
# Configures and builds Juke into ./build (or $JUKE_BUILD_DIR) with Ninja.
# Incremental: a second run rebuilds only what changed; ccache keeps objects
# across clean builds.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${JUKE_BUILD_DIR:-$root/build}

# Let ccache share objects between clones in different directories.
export CCACHE_BASEDIR=$root
export CCACHE_NOHASHDIR=1

if [[ ! -f $build/build.ninja ]]; then
  cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo
fi
ninja -C "$build" "$@"
