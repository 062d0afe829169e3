//! The HTTP phases of a connection: collecting the request head, routing it (`http.rs`), and
//! the answers: a status, the page, a report, or the upgrade the server admits or refuses.
//!
//! Admission (`--max-connections`, `--max-per-ip`) is the server's to decide, since it counts
//! the open connections; so the connection stops at a complete upgrade request
//! ([`Action::Upgrade`], phase `Upgrading`) and waits for [`Conn::accept_upgrade`] or
//! [`Conn::refuse`]. Only a request that wants to upgrade asks.

use super::{Action, Conn, Phase, Scratch, Socket};
use crate::config::Config;
use crate::http::{self, Reply, Report, Status};
use crate::wire::ws_config;
use bytes::Bytes;
use std::time::Instant;
use tungstenite::protocol::{Role, WebSocketContext};

use super::edges::Edges;
use super::websocket::Bucket;

/// What an upgrade request left for the moment the server admits it.
pub(super) struct Handshake {
    /// Bytes after the head: the client's first frames, for tungstenite.
    rest: Vec<u8>,
    /// The `Sec-WebSocket-Accept` value (RFC 6455 §4.2.2 step 5.4).
    accept: String,
    /// The subprotocol chosen from the client's offer, if any.
    protocol: Option<String>,
}

impl<S: Socket> Conn<S> {
    /// Request phase: collect the head, then route it.
    pub(super) fn feed_request(
        &mut self,
        scratch: &mut Scratch,
        now: Instant,
        cfg: &Config,
    ) -> Option<Action> {
        let Phase::Request { head } = &mut self.phase else {
            return None;
        };
        let input = scratch.input();
        head.extend_from_slice(input);
        // A head ends with CRLF CRLF, so until a read brings a '\n' there is nothing new to
        // parse: a client dribbling one byte at a time costs no re-parsing.
        let new_line = input.contains(&b'\n');
        scratch.consume_all();
        if !new_line && head.len() <= cfg.max_head_bytes {
            return None;
        }
        let (request, len) = match http::parse(head) {
            Ok(Some((request, len))) if len <= cfg.max_head_bytes => (request, len),
            Ok(None) if head.len() <= cfg.max_head_bytes => return None,
            // RFC 6585 §5: 431 when the head is larger than we accept.
            Ok(_) => return self.answer(Status::HeadersTooLarge, false, now),
            Err(status) => return self.answer(status, false, now),
        };
        let head_only = request.method == "HEAD";
        match http::route(&request, &cfg.policy) {
            Reply::Answer(status) => self.answer(status, head_only, now),
            Reply::Report(report) => Some(Action::Report { report, head_only }),
            Reply::Page => {
                self.outbox
                    .push_unchecked(http::page(head_only, cfg.max_message_bytes));
                self.set_phase(Phase::LINGER, now, &"HTTP 200 page");
                None
            }
            Reply::Upgrade {
                room,
                accept,
                protocol,
            } => {
                // Bytes after the head are the client's first frames: tungstenite starts there.
                let rest = head.split_off(len);
                let handshake = Handshake {
                    rest,
                    accept,
                    protocol,
                };
                self.set_phase(Phase::Upgrading(Box::new(handshake)), now, &room);
                Some(Action::Upgrade { room })
            }
        }
    }

    /// The server admits the upgrade ([`Action::Upgrade`]): 101, then messages flow. Frames
    /// that came right behind the head are read on the next [`Conn::on_readable`].
    pub fn accept_upgrade(&mut self, now: Instant, cfg: &Config) {
        if !matches!(self.phase, Phase::Upgrading(_)) {
            return;
        }
        let mut response = Bytes::new();
        self.change_phase(now, &"upgraded", |phase| {
            let Phase::Upgrading(handshake) = phase else {
                unreachable!("matched Upgrading above");
            };
            let Handshake {
                rest,
                accept,
                protocol,
            } = *handshake;
            response = http::switching_protocols(&accept, protocol.as_deref());
            // tungstenite starts with the bytes after the head, so the frame edges do too.
            let mut edges = Edges::default();
            edges.advance(&rest);
            let ws =
                WebSocketContext::from_partially_read(rest, Role::Server, Some(ws_config(cfg)));
            Phase::Open {
                ws: Box::new(ws),
                edges,
                heard: now,
                ping_sent: false,
                bucket: (cfg.max_messages_per_sec > 0).then(|| Bucket::full(cfg, now)),
            }
        });
        self.outbox.push_unchecked(response);
    }

    /// The server refuses the upgrade ([`Action::Upgrade`]) with `status` (503: full, 429: too
    /// many from this address).
    pub fn refuse(&mut self, status: Status, now: Instant) {
        if matches!(self.phase, Phase::Upgrading(_)) {
            self.answer(status, false, now);
        }
    }

    /// Answers a report request ([`Action::Report`]) with the body the server rendered.
    pub fn answer_report(&mut self, report: Report, body: &str, head_only: bool, now: Instant) {
        if matches!(self.phase, Phase::Request { .. }) {
            self.outbox
                .push_unchecked(http::ok(report.content_type(), body, head_only));
            self.set_phase(Phase::LINGER, now, &"HTTP 200");
        }
    }

    /// Queues an HTTP response and heads for Linger.
    pub(super) fn answer(
        &mut self,
        status: Status,
        head_only: bool,
        now: Instant,
    ) -> Option<Action> {
        self.outbox
            .push_unchecked(http::response(status, head_only));
        self.tally.answered = Some(status.code());
        self.set_phase(Phase::LINGER, now, &format_args!("HTTP {}", status.code()));
        None
    }
}
