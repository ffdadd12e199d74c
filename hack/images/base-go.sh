#!/usr/bin/env bash
# Make the local Go builder base (stands in for golang:1.26): Debian bookworm minbase with
# ca-certificates from mmdebstrap, plus this machine's Go toolchain copied to /usr/local/go
# (GOROOT) with the environment of the official image (GOPATH=/go, GOTOOLCHAIN=local).
# Network settings (GOPROXY, GOSUMDB, ...) are not baked in: the build passes them as build
# arguments read from the environment. Usage: base-go.sh REF [GOROOT]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ref="$1"
goroot="${2:-$(go env GOROOT)}"
work="$(mktemp -d)"
ctr=""
cleanup() { [ -z "$ctr" ] || buildah rm "$ctr" >/dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT
bash "$here/debootstrap-tar.sh" "$work/rootfs.tar" ca-certificates
ctr="$(buildah from scratch)"
buildah add "$ctr" "$work/rootfs.tar" / >/dev/null
buildah copy "$ctr" "$goroot" /usr/local/go >/dev/null
version="$("$goroot/bin/go" env GOVERSION)"
buildah config \
  --env PATH=/go/bin:/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  --env GOPATH=/go --env GOTOOLCHAIN=local --env "GOLANG_VERSION=${version#go}" \
  --workingdir /go --cmd bash --label org.opencontainers.image.title=berth-base-go "$ctr"
buildah run "$ctr" -- mkdir -p /go/src /go/bin
buildah commit --quiet --rm "$ctr" "$ref" >/dev/null
ctr=""
