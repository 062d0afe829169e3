#!/usr/bin/env bash
# Installs what the tests need beyond Rust, idempotently; safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

# Interop clients (tests/interop.rs): Python `websockets` in a project venv under target/,
# Node `ws` in tests/clients/node_modules from its lockfile. Each is redone only when its pin
# file changed. (Autobahn's wstest installs itself: scripts/autobahn.sh.)
if ! command -v npm >/dev/null 2>&1 || ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
  apt-get update -qq && apt-get install -y -qq --no-install-recommends nodejs npm python3-venv
fi
# Redis for the multi-node tests (tests/redis.rs start their own redis-server on a free port).
if ! command -v redis-server >/dev/null 2>&1; then
  apt-get update -qq && apt-get install -y -qq --no-install-recommends redis-server
fi
venv=target/interop-venv
if ! cmp -s tests/clients/requirements.txt "$venv/.requirements" 2>/dev/null; then
  echo "setup: installing Python websockets into $venv"
  rm -rf "$venv"
  python3 -m venv "$venv"
  PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_CACHE_DIR=target/pip-cache \
    "$venv/bin/pip" install --quiet -r tests/clients/requirements.txt
  cp tests/clients/requirements.txt "$venv/.requirements"
fi
if ! cmp -s tests/clients/package-lock.json tests/clients/node_modules/.chatloop-lock 2>/dev/null; then
  echo "setup: installing Node ws into tests/clients/node_modules"
  npm ci --prefix tests/clients --no-audit --no-fund --loglevel=error
  cp tests/clients/package-lock.json tests/clients/node_modules/.chatloop-lock
fi

# The browser test (tests/browser.rs): Debian's Chromium, and playwright-core from npm, which
# drives that Chromium (PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD: it never fetches a browser).
if [ ! -x /usr/bin/chromium ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
if ! cmp -s tests/browser/package-lock.json tests/browser/node_modules/.chatloop-lock 2>/dev/null; then
  echo "setup: installing playwright-core into tests/browser/node_modules"
  PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --prefix tests/browser --no-audit --no-fund --loglevel=error
  cp tests/browser/package-lock.json tests/browser/node_modules/.chatloop-lock
fi
