#!/usr/bin/env bash
# Build Ory Hydra (the OAuth 2.0 / OIDC server of the Agent Auth integration tests) from the
# Go module proxy at the version pinned in hack/hydra/go.mod, into a cache directory keyed by
# those pins. CGO off: Hydra runs on the tests' Postgres, not SQLite. Idempotent: a warm cache
# returns at once. Prints the binary's path as its last line.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache_root="${BERTH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/berth}"
version="$(awk '$1=="github.com/ory/hydra/v2" {print $2; exit}' "$here/hydra/go.mod")"
key="$(cat "$here/build-hydra.sh" "$here/hydra/go.mod" "$here/hydra/go.sum" | sha256sum | cut -c1-12)"
bin="$cache_root/hydra-$version-$key/bin"
if [ -x "$bin/hydra" ]; then
  echo "$bin/hydra"
  exit 0
fi
command -v go >/dev/null || { echo "build-hydra: 'go' is not on PATH; install Go 1.26+" >&2; exit 1; }
mkdir -p "$bin"
start=$(date +%s)
echo ">> cold build of Ory Hydra $version into $bin (a few minutes on 2 cores; later runs reuse the cache)" >&2
(cd "$here/hydra" && CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o "$bin/.hydra.tmp" github.com/ory/hydra/v2)
mv "$bin/.hydra.tmp" "$bin/hydra"
echo ">> hydra built in $(( $(date +%s) - start ))s" >&2
echo "$bin/hydra"
