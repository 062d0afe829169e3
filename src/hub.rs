//! Rooms and fan-out: who receives what. No sockets here.
//!
//! A room is named by the request path of the WebSocket upgrade (`ws://host:1234/kitchen` joins
//! `/kitchen`; Qt's `chatclient.html`, which connects to `ws://localhost:1234`, joins `/`). A room
//! appears with its first member and vanishes with its last, like Qt's `m_clients` list, one per
//! path.
//!
//! The hub only answers "who is in this room"; the server walks that list and queues the one
//! encoded frame into each member's outbox. Members are kept in a `Vec` because the hot path is
//! iterating them for every message; leaving is a linear scan, which is cheap next to the
//! fan-out it enables (a 10,000-member scan is a few microseconds).

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

/// One room: its name and its members, in no particular order (see [`Hub::leave`]).
#[derive(Debug)]
pub struct Room {
    /// The request path that names it, e.g. `/` or `/kitchen`.
    pub name: Box<str>,
    /// Connections in the room. Each sender's messages reach each member in the order sent
    /// (one outbox per member keeps it), whatever the order of this list.
    pub members: Vec<ConnId>,
}

/// All rooms of one server.
#[derive(Debug, Default)]
pub struct Hub {
    /// Rooms by id; a slab so ids stay small and freed ids are reused.
    rooms: Slab<Room>,
    /// Room ids by name, for joining.
    by_name: HashMap<Box<str>, RoomId>,
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
                }));
                self.by_name.insert(name.into(), id);
                id
            }
        };
        self.rooms[id.0].members.push(conn);
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

    /// The members of `room` (empty if there is no such room).
    pub fn members(&self, room: RoomId) -> &[ConnId] {
        self.rooms.get(room.0).map_or(&[], |r| &r.members)
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
