//! One connection, server side: an enum state machine from HTTP request to closed socket.
//!
//! ```text
//!            accept
//!              │
//!              ▼        head asks to upgrade               server admits
//!   ┌──────── Request ───────────────────────▶ Upgrading ─────────────────▶ Open
//!   │ plain GET, report,                          │ server refuses          │  │ we send Close
//!   │ bad head, 408, 431 …                        │ (503, 429)              │  │ (shutdown, idle)
//!   │                                             │         peer's Close;   │  ▼
//!   │                                             │         error: Close    │ Closing
//!   │                                             │         1002/1007/1009  │  │ peer's Close
//!   ▼                                             ▼                         ▼  ▼
//! Linger ◀─────────────────────────────────────────────────────────────────────┘
//!   │  flush the outbox, send FIN (shutdown write), discard input until the peer's FIN
//!   ▼
//! Closed ── the server frees the slot (closing the socket) after the event batch
//! ```
//!
//! (Any phase goes straight to Closed on an I/O error, a peer that vanished, or a timeout in
//! Closing/Linger.) Each phase holds its own data (`Phase`): the head being read, the
//! WebSocket context and its ping and rate state, whether FIN went each way. A flag that only
//! means something in one phase cannot be set in another.
//!
//! ## The seam with the server
//!
//! The server calls [`Conn::on_readable`] until it says there is nothing more for now; each
//! call yields one [`Action`], like a pull parser (httparse, tungstenite's own `read`):
//!
//! ```text
//!   server                                  conn
//!   ──────                                  ────
//!   on_readable(scratch) ─────────────────▶ reads the socket (a few reads a turn), feeds the phase
//!                        ◀── Upgrade{room}  the head asks to join `room`
//!   admission? accept_upgrade / refuse ───▶ 101 and Open, or 503 / 429 and Linger
//!                        ◀── Report{..}     GET /stats or /metrics
//!   answer_report(body) ──────────────────▶ 200 and Linger
//!                        ◀── Message(msg)   one data message
//!   encode it once into the room's batch, or send it back (echo); then call again
//!                        ◀── Idle / Yield   drained (wait for readiness) / turn's share used
//! ```
//!
//! Stopping at each message is what keeps an echo in order: the connection has not yet fed
//! tungstenite the bytes after the message, so a Ping or Close behind it in the same read is
//! answered only after the server queued the echo (RFC 6455 §5.5.1: nothing after a Close).
//!
//! How the layers split the work: `http.rs` decides what a request gets; tungstenite's
//! [`WebSocketContext`] owns RFC 6455 framing, masking, fragment reassembly, UTF-8 checks and the
//! closing handshake (through the [`Wire`](crate::wire::Wire)); this file moves bytes between
//! the socket and those two and turns every failure into a close reason (invariant: a connection's
//! failure never leaves the connection). This file is the type, its phases and the seam; beside
//! it are the HTTP phases (`conn/request.rs`), the WebSocket phases and closing
//! (`conn/websocket.rs`), the way out (`conn/output.rs`: send, flush, FIN, slow consumers),
//! the deadlines (`conn/deadlines.rs`), the shared read buffer and when reading stops
//! (`conn/scratch.rs`), and the frame edges that let a connection give tungstenite's grown
//! read buffer back (`conn/edges.rs`).
//!
//! Two buffers make a connection cheap when idle: input is read into the server's one shared
//! [`Scratch`] buffer and reaches tungstenite through a small window (`READ_WINDOW`), and
//! output goes to the [`Outbox`], which holds nothing when there is nothing to send.
//!
//! The type is generic over the socket so unit tests drive it with an in-memory stream, and it
//! never reads the clock: `now` is handed in.

mod deadlines;
mod edges;
mod output;
mod request;
mod scratch;
mod websocket;

pub use scratch::{Scratch, READS_PER_TURN};

use crate::config::Config;
use crate::http::Report;
use crate::hub::ConnId;
use crate::outbox::{Meter, Outbox};
use crate::stats::Tally;
use edges::Edges;
use log::debug;
use request::Handshake;
use scratch::Fill;
use std::fmt;
use std::io::{self, Read, Write};
use std::time::Instant;
use tungstenite::protocol::WebSocketContext;
use tungstenite::Message;
use websocket::Bucket;

/// What a socket must offer besides `Read + Write`: a half-close, whether it holds written
/// bytes of its own, and whether a short read proves it empty.
pub trait Socket: Read + Write {
    /// Sends FIN: we will write no more, the peer may still send (TCP half-close). A TLS
    /// socket sends its close_notify first.
    fn shutdown_write(&mut self) -> io::Result<()>;

    /// Bytes were written to this socket that it still holds, not yet taken by the kernel
    /// (TLS ciphertext): the connection keeps WRITABLE interest, pushes them with
    /// `Write::flush`, and sends FIN only after them. A bare socket holds none.
    fn holds_output(&self) -> bool {
        false
    }

    /// True if a read that returns fewer bytes than asked for means nothing more was waiting,
    /// so the connection may stop reading until the next readiness event (`conn/scratch.rs`
    /// says why that holds for TCP). `false`, the default, reads until `WouldBlock`: right for
    /// a layer that buffers on its own, such as TLS.
    fn short_read_means_empty(&self) -> bool {
        false
    }

    /// Last words when both sides are done and the socket is about to be dropped: a bare socket
    /// has none (closing it sends FIN); TLS sends its close_notify, best effort.
    fn last_words(&mut self) {}
}

impl Socket for mio::net::TcpStream {
    fn shutdown_write(&mut self) -> io::Result<()> {
        self.shutdown(std::net::Shutdown::Write)
    }

    fn short_read_means_empty(&self) -> bool {
        true
    }
}

/// Bytes a connection reads after its last word (in Closing, after our Close; in Linger, after
/// our answer, our Close or the closing handshake) before it gives up on the peer: room for the
/// peer's Close frame and 64 KiB it may already have had in flight, which is discarded. DoS
/// warning: without this bound a peer that keeps sending kept the loop reading, at full speed,
/// until `--close-timeout`; now it is dropped (its socket closed, unread bytes and all) once
/// it has sent this much.
pub const CLOSING_READ_BYTES: usize = (64 << 10) + crate::wire::MAX_CONTROL_FRAME;

/// Where a connection is in its life, with what only that phase needs. See the module docs.
enum Phase {
    /// Reading the HTTP request head; `head` is bounded by `--max-head-bytes`.
    Request {
        /// The bytes so far (after an upgrade, possibly the client's first frames too).
        head: Vec<u8>,
    },
    /// The head asks to upgrade; the server decides admission before anything else happens.
    Upgrading(Box<Handshake>),
    /// Upgraded: messages flow both ways.
    Open {
        /// RFC 6455 state: framing, reassembly, the closing handshake.
        ws: Box<WebSocketContext>,
        /// Where the peer's frames begin and end, so `ws` can be swapped for a fresh one
        /// (its grown read buffer given back) when it holds nothing (`conn/edges.rs`).
        edges: Edges,
        /// Last time any byte arrived: drives the Ping and the idle timeout.
        heard: Instant,
        /// A Ping went out and nothing has been heard since.
        ping_sent: bool,
        /// Message-rate limit (`--max-messages-per-sec`), if any.
        bucket: Option<Bucket>,
    },
    /// We sent a Close and wait for the peer's (RFC 6455 §7.1.2); its data is ignored.
    Closing {
        /// RFC 6455 state, to read the peer's Close.
        ws: Box<WebSocketContext>,
        /// Bytes read in this phase, at most [`CLOSING_READ_BYTES`].
        read: usize,
    },
    /// Nothing more to say: flush, send FIN, discard input until the peer's FIN.
    Linger {
        /// The peer will send nothing more: its FIN was read, or the closing handshake is done
        /// (RFC 6455 §5.5.1: nothing follows a Close). Then there is nothing to wait for once
        /// the outbox is flushed: closing the socket sends our FIN.
        peer_done: bool,
        /// We sent FIN (after the outbox emptied).
        fin_sent: bool,
        /// Bytes read (and discarded) in this phase, at most [`CLOSING_READ_BYTES`].
        read: usize,
    },
    /// Done; the server frees the slot.
    Closed,
}

impl Phase {
    /// Linger, with neither FIN seen yet.
    const LINGER: Phase = Phase::Linger {
        peer_done: false,
        fin_sent: false,
        read: 0,
    };

    /// The phase's name, for logs.
    fn name(&self) -> &'static str {
        match self {
            Phase::Request { .. } => "Request",
            Phase::Upgrading(_) => "Upgrading",
            Phase::Open { .. } => "Open",
            Phase::Closing { .. } => "Closing",
            Phase::Linger { .. } => "Linger",
            Phase::Closed => "Closed",
        }
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The server side of one socket.
pub struct Conn<S> {
    /// Key in the server's slab; only for log lines.
    id: ConnId,
    /// The socket (a `mio::net::TcpStream` in the server, a mock in tests).
    socket: S,
    /// Where it is in its life, and that phase's data.
    phase: Phase,
    /// Bytes waiting to be written, bounded by `--max-queue-bytes`.
    outbox: Outbox,
    /// When the current phase began: drives the handshake and closing timeouts.
    phase_since: Instant,
    /// Since when queued bytes have not moved; `None` while the outbox is empty or draining.
    stalled_since: Option<Instant>,
    /// What the counters should hear of since the server last took it ([`Conn::take_tally`]):
    /// Close frames sent and received, an HTTP answer, a slow-consumer drop.
    tally: Tally,
}

/// What the server must do after one call of [`Conn::on_readable`]. The server calls again
/// until it gets `Idle` or `Yield`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// The request head asks to upgrade into `room`. The server decides admission and answers
    /// with [`Conn::accept_upgrade`] or [`Conn::refuse`] before calling again.
    Upgrade {
        /// The room: the request path without its query.
        room: String,
    },
    /// The request asks for a report: the server renders it and answers with
    /// [`Conn::answer_report`] before calling again.
    Report {
        /// Which one.
        report: Report,
        /// A HEAD request: headers only.
        head_only: bool,
    },
    /// One complete data message (text or binary), as tungstenite decoded it. The server
    /// encodes it once, into the room's batch (chat) or a frame of its own sent back to this
    /// connection (echo), and counts it.
    Message(Message),
    /// Nothing more to read now: the socket said `WouldBlock` (or a short read said so, see
    /// `conn/scratch.rs`), the peer sent FIN, or the connection is closed. Wait for the next
    /// readiness event.
    Idle,
    /// This turn's share of reading is used up and the socket may hold more: read again next
    /// turn.
    Yield,
}

/// What became of what the server handed to [`Conn::send_shared`], [`Conn::send_own`] or
/// [`Conn::send`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sent {
    /// Queued: a delivery for each message in it.
    Queued,
    /// Not sent: the connection is not open (still in HTTP, or closing). Not a delivery.
    Skipped,
    /// Not sent: the outbox was full, so the connection was dropped as a slow consumer.
    Dropped,
}

impl<S: Socket> Conn<S> {
    /// A freshly accepted connection, waiting for its request head.
    pub fn new(id: ConnId, socket: S, now: Instant, cfg: &Config, meter: Meter) -> Conn<S> {
        Conn {
            id,
            socket,
            phase: Phase::Request { head: Vec::new() },
            outbox: Outbox::new(cfg.max_queue_bytes, meter),
            phase_since: now,
            stalled_since: None,
            tally: Tally::default(),
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
        (!self.outbox.is_empty() || self.socket.holds_output()) && !self.is_closed()
    }

    /// More than half of `--max-queue-bytes` is queued.
    pub fn is_behind(&self) -> bool {
        self.outbox.is_behind()
    }

    /// Bytes queued for this connection.
    pub fn queued(&self) -> usize {
        self.outbox.len()
    }

    /// What happened that the counters count (Closes sent and received, an HTTP answer, a
    /// slow-consumer drop) since the last call. The server takes it at the end of each turn
    /// that touched this connection.
    pub fn take_tally(&mut self) -> Tally {
        std::mem::take(&mut self.tally)
    }

    /// Reads what the socket has and feeds it to the current phase, until there is something
    /// for the server to do: see [`Action`]. Reads go into `scratch`, within the turn's limits
    /// it keeps ([`READS_PER_TURN`] reads, the turn's byte budget); what a call leaves unread
    /// there is fed on the next call, so the server calls until `Idle` or `Yield`.
    pub fn on_readable(&mut self, scratch: &mut Scratch, now: Instant, cfg: &Config) -> Action {
        loop {
            // What is already read goes to the phase first; a request or message that
            // completes goes to the server at once, the rest of the read waits in `scratch`.
            if let Some(action) = self.feed(scratch, now, cfg) {
                return action;
            }
            // Pongs and other replies bypass the cap as they are queued; a peer that floods
            // pings without reading the answers ends up here.
            if self.is_open() && self.outbox.is_over_cap() {
                self.drop_slow_consumer(now);
            }
            if scratch.eof() {
                self.on_peer_eof(now);
                return Action::Idle;
            }
            if !self.wants_input() {
                return Action::Idle;
            }
            let cap = match self.phase {
                Phase::Closing { read, .. } | Phase::Linger { read, .. } => {
                    CLOSING_READ_BYTES - read
                }
                _ => usize::MAX,
            };
            if cap == 0 {
                self.set_phase(Phase::Closed, now, &"peer kept sending while closing");
                return Action::Idle;
            }
            match scratch.fill(&mut self.socket, cap) {
                Fill::Read => self.took(scratch.input().len(), now),
                Fill::Drained => return Action::Idle,
                Fill::Spent => return Action::Yield,
                Fill::Failed(e) => {
                    self.set_phase(Phase::Closed, now, &format_args!("read error: {e}"));
                    return Action::Idle;
                }
            }
        }
    }

    /// Hands the unread input to the current phase; it consumes all of it, unless it returns
    /// an action, which may leave the rest for the next call.
    fn feed(&mut self, scratch: &mut Scratch, now: Instant, cfg: &Config) -> Option<Action> {
        match self.phase {
            Phase::Request { .. } => self.feed_request(scratch, now, cfg),
            Phase::Open { .. } | Phase::Closing { .. } => self.feed_ws(scratch, now, cfg),
            Phase::Upgrading(_) | Phase::Linger { .. } | Phase::Closed => {
                // Upgrading never has input: the server answers before it reads again.
                scratch.consume_all();
                None
            }
        }
    }

    /// False once reading is pointless: closed, the peer's FIN seen, or waiting for the
    /// server's admission.
    fn wants_input(&self) -> bool {
        match self.phase {
            Phase::Closed | Phase::Upgrading(_) => false,
            Phase::Linger { peer_done, .. } => !peer_done,
            _ => true,
        }
    }

    /// `n` bytes arrived: an open connection's idle clock starts again; a closing one counts
    /// them against [`CLOSING_READ_BYTES`].
    fn took(&mut self, n: usize, now: Instant) {
        match &mut self.phase {
            Phase::Open {
                heard, ping_sent, ..
            } => {
                *heard = now;
                *ping_sent = false;
            }
            Phase::Closing { read, .. } | Phase::Linger { read, .. } => *read += n,
            _ => {}
        }
    }

    /// The peer will send nothing more: what that means depends on the phase.
    fn on_peer_eof(&mut self, now: Instant) {
        match &mut self.phase {
            // The client gave up before finishing its request: nobody to answer.
            Phase::Request { .. } | Phase::Upgrading(_) => {
                self.set_phase(Phase::Closed, now, &"peer left mid-request")
            }
            Phase::Linger { fin_sent, .. } if *fin_sent || self.outbox.is_empty() => {
                self.set_phase(Phase::Closed, now, &"peer closed")
            }
            // FIN goes out once the outbox drains (`flush`), then the connection is done.
            Phase::Linger { peer_done, .. } => *peer_done = true,
            // Open/Closing saw the EOF through tungstenite in `feed_ws` already.
            Phase::Open { .. } | Phase::Closing { .. } | Phase::Closed => {}
        }
    }

    /// Moves to `next`, logging `conn=7 Open=>Closing reason=…` at debug.
    fn set_phase(&mut self, next: Phase, now: Instant, why: &dyn fmt::Display) {
        self.change_phase(now, why, |_| next);
    }

    /// Moves to the phase `next` makes of the current one (so data such as the WebSocket
    /// context moves along), logging `from=>to` at debug.
    fn change_phase(
        &mut self,
        now: Instant,
        why: &dyn fmt::Display,
        next: impl FnOnce(Phase) -> Phase,
    ) {
        let from = std::mem::replace(&mut self.phase, Phase::Closed);
        let from_name = from.name();
        self.phase = next(from);
        debug!("conn={} {from_name}=>{} reason={why}", self.id, self.phase);
        self.phase_since = now;
    }
}

#[cfg(test)]
#[path = "conn_read_tests.rs"]
mod read_tests;
#[cfg(test)]
#[path = "conn_tests.rs"]
mod tests;
