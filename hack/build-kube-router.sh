#!/usr/bin/env bash
# Build kube-router (the NetworkPolicy engine of Berth's real e2e node: only its firewall
# controller runs there) from the Go module proxy at the version pinned in
# hack/kube-router/go.mod, into a cache directory keyed by those pins. Kept apart from
# hack/build-node.sh so a change here does not rebuild kubelet and containerd. Needs Debian's
# ipset at run time (hack/ensure-node-debs.sh). Idempotent: a warm cache returns at once.
# Prints the binary's path as its last line.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache_root="${BERTH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/berth}"
mod="$here/kube-router"
version="$(awk '{for (i = 1; i < NF; i++) if ($i == "github.com/cloudnativelabs/kube-router/v2") {print $(i+1); exit}}' "$mod/go.mod")"
key="$(cat "$here/build-kube-router.sh" "$mod/go.mod" "$mod/go.sum" | sha256sum | cut -c1-12)"
bin="$cache_root/kube-router-$version-$key/bin"
if [ -x "$bin/kube-router" ]; then
  echo "$bin/kube-router"
  exit 0
fi
command -v go >/dev/null || { echo "build-kube-router: 'go' is not on PATH; install Go 1.26+" >&2; exit 1; }
mkdir -p "$bin"
start=$(date +%s)
echo ">> cold build of kube-router $version into $bin (about 5 min on 2 cores; later runs reuse the cache)" >&2
(cd "$mod" && CGO_ENABLED=0 go build -trimpath \
  -ldflags="-s -w -X github.com/cloudnativelabs/kube-router/v2/pkg/version.Version=$version" \
  -o "$bin/.kube-router.tmp" github.com/cloudnativelabs/kube-router/v2/cmd/kube-router)
mv "$bin/.kube-router.tmp" "$bin/kube-router"
echo ">> kube-router built in $(( $(date +%s) - start ))s" >&2
echo "$bin/kube-router"
