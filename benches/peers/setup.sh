#!/usr/bin/env bash
# Fetches and builds the servers chatloop is compared with, at pinned versions, under
# benches/.peers/ (gitignored). None of their code is kept in this repository: each is fetched
# from its package registry here and changed by the few edits below, each of which is checked.
# Safe to run again: a peer whose version stamp matches is not rebuilt.
#
#   qt        Qt 5's WebSockets "simplechat" example (the server chatloop re-makes), from
#             Debian's qtwebsockets5-examples, which ships its sources. Rebuilt with qmake with
#             one edit: the port comes from argv[1] instead of the hard-coded 1234.
#   tokio     tokio-tungstenite's examples/server.rs (its chat server), from the crate on
#             crates.io, built with the crate's own Cargo.lock. Two edits: it relays only Text
#             and Binary messages (the example relays Ping, Pong and Close frames too, and
#             prints every message with `to_text().unwrap()`, which panics on binary data and
#             costs a write per message), and it sets TCP_NODELAY on each accepted socket.
#   ws, uws   Node `ws` and uWebSockets.js (npm @trufflesuite/uws-js-unofficial, its native
#             addon), run by benches/peers/ws-server.js and uws-server.js.
#
# Needs: apt-get (root or sudo) for Qt's build tools, cargo, node + npm.
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=scripts/packages.sh
. scripts/packages.sh

# The pinned versions. Change one here and its peer is rebuilt on the next run.
QT_EXAMPLES_VERSION=5.15.8-2            # Debian 12 qtwebsockets5-examples
TOKIO_TUNGSTENITE_VERSION=0.30.0
TOKIO_TUNGSTENITE_SHA256=17a073bfed563fa236697a068031408a93cd9522e08abf9933ead3e73411bd71
WS_VERSION=8.23.0
UWS_VERSION=20.30.0-unofficial.0

DIR=benches/.peers
mkdir -p "$DIR"
# True when $1's stamp file says version $2 was built.
built() { [ "$(cat "$DIR/$1.version" 2>/dev/null)" = "$2" ]; }
# Applies one perl substitution to a file; fails if it matched nothing.
edit_once() { # file perl-expression what
  local before
  before=$(cat "$1")
  perl -0pi -e "$2" "$1"
  if [ "$before" = "$(cat "$1")" ]; then
    echo "error: could not apply '$3' to $1 (did the upstream file change?)" >&2
    return 1
  fi
}

# --- Qt 5 simplechat -------------------------------------------------------------------------
if ! built qt "$QT_EXAMPLES_VERSION"; then
  ensure_packages "${BENCH_PEER_PACKAGES[@]}"
  rm -rf "$DIR/qt" && mkdir -p "$DIR/qt/deb"
  (cd "$DIR/qt/deb" && apt-get download -q "qtwebsockets5-examples=$QT_EXAMPLES_VERSION" 2>&1 |
    grep -v 'unsandboxed' >&2 || true)
  dpkg-deb -x "$DIR"/qt/deb/qtwebsockets5-examples_*.deb "$DIR/qt/deb/root"
  cp -r "$DIR"/qt/deb/root/usr/lib/*/qt5/examples/websockets/simplechat "$DIR/qt/src"
  edit_once "$DIR/qt/src/main.cpp" \
    's/ChatServer server\(1234\);/ChatServer server(argc > 1 ? QByteArray(argv[1]).toUShort() : 1234);/' \
    'port from argv[1]'
  (cd "$DIR/qt/src" && /usr/lib/qt5/bin/qmake -o Makefile simplechat.pro && make -s -j2) >&2
  echo "$QT_EXAMPLES_VERSION" >"$DIR/qt.version"
fi

# --- tokio-tungstenite's chat server ---------------------------------------------------------
if ! built tokio "$TOKIO_TUNGSTENITE_VERSION"; then
  # cargo is the registry client: a throwaway package that depends on the exact version makes
  # it download (and check against the index) the .crate file, which we then unpack.
  rm -rf "$DIR/tokio" && mkdir -p "$DIR/tokio/fetch/src"
  cat >"$DIR/tokio/fetch/Cargo.toml" <<TOML
[package]
name = "fetch-tokio-tungstenite"
version = "0.0.0"
edition = "2021"
publish = false
[dependencies]
tokio-tungstenite = "=$TOKIO_TUNGSTENITE_VERSION"
[workspace]
TOML
  touch "$DIR/tokio/fetch/src/lib.rs"
  cargo fetch -q --manifest-path "$DIR/tokio/fetch/Cargo.toml"
  crate=$(ls "${CARGO_HOME:-$HOME/.cargo}"/registry/cache/*/"tokio-tungstenite-$TOKIO_TUNGSTENITE_VERSION.crate" | head -1)
  echo "$TOKIO_TUNGSTENITE_SHA256  $crate" | sha256sum -c --quiet -
  tar xzf "$crate" -C "$DIR/tokio"
  src="$DIR/tokio/tokio-tungstenite-$TOKIO_TUNGSTENITE_VERSION"
  # The per-message println! becomes the Text/Binary filter; TCP_NODELAY before the handshake.
  edit_once "$src/examples/server.rs" \
    's/\n\s*println!\("Received a message from[^\n]*\n/\n        if !(msg.is_text() || msg.is_binary()) {\n            return future::ok(());\n        }\n/' \
    'relay Text and Binary only'
  edit_once "$src/examples/server.rs" \
    's/(\n[ ]*)(let ws_stream = tokio_tungstenite::accept_async)/$1raw_stream.set_nodelay(true).expect("TCP_NODELAY");$1$2/' \
    'TCP_NODELAY'
  # An empty [workspace] and its own target dir keep this build out of chatloop's workspace
  # (cargo would otherwise take the crate, unpacked under ours, for a stray member) and lockfile.
  grep -q '^\[workspace\]' "$src/Cargo.toml" || printf '\n[workspace]\n' >>"$src/Cargo.toml"
  cargo build -q --release --locked --example server --manifest-path "$src/Cargo.toml" \
    --target-dir "$DIR/tokio/target"
  echo "$TOKIO_TUNGSTENITE_VERSION" >"$DIR/tokio.version"
fi

# --- Node ws and uWebSockets.js --------------------------------------------------------------
if ! built node "$WS_VERSION $UWS_VERSION"; then
  ensure_node_and_venv
  rm -rf "$DIR/node" && mkdir -p "$DIR/node"
  npm install --no-audit --no-fund --loglevel=error --prefix "$DIR/node" \
    "ws@$WS_VERSION" "@trufflesuite/uws-js-unofficial@$UWS_VERSION" >&2
  echo "$WS_VERSION $UWS_VERSION" >"$DIR/node.version"
fi

# One line naming every version, for the comparison's summary.
echo "Qt simplechat from qtwebsockets5-examples $QT_EXAMPLES_VERSION" \
  "(Qt $(dpkg-query -W -f='${Version}' libqt5websockets5)), tokio-tungstenite" \
  "$TOKIO_TUNGSTENITE_VERSION, uWebSockets.js $UWS_VERSION and ws $WS_VERSION on Node" \
  "$(node --version)" | tee "$DIR/versions" >&2
