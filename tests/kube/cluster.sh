# A real Kubernetes API server for tests, sourced by test scripts:
#
#   source tests/kube/cluster.sh
#   kube_up "$dir"              # etcd + kube-apiserver; exports KUBECONFIG
#   kubectl get nodes
#   kube_restart_apiserver "$dir"  # stops and starts the API server
#   kube_down                   # every server started (also on EXIT when
#                               # the caller traps it)
#
# kube_up may be called for several directories: each is a cluster of its
# own, with its kubeconfig at DIR/kubeconfig (KUBECONFIG points at the last
# one started).
#
# etcd comes from Debian's package; kube-apiserver and kubectl are built
# from the Kubernetes Go modules by scripts/install-go-tools.sh. Everything
# listens on loopback ports picked free at start. Authentication is one
# static token in group system:masters; privileged pods are allowed, as on
# a cluster that runs CSI node plugins.

KUBE_TOOLS=${JUKE_TOOLS:-/opt/juke-tools}/bin
KUBE_DIRS=()
kubectl() { "$KUBE_TOOLS/kubectl" "$@"; }

_kube_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

_kube_alive() { [[ -f $1 ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

# Starts the API server of the cluster in $1 with the ports kube_up chose.
_kube_start_apiserver() {
  local dir=$1
  "$KUBE_TOOLS/kube-apiserver" \
    --etcd-servers="http://127.0.0.1:$(cat "$dir/etcd.port")" \
    --secure-port="$(cat "$dir/apiserver.port")" --bind-address=127.0.0.1 \
    --advertise-address=127.0.0.1 --endpoint-reconciler-type=none \
    --cert-dir="$dir/certs" --token-auth-file="$dir/tokens.csv" \
    --authorization-mode=RBAC --allow-privileged=true \
    --service-account-issuer=https://kubernetes.default.svc \
    --service-account-key-file="$dir/sa.key" \
    --service-account-signing-key-file="$dir/sa.key" \
    --service-cluster-ip-range=10.96.0.0/16 ${KUBE_APISERVER_ARGS:-} \
    >>"$dir/apiserver.log" 2>&1 &
  echo $! >"$dir/apiserver.pid"
  local i
  for i in $(seq 240); do
    if KUBECONFIG=$dir/kubeconfig kubectl get --raw /readyz >/dev/null 2>&1; then
      return 0
    fi
    _kube_alive "$dir/apiserver.pid" || break
    sleep 0.5
  done
  echo "kube: the API server in $dir did not become ready; its log ends:" >&2
  tail -n 20 "$dir/apiserver.log" >&2
  return 1
}

_kube_stop() {
  local f=$1 pid
  _kube_alive "$f" || return 0
  pid=$(cat "$f")
  kill "$pid" 2>/dev/null || true
  # wait returns the status the signal gave; that is not a failure here.
  wait "$pid" 2>/dev/null || true
  while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
  rm -f "$f"
}

kube_up() {
  local dir=$1 client peer secure
  KUBE_DIR=$dir
  mkdir -p "$dir"
  KUBE_DIRS+=("$dir")
  client=$(_kube_port); peer=$(_kube_port); secure=$(_kube_port)
  echo "$client" >"$dir/etcd.port"
  echo "$secure" >"$dir/apiserver.port"
  etcd --data-dir "$dir/etcd" \
    --listen-client-urls "http://127.0.0.1:$client" \
    --advertise-client-urls "http://127.0.0.1:$client" \
    --listen-peer-urls "http://127.0.0.1:$peer" >"$dir/etcd.log" 2>&1 &
  echo $! >"$dir/etcd.pid"
  openssl genrsa -out "$dir/sa.key" 2048 2>/dev/null
  echo 'test-token,admin,admin-uid,"system:masters"' >"$dir/tokens.csv"
  cat >"$dir/kubeconfig" <<KUBECONFIG
apiVersion: v1
kind: Config
clusters:
  - name: test
    cluster: {server: "https://127.0.0.1:$secure", insecure-skip-tls-verify: true}
users:
  - name: admin
    user: {token: test-token}
contexts:
  - name: test
    context: {cluster: test, user: admin}
current-context: test
KUBECONFIG
  export KUBECONFIG=$dir/kubeconfig
  _kube_start_apiserver "$dir"
}

# The etcd endpoint of the cluster in $1 (its Kubernetes objects).
kube_etcd_endpoint() { echo "127.0.0.1:$(cat "$1/etcd.port")"; }

kube_restart_apiserver() {
  _kube_stop "$1/apiserver.pid"
  _kube_start_apiserver "$1"
}

kube_stop_apiserver() { _kube_stop "$1/apiserver.pid"; }
kube_start_apiserver() { _kube_start_apiserver "$1"; }

kube_down() {
  local dir
  for dir in "${KUBE_DIRS[@]}"; do
    _kube_stop "$dir/apiserver.pid"
    _kube_stop "$dir/etcd.pid"
  done
  KUBE_DIRS=()
  return 0
}
