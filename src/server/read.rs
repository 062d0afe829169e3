//! Reading and relaying: readiness in, each queued connection read until it has nothing more
//! for now (one read, usually: see `conn/scratch.rs`), and what it asks for done (the [`Action`] seam, described in `conn.rs`).
//!
//! Echo and chat differ in one place only, [`Server::relay`]: a message goes back to its
//! sender, or to every other member of the sender's room (and, with `--redis`, to the room on
//! the other nodes). Either way it is counted there, once.

use super::Server;
use crate::config::Mode;
use crate::conn::{Action, Sent};
use crate::hub::{ConnId, RoomId};
use bytes::Bytes;
use std::time::Instant;

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
    /// more to read goes to the back of the queue for the next turn.
    ///
    /// A turn reads at most a quarter of `--max-queue-bytes` in all: every byte read may be
    /// queued to every receiver before the end-of-turn flush, so this keeps a healthy receiver
    /// far from its cap within one turn, whatever the number of senders.
    pub(super) fn read_ready(&mut self, now: Instant) {
        self.scratch.start_turn(self.config.max_queue_bytes / 4);
        for _ in 0..self.ready.len() {
            if self.scratch.is_spent() || self.backpressure.should_pause(self.load(), now) {
                return;
            }
            let Some(id) = self.ready.pop_front() else {
                return;
            };
            if let Some(slot) = self.slots.get_mut(id.0) {
                slot.marks.ready = false;
                self.read(id, now);
            }
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
                Action::Message(frame) => self.relay(id, frame, now),
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

    /// A message from `from`: back to it (echo), or to every other member of its room (chat).
    fn relay(&mut self, from: ConnId, frame: Bytes, now: Instant) {
        self.stats.messages_in += 1;
        self.stats.bytes_in += frame.len() as u64;
        if self.config.mode == Mode::Echo {
            self.send(from, frame, now);
            return;
        }
        // Only an upgraded connection has messages, and it joined its room when it upgraded.
        let Some(room) = self.slots[from.0].room else {
            return;
        };
        // The room's members on the other nodes (never blocks: see bridge.rs).
        #[cfg(feature = "redis")]
        if let Some(bridge) = &mut self.bridge {
            bridge.publish(room, &frame);
        }
        self.deliver(room, &frame, Some(from), now);
    }

    /// Queues `frame` for every member of `room` except `except` (the sender, when local).
    pub(super) fn deliver(
        &mut self,
        room: RoomId,
        frame: &Bytes,
        except: Option<ConnId>,
        now: Instant,
    ) {
        for &to in self.hub.members(room) {
            if Some(to) != except {
                // Members are live slab entries: they leave the room before their slot is freed.
                let slot = &mut self.slots[to.0];
                if slot.conn.send(frame.clone(), now) == Sent::Queued {
                    self.stats.deliveries += 1;
                }
                slot.mark_dirty(to, &mut self.dirty);
            }
        }
    }

    /// Queues `frame` for connection `to` alone, counting it if it was queued.
    fn send(&mut self, to: ConnId, frame: Bytes, now: Instant) {
        let slot = &mut self.slots[to.0];
        if slot.conn.send(frame, now) == Sent::Queued {
            self.stats.deliveries += 1;
        }
        slot.mark_dirty(to, &mut self.dirty);
    }

    /// The Redis bridge's turn: its connections and timers; then what other nodes sent goes
    /// to this node's members of the room (see bridge.rs).
    #[cfg(feature = "redis")]
    pub(super) fn bridge_turn(&mut self, now: Instant) {
        let Some(bridge) = &mut self.bridge else {
            return;
        };
        let paused = self.backpressure.is_paused();
        for (room, frame) in bridge.turn(self.poll.registry(), now, paused) {
            self.deliver(room, &frame, None, now);
        }
    }
}
