//! The connection state machine driven over an in-memory socket, with time passed in: nothing
//! here sleeps or opens a port.

use super::*;
use std::collections::VecDeque;
use std::time::Duration;

/// An in-memory socket: reads return the queued chunks, then `WouldBlock` (or EOF once `eof`
/// is set); writes append to `out`.
#[derive(Default)]
struct Mock {
    input: VecDeque<Vec<u8>>,
    eof: bool,
    out: Vec<u8>,
}

impl Read for Mock {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.input.pop_front() {
            Some(chunk) => {
                let n = chunk.len().min(buf.len());
                buf[..n].copy_from_slice(&chunk[..n]);
                if n < chunk.len() {
                    self.input.push_front(chunk[n..].to_vec());
                }
                Ok(n)
            }
            None if self.eof => Ok(0),
            None => Err(io::ErrorKind::WouldBlock.into()),
        }
    }
}

impl Write for Mock {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.out.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Socket for Mock {
    fn shutdown_write(&self) -> io::Result<()> {
        Ok(())
    }
}

const UPGRADE: &[u8] = b"GET /room HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\
    Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\
    Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";

/// A masked client frame (RFC 6455 §5.3: clients always mask), FIN set.
fn frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mask = [0x11, 0x22, 0x33, 0x44];
    let mut f = vec![0x80 | opcode];
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

/// Test rig: a connection, its clock and what it relayed.
struct Rig {
    conn: Conn<Mock>,
    cfg: Config,
    now: Instant,
    relayed: Vec<Bytes>,
    scratch: Vec<u8>,
}

impl Rig {
    fn new() -> Rig {
        let cfg = Config::default();
        let now = Instant::now();
        Rig {
            conn: Conn::new(
                0,
                Mock::default(),
                [127, 0, 0, 1].into(),
                now,
                &cfg,
                Meter::default(),
            ),
            cfg,
            now,
            relayed: Vec::new(),
            scratch: vec![0; 4096],
        }
    }

    /// An already upgraded connection (the 101 response is flushed and cleared).
    fn open() -> Rig {
        let mut rig = Rig::new();
        assert_eq!(rig.feed(UPGRADE), Some(Wants::Join("/room".into())));
        rig.take_out();
        rig
    }

    /// Delivers `bytes` as one read and returns the room joined, if any.
    fn feed(&mut self, bytes: &[u8]) -> Option<Wants> {
        self.conn.socket.input.push_back(bytes.to_vec());
        self.read()
    }

    fn read(&mut self) -> Option<Wants> {
        self.conn.readable = true;
        let joined = self.conn.on_readable(
            &mut self.scratch,
            &mut usize::MAX.clone(),
            self.now,
            &self.cfg,
            Ok(()),
            &mut self.relayed,
        );
        self.conn.flush(self.now);
        joined
    }

    fn take_out(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.conn.socket.out)
    }

    fn advance(&mut self, d: Duration) {
        self.now += d;
        self.conn.on_tick(self.now, &self.cfg);
        self.conn.flush(self.now);
    }

    /// The close code of a server Close frame at the end of what was written.
    fn close_code_sent(&mut self) -> u16 {
        let out = self.take_out();
        let at = out
            .windows(2)
            .rposition(|w| w[0] == 0x88)
            .expect("a Close frame");
        u16::from_be_bytes([out[at + 2], out[at + 3]])
    }
}

/// The handshake answers 101, and a frame sent right behind it is not lost.
#[test]
fn upgrade_answers_101_and_keeps_pipelined_frame() {
    let mut rig = Rig::new();
    let mut bytes = UPGRADE.to_vec();
    bytes.extend(frame(0x1, b"hello"));
    assert_eq!(rig.feed(&bytes), Some(Wants::Join("/room".into())));
    let out = String::from_utf8(rig.take_out()).unwrap();
    assert!(out.starts_with("HTTP/1.1 101 Switching Protocols\r\n"));
    assert!(out.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
    assert_eq!(rig.relayed, vec![Bytes::from_static(b"\x81\x05hello")]);
    assert!(rig.conn.is_open());
}

/// A head that arrives a byte at a time still upgrades.
#[test]
fn head_in_single_bytes_still_upgrades() {
    let mut rig = Rig::new();
    for (i, b) in UPGRADE.iter().enumerate() {
        let joined = rig.feed(&[*b]);
        assert_eq!(joined.is_some(), i == UPGRADE.len() - 1);
    }
}

/// Text, binary and fragmented messages come out as one unmasked server frame each.
#[test]
fn messages_are_encoded_once_as_server_frames() {
    let mut rig = Rig::open();
    let mut bytes = frame(0x2, &[1, 2, 3]);
    bytes.extend([0x01, 0x82, 0, 0, 0, 0, b'a', b'b']); // text, not final, mask 0
    bytes.extend([0x80, 0x81, 0, 0, 0, 0, b'c']); // continuation, final
    rig.feed(&bytes);
    assert_eq!(
        rig.relayed,
        vec![
            Bytes::from_static(b"\x82\x03\x01\x02\x03"),
            Bytes::from_static(b"\x81\x03abc")
        ]
    );
}

/// A plain GET of a file we do not serve is answered 404 and the connection lingers to a
/// clean close.
#[test]
fn plain_get_gets_404_then_fin() {
    let mut rig = Rig::new();
    assert_eq!(rig.feed(b"GET /x.txt HTTP/1.1\r\n\r\n"), None);
    let out = rig.take_out();
    assert!(out.starts_with(b"HTTP/1.1 404 Not Found\r\n"));
    assert!(rig.conn.fin_sent, "FIN after the response");
    rig.conn.socket.eof = true;
    rig.read();
    assert!(rig.conn.is_closed());
}

/// A plain GET of a room path gets the chat page, then FIN, like any other answer.
#[test]
fn plain_get_of_a_room_gets_the_page_then_fin() {
    let mut rig = Rig::new();
    assert_eq!(rig.feed(b"GET /kitchen HTTP/1.1\r\n\r\n"), None);
    let out = rig.take_out();
    assert!(out.starts_with(b"HTTP/1.1 200 OK\r\n"));
    // The page, with this server's message limit written in.
    let page = crate::http::page(false, rig.cfg.max_message_bytes);
    assert_eq!(out, page[..]);
    assert!(rig.conn.fin_sent, "FIN after the page");
}

/// Garbage instead of a request head gets 400.
#[test]
fn garbage_gets_400() {
    let mut rig = Rig::new();
    rig.feed(b"\x00\x01\x02 hello\r\n\r\n");
    assert!(rig.take_out().starts_with(b"HTTP/1.1 400 Bad Request\r\n"));
}

/// A head longer than --max-head-bytes gets 431 without waiting for its end.
#[test]
fn oversized_head_gets_431() {
    let mut rig = Rig::new();
    rig.cfg.max_head_bytes = 100;
    rig.feed(&[b'a'; 101]);
    assert!(rig.take_out().starts_with(b"HTTP/1.1 431 "));
}

/// A request that never completes is answered 408 after --handshake-timeout.
#[test]
fn slow_head_times_out_with_408() {
    let mut rig = Rig::new();
    rig.feed(b"GET / HTTP/1.1\r\n");
    rig.advance(rig.cfg.handshake_timeout - Duration::from_millis(1));
    assert!(rig.take_out().is_empty());
    rig.advance(Duration::from_millis(1));
    assert!(rig.take_out().starts_with(b"HTTP/1.1 408 "));
}

/// A full server answers an upgrade with 503.
#[test]
fn upgrade_past_the_limit_gets_503() {
    let mut rig = Rig::new();
    rig.conn.socket.input.push_back(UPGRADE.to_vec());
    let joined = rig.conn.on_readable(
        &mut rig.scratch,
        &mut usize::MAX.clone(),
        rig.now,
        &rig.cfg,
        Err(Status::ServiceUnavailable),
        &mut rig.relayed,
    );
    rig.conn.flush(rig.now);
    assert_eq!(joined, None);
    assert!(rig.take_out().starts_with(b"HTTP/1.1 503 "));
}

/// Invalid UTF-8 in a text message closes with 1007.
#[test]
fn invalid_utf8_closes_1007() {
    let mut rig = Rig::open();
    rig.feed(&frame(0x1, &[0xff, 0xfe]));
    assert_eq!(rig.close_code_sent(), 1007);
    assert!(rig.relayed.is_empty());
}

/// A message over --max-message-bytes closes with 1009.
#[test]
fn oversized_message_closes_1009() {
    // The limit is handed to tungstenite at upgrade time, so set it first.
    let mut rig = Rig::new();
    rig.cfg.max_message_bytes = 10;
    rig.feed(UPGRADE);
    rig.take_out();
    rig.feed(&frame(0x2, &[0; 11]));
    assert_eq!(rig.close_code_sent(), 1009);
}

/// An unmasked client frame is a protocol error: 1002.
#[test]
fn unmasked_frame_closes_1002() {
    let mut rig = Rig::open();
    rig.feed(b"\x81\x02hi");
    assert_eq!(rig.close_code_sent(), 1002);
}

/// Messages queued before a protocol error still go out before the Close.
#[test]
fn queued_data_is_flushed_before_the_close() {
    let mut rig = Rig::open();
    rig.conn
        .send(Bytes::from_static(b"\x81\x01q"), rig.now)
        .unwrap();
    rig.feed(b"\x81\x02hi");
    let out = rig.take_out();
    assert!(out.starts_with(b"\x81\x01q\x88"));
}

/// A Ping is answered with a Pong carrying the same payload (RFC 6455 §5.5.3).
#[test]
fn ping_is_answered_with_pong() {
    let mut rig = Rig::open();
    rig.feed(&frame(0x9, b"abc"));
    assert_eq!(rig.take_out(), b"\x8a\x03abc");
}

/// The peer's Close is answered with the same code, then the connection lingers and closes.
#[test]
fn peer_close_is_echoed_then_closed() {
    let mut rig = Rig::open();
    rig.feed(&frame(0x8, &1000u16.to_be_bytes()));
    assert_eq!(rig.take_out(), b"\x88\x02\x03\xe8");
    assert!(rig.conn.fin_sent);
    rig.conn.socket.eof = true;
    rig.read();
    assert!(rig.conn.is_closed());
}

/// A silent peer is pinged after --ping-interval and closed with 1001 after --idle-timeout.
#[test]
fn silent_peer_is_pinged_then_closed_1001() {
    let mut rig = Rig::open();
    rig.advance(rig.cfg.ping_interval);
    assert_eq!(rig.take_out(), b"\x89\x00", "one Ping");
    rig.advance(Duration::from_secs(1));
    assert!(rig.take_out().is_empty(), "no second Ping while waiting");
    rig.advance(rig.cfg.idle_timeout - rig.cfg.ping_interval);
    assert_eq!(rig.close_code_sent(), 1001);
    rig.advance(rig.cfg.close_timeout);
    assert!(rig.conn.is_closed(), "gone once the close times out");
}

/// Hearing a Pong resets the idle clock.
#[test]
fn pong_keeps_the_peer_alive() {
    let mut rig = Rig::open();
    rig.advance(rig.cfg.ping_interval);
    rig.feed(&frame(0xA, b""));
    rig.advance(rig.cfg.idle_timeout - Duration::from_secs(1));
    assert!(rig.conn.is_open());
}

/// An outbox past its cap refuses the frame; dropping the slow consumer sends 1008.
#[test]
fn full_outbox_means_slow_consumer_1008() {
    let mut rig = Rig::open();
    let big = Bytes::from(vec![0u8; rig.cfg.max_queue_bytes / 2]);
    rig.conn.send(big.clone(), rig.now).unwrap();
    rig.conn.send(big.clone(), rig.now).unwrap();
    assert_eq!(rig.conn.send(big, rig.now), Err(Full));
    rig.conn.drop_slow_consumer(rig.now);
    rig.conn.flush(rig.now);
    assert_eq!(rig.close_code_sent(), 1008);
}

/// Past --max-messages-per-sec (after the one-second burst) the connection is closed 1008.
#[test]
fn message_flood_past_the_rate_closes_1008() {
    let mut rig = Rig::new();
    rig.cfg.max_messages_per_sec = 5;
    rig.feed(UPGRADE);
    rig.take_out();
    for _ in 0..5 {
        rig.feed(&frame(0x1, b"ok"));
    }
    assert_eq!(rig.relayed.len(), 5, "the burst passes");
    rig.now += Duration::from_millis(200); // one more token
    rig.feed(&frame(0x1, b"ok"));
    assert_eq!(rig.relayed.len(), 6);
    rig.feed(&frame(0x1, b"too many"));
    assert_eq!(rig.relayed.len(), 6);
    assert_eq!(rig.close_code_sent(), 1008);
    assert_eq!(rig.conn.outcome, Outcome::Closed(1008));
}

/// Our own Close (shutdown) waits for the peer's, and data it sends meanwhile is not relayed.
#[test]
fn our_close_waits_for_the_peers_and_ignores_data() {
    let mut rig = Rig::open();
    rig.conn.close(CloseCode::Away, "bye", rig.now);
    rig.conn.flush(rig.now);
    assert_eq!(rig.close_code_sent(), 1001);
    rig.feed(&frame(0x1, b"late"));
    assert!(rig.relayed.is_empty());
    rig.feed(&frame(0x8, &1001u16.to_be_bytes()));
    assert!(rig.conn.fin_sent, "handshake done: FIN sent");
}

/// A peer that vanishes without a Close is closed at once.
#[test]
fn eof_without_close_is_closed() {
    let mut rig = Rig::open();
    rig.conn.socket.eof = true;
    rig.read();
    assert!(rig.conn.is_closed());
}
