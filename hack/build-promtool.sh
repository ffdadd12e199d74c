#!/usr/bin/env bash
# Build promtool (Prometheus's rule checker and rule unit-test runner, used by the chart's
# PrometheusRule tests) from the Go module proxy at the version pinned in hack/promtool/go.mod,
# into a cache directory keyed by those pins. Idempotent: a warm cache returns at once.
# Prints the binary's path as its last line.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache_root="${BERTH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/berth}"
version="$(awk '$1=="github.com/prometheus/prometheus" {print $2; exit}' "$here/promtool/go.mod")"
key="$(cat "$here/build-promtool.sh" "$here/promtool/go.mod" "$here/promtool/go.sum" | sha256sum | cut -c1-12)"
bin="$cache_root/promtool-$version-$key/bin"
if [ -x "$bin/promtool" ]; then
  echo "$bin/promtool"
  exit 0
fi
command -v go >/dev/null || { echo "build-promtool: 'go' is not on PATH; install Go 1.26.7+ (Prometheus's go.mod asks for it)" >&2; exit 1; }
mkdir -p "$bin"
start=$(date +%s)
echo ">> cold build of promtool $version into $bin (several minutes on 2 cores; later runs reuse the cache)" >&2
(cd "$here/promtool" && CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o "$bin/.promtool.tmp" github.com/prometheus/prometheus/cmd/promtool)
mv "$bin/.promtool.tmp" "$bin/promtool"
echo ">> promtool built in $(( $(date +%s) - start ))s" >&2
echo "$bin/promtool"
