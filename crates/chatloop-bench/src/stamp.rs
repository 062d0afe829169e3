//! The 16 bytes at the front of every message the generator sends: who sent it, its number,
//! and when.
//!
//! The stamp is what makes a delivery checkable without any help from the server: the sender
//! id and sequence number tell loss and order per sender, and the send time gives latency. The
//! time is nanoseconds since the run began on the generator's own monotonic clock; the same
//! process sends and receives, so latency needs no clock sync. The rest of a message, up to
//! `--size`, is zeros. Little-endian, because every machine this runs on is.
//!
//! ```text
//!   binary:  0        4        8                16
//!            ├ sender ┼ seq    ┼ sent_ns        ┤ zeros … (--size bytes in all)
//!   text:    0        8        16               32
//!            ├ sender ┼ seq    ┼ sent_ns        ┤ '.' …   (the same fields in hex)
//! ```
//!
//! With `--text` the stamp is written in lowercase hexadecimal, most significant digit first,
//! and the message is sent as a Text message: some servers relay only text (Qt's simplechat
//! example), and a Text message must be valid UTF-8 (RFC 6455 §5.6), which raw bytes are not.

use crate::frame::opcode;

/// How messages travel: binary with a binary stamp (the default), or text with a hex stamp
/// (`--text`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MessageKind {
    /// Binary messages (RFC 6455 opcode 0x2), the stamp in 16 raw bytes.
    #[default]
    Binary,
    /// Text messages (opcode 0x1), the stamp in 32 hex digits, padded with '.'.
    Text,
}

impl MessageKind {
    /// The frame opcode (RFC 6455 §5.2).
    pub fn opcode(self) -> u8 {
        match self {
            MessageKind::Binary => opcode::BINARY,
            MessageKind::Text => opcode::TEXT,
        }
    }

    /// Bytes of the stamp: the smallest allowed `--size`.
    pub fn stamp_len(self) -> usize {
        match self {
            MessageKind::Binary => Stamp::LEN,
            MessageKind::Text => Stamp::TEXT_LEN,
        }
    }

    /// A message of `size` bytes with room for a stamp: zeros, or '.' for text.
    pub fn template(self, size: usize) -> Vec<u8> {
        match self {
            MessageKind::Binary => vec![0; size],
            MessageKind::Text => vec![b'.'; size],
        }
    }

    /// Writes `stamp` at the front of `buf`.
    #[inline]
    pub fn write(self, stamp: &Stamp, buf: &mut [u8]) {
        match self {
            MessageKind::Binary => stamp.write(buf),
            MessageKind::Text => stamp.write_text(buf),
        }
    }

    /// Reads the stamp at the front of a message.
    #[inline]
    pub fn read(self, buf: &[u8]) -> Option<Stamp> {
        match self {
            MessageKind::Binary => Stamp::read(buf),
            MessageKind::Text => Stamp::read_text(buf),
        }
    }
}

/// The 16 bytes at the front of every message: who sent it, its number, and when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    /// The sender's tag.
    pub sender: u32,
    /// The sender's sequence number, from 0.
    pub seq: u32,
    /// Send time: nanoseconds since the run began.
    pub sent_ns: u64,
}

impl Stamp {
    /// Bytes of a stamp: the smallest allowed `--size`.
    pub const LEN: usize = 16;

    /// Writes the stamp at the front of `buf` (little-endian).
    pub fn write(&self, buf: &mut [u8]) {
        buf[0..4].copy_from_slice(&self.sender.to_le_bytes());
        buf[4..8].copy_from_slice(&self.seq.to_le_bytes());
        buf[8..16].copy_from_slice(&self.sent_ns.to_le_bytes());
    }

    /// Characters of a text stamp: the smallest allowed `--size` with `--text`.
    pub const TEXT_LEN: usize = 32;

    /// Writes the stamp at the front of `buf` as 32 hex digits.
    pub fn write_text(&self, buf: &mut [u8]) {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let fields = [
            (self.sender as u64, 8),
            (self.seq as u64, 8),
            (self.sent_ns, 16),
        ];
        let mut at = 0;
        for (value, digits) in fields {
            for i in (0..digits).rev() {
                buf[at] = HEX[(value >> (4 * i)) as usize & 0xf];
                at += 1;
            }
        }
    }

    /// Reads a text stamp at the front of a message; `None` if it is too short or not hex.
    #[inline]
    pub fn read_text(buf: &[u8]) -> Option<Stamp> {
        let hex = |digits: &[u8]| {
            digits.iter().try_fold(0u64, |acc, &c| {
                let d = (c as char).to_digit(16)?;
                Some(acc << 4 | d as u64)
            })
        };
        let b = buf.get(..Stamp::TEXT_LEN)?;
        Some(Stamp {
            sender: hex(&b[0..8])? as u32,
            seq: hex(&b[8..16])? as u32,
            sent_ns: hex(&b[16..32])?,
        })
    }

    /// Reads the stamp at the front of a message; `None` if it is too short.
    #[inline]
    pub fn read(buf: &[u8]) -> Option<Stamp> {
        let b: &[u8; 16] = buf.get(..16)?.try_into().ok()?;
        let [s0, s1, s2, s3, q0, q1, q2, q3, t @ ..] = *b;
        Some(Stamp {
            sender: u32::from_le_bytes([s0, s1, s2, s3]),
            seq: u32::from_le_bytes([q0, q1, q2, q3]),
            sent_ns: u64::from_le_bytes(t),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stamp reads back as written, and a message too short for one has none.
    #[test]
    fn stamp_round_trips() {
        let s = Stamp {
            sender: 7,
            seq: 123_456,
            sent_ns: 9_876_543_210,
        };
        let mut buf = [0u8; 20];
        s.write(&mut buf);
        assert_eq!(Stamp::read(&buf), Some(s));
        assert_eq!(Stamp::read(&buf[..15]), None);
    }

    /// A text stamp reads back as written, is plain ASCII, and garbage is not a stamp.
    #[test]
    fn text_stamp_round_trips_as_hex() {
        let s = Stamp {
            sender: 0xab,
            seq: u32::MAX,
            sent_ns: 9_876_543_210,
        };
        let mut buf = [b'.'; 40];
        s.write_text(&mut buf);
        assert_eq!(&buf[..16], b"000000abffffffff");
        assert!(buf.is_ascii());
        assert_eq!(Stamp::read_text(&buf), Some(s));
        assert_eq!(Stamp::read_text(&buf[..31]), None);
        buf[3] = b'g';
        assert_eq!(Stamp::read_text(&buf), None);
    }
}
