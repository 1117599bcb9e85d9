# Helpers for the operator tests, sourced after cluster.sh. They need
# $JUKE_ETCD (the pool's etcd endpoint) and $dir (the test's directory).

# Says why the test $test_name failed, with the tail of every log under
# $dir and the current map (and whatever fail_details prints, if the test
# defines it), then exits.
fail() {
  echo "$test_name: $*" >&2
  if declare -F fail_details >/dev/null; then fail_details >&2; fi
  local log
  for log in "$dir"/*.log; do echo "== $log" >&2; tail -n 25 "$log" >&2; done
  etcd_get /juke/v1/map/current >&2 || true
  exit 1
}
step() { echo "$test_name: $*"; }

# Polls until "$@" succeeds, for at most $1 seconds; names $2 on failure.
wait_until() {
  local timeout=$1 what=$2 i
  shift 2
  for ((i = 0; i < timeout * 5; i++)); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.2
  done
  fail "timed out after ${timeout}s waiting for: $what"
}

etcd_get() {
  ETCDCTL_API=3 etcdctl --endpoints "$JUKE_ETCD" get "$1" --print-value-only
}

# Checks the current map with a Python expression over `disks` (a list of
# the map's disks as dicts) and `epoch`, e.g.
#   map_says 'all(d["up"] for d in disks if d["hostId"] == "h1")'
map_says() {
  etcd_get /juke/v1/map/current | python3 -c '
import json, sys
m = json.load(sys.stdin)
disks, epoch = m.get("disks", []), m.get("epoch", 0)
def host(h): return [d for d in disks if d["hostId"] == h]
sys.exit(0 if eval("(" + sys.argv[1] + ")") else 1)' "$1"
}

# Checks the member record of host $1 with a Python expression over `m`;
# "absent" checks that there is none.
member_says() {
  local value
  value=$(etcd_get "/juke/v1/members/$1")
  if [[ $2 == absent ]]; then [[ -z $value ]]; return; fi
  [[ -n $value ]] || return 1
  python3 -c 'import json, sys; m = json.loads(sys.argv[1]); sys.exit(0 if eval("(" + sys.argv[2] + ")") else 1)' \
    "$value" "$2"
}

# Creates Node $1 in zone $2, Ready.
add_node() {
  kubectl apply -f - >/dev/null <<YAML
apiVersion: v1
kind: Node
metadata:
  name: $1
  labels: {topology.kubernetes.io/region: $3, topology.kubernetes.io/zone: $2}
YAML
  set_ready "$1" True
}

# Sets the Ready condition of Node $1 to $2 (True or False), as a kubelet
# (or the node lifecycle controller) would.
set_ready() {
  local now
  now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
  kubectl patch node "$1" --subresource=status --type=merge -p \
    "{\"status\":{\"conditions\":[{\"type\":\"Ready\",\"status\":\"$2\",\"reason\":\"Test\",\"lastHeartbeatTime\":\"$now\",\"lastTransitionTime\":\"$now\"}]}}" \
    >/dev/null
}

# The CRDs and the JukeCluster $1 of cluster $2 in region $3, with the
# pool's etcd.
add_juke_cluster() {
  kubectl apply -f "$root/deploy/helm/juke/crds/" >/dev/null
  kubectl wait --for condition=established --timeout=60s \
    crd/jukeclusters.juke.io crd/jukenodes.juke.io >/dev/null
  kubectl create namespace juke-system >/dev/null
  kubectl apply -f - >/dev/null <<YAML
apiVersion: juke.io/v1alpha1
kind: JukeCluster
metadata: {name: $1}
spec:
  pool: pool-1
  clusterName: $2
  defaultRegion: $3
  etcdEndpoints: ["$JUKE_ETCD"]
YAML
}

# Starts an operator named $1 against $KUBECONFIG; its pid goes to
# $dir/$1.pid, its log to $dir/$1.log.
start_operator() {
  local name=$1
  shift
  "$build/src/operator/juke-operator" --kubeconfig="$KUBECONFIG" \
    --namespace=juke-system --identity="$name" --not_ready_grace=3s \
    --resync=1s --lease_duration=4s --renew_deadline=3s --retry_period=1s \
    --watch_timeout=${WATCH_TIMEOUT:-5s} --log_levels=info,kube=debug "$@" \
    >>"$dir/$name.log" 2>&1 &
  echo $! >"$dir/$name.pid"
}

stop_operator() {
  local pid
  pid=$(cat "$dir/$1.pid" 2>/dev/null) || return 0
  kill "${2:--TERM}" "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  rm -f "$dir/$1.pid"
}

lease_holder() {
  kubectl -n juke-system get lease juke-operator -o jsonpath='{.spec.holderIdentity}'
}

# Attaches volume $1 on host $2 in the background; sets $device and
# $agent_pid.
attach_volume() {
  local log=$dir/attach-$1-$2.log
  : >"$log"
  setsid "$build/src/cli/juke" --etcd="$JUKE_ETCD" volume attach "$1" \
    --node="$2" --state-dir="$dir/run-$2" >"$log" 2>&1 </dev/null &
  agent_pid=$!
  device=
  local i
  for ((i = 0; i < 300; i++)); do
    device=$(awk '/^device:/ {print $2}' "$log" || true)
    [[ -n $device ]] && return 0
    kill -0 "$agent_pid" 2>/dev/null || break
    sleep 0.1
  done
  fail "volume $1 did not attach on $2"
}

# Stops an attach agent still running (a test that failed midway), and
# unmounts whatever it left under $dir, so that $dir can be removed.
stop_agent() {
  local i mnt
  if [[ -n ${agent_pid:-} ]] && kill -0 "$agent_pid" 2>/dev/null; then
    kill -TERM "$agent_pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
      kill -0 "$agent_pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$agent_pid" 2>/dev/null || true
  fi
  for mnt in $(awk -v d="$dir/" 'index($5, d) == 1 {print $5}' /proc/self/mountinfo | sort -r); do
    umount -l "$mnt" 2>/dev/null || true
  done
}

# Stops everything a test started under $dir (operators, an attach agent,
# the API servers, the pool) and removes $dir.
cleanup_all() {
  local f
  for f in "$dir"/*.pid; do [[ -f $f ]] && stop_operator "$(basename "$f" .pid)"; done
  stop_agent
  kube_down
  "$root/scripts/local-pool" down --purge --dir "$dir/pool" >/dev/null 2>&1 || true
  rm -rf "$dir"
}

detach_volume() {
  "$build/src/cli/juke" --etcd="$JUKE_ETCD" volume detach "$1" --node="$2" \
    --state-dir="$dir/run-$2" >/dev/null || fail "detach of $1 from $2"
  wait "$agent_pid" 2>/dev/null || true
}

# The number of chunks host $1's daemon last reported on all its disks.
host_chunks() {
  etcd_get "/juke/v1/hosts/$1" | python3 -c '
import json, sys
print(sum(d.get("chunkCount", 0) for d in json.load(sys.stdin).get("disks", [])))'
}

# Whether host $1's daemon reports more than (or, with $2 = none, no)
# chunks.
host_has_chunks() {
  local n
  n=$(host_chunks "$1") || return 1
  if [[ ${2:-} == none ]]; then ((n == 0)); else ((n > 0)); fi
}

# Whether an event with reason $1 exists.
event_seen() {
  kubectl get events --field-selector "reason=$1" -o name | grep -q .
}

# Whether jsonpath $3 of object $1 $2 prints exactly $4.
kube_field_is() {
  [[ $(kubectl get "$1" "$2" -o "jsonpath=$3") == "$4" ]]
}

lease_held_by() { [[ $(lease_holder) == "$1" ]]; }
