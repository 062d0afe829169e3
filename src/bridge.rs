//! The Redis bridge: rooms shared between chatloop nodes through Redis pub/sub.
//!
//! When one host is not enough, several nodes run behind a load balancer and a room's members
//! are spread over them. Each node relays a message to its own members as always, and also
//! `PUBLISH`es it on the room's channel; every node that has members in that room is
//! `SUBSCRIBE`d to the channel and hands what arrives to its members:
//!
//! ```text
//!   client ─▶ node A: relay to A's members ─┐           ┌─▶ node B: deliver to B's members
//!                                           └▶ Redis ───┤
//!                                      PUBLISH          └─▶ node A: its own message: dropped
//!                 chatloop:room:/kitchen  "A\n<frame>"
//! ```
//!
//! - **Channels.** Room `/kitchen` is channel `chatloop:room:/kitchen` (with a non-zero
//!   database in the URL, `chatloop:3:room:/kitchen`: pub/sub ignores databases). A node
//!   subscribes when a room appears on it and unsubscribes when it vanishes, so it only hears
//!   rooms it has members in (a pattern subscription would make every node read every room).
//! - **Payload.** `<node id>\n<frame>`: the node id lets a node drop its own messages when
//!   Redis sends them back; the frame is the relayed WebSocket frame exactly as the server
//!   encoded it (RFC 6455 §5.2: FIN, opcode, length, payload), so text stays text, binary stays
//!   binary, and a receiving node queues it without re-encoding. A frame from Redis is checked
//!   before it reaches a client (one whole unmasked text or binary frame, UTF-8 if text, within
//!   `--max-message-bytes`); anything else is dropped and counted.
//! - **Order.** One publisher connection per node, and Redis delivers a connection's messages
//!   to each subscriber in order, so each sender's order holds across nodes too.
//!
//! ## Two connections, in the server's loop
//!
//! A connection that has subscribed may only (un)subscribe and ping, so pub/sub needs two: a
//! subscriber and a publisher. Both are non-blocking [`mio::net::TcpStream`]s in the server's
//! own `Poll`, under two reserved tokens; RESP is encoded and push-parsed by hand
//! ([`crate::redis`]). The alternative was a bridge thread speaking to Redis with blocking
//! sockets (or the `redis` crate), handing messages to the loop through a bounded channel and
//! a `mio::Waker`. That isolates a slow Redis completely, but it adds a thread, two queues
//! and a copy per message each way, and it hides backpressure: the loop could no longer stop
//! reading from Redis while its own clients are behind. In the same loop a slow Redis costs
//! nothing anyway, since every socket is non-blocking: writes wait in a bounded queue, reads
//! happen when bytes are there. The price is that this module is handed the [`Registry`] to
//! (de)register its own two sockets, the one exception to "only `server.rs` touches the
//! poller" (it never sees the `Poll` and never reads the clock).
//!
//! ## States
//!
//! ```text
//!            turn at retry_at                          both links answered the handshake
//!   Down ───────────────────────▶ Connecting ──────────────────────────────────────▶ Up
//!    ▲  connect both; queue AUTH,      │ connect failed, error reply,                  │
//!    │  SUBSCRIBE every room, PING     │ or no answer within HANDSHAKE_TIMEOUT         │
//!    └─────────────────────────────────┴───────────────────────────────────────────────┘
//!         retry after a backoff (100 ms, doubling, at most 5 s)   closed, error reply, or
//!                                                                 no reply in REPLY_TIMEOUT
//! ```
//!
//! While `Down`, messages are relayed locally only and counted as dropped: a node never waits
//! for Redis. While `Connecting`, they are queued (bounded, as always) and leave as soon as the
//! publisher's connect completes, so a client that joins and speaks the moment a node starts
//! is not lost; if that attempt fails, they are lost with it. Each transition is logged once
//! (`redis Up=>Down reason=…`), not each retry.
//!
//! The parts: this file is the state machine and what the server calls each turn;
//! `bridge/channels.rs` is what it calls per room and per message (subscribe, unsubscribe,
//! publish); `bridge/link.rs` is one connection (non-blocking connect, command queue, reply
//! buffer); `bridge/payload.rs` is what travels on a channel and the check a frame passes
//! before it reaches a client; `bridge/probe.rs` is the start-up check of `--redis-required`.
//!
//! DoS warning: everything toward Redis is bounded. Published commands wait in a queue of at
//! most `--redis-queue-bytes` (past it, a message is not published and is counted as dropped);
//! subscription commands are bounded by the number of rooms; a reply is bounded by the largest
//! message. Messages for a room whose members are behind wait, in order, until it catches up
//! (per-room backpressure, `server/read.rs`); reading from Redis pauses while the server is
//! over high water or those waiting messages pass a quarter of it, and reads at most a quarter
//! of `--max-queue-bytes` per turn. If Redis then holds too much for us, its
//! `client-output-buffer-limit pubsub` disconnects us and we reconnect.

mod channels;
mod link;
mod payload;
mod probe;

pub use probe::check_at_start;

use crate::config::{Config, RedisOptions, MAX_NODE_ID};
use crate::hub::RoomId;
use crate::stats::RedisCounters;
use crate::wire::MAX_FRAME_HEADER;
use bytes::Bytes;
use link::{Link, Role, READ_CHUNK};
use log::{debug, info, warn};
use mio::{Registry, Token};
use payload::Reader;
use std::collections::HashMap;
use std::fmt;
use std::time::{Duration, Instant};

/// First wait before reconnecting after a failure; doubles with each failure in a row.
pub const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// Longest wait between reconnection attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// Time a new pair of connections has to connect and answer `AUTH`/`SUBSCRIBE`/`PING`. Also the
/// start-up check's timeout (`--redis-required`).
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(3);
/// Time a command may go unanswered while nothing at all arrives on its link; then Redis is
/// considered gone (stopped, or a network path that died without a reset).
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(5);
/// Silence on a link after which we send a `PING`, so a dead path is noticed within
/// `PING_AFTER + REPLY_TIMEOUT` even when no one chats.
pub const PING_AFTER: Duration = Duration::from_secs(10);
/// Channels per `SUBSCRIBE` command when (re)subscribing every room at once.
const SUBSCRIBE_BATCH: usize = 256;

/// The two links, subscriber and publisher.
struct Links {
    /// Hears the channels of this node's rooms.
    sub: Link,
    /// Publishes this node's messages.
    publ: Link,
}

/// Where the bridge is. See the module docs' diagram.
enum State {
    /// No connection; the next attempt is due at `retry_at`.
    Down {
        /// When to try again.
        retry_at: Instant,
    },
    /// Both connects started; the handshake must finish by `deadline`.
    Connecting {
        /// The two links, maybe not connected yet.
        links: Box<Links>,
        /// When to give up.
        deadline: Instant,
    },
    /// Both links connected and every room subscribed: messages cross nodes.
    Up {
        /// The two links.
        links: Box<Links>,
    },
}

impl State {
    /// The links, unless down.
    fn links_mut(&mut self) -> Option<&mut Links> {
        match self {
            State::Down { .. } => None,
            State::Connecting { links, .. } | State::Up { links } => Some(links),
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            State::Down { .. } => "Down",
            State::Connecting { .. } => "Connecting",
            State::Up { .. } => "Up",
        })
    }
}

/// One node's bridge to Redis. The server owns it (`Option<Bridge>`), feeds it events for its
/// two tokens, calls [`Bridge::turn`] once per loop turn, and hands it every relayed message.
pub struct Bridge {
    /// Where Redis is, who we are, the queue cap.
    opts: RedisOptions,
    /// Reserved tokens of the subscriber and the publisher, chosen by the server.
    tokens: [Token; 2],
    /// Connection state.
    state: State,
    /// Wait before the next attempt after a failure (doubles up to `MAX_BACKOFF`).
    backoff: Duration,
    /// Channel name per local room: what we are (or will be, once up) subscribed to.
    channels: HashMap<RoomId, Box<[u8]>>,
    /// The same map backwards, to find the room of an arriving message.
    rooms: HashMap<Box<[u8]>, RoomId>,
    /// `chatloop:room:` or `chatloop:<db>:room:`.
    prefix: String,
    /// Largest bulk string accepted from Redis: a whole message frame plus our tag, or a
    /// channel name (bounded by the request head).
    max_bulk: usize,
    /// Largest message payload we deliver (`--max-message-bytes`).
    max_message: usize,
    /// Bytes of Redis input to read at most per turn: a quarter of `--max-queue-bytes`, like
    /// the server's own reads, so one turn cannot push a healthy client to its cap.
    read_budget: usize,
    /// Been up at least once (later `Up`s count as reconnects).
    ever_up: bool,
    /// A failure was logged at warn since the last `Up` (so retries are not logged again).
    down_logged: bool,
    /// What `/stats` and `/metrics` show.
    counters: RedisCounters,
}

impl Bridge {
    /// A bridge that connects on its first turn. `tokens` are the subscriber's and the
    /// publisher's reserved tokens.
    pub fn new(opts: &RedisOptions, tokens: [Token; 2], config: &Config, now: Instant) -> Bridge {
        let prefix = match opts.db {
            0 => "chatloop:room:".to_owned(),
            db => format!("chatloop:{db}:room:"),
        };
        Bridge {
            tokens,
            state: State::Down { retry_at: now },
            backoff: FIRST_BACKOFF,
            channels: HashMap::new(),
            rooms: HashMap::new(),
            max_bulk: (config.max_message_bytes + MAX_FRAME_HEADER + MAX_NODE_ID + 1)
                .max(config.max_head_bytes + prefix.len()),
            prefix,
            max_message: config.max_message_bytes,
            read_budget: (config.max_queue_bytes / 4).max(READ_CHUNK),
            ever_up: false,
            down_logged: false,
            counters: RedisCounters::default(),
            opts: opts.clone(),
        }
    }

    /// Notes readiness on one of the bridge's two tokens; the I/O happens in [`Bridge::turn`].
    pub fn on_event(&mut self, event: &mio::event::Event) {
        let Some(links) = self.state.links_mut() else {
            return; // a stale event for a link already closed
        };
        let link = if event.token() == links.sub.token {
            &mut links.sub
        } else {
            &mut links.publ
        };
        if event.is_readable() || event.is_read_closed() || event.is_error() {
            link.readable = true;
        }
    }

    /// One turn of the bridge: timers, connect progress, writes, reads. Returns what other
    /// nodes sent, as (room, frame) for the server to deliver to the room's local members.
    /// While `paused` (the server is over high water, or holds too much for paused rooms)
    /// the subscriber is not read.
    pub fn turn(
        &mut self,
        registry: &Registry,
        now: Instant,
        paused: bool,
    ) -> Vec<(RoomId, Bytes)> {
        let mut remote = Vec::new();
        if let State::Down { retry_at } = self.state {
            if now < retry_at {
                return remote;
            }
            self.start(registry, now);
        }
        if let Err(why) = self.io(registry, now, paused, &mut remote) {
            self.fail(registry, now, why);
        }
        remote
    }

    /// When the bridge next needs a turn without any event: a retry, a handshake or reply
    /// timeout, a `PING`, or at once if input is waiting and reading is not paused.
    pub fn deadline(&self, now: Instant, paused: bool) -> Option<Instant> {
        let links = match &self.state {
            State::Down { retry_at } => return Some(*retry_at),
            State::Connecting { links, .. } | State::Up { links } => links,
        };
        // Input left unread (budget spent), or commands queued after this turn's write (an
        // UNSUBSCRIBE when a room's last member leaves): the next turn is due at once.
        let unread = |l: &Link| l.connected && l.readable;
        if (unread(&links.sub) && !paused) || unread(&links.publ) {
            return Some(now);
        }
        if links.sub.stalled() || links.publ.stalled() {
            return Some(now);
        }
        match &self.state {
            State::Connecting { deadline, .. } => Some(*deadline),
            _ => Some(links.sub.deadline().min(links.publ.deadline())),
        }
    }

    /// The counters for `/stats` and `/metrics`.
    pub fn counters(&self) -> RedisCounters {
        RedisCounters {
            connected: matches!(self.state, State::Up { .. }),
            ..self.counters
        }
    }

    /// Down → Connecting: opens both links and queues the handshake.
    fn start(&mut self, registry: &Registry, now: Instant) {
        let links = Link::connect(Role::Subscriber, &self.opts, self.tokens[0], registry, now)
            .and_then(|sub| {
                let publ =
                    Link::connect(Role::Publisher, &self.opts, self.tokens[1], registry, now);
                match publ {
                    Ok(publ) => Ok(Links { sub, publ }),
                    Err(e) => {
                        let mut sub = sub;
                        let _ = registry.deregister(&mut sub.stream);
                        Err(e)
                    }
                }
            });
        let mut links = match links {
            Ok(links) => links,
            Err(e) => return self.fail(registry, now, format!("connect: {e}")),
        };
        // Subscribe to every room this node has, then PING: Redis answers in order, so the
        // PING's reply means every subscription is in place.
        let channels: Vec<&[u8]> = self.channels.values().map(|c| &c[..]).collect();
        for batch in channels.chunks(SUBSCRIBE_BATCH) {
            let mut args: Vec<&[u8]> = vec![b"SUBSCRIBE"];
            args.extend_from_slice(batch);
            links.sub.send_expecting(&args, batch.len());
        }
        links.sub.send(&[b"PING"]);
        links.publ.send(&[b"PING"]);
        for link in [&mut links.sub, &mut links.publ] {
            link.handshake = link.awaiting;
        }
        self.set_state(now, "", |_| State::Connecting {
            links: Box::new(links),
            deadline: now + HANDSHAKE_TIMEOUT,
        });
    }

    /// Connect progress, timers, writes and reads of both links; `Err` is a reason to drop them.
    fn io(
        &mut self,
        registry: &Registry,
        now: Instant,
        paused: bool,
        remote: &mut Vec<(RoomId, Bytes)>,
    ) -> Result<(), String> {
        let ctx = Reader {
            own: self.opts.node_id.as_bytes(),
            rooms: &self.rooms,
            max_bulk: self.max_bulk,
            max_message: self.max_message,
        };
        let (links, deadline) = match &mut self.state {
            State::Down { .. } => return Ok(()),
            State::Connecting { links, deadline } => (links, Some(*deadline)),
            State::Up { links } => (links, None),
        };
        for link in [&mut links.sub, &mut links.publ] {
            let name = link.role.name();
            link.check_connected(now)
                .map_err(|e| format!("{name} connect: {e}"))?;
            link.stamp(now);
            if deadline.is_none() && now >= link.deadline() {
                if link.awaiting > 0 {
                    return Err(format!("{name}: no reply in {REPLY_TIMEOUT:?}"));
                }
                link.send(&[b"PING"]);
                link.stamp(now);
            }
            link.flush().map_err(|e| format!("{name} write: {e}"))?;
            // Only the subscriber's input becomes deliveries, so only it waits for backpressure;
            // both are bounded per turn, so Redis cannot keep the loop to itself.
            let budget = match link.role {
                Role::Subscriber if paused => 0,
                _ => self.read_budget,
            };
            let got = link.fill(budget).map_err(|e| format!("{name} read: {e}"))?;
            if got > 0 {
                link.heard = now;
            }
            ctx.parse(link, remote, &mut self.counters)?;
            link.update_interest(registry)
                .map_err(|e| format!("{name} reregister: {e}"))?;
        }
        // Not `awaiting == 0`: messages published while connecting may still be owed replies.
        let handshaken = |l: &Link| l.connected && l.handshake == 0;
        match deadline {
            Some(_) if handshaken(&links.sub) && handshaken(&links.publ) => {
                if self.ever_up {
                    self.counters.reconnects += 1;
                }
                self.ever_up = true;
                self.down_logged = false;
                self.backoff = FIRST_BACKOFF;
                info!(
                    "redis: connected to {} as node {}; sharing {} rooms",
                    self.opts.url,
                    self.opts.node_id,
                    self.channels.len()
                );
                self.set_state(now, "", |state| match state {
                    State::Connecting { links, .. } => State::Up { links },
                    other => other,
                });
            }
            Some(deadline) if now >= deadline => {
                return Err(format!("no answer within {HANDSHAKE_TIMEOUT:?}"));
            }
            _ => {}
        }
        Ok(())
    }

    /// Drops both links and schedules the next attempt after the backoff.
    fn fail(&mut self, registry: &Registry, now: Instant, why: String) {
        let was_up = matches!(self.state, State::Up { .. });
        if let Some(links) = self.state.links_mut() {
            // Deregistering can only fail if the socket is already gone from the poller.
            let _ = registry.deregister(&mut links.sub.stream);
            let _ = registry.deregister(&mut links.publ.stream);
        }
        let retry_at = now + self.backoff;
        if was_up || !self.down_logged {
            warn!(
                "redis: {} unreachable ({why}); relaying locally only, retrying with backoff \
                 up to {MAX_BACKOFF:?}",
                self.opts.url
            );
            self.down_logged = true;
        }
        self.set_state(now, &why, |_| State::Down { retry_at });
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
    }

    /// Moves to the state `next` makes of the current one, logging `from=>to` at debug (the
    /// warn and info lines say it for people, once per loss and once per recovery).
    fn set_state(&mut self, now: Instant, why: &str, next: impl FnOnce(State) -> State) {
        let from = std::mem::replace(&mut self.state, State::Down { retry_at: now });
        let from_name = from.to_string();
        self.state = next(from);
        if why.is_empty() {
            debug!("redis {from_name}=>{}", self.state);
        } else {
            debug!("redis {from_name}=>{} reason={why}", self.state);
        }
    }
}

#[cfg(test)]
mod tests;
