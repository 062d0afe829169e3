//! A fixed-rate sender's timetable: which of its messages are due, and how far behind the
//! generator is.
//!
//! A sender at `--rate` has a message due every period. The generator sends what is due after
//! each turn of its loop, so every message leaves a little after its due time; the timetable
//! says how much after (the lag), and counts what the generator could not do on time instead
//! of hiding it:
//!
//! ```text
//!   due ──── lag ≤ --max-lag ────▶ sent on time
//!       ──── lag > --max-lag ────▶ sent, counted late
//!       ──── lag > MAX_CATCH_UP ─▶ skipped, counted behind (no burst of a second's messages)
//! ```
//!
//! Time is passed in, so the tests below run on a made-up clock.

use std::time::{Duration, Instant};

/// A sender further behind its timetable than this skips the missed messages instead of
/// sending them in one burst (which would measure the burst, not the rate).
pub const MAX_CATCH_UP: Duration = Duration::from_secs(1);

/// What is due at one moment: see [`Timetable::take`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Due {
    /// Messages to send now.
    pub send: u64,
    /// Of those, how many are more than `max_lag` late.
    pub late: u64,
    /// How late the oldest of them is.
    pub lag: Duration,
    /// Messages skipped: they were due more than [`MAX_CATCH_UP`] ago.
    pub skipped: u64,
}

/// One sender's timetable: a message every `period`, the next at `next`.
#[derive(Debug, Clone, Copy)]
pub struct Timetable {
    /// Time between messages.
    period: Duration,
    /// When the next message is due.
    next: Instant,
}

impl Timetable {
    /// A timetable whose first message is due at `first`.
    pub fn new(period: Duration, first: Instant) -> Timetable {
        Timetable {
            period,
            next: first,
        }
    }

    /// When the next message is due.
    pub fn next(&self) -> Instant {
        self.next
    }

    /// Takes every message due by `now`, skipping those due more than [`MAX_CATCH_UP`] ago.
    pub fn take(&mut self, now: Instant, max_lag: Duration) -> Due {
        let mut due = Due::default();
        if now < self.next {
            return due;
        }
        let p = self.period.as_nanos().max(1);
        let behind = now - self.next;
        if behind > MAX_CATCH_UP {
            due.skipped = (behind.as_nanos() / p) as u64;
            self.next += nanos(due.skipped as u128 * p);
        }
        due.lag = now - self.next;
        due.send = (due.lag.as_nanos() / p) as u64 + 1;
        if let Some(edge) = now.checked_sub(max_lag) {
            due.late = self.count_before(edge).min(due.send);
        }
        self.next += nanos(due.send as u128 * p);
        due
    }

    /// Messages due before `edge` that have not been taken.
    pub fn missed_before(&self, edge: Instant) -> u64 {
        self.count_before(edge)
    }

    /// Messages of the timetable due strictly before `edge`, from `next` on.
    fn count_before(&self, edge: Instant) -> u64 {
        match edge.checked_duration_since(self.next) {
            Some(d) if !d.is_zero() => d.as_nanos().div_ceil(self.period.as_nanos().max(1)) as u64,
            _ => 0,
        }
    }
}

/// A duration of `n` nanoseconds.
fn nanos(n: u128) -> Duration {
    Duration::from_nanos(u64::try_from(n).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    /// On time: one message per period, none late; a gap in the loop sends the missed ones
    /// together, late ones counted.
    #[test]
    fn due_messages_are_sent_and_late_ones_counted() {
        let t0 = Instant::now();
        let mut t = Timetable::new(10 * MS, t0);
        assert_eq!(t.take(t0 - MS, 5 * MS), Due::default(), "nothing due yet");
        let d = t.take(t0 + MS, 5 * MS);
        assert_eq!((d.send, d.late, d.lag, d.skipped), (1, 0, MS, 0));
        assert_eq!(t.next(), t0 + 10 * MS);
        // The loop stalls 50 ms: messages due at 10, 20, 30, 40, 50 ms go now, at 61 ms; the
        // ones more than 5 ms late (10 … 50) are late.
        let d = t.take(t0 + 61 * MS, 5 * MS);
        assert_eq!((d.send, d.late, d.lag, d.skipped), (6, 5, 51 * MS, 0));
        assert_eq!(t.next(), t0 + 70 * MS);
    }

    /// More than a second behind: the missed messages are skipped and counted, not burst.
    #[test]
    fn a_second_behind_skips_and_counts() {
        let t0 = Instant::now();
        let mut t = Timetable::new(10 * MS, t0);
        let d = t.take(t0 + 1500 * MS + MS, 50 * MS);
        assert_eq!(d.skipped, 150, "due at 0 … 1490 ms");
        assert_eq!((d.send, d.late, d.lag), (1, 0, MS), "due at 1500 ms");
        assert_eq!(t.next(), t0 + 1510 * MS);
        assert_eq!(t.missed_before(t0 + 1535 * MS), 3, "1510, 1520, 1530");
        assert_eq!(t.missed_before(t0 + 1500 * MS), 0);
    }
}
