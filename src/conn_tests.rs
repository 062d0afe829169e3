//! The connection state machine driven over an in-memory socket, with time passed in: nothing
//! here sleeps or opens a port.

use super::*;
use crate::http::Status;
use crate::outbox::CHUNK_COST;
use crate::testing::{client_frame as frame, upgrade_request, MockSocket};
use bytes::Bytes;
use std::time::Duration;
use tungstenite::protocol::frame::coding::CloseCode;

/// The opening handshake every test upgrades with (room `/room`).
fn upgrade() -> Vec<u8> {
    upgrade_request("/room")
}

/// The action a complete upgrade request yields.
fn asks_to_join() -> Option<Action> {
    Some(Action::Upgrade {
        room: "/room".into(),
    })
}

/// Test rig: a connection, its clock, and the part of the server that answers its actions.
pub(super) struct Rig {
    pub(super) conn: Conn<MockSocket>,
    pub(super) cfg: Config,
    pub(super) now: Instant,
    /// Every `Action::Message`, in order, encoded as the server sends it.
    pub(super) relayed: Vec<Bytes>,
    pub(super) scratch: Scratch,
    /// What the server's admission says to an upgrade.
    pub(super) admission: Result<(), Status>,
    /// Send every message back, as `--echo` does.
    pub(super) echo: bool,
}

impl Rig {
    pub(super) fn new() -> Rig {
        let cfg = Config::default();
        let now = Instant::now();
        Rig {
            conn: Conn::new(
                ConnId(0),
                MockSocket::default(),
                now,
                &cfg,
                Meter::default(),
            ),
            cfg,
            now,
            relayed: Vec::new(),
            scratch: Scratch::new(4096),
            admission: Ok(()),
            echo: false,
        }
    }

    /// An already upgraded connection (the 101 response is flushed and cleared).
    pub(super) fn open() -> Rig {
        let mut rig = Rig::new();
        assert_eq!(rig.feed(&upgrade()), asks_to_join());
        rig.take_out();
        rig
    }

    /// Delivers `bytes` as one read; returns the upgrade or report asked for, if any.
    pub(super) fn feed(&mut self, bytes: &[u8]) -> Option<Action> {
        self.conn.socket.push(bytes);
        self.read()
    }

    /// One turn of reading, as the server does it: call until `Idle` or `Yield`, answering
    /// each action; then flush. Returns the last upgrade or report asked for.
    pub(super) fn read(&mut self) -> Option<Action> {
        self.scratch.start_turn(usize::MAX);
        let (asked, _) = self.read_turn();
        self.conn.flush(self.now);
        asked
    }

    /// Calls `on_readable` until `Idle` or `Yield`, as the server does; returns the last
    /// upgrade or report asked for and the action that ended the turn.
    pub(super) fn read_turn(&mut self) -> (Option<Action>, Action) {
        self.scratch.start_conn(false);
        let mut asked = None;
        loop {
            match self
                .conn
                .on_readable(&mut self.scratch, self.now, &self.cfg)
            {
                Action::Upgrade { room } => {
                    match self.admission {
                        Ok(()) => self.conn.accept_upgrade(self.now, &self.cfg),
                        Err(status) => self.conn.refuse(status, self.now),
                    }
                    asked = Some(Action::Upgrade { room });
                }
                Action::Report { report, head_only } => {
                    self.conn.answer_report(report, "{}", head_only, self.now);
                    asked = Some(Action::Report { report, head_only });
                }
                Action::Message(msg) => {
                    let frame = crate::wire::encode(&msg);
                    if self.echo {
                        self.conn.send(frame.clone(), self.now);
                    }
                    self.relayed.push(frame);
                }
                end @ (Action::Idle | Action::Yield) => return (asked, end),
            }
        }
    }

    pub(super) fn take_out(&mut self) -> Vec<u8> {
        self.conn.socket.take_out()
    }

    pub(super) fn advance(&mut self, d: Duration) {
        self.now += d;
        self.conn.on_tick(self.now, &self.cfg);
        self.conn.flush(self.now);
    }

    /// The close code of a server Close frame at the end of what was written.
    pub(super) fn close_code_sent(&mut self) -> u16 {
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
    let mut bytes = upgrade();
    bytes.extend(frame(0x1, b"hello"));
    assert_eq!(rig.feed(&bytes), asks_to_join());
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
    let head = upgrade();
    for (i, b) in head.iter().enumerate() {
        let joined = rig.feed(&[*b]);
        assert_eq!(joined.is_some(), i == head.len() - 1);
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
    assert!(rig.conn.socket.fin.get(), "FIN after the response");
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
    assert!(rig.conn.socket.fin.get(), "FIN after the page");
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
    rig.admission = Err(Status::ServiceUnavailable);
    assert_eq!(rig.feed(&upgrade()), asks_to_join(), "admission is asked");
    assert!(!rig.conn.is_open());
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
    rig.feed(&upgrade());
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
    assert_eq!(
        rig.conn.send(Bytes::from_static(b"\x81\x01q"), rig.now),
        Sent::Queued
    );
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

/// The peer's Close is answered with the same code, then the connection closes at once: the
/// peer sends nothing after its Close, so there is no FIN of its to wait for.
#[test]
fn peer_close_is_echoed_then_closed() {
    let mut rig = Rig::open();
    rig.feed(&frame(0x8, &1000u16.to_be_bytes()));
    assert_eq!(rig.take_out(), b"\x88\x02\x03\xe8");
    assert!(rig.conn.is_closed());
    assert!(
        !rig.conn.socket.fin.get(),
        "closing the socket sends the FIN"
    );
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

/// A frame past the outbox's cap is refused and the slow consumer is dropped with 1008.
#[test]
fn full_outbox_means_slow_consumer_1008() {
    let mut rig = Rig::open();
    // Two halves of the cap, less what each chunk is charged beyond its bytes.
    let big = Bytes::from(vec![0u8; rig.cfg.max_queue_bytes / 2 - CHUNK_COST]);
    assert_eq!(rig.conn.send(big.clone(), rig.now), Sent::Queued);
    assert_eq!(rig.conn.send(big.clone(), rig.now), Sent::Queued);
    assert_eq!(rig.conn.send(big, rig.now), Sent::Dropped);
    rig.conn.flush(rig.now);
    assert_eq!(rig.close_code_sent(), 1008);
}

/// Past --max-messages-per-sec (after the one-second burst) the connection is closed 1008.
#[test]
fn message_flood_past_the_rate_closes_1008() {
    let mut rig = Rig::new();
    rig.cfg.max_messages_per_sec = 5;
    rig.feed(&upgrade());
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
    assert_eq!(rig.conn.take_tally().close_sent, Some(1008));
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
    assert!(rig.conn.is_closed(), "handshake done: closed");
}

/// A peer that vanishes without a Close is closed at once.
#[test]
fn eof_without_close_is_closed() {
    let mut rig = Rig::open();
    rig.conn.socket.eof = true;
    rig.read();
    assert!(rig.conn.is_closed());
}

/// A read holding several messages yields them one call at a time; the rest of the read
/// waits in the scratch buffer until the server calls again.
#[test]
fn each_call_yields_at_most_one_message() {
    let mut rig = Rig::open();
    // Longer than tungstenite's read window, so the second frame cannot all be inside it.
    let (one, two) = (vec![b'1'; 300], vec![b'2'; 300]);
    let mut bytes = frame(0x2, &one);
    bytes.extend(frame(0x2, &two));
    rig.conn.socket.push(&bytes);
    rig.scratch.start_turn(usize::MAX);
    rig.scratch.start_conn(false);
    let first = rig.conn.on_readable(&mut rig.scratch, rig.now, &rig.cfg);
    assert_eq!(first, Action::Message(Message::binary(one)));
    assert!(!rig.scratch.input().is_empty(), "the second frame waits");
    let second = rig.conn.on_readable(&mut rig.scratch, rig.now, &rig.cfg);
    assert_eq!(second, Action::Message(Message::binary(two)));
    let end = rig.conn.on_readable(&mut rig.scratch, rig.now, &rig.cfg);
    assert_eq!(end, Action::Idle, "drained: wait for readiness");
}

/// A socket with more than READS_PER_TURN reads waiting yields the turn; the next turn goes on.
#[test]
fn a_busy_socket_yields_after_its_reads_for_the_turn() {
    let mut rig = Rig::open();
    for _ in 0..READS_PER_TURN + 1 {
        rig.conn.socket.push(&frame(0x1, b"x"));
    }
    rig.scratch.start_turn(usize::MAX);
    let (_, end) = rig.read_turn();
    assert_eq!(end, Action::Yield);
    assert_eq!(rig.relayed.len(), READS_PER_TURN);
    let (_, end) = rig.read_turn();
    assert_eq!(end, Action::Idle);
    assert_eq!(rig.relayed.len(), READS_PER_TURN + 1);
}

/// When the turn's byte budget is spent the connection yields, and reads on next turn.
#[test]
fn a_spent_budget_yields_the_turn() {
    let mut rig = Rig::open();
    rig.conn.socket.push(&frame(0x1, b"abc"));
    rig.scratch.start_turn(0);
    let (_, end) = rig.read_turn();
    assert_eq!(end, Action::Yield);
    assert!(rig.relayed.is_empty());
    rig.scratch.start_turn(usize::MAX);
    assert_eq!(rig.read_turn().1, Action::Idle);
    assert_eq!(rig.relayed.len(), 1);
}

/// `/stats` asks the server for a report; the answer it renders goes out as a 200, then FIN.
#[test]
fn report_request_asks_the_server_then_answers_200() {
    let mut rig = Rig::new();
    let asked = rig.feed(b"GET /stats HTTP/1.1\r\n\r\n");
    assert_eq!(
        asked,
        Some(Action::Report {
            report: Report::Json,
            head_only: false
        })
    );
    let out = String::from_utf8(rig.take_out()).unwrap();
    assert!(out.starts_with("HTTP/1.1 200 OK\r\n"), "{out}");
    assert!(out.ends_with("\r\n\r\n{}"), "{out}");
    assert!(rig.conn.socket.fin.get());
}

/// Admission is asked once, for the upgrade: never for plain requests, never per message.
#[test]
fn admission_is_asked_only_for_an_upgrade() {
    let mut rig = Rig::new();
    assert_eq!(rig.feed(b"GET /kitchen HTTP/1.1\r\n\r\n"), None, "the page");
    let mut rig = Rig::new();
    let mut bytes = upgrade();
    bytes.extend(frame(0x1, b"a"));
    assert_eq!(rig.feed(&bytes), asks_to_join());
    for _ in 0..3 {
        assert_eq!(rig.feed(&frame(0x1, b"b")), None);
    }
    assert_eq!(rig.relayed.len(), 4);
}

/// Too many connections from one address: the upgrade is refused with 429.
#[test]
fn refused_upgrade_gets_the_servers_status() {
    let mut rig = Rig::new();
    rig.admission = Err(Status::TooManyRequests);
    rig.feed(&upgrade());
    assert!(rig.take_out().starts_with(b"HTTP/1.1 429 "));
    assert_eq!(rig.conn.take_tally().answered, Some(429));
}

/// Frames that came in the same read as the upgrade are only read once admitted.
#[test]
fn frames_behind_a_refused_upgrade_are_never_relayed() {
    let mut rig = Rig::new();
    rig.admission = Err(Status::ServiceUnavailable);
    let mut bytes = upgrade();
    bytes.extend(frame(0x1, b"sneaky"));
    rig.feed(&bytes);
    assert!(rig.relayed.is_empty());
}

/// Echo order: a message read in the same burst as a Ping is echoed before the Pong.
#[test]
fn echo_comes_before_the_pong_for_a_later_ping() {
    let mut rig = Rig::open();
    rig.echo = true;
    let mut bytes = frame(0x1, b"hi");
    bytes.extend(frame(0x9, b"p"));
    rig.feed(&bytes);
    assert_eq!(rig.take_out(), b"\x81\x02hi\x8a\x01p");
}

/// Echo order: a message followed by the peer's Close is echoed before the Close reply.
#[test]
fn echo_comes_before_the_close_reply() {
    let mut rig = Rig::open();
    rig.echo = true;
    let mut bytes = frame(0x1, b"bye");
    bytes.extend(frame(0x8, &1000u16.to_be_bytes()));
    rig.feed(&bytes);
    assert_eq!(rig.take_out(), b"\x81\x03bye\x88\x02\x03\xe8");
}

/// Echo order: a message followed by a protocol error is echoed before Close 1002.
#[test]
fn echo_comes_before_the_protocol_error_close() {
    let mut rig = Rig::open();
    rig.echo = true;
    let mut bytes = frame(0x1, b"first");
    bytes.extend(frame(0x21, b"rsv2")); // RSV2 set, no extension: a protocol error
    rig.feed(&bytes);
    let out = rig.take_out();
    assert!(out.starts_with(b"\x81\x05first\x88"), "{out:?}");
    assert_eq!(u16::from_be_bytes([out[9], out[10]]), 1002);
}

/// A frame for a connection that is no longer open is skipped, not delivered.
#[test]
fn a_closing_connection_skips_relayed_frames() {
    let mut rig = Rig::open();
    rig.conn.close(CloseCode::Away, "bye", rig.now);
    assert_eq!(
        rig.conn.send(Bytes::from_static(b"\x81\x01x"), rig.now),
        Sent::Skipped
    );
}

/// The peer's FIN right after a message: the message still goes to the server first.
#[test]
fn message_then_eof_is_relayed_then_closed() {
    let mut rig = Rig::open();
    rig.conn.socket.push(&frame(0x1, b"last"));
    rig.conn.socket.eof = true;
    rig.read();
    assert_eq!(rig.relayed, vec![Bytes::from_static(b"\x81\x04last")]);
    assert!(rig.conn.is_closed(), "no Close: the peer vanished");
}
