//! `chatloop connect`: the command-line client, one `mio` loop watching stdin and the socket.
//!
//! The same pattern as the server, at the size of one connection: no threads, no async
//! runtime. One [`Poll`] watches three sources — the TCP socket, standard input (fd 0, through
//! [`SourceFd`]) and SIGINT/SIGTERM (through `signal-hook-mio`) — and every turn of the loop
//! does what the readiness allows, then recomputes what to wait for (interest follows state).
//!
//! ```text
//!   resolve (blocking DNS, before the loop)
//!      │
//!      ▼        WRITABLE: take_error / peer_addr      101 Switching Protocols
//!   Connecting ─────────────────────────────▶ Handshake ──────────────────────▶ Open
//!      │ refused: try the next address         │ WouldBlock: HandshakeError::     │ stdin lines ─▶ text messages
//!      ▼                                       │ Interrupted(mid), wait, resume   │ messages ─▶ stdout
//!   error: cannot connect                      ▼                                  │ EOF ─▶ --wait ─▶ Close 1000
//!                                         error: handshake failed: HTTP 404 …     ▼
//!                                                           both Closes, server's FIN: exit
//! ```
//!
//! The handshake is tungstenite's own client ([`tungstenite::client`]) over a non-blocking
//! [`mio::net::TcpStream`]: when the socket would block, tungstenite hands back the half-done
//! handshake as [`HandshakeError::Interrupted`], and we resume it on the next readiness. Writing
//! the request and parsing the 101 ourselves would repeat what tungstenite already checks
//! (RFC 6455 §4.1: status 101, `Upgrade`, `Connection`, `Sec-WebSocket-Accept`).
//!
//! **Standard input without `O_NONBLOCK`.** The usual way to poll stdin is to make it
//! non-blocking, but `O_NONBLOCK` belongs to the *open file description*, which a terminal
//! shares with our stdout, our stderr and the shell that started us: setting it would make our
//! own `println!` fail with `WouldBlock` on a busy terminal, and leave the shell's terminal
//! non-blocking if we died before restoring it. So stdin stays blocking, and we read it only
//! when the poller says it is readable, exactly **one `read` per readiness** (a pipe returns what
//! it holds; a terminal in canonical mode returns one line), then re-register it. mio's readiness
//! is edge-triggered, but re-registering (`EPOLL_CTL_MOD` on Linux) re-arms it: if more input
//! is already waiting, the next poll reports it again. What can go wrong: a spurious readiness
//! (mio allows them; Linux does not produce them for pipes and terminals) would block that one
//! read until a line arrives. A regular file or `/dev/null` cannot be registered at all
//! (`EPERM`), and never blocks: then we read it whenever we are ready for input.
//!
//! **Backpressure.** While the socket will not take more (a flush returned `WouldBlock`), stdin
//! is not read: the lines wait in the pipe or terminal, and memory stays bounded by one read.

use crate::config::{parse_time, Args, UsageError};
use mio::net::TcpStream;
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook_mio::v1_0::Signals;
use std::fs::File;
use std::io::{self, IsTerminal, Read, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::os::fd::{AsFd, AsRawFd};
use std::process::ExitCode;
use std::time::{Duration, Instant};
use tungstenite::client::IntoClientRequest;
use tungstenite::handshake::client::ClientHandshake;
use tungstenite::handshake::{HandshakeError, MidHandshake};
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::frame::CloseFrame;
use tungstenite::{Message, WebSocket};

/// `chatloop connect --help`.
pub const CONNECT_USAGE: &str = "\
Usage: chatloop connect URL [OPTIONS]

Connects to a chatloop (or any WebSocket) server. Each line of standard input is sent as a
text message; every message received is printed on its own line. Connection events go to
standard error. At the end of input, waits --wait for replies, then closes (code 1000).

  chatloop connect ws://127.0.0.1:1234/kitchen --name ada
  printf 'hello\\n' | chatloop connect ws://127.0.0.1:1234/

Options:
  --name NAME     send each line as 'NAME: line', as the browser page does
  --wait TIME     after the end of input, how long to wait for replies before closing
                  [default: 0s from a terminal, 1s otherwise]
  -h, --help      print this help

TIME takes a number with a unit: 500ms, 10s, 2m. Empty lines are not sent.
A message that arrives while you type is printed where the cursor is; what you typed is
still sent whole when you press Enter (Ctrl-R redraws it on a line of its own).
Exit status: 0 after a normal close, 1 on errors or when the server closes with another
code, 2 for usage errors, 130 after Ctrl-C.
";

/// Time to open the TCP connection and finish the WebSocket handshake.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Time the server has to answer our Close and end the TCP connection (RFC 6455 §7.1.1: the
/// server closes TCP first). Shorter than the server's own `--close-timeout` default (5s) would
/// be rude; longer makes a dead server slow to leave.
pub const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// Bytes taken from standard input per read. A longer line arrives over several reads.
const STDIN_CHUNK: usize = 16 << 10;

/// A line longer than this is sent as it stands, in pieces: the server's default
/// `--max-message-bytes` is 64 KiB, so a longer message would be refused (1009) anyway.
pub const MAX_LINE_BYTES: usize = 64 << 10;

/// The poller's tokens: one per source.
const SOCKET: Token = Token(0);
const STDIN: Token = Token(1);
const SIGNALS: Token = Token(2);

/// Exit status after Ctrl-C (128 + SIGINT), as shells report it.
const EXIT_INTERRUPTED: u8 = 130;

/// What `chatloop connect` was asked to do.
#[derive(Debug)]
pub enum ConnectCommand {
    /// Connect with these options.
    Run(ClientConfig),
    /// Print [`CONNECT_USAGE`].
    Help,
}

/// The options of `chatloop connect`.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// The server's URL, `ws://host:port/room`; checked by [`ClientConfig::from_args`].
    pub url: String,
    /// Prefix for every line sent (`NAME: line`), like the browser page's nickname.
    pub name: Option<String>,
    /// After the end of input: time to wait for replies before closing.
    pub wait: Duration,
}

impl ClientConfig {
    /// Parses `chatloop connect`'s arguments (without the subcommand itself).
    pub fn from_args(args: impl IntoIterator<Item = String>) -> Result<ConnectCommand, UsageError> {
        let mut args = Args::new(args);
        let (mut name, mut wait) = (None, None);
        while let Some(flag) = args.next_flag()? {
            match flag.as_str() {
                "--name" => name = Some(args.value(&flag, parse_name)?),
                "--wait" => wait = Some(args.value(&flag, parse_time)?),
                "-h" | "--help" => return Ok(ConnectCommand::Help),
                _ => {
                    return Err(UsageError(format!(
                        "unknown option '{flag}' (see 'chatloop connect --help')"
                    )))
                }
            }
        }
        let url = match args.positional.as_slice() {
            [url] => url.clone(),
            [] => {
                return Err(UsageError(
                    "connect needs a URL, like ws://127.0.0.1:1234/".into(),
                ))
            }
            [_, extra, ..] => return Err(UsageError(format!("unexpected argument '{extra}'"))),
        };
        check_url(&url).map_err(|why| UsageError(format!("bad URL '{url}': {why}")))?;
        // Someone typing can leave with Ctrl-D at once; a pipe is over before replies come.
        let wait = wait.unwrap_or(if io::stdin().is_terminal() {
            Duration::ZERO
        } else {
            Duration::from_secs(1)
        });
        Ok(ConnectCommand::Run(ClientConfig { url, name, wait }))
    }
}

fn parse_name(s: &str) -> Result<String, String> {
    if s.trim().is_empty() || s.contains('\n') {
        return Err("a name needs at least one visible character and no line break".into());
    }
    Ok(s.to_owned())
}

/// Checks the URL the way the client will use it; returns `host:port`.
fn check_url(url: &str) -> Result<String, String> {
    let uri: tungstenite::http::Uri = url.parse().map_err(|e| format!("{e}"))?;
    match uri.scheme_str() {
        Some("ws") => {}
        Some("wss") => {
            return Err("wss:// needs TLS, which chatloop does not speak; use ws://".into())
        }
        _ => return Err("expected ws://HOST:PORT/ROOM".into()),
    }
    let host = uri.host().filter(|h| !h.is_empty()).ok_or("no host")?;
    // RFC 6455 §3: the default port of ws:// is 80.
    Ok(format!("{host}:{}", uri.port_u16().unwrap_or(80)))
}

/// Connects, runs the loop until the connection ends, and says how the program should exit.
/// Errors (`Err`) are printed by `main` as `error: …` with exit status 1.
pub fn run(cfg: ClientConfig) -> io::Result<ExitCode> {
    let hostport = check_url(&cfg.url).map_err(io::Error::other)?;
    // Name resolution blocks; it happens once, before the loop has anything else to do.
    let addrs: Vec<SocketAddr> = hostport
        .to_socket_addrs()
        .map_err(|e| io::Error::new(e.kind(), format!("cannot resolve {hostport}: {e}")))?
        .collect();
    let poll = Poll::new()?;
    let mut signals = Signals::new([SIGINT, SIGTERM])?;
    poll.registry()
        .register(&mut signals, SIGNALS, Interest::READABLE)?;
    let input = Input::open(&poll)?;
    let mut client = Client {
        poll,
        link: Link::Idle,
        addrs: addrs.into_iter(),
        last_error: None,
        url: cfg.url.clone(),
        cfg,
        input,
        partial: Vec::new(),
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

/// `cannot connect to 127.0.0.1:1234: Connection refused (os error 111)`.
fn connect_error(addr: SocketAddr, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("cannot connect to {addr}: {e}"))
}

/// Where the connection is. Each step consumes the previous one (no flags to keep in sync).
enum Link {
    /// Between two connection attempts (only while moving from one state to the next).
    Idle,
    /// A non-blocking `connect` is in flight to `addr`; WRITABLE says it finished.
    Connecting {
        /// The socket.
        stream: TcpStream,
        /// Where it is connecting, for the error message.
        addr: SocketAddr,
    },
    /// The opening handshake is half done; resumed on readiness.
    Handshake(Box<MidHandshake<ClientHandshake<TcpStream>>>),
    /// Upgraded: messages flow both ways.
    Open(Box<WebSocket<TcpStream>>),
}

/// Standard input, read one `read` per readiness (see the module docs for why).
struct Input {
    /// A duplicate of fd 0: reading it takes exactly one `read` syscall, with no hidden buffer
    /// (std's `Stdin` keeps one). `None` once input has ended.
    file: Option<File>,
    /// Registered with the poller. `false` for a regular file or `/dev/null`, which epoll
    /// refuses and which never block: those are always "ready".
    polled: bool,
    /// The poller said readable and we have not read since (readiness is edge-triggered, so
    /// it is remembered until used).
    ready: bool,
}

impl Input {
    fn open(poll: &Poll) -> io::Result<Input> {
        // A closed fd 0 is simply no input.
        let Ok(fd) = io::stdin().as_fd().try_clone_to_owned() else {
            return Ok(Input {
                file: None,
                polled: false,
                ready: false,
            });
        };
        let file = File::from(fd);
        let polled = match poll.registry().register(
            &mut SourceFd(&file.as_raw_fd()),
            STDIN,
            Interest::READABLE,
        ) {
            Ok(()) => true,
            // epoll_ctl(2): EPERM "the target file does not support epoll" (regular files).
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => false,
            Err(e) => return Err(e),
        };
        Ok(Input {
            file: Some(file),
            polled,
            ready: !polled,
        })
    }
}

/// The client: the loop's state between turns.
struct Client {
    /// The poller; only this file's loop uses it.
    poll: Poll,
    /// The connection.
    link: Link,
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
    /// The start of a line whose end has not arrived yet; bounded by [`MAX_LINE_BYTES`].
    partial: Vec<u8>,
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
                if self.write_blocked || !self.input.ready || self.input.file.is_none() {
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
        if !self.input.polled && self.input.file.is_some() && !self.write_blocked {
            return Some(self.started); // a file is always ready: poll without sleeping
        }
        self.input_ended.map(|t| t + self.cfg.wait)
    }

    /// Starts a non-blocking connect to the next address (mio's `TcpStream::connect` docs:
    /// wait for WRITABLE, then `take_error` and `peer_addr` say how it went).
    fn connect_next(&mut self) -> io::Result<()> {
        loop {
            let Some(addr) = self.addrs.next() else {
                // The last failure names its address: "cannot connect to 127.0.0.1:1234: …".
                return Err(self.last_error.take().unwrap_or_else(|| {
                    io::Error::other(format!("cannot connect to {}: no address", self.url))
                }));
            };
            match TcpStream::connect(addr) {
                Ok(mut stream) => {
                    self.poll.registry().register(
                        &mut stream,
                        SOCKET,
                        Interest::READABLE | Interest::WRITABLE,
                    )?;
                    self.link = Link::Connecting { stream, addr };
                    return Ok(());
                }
                Err(e) => self.last_error = Some(connect_error(addr, e)),
            }
        }
    }

    /// Socket readiness: finish connecting, resume the handshake, or read messages.
    fn drive_link(&mut self, now: Instant) -> io::Result<Option<ExitCode>> {
        match std::mem::replace(&mut self.link, Link::Idle) {
            Link::Idle => Ok(None),
            Link::Connecting { mut stream, addr } => {
                if let Some(e) = stream.take_error()?.or_else(|| stream.peer_addr().err()) {
                    if e.kind() == io::ErrorKind::NotConnected {
                        // Not finished yet (a spurious wake-up): keep waiting.
                        self.link = Link::Connecting { stream, addr };
                        return Ok(None);
                    }
                    let _ = self.poll.registry().deregister(&mut stream);
                    self.last_error = Some(connect_error(addr, e));
                    self.connect_next()?;
                    // The new socket reports its own readiness.
                    return Ok(None);
                }
                let _ = stream.set_nodelay(true); // chat lines are small: send each at once
                let request = self
                    .url
                    .as_str()
                    .into_client_request()
                    .map_err(io::Error::other)?;
                self.resume(tungstenite::client(request, stream), now)
            }
            Link::Handshake(mid) => self.resume(mid.handshake(), now),
            Link::Open(ws) => {
                self.link = Link::Open(ws);
                self.read_messages(now)
            }
        }
    }

    /// Takes the handshake's latest result: done, still waiting, or failed.
    fn resume(
        &mut self,
        result: Result<
            (
                WebSocket<TcpStream>,
                tungstenite::handshake::client::Response,
            ),
            HandshakeError<ClientHandshake<TcpStream>>,
        >,
        now: Instant,
    ) -> io::Result<Option<ExitCode>> {
        match result {
            Ok((mut ws, _response)) => {
                // Nothing queued yet: from now on WRITABLE only while a flush is blocked.
                self.poll
                    .registry()
                    .reregister(ws.get_mut(), SOCKET, Interest::READABLE)?;
                let hint = if io::stdin().is_terminal() {
                    " (type a line and Enter to send; Ctrl-D to leave)"
                } else {
                    ""
                };
                eprintln!("connected to {}{hint}", self.url);
                self.link = Link::Open(Box::new(ws));
                // The server may have sent messages right behind its 101.
                self.read_messages(now)
            }
            // The socket would block mid-handshake: tungstenite keeps what it has done so far.
            Err(HandshakeError::Interrupted(mid)) => {
                self.link = Link::Handshake(Box::new(mid));
                Ok(None)
            }
            Err(HandshakeError::Failure(tungstenite::Error::Http(response))) => {
                let status = response.status();
                Err(io::Error::other(format!(
                    "handshake failed: HTTP {} {}",
                    status.as_str(),
                    status.canonical_reason().unwrap_or("")
                )))
            }
            Err(HandshakeError::Failure(e)) => {
                Err(io::Error::other(format!("handshake failed: {e}")))
            }
        }
    }

    /// Reads every message the socket holds, until `WouldBlock`, and prints it.
    fn read_messages(&mut self, now: Instant) -> io::Result<Option<ExitCode>> {
        let Link::Open(ws) = &mut self.link else {
            return Ok(None);
        };
        let mut out = io::stdout().lock();
        loop {
            match ws.read() {
                Ok(Message::Text(text)) => writeln!(out, "{}", text.as_str())?,
                Ok(Message::Binary(data)) => {
                    writeln!(out, "[binary message, {} bytes]", data.len())?
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
                    out.flush()?;
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
        out.flush()?;
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

    /// Reads standard input (one `read`, see the module docs) and sends each complete line.
    fn read_input(&mut self, now: Instant) -> io::Result<()> {
        let closing = self.close_sent.is_some() || self.close_received.is_some();
        if !self.input.ready || self.write_blocked || closing {
            return Ok(());
        }
        let Some(file) = &mut self.input.file else {
            return Ok(());
        };
        let mut buf = [0u8; STDIN_CHUNK];
        let n = match file.read(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(()),
            Err(e) => return Err(io::Error::new(e.kind(), format!("cannot read input: {e}"))),
        };
        self.input.ready = !self.input.polled;
        if n == 0 {
            // End of input: send what is left, then wait (--wait) and close.
            let rest = std::mem::take(&mut self.partial);
            self.send_line(&rest);
            if self.input.polled {
                if let Some(file) = &self.input.file {
                    let _ = self
                        .poll
                        .registry()
                        .deregister(&mut SourceFd(&file.as_raw_fd()));
                }
            }
            self.input.file = None;
            self.input_ended = Some(now);
            return Ok(());
        }
        let mut chunk = &buf[..n];
        while let Some(end) = chunk.iter().position(|&b| b == b'\n') {
            let mut line = std::mem::take(&mut self.partial);
            line.extend_from_slice(&chunk[..end]);
            self.send_line(&line);
            chunk = &chunk[end + 1..];
        }
        self.partial.extend_from_slice(chunk);
        if self.partial.len() >= MAX_LINE_BYTES {
            let long = std::mem::take(&mut self.partial);
            self.send_line(&long);
        }
        if self.input.polled {
            // Re-arm: if more input is already waiting, the next poll reports it again.
            if let Some(file) = &self.input.file {
                self.poll.registry().reregister(
                    &mut SourceFd(&file.as_raw_fd()),
                    STDIN,
                    Interest::READABLE,
                )?;
            }
        }
        Ok(())
    }

    /// Queues one line as a text message, `NAME: line` with `--name`. Empty lines are skipped.
    fn send_line(&mut self, line: &[u8]) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            return;
        }
        // RFC 6455 §5.6: a text message is UTF-8; a stray byte becomes U+FFFD.
        let line = String::from_utf8_lossy(line);
        let text = match &self.cfg.name {
            Some(name) => format!("{name}: {line}"),
            None => line.into_owned(),
        };
        if let Link::Open(ws) = &mut self.link {
            // A write that would block keeps the frame queued inside tungstenite; flush()
            // below notices and waits for WRITABLE. Other errors show up on the next read.
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
