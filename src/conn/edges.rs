//! Giving back the memory a big message took: frame edges, followed just far enough to know
//! when tungstenite holds nothing, so its grown read buffer can be dropped.
//!
//! tungstenite reads a frame into one per-connection buffer, and reserves room for the whole
//! frame as soon as its header says how long it is (`FrameCodec::read_frame`). Nothing shrinks
//! that buffer afterwards, and tungstenite 0.30's public API has no way to: a connection that
//! once sent a 60 KB message would hold 60 KiB for the rest of its life, 10,000 of them 600 MB.
//!
//! What the API does offer is a fresh [`WebSocketContext`] (`WebSocketContext::new`). Swapping
//! it in drops the old one's buffer, and loses everything else it holds, so the connection does
//! it only when there is nothing else to lose:
//!
//! | tungstenite holds | why it is empty when we swap |
//! |---|---|
//! | its state, `Active` | we swap only in `Open`; a Close sent or received leaves `Open` within the same call |
//! | a partial frame in its read buffer | [`Edges`] says the bytes we fed it end on a frame boundary, and it said `WouldBlock` (it parses every whole frame it holds before asking for more) |
//! | a fragmented message being reassembled | [`Edges`] says the last data frame had FIN (RFC 6455 §5.4) |
//! | a Pong or Close to write | it writes them at the start of every read, and writes to our `Wire` never block, so after a read that said `WouldBlock` there is none |
//! | its settings | rebuilt from the same `ws_config` |
//!
//! So the swap happens after a read that used up all our input, between messages, and only if
//! a frame bigger than the buffer's usual size (`READ_WINDOW`) came in since the last swap:
//! a connection that sends small messages never pays for it.
//!
//! [`Edges`] reads the frame headers the peer sent (RFC 6455 §5.2), a few bytes each, and skips
//! payloads by their length; it does not check them, since tungstenite does, and any error it
//! finds ends `Open` anyway.
//!
//! [`WebSocketContext`]: tungstenite::protocol::WebSocketContext

use crate::wire::READ_WINDOW;

/// Where a client's byte stream stands, as far as giving tungstenite's buffer back needs to
/// know: inside a frame's header or payload, inside a fragmented message, and whether a frame
/// since the last swap was bigger than [`READ_WINDOW`].
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Edges {
    /// Inside a frame, or at its boundary.
    at: At,
    /// A data frame without FIN came last: a message is being reassembled (RFC 6455 §5.4).
    in_message: bool,
    /// A frame longer than [`READ_WINDOW`] arrived since [`Edges::swapped`]: tungstenite's
    /// buffer grew to hold it.
    grown: bool,
}

/// A position in the stream of frames.
#[derive(Debug, Clone, Copy)]
enum At {
    /// In a header: the first `have` bytes of it so far (a header is at most 14 bytes:
    /// 2, then 0, 2 or 8 of length, then 4 of mask). `have == 0`: at a frame boundary.
    Header { head: [u8; 14], have: u8 },
    /// In a payload, with `left` bytes of it to come.
    Payload { left: u64 },
}

impl Default for At {
    fn default() -> At {
        At::BOUNDARY
    }
}

impl At {
    /// Between two frames.
    const BOUNDARY: At = At::Header {
        head: [0; 14],
        have: 0,
    };
}

/// A frame header once whole: the payload length, FIN, and whether it is a data frame
/// (opcodes 0x0–0x7; control frames are 0x8–0xF). `None` while bytes are missing.
fn parse(head: &[u8]) -> Option<(u64, bool, bool)> {
    let [first, second, ..] = *head else {
        return None;
    };
    // RFC 6455 §5.2: 7 bits of length; 126 means 16 more bits follow, 127 means 64.
    let extra = match second & 0x7f {
        126 => 2,
        127 => 8,
        _ => 0,
    };
    let mask = if second & 0x80 != 0 { 4 } else { 0 };
    if head.len() < 2 + extra + mask {
        return None;
    }
    let len = match extra {
        0 => u64::from(second & 0x7f),
        n => head[2..2 + n]
            .iter()
            .fold(0, |len, &b| (len << 8) | u64::from(b)),
    };
    Some((len, first & 0x80 != 0, first & 0x08 == 0))
}

impl Edges {
    /// Follows `bytes`, the next ones the peer sent (and we fed tungstenite).
    pub(super) fn advance(&mut self, mut bytes: &[u8]) {
        while let Some(&byte) = bytes.first() {
            match &mut self.at {
                At::Payload { left } => {
                    let k = bytes
                        .len()
                        .min(usize::try_from(*left).unwrap_or(usize::MAX));
                    *left -= k as u64;
                    bytes = &bytes[k..];
                    if *left == 0 {
                        self.at = At::BOUNDARY;
                    }
                }
                At::Header { head, have } => {
                    head[usize::from(*have)] = byte;
                    *have += 1;
                    bytes = &bytes[1..];
                    let Some((len, fin, data)) = parse(&head[..usize::from(*have)]) else {
                        continue;
                    };
                    if data {
                        self.in_message = !fin;
                    }
                    self.grown |= len > READ_WINDOW as u64;
                    self.at = match len {
                        0 => At::BOUNDARY,
                        left => At::Payload { left },
                    };
                }
            }
        }
    }

    /// True when everything followed so far ends whole messages and a frame since the last
    /// swap outgrew tungstenite's usual buffer: swapping its context gives memory back and
    /// loses nothing (module docs).
    pub(super) fn worth_a_swap(&self) -> bool {
        matches!(self.at, At::Header { have: 0, .. }) && !self.in_message && self.grown
    }

    /// The context was swapped: its buffer is small again.
    pub(super) fn swapped(&mut self) {
        self.grown = false;
    }

    /// A frame outgrew tungstenite's buffer and the context has not been swapped since.
    #[cfg(test)]
    pub(super) fn grown(&self) -> bool {
        self.grown
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::client_frame;

    /// Follows `bytes` in pieces of `step` bytes (as reads would bring them).
    fn followed(bytes: &[u8], step: usize) -> Edges {
        let mut edges = Edges::default();
        for piece in bytes.chunks(step) {
            edges.advance(piece);
        }
        edges
    }

    /// Whole frames of every length encoding, however the reads split them, end on a
    /// boundary; one byte short does not.
    #[test]
    fn whole_frames_end_on_a_boundary_in_any_split() {
        for len in [0, 1, 125, 126, 300, 65_535, 65_536, 70_000] {
            let frame = client_frame(0x2, &vec![7; len]);
            for step in [1, 2, 3, 7, 14, 1000, frame.len()] {
                let edges = followed(&frame, step);
                assert_eq!(
                    edges.worth_a_swap(),
                    len > READ_WINDOW,
                    "len {len} step {step}"
                );
                let short = followed(&frame[..frame.len() - 1], step);
                assert!(
                    !short.worth_a_swap(),
                    "len {len} step {step}, one byte short"
                );
            }
        }
    }

    /// A fragmented message is not over until its FIN frame, whatever control frames come
    /// between its fragments.
    #[test]
    fn a_fragmented_message_holds_the_swap_until_its_last_fragment() {
        let mut edges = Edges::default();
        // A text frame without FIN: first byte 0x01; client_frame sets FIN, so clear it.
        let mut first = client_frame(0x1, &[b'a'; 1000]);
        first[0] &= 0x7f;
        edges.advance(&first);
        assert!(!edges.worth_a_swap(), "mid-message");
        edges.advance(&client_frame(0x9, b"ping"));
        assert!(
            !edges.worth_a_swap(),
            "a Ping between fragments ends nothing"
        );
        edges.advance(&client_frame(0x0, b"end"));
        assert!(edges.worth_a_swap(), "the FIN fragment ends it");
        edges.swapped();
        assert!(!edges.worth_a_swap(), "nothing grew since the swap");
    }

    /// Small frames never ask for a swap: the buffer never grew.
    #[test]
    fn small_frames_never_ask_for_a_swap() {
        let frames: Vec<u8> = (0..100).flat_map(|_| client_frame(0x1, b"hello")).collect();
        assert!(!followed(&frames, 5).worth_a_swap());
    }
}
