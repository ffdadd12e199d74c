#!/usr/bin/env bash
# Build (once, cached) the binaries of Berth's real e2e node from the official Go
# modules pinned under hack/: kubelet and kube-proxy from the same Kubernetes release
# as the control plane (hack/controlplane), containerd with its runc shim and ctr
# (hack/node/containerd), and CoreDNS (hack/node/coredns). runc and the CNI plugins
# come from Debian (hack/ensure-node-debs.sh). Idempotent: a warm cache returns at
# once. Prints the bin directory as its last line.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache_root="${BERTH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/berth}"
key="$(cd "$here" && cat build-node.sh controlplane/go.mod controlplane/go.sum \
        node/containerd/go.mod node/containerd/go.sum node/coredns/go.mod node/coredns/go.sum \
        $(find controlplane node -name '*.go' | sort) | sha256sum | cut -c1-12)"
k8s_version="$(awk '$1=="k8s.io/kubernetes" {print $2; exit}' "$here/controlplane/go.mod")"
containerd_version="$(awk '{for (i = 1; i < NF; i++) if ($i == "github.com/containerd/containerd/v2") {print $(i+1); exit}}' "$here/node/containerd/go.mod")"
bin="$cache_root/node-$k8s_version-$key/bin"
binaries=(kubelet kube-proxy containerd containerd-shim-runc-v2 ctr coredns)

missing=()
for b in "${binaries[@]}"; do [ -s "$bin/$b" ] || missing+=("$b"); done
if [ "${#missing[@]}" -eq 0 ]; then
  echo "$bin"
  exit 0
fi

command -v go >/dev/null || { echo "build-node: 'go' is not on PATH; install Go 1.26+" >&2; exit 1; }
mkdir -p "$bin"
# Stamp the release into the Kubernetes binaries: clients that read the node's or the
# server's version (kubectl, a chart's kubeVersion) otherwise see v0.0.0-master.
minor="$(echo "$k8s_version" | cut -d. -f2)"
vpkg=k8s.io/component-base/version
k8s_ldflags="-s -w -X $vpkg.gitVersion=$k8s_version -X $vpkg.gitMajor=1 -X $vpkg.gitMinor=$minor -X $vpkg.gitTreeState=clean -X $vpkg.buildDate=1970-01-01T00:00:00Z"
ctr_ldflags="-s -w -X github.com/containerd/containerd/v2/version.Version=$containerd_version"
start=$(date +%s)
echo ">> cold build of the real node (kubelet $k8s_version, containerd $containerd_version, CoreDNS) into $bin" >&2
echo ">> building: ${missing[*]} (minutes on 2 cores the first time; later runs reuse the cache)" >&2
for b in "${missing[@]}"; do
  t0=$(date +%s)
  case "$b" in
    kubelet|kube-proxy)
      (cd "$here/controlplane" && CGO_ENABLED=0 go build -trimpath -ldflags="$k8s_ldflags" -o "$bin/.$b.tmp" "k8s.io/kubernetes/cmd/$b") ;;
    containerd|containerd-shim-runc-v2|ctr)
      (cd "$here/node/containerd" && CGO_ENABLED=0 go build -trimpath -tags no_btrfs -ldflags="$ctr_ldflags" -o "$bin/.$b.tmp" "github.com/containerd/containerd/v2/cmd/$b") ;;
    coredns)
      (cd "$here/node/coredns" && CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o "$bin/.$b.tmp" github.com/coredns/coredns) ;;
  esac
  mv "$bin/.$b.tmp" "$bin/$b"
  echo ">>   $b built in $(( $(date +%s) - t0 ))s" >&2
done
echo ">> node built in $(( $(date +%s) - start ))s" >&2
echo "$bin"
