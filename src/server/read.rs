//! Reading and relaying: readiness in, each queued connection read until it has nothing more
//! for now (one read, usually: see `conn/scratch.rs`), and what it asks for done (the [`Action`] seam, described in `conn.rs`).
//!
//! Echo and chat differ in one place only, [`Server::relay`]: a message goes back to its
//! sender at once, or into the batch of the sender's room, which reaches every other member at
//! the end of the reading (`server/fanout.rs`), and, with `--redis`, the room on the other
//! nodes. Either way it is counted there, once.
//!
//! A connection whose room is paused (one of its members is behind, `backpressure.rs`) is not
//! read: it is *parked* until the room catches up, then goes back to `ready`. Its readiness is
//! kept meanwhile (edge-triggered epoll would not report it again).

use super::Server;
use crate::config::Mode;
use crate::conn::{Action, Sent};
use crate::hub::{ConnId, RoomId};
use crate::wire::{encode_into, framed_len};
use bytes::Bytes;
use std::collections::{HashMap, VecDeque};
use std::time::Instant;
use tungstenite::Message;

impl Server {
    /// A connection's socket is readable and/or writable.
    pub(super) fn on_event(&mut self, id: ConnId, event: &mio::event::Event) {
        // A stale event for a slot freed in an earlier turn finds nothing (or a new connection,
        // for which a spurious readiness is harmless: reads and writes stop at WouldBlock).
        let Some(slot) = self.slots.get_mut(id.0) else {
            return;
        };
        if event.is_read_closed() || event.is_error() {
            slot.marks.peer_closed = true;
        }
        if event.is_readable() || event.is_read_closed() || event.is_error() {
            slot.mark_ready(id, &mut self.ready);
        }
        if event.is_writable() || event.is_write_closed() {
            slot.mark_dirty(id, &mut self.dirty);
        }
    }

    /// Reads every connection queued in `ready` once, doing what each asks. A connection with
    /// more to read goes to the back of the queue for the next turn; one whose room is paused
    /// is parked instead. Nothing is read while the server as a whole is over high water.
    ///
    /// A turn reads at most a quarter of `--max-queue-bytes` in all: every byte read may be
    /// queued to every receiver before the end-of-turn flush, so this keeps a healthy receiver
    /// far from its cap within one turn, whatever the number of senders.
    pub(super) fn read_ready(&mut self, now: Instant) {
        self.scratch.start_turn(self.config.max_queue_bytes / 4);
        for _ in 0..self.ready.len() {
            if self.scratch.is_spent() || self.backpressure.should_pause(self.meter.get()) {
                return;
            }
            let Some(id) = self.ready.pop_front() else {
                return;
            };
            if !self.slots.contains(id.0) {
                continue;
            }
            if self.is_held_back(id, now) {
                // Still marked ready: it waits in `parked`, not in `ready`.
                self.parked.conns.push(id);
                continue;
            }
            self.slots[id.0].marks.ready = false;
            self.read(id, now);
        }
    }

    /// Reads connection `id` until it says `Idle` or `Yield`, doing each [`Action`] it returns.
    fn read(&mut self, id: ConnId, now: Instant) {
        // The buffer is taken out for the loop (the actions need `&mut self`) and put back;
        // moving it moves a pointer, not 64 KiB.
        let mut scratch = std::mem::take(&mut self.scratch);
        scratch.start_conn(self.slots[id.0].marks.peer_closed);
        loop {
            let slot = &mut self.slots[id.0];
            match slot.conn.on_readable(&mut scratch, now, &self.config) {
                Action::Upgrade { room } => self.admit(id, &room, now),
                Action::Report { report, head_only } => {
                    let body = self.report(report);
                    self.slots[id.0]
                        .conn
                        .answer_report(report, &body, head_only, now);
                }
                Action::Message(msg) => self.relay(id, &msg, now),
                Action::Idle => break,
                Action::Yield => {
                    slot.mark_ready(id, &mut self.ready);
                    break;
                }
            }
        }
        self.scratch = scratch;
        self.slots[id.0].mark_dirty(id, &mut self.dirty);
    }

    /// A message from `from`: back to it (echo), or into its room's batch (chat).
    fn relay(&mut self, from: ConnId, msg: &Message, now: Instant) {
        self.stats.messages_in += 1;
        if self.config.mode == Mode::Echo {
            // One recipient: nothing to share, and the echo must be queued now, before
            // whatever tungstenite answers to the bytes behind it (a Pong, a Close).
            self.stats.bytes_in += framed_len(msg) as u64;
            let slot = &mut self.slots[from.0];
            if slot.conn.send_own(|buf| encode_into(msg, buf), now) == Sent::Queued {
                self.stats.deliveries += 1;
            }
            return;
        }
        // Only an upgraded connection has messages, and it joined its room when it upgraded.
        let Some(room) = self.slots[from.0].room else {
            return;
        };
        // Alone in its room, and no other node shares it: nobody to deliver to, so no batch.
        // (Besides the work, this spares the heap a big message's second copy while the
        // sender's grown read buffer is given back; see conn/edges.rs.)
        let alone = self.hub.room(room).is_some_and(|r| r.members.len() == 1);
        #[cfg(feature = "redis")]
        let alone = alone && self.bridge.is_none();
        if alone {
            self.stats.bytes_in += framed_len(msg) as u64;
            return;
        }
        let Some(at) = self
            .hub
            .append(room, Some(from), |buf| encode_into(msg, buf))
        else {
            return;
        };
        self.stats.bytes_in += at.len() as u64;
        // The room's members on the other nodes (never blocks: see bridge.rs).
        #[cfg(feature = "redis")]
        if let (Some(bridge), Some(r)) = (&mut self.bridge, self.hub.room(room)) {
            bridge.publish(room, r.batch.bytes(at));
        }
    }

    /// The Redis bridge's turn: its connections and timers; then what other nodes sent goes
    /// into the room's batch, like a local message from nobody here, or waits while the room
    /// is paused (see bridge.rs). While too much waits, the bridge reads nothing.
    #[cfg(feature = "redis")]
    pub(super) fn bridge_turn(&mut self, now: Instant) {
        if self.bridge.is_none() {
            return;
        }
        let paused = self.bridge_paused();
        let Some(bridge) = &mut self.bridge else {
            return;
        };
        for (room, frame) in bridge.turn(self.poll.registry(), now, paused) {
            // Behind earlier frames of its room that still wait, so each node's order holds.
            if self.room_paused(room, now) || self.parked.waiting.contains_key(&room) {
                self.parked.wait(room, frame);
            } else {
                self.hub
                    .append(room, None, |buf| buf.extend_from_slice(&frame));
            }
        }
    }

    /// True while the bridge must not read Redis: the server is over high water, or frames
    /// for paused rooms already fill a quarter of it. (One connection brings every room's
    /// messages, so past that bound every room's input waits in Redis until a room resumes.)
    #[cfg(feature = "redis")]
    pub(super) fn bridge_paused(&self) -> bool {
        self.backpressure.is_paused()
            || self.parked.waiting_bytes >= self.config.high_water_bytes / 4
    }
}

/// What waits for a paused room (or, in echo mode, a connection that is behind) to catch up:
/// connections with unread input, and frames from other nodes.
#[derive(Debug, Default)]
pub(super) struct Parked {
    /// Connections not read while their room is paused; each is still marked ready.
    pub(super) conns: Vec<ConnId>,
    /// Frames from other nodes for paused rooms, in the order they came.
    pub(super) frames: VecDeque<(RoomId, Bytes)>,
    /// How many of `frames` each room has: a room's new frames queue up behind its old ones.
    pub(super) waiting: HashMap<RoomId, usize>,
    /// Bytes in `frames`: past a quarter of `--high-water-bytes` the bridge stops reading.
    pub(super) waiting_bytes: usize,
}

impl Parked {
    /// Keeps `frame` for `room` until the room resumes.
    pub(super) fn wait(&mut self, room: RoomId, frame: Bytes) {
        self.waiting_bytes += frame.len();
        *self.waiting.entry(room).or_default() += 1;
        self.frames.push_back((room, frame));
    }

    /// Takes the frame at the front off the list.
    pub(super) fn take_front(&mut self) -> Option<(RoomId, Bytes)> {
        let (room, frame) = self.frames.pop_front()?;
        self.waiting_bytes -= frame.len();
        if let Some(n) = self.waiting.get_mut(&room) {
            *n -= 1;
            if *n == 0 {
                self.waiting.remove(&room);
            }
        }
        Some((room, frame))
    }
}
