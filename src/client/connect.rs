//! Getting connected: the connection's states, a non-blocking connect to each address in
//! turn, for `wss://` the TLS handshake, and tungstenite's client handshake, each resumed on
//! readiness until it is done.

use super::{Client, SOCKET};
use crate::stream::Stream;
use mio::net::TcpStream;
use mio::Interest;
use std::io::{self, IsTerminal};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Instant;
use tungstenite::client::IntoClientRequest;
use tungstenite::handshake::client::ClientHandshake;
use tungstenite::handshake::{HandshakeError, MidHandshake};
use tungstenite::WebSocket;

/// Where the connection is. Each step consumes the previous one (no flags to keep in sync).
pub(super) enum Link {
    /// Between two connection attempts (only while moving from one state to the next).
    Idle,
    /// A non-blocking `connect` is in flight to `addr`; WRITABLE says it finished.
    Connecting {
        /// The socket.
        stream: TcpStream,
        /// Where it is connecting, for the error message.
        addr: SocketAddr,
    },
    /// `wss://`: the TLS handshake is under way (the stream is `Stream::TlsClient`); the
    /// WebSocket handshake follows it.
    #[cfg(feature = "tls")]
    Securing(Stream),
    /// The opening handshake is half done; resumed on readiness.
    Handshake(Box<MidHandshake<ClientHandshake<Stream>>>),
    /// Upgraded: messages flow both ways.
    Open(Box<WebSocket<Stream>>),
}

/// What a `wss://` connection needs: rustls's client configuration (the system's roots and
/// `--ca`) and the name the server's certificate must carry.
#[cfg(feature = "tls")]
pub(super) struct Secure {
    /// Shared by every connection attempt (one per resolved address).
    config: std::sync::Arc<rustls::ClientConfig>,
    /// The URL's host.
    name: rustls::pki_types::ServerName<'static>,
}

#[cfg(feature = "tls")]
impl Secure {
    /// Reads the trusted roots; `host` is the URL's host.
    pub(super) fn new(host: &str, ca: Option<&std::path::Path>) -> io::Result<Secure> {
        let config = crate::tls::client_config(ca).map_err(io::Error::other)?;
        let name = rustls::pki_types::ServerName::try_from(host.to_owned())
            .map_err(|e| io::Error::other(format!("'{host}': {e}")))?;
        Ok(Secure { config, name })
    }
}

/// `cannot connect to 127.0.0.1:1234: Connection refused (os error 111)`.
fn connect_error(addr: SocketAddr, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("cannot connect to {addr}: {e}"))
}

impl Client {
    /// Starts a non-blocking connect to the next address (mio's `TcpStream::connect` docs:
    /// wait for WRITABLE, then `take_error` and `peer_addr` say how it went).
    pub(super) fn connect_next(&mut self) -> io::Result<()> {
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
    pub(super) fn drive_link(&mut self, now: Instant) -> io::Result<Option<ExitCode>> {
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
                #[cfg(feature = "tls")]
                if let Some(secure) = &self.tls {
                    let tls = crate::tls::TlsStream::client(
                        stream,
                        secure.config.clone(),
                        secure.name.clone(),
                    )
                    .map_err(io::Error::other)?;
                    return self.secure(Stream::TlsClient(Box::new(tls)), now);
                }
                self.upgrade(Stream::Plain(stream), now)
            }
            #[cfg(feature = "tls")]
            Link::Securing(stream) => self.secure(stream, now),
            Link::Handshake(mid) => self.resume(mid.handshake(), now),
            Link::Open(ws) => {
                self.link = Link::Open(ws);
                self.read_messages(now)
            }
        }
    }

    /// Drives the TLS handshake as far as the socket allows; once it is done, the WebSocket
    /// handshake starts over it.
    #[cfg(feature = "tls")]
    fn secure(&mut self, mut stream: Stream, now: Instant) -> io::Result<Option<ExitCode>> {
        let done = match &mut stream {
            Stream::TlsClient(tls) => tls.handshake(),
            _ => Ok(true),
        }
        .map_err(|e| io::Error::new(e.kind(), format!("TLS handshake failed: {e}")))?;
        if !done {
            self.link = Link::Securing(stream);
            return Ok(None);
        }
        self.upgrade(stream, now)
    }

    /// Starts tungstenite's client handshake (the upgrade request) over a connected stream.
    fn upgrade(&mut self, stream: Stream, now: Instant) -> io::Result<Option<ExitCode>> {
        let request = self
            .url
            .as_str()
            .into_client_request()
            .map_err(io::Error::other)?;
        self.resume(tungstenite::client(request, stream), now)
    }

    /// Takes the handshake's latest result: done, still waiting, or failed.
    fn resume(
        &mut self,
        result: Result<
            (WebSocket<Stream>, tungstenite::handshake::client::Response),
            HandshakeError<ClientHandshake<Stream>>,
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
}
