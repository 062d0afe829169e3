#!/usr/bin/env bash
# The socket path's figures (issues 14 and 16), each mode writing its raw output to
# docs/figures/sockets/ and a summary to stdout:
#
#   benches/sockets.sh build      builds the base and this tree, installs uWebSockets.js (the
#                                 modes do it too; run this first, outside a lock)
#   benches/sockets.sh sndbuf     --send-buffer sweep: bytes a never-reading client hides in the
#                                 kernel, and fan-out throughput (closed loop, 64 B and 16 KiB)
#   benches/sockets.sh drop       time to drop a never-reading client under default flags
#   benches/sockets.sh syscalls   system calls per echo round trip, per handshake and per
#                                 delivery (fan-out closed loop and fixed rate), epoll_ctl
#                                 included, from the kernel's tracepoints (perf stat); the
#                                 base build and this tree
#   benches/sockets.sh profile    perf record -e cpu-clock and strace -c at 100k and 500k
#                                 deliveries/s offered; the base build and this tree
#   benches/sockets.sh uws [SCENARIO…]  the base build, this tree and uWebSockets.js in one
#                                 interleaved run: fixed100k fixed500k echo connect (default all)
#   benches/sockets.sh memory     server RSS per connection after one 60 KB message each
#
# Every server runs on core 0 (`taskset -c 0`) and the load generator (`chatloop bench`, from
# this tree) on core 1. The base build is `git archive $BASE` (default: main) built under
# target/sockets-base/. ROUNDS (default 3) rounds, medians. On a shared machine run each mode
# under the machine's measurement lock (`flock LOCKFILE benches/sockets.sh MODE`); a mode takes
# a few minutes. Needs: taskset, python3, node + npm (uws), strace (syscalls, profile), perf
# (profile; Debian: linux-perf).
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/lib.sh
MODE=${1:?usage: benches/sockets.sh build|sndbuf|drop|syscalls|profile|uws|memory}
shift
ROUNDS=${ROUNDS:-3}
BASE=${BASE:-main}
OUT=docs/figures/sockets
UWS_DIR=benches/.compare
UWS_VERSION=20.30.0-unofficial.0
mkdir -p "$OUT"
ulimit -n "$(ulimit -Hn)"

build() {
  cargo build --release --bin chatloop >&2
  build_base "$BASE" target/sockets-base
}
NEW=target/release/chatloop
OLD=target/sockets-base/target/release/chatloop
GEN=$NEW

uws_setup() {
  if [ ! -d "$UWS_DIR/node_modules/@trufflesuite/uws-js-unofficial" ]; then
    mkdir -p "$UWS_DIR"
    npm install --no-audit --no-fund --prefix "$UWS_DIR" \
      "@trufflesuite/uws-js-unofficial@$UWS_VERSION" >&2
  fi
}

PORT=$((20000 + RANDOM % 20000))
# start NAME [serve flags…]: NAME is new, base, uws or uws-echo; sets SPID and URL.
start() {
  local name=$1
  shift
  PORT=$((PORT + 1))
  case $name in
    new) taskset -c 0 "$NEW" serve --listen 127.0.0.1:$PORT --max-connections 20000 \
           --log-level warn "$@" & ;;
    base) taskset -c 0 "$OLD" serve --listen 127.0.0.1:$PORT --max-connections 20000 \
            --log-level warn "$@" & ;;
    uws) NODE_PATH=$PWD/$UWS_DIR/node_modules taskset -c 0 node benches/peers/uws-server.js $PORT & ;;
    uws-echo) NODE_PATH=$PWD/$UWS_DIR/node_modules taskset -c 0 node benches/peers/uws-server.js $PORT echo & ;;
  esac
  SPID=$!
  URL=ws://127.0.0.1:$PORT/room
  wait_port "$PORT" "$name"
}
stop() { stop_pid "$SPID"; }
# bench ARGS…: one `chatloop bench` run against $URL on core 1; prints its JSON line.
bench() {
  taskset -c 1 "$GEN" bench "$@" --url "$URL" --pid "$SPID" --json --quiet || echo '{}'
}
# stats: the server's /stats JSON (bash's /dev/tcp: no extra process to time).
stats() {
  exec 3<>/dev/tcp/127.0.0.1/$PORT
  printf 'GET /stats HTTP/1.1\r\nHost: x\r\n\r\n' >&3
  sed '1,/^\r$/d' <&3
  exec 3<&-
}
export -f stats
# fragment FILE.txt: FILE.md, the summary as the docs quote it (a figures block, checked by
# scripts/check-docs.sh; `scripts/figures.sh --render` puts it into the docs).
fragment() {
  { echo '```text'; cat "$1"; echo '```'; } >"${1%.txt}.md"
}
load() { cut -d' ' -f1-3 /proc/loadavg; }

case $MODE in
build)
  # Everything the modes run, built ahead (outside any measurement lock).
  build
  uws_setup
  ;;

sndbuf)
  build
  raw=$OUT/sndbuf.jsonl
  : >"$raw"
  for round in $(seq "$ROUNDS"); do
    for sb in 0 16KiB 32KiB 64KiB 128KiB 256KiB; do
      start new --send-buffer "$sb"
      hidden=$(python3 benches/stuck_reader.py 127.0.0.1:$PORT --size 1024 --rate 1000 --limit 30)
      small=$(bench fanout --clients 1000 --senders 10 --size 64 --duration 8s --warmup 2s)
      large=$(bench fanout --clients 100 --senders 10 --size 16384 --duration 8s --warmup 2s)
      stop
      printf '{"round":%s,"send_buffer":"%s","load":"%s","stuck":%s,"fanout_64":%s,"fanout_16k":%s}\n' \
        "$round" "$sb" "$(load)" "$hidden" "$small" "$large" >>"$raw"
      echo "round $round --send-buffer $sb: done" >&2
    done
  done
  python3 - "$raw" <<'EOF' | tee "$OUT/sndbuf.txt"
import json, statistics, sys
rows = {}
for line in open(sys.argv[1]):
    r = json.loads(line)
    rows.setdefault(r["send_buffer"], []).append(r)
med = lambda xs: statistics.median(xs) if xs else float("nan")
print(f"{'send buffer':>12} {'hidden KiB':>11} {'64 B deliveries/s':>18} {'per CPU-s':>10} "
      f"{'16 KiB deliveries/s':>20} {'per CPU-s':>10} {'lost':>5}")
for sb, rs in rows.items():
    hid = med([r["stuck"]["queue_grew"]["hidden_bytes"] / 1024 for r in rs if r["stuck"].get("queue_grew")])
    def fig(key):
        rate = med([r[key].get("rate", 0) for r in rs])
        per = med([r[key].get("rate", 0) / max(r[key].get("server_cpu_pct") or 1, 1) * 100 for r in rs])
        return rate, per
    (a, ac), (b, bc) = fig("fanout_64"), fig("fanout_16k")
    lost = sum(r[k].get("lost", 0) + r[k].get("errors", 0) for r in rs for k in ("fanout_64", "fanout_16k"))
    print(f"{sb:>12} {hid:>11.0f} {a:>18.0f} {ac:>10.0f} {b:>20.0f} {bc:>10.0f} {lost:>5}")
print("loads:", sorted({r["load"] for rs in rows.values() for r in rs}))
EOF
  fragment "$OUT/sndbuf.txt"
  ;;

drop)
  build
  raw=$OUT/drop.jsonl
  : >"$raw"
  for round in $(seq "$ROUNDS"); do
    for rate in 1000 100 10; do
      start new
      line=$(python3 benches/stuck_reader.py 127.0.0.1:$PORT --size 1024 --rate $rate --limit 120)
      stop
      printf '{"round":%s,"load":"%s","stuck":%s}\n' "$round" "$(load)" "$line" >>"$raw"
      echo "round $round rate $rate: $line" >&2
    done
  done
  python3 - "$raw" <<'EOF' | tee "$OUT/drop.txt"
import json, statistics, sys
rows = {}
for line in open(sys.argv[1]):
    r = json.loads(line)
    rows.setdefault(r["stuck"]["rate"], []).append(r["stuck"])
print("never-reading client, default flags, 1 KiB messages")
print(f"{'msgs/s':>8} {'queue grew after s':>19} {'hidden KiB':>11} {'dropped after s':>16}")
for rate, rs in rows.items():
    m = lambda xs: statistics.median(xs) if xs else float("nan")
    grew = m([r["queue_grew"]["secs"] for r in rs if r["queue_grew"]])
    hid = m([r["queue_grew"]["hidden_bytes"] / 1024 for r in rs if r["queue_grew"]])
    drop = m([r["dropped_secs"] for r in rs if r["dropped_secs"] is not None])
    print(f"{rate:>8.0f} {grew:>19.2f} {hid:>11.0f} {drop:>16.2f}")
EOF
  fragment "$OUT/drop.txt"
  ;;

syscalls)
  build
  raw=$OUT/syscalls.txt
  : >"$raw"
  # Exact counts from the kernel's syscall tracepoints (perf stat), which, unlike strace, do
  # not slow the server down; the server's own /stats give the work done in the same window.
  calls=(recvfrom sendto writev read write epoll_wait epoll_ctl accept4 setsockopt shutdown close)
  events=$(printf 'syscalls:sys_enter_%s,' "${calls[@]}")
  for round in $(seq "$ROUNDS"); do
    for scenario in echo fanout fixed connect; do
      for name in base new; do
        case $scenario in
          echo) start "$name" --echo
                args=(echo --clients 100 --size 64 --duration 10s --warmup 1s) ;;
          fanout) start "$name"
                  args=(fanout --clients 1000 --senders 10 --size 64 --duration 10s --warmup 1s) ;;
          fixed) start "$name"
                 args=(fanout --clients 1000 --senders 10 --rate 10 --size 64 --duration 10s --warmup 1s) ;;
          connect) start "$name"
                   args=(connect --concurrency 100 --duration 10s --warmup 1s) ;;
        esac
        bench "${args[@]}" >/dev/null &
        gen=$!
        sleep 5
        # The counters are read inside the traced window, so both cover the same 3 s.
        export PORT OUT
        perf stat -x, -e "${events%,}" -p "$SPID" -o "$OUT/perf-stat.tmp" -- \
          bash -c 'stats >"$OUT/before.tmp"; sleep 3; stats >"$OUT/after.tmp"' 2>/dev/null
        before=$(cat "$OUT/before.tmp") after=$(cat "$OUT/after.tmp")
        wait $gen || true
        stop
        python3 - "$round" "$name" "$scenario" "$before" "$after" "$OUT/perf-stat.tmp" "$(load)" \
          <<'EOF' | tee -a "$raw"
import json, sys
rnd, name, scenario, before, after, path, load = sys.argv[1:]
b, a = json.loads(before), json.loads(after)
d = {k: a[k] - b[k] for k in ("messages_in_total", "deliveries_total", "upgraded_total")}
calls = {}
for line in open(path):
    parts = line.strip().split(",")
    if len(parts) > 2 and parts[2].startswith("syscalls:sys_enter_"):
        calls[parts[2][len("syscalls:sys_enter_"):]] = int(parts[0]) if parts[0].isdigit() else 0
unit, n = {"echo": ("round trip", d["messages_in_total"]),
           "connect": ("handshake", d["upgraded_total"])}.get(
    scenario, ("delivery", d["deliveries_total"]))
total = sum(calls.values())
per = lambda v: v / n if n else float("nan")
busy = " ".join(f"{k}={per(v):.3f}" for k, v in sorted(calls.items(), key=lambda kv: -kv[1]) if v)
print(f"round {rnd} {name:4} {scenario:7}: {per(total):.3f} syscalls per {unit} ({n} in 3 s; "
      f"load {load}): {busy}")
EOF
      done
    done
  done
  rm -f "$OUT"/perf-stat.tmp "$OUT"/before.tmp "$OUT"/after.tmp
  ;;

profile)
  build
  # `perf report | head` ends perf report with SIGPIPE: not a failure here.
  set +o pipefail
  for name in base new; do
    for rate in 10 50; do
      tag=$name-$((rate * 10))k
      start "$name"
      bench fanout --clients 1000 --senders 10 --rate $rate --size 64 --duration 14s \
        --warmup 2s >"$OUT/profile-$tag.bench.json" &
      gen=$!
      sleep 5
      perf record -e cpu-clock -F 2000 -g -p "$SPID" -o "$OUT/perf.tmp" -- sleep 4 2>/dev/null
      timeout -s INT 4 strace -c -f -p "$SPID" -o "$OUT/profile-$tag.strace.txt" 2>/dev/null || true
      wait $gen || true
      stop
      {
        echo "# $tag: fan-out 1000 clients x 10 senders x $rate msg/s, 64 B (load $(load))"
        echo "# where the server's CPU went (perf record -e cpu-clock, 4 s):"
        perf report -i "$OUT/perf.tmp" --no-children --sort dso -g none --stdio 2>/dev/null |
          grep -v '^#' | grep -v '^$' | head -5
        echo "# top symbols:"
        perf report -i "$OUT/perf.tmp" --no-children --sort dso,symbol -g none --stdio 2>/dev/null |
          grep -v '^#' | grep -v '^$' | head -40 | cut -c1-120
        echo "# user-space symbols:"
        perf report -i "$OUT/perf.tmp" --no-children --sort dso,symbol -g none --stdio 2>/dev/null |
          grep -v '^#' | grep -v '^$' | grep -v kernel | head -15 | cut -c1-120
      } >"$OUT/profile-$tag.txt"
      rm -f "$OUT/perf.tmp"
      echo "profile $tag: done" >&2
    done
  done
  head -8 "$OUT"/profile-*-*k.txt
  ;;

uws)
  build
  uws_setup
  scenarios=("$@")
  [ ${#scenarios[@]} -gt 0 ] || scenarios=(fixed100k fixed500k echo connect)
  raw=$OUT/uws-$(IFS=-; echo "${scenarios[*]}").jsonl
  : >"$raw"
  for round in $(seq "$ROUNDS"); do
    for scenario in "${scenarios[@]}"; do
      for server in base new uws; do
        flags=() peer=$server
        case $scenario in
          fixed100k) args=(fanout --clients 1000 --senders 10 --rate 10 --size 64 --duration 10s --warmup 2s) ;;
          fixed500k) args=(fanout --clients 1000 --senders 10 --rate 50 --size 64 --duration 10s --warmup 2s) ;;
          echo) args=(echo --clients 100 --size 64 --duration 10s --warmup 2s)
                flags=(--echo); [ "$server" = uws ] && peer=uws-echo ;;
          connect) args=(connect --concurrency 100 --duration 10s --warmup 2s) ;;
        esac
        if [ "$server" = uws ]; then start "$peer"; else start "$peer" "${flags[@]}"; fi
        line=$(bench "${args[@]}")
        stop
        printf '{"round":%s,"scenario":"%s","server":"%s","load":"%s","result":%s}\n' \
          "$round" "$scenario" "$server" "$(load)" "$line" >>"$raw"
        echo "round $round $scenario $server: done" >&2
      done
    done
  done
  python3 - "$raw" <<'EOF' | tee "${raw%.jsonl}.txt"
import json, statistics, sys
rows = {}
for line in open(sys.argv[1]):
    r = json.loads(line)
    rows.setdefault(r["scenario"], {}).setdefault(r["server"], []).append(r)
med = lambda xs: statistics.median(xs) if xs else float("nan")
for scenario, by in rows.items():
    print(f"== {scenario}")
    figs = {}
    for server in ("base", "new", "uws"):
        rs = [r["result"] for r in by.get(server, [])]
        cpu = med([x.get("server_cpu_pct") or float("nan") for x in rs])
        rate = med([x.get("rate") or 0 for x in rs])
        per = med([(x.get("rate") or 0) / (x.get("server_cpu_pct") or float("inf")) * 100 for x in rs])
        p99 = med([((x.get("latency") or {}).get("p99_us") or float("nan")) / 1000 for x in rs])
        lost = sum(x.get("lost", 0) + x.get("errors", 0) for x in rs)
        figs[server] = (cpu, per, p99)
        print(f"  {server:5} server CPU {cpu:5.1f}%  rate {rate:10.0f}/s  per server CPU-s {per:10.0f}"
              f"  p99 {p99:7.2f} ms  lost+errors {lost}  (runs: {len(rs)})")
    n, u, b = figs["new"], figs["uws"], figs["base"]
    print(f"  new/uws: CPU {n[0]/u[0]:.2f}x  per CPU-s {n[1]/u[1]:.2f}x  p99 {n[2]/u[2]:.2f}x"
          f"   new/base: CPU {n[0]/b[0]:.2f}x  per CPU-s {n[1]/b[1]:.2f}x  p99 {n[2]/b[2]:.2f}x")
loads = sorted({r["load"] for by in rows.values() for rs in by.values() for r in rs})
print("load averages seen:", loads[0], "…", loads[-1])
EOF
  ;;

memory)
  build
  bins=("$OLD" "$NEW")
  # The board build (musl's allocator), when its target is installed.
  MUSL=target/x86_64-unknown-linux-musl/release-small/chatloop
  if rustup target list --installed 2>/dev/null | grep -q x86_64-unknown-linux-musl; then
    cargo build --profile release-small --no-default-features \
      --target x86_64-unknown-linux-musl >&2
    bins+=("$MUSL")
  fi
  raw=$OUT/memory.jsonl
  : >"$raw"
  for bin in "${bins[@]}"; do
    for together in 0 1; do
      python3 benches/rss_after_message.py "$bin" 1000 60000 $together | tee -a "$raw"
    done
  done
  ;;

*)
  echo "error: unknown mode '$MODE'" >&2
  exit 2
  ;;
esac
