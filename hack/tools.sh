#!/usr/bin/env bash
# Usage: hack/tools.sh helm|kustomize|prometheus-operator-crds
#
# Prints the path of a tool the tests and `make build-installer` run, building
# it first if needed: helm and kustomize from their Go modules, pinned in
# hack/tools/go.mod (a module of its own, so their dependencies never
# constrain the controller's go.mod), cached under bin/tools/<tool>-<version>/
# and in ~/.cache/purchase-policy-controller/tools/ like hack/envtest-bins.sh
# caches the control plane. prometheus-operator-crds prints the directory of
# the Prometheus Operator's published CRD YAML inside its Go module.
#
# Nothing is downloaded but Go modules.
set -euo pipefail

# The Prometheus Operator's root module (the one that ships example/
# prometheus-operator-crd/*.yaml); the proxy serves this version of it.
PROMETHEUS_OPERATOR_VERSION=${PROMETHEUS_OPERATOR_VERSION:-v0.85.0}

root=$(cd "$(dirname "$0")/.." && pwd)
mod="$root/hack/tools"
log() { echo "tools: $*" >&2; }

# module_of TOOL: the module and the package to build.
module_of() {
  case $1 in
    helm) echo "helm.sh/helm/v3 helm.sh/helm/v3/cmd/helm" ;;
    kustomize) echo "sigs.k8s.io/kustomize/kustomize/v5 sigs.k8s.io/kustomize/kustomize/v5" ;;
    *) log "unknown tool $1 (helm, kustomize, prometheus-operator-crds)"; exit 2 ;;
  esac
}

# ldflags_of TOOL VERSION: what the tool's own release build stamps in. Helm
# derives its default Kubernetes version (for `helm template` and lint) from
# them; unset it would be 1.20.
ldflags_of() {
  local flags="-s -w"
  if [[ $1 == helm ]]; then
    local kube minor
    kube=$(cd "$mod" && go list -m -f '{{.Version}}' k8s.io/client-go) # v0.37.0 -> 1.37
    minor=$(echo "$kube" | cut -d. -f2)
    flags+=" -X helm.sh/helm/v3/internal/version.version=$2"
    flags+=" -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$minor"
    flags+=" -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=$minor"
  fi
  echo "$flags"
}

prometheus_operator_crds() {
  local dir
  dir=$(cd "$mod" && go mod download -json "github.com/prometheus-operator/prometheus-operator@$PROMETHEUS_OPERATOR_VERSION" |
    sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
  [[ -d "$dir/example/prometheus-operator-crd" ]] || { log "no CRD directory in prometheus-operator@$PROMETHEUS_OPERATOR_VERSION"; exit 1; }
  echo "$dir/example/prometheus-operator-crd"
}

# build TOOL: prints the binary, from the caches or freshly built.
build() {
  local tool=$1 module pkg version
  read -r module pkg < <(module_of "$tool")
  version=$(cd "$mod" && go list -m -f '{{.Version}}' "$module")
  local out="$root/bin/tools/$tool-$version" shared="${XDG_CACHE_HOME:-$HOME/.cache}/purchase-policy-controller/tools/$tool-$version"
  if [[ ! -x "$out/$tool" && -x "$shared/$tool" ]]; then
    mkdir -p "$out" && cp "$shared/$tool" "$out/$tool.tmp" && mv "$out/$tool.tmp" "$out/$tool"
  fi
  if [[ ! -x "$out/$tool" ]]; then
    mkdir -p "$out"
    log "compiling $tool from $module@$version (cold: helm ~4 minutes, kustomize ~1 minute on 2 cores)"
    local start=$SECONDS
    (cd "$mod" && CGO_ENABLED=0 go build -trimpath -ldflags="$(ldflags_of "$tool" "$version")" -o "$out/$tool.tmp" "$pkg") >&2
    mv "$out/$tool.tmp" "$out/$tool"
    log "built $out/$tool in $((SECONDS - start))s"
    mkdir -p "$shared" && cp "$out/$tool" "$shared/" 2>/dev/null || true
  fi
  echo "$out/$tool"
}

case ${1:-} in
  prometheus-operator-crds) prometheus_operator_crds ;;
  "") log "usage: hack/tools.sh helm|kustomize|prometheus-operator-crds"; exit 2 ;;
  *) build "$1" ;;
esac
