#!/usr/bin/env bash
# Fuzzes chatloop's two input surfaces for a bounded time each (default 45 s per target):
#   http_head    the HTTP request-head parser and router (src/http.rs)
#   conn_stream  one upgraded connection fed arbitrary bytes in arbitrary reads (src/conn.rs)
#
#   ./scripts/fuzz.sh [SECONDS]
#
# cargo-fuzz needs nightly-only compiler flags (sanitizers, coverage instrumentation); on a
# stable toolchain RUSTC_BOOTSTRAP=1 unlocks them. New inputs found go to fuzz/target/corpus
# (not committed); the committed seeds in fuzz/corpus/<target> are only read. A crash stops
# the script with the input saved under fuzz/artifacts/<target>/ and the command to replay it.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
SECONDS_EACH="${1:-45}"

command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
export RUSTC_BOOTSTRAP=1

for target in http_head conn_stream; do
  mkdir -p "target/corpus/$target"
  echo "fuzz: $target for ${SECONDS_EACH}s"
  log="target/$target.log"
  # -O: optimised (with debug assertions); the first corpus directory receives new inputs.
  if ! cargo fuzz run -O "$target" "target/corpus/$target" "corpus/$target" -- \
      -max_total_time="$SECONDS_EACH" -max_len=8192 -rss_limit_mb=1024 -print_final_stats=1 \
      >"$log" 2>&1; then
    tail -n 60 "$log"
    echo "fuzz: $target FAILED; the input is under fuzz/artifacts/$target/" >&2
    exit 1
  fi
  grep -E '^(Done|stat::number_of_executed_units|stat::peak_rss_mb)' "$log"
done
