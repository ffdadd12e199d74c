#!/usr/bin/env bash
# Vet and test the Go module auth_proxy/ (auth proxy, executor, netinit).
# Uses Go's build cache (GOCACHE, default ~/.cache/go-build), so warm runs are fast.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
command -v go >/dev/null || { echo "test-go: 'go' is not on PATH; install Go 1.26+ (https://go.dev/dl)" >&2; exit 1; }
cd "$here/auth_proxy"
echo ">> go vet ./... (in auth_proxy/, $(go version | cut -d' ' -f3))"
go vet ./...
echo ">> go test ./... (in auth_proxy/)"
go test -count=1 ./...
