//! The WebSocket phases of a connection (Open, Closing): feeding tungstenite, one message at a
//! time, the message-rate limit, and the closing handshake from our side.
//!
//! tungstenite does the protocol (RFC 6455 framing, unmasking, reassembly, UTF-8, control
//! frames, the closing handshake); here its results become [`Action::Message`]s for the
//! server and its errors become close codes (RFC 6455 §7.4.1).

use super::{Action, Conn, Phase, Scratch, Socket};
use crate::config::Config;
use crate::http::Status;
use crate::wire::{ws_config, Wire};
use std::io;
use std::time::Instant;
use tungstenite::error::{Error as WsError, ProtocolError};
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::frame::CloseFrame;
use tungstenite::protocol::{Role, WebSocketContext};
use tungstenite::Message;

/// A token bucket: `rate` tokens a second, at most `rate` saved up (a one-second burst).
#[derive(Debug, Clone, Copy)]
pub(super) struct Bucket {
    /// Tokens available now.
    tokens: f32,
    /// When `tokens` was last topped up.
    at: Instant,
}

impl Bucket {
    /// A full bucket for `--max-messages-per-sec`: the first second's burst is allowed.
    pub(super) fn full(cfg: &Config, now: Instant) -> Bucket {
        Bucket {
            tokens: cfg.max_messages_per_sec as f32,
            at: now,
        }
    }

    /// Takes a token if there is one, after topping up for the time passed.
    fn take(&mut self, rate: u32, now: Instant) -> bool {
        let rate = rate as f32;
        let elapsed = now.saturating_duration_since(self.at).as_secs_f32();
        self.tokens = (self.tokens + elapsed * rate).min(rate);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// How one stretch of feeding tungstenite ended.
enum Fed {
    /// A data message completed (Open only): the server's turn.
    Message(Message),
    /// tungstenite needs more bytes than this read brought.
    NeedMore,
    /// Past `--max-messages-per-sec`.
    RateLimited,
    /// The protocol, or the connection, ended: see the mapping in `feed_ws`.
    Ended(WsError),
}

impl<S: Socket> Conn<S> {
    /// Open/Closing: hand the unread input to tungstenite until a data message completes (then
    /// the server gets it, and the rest of the input waits for the next call) or the input is
    /// used up.
    ///
    /// Stopping at a message is what keeps an echo in order: the bytes behind it (a Ping, the
    /// peer's Close, a protocol error) are fed only on the next call, after the server queued
    /// the echo, so the Pong or Close that tungstenite writes for them comes after it.
    pub(super) fn feed_ws(
        &mut self,
        scratch: &mut Scratch,
        now: Instant,
        cfg: &Config,
    ) -> Option<Action> {
        // `open`: an Open connection's rate limit and frame edges; `None` while Closing.
        let (ws, mut open) = match &mut self.phase {
            Phase::Open {
                ws, bucket, edges, ..
            } => (ws, Some((bucket, edges))),
            Phase::Closing { ws, .. } => (ws, None),
            _ => return None,
        };
        let input = scratch.input();
        let mut wire = Wire {
            input,
            eof: scratch.eof(),
            outbox: &mut self.outbox,
        };
        let fed = loop {
            match ws.read(&mut wire) {
                // Only an Open connection relays; after our Close, data is read and dropped.
                Ok(msg @ (Message::Text(_) | Message::Binary(_))) => {
                    let Some((bucket, _)) = open.as_mut() else {
                        continue;
                    };
                    let within_rate = bucket
                        .as_mut()
                        .is_none_or(|b| b.take(cfg.max_messages_per_sec, now));
                    break if within_rate {
                        Fed::Message(msg)
                    } else {
                        Fed::RateLimited
                    };
                }
                // Close: counted as it arrives. If we had not sent ours (Open), tungstenite has
                // queued the echo (RFC 6455 §5.5.1), with the code it returns here (1002 for a
                // code not allowed on the wire); the next read says ConnectionClosed.
                Ok(Message::Close(frame)) => {
                    let code = frame.map_or(1005, |f| f.code.into());
                    self.tally.close_received = Some(code);
                    if open.is_some() {
                        self.tally.close_sent = Some(code);
                    }
                }
                // Pings: tungstenite has queued the Pong (RFC 6455 §5.5.3) and writes it on the
                // next read. Pongs: nothing to do, hearing anything resets the idle clock.
                Ok(_) => {}
                Err(WsError::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {
                    break Fed::NeedMore
                }
                Err(e) => break Fed::Ended(e),
            }
        };
        let used = input.len() - wire.input.len();
        if let Some((_, edges)) = open.as_mut() {
            edges.advance(&input[..used]);
            // All input used, between messages, after a big frame: give its buffer back.
            if matches!(fed, Fed::NeedMore) && edges.worth_a_swap() {
                **ws = WebSocketContext::new(Role::Server, Some(ws_config(cfg)));
                edges.swapped();
            }
        }
        scratch.consume(used);
        let failure = match fed {
            Fed::Message(msg) => return Some(Action::Message(msg)),
            Fed::NeedMore => return None,
            Fed::RateLimited => {
                scratch.consume_all();
                self.fail(CloseCode::Policy, "message rate limit", now);
                return None;
            }
            Fed::Ended(e) => e,
        };
        // Whatever follows an ending is not for us (Linger discards, Closed reads no more).
        scratch.consume_all();
        let (code, why): (CloseCode, &str) = match failure {
            // The closing handshake is complete (both Close frames sent); RFC 6455 §7.1.1:
            // the server closes the TCP connection first. The peer's Close was its last word
            // (§5.5.1), so once ours is flushed there is nothing to wait for.
            WsError::ConnectionClosed | WsError::AlreadyClosed => {
                let linger = Phase::Linger {
                    peer_done: true,
                    fin_sent: false,
                    read: 0,
                };
                self.set_phase(linger, now, &"closing handshake done");
                return None;
            }
            WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake) => {
                self.set_phase(Phase::Closed, now, &"peer vanished without a Close");
                return None;
            }
            WsError::Io(e) => {
                self.set_phase(Phase::Closed, now, &format_args!("I/O error: {e}"));
                return None;
            }
            // RFC 6455 §7.4.1: 1009 = message too big, 1007 = data inconsistent with its type
            // (invalid UTF-8 in a text message or close reason), 1002 = protocol error.
            WsError::Capacity(_) => (CloseCode::Size, "message too big"),
            WsError::Utf8(_) => (CloseCode::Invalid, "invalid UTF-8"),
            WsError::Protocol(_) => (CloseCode::Protocol, "protocol error"),
            _ => (CloseCode::Error, "internal error"),
        };
        self.fail(code, why, now);
        None
    }

    /// _Fail the WebSocket Connection_ (RFC 6455 §7.1.7): send a Close with `code` after what
    /// is already queued, then linger without waiting for the peer's Close.
    pub(super) fn fail(&mut self, code: CloseCode, why: &str, now: Instant) {
        self.send_close(code, why);
        self.set_phase(
            Phase::LINGER,
            now,
            &format_args!("{} {why}", u16::from(code)),
        );
    }

    /// Starts the closing handshake from our side (RFC 6455 §7.1.2): Close, then wait in
    /// Closing for the peer's. Used for shutdown (1001) and idle peers (1001). A request not
    /// yet upgraded is answered 503 instead.
    pub fn close(&mut self, code: CloseCode, why: &str, now: Instant) {
        match self.phase {
            Phase::Open { .. } => {
                self.send_close(code, why);
                self.change_phase(now, &why, |phase| match phase {
                    Phase::Open { ws, .. } => Phase::Closing { ws, read: 0 },
                    other => other,
                });
            }
            Phase::Request { .. } | Phase::Upgrading(_) => {
                self.answer(Status::ServiceUnavailable, false, now);
            }
            Phase::Closing { .. } | Phase::Linger { .. } | Phase::Closed => {}
        }
    }

    /// Queues a Close frame through tungstenite, which records that it was sent.
    pub(super) fn send_close(&mut self, code: CloseCode, why: &str) {
        if let Phase::Open { ws, .. } | Phase::Closing { ws, .. } = &mut self.phase {
            // tungstenite sends one Close per connection: after it (or the peer's) it only
            // flushes.
            if ws.can_write() {
                self.tally.close_sent = Some(code.into());
            }
            let frame = CloseFrame {
                code,
                reason: why.into(),
            };
            // Writes to a Wire cannot block or fail, so the only errors left are "already
            // closed", after which there is nothing to send anyway.
            let _ = ws.close(&mut Wire::out(&mut self.outbox), Some(frame));
        }
    }
}
