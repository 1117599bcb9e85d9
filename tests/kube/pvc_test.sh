#!/usr/bin/env bash
# A PersistentVolumeClaim against a real Kubernetes API server ends Bound to
# a volume that exists in a real Juke pool, and deleting the claim removes
# the volume. Runs etcd plus three storage daemons, juke-csi as the
# controller, csi-provisioner (built from its Go module) next to it, and
# kube-apiserver with kube-controller-manager (which binds claims and
# releases them).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${JUKE_BUILD_DIR:-$root/build}
tools=${JUKE_TOOLS:-/opt/juke-tools}/bin
source "$root/tests/kube/cluster.sh"
dir=$(mktemp -d /tmp/juke-pvc.XXXXXX)
pids=()
cleanup() {
  local pid
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true; done
  kube_down
  "$root/scripts/local-pool" down --purge --dir "$dir/pool" >/dev/null 2>&1 || true
  rm -rf "$dir"
}
trap cleanup EXIT
fail() {
  echo "pvc_test: $*" >&2
  for log in "$dir"/*.log; do echo "== $log" >&2; tail -n 15 "$log" >&2; done
  exit 1
}

"$root/scripts/local-pool" up --hosts 3 --disks 2 --dir "$dir/pool" >"$dir/pool.log" 2>&1 \
  || fail "local pool did not start"
export JUKE_ETCD=$(cat "$dir/pool/etcd.endpoint")
juke=$build/src/cli/juke

"$build/src/csi/juke-csi" --mode=controller --etcd="$JUKE_ETCD" \
  --endpoint="unix://$dir/csi.sock" >"$dir/juke-csi.log" 2>&1 &
pids+=($!)

kube_up "$dir/kube"
"$tools/kube-controller-manager" --kubeconfig="$KUBECONFIG" \
  --controllers=persistentvolume-binder-controller,persistentvolume-protection-controller,persistentvolumeclaim-protection-controller \
  --leader-elect=false \
  --bind-address=127.0.0.1 --secure-port=0 >"$dir/controller-manager.log" 2>&1 &
pids+=($!)
for _ in $(seq 50); do [[ -S $dir/csi.sock ]] && break; sleep 0.1; done
"$tools/csi-provisioner" --csi-address="$dir/csi.sock" --kubeconfig="$KUBECONFIG" \
  --leader-election=false --timeout=60s >"$dir/csi-provisioner.log" 2>&1 &
pids+=($!)

# A node as the node plugin's registrar would leave it: the driver and its
# topology keys on the node's CSINode, the labels on the Node.
kubectl apply -f - <<'YAML'
apiVersion: v1
kind: Node
metadata:
  name: h1
  labels: {topology.juke.io/host: h1}
---
apiVersion: storage.k8s.io/v1
kind: CSINode
metadata: {name: h1}
spec:
  drivers:
    - name: csi.juke.io
      nodeID: h1
      topologyKeys: [topology.juke.io/host]
YAML

kubectl apply -f - <<'YAML'
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata: {name: juke}
provisioner: csi.juke.io
reclaimPolicy: Delete
volumeBindingMode: Immediate
parameters: {replicas: "3", failureDomain: host}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: data, namespace: default}
spec:
  accessModes: [ReadWriteOnce]
  storageClassName: juke
  resources: {requests: {storage: 100Mi}}
YAML

kubectl wait --for=jsonpath='{.status.phase}'=Bound pvc/data --timeout=120s \
  || fail "the claim was not bound"
pv=$(kubectl get pvc data -o jsonpath='{.spec.volumeName}')
id=$(kubectl get pv "$pv" -o jsonpath='{.spec.csi.volumeHandle}')
echo "pvc_test: claim data is bound to $pv, Juke volume $id"
"$juke" volume status "$id" || fail "volume $id is not in the pool"
size=$("$juke" volume list | awk -v id="$id" '$1 == id {print $2, $3}')
[[ $size == "100.0 MiB" ]] || fail "volume $id is '$size', not 100.0 MiB"

kubectl delete pvc data --wait=false
for _ in $(seq 120); do
  kubectl get pv "$pv" >/dev/null 2>&1 || break
  sleep 0.5
done
kubectl get pv "$pv" >/dev/null 2>&1 && fail "PV $pv was not deleted"
if "$juke" volume status "$id" >/dev/null 2>&1; then
  fail "volume $id is still in the pool after its claim was deleted"
fi
echo "pvc_test: deleting the claim removed the volume from the pool"
