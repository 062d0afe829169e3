#!/usr/bin/env bash
# Re-measures the figures the docs quote. Each section writes its raw output under
# docs/figures/ (and NAME.about: the machine, the commit and the load average it ran under),
# turns it into a Markdown fragment docs/figures/NAME.md (the table or the lines the docs show,
# with the command and the machine beside them), and copies each fragment into the docs
# between its markers:
#
#   <!-- figures:NAME (scripts/figures.sh SECTION) -->  …generated…  <!-- /figures:NAME -->
#
# so no figure in docs/ is typed by hand. scripts/check-docs.sh fails when a block differs from
# its fragment.
#
#   ./scripts/figures.sh                    every section, one after another
#   ./scripts/figures.sh load memory        some sections
#   ./scripts/figures.sh --render           no measuring: rebuild the fragments from the raw
#                                           files that are there, and copy them into the docs
#
# Sections, and what each took on a shared 2-core machine (the whole run: about 30 minutes,
# half of it the size builds):
#   reference `chatloop serve --help` and the names in GET /metrics          seconds
#   service   deploy/chatloop.service: systemd-analyze verify, and the syscalls of a server
#             session (strace) against the unit's filter                    ~10 s + a build
#             (needs strace and systemd-analyze)
#   load      chatloop bench: fan-out, fixed rate, idle, connect; ROUNDS (3) rounds, server
#             pinned to core 0 and generator to core 1                     ~3 min, timed
#   memory    the lean build's resident memory: at idle, per idle connection, the frame
#             buffer a connection keeps, the cost of a queued tiny message  ~30 s + a build
#   sizes     scripts/sizes.sh and --ablation: 30 builds                   ~13 min of builds
#   soak      scripts/soak.sh: churn, slow consumers, slowloris at scale   ~2 min, timed
#   redis     benches/redis.sh, and the cross-node latency test ROUNDS times ~3 min, timed
#   fuzz      scripts/fuzz.sh FUZZ_SECONDS (120) per target                ~7 min with its build
#   autobahn  scripts/autobahn.sh: RFC 6455 conformance                    ~1 min (+1 to install)
#
# Timed sections want a quiet machine: other processes show up as "waited" CPU in the load
# table and as noise everywhere. On a shared machine, run them under a lock the other
# measurements take too (`flock LOCKFILE ./scripts/figures.sh load`). The figures that depend
# on the machine say which machine; per-CPU-second figures travel better than rates.
set -euo pipefail
cd "$(dirname "$0")/.."

FIG=docs/figures
ROUNDS=${ROUNDS:-3}
FUZZ_SECONDS=${FUZZ_SECONDS:-120}
ALL=(reference service load memory sizes soak redis fuzz autobahn)
mkdir -p "$FIG"

# --- helpers ---------------------------------------------------------------------------------

# The machine and the tree measured, in words.
machine() {
  local cpu mem tree
  cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
  mem=$(awk '/^MemTotal/ { printf "%.0f", $2 / 1048576 }' /proc/meminfo)
  tree=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
  git diff --quiet HEAD -- src crates Cargo.toml Cargo.lock 2>/dev/null || tree="$tree+changes"
  echo "$(date -u +%F), $(nproc) cores (${cpu:-unknown CPU}), $mem GiB, $(uname -sr), commit $tree"
}

loadavg() { cut -d' ' -f1-3 /proc/loadavg; }

# Installs the rustup targets given, and the cross linkers the glibc ones need, if missing.
need_targets() {
  local installed t
  installed=$(rustup target list --installed)
  for t in "$@"; do
    grep -qx "$t" <<<"$installed" || rustup target add "$t"
  done
  # shellcheck source=scripts/packages.sh
  . scripts/packages.sh
  ensure_packages "${CROSS_PACKAGES[@]}"
}

# Writes docs/figures/NAME.about: where and when NAME was measured. NAME [LOADAVG_BEFORE]
about() {
  if [ -n "${2:-}" ]; then
    echo "on $(machine); load average $2 before, $(loadavg) after" >"$FIG/$1.about"
  else
    echo "on $(machine)" >"$FIG/$1.about"
  fi
}

# Copies docs/figures/NAME.md between the NAME markers, in every doc that has them.
render() {
  local name=$1 frag=$FIG/$1.md f
  [ -f "$frag" ] || { echo "figures: no $frag (run its section first)" >&2; return 1; }
  for f in $(grep -l -- "<!-- figures:$name " README.md docs/*.md 2>/dev/null || true); do
    awk -v name="$name" -v frag="$frag" '
      index($0, "<!-- figures:" name " ") == 1 {
        print; while ((getline line < frag) > 0) print line; close(frag); skip = 1; next
      }
      $0 == "<!-- /figures:" name " -->" { skip = 0 }
      !skip { print }
    ' "$f" >"$f.tmp"
    mv "$f.tmp" "$f"
  done
}

# Starts `BINARY serve --listen 127.0.0.1:0 --log-level info ARGS…` (prefixed by $PIN, if set);
# sets SPID, PORT (from its "listening on" line) and SLOG, its log file.
start_server() {
  local bin=$1
  shift
  SLOG=$(mktemp)
  # shellcheck disable=SC2086 # $PIN is a command prefix or nothing
  ${PIN:-} "$bin" serve --listen 127.0.0.1:0 --max-connections 20000 --log-level info "$@" \
    2>"$SLOG" &
  SPID=$!
  PORT=
  for _ in $(seq 100); do
    PORT=$(sed -n 's|.*listening on ws://127\.0\.0\.1:\([0-9]*\)/.*|\1|p' "$SLOG" | head -n 1)
    [ -n "$PORT" ] && break
    sleep 0.1
  done
  [ -n "$PORT" ] || { echo "figures: $bin did not start" >&2; cat "$SLOG" >&2; exit 1; }
}

stop_server() {
  [ -n "${SPID:-}" ] || return 0
  kill "$SPID" 2>/dev/null || true
  wait "$SPID" 2>/dev/null || true
  rm -f "${SLOG:-}"
  SPID=
}
trap 'stop_server 2>/dev/null || true' EXIT

# A fragment that shows a raw file as it is, in a text block, with the command that wrote it:
# NAME COMMAND [RAW]
text_fragment() {
  local name=$1 command=$2 raw=${3:-$FIG/$1.txt}
  { echo '```text'; cat "$raw"; echo '```'; echo
    echo "Measured by \`scripts/figures.sh\` (\`$command\`) $(cat "$FIG/$name.about")." \
      "Raw: [figures/$(basename "$raw")](figures/$(basename "$raw"))."
  } >"$FIG/$name.md"
}

# --- reference: the flags and the metrics, as the binary prints them --------------------------

section_reference() {
  cargo build --release --bin chatloop
  local bin=target/release/chatloop
  local get='import sys, urllib.request
print(urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/metrics").read().decode(), end="")'
  "$bin" serve --help >"$FIG/serve-help.txt"
  start_server "$bin"
  python3 -c "$get" "$PORT" >"$FIG/metrics.txt"
  stop_server
  # With --redis (a Redis that is not there: the node warns, serves locally and retries).
  start_server "$bin" --redis redis://127.0.0.1:1
  python3 -c "$get" "$PORT" >"$FIG/metrics-redis.txt"
  stop_server
}

fragments_reference() {
  { echo '```text'; cat "$FIG/serve-help.txt"; echo '```'; echo
    echo "Printed by \`chatloop serve --help\` (\`scripts/figures.sh reference\` copies it here;" \
      "\`scripts/check-docs.sh\` fails when the binary prints something else)."
  } >"$FIG/serve-help.md"
  { metrics_table "$FIG/metrics.txt"
    echo "From \`GET /metrics\` of a fresh server (\`scripts/figures.sh reference\`; raw:" \
      "[figures/metrics.txt](figures/metrics.txt)). With \`--redis\`, the entries of" \
      "[cluster.md](cluster.md) come too."
  } >"$FIG/metrics.md"
  { metrics_table "$FIG/metrics-redis.txt" redis_
    echo "From \`GET /metrics\` of a server run with \`--redis\` (\`scripts/figures.sh" \
      "reference\`; raw: [figures/metrics-redis.txt](figures/metrics-redis.txt))."
  } >"$FIG/metrics-redis.md"
  echo serve-help metrics metrics-redis
}

# The HELP and TYPE lines of a /metrics text as a table, then an empty line: FILE [PREFIX]
# (only the names that start with chatloop_PREFIX).
metrics_table() {
  python3 - "$1" "${2:-}" <<'EOF_PY'
import sys
helps, types = {}, {}
for line in open(sys.argv[1]):
    if line.startswith("# HELP "):
        name, _, text = line[7:].rstrip("\n").partition(" ")
        helps[name] = text
    elif line.startswith("# TYPE "):
        name, kind = line[7:].split()
        types[name] = kind
prefix = "chatloop_" + sys.argv[2]
print("| `/metrics` name (`/stats` key: the same without `chatloop_`) | type | what it counts |")
print("|---|---|---|")
for name, text in helps.items():
    if name.startswith(prefix):
        print(f"| `{name}` | {types.get(name, '')} | {text} |")
print()
EOF_PY
}

# --- service: the systemd unit against the binary ----------------------------------------------

section_service() {
  local t=x86_64-unknown-linux-musl
  need_targets $t
  cargo build --profile release-small --no-default-features --target $t
  cargo build --release --bin chatloop
  local lean=target/$t/release-small/chatloop bench=target/release/chatloop
  local raw=$FIG/service.txt dir trace
  dir=$(mktemp -d)
  # systemd-analyze verify wants the binary where ExecStart says: point a copy of the unit at it.
  sed "s|^ExecStart=/usr/local/bin/chatloop|ExecStart=$PWD/$lean|" deploy/chatloop.service \
    >"$dir/chatloop.service"
  {
    echo "# systemd-analyze verify deploy/chatloop.service (ExecStart pointed at the lean build)"
    if systemd-analyze verify "$dir/chatloop.service" 2>&1; then
      echo "verify: passed"
    else
      echo "verify: FAILED"
    fi
  } >"$raw"
  # A server session under strace: start, chat under load, /stats, SIGTERM.
  trace=$dir/trace
  PIN="strace -f -qq -o $trace" start_server "$lean"
  "$bench" bench fanout --clients 50 --senders 5 --duration 2s --warmup 200ms \
    --url "ws://127.0.0.1:$PORT/room" --quiet >/dev/null
  python3 -c 'import sys, urllib.request
urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/stats").read()' "$PORT"
  # SIGTERM to the server itself (strace's child): it closes its clients and exits 0.
  pkill -TERM -P "$SPID"
  wait "$SPID" || true
  SPID=
  rm -f "$SLOG"
  systemd-analyze syscall-filter >"$dir/groups" 2>/dev/null
  python3 - "$trace" "$dir/groups" >>"$raw" <<'EOF_PY'
import re, sys
trace, groups_file = sys.argv[1:3]
used = set()
for line in open(trace):
    m = re.match(r"^\d+\s+([a-z_0-9]+)\(", line)
    if m:
        used.add(m.group(1))
groups, cur = {}, None
for line in open(groups_file):
    if line.startswith("@"):
        cur = groups.setdefault(line.strip(), [])
    elif line.startswith("    ") and not line.strip().startswith("#") and cur is not None:
        cur.append(line.strip())
def expand(g, seen=()):
    out = set()
    for item in groups.get(g, []):
        out |= expand(item, seen + (g,)) if item.startswith("@") and item not in seen else {item}
    return out
allowed = expand("@system-service") - expand("@privileged") - expand("@resources")
print("# syscalls of a session of the lean build (strace -f: start, chatloop bench fanout, /stats, SIGTERM)")
print(" ".join(sorted(used)))
outside = sorted(used - allowed)
print("outside SystemCallFilter=@system-service ~@privileged @resources: " + (" ".join(outside) or "none"))
EOF_PY
  rm -rf "$dir"
  about service
}

fragments_service() {
  { echo '```text'; cat "$FIG/service.txt"; echo '```'; echo
    echo "Checked by \`scripts/figures.sh service\` $(cat "$FIG/service.about")." \
      "Raw: [figures/service.txt](figures/service.txt)."
  } >"$FIG/service.md"
  echo service
}

# --- load: chatloop bench against the release build --------------------------------------------

section_load() {
  cargo build --release --bin chatloop
  local bin=target/release/chatloop raw=$FIG/load.jsonl before
  ulimit -n "$(ulimit -Hn)"
  before=$(loadavg)
  : >"$raw"
  # name | bench arguments (the URL, --pid and --json are added)
  local scenarios=(
    "fanout 1000x10|fanout --clients 1000 --senders 10 --size 64 --duration 10s --warmup 2s"
    "fanout 100x100|fanout --clients 100 --senders 100 --size 64 --duration 10s --warmup 2s"
    "fanout 1000x10 at 50/s|fanout --clients 1000 --senders 10 --size 64 --rate 50 --duration 10s --warmup 2s"
    "idle 10000|idle --clients 10000 --duration 3s"
    "connect|connect --concurrency 100 --duration 10s --warmup 2s"
  )
  local round s name args line
  for round in $(seq "$ROUNDS"); do
    for s in "${scenarios[@]}"; do
      name=${s%%|*} args=${s#*|}
      PIN="taskset -c 0" start_server "$bin"
      # shellcheck disable=SC2086 # one word per argument
      line=$(taskset -c 1 "$bin" bench $args --url "ws://127.0.0.1:$PORT/room" --pid "$SPID" \
        --json --quiet) || line='{"errors":1,"failures":["the bench failed"]}'
      stop_server
      printf '{"round":%s,"name":"%s","args":"%s","result":%s}\n' "$round" "$name" "$args" "$line" \
        >>"$raw"
      echo "load: round $round, $name" >&2
    done
  done
  about load "$before"
}

fragments_load() {
  python3 - "$FIG/load.jsonl" "$(cat "$FIG/load.about")" >"$FIG/load.md" <<'EOF_PY'
import json, sys
raw, about = sys.argv[1:3]
runs, rounds = {}, set()
for line in open(raw):
    r = json.loads(line)
    rounds.add(r["round"])
    runs.setdefault(r["name"], {"args": r["args"], "results": []})["results"].append(r["result"])

def median_run(results, key):
    ok = sorted((r for r in results if key(r) is not None), key=key)
    return ok[(len(ok) - 1) // 2] if ok else None

def si(x):
    """Three significant figures with k or M: 1.91 M, 499 k, 6.53 k."""
    for div, suffix in ((1e6, " M"), (1e3, " k"), (1, "")):
        if x >= div or div == 1:
            v = x / div
            return f"{v:.{2 if v < 10 else 1 if v < 100 else 0}f}{suffix}"

def rate(x, unit=""):
    return f"{si(x)} {unit}".strip()

def cpu(r, who):
    c, w = r.get(f"{who}_cpu_pct"), r.get(f"{who}_wait_pct")
    return "—" if c is None else f"{c:.0f}% (+{w:.0f}%)"

print("| scenario (`chatloop bench …`) | median of the runs | every run | server CPU (+ waited) | per server CPU-second | generator CPU (+ waited) |")
print("|---|---|---|---|---|---|")
for name, entry in runs.items():
    results, args = entry["results"], entry["args"]
    bad = sum(1 for r in results if r.get("errors") or r.get("lost") or r.get("out_of_order"))
    if name.startswith("idle"):
        m = median_run(results, lambda r: r.get("server_kib_per_connection"))
        every = ", ".join(f"{r['server_kib_per_connection']:.2f}" for r in results
                          if r.get("server_kib_per_connection") is not None)
        med = f"{m['server_kib_per_connection']:.2f} KiB of server RSS per connection" if m else "—"
        print(f"| `{args}` | {med} | {every} KiB | — | — | — |")
        continue
    m = median_run(results, lambda r: r.get("rate"))
    unit = m["rate_unit"]
    every = ", ".join(rate(r["rate"]) for r in sorted(results, key=lambda r: r.get("rate", 0)))
    med = rate(m["rate"], unit)
    if m.get("latency"):
        lat = m["latency"]
        med += f"; p50 {lat['p50_us'] / 1000:.1f} ms, p99 {lat['p99_us'] / 1000:.1f} ms"
    if m.get("expected"):
        med += "; all delivered" if m["received"] == m["expected"] else f"; {m['lost']} lost"
    per_cpu = "—"
    if m.get("server_cpu_pct"):
        per_cpu = rate(m["rate"] / (m["server_cpu_pct"] / 100), unit.split("/")[0])
    if bad:
        med += f" ({bad} of {len(results)} runs had errors, loss or disorder)"
    print(f"| `{args}` | {med} | {every} | {cpu(m, 'server')} | {per_cpu} | {cpu(m, 'generator')} |")
print()
print(f"Measured by `scripts/figures.sh load` ({len(rounds)} rounds, the scenarios interleaved; "
      f"server `taskset -c 0`, generator `taskset -c 1`, release build) {about}. "
      f"Raw: one JSON line per run, [figures/load.jsonl](figures/load.jsonl).")
EOF_PY
  echo load
}

# --- memory: the lean build on x86_64 musl --------------------------------------------------------

section_memory() {
  local t=x86_64-unknown-linux-musl
  need_targets $t
  cargo build --profile release-small --no-default-features --target $t
  cargo build --release --bin chatloop # for `chatloop bench` and the default build's idle RSS
  local lean=target/$t/release-small/chatloop bench=target/release/chatloop
  local raw=$FIG/memory.txt before i n size
  ulimit -n "$(ulimit -Hn)"
  before=$(loadavg)
  {
    echo "# idle: resident memory 1 s after start (kB, from /proc/PID/status)"
    for i in 1 2 3 4 5; do
      start_server "$lean"
      sleep 1
      echo "lean $(grep -E '^(VmRSS|RssAnon|RssFile)' /proc/$SPID/status | tr -s ' \t' ' ' | tr '\n' ' ')"
      stop_server
    done
    start_server "$bench"
    sleep 1
    echo "default $(grep -E '^(VmRSS|RssAnon|RssFile)' /proc/$SPID/status | tr -s ' \t' ' ' | tr '\n' ' ')"
    stop_server
    echo "# idle connections: chatloop bench idle --clients N --duration 3s --pid PID --json"
    for n in 1000 5000; do
      start_server "$lean"
      echo "idle $n $("$bench" bench idle --clients "$n" --duration 3s --url "ws://127.0.0.1:$PORT/" \
        --pid "$SPID" --json --quiet)"
      stop_server
    done
    echo "# kept frame buffers: scripts/memprobe.py frames (each connection alone in its room)"
    for size in 65000 8000; do
      start_server "$lean"
      echo "frames $(python3 scripts/memprobe.py frames --port "$PORT" --pid "$SPID" --conns 200 --size "$size")"
      stop_server
    done
    echo "# tiny messages: scripts/memprobe.py tiny (one reader that never reads)"
    start_server "$lean"
    echo "tiny $(python3 scripts/memprobe.py tiny --port "$PORT" --pid "$SPID" --log "$SLOG")"
    stop_server
  } >"$raw"
  about memory "$before"
}

fragments_memory() {
  python3 - "$FIG/memory.txt" "$(cat "$FIG/memory.about")" >"$FIG/memory.md" <<'EOF_PY'
import json, sys
raw, about = sys.argv[1:3]
lean, default, idle, frames, tiny = [], None, {}, {}, None
for line in open(raw):
    kind, _, rest = line.rstrip("\n").partition(" ")
    if kind in ("lean", "default"):
        f = rest.split()
        kb = {f[i].rstrip(":"): int(f[i + 1]) for i in range(0, len(f) - 1, 3)}
        if kind == "lean":
            lean.append(kb)
        else:
            default = kb
    elif kind == "idle":
        n, js = rest.split(" ", 1)
        idle[int(n)] = json.loads(js)
    elif kind == "frames":
        r = json.loads(rest)
        frames[r["size"]] = r
    elif kind == "tiny":
        tiny = json.loads(rest)
def span(key):
    lo, hi = min(k[key] for k in lean), max(k[key] for k in lean)
    return f"{lo}" if lo == hi else f"{lo}–{hi}"
print("| what (lean build: server only, `release-small`, x86_64 musl) | measured |")
print("|---|---|")
print(f"| resident at idle, {len(lean)} starts (`VmRSS`) | {span('VmRSS')} KiB: {span('RssFile')} KiB the binary's own pages (`RssFile`), {span('RssAnon')} KiB heap and stack (`RssAnon`) |")
if default:
    print(f"| for comparison: the default `release` build (glibc, all features) at idle | {default['VmRSS']} KiB |")
for n, r in sorted(idle.items()):
    print(f"| per idle connection, {n:,} open (`chatloop bench idle --clients {n}`) | {r['server_kib_per_connection']:.2f} KiB |")
for size, r in sorted(frames.items(), reverse=True):
    print(f"| per connection, kept after it sent one {size:,}-byte message ({r['conns']} connections) | {r['kib_per_conn']:.1f} KiB |")
if tiny:
    print(f"| per queued empty message, beyond its 2-byte frame (one client that never reads, until it is dropped) | {tiny['bytes_per_message']:.0f} bytes: {tiny['max_queued_bytes']:,} bytes queued in its outbox, {tiny['rss_growth_kib']:,} KiB more resident |")
print()
print(f"Measured by `scripts/figures.sh memory` {about}. Raw: [figures/memory.txt](figures/memory.txt); "
      f"the probes are [`scripts/memprobe.py`](../scripts/memprobe.py).")
EOF_PY
  echo memory
}

# --- sizes: scripts/sizes.sh -----------------------------------------------------------------

section_sizes() {
  need_targets aarch64-unknown-linux-musl armv7-unknown-linux-gnueabihf aarch64-unknown-linux-gnu \
    x86_64-unknown-linux-musl
  ./scripts/sizes.sh >"$FIG/sizes.txt"
  ./scripts/sizes.sh --ablation >"$FIG/sizes-ablation.txt"
  about sizes
}

fragments_sizes() {
  local about
  about=$(cat "$FIG/sizes.about")
  { cat "$FIG/sizes.txt"; echo
    echo "Measured by \`scripts/figures.sh sizes\` (\`./scripts/sizes.sh\`; bytes, stripped)" \
      "$about. Raw: [figures/sizes.txt](figures/sizes.txt)."
  } >"$FIG/sizes.md"
  { cat "$FIG/sizes-ablation.txt"; echo
    echo "Measured by \`scripts/figures.sh sizes\` (\`./scripts/sizes.sh --ablation\`) $about." \
      "Raw: [figures/sizes-ablation.txt](figures/sizes-ablation.txt)."
  } >"$FIG/sizes-ablation.md"
  echo sizes sizes-ablation
}

# --- soak, redis, fuzz, autobahn: the scripts' own summaries ----------------------------------------

section_soak() {
  local before
  before=$(loadavg)
  ./scripts/soak.sh >"$FIG/soak.txt"
  about soak "$before"
}

fragments_soak() {
  text_fragment soak "./scripts/soak.sh"
  echo soak
}

section_redis() {
  local before
  before=$(loadavg)
  : >"$FIG/redis.tsv"
  RAW=$FIG/redis.tsv ROUNDS=$ROUNDS benches/redis.sh >"$FIG/redis.txt"
  about redis "$before"
  before=$(loadavg)
  cargo test --release --test redis --no-run
  : >"$FIG/redis-latency.txt"
  for _ in $(seq "$ROUNDS"); do
    LAT_RECEIVERS=10 taskset -c 1 cargo test --release --test redis -- --ignored --nocapture \
      cross_node_latency 2>/dev/null | grep -oE '(same|cross) node .*' >>"$FIG/redis-latency.txt"
  done
  about redis-latency "$before"
}

fragments_redis() {
  python3 - "$FIG/redis.tsv" "$(cat "$FIG/redis.about")" >"$FIG/redis.md" <<'EOF_PY'
import json, statistics, sys
raw, about = sys.argv[1:3]
runs, rounds = {}, set()
for line in open(raw):
    rnd, name, js = line.rstrip("\n").split("\t", 2)
    rounds.add(rnd)
    mode, _, scenario = name.partition(" ")
    runs.setdefault(scenario, {}).setdefault(mode, []).append(json.loads(js or "{}"))
med = statistics.median
def m(x):
    return f"{x / 1e6:.2f} M" if x >= 1e6 else f"{x / 1e3:.0f} k"
print("| `chatloop bench` scenario, 64-byte messages | without `--redis` | with `--redis` | deliveries per server CPU-second, without → with |")
print("|---|---|---|---|")
for scenario, modes in runs.items():
    cells, per_cpu = [], []
    for mode in ("local", "redis"):
        rs = [r for r in modes.get(mode, []) if r.get("rate")]
        if "latency" in scenario:
            lat = [r["latency"] for r in rs if r.get("latency")]
            cells.append(f"p50 {med(l['p50_us'] for l in lat) / 1000:.1f} ms, "
                         f"p99 {med(l['p99_us'] for l in lat) / 1000:.1f} ms")
        else:
            cells.append(f"{m(med(r['rate'] for r in rs))} deliveries/s "
                         f"(server CPU {med(r['server_cpu_pct'] for r in rs):.0f}%)")
        per_cpu.append(med(r["rate"] / (r["server_cpu_pct"] / 100) for r in rs
                           if r.get("server_cpu_pct")))
    pct = round((per_cpu[1] / per_cpu[0] - 1) * 100)
    change = f"{m(per_cpu[0])} → {m(per_cpu[1])} ({'±0' if pct == 0 else f'{pct:+d}'}%)"
    print(f"| {scenario} | {cells[0]} | {cells[1]} | {change} |")
print()
print(f"Medians of {len(rounds)} rounds, measured by `scripts/figures.sh redis` "
      f"(`ROUNDS={len(rounds)} benches/redis.sh`) {about}. Raw: one line per run, "
      f"[figures/redis.tsv](figures/redis.tsv); the script's own summary, "
      f"[figures/redis.txt](figures/redis.txt).")
EOF_PY
  text_fragment redis-latency "LAT_RECEIVERS=10 taskset -c 1 cargo test --release --test redis -- --ignored --nocapture cross_node_latency, once per pair of lines"
  echo redis redis-latency
}

section_fuzz() {
  local before
  before=$(loadavg)
  ./scripts/fuzz.sh "$FUZZ_SECONDS" | grep -vE '^stat::peak' >"$FIG/fuzz.txt"
  echo "$FUZZ_SECONDS" >"$FIG/fuzz.seconds"
  about fuzz "$before"
}

fragments_fuzz() {
  text_fragment fuzz "./scripts/fuzz.sh $(cat "$FIG/fuzz.seconds")"
  echo fuzz
}

section_autobahn() {
  local before
  before=$(loadavg)
  CI=${CI:-true} ./scripts/autobahn.sh | grep -E '^(autobahn: [0-9]|  )' >"$FIG/autobahn.txt"
  cp reports/servers/index.json "$FIG/autobahn-index.json"
  about autobahn "$before"
}

fragments_autobahn() {
  text_fragment autobahn "./scripts/autobahn.sh"
  echo autobahn
}

# --- main ---------------------------------------------------------------------------------------

# Rebuilds the fragments of SECTION from its raw files and copies them into the docs.
publish() {
  local name
  for name in $("fragments_$1"); do render "$name"; done
}

main() {
  local s started
  if [ "${1:-}" = "--render" ]; then
    for s in "${ALL[@]}"; do
      # A section never measured here has nothing to render.
      if [ "$s" = reference ] || [ -f "$FIG/$s.about" ]; then publish "$s"; fi
    done
    return 0
  fi
  local sections=("$@")
  [ ${#sections[@]} -gt 0 ] || sections=("${ALL[@]}")
  for s in "${sections[@]}"; do
    case " ${ALL[*]} " in
      *" $s "*) ;;
      *) echo "figures: unknown section '$s' (sections: ${ALL[*]})" >&2; return 2 ;;
    esac
  done
  for s in "${sections[@]}"; do
    started=$(date +%s)
    echo "figures: $s" >&2
    "section_$s"
    publish "$s"
    echo "figures: $s took $(($(date +%s) - started)) s" >&2
  done
}

# On one line, so bash has read the whole file before it runs anything: editing the script
# while it runs cannot change what this run does.
main "$@"; exit $?
