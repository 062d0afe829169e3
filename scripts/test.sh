#!/usr/bin/env bash
# Runs every test of chatloop, and fails if any fails or cannot run:
#   1. installs what some tests need beyond Rust (scripts/setup-test-deps.sh, which fails if it
#      cannot install something);
#   2. the plain suite, `cargo test --all-targets`: Rust only, real sockets on 127.0.0.1;
#   3. the tool tests: every test marked `#[ignore = "needs …"]`, by name, with `--ignored`;
#   4. bounded fuzzing, the ARM builds under qemu-user, and Autobahn|Testsuite.
#
#   ./scripts/test.sh                    everything
#   CHATLOOP_QUICK=1 ./scripts/test.sh   step 2 only, no installs; it names what it left out
#
# The ignore scheme (see tests/common/mod.rs): an ignore reason that starts with `needs ` marks
# a test that needs an outside tool; step 3 runs it, and it fails if the tool is missing. Any
# other reason marks a test this script never runs: `long: …` for the full-size soaks
# (scripts/soak.sh runs them) and `a measurement, …` for `cross_node_latency` in
# tests/redis.rs (run by hand, as its doc comment says). A new tool test needs nothing here:
# its `needs …` reason is what puts it in step 3.
set -euo pipefail
cd "$(dirname "$0")/.."

quick=${CHATLOOP_QUICK:-}
if [ -n "$quick" ] && [ -n "${CI:-}" ]; then
  echo "error: CHATLOOP_QUICK under CI: CI runs every suite" >&2
  exit 1
fi

# Prints "TARGET TEST" for each test whose ignore reason starts with `needs `: the `fn` after
# the attribute (doc lines and other attributes may come between), in tests/TARGET.rs.
tool_tests() {
  awk '
    FNR == 1 { target = FILENAME; sub(/^tests\//, "", target); sub(/\.rs$/, "", target) }
    /^#\[ignore = "needs / { needs = 1; next }
    needs && /^(#\[|\/\/\/)/ { next }
    needs && match($0, /^fn [a-z0-9_]+\(/) {
      print target, substr($0, 4, RLENGTH - 4); needs = 0; next
    }
    needs { print "error: no test fn after an ignore = \"needs …\" in " FILENAME > "/dev/stderr"; exit 1 }
  ' tests/*.rs
}
tools=$(tool_tests)
if [ -z "$tools" ]; then
  echo "error: found no test marked #[ignore = \"needs …\"]" >&2
  exit 1
fi

if [ -z "$quick" ]; then
  ./scripts/setup-test-deps.sh
fi

# tests/stress.rs opens a few thousand sockets: raise the soft descriptor limit if allowed.
ulimit -n 16384 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

cargo build --release --bin chatloop
cargo test --workspace --all-targets

if [ -n "$quick" ]; then
  echo
  echo "=================================================================================="
  echo "CHATLOOP_QUICK: ran the plain Rust suite only. NOT RUN (./scripts/test.sh runs them):"
  echo "  - the tests that need outside tools (#[ignore = \"needs …\"]):"
  echo "$tools" | sed -E 's#^([^ ]+) #      tests/\1.rs: #'
  echo "  - fuzzing (scripts/fuzz.sh), ARM builds under qemu-user (scripts/cross-test.sh),"
  echo "    Autobahn|Testsuite over ws and wss (scripts/autobahn.sh [--tls])"
  echo "=================================================================================="
  exit 0
fi

# Step 3: the tool tests, one cargo invocation per test file, each test named exactly. The
# listing check makes sure every named test exists in its target (a target compiled out by a
# missing feature would otherwise run nothing and pass).
for target in $(echo "$tools" | cut -d' ' -f1 | sort -u); do
  names=$(echo "$tools" | awk -v t="$target" '$1 == t { print $2 }')
  # shellcheck disable=SC2086 # one argument per test name
  listed=$(cargo test --quiet --test "$target" -- --ignored --exact --list $names | grep -c ': test$' || true)
  wanted=$(echo "$names" | wc -l)
  if [ "$listed" -ne "$wanted" ]; then
    echo "error: tests/$target.rs: $wanted tool tests named, $listed found" >&2
    exit 1
  fi
  echo "tool tests in tests/$target.rs:" $names
  # shellcheck disable=SC2086
  cargo test --test "$target" -- --ignored --exact $names
done

# Bounded fuzzing of the HTTP head parser and the connection state machine (scripts/fuzz.sh).
./scripts/fuzz.sh "${CHATLOOP_FUZZ_SECONDS:-45}"
./scripts/cross-test.sh   # ARM builds under qemu-user
# RFC 6455 conformance: Autobahn|Testsuite against the echo server, over ws:// and over wss://
# (needs a Python 2.7: fails without one under CI, skips loudly elsewhere).
./scripts/autobahn.sh
./scripts/autobahn.sh --tls
