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
