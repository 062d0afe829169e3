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
//! The general case: a member's own frames that follow each other form one *run*; its slices
//! are what lies between its runs, from its join point to the end. `k` runs leave at most
//! `k + 1` slices (fewer when a run touches either end or the join point), and every slice
//! starts and ends on a frame boundary, so no member ever sees part of a frame. Each sender's
//! frames are in the buffer in the order they were read, so every member gets them in order.
//!
//! What it costs a member: its outbox is charged the whole buffer (its slices keep all of it
//! alive, own frames included) plus a chunk cost per slice; see `outbox.rs`.

use super::ConnId;
use bytes::Bytes;
use std::ops::Range;

/// Capacity the bookkeeping lists keep between turns; a turn that needed more gives it back.
const KEEP_CAPACITY: usize = 64;

/// One room's frames of this turn, and who sent each. See the module docs.
#[derive(Debug, Default)]
pub struct Batch {
    /// The frames, back to back, as clients will receive them.
    buf: Vec<u8>,
    /// Each frame's sender (`None`: another node, through Redis) and where it ends in `buf`.
    frames: Vec<(Option<ConnId>, usize)>,
    /// Members that joined during this turn, and how long `buf` was when they did.
    joined: Vec<(ConnId, usize)>,
}

/// A batch frozen for delivery: the shared buffer, and how to cut it for each member.
#[derive(Debug)]
pub struct Sealed {
    /// The turn's frames, one allocation shared by every member's slices.
    pub buf: Bytes,
    /// Where each frame ends, in order (for counting the frames in a slice).
    ends: Vec<usize>,
    /// Each sender's runs of frames, sorted by sender, then by position.
    runs: Vec<(ConnId, Range<usize>)>,
    /// Joiners of this turn and their join points.
    joined: Vec<(ConnId, usize)>,
}

impl Batch {
    /// True while nothing was appended this turn.
    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
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
        self.frames.push((from, self.buf.len()));
        start..self.buf.len()
    }

    /// The frame bytes at `range` (as returned by [`Batch::push`]).
    pub fn bytes(&self, range: Range<usize>) -> &[u8] {
        &self.buf[range]
    }

    /// `conn` joined the room now: it receives only what is appended from here on.
    pub fn joined(&mut self, conn: ConnId) {
        if !self.buf.is_empty() {
            self.joined.push((conn, self.buf.len()));
        }
    }

    /// Freezes this turn's frames for delivery and empties the batch for the next turn.
    pub fn seal(&mut self) -> Sealed {
        let mut buf = std::mem::take(&mut self.buf);
        // The buffer is charged by its length: give back what doubling left unused.
        buf.shrink_to_fit();
        let mut runs: Vec<(ConnId, Range<usize>)> = Vec::new();
        let mut start = 0;
        for &(from, end) in &self.frames {
            if let Some(from) = from {
                runs.push((from, start..end));
            }
            start = end;
        }
        // Stable: each sender's frames stay in buffer order; then adjacent ones merge.
        runs.sort_by_key(|(conn, _)| conn.0);
        runs.dedup_by(|next, run| {
            let adjacent = next.0 == run.0 && next.1.start == run.1.end;
            if adjacent {
                run.1.end = next.1.end;
            }
            adjacent
        });
        let ends = self.frames.iter().map(|&(_, end)| end).collect();
        let joined = std::mem::take(&mut self.joined);
        self.frames.clear();
        self.frames.shrink_to(KEEP_CAPACITY);
        Sealed {
            buf: Bytes::from(buf),
            ends,
            runs,
            joined,
        }
    }
}

impl Sealed {
    /// The parts of the buffer `member` receives, in order, and how many frames they hold.
    /// Empty if it receives nothing (it sent everything after its join point).
    pub fn cut(&self, member: ConnId, into: &mut Vec<Range<usize>>) -> usize {
        into.clear();
        let from = self
            .joined
            .iter()
            .find(|(c, _)| *c == member)
            .map_or(0, |&(_, at)| at);
        let first = self.runs.partition_point(|(c, _)| c.0 < member.0);
        let own = self.runs[first..]
            .iter()
            .take_while(|(c, _)| *c == member)
            .map(|(_, run)| run);
        let mut at = from;
        for run in own {
            if run.end <= at {
                continue;
            }
            if run.start > at {
                into.push(at..run.start);
            }
            at = run.end;
        }
        if at < self.buf.len() {
            into.push(at..self.buf.len());
        }
        into.iter().map(|r| self.frames_in(r)).sum()
    }

    /// How many frames lie in `range` (whose ends are frame boundaries).
    fn frames_in(&self, range: &Range<usize>) -> usize {
        let upto = |x: usize| self.ends.partition_point(|&end| end <= x);
        upto(range.end) - upto(range.start)
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
        let sealed = batch(&[(1, b'a'), (2, b'b'), (1, b'A'), (3, b'c'), (2, b'B')]).seal();
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
        let sealed = batch(&[(2, b'x'), (1, b'a'), (1, b'b'), (1, b'c'), (2, b'y')]).seal();
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
        let only = batch(&[(5, b'a'), (5, b'b')]).seal();
        assert_eq!(
            received(&only, 5),
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

    /// Sealing empties the batch: the next turn starts afresh, joiners included.
    #[test]
    fn sealing_starts_the_next_turn_empty() {
        let mut b = batch(&[(1, b'a')]);
        b.joined(ConnId(2));
        let _ = b.seal();
        assert!(b.is_empty());
        b.push(Some(ConnId(1)), |buf| buf.push(b'z'));
        assert_eq!(received(&b.seal(), 2), (vec![b"z".to_vec()], 1));
    }
}
