//! One connection of the load generator: a minimal non-blocking WebSocket client.
//!
//! The generator holds thousands of these in one thread, so each is small (about a hundred
//! bytes while idle: a socket, a phase, two empty `Vec`s) and cheap per message:
//!
//! - **Input** is read into the [`Pool`](super::pool::Pool)'s one shared scratch buffer and
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
//! RFC 6455 parts implemented: the opening handshake (§4.1, accept key checked per §4.2.2),
//! client-to-server masking (§5.3), the base framing (§5.2) with 7/16/64-bit lengths, Pong
//! replies to Pings (§5.5.2–3) and the client side of the closing handshake (§7.1.1: the client
//! waits for the server to close TCP first, so the client's ports never sit in TIME_WAIT and a
//! long `connect` run does not exhaust them). Not implemented, because no server under test
//! needs them: fragmented messages, extensions, `wss://`.

use mio::net::TcpStream;
use mio::{Interest, Registry, Token};
use std::fmt;
use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

/// RFC 6455 §5.2 opcodes the client sends or understands.
pub mod opcode {
    /// A continuation of a fragmented message (not supported: see the module docs).
    pub const CONTINUATION: u8 = 0x0;
    /// A UTF-8 text message.
    pub const TEXT: u8 = 0x1;
    /// A binary message: what the generator sends.
    pub const BINARY: u8 = 0x2;
    /// Close.
    pub const CLOSE: u8 = 0x8;
    /// Ping: answered with a Pong carrying the same payload.
    pub const PING: u8 = 0x9;
    /// Pong: ignored.
    pub const PONG: u8 = 0xA;
}

/// Largest HTTP response head accepted from the server.
const MAX_RESPONSE_HEAD: usize = 8 << 10;

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

/// The parts of the opening handshake that are the same for every connection.
#[derive(Debug, Clone)]
pub struct Target {
    /// Where to connect.
    pub addr: SocketAddr,
    /// The `Host` header: the URL's authority as given.
    pub host: String,
    /// The request path: the room.
    pub path: String,
}

/// One client connection. See the module docs.
pub struct Client {
    /// The non-blocking socket.
    socket: TcpStream,
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
        Ok(Client {
            socket: TcpStream::from_std(socket.into()),
            phase: Phase::Connecting,
            out: Vec::new(),
            held: Vec::new(),
            started: now,
            tag: 0,
        })
    }

    /// Registers the socket once, for both directions (see the module docs).
    pub fn register(&mut self, registry: &Registry, token: Token) -> io::Result<()> {
        registry.register(
            &mut self.socket,
            token,
            Interest::READABLE | Interest::WRITABLE,
        )
    }

    /// Takes the socket off the poller before the connection is dropped.
    pub fn deregister(&mut self, registry: &Registry) {
        // Can only fail if the socket is not registered, which changes nothing here.
        let _ = registry.deregister(&mut self.socket);
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

    /// Queues one masked frame (RFC 6455 §5.2–5.3) with `payload` and masking key `mask`;
    /// [`flush`](Client::flush) sends it.
    pub fn push_frame(&mut self, opcode: u8, payload: &[u8], mask: [u8; 4]) {
        let len = payload.len();
        self.out.push(0x80 | opcode); // FIN, no RSV bits
        if len < 126 {
            self.out.push(0x80 | len as u8);
        } else if len <= u16::MAX as usize {
            self.out.push(0x80 | 126);
            self.out.extend_from_slice(&(len as u16).to_be_bytes());
        } else {
            self.out.push(0x80 | 127);
            self.out.extend_from_slice(&(len as u64).to_be_bytes());
        }
        self.out.extend_from_slice(&mask);
        let start = self.out.len();
        self.out.extend_from_slice(payload);
        for (i, b) in self.out[start..].iter_mut().enumerate() {
            *b ^= mask[i & 3];
        }
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
            if let Some(e) = self.socket.take_error().map_err(Failure::Connect)? {
                return Err(Failure::Connect(e));
            }
            // A writable edge without an error but before the connect finished cannot happen on
            // Linux; `peer_addr` makes sure (ENOTCONN means "not yet").
            match self.socket.peer_addr() {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::NotConnected => return Ok(()),
                Err(e) => return Err(Failure::Connect(e)),
            }
            let key = tungstenite::handshake::client::generate_key();
            // RFC 6455 §4.1: the client's opening handshake.
            let request = format!(
                "GET {} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                 Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n",
                target.path, target.host
            );
            self.out.extend_from_slice(request.as_bytes());
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
                match parse_response(data, key)? {
                    Some(head) => {
                        used = head;
                        self.phase = Phase::Open;
                        step = Step::Opened;
                    }
                    None if data.len() > MAX_RESPONSE_HEAD => {
                        return Err(Failure::Handshake("response head too large".into()))
                    }
                    None => {}
                }
            }
            if !matches!(self.phase, Phase::Handshaking { .. }) {
                used += self.parse_frames(&data[used..], &mut on_data)?;
            }
            self.held.extend_from_slice(&data[used..]);
            if n < room && !read_closed {
                break;
            }
        }
        if !self.out.is_empty() {
            self.flush()?;
        }
        Ok(step)
    }

    /// Parses complete frames at the front of `data` (RFC 6455 §5.2); returns the bytes used.
    fn parse_frames(
        &mut self,
        data: &[u8],
        on_data: &mut impl FnMut(&[u8]),
    ) -> Result<usize, Failure> {
        let mut pos = 0;
        while data.len() - pos >= 2 {
            let (b0, b1) = (data[pos], data[pos + 1]);
            if b1 & 0x80 != 0 {
                // §5.1: a server must not mask.
                return Err(Failure::Protocol("masked frame from the server"));
            }
            if b0 & 0x70 != 0 {
                // §5.2: RSV bits need a negotiated extension; we offer none.
                return Err(Failure::Protocol("RSV bit set without an extension"));
            }
            let (len, head) = match b1 & 0x7f {
                126 if data.len() - pos >= 4 => (
                    u16::from_be_bytes([data[pos + 2], data[pos + 3]]) as usize,
                    4,
                ),
                127 if data.len() - pos >= 10 => {
                    let mut be = [0; 8];
                    be.copy_from_slice(&data[pos + 2..pos + 10]);
                    let len = u64::from_be_bytes(be);
                    (usize::try_from(len).unwrap_or(usize::MAX), 10)
                }
                126 | 127 => break,
                n => (n as usize, 2),
            };
            if (data.len() - pos - head) < len {
                break;
            }
            let payload = &data[pos + head..pos + head + len];
            pos += head + len;
            let fin = b0 & 0x80 != 0;
            match (b0 & 0x0f, fin) {
                (opcode::TEXT | opcode::BINARY, true) => {
                    if let Phase::Open = self.phase {
                        on_data(payload);
                    }
                }
                (opcode::TEXT | opcode::BINARY | opcode::CONTINUATION, _) => {
                    return Err(Failure::Protocol("fragmented message (not supported)"));
                }
                (opcode::PING, _) => {
                    // §5.5.3: a Pong echoes the Ping's payload. The mask need not be random
                    // for the server's sake (it cannot tell); see `Masks` for data frames.
                    self.push_frame(opcode::PONG, payload, [0x5a, 0xa5, 0x3c, 0xc3]);
                }
                (opcode::PONG, _) => {}
                (opcode::CLOSE, _) => {
                    if let Phase::Closing = self.phase {
                        continue; // the answer to ours: now wait for the FIN
                    }
                    let code = match payload {
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

/// Parses the server's handshake response at the front of `data`: `Some(head length)` once it
/// is complete and valid, `None` if more bytes are needed (RFC 6455 §4.1, §4.2.2).
fn parse_response(data: &[u8], key: &str) -> Result<Option<usize>, Failure> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut response = httparse::Response::new(&mut headers);
    let head = match response.parse(data) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(Failure::Handshake(format!("bad response: {e}"))),
    };
    if response.code != Some(101) {
        return Err(Failure::Handshake(format!(
            "HTTP {} instead of 101",
            response.code.unwrap_or(0)
        )));
    }
    let accept = response
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("sec-websocket-accept"))
        .map(|h| h.value);
    let expected = tungstenite::handshake::derive_accept_key(key.as_bytes());
    if accept != Some(expected.as_bytes()) {
        return Err(Failure::Handshake("wrong Sec-WebSocket-Accept".into()));
    }
    Ok(Some(head))
}

/// Masking keys for client frames (RFC 6455 §5.3 wants them unpredictable to third parties; a
/// xorshift generator seeded from the clock is enough for a load test on loopback and costs a
/// few instructions per frame).
pub struct Masks(u32);

impl Masks {
    /// A generator seeded from the clock.
    pub fn new() -> Masks {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0x9e37_79b9);
        Masks(seed | 1)
    }

    /// The next masking key.
    pub fn next_key(&mut self) -> [u8; 4] {
        // xorshift32 (Marsaglia): never reaches 0 from a non-zero seed.
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.0 = x;
        x.to_ne_bytes()
    }
}

impl Default for Masks {
    fn default() -> Masks {
        Masks::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A masked frame unmasks to its payload, with the 16-bit length form past 125 bytes.
    #[test]
    fn frames_are_masked_and_length_encoded() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let target = Target {
            addr: listener.local_addr().unwrap(),
            host: "x".into(),
            path: "/".into(),
        };
        let mut client = Client::connect(&target, None, Instant::now()).unwrap();
        let payload: Vec<u8> = (0..200u8).collect();
        let mask = [1, 2, 3, 4];
        client.push_frame(opcode::BINARY, &payload, mask);
        let out = &client.out;
        assert_eq!(out[0], 0x82);
        assert_eq!(out[1], 0x80 | 126);
        assert_eq!(u16::from_be_bytes([out[2], out[3]]), 200);
        assert_eq!(&out[4..8], &mask);
        let unmasked: Vec<u8> = out[8..]
            .iter()
            .enumerate()
            .map(|(i, b)| b ^ mask[i & 3])
            .collect();
        assert_eq!(unmasked, payload);
    }
}
