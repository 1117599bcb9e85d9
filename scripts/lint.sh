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
    # A source found clean is not checked again until it, a header it
    # includes, its flags or the checks change (scripts/tidy.py).
    cache=${JUKE_TIDY_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/juke/clang-tidy}
    python3 "$root/scripts/tidy.py" "$build" "$cache" 2 "${sources[@]}"
    ;;
  *)
    echo "usage: scripts/lint.sh format|tidy|fix" >&2
    exit 2
    ;;
esac
