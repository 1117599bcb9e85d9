#!/usr/bin/env bash
# Checks the Helm chart with a real helm (installed by
# scripts/install-go-tools.sh): lint, render with the default values and
# every file under ci/, and refuse values the schema rules out.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
chart=$root/deploy/helm/juke
helm=${JUKE_TOOLS:-/opt/juke-tools}/bin/helm
[[ -x $helm ]] || { echo "chart_test: $helm missing; run scripts/install-go-tools.sh" >&2; exit 1; }
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
fail() { echo "chart_test: $*" >&2; exit 1; }

"$helm" lint --strict "$chart"
# The chart installs the version the programs say they are.
app_version=$(sed -n 's/^appVersion: "\(.*\)"$/\1/p' "$chart/Chart.yaml")
code_version=$(sed -n 's/.*kJukeVersion\[\] = "\(.*\)";$/\1/p' "$root/src/common/version.h")
[[ -n $app_version && $app_version == "$code_version" ]] \
  || fail "Chart.yaml appVersion \"$app_version\" is not the programs' version \"$code_version\" (src/common/version.h)"
"$helm" template juke "$chart" --namespace juke --include-crds >"$out/default.yaml"
for kind in CustomResourceDefinition CSIDriver StorageClass DaemonSet Deployment StatefulSet ClusterRole; do
  grep -q "^kind: $kind\$" "$out/default.yaml" || fail "default render has no $kind"
done
for sidecar in csi-provisioner csi-attacher csi-resizer csi-snapshotter liveness-probe node-driver-registrar; do
  grep -q "name: $sidecar\$" "$out/default.yaml" || fail "default render has no $sidecar sidecar"
done
grep -q '^allowVolumeExpansion: true$' "$out/default.yaml" || fail "the StorageClass does not let claims grow"
# The VolumeSnapshotClass only where the API server serves its kind.
if grep -q '^kind: VolumeSnapshotClass$' "$out/default.yaml"; then
  fail "VolumeSnapshotClass rendered for a cluster without the snapshot API"
fi
"$helm" template juke "$chart" --namespace juke \
  --api-versions snapshot.storage.k8s.io/v1/VolumeSnapshotClass >"$out/snapshots.yaml"
grep -q '^kind: VolumeSnapshotClass$' "$out/snapshots.yaml" \
  || fail "no VolumeSnapshotClass although the cluster serves the snapshot API"
# Only the node plugin is privileged.
[[ $(grep -c 'privileged: true' "$out/default.yaml") == 1 ]] || fail "privileged containers other than the node plugin"

for values in "$chart"/ci/*.yaml; do
  name=$(basename "$values" .yaml)
  "$helm" lint --strict "$chart" -f "$values"
  "$helm" template juke "$chart" -f "$values" --include-crds >"$out/$name.yaml"
done
grep -q -- '--etcd=10.0.0.11:2379,10.0.0.12:2379,10.0.0.13:2379' "$out/external-etcd-values.yaml" \
  || fail "external etcd endpoints not passed on"
if grep -q '^kind: StatefulSet$' "$out/external-etcd-values.yaml"; then
  fail "bundled etcd rendered although etcd.bundled is false"
fi

# Values the chart must refuse, each with the reason in the error.
refuse() {
  local expect=$1; shift
  if "$helm" template juke "$chart" "$@" >"$out/refused.yaml" 2>"$out/err"; then
    fail "accepted $*"
  fi
  grep -q -- "$expect" "$out/err" || { cat "$out/err" >&2; fail "$* failed without '$expect'"; }
}
refuse "replicas" --set storageClass.replicas=9
refuse "failureDomain" --set storageClass.failureDomain=rack
refuse "endpoints" --set etcd.bundled=false
refuse "disks" --set 'storage.disks={relative/path}'
refuse "notReadyGrace" --set operator.notReadyGrace=soon
refuse "downOutAfter" --set operator.downOutAfter=-1m
refuse "additional properties" --set storage.diskz=x
echo "chart_test: chart lints, renders and refuses bad values"
