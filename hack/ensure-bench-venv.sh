#!/usr/bin/env bash
# Create .venv-bench: a separate virtualenv holding the official in-memory dev
# server (`langgraph dev`, from langgraph-cli[inmem]) that bench/ compares Berth
# against. It is separate from .venv because langgraph-cli[inmem] pins its own
# langgraph-api stack, which may conflict with Berth's pins. Idempotent: does
# nothing when the pins below have not changed since the last install.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venv-bench"
uv="$root/.venv/bin/uv"
stamp="$venv/.berth-bench-installed"
# The peer under test, pinned; langgraph itself is pinned to Berth's version so
# both servers execute the same graph code.
# wordllama: the local embedding model of bench/store_search.py (same as Berth's berth:wordllama)
pins=("langgraph-cli[inmem]==0.4.40" "langgraph==1.2.22" "langgraph-sdk==0.4.14" "wordllama==0.4.0.post1")
want="$(printf '%s\n' "${pins[@]}" | cat - "$root/hack/ensure-bench-venv.sh" | sha256sum | cut -c1-16)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -x "$venv/bin/langgraph" ]; then
  exit 0
fi
[ -x "$uv" ] || { echo "ensure-bench-venv: $uv missing: run 'make install' first" >&2; exit 1; }
py="${PYTHON:-$root/.venv/bin/python}"
if [ ! -x "$venv/bin/python" ]; then
  echo ">> creating virtualenv $venv"
  "$uv" venv -q --python "$py" "$venv"
fi
echo ">> installing ${pins[*]} into .venv-bench"
VIRTUAL_ENV="$venv" "$uv" pip install -q --python "$venv/bin/python" "${pins[@]}"
echo "$want" > "$stamp"
