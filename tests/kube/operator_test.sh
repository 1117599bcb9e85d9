#!/usr/bin/env bash
# The operator against a real Kubernetes API server and a real Juke pool
# (etcd plus three storage daemons named like the Nodes): Nodes join the
# pool with their topology, a NotReady Node goes down after the grace
# period and comes back, a draining node's disks go out, a deleted Node
# leaves once nothing depends on it; the map in etcd follows each step.
# The operator survives an API server restart and expired watches, and of
# two operators one leads, the other taking over when it dies.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${JUKE_BUILD_DIR:-$root/build}
source "$root/tests/kube/cluster.sh"
source "$root/tests/kube/operator_lib.sh"
dir=$(mktemp -d /tmp/juke-operator.XXXXXX)
trap cleanup_all EXIT
test_name=operator_test

"$root/scripts/local-pool" up --hosts 3 --disks 2 --dir "$dir/pool" >"$dir/pool.log" 2>&1 \
  || fail "local pool did not start"
JUKE_ETCD=$(cat "$dir/pool/etcd.endpoint")
juke=$build/src/cli/juke

# The watch cache off: a watch from a compacted version then gets 410 Gone
# from etcd, which the expiry step below relies on.
KUBE_APISERVER_ARGS=--watch-cache=false kube_up "$dir/kube"
add_juke_cluster juke aws-1 us-east
add_node h1 us-east-1a us-east
add_node h2 us-east-1b us-east
add_node h3 us-east-1c us-east
start_operator op-1

step "Nodes join the pool with their topology and the cluster's name"
wait_until 60 "h1..h3 in the map under cluster aws-1 with their zones" map_says \
  'all(d["labels"]["cluster"] == "aws-1" and d["up"] and d["in"] for d in disks) and
   {d["labels"]["zone"] for d in host("h3")} == {"us-east-1c"} and len(disks) == 6'
member_says h1 'm["cluster"] == "aws-1" and m["state"] == "active"' || fail "member h1"
wait_until 30 "JukeCluster status" kube_field_is jukecluster juke '{.status.hostsUp}' 3
kubectl get jukecluster juke

step "A JukeNode that lists disks gives only those, with their weights"
kubectl apply -f - >/dev/null <<YAML
apiVersion: juke.io/v1alpha1
kind: JukeNode
metadata: {name: h1}
spec:
  nodeName: h1
  disks: [{path: $dir/pool/h1/disk0, weight: 5}, {path: /mnt/not-there}]
YAML
wait_until 30 "h1's disk0 in with weight 5, disk1 out" map_says \
  'sum(1 for d in host("h1") if d["in"] and d["weight"] == 5) == 1 and
   sum(1 for d in host("h1") if not d["in"]) == 1'
member_says h1 'm["disks"][0]["weight"] == 5' || fail "member h1 without its disk list"
wait_until 20 "JukeNode h1 Degraded: a listed disk is missing" kube_field_is jukenode h1 \
  '{.status.conditions[?(@.type=="Degraded")].reason}' DisksMissing
wait_until 20 "a DisksChanged event" event_seen DisksChanged
kubectl delete jukenode h1 >/dev/null
wait_until 30 "h1's two disks in again" map_says 'sum(1 for d in host("h1") if d["in"]) == 2'

step "A Node NotReady past the grace period is marked down, then up again"
set_ready h3 False
sleep 1
map_says 'all(d["up"] for d in host("h3"))' || fail "h3 down before the grace period"
wait_until 30 "h3's disks down" map_says 'not any(d["up"] for d in host("h3"))'
member_says h3 'm["down"]' || fail "member h3 not marked down"
wait_until 20 "a HostDown event" event_seen HostDown
wait_until 20 "Degraded condition" kube_field_is jukecluster juke \
  '{.status.conditions[?(@.type=="Degraded")].status}' True
set_ready h3 True
wait_until 30 "h3's disks up again" map_says 'all(d["up"] for d in host("h3"))'

step "A volume with 2 replicas of 16 chunks, some of them on h3"
"$juke" --etcd="$JUKE_ETCD" volume create vol-a --size=64MiB --replicas=2 >/dev/null
head -c 64M /dev/urandom >"$dir/data"
attach_volume vol-a h1
dd if="$dir/data" of="$device" bs=1M oflag=direct conv=fsync status=none
detach_volume vol-a h1
wait_until 30 "h3's daemon reports chunks" host_has_chunks h3
step "A draining node's disks go out; it is drained once no volume uses it"
kubectl apply -f - >/dev/null <<'YAML'
apiVersion: juke.io/v1alpha1
kind: JukeNode
metadata: {name: h3}
spec: {nodeName: h3, draining: true}
YAML
wait_until 30 "h3's disks out" map_says 'not any(d["in"] for d in host("h3")) and len(host("h3")) == 2'
member_says h3 'm["state"] == "draining"' || fail "member h3 not draining"
wait_until 60 "JukeNode h3 drained" kube_field_is jukenode h3 \
  '{.status.conditions[?(@.type=="Progressing")].reason}' Drained
kubectl get jukenode h3
wait_until 30 "h3's daemon reports no chunk left" host_has_chunks h3 none

step "A deleted Node leaves the pool once its daemon stopped"
kubectl delete node h3 >/dev/null
wait_until 30 "member h3 leaving" member_says h3 'm["state"] == "leaving"'
sleep 2
member_says h3 'm["state"] == "leaving"' || fail "h3 removed while its daemon still runs"
"$root/scripts/local-pool" kill h3 --dir "$dir/pool" >/dev/null
wait_until 60 "h3 removed" member_says h3 absent
wait_until 20 "h3 out of the map" map_says 'len(host("h3")) == 0 and len(disks) == 4'
[[ -z $(etcd_get /juke/v1/hosts/h3) ]] || fail "host record of h3 left behind"
wait_until 20 "a HostRemoved event" event_seen HostRemoved
attach_volume vol-a h2
cmp <(head -c 64M "$device") "$dir/data" || fail "vol-a's data changed"
detach_volume vol-a h2

step "The operator survives an API server restart"
kube_restart_apiserver "$dir/kube"
add_node h4 us-east-1a us-east
wait_until 60 "member h4 after the restart" member_says h4 'm["zone"] == "us-east-1a"'

step "A watch from a compacted version is refused (410) and the operator lists again"
kill -STOP "$(cat "$dir/op-1.pid")"
kube_restart_apiserver "$dir/kube"
add_node h5 us-east-1b us-east
rev=$(ETCDCTL_API=3 etcdctl --endpoints "$(kube_etcd_endpoint "$dir/kube")" \
  endpoint status -w json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["Status"]["header"]["revision"])')
ETCDCTL_API=3 etcdctl --endpoints "$(kube_etcd_endpoint "$dir/kube")" compact "$rev" >/dev/null
kill -CONT "$(cat "$dir/op-1.pid")"
wait_until 60 "member h5 after the relist" member_says h5 'm["state"] == "active"'
grep -q "Watch expired, listing again" "$dir/op-1.log" || fail "no relist after 410"

step "Two operators: one leads, the other takes over when it dies"
start_operator op-2
sleep 3
lease_held_by op-1 || fail "lease held by '$(lease_holder)', not op-1"
grep -q "Leading" "$dir/op-2.log" && fail "op-2 leads while op-1 holds the lease"
stop_operator op-1 -KILL
wait_until 30 "op-2 holds the lease" lease_held_by op-2
add_node h6 us-east-1c us-east
wait_until 30 "member h6 written by op-2" member_says h6 'm["state"] == "active"'

step "A host down past --down_out_after goes out; its chunks are copied again from the other replicas"
"$root/scripts/local-pool" start h4 --dir "$dir/pool" >/dev/null
wait_until 60 "h4's disks in the map" map_says 'len(host("h4")) == 2 and all(d["in"] and d["up"] for d in host("h4"))'
# Settled: no move left, and h1 and h2 dropped the copies h4 took over.
moved_onto_h4() {
  etcd_get /juke/v1/volumes/vol-a | python3 -c '
import json, sys
r = json.load(sys.stdin)
sys.exit(1 if r.get("movingToEpoch") or r.get("leavingEpoch") else 0)' &&
    host_has_chunks h4 && (($(host_chunks h1) + $(host_chunks h2) < 32))
}
wait_until 120 "vol-a moved some chunks onto h4 and settled" moved_onto_h4
stop_operator op-2
start_operator op-3 --down_out_after=3s
"$root/scripts/local-pool" kill h4 --dir "$dir/pool" >/dev/null
set_ready h4 False
wait_until 30 "h4 down" member_says h4 'm["down"] and m["state"] == "active"'
wait_until 30 "h4 out after down_out_after" member_says h4 'm["down"] and m["state"] == "draining"'
wait_until 20 "h4's disks down and out" map_says 'not any(d["up"] or d["in"] for d in host("h4"))'
wait_until 20 "a DownOut event" event_seen DownOut
# vol-a has 16 chunks and 2 replicas; with h4 out, h1 and h2 hold all 32.
both_hold_all() { [[ $(host_chunks h1) == 16 && $(host_chunks h2) == 16 ]]; }
wait_until 120 "h1 and h2 each hold every chunk of vol-a" both_hold_all
attach_volume vol-a h1
cmp <(head -c 64M "$device") "$dir/data" || fail "vol-a's data changed after h4 went out"
detach_volume vol-a h1
set_ready h4 True
"$root/scripts/local-pool" start h4 --dir "$dir/pool" >/dev/null
wait_until 30 "h4 back up and in" member_says h4 'not m["down"] and m["state"] == "active"'
wait_until 30 "h4's disks up and in" map_says 'all(d["up"] and d["in"] for d in host("h4"))'
echo "operator_test: passed"
