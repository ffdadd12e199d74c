#!/usr/bin/env bash
# Install the daemonless image tools `make images` uses, when missing: buildah
# (builds the Dockerfiles without a Docker daemon), mmdebstrap (makes the Debian
# root filesystems the base images come from, since no image registry is
# reachable), skopeo (exports archives, pushes to registries), umoci and runc
# (unpack and run an image as an OCI bundle in tests), fuse-overlayfs.
# Idempotent: prints nothing and returns at once when everything is there.
set -euo pipefail
want=(buildah:buildah mmdebstrap:mmdebstrap skopeo:skopeo umoci:umoci runc:runc fuse-overlayfs:fuse-overlayfs)
pkgs=()
for pair in "${want[@]}"; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || pkgs+=("${pair##*:}")
done
# buildah and skopeo read the signature policy; containers-common ships it.
[ -e /etc/containers/policy.json ] || pkgs+=(containers-common)
if [ "${#pkgs[@]}" -eq 0 ]; then
  exit 0
fi
echo ">> installing image tools: ${pkgs[*]}" >&2
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
echo ">> installed ${pkgs[*]}" >&2
