#!/usr/bin/env bash
# Install the JavaScript clients the tests drive (tests/js: @langchain/langgraph-sdk, React,
# Vite, playwright-core) with `npm ci` from the pinned package-lock.json. Installs Debian's
# nodejs and npm first when node is missing. Never downloads a browser: the browser test
# uses Debian's chromium (hack/ensure-debs.sh). Idempotent: a stamp holds the lock's hash.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
js="$root/tests/js"
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo ">> installing Debian packages: nodejs npm"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
fi
if ! node -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a > 20 || (a === 20 && b >= 19) ? 0 : 1)'; then
  echo "ensure-node: Node.js >= 20.19 is required for tests/js (found $(node --version))" >&2
  exit 1
fi
stamp="$js/node_modules/.berth-installed"
want="$(cat "$js/package.json" "$js/package-lock.json" "$root/hack/ensure-node.sh" | sha256sum | cut -c1-16)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
echo ">> installing JavaScript test clients into tests/js/node_modules (npm ci, pinned in package-lock.json)"
# PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD: belt and braces, playwright-core downloads nothing itself.
(cd "$js" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error)
echo "$want" >"$stamp"
echo ">> tests/js ready (node $(node --version), npm $(npm --version))"
