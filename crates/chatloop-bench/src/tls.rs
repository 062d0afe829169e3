//! `wss://`: the client side of TLS for every scenario (feature `tls`).
//!
//! A [`Stream`] is what a [`Client`](crate::client::Client) reads and writes: a bare socket
//! for `ws://`, or a socket with a rustls [`ClientConnection`] on top for `wss://`. The client
//! code above it does not change: it writes frames and reads bytes. What TLS adds:
//!
//! - **Reads** decrypt: ciphertext is read from the socket into rustls, records are decrypted,
//!   and the plaintext is copied out. The handshake runs inside the first reads; whatever
//!   rustls must answer (its Finished) is written at once.
//! - **Writes** encrypt: one `write` of a batch of frames becomes as few records as fit, and
//!   the ciphertext goes out in one socket write. Before the handshake is done rustls holds
//!   the upgrade request and sends it right after its Finished.
//! - Ciphertext the kernel did not take waits inside rustls; [`Stream::push`] sends it when
//!   the socket is writable again, and writes say `WouldBlock` meanwhile, so the client's own
//!   `out` stays the one queue that grows.
//!
//! The buffered `ClientConnection` is used here, not the unbuffered API the server uses: a
//! generator's connection may cost a few KiB more, and the code stays short.
//!
//! Trust: the system's roots (`rustls-native-certs`), plus `--ca FILE` for a self-signed
//! server or a test CA.

use mio::net::TcpStream;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore};
use std::io::{self, Read, Write};
use std::path::Path;
use std::sync::Arc;

/// The client configuration every `wss://` connection of a run shares: roots from the system
/// and from `ca` (a PEM file), if given.
pub fn client_config(ca: Option<&Path>) -> Result<Arc<ClientConfig>, String> {
    let mut roots = RootCertStore::empty();
    // A system without a trust store (a minimal container) still works with --ca.
    let (added, _ignored) =
        roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
    if let Some(path) = ca {
        let pem = std::fs::read(path).map_err(|e| format!("--ca {}: {e}", path.display()))?;
        let mut any = false;
        for cert in CertificateDer::pem_slice_iter(&pem) {
            let cert = cert.map_err(|e| format!("--ca {}: {e}", path.display()))?;
            roots
                .add(cert)
                .map_err(|e| format!("--ca {}: {e}", path.display()))?;
            any = true;
        }
        if !any {
            return Err(format!("--ca {}: no PEM certificate in it", path.display()));
        }
    } else if added == 0 {
        return Err("no trusted root certificates on this system: give --ca FILE".to_owned());
    }
    // AES-128-GCM (with SHA-256) before AES-256-GCM (with SHA-384), as browsers order them:
    // ring lists AES-256 first, and servers follow the client's order.
    let mut provider = rustls::crypto::ring::default_provider();
    provider.cipher_suites.sort_by_key(|s| {
        use rustls::CipherSuite::*;
        matches!(
            s.suite(),
            TLS13_AES_256_GCM_SHA384
                | TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384
                | TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384
        )
    });
    let provider = Arc::new(provider);
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// What a client reads and writes: the socket itself, or TLS over it.
pub enum Stream {
    /// `ws://`.
    Plain(TcpStream),
    /// `wss://`: rustls's state and buffers beside the socket.
    Tls(TcpStream, Box<ClientConnection>),
}

impl Stream {
    /// A TLS client for `host` (the URL's host, without the port) over `socket`.
    pub fn tls(socket: TcpStream, config: Arc<ClientConfig>, host: &str) -> io::Result<Stream> {
        let name = ServerName::try_from(host.to_owned())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let conn = ClientConnection::new(config, name).map_err(io::Error::other)?;
        Ok(Stream::Tls(socket, Box::new(conn)))
    }

    /// The socket, for the poller and for the connect's outcome.
    pub fn socket(&mut self) -> &mut TcpStream {
        match self {
            Stream::Plain(s) | Stream::Tls(s, _) => s,
        }
    }

    /// True for `wss://`. A short read then says nothing about the kernel's buffer (rustls
    /// may hold more records), so the client reads on until `WouldBlock`.
    pub fn is_tls(&self) -> bool {
        matches!(self, Stream::Tls(..))
    }

    /// Sends ciphertext rustls holds, until the socket would block.
    pub fn push(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(_) => Ok(()),
            Stream::Tls(socket, conn) => push(socket, conn),
        }
    }
}

/// Writes what rustls has ready until the socket would block (the rest waits in rustls).
fn push(socket: &mut TcpStream, conn: &mut ClientConnection) -> io::Result<()> {
    while conn.wants_write() {
        match conn.write_tls(socket) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

impl Read for Stream {
    /// Plaintext; reads and decrypts records until there is some, or the socket would block.
    /// `Ok(0)` is the end: the server's close_notify, or its FIN.
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let (socket, conn) = match self {
            Stream::Plain(s) => return s.read(buf),
            Stream::Tls(s, c) => (s, c),
        };
        loop {
            match conn.reader().read(buf) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
            if conn.read_tls(socket)? == 0 {
                return Ok(0);
            }
            conn.process_new_packets()
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
            // Handshake answers (and the request rustls held until now) leave at once.
            push(socket, conn)?;
        }
    }
}

impl Write for Stream {
    /// Encrypts `buf` (as few records as fit) and writes the ciphertext with one socket write;
    /// takes nothing while earlier ciphertext still waits.
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let (socket, conn) = match self {
            Stream::Plain(s) => return s.write(buf),
            Stream::Tls(s, c) => (s, c),
        };
        push(socket, conn)?;
        if conn.wants_write() && !conn.is_handshaking() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = conn.writer().write(buf)?;
        if n == 0 && !buf.is_empty() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        push(socket, conn)?;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.push()
    }
}
