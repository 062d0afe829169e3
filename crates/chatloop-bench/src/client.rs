//! One connection of the load generator: a minimal non-blocking WebSocket client.
//!
//! The generator holds thousands of these in one thread, so each is small (about a hundred
//! bytes while idle: a socket, a phase, two empty `Vec`s) and cheap per message:
//!
//! - **Input** is read into the [`Pool`](crate::pool::Pool)'s one shared scratch buffer and
//!   parsed in place; a connection keeps only the bytes of an incomplete frame (`held`), which
//!   are copied back in front of the next read. Data frames are handed to the caller as slices
//!   of the scratch buffer: no allocation per message.
//! - **Output** frames are appended to `out`, masked in place, and written in one `write` per
//!   batch; `out` only holds bytes while the kernel's send buffer is full.
//!
//! The connection is registered once for READABLE and WRITABLE (edge-triggered): a writable edge
//! only comes when the send buffer drains after being full, so it costs nothing while idle and
//! saves a `reregister` per write burst.
//!
//! ```text
//!  connect() ─▶ Connecting ──writable: request sent──▶ Handshaking ──101 + accept key ok──▶ Open
//!                                                                                          │
//!                      EOF after our Close ◀── Closing ◀── close() (our Close frame) ───────┘
//! ```
//!
//! Any failure (refused, bad handshake, reset, the server's own Close, a protocol violation)
//! ends the connection with a [`Failure`] that the caller counts as an error.
//!
//! RFC 6455 parts implemented here: what each frame means to a client (data delivered, Pong
//! replies to Pings, §5.5.2–3) and the client side of the closing handshake (§7.1.1: the client
//! waits for the server to close TCP first, so the client's ports never sit in TIME_WAIT and a
//! long `connect` run does not exhaust them). The request and the `101` check are in
//! [`handshake`], the bytes of a frame in [`frame`]. Not
//! implemented, because no server under test needs them: fragmented messages, extensions.
//! For `wss://` the socket is a [`Stream`] with TLS inside ([`crate::tls`]); nothing here
//! changes but one thing: a short read no longer means the kernel's buffer is empty.

use crate::frame::{self, opcode};
use crate::handshake;
use crate::target::Target;
use crate::tls::Stream;
use mio::net::TcpStream;
use mio::{Interest, Registry, Token};
use std::fmt;
use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

/// Why a connection ended other than by our own closing handshake. Every one is counted as an
/// error of the run; [`Failure::kind`] is the bucket it is counted in.
#[derive(Debug)]
pub enum Failure {
    /// The TCP connect failed (refused, no port left, out of descriptors).
    Connect(io::Error),
    /// The server did not answer `101` with the right `Sec-WebSocket-Accept`.
    Handshake(String),
    /// The server sent a Close frame (with this status code) we did not ask for.
    ClosedByServer(u16),
    /// The server closed TCP or reset while the connection was open.
    Io(io::Error),
    /// The server broke RFC 6455 (or used a feature this client does not have).
    Protocol(&'static str),
}

impl Failure {
    /// A short name for counting failures by kind.
    pub fn kind(&self) -> &'static str {
        match self {
            Failure::Connect(_) => "connect",
            Failure::Handshake(_) => "handshake",
            Failure::ClosedByServer(_) => "closed by server",
            Failure::Io(_) => "io",
            Failure::Protocol(_) => "protocol",
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Connect(e) => write!(f, "connect: {e}"),
            Failure::Handshake(why) => write!(f, "handshake: {why}"),
            Failure::ClosedByServer(code) => write!(f, "server sent Close {code}"),
            Failure::Io(e) => write!(f, "io: {e}"),
            Failure::Protocol(why) => write!(f, "protocol: {why}"),
        }
    }
}

/// What a read or write did to the connection's phase, for the pool to act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Nothing the pool needs to know about.
    Same,
    /// The handshake just completed: the connection is open.
    Opened,
    /// Our closing handshake completed (the server's FIN arrived): free the connection.
    Finished,
}

/// Where a connection is in its life (see the diagram in the module docs).
#[derive(Debug)]
enum Phase {
    /// TCP connect in progress; the first writable event says how it went.
    Connecting,
    /// Request sent; waiting for the `101` response. Holds the `Sec-WebSocket-Key` sent.
    Handshaking {
        /// The key we sent, to check the server's accept value against.
        key: String,
    },
    /// Upgraded: frames flow both ways.
    Open,
    /// We sent Close; discarding input until the server closes TCP.
    Closing,
}

/// One client connection. See the module docs.
pub struct Client {
    /// The non-blocking socket, with TLS inside for `wss://`.
    socket: Stream,
    /// Where in its life the connection is.
    phase: Phase,
    /// Outgoing bytes not yet taken by the kernel (masked frames, or the request head).
    out: Vec<u8>,
    /// Incoming bytes of an incomplete frame or response head, kept between reads.
    held: Vec<u8>,
    /// When the TCP connect began, for the handshake time.
    pub started: Instant,
    /// The scenario's number for this client (its index: sender id, receiver id).
    pub tag: u32,
    /// The pool has counted this client as open (it saw [`Step::Opened`]). The phase alone
    /// cannot say: a read that completes the handshake may fail later in the same call.
    pub counted_open: bool,
}

impl Client {
    /// Starts a non-blocking TCP connect to `target`, from `source` if given (binding first, so
    /// many source addresses can be used on loopback).
    pub fn connect(target: &Target, source: Option<IpAddr>, now: Instant) -> io::Result<Client> {
        use socket2::{Domain, Protocol, SockAddr, Socket, Type};
        let socket = Socket::new(
            Domain::for_address(target.addr),
            Type::STREAM,
            Some(Protocol::TCP),
        )?;
        socket.set_nonblocking(true)?;
        // Small messages must leave at once; the client already batches its writes.
        socket.set_tcp_nodelay(true)?;
        if let Some(ip) = source {
            socket.bind(&SockAddr::from(SocketAddr::new(ip, 0)))?;
        }
        match socket.connect(&SockAddr::from(target.addr)) {
            Ok(()) => {}
            // EINPROGRESS: the usual answer of a non-blocking connect.
            Err(e) if e.raw_os_error() == Some(115) || e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
        let socket = TcpStream::from_std(socket.into());
        let socket = match &target.tls {
            Some(config) => Stream::tls(socket, config.clone(), target.server_name())?,
            None => Stream::Plain(socket),
        };
        Ok(Client {
            socket,
            phase: Phase::Connecting,
            out: Vec::new(),
            held: Vec::new(),
            started: now,
            tag: 0,
            counted_open: false,
        })
    }

    /// Registers the socket once, for both directions (see the module docs).
    pub fn register(&mut self, registry: &Registry, token: Token) -> io::Result<()> {
        registry.register(
            self.socket.socket(),
            token,
            Interest::READABLE | Interest::WRITABLE,
        )
    }

    /// Takes the socket off the poller before the connection is dropped.
    pub fn deregister(&mut self, registry: &Registry) {
        // Can only fail if the socket is not registered, which changes nothing here.
        let _ = registry.deregister(self.socket.socket());
    }

    /// True once the handshake completed and until we begin closing.
    pub fn is_open(&self) -> bool {
        matches!(self.phase, Phase::Open)
    }

    /// True until the handshake completed (or failed).
    pub fn is_connecting(&self) -> bool {
        matches!(self.phase, Phase::Connecting | Phase::Handshaking { .. })
    }

    /// Bytes queued for sending that the kernel has not taken yet.
    pub fn queued(&self) -> usize {
        self.out.len()
    }

    /// Queues one masked frame with `payload` and masking key `mask`;
    /// [`flush`](Client::flush) sends it.
    #[inline]
    pub fn push_frame(&mut self, opcode: u8, payload: &[u8], mask: [u8; 4]) {
        frame::encode(&mut self.out, opcode, payload, mask);
    }

    /// Starts our closing handshake (RFC 6455 §7.1.2): a Close 1000, then wait for the
    /// server's Close and its FIN.
    pub fn close(&mut self, mask: [u8; 4]) -> Result<(), Failure> {
        if self.is_open() {
            self.push_frame(opcode::CLOSE, &1000u16.to_be_bytes(), mask);
            self.phase = Phase::Closing;
            self.flush()?;
        }
        Ok(())
    }

    /// Writes queued bytes until they are all taken or the socket would block (then the
    /// writable edge brings us back).
    pub fn flush(&mut self) -> Result<(), Failure> {
        // Ciphertext from an earlier turn first (wss://; nothing for ws://).
        self.socket.push().map_err(Failure::Io)?;
        let mut done = 0;
        while done < self.out.len() {
            match self.socket.write(&self.out[done..]) {
                Ok(0) => return Err(Failure::Io(io::ErrorKind::WriteZero.into())),
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Failure::Io(e)),
            }
        }
        if done == self.out.len() {
            self.out.clear();
        } else {
            self.out.drain(..done);
        }
        Ok(())
    }

    /// The socket is writable: the connect finished (then send the request), or the send buffer
    /// has room again.
    pub fn on_writable(&mut self, target: &Target) -> Result<(), Failure> {
        if let Phase::Connecting = self.phase {
            if let Some(e) = self
                .socket
                .socket()
                .take_error()
                .map_err(Failure::Connect)?
            {
                return Err(Failure::Connect(e));
            }
            // A writable edge without an error but before the connect finished cannot happen on
            // Linux; `peer_addr` makes sure (ENOTCONN means "not yet").
            match self.socket.socket().peer_addr() {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::NotConnected => return Ok(()),
                Err(e) => return Err(Failure::Connect(e)),
            }
            let key = handshake::new_key();
            self.out
                .extend_from_slice(handshake::request(target, &key).as_bytes());
            self.phase = Phase::Handshaking { key };
        }
        self.flush()
    }

    /// The socket is readable: read it dry (or until a short read, see below), handing every
    /// complete data message to `on_data`. `read_closed` says the event also reported the
    /// peer's FIN.
    ///
    /// A read that returns less than the space offered means the kernel's receive buffer was
    /// empty at that moment; on Linux any later arrival raises a new edge, so we stop there
    /// and save the `read` that would only say `WouldBlock`. When the event carries the FIN,
    /// we read on to see the end of stream.
    pub fn on_readable(
        &mut self,
        scratch: &mut Vec<u8>,
        read_closed: bool,
        mut on_data: impl FnMut(&[u8]),
    ) -> Result<Step, Failure> {
        if let Phase::Connecting = self.phase {
            return Ok(Step::Same); // the connect's outcome comes with the writable event
        }
        let mut step = Step::Same;
        loop {
            let held = self.held.len();
            if held * 2 > scratch.len() {
                // A frame bigger than half the scratch buffer: make room for all of it.
                scratch.resize(held * 2, 0);
            }
            scratch[..held].copy_from_slice(&self.held);
            self.held.clear();
            let room = scratch.len() - held;
            let n = match self.socket.read(&mut scratch[held..]) {
                Ok(0) => {
                    return match self.phase {
                        Phase::Closing => Ok(Step::Finished),
                        _ => Err(Failure::Io(io::ErrorKind::UnexpectedEof.into())),
                    };
                }
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.held.extend_from_slice(&scratch[..held]);
                    break;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {
                    self.held.extend_from_slice(&scratch[..held]);
                    continue;
                }
                Err(e) => return Err(Failure::Io(e)),
            };
            let data = &scratch[..held + n];
            let mut used = 0;
            if let Phase::Handshaking { key } = &self.phase {
                if let Some(head) =
                    handshake::check_response(data, key).map_err(Failure::Handshake)?
                {
                    used = head;
                    self.phase = Phase::Open;
                    step = Step::Opened;
                }
            }
            if !matches!(self.phase, Phase::Handshaking { .. }) {
                used += self.parse_frames(&data[used..], &mut on_data)?;
            }
            self.held.extend_from_slice(&data[used..]);
            // Over TLS a short read is one record, not an empty kernel buffer: read on.
            if n < room && !read_closed && !self.socket.is_tls() {
                break;
            }
        }
        if !self.out.is_empty() {
            self.flush()?;
        }
        Ok(step)
    }

    /// Acts on the complete frames at the front of `data`; returns the bytes used (the rest is
    /// an incomplete frame, kept for the next read).
    fn parse_frames(
        &mut self,
        data: &[u8],
        on_data: &mut impl FnMut(&[u8]),
    ) -> Result<usize, Failure> {
        let mut pos = 0;
        while let Some(f) = frame::parse(&data[pos..]).map_err(Failure::Protocol)? {
            pos += f.used;
            match (f.opcode, f.fin) {
                (opcode::TEXT | opcode::BINARY, true) => {
                    if let Phase::Open = self.phase {
                        on_data(f.payload);
                    }
                }
                (opcode::TEXT | opcode::BINARY | opcode::CONTINUATION, _) => {
                    return Err(Failure::Protocol("fragmented message (not supported)"));
                }
                (opcode::PING, _) => {
                    // §5.5.3: a Pong echoes the Ping's payload. The mask need not be random
                    // for the server's sake (it cannot tell); see `Masks` for data frames.
                    self.push_frame(opcode::PONG, f.payload, [0x5a, 0xa5, 0x3c, 0xc3]);
                }
                (opcode::PONG, _) => {}
                (opcode::CLOSE, _) => {
                    if let Phase::Closing = self.phase {
                        continue; // the answer to ours: now wait for the FIN
                    }
                    let code = match f.payload {
                        [hi, lo, ..] => u16::from_be_bytes([*hi, *lo]),
                        _ => 1005, // §7.1.5: no status code present
                    };
                    return Err(Failure::ClosedByServer(code));
                }
                _ => return Err(Failure::Protocol("unknown opcode")),
            }
        }
        Ok(pos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A client (its connect to `listener` pending), for driving the parser and encoder.
    fn client(listener: &std::net::TcpListener) -> Client {
        let target = Target {
            addr: listener.local_addr().unwrap(),
            host: "x".into(),
            path: "/".into(),
            tls: None,
            secure: false,
        };
        Client::connect(&target, None, Instant::now()).unwrap()
    }

    /// Frames split at any byte parse whole once the rest arrives; a Ping gets a Pong.
    #[test]
    fn frames_split_anywhere_parse_whole_and_pings_get_pongs() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = client(&listener);
        client.phase = Phase::Open;
        let big = vec![7u8; 300];
        let mut wire = vec![0x82, 5];
        wire.extend_from_slice(b"hello");
        wire.extend_from_slice(&[0x89, 1, b'p']); // Ping "p"
        wire.extend_from_slice(&[0x82, 126, 1, 44]); // 300 bytes
        wire.extend_from_slice(&big);
        for split in 0..=wire.len() {
            client.out.clear();
            let mut got: Vec<Vec<u8>> = Vec::new();
            let mut on_data = |p: &[u8]| got.push(p.to_vec());
            let used = client.parse_frames(&wire[..split], &mut on_data).unwrap();
            let rest = [&wire[used..split], &wire[split..]].concat();
            let used_rest = client.parse_frames(&rest, &mut on_data).unwrap();
            assert_eq!(used_rest, rest.len(), "split at {split}");
            assert_eq!(got, [b"hello".to_vec(), big.clone()], "split at {split}");
            assert_eq!(client.out[0], 0x8A, "a Pong was queued (split at {split})");
        }
    }

    /// The server's own Close ends the connection with its code; a broken frame is a
    /// protocol failure; the answer to our own Close is not a failure.
    #[test]
    fn server_close_and_broken_frames_end_the_connection() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = client(&listener);
        client.phase = Phase::Open;
        let mut ignore = |_: &[u8]| {};
        let close_1001 = [0x88, 2, 0x03, 0xE9];
        assert!(matches!(
            client.parse_frames(&close_1001, &mut ignore),
            Err(Failure::ClosedByServer(1001))
        ));
        let masked = [0x82, 0x81, 1, 2, 3, 4, 5];
        assert!(matches!(
            client.parse_frames(&masked, &mut ignore),
            Err(Failure::Protocol(_))
        ));
        client.phase = Phase::Closing;
        assert_eq!(client.parse_frames(&close_1001, &mut ignore).unwrap(), 4);
    }
}
