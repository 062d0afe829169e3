//! The server's one read buffer, lent to one connection at a time, and the limits of a turn.
//!
//! Every connection reads into the same [`Scratch`] (64 KiB), so an idle connection owns no
//! read buffer. A connection's read does not have to be handed on at once: when a message
//! completes, [`Conn::on_readable`](super::Conn::on_readable) returns it to the server and
//! the rest of the read waits here until the server calls again. The server therefore reads
//! one connection until it says `Idle` or `Yield` before it lends the buffer to the next
//! (checked by a debug assertion in [`Scratch::start_conn`]).
//!
//! The limits of one turn live here too, so nothing else counts reads:
//! - [`READS_PER_TURN`] socket reads per connection, so one firehose cannot starve the others
//!   (we still drain to `WouldBlock`, in slices: the connection is read again next turn);
//! - a byte budget for all connections together (the server passes a quarter of
//!   `--max-queue-bytes`: every byte read may be queued to every receiver before the
//!   end-of-turn flush, so this keeps a healthy receiver far from its cap).

use std::io::{self, Read};

/// Socket reads per connection per turn of the loop (each up to the buffer's size).
pub const READS_PER_TURN: usize = 4;

/// The shared read buffer and the unread part of the last read. See the module docs.
#[derive(Debug, Default)]
pub struct Scratch {
    /// The buffer itself.
    buf: Box<[u8]>,
    /// `buf[start..end]` was read from the socket and not yet handed to the connection's phase.
    start: usize,
    /// End of the last read.
    end: usize,
    /// The last read returned 0 bytes: the peer sent FIN. Reported once the input is used up.
    eof: bool,
    /// Socket reads the connection being read may still make this turn.
    reads_left: usize,
    /// Bytes all connections together may still read this turn.
    budget: usize,
}

/// What one attempt to read the socket gave.
#[derive(Debug)]
pub enum Fill {
    /// Bytes (or the peer's FIN, see [`Scratch::eof`]) to hand to the phase.
    Read,
    /// The kernel has nothing more for now: wait for the next readiness event.
    Drained,
    /// This turn's share is used up (reads or bytes); the socket may hold more.
    Spent,
    /// The read failed: the connection is over.
    Failed(io::Error),
}

impl Scratch {
    /// A buffer of `size` bytes; reading waits for the first [`Scratch::start_turn`].
    pub fn new(size: usize) -> Scratch {
        Scratch {
            buf: vec![0; size].into_boxed_slice(),
            ..Scratch::default()
        }
    }

    /// A new turn: all connections together read at most `budget` bytes in it.
    pub fn start_turn(&mut self, budget: usize) {
        self.budget = budget;
    }

    /// True once this turn's byte budget is used up.
    pub fn is_spent(&self) -> bool {
        self.budget == 0
    }

    /// Lends the buffer to the next connection, with its [`READS_PER_TURN`] reads.
    pub fn start_conn(&mut self) {
        debug_assert!(
            self.start == self.end,
            "the last connection left input unread"
        );
        self.start = 0;
        self.end = 0;
        self.eof = false;
        self.reads_left = READS_PER_TURN;
    }

    /// Input read and not yet consumed.
    pub fn input(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    /// True once the peer's FIN was read: after [`Scratch::input`], nothing more will come.
    pub fn eof(&self) -> bool {
        self.eof
    }

    /// Marks the first `n` bytes of [`Scratch::input`] as consumed.
    pub fn consume(&mut self, n: usize) {
        self.start = (self.start + n).min(self.end);
    }

    /// Marks all of [`Scratch::input`] as consumed.
    pub fn consume_all(&mut self) {
        self.start = self.end;
    }

    /// Reads the socket once into the buffer, within this turn's limits. Call only when the
    /// input is used up.
    pub fn fill(&mut self, socket: &mut impl Read) -> Fill {
        debug_assert!(self.start == self.end, "fill over unread input");
        loop {
            if self.reads_left == 0 || self.budget == 0 {
                return Fill::Spent;
            }
            let room = self.buf.len().min(self.budget);
            match socket.read(&mut self.buf[..room]) {
                Ok(n) => {
                    self.reads_left -= 1;
                    self.budget -= n;
                    (self.start, self.end) = (0, n);
                    // RFC 793 / TCP: a read of 0 bytes is the peer's FIN; no more will come.
                    self.eof = n == 0;
                    return Fill::Read;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Fill::Drained,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Fill::Failed(e),
            }
        }
    }
}
