//! [`Stream`]: a socket as the code above it sees it, a bare TCP socket or TLS over one
//! (feature `tls`): the server's end for `--tls-cert`, the client's for `chatloop connect
//! wss://`.
//!
//! The server's connection (`conn.rs`) and tungstenite in the client are generic over their
//! socket and never learn which one they have: all three read and write plaintext. The
//! poller registers the TCP socket underneath.

use crate::conn::Socket;
#[cfg(feature = "tls")]
use crate::tls::TlsStream;
use mio::event::Source;
use mio::net::TcpStream;
use mio::{Interest, Registry, Token};
#[cfg(all(feature = "tls", feature = "client"))]
use rustls::client::UnbufferedClientConnection;
use std::io::{self, IoSlice, Read, Write};

/// A socket, with or without TLS.
pub enum Stream {
    /// `ws://` and `http://`.
    Plain(TcpStream),
    /// The server's end of `wss://` and `https://`. Boxed: rustls's state is a few hundred
    /// bytes, and the slab's slots are as large as their largest variant, so plain connections
    /// would pay for it.
    #[cfg(feature = "tls")]
    Tls(Box<TlsStream<TcpStream>>),
    /// The client's end of `wss://` (`chatloop connect`).
    #[cfg(all(feature = "tls", feature = "client"))]
    TlsClient(Box<TlsStream<TcpStream, UnbufferedClientConnection>>),
}

impl Stream {
    /// The TCP socket underneath.
    pub fn tcp(&mut self) -> &mut TcpStream {
        match self {
            Stream::Plain(s) => s,
            #[cfg(feature = "tls")]
            Stream::Tls(s) => s.get_mut(),
            #[cfg(all(feature = "tls", feature = "client"))]
            Stream::TlsClient(s) => s.get_mut(),
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            #[cfg(feature = "tls")]
            Stream::Tls(s) => s.read(buf),
            #[cfg(all(feature = "tls", feature = "client"))]
            Stream::TlsClient(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            #[cfg(feature = "tls")]
            Stream::Tls(s) => s.write(buf),
            #[cfg(all(feature = "tls", feature = "client"))]
            Stream::TlsClient(s) => s.write(buf),
        }
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write_vectored(bufs),
            #[cfg(feature = "tls")]
            Stream::Tls(s) => s.write_vectored(bufs),
            #[cfg(all(feature = "tls", feature = "client"))]
            Stream::TlsClient(s) => s.write_vectored(bufs),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            #[cfg(feature = "tls")]
            Stream::Tls(s) => s.flush(),
            #[cfg(all(feature = "tls", feature = "client"))]
            Stream::TlsClient(s) => s.flush(),
        }
    }
}

impl Socket for Stream {
    fn shutdown_write(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.shutdown_write(),
            #[cfg(feature = "tls")]
            Stream::Tls(s) => s.shutdown_write(),
            #[cfg(all(feature = "tls", feature = "client"))]
            Stream::TlsClient(s) => s.shutdown_write(),
        }
    }

    fn holds_output(&self) -> bool {
        match self {
            Stream::Plain(_) => false,
            #[cfg(feature = "tls")]
            Stream::Tls(s) => s.holds_output(),
            #[cfg(all(feature = "tls", feature = "client"))]
            Stream::TlsClient(s) => s.holds_output(),
        }
    }

    /// Plain TCP: yes. TLS decrypts whole records, so a short read of plaintext says nothing
    /// about what the kernel still holds: it reads until `WouldBlock`.
    fn short_read_means_empty(&self) -> bool {
        matches!(self, Stream::Plain(_))
    }

    fn last_words(&mut self) {
        match self {
            Stream::Plain(_) => {}
            #[cfg(feature = "tls")]
            Stream::Tls(s) => s.last_words(),
            #[cfg(all(feature = "tls", feature = "client"))]
            Stream::TlsClient(s) => s.last_words(),
        }
    }
}

/// The poller watches the TCP socket; TLS lives above it.
impl Source for Stream {
    fn register(
        &mut self,
        registry: &Registry,
        token: Token,
        interest: Interest,
    ) -> io::Result<()> {
        self.tcp().register(registry, token, interest)
    }

    fn reregister(
        &mut self,
        registry: &Registry,
        token: Token,
        interest: Interest,
    ) -> io::Result<()> {
        self.tcp().reregister(registry, token, interest)
    }

    fn deregister(&mut self, registry: &Registry) -> io::Result<()> {
        self.tcp().deregister(registry)
    }
}
