//! The way out of a connection: frames the server relays, the flush that writes them (one
//! `writev` for many, see `outbox.rs`), the FIN that ends a lingering connection, and the
//! slow consumer, whose backlog is dropped.

use super::{Conn, Phase, Sent, Socket};
use bytes::Bytes;
use log::warn;
use std::time::Instant;
use tungstenite::protocol::frame::coding::CloseCode;

impl<S: Socket> Conn<S> {
    /// Queues a frame the server relays (a broadcast, or an echo). See [`Sent`]: a full outbox
    /// makes this connection a slow consumer, dropped here.
    pub fn send(&mut self, frame: Bytes, now: Instant) -> Sent {
        if !self.is_open() {
            return Sent::Skipped;
        }
        if self.outbox.push(frame).is_err() {
            warn!(
                "conn={} slow consumer: {} bytes queued",
                self.id,
                self.queued()
            );
            self.drop_slow_consumer(now);
            return Sent::Dropped;
        }
        self.stalled_since.get_or_insert(now);
        Sent::Queued
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
        let written = match self.outbox.write_to(&mut self.socket) {
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
        if !self.outbox.is_empty() {
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
