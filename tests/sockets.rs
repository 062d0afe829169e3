//! The socket path over real sockets: the listen backlog under a burst of connects, the send
//! buffer that bounds what a reader that never reads can hide in the kernel, one read per
//! readable event (and what still forces more: the peer's FIN, the turn's budget), and a
//! closing connection that stops reading after a bounded amount.

mod common;

use common::*;
use mio::net::TcpStream as MioStream;
use mio::{Events, Interest, Poll, Token};
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::{Duration, Instant};
use tungstenite::Message;

/// When one client of a burst was connected (its first writable event: the kernel answered
/// its SYN) and when it had its `101` head; `None` while still waiting.
#[derive(Debug, Clone, Copy, Default)]
struct Timing {
    connected: Option<Duration>,
    upgraded: Option<Duration>,
}

/// Opens `n` connections to `addr` at once (non-blocking connects issued back to back), sends
/// each an upgrade request as soon as it is connected, and returns when each was connected
/// and upgraded, giving up at `limit`.
fn burst_of_upgrades(addr: SocketAddr, n: usize, limit: Duration) -> Vec<Timing> {
    let mut poll = Poll::new().unwrap();
    let request = upgrade_request("/burst");
    let start = Instant::now();
    let mut clients: Vec<(MioStream, Vec<u8>)> = (0..n)
        .map(|i| {
            let mut s = MioStream::connect(addr).expect("connect");
            poll.registry()
                .register(&mut s, Token(i), Interest::READABLE | Interest::WRITABLE)
                .unwrap();
            (s, Vec::new())
        })
        .collect();
    let mut timings = vec![Timing::default(); n];
    let mut events = Events::with_capacity(1024);
    while timings.iter().any(|t| t.upgraded.is_none()) && start.elapsed() < limit {
        poll.poll(&mut events, Some(Duration::from_millis(50)))
            .unwrap();
        for event in &events {
            let i = event.token().0;
            let ((s, got), timing) = (&mut clients[i], &mut timings[i]);
            if event.is_writable() && timing.connected.is_none() {
                // The connect completed (or failed: then the write says so).
                match s.write(request.as_bytes()) {
                    Ok(k) => {
                        assert_eq!(k, request.len(), "a request fits a fresh socket");
                        timing.connected = Some(start.elapsed());
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => panic!("client {i}: {e}"),
                }
            }
            let mut buf = [0; 512];
            loop {
                match s.read(&mut buf) {
                    Ok(0) => panic!("client {i}: closed before its 101"),
                    Ok(k) => got.extend_from_slice(&buf[..k]),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::NotConnected => break,
                    Err(e) => panic!("client {i}: {e}"),
                }
            }
            if timing.upgraded.is_none() && got.windows(4).any(|w| w == b"\r\n\r\n") {
                assert!(got.starts_with(b"HTTP/1.1 101 "), "client {i} upgraded");
                timing.upgraded = Some(start.elapsed());
            }
        }
    }
    timings
}

/// 2,000 clients connecting at once are all upgraded within 2 s, and none waited for a SYN
/// retry: with mio's backlog of 128, hundreds of them were connected only after the kernel's
/// one-second SYN retransmission.
#[test]
fn a_burst_of_2000_connects_is_all_answered_within_2s() {
    let server = TestServer::start();
    let timings = burst_of_upgrades(server.addr, 2000, Duration::from_secs(2));
    let waiting = timings.iter().filter(|t| t.upgraded.is_none()).count();
    assert_eq!(waiting, 0, "{waiting} of 2000 clients had no 101 after 2 s");
    // Connecting is the kernel's work alone (SYN, SYN-ACK), microseconds on loopback unless
    // the accept queue was full and the SYN was dropped: then the client retries after 1 s
    // (RFC 6298 §2.1), however fast or slow the server's loop is.
    let retried = timings
        .iter()
        .filter(|t| t.connected.is_some_and(|c| c >= Duration::from_secs(1)))
        .count();
    assert_eq!(
        retried, 0,
        "{retried} clients connected only after a SYN retry"
    );
}

/// The bytes a reader that never reads took from the server before its outbox had to hold
/// the rest: the server sends `count` messages of `size` bytes to a client that never reads
/// (receive buffer `rcvbuf`), and the kernel takes what its buffers hold.
fn absorbed_by_kernel(send_buffer: usize, rcvbuf: usize, count: usize, size: usize) -> u64 {
    let server = TestServer::with(|c| {
        c.send_buffer = send_buffer;
        c.lag_timeout = Duration::from_secs(30);
        c.write_timeout = Duration::from_secs(30);
    });
    // The reader asks for a small receive buffer before it connects (TCP fixes its window
    // scale at the handshake), so only the server's send buffer is left to measure.
    let reader = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    reader.set_recv_buffer_size(rcvbuf).unwrap();
    reader.connect(&server.addr.into()).unwrap();
    let mut reader: TcpStream = reader.into();
    reader.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    reader
        .write_all(upgrade_request("/stuck").as_bytes())
        .unwrap();
    read_101(&mut reader);
    let mut sender = upgraded(server.addr, "/stuck");
    let frame = client_frame(0x82, &vec![b'x'; size]);
    for _ in 0..count {
        sender.write_all(&frame).unwrap();
    }
    // Every message delivered, and the queue no longer moving: the kernel is full.
    let mut last = u64::MAX;
    let queued = wait_for(READ_TIMEOUT, "the stuck reader's queue to settle", || {
        let body = stats_body(server.addr);
        let (delivered, queued) = (stat(&body, "deliveries_total"), stat(&body, "queued_bytes"));
        let settled = delivered == count as u64 && queued == last;
        last = queued;
        std::thread::sleep(Duration::from_millis(100));
        if settled {
            Ok(queued)
        } else {
            Err(body)
        }
    });
    // A server frame of `size` < 126 bytes has a 2-byte header, up to 65535 a 4-byte one.
    let sent = (count * (size + if size < 126 { 2 } else { 4 })) as u64;
    drop(reader);
    sent - queued
}

/// With --send-buffer 16KiB, a reader that never reads holds at most the send buffer (doubled
/// by Linux) and its own small receive window before the server's outbox grows and the
/// reader can be judged; left to autotuning, the kernel hides all 256 KiB of the same flood.
#[test]
fn a_small_send_buffer_bounds_what_a_stuck_reader_hides() {
    let bounded = absorbed_by_kernel(16 << 10, 4096, 256, 1024);
    assert!(
        bounded <= 64 << 10,
        "with a 16 KiB send buffer the kernel took {bounded} bytes"
    );
    let autotuned = absorbed_by_kernel(0, 4096, 256, 1024);
    assert!(
        autotuned > 128 << 10,
        "autotuning took only {autotuned} bytes: the flag measured nothing"
    );
}

/// Reads the echo of one message of `len` bytes from an upgraded raw socket.
fn read_echo(s: &mut TcpStream, len: usize) {
    let header = if len < 126 { 2 } else { 4 };
    let mut buf = vec![0; header + len];
    s.read_exact(&mut buf).expect("the echo");
    assert_eq!(buf[0], 0x82, "a binary frame");
}

/// Asserts the server closes `s` (end-of-stream or a reset) within its read timeout; what
/// arrives before (other members' messages) is skipped.
fn assert_closed_by_server(s: &mut TcpStream) {
    read_to_end(s);
}

/// A FIN right behind a message (often in the same readiness event, which then says the peer
/// closed) is seen at once: the message reaches the room, then the server closes. One read
/// per event must not miss it. Fifty clients try, so the same-event case surely happens.
#[test]
fn a_fin_right_behind_a_message_is_seen_at_once() {
    let server = TestServer::start();
    let mut other = connect(&server, "/fin");
    let mut clients: Vec<TcpStream> = (0..50).map(|_| upgraded(server.addr, "/fin")).collect();
    for s in &mut clients {
        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        s.write_all(&client_frame(0x82, b"last words")).unwrap();
        s.shutdown(Shutdown::Write).unwrap();
    }
    for _ in &clients {
        assert_eq!(recv(&mut other), Message::binary(&b"last words"[..]));
    }
    for s in &mut clients {
        assert_closed_by_server(s);
    }
}

/// A FIN that comes after the message was read and echoed (a new readiness event) is seen
/// at once too, not at --idle-timeout.
#[test]
fn a_fin_after_a_quiet_moment_is_seen_at_once() {
    let server = TestServer::with(|c| c.mode = chatloop::Mode::Echo);
    let mut s = upgraded(server.addr, "/");
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    s.write_all(&client_frame(0x82, b"hello")).unwrap();
    read_echo(&mut s, 5);
    std::thread::sleep(Duration::from_millis(50));
    s.shutdown(Shutdown::Write).unwrap();
    assert_closed_by_server(&mut s);
}

/// A burst ten times the turn's read budget, then silence: every message is echoed. A
/// connection stopped by the budget is queued for the next turn by the server itself, since
/// the kernel raises no new edge for bytes already waiting.
#[test]
fn a_burst_past_the_turns_budget_is_read_to_the_end() {
    let server = TestServer::with(|c| {
        c.mode = chatloop::Mode::Echo;
        c.max_message_bytes = 1024;
        c.max_queue_bytes = 64 << 10; // a turn reads 16 KiB at most
    });
    let mut s = upgraded(server.addr, "/");
    let mut writer = s.try_clone().unwrap();
    let (count, size) = (320, 512);
    let burst: Vec<u8> = (0..count)
        .flat_map(|_| client_frame(0x82, &[b'b'; 512]))
        .collect();
    let sending = std::thread::spawn(move || writer.write_all(&burst));
    for _ in 0..count {
        read_echo(&mut s, size);
    }
    sending.join().unwrap().unwrap();
}

/// The server closes an idle peer (Close 1001); the peer then floods instead of answering.
/// The server drops it after reading a bounded amount, long before --close-timeout (30 s).
#[test]
fn a_peer_that_floods_after_our_close_is_dropped_at_once() {
    let server = TestServer::with(|c| {
        c.ping_interval = Duration::from_millis(100);
        c.idle_timeout = Duration::from_millis(300);
        c.close_timeout = Duration::from_secs(30);
    });
    let mut s = upgraded(server.addr, "/flood");
    // Ping, then Close 1001: read until the Close frame's payload has arrived.
    let mut got = Vec::new();
    let mut buf = [0; 256];
    while !server_has_closed(&got) {
        let n = s.read(&mut buf).expect("the server's Ping and Close");
        assert!(n > 0, "the server closed before sending its Close");
        got.extend_from_slice(&buf[..n]);
    }
    // A write the server never takes times out instead of hanging the test.
    s.set_write_timeout(Some(READ_TIMEOUT)).unwrap();
    let started = Instant::now();
    let frame = client_frame(0x82, &[b'f'; 16 << 10]);
    let mut flooded = 0usize;
    let error = loop {
        match s.write(&frame) {
            Ok(n) => flooded += n,
            Err(e) => break e,
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "still accepted after {flooded} bytes and 10 s"
        );
    };
    assert!(
        matches!(
            error.kind(),
            io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe
        ),
        "{error}"
    );
    wait_until(READ_TIMEOUT, "the flooder's socket to be freed", || {
        stat(&stats_body(server.addr), "sockets") == 1
    });
}

/// True once `bytes` (what the server sent after its 101) ends with a whole Close frame.
fn server_has_closed(bytes: &[u8]) -> bool {
    let mut rest = bytes;
    while rest.len() >= 2 {
        let len = (rest[1] & 0x7f) as usize;
        if rest.len() < 2 + len {
            return false;
        }
        if rest[0] == 0x88 {
            return true;
        }
        rest = &rest[2 + len..];
    }
    false
}

/// One bucket of a labelled counter in the `/stats` JSON, e.g. `closes_sent_total`, `1000`.
fn bucket(json: &str, name: &str, key: &str) -> u64 {
    let object = &json[json.find(&format!("\"{name}\":{{")).expect(name)..];
    stat(&object[..object.find('}').unwrap()], key)
}

/// Closes are counted as they happen, sent and received, echoed or not: the server's own
/// Close is counted while its socket is still held (Closing, up to --close-timeout), not when
/// it is freed; the peer's Close is counted as received and, echoed, as sent.
#[test]
fn closes_are_counted_as_they_happen() {
    let server = TestServer::with(|c| {
        c.ping_interval = Duration::from_millis(100);
        c.idle_timeout = Duration::from_millis(300);
        c.close_timeout = Duration::from_secs(30);
    });
    // The peer closes first: received, and our echo sent, both 1000.
    let mut polite = upgraded(server.addr, "/bye");
    polite
        .write_all(&client_frame(0x88, &close_payload(1000, b"bye")))
        .unwrap();
    // The server closes an idle peer (1001) that never answers: sent, nothing received.
    let _silent = upgraded(server.addr, "/quiet");
    let body = wait_for(READ_TIMEOUT, "both closes to be counted", || {
        let body = stats_body(server.addr);
        let counted = bucket(&body, "closes_received_total", "1000") == 1
            && bucket(&body, "closes_sent_total", "1000") == 1
            && bucket(&body, "closes_sent_total", "1001") == 1;
        if counted {
            Ok(body)
        } else {
            Err(body)
        }
    });
    assert_eq!(
        stat(&body, "sockets"),
        2,
        "the silent peer is still held: {body}"
    );
    assert_eq!(bucket(&body, "closes_received_total", "1001"), 0);
}

/// 1,000 connections each send one 60 KB message, then idle: each costs the server at most
/// 4 KiB afterwards (measured: ~2 KiB, the same as before the message). tungstenite's read
/// buffer grows to the frame's size; the connection gives it back once it is between
/// messages with nothing buffered. Measured on the server process's RSS (`/proc/PID/status`),
/// since what matters is what the process holds, allocator included; the messages go one
/// after another (`benches/sockets.sh` also measures them all in flight at once, where
/// glibc's heap keeps more than it needs and musl's does not).
#[test]
fn memory_comes_back_after_a_big_message() {
    let n = 1000;
    let server = ServerProcess::spawn_with_fd_limit(n as u32 + 256, &[]);
    let empty = server.status_kib("VmRSS");
    let mut clients: Vec<TcpStream> = (0..n)
        .map(|i| upgraded(server.addr, &format!("/m{i}")))
        .collect();
    let frame = client_frame(0x82, &vec![b'm'; 60_000]);
    for s in &mut clients {
        s.write_all(&frame).unwrap();
    }
    wait_until(READ_TIMEOUT * 2, "every message to be read", || {
        stat(&stats_body(server.addr), "messages_in_total") == n as u64
    });
    let after = server.status_kib("VmRSS");
    let per_connection = after.saturating_sub(empty) as f64 / n as f64;
    println!("RSS {empty} KiB empty, {after} KiB after: {per_connection:.2} KiB per connection");
    assert!(
        per_connection <= 4.0,
        "{per_connection:.1} KiB per connection after one 60 KB message each"
    );
}
