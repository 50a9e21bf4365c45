#!/usr/bin/env bash
# Builds the kubectl-tpp release archives (bin/dist/) and bin/dist/tpp.yaml:
# plugins/tpp.yaml rendered for them (tag and sha256), to try with
# `kubectl krew install --manifest=bin/dist/tpp.yaml --archive=...`.
# Usage: hack/krew-manifest.sh VERSION [os/arch ...] (default: every platform
# of plugins/tpp.yaml; each cold cross-build takes minutes on 2 cores).
set -euo pipefail
version=${1:?usage: hack/krew-manifest.sh VERSION [os/arch ...]}
shift
platforms=("$@")
[ ${#platforms[@]} -gt 0 ] || platforms=(linux/amd64 linux/arm64 darwin/amd64 darwin/arm64 windows/amd64)
root=$(cd "$(dirname "$0")/.." && pwd)
dist=$root/bin/dist
base=https://github.com/tenantpolicy/purchase-policy-controller/releases/download/$version
mkdir -p "$dist"
# the manifest's header, then one entry per archive built
manifest=$(sed -n '/^  platforms:/q;p' "$root/plugins/tpp.yaml" | sed "s/{{ .TagName }}/$version/g")
manifest+=$'\n  platforms:'
for p in "${platforms[@]}"; do
	os=${p%/*} arch=${p#*/} exe=kubectl-tpp
	[ "$os" = windows ] && exe=kubectl-tpp.exe
	work=$(mktemp -d)
	(cd "$root" && CGO_ENABLED=0 GOOS=$os GOARCH=$arch go build -trimpath -ldflags=-s -o "$work/$exe" ./cmd/kubectl-tpp)
	archive=kubectl-tpp_${version}_${os}_${arch}.tar.gz
	tar -C "$work" --owner=0 --group=0 --mtime=@0 -czf "$dist/$archive" "$exe"
	rm -rf "$work"
	sha=$(sha256sum "$dist/$archive" | cut -d' ' -f1)
	manifest+="
    - selector:
        matchLabels: {os: $os, arch: $arch}
      uri: $base/$archive
      sha256: $sha
      bin: $exe"
	echo "built $dist/$archive"
done
printf '%s\n' "$manifest" >"$dist/tpp.yaml"
echo "wrote $dist/tpp.yaml"
