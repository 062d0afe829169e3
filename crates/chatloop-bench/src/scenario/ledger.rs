//! The receive side of the fan-out checks: what each client got from each sender, and which
//! clients went quiet while something was due to them.
//!
//! **Order, loss and duplicates.** For every receiver and sender the [`Ledger`] keeps a mark:
//! one past the highest sequence number seen, and a 64-bit map of which of the 64 numbers
//! below it arrived. Each delivery is then exactly one [`Arrival`]:
//!
//! ```text
//!   seq ≥ highest + 1       InOrder    a gap before it is loss, unless the gap fills later
//!   seq < highest, new      Late       out of order, but a delivery
//!   seq < highest, seen     Duplicate  not a delivery: counted apart, never as received
//! ```
//!
//! A number more than 64 below the highest cannot be told apart and counts as late. (A
//! closed loop never has more than `--window` messages of one sender in flight; at a fixed
//! rate, a server would have to hold one message back behind 64 later ones.)
//!
//! **Stalls.** The [`StallWatch`] looks every [`CHECK_EVERY`]: a client is stalled when it
//! has received nothing for [`STALL_AFTER`] although a message sent at least that long ago has
//! not reached it. "Owed" matters: in a closed loop that waits for a stalled client, the others
//! get nothing either, but nothing is due to them, so only the stalled one is reported.

use std::collections::VecDeque;
use std::time::Duration;

/// A client silent for this long while owed a message this old is stalled. Far above any
/// latency a healthy server shows, and far below a run's length.
pub const STALL_AFTER: Duration = Duration::from_millis(500);

/// How often the [`StallWatch`] looks. A stall's length is known to within this.
pub const CHECK_EVERY: Duration = Duration::from_millis(100);

/// What one delivery was, against what its receiver had already got from its sender.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrival {
    /// Above every number seen so far.
    InOrder,
    /// Below the highest seen, and new: out of order.
    Late,
    /// Seen before.
    Duplicate,
}

/// One receiver's record of one sender. See the module docs.
#[derive(Debug, Clone, Copy, Default)]
struct Mark {
    /// One past the highest sequence number seen.
    next: u32,
    /// Bit `i`: sequence number `next - 1 - i` arrived.
    below: u64,
}

impl Mark {
    /// Records `seq` and says what it was.
    #[inline]
    fn record(&mut self, seq: u32) -> Arrival {
        if seq >= self.next {
            let shift = seq - self.next + 1;
            self.below = if shift >= 64 { 0 } else { self.below << shift } | 1;
            self.next = seq + 1;
            return Arrival::InOrder;
        }
        let back = self.next - 1 - seq;
        if back >= 64 {
            return Arrival::Late;
        }
        let bit = 1u64 << back;
        if self.below & bit != 0 {
            Arrival::Duplicate
        } else {
            self.below |= bit;
            Arrival::Late
        }
    }
}

/// Every receiver's mark of every sender, in one flat table (`[receiver * senders +
/// sender]`).
pub struct Ledger {
    /// Senders per receiver.
    senders: usize,
    /// See the type docs.
    marks: Vec<Mark>,
}

impl Ledger {
    /// A ledger for `receivers` × `senders`, nothing seen.
    pub fn new(receivers: usize, senders: usize) -> Ledger {
        Ledger {
            senders,
            marks: vec![Mark::default(); receivers * senders],
        }
    }

    /// Records that `receiver` got `sender`'s message `seq`. `None` for a receiver or sender
    /// out of range.
    #[inline]
    pub fn record(&mut self, receiver: u32, sender: u32, seq: u32) -> Option<Arrival> {
        let i = receiver as usize * self.senders + sender as usize;
        Some(self.marks.get_mut(i)?.record(seq))
    }

    /// One past the highest sequence number `receiver` has seen from `sender`.
    fn next(&self, receiver: usize, sender: usize) -> u32 {
        self.marks
            .get(receiver * self.senders + sender)
            .map_or(0, |m| m.next)
    }
}

/// Finds stalled clients and measures their stalls. See the module docs.
pub struct StallWatch {
    /// Per receiver: when it last received anything, ns.
    last: Vec<u64>,
    /// Per receiver: `Some(since)` while stalled (since its last delivery), ns.
    stalled: Vec<Option<u64>>,
    /// Per receiver: open (between its handshake and its end); only an open client can be
    /// owed anything.
    open: Vec<bool>,
    /// Recent samples of every sender's next sequence number, oldest first: (time ns, by
    /// sender). What a sender had sent [`STALL_AFTER`] ago is read from here.
    history: VecDeque<(u64, Vec<u32>)>,
    /// When the last check ran, ns.
    checked: u64,
    /// Stalls begun since [`StallWatch::begin`].
    stalls: u64,
    /// The longest stall since then, ns.
    longest: u64,
}

impl StallWatch {
    /// A watch over `receivers` clients.
    pub fn new(receivers: usize) -> StallWatch {
        StallWatch {
            last: vec![0; receivers],
            stalled: vec![None; receivers],
            open: vec![false; receivers],
            history: VecDeque::new(),
            checked: 0,
            stalls: 0,
            longest: 0,
        }
    }

    /// Starts counting at `now_ns`: every client counts as having just received.
    pub fn begin(&mut self, now_ns: u64) {
        self.last.fill(now_ns);
        self.stalled.fill(None);
        self.history.clear();
        (self.checked, self.stalls, self.longest) = (now_ns, 0, 0);
    }

    /// `receiver` got a delivery at `now_ns`: a stall, if any, ends.
    #[inline]
    pub fn on_delivery(&mut self, receiver: u32, now_ns: u64) {
        let r = receiver as usize;
        if let Some(since) = self.stalled.get_mut(r).and_then(Option::take) {
            self.longest = self.longest.max(now_ns.saturating_sub(since));
        }
        if let Some(last) = self.last.get_mut(r) {
            *last = now_ns;
        }
    }

    /// `receiver` has opened: from the next [`StallWatch::begin`] on it can be owed messages.
    pub fn on_open(&mut self, receiver: u32) {
        if let Some(open) = self.open.get_mut(receiver as usize) {
            *open = true;
        }
    }

    /// `receiver` has ended: it is owed nothing more.
    pub fn on_end(&mut self, receiver: u32) {
        let r = receiver as usize;
        if let Some(open) = self.open.get_mut(r) {
            *open = false;
        }
        if let Some(since) = self.stalled.get_mut(r).and_then(Option::take) {
            self.longest = self.longest.max(self.checked.saturating_sub(since));
        }
    }

    /// True when a check is due at `now_ns`.
    pub fn due(&self, now_ns: u64) -> bool {
        now_ns.saturating_sub(self.checked) >= CHECK_EVERY.as_nanos() as u64
    }

    /// Looks for new stalls at `now_ns`; `sent` is every sender's next sequence number now.
    pub fn check(&mut self, now_ns: u64, sent: Vec<u32>, ledger: &Ledger) {
        self.checked = now_ns;
        self.history.push_back((now_ns, sent));
        let horizon = now_ns.saturating_sub(STALL_AFTER.as_nanos() as u64);
        // Keep one sample at or before the horizon, and every one after it.
        while self.history.get(1).is_some_and(|(t, _)| *t <= horizon) {
            self.history.pop_front();
        }
        let Some((t, then)) = self.history.front() else {
            return;
        };
        if *t > horizon {
            return; // not watching for long enough yet
        }
        for r in 0..self.last.len() {
            if !self.open[r] || self.stalled[r].is_some() || self.last[r] > horizon {
                continue;
            }
            let owed = then
                .iter()
                .enumerate()
                .any(|(s, &sent)| s != r && sent > ledger.next(r, s));
            if owed {
                self.stalled[r] = Some(self.last[r]);
                self.stalls += 1;
            }
        }
    }

    /// Ends the count at `now_ns`: a stall still going counts as long as it has been.
    pub fn finish(&mut self, now_ns: u64) {
        for since in self.stalled.iter_mut().filter_map(Option::take) {
            self.longest = self.longest.max(now_ns.saturating_sub(since));
        }
    }

    /// Stalls begun since [`StallWatch::begin`], and the longest in µs (so far, or up to
    /// [`StallWatch::finish`]).
    pub fn totals(&self) -> (u64, u64) {
        (self.stalls, self.longest / 1000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    /// Each delivery is in order, late or a duplicate, and a duplicate is never mistaken for
    /// a late first arrival.
    #[test]
    fn arrivals_tell_late_from_duplicate() {
        use Arrival::*;
        let mut l = Ledger::new(2, 1);
        let got: Vec<_> = [0, 1, 3, 2, 2, 3, 0, 10, 4]
            .iter()
            .map(|&seq| l.record(1, 0, seq).unwrap())
            .collect();
        assert_eq!(
            got,
            [InOrder, InOrder, InOrder, Late, Duplicate, Duplicate, Duplicate, InOrder, Late]
        );
        assert_eq!(l.record(0, 0, 0), Some(InOrder), "receivers are apart");
        assert_eq!(l.record(2, 0, 0), None);
        assert_eq!(l.record(1, 0, 100), Some(InOrder));
        assert_eq!(
            l.record(1, 0, 30),
            Some(Late),
            "beyond 64 back: counted as late"
        );
    }

    /// A client silent while owed a message is stalled once, for as long as it was silent;
    /// one owed nothing is not.
    #[test]
    fn silent_client_owed_a_message_is_one_stall() {
        let (mut ledger, mut w) = (Ledger::new(3, 1), StallWatch::new(3));
        (0..3).for_each(|r| w.on_open(r));
        w.begin(0);
        // Sender 0 sends seq 0 at 0 ms; client 1 gets it, client 2 does not.
        ledger.record(1, 0, 0);
        w.on_delivery(1, MS);
        for t in (100..=900).step_by(100) {
            w.check(t * MS, vec![1], &ledger);
        }
        w.on_delivery(2, 1200 * MS);
        w.finish(1300 * MS);
        let (stalls, longest_us) = w.totals();
        assert_eq!(
            stalls, 1,
            "client 2 only: client 1 and the sender are owed nothing"
        );
        assert_eq!(longest_us, 1_200_000);
    }

    /// A stall still going at the end counts up to the end; a client that ended, or never
    /// opened, is not owed.
    #[test]
    fn stall_at_the_end_counts_and_ended_clients_do_not() {
        let (ledger, mut w) = (Ledger::new(4, 1), StallWatch::new(4));
        (0..3).for_each(|r| w.on_open(r));
        w.begin(0);
        w.on_end(1);
        for t in (100..=700).step_by(100) {
            w.check(t * MS, vec![5], &ledger);
        }
        w.finish(800 * MS);
        assert_eq!(w.totals(), (1, 800_000), "client 2 stalled from the start");
    }
}
