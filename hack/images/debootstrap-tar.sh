#!/usr/bin/env bash
# Make a lean Debian bookworm root filesystem tarball with mmdebstrap (minbase
# variant), like the official slim images: no docs, man pages or locales, no apt
# lists or caches, and the official images' apt settings that keep later
# `apt-get install` layers small (docker-clean, no translations, gzipped lists). Base images are made here because no image registry is
# reachable. Usage: debootstrap-tar.sh OUT.tar [extra package ...]
set -euo pipefail
out="$1"; shift
include=""
if [ "$#" -gt 0 ]; then include="--include=$(IFS=,; echo "$*")"; fi
suite=bookworm
mirror="${BERTH_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
security="${BERTH_DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}"
# The host's apt may be pointed at a frozen snapshot whose Release files are past their
# Valid-Until date; carry that one setting over when the host has it, so RUN apt-get
# steps in the built images behave like the host's apt.
aptopts=()
if apt-config dump 2>/dev/null | grep -q '^Acquire::Check-Valid-Until "false"'; then
  aptopts+=(--aptopt='Acquire::Check-Valid-Until "false"')
fi
tmp="$out.tmp.$$"
trap 'rm -f "$tmp"' EXIT
# merged-usr hook: make the merged /usr layout directly instead of installing usrmerge (and
# the perl it drags in).
mmdebstrap --quiet --mode=root --variant=minbase --format=tar \
  --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
  ${include:+"$include"} "${aptopts[@]}" \
  --dpkgopt='path-exclude=/usr/share/doc/*' \
  --dpkgopt='path-include=/usr/share/doc/*/copyright' \
  --dpkgopt='path-exclude=/usr/share/man/*' \
  --dpkgopt='path-exclude=/usr/share/info/*' \
  --dpkgopt='path-exclude=/usr/share/locale/*' \
  --dpkgopt='path-include=/usr/share/locale/locale.alias' \
  --dpkgopt='path-exclude=/usr/share/lintian/*' \
  --aptopt='APT::Install-Recommends "false"' \
  --customize-hook='printf "%s\n" "DPkg::Post-Invoke { \"rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true\"; };" "APT::Update::Post-Invoke { \"rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true\"; };" "Dir::Cache::pkgcache \"\";" "Dir::Cache::srcpkgcache \"\";" > "$1"/etc/apt/apt.conf.d/docker-clean' \
  --customize-hook='printf "%s\n" "Acquire::Languages \"none\";" > "$1"/etc/apt/apt.conf.d/docker-no-languages' \
  --customize-hook='printf "%s\n" "Acquire::GzipIndexes \"true\";" > "$1"/etc/apt/apt.conf.d/docker-gzip-indexes' \
  --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*.bin "$1"/var/cache/ldconfig/aux-cache "$1"/var/log/*.log "$1"/var/log/apt/*' \
  "$suite" "$tmp" \
  "deb $mirror $suite main" \
  "deb $mirror $suite-updates main" \
  "deb $security $suite-security main"
mv "$tmp" "$out"
trap - EXIT
