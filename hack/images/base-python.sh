#!/usr/bin/env bash
# Make the local Python base (stands in for python:3.11-slim): Debian bookworm minbase from
# mmdebstrap with Debian's python3 (3.11), python3-venv (so `python -m venv` works),
# python-is-python3 (so `python` works), passwd (groupadd/useradd) and ca-certificates.
# Usage: base-python.sh REF
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ref="$1"
work="$(mktemp -d)"
ctr=""
cleanup() { [ -z "$ctr" ] || buildah rm "$ctr" >/dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT
bash "$here/debootstrap-tar.sh" "$work/rootfs.tar" python3 python3-venv python-is-python3 passwd ca-certificates
ctr="$(buildah from scratch)"
buildah add "$ctr" "$work/rootfs.tar" / >/dev/null
buildah config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  --env LANG=C.UTF-8 --cmd python3 --label org.opencontainers.image.title=berth-base-python "$ctr"
buildah commit --quiet --rm "$ctr" "$ref" >/dev/null
ctr=""
