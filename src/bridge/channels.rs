//! A node's channels: subscribing when a room appears here, unsubscribing when it vanishes,
//! and publishing what its members say. Called by the server; none of it blocks: commands go
//! into the links' bounded queues and leave on the bridge's next turn.

use super::Bridge;
use crate::hub::RoomId;
use crate::redis;

impl Bridge {
    /// A room appeared on this node: subscribe to its channel.
    pub fn subscribe(&mut self, room: RoomId, name: &str) {
        let channel: Box<[u8]> = format!("{}{name}", self.prefix).into_bytes().into();
        if let Some(links) = self.state.links_mut() {
            links.sub.send(&[b"SUBSCRIBE", &channel]);
        }
        self.rooms.insert(channel.clone(), room);
        self.channels.insert(room, channel);
    }

    /// A room vanished from this node: unsubscribe from its channel.
    pub fn unsubscribe(&mut self, room: RoomId) {
        let Some(channel) = self.channels.remove(&room) else {
            return;
        };
        self.rooms.remove(&channel);
        if let Some(links) = self.state.links_mut() {
            links.sub.send(&[b"UNSUBSCRIBE", &channel]);
        }
    }

    /// Queues `frame` (a relayed message, as encoded for clients) for the other nodes, or
    /// counts it as dropped if Redis is down or the queue is full. Never blocks.
    pub fn publish(&mut self, room: RoomId, frame: &[u8]) {
        let (Some(links), Some(channel)) = (self.state.links_mut(), self.channels.get(&room))
        else {
            self.counters.dropped += 1;
            return;
        };
        let node = self.opts.node_id.as_bytes();
        let payload_len = node.len() + 1 + frame.len();
        let len = redis::command_len(&[7, channel.len(), payload_len]);
        let publ = &mut links.publ;
        if publ.queued() + len > self.opts.queue_bytes {
            self.counters.dropped += 1;
            return;
        }
        publ.awaiting += 1;
        redis::array_header(&mut publ.wbuf, 3);
        redis::bulk(&mut publ.wbuf, &[b"PUBLISH"]);
        redis::bulk(&mut publ.wbuf, &[channel]);
        redis::bulk(&mut publ.wbuf, &[node, b"\n", frame]);
        self.counters.published += 1;
    }
}
