//! When the server stops reading, and when a connection that holds everyone up is dropped.
//!
//! Every byte read may become a copy in every receiver's outbox, so reading is where memory
//! is bounded. [`Backpressure`] looks at what the outboxes hold (a [`Load`], from the
//! server-wide `Meter`) and answers two questions:
//!
//! - **Pause reading?** Yes while the outboxes together hold more than `--high-water-bytes`
//!   (until they are down to half of it: hysteresis, so reading does not flap), or while *any*
//!   connection is *behind* (more than half its `--max-queue-bytes` queued: reading more would
//!   only push it towards its cap). While reading pauses, TCP slows the senders down.
//! - **Drop the laggards?** Yes once some connections have been behind for `--lag-timeout`
//!   without a break, unless *most* open connections are behind: then the bottleneck is the
//!   server or the network, not a few slow readers, and the pause is the right answer (they
//!   are draining; nobody is dropped).
//!
//! ```text
//!                 over high water, or any behind
//!   Reading ──────────────────────────────────────▶ Paused { behind since T }
//!      ▲                                               │ behind for --lag-timeout, and
//!      │ below half high water, and none behind        │ at most half behind: the server
//!      └───────────────────────────────────────────────┘ drops them; the clock restarts
//! ```
//!
//! A pure type: no sockets, no clock (`now` is handed in), no connection list; the server
//! does the reading and the dropping. Today one `Backpressure` covers the whole server; the
//! same type can as well cover one room, fed that room's [`Load`].

use log::debug;
use std::time::{Duration, Instant};

/// What the outboxes hold right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Load {
    /// Bytes queued in all outboxes together.
    pub queued: usize,
    /// Outboxes more than half full.
    pub behind: usize,
    /// Open connections (the ones that can be behind).
    pub open: usize,
}

/// The backpressure policy: see the module docs.
#[derive(Debug)]
pub struct Backpressure {
    /// `--high-water-bytes`: pause above it, resume below half of it.
    high_water: usize,
    /// `--lag-timeout`: how long connections may hold reading up before they are dropped.
    lag_timeout: Duration,
    /// Whether reading is paused, and since when some connection has been behind.
    state: State,
}

/// Reading or paused; see the module docs' diagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading: under high water and nobody behind.
    Reading,
    /// Paused for one reason or both.
    Paused {
        /// Since when some connection has been behind without a break (`None`: nobody is,
        /// the pause is for high water alone).
        behind_since: Option<Instant>,
    },
}

impl Backpressure {
    /// A policy with `--high-water-bytes` and `--lag-timeout`, reading.
    pub fn new(high_water: usize, lag_timeout: Duration) -> Backpressure {
        Backpressure {
            high_water,
            lag_timeout,
            state: State::Reading,
        }
    }

    /// True while reading is paused.
    pub fn is_paused(&self) -> bool {
        matches!(self.state, State::Paused { .. })
    }

    /// Updates the policy with the `load` at `now` and says whether reading must pause. The
    /// server asks before reading each connection, and once a tick.
    pub fn should_pause(&mut self, load: Load, now: Instant) -> bool {
        let over = if self.is_paused() {
            load.queued > self.high_water / 2
        } else {
            load.queued > self.high_water
        };
        let was_paused = self.is_paused();
        self.state = match (over || load.behind > 0, self.state) {
            (false, _) => State::Reading,
            (true, State::Paused { behind_since }) if load.behind > 0 => State::Paused {
                behind_since: behind_since.or(Some(now)),
            },
            (true, _) if load.behind > 0 => State::Paused {
                behind_since: Some(now),
            },
            (true, _) => State::Paused { behind_since: None },
        };
        if self.is_paused() != was_paused {
            debug!(
                "reading {}: {} bytes queued, {} of {} connections behind",
                if self.is_paused() {
                    "paused"
                } else {
                    "resumed"
                },
                load.queued,
                load.behind,
                load.open
            );
        }
        self.is_paused()
    }

    /// True when the connections behind now have held reading up for `--lag-timeout` and are
    /// at most half of the open ones: the server then drops every connection that is behind as
    /// a slow consumer. The lag clock starts again either way once they are dropped.
    pub fn laggards_due(&mut self, load: Load, now: Instant) -> bool {
        let State::Paused {
            behind_since: Some(since),
        } = self.state
        else {
            return false;
        };
        if now.saturating_duration_since(since) < self.lag_timeout || 2 * load.behind > load.open {
            return false;
        }
        self.state = State::Paused { behind_since: None };
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HIGH_WATER: usize = 1000;
    const LAG: Duration = Duration::from_secs(2);

    fn load(queued: usize, behind: usize, open: usize) -> Load {
        Load {
            queued,
            behind,
            open,
        }
    }

    /// Past high water reading pauses, and it resumes only below half of it (hysteresis).
    #[test]
    fn high_water_pauses_and_half_of_it_resumes() {
        let t0 = Instant::now();
        let mut bp = Backpressure::new(HIGH_WATER, LAG);
        assert!(
            !bp.should_pause(load(HIGH_WATER, 0, 10), t0),
            "at the mark: reading"
        );
        assert!(bp.should_pause(load(HIGH_WATER + 1, 0, 10), t0));
        assert!(
            bp.should_pause(load(HIGH_WATER / 2 + 1, 0, 10), t0),
            "above half: still paused"
        );
        assert!(!bp.should_pause(load(HIGH_WATER / 2, 0, 10), t0));
        assert!(!bp.is_paused());
    }

    /// One connection behind pauses reading, however little is queued; caught up, it resumes.
    #[test]
    fn any_connection_behind_pauses_until_it_catches_up() {
        let t0 = Instant::now();
        let mut bp = Backpressure::new(HIGH_WATER, LAG);
        assert!(bp.should_pause(load(10, 1, 100), t0));
        assert!(!bp.should_pause(load(10, 0, 100), t0 + Duration::from_millis(10)));
    }

    /// A laggard is due to be dropped only after --lag-timeout behind without a break.
    #[test]
    fn laggards_are_due_after_the_lag_timeout() {
        let t0 = Instant::now();
        let mut bp = Backpressure::new(HIGH_WATER, LAG);
        let lagging = load(10, 1, 100);
        bp.should_pause(lagging, t0);
        let almost = t0 + LAG - Duration::from_millis(1);
        bp.should_pause(lagging, almost);
        assert!(!bp.laggards_due(lagging, almost));
        bp.should_pause(lagging, t0 + LAG);
        assert!(bp.laggards_due(lagging, t0 + LAG));
        assert!(
            !bp.laggards_due(lagging, t0 + LAG),
            "once dropped, the lag clock starts again"
        );
        bp.should_pause(lagging, t0 + LAG + Duration::from_millis(1));
        assert!(!bp.laggards_due(lagging, t0 + LAG + Duration::from_millis(1)));
    }

    /// Catching up for a moment restarts the lag clock.
    #[test]
    fn catching_up_restarts_the_lag_clock() {
        let t0 = Instant::now();
        let mut bp = Backpressure::new(HIGH_WATER, LAG);
        bp.should_pause(load(10, 1, 100), t0);
        bp.should_pause(load(10, 0, 100), t0 + LAG / 2);
        let again = t0 + LAG / 2 + Duration::from_millis(1);
        bp.should_pause(load(10, 1, 100), again);
        assert!(!bp.laggards_due(load(10, 1, 100), t0 + LAG));
        assert!(bp.laggards_due(load(10, 1, 100), again + LAG));
    }

    /// When most connections are behind the bottleneck is the server: nobody is dropped.
    #[test]
    fn nobody_is_dropped_while_most_are_behind() {
        let t0 = Instant::now();
        let mut bp = Backpressure::new(HIGH_WATER, LAG);
        let overload = load(10, 51, 100);
        bp.should_pause(overload, t0);
        assert!(!bp.laggards_due(overload, t0 + 10 * LAG));
        let half = load(10, 50, 100);
        assert!(bp.laggards_due(half, t0 + 10 * LAG), "half behind: dropped");
    }

    /// A pause for high water alone never makes anyone a laggard.
    #[test]
    fn high_water_alone_drops_nobody() {
        let t0 = Instant::now();
        let mut bp = Backpressure::new(HIGH_WATER, LAG);
        let full = load(HIGH_WATER + 1, 0, 100);
        assert!(bp.should_pause(full, t0));
        assert!(!bp.laggards_due(full, t0 + 10 * LAG));
    }
}
