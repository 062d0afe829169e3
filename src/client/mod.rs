//! `chatloop connect`: the command-line client, one `mio` loop watching stdin and the socket.
//!
//! The same pattern as the server, at the size of one connection: no threads, no async
//! runtime. One [`Poll`] watches three sources — the TCP socket, standard input (fd 0,
//! through [`SourceFd`](mio::unix::SourceFd)) and SIGINT/SIGTERM (through `signal-hook-mio`)
//! — and every turn of the loop does what the readiness allows, then recomputes what to wait
//! for (interest follows state).
//!
//! ```text
//!  resolve (blocking DNS, before the loop)
//!     │                                  wss:// only: Securing (the TLS handshake)
//!     ▼      WRITABLE: take_error, peer_addr   ╷          101 Switching Protocols
//!  Connecting ──────────────────────────────▶ Handshake ─────────────────────────▶ Open
//!     │ refused: try the next address          │ WouldBlock: Interrupted(mid),     │
//!     ▼                                        │ wait for readiness, resume        │
//!  error: cannot connect …                     ▼                                   │
//!                              error: handshake failed: HTTP 404 …                 │
//!     stdin lines ─▶ text messages; messages ─▶ stdout; end of input ─▶ --wait ─▶ Close 1000
//!     both Close frames, then the server's FIN ─▶ exit (0, or 1 if the server's code ≠ 1000)
//! ```
//!
//! The handshake is tungstenite's own client ([`tungstenite::client()`]) over a non-blocking
//! [`Stream`](crate::stream::Stream) (the TCP socket, or TLS over it for `wss://`): when the socket would block, tungstenite hands back the half-done
//! handshake as [`HandshakeError::Interrupted`], and we resume it on the next readiness
//! (`connect.rs`). Writing the request and parsing the 101 ourselves would repeat what
//! tungstenite already checks (RFC 6455 §4.1: status 101, `Upgrade`, `Connection`,
//! `Sec-WebSocket-Accept`).
//!
//! [`HandshakeError::Interrupted`]: tungstenite::handshake::HandshakeError::Interrupted
//!
//! Standard input is polled *without* setting `O_NONBLOCK` (which a terminal shares with the
//! shell): one `read` per readiness, then re-arm. [`input`] explains why and how.
//!
//! **Backpressure.** While the socket will not take more (a flush returned `WouldBlock`), stdin
//! is not read: the lines wait in the pipe or terminal, and memory stays bounded by one read.
//!
//! | file | what it holds |
//! |---|---|
//! | `mod.rs` | the loop: [`run`], reading, writing, closing |
//! | `connect.rs` | getting connected: the connection's states, the connect, the handshake |
//! | [`input`] | standard input: registration, one read per readiness, cutting lines |
//! | [`options`] | the command line: [`ClientConfig`], `--help`, the URL check |

mod connect;
pub mod input;
pub mod options;

pub use options::{ClientConfig, ConnectCommand, CONNECT_USAGE};

use connect::Link;
use input::Input;
use mio::{Events, Interest, Poll, Token};
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook_mio::v1_0::Signals;
use std::io::{self, IsTerminal, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::process::ExitCode;
use std::time::{Duration, Instant};
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::frame::CloseFrame;
use tungstenite::Message;

/// Time to open the TCP connection and finish the WebSocket handshake.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Time the server has to answer our Close and end the TCP connection (RFC 6455 §7.1.1: the
/// server closes TCP first). Shorter than the server's own `--close-timeout` default (5s) would
/// be rude; longer makes a dead server slow to leave.
pub const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// The poller's tokens: one per source.
const SOCKET: Token = Token(0);
const STDIN: Token = Token(1);
const SIGNALS: Token = Token(2);

/// Exit status after Ctrl-C (128 + SIGINT), as shells report it.
const EXIT_INTERRUPTED: u8 = 130;

/// Connects, runs the loop until the connection ends, and says how the program should exit.
/// Errors (`Err`) are printed by `main` as `error: …` with exit status 1.
pub fn run(cfg: ClientConfig) -> io::Result<ExitCode> {
    let endpoint = options::check_url(&cfg.url).map_err(io::Error::other)?;
    let hostport = &endpoint.host_port;
    // Name resolution blocks; it happens once, before the loop has anything else to do.
    let addrs: Vec<SocketAddr> = hostport
        .to_socket_addrs()
        .map_err(|e| io::Error::new(e.kind(), format!("cannot resolve {hostport}: {e}")))?
        .collect();
    #[cfg(feature = "tls")]
    let tls = match endpoint.secure {
        true => Some(connect::Secure::new(&endpoint.host, cfg.ca.as_deref())?),
        false => None,
    };
    let poll = Poll::new()?;
    let mut signals = Signals::new([SIGINT, SIGTERM])?;
    poll.registry()
        .register(&mut signals, SIGNALS, Interest::READABLE)?;
    let input = Input::open(poll.registry(), STDIN)?;
    let mut client = Client {
        poll,
        link: Link::Idle,
        #[cfg(feature = "tls")]
        tls,
        addrs: addrs.into_iter(),
        last_error: None,
        url: cfg.url.clone(),
        cfg,
        input,
        input_ended: None,
        close_sent: None,
        closing_since: None,
        interrupted: false,
        close_received: None,
        unflushed: false,
        write_blocked: false,
        socket_ready: false,
        started: Instant::now(),
    };
    client.connect_next()?;
    let mut events = Events::with_capacity(16);
    loop {
        let now = Instant::now();
        let timeout = client.deadline().map(|d| d.saturating_duration_since(now));
        match client.poll.poll(&mut events, timeout) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
        for event in events.iter() {
            match event.token() {
                SOCKET => client.socket_ready = true,
                STDIN => client.input.ready = true,
                SIGNALS if signals.pending().next().is_some() => {
                    if client.interrupted {
                        // A second Ctrl-C: the user will not wait for the handshake.
                        return Ok(ExitCode::from(EXIT_INTERRUPTED));
                    }
                    client.interrupted = true;
                    if io::stderr().is_terminal() {
                        eprintln!(); // the terminal echoed "^C" without a line break
                    }
                }
                _ => {}
            }
        }
        if let Some(code) = client.turn(Instant::now())? {
            return Ok(code);
        }
    }
}

/// The client: the loop's state between turns.
struct Client {
    /// The poller; only this file's loop uses it.
    poll: Poll,
    /// The connection.
    link: Link,
    /// For `wss://`: what every connection attempt's TLS needs.
    #[cfg(feature = "tls")]
    tls: Option<connect::Secure>,
    /// Addresses not tried yet (a name may resolve to IPv6 and IPv4; the server may listen on one).
    addrs: std::vec::IntoIter<SocketAddr>,
    /// Why the last address failed, reported if none is left.
    last_error: Option<io::Error>,
    /// The URL, for the handshake request and messages.
    url: String,
    /// The options.
    cfg: ClientConfig,
    /// Standard input.
    input: Input,
    /// When input ended: `--wait` counts from here.
    input_ended: Option<Instant>,
    /// When we sent our Close (we started the closing handshake).
    close_sent: Option<Instant>,
    /// When either side's Close went by: [`CLOSE_TIMEOUT`] counts from here.
    closing_since: Option<Instant>,
    /// SIGINT or SIGTERM arrived: close now, exit 130.
    interrupted: bool,
    /// The Close frame the server sent (first, or in reply to ours).
    close_received: Option<Option<CloseFrame>>,
    /// tungstenite may hold bytes not yet written (a message, a Pong, a Close): flush.
    unflushed: bool,
    /// The last flush would have blocked: WRITABLE is registered, and stdin waits until the
    /// socket takes the rest (backpressure).
    write_blocked: bool,
    /// The poller reported the socket since we last drove it.
    socket_ready: bool,
    /// When we began: [`CONNECT_TIMEOUT`] counts from here.
    started: Instant,
}

impl Client {
    /// One turn: drive the connection, then input, then decide whether to close or exit.
    fn turn(&mut self, now: Instant) -> io::Result<Option<ExitCode>> {
        if std::mem::take(&mut self.socket_ready) {
            if let Some(code) = self.drive_link(now)? {
                return Ok(Some(code));
            }
        }
        if matches!(self.link, Link::Open(_)) {
            // Input, then flush; again while the socket keeps up and input is waiting
            // (readiness that came while we were blocked is not reported twice).
            for _ in 0..4 {
                self.read_input(now)?;
                if self.close_sent.is_none() && self.wants_to_close(now) {
                    self.send_close(now);
                }
                self.flush()?;
                if self.write_blocked || !self.input.ready || !self.input.is_open() {
                    break;
                }
            }
        } else if now.saturating_duration_since(self.started) >= CONNECT_TIMEOUT {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("timed out connecting to {}", self.url),
            ));
        } else if self.interrupted {
            return Ok(Some(ExitCode::from(EXIT_INTERRUPTED)));
        }
        if let Some(since) = self.closing_since {
            if now.saturating_duration_since(since) >= CLOSE_TIMEOUT {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("the server did not finish closing within {CLOSE_TIMEOUT:?}"),
                ));
            }
        }
        Ok(None)
    }

    /// The next time something is due without any I/O: the connect timeout, the end of
    /// `--wait`, the close timeout. `None` means "only I/O can wake us".
    fn deadline(&self) -> Option<Instant> {
        if !matches!(self.link, Link::Open(_)) {
            return Some(self.started + CONNECT_TIMEOUT);
        }
        if let Some(since) = self.closing_since {
            return Some(since + CLOSE_TIMEOUT);
        }
        if self.input.always_ready() && !self.write_blocked {
            return Some(self.started); // a file is always ready: poll without sleeping
        }
        self.input_ended.map(|t| t + self.cfg.wait)
    }

    /// Reads every message the socket holds, until `WouldBlock`, and prints it.
    fn read_messages(&mut self, now: Instant) -> io::Result<Option<ExitCode>> {
        let Link::Open(ws) = &mut self.link else {
            return Ok(None);
        };
        let mut out = io::stdout().lock();
        // A closed stdout (`chatloop connect … | head -1`) ends the client with a clear error.
        let cannot = |e: io::Error| io::Error::new(e.kind(), format!("cannot write output: {e}"));
        loop {
            match ws.read() {
                Ok(Message::Text(text)) => writeln!(out, "{}", text.as_str()).map_err(cannot)?,
                Ok(Message::Binary(data)) => {
                    writeln!(out, "[binary message, {} bytes]", data.len()).map_err(cannot)?
                }
                // tungstenite queued the Pong (RFC 6455 §5.5.3); it goes out with the next flush.
                Ok(Message::Ping(_)) => self.unflushed = true,
                Ok(Message::Pong(_) | Message::Frame(_)) => {}
                // The server's Close, first or in answer to ours; tungstenite queued our reply.
                // Keep reading: the server then ends the TCP connection (RFC 6455 §7.1.1).
                Ok(Message::Close(frame)) => {
                    self.close_received = Some(frame);
                    self.closing_since.get_or_insert(now);
                    self.unflushed = true;
                }
                Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(tungstenite::Error::ConnectionClosed) => {
                    out.flush().map_err(cannot)?;
                    return Ok(Some(self.finish()));
                }
                Err(tungstenite::Error::Protocol(
                    tungstenite::error::ProtocolError::ResetWithoutClosingHandshake,
                )) => {
                    return Err(io::Error::other(
                        "connection lost: the server left without a Close",
                    ))
                }
                Err(e) => return Err(io::Error::other(format!("connection lost: {e}"))),
            }
        }
        out.flush().map_err(cannot)?;
        Ok(None)
    }

    /// The closing handshake is complete: report it and choose the exit status.
    fn finish(&mut self) -> ExitCode {
        let frame = self.close_received.take().flatten();
        let (code, reason) = frame.map_or((1005, String::new()), |f| {
            (u16::from(f.code), f.reason.as_str().to_owned())
        });
        let by = if self.close_sent.is_some() {
            "closed"
        } else {
            "closed by server"
        };
        if reason.is_empty() {
            eprintln!("{by}: {code}");
        } else {
            eprintln!("{by}: {code} {reason}");
        }
        if self.interrupted {
            ExitCode::from(EXIT_INTERRUPTED)
        } else if self.close_sent.is_some() || code == 1000 {
            // We asked to close (any answer will do), or the server closed normally.
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        }
    }

    /// Reads standard input (one `read`, see [`input`]) and sends each complete line.
    fn read_input(&mut self, now: Instant) -> io::Result<()> {
        let closing = self.close_sent.is_some() || self.close_received.is_some();
        if !self.input.ready || !self.input.is_open() || self.write_blocked || closing {
            return Ok(());
        }
        let mut lines = Vec::new();
        let ended = self.input.read_lines(self.poll.registry(), &mut lines)?;
        for line in lines {
            self.send_line(line);
        }
        if ended {
            // --wait counts from here; then we close.
            self.input_ended = Some(now);
        }
        Ok(())
    }

    /// Queues one line as a text message, `NAME: line` with `--name`.
    fn send_line(&mut self, line: String) {
        let text = match &self.cfg.name {
            Some(name) => format!("{name}: {line}"),
            None => line,
        };
        if let Link::Open(ws) = &mut self.link {
            // A write that would block keeps the frame queued inside tungstenite; flush()
            // notices and waits for WRITABLE. Other errors show up on the next read.
            let _ = ws.write(Message::text(text));
            self.unflushed = true;
        }
    }

    /// Whether it is time to start the closing handshake.
    fn wants_to_close(&self, now: Instant) -> bool {
        self.interrupted
            || self
                .input_ended
                .is_some_and(|t| now.saturating_duration_since(t) >= self.cfg.wait)
    }

    /// Starts the closing handshake (RFC 6455 §7.1.2): 1000 at the end of input, 1001 when
    /// the user interrupts (RFC 6455 §7.4.1: "going away").
    fn send_close(&mut self, now: Instant) {
        let Link::Open(ws) = &mut self.link else {
            return;
        };
        if !ws.can_write() {
            return; // the server closed first; tungstenite answers it on its own
        }
        let code = if self.interrupted {
            CloseCode::Away
        } else {
            CloseCode::Normal
        };
        let _ = ws.close(Some(CloseFrame {
            code,
            reason: "".into(),
        }));
        self.close_sent = Some(now);
        self.closing_since = Some(now);
        self.unflushed = true;
    }

    /// Writes what tungstenite holds. WRITABLE is registered only while something stays
    /// queued (interest follows state, as in the server).
    fn flush(&mut self) -> io::Result<()> {
        let Link::Open(ws) = &mut self.link else {
            return Ok(());
        };
        if !self.unflushed {
            return Ok(());
        }
        let blocked = match ws.flush() {
            Ok(()) => false,
            Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => true,
            // Closed, or a write error: the next read reports it properly.
            Err(_) => false,
        };
        self.unflushed = blocked;
        if blocked != self.write_blocked {
            self.write_blocked = blocked;
            let interest = if blocked {
                Interest::READABLE | Interest::WRITABLE
            } else {
                Interest::READABLE
            };
            self.poll
                .registry()
                .reregister(ws.get_mut(), SOCKET, interest)?;
        }
        Ok(())
    }
}
