# Helpers the bench scripts share (sourced, not run): starting a server is theirs to do, each
# with its own flags; waiting for it to listen and stopping it are the same everywhere.

# wait_port PORT NAME: returns once 127.0.0.1:PORT accepts a connection (bash's /dev/tcp: no
# extra tool), or fails after 10 s saying NAME did not start.
wait_port() {
  for _ in $(seq 100); do
    (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "error: $2 did not start on port $1" >&2
  return 1
}

# stop_pid PID: stops a server started in the background, and reaps it.
stop_pid() {
  kill "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}

# build_base REV DIR: the chatloop of revision REV, as `git archive` exports it, unpacked into
# DIR/src and built into DIR/target (the binary: DIR/target/release/chatloop). Nothing is done
# when DIR already holds a build of that revision.
build_base() {
  local rev
  rev=$(git rev-parse "$1")
  [ "$(cat "$2/rev" 2>/dev/null)" = "$rev" ] && return 0
  rm -rf "$2/src" "$2/rev" && mkdir -p "$2/src"
  git archive "$rev" | tar -x -C "$2/src"
  # A base from before the cargo workspace would be taken for a stray member of ours.
  grep -q '^\[workspace\]' "$2/src/Cargo.toml" || printf '\n[workspace]\n' >>"$2/src/Cargo.toml"
  (cd "$2/src" && cargo build --release --bin chatloop --target-dir ../target) >&2
  echo "$rev" >"$2/rev"
}
