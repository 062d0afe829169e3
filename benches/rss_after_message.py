#!/usr/bin/env python3
"""Resident memory per connection of a chatloop server after each of N connections sent one
message of SIZE bytes, then went idle. Used by benches/sockets.sh (memory).

    rss_after_message.py BINARY N SIZE TOGETHER

Starts BINARY serve on a free port; N clients upgrade, each in its own room (so nothing is
relayed), then each sends one SIZE-byte message: one after another (TOGETHER=0), or with half
of every message sent before any completes (TOGETHER=1: the server holds all N partial frames
at once). Prints one JSON line: the server's RSS (/proc/PID/status VmRSS) with no connection,
with N idle connections, and after the messages, and KiB per connection.
"""
import json
import os
import socket
import subprocess
import sys
import time

KEY = "dGhlIHNhbXBsZSBub25jZQ=="


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise SystemExit("error: no VmRSS")


def frame(payload):
    mask = os.urandom(4)
    n = len(payload)
    head = bytes([0x82, 0x80 | 126]) + n.to_bytes(2, "big") if n < 65536 else \
        bytes([0x82, 0x80 | 127]) + n.to_bytes(8, "big")
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def main():
    binary, n, size, together = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "1"
    server = subprocess.Popen(
        ["sh", "-c", f'ulimit -n {n + 256}; exec "$@"', "sh", binary, "serve",
         "--listen", "127.0.0.1:0"], stderr=subprocess.PIPE, text=True)
    try:
        for line in server.stderr:
            if "listening on ws://" in line:
                host, port = line.split("listening on ws://")[1].strip().rstrip("/").rsplit(":", 1)
                break
        time.sleep(0.3)
        empty = rss_kib(server.pid)
        clients = []
        for i in range(n):
            s = socket.create_connection((host, int(port)))
            s.sendall(f"GET /m{i} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: "
                      f"Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {KEY}\r\n\r\n"
                      .encode())
            head = b""
            while b"\r\n\r\n" not in head:
                head += s.recv(1024)
            clients.append(s)
        time.sleep(0.5)
        idle = rss_kib(server.pid)
        data = frame(b"m" * size)
        cut = len(data) // 2 if together else 0
        for s in clients:
            s.sendall(data[:cut])
        for s in clients:
            s.sendall(data[cut:])
        time.sleep(2)
        after = rss_kib(server.pid)
        print(json.dumps({
            "binary": binary, "connections": n, "message_bytes": size, "together": together,
            "rss_kib": {"empty": empty, "idle": idle, "after": after},
            "kib_per_connection_idle": round((idle - empty) / n, 2),
            "kib_per_connection_after": round((after - empty) / n, 2),
        }))
    finally:
        server.kill()


if __name__ == "__main__":
    main()
