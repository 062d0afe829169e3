#!/usr/bin/env bash
# Runs one of the compared servers in the foreground on 127.0.0.1:PORT (Qt's listens on every
# address), its standard output discarded (Qt's and tokio-tungstenite's examples print a line
# per connection). benches/peers/setup.sh builds the peers first; chatloop is the release build.
#
#   benches/peers/run.sh chatloop|qt|tokio|ws|uws PORT
#
# Pin it to a core with taskset: `taskset -c 0 benches/peers/run.sh qt 9001`.
set -euo pipefail
cd "$(dirname "$0")/../.."
DIR=benches/.peers
name=${1:?usage: run.sh chatloop|qt|tokio|ws|uws PORT}
port=${2:?usage: run.sh chatloop|qt|tokio|ws|uws PORT}
export NODE_PATH=$PWD/$DIR/node/node_modules
case $name in
  chatloop) exec target/release/chatloop serve --listen "127.0.0.1:$port" \
              --max-connections 20000 --log-level warn >/dev/null ;;
  qt) exec "$DIR/qt/src/chatserver" "$port" >/dev/null ;;
  tokio) exec "$DIR/tokio/target/release/examples/server" "127.0.0.1:$port" >/dev/null ;;
  ws) exec node benches/peers/ws-server.js "$port" >/dev/null ;;
  uws) exec node benches/peers/uws-server.js "$port" >/dev/null ;;
  *) echo "error: unknown server '$name' (chatloop, qt, tokio, ws or uws)" >&2; exit 2 ;;
esac
