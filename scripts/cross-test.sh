#!/usr/bin/env bash
# Cross-builds the server-only chatloop for ARM boards and tests each build under qemu-user:
# the binary that would be copied to a board serves a real session (examples/smoke.rs, built
# for the host: two clients, text and binary relay, ping/pong, Close 1000), then stops on
# SIGTERM; the unit tests and tests/chat.rs run under qemu-user too. The TLS build (feature
# `tls`) serves a wss:// echo session under qemu-user to the host's `chatloop connect`. Prints
# the binary sizes and checks the size budget (of the lean build, which has no TLS).
#
#   ./scripts/cross-test.sh                   the default targets (below)
#   CHATLOOP_CROSS_TARGETS="aarch64-unknown-linux-gnu" ./scripts/cross-test.sh
#
# Installs what it needs, idempotently: Debian's cross gcc and C library (glibc targets link
# with them) and qemu-user (scripts/packages.sh), and the rustup targets. musl targets link with
# rust-lld from the Rust toolchain (see .cargo/config.toml). Where the tools cannot be
# installed it fails: a cross-test that did not run has not passed.
set -euo pipefail
cd "$(dirname "$0")/.."

TARGETS=${CHATLOOP_CROSS_TARGETS:-"aarch64-unknown-linux-musl armv7-unknown-linux-gnueabihf"}
PROFILE=release-small
# Stripped size budget for the server-only aarch64 musl binary (docs/small-boards.md).
# Exceeding it fails the test: it is how the size stays small.
BUDGET_BYTES=600000
# The smoke session sends one message past 65,535 bytes (64-bit length, RFC 6455 §5.2).
BIG=100000

# --- tools -----------------------------------------------------------------------------------
# shellcheck source=scripts/packages.sh
. scripts/packages.sh
ensure_packages "${CROSS_PACKAGES[@]}"
if ! command -v rustup >/dev/null 2>&1; then
  echo "cross-test: error: rustup is needed to add the targets" >&2
  exit 1
fi
installed=$(rustup target list --installed)
for t in $TARGETS; do
  grep -qx "$t" <<<"$installed" || rustup target add "$t"
done

runner() {
  case "$1" in
    aarch64-unknown-linux-musl) echo "qemu-aarch64" ;;
    aarch64-unknown-linux-gnu) echo "qemu-aarch64 -L /usr/aarch64-linux-gnu" ;;
    armv7-unknown-linux-gnueabihf) echo "qemu-arm -L /usr/arm-linux-gnueabihf" ;;
    x86_64-unknown-linux-musl) echo "" ;;
    *) echo "cross-test: no runner known for $1" >&2; return 1 ;;
  esac
}

# --- builds ----------------------------------------------------------------------------------
cargo build --release --example smoke --bin chatloop
SMOKE=target/release/examples/smoke
# The TLS builds go to their own directory: same profile, same binary name as the lean ones.
TLS_DIR=target/cross-tls
for t in $TARGETS; do
  cargo build --profile "$PROFILE" --no-default-features --bin chatloop --target "$t"
  cargo build --profile "$PROFILE" --no-default-features --features tls --bin chatloop \
    --target "$t" --target-dir "$TLS_DIR"
done

# --- sessions under emulation ----------------------------------------------------------------
work=$(mktemp -d target/cross-test.XXXXXX)
server_pid=""
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

failed=0
for t in $TARGETS; do
  bin=target/$t/$PROFILE/chatloop
  log=$work/$t.log
  : >"$log" # exists before the server's first line, so the wait below can read it at once
  echo "== $t: serving under '$(runner "$t")'"
  # Port 0: the kernel picks a free port and the server logs it. The word splitting of
  # $(runner) is intended (a command and its arguments).
  # shellcheck disable=SC2046
  $(runner "$t") "$bin" serve --listen 127.0.0.1:0 --max-message-bytes 256KiB \
    --log-level info 2>"$log" &
  server_pid=$!
  url=""
  for _ in $(seq 100); do
    url=$(grep -o 'ws://[0-9.:]*' "$log" | head -1 || true)
    [ -n "$url" ] && break
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1
  done
  if [ -z "$url" ]; then
    echo "cross-test: $t: the server did not start:" >&2
    cat "$log" >&2
    failed=1
    server_pid=""
    continue
  fi
  if ! "$SMOKE" "$url" --big "$BIG"; then
    echo "cross-test: $t: the session failed; server log:" >&2
    cat "$log" >&2
    failed=1
  fi
  # SIGTERM must end the server cleanly (exit 0) within its shutdown grace.
  kill -TERM "$server_pid"
  status=0
  wait "$server_pid" || status=$?
  server_pid=""
  if [ "$status" -ne 0 ]; then
    echo "cross-test: $t: server exited with $status after SIGTERM; log:" >&2
    cat "$log" >&2
    failed=1
  else
    echo "ok   server stopped cleanly on SIGTERM"
  fi
done

# --- a wss:// session under emulation ----------------------------------------------------------
# The TLS build as an echo server with a certificate made here; the host's client sends a line
# over wss:// (trusting that certificate) and must get it back.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
  -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
  -addext basicConstraints=critical,CA:FALSE \
  -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null
for t in $TARGETS; do
  log=$work/$t-tls.log
  : >"$log"
  echo "== $t (feature tls): serving wss:// under '$(runner "$t")'"
  # shellcheck disable=SC2046
  $(runner "$t") "$TLS_DIR/$t/$PROFILE/chatloop" serve --echo --listen 127.0.0.1:0 \
    --tls-cert "$work/cert.pem" --tls-key "$work/key.pem" --log-level info 2>"$log" &
  server_pid=$!
  url=""
  for _ in $(seq 100); do
    url=$(grep -o 'wss://[0-9.:]*' "$log" | head -1 || true)
    [ -n "$url" ] && break
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1
  done
  got=""
  if [ -n "$url" ]; then
    got=$(printf 'hello over tls\n' | timeout 60 target/release/chatloop connect "$url/" \
      --ca "$work/cert.pem" --wait 3s 2>>"$log" || true)
  fi
  kill -TERM "$server_pid" 2>/dev/null || true
  wait "$server_pid" 2>/dev/null || true
  server_pid=""
  if [ "$got" = "hello over tls" ]; then
    echo "ok   a line went over wss:// and came back"
  else
    echo "cross-test: $t: the wss:// session failed (got '$got'); log:" >&2
    cat "$log" >&2
    failed=1
  fi
done

# --- unit tests under emulation ------------------------------------------------------------
# The `runner` in .cargo/config.toml runs the test binaries under qemu-user: the codec, outbox,
# hub and connection state machine on 32-bit and 64-bit ARM, and tests/chat.rs (a server in
# the test process). Tests that spawn the `chatloop` binary as a child process are left out:
# starting an ARM child would need the emulator registered with binfmt_misc.
for t in $TARGETS; do
  echo "== $t: unit tests and tests/chat.rs under '$(runner "$t")'"
  if ! cargo test -q --target "$t" --lib --test chat; then
    echo "cross-test: $t: tests failed under emulation" >&2
    failed=1
  fi
done

# --- sizes -----------------------------------------------------------------------------------
echo "== server-only binaries (--profile $PROFILE --no-default-features), stripped:"
for t in $TARGETS; do
  size=$(stat -c %s "target/$t/$PROFILE/chatloop")
  printf '  %-32s %9d bytes   with --features tls: %9d bytes\n' "$t" "$size" \
    "$(stat -c %s "$TLS_DIR/$t/$PROFILE/chatloop")"
  if [ "$t" = aarch64-unknown-linux-musl ] && [ "$size" -gt "$BUDGET_BYTES" ]; then
    echo "cross-test: $t: $size bytes is over the budget of $BUDGET_BYTES" >&2
    failed=1
  fi
done

if [ "$failed" -ne 0 ]; then
  echo "cross-test: FAILED" >&2
  exit 1
fi
echo "cross-test: passed for $TARGETS"
