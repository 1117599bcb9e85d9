#!/usr/bin/env bash
# Checks the C++ sources against the repository's .clang-format and
# .clang-tidy; any finding fails.
#
#   scripts/lint.sh format   clang-format, no changes made
#   scripts/lint.sh tidy     clang-tidy on every source (needs a build)
#   scripts/lint.sh fix      rewrite files with clang-format
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${JUKE_BUILD_DIR:-$root/build}
cd "$root"

mapfile -t files < <(git ls-files -co --exclude-standard -- \
  'src/*.cc' 'src/*.h' 'tests/*.cc' 'tests/*.h' 'bench/*.cc' 'bench/*.h')

case ${1:-} in
  format)
    clang-format --dry-run --Werror "${files[@]}"
    echo "format: ${#files[@]} files clean"
    ;;
  fix)
    clang-format -i "${files[@]}"
    ;;
  tidy)
    [[ -f $build/compile_commands.json ]] || {
      echo "lint: no $build/compile_commands.json; build first" >&2
      exit 1
    }
    mapfile -t sources < <(printf '%s\n' "${files[@]}" | grep '\.cc$')
    # Each file is independent; two at a time fits the build machines.
    printf '%s\n' "${sources[@]}" |
      xargs -P2 -n4 clang-tidy -p "$build" --quiet --warnings-as-errors='*' \
        2> >(grep -v 'warnings generated' >&2)
    echo "tidy: ${#sources[@]} files clean"
    ;;
  *)
    echo "usage: scripts/lint.sh format|tidy|fix" >&2
    exit 2
    ;;
esac
