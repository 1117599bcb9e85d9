#!/usr/bin/env bash
# Benchmarks the storage daemon's chunk path against fio on the same file
# system: starts a one-host pool with one disk, runs bench/storage_bench,
# prints the table, stops the pool. Not a test: it asserts nothing.
#
#   scripts/bench.sh [--runs 3] [--size-mib 128] [--dir /var/tmp/juke-bench]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${JUKE_BUILD_DIR:-$root/build}
# Not under /tmp by default: /tmp may be tmpfs, which has no direct I/O.
dir=/var/tmp/juke-bench
runs=3
size=128
while (($#)); do
  case $1 in
    --runs) runs=$2; shift 2 ;;
    --size-mib) size=$2; shift 2 ;;
    --dir) dir=$2; shift 2 ;;
    *) echo "bench: unknown option '$1'" >&2; exit 2 ;;
  esac
done

[[ $(id -u) -eq 0 ]] && "$root/scripts/install-deps.sh"
"$root/scripts/build.sh" juke-storaged juke storage_bench

pool=(env JUKE_BUILD_DIR="$build" "$root/scripts/local-pool")
"${pool[@]}" down --dir "$dir" --purge >/dev/null 2>&1 || true
trap '"${pool[@]}" down --dir "$dir" --purge >/dev/null' EXIT
"${pool[@]}" up --hosts 1 --disks 1 --dir "$dir" >/dev/null

address=$(sed 's/.*"address":"\([^"]*\)".*/\1/' "$dir/h1/ready.json")
disk=$(sed -n 's/^disk_id=//p' "$dir/h1/disk0/LABEL")
echo "daemon $address, disk $disk on $(df --output=fstype "$dir" | tail -1)"
"$build/bench/storage_bench" --address="$address" --disk_id="$disk" \
  --fio_dir="$dir/h1/disk0" --runs="$runs" --size_mib="$size"
