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

/// A masked client frame (RFC 6455 §5.2): `first` is the whole first byte (FIN, RSV, opcode).
fn frame_with(first: u8, payload: &[u8]) -> Vec<u8> {
    let mask = [0x37, 0xfa, 0x21, 0x3d];
    let mut f = vec![first];
    match payload.len() {
        n if n < 126 => f.push(0x80 | n as u8),
        n if n < 65536 => {
            f.push(0x80 | 126);
            f.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            f.push(0x80 | 127);
            f.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    f.extend_from_slice(&mask);
    f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    f
}

/// A final (FIN set) masked frame with `opcode`.
fn frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    frame_with(0x80 | opcode, payload)
}

/// A non-final masked frame with `opcode` (a first fragment or a middle continuation).
fn fragment(opcode: u8, payload: &[u8]) -> Vec<u8> {
    frame_with(opcode, payload)
}

/// A Close frame's payload: the code, then the reason.
fn close_payload(code: u16, reason: &[u8]) -> Vec<u8> {
    let mut p = code.to_be_bytes().to_vec();
    p.extend_from_slice(reason);
    p
}

/// A raw socket that has completed the upgrade to `path` (the 101 head is consumed).
fn upgraded(addr: std::net::SocketAddr, path: &str) -> TcpStream {
    let mut s = raw(addr);
    s.write_all(upgrade_request(path).as_bytes()).unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        s.read_exact(&mut byte).expect("101 response");
        head.push(byte[0]);
    }
    assert!(head.starts_with(b"HTTP/1.1 101 "), "upgraded");
    s
}

/// Splits what a server sent into frames `(first byte, payload)`; servers never mask.
fn server_frames(mut bytes: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut out = Vec::new();
    while bytes.len() >= 2 {
        assert_eq!(bytes[1] & 0x80, 0, "server frames are not masked");
        let (len, at) = match bytes[1] & 0x7f {
            126 => (u16::from_be_bytes([bytes[2], bytes[3]]) as usize, 4),
            127 => (
                u64::from_be_bytes(bytes[2..10].try_into().unwrap()) as usize,
                10,
            ),
            n => (n as usize, 2),
        };
        out.push((bytes[0], bytes[at..at + len].to_vec()));
        bytes = &bytes[at + len..];
    }
    assert!(bytes.is_empty(), "no partial frame at the end");
    out
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

/// Every protocol violation of RFC 6455 §5 is answered with Close 1002, each on its own
/// connection, and the server keeps serving.
#[test]
fn protocol_violations_close_1002() {
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
        cases.push((format!("{name} set"), frame_with(0x80 | bit | 0x1, b"x")));
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

/// Close codes a peer may send (§7.4.1, and 3000-4999 for libraries and applications) are
/// accepted: the server echoes the code and ends the connection cleanly.
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

/// Invalid UTF-8 is 1007 whether it sits in one frame, is split across fragments, or is a
/// Close reason; a valid character split across fragments is relayed whole.
#[test]
fn invalid_utf8_split_across_fragments_closes_1007() {
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

/// A message of 65,536 one-byte fragments (exactly --max-message-bytes) is relayed as one
/// message; one fragment more and the sender is closed with 1009.
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

/// A fragmented message that grows past --max-message-bytes is closed with 1009 as soon as
/// it does, without waiting for its last fragment.
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

/// After its Close a peer's data is ignored (RFC 6455 §5.5.1: no data after a Close), a
/// second Close changes nothing, and the server answers with exactly one Close.
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

/// Pings are answered pong for pong, in order, with their payloads (RFC 6455 §5.5.3), even
/// 10,000 of them written back to back.
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

/// A peer that floods pings and never reads the pongs is a slow consumer: dropped (1008)
/// within --lag-timeout of falling behind, while the server's queue for it stays under its
/// cap and everyone else keeps chatting.
#[test]
fn ping_flood_without_reading_is_dropped_as_slow_consumer() {
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

/// Request heads past --max-head-bytes, or with more header lines than we look at, get 431
/// (RFC 6585 §5), whether they arrive whole or in pieces.
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
