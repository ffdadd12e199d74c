#!/usr/bin/env bash
# Install the Debian packages the tests use when their binaries are missing:
# postgresql and redis-server (tests start their own servers from these
# binaries; no system service is used), chromium for the browser client test,
# iptables for the sandbox egress-redirection test in network namespaces.
set -euo pipefail
have_pg() { ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1; }
have_redis() { command -v redis-server >/dev/null 2>&1; }
pkgs=()
have_pg || pkgs+=(postgresql)
have_redis || pkgs+=(redis-server)
command -v chromium >/dev/null 2>&1 || pkgs+=(chromium)
command -v iptables >/dev/null 2>&1 || pkgs+=(iptables)
# promtool (checks and unit-tests the chart's PrometheusRule) ships in Debian's prometheus;
# the server it also installs is never started (policy-rc.d below).
command -v promtool >/dev/null 2>&1 || pkgs+=(prometheus)
command -v ip >/dev/null 2>&1 || pkgs+=(iproute2)
# A Python an unprivileged user can run (the netns test's sandbox process runs as nobody).
[ -x /usr/bin/python3 ] || pkgs+=(python3)
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if [ "${#pkgs[@]}" -eq 0 ]; then
  # pgvector for semantic store search tests (built from Debian's source where not packaged).
  bash "$here/ensure-pgvector.sh"
  exit 0
fi
echo ">> installing Debian packages: ${pkgs[*]}"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
# Keep apt from starting system-wide services: the tests run their own servers.
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' | $sudo tee /usr/sbin/policy-rc.d >/dev/null
  $sudo chmod +x /usr/sbin/policy-rc.d
  trap '$sudo rm -f /usr/sbin/policy-rc.d' EXIT
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
echo ">> installed ${pkgs[*]}"
bash "$here/ensure-pgvector.sh"
