#!/usr/bin/env bash
# Installs everything Juke's build and tests need on a Debian 12 machine.
# Safe to run again: apt-get and go skip what is already in place.
set -euo pipefail

if [[ $(id -u) -ne 0 ]]; then
  echo "install-deps: run as root (it calls apt-get)" >&2
  exit 1
fi

packages=(
  # Build tools.
  build-essential cmake ninja-build ccache pkg-config git
  clang-format clang-tidy
  # Libraries.
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libabsl-dev librocksdb-dev liburing-dev libspdlog-dev libfmt-dev
  libgtest-dev libgmock-dev libisal-dev prometheus-cpp-dev libcivetweb-dev
  libfuse3-dev fuse3 nlohmann-json3-dev libcurl4-openssl-dev zlib1g-dev
  libxxhash-dev libyaml-cpp-dev
  # Real parts the tests and the local pool use.
  etcd-server etcd-client fio iproute2 procps util-linux e2fsprogs xfsprogs
  psmisc curl ca-certificates python3
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' \
    || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The Debian etcd-server package starts a system etcd on the default ports;
# Juke starts its own etcd processes, so keep the system one out of the way.
if command -v systemctl >/dev/null && systemctl is-active --quiet etcd 2>/dev/null; then
  systemctl disable --now etcd >/dev/null 2>&1 || true
fi

# Go fetches pinned modules (the etcd API protos) at build time. Any Go from
# 1.19 on works; Debian 12's golang-go is enough where none is installed.
if ! command -v go >/dev/null; then
  apt-get install -y -qq --no-install-recommends golang-go >/dev/null
fi
# Go programs the tests run (csi-sanity), pinned by version.
"$(dirname "$0")/install-go-tools.sh"
echo "install-deps: done"
