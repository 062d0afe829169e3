#!/usr/bin/env bash
# The relay path, before and after: this tree's server against a base revision's (default
# `main`), interleaved in one run, server pinned to core 0 and the generator to core 1.
#
#   benches/relay.sh                  everything (about 10 minutes)
#   benches/relay.sh fanout           fan-out only: 1000 × 10 (window 64), 100 × 100 (window 8)
#   benches/relay.sh rooms            a laggard in room /a, room /b's latency (issue 14's test)
#   benches/relay.sh memory           empty messages to a client that never reads: RSS growth
#   benches/relay.sh echo             echo round trips (100 clients, one 64 B message in flight)
#   benches/relay.sh highwater        fan-out 1000 × 10 with --high-water-bytes 2MiB: how long
#                                     the server-wide pause lasts once the outboxes drain
#   BASE=<git rev> ROUNDS=5 benches/relay.sh     another base, more rounds (default 3)
#   SKIP_BUILD=1 benches/relay.sh     reuse both builds (build once, then time under a lock)
#
# Raw output (one JSON line per run, tagged) goes to benches/results/relay.jsonl, the summary
# to benches/results/relay.txt, with the machine's load average before and after.
#
# Needs: taskset (util-linux), python3, and a release build of both trees (built here: the
# base is exported with `git archive` into target/relay-base/).
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/lib.sh
BASE=${BASE:-main}
ROUNDS=${ROUNDS:-3}
PARTS=${1:-fanout rooms memory echo highwater}
OUT=benches/results
WORK=target/relay-bench
mkdir -p "$OUT" "$WORK"
ulimit -n "$(ulimit -Hn)"

if [ -z "${SKIP_BUILD:-}" ]; then
  build_base "$BASE" target/relay-base
  cargo build --release --bin chatloop >&2
fi
declare -A BIN=([base]=target/relay-base/target/release/chatloop [new]=target/release/chatloop)
GEN=target/release/chatloop # one generator for both servers

# Helpers: a client that upgrades and never reads; a flood of empty messages.
cat >"$WORK/stuck.py" <<'EOF'
# stuck.py PORT PATH SECONDS: upgrade, then never read (a small receive buffer).
import socket, sys, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.connect(("127.0.0.1", int(sys.argv[1])))
s.sendall(("GET %s HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
           % sys.argv[2]).encode())
time.sleep(float(sys.argv[3]))
EOF
cat >"$WORK/flood.py" <<'EOF'
# flood.py PORT PATH MBYTES: upgrade, then send MBYTES of empty binary messages (masked).
import socket, sys, time
s = socket.socket()
s.connect(("127.0.0.1", int(sys.argv[1])))
s.sendall(("GET %s HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
           % sys.argv[2]).encode())
head = b""
while b"\r\n\r\n" not in head:
    head += s.recv(1)
burst = b"\x82\x80\x00\x00\x00\x00" * 10000
sent = 0
while sent < float(sys.argv[3]) * (1 << 20):
    s.sendall(burst)
    sent += len(burst)
time.sleep(60)
EOF

# Whatever happens, no server or helper outlives the run (they would hold the caller's lock).
trap 'kill $(jobs -p) 2>/dev/null || true' EXIT

PORT=19600
start_server() { # build args... → sets SPID, PORT
  local build=$1
  shift
  PORT=$((PORT + 1))
  taskset -c 0 "${BIN[$build]}" serve --listen 127.0.0.1:$PORT --max-connections 20000 \
    --log-level warn "$@" &
  SPID=$!
  wait_port "$PORT" "the $build server"
}
stop_server() { stop_pid "$SPID"; }
gauge() { # key → the value in /stats, or null if the server does not answer in 2 s (a server
  # that stops reading every socket while one client is behind does not read the request)
  python3 -c 'import json,sys,urllib.request as u
try: print(json.load(u.urlopen("http://127.0.0.1:%s/stats" % sys.argv[1], timeout=2))[sys.argv[2]])
except Exception: print("null")' "$PORT" "$1"
}
record() { # round build part json
  echo "{\"round\":$1,\"build\":\"$2\",\"part\":\"$3\",\"run\":$4}" >>"$OUT/relay.jsonl"
}

: >"$OUT/relay.jsonl"
echo "load before: $(uptime)" >"$OUT/relay.txt"
for round in $(seq "$ROUNDS"); do
  for build in base new; do
    for part in $PARTS; do
      case $part in
      fanout)
        for shape in "1000 10 64" "100 100 8"; do
          read -r c s w <<<"$shape"
          start_server $build
          json=$(taskset -c 1 $GEN bench fanout --url ws://127.0.0.1:$PORT/room --clients "$c" \
            --senders "$s" --window "$w" --size 64 --duration 10s --warmup 2s --pid "$SPID" \
            --json --quiet || echo '{}')
          stop_server
          record "$round" $build "fanout ${c}x${s} w$w" "$json"
        done
        ;;
      rooms)
        # Issue 14's test: /a has a client that never reads and a sender flooding 4 KiB
        # messages to one healthy reader; /b has one sender at 100 msg/s and one reader.
        start_server $build --max-queue-bytes 256KiB --lag-timeout 3s
        python3 "$WORK/stuck.py" $PORT /a 20 &
        STUCK=$!
        sleep 0.3
        taskset -c 1 $GEN bench fanout --url ws://127.0.0.1:$PORT/a --clients 2 --senders 1 \
          --size 4096 --rate 5000 --duration 11s --warmup 0s --json --quiet \
          >"$WORK/a.json" || echo '{}' >"$WORK/a.json" &
        FLOOD=$!
        b=$(taskset -c 1 $GEN bench fanout --url ws://127.0.0.1:$PORT/b --clients 2 --senders 1 \
          --size 64 --rate 100 --duration 10s --warmup 1s --json --quiet || echo '{}')
        wait $FLOOD || true
        slow=$(gauge slow_consumers_total)
        kill $STUCK 2>/dev/null || true
        stop_server
        record "$round" $build rooms \
          "{\"b\":$b,\"a\":$(cat "$WORK/a.json"),\"slow_consumers\":$slow}"
        ;;
      highwater)
        start_server $build --high-water-bytes 2MiB
        json=$(taskset -c 1 $GEN bench fanout --url ws://127.0.0.1:$PORT/room --clients 1000 \
          --senders 10 --window 64 --size 64 --duration 10s --warmup 2s --pid "$SPID" \
          --json --quiet || echo '{}')
        stop_server
        record "$round" $build highwater "$json"
        ;;
      echo)
        start_server $build --echo
        json=$(taskset -c 1 $GEN bench echo --url ws://127.0.0.1:$PORT/ --clients 100 --size 64 \
          --duration 10s --warmup 2s --pid "$SPID" --json --quiet || echo '{}')
        stop_server
        record "$round" $build echo "$json"
        ;;
      memory)
        # Issue 14's second figure: empty messages to one client that never reads.
        start_server $build --max-queue-bytes 256KiB --lag-timeout 60s
        python3 "$WORK/stuck.py" $PORT /m 60 &
        STUCK=$!
        sleep 0.3
        before=$(awk '/VmRSS/ {print $2}' /proc/$SPID/status)
        python3 "$WORK/flood.py" $PORT /m 16 &
        FLOOD=$!
        # Until the peak stops growing for a second (the server paused, or took it all).
        last=-1
        for _ in $(seq 60); do
          sleep 1
          peak=$(awk '/VmHWM/ {print $2}' /proc/$SPID/status)
          [ "$peak" = "$last" ] && break
          last=$peak
        done
        messages=$(gauge messages_in_total)
        kill $FLOOD $STUCK 2>/dev/null || true
        stop_server
        record "$round" $build memory \
          "{\"rss_before_kib\":$before,\"peak_kib\":$peak,\"messages\":$messages}"
        ;;
      esac
      echo "round $round $build $part: done" >&2
    done
  done
done
echo "load after: $(uptime)" >>"$OUT/relay.txt"

python3 - "$OUT/relay.jsonl" >>"$OUT/relay.txt" <<'EOF'
import json, statistics, sys
runs = [json.loads(l) for l in open(sys.argv[1])]
def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else float("nan")
parts = sorted({r["part"] for r in runs})
print(f"medians of {max(r['round'] for r in runs)} rounds, base then new (interleaved)")
for part in parts:
    rows = {b: [r["run"] for r in runs if r["part"] == part and r["build"] == b]
            for b in ("base", "new")}
    if part.startswith("fanout") or part == "highwater":
        title = "fanout 1000x10 w64 with --high-water-bytes 2MiB" if part == "highwater" else part
        print(f"\n{title}, 64 B")
        for b, rs in rows.items():
            rate = med([r.get("rate") for r in rs])
            cpu = med([r.get("server_cpu_pct") for r in rs])
            ns = med([r["server_cpu_pct"] / 100 / r["rate"] * 1e9 for r in rs
                      if r.get("rate") and r.get("server_cpu_pct")])
            p99 = med([(r.get("latency") or {}).get("p99_us") for r in rs])
            lost = sum(r.get("expected", 0) - r.get("received", 0) for r in rs)
            each = ", ".join("%.2f" % (r.get("rate", 0) / 1e6) for r in rs)
            print(f"  {b:4}  {rate/1e6:6.2f}M deliveries/s  server CPU {cpu:5.1f}%  "
                  f"{ns:5.1f} ns/delivery  p99 {p99/1000:6.1f} ms  lost {lost}  (runs: {each})")
        (b, n) = (rows["base"], rows["new"])
        rb, rn = med([r.get("rate") for r in b]), med([r.get("rate") for r in n])
        print(f"  new ÷ base: {rn / rb:.2f}× deliveries/s")
    elif part == "echo":
        print("\necho: 100 clients, one 64 B message in flight each")
        for b, rs in rows.items():
            rate = med([r.get("rate") for r in rs])
            us = med([r["server_cpu_pct"] / 100 / r["rate"] * 1e6 for r in rs
                      if r.get("rate") and r.get("server_cpu_pct")])
            print(f"  {b:4}  {rate/1e3:7.1f}k round trips/s  {us:5.2f} µs server CPU each")
    elif part == "rooms":
        print("\nrooms: /b at 100 msg/s while /a floods a client that never reads "
              "(--max-queue-bytes 256KiB --lag-timeout 3s)")
        for b, rs in rows.items():
            p99 = med([r["b"].get("latency", {}).get("p99_us") for r in rs])
            mx = med([r["b"].get("latency", {}).get("max_us") for r in rs])
            lost_b = sum(r["b"].get("expected", 0) - r["b"].get("received", 0) for r in rs)
            lost_a = sum(r["a"].get("expected", 0) - r["a"].get("received", 0) for r in rs)
            slow = [r["slow_consumers"] for r in rs]
            print(f"  {b:4}  /b p99 {p99/1000:8.1f} ms  max {mx/1000:8.1f} ms  lost /b {lost_b}  "
                  f"lost /a (healthy reader) {lost_a}  dropped {slow}")
    elif part == "memory":
        print("\nmemory: 16 MB of empty messages to one client that never reads "
              "(--max-queue-bytes 256KiB = 256 KiB)")
        for b, rs in rows.items():
            g = [r["peak_kib"] - r["rss_before_kib"] for r in rs]
            print(f"  {b:4}  resident growth {med(g):8.0f} KiB = {med(g)/256:5.1f} × the cap "
                  f"(runs: {g})")
EOF
cat "$OUT/relay.txt"
