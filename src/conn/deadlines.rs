//! A connection's deadlines, checked once per tick of the server (`Config::tick`): the
//! handshake timeout, the Ping to a silent peer and the idle timeout (RFC 6455 §5.5.2), the
//! writer that stopped taking bytes, and the closing handshake that takes too long.
//!
//! Time is handed in (`now`); nothing here reads the clock.

use super::{Conn, Phase, Socket};
use crate::config::Config;
use crate::http::Status;
use crate::wire::Wire;
use bytes::Bytes;
use std::time::Instant;
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::Message;

impl<S: Socket> Conn<S> {
    /// Checks this connection's deadlines. Called once per tick (see `Config::tick`).
    pub fn on_tick(&mut self, now: Instant, cfg: &Config) {
        let since = |t: Instant| now.saturating_duration_since(t);
        let stalled = self
            .stalled_since
            .is_some_and(|t| since(t) >= cfg.write_timeout);
        match &mut self.phase {
            Phase::Request { .. } | Phase::Upgrading(_)
                if since(self.phase_since) >= cfg.handshake_timeout =>
            {
                self.answer(Status::RequestTimeout, false, now);
            }
            Phase::Open { .. } if stalled => self.drop_slow_consumer(now),
            Phase::Open { heard, .. } if since(*heard) >= cfg.idle_timeout => {
                self.close(CloseCode::Away, "idle timeout", now);
            }
            Phase::Open {
                ws,
                heard,
                ping_sent: ping_sent @ false,
                ..
            } if since(*heard) >= cfg.ping_interval => {
                // RFC 6455 §5.5.2: a Ping asks a silent peer to prove it is there.
                let _ = ws.write(
                    &mut Wire::out(&mut self.outbox),
                    Message::Ping(Bytes::new()),
                );
                *ping_sent = true;
            }
            Phase::Closing { .. } | Phase::Linger { .. }
                if stalled || since(self.phase_since) >= cfg.close_timeout =>
            {
                self.set_phase(Phase::Closed, now, &"close timed out");
            }
            _ => {}
        }
    }
}
