//! [`TlsStream`]: a socket that speaks TLS, for a connection that reads and writes plaintext.
//! The server wraps every accepted socket in one; `chatloop connect wss://` uses the client
//! side of the same type.
//!
//! It drives rustls's *unbuffered* API ([`UnbufferedServerConnection`],
//! [`UnbufferedClientConnection`]): rustls keeps the protocol state and the keys, and we keep
//! the bytes. That is what makes an idle TLS connection cheap. rustls's buffered
//! `ServerConnection` keeps a 4 KiB receive buffer for the life of the connection; here every
//! buffer is a plain `Vec` released the moment it is empty, so between messages a connection
//! holds only rustls's state: a whole chatloop connection over TLS idles at 4.4–5 KiB
//! (measured in docs/tls.md).
//!
//! ```text
//!   socket ──read──▶ INPUT (per thread) ─ what is not used yet ─▶ incoming (usually nothing)
//!                       │ process_tls_records: handshake messages, or decrypted records
//!                       ▼
//!   Conn ◀──read── plaintext (the caller's buffer; what does not fit waits in `plain`)
//!
//!   Conn ──write_vectored(frames)──▶ OUTPUT (per thread): gathered, encrypted as few records
//!                                        │                as fit
//!   socket ◀──one write──────────────────┘ what the socket does not take ─▶ outgoing
//! ```
//!
//! **Buffers.** The loop is one thread, so like the server's plaintext `Scratch` the two
//! per-thread buffers (`INPUT`, `OUTPUT`) are the only large ones; a stream copies into its
//! own `Vec`s only what must outlive the call, and frees them once empty. No allocation,
//! zeroing or copying per message beyond the encryption itself.
//!
//! **Writes.** The outbox hands over many frames in one `write_vectored`; they are gathered and
//! encrypted into as few records as fit (one record carries up to 16 KiB, RFC 8446 §5.1), then
//! written with one `write`: one system call per connection per call, as for a bare socket.
//! Ciphertext the socket did not take waits in `outgoing`, and while it waits, further writes
//! say `WouldBlock`, so the outbox stays the one queue that grows (and is bounded). The
//! connection asks `Socket::holds_output` so it keeps WRITABLE interest while ciphertext
//! waits, and calls `flush` to push it.
//!
//! **Errors.** A peer that does not speak TLS (plain HTTP on the TLS port) fails the
//! handshake: the read returns `InvalidData`, the connection closes, and the peer gets a TLS
//! alert if rustls queued one. A ClientHello that never completes yields nothing but
//! `WouldBlock`, so the connection's request timeout ends it like any slow request.

use super::side::{ciphertext_len, encode, invalid, EncodeOrEncrypt, Side};
use crate::conn::Socket;
use rustls::client::UnbufferedClientConnection;
use rustls::pki_types::ServerName;
use rustls::server::UnbufferedServerConnection;
use rustls::unbuffered::{ConnectionState, UnbufferedStatus};
use rustls::{ClientConfig, ServerConfig};
use std::cell::RefCell;
use std::io::{self, IoSlice, Read, Write};
use std::sync::Arc;

/// The largest TLS record we read whole: 16 KiB of plaintext, plus the record header, the
/// content type byte and the AEAD tag (RFC 8446 §5.2 allows up to 2^14 + 256 of ciphertext).
const MAX_RECORD_BYTES: usize = 5 + (1 << 14) + 256;

/// Ciphertext we hold while a record or handshake message is incomplete. rustls joins
/// handshake messages of up to 64 KiB spread over several records; past this the peer is
/// sending more than any handshake needs.
const MAX_INCOMING_BYTES: usize = 0xffff + MAX_RECORD_BYTES;

/// Plaintext encrypted per `write_vectored`: four full records. Bounds the ciphertext one
/// connection can hold beyond its outbox.
const MAX_PLAIN_PER_WRITE: usize = 4 << 14;

/// First guess at the room a handshake record needs (most fit; a certificate chain may ask
/// for more, and gets it).
const HANDSHAKE_GUESS: usize = 1024;

thread_local! {
    /// Where every TLS stream of this thread reads ciphertext first. The server's loop is one
    /// thread, so this is one buffer for the whole server, as its plaintext `Scratch` is; a
    /// stream keeps (copies into its own `incoming`) only what it could not use yet, usually
    /// nothing. Room for the largest handshake message rustls joins, plus one record.
    static INPUT: RefCell<Vec<u8>> = RefCell::new(vec![0; MAX_INCOMING_BYTES]);

    /// Where every TLS stream of this thread gathers and encrypts what it writes, for the same
    /// reason: a stream keeps only the ciphertext the socket did not take.
    static OUTPUT: RefCell<Output> = RefCell::new(Output::default());
}

/// The per-thread write buffers ([`OUTPUT`]).
#[derive(Default)]
struct Output {
    /// Frames gathered into one run of plaintext.
    plain: Vec<u8>,
    /// The same, encrypted: what one socket write sends.
    cipher: Vec<u8>,
}

/// A TLS connection over the socket `S`, read and written as plaintext: the server's end
/// unless `C` says otherwise.
pub struct TlsStream<S, C = UnbufferedServerConnection> {
    /// The socket underneath (a `mio::net::TcpStream`, a pipe in tests).
    socket: S,
    /// rustls's protocol state and keys.
    tls: C,
    /// Ciphertext read but not yet consumed: at most a partial record between turns.
    incoming: Vec<u8>,
    /// Ciphertext produced but not yet taken by the socket.
    outgoing: Vec<u8>,
    /// Decrypted bytes that did not fit the caller's buffer.
    plain: Vec<u8>,
    /// The peer sent close_notify or closed TCP: reads return end of stream once `plain` is
    /// drained.
    peer_closed: bool,
}

/// What one pass over the received ciphertext gave.
enum Progress {
    /// This many plaintext bytes went into the caller's buffer (perhaps more into `plain`).
    Read(usize),
    /// Nothing to hand over until more ciphertext arrives.
    NeedInput,
    /// The peer closed the TLS session (close_notify).
    Closed,
}

impl<S> TlsStream<S> {
    /// The server's end over a freshly accepted socket; nothing is read or sent yet.
    pub fn server(socket: S, config: Arc<ServerConfig>) -> TlsStream<S> {
        // Fails only for a config that can make no server connection at all (no cipher suite
        // for any version): `ServerTls` builds it from the provider's defaults.
        let tls = UnbufferedServerConnection::new(config).expect("server config is usable");
        TlsStream::with(socket, tls)
    }
}

impl<S> TlsStream<S, UnbufferedClientConnection> {
    /// The client's end, for the server `name` (its certificate must name it), over a
    /// connected socket. [`TlsStream::handshake`] then runs the handshake.
    pub fn client(
        socket: S,
        config: Arc<ClientConfig>,
        name: ServerName<'static>,
    ) -> Result<Self, rustls::Error> {
        Ok(TlsStream::with(
            socket,
            UnbufferedClientConnection::new(config, name)?,
        ))
    }
}

impl<S, C: Side> TlsStream<S, C> {
    fn with(socket: S, tls: C) -> Self {
        TlsStream {
            socket,
            tls,
            incoming: Vec::new(),
            outgoing: Vec::new(),
            plain: Vec::new(),
            peer_closed: false,
        }
    }

    /// The socket underneath, for registration with the poller.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.socket
    }

    /// The socket underneath.
    pub fn get_ref(&self) -> &S {
        &self.socket
    }

    /// The handshake is done: application data may flow.
    pub fn is_established(&self) -> bool {
        !self.tls.is_handshaking()
    }

    /// Bytes this stream holds in its own buffers (capacity, not length): zero when idle.
    pub fn buffered_capacity(&self) -> usize {
        self.incoming.capacity() + self.outgoing.capacity() + self.plain.capacity()
    }
}

impl<S: Read + Write, C: Side> TlsStream<S, C> {
    /// Drives the handshake as far as the socket allows, for a caller that has nothing to
    /// write before it is done (the client: `chatloop connect`). `Ok(true)` once it is done;
    /// `Ok(false)`: wait for readiness and call again.
    pub fn handshake(&mut self) -> io::Result<bool> {
        while self.tls.is_handshaking() {
            // Nothing to read into: the handshake is all that can happen.
            match self.read(&mut []) {
                Ok(_) if self.peer_closed => return Err(io::ErrorKind::UnexpectedEof.into()),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e),
            }
        }
        Ok(!self.tls.is_handshaking())
    }

    /// Runs rustls over `incoming` until it needs more input or `buf` is full, decrypting as
    /// many records as there are (a sender's burst is one read, not one read per record).
    /// Handshake messages it produces go to `outgoing` and are written out at once. Returns
    /// what it got and how many bytes of `incoming` are used up.
    fn process(&mut self, incoming: &mut [u8], buf: &mut [u8]) -> io::Result<(Progress, usize)> {
        let (mut n, mut used) = (0, 0);
        loop {
            let UnbufferedStatus { discard, state } = self.tls.process(&mut incoming[used..]);
            let state = match state {
                Ok(state) => state,
                Err(e) => {
                    self.send_alert();
                    return Err(io::Error::new(io::ErrorKind::InvalidData, e));
                }
            };
            let progress = match state {
                ConnectionState::ReadTraffic(mut records) => {
                    while let Some(record) = records.next_record() {
                        let payload = record.map_err(invalid)?.payload;
                        let fits = payload.len().min(buf.len() - n);
                        buf[n..n + fits].copy_from_slice(&payload[..fits]);
                        n += fits;
                        self.plain.extend_from_slice(&payload[fits..]);
                    }
                    (n == buf.len()).then_some(Progress::Read(n))
                }
                ConnectionState::EncodeTlsData(mut data) => {
                    encode(&mut self.outgoing, HANDSHAKE_GUESS, |out| data.encode(out))?;
                    None
                }
                ConnectionState::TransmitTlsData(transmit) => {
                    // Our buffer holds it until the socket takes it: rustls may move on.
                    transmit.done();
                    self.write_outgoing()?;
                    None
                }
                ConnectionState::BlockedHandshake | ConnectionState::WriteTraffic(_) => {
                    Some(if n > 0 {
                        Progress::Read(n)
                    } else {
                        Progress::NeedInput
                    })
                }
                ConnectionState::PeerClosed | ConnectionState::Closed => Some(if n > 0 {
                    Progress::Read(n)
                } else {
                    Progress::Closed
                }),
                // Early data is off (`max_early_data_size` 0); any other state is from a newer
                // rustls and unknown to us.
                _ => return Err(invalid("unexpected TLS state")),
            };
            // rustls is done with these bytes: the next call starts after them.
            used += discard;
            if let Some(progress) = progress {
                return Ok((progress, used));
            }
        }
    }

    /// Reads and decrypts through `input`, the thread's shared ciphertext buffer: the partial
    /// record this stream held goes in front, then one socket read after another until `buf`
    /// has plaintext or the socket would block. Whatever rustls did not use (a partial
    /// record, or records beyond a full `buf`) is copied back into `incoming`.
    fn read_via(&mut self, input: &mut [u8], buf: &mut [u8]) -> io::Result<usize> {
        let held = std::mem::take(&mut self.incoming);
        input[..held.len()].copy_from_slice(&held);
        let (mut start, mut end) = (0, held.len());
        let result = loop {
            let (progress, used) = match self.process(&mut input[start..end], buf) {
                Ok(done) => done,
                Err(e) => break Err(e),
            };
            start += used;
            match progress {
                Progress::Read(0) => {}
                Progress::Read(n) => break Ok(n),
                Progress::Closed => {
                    self.peer_closed = true;
                    break Ok(0);
                }
                // Nothing used, and no room for more: not a record rustls would take.
                Progress::NeedInput if start == 0 && end == input.len() => {
                    break Err(invalid("TLS handshake message too large"))
                }
                Progress::NeedInput => {
                    // The unused tail moves to the front, so a record can always be read whole.
                    input.copy_within(start..end, 0);
                    (start, end) = (0, end - start);
                    match self.socket.read(&mut input[end..]) {
                        Ok(0) => {
                            self.peer_closed = true;
                            break Ok(0);
                        }
                        Ok(n) => end += n,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => break Err(e),
                    }
                }
            }
        };
        // Usually nothing is left, and an empty slice allocates nothing.
        self.incoming = input[start..end].to_vec();
        result
    }

    /// Writes `outgoing` until the socket would block. `WouldBlock` is not an error here: the
    /// rest waits for the next WRITABLE event.
    fn write_outgoing(&mut self) -> io::Result<()> {
        while !self.outgoing.is_empty() {
            match self.socket.write(&self.outgoing) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    self.outgoing.drain(..n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        // Idle connections hold no buffer: the next write allocates afresh.
        self.outgoing = Vec::new();
        Ok(())
    }

    /// After a failed handshake, sends the alert rustls queued (if any), best effort: the
    /// connection closes either way.
    fn send_alert(&mut self) {
        if let Ok(ConnectionState::EncodeTlsData(mut data)) = self.tls.process(&mut []).state {
            if encode(&mut self.outgoing, HANDSHAKE_GUESS, |out| data.encode(out)).is_ok() {
                let _ = self.write_outgoing();
            }
        }
    }

    /// Gathers `bufs` (up to [`MAX_PLAIN_PER_WRITE`]) in `out`, encrypts them and writes the
    /// ciphertext with one `write`; what the socket does not take waits in `outgoing`.
    /// Returns the plaintext bytes taken.
    fn write_via(&mut self, out: &mut Output, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        out.plain.clear();
        for b in bufs {
            let room = MAX_PLAIN_PER_WRITE - out.plain.len();
            out.plain.extend_from_slice(&b[..b.len().min(room)]);
            if out.plain.len() == MAX_PLAIN_PER_WRITE {
                break;
            }
        }
        if out.plain.is_empty() {
            return Ok(0);
        }
        out.cipher.clear();
        self.encrypt(&out.plain, &mut out.cipher)?;
        let mut written = 0;
        while written < out.cipher.len() {
            match self.socket.write(&out.cipher[written..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => written += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.outgoing.extend_from_slice(&out.cipher[written..]);
        Ok(out.plain.len())
    }

    /// Encrypts `plaintext` into `out` (handshake done, so rustls is in WriteTraffic), after
    /// any handshake record rustls still has to send.
    fn encrypt(&mut self, plaintext: &[u8], out: &mut Vec<u8>) -> io::Result<()> {
        loop {
            match self.tls.process(&mut []).state.map_err(invalid)? {
                ConnectionState::WriteTraffic(mut traffic) => {
                    let room = ciphertext_len(plaintext.len());
                    return encode(out, room, |to| {
                        traffic
                            .encrypt(plaintext, to)
                            .map_err(EncodeOrEncrypt::Encrypt)
                    });
                }
                // A KeyUpdate answer or a session ticket rustls still has to send.
                ConnectionState::EncodeTlsData(mut data) => {
                    encode(out, HANDSHAKE_GUESS, |to| data.encode(to))?
                }
                ConnectionState::TransmitTlsData(transmit) => transmit.done(),
                _ => return Err(io::ErrorKind::NotConnected.into()),
            }
        }
    }
}

impl<S: Read + Write, C: Side> Read for TlsStream<S, C> {
    /// Plaintext, decrypted from what the socket holds; the handshake runs inside the first
    /// calls. `WouldBlock` means "nothing more for now" as on a bare socket; `Ok(0)` is the
    /// end of the stream (close_notify, or TCP FIN).
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if !self.plain.is_empty() {
            let n = self.plain.len().min(buf.len());
            buf[..n].copy_from_slice(&self.plain[..n]);
            self.plain.drain(..n);
            if self.plain.is_empty() {
                self.plain = Vec::new();
            }
            return Ok(n);
        }
        if self.peer_closed {
            return Ok(0);
        }
        INPUT.with_borrow_mut(|input| self.read_via(input, buf))
    }
}

impl<S: Read + Write, C: Side> Write for TlsStream<S, C> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_vectored(&[IoSlice::new(buf)])
    }

    /// Encrypts the slices, gathered into as few records as fit, and writes the ciphertext
    /// with one `write`. Takes nothing (`WouldBlock`) while earlier ciphertext still waits.
    /// Before the handshake is done there is no key to encrypt with: `NotConnected`.
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.write_outgoing()?;
        if !self.outgoing.is_empty() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        if self.tls.is_handshaking() {
            return Err(io::ErrorKind::NotConnected.into());
        }
        // Gathered: many small frames become one record, not one record (and one AEAD pass,
        // and 22 bytes of overhead) each.
        OUTPUT.with_borrow_mut(|out| self.write_via(out, bufs))
    }

    /// Writes waiting ciphertext; `WouldBlock` while some is still left.
    fn flush(&mut self) -> io::Result<()> {
        self.write_outgoing()?;
        if self.outgoing.is_empty() {
            Ok(())
        } else {
            Err(io::ErrorKind::WouldBlock.into())
        }
    }
}

impl<S: Socket, C: Side> Socket for TlsStream<S, C> {
    /// Sends close_notify (RFC 8446 §6.1: "no more data from us"), then FIN. The alert is
    /// best effort: a peer that stopped reading gets the FIN either way.
    fn shutdown_write(&mut self) -> io::Result<()> {
        let _ = self.send_close_notify();
        self.socket.shutdown_write()
    }

    fn holds_output(&self) -> bool {
        !self.outgoing.is_empty()
    }

    fn last_words(&mut self) {
        let _ = self.send_close_notify();
    }
}

impl<S: Read + Write, C: Side> TlsStream<S, C> {
    /// Encrypts and writes close_notify; nothing before the handshake is done.
    fn send_close_notify(&mut self) -> io::Result<()> {
        if self.tls.is_handshaking() {
            return Ok(());
        }
        if let ConnectionState::WriteTraffic(mut traffic) =
            self.tls.process(&mut []).state.map_err(invalid)?
        {
            encode(&mut self.outgoing, ciphertext_len(2), |out| {
                traffic
                    .queue_close_notify(out)
                    .map_err(EncodeOrEncrypt::Encrypt)
            })?;
        }
        self.write_outgoing()
    }
}
