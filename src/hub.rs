//! Rooms and fan-out: who receives what. No sockets here.
//!
//! A room is named by the request path of the WebSocket upgrade (`ws://host:1234/kitchen` joins
//! `/kitchen`; Qt's `chatclient.html`, which connects to `ws://localhost:1234`, joins `/`). A room
//! appears with its first member and vanishes with its last, like Qt's `m_clients` list, one per
//! path.
//!
//! Besides its members, a room keeps what the server needs to relay to them: this turn's
//! [`Batch`] of messages (`hub/batch.rs`: one buffer per room and turn, each member gets slices
//! of it), the [`Meter`] of its members' outboxes and its [`RoomLag`] (the room's part of the
//! backpressure policy, `backpressure.rs`).
//!
//! Members are kept in a `Vec` because the hot path is iterating them for every turn's batch;
//! leaving is a linear scan, which is cheap next to the fan-out it enables (a 10,000-member scan
//! is a few microseconds).

mod batch;

pub use batch::{Batch, Sealed};

use crate::backpressure::{Load, RoomLag};
use crate::outbox::Meter;
use slab::Slab;
use std::collections::HashMap;
use std::fmt;

/// A connection's key in the server's slab (also its `mio::Token`). A newtype, so a connection
/// and a room can never be swapped by mistake.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConnId(pub usize);

/// A room's key in the hub.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RoomId(pub usize);

impl fmt::Display for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// One room: its name, its members in no particular order (see [`Hub::leave`]), and what the
/// server keeps to relay to them.
#[derive(Debug)]
pub struct Room {
    /// The request path that names it, e.g. `/` or `/kitchen`.
    pub name: Box<str>,
    /// Connections in the room. Each sender's messages reach each member in the order sent
    /// (one outbox per member keeps it), whatever the order of this list.
    pub members: Vec<ConnId>,
    /// This turn's messages for the room, delivered at the end of the reading.
    pub batch: Batch,
    /// What the members' outboxes hold, and how many are behind.
    pub meter: Meter,
    /// Since when a member has been behind: while one is, the room is not read.
    pub lag: RoomLag,
}

impl Room {
    /// What the members' outboxes hold now, for the backpressure policy.
    pub fn load(&self) -> Load {
        Load {
            behind: self.meter.behind(),
            members: self.members.len(),
        }
    }
}

/// All rooms of one server.
#[derive(Debug, Default)]
pub struct Hub {
    /// Rooms by id; a slab so ids stay small and freed ids are reused.
    rooms: Slab<Room>,
    /// Room ids by name, for joining.
    by_name: HashMap<Box<str>, RoomId>,
    /// Rooms whose batch has frames this turn, each once.
    batched: Vec<RoomId>,
}

impl Hub {
    /// Adds `conn` to the room called `name`, creating the room if it is new.
    pub fn join(&mut self, name: &str, conn: ConnId) -> RoomId {
        let id = match self.by_name.get(name) {
            Some(&id) => id,
            None => {
                let id = RoomId(self.rooms.insert(Room {
                    name: name.into(),
                    members: Vec::new(),
                    batch: Batch::default(),
                    meter: Meter::default(),
                    lag: RoomLag::default(),
                }));
                self.by_name.insert(name.into(), id);
                id
            }
        };
        let room = &mut self.rooms[id.0];
        room.members.push(conn);
        // Only what is relayed from now on is for it: no message, and no part of one, from
        // earlier in this turn.
        room.batch.joined(conn);
        id
    }

    /// Removes `conn` from `room`; the room vanishes with its last member. The last member
    /// takes the leaver's place in the list (`swap_remove`: O(1) after the scan).
    pub fn leave(&mut self, room: RoomId, conn: ConnId) {
        let Some(r) = self.rooms.get_mut(room.0) else {
            return;
        };
        if let Some(i) = r.members.iter().position(|&m| m == conn) {
            // Order among members does not matter (each sender's order is kept per outbox).
            r.members.swap_remove(i);
        }
        if r.members.is_empty() {
            let r = self.rooms.remove(room.0);
            self.by_name.remove(&r.name);
        }
    }

    /// Appends one frame from `from` (`None`: another node) to `room`'s batch for this turn;
    /// returns where in the batch it lies, or `None` if there is no such room.
    pub fn append(
        &mut self,
        room: RoomId,
        from: Option<ConnId>,
        encode: impl FnOnce(&mut Vec<u8>),
    ) -> Option<std::ops::Range<usize>> {
        let r = self.rooms.get_mut(room.0)?;
        if r.batch.is_empty() {
            self.batched.push(room);
        }
        Some(r.batch.push(from, encode))
    }

    /// The rooms with frames batched this turn, each once; the list starts afresh.
    pub fn take_batched(&mut self) -> Vec<RoomId> {
        std::mem::take(&mut self.batched)
    }

    /// True while some room has frames batched and not yet delivered.
    pub fn has_batched(&self) -> bool {
        !self.batched.is_empty()
    }

    /// The meter `room`'s members report to (a new, unshared one if there is no such room).
    pub fn meter(&self, room: RoomId) -> Meter {
        self.rooms
            .get(room.0)
            .map_or_else(Meter::default, |r| r.meter.clone())
    }

    /// The room, if it exists.
    pub fn room(&self, room: RoomId) -> Option<&Room> {
        self.rooms.get(room.0)
    }

    /// The room, if it exists, to change.
    pub fn room_mut(&mut self, room: RoomId) -> Option<&mut Room> {
        self.rooms.get_mut(room.0)
    }

    /// Every room, to change (the tick's round of laggards).
    pub fn rooms_mut(&mut self) -> impl Iterator<Item = (RoomId, &mut Room)> {
        self.rooms.iter_mut().map(|(id, r)| (RoomId(id), r))
    }

    /// The members of `room` (empty if there is no such room).
    pub fn members(&self, room: RoomId) -> &[ConnId] {
        self.rooms.get(room.0).map_or(&[], |r| &r.members)
    }

    /// How many rooms are paused now (a member behind, as of their last check).
    pub fn rooms_paused(&self) -> usize {
        self.rooms.iter().filter(|(_, r)| r.lag.is_paused()).count()
    }

    /// How many rooms exist now.
    pub fn len(&self) -> usize {
        self.rooms.len()
    }

    /// True when there are no rooms.
    pub fn is_empty(&self) -> bool {
        self.rooms.is_empty()
    }

    /// The room's name, for logs.
    pub fn name(&self, room: RoomId) -> &str {
        self.rooms.get(room.0).map_or("?", |r| &r.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Members of the same path share a room; other paths are other rooms.
    #[test]
    fn same_path_same_room_other_path_other_room() {
        let mut hub = Hub::default();
        let a = hub.join("/", ConnId(1));
        let b = hub.join("/", ConnId(2));
        let k = hub.join("/kitchen", ConnId(3));
        assert_eq!(a, b);
        assert_ne!(a, k);
        assert_eq!(hub.members(a), &[ConnId(1), ConnId(2)]);
        assert_eq!(hub.members(k), &[ConnId(3)]);
    }

    /// A room vanishes with its last member and its name can be taken again.
    #[test]
    fn room_vanishes_with_its_last_member() {
        let mut hub = Hub::default();
        let r = hub.join("/x", ConnId(7));
        hub.join("/x", ConnId(8));
        hub.leave(r, ConnId(7));
        assert_eq!(hub.members(r), &[ConnId(8)]);
        hub.leave(r, ConnId(8));
        assert!(hub.is_empty());
        assert_eq!(hub.members(r), &[] as &[ConnId]);
        let again = hub.join("/x", ConnId(9));
        assert_eq!(hub.members(again), &[ConnId(9)]);
    }

    /// Leaving twice, or leaving a room that is gone, is harmless.
    #[test]
    fn leaving_twice_is_harmless() {
        let mut hub = Hub::default();
        let r = hub.join("/", ConnId(1));
        hub.join("/", ConnId(2));
        hub.leave(r, ConnId(1));
        hub.leave(r, ConnId(1));
        assert_eq!(hub.members(r), &[ConnId(2)]);
        hub.leave(RoomId(99), ConnId(1));
    }
}
