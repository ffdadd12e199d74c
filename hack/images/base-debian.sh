#!/usr/bin/env bash
# Make the local Debian slim base (stands in for debian:bookworm-slim, which no reachable
# registry serves): a minbase root filesystem from mmdebstrap plus passwd (useradd, as the
# official slim image has), committed with buildah.
# Usage: base-debian.sh REF
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ref="$1"
work="$(mktemp -d)"
ctr=""
cleanup() { [ -z "$ctr" ] || buildah rm "$ctr" >/dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT
bash "$here/debootstrap-tar.sh" "$work/rootfs.tar" passwd
ctr="$(buildah from scratch)"
buildah add "$ctr" "$work/rootfs.tar" / >/dev/null
buildah config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  --cmd bash --label org.opencontainers.image.title=berth-base-debian "$ctr"
buildah commit --quiet --rm "$ctr" "$ref" >/dev/null
ctr=""
