#!/usr/bin/env bash
# Juke's main job on a local pool, from nothing: installs what is needed,
# builds, starts etcd and three storage daemons (two disks each) as separate
# processes, stores data on them, kills one daemon with SIGKILL, shows the
# pool noticing, restarts it and checks its data survived. Every step says
# what it does. The pool is stopped and removed at the end.
#
#   scripts/demo.sh [--dir /var/tmp/juke-demo] [--keep]
#
# --keep leaves the pool running for you to explore (stop it with
# scripts/local-pool down --dir DIR --purge).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${JUKE_BUILD_DIR:-$root/build}
export JUKE_BUILD_DIR=$build
dir=/var/tmp/juke-demo
keep=0
while (($#)); do
  case $1 in
    --dir) dir=$2; shift 2 ;;
    --keep) keep=1; shift ;;
    -h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "demo: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
done

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
juke() { "$build/src/cli/juke" --etcd="$(cat "$dir/etcd.endpoint")" "$@"; }
pool() { "$root/scripts/local-pool" "$@" --dir "$dir"; }
sum() { sha256sum "$1" | cut -c1-16; }

say "Installing dependencies and building (incremental after the first run)"
if [[ $(id -u) -eq 0 ]]; then "$root/scripts/install-deps.sh"; fi
"$root/scripts/build.sh" juke-storaged juke >/dev/null
echo "built $build/src/storage/juke-storaged and $build/src/cli/juke"

pool down --purge >/dev/null 2>&1 || true
if ((!keep)); then trap 'say "Stopping the pool"; pool down --purge' EXIT; fi

say "Starting a pool: one etcd and three storage daemons, two disks each"
JUKE_LEASE_TTL=4 pool up --hosts 3 --disks 2
juke status

say "Storing 1 MiB of random data as a chunk on each host"
work=$dir/files
mkdir -p "$work"
head -c $((1 << 20)) /dev/urandom >"$work/data.bin"
echo "the data's sha256 begins $(sum "$work/data.bin")"
for h in h1 h2 h3; do
  juke chunk write --host=$h --volume=demo --index=7 --from="$work/data.bin"
done

say "Reading it back from each host; every 4 KiB block is checksummed"
for h in h1 h2 h3; do
  juke chunk read --host=$h --volume=demo --index=7 --length=$((1 << 20)) \
    --to="$work/back-$h.bin"
  cmp "$work/data.bin" "$work/back-$h.bin"
  echo "$h gave back sha256 $(sum "$work/back-$h.bin"): identical"
done

say "Killing h2's daemon with SIGKILL, as a crash would"
pool kill h2
start=$(date +%s)
until juke status | grep -qE '^h2 +down'; do sleep 0.5; done
echo "the pool marked h2 down after $(($(date +%s) - start)) s, when its etcd lease ran out"
juke status

say "The other hosts keep serving"
juke chunk read --host=h3 --volume=demo --index=7 --length=$((1 << 20)) \
  --to="$work/back-h3.bin"
cmp "$work/data.bin" "$work/back-h3.bin" && echo "h3 still serves the data"

say "Restarting h2: its disks keep their identity and their chunks"
pool start h2
juke chunk read --host=h2 --volume=demo --index=7 --length=$((1 << 20)) \
  --to="$work/back-h2.bin"
cmp "$work/data.bin" "$work/back-h2.bin"
echo "h2 gave back sha256 $(sum "$work/back-h2.bin") after the crash: identical"
juke status

say "Each daemon serves Prometheus metrics"
port=$(sed 's/.*"metricsPort":\([0-9]*\).*/\1/' "$dir/h1/ready.json")
curl -s "http://127.0.0.1:$port/metrics" | grep -E '^juke_storage_(requests_total|written_bytes_total)' | head -5

say "Done"
echo "Juke kept every byte through a daemon crash. Logs are in $dir/h*/storaged.log."
if ((keep)); then echo "The pool is still running; stop it with: scripts/local-pool down --dir $dir --purge"; fi
