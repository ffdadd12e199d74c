#!/usr/bin/env bash
# Build crane (github.com/google/go-containerregistry/cmd/crane, pinned in hack/images/crane)
# into a cache directory keyed by the pins. The e2e tests run `crane registry serve` as the
# local OCI registry that `make push` targets, since no registry is reachable here.
# Idempotent: a warm cache returns at once. Prints the crane binary's path as its last line.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache_root="${BERTH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/berth}"
key="$(cd "$here" && cat build-crane.sh crane/go.mod crane/go.sum crane/tools.go | sha256sum | cut -c1-12)"
version="$(awk '$1=="require" && $2=="github.com/google/go-containerregistry" {print $3; exit}' "$here/crane/go.mod")"
bin="$cache_root/crane-$version-$key/bin"
if [ -x "$bin/crane" ]; then
  echo "$bin/crane"
  exit 0
fi
command -v go >/dev/null || { echo "build-crane: 'go' is not on PATH; install Go 1.26+" >&2; exit 1; }
mkdir -p "$bin"
t0=$(date +%s)
echo ">> cold build of crane $version into $bin" >&2
(cd "$here/crane" && go build -trimpath -ldflags='-s -w' -o "$bin/.crane.tmp" github.com/google/go-containerregistry/cmd/crane)
mv "$bin/.crane.tmp" "$bin/crane"
echo ">> crane built in $(( $(date +%s) - t0 ))s" >&2
echo "$bin/crane"
