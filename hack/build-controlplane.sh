#!/usr/bin/env bash
# Build the local test control plane (etcd, kube-apiserver, kube-controller-manager,
# kube-scheduler, kwok) from the official Go modules pinned in hack/controlplane and
# hack/kwok, into a cache directory keyed by those pins. Idempotent: a warm cache
# returns at once. Prints the bin directory as its last line.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache_root="${BERTH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/berth}"
key="$(cd "$here" && cat build-controlplane.sh controlplane/go.mod controlplane/go.sum kwok/go.mod kwok/go.sum \
        $(find controlplane kwok -name '*.go' | sort) | sha256sum | cut -c1-12)"
k8s_version="$(awk '$1=="k8s.io/kubernetes" {print $2; exit}' "$here/controlplane/go.mod")"
bin="$cache_root/controlplane-$k8s_version-$key/bin"
binaries=(etcd kube-apiserver kube-controller-manager kube-scheduler kwok kwok-stages.yaml)

missing=()
for b in "${binaries[@]}"; do [ -s "$bin/$b" ] || missing+=("$b"); done
if [ "${#missing[@]}" -eq 0 ]; then
  echo "$bin"
  exit 0
fi

command -v go >/dev/null || { echo "build-controlplane: 'go' is not on PATH; install Go 1.26+" >&2; exit 1; }
mkdir -p "$bin"
# Stamp the release into the Kubernetes binaries: clients that read the server's
# version (kubectl version, a chart's kubeVersion constraint) otherwise see v0.0.0-master.
vpkg=k8s.io/component-base/version
k8s_ldflags="-s -w -X $vpkg.gitVersion=$k8s_version -X $vpkg.gitMajor=1 -X $vpkg.gitMinor=$(echo "$k8s_version" | cut -d. -f2) -X $vpkg.gitTreeState=clean -X $vpkg.buildDate=1970-01-01T00:00:00Z"
start=$(date +%s)
echo ">> cold build of the control plane (Kubernetes $k8s_version) into $bin" >&2
echo ">> building: ${missing[*]} (this takes several minutes on 2 cores; later runs reuse the cache)" >&2
for b in "${missing[@]}"; do
  t0=$(date +%s)
  case "$b" in
    etcd) (cd "$here/controlplane" && go build -trimpath -ldflags='-s -w' -o "$bin/.etcd.tmp" ./cmd/etcd) ;;
    kwok) (cd "$here/kwok" && go build -trimpath -ldflags='-s -w' -o "$bin/.kwok.tmp" sigs.k8s.io/kwok/cmd/kwok) ;;
    kwok-stages.yaml) (cd "$here/kwok" && go run ./cmd/kwok-stages > "$bin/.$b.tmp") ;;
    *) (cd "$here/controlplane" && go build -trimpath -ldflags="$k8s_ldflags" -o "$bin/.$b.tmp" "k8s.io/kubernetes/cmd/$b") ;;
  esac
  mv "$bin/.$b.tmp" "$bin/$b"
  echo ">>   $b built in $(( $(date +%s) - t0 ))s" >&2
done
echo ">> control plane built in $(( $(date +%s) - start ))s" >&2
echo "$bin"
