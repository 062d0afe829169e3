#!/usr/bin/env bash
# Runs every test of chatloop: the Rust unit and integration tests (which drive real clients:
# tungstenite here, Python `websockets` and Node `ws` where installed), then the suites that
# need their own tools. Installs what those need first, idempotently.
#
#   ./scripts/test.sh            everything
#   CHATLOOP_QUICK=1 ./scripts/test.sh   Rust tests only, no installs
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -z "${CHATLOOP_QUICK:-}" ]; then
  ./scripts/setup-test-deps.sh
  # With the tools installed, interop tests must run: a missing client is then a failure.
  export CHATLOOP_REQUIRE_INTEROP=1
fi

# tests/stress.rs opens a few thousand sockets: raise the soft descriptor limit if allowed.
ulimit -n 16384 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

cargo build --release --bin chatloop
cargo test --workspace --all-targets

if [ -z "${CHATLOOP_QUICK:-}" ]; then
  # Bounded fuzzing of the HTTP head parser and the connection state machine (scripts/fuzz.sh).
  ./scripts/fuzz.sh "${CHATLOOP_FUZZ_SECONDS:-45}"
  ./scripts/cross-test.sh   # ARM builds under qemu-user
  # RFC 6455 conformance: Autobahn|Testsuite against the echo server (needs a Python 2.7: fails
  # without one under CI, skips loudly elsewhere).
  ./scripts/autobahn.sh
fi
