#!/usr/bin/env bash
# Install the Debian packages the real e2e node needs when they are missing: runc
# (the OCI runtime containerd's shim calls), the CNI plugins (bridge, host-local,
# loopback, portmap), iptables (kube-proxy, the node's egress guard), iproute2 and
# util-linux (network/mount namespaces: ip, nsenter, unshare), conntrack
# (kube-proxy clears stale UDP entries with it), ipset (kube-router's address sets).
set -euo pipefail
pkgs=()
[ -x /usr/sbin/runc ] || pkgs+=(runc)
[ -x /usr/lib/cni/bridge ] || pkgs+=(containernetworking-plugins)
command -v iptables >/dev/null 2>&1 || pkgs+=(iptables)
command -v ip >/dev/null 2>&1 || pkgs+=(iproute2)
command -v nsenter >/dev/null 2>&1 || pkgs+=(util-linux)
command -v conntrack >/dev/null 2>&1 || pkgs+=(conntrack)
# ipset: kube-router (the node's NetworkPolicy engine) keeps Pod address sets in it.
command -v ipset >/dev/null 2>&1 || [ -x /usr/sbin/ipset ] || pkgs+=(ipset)
if [ "${#pkgs[@]}" -eq 0 ]; then
  exit 0
fi
echo ">> installing Debian packages for the real node: ${pkgs[*]}"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
echo ">> installed ${pkgs[*]}"
