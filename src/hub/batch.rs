//! A room's messages of one turn, in one buffer: how a broadcast reaches every member as one
//! slice, or a few, instead of one chunk per message.
//!
//! While the server reads, each message for a room is encoded once and appended to the room's
//! [`Batch`], with a note of who sent it. When the reading is done, [`Batch::seal`] freezes the
//! buffer into one refcounted [`Bytes`], and each member's outbox gets slices of it: everything
//! except the member's own frames, and nothing from before it joined. No byte is copied in user
//! space; the kernel copies each member's slices once, in its `writev`.
//!
//! ```text
//!   read this turn, room /kitchen:    a1  b1  a2  c1  b2         (e joins after a2)
//!   one buffer:                      ├───┼───┼───┼───┼───┤
//!   a (sent a1, a2)     gets             [b1]    [c1  b2]        2 slices, around its own
//!   b (sent b1, b2)     gets         [a1]    [a2  c1]            2 slices
//!   c (sent c1)         gets         [a1  b1  a2]    [b2]        2 slices
//!   d (sent nothing)    gets         [a1  b1  a2  c1  b2]        1 slice: the whole buffer
//!   e (joined mid-turn) gets                     [c1  b2]        from its join point on
//! ```
//!
//! The general case: frames that follow each other from one sender form a *span*; a member's
//! slices are what lies between its own spans, from its join point to the end. `k` own spans
//! leave at most `k + 1` slices (fewer when one touches either end or the join point), and
//! every slice starts and ends on a frame boundary, so no member ever sees part of a frame.
//! Each sender's frames are in the buffer in the order they were read, so every member gets
//! them in order. (The server reads a connection at most once a turn, so in practice a
//! member's frames of a turn are one span and it gets at most two slices; the arithmetic does
//! not rely on that.)
//!
//! What it costs a member: its outbox is charged the whole buffer (its slices keep all of it
//! alive, own frames included) plus a chunk cost per slice; see `outbox.rs`. What the batch
//! keeps besides the buffer is one entry per span, not per frame, so a flood of tiny messages
//! costs no bookkeeping per message.

use super::ConnId;
use bytes::Bytes;
use std::ops::Range;

/// Capacity the bookkeeping lists keep between turns; a turn that needed more gives it back.
const KEEP_CAPACITY: usize = 64;

/// Frames that follow each other in the buffer from one sender.
#[derive(Debug, Clone, Copy)]
struct Span {
    /// The sender (`None`: another node, through Redis).
    from: Option<ConnId>,
    /// Where the span ends in the buffer (it starts where the one before ends).
    end: usize,
    /// Frames in the buffer up to `end`, this span's included.
    frames: usize,
}

/// One room's frames of this turn, and who sent them. See the module docs.
#[derive(Debug, Default)]
pub struct Batch {
    /// The frames, back to back, as clients will receive them.
    buf: Vec<u8>,
    /// The spans, in buffer order.
    spans: Vec<Span>,
    /// Members that joined during this turn, and how many spans there were when they did.
    joined: Vec<(ConnId, usize)>,
    /// A member joined since the last frame: the next frame starts a span of its own, so a
    /// join point always falls between spans.
    split: bool,
    /// Each sender's spans, as (sender, span index), sorted (made by `seal`).
    own: Vec<(ConnId, usize)>,
}

/// A batch frozen for delivery: the shared buffer, and how to cut it for each member. It
/// borrows the batch's lists; [`Batch::clear`] starts the next turn once it is delivered.
#[derive(Debug)]
pub struct Sealed<'a> {
    /// The turn's frames, one allocation shared by every member's slices.
    pub buf: Bytes,
    /// The batch it came from.
    batch: &'a Batch,
}

impl Batch {
    /// True while nothing was appended this turn.
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// Appends one frame from `from`, written by `encode` at the end of the buffer. Returns
    /// where it lies, for whoever else needs the same bytes (the Redis bridge).
    pub fn push(
        &mut self,
        from: Option<ConnId>,
        encode: impl FnOnce(&mut Vec<u8>),
    ) -> Range<usize> {
        let start = self.buf.len();
        encode(&mut self.buf);
        let end = self.buf.len();
        match self.spans.last_mut() {
            Some(last) if last.from == from && !self.split => {
                last.end = end;
                last.frames += 1;
            }
            last => {
                let frames = last.map_or(0, |l| l.frames) + 1;
                self.spans.push(Span { from, end, frames });
                self.split = false;
            }
        }
        start..end
    }

    /// The frame bytes at `range` (as returned by [`Batch::push`]).
    pub fn bytes(&self, range: Range<usize>) -> &[u8] {
        &self.buf[range]
    }

    /// `conn` joined the room now: it receives only what is appended from here on.
    pub fn joined(&mut self, conn: ConnId) {
        if !self.spans.is_empty() {
            self.joined.push((conn, self.spans.len()));
            self.split = true;
        }
    }

    /// Freezes this turn's frames for delivery. Call [`Batch::clear`] once they are delivered.
    pub fn seal(&mut self) -> Sealed<'_> {
        let mut buf = std::mem::take(&mut self.buf);
        // The buffer is charged by its length: give back what doubling left unused.
        buf.shrink_to_fit();
        self.own.clear();
        let senders = self.spans.iter().enumerate();
        self.own
            .extend(senders.filter_map(|(i, s)| s.from.map(|from| (from, i))));
        self.own.sort_unstable_by_key(|&(conn, i)| (conn.0, i));
        Sealed {
            buf: Bytes::from(buf),
            batch: self,
        }
    }

    /// Empties the batch for the next turn, giving back what a big turn needed.
    pub fn clear(&mut self) {
        self.spans.clear();
        self.spans.shrink_to(KEEP_CAPACITY);
        self.joined.clear();
        self.joined.shrink_to(KEEP_CAPACITY);
        self.own.clear();
        self.own.shrink_to(KEEP_CAPACITY);
        self.split = false;
    }

    /// Where span `i` starts in the buffer, and the frames before it (`i` may be one past the
    /// last span: the end).
    fn before(&self, i: usize) -> (usize, usize) {
        match i.checked_sub(1).map(|p| self.spans[p]) {
            Some(prev) => (prev.end, prev.frames),
            None => (0, 0),
        }
    }
}

impl Sealed<'_> {
    /// Puts the parts of the buffer `member` receives into `into`, in order, and returns how
    /// many frames they hold: everything from its join point on, except its own spans. None
    /// if it receives nothing (it sent everything after its join point).
    pub fn cut(&self, member: ConnId, into: &mut Vec<Range<usize>>) -> usize {
        into.clear();
        let b = self.batch;
        let first = b
            .joined
            .iter()
            .find(|(c, _)| *c == member)
            .map_or(0, |j| j.1);
        let at = b.own.partition_point(|&(c, _)| c.0 < member.0);
        let own = b.own[at..].iter().take_while(|(c, _)| *c == member);
        // Walk span indices: from `next` up to each own span is received, then skip it.
        let mut next = first;
        let mut frames = 0;
        for i in own.map(|&(_, i)| i).chain([b.spans.len()]) {
            if i > next {
                let ((start, before), (end, upto)) = (b.before(next), b.before(i));
                into.push(start..end);
                frames += upto - before;
            }
            next = next.max(i + 1);
        }
        frames
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Appends a one-byte "frame" per (sender, byte) to a new batch.
    fn batch(frames: &[(usize, u8)]) -> Batch {
        let mut b = Batch::default();
        for &(from, byte) in frames {
            b.push(Some(ConnId(from)), |buf| buf.push(byte));
        }
        b
    }

    /// What `member` receives, as the bytes of its slices, and the frame count.
    fn received(sealed: &Sealed, member: usize) -> (Vec<Vec<u8>>, usize) {
        let mut cuts = Vec::new();
        let frames = sealed.cut(ConnId(member), &mut cuts);
        let parts = cuts
            .iter()
            .map(|r| sealed.buf[r.clone()].to_vec())
            .collect();
        (parts, frames)
    }

    /// The module docs' picture: senders never get their own frames, each sender's order is
    /// kept, a member gets one slice per gap between its runs, a quiet member gets it all.
    #[test]
    fn members_get_all_but_their_own_frames_in_order() {
        // a = 1, b = 2, c = 3, d = 4 (silent)
        let mut b = batch(&[(1, b'a'), (2, b'b'), (1, b'A'), (3, b'c'), (2, b'B')]);
        let sealed = b.seal();
        assert_eq!(
            received(&sealed, 1),
            (vec![b"b".to_vec(), b"cB".to_vec()], 3)
        );
        assert_eq!(
            received(&sealed, 2),
            (vec![b"a".to_vec(), b"Ac".to_vec()], 3)
        );
        assert_eq!(
            received(&sealed, 3),
            (vec![b"abA".to_vec(), b"B".to_vec()], 4)
        );
        assert_eq!(received(&sealed, 4), (vec![b"abAcB".to_vec()], 5));
    }

    /// Frames a member sent back to back are one run: they cost it one gap, not one each.
    #[test]
    fn a_run_of_own_frames_leaves_one_gap() {
        let mut b = batch(&[(2, b'x'), (1, b'a'), (1, b'b'), (1, b'c'), (2, b'y')]);
        let sealed = b.seal();
        assert_eq!(
            received(&sealed, 1),
            (vec![b"x".to_vec(), b"y".to_vec()], 2)
        );
        let (parts, frames) = received(&sealed, 2);
        assert_eq!(
            (parts, frames),
            (vec![b"abc".to_vec()], 3),
            "own at both ends"
        );
        let mut only = batch(&[(5, b'a'), (5, b'b')]);
        assert_eq!(
            received(&only.seal(), 5),
            (vec![], 0),
            "the only sender gets nothing"
        );
    }

    /// A member that joins mid-turn gets only what was appended after it joined, whole frames.
    #[test]
    fn a_mid_turn_joiner_gets_only_later_frames() {
        let mut b = batch(&[(1, b'a'), (2, b'b')]);
        b.joined(ConnId(9));
        b.push(Some(ConnId(1)), |buf| buf.extend_from_slice(b"LONG"));
        b.push(None, |buf| buf.push(b'r'));
        b.joined(ConnId(8));
        let sealed = b.seal();
        assert_eq!(received(&sealed, 9), (vec![b"LONGr".to_vec()], 2));
        assert_eq!(
            received(&sealed, 8),
            (vec![], 0),
            "joined after the last frame"
        );
        assert_eq!(
            received(&sealed, 1),
            (vec![b"b".to_vec(), b"r".to_vec()], 2)
        );
        assert_eq!(received(&sealed, 4), (vec![b"abLONGr".to_vec()], 4));
    }

    /// A join between two frames of one sender splits them: the joiner gets the second only.
    #[test]
    fn a_join_splits_a_span() {
        let mut b = batch(&[(1, b'a')]);
        b.joined(ConnId(9));
        b.push(Some(ConnId(1)), |buf| buf.push(b'b'));
        let sealed = b.seal();
        assert_eq!(received(&sealed, 9), (vec![b"b".to_vec()], 1));
        assert_eq!(received(&sealed, 2), (vec![b"ab".to_vec()], 2));
    }

    /// Sealing empties the batch: the next turn starts afresh, joiners included.
    #[test]
    fn sealing_starts_the_next_turn_empty() {
        let mut b = batch(&[(1, b'a')]);
        b.joined(ConnId(2));
        let _ = b.seal();
        b.clear();
        assert!(b.is_empty());
        b.push(Some(ConnId(1)), |buf| buf.push(b'z'));
        assert_eq!(received(&b.seal(), 2), (vec![b"z".to_vec()], 1));
    }
}
