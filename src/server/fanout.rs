//! The end of the reading: each room's batch of this turn cut into slices for its members
//! (`hub/batch.rs` draws how), and the backpressure that decides who is read at all
//! (`backpressure.rs`): parked connections, rooms that resume, laggards dropped.
//!
//! ```text
//!   read_ready ─▶ messages appended to their room's batch ─┐
//!   bridge_turn ─▶ other nodes' messages, same batches ─────┤
//!                                                           ▼
//!   fan_out: per room, seal the batch; per member, its slices ─▶ outboxes (charged, capped)
//!   flush_dirty ─▶ outboxes drain ─▶ unpark: rooms with nobody behind any more are read again
//! ```

use super::Server;
use crate::config::Mode;
use crate::conn::Sent;
use crate::hub::{ConnId, RoomId};
use bytes::Bytes;
use log::warn;
use std::collections::VecDeque;
use std::time::Instant;

impl Server {
    /// Delivers every room's batch of this turn: one shared buffer per room, slices of it to
    /// each member (never its own frames, nothing from before it joined), counted per frame.
    pub(super) fn fan_out(&mut self, now: Instant) {
        // Reused for every member: no allocation per delivery.
        let (mut cuts, mut slices) = (Vec::new(), Vec::<Bytes>::new());
        for room in self.hub.take_batched() {
            let Some(r) = self.hub.room_mut(room) else {
                continue; // vanished this turn: nobody left to deliver to
            };
            if r.batch.is_empty() {
                continue;
            }
            let sealed = r.batch.seal();
            for &to in &r.members {
                let frames = sealed.cut(to, &mut cuts);
                if frames == 0 {
                    continue;
                }
                slices.clear();
                slices.extend(cuts.iter().map(|c| sealed.buf.slice(c.clone())));
                // Members are live slab entries: they leave the room before their slot is freed.
                let slot = &mut self.slots[to.0];
                if slot.conn.send_shared(&slices, sealed.buf.len(), now) == Sent::Queued {
                    self.stats.deliveries += frames as u64;
                }
                slot.mark_dirty(to, &mut self.dirty);
            }
            r.batch.clear();
        }
    }

    /// True if connection `id` must not be read now: it is open and its room is paused (in
    /// echo mode: it is behind itself). Anyone else is read, to hear their Close or request.
    pub(super) fn is_held_back(&mut self, id: ConnId, now: Instant) -> bool {
        let slot = &self.slots[id.0];
        if !slot.conn.is_open() {
            return false;
        }
        match (self.config.mode, slot.room) {
            (Mode::Echo, _) => slot.conn.is_behind(),
            (Mode::Chat, Some(room)) => self.room_paused(room, now),
            (Mode::Chat, None) => false,
        }
    }

    /// True while `room` is paused: one of its members is behind.
    pub(super) fn room_paused(&mut self, room: RoomId, now: Instant) -> bool {
        let Some(r) = self.hub.room_mut(room) else {
            return false;
        };
        let load = r.load();
        self.backpressure.room_paused(&mut r.lag, load, now)
    }

    /// After the flush, at the end of every turn: the server-wide pause is brought up to date
    /// and parked connections whose room caught up go back to `ready`, so `poll` does not
    /// sleep while they have input (a pause ends when the outboxes drain, not at the next
    /// tick). This runs after the slots of the turn are freed, so no parked id outlives its
    /// connection into a turn where its key could be reused.
    pub(super) fn unpark(&mut self, now: Instant) {
        self.backpressure.should_pause(self.meter.get());
        if !self.parked.frames.is_empty() {
            self.release_waiting(now);
        }
        let parked = std::mem::take(&mut self.parked.conns);
        for id in parked {
            if !self.slots.contains(id.0) {
                continue; // freed this turn
            }
            if self.is_held_back(id, now) {
                self.parked.conns.push(id);
            } else {
                debug_assert!(self.slots[id.0].marks.ready, "a parked connection is ready");
                self.ready.push_back(id);
            }
        }
    }

    /// Frames from other nodes that waited for a room that is no longer paused go into its
    /// batch, in the order they came, a quarter of `--max-queue-bytes` a turn at most (as
    /// reading does: a healthy member never gets more than that in one turn); those of a room
    /// that vanished are dropped.
    pub(super) fn release_waiting(&mut self, now: Instant) {
        let mut budget = self.config.max_queue_bytes / 4;
        let mut kept = VecDeque::new();
        while let Some((room, frame)) = self.parked.take_front() {
            if self.hub.room(room).is_none() {
                continue;
            }
            if budget == 0 || self.room_paused(room, now) {
                kept.push_back((room, frame));
                continue;
            }
            budget = budget.saturating_sub(frame.len());
            self.hub
                .append(room, None, |buf| buf.extend_from_slice(&frame));
        }
        for (room, frame) in kept {
            self.parked.wait(room, frame);
        }
    }

    /// Drops, as slow consumers, the members that held their room up for `--lag-timeout` (the
    /// backpressure policy says when). Runs once a tick. In echo mode nobody waits for anyone
    /// else, so nobody is dropped for lagging (a reader that is stuck for good meets
    /// `--write-timeout`).
    pub(super) fn drop_laggards(&mut self, now: Instant) {
        if self.config.mode == Mode::Echo {
            return;
        }
        for (_, room) in self.hub.rooms_mut() {
            let load = room.load();
            if !self.backpressure.laggards_due(&mut room.lag, load, now) {
                continue;
            }
            for &id in &room.members {
                let slot = &mut self.slots[id.0];
                if slot.conn.is_behind() {
                    warn!(
                        "conn={id} slow consumer: {} bytes queued, held up room {} for {:?}",
                        slot.conn.queued(),
                        room.name,
                        self.config.lag_timeout
                    );
                    slot.conn.drop_slow_consumer(now);
                    slot.mark_dirty(id, &mut self.dirty);
                }
            }
        }
    }
}
