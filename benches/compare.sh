#!/usr/bin/env bash
# Compares chatloop with the chat servers people would otherwise run, under the same loads,
# each at its best (docs/load-testing.md explains the method and shows the results):
#   - Qt 5's simplechat example, the server chatloop re-makes;
#   - tokio-tungstenite's chat example (relaying Text and Binary only, TCP_NODELAY);
#   - uWebSockets.js (pub/sub, one topic per room);
#   - Node `ws` (the broadcast example from its README).
# benches/peers/setup.sh fetches and builds them at pinned versions; `chatloop bench compare`
# runs the phases (best window of a sweep, fan-out rounds, latency against offered load, a
# ramp) and writes the raw lines, the summary and the charts. Each server is pinned to core 0
# (`taskset -c 0`), the generator to core 1, and the servers take turns within every round.
#
#   benches/compare.sh                 the full comparison, into docs/figures/ (about 15 min)
#   QUICK=1 benches/compare.sh         a short one, into target/compare-quick/ (about 3 min)
#   OUT=dir benches/compare.sh         write somewhere else
#   MAX_LOAD=2.5 benches/compare.sh    first wait (up to 15 min) until the 1-minute load
#                                      average is below 2.5: other work on the machine skews
#                                      every figure
#
# Needs: what benches/peers/setup.sh needs (apt-get, cargo, node + npm), taskset (util-linux),
# and 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."

benches/peers/setup.sh
cargo build --release --bin chatloop >&2
# One descriptor per connection: the ramp holds 10000 on each side.
ulimit -n "$(ulimit -Hn)"

if [ -n "${MAX_LOAD:-}" ]; then
  for _ in $(seq 90); do
    load=$(cut -d' ' -f1 /proc/loadavg)
    awk -v l="$load" -v m="$MAX_LOAD" 'BEGIN { exit !(l < m) }' && break
    echo "compare: load average $load, waiting for it to fall below $MAX_LOAD" >&2
    sleep 10
  done
fi

if [ -n "${QUICK:-}" ]; then
  out=${OUT:-target/compare-quick} quick=--quick
else
  out=${OUT:-docs/figures} quick=
fi
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')
note="$(nproc) cores ($cpu), Linux $(uname -r); $(cat benches/.peers/versions)"
# The generator on core 1; each server on core 0 (the template).
taskset -c 1 target/release/chatloop bench compare $quick \
  --servers chatloop,qt,tokio,uws,ws \
  --start 'taskset -c 0 benches/peers/run.sh {name} {port}' \
  --out "$out" --note "$note"
echo "compare: raw lines, summary and charts in $out/" >&2
