#!/usr/bin/env bash
# Installs the Go programs the tests run, from the Go module proxy, pinned
# by version; the go command checks every module against go.sum's checksum
# database (sum.golang.org). Installs into $JUKE_TOOLS/bin (default
# /opt/juke-tools/bin) and skips what is already there at the right version.
#
#   csi-sanity   the CSI sanity suite (github.com/kubernetes-csi/csi-test)
#   helm         Helm, to lint and render the chart
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
