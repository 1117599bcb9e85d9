#!/usr/bin/env bash
# Every object the chart renders, for the default values and every file
# under ci/, is accepted by a real kube-apiserver (server-side dry run),
# with the chart's CRDs and the snapshot CRDs installed first (from the
# external-snapshotter client module that tools/provisioner pins, so the
# VolumeSnapshotClass is checked too); the CRDs' schemas accept a valid
# JukeCluster and JukeNode and refuse invalid ones.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
chart=$root/deploy/helm/juke
helm=${JUKE_TOOLS:-/opt/juke-tools}/bin/helm
source "$root/tests/kube/cluster.sh"
dir=$(mktemp -d /tmp/juke-dry-run.XXXXXX)
trap 'kube_down; rm -rf "$dir"' EXIT
fail() { echo "dry_run_test: $*" >&2; exit 1; }

kube_up "$dir/kube"
kubectl create namespace juke >/dev/null
kubectl apply --server-side -f "$chart/crds/"
kubectl wait --for=condition=Established crd/jukeclusters.juke.io crd/jukenodes.juke.io --timeout=60s
snapshot_crds=$(cd "$root/tools/provisioner" && GOFLAGS=-mod=readonly \
  go list -m -f '{{.Dir}}' github.com/kubernetes-csi/external-snapshotter/client/v8)/config/crd
kubectl apply --server-side -f "$snapshot_crds/snapshot.storage.k8s.io_volumesnapshotclasses.yaml"
kubectl wait --for=condition=Established crd/volumesnapshotclasses.snapshot.storage.k8s.io --timeout=60s

for values in "" "$chart"/ci/*.yaml; do
  echo "== dry run: ${values:-default values}"
  "$helm" template juke "$chart" --namespace juke ${values:+-f "$values"} \
    --api-versions snapshot.storage.k8s.io/v1/VolumeSnapshotClass >"$dir/rendered.yaml"
  kubectl apply --dry-run=server --namespace juke -f "$dir/rendered.yaml"
done

echo "== custom resources"
kubectl apply --dry-run=server -f - <<'YAML'
apiVersion: juke.io/v1alpha1
kind: JukeCluster
metadata: {name: prod-a}
spec:
  pool: default
  defaultRegion: eu-west
  etcdEndpoints: ["10.0.0.11:2379"]
---
apiVersion: juke.io/v1alpha1
kind: JukeNode
metadata: {name: node-1}
spec:
  nodeName: node-1
  disks: [{path: /mnt/juke0}, {path: /mnt/juke1, weight: 2}]
YAML
refuse() {
  if kubectl apply --dry-run=server -f - >"$dir/out" 2>&1; then
    fail "accepted: $1"
  fi
  grep -q "$2" "$dir/out" || { cat "$dir/out" >&2; fail "refused without '$2': $1"; }
}
refuse "a pool name with a slash" "spec.pool" <<'YAML'
apiVersion: juke.io/v1alpha1
kind: JukeCluster
metadata: {name: bad}
spec: {pool: "a/b", etcdEndpoints: ["10.0.0.11:2379"]}
YAML
refuse "a cluster without etcd endpoints" "etcdEndpoints" <<'YAML'
apiVersion: juke.io/v1alpha1
kind: JukeCluster
metadata: {name: bad}
spec: {pool: default}
YAML
refuse "a relative disk path" "spec.disks" <<'YAML'
apiVersion: juke.io/v1alpha1
kind: JukeNode
metadata: {name: bad}
spec: {nodeName: n, disks: [{path: "mnt/x"}]}
YAML
echo "dry_run_test: every rendered object and the CRDs pass a real API server"
