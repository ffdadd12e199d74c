#!/usr/bin/env bash
# Build the static sandbox binaries (berth-auth-proxy, berth-executor,
# berth-netinit; CGO_ENABLED=0) from auth_proxy/ into a cache directory keyed by
# the module's sources. Idempotent: a warm cache returns at once. Prints the bin
# directory as its last line (used by the netns test and bench/proxy_overhead.py).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache_root="${BERTH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/berth}"
key="$(cd "$here/auth_proxy" && cat go.mod $(find . -name '*.go' ! -name '*_test.go' | sort) | sha256sum | cut -c1-12)"
bin="$cache_root/auth-proxy-$key/bin"
names=(berth-auth-proxy berth-executor berth-netinit)
missing=()
for b in "${names[@]}"; do [ -x "$bin/$b" ] || missing+=("$b"); done
if [ "${#missing[@]}" -gt 0 ]; then
  command -v go >/dev/null || { echo "build-auth-proxy: 'go' is not on PATH; install Go 1.26+" >&2; exit 1; }
  mkdir -p "$bin"
  echo ">> building ${missing[*]} (CGO_ENABLED=0) into $bin" >&2
  for b in "${missing[@]}"; do
    (cd "$here/auth_proxy" && CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o "$bin/.$b.tmp" "./cmd/$b")
    mv "$bin/.$b.tmp" "$bin/$b"
  done
fi
echo "$bin"
