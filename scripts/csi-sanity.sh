#!/usr/bin/env bash
# Runs the CSI sanity suite (csi-sanity v5.4.0) against juke-csi on a real
# local pool: etcd plus three storage daemons, the driver serving
# controller and node plugin on one socket. Twice: with mount volumes and
# with raw block volumes. Needs root (FUSE, loop devices, mounts) and a
# build; scripts/install-go-tools.sh installs csi-sanity.
#
#   scripts/csi-sanity.sh [extra csi-sanity flags, e.g. --ginkgo.focus=Node]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${JUKE_BUILD_DIR:-$root/build}
sanity=${JUKE_TOOLS:-/opt/juke-tools}/bin/csi-sanity
[[ -x $sanity ]] || { echo "csi-sanity: $sanity missing; run scripts/install-go-tools.sh" >&2; exit 1; }

work=$(mktemp -d /tmp/juke-csi-sanity.XXXXXX)
driver_pid=
cleanup() {
  if [[ -n $driver_pid ]]; then kill "$driver_pid" 2>/dev/null && wait "$driver_pid" 2>/dev/null || true; fi
  "$root/scripts/local-pool" down --purge --dir "$work/pool" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

"$root/scripts/local-pool" up --hosts 3 --disks 2 --dir "$work/pool" >"$work/pool.log" 2>&1 \
  || { cat "$work/pool.log"; exit 1; }
etcd=$(cat "$work/pool/etcd.endpoint")
"$build/src/csi/juke-csi" --mode=all --node_id=h1 --etcd="$etcd" \
  --endpoint="unix://$work/csi.sock" --state_dir="$work/state" \
  --log_levels=info >"$work/driver.log" 2>&1 &
driver_pid=$!
for _ in $(seq 50); do [[ -S $work/csi.sock ]] && break; sleep 0.1; done
[[ -S $work/csi.sock ]] || { cat "$work/driver.log"; exit 1; }

# ControllerModifyVolume's specs run only with mutable parameters to ask
# for: volumes are created with 3 replicas and modified to 2.
printf 'replicas: "2"\n' >"$work/mutable-parameters.yaml"

status=0
for access in mount block; do
  echo "== csi-sanity, $access volumes"
  mkdir -p "$work/$access"
  if ! (cd "$work/$access" && "$sanity" --csi.endpoint="$work/csi.sock" \
      --csi.stagingdir="$work/$access/staging" \
      --csi.mountdir="$work/$access/target" \
      --csi.testvolumeaccesstype="$access" \
      --csi.testvolumemutableparameters="$work/mutable-parameters.yaml" \
      --ginkgo.timeout=10m --ginkgo.no-color "$@"); then
    status=1
  fi
done
if ((status)); then
  echo "== driver log (first 20 and last 100 lines)"
  head -n 20 "$work/driver.log"
  echo "..."
  tail -n 100 "$work/driver.log"
fi
# Nothing may be left mounted or attached.
if grep -q "$work" /proc/self/mountinfo; then
  echo "csi-sanity: mounts left under $work:" >&2
  grep "$work" /proc/self/mountinfo >&2
  status=1
fi
exit $status
