#!/usr/bin/env bash
# Installs the Go programs the tests run, from the Go module proxy, pinned
# by version; the go command checks every module against go.sum's checksum
# database (sum.golang.org). Installs into $JUKE_TOOLS/bin (default
# /opt/juke-tools/bin) and skips what is already there at the right version.
#
#   csi-sanity   the CSI sanity suite (github.com/kubernetes-csi/csi-test)
#   helm         Helm, to lint and render the chart
#   kube-apiserver, kube-controller-manager, kubectl
#                built from the Kubernetes Go modules that tools/kube/go.mod
#                pins (with go.sum), for the tests against a real API server
#   csi-provisioner
#                built from its Go module as tools/provisioner/go.mod pins it
set -euo pipefail
tools=${JUKE_TOOLS:-/opt/juke-tools}
mkdir -p "$tools/bin"

# module@version  binary
pins=(
  "github.com/kubernetes-csi/csi-test/v5/cmd/csi-sanity@v5.4.0 csi-sanity"
  "helm.sh/helm/v3/cmd/helm@v3.21.4 helm"
)

for pin in "${pins[@]}"; do
  read -r module bin <<<"$pin"
  stamp=$tools/bin/.$bin.version
  if [[ -x $tools/bin/$bin && $(cat "$stamp" 2>/dev/null) == "$module" ]]; then
    continue
  fi
  echo "install-go-tools: go install $module"
  GOBIN=$tools/bin GOFLAGS=-mod=mod go install "$module"
  echo "$module" >"$stamp"
done

# Kubernetes from its Go modules, as tools/kube/go.mod and go.sum pin them.
kube=$(cd "$(dirname "$0")/../tools/kube" && pwd)
stamp=$tools/bin/.kube.version
want=$(cat "$kube/go.mod" "$kube/go.sum" | sha256sum | cut -d' ' -f1)
if [[ $(cat "$stamp" 2>/dev/null) != "$want" ]]; then
  for cmd in kube-apiserver kube-controller-manager kubectl; do
    echo "install-go-tools: go build k8s.io/kubernetes/cmd/$cmd"
    (cd "$kube" && GOFLAGS=-mod=readonly go build -o "$tools/bin/$cmd" \
      "k8s.io/kubernetes/cmd/$cmd")
  done
  echo "$want" >"$stamp"
fi

# csi-provisioner from its Go module, as tools/provisioner pins it.
prov=$(cd "$(dirname "$0")/../tools/provisioner" && pwd)
stamp=$tools/bin/.csi-provisioner.version
want=$(cat "$prov/go.mod" "$prov/go.sum" | sha256sum | cut -d' ' -f1)
if [[ $(cat "$stamp" 2>/dev/null) != "$want" ]]; then
  echo "install-go-tools: go build csi-provisioner"
  (cd "$prov" && GOFLAGS=-mod=readonly go build -o "$tools/bin/csi-provisioner" \
    github.com/kubernetes-csi/external-provisioner/v5/cmd/csi-provisioner)
  echo "$want" >"$stamp"
fi
