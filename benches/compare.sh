#!/usr/bin/env bash
# Compares chatloop with two Node servers under the same load, one core each:
#   - Node `ws`: the "broadcast to every other client" server from its README;
#   - uWebSockets.js (npm @trufflesuite/uws-js-unofficial), its native .node binary loaded
#     directly, so it cannot fall back to a pure-JS implementation; `ws.publish` to one topic
#     reaches every subscriber but the sender, like chatloop's chat mode.
# Each server is pinned to core 0 (`taskset -c 0`) and `chatloop bench` to core 1; the servers
# take turns within each round (interleaved, so a noisy neighbour hurts all alike), three
# rounds, and the table shows medians and the ratio to chatloop.
#
#   benches/compare.sh                 everything (about 15 minutes)
#   QUICK=1 benches/compare.sh         one round, short runs, small counts (a smoke test)
#
# Needs: node + npm, taskset (util-linux), python3, a release build (built here). The npm
# packages go to benches/.compare/ (gitignored). Idle memory at 10k connections needs
# `ulimit -n` of about 10100 per process; the script lowers the count to fit.
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=benches/.compare
ROUNDS=${ROUNDS:-3}
DUR=10s WARM=2s C1=1000 S1=10 C2=100 S2=100 IDLE=10000
if [ -n "${QUICK:-}" ]; then
  ROUNDS=1 DUR=2s WARM=500ms C1=200 S1=5 C2=20 S2=20 IDLE=1000
fi
limit=$(ulimit -Hn)
ulimit -n "$limit"
if [ "$IDLE" -gt $((limit - 200)) ]; then
  IDLE=$((limit - 200))
  echo "note: idle runs $IDLE connections ('ulimit -n' is $limit)" >&2
fi

mkdir -p "$DIR"
if [ ! -d "$DIR/node_modules/ws" ] || [ ! -d "$DIR/node_modules/@trufflesuite/uws-js-unofficial" ]; then
  npm install --no-audit --no-fund --prefix "$DIR" ws @trufflesuite/uws-js-unofficial >&2
fi
cargo build --release --bin chatloop >&2
BIN=target/release/chatloop

cat >"$DIR/ws-server.js" <<'EOF'
// The ws README's "Server broadcast" example, every other client variant.
const { WebSocketServer, WebSocket } = require('ws');
const wss = new WebSocketServer({ host: '127.0.0.1', port: Number(process.argv[2]) });
wss.on('connection', function connection(ws) {
  ws.on('error', console.error);
  ws.on('message', function message(data, isBinary) {
    wss.clients.forEach(function each(client) {
      if (client !== ws && client.readyState === WebSocket.OPEN) {
        client.send(data, { binary: isBinary });
      }
    });
  });
});
EOF
cat >"$DIR/uws-server.js" <<'EOF'
// uWebSockets.js: the native addon itself (no JS fallback), one topic per room (URL path).
const path = require('path');
const uWS = require(path.join(__dirname, 'node_modules/@trufflesuite/uws-js-unofficial/binaries',
  `uws_${process.platform}_${process.arch}_${process.versions.modules}.node`));
uWS.App().ws('/*', {
  compression: uWS.DISABLED,
  maxPayloadLength: 64 * 1024,
  maxBackpressure: 1024 * 1024,
  idleTimeout: 60,
  upgrade: (res, req, context) => {
    res.upgrade({ room: req.getUrl() }, req.getHeader('sec-websocket-key'),
      req.getHeader('sec-websocket-protocol'), req.getHeader('sec-websocket-extensions'), context);
  },
  open: (ws) => ws.subscribe(ws.getUserData().room),
  // ws.publish reaches every subscriber of the topic except ws itself.
  message: (ws, message, isBinary) => ws.publish(ws.getUserData().room, message, isBinary),
}).listen('127.0.0.1', Number(process.argv[2]), (ok) => { if (!ok) process.exit(1); });
EOF

PORT=19400
start_server() { # name → sets SPID
  PORT=$((PORT + 1))
  case $1 in
    chatloop) taskset -c 0 "$BIN" serve --listen 127.0.0.1:$PORT --max-connections 20000 \
                --log-level warn & ;;
    ws) taskset -c 0 node "$DIR/ws-server.js" $PORT & ;;
    uws) taskset -c 0 node "$DIR/uws-server.js" $PORT & ;;
  esac
  SPID=$!
  for _ in $(seq 50); do
    (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null && return 0
    sleep 0.1
  done
  echo "error: $1 did not start" >&2
  return 1
}

RESULTS=$(mktemp)
trap 'rm -f "$RESULTS"' EXIT
run() { # round server scenario-name bench-args...
  local round=$1 server=$2 name=$3
  shift 3
  start_server "$server"
  local line
  line=$(taskset -c 1 "$BIN" bench "$@" --url ws://127.0.0.1:$PORT/room --pid "$SPID" \
           --json --quiet || echo '{}')
  kill "$SPID" 2>/dev/null || true
  wait "$SPID" 2>/dev/null || true
  echo "$round	$server	$name	$line" >>"$RESULTS"
  echo "round $round  $server  $name: done" >&2
}

for round in $(seq "$ROUNDS"); do
  for server in chatloop ws uws; do
    run "$round" $server "fanout ${C1}x${S1}" fanout --clients $C1 --senders $S1 --size 64 \
      --duration $DUR --warmup $WARM
    run "$round" $server "fanout ${C2}x${S2}" fanout --clients $C2 --senders $S2 --size 64 \
      --duration $DUR --warmup $WARM
    run "$round" $server "latency ${C1}x${S1} @50/s" fanout --clients $C1 --senders $S1 \
      --rate 50 --size 64 --duration $DUR --warmup $WARM
    run "$round" $server "idle $IDLE" idle --clients $IDLE --duration 5s --concurrency 200
    run "$round" $server "connect" connect --concurrency 100 --duration $DUR --warmup $WARM
  done
done

python3 - "$RESULTS" <<'EOF'
import json, statistics, sys
rows = {}
for line in open(sys.argv[1]):
    rnd, server, name, js = line.rstrip("\n").split("\t", 3)
    rows.setdefault(name, {}).setdefault(server, []).append(json.loads(js or "{}"))

def figure(name, r):
    """The scenario's headline figure and unit; higher is better unless noted."""
    if name.startswith("idle"):
        return r.get("server_kib_per_connection"), "KiB/conn (lower is better)"
    if name.startswith("latency"):
        return (r.get("latency") or {}).get("p99_us"), "p99 µs (lower is better)"
    return r.get("rate"), r.get("rate_unit", "")

servers = ["chatloop", "ws", "uws"]
print(f"{'scenario':<26}{'unit':<28}" + "".join(f"{s:>14}" for s in servers) + "   chatloop ÷ other")
for name, by_server in rows.items():
    med, unit = {}, ""
    notes = []
    for s in servers:
        runs = by_server.get(s, [])
        vals = [v for v in (figure(name, r)[0] for r in runs) if v is not None]
        unit = next((figure(name, r)[1] for r in runs if figure(name, r)[1]), unit)
        med[s] = statistics.median(vals) if vals else None
        errs = sum(r.get("errors", 0) + r.get("lost", 0) for r in runs)
        cpu = [r.get("server_cpu_pct") for r in runs if r.get("server_cpu_pct") is not None]
        gen = [r.get("generator_cpu_pct") for r in runs if r.get("generator_cpu_pct") is not None]
        if errs:
            notes.append(f"{s}: {errs} errors+lost")
        if cpu and gen:
            notes.append(f"{s} cpu srv/gen {statistics.median(cpu):.0f}/{statistics.median(gen):.0f}%")
    cells = "".join(f"{(f'{v:.1f}' if v is not None else '-'):>14}" for v in med.values())
    base = med["chatloop"]
    ratios = " ".join(
        f"{s}={base / med[s]:.2f}x" for s in servers[1:] if base and med[s]
    )
    print(f"{name:<26}{unit:<28}{cells}   {ratios}")
    print(f"{'':<26}" + "; ".join(notes))
EOF
