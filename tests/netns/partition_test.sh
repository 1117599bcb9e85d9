#!/usr/bin/env bash
# A writer cut off from the pool by a real network partition never writes
# again once its volume has moved to another host.
#
# Three storage daemons, each in a network namespace of its own
# (scripts/local-pool --netns), one disk each, so every disk holds every
# chunk of a 3-replica volume. Writer A attaches the volume inside h1's
# namespace and writes all of it. Then h1's link goes down: A and the h1
# daemon see nothing else. Writer B takes the volume over from h2's
# namespace (it waits for h1's lease to run out, since h1 cannot be
# fenced), then A tries to write the second half and B writes the first.
# After the link is back:
#   - A's write failed, and stays failed;
#   - every replica of the first half holds B's data, every replica of the
#     second half A's data from before the cut: nothing A sent after the
#     move landed anywhere, h1's own disk included;
#   - B reads exactly that through its block device.
# Needs root (namespaces, FUSE, loop devices). Uses the bridge and the
# juke-h* namespaces of local-pool's --netns mode, so it must not run
# beside another --netns pool.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${JUKE_BUILD_DIR:-$root/build}
juke=$build/src/cli/juke
pool=(env JUKE_LEASE_TTL=5 "$root/scripts/local-pool")
dir=$(mktemp -d /tmp/juke-partition.XXXXXX)
agents=()
test_name=partition_test

cleanup() {
  ip link set veth-h1 up 2>/dev/null || true
  local pid
  for pid in "${agents[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${agents[@]}"; do
    timeout 20 tail --pid="$pid" -f /dev/null 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
  done
  "${pool[@]}" down --purge --dir "$dir/pool" >/dev/null 2>&1 || true
  rm -rf "$dir"
}
trap cleanup EXIT

fail() {
  echo "$test_name: $*" >&2
  local log
  for log in "$dir"/*.log "$dir"/pool/h*/storaged.log; do
    [[ -f $log ]] || continue
    echo "== $log" >&2
    tail -n 20 "$log" >&2
  done
  exit 1
}
step() { echo "$test_name: $*"; }

[[ $(id -u) -eq 0 ]] || fail "needs root: network namespaces, FUSE, loop devices"
"${pool[@]}" up --netns --hosts 3 --disks 1 --dir "$dir/pool" >"$dir/pool.log" 2>&1 \
  || fail "local pool did not start"
etcd=$(cat "$dir/pool/etcd.endpoint")
j() { "$juke" --etcd="$etcd" "$@"; }

mib=1048576
half=$((8 * mib))
head -c $((2 * half)) /dev/urandom >"$dir/a1"
head -c "$half" /dev/urandom >"$dir/a2"
head -c "$half" /dev/urandom >"$dir/b1"
j volume create data --size=16MiB --replicas=3 >/dev/null || fail "volume create failed"

# Attaches the volume as writer on host $1 from inside its namespace; sets
# $device to its block device.
attach() {
  local node=$1 log=$dir/attach-$1.log
  shift
  ip netns exec "juke-$node" "$juke" --etcd="$etcd" volume attach data \
    --node="$node" --state-dir="$dir/run-$node" "$@" >"$log" 2>&1 &
  agents+=($!)
  device=
  local _
  for _ in $(seq 600); do
    device=$(awk '/^device:/ {print $2}' "$log")
    [[ -n $device ]] && return 0
    kill -0 "${agents[-1]}" 2>/dev/null || fail "attach on $node exited"
    sleep 0.1
  done
  fail "attach on $node printed no device within 60 s"
}

step "writer A on h1 writes the whole volume"
attach h1
dev_a=$device
dd if="$dir/a1" of="$dev_a" bs=1M oflag=direct conv=fsync status=none \
  || fail "A's first write failed"

step "h1's link goes down; writer B takes the volume over on h2"
ip link set veth-h1 down
start=$(date +%s)
attach h2 --take-over
dev_b=$device
step "B attached $(($(date +%s) - start)) s after the cut (h1's lease had to run out)"

step "A writes the second half while cut off; B writes the first half"
timeout 180 dd if="$dir/a2" of="$dev_a" bs=1M seek=8 oflag=direct conv=fsync \
  status=none 2>"$dir/dd-a.err" &
dd_a=$!
dd if="$dir/b1" of="$dev_b" bs=1M oflag=direct conv=fsync status=none \
  || fail "B's write failed while h1 was cut off"

step "h1's link comes back"
sleep 2
ip link set veth-h1 up
rc=0
wait "$dd_a" || rc=$?
((rc == 124)) && fail "A's write neither failed nor finished in 180 s"
((rc != 0)) || fail "A's write after the move succeeded"
step "A's write failed (exit $rc): $(tail -n 1 "$dir/dd-a.err")"

# h1 rejoins; the replicas B wrote while it was away are stale until B's
# agent brings them up to date.
status=
for _ in $(seq 600); do
  status=$(j volume status data 2>&1) || true
  grep -q "every written replica is current" <<<"$status" && break
  sleep 0.1
done
grep -q "every written replica is current" <<<"$status" \
  || fail "replicas still stale 60 s after the link came back: $status"

step "every replica holds B's first half and A's second half from before the cut"
cat "$dir/b1" >"$dir/expect0"
tail -c "$half" "$dir/a1" >"$dir/expect1"
for h in h1 h2 h3; do
  for c in 0 1 2 3; do
    j chunk read --host="$h" --volume=data --index="$c" --to="$dir/got" >/dev/null \
      || fail "cannot read chunk $c on $h"
    part=$((c / 2))
    cmp -s "$dir/got" <(tail -c +$(((c % 2) * 4 * mib + 1)) "$dir/expect$part" | head -c $((4 * mib))) \
      || fail "chunk $c on $h differs from what the volume's writers were acknowledged"
  done
done
cat "$dir/b1" <(tail -c "$half" "$dir/a1") >"$dir/expect-all"
dd if="$dev_b" bs=1M count=16 iflag=direct status=none >"$dir/read-b" \
  || fail "B cannot read its volume"
cmp -s "$dir/read-b" "$dir/expect-all" || fail "B reads other data than it should"
step "passed"
