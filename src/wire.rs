//! Where tungstenite meets our buffers: the [`Wire`] it reads and writes, the settings it runs
//! with, and [`encode`], which frames a message once for all its recipients.
//!
//! tungstenite's [`WebSocketContext`](tungstenite::protocol::WebSocketContext) owns RFC 6455's
//! rules (framing, unmasking, reassembly, UTF-8, the closing handshake) but wants a stream to
//! read from and write to. We never give it the socket: it gets a [`Wire`], whose reads come
//! from bytes the connection already took off the socket and whose writes go into the
//! connection's [`Outbox`]. So tungstenite can neither block nor buffer on its own, and every
//! byte out, ours or its own (Pong, Close), keeps its place in the one queue.
//!
//! ```text
//!   socket ──read──▶ Scratch ──Wire::read──▶ tungstenite ──Message──▶ encode ──▶ outboxes
//!                                               └──Wire::write (Pong, Close)──▶ own outbox
//! ```

use crate::config::Config;
use crate::outbox::Outbox;
use bytes::Bytes;
use log::trace;
use std::io::{self, Read, Write};
use tungstenite::protocol::frame::coding::{Data, OpCode};
use tungstenite::protocol::frame::Frame;
use tungstenite::protocol::WebSocketConfig;
use tungstenite::Message;

/// How many bytes tungstenite pulls from the scratch buffer per call, and the read buffer it
/// keeps per connection. Small, because it is per connection; copying from the shared scratch
/// buffer through it costs a `memcpy`, not a syscall.
pub const READ_WINDOW: usize = 256;

/// Largest frame tungstenite itself writes: control frames only (pong, close, ping), at most
/// 125 bytes of payload plus header (RFC 6455 §5.5). Data frames bypass it, encoded once.
pub const MAX_CONTROL_FRAME: usize = 256;

/// Worst-case header of a frame we send (RFC 6455 §5.2: 2 + 8 bytes of length, no mask from a
/// server). An outbox must hold `--max-message-bytes` plus this (see `Config::validate`).
pub const MAX_FRAME_HEADER: usize = 10;

/// The WebSocket settings for one connection, from the server's config.
pub fn ws_config(cfg: &Config) -> WebSocketConfig {
    WebSocketConfig::default()
        // Per-connection read buffer: small; see READ_WINDOW.
        .read_buffer_size(READ_WINDOW)
        // tungstenite writes straight into the Wire (our Outbox); it buffers nothing itself.
        .write_buffer_size(0)
        .max_write_buffer_size(MAX_CONTROL_FRAME)
        .max_message_size(Some(cfg.max_message_bytes))
        .max_frame_size(Some(cfg.max_message_bytes))
}

/// Encodes a text or binary message as one unmasked server frame (RFC 6455 §5.2: servers never
/// mask), in a buffer of its own. The server itself frames into shared buffers
/// ([`encode_into`]: a room's batch, an echo at the end of its outbox); this is for a caller
/// with one frame to hand to [`Conn::send`](crate::conn::Conn::send): tests and the fuzz target.
pub fn encode(msg: &Message) -> Bytes {
    let mut buf = Vec::with_capacity(msg.len() + MAX_FRAME_HEADER);
    encode_into(msg, &mut buf);
    Bytes::from(buf)
}

/// Appends `msg` to `buf` as one unmasked server frame: header, then payload. This is the one
/// copy a relayed message's payload makes; recipients share the buffer (`hub/batch.rs`).
pub fn encode_into(msg: &Message, buf: &mut Vec<u8>) {
    let (opcode, payload) = match msg {
        Message::Text(t) => (Data::Text, Bytes::from(t.clone())),
        Message::Binary(b) => (Data::Binary, b.clone()),
        _ => unreachable!("only data messages are relayed"),
    };
    buf.reserve(payload.len() + MAX_FRAME_HEADER);
    // Writing into a Vec cannot fail.
    Frame::message(payload, OpCode::Data(opcode), true)
        .format(buf)
        .expect("writing to a Vec");
}

/// The length of `msg` framed by [`encode_into`]: a 2-byte header, plus 2 or 8 bytes of
/// extended length for payloads of 126 bytes and more, or 65,536 and more (RFC 6455 §5.2).
pub fn framed_len(msg: &Message) -> usize {
    let len = msg.len();
    let extended = match len {
        0..=125 => 0,
        126..=0xffff => 2,
        _ => 8,
    };
    2 + extended + len
}

/// The stream tungstenite sees: reads come from bytes the server already took off the socket,
/// writes go to the outbox. See the module docs.
pub struct Wire<'a> {
    /// Unconsumed input from the last socket read.
    pub input: &'a [u8],
    /// The peer sent FIN: report end-of-stream once `input` is used up.
    pub eof: bool,
    /// Where writes go.
    pub outbox: &'a mut Outbox,
}

impl<'a> Wire<'a> {
    /// A wire with nothing to read, for writing a Close or a Ping.
    pub fn out(outbox: &'a mut Outbox) -> Wire<'a> {
        Wire {
            input: &[],
            eof: false,
            outbox,
        }
    }
}

impl Read for Wire<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.input.is_empty() {
            return if self.eof {
                Ok(0)
            } else {
                Err(io::ErrorKind::WouldBlock.into())
            };
        }
        let n = self.input.len().min(buf.len());
        buf[..n].copy_from_slice(&self.input[..n]);
        self.input = &self.input[n..];
        Ok(n)
    }
}

impl Write for Wire<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        trace!("control frame out: {} bytes", buf.len());
        self.outbox.append_unchecked(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The length `framed_len` predicts is the length `encode` writes, at every header size.
    #[test]
    fn framed_len_is_what_encode_writes() {
        for len in [0, 1, 125, 126, 0xffff, 0x10000] {
            let msg = Message::binary(vec![0u8; len]);
            assert_eq!(framed_len(&msg), encode(&msg).len(), "payload of {len}");
        }
    }
}
