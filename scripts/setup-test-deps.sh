#!/usr/bin/env bash
# Installs what the tests need beyond Rust, idempotently; safe to run again. Fails if something
# cannot be installed: the tests that need it must not be skipped quietly.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/packages.sh
. scripts/packages.sh

# Interop clients (tests/interop.rs): Python `websockets` in a project venv under target/,
# Node `ws` in tests/clients/node_modules from its lockfile. Each is redone only when its pin
# file changed. (Autobahn's wstest installs itself: scripts/autobahn.sh.)
ensure_node_and_venv
# npm's cache lives under target/ with the rest, not in the home directory.
export npm_config_cache="$PWD/target/npm-cache"
ensure_packages "${REDIS_PACKAGES[@]}" "${BROWSER_PACKAGES[@]}"
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

# The browser test (tests/browser.rs): Debian's Chromium (installed above), and playwright-core
# from npm, which drives it (PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD: it never fetches a browser).
if ! cmp -s tests/browser/package-lock.json tests/browser/node_modules/.chatloop-lock 2>/dev/null; then
  echo "setup: installing playwright-core into tests/browser/node_modules"
  PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --prefix tests/browser --no-audit --no-fund --loglevel=error
  cp tests/browser/package-lock.json tests/browser/node_modules/.chatloop-lock
fi
