//! When reading pauses, for whom, and when a connection that holds its room up is dropped.
//!
//! Every byte read may become a copy in every receiver's outbox, so reading is where memory
//! is bounded. What the outboxes hold is metered twice (`outbox.rs`): for the whole server and
//! for each room. [`Backpressure`] answers three questions from those meters:
//!
//! - **Pause a room?** Yes while any of its members is *behind* (its outbox charged more than
//!   half of `--max-queue-bytes`): reading more from the room would only push that member
//!   towards its cap. Only the room's own members stop being read (and the Redis bridge's
//!   messages for it wait); every other room goes on at full speed. While a room pauses, TCP
//!   slows its senders down.
//! - **Drop its laggards?** Yes once the room has had someone behind for `--lag-timeout`
//!   without a break, unless *most* of its members are behind: then the bottleneck is the
//!   server or the network, not a few slow readers, and the pause is the right answer (they
//!   are draining; nobody is dropped).
//! - **Pause the whole server?** Only as a last resort, while all outboxes together hold more
//!   than `--high-water-bytes`, until they are down to half of it (hysteresis, so reading does
//!   not flap). High water alone drops nobody.
//!
//! ```text
//!   one room:                        a member behind
//!     Reading ─────────────────────────────────────────▶ Paused { behind since T }
//!        ▲                                                  │ behind for --lag-timeout, and at
//!        │ nobody behind                                    │ most half the room: the server
//!        └──────────────────────────────────────────────────┘ drops them; the clock restarts
//!
//!   the server:    over --high-water-bytes                 
//!     Reading ─────────────────────────────────────────▶ Paused   (every connection, every room)
//!        ▲ under half of --high-water-bytes                 │
//!        └──────────────────────────────────────────────────┘
//! ```
//!
//! In echo mode each connection only ever sends to itself, so the unit of pausing is the
//! connection: one that is behind is not read until it catches up, and it harms nobody else.
//!
//! A pure type: no sockets, no clock (`now` is handed in), no connection list. Each room keeps
//! its own [`RoomLag`] (in the hub, so it goes away with the room); the server asks before it
//! reads a connection, after every flush, and once a tick, and does the reading and dropping.

use log::debug;
use std::time::{Duration, Instant};

/// What the outboxes of one room hold right now (from the room's `Meter`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Load {
    /// Members whose outbox is more than half full.
    pub behind: usize,
    /// Members of the room (the ones that can be behind).
    pub members: usize,
}

/// One room's part of the policy: since when some member has been behind without a break.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RoomLag {
    /// `None` while nobody is behind: the room is read.
    behind_since: Option<Instant>,
}

impl RoomLag {
    /// True while the room is paused (as of the last [`Backpressure::room_paused`]).
    pub fn is_paused(&self) -> bool {
        self.behind_since.is_some()
    }
}

/// The backpressure policy: see the module docs.
#[derive(Debug)]
pub struct Backpressure {
    /// `--high-water-bytes`: pause the server above it, resume below half of it.
    high_water: usize,
    /// `--lag-timeout`: how long a room's laggards may hold it up before they are dropped.
    lag_timeout: Duration,
    /// The server-wide pause is on (the last resort).
    over: bool,
}

impl Backpressure {
    /// A policy with `--high-water-bytes` and `--lag-timeout`, reading.
    pub fn new(high_water: usize, lag_timeout: Duration) -> Backpressure {
        Backpressure {
            high_water,
            lag_timeout,
            over: false,
        }
    }

    /// True while the whole server is paused (as of the last [`Backpressure::should_pause`]).
    pub fn is_paused(&self) -> bool {
        self.over
    }

    /// Updates the server-wide pause with `held`, what all outboxes hold, and says whether
    /// nothing at all may be read now.
    pub fn should_pause(&mut self, held: usize) -> bool {
        let over = if self.over {
            held > self.high_water / 2
        } else {
            held > self.high_water
        };
        if over != self.over {
            debug!(
                "reading {}: outboxes hold {held} bytes (high water {})",
                if over { "paused" } else { "resumed" },
                self.high_water
            );
        }
        self.over = over;
        over
    }

    /// Updates `room`'s state with its `load` at `now` and says whether its members must not
    /// be read now.
    pub fn room_paused(&self, room: &mut RoomLag, load: Load, now: Instant) -> bool {
        match (load.behind > 0, room.behind_since) {
            (true, None) => {
                debug!("room paused: {} of {} behind", load.behind, load.members);
                room.behind_since = Some(now);
            }
            (false, Some(_)) => {
                debug!("room resumed");
                room.behind_since = None;
            }
            _ => {}
        }
        room.is_paused()
    }

    /// True when the members of `room` behind now have held it up for `--lag-timeout` and are
    /// at most half of it: the server then drops each of them as a slow consumer. The room's
    /// lag clock starts again either way once they are dropped.
    pub fn laggards_due(&self, room: &mut RoomLag, load: Load, now: Instant) -> bool {
        if !self.room_paused(room, load, now) {
            return false;
        }
        let since = room.behind_since.unwrap_or(now);
        if now.saturating_duration_since(since) < self.lag_timeout || 2 * load.behind > load.members
        {
            return false;
        }
        room.behind_since = Some(now);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HIGH_WATER: usize = 1000;
    const LAG: Duration = Duration::from_secs(2);

    fn load(behind: usize, members: usize) -> Load {
        Load { behind, members }
    }

    /// Past high water the server pauses, and it resumes only below half of it (hysteresis).
    #[test]
    fn high_water_pauses_and_half_of_it_resumes() {
        let mut bp = Backpressure::new(HIGH_WATER, LAG);
        assert!(!bp.should_pause(HIGH_WATER), "at the mark: reading");
        assert!(bp.should_pause(HIGH_WATER + 1));
        assert!(
            bp.should_pause(HIGH_WATER / 2 + 1),
            "above half: still paused"
        );
        assert!(!bp.should_pause(HIGH_WATER / 2));
        assert!(!bp.is_paused());
    }

    /// One member behind pauses its room, however little is queued; caught up, it resumes.
    /// Another room is not touched.
    #[test]
    fn a_member_behind_pauses_its_room_only() {
        let t0 = Instant::now();
        let bp = Backpressure::new(HIGH_WATER, LAG);
        let (mut a, mut b) = (RoomLag::default(), RoomLag::default());
        assert!(bp.room_paused(&mut a, load(1, 100), t0));
        assert!(
            !bp.room_paused(&mut b, load(0, 100), t0),
            "another room reads on"
        );
        let later = t0 + Duration::from_millis(10);
        assert!(!bp.room_paused(&mut a, load(0, 100), later));
        assert!(!a.is_paused());
    }

    /// A room's laggards are due to be dropped only after --lag-timeout behind without a break.
    #[test]
    fn laggards_are_due_after_the_lag_timeout() {
        let t0 = Instant::now();
        let bp = Backpressure::new(HIGH_WATER, LAG);
        let mut room = RoomLag::default();
        let lagging = load(1, 100);
        bp.room_paused(&mut room, lagging, t0);
        let almost = t0 + LAG - Duration::from_millis(1);
        assert!(!bp.laggards_due(&mut room, lagging, almost));
        assert!(bp.laggards_due(&mut room, lagging, t0 + LAG));
        assert!(
            !bp.laggards_due(&mut room, lagging, t0 + LAG),
            "once dropped, the lag clock starts again"
        );
        assert!(bp.laggards_due(&mut room, lagging, t0 + 2 * LAG));
    }

    /// Catching up for a moment restarts the room's lag clock.
    #[test]
    fn catching_up_restarts_the_lag_clock() {
        let t0 = Instant::now();
        let bp = Backpressure::new(HIGH_WATER, LAG);
        let mut room = RoomLag::default();
        bp.room_paused(&mut room, load(1, 100), t0);
        bp.room_paused(&mut room, load(0, 100), t0 + LAG / 2);
        let again = t0 + LAG / 2 + Duration::from_millis(1);
        bp.room_paused(&mut room, load(1, 100), again);
        assert!(!bp.laggards_due(&mut room, load(1, 100), t0 + LAG));
        assert!(bp.laggards_due(&mut room, load(1, 100), again + LAG));
    }

    /// When most of a room is behind the bottleneck is the server: nobody is dropped.
    #[test]
    fn nobody_is_dropped_while_most_of_the_room_is_behind() {
        let t0 = Instant::now();
        let bp = Backpressure::new(HIGH_WATER, LAG);
        let mut room = RoomLag::default();
        bp.room_paused(&mut room, load(51, 100), t0);
        assert!(!bp.laggards_due(&mut room, load(51, 100), t0 + 10 * LAG));
        assert!(room.is_paused(), "still paused: they are draining");
        assert!(
            bp.laggards_due(&mut room, load(50, 100), t0 + 10 * LAG),
            "half behind: dropped"
        );
    }

    /// A room with nobody behind is never due, however long the server was over high water.
    #[test]
    fn high_water_alone_drops_nobody() {
        let t0 = Instant::now();
        let mut bp = Backpressure::new(HIGH_WATER, LAG);
        let mut room = RoomLag::default();
        assert!(bp.should_pause(HIGH_WATER + 1));
        assert!(!bp.laggards_due(&mut room, load(0, 100), t0 + 10 * LAG));
    }
}
