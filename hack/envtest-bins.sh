#!/usr/bin/env bash
# Builds the envtest control plane (kube-apiserver and etcd) from Go modules,
# caches it under bin/envtest/<k8s>-<etcd>/ and prints that directory, ready for
# KUBEBUILDER_ASSETS. A second run finds the cache and prints at once.
#
# Nothing is downloaded but Go modules: kube-apiserver comes from
# k8s.io/kubernetes (built in a throw-away module whose go.mod points every
# staging module that k8s.io/kubernetes replaces locally at its published
# version), etcd from go.etcd.io/etcd/server/v3.
set -euo pipefail

K8S_VERSION=${K8S_VERSION:-v1.37.2}
ETCD_VERSION=${ETCD_VERSION:-v3.6.16}
STAGING_VERSION="v0${K8S_VERSION#v1}"   # v1.37.2 -> v0.37.2

root=$(cd "$(dirname "$0")/.." && pwd)
out="$root/bin/envtest/${K8S_VERSION}-${ETCD_VERSION}"
log() { echo "envtest-bins: $*" >&2; }

# A machine-wide copy outside the work tree lets a fresh clone on a reused
# machine (CI) skip the build too.
shared="${XDG_CACHE_HOME:-$HOME/.cache}/purchase-policy-controller/envtest/${K8S_VERSION}-${ETCD_VERSION}"
mkdir -p "$out"
for bin in kube-apiserver etcd; do
  if [[ ! -x "$out/$bin" && -x "$shared/$bin" ]]; then
    cp "$shared/$bin" "$out/$bin.tmp" && mv "$out/$bin.tmp" "$out/$bin"
  fi
done
if [[ -x "$out/kube-apiserver" && -x "$out/etcd" ]]; then
  echo "$out"
  exit 0
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# build MODULE VERSION PACKAGE BINARY [extra go.mod lines]
build() {
  local module=$1 version=$2 pkg=$3 bin=$4 extra=${5:-}
  local dir="$work/$bin"
  mkdir -p "$dir"
  printf 'module envtest.local/%s\n\ngo 1.26\n\nrequire %s %s\n%s\n' "$bin" "$module" "$version" "$extra" >"$dir/go.mod"
  printf 'package tools\n\nimport _ "%s"\n' "$pkg" >"$dir/tools.go"
  (
    cd "$dir"
    log "resolving $module@$version"
    GOFLAGS=-mod=mod go mod tidy >&2
    log "compiling $bin from $module@$version (kube-apiserver takes ~5 minutes cold on 2 cores)"
    local start=$SECONDS
    CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o "$out/$bin.tmp" "$pkg" >&2 &
    local pid=$!
    while kill -0 "$pid" 2>/dev/null; do
      sleep 15
      kill -0 "$pid" 2>/dev/null && log "  still compiling $bin ... $((SECONDS - start))s"
    done
    wait "$pid"
    mv "$out/$bin.tmp" "$out/$bin"
    log "built $out/$bin in $((SECONDS - start))s"
  )
}

if [[ ! -x "$out/etcd" ]]; then
  build go.etcd.io/etcd/server/v3 "$ETCD_VERSION" go.etcd.io/etcd/server/v3 etcd
fi

if [[ ! -x "$out/kube-apiserver" ]]; then
  modfile=$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
  replaces=$(sed -n "s#^[[:space:]]*\(k8s.io/[a-z0-9-]*\) => ./staging/src/.*#replace \1 => \1 $STAGING_VERSION#p" "$modfile")
  build k8s.io/kubernetes "$K8S_VERSION" k8s.io/kubernetes/cmd/kube-apiserver kube-apiserver "$replaces"
fi

mkdir -p "$shared" && cp "$out/kube-apiserver" "$out/etcd" "$shared/" 2>/dev/null || true
echo "$out"
