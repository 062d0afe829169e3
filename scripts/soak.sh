#!/usr/bin/env bash
# The full-size stress runs of tests/stress.rs, one after another, with their figures printed:
#   churn_soak_100k          100,000 connect/upgrade/close cycles (Close, RST, FIN, silent),
#                            then no socket, slot or descriptor left and RSS back near baseline
#   slow_consumers_at_scale  1,000 healthy readers + 100 that never read, 6 MiB fanned out to
#                            each: the stuck ones dropped (1008), the healthy lose nothing
#   slowloris_10k            10,000 half-sent request heads: a real client keeps chatting, all
#                            answered 408 after --handshake-timeout, sockets freed
# Loopback only; every run is bounded in count and time (a few minutes in all).
#
#   ./scripts/soak.sh [TEST_NAME_FILTER]
set -euo pipefail
cd "$(dirname "$0")/.."

# The clients need a descriptor each: raise the soft limit as far as the hard one allows.
ulimit -n 16384 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
echo "soak: ulimit -n $(ulimit -n)"

cargo build --release --bin chatloop
mkdir -p target
log=target/soak.log
# --release: the figures are for the optimised server, as an operator runs it.
if ! cargo test --release --test stress -- --ignored --nocapture --test-threads=1 ${1:+"$1"} \
    >"$log" 2>&1; then
  tail -n 40 "$log"
  exit 1
fi
grep -oE '(churn|slow consumers|slowloris|note): .*|test result: .*' "$log"
