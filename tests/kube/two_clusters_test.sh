#!/usr/bin/env bash
# Two Kubernetes clusters ("clouds"), one Juke pool: two real API servers,
# one shared metadata etcd, four storage daemons, an operator per cluster.
# The map holds the hosts of both, each under its cluster's failure domain;
# a volume asking for the cluster failure domain keeps one replica of every
# chunk in each cluster; a volume written from a host of one cluster is
# read from a host of the other without copying it.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${JUKE_BUILD_DIR:-$root/build}
source "$root/tests/kube/cluster.sh"
source "$root/tests/kube/operator_lib.sh"
dir=$(mktemp -d /tmp/juke-two-clusters.XXXXXX)
trap cleanup_all EXIT
test_name=two_clusters_test
fail_details() {
  local h
  for h in h1 h2 h3 h4; do echo "$h holds $(host_chunks $h) chunks"; done
}

"$root/scripts/local-pool" up --hosts 4 --disks 1 --dir "$dir/pool" >"$dir/pool.log" 2>&1 \
  || fail "local pool did not start"
JUKE_ETCD=$(cat "$dir/pool/etcd.endpoint")
juke=$build/src/cli/juke

kube_up "$dir/cloud-a"
add_juke_cluster juke cloud-a eu-west
add_node h1 eu-west-1a eu-west
add_node h2 eu-west-1a eu-west
start_operator op-a

kube_up "$dir/cloud-b"
add_juke_cluster juke cloud-b us-east
add_node h3 us-east-1a us-east
add_node h4 us-east-1a us-east
start_operator op-b

step "One map holds the hosts of both clusters, each in its cluster's domain"
wait_until 60 "h1, h2 in cloud-a and h3, h4 in cloud-b" map_says \
  'len(disks) == 4 and all(d["up"] and d["in"] for d in disks) and
   {d["labels"]["cluster"] for d in host("h1") + host("h2")} == {"cloud-a"} and
   {d["labels"]["cluster"] for d in host("h3") + host("h4")} == {"cloud-b"} and
   {d["labels"]["region"] for d in host("h3")} == {"us-east"}'
for kc in "$dir/cloud-a/kubeconfig" "$dir/cloud-b/kubeconfig"; do
  KUBECONFIG=$kc wait_until 30 "both clusters in the status seen from $kc" \
    kube_field_is jukecluster juke '{.status.clusters}/{.status.hosts}' 2/4
done
KUBECONFIG=$dir/cloud-b/kubeconfig kubectl get jukecluster juke

step "A volume across the cluster domain keeps a replica of each chunk in each"
"$juke" --etcd="$JUKE_ETCD" volume create shared --size=64MiB --replicas=2 \
  --failure-domain=cluster >/dev/null
head -c 64M /dev/urandom >"$dir/data"
attach_volume shared h1
dd if="$dir/data" of="$device" bs=1M oflag=direct conv=fsync status=none
detach_volume shared h1
chunks_in() { echo $(($(host_chunks "$1") + $(host_chunks "$2"))); }
both_hold_all() { (($(chunks_in h1 h2) == 16 && $(chunks_in h3 h4) == 16)); }
wait_until 30 "16 chunks in each cluster" both_hold_all

step "Written from cloud-a's h1, read from cloud-b's h3"
attach_volume shared h3
cmp <(head -c 64M "$device") "$dir/data" || fail "h3 read other data"
detach_volume shared h3

step "Each operator keeps to its own cluster's hosts"
KUBECONFIG=$dir/cloud-b/kubeconfig kubectl delete node h4 >/dev/null
wait_until 30 "h4 leaving" member_says h4 'm["state"] == "leaving"'
member_says h1 'm["cluster"] == "cloud-a" and m["state"] == "active"' \
  || fail "cloud-b's operator touched h1"
map_says 'all(d["in"] for d in host("h1") + host("h2") + host("h3"))' \
  || fail "a host other than h4 went out"
echo "two_clusters_test: passed"
