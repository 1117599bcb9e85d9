# A real Kubernetes API server for tests, sourced by test scripts:
#
#   source tests/kube/cluster.sh
#   kube_up "$dir"          # etcd + kube-apiserver; exports KUBECONFIG
#   kubectl get nodes
#   kube_down               # (also on EXIT when the caller traps it)
#
# etcd comes from Debian's package; kube-apiserver and kubectl are built
# from the Kubernetes Go modules by scripts/install-go-tools.sh. Everything
# listens on loopback ports picked free at start. Authentication is one
# static token in group system:masters; privileged pods are allowed, as on
# a cluster that runs CSI node plugins.

KUBE_TOOLS=${JUKE_TOOLS:-/opt/juke-tools}/bin
kubectl() { "$KUBE_TOOLS/kubectl" "$@"; }

_kube_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

kube_up() {
  KUBE_DIR=$1
  mkdir -p "$KUBE_DIR"
  local client peer secure
  client=$(_kube_port); peer=$(_kube_port); secure=$(_kube_port)
  etcd --data-dir "$KUBE_DIR/etcd" \
    --listen-client-urls "http://127.0.0.1:$client" \
    --advertise-client-urls "http://127.0.0.1:$client" \
    --listen-peer-urls "http://127.0.0.1:$peer" >"$KUBE_DIR/etcd.log" 2>&1 &
  KUBE_ETCD_PID=$!
  openssl genrsa -out "$KUBE_DIR/sa.key" 2048 2>/dev/null
  echo 'test-token,admin,admin-uid,"system:masters"' >"$KUBE_DIR/tokens.csv"
  "$KUBE_TOOLS/kube-apiserver" \
    --etcd-servers="http://127.0.0.1:$client" \
    --secure-port="$secure" --bind-address=127.0.0.1 \
    --advertise-address=127.0.0.1 --endpoint-reconciler-type=none \
    --cert-dir="$KUBE_DIR/certs" --token-auth-file="$KUBE_DIR/tokens.csv" \
    --authorization-mode=RBAC --allow-privileged=true \
    --service-account-issuer=https://kubernetes.default.svc \
    --service-account-key-file="$KUBE_DIR/sa.key" \
    --service-account-signing-key-file="$KUBE_DIR/sa.key" \
    --service-cluster-ip-range=10.96.0.0/16 >"$KUBE_DIR/apiserver.log" 2>&1 &
  KUBE_APISERVER_PID=$!
  cat >"$KUBE_DIR/kubeconfig" <<KUBECONFIG
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
  export KUBECONFIG=$KUBE_DIR/kubeconfig
  local i
  for i in $(seq 240); do
    if kubectl get --raw /readyz >/dev/null 2>&1; then return 0; fi
    if ! kill -0 "$KUBE_APISERVER_PID" 2>/dev/null; then break; fi
    sleep 0.5
  done
  echo "kube_up: the API server did not become ready; its log ends:" >&2
  tail -n 20 "$KUBE_DIR/apiserver.log" >&2
  return 1
}

kube_down() {
  local pid
  for pid in ${KUBE_APISERVER_PID:-} ${KUBE_ETCD_PID:-}; do
    # wait returns the status the signal gave; that is not a failure here.
    kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
  done
  KUBE_APISERVER_PID= KUBE_ETCD_PID=
  return 0
}
