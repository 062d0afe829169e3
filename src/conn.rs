//! One connection, server side: an enum state machine from HTTP request to closed socket.
//!
//! ```text
//!            accept
//!              │
//!              ▼             head complete, upgrade ok        we send Close (shutdown,
//!   ┌──────── Request ──────────────────────────────────▶ Open ──idle, policy)──▶ Closing
//!   │  plain GET, bad head,                               │  │                     │
//!   │  408 / 431 / 503 …                peer's Close,     │  │ protocol error:     │ peer's
//!   │                                   handshake done    │  │ Close 1002/1007/1009│ Close
//!   ▼                                                     ▼  ▼                     ▼
//! Linger ◀───────────────────────────────────────────────────────────────────────────┘
//!   │  flush the outbox, send FIN (shutdown write), discard input until the peer's FIN
//!   ▼
//! Closed ── the server deregisters the socket and frees the slot after the event batch
//! ```
//!
//! (Any phase goes straight to Closed on an I/O error, a peer that vanished, or a timeout in
//! Closing/Linger.)
//!
//! How the layers split the work: `http.rs` decides what a request gets; tungstenite's
//! [`WebSocketContext`] owns RFC 6455 framing, masking, fragment reassembly, UTF-8 checks and the
//! closing handshake; this file moves bytes between the socket and those two and turns every
//! failure into a close reason (invariant: a connection's failure never leaves the connection).
//!
//! Two buffers make a connection cheap when idle:
//! - input is read into the server's one shared scratch buffer and handed to tungstenite through
//!   a small window ([`READ_WINDOW`]), so an idle connection owns no big read buffer;
//! - output goes to the [`Outbox`], which holds nothing when there is nothing to send.
//!
//! The type is generic over the socket so unit tests drive it with an in-memory stream, and it
//! never reads the clock: `now` is handed in.

use crate::config::{Config, Mode};
use crate::http::{self, Reply, Report, Status};
use crate::hub::{ConnId, RoomId};
use crate::outbox::{Full, Meter, Outbox};
use bytes::Bytes;
use log::{debug, trace};
use std::fmt;
use std::io::{self, Read, Write};
use std::net::IpAddr;
use std::time::Instant;
use tungstenite::error::{Error as WsError, ProtocolError};
use tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};
use tungstenite::protocol::frame::{CloseFrame, Frame};
use tungstenite::protocol::{Role, WebSocketConfig, WebSocketContext};
use tungstenite::Message;

/// How many bytes tungstenite pulls from the scratch buffer per call, and the read buffer it
/// keeps per connection. Small, because it is per connection; copying from the shared scratch
/// buffer through it costs a `memcpy`, not a syscall.
pub const READ_WINDOW: usize = 256;

/// Socket reads per connection per turn of the loop (each up to the scratch buffer's size).
/// A connection with more to read waits for the next turn, so one firehose cannot starve the
/// others: we still drain to `WouldBlock`, in slices.
pub const READS_PER_TURN: usize = 4;

/// Largest frame tungstenite itself writes: control frames only (pong, close, ping), at most
/// 125 bytes of payload plus header (RFC 6455 §5.5). Data frames bypass it, encoded once.
const MAX_CONTROL_FRAME: usize = 256;

/// What a socket must offer besides `Read + Write`: a half-close.
pub trait Socket: Read + Write {
    /// Sends FIN: we will write no more, the peer may still send (TCP half-close).
    fn shutdown_write(&self) -> io::Result<()>;
}

impl Socket for mio::net::TcpStream {
    fn shutdown_write(&self) -> io::Result<()> {
        self.shutdown(std::net::Shutdown::Write)
    }
}

/// Where a connection is in its life. See the diagram in the module docs.
enum Phase {
    /// Reading the HTTP request head; `head` is bounded by `--max-head-bytes`.
    Request { head: Vec<u8> },
    /// Upgraded: messages flow both ways.
    Open { ws: Box<WebSocketContext> },
    /// We sent a Close and wait for the peer's (RFC 6455 §7.1.2); its data is ignored.
    Closing { ws: Box<WebSocketContext> },
    /// Nothing more to say: flush, send FIN, discard input until the peer's FIN.
    Linger,
    /// Done; the server frees the slot.
    Closed,
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Phase::Request { .. } => "Request",
            Phase::Open { .. } => "Open",
            Phase::Closing { .. } => "Closing",
            Phase::Linger => "Linger",
            Phase::Closed => "Closed",
        })
    }
}

/// The server side of one socket.
pub struct Conn<S> {
    /// Key in the server's slab; only for log lines.
    id: ConnId,
    /// The client's address, for `--max-per-ip`.
    pub peer: IpAddr,
    /// The socket (a `mio::net::TcpStream` in the server, a mock in tests).
    socket: S,
    /// Where it is in its life.
    phase: Phase,
    /// Bytes waiting to be written, bounded by `--max-queue-bytes`.
    outbox: Outbox,
    /// The room, once upgraded; set by the server, which owns the hub.
    pub room: Option<RoomId>,
    /// Last time any byte arrived: drives pings and the idle timeout.
    last_heard: Instant,
    /// When the current phase began: drives the handshake and closing timeouts.
    phase_since: Instant,
    /// Since when queued bytes have not moved; `None` while the outbox is empty or draining.
    stalled_since: Option<Instant>,
    /// A Ping went out and nothing has been heard since.
    ping_sent: bool,
    /// The peer sent FIN: nothing more to read.
    peer_eof: bool,
    /// We sent FIN (only in Linger, after the outbox emptied).
    fin_sent: bool,
    /// The socket may hold unread bytes. Readiness is edge-triggered, so we remember it until a
    /// read says `WouldBlock` (see `READS_PER_TURN`).
    pub readable: bool,
    /// Bookkeeping for the server's lists, so a connection is queued at most once in each.
    pub marks: Marks,
    /// How it ended, for the server's counters: the first answer or Close we gave.
    pub outcome: Outcome,
    /// Message-rate limit (`--max-messages-per-sec`), if any.
    bucket: Option<Bucket>,
}

/// How a connection ended, as far as we decided it.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Nothing said (still running, or the peer simply left).
    #[default]
    Quiet,
    /// Answered with an HTTP status instead of an upgrade.
    Answered(u16),
    /// We sent a Close with this code.
    Closed(u16),
    /// Dropped as a slow consumer (Close 1008, if the socket took it).
    SlowConsumer,
}

/// What the server must do for a connection after a read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wants {
    /// The upgrade is done: join this room.
    Join(String),
    /// A report was asked for: render it and hand it to [`Conn::answer_report`].
    Report {
        /// Which one.
        report: Report,
        /// A HEAD request: headers only.
        head_only: bool,
    },
}

/// A token bucket: `rate` tokens a second, at most `rate` saved up (a one-second burst).
#[derive(Debug, Clone, Copy)]
struct Bucket {
    /// Tokens available now.
    tokens: f32,
    /// When `tokens` was last topped up.
    at: Instant,
}

impl Bucket {
    /// Takes a token if there is one, after topping up for the time passed.
    fn take(&mut self, rate: u32, now: Instant) -> bool {
        let rate = rate as f32;
        let elapsed = now.saturating_duration_since(self.at).as_secs_f32();
        self.tokens = (self.tokens + elapsed * rate).min(rate);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Which of the server's per-turn lists this connection is in.
#[derive(Debug, Default, Clone, Copy)]
pub struct Marks {
    /// In the list of connections with unread input.
    pub ready: bool,
    /// In the list of connections to flush at the end of this turn.
    pub dirty: bool,
    /// WRITABLE is registered with the poller now (READABLE always is).
    pub writable_registered: bool,
}

impl<S: Socket> Conn<S> {
    /// A freshly accepted connection, waiting for its request head.
    pub fn new(
        id: ConnId,
        socket: S,
        peer: IpAddr,
        now: Instant,
        cfg: &Config,
        meter: Meter,
    ) -> Conn<S> {
        Conn {
            id,
            peer,
            socket,
            phase: Phase::Request { head: Vec::new() },
            outbox: Outbox::new(cfg.max_queue_bytes, meter),
            room: None,
            last_heard: now,
            phase_since: now,
            stalled_since: None,
            ping_sent: false,
            peer_eof: false,
            fin_sent: false,
            readable: false,
            marks: Marks::default(),
            outcome: Outcome::Quiet,
            bucket: None,
        }
    }

    /// The socket, for (de)registering it with the poller.
    pub fn socket_mut(&mut self) -> &mut S {
        &mut self.socket
    }

    /// True while messages may be relayed to and from this connection.
    pub fn is_open(&self) -> bool {
        matches!(self.phase, Phase::Open { .. })
    }

    /// True once the server should free this connection.
    pub fn is_closed(&self) -> bool {
        matches!(self.phase, Phase::Closed)
    }

    /// True while there are bytes to write: the connection wants WRITABLE events.
    pub fn wants_write(&self) -> bool {
        !self.outbox.is_empty() && !self.is_closed()
    }

    /// More than half of `--max-queue-bytes` is queued.
    pub fn is_behind(&self) -> bool {
        self.outbox.is_behind()
    }

    /// Bytes queued for this connection.
    pub fn queued(&self) -> usize {
        self.outbox.len()
    }

    /// Reads what the socket has (up to [`READS_PER_TURN`] reads into `scratch`, and no more
    /// than `budget` bytes, which it decrements) and feeds it to the current phase. Complete messages to relay are pushed to `relay`, already encoded as
    /// server frames. Returns what the server must do if this read completed a request.
    /// `admission` says whether the server takes one more WebSocket connection from this
    /// client, or the status to refuse it with.
    pub fn on_readable(
        &mut self,
        scratch: &mut [u8],
        budget: &mut usize,
        now: Instant,
        cfg: &Config,
        admission: Result<(), Status>,
        relay: &mut Vec<Bytes>,
    ) -> Option<Wants> {
        let mut wants = None;
        for _ in 0..READS_PER_TURN {
            if self.is_closed() || self.peer_eof {
                self.readable = false;
                break;
            }
            if *budget == 0 {
                break;
            }
            let room = scratch.len().min(*budget);
            let n = match self.socket.read(&mut scratch[..room]) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.readable = false;
                    break;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.set_phase(Phase::Closed, now, &format_args!("read error: {e}"));
                    break;
                }
            };
            *budget -= n;
            // RFC 793 / TCP: a read of 0 bytes is the peer's FIN; no more input will come.
            self.peer_eof = n == 0;
            self.last_heard = now;
            self.ping_sent = false;
            let input = &scratch[..n];
            match self.phase {
                Phase::Request { .. } => {
                    wants = self.feed_request(input, now, cfg, admission, relay);
                    if matches!(wants, Some(Wants::Report { .. })) {
                        // The server answers before this connection reads anything more.
                        break;
                    }
                }
                Phase::Open { .. } | Phase::Closing { .. } => self.feed_ws(input, now, cfg, relay),
                Phase::Linger | Phase::Closed => {}
            }
        }
        if self.peer_eof {
            self.on_peer_eof(now);
        }
        // Pongs and other replies bypass the cap as they are queued; a peer that floods pings
        // without reading the answers ends up here.
        if self.is_open() && self.outbox.is_over_cap() {
            self.drop_slow_consumer(now);
        }
        wants
    }

    /// The peer will send nothing more: what that means depends on the phase.
    fn on_peer_eof(&mut self, now: Instant) {
        match self.phase {
            // The client gave up before finishing its request: nobody to answer.
            Phase::Request { .. } => self.set_phase(Phase::Closed, now, &"peer left mid-request"),
            // Open/Closing saw the EOF through tungstenite in feed_ws already.
            Phase::Linger if self.fin_sent || self.outbox.is_empty() => {
                self.set_phase(Phase::Closed, now, &"peer closed")
            }
            _ => {}
        }
    }

    /// Request phase: collect the head, then route it.
    fn feed_request(
        &mut self,
        input: &[u8],
        now: Instant,
        cfg: &Config,
        admission: Result<(), Status>,
        relay: &mut Vec<Bytes>,
    ) -> Option<Wants> {
        let Phase::Request { head } = &mut self.phase else {
            return None;
        };
        head.extend_from_slice(input);
        // A head ends with CRLF CRLF, so until a read brings a '\n' there is nothing new to
        // parse: a client dribbling one byte at a time costs no re-parsing.
        if !input.contains(&b'\n') && head.len() <= cfg.max_head_bytes {
            return None;
        }
        let (request, len) = match http::parse(head) {
            Ok(Some((request, len))) if len <= cfg.max_head_bytes => (request, len),
            Ok(None) if head.len() <= cfg.max_head_bytes => return None,
            // RFC 6585 §5: 431 when the head is larger than we accept.
            Ok(_) => return self.answer(Status::HeadersTooLarge, false, now),
            Err(status) => return self.answer(status, false, now),
        };
        let head_only = request.method == "HEAD";
        match http::route(&request, &cfg.policy) {
            Reply::Answer(status) => self.answer(status, head_only, now),
            Reply::Report(report) => Some(Wants::Report { report, head_only }),
            Reply::Page => {
                self.outbox
                    .push_unchecked(http::page(head_only, cfg.max_message_bytes));
                self.set_phase(Phase::Linger, now, &"HTTP 200 page");
                None
            }
            Reply::Upgrade { .. } if admission.is_err() => {
                let status = admission.err().unwrap_or(Status::ServiceUnavailable);
                self.answer(status, head_only, now)
            }
            Reply::Upgrade {
                room,
                accept,
                protocol,
            } => {
                // Bytes after the head are the client's first frames: tungstenite starts there.
                let rest = head.split_off(len);
                self.outbox
                    .push_unchecked(http::switching_protocols(&accept, protocol.as_deref()));
                if cfg.max_messages_per_sec > 0 {
                    self.bucket = Some(Bucket {
                        tokens: cfg.max_messages_per_sec as f32,
                        at: now,
                    });
                }
                let ws =
                    WebSocketContext::from_partially_read(rest, Role::Server, Some(ws_config(cfg)));
                self.set_phase(Phase::Open { ws: Box::new(ws) }, now, &room);
                // Frames that came with the head are already in tungstenite's buffer.
                self.feed_ws(&[], now, cfg, relay);
                Some(Wants::Join(room))
            }
        }
    }

    /// Queues an HTTP response and heads for Linger.
    fn answer(&mut self, status: Status, head_only: bool, now: Instant) -> Option<Wants> {
        self.outbox
            .push_unchecked(http::response(status, head_only));
        self.record(Outcome::Answered(status.code()));
        self.set_phase(Phase::Linger, now, &format_args!("HTTP {}", status.code()));
        None
    }

    /// Answers a report request ([`Wants::Report`]) with the body the server rendered.
    pub fn answer_report(&mut self, report: Report, body: &str, head_only: bool, now: Instant) {
        if matches!(self.phase, Phase::Request { .. }) {
            self.outbox
                .push_unchecked(http::ok(report.content_type(), body, head_only));
            self.set_phase(Phase::Linger, now, &"HTTP 200");
        }
    }

    /// Remembers the first outcome; later ones (a Close after an error Close) do not count.
    fn record(&mut self, outcome: Outcome) {
        if self.outcome == Outcome::Quiet {
            self.outcome = outcome;
        }
    }

    /// Open/Closing: hand `input` to tungstenite and collect what comes out, until it needs more.
    ///
    /// Every complete message goes to `relay`: the server fans it out to the others in chat mode
    /// and counts it in both modes. In echo mode the reply is also queued here, straight into
    /// this connection's own outbox, so it keeps its place among the frames tungstenite queues
    /// while reading the same bytes: a message that arrived before a Ping, the peer's Close or a
    /// protocol error is echoed before the Pong or the Close (RFC 6455 §5.5.1: no data after a
    /// Close). Sent by the server after the whole read, the echo would find the connection
    /// already closing and be lost.
    fn feed_ws(&mut self, input: &[u8], now: Instant, cfg: &Config, relay: &mut Vec<Bytes>) {
        let (ws, open) = match &mut self.phase {
            Phase::Open { ws } => (ws, true),
            Phase::Closing { ws } => (ws, false),
            _ => return,
        };
        let echo = cfg.mode == Mode::Echo;
        let mut wire = Wire {
            input,
            eof: self.peer_eof,
            outbox: &mut self.outbox,
        };
        // `None`: the echo did not fit in the outbox (a slow consumer).
        let failure = loop {
            match ws.read(&mut wire) {
                // Only an Open connection relays; after our Close, data is read and dropped.
                Ok(msg @ (Message::Text(_) | Message::Binary(_))) if open => {
                    let within_rate = match &mut self.bucket {
                        Some(b) => b.take(cfg.max_messages_per_sec, now),
                        None => true,
                    };
                    if !within_rate {
                        return self.fail(CloseCode::Policy, "message rate limit", now);
                    }
                    let frame = encode(&msg);
                    if echo {
                        if wire.outbox.push(frame.clone()).is_err() {
                            break None;
                        }
                        self.stalled_since.get_or_insert(now);
                    }
                    relay.push(frame);
                }
                // Pings: tungstenite has queued the Pong (RFC 6455 §5.5.3) and writes it on the
                // next read. Pongs: nothing to do, hearing anything resets the idle clock.
                // Close: tungstenite has queued its reply; the next read says ConnectionClosed.
                Ok(_) => {}
                Err(WsError::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) => break Some(e),
            }
        };
        let Some(failure) = failure else {
            return self.drop_slow_consumer(now);
        };
        // Turn the error into what happens next.
        let (code, why): (CloseCode, &str) = match failure {
            // The closing handshake is complete (both Close frames sent); RFC 6455 §7.1.1:
            // the server closes the TCP connection first.
            WsError::ConnectionClosed | WsError::AlreadyClosed => {
                return self.set_phase(Phase::Linger, now, &"closing handshake done");
            }
            WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake) => {
                return self.set_phase(Phase::Closed, now, &"peer vanished without a Close");
            }
            WsError::Io(e) => {
                return self.set_phase(Phase::Closed, now, &format_args!("I/O error: {e}"));
            }
            // RFC 6455 §7.4.1: 1009 = message too big, 1007 = data inconsistent with its type
            // (invalid UTF-8 in a text message or close reason), 1002 = protocol error.
            WsError::Capacity(_) => (CloseCode::Size, "message too big"),
            WsError::Utf8(_) => (CloseCode::Invalid, "invalid UTF-8"),
            WsError::Protocol(_) => (CloseCode::Protocol, "protocol error"),
            _ => (CloseCode::Error, "internal error"),
        };
        self.fail(code, why, now);
    }

    /// _Fail the WebSocket Connection_ (RFC 6455 §7.1.7): send a Close with `code` after what
    /// is already queued, then linger without waiting for the peer's Close.
    fn fail(&mut self, code: CloseCode, why: &str, now: Instant) {
        self.send_close(code, why);
        self.set_phase(
            Phase::Linger,
            now,
            &format_args!("{} {why}", u16::from(code)),
        );
    }

    /// Starts the closing handshake from our side (RFC 6455 §7.1.2): Close, then wait in
    /// Closing for the peer's. Used for shutdown (1001) and idle peers (1001).
    pub fn close(&mut self, code: CloseCode, why: &str, now: Instant) {
        match self.phase {
            Phase::Open { .. } => {
                self.send_close(code, why);
                let Phase::Open { ws } = std::mem::replace(&mut self.phase, Phase::Linger) else {
                    unreachable!("matched Open above");
                };
                self.set_phase(Phase::Closing { ws }, now, &format_args!("{why}"));
            }
            Phase::Request { .. } => {
                self.answer(Status::ServiceUnavailable, false, now);
            }
            Phase::Closing { .. } | Phase::Linger | Phase::Closed => {}
        }
    }

    /// Queues a Close frame through tungstenite, which records that it was sent.
    fn send_close(&mut self, code: CloseCode, why: &str) {
        if let Phase::Open { ws } | Phase::Closing { ws } = &mut self.phase {
            if self.outcome == Outcome::Quiet {
                self.outcome = Outcome::Closed(code.into());
            }
            let mut wire = Wire {
                input: &[],
                eof: false,
                outbox: &mut self.outbox,
            };
            let frame = CloseFrame {
                code,
                reason: why.into(),
            };
            // Writes to a Wire cannot block or fail, so the only errors left are "already
            // closed", after which there is nothing to send anyway.
            let _ = ws.close(&mut wire, Some(frame));
        }
    }

    /// Queues a broadcast frame. `Err(Full)` means this connection is a slow consumer: the
    /// caller drops it with [`Conn::drop_slow_consumer`].
    pub fn send(&mut self, frame: Bytes, now: Instant) -> Result<(), Full> {
        if !self.is_open() {
            return Ok(());
        }
        self.outbox.push(frame)?;
        self.stalled_since.get_or_insert(now);
        Ok(())
    }

    /// A peer that does not read what it is sent while others do: drop its backlog and close
    /// with 1008 (RFC 6455 §7.4.1: policy violation). The Close goes out only if the socket
    /// takes it; a peer this far behind may never see it, and the lingering close times out.
    pub fn drop_slow_consumer(&mut self, now: Instant) {
        self.record(Outcome::SlowConsumer);
        self.outbox.discard();
        self.fail(CloseCode::Policy, "slow consumer", now);
    }

    /// Writes queued bytes until the socket would block or the outbox is empty; in Linger, then
    /// sends FIN. Called for WRITABLE events and for every connection touched in a turn.
    /// Returns the bytes written.
    pub fn flush(&mut self, now: Instant) -> usize {
        if self.is_closed() {
            return 0;
        }
        let written = match self.outbox.write_to(&mut self.socket) {
            Ok(0) => 0,
            Ok(n) => {
                self.stalled_since = Some(now);
                n
            }
            Err(e) => {
                self.set_phase(Phase::Closed, now, &format_args!("write error: {e}"));
                return 0;
            }
        };
        if !self.outbox.is_empty() {
            return written;
        }
        self.stalled_since = None;
        if matches!(self.phase, Phase::Linger) && !self.fin_sent {
            self.fin_sent = true;
            // An error here means the peer is gone already: nothing left to wait for.
            if self.socket.shutdown_write().is_err() || self.peer_eof {
                self.set_phase(Phase::Closed, now, &"closed");
            }
        }
        written
    }

    /// Checks this connection's deadlines. Called once per tick (see `Config::tick`).
    pub fn on_tick(&mut self, now: Instant, cfg: &Config) {
        let since = |t: Instant| now.saturating_duration_since(t);
        let stalled = self
            .stalled_since
            .is_some_and(|t| since(t) >= cfg.write_timeout);
        match &mut self.phase {
            Phase::Request { .. } if since(self.phase_since) >= cfg.handshake_timeout => {
                self.answer(Status::RequestTimeout, false, now);
            }
            Phase::Open { .. } if stalled => self.drop_slow_consumer(now),
            Phase::Open { .. } if since(self.last_heard) >= cfg.idle_timeout => {
                self.close(CloseCode::Away, "idle timeout", now);
            }
            Phase::Open { ws }
                if since(self.last_heard) >= cfg.ping_interval && !self.ping_sent =>
            {
                // RFC 6455 §5.5.2: a Ping asks a silent peer to prove it is there.
                let mut wire = Wire {
                    input: &[],
                    eof: false,
                    outbox: &mut self.outbox,
                };
                let _ = ws.write(&mut wire, Message::Ping(Bytes::new()));
                self.ping_sent = true;
            }
            Phase::Closing { .. } | Phase::Linger
                if stalled || since(self.phase_since) >= cfg.close_timeout =>
            {
                self.set_phase(Phase::Closed, now, &"close timed out");
            }
            _ => {}
        }
    }

    /// Moves to `next`, logging `conn=7 Open=>Closing reason=…` at debug.
    fn set_phase(&mut self, next: Phase, now: Instant, why: &dyn fmt::Display) {
        debug!("conn={} {}=>{} reason={}", self.id, self.phase, next, why);
        self.phase = next;
        self.phase_since = now;
    }
}

/// The WebSocket settings for one connection, from the server's config.
fn ws_config(cfg: &Config) -> WebSocketConfig {
    WebSocketConfig::default()
        // Per-connection read buffer: small; see READ_WINDOW.
        .read_buffer_size(READ_WINDOW)
        // tungstenite writes straight into the Wire (our Outbox); it buffers nothing itself.
        .write_buffer_size(0)
        .max_write_buffer_size(MAX_CONTROL_FRAME)
        .max_message_size(Some(cfg.max_message_bytes))
        .max_frame_size(Some(cfg.max_message_bytes))
}

/// Encodes a text or binary message as one unmasked server frame (RFC 6455 §5.2: servers never
/// mask). Done once per message; recipients share the result.
pub fn encode(msg: &Message) -> Bytes {
    let (opcode, payload) = match msg {
        Message::Text(t) => (Data::Text, Bytes::from(t.clone())),
        Message::Binary(b) => (Data::Binary, b.clone()),
        _ => unreachable!("only data messages are relayed"),
    };
    let mut buf = Vec::with_capacity(payload.len() + crate::config::MAX_FRAME_HEADER);
    // Writing into a Vec cannot fail.
    Frame::message(payload, OpCode::Data(opcode), true)
        .format(&mut buf)
        .expect("writing to a Vec");
    Bytes::from(buf)
}

/// The stream tungstenite sees: reads come from bytes the server already took off the socket,
/// writes go to the outbox. It never touches the socket, so tungstenite can neither block nor
/// buffer on its own, and every byte out keeps its place in the one queue.
struct Wire<'a> {
    /// Unconsumed input from this read.
    input: &'a [u8],
    /// The peer sent FIN: report end-of-stream once `input` is used up.
    eof: bool,
    /// Where writes go.
    outbox: &'a mut Outbox,
}

impl Read for Wire<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.input.is_empty() {
            return if self.eof {
                Ok(0)
            } else {
                Err(io::ErrorKind::WouldBlock.into())
            };
        }
        let n = self.input.len().min(buf.len());
        buf[..n].copy_from_slice(&self.input[..n]);
        self.input = &self.input[n..];
        Ok(n)
    }
}

impl Write for Wire<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        trace!("control frame out: {} bytes", buf.len());
        self.outbox.push_unchecked(Bytes::copy_from_slice(buf));
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
#[path = "conn_tests.rs"]
mod tests;
