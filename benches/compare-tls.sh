#!/usr/bin/env bash
# Compares chatloop over TLS (`serve --tls-cert --tls-key`) with uWebSockets.js's SSLApp
# (npm @trufflesuite/uws-js-unofficial, the package benches/compare.sh uses, its native .node
# loaded directly), one core each: the server pinned to core 0 (`taskset -c 0`), `chatloop
# bench` to core 1, the servers taking turns within each round, three rounds, medians.
#
#   benches/compare-tls.sh                 everything (about 10 minutes)
#   QUICK=1 benches/compare-tls.sh         one round, short runs, small counts (a smoke test)
#   OUT=docs/figures benches/compare-tls.sh   also keep the raw JSON lines and the table there
#   ONLY=echo ROUNDS=7 OUT=… TAG=echo benches/compare-tls.sh   one scenario (connect, fanout,
#                                          idle or echo), more rounds; files named with TAG
#
# chatloop without TLS (`chatloop-ws`, ws://) runs the same scenarios beside them: what TLS
# costs chatloop itself. Both TLS servers get the same certificate: a self-signed P-256 one made here by openssl, which
# the generator trusts with --ca. The scenarios (docs/tls.md says what each measures):
#   connect   TLS handshakes (and the WebSocket upgrade) per second; per server CPU-second
#   fanout    1000 clients in one room, 10 senders, 64-byte messages, closed loop with
#             --window 1, 4 and 32: deliveries/s, and per server the best window of each
#             round (uWebSockets.js does best at window 1, chatloop at 32: README)
#   idle      N connections held open after their handshake: server KiB per connection
#   echo      100 clients, one message in flight each, against the echo servers: round trips/s
#
# Needs: node + npm, openssl, taskset (util-linux), python3; the release build is made here.
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/lib.sh
DIR=benches/.compare
ROUNDS=${ROUNDS:-3}
DUR=10s WARM=2s C1=1000 S1=10 C2=100 IDLE=10000
if [ -n "${QUICK:-}" ]; then
  ROUNDS=1 DUR=2s WARM=500ms C1=200 S1=5 C2=20 IDLE=1000
fi
limit=$(ulimit -Hn)
ulimit -n "$limit"
if [ "$IDLE" -gt $((limit - 200)) ]; then
  IDLE=$((limit - 200))
  echo "note: idle runs $IDLE connections ('ulimit -n' is $limit)" >&2
fi

mkdir -p "$DIR/tls"
if [ ! -d "$DIR/node_modules/@trufflesuite/uws-js-unofficial" ]; then
  npm install --no-audit --no-fund --prefix "$DIR" ws @trufflesuite/uws-js-unofficial >&2
fi
CERT=$DIR/tls/cert.pem KEY=$DIR/tls/key.pem
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
  -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
  -addext basicConstraints=critical,CA:FALSE -keyout "$KEY" -out "$CERT" 2>/dev/null
cargo build --release --bin chatloop >&2
BIN=target/release/chatloop

PORT=19500
start_server() { # name mode(chat|echo) → sets SPID
  PORT=$((PORT + 1))
  local echo_flag=()
  [ "$2" = echo ] && echo_flag=(--echo)
  case $1 in
    chatloop) taskset -c 0 "$BIN" serve --listen 127.0.0.1:$PORT --max-connections 20000 \
                --tls-cert "$CERT" --tls-key "$KEY" --log-level warn "${echo_flag[@]}" & ;;
    chatloop-ws) taskset -c 0 "$BIN" serve --listen 127.0.0.1:$PORT --max-connections 20000 \
                --log-level warn "${echo_flag[@]}" & ;;
    uws-ssl) NODE_PATH=$PWD/$DIR/node_modules taskset -c 0 \
               node benches/peers/uws-server.js $PORT "$2" "$CERT" "$KEY" & ;;
  esac
  SPID=$!
  wait_port "$PORT" "$1"
}

RESULTS=$(mktemp)
trap 'rm -f "$RESULTS"' EXIT
run() { # round server mode scenario-name bench-args...
  local round=$1 server=$2 mode=$3 name=$4
  shift 4
  case "$name" in "${ONLY:-}"*) ;; *) return 0 ;; esac
  start_server "$server" "$mode"
  local line url=(--url wss://127.0.0.1:$PORT/room --ca "$CERT")
  [ "$server" = chatloop-ws ] && url=(--url ws://127.0.0.1:$PORT/room)
  line=$(taskset -c 1 "$BIN" bench "$@" "${url[@]}" --pid "$SPID" --json --quiet || echo '{}')
  stop_pid "$SPID"
  echo "$round	$server	$name	$line" >>"$RESULTS"
  echo "round $round  $server  $name: done ($(cut -d' ' -f1-3 /proc/loadavg))" >&2
}

echo "load before: $(uptime)" >&2
for round in $(seq "$ROUNDS"); do
  for server in chatloop uws-ssl chatloop-ws; do
    run "$round" $server chat "connect" connect --concurrency 100 --duration $DUR \
      --warmup $WARM
    for w in 1 4 32; do
      run "$round" $server chat "fanout ${C1}x${S1} w$w" fanout --clients $C1 --senders $S1 \
        --window $w --size 64 --duration $DUR --warmup $WARM
    done
    run "$round" $server chat "idle $IDLE" idle --clients $IDLE --duration 5s --concurrency 200
    run "$round" $server echo "echo ${C2}" echo --clients $C2 --size 64 --duration $DUR \
      --warmup $WARM
  done
done
echo "load after: $(uptime)" >&2

if [ -n "${OUT:-}" ]; then
  mkdir -p "$OUT"
  cp "$RESULTS" "$OUT/tls-compare${TAG:+-$TAG}-raw.tsv"
fi
python3 - "$RESULTS" <<'EOF' | tee ${OUT:+"$OUT/tls-compare${TAG:+-$TAG}.txt"}
import json, statistics, sys
rows, best = {}, {}
for line in open(sys.argv[1]):
    rnd, server, name, js = line.rstrip("\n").split("\t", 3)
    r = json.loads(js or "{}")
    rows.setdefault(name, {}).setdefault(server, []).append(r)
    if name.startswith("fanout") and " w" in name:
        key = (server, rnd)
        if r.get("rate") and r["rate"] > best.get(key, {}).get("rate", -1):
            best[key] = dict(r, window=name.rsplit(" w", 1)[1])
for (server, rnd), r in sorted(best.items()):
    rows.setdefault("fanout best window", {}).setdefault(server, []).append(r)

def figures(name, r):
    """(figure, unit) pairs for a run; higher is better unless noted."""
    if name.startswith("idle"):
        return [(r.get("server_kib_per_connection"), "KiB/conn (lower is better)")]
    out = [(r.get("rate"), r.get("rate_unit", ""))]
    cpu = r.get("server_cpu_pct")
    if name == "connect" and r.get("rate") and cpu:
        out.append((r["rate"] / (cpu / 100), "handshakes per server CPU-second"))
    return out

servers = ["chatloop", "uws-ssl", "chatloop-ws"]
print(f"{'scenario':<22}{'unit':<36}" + "".join(f"{s:>12}" for s in servers)
      + "   chatloop ÷ uws-ssl, chatloop ÷ chatloop-ws")
for name, by_server in rows.items():
    n = max(len(figures(name, r)) for runs in by_server.values() for r in runs)
    for i in range(n):
        med, unit, notes = {}, "", []
        for s in servers:
            runs = by_server.get(s, [])
            vals = [f[i][0] for f in (figures(name, r) for r in runs) if len(f) > i and f[i][0] is not None]
            unit = next((f[i][1] for f in (figures(name, r) for r in runs) if len(f) > i), unit)
            med[s] = statistics.median(vals) if vals else None
            errs = sum(r.get("errors", 0) + r.get("lost", 0) for r in runs)
            cpu = [r["server_cpu_pct"] for r in runs if r.get("server_cpu_pct") is not None]
            gen = [r["generator_cpu_pct"] for r in runs if r.get("generator_cpu_pct") is not None]
            if errs:
                notes.append(f"{s}: {errs} errors+lost")
            if cpu and gen:
                notes.append(f"{s} cpu srv/gen {statistics.median(cpu):.0f}/{statistics.median(gen):.0f}%")
            notes.append(f"{s} runs: " + " ".join(f"{v:.1f}" for v in vals))
            if name == "fanout best window":
                notes.append(f"{s} best windows: " + " ".join(r.get("window", "?") for r in runs))
        cells = "".join(f"{(f'{v:.1f}' if v is not None else '-'):>12}" for v in med.values())
        a = med["chatloop"]
        ratio = ", ".join(f"{a / med[s]:.2f}x" if a and med[s] else "-" for s in servers[1:])
        print(f"{name:<22}{unit:<36}{cells}   {ratio}")
        print(f"{'':<22}" + "; ".join(notes))
EOF
