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
//!   (the connection is read again next turn);
//! - a byte budget for all connections together (the server passes a quarter of
//!   `--max-queue-bytes`: every byte read may be queued to every receiver before the
//!   end-of-turn flush, so this keeps a healthy receiver far from its cap);
//! - a cap for one call, which a closing connection uses to bound what it discards.
//!
//! ## One read per readable event
//!
//! mio's rule is to read until `WouldBlock`: with edge-triggered readiness (`EPOLLET`) an
//! event reports a *change*, and bytes left unread raise no new one. Followed literally, every
//! event costs one read more than it needs: the last read only says `EAGAIN`. For TCP a
//! *short* read says the same thing for free, and `fill` stops after one (`Fill::Read`, then
//! `Fill::Drained` without a system call), on these grounds:
//!
//! - **A short read means the queue was empty.** Linux's `tcp_recvmsg` copies segment after
//!   segment from the receive queue until the caller's buffer is full, and returns early only
//!   when the queue has no more (for a non-blocking socket the low-water mark is 1 byte). So
//!   fewer bytes than asked for means nothing else was queued at that moment. (The one
//!   exception is TCP urgent data, which stops a read at its mark; RFC 6455 has no use for
//!   it, and a peer that sends it only delays its own input until its next segment or Ping.)
//! - **Anything that arrives later raises a new edge.** Every segment queued after the read
//!   wakes the socket's wait queue (`sk_data_ready`), and epoll puts an edge-triggered entry
//!   back on its ready list on every wake-up, so the next `poll` reports the connection again.
//!   Bytes that arrive *during* the read are either copied by it or wake it afterwards: at worst
//!   a spurious event, which is harmless (the read says `WouldBlock`).
//! - **The peer's FIN.** A FIN is read as `Ok(0)`, and a short read does not tell whether one
//!   is already queued behind the data. A FIN that arrives after our read wakes the socket like
//!   data does (a new edge, with `EPOLLRDHUP`). A FIN that arrived *before* we read was already
//!   there when the event was reported, and mio registers `EPOLLRDHUP`, so that event says
//!   `is_read_closed()`; the server then passes `peer_closed` to [`Scratch::start_conn`] and
//!   this connection reads until `Ok(0)` or `WouldBlock`, as mio says, from then on. Errors
//!   (`EPOLLERR`, `EPOLLHUP`) are treated the same way.
//! - **The turn's limits.** A read cut short by the turn's byte budget, its read count or a
//!   closing connection's cap is not a short read of the socket: the socket may hold more and
//!   no new edge will come for it, so `fill` says `Spent` and the server puts the connection
//!   back in its `ready` queue for the next turn (`Action::Yield`).
//! - **Only where it holds.** A layer that buffers on its own (TLS, which reads whole records)
//!   can return less than asked while the socket still holds bytes; such a socket says so with
//!   [`Socket::short_read_means_empty`](super::Socket::short_read_means_empty) `false`, the
//!   default, and is read until `WouldBlock`.

use super::Socket;
use std::io;

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
    /// The connection being read may stop at a short read (see the module docs): its socket
    /// says short reads mean empty, and the last event did not report the peer's FIN.
    short_ends: bool,
    /// The last read was short (with `short_ends`): the socket held nothing more at that
    /// moment, so the next `fill` says `Drained` without a system call.
    emptied: bool,
}

/// What one attempt to read the socket gave.
#[derive(Debug)]
pub enum Fill {
    /// Bytes (or the peer's FIN, see [`Scratch::eof`]) to hand to the phase.
    Read,
    /// The kernel has nothing more for now (it said `WouldBlock`, or the last read was
    /// short): wait for the next readiness event.
    Drained,
    /// This turn's share is used up (reads or bytes), or the caller's cap: the socket may hold
    /// more.
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
    /// `peer_closed`: a readiness event for it reported the peer's FIN (or an error), so it is
    /// read until `WouldBlock` or end-of-stream, not only until a short read (module docs).
    pub fn start_conn(&mut self, peer_closed: bool) {
        debug_assert!(
            self.start == self.end,
            "the last connection left input unread"
        );
        self.start = 0;
        self.end = 0;
        self.eof = false;
        self.reads_left = READS_PER_TURN;
        self.short_ends = !peer_closed;
        self.emptied = false;
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

    /// Reads the socket once into the buffer, at most `cap` bytes and within this turn's
    /// limits. Call only when the input is used up.
    pub fn fill(&mut self, socket: &mut impl Socket, cap: usize) -> Fill {
        debug_assert!(self.start == self.end, "fill over unread input");
        if self.emptied {
            // The last read was short: the socket was empty then, and anything since raises a
            // new edge (module docs).
            return Fill::Drained;
        }
        loop {
            let room = self.buf.len().min(self.budget).min(cap);
            if self.reads_left == 0 || room == 0 {
                return Fill::Spent;
            }
            match socket.read(&mut self.buf[..room]) {
                Ok(n) => {
                    self.reads_left -= 1;
                    self.budget -= n;
                    (self.start, self.end) = (0, n);
                    // RFC 793 / TCP: a read of 0 bytes is the peer's FIN; no more will come.
                    self.eof = n == 0;
                    self.emptied = n < room && self.short_ends && socket.short_read_means_empty();
                    return Fill::Read;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Fill::Drained,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Fill::Failed(e),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::MockSocket;

    /// A scratch buffer of `size` bytes, lent to a connection with an unlimited turn.
    fn lent(size: usize, peer_closed: bool) -> Scratch {
        let mut scratch = Scratch::new(size);
        scratch.start_turn(usize::MAX);
        scratch.start_conn(peer_closed);
        scratch
    }

    /// On TCP, a read that comes back short ends the reading: the next fill makes no system
    /// call (2 per event became 1).
    #[test]
    fn a_short_read_on_tcp_is_the_last_read_of_the_event() {
        let mut socket = MockSocket::tcp();
        socket.push(b"hello");
        let mut scratch = lent(64, false);
        assert!(matches!(scratch.fill(&mut socket, usize::MAX), Fill::Read));
        assert_eq!(scratch.input(), b"hello");
        scratch.consume_all();
        assert!(matches!(
            scratch.fill(&mut socket, usize::MAX),
            Fill::Drained
        ));
        assert_eq!(socket.reads, 1, "no second read to hear EAGAIN");
    }

    /// A read that fills the buffer may have left bytes behind: read again.
    #[test]
    fn a_full_read_reads_again() {
        let mut socket = MockSocket::tcp();
        socket.push(&[7; 100]);
        let mut scratch = lent(64, false);
        assert!(matches!(scratch.fill(&mut socket, usize::MAX), Fill::Read));
        assert_eq!(scratch.input().len(), 64);
        scratch.consume_all();
        assert!(matches!(scratch.fill(&mut socket, usize::MAX), Fill::Read));
        assert_eq!(scratch.input().len(), 36);
        scratch.consume_all();
        assert!(matches!(
            scratch.fill(&mut socket, usize::MAX),
            Fill::Drained
        ));
        assert_eq!(socket.reads, 2);
    }

    /// When the event reported the peer's FIN, a short read proves nothing about it: read on
    /// until end-of-stream.
    #[test]
    fn after_a_fin_event_reading_goes_on_to_end_of_stream() {
        let mut socket = MockSocket::tcp();
        socket.push(b"bye");
        socket.eof = true;
        let mut scratch = lent(64, true);
        assert!(matches!(scratch.fill(&mut socket, usize::MAX), Fill::Read));
        assert!(!scratch.eof());
        scratch.consume_all();
        assert!(matches!(scratch.fill(&mut socket, usize::MAX), Fill::Read));
        assert!(scratch.eof(), "the FIN behind the data is read");
    }

    /// A socket that does not promise TCP's short reads (a TLS layer, or this chunked mock) is
    /// read until `WouldBlock`.
    #[test]
    fn other_sockets_are_read_until_would_block() {
        let mut socket = MockSocket::default();
        socket.push(b"a");
        socket.push(b"b");
        let mut scratch = lent(64, false);
        assert!(matches!(scratch.fill(&mut socket, usize::MAX), Fill::Read));
        scratch.consume_all();
        assert!(matches!(scratch.fill(&mut socket, usize::MAX), Fill::Read));
        assert_eq!(scratch.input(), b"b");
        scratch.consume_all();
        assert!(matches!(
            scratch.fill(&mut socket, usize::MAX),
            Fill::Drained
        ));
        assert_eq!(socket.reads, 3);
    }

    /// A read cut short by the turn's byte budget (or the caller's cap) is not a short read of
    /// the socket: the fill says `Spent`, so the server queues the connection for next turn,
    /// where the rest is read although no new edge comes.
    #[test]
    fn a_read_cut_by_the_budget_is_spent_not_drained() {
        let mut socket = MockSocket::tcp();
        socket.push(&[1; 50]);
        let mut scratch = Scratch::new(64);
        scratch.start_turn(20);
        scratch.start_conn(false);
        assert!(matches!(scratch.fill(&mut socket, usize::MAX), Fill::Read));
        assert_eq!(scratch.input().len(), 20);
        scratch.consume_all();
        assert!(matches!(scratch.fill(&mut socket, usize::MAX), Fill::Spent));
        // Next turn, the rest, without any new readiness.
        scratch.start_turn(usize::MAX);
        scratch.start_conn(false);
        assert!(matches!(scratch.fill(&mut socket, 10), Fill::Read));
        assert_eq!(scratch.input().len(), 10, "capped by the caller");
        scratch.consume_all();
        assert!(matches!(scratch.fill(&mut socket, 0), Fill::Spent));
        assert!(matches!(scratch.fill(&mut socket, usize::MAX), Fill::Read));
        assert_eq!(scratch.input().len(), 20);
    }
}
