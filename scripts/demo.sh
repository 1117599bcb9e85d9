#!/usr/bin/env bash
# Juke's main job on a local pool, from nothing. Installs what is needed,
# builds, starts etcd and three storage daemons (two disks each) as separate
# processes, and then, as a user would with the juke CLI:
#   - creates a volume with three replicas, one per host;
#   - attaches it as a block device on host h1, makes a file system, writes
#     files and records their checksums;
#   - detaches it and attaches it on host h2, where every checksum matches;
#   - kills one storage daemon with SIGKILL, checks the files again and
#     keeps writing (the missed replicas are marked stale);
#   - restarts the daemon and watches recovery bring its replicas back.
# Every step says what it does. The pool is stopped and removed at the end.
#
#   scripts/demo.sh [--dir /var/tmp/juke-demo] [--keep]
#
# --keep leaves the pool running (the volume detached) for you to explore;
# stop it with: scripts/local-pool down --dir DIR --purge
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
    -h|--help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "demo: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
done
[[ $(id -u) -eq 0 ]] || {
  echo "demo: run as root: attaching a volume needs FUSE, loop devices and mount" >&2
  exit 1
}

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
juke() { "$build/src/cli/juke" --etcd="$(cat "$dir/etcd.endpoint")" "$@"; }
pool() { "$root/scripts/local-pool" "$@" --dir "$dir"; }
mnt=$dir/mnt
agent_pid=

# Attaches the volume on host $1 in the background and sets $device.
attach() {
  local node=$1 log=$dir/attach-$1.log
  : >"$log"
  setsid "$build/src/cli/juke" --etcd="$(cat "$dir/etcd.endpoint")" \
    volume attach demo --node="$node" --state-dir="$dir/run-$node" \
    >"$log" 2>&1 </dev/null &
  agent_pid=$!
  local i
  for ((i = 0; i < 300; i++)); do
    device=$(awk '/^device:/ {print $2}' "$log")
    [[ -n $device ]] && break
    kill -0 "$agent_pid" 2>/dev/null || { cat "$log" >&2; exit 1; }
    sleep 0.1
  done
  [[ -n $device ]] || { cat "$log" >&2; exit 1; }
  sed -n '1,2p' "$log"
}

detach() {
  local node=$1
  if mountpoint -q "$mnt"; then umount "$mnt"; fi
  juke volume detach demo --node="$node" --state-dir="$dir/run-$node"
}

# Mounts the file system again, so that files are read from the volume
# rather than from the page cache.
remount() {
  umount "$mnt"
  mount "$device" "$mnt"
}

cleanup() {
  mountpoint -q "$mnt" 2>/dev/null && umount "$mnt"
  for n in h1 h2; do
    [[ -e $dir/run-$n/demo.lock ]] &&
      juke volume detach demo --node=$n --state-dir="$dir/run-$n" >/dev/null 2>&1
  done
  if ((!keep)); then say "Stopping the pool"; pool down --purge; fi
}

say "Installing dependencies and building (incremental after the first run)"
"$root/scripts/install-deps.sh"
"$root/scripts/build.sh" juke-storaged juke >/dev/null
echo "built $build/src/storage/juke-storaged and $build/src/cli/juke"

pool down --purge >/dev/null 2>&1 || true
trap cleanup EXIT

say "Starting a pool: one etcd and three storage daemons, two disks each"
JUKE_LEASE_TTL=4 pool up --hosts 3 --disks 2
juke status

say "Creating a 512 MiB volume with three replicas, each on another host"
juke volume create demo --size=512MiB --replicas=3
juke volume list

say "Attaching it on host h1: a new writer generation, served as a block device"
attach h1
echo "the volume is $device on this machine"

say "Making an ext4 file system (the device is blank) and writing files"
mkfs.ext4 -q "$device"
mkdir -p "$mnt"
mount "$device" "$mnt"
for i in 1 2 3; do
  head -c $((i * 8 << 20)) /dev/urandom >"$mnt/file-$i.bin"
done
cp -r "$root/docs" "$mnt/docs"
sync
(cd "$mnt" && find . -type f -print0 | sort -z | xargs -0 sha256sum) >"$dir/sums"
echo "wrote $(wc -l <"$dir/sums") files, $(du -sh "$mnt" | cut -f1); their sha256 sums are in $dir/sums"

say "Detaching from h1: unmount, flush, release the device and the attachment"
detach h1
juke volume status demo

say "Attaching it on host h2 and checking every file"
attach h2
mount "$device" "$mnt"
(cd "$mnt" && sha256sum --quiet -c "$dir/sums")
echo "all $(wc -l <"$dir/sums") files read back on h2 with the same sha256"

say "Killing h3's storage daemon with SIGKILL, as a crash would"
pool kill h3
remount
(cd "$mnt" && sha256sum --quiet -c "$dir/sums")
echo "every file still reads back right from the two other replicas"

say "Writing more while h3 is down"
head -c $((24 << 20)) /dev/urandom >"$mnt/written-while-h3-down.bin"
sync
(cd "$mnt" && sha256sum written-while-h3-down.bin) >>"$dir/sums"
echo "the write was acknowledged by h1 and h2; h3's replicas are marked stale:"
juke volume status demo

say "Restarting h3: recovery copies what it missed, then clears the marks"
pool start h3
for ((i = 0; i < 120; i++)); do
  juke volume status demo | grep -q 'every written replica is current' && break
  sleep 1
done
grep '^recovery:' "$dir/attach-h2.log" | tail -2
juke volume status demo
remount
(cd "$mnt" && sha256sum --quiet -c "$dir/sums")
echo "all $(wc -l <"$dir/sums") files check out with three current replicas"

say "Detaching from h2"
detach h2

say "Done"
echo "The volume moved between hosts and lived through a daemon crash without losing a byte."
if ((keep)); then
  echo "Logs: $dir/h*/storaged.log (daemons), $dir/attach-*.log (attach agents)."
  echo "The pool is still running; stop it with: scripts/local-pool down --dir $dir --purge"
else
  echo "The pool and its logs are removed now; scripts/demo.sh --keep keeps them."
fi
