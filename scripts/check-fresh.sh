#!/usr/bin/env bash
# Checks that CI passes on a machine that has none of the test tools: removes everything the
# test scripts install, then runs `CI=true bash .ci/run` in a fresh clone of HEAD and reports
# how long it took. A tool installed by hand (or pulled in as some package's Recommends) hides
# a missing install step; this is how such a step is found before CI finds it.
#
#   ./scripts/check-fresh.sh          purge, clone, run CI (needs root: it runs apt-get purge)
#   ./scripts/check-fresh.sh --list   only print what it would remove
#
# What it removes (each is installed again by the scripts that need it):
#   - the Debian packages in scripts/packages.sh (cross compilers and C libraries, qemu-user,
#     Chromium, redis-server), with apt-get purge and autoremove;
#   - the cargo-fuzz binary (scripts/fuzz.sh installs it) and the rustup targets of the
#     cross-test (scripts/cross-test.sh adds them);
#   - the npm and pip caches: the scripts keep theirs under target/, which a fresh clone lacks.
# Node, npm, Python 3 and the pyenv Python 2.7 belong to the machine image and are kept.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/packages.sh
. scripts/packages.sh

RUST_TARGETS=(aarch64-unknown-linux-musl armv7-unknown-linux-gnueabihf)
CARGO_FUZZ=${CARGO_HOME:-$HOME/.cargo}/bin/cargo-fuzz

if [ "${1:-}" = "--list" ]; then
  echo "apt packages: ${TEST_PACKAGES[*]}"
  echo "rustup targets: ${RUST_TARGETS[*]}"
  echo "binaries: $CARGO_FUZZ"
  echo "caches: target/ of the clone (npm, pip, venvs, wstest)"
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "check-fresh: error: run as root (it purges Debian packages)" >&2
  exit 1
fi

echo "check-fresh: purging ${TEST_PACKAGES[*]}"
DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq "${TEST_PACKAGES[@]}" >/dev/null
DEBIAN_FRONTEND=noninteractive apt-get autoremove --purge -y -qq >/dev/null
for p in "${TEST_PACKAGES[@]}"; do
  if package_installed "$p"; then
    echo "check-fresh: error: $p is still installed" >&2
    exit 1
  fi
done
rm -f "$CARGO_FUZZ"
for t in "${RUST_TARGETS[@]}"; do
  rustup target remove "$t" >/dev/null 2>&1 || true
done

clone=$(mktemp -d "${TMPDIR:-/tmp}/chatloop-fresh.XXXXXX")
git clone --quiet --no-local . "$clone"
echo "check-fresh: CI=true bash .ci/run in a clone of $(git rev-parse --short HEAD) ($clone)"
started=$(date +%s)
set +e
(cd "$clone" && CI=true bash .ci/run) 2>&1 | tee "$clone.log"
status=${PIPESTATUS[0]}
set -e
elapsed=$(($(date +%s) - started))
echo "check-fresh: .ci/run exited $status after ${elapsed} s ($((elapsed / 60)) min $((elapsed % 60)) s); log: $clone.log"
exit "$status"
