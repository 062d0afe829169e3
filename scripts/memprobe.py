#!/usr/bin/env python3
"""Memory probes against a running `chatloop serve`, for `scripts/figures.sh memory`.

Each prints one JSON line. Both read the server's memory from /proc/PID/status, so the server
must run on this machine.

  memprobe.py frames --port P --pid PID --conns 200 --size 65000
      What a connection keeps after it received one large message: CONNS connections, each
      alone in its own room (so nothing is relayed), each sends one binary message of SIZE
      bytes. tungstenite's per-connection read buffer grows to the largest frame and keeps
      that size; the resident memory before and after says how much that is per connection.

  memprobe.py tiny --port P --pid PID --log SERVER_LOG
      What a queued message costs beyond its bytes: one client never reads, another sends
      empty text messages as fast as it can, until the server drops the reader as a slow
      consumer. The server's warning gives the bytes its outbox held then (each empty message
      is a 2-byte frame); VmHWM gives the peak resident memory.

Plain sockets and hand-built frames (RFC 6455 §5.2), so it needs nothing beyond Python 3.
"""

import argparse
import json
import re
import socket
import struct
import threading
import time


def status_kib(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def stats(port):
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"GET /stats HTTP/1.1\r\nHost: probe\r\n\r\n")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    return json.loads(data.split(b"\r\n\r\n", 1)[1])


def wait_until(what, done, limit=30.0):
    deadline = time.monotonic() + limit
    while not done():
        if time.monotonic() > deadline:
            raise SystemExit(f"memprobe: timed out waiting for {what}")
        time.sleep(0.05)


def upgrade(port, path):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(
        f"GET {path} HTTP/1.1\r\nHost: probe\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = s.recv(1)
        if not chunk:
            raise SystemExit("memprobe: the server closed during the handshake")
        head += chunk
    if not head.startswith(b"HTTP/1.1 101"):
        raise SystemExit(f"memprobe: no upgrade: {head[:40]!r}")
    return s


def client_frame(opcode, payload):
    """One final, masked client frame. The mask key is zero, so the payload goes as it is."""
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
    elif n < 65536:
        head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
    return head + b"\0\0\0\0" + payload


def frames(args):
    socks = [upgrade(args.port, f"/probe-{i}") for i in range(args.conns)]
    wait_until("the upgrades", lambda: stats(args.port)["connections_open"] == args.conns)
    frame = client_frame(0x2, b"x" * args.size)
    # The first message touches the server's shared read buffer once; measure after it.
    socks[0].sendall(frame)
    wait_until("the first message", lambda: stats(args.port)["messages_in_total"] >= 1)
    time.sleep(0.5)
    before = status_kib(args.pid, "VmRSS")
    for s in socks[1:]:
        s.sendall(frame)
    wait_until("the messages", lambda: stats(args.port)["messages_in_total"] >= args.conns)
    time.sleep(0.5)
    after = status_kib(args.pid, "VmRSS")
    counted = args.conns - 1
    print(json.dumps({
        "conns": args.conns, "size": args.size, "rss_before_kib": before,
        "rss_after_kib": after, "kib_per_conn": (after - before) / counted,
    }))
    for s in socks:
        s.close()


def tiny(args):
    reader = upgrade(args.port, "/tiny")  # never reads
    sender = upgrade(args.port, "/tiny")
    wait_until("the upgrades", lambda: stats(args.port)["connections_open"] == 2)
    base = status_kib(args.pid, "VmRSS")
    batch = client_frame(0x1, b"") * 10_000
    stop = threading.Event()
    sender.settimeout(0.5)

    def send():
        while not stop.is_set():
            try:
                sender.sendall(batch)
            except socket.timeout:
                continue
            except OSError:
                return

    thread = threading.Thread(target=send, daemon=True)
    thread.start()
    queued = []

    def dropped():
        with open(args.log) as f:
            queued[:] = [int(m) for m in re.findall(r"slow consumer: (\d+) bytes queued", f.read())]
        return bool(queued)

    wait_until("the reader to be dropped", dropped, limit=60)
    stop.set()
    peak = status_kib(args.pid, "VmHWM")
    growth = peak - base
    messages = queued[0] / 2  # an empty text message is a 2-byte server frame
    print(json.dumps({
        "rss_before_kib": base, "rss_peak_kib": peak, "rss_growth_kib": growth,
        "max_queued_bytes": queued[0],
        "bytes_per_message": growth * 1024 / messages - 2,
    }))
    thread.join(timeout=2)
    sender.close()
    reader.close()


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="probe", required=True)
    f = sub.add_parser("frames")
    t = sub.add_parser("tiny")
    for q in (f, t):
        q.add_argument("--port", type=int, required=True)
        q.add_argument("--pid", type=int, required=True)
    f.add_argument("--conns", type=int, default=200)
    f.add_argument("--size", type=int, default=65000)
    t.add_argument("--log", required=True, help="the server's log (warn level or lower)")
    args = p.parse_args()
    {"frames": frames, "tiny": tiny}[args.probe](args)


if __name__ == "__main__":
    main()
