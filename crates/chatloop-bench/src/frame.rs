//! RFC 6455 framing as a client speaks it: masked frames out, the server's unmasked frames in.
//!
//! Both directions work in place, because the generator moves millions of messages a second
//! through one thread: [`encode`] appends a frame to a connection's output buffer and masks it
//! there; [`parse`] is a push parser over the bytes read so far (like `httparse`): it returns
//! one complete frame whose payload is a slice of those bytes, or `None` when more bytes are
//! needed, which is not an error. What a frame *means* (deliver, answer a Ping, close) is the
//! connection's business, in [`client`](crate::client).
//!
//! RFC 6455 parts: the base framing (§5.2) with 7-, 16- and 64-bit lengths, client masking
//! (§5.3), the rules a client checks on what it receives (§5.1: a server never masks; §5.2:
//! RSV bits only with a negotiated extension, and we offer none).

/// RFC 6455 §5.2 opcodes the client sends or understands.
pub mod opcode {
    /// A continuation of a fragmented message (not supported: see [`client`](crate::client)).
    pub const CONTINUATION: u8 = 0x0;
    /// A UTF-8 text message.
    pub const TEXT: u8 = 0x1;
    /// A binary message: what the generator sends.
    pub const BINARY: u8 = 0x2;
    /// Close.
    pub const CLOSE: u8 = 0x8;
    /// Ping: answered with a Pong carrying the same payload.
    pub const PING: u8 = 0x9;
    /// Pong: ignored.
    pub const PONG: u8 = 0xA;
}

/// Largest frame accepted from the server. An incomplete frame is held in memory until it is
/// whole, so a hostile or broken server must not be able to announce an endless one.
pub const MAX_INCOMING_FRAME: usize = 64 << 20;

/// Appends one final, masked frame (RFC 6455 §5.2–5.3) with `payload` and masking key `mask`
/// to `out`.
#[inline]
pub fn encode(out: &mut Vec<u8>, opcode: u8, payload: &[u8], mask: [u8; 4]) {
    let len = payload.len();
    out.push(0x80 | opcode); // FIN, no RSV bits
    if len < 126 {
        out.push(0x80 | len as u8);
    } else if len <= u16::MAX as usize {
        out.push(0x80 | 126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(0x80 | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    out.extend_from_slice(&mask);
    let start = out.len();
    out.extend_from_slice(payload);
    for (i, b) in out[start..].iter_mut().enumerate() {
        *b ^= mask[i & 3];
    }
}

/// One complete frame at the front of the bytes given to [`parse`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parsed<'a> {
    /// The FIN bit: the last frame of its message.
    pub fin: bool,
    /// The frame's [`opcode`].
    pub opcode: u8,
    /// The payload, unmasked (a server does not mask), as a slice of the input.
    pub payload: &'a [u8],
    /// Bytes the frame took, head and payload: where the next frame begins.
    pub used: usize,
}

/// Parses the frame at the front of `data`: `Ok(None)` if it is not complete yet, an error
/// (the reason, for [`Failure::Protocol`](crate::client::Failure::Protocol)) if the server
/// broke the rules above.
#[inline]
pub fn parse(data: &[u8]) -> Result<Option<Parsed<'_>>, &'static str> {
    let [b0, b1, ..] = *data else {
        return Ok(None);
    };
    if b1 & 0x80 != 0 {
        // §5.1: a server must not mask.
        return Err("masked frame from the server");
    }
    if b0 & 0x70 != 0 {
        // §5.2: RSV bits need a negotiated extension; we offer none.
        return Err("RSV bit set without an extension");
    }
    let (len, head) = match b1 & 0x7f {
        126 if data.len() >= 4 => (u16::from_be_bytes([data[2], data[3]]) as usize, 4),
        127 if data.len() >= 10 => {
            let mut be = [0; 8];
            be.copy_from_slice(&data[2..10]);
            let len = u64::from_be_bytes(be);
            (usize::try_from(len).unwrap_or(usize::MAX), 10)
        }
        126 | 127 => return Ok(None),
        n => (n as usize, 2),
    };
    if len > MAX_INCOMING_FRAME {
        return Err("frame larger than 64 MiB");
    }
    if data.len() - head < len {
        return Ok(None);
    }
    Ok(Some(Parsed {
        fin: b0 & 0x80 != 0,
        opcode: b0 & 0x0f,
        payload: &data[head..head + len],
        used: head + len,
    }))
}

/// Masking keys for client frames (RFC 6455 §5.3 wants them unpredictable to third parties; a
/// xorshift generator seeded from the clock is enough for a load test on loopback and costs a
/// few instructions per frame).
pub struct Masks(u32);

impl Masks {
    /// A generator seeded from the clock.
    pub fn new() -> Masks {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0x9e37_79b9);
        Masks(seed | 1)
    }

    /// The next masking key.
    pub fn next_key(&mut self) -> [u8; 4] {
        // xorshift32 (Marsaglia): never reaches 0 from a non-zero seed.
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.0 = x;
        x.to_ne_bytes()
    }
}

impl Default for Masks {
    fn default() -> Masks {
        Masks::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A masked frame unmasks to its payload, with the 16-bit length form past 125 bytes.
    #[test]
    fn frames_are_masked_and_length_encoded() {
        let payload: Vec<u8> = (0..200u8).collect();
        let mask = [1, 2, 3, 4];
        let mut out = Vec::new();
        encode(&mut out, opcode::BINARY, &payload, mask);
        assert_eq!(out[0], 0x82);
        assert_eq!(out[1], 0x80 | 126);
        assert_eq!(u16::from_be_bytes([out[2], out[3]]), 200);
        assert_eq!(&out[4..8], &mask);
        let unmasked: Vec<u8> = out[8..]
            .iter()
            .enumerate()
            .map(|(i, b)| b ^ mask[i & 3])
            .collect();
        assert_eq!(unmasked, payload);
    }

    /// A frame cut anywhere is `None` until its last byte arrives, in all three length forms.
    #[test]
    fn partial_frames_need_more_bytes() {
        for len in [5usize, 300, 70_000] {
            let mut wire = match len {
                0..=125 => vec![0x82, len as u8],
                126..=65_535 => [&[0x82, 126][..], &(len as u16).to_be_bytes()].concat(),
                _ => [&[0x82, 127][..], &(len as u64).to_be_bytes()].concat(),
            };
            let head = wire.len();
            wire.resize(head + len, 7);
            for cut in [0, 1, head - 1, head, wire.len() - 1] {
                assert_eq!(parse(&wire[..cut]), Ok(None), "{len} bytes cut at {cut}");
            }
            let whole = parse(&wire).unwrap().expect("complete");
            assert_eq!((whole.fin, whole.opcode), (true, opcode::BINARY));
            assert_eq!((whole.payload.len(), whole.used), (len, wire.len()));
        }
    }

    /// A masked server frame, an RSV bit, or a frame announcing more than the cap is refused.
    #[test]
    fn masked_rsv_or_endless_server_frames_are_refused() {
        assert!(parse(&[0x82, 0x81, 1, 2, 3, 4, 5]).is_err());
        assert!(parse(&[0xC2, 0x01, 0]).is_err());
        assert!(parse(&[0x82, 127, 0x7f, 0, 0, 0, 0, 0, 0, 0]).is_err());
    }
}
