"""Drives a chatloop chat server with Python's `websockets` client (its threaded API).

Run by tests/interop.rs, which starts the server and checks the exit status and the "ok"
lines printed here. Usage: chat_test.py ws://127.0.0.1:PORT SCENARIO [CA_FILE]
With wss:// and CA_FILE, the clients speak TLS and trust that CA only.

Scenarios (each expects a server configured for it, see tests/interop.rs):
  relay      three clients in /a, two in /b: text and binary reach the others in the same
             room only, never the sender; a client Ping is answered; a client Close is
             answered with 1000
  big        a 1 MiB binary and a 1 MiB text message relayed intact (server allows 2 MiB)
  keepalive  the server Pings a silent client (ping interval 200 ms) and, since the client's
             library answers with Pongs, keeps it open past the 1 s idle timeout
"""

import contextlib
import logging
import ssl
import sys
import time

from websockets.sync.client import connect

# How long "nothing arrives" is watched for; the server relays within a millisecond or two.
QUIET = 0.3
# Every wait is bounded so the script cannot hang (the Rust test also kills it after 60 s).
WAIT = 5
# For wss://: an ssl context that trusts the test CA only (set in main from CA_FILE).
TLS = None


def check(condition, what):
    if not condition:
        print(f"FAIL - {what}", flush=True)
        sys.exit(1)
    print(f"ok - {what}", flush=True)


def client(clients, base, path, **kwargs):
    """A connection to `base + path`, closed by the `clients` ExitStack if still open."""
    # No keepalive pings of the client's own: the server's pings are what is under test, and
    # the relay checks want no surprise frames.
    if TLS is not None:
        kwargs["ssl"] = TLS
    return clients.enter_context(
        connect(base + path, ping_interval=None, open_timeout=WAIT, **kwargs))


def silent(ws):
    """True if nothing arrives on `ws` for QUIET seconds."""
    try:
        msg = ws.recv(timeout=QUIET)
    except TimeoutError:
        return True
    print(f"  unexpected message: {msg!r:.80}", flush=True)
    return False


def relay(clients, base):
    a1, a2, a3 = (client(clients, base, "/a") for _ in range(3))
    b1, b2 = (client(clients, base, "/b") for _ in range(2))

    a1.send("hello from a1")
    got = [a2.recv(timeout=WAIT), a3.recv(timeout=WAIT)]
    check(got == ["hello from a1"] * 2, "text from a1 reaches a2 and a3")
    check(silent(a1), "text is not echoed to its sender")
    check(silent(b1) and silent(b2), "text stays in its room (/b hears nothing)")

    blob = bytes(range(256)) * 4
    a2.send(blob)
    got = [a1.recv(timeout=WAIT), a3.recv(timeout=WAIT)]
    check(got == [blob] * 2 and all(isinstance(m, bytes) for m in got),
          "binary from a2 reaches a1 and a3 as binary, intact")
    check(silent(a2), "binary is not echoed to its sender")

    b1.send("only for /b")
    check(b2.recv(timeout=WAIT) == "only for /b", "text from b1 reaches b2")
    check(silent(a1) and silent(a2) and silent(a3), "/a hears nothing from /b")

    # The library sets the event only for a Pong whose payload matches the Ping's.
    pong = a1.ping(b"are you there")
    check(pong.wait(WAIT), "a client Ping is answered with a Pong carrying its payload")

    a3.close()
    sent, received = a3.protocol.close_sent, a3.protocol.close_rcvd
    check(sent is not None and sent.code == 1000 and received is not None
          and received.code == 1000, "a3's Close 1000 is answered with Close 1000")
    a1.send("after a3 left")
    check(a2.recv(timeout=WAIT) == "after a3 left", "the room keeps working after a leave")

    for ws in (a1, a2, b1, b2):
        ws.close()
        check(ws.protocol.close_rcvd is not None and ws.protocol.close_rcvd.code == 1000,
              "clean close: 1000 both ways")


def big(clients, base):
    # The client's own limit on incoming messages is 1 MiB by default; lift it.
    sender, receiver = (client(clients, base, "/big", max_size=4 << 20) for _ in range(2))
    blob = bytes((i * 7 + 3) % 256 for i in range(1 << 20))
    sender.send(blob)
    got = receiver.recv(timeout=WAIT)
    check(got == blob, "a 1 MiB binary message is relayed intact")
    text = "0123456789abcdef" * (1 << 16)
    sender.send(text)
    check(receiver.recv(timeout=WAIT) == text, "a 1 MiB text message is relayed intact")
    check(silent(sender), "the big messages are not echoed to their sender")
    for ws in (sender, receiver):
        ws.close()


class PingCounter(logging.Handler):
    """Counts the Ping frames the library logs as received ("< PING ...")."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.pings = 0

    def emit(self, record):
        if record.getMessage().startswith("< PING"):
            self.pings += 1


def keepalive(clients, base):
    counter = PingCounter()
    logger = logging.getLogger("websockets.client")
    logger.setLevel(logging.DEBUG)
    logger.addHandler(counter)
    quiet, other = (client(clients, base, "/keepalive") for _ in range(2))
    # Silent for 2.5 s: well past the server's 1 s idle timeout. The library answers each of
    # the server's Pings by itself.
    try:
        msg = quiet.recv(timeout=2.5)
        check(False, f"nothing but Pings arrives while silent (got {msg!r:.80})")
    except TimeoutError:
        check(silent(other), "nothing but Pings arrives while silent")
    check(counter.pings >= 2, f"the server pinged the silent clients ({counter.pings} Pings seen)")
    quiet.send("still here")
    check(other.recv(timeout=WAIT) == "still here",
          "Pong-answering clients stay open past the idle timeout")
    for ws in (quiet, other):
        ws.close()
        check(ws.protocol.close_rcvd is not None and ws.protocol.close_rcvd.code == 1000,
              "clean close after the keepalive")


def main():
    global TLS
    base, scenario = sys.argv[1], sys.argv[2]
    if len(sys.argv) > 3:
        TLS = ssl.create_default_context(cafile=sys.argv[3])
    started = time.monotonic()
    with contextlib.ExitStack() as clients:
        {"relay": relay, "big": big, "keepalive": keepalive}[scenario](clients, base)
    print(f"python websockets: {scenario} passed in {time.monotonic() - started:.2f} s", flush=True)


if __name__ == "__main__":
    main()
