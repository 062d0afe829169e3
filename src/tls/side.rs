//! What the stream needs from rustls's unbuffered API, kept apart from the stream's own logic:
//! [`Side`] (one trait over the server's and the client's connection, which rustls gives each
//! their own `process_tls_records`), and [`encode`], which grows a buffer to the size rustls
//! asks for when it encodes a handshake record or encrypts data.

use rustls::client::{ClientConnectionData, UnbufferedClientConnection};
use rustls::server::{ServerConnectionData, UnbufferedServerConnection};
use rustls::unbuffered::{EncodeError, EncryptError, UnbufferedConnectionCommon, UnbufferedStatus};
use std::io;
use std::ops::DerefMut;

/// Bytes one TLS 1.3 record adds to its plaintext: header 5, content type 1, tag 16. Only a
/// first guess at the room encryption needs (TLS 1.2 adds 29): rustls asks for more if needed.
const RECORD_OVERHEAD: usize = 5 + 1 + 16;

/// Which end of the TLS connection we are: rustls's unbuffered server or client connection.
/// rustls gives each its own `process_tls_records`; this trait lets one stream drive either.
pub trait Side: DerefMut<Target = UnbufferedConnectionCommon<Self::Data>> {
    /// rustls's per-side connection data.
    type Data;
    /// Runs rustls over `incoming` until the next state the caller must handle.
    fn process<'c, 'i>(
        &'c mut self,
        incoming: &'i mut [u8],
    ) -> UnbufferedStatus<'c, 'i, Self::Data>;
}

impl Side for UnbufferedServerConnection {
    type Data = ServerConnectionData;
    fn process<'c, 'i>(
        &'c mut self,
        incoming: &'i mut [u8],
    ) -> UnbufferedStatus<'c, 'i, Self::Data> {
        self.process_tls_records(incoming)
    }
}

impl Side for UnbufferedClientConnection {
    type Data = ClientConnectionData;
    fn process<'c, 'i>(
        &'c mut self,
        incoming: &'i mut [u8],
    ) -> UnbufferedStatus<'c, 'i, Self::Data> {
        self.process_tls_records(incoming)
    }
}

/// The two "buffer too small" errors rustls has: one for handshake records, one for data.
pub(super) enum EncodeOrEncrypt {
    /// From [`rustls::unbuffered::EncodeTlsData::encode`].
    Encode(EncodeError),
    /// From [`rustls::unbuffered::WriteTraffic::encrypt`].
    Encrypt(EncryptError),
}

impl From<EncodeError> for EncodeOrEncrypt {
    fn from(e: EncodeError) -> Self {
        EncodeOrEncrypt::Encode(e)
    }
}

/// Appends what `produce` writes to `out`: `room` bytes are offered first, then as many as
/// rustls says it needs.
pub(super) fn encode<E: Into<EncodeOrEncrypt>>(
    out: &mut Vec<u8>,
    mut room: usize,
    mut produce: impl FnMut(&mut [u8]) -> Result<usize, E>,
) -> io::Result<()> {
    let used = out.len();
    loop {
        out.resize(used + room, 0);
        match produce(&mut out[used..]).map_err(Into::into) {
            Ok(n) => {
                out.truncate(used + n);
                return Ok(());
            }
            Err(EncodeOrEncrypt::Encode(EncodeError::InsufficientSize(s)))
            | Err(EncodeOrEncrypt::Encrypt(EncryptError::InsufficientSize(s))) => {
                room = s.required_size;
            }
            Err(EncodeOrEncrypt::Encode(e)) => {
                out.truncate(used);
                return Err(invalid(e));
            }
            Err(EncodeOrEncrypt::Encrypt(e)) => {
                out.truncate(used);
                return Err(invalid(e));
            }
        }
    }
}

/// A TLS failure as the I/O error the connection turns into a close reason.
pub(super) fn invalid(e: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e.to_string())
}

/// The bytes `plaintext_len` becomes on the wire, in records of at most 16 KiB.
pub(super) fn ciphertext_len(plaintext_len: usize) -> usize {
    plaintext_len + plaintext_len.div_ceil(1 << 14).max(1) * RECORD_OVERHEAD
}
