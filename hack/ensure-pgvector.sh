#!/usr/bin/env bash
# Install pgvector into the local PostgreSQL (tests of semantic store search need it) when it
# is missing. Debian's `postgresql-NN-pgvector` is used when the configured apt sources have
# it; bookworm does not package it, so otherwise Debian's own pgvector source package
# (trixie's, fetched with `apt-get source` through a temporary source list) is built against
# `postgresql-server-dev-NN` with PGXS. Idempotent: does nothing when vector.control exists.
set -euo pipefail
pg_config_bin="$(ls /usr/lib/postgresql/*/bin/pg_config 2>/dev/null | sort -V | tail -1 || true)"
if [ -z "$pg_config_bin" ]; then
  major="$(ls /usr/lib/postgresql 2>/dev/null | sort -V | tail -1 || true)"
else
  major="$("$pg_config_bin" --version | sed -E 's/^PostgreSQL ([0-9]+).*/\1/')"
fi
if [ -z "$major" ]; then
  echo ">> pgvector: no local PostgreSQL found (run hack/ensure-debs.sh first)" >&2
  exit 1
fi
if [ -e "/usr/share/postgresql/$major/extension/vector.control" ]; then
  exit 0
fi
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
# Keep apt from starting system-wide services: the tests run their own servers.
made_policy=""
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' | $sudo tee /usr/sbin/policy-rc.d >/dev/null
  $sudo chmod +x /usr/sbin/policy-rc.d
  made_policy=1
fi
work="$(mktemp -d)"
cleanup() {
  rm -rf "$work"
  if [ -n "$made_policy" ]; then $sudo rm -f /usr/sbin/policy-rc.d; fi
}
trap cleanup EXIT
$sudo apt-get update -qq
if [ -n "$(apt-cache policy "postgresql-$major-pgvector" 2>/dev/null | sed -n 's/^ *Candidate: //p' | grep -v '(none)')" ]; then
  echo ">> installing postgresql-$major-pgvector"
  $sudo apt-get install -y -qq --no-install-recommends "postgresql-$major-pgvector" >/dev/null
  exit 0
fi
echo ">> building pgvector for PostgreSQL $major from Debian's pgvector source package"
if [ ! -e "/usr/lib/postgresql/$major/lib/pgxs/src/makefiles/pgxs.mk" ]; then
  $sudo apt-get install -y -qq --no-install-recommends "postgresql-server-dev-$major" make gcc >/dev/null
fi
printf 'deb-src http://deb.debian.org/debian trixie main\n' >"$work/src.list"
apt_src=(-o "Dir::Etc::sourcelist=$work/src.list" -o "Dir::Etc::sourceparts=-"
  -o "APT::Get::List-Cleanup=0")
$sudo apt-get "${apt_src[@]}" update -qq
(cd "$work" && $sudo apt-get "${apt_src[@]}" source --download-only pgvector >/dev/null 2>&1)
tar -C "$work" -xzf "$work"/pgvector_*.orig.tar.gz
src="$(find "$work" -maxdepth 1 -type d -name 'pgvector-*' | head -1)"
# OPTFLAGS="" drops -march=native (the build runs on any x86-64); with_llvm=no skips the
# JIT bitcode, which would need clang.
make -C "$src" -s -j2 PG_CONFIG="/usr/lib/postgresql/$major/bin/pg_config" OPTFLAGS="" with_llvm=no >/dev/null
$sudo make -C "$src" -s install PG_CONFIG="/usr/lib/postgresql/$major/bin/pg_config" OPTFLAGS="" with_llvm=no >/dev/null
echo ">> installed pgvector $(basename "$src" | sed 's/pgvector-//') for PostgreSQL $major"
