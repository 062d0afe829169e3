//! Test doubles shared by the unit tests (`conn_tests.rs`) and the fuzz targets
//! (`fuzz/fuzz_targets/conn_stream.rs`): an in-memory socket and a builder of client frames.
//!
//! Compiled for `cargo test` and with the `testing` feature, which the fuzz crate turns on;
//! never in a normal build. One copy, so the fuzzer drives [`Conn`](crate::conn::Conn) over
//! exactly the socket the unit tests trust.

use crate::conn::Socket;
use std::cell::Cell;
use std::collections::VecDeque;
use std::io::{self, Read, Write};

/// A client's opening handshake for `path` (RFC 6455 §4.1), with the RFC's sample key
/// (§1.3), whose accept value is `s3pPLMBiTxaQ9kYGzzhZRbK+xOo=`.
pub fn upgrade_request(path: &str) -> Vec<u8> {
    format!(
        "GET {path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    )
    .into_bytes()
}

/// A client frame with FIN set (RFC 6455 §5.2), masked as every client frame must be (§5.3),
/// with any payload length (7-bit, 16-bit or 64-bit encoding).
pub fn client_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mask = [0x11, 0x22, 0x33, 0x44];
    let mut f = vec![0x80 | opcode];
    match payload.len() {
        n if n < 126 => f.push(0x80 | n as u8),
        n if n < 65536 => {
            f.push(0x80 | 126);
            f.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            f.push(0x80 | 127);
            f.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    f.extend_from_slice(&mask);
    f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    f
}

/// An in-memory socket. Reads return the queued chunks one per read (a read may take part of
/// one), or, for a [`MockSocket::tcp`] socket, as many queued bytes as fit, as a kernel's
/// receive queue does; then `WouldBlock`, or end-of-stream once `eof` is set. Writes go to `out`, whole, or,
/// for a peer that never reads ([`MockSocket::stuck`]), until its buffer is full, then
/// `WouldBlock` for ever.
#[derive(Debug, Default)]
pub struct MockSocket {
    /// What the peer sent, one chunk per read.
    pub input: VecDeque<Vec<u8>>,
    /// Once `input` is used up, reads say end-of-stream (the peer's FIN) instead of
    /// `WouldBlock`.
    pub eof: bool,
    /// What the connection wrote and the peer has not taken yet ([`MockSocket::take_out`]).
    pub out: Vec<u8>,
    /// Bytes written in all.
    pub written: usize,
    /// For a peer that never reads: how many bytes writes take in all.
    pub write_room: Option<usize>,
    /// The connection sent FIN (`shutdown_write`).
    pub fin: Cell<bool>,
    /// Reads fill the buffer from all queued chunks, so a short read means nothing more was
    /// queued, as on a TCP socket ([`Socket::short_read_means_empty`]).
    pub tcp: bool,
    /// Calls of `read` so far (each one a system call on a real socket).
    pub reads: usize,
}

impl MockSocket {
    /// A peer that reads nothing: writes take `room` bytes in all (its kernel buffers), then
    /// block.
    pub fn stuck(room: usize) -> MockSocket {
        MockSocket {
            write_room: Some(room),
            ..MockSocket::default()
        }
    }

    /// A socket whose reads behave like TCP's: see [`MockSocket::tcp`].
    pub fn tcp() -> MockSocket {
        MockSocket {
            tcp: true,
            ..MockSocket::default()
        }
    }

    /// Queues `bytes` for the connection's next read.
    pub fn push(&mut self, bytes: &[u8]) {
        self.input.push_back(bytes.to_vec());
    }

    /// What the connection wrote since the last call.
    pub fn take_out(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.out)
    }
}

impl Read for MockSocket {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.reads += 1;
        if self.tcp && !self.input.is_empty() {
            let mut n = 0;
            while let Some(mut chunk) = self.input.pop_front() {
                let k = chunk.len().min(buf.len() - n);
                buf[n..n + k].copy_from_slice(&chunk[..k]);
                n += k;
                if k < chunk.len() {
                    self.input.push_front(chunk.split_off(k));
                    break;
                }
            }
            return Ok(n);
        }
        match self.input.pop_front() {
            Some(chunk) => {
                let n = chunk.len().min(buf.len());
                buf[..n].copy_from_slice(&chunk[..n]);
                if n < chunk.len() {
                    self.input.push_front(chunk[n..].to_vec());
                }
                Ok(n)
            }
            None if self.eof => Ok(0),
            None => Err(io::ErrorKind::WouldBlock.into()),
        }
    }
}

impl Write for MockSocket {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = match self.write_room {
            Some(room) => buf.len().min(room.saturating_sub(self.written)),
            None => buf.len(),
        };
        if n == 0 && !buf.is_empty() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        self.out.extend_from_slice(&buf[..n]);
        self.written += n;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Socket for MockSocket {
    fn shutdown_write(&mut self) -> io::Result<()> {
        self.fin.set(true);
        Ok(())
    }

    fn short_read_means_empty(&self) -> bool {
        self.tcp
    }
}
