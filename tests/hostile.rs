//! Hostile clients, one abuse at a time, over real sockets: each is answered as RFC 6455 says
//! (the close code is checked on the wire), and the server goes on serving everyone else.
//!
//! The clients here are hand-rolled: frames are built byte by byte, because a real WebSocket
//! library refuses to send most of them.

mod common;

use common::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};
use tungstenite::Message;

/// A final (FIN set) masked frame with `opcode`.
fn frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    client_frame(0x80 | opcode, payload)
}

/// A non-final masked frame with `opcode` (a first fragment or a middle continuation).
fn fragment(opcode: u8, payload: &[u8]) -> Vec<u8> {
    client_frame(opcode, payload)
}

/// Sends `bytes` on a fresh upgraded connection and returns the code of the server's Close,
/// which must be the last thing it sends before ending the connection.
fn close_code_for(addr: std::net::SocketAddr, bytes: &[u8]) -> u16 {
    let mut s = upgraded(addr, "/abuse");
    // The server may close before it has read everything: a failed write is fine.
    let _ = s.write_all(bytes);
    let frames = server_frames(&read_to_end(&mut s));
    let (first, payload) = frames.last().expect("a Close frame");
    assert_eq!(*first, 0x88, "the last frame is a Close: {frames:?}");
    u16::from_be_bytes([payload[0], payload[1]])
}

/// Two clients in one room can still chat: the server is alive and serving.
fn assert_still_serving(server: &TestServer) {
    let mut a = connect(server, "/alive");
    let mut b = connect(server, "/alive");
    a.send(Message::text("still here")).unwrap();
    assert_eq!(recv(&mut b), Message::text("still here"));
}

/// Every RFC 6455 §5 protocol violation is answered with Close 1002; the server keeps serving.
#[test]
fn protocol_violations_close_1002() {
    // Each case on its own connection.
    let server = TestServer::start();
    let mut cases: Vec<(String, Vec<u8>)> = vec![
        // §5.1: a client MUST mask every frame.
        ("unmasked text frame".into(), b"\x81\x02hi".to_vec()),
        // §5.4: a continuation needs a message to continue.
        ("continuation without start".into(), frame(0x0, b"x")),
        // §5.4: a new data frame while a fragmented message is open.
        (
            "text inside a fragmented message".into(),
            [fragment(0x1, b"a"), frame(0x1, b"b")].concat(),
        ),
        // §5.5: control frames carry at most 125 bytes and are never fragmented.
        ("Ping of 126 bytes".into(), frame(0x9, &[0; 126])),
        ("Close of 126 bytes".into(), frame(0x8, &[0x03; 126])),
        ("fragmented Ping".into(), fragment(0x9, b"p")),
        // §5.5.1: a Close body is empty or a 2-byte code then a reason.
        ("1-byte Close payload".into(), frame(0x8, &[0x03])),
    ];
    // §5.2: opcodes 0x3-0x7 and 0xB-0xF are reserved.
    for op in (0x3..=0x7).chain(0xB..=0xF) {
        cases.push((format!("reserved opcode {op:#x}"), frame(op, b"x")));
    }
    // §5.2: RSV1-3 MUST be 0 unless an extension says otherwise; we negotiate none.
    for (name, bit) in [("RSV1", 0x40), ("RSV2", 0x20), ("RSV3", 0x10)] {
        cases.push((format!("{name} set"), client_frame(0x80 | bit | 0x1, b"x")));
    }
    // §7.4.1/§7.4.2: codes an endpoint must never send: below 1000, 1004-1006 and 1015
    // (reserved or only for reporting), 1016-2999 unassigned, 5000 and up out of range.
    for code in [0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535] {
        cases.push((
            format!("Close code {code}"),
            frame(0x8, &close_payload(code, b"")),
        ));
    }
    for (name, bytes) in &cases {
        assert_eq!(close_code_for(server.addr, bytes), 1002, "{name}");
    }
    assert_still_serving(&server);
}

/// A Close code a peer may send (§7.4.1, 3000-4999) is echoed and the connection ends cleanly.
#[test]
fn valid_close_codes_are_echoed() {
    let server = TestServer::start();
    for code in [
        1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 4999,
    ] {
        assert_eq!(
            close_code_for(server.addr, &frame(0x8, &close_payload(code, b"bye"))),
            code
        );
    }
}

/// Invalid UTF-8 closes 1007 wherever it sits; a character split across fragments is relayed.
#[test]
fn invalid_utf8_split_across_fragments_closes_1007() {
    // In one frame, split across fragments, or in a Close reason: 1007 each time.
    let server = TestServer::start();
    // "€" is E2 82 AC; E2 82 followed by '(' is not UTF-8, whatever the fragment boundaries.
    let bad_split = [fragment(0x1, b"ok \xe2\x82"), frame(0x0, b"(")].concat();
    assert_eq!(close_code_for(server.addr, &bad_split), 1007);
    let bad_middle = [
        fragment(0x1, b"\xe2"),
        fragment(0x0, b"\x82"),
        frame(0x0, b"\xff"),
    ]
    .concat();
    assert_eq!(close_code_for(server.addr, &bad_middle), 1007);
    // Truncated at the end: the last fragment stops mid-character.
    let truncated = [fragment(0x1, b"a"), frame(0x0, b"\xe2\x82")].concat();
    assert_eq!(close_code_for(server.addr, &truncated), 1007);
    let bad_reason = frame(0x8, &close_payload(1000, b"\xc3\x28"));
    assert_eq!(close_code_for(server.addr, &bad_reason), 1007);

    let mut listener = connect(&server, "/utf8");
    let mut s = upgraded(server.addr, "/utf8");
    let good_split = [
        fragment(0x1, b"price: \xe2"),
        fragment(0x0, b"\x82"),
        frame(0x0, b"\xac"),
    ]
    .concat();
    s.write_all(&good_split).unwrap();
    assert_eq!(recv(&mut listener), Message::text("price: €"));
}

/// 65,536 one-byte fragments (the limit) are relayed as one message; one more closes 1009.
#[test]
fn fragment_flood_is_one_message_until_the_limit_then_1009() {
    const LIMIT: usize = 64 << 10;
    let server = TestServer::with(|c| c.max_message_bytes = LIMIT);
    let mut listener = connect(&server, "/frag");
    let mut s = upgraded(server.addr, "/frag");
    let mut flood = fragment(0x2, &[0]);
    for i in 1..LIMIT - 1 {
        flood.extend(fragment(0x0, &[i as u8]));
    }
    flood.extend(frame(0x0, &[(LIMIT - 1) as u8]));
    s.write_all(&flood).unwrap();
    let Message::Binary(got) = recv(&mut listener) else {
        panic!("a binary message");
    };
    assert_eq!(got.len(), LIMIT);
    assert!(got.iter().enumerate().all(|(i, &b)| b == i as u8));

    // Past the limit: the sender hears 1009, the listener hears nothing.
    let mut over = fragment(0x2, &[0]);
    for _ in 1..LIMIT {
        over.extend(fragment(0x0, &[1]));
    }
    over.extend(frame(0x0, &[2]));
    assert_eq!(close_code_for(server.addr, &over), 1009);
    assert_silent(&mut listener, Duration::from_millis(200));
}

/// A fragmented message is closed 1009 as it passes the limit, not at its last fragment.
#[test]
fn fragmented_message_past_the_limit_closes_1009_early() {
    let server = TestServer::with(|c| c.max_message_bytes = 1024);
    let mut s = upgraded(server.addr, "/");
    let mut bytes = fragment(0x1, &[b'a'; 600]);
    bytes.extend(fragment(0x0, &[b'b'; 600]));
    // No final fragment: the server must not wait for one.
    s.write_all(&bytes).unwrap();
    let frames = server_frames(&read_to_end(&mut s));
    assert_eq!(frames.last().unwrap().0, 0x88);
    assert_eq!(
        u16::from_be_bytes([frames[0].1[0], frames[0].1[1]]),
        1009,
        "{frames:?}"
    );
}

/// After a peer's Close, its data and a second Close are ignored; one Close answers (§5.5.1).
#[test]
fn data_and_second_close_after_close_are_ignored() {
    let server = TestServer::start();
    let mut listener = connect(&server, "/after");
    let mut s = upgraded(server.addr, "/after");
    let bytes = [
        frame(0x8, &close_payload(1000, b"done")),
        frame(0x1, b"after the close"),
        frame(0x8, &close_payload(1001, b"again")),
        frame(0x2, b"more"),
    ]
    .concat();
    let _ = s.write_all(&bytes);
    let frames = server_frames(&read_to_end(&mut s));
    assert_eq!(
        frames,
        vec![(0x88, close_payload(1000, b"done"))],
        "one Close, echoing the first"
    );
    assert_silent(&mut listener, Duration::from_millis(300));
    assert_still_serving(&server);
}

/// 10,000 back-to-back Pings get 10,000 Pongs, in order, with their payloads (§5.5.3).
#[test]
fn ping_flood_is_answered_pong_for_pong() {
    const PINGS: u32 = 10_000;
    let server = TestServer::start();
    let mut s = upgraded(server.addr, "/");
    let mut writer = s.try_clone().unwrap();
    let flood: Vec<u8> = (0..PINGS)
        .flat_map(|i| frame(0x9, &i.to_be_bytes()))
        .collect();
    let sent = std::thread::spawn(move || writer.write_all(&flood));
    // Each Pong is 6 bytes: 0x8A, length 4, the 4-byte counter.
    let mut pongs = vec![0u8; PINGS as usize * 6];
    s.read_exact(&mut pongs).expect("every pong");
    sent.join().unwrap().unwrap();
    for (i, pong) in pongs.chunks(6).enumerate() {
        assert_eq!(pong[..2], [0x8a, 4], "pong {i}");
        assert_eq!(pong[2..], (i as u32).to_be_bytes(), "pong {i} payload");
    }
}

/// A peer that floods Pings and never reads the Pongs is dropped (1008) as a slow consumer.
#[test]
fn ping_flood_without_reading_is_dropped_as_slow_consumer() {
    // Within --lag-timeout of falling behind; the server's queue for it stays under its cap and
    // everyone else keeps chatting.
    let server = TestServer::with(|c| {
        c.max_message_bytes = 16 << 10;
        c.max_queue_bytes = 64 << 10;
        c.lag_timeout = Duration::from_millis(200);
        c.close_timeout = Duration::from_millis(500);
    });
    let mut a = connect(&server, "/room");
    let mut b = connect(&server, "/room");
    // A small receive buffer, so the kernel cannot hide the pongs for long.
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(4 << 10).unwrap();
    socket.connect(&server.addr.into()).unwrap();
    let mut flooder: TcpStream = socket.into();
    flooder.set_write_timeout(Some(READ_TIMEOUT)).unwrap();
    flooder
        .write_all(upgrade_request("/room").as_bytes())
        .unwrap();
    let ping = frame(0x9, &[b'p'; 125]);
    let burst: Vec<u8> = ping
        .iter()
        .copied()
        .cycle()
        .take(ping.len() * 100)
        .collect();
    let started = Instant::now();
    let mut sent = 0usize;
    // Once dropped, the connection lingers (input read and discarded) for --close-timeout, so
    // the flood goes on that long; then the socket is closed and the writes fail.
    let error = loop {
        match flooder.write_all(&burst) {
            Ok(()) => sent += burst.len(),
            Err(e) => break e,
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "flooder never dropped: {sent} bytes in {:?}",
            started.elapsed()
        );
    };
    println!(
        "ping flooder cut off after {} KiB in {:?}: {error}",
        sent >> 10,
        started.elapsed()
    );
    let json = stats_body(server.addr);
    assert_eq!(stat(&json, "slow_consumers_total"), 1, "{json}");
    assert_eq!(stat(&json, "1008"), 1, "closed with 1008: {json}");
    assert!(stat(&json, "queued_bytes") < 64 << 10, "{json}");
    a.send(Message::text("we are fine")).unwrap();
    assert_eq!(recv(&mut b), Message::text("we are fine"));
}

/// Too long a head, or too many header lines, gets 431 (RFC 6585 §5), whole or in pieces.
#[test]
fn oversized_heads_get_431() {
    let server = TestServer::start();
    let heads = [
        format!("GET / HTTP/1.1\r\nX-Big: {}\r\n\r\n", "a".repeat(9000)),
        format!("GET / HTTP/1.1\r\n{}\r\n", "X-Many: 1\r\n".repeat(100)),
        format!("GET /{} HTTP/1.1\r\n\r\n", "p".repeat(9000)),
    ];
    for head in &heads {
        let mut s = raw(server.addr);
        for piece in head.as_bytes().chunks(1000) {
            if s.write_all(piece).is_err() {
                break; // answered and closed already
            }
        }
        let out = read_to_end(&mut s);
        assert!(
            out.starts_with(b"HTTP/1.1 431 "),
            "{}",
            String::from_utf8_lossy(&out)
        );
    }
    assert_still_serving(&server);
}
