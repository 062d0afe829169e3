//! A connection's place in the server: its [`Slot`] in the slab, and the end of every turn,
//! where touched connections are flushed (a bounded number each turn), their interest follows
//! their state, and closed ones are freed.
//!
//! The connection itself (`conn.rs`) knows nothing of rooms, addresses, the poller or the
//! server's lists; what the server keeps about it lives here, beside it.

use super::Server;
use crate::conn::Conn;
use crate::hub::{ConnId, RoomId};
use crate::stream::Stream;
use log::{debug, warn};
use mio::{Interest, Token};
use std::collections::VecDeque;
use std::net::IpAddr;
use std::time::Instant;

/// Connections written at most in one turn; the rest wait, in order, for the next turns.
///
/// Writing is where a chat server's time goes: one system call per recipient, each a few
/// microseconds of kernel work (on loopback, the receiver's side of TCP too). A message for a
/// room of 1,000 takes milliseconds to write out; if the loop wrote it all before reading
/// again, a message that arrived meanwhile would wait for the whole of it, and then take as
/// long again. Writing a slice of the queue per turn and then polling lets the new message
/// in early: it is fanned out into the outboxes still waiting, so each of those members gets
/// both in one `writev`, sooner, for the cost of one call instead of two.
///
/// ```text
///   all at once:   [m1 → 1000 members           ][m2 → 1000 members           ]
///   64 per turn:   [m1 → 64][poll: m2 arrived][m1+m2 → 64][m1+m2 → 64] … [m2 → the first 64]
/// ```
///
/// A connection waits at most (queued ÷ 64) turns, each of which reads at most a quarter of
/// `--max-queue-bytes` (`read_ready`); a member whose outbox grows past half while it waits
/// pauses its room, as any member does (`backpressure.rs`). With one message now and then
/// nothing changes but the calls: a turn with no new input costs one `epoll_wait` that
/// returns at once. Measured: `benches/sockets.sh uws` (docs/figures/sockets/uws-*.txt).
pub(super) const FLUSH_PER_TURN: usize = 64;

/// One connection and the server's bookkeeping for it.
pub(super) struct Slot {
    /// The connection: its socket, phase and outbox.
    pub(super) conn: Conn<Stream>,
    /// The client's address, for `--max-per-ip`.
    pub(super) peer: IpAddr,
    /// The room, once upgraded (the hub's list of members says the same, the other way).
    pub(super) room: Option<RoomId>,
    /// Which of the server's per-turn lists this connection is in, and what the poller
    /// watches for it.
    pub(super) marks: Marks,
}

/// Which of the server's per-turn lists a connection is in, so it is queued at most once in
/// each, and the interest registered for it (a memo: `reregister` is a system call).
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Marks {
    /// In `ready`: the socket may hold unread bytes. Readiness is edge-triggered, so this is
    /// remembered until the connection says it read all there was (`Action::Idle`).
    pub(super) ready: bool,
    /// A readiness event reported the peer's FIN or an error: from now on the connection reads
    /// until the kernel says `WouldBlock` or end-of-stream, not only until a short read (see
    /// `conn/scratch.rs`, "One read per readable event").
    pub(super) peer_closed: bool,
    /// In `dirty`: to flush at the end of this turn (or a later one: `FLUSH_PER_TURN`).
    pub(super) dirty: bool,
    /// WRITABLE is registered with the poller now (READABLE always is).
    pub(super) writable: bool,
}

impl Slot {
    /// A just-accepted connection from `peer`.
    pub(super) fn new(conn: Conn<Stream>, peer: IpAddr) -> Slot {
        Slot {
            conn,
            peer,
            room: None,
            marks: Marks::default(),
        }
    }

    /// Queues this connection for reading, once.
    pub(super) fn mark_ready(&mut self, id: ConnId, ready: &mut VecDeque<ConnId>) {
        if !self.marks.ready {
            self.marks.ready = true;
            ready.push_back(id);
        }
    }

    /// Queues this connection for flushing, once; turns flush the queue from the front.
    pub(super) fn mark_dirty(&mut self, id: ConnId, dirty: &mut VecDeque<ConnId>) {
        if !self.marks.dirty {
            self.marks.dirty = true;
            dirty.push_back(id);
        }
    }
}

impl Server {
    /// Writes what is queued for the first [`FLUSH_PER_TURN`] touched connections, sets each
    /// one's interest to match what it still has queued, and frees those that are closed. The
    /// others stay queued, and `poll` does not sleep while any are. This is the end of the
    /// batch of events.
    pub(super) fn flush_dirty(&mut self, now: Instant) {
        for _ in 0..self.dirty.len().min(FLUSH_PER_TURN) {
            let Some(id) = self.dirty.pop_front() else {
                break;
            };
            let Some(slot) = self.slots.get_mut(id.0) else {
                continue;
            };
            slot.marks.dirty = false;
            self.stats.bytes_out += slot.conn.flush(now) as u64;
            // Closes (and answers, drops) are counted in the turn they happen.
            self.stats.count(slot.conn.take_tally());
            if slot.conn.is_closed() {
                self.remove(id);
                continue;
            }
            // Interest follows state: WRITABLE only while bytes wait (invariant 5).
            let want_write = slot.conn.wants_write();
            if want_write != slot.marks.writable {
                let interest = if want_write {
                    Interest::READABLE | Interest::WRITABLE
                } else {
                    Interest::READABLE
                };
                slot.marks.writable = want_write;
                let registry = self.poll.registry();
                if let Err(e) = registry.reregister(slot.conn.socket_mut(), Token(id.0), interest) {
                    warn!("conn={id} reregister: {e}");
                    self.remove(id);
                }
            }
        }
    }

    /// Frees a closed connection: out of its room, socket closed (on drop), which also takes
    /// it off the poller.
    fn remove(&mut self, id: ConnId) {
        let Some(mut slot) = self.slots.try_remove(id.0) else {
            return;
        };
        if let Some(room) = slot.room {
            debug!("conn={id} left room {}", self.hub.name(room));
            // The room's last member here: stop hearing the other nodes' messages for it.
            #[cfg(feature = "redis")]
            if let (Some(bridge), [_]) = (&mut self.bridge, self.hub.members(room)) {
                bridge.unsubscribe(room);
            }
            self.hub.leave(room, id);
            self.admission.leave(slot.peer);
        }
        self.stats.count(slot.conn.take_tally());
        // No `deregister`: closing the socket (dropping `slot`) takes it out of the poller, as
        // epoll and kqueue both do for a descriptor nobody else holds, and we never duplicate
        // one. That saves an `epoll_ctl` per connection; events already in this batch for it
        // find its slot empty (freed slots are skipped: invariant 7).
    }
}
