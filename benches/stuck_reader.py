#!/usr/bin/env python3
"""How long a chatloop server takes to notice a client that never reads, and how much the
kernel hid meanwhile. Used by benches/sockets.sh (sndbuf).

    stuck_reader.py HOST:PORT --size BYTES --rate MSGS_PER_SEC [--limit SECONDS]

One client joins a room and never reads (the kernel's default receive buffer); another sends
SIZE-byte messages to the room at RATE per second. Every 50 ms the script reads the server's
/stats. It prints one JSON line: when the server's queue for the stuck reader started to grow
(the kernel's buffers were full), how many bytes had been sent to it by then (what the kernel
hid), and when the server dropped it as a slow consumer.
"""
import argparse
import json
import os
import socket
import time

KEY = "dGhlIHNhbXBsZSBub25jZQ=="  # RFC 6455 §1.3's sample key


def upgraded(host, port, room):
    s = socket.create_connection((host, port))
    s.sendall(
        f"GET {room} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {KEY}\r\n\r\n".encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = s.recv(1)
        if not chunk:
            raise SystemExit("error: the server closed during the upgrade")
        head += chunk
    if not head.startswith(b"HTTP/1.1 101"):
        raise SystemExit(f"error: upgrade refused: {head[:40]!r}")
    return s


def client_frame(payload):
    """A masked binary frame with FIN (RFC 6455 §5.2)."""
    mask = os.urandom(4)
    n = len(payload)
    if n < 126:
        head = bytes([0x82, 0x80 | n])
    elif n < 65536:
        head = bytes([0x82, 0x80 | 126]) + n.to_bytes(2, "big")
    else:
        head = bytes([0x82, 0x80 | 127]) + n.to_bytes(8, "big")
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def stats(host, port):
    with socket.create_connection((host, port)) as s:
        s.sendall(b"GET /stats HTTP/1.1\r\nHost: x\r\n\r\n")
        body = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            body += chunk
    return json.loads(body.split(b"\r\n\r\n", 1)[1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("addr")
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--rate", type=float, default=100)
    ap.add_argument("--limit", type=float, default=120)
    args = ap.parse_args()
    host, port = args.addr.rsplit(":", 1)
    port = int(port)
    room = f"/stuck-{os.getpid()}"
    stuck = upgraded(host, port, room)
    sender = upgraded(host, port, room)
    frame = client_frame(b"s" * args.size)
    # What a server frame of SIZE bytes costs on the wire: the payload and a 2- or 4-byte header.
    wire = args.size + (2 if args.size < 126 else 4 if args.size < 65536 else 10)
    base = stats(host, port)
    start = time.monotonic()
    sent = 0
    grew = None
    last_queued = 0
    next_look = start
    while True:
        now = time.monotonic()
        due = int((now - start) * args.rate) + 1
        while sent < due:
            sender.sendall(frame)
            sent += 1
        if now >= next_look:
            next_look = now + 0.05
            st = stats(host, port)
            delivered = st["deliveries_total"] - base["deliveries_total"]
            # Queued at two looks in a row: not a frame caught between its queueing and the
            # flush at the end of the turn, but a queue the kernel no longer takes.
            if grew is None and st["queued_bytes"] > 0 and last_queued > 0:
                grew = {"secs": round(now - start, 2),
                        "hidden_bytes": delivered * wire - st["queued_bytes"]}
            last_queued = st["queued_bytes"]
            if st["slow_consumers_total"] > base["slow_consumers_total"]:
                print(json.dumps({"size": args.size, "rate": args.rate,
                                  "queue_grew": grew, "dropped_secs": round(now - start, 2),
                                  "sent_bytes": delivered * wire}))
                return
            if now - start > args.limit:
                print(json.dumps({"size": args.size, "rate": args.rate, "queue_grew": grew,
                                  "dropped_secs": None, "sent_bytes": delivered * wire}))
                return
        time.sleep(min(1 / args.rate, 0.01))


if __name__ == "__main__":
    main()
