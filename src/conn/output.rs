//! The way out of a connection: what the server relays (slices of a room's batch, or an echo),
//! the flush that writes them (one `writev` for many, see `outbox.rs`), the FIN that ends a
//! lingering connection, and the slow consumer, whose backlog is dropped.

use super::{Conn, Phase, Sent, Socket};
use crate::outbox::Meter;
use bytes::Bytes;
use log::warn;
use std::io;
use std::time::Instant;
use tungstenite::protocol::frame::coding::CloseCode;

impl<S: Socket> Conn<S> {
    /// Queues one frame in a buffer of its own. See [`Sent`]: a full outbox makes this
    /// connection a slow consumer, dropped here.
    pub fn send(&mut self, frame: Bytes, now: Instant) -> Sent {
        let whole = frame.len();
        self.send_shared(std::slice::from_ref(&frame), whole, now)
    }

    /// Queues a frame for this connection alone (an echo), written by `encode` at the end of
    /// its outbox, so a burst of echoes costs one chunk. See [`Sent`]: past the cap this
    /// connection is a slow consumer, dropped here.
    pub fn send_own(&mut self, encode: impl FnOnce(&mut Vec<u8>), now: Instant) -> Sent {
        if !self.is_open() {
            return Sent::Skipped;
        }
        if self.outbox.append(encode).is_err() {
            return self.overflow(now);
        }
        self.stalled_since.get_or_insert(now);
        Sent::Queued
    }

    /// Queues `slices` of one buffer of `whole` bytes that other connections share (a room's
    /// batch, `hub/batch.rs`), all or nothing. See [`Sent`]: past the cap this connection is a
    /// slow consumer, dropped here.
    pub fn send_shared(&mut self, slices: &[Bytes], whole: usize, now: Instant) -> Sent {
        if !self.is_open() {
            return Sent::Skipped;
        }
        if self.outbox.push_shared(slices, whole).is_err() {
            return self.overflow(now);
        }
        self.stalled_since.get_or_insert(now);
        Sent::Queued
    }

    /// What was handed to this connection would pass its cap: it is a slow consumer.
    fn overflow(&mut self, now: Instant) -> Sent {
        warn!(
            "conn={} slow consumer: {} bytes queued",
            self.id,
            self.queued()
        );
        self.drop_slow_consumer(now);
        Sent::Dropped
    }

    /// This connection joined a room: its outbox reports to the room's meter too, which is
    /// how the room knows when a member is behind (`backpressure.rs`).
    pub fn join_room(&mut self, meter: Meter) {
        self.outbox.join(meter);
    }

    /// A peer that does not read what it is sent while others do: drop its backlog and close
    /// with 1008 (RFC 6455 §7.4.1: policy violation). The Close goes out only if the socket
    /// takes it; a peer this far behind may never see it, and the lingering close times out.
    pub fn drop_slow_consumer(&mut self, now: Instant) {
        self.tally.slow_consumer = true;
        self.outbox.discard();
        self.fail(CloseCode::Policy, "slow consumer", now);
    }

    /// Writes queued bytes until the socket would block or the outbox is empty; in Linger, then
    /// sends FIN (or, if the peer is done too, closes). Called for WRITABLE events and for every connection touched in a turn.
    /// Returns the bytes written.
    pub fn flush(&mut self, now: Instant) -> usize {
        if self.is_closed() {
            return 0;
        }
        let written = match self.outbox.write_to(&mut self.socket).and_then(|n| {
            // Bytes the socket layer still holds (TLS ciphertext the kernel did not take):
            // push them too; `WouldBlock` only means they wait for the next WRITABLE event.
            match self.socket.holds_output() {
                true => match self.socket.flush() {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(n),
                    other => other.map(|()| n),
                },
                false => Ok(n),
            }
        }) {
            Ok(0) => 0,
            Ok(n) => {
                self.stalled_since = Some(now);
                n
            }
            Err(e) => {
                self.set_phase(Phase::Closed, now, &format_args!("write error: {e}"));
                return 0;
            }
        };
        if !self.outbox.is_empty() || self.socket.holds_output() {
            return written;
        }
        self.stalled_since = None;
        if let Phase::Linger {
            peer_done,
            fin_sent: fin_sent @ false,
            ..
        } = &mut self.phase
        {
            // The peer is done too: closing the socket sends our FIN, and nothing is left to
            // wait for (no `shutdown`, no read of its FIN: two system calls fewer).
            if *peer_done {
                self.socket.last_words();
                self.set_phase(Phase::Closed, now, &"closed");
                return written;
            }
            *fin_sent = true;
            // An error here means the peer is gone already: nothing left to wait for.
            if self.socket.shutdown_write().is_err() {
                self.set_phase(Phase::Closed, now, &"closed");
            }
        }
        written
    }
}
