//! Every limit over real sockets: what a client sees when it hits one, and that nobody else
//! notices.

mod common;

use common::*;
use std::io::{Read, Write};
use std::time::Duration;
use tungstenite::Message;

/// A message over --max-message-bytes is answered with Close 1009.
#[test]
fn oversized_message_closes_1009() {
    let server = TestServer::with(|c| c.max_message_bytes = 1024);
    let mut a = connect(&server, "/");
    a.send(Message::binary(vec![0; 1025])).unwrap();
    assert_eq!(expect_close(&mut a), 1009);
}

/// Invalid UTF-8 in a text message is answered with Close 1007.
#[test]
fn invalid_utf8_closes_1007() {
    let server = TestServer::start();
    let mut s = raw(server.addr);
    s.write_all(upgrade_request("/").as_bytes()).unwrap();
    // A text frame whose payload is not UTF-8, sent before the 101 is read.
    s.write_all(&client_frame(0x81, b"\xc3\x28")).unwrap();
    read_101(&mut s);
    assert_eq!(
        server_frames(&read_to_end(&mut s)),
        [(0x88, close_payload(1007, b"invalid UTF-8"))],
        "a Close frame follows the 101"
    );
}

/// A plain GET gets a complete HTTP response and the connection is closed cleanly.
#[test]
fn plain_get_gets_http_404() {
    let server = TestServer::start();
    let mut s = raw(server.addr);
    s.write_all(b"GET /nothing-here.txt HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let out = String::from_utf8(read_to_end(&mut s)).unwrap();
    assert!(out.starts_with("HTTP/1.1 404 Not Found\r\n"), "{out}");
    assert!(out.ends_with("404 Not Found\n"));
}

/// Garbage bytes instead of a request get 400.
#[test]
fn garbage_gets_http_400() {
    let server = TestServer::start();
    let mut s = raw(server.addr);
    s.write_all(b"\x16\x03\x01\x02\x00garbage\r\n\r\n").unwrap();
    let out = read_to_end(&mut s);
    assert!(out.starts_with(b"HTTP/1.1 400 Bad Request\r\n"));
}

/// A request head larger than --max-head-bytes gets 431.
#[test]
fn huge_head_gets_http_431() {
    let server = TestServer::with(|c| c.max_head_bytes = 1024);
    let mut s = raw(server.addr);
    let head = format!("GET / HTTP/1.1\r\nX-Big: {}\r\n\r\n", "a".repeat(2000));
    // The server may answer and close before it has read everything: ignore write errors.
    let _ = s.write_all(head.as_bytes());
    let out = read_to_end(&mut s);
    assert!(out.starts_with(b"HTTP/1.1 431 "));
}

/// A client that never finishes its request head is answered 408 after --handshake-timeout.
#[test]
fn slowloris_handshake_times_out_with_408() {
    let server = TestServer::with(|c| c.handshake_timeout = Duration::from_millis(300));
    let mut s = raw(server.addr);
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").unwrap();
    let out = read_to_end(&mut s);
    assert!(out.starts_with(b"HTTP/1.1 408 Request Timeout\r\n"));
}

/// A silent peer is pinged after --ping-interval, then closed with 1001 after --idle-timeout.
#[test]
fn idle_peer_is_pinged_then_dropped() {
    let server = TestServer::with(|c| {
        c.ping_interval = Duration::from_millis(200);
        c.idle_timeout = Duration::from_millis(600);
        c.close_timeout = Duration::from_millis(300);
    });
    let mut s = raw(server.addr);
    s.write_all(upgrade_request("/").as_bytes()).unwrap();
    // Never answer anything: read the 101, the Ping and the Close until the server hangs up.
    read_101(&mut s);
    let frames = server_frames(&read_to_end(&mut s));
    assert_eq!(frames[0], (0x89, vec![]), "an empty Ping first");
    assert_eq!(
        frames[1..],
        [(0x88, close_payload(1001, b"idle timeout"))],
        "then Close 1001, and nothing else"
    );
}

/// A client that answers pings is kept past --idle-timeout.
#[test]
fn peer_answering_pings_is_kept() {
    let server = TestServer::with(|c| {
        c.ping_interval = Duration::from_millis(100);
        c.idle_timeout = Duration::from_millis(300);
    });
    let mut a = connect(&server, "/");
    let mut b = connect(&server, "/");
    // tungstenite answers pings while reading; read for 1 s (over three idle timeouts).
    a.get_mut()
        .set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let until = std::time::Instant::now() + Duration::from_secs(1);
    let mut pings = 0;
    while std::time::Instant::now() < until {
        match a.read() {
            Ok(Message::Ping(_)) => pings += 1,
            Ok(other) => panic!("unexpected {other:?}"),
            Err(tungstenite::Error::Io(_)) => {}
            Err(e) => panic!("dropped: {e}"),
        }
        let _ = a.flush();
        b.send(Message::Pong(Default::default())).unwrap();
    }
    assert!(pings >= 2, "the server pinged the quiet client ({pings})");
    b.send(Message::text("still open")).unwrap();
    a.get_mut().set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    assert_eq!(recv(&mut a), Message::text("still open"));
}

/// Past --max-connections an upgrade gets HTTP 503, and a freed slot is available again.
#[test]
fn connection_limit_answers_503() {
    let server = TestServer::with(|c| c.max_connections = 2);
    let a = connect(&server, "/");
    let _b = connect(&server, "/");
    let stream = raw(server.addr);
    match tungstenite::client(server.url("/"), stream) {
        Err(tungstenite::HandshakeError::Failure(tungstenite::Error::Http(resp))) => {
            assert_eq!(resp.status(), 503)
        }
        other => panic!("expected HTTP 503, got {:?}", other.map(|_| ())),
    }
    drop(a);
    // The server frees the slot when it reads the FIN, on a turn of its own.
    wait_until(
        READ_TIMEOUT,
        "the closed connection's slot to be freed",
        || stat(&stats_body(server.addr), "connections_open") == 1,
    );
    let _c = connect(&server, "/");
}

/// A client that never reads is dropped; a healthy reader gets everything; memory stays bounded.
#[test]
fn never_reading_client_is_dropped_and_memory_stays_bounded() {
    // Dropped means Close 1008 or a cut connection.
    let server = ServerProcess::spawn(&[]);
    let mut sender = server.connect("/");
    let mut healthy = server.connect("/");
    let mut stuck = raw(server.addr);
    stuck.write_all(upgrade_request("/").as_bytes()).unwrap();
    // Let the stuck client's upgrade land before the flood.
    sender.send(Message::text("sync")).unwrap();
    assert_eq!(recv(&mut healthy), Message::text("sync"));

    const N: usize = 600; // 600 × 60 KiB ≈ 36 MB, far past any socket buffer
    let reader = std::thread::spawn(move || {
        for i in 0..N {
            match recv(&mut healthy) {
                Message::Binary(b) => assert_eq!(b[0], i as u8, "message {i} in order"),
                other => panic!("unexpected {other:?}"),
            }
        }
    });
    let payload = vec![0u8; 60 << 10];
    for i in 0..N {
        let mut p = payload.clone();
        p[0] = i as u8;
        sender.send(Message::binary(p)).unwrap();
    }
    reader
        .join()
        .expect("healthy reader got everything in order");

    // The stuck client's connection has been ended by the server: reading what the kernel
    // buffered reaches the end instead of timing out.
    stuck.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        match stuck.read(&mut buf) {
            Ok(0) => break,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!("stuck client was never dropped: {e}"),
        }
    }
    let peak_kib = server.status_kib("VmHWM");
    assert!(
        peak_kib < 48 << 10,
        "peak RSS {peak_kib} KiB: the outbox cap (1 MiB) should bound it"
    );
}

/// When every receiver is behind, the server stops reading: nobody is dropped, nothing is lost.
#[test]
fn overload_pushes_back_instead_of_dropping() {
    // Overload is not a slow consumer: the server pushes back (stops reading) instead of growing
    // its queues or dropping anyone.
    let server = TestServer::with(|c| {
        c.max_queue_bytes = 256 << 10;
        c.high_water_bytes = 1 << 20;
    });
    const RECEIVERS: usize = 8;
    // One sender: in chat mode a second one would hear the first and, never reading, would
    // itself be a slow consumer.
    const SENDERS: usize = 1;
    const N: usize = 8000; // 1 KiB each: 8 MB to every receiver
    let mut senders: Vec<_> = (0..SENDERS).map(|_| connect(&server, "/")).collect();
    let receivers: Vec<_> = (0..RECEIVERS)
        .map(|_| {
            // A small receive buffer, so the kernel cannot hide how far behind a reader is.
            let socket =
                socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
            socket.set_recv_buffer_size(16 << 10).unwrap();
            socket.connect(&server.addr.into()).unwrap();
            let stream: std::net::TcpStream = socket.into();
            stream.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
            let mut ws = tungstenite::client(server.url("/"), stream).unwrap().0;
            std::thread::spawn(move || {
                let mut next = [0usize; SENDERS];
                let mut got = 0;
                while got < SENDERS * N {
                    // Slow readers: everyone is behind, nobody is stuck. This sleep is the
                    // point of the test (readers slower than the sender), not a wait.
                    if got % 64 == 0 {
                        std::thread::sleep(Duration::from_millis(2));
                    }
                    let Message::Binary(b) = recv(&mut ws) else {
                        panic!("binary expected")
                    };
                    let (who, seq) = (b[0] as usize, u16::from_be_bytes([b[1], b[2]]) as usize);
                    assert_eq!(seq, next[who] % 65536, "per-sender order");
                    next[who] += 1;
                    got += 1;
                }
            })
        })
        .collect();
    // Every receiver is in the room before the flood starts.
    wait_until(READ_TIMEOUT, "every client to be in the room", || {
        stat(&stats_body(server.addr), "connections_open") == (RECEIVERS + SENDERS) as u64
    });
    let writers: Vec<_> = senders
        .drain(..)
        .enumerate()
        .map(|(who, mut ws)| {
            std::thread::spawn(move || {
                for seq in 0..N {
                    let mut p = vec![0u8; 1024];
                    p[0] = who as u8;
                    p[1..3].copy_from_slice(&(seq as u16).to_be_bytes());
                    ws.send(Message::binary(p)).unwrap();
                }
                ws
            })
        })
        .collect();
    let _senders: Vec<_> = writers.into_iter().map(|w| w.join().unwrap()).collect();
    for r in receivers {
        r.join().expect("receiver got every message in order");
    }
}
