#!/usr/bin/env bash
# Create .venv-aegra: a separate virtualenv holding Aegra (PyPI `aegra-api`, the open
# Agent Server re-implementation on Postgres) and its CLI, the second peer of
# bench/runtime_throughput.py. Aegra needs Python >= 3.12 (Berth's .venv is 3.11), so the
# interpreter is $PYTHON, else the first python3.12 / python3.13 found on PATH or under
# pyenv. langgraph and langgraph-sdk are pinned to Berth's versions so every server runs
# the same graph code. Idempotent: does nothing when the pins below have not changed.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venv-aegra"
uv="$root/.venv/bin/uv"
stamp="$venv/.berth-aegra-installed"
pins=("aegra-api==0.11.0" "aegra-cli==0.11.0" "langgraph==1.2.22" "langgraph-sdk==0.4.14")
want="$(printf '%s\n' "${pins[@]}" | cat - "$root/hack/ensure-aegra-venv.sh" | sha256sum | cut -c1-16)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -x "$venv/bin/aegra" ]; then
  exit 0
fi
[ -x "$uv" ] || { echo "ensure-aegra-venv: $uv missing: run 'make install' first" >&2; exit 1; }
py="${PYTHON:-}"
if [ -z "$py" ]; then
  for candidate in python3.12 python3.13 "$HOME"/.pyenv/versions/3.12*/bin/python3.12 \
    "$HOME"/.pyenv/versions/3.13*/bin/python3.13; do
    found="$(command -v "$candidate" 2>/dev/null || true)"
    if [ -n "$found" ] && "$found" -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null; then
      py="$found"
      break
    fi
  done
fi
[ -n "$py" ] || { echo "ensure-aegra-venv: aegra-api needs Python >= 3.12; none found (set PYTHON)" >&2; exit 1; }
if [ ! -x "$venv/bin/python" ]; then
  echo ">> creating virtualenv $venv ($py)"
  "$uv" venv -q --python "$py" "$venv"
fi
echo ">> installing ${pins[*]} into .venv-aegra"
VIRTUAL_ENV="$venv" "$uv" pip install -q --python "$venv/bin/python" "${pins[@]}"
echo "$want" > "$stamp"
