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
//!   0        4        8                16
//!   ├ sender ┼ seq    ┼ sent_ns        ┤ zeros … (--size bytes in all)
//! ```

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
}
