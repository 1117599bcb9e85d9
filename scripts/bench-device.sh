#!/usr/bin/env bash
# Benchmarks attached volumes as block devices against a plain file with
# fio. Starts a local pool (3 hosts, 2 disks each), creates a 1-replica and
# a 3-replica volume, attaches both on this machine as host h1 (FUSE plus a
# loop device) and runs the same fio jobs on three targets:
#   file  a plain file on the file system that holds the pool's disks
#   r1    the block device of the 1-replica volume
#   r3    the block device of the 3-replica volume
# Jobs: 4 KiB random read and write at iodepth 32, 4 KiB O_DSYNC random
# write at iodepth 1 (latency p50/p99), 1 MiB sequential read and write at
# iodepth 8; all with --direct=1. Every target is written once before the
# jobs, so reads hit real data. Each job runs --runs times with the targets
# taking turns (file r1 r3, r1 r3 file, ...); the medians are printed with
# their ratios to the plain file, last as a markdown table. Write ratios
# are also given times the replica count (3 replicas write 3x the bytes).
# Not a test: it asserts nothing. Needs root (loop devices, FUSE). Detaches
# the volumes and removes the pool on exit.
#
#   scripts/bench-device.sh [--runs 3] [--runtime 6] [--size-mib 256]
#       [--volume-size 1GiB] [--ioengine io_uring] [--out DIR] [--no-build]
#       [--dir /var/tmp/juke-bench-device]
#
# --runtime is seconds per fio job (5 jobs x 3 targets x runs of them);
# --size-mib is the region of each target the jobs use; --out keeps fio's
# JSON and the printed report in DIR; --no-build uses the binaries already
# in the build directory ($JUKE_BUILD_DIR or ./build) as they are.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${JUKE_BUILD_DIR:-$root/build}
# Not under /tmp by default: /tmp may be tmpfs, which has no direct I/O.
dir=/var/tmp/juke-bench-device
runs=3
runtime=6
size=256
volume_size=1GiB
ioengine=io_uring
out=
no_build=0

die() { echo "bench-device: $*" >&2; exit 1; }

usage() {
  sed -n '2,26p' "$0" | sed 's/^# \{0,1\}//'
  exit "${1:-0}"
}

while (($#)); do
  case $1 in
    --runs) runs=$2; shift 2 ;;
    --runtime) runtime=$2; shift 2 ;;
    --size-mib) size=$2; shift 2 ;;
    --volume-size) volume_size=$2; shift 2 ;;
    --ioengine) ioengine=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --dir) dir=$2; shift 2 ;;
    --no-build) no_build=1; shift ;;
    -h|--help) usage 0 ;;
    *) echo "bench-device: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
done
[[ $runs =~ ^[1-9][0-9]*$ ]] || die "--runs wants a positive number, got '$runs'"
[[ $runtime =~ ^[1-9][0-9]*$ ]] || die "--runtime wants seconds, got '$runtime'"
[[ $size =~ ^[1-9][0-9]*$ ]] || die "--size-mib wants MiB, got '$size'"
[[ $ioengine == io_uring || $ioengine == libaio ]] \
  || die "--ioengine wants io_uring or libaio, got '$ioengine'"
[[ $(id -u) -eq 0 ]] || die "run as root (loop devices and FUSE need it)"

if ((!no_build)); then
  "$root/scripts/install-deps.sh"
  "$root/scripts/build.sh" juke-storaged juke
fi
juke=$build/src/cli/juke
[[ -x $juke && -x $build/src/storage/juke-storaged ]] \
  || die "juke or juke-storaged missing in $build; build first (scripts/build.sh)"
command -v fio >/dev/null || die "fio is missing; run scripts/install-deps.sh"
command -v python3 >/dev/null || die "python3 is missing; run scripts/install-deps.sh"

# A left-over attachment under $dir would make removing it fail.
grep -qF " $dir/" /proc/self/mountinfo \
  && die "something is still mounted under $dir; detach it first"

results=$out
if [[ -z $results ]]; then
  results=$(mktemp -d /tmp/juke-bench-device.XXXXXX)
fi
mkdir -p "$results"

pool=(env JUKE_BUILD_DIR="$build" "$root/scripts/local-pool")
ep=
attached=()       # volume ids attached by this script
declare -A agent  # volume id -> pid of its `juke volume attach`

cleanup() {
  local rc=$? v i m
  trap - EXIT INT TERM
  for v in "${attached[@]}"; do
    if ! timeout 60 "$juke" --etcd="$ep" volume detach "$v" --node=h1 \
        --state-dir="$dir/run" >/dev/null 2>&1; then
      echo "bench-device: detach $v failed; stopping its agent" >&2
      kill -TERM "${agent[$v]}" 2>/dev/null || true
    fi
    for ((i = 0; i < 100; i++)); do
      kill -0 "${agent[$v]}" 2>/dev/null || break
      sleep 0.1
    done
    # An agent that cannot detach keeps serving; end it, and let the lazy
    # unmount below and the loop device's autoclear tidy up.
    if kill -0 "${agent[$v]}" 2>/dev/null; then
      echo "bench-device: agent of $v (pid ${agent[$v]}) still runs; killing it" >&2
      kill -KILL "${agent[$v]}" 2>/dev/null || true
    fi
  done
  # Deepest first; mountinfo escapes spaces, which $dir does not have.
  awk -v d="$dir/" 'index($5, d) == 1 {print $5}' /proc/self/mountinfo \
    | sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done
  "${pool[@]}" down --dir "$dir" --purge >/dev/null 2>&1 || true
  [[ -n $out ]] || rm -rf "$results"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

"${pool[@]}" down --dir "$dir" --purge >/dev/null 2>&1 || true
# In a session of its own, so that Ctrl-C stops only this script and fio,
# and the pool stays up while the trap detaches the volumes.
setsid -w "${pool[@]}" up --hosts 3 --disks 2 --dir "$dir" >/dev/null </dev/null
ep=$(cat "$dir/etcd.endpoint")
fstype=$(df --output=fstype "$dir" | tail -1)
[[ $fstype != tmpfs ]] || die "$dir is on tmpfs, which has no direct I/O; use --dir"

# Creates volume $1 with $2 replicas and attaches it; sets $device.
attach() {
  local v=$1 replicas=$2 log=$dir/attach-$1.log i
  "$juke" --etcd="$ep" volume create "$v" --size="$volume_size" \
    --replicas="$replicas" >/dev/null
  mkdir -p "$dir/run"
  # Made here: the background agent may not have opened it yet when the
  # loop below first reads it.
  : >"$log"
  setsid "$juke" --etcd="$ep" volume attach "$v" --node=h1 \
    --state-dir="$dir/run" >"$log" 2>&1 </dev/null &
  agent[$v]=$!
  attached+=("$v")
  device=
  for ((i = 0; i < 600; i++)); do
    device=$(sed -n 's/^device: //p' "$log")
    [[ -n $device ]] && return 0
    kill -0 "${agent[$v]}" 2>/dev/null || break
    sleep 0.1
  done
  cat "$log" >&2
  die "attaching $v gave no device; see above"
}

declare -A target
target[file]=$dir/plain-file
attach bench-r1 1
target[r1]=$device
attach bench-r3 3
target[r3]=$device
names=(file r1 r3)
echo "pool of 3 hosts x 2 disks in $dir ($fstype); file ${target[file]}," \
  "1 replica ${target[r1]}, 3 replicas ${target[r3]}"

# fio job $1 on target $2, JSON into $3.
common=(--direct=1 --ioengine="$ioengine" --size="${size}M" --randrepeat=0
  --output-format=json)
run_fio() {
  local job=$1 path=$2 json=$3
  local -a args
  case $job in
    randread) args=(--rw=randread --bs=4k --iodepth=32) ;;
    randwrite) args=(--rw=randwrite --bs=4k --iodepth=32) ;;
    syncwrite) args=(--rw=randwrite --bs=4k --iodepth=1 --sync=dsync
      --lat_percentiles=1) ;;
    seqread) args=(--rw=read --bs=1M --iodepth=8) ;;
    seqwrite) args=(--rw=write --bs=1M --iodepth=8) ;;
    fill) args=(--rw=write --bs=1M --iodepth=8) ;;
  esac
  if [[ $job != fill ]]; then
    args+=(--runtime="$runtime" --time_based)
  fi
  fio --name="$job" --filename="$path" "${common[@]}" "${args[@]}" \
    --output="$json" >/dev/null \
    || die "fio $job on $path failed; see $json"
}

# Write every target once: fio lays out the file, and the thin volumes
# then hold real chunks for the read jobs.
for n in "${names[@]}"; do
  run_fio fill "${target[$n]}" "$results/fill-$n.json"
done

jobs=(randread randwrite syncwrite seqread seqwrite)
total=$((${#jobs[@]} * runs * ${#names[@]}))
count=0
for job in "${jobs[@]}"; do
  for ((r = 1; r <= runs; r++)); do
    # Rotate who goes first, so no target always follows the same one.
    for ((k = 0; k < ${#names[@]}; k++)); do
      n=${names[$(((r - 1 + k) % ${#names[@]}))]}
      count=$((count + 1))
      printf '\r[%d/%d] %-9s run %d on %-4s' "$count" "$total" "$job" "$r" "$n" >&2
      run_fio "$job" "${target[$n]}" "$results/$job-$n-$r.json"
    done
  done
done
printf '\r%60s\r' '' >&2

python3 - "$results" "$runs" "$runtime" "$size" "$ioengine" "$fstype" \
  <<'EOF' | tee "$results/report.txt"
import json
import os
import statistics
import sys

results, runs, runtime, size, engine, fstype = sys.argv[1:]
runs = int(runs)
targets = [("file", "plain file", 1), ("r1", "1 replica", 1),
           ("r3", "3 replicas", 3)]


def job(name, target, run):
    with open(os.path.join(results, f"{name}-{target}-{run}.json")) as f:
        return json.load(f)["jobs"][0]


def lat_us(side, pct):
    return side["lat_ns"]["percentile"][pct] / 1000


# (label, fio job, value of one run, unit, higher is better, is a write)
metrics = [
    ("rand read 4 KiB, QD32", "randread",
     lambda j: j["read"]["iops"], "IOPS", True, False),
    ("rand write 4 KiB, QD32", "randwrite",
     lambda j: j["write"]["iops"], "IOPS", True, True),
    ("sync write 4 KiB, QD1, p50", "syncwrite",
     lambda j: lat_us(j["write"], "50.000000"), "µs", False, True),
    ("sync write 4 KiB, QD1, p99", "syncwrite",
     lambda j: lat_us(j["write"], "99.000000"), "µs", False, True),
    ("seq read 1 MiB, QD8", "seqread",
     lambda j: j["read"]["bw_bytes"] / 2**20, "MiB/s", True, False),
    ("seq write 1 MiB, QD8", "seqwrite",
     lambda j: j["write"]["bw_bytes"] / 2**20, "MiB/s", True, True),
]


def fmt(v, unit):
    if unit == "MiB/s":
        return f"{v:.1f} {unit}"
    return f"{v:.0f} {unit}"


rows = []
print(f"fio --direct=1 --ioengine={engine} on {fstype}, {runtime} s per job, "
      f"{size} MiB region, {runs} runs each; all runs, then the median:")
for label, name, value, unit, higher, write in metrics:
    med = {}
    for t, tname, _ in targets:
        vals = [value(job(name, t, r)) for r in range(1, runs + 1)]
        med[t] = statistics.median(vals)
        print(f"  {label:28} {tname:10} "
              + " ".join(f"{v:9.1f}" for v in vals)
              + f"   median {fmt(med[t], unit)}")
    row = [label, fmt(med["file"], unit)]
    for t, _, replicas in targets[1:]:
        ratio = med[t] / med["file"] if med["file"] else float("nan")
        row += [fmt(med[t], unit), f"{ratio:.2f}"]
        # Bytes written per unit of time, counting every copy; it only
        # means something for throughput.
        if replicas > 1:
            row.append(f"{ratio * replicas:.2f}" if write and higher else "–")
    rows.append(row)

header = ["metric", "plain file", "1 replica", "r1/file", "3 replicas",
          "r3/file", "r3/file × 3"]
print()
print(f"Medians of {runs} runs; ratios are volume/file (for latency, higher "
      "is slower); × 3 counts the three copies a 3-replica write makes.")
print()
print("| " + " | ".join(header) + " |")
print("| " + " | ".join("---" for _ in header) + " |")
for row in rows:
    print("| " + " | ".join(row) + " |")
EOF
if [[ -n $out ]]; then
  echo "fio JSON and this report kept in $out"
fi
