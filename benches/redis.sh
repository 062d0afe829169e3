#!/usr/bin/env bash
# What the Redis bridge costs a node: fan-out deliveries/s and same-node latency with and
# without --redis, medians of ROUNDS runs. The server is pinned to core 0, the load generator
# and redis-server to core 1, so the figures are one core's worth of server.
#
#   benches/redis.sh                       needs `chatloop bench` (cargo feature `bench`)
#   BENCH=path/to/chatloop benches/redis.sh   a binary that has it, if this build does not
#   ROUNDS=5 DUR=10s benches/redis.sh
#
# Cross-node latency (clients on node A send, clients on node B receive) is measured by an
# ignored test, because `chatloop bench` speaks to one URL:
#   cargo test --release --test redis -- --ignored --nocapture cross_node_latency
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-3} DUR=${DUR:-5s} WARM=${WARM:-1s}
CLIENTS=${CLIENTS:-1000} SENDERS=${SENDERS:-10}
# Many senders in small rooms: one publish per 99 deliveries instead of per 999, so the
# bridge's per-message cost shows.
C2=${C2:-100} S2=${S2:-100}
cargo build --release --bin chatloop >/dev/null
BIN=target/release/chatloop
BENCH=${BENCH:-$BIN}
"$BENCH" bench --help >/dev/null 2>&1 || {
  echo "error: $BENCH has no 'bench' subcommand; set BENCH=path/to/chatloop" >&2
  exit 1
}
command -v redis-server >/dev/null || { echo "error: redis-server not installed" >&2; exit 1; }

RPORT=19480 PORT=19490
taskset -c 1 redis-server --port $RPORT --bind 127.0.0.1 --save '' --appendonly no \
  --loglevel warning >/dev/null &
RPID=$!
SPID=
trap 'kill $RPID ${SPID:-} 2>/dev/null || true' EXIT

wait_port() {
  for _ in $(seq 50); do
    (exec 3<>/dev/tcp/127.0.0.1/$1) 2>/dev/null && return 0
    sleep 0.1
  done
  echo "error: nothing listens on $1" >&2
  return 1
}
wait_port $RPORT

RESULTS=$(mktemp)
run() { # round name bench-args... ; server args in SERVER_ARGS
  local round=$1 name=$2
  shift 2
  PORT=$((PORT + 1))
  # shellcheck disable=SC2086
  taskset -c 0 "$BIN" serve --listen 127.0.0.1:$PORT --max-connections 20000 --log-level warn \
    $SERVER_ARGS &
  SPID=$!
  wait_port $PORT
  line=$(taskset -c 1 "$BENCH" bench "$@" --url ws://127.0.0.1:$PORT/room --pid $SPID \
           --json --quiet || echo '{}')
  kill $SPID; wait $SPID 2>/dev/null || true
  echo "$round	$name	$line" >>"$RESULTS"
  if [ -n "${RAW:-}" ]; then echo "$round	$name	$line" >>"$RAW"; fi
  echo "round $round  $name: done" >&2
}

for round in $(seq "$ROUNDS"); do
  for mode in local redis; do
    SERVER_ARGS=""
    [ $mode = redis ] && SERVER_ARGS="--redis redis://127.0.0.1:$RPORT"
    run "$round" "$mode fanout ${CLIENTS}x${SENDERS}" fanout --clients "$CLIENTS" \
      --senders "$SENDERS" --size 64 --duration "$DUR" --warmup "$WARM"
    run "$round" "$mode fanout ${C2}x${S2}" fanout --clients "$C2" \
      --senders "$S2" --size 64 --duration "$DUR" --warmup "$WARM"
    run "$round" "$mode latency ${CLIENTS}x${SENDERS} @50/s" fanout --clients "$CLIENTS" \
      --senders "$SENDERS" --rate 50 --size 64 --duration "$DUR" --warmup "$WARM"
  done
done

python3 - "$RESULTS" <<'EOF'
import json, statistics, sys
rows = {}
for line in open(sys.argv[1]):
    rnd, name, js = line.rstrip("\n").split("\t", 2)
    rows.setdefault(name, []).append(json.loads(js or "{}"))
for name, runs in rows.items():
    if "latency" in name:
        p50 = [r["latency"]["p50_us"] for r in runs if r.get("latency")]
        p99 = [r["latency"]["p99_us"] for r in runs if r.get("latency")]
        print(f"{name:<36} p50 {statistics.median(p50):>8.0f} µs   p99 {statistics.median(p99):>8.0f} µs"
              f"   (runs: p99 {sorted(p99)})")
    else:
        rates = [r["rate"] for r in runs if "rate" in r]
        cpu = [r["server_cpu_pct"] for r in runs if r.get("server_cpu_pct") is not None]
        cpu = f"   server CPU {statistics.median(cpu):.0f}%" if cpu else ""
        print(f"{name:<36} {statistics.median(rates):>12,.0f} {runs[0].get('rate_unit','')}{cpu}"
              f"   (runs: {[round(x) for x in sorted(rates)]})")
EOF
rm -f "$RESULTS"
