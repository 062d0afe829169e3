//! The event loop: one thread, one `mio::Poll`, every socket of the server.
//!
//! [`Server::run`] is the whole server. Each turn:
//!
//! ```text
//!  poll(timeout = next deadline, or 0 if input is waiting)
//!   ├─ listener  → accept until WouldBlock; each socket becomes a Conn in the slab
//!   ├─ signals / waker → begin the shutdown (Close 1001 to everyone)
//!   └─ Token(id) → readable: queue for reading · writable: queue for flushing
//!  read_ready   → read queued connections (a few reads each), relay every message:
//!                 encode once, push a clone into each recipient's outbox
//!                 (paused while a receiver is behind or the outboxes hold more than
//!                 --high-water-bytes: TCP then slows the senders)
//!  bridge_turn  → (with --redis) the Redis connections: publish what was relayed, deliver
//!                 what other nodes sent to this node's members of the room (bridge.rs)
//!  tick         → deadlines: handshake, ping, idle, stuck writers, closing, laggards
//!  flush_dirty  → write every outbox touched this turn (writev), then interest follows
//!                 state: WRITABLE only while bytes are queued; closed slots freed here,
//!                 after the whole batch of events
//! ```
//!
//! This is the only file that touches `Poll`/`Registry` and reads the clock; everything it calls
//! is handed `now`. Like Qt's event loop, nothing here blocks: every socket is non-blocking and
//! `WouldBlock` only means "the kernel has no more for now".

use crate::config::{Config, Mode};
use crate::conn::{Conn, Outcome, Wants};
use crate::http::{Report, Status};
use crate::hub::{ConnId, Hub};
use crate::outbox::Meter;
use crate::stats::{self, Gauges, Stats};
use bytes::Bytes;
use log::{debug, info, warn};
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Registry, Token, Waker};
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook_mio::v1_0::Signals;
use slab::Slab;
use std::collections::{HashMap, VecDeque};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tungstenite::protocol::frame::coding::CloseCode;

/// Token of the listening socket. Reserved tokens sit at the top of the range, out of the
/// slab's reach (slab keys count up from 0).
const LISTENER: Token = Token(usize::MAX);
/// Token of the waker that [`ServerHandle::shutdown`] uses.
const WAKER: Token = Token(usize::MAX - 1);
/// Token of SIGINT/SIGTERM delivery.
const SIGNALS: Token = Token(usize::MAX - 2);
/// Tokens of the Redis bridge's subscriber and publisher connections (`--redis`, bridge.rs).
#[cfg(feature = "redis")]
const REDIS: [Token; 2] = [Token(usize::MAX - 3), Token(usize::MAX - 4)];

/// Size of the one read buffer shared by all connections.
const SCRATCH_BYTES: usize = 64 << 10;

/// How long accepting pauses after the process ran out of file descriptors. Retrying at once
/// would spin (the listener stays readable); waiting for the next edge could wait forever.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// The chat server. Create with [`Server::bind`], stop with a [`ServerHandle`] or a signal.
pub struct Server {
    /// The poller: one `epoll` (or kqueue) for every socket.
    poll: Poll,
    /// The listening socket; `None` once shutdown began.
    listener: Option<TcpListener>,
    /// Its address (the port is known even when bound to port 0).
    local_addr: SocketAddr,
    /// SIGINT/SIGTERM as poll events; `None` if not installed (tests run many servers).
    signals: Option<Signals>,
    /// Set by a [`ServerHandle`] before it wakes the loop.
    stop: Arc<AtomicBool>,
    /// Kept so `handle()` can hand out clones.
    waker: Arc<Waker>,
    /// Every connection, keyed by its token.
    conns: Slab<Conn<TcpStream>>,
    /// Who is in which room.
    hub: Hub,
    /// The knobs.
    config: Config,
    /// Bytes queued in all outboxes together.
    meter: Meter,
    /// Open WebSocket connections (the count `--max-connections` limits).
    open: usize,
    /// Open WebSocket connections per client address (kept only with `--max-per-ip`).
    per_ip: HashMap<IpAddr, usize>,
    /// Counters for `/stats`, `/metrics` and the periodic summary.
    stats: Stats,
    /// When the next summary line is due (`None`: never).
    next_summary: Option<Instant>,
    /// The shared read buffer.
    scratch: Vec<u8>,
    /// Messages read from one connection, waiting to be relayed (reused; never shrinks).
    inbox: Vec<Bytes>,
    /// Connections that may have unread input, in turn order.
    ready: VecDeque<ConnId>,
    /// Connections touched this turn: flushed (and maybe freed) at its end.
    dirty: Vec<ConnId>,
    /// Reading is paused (see `backpressure`).
    paused: bool,
    /// Since when some connection has been behind without a break (see `drop_laggards`).
    behind_since: Option<Instant>,
    /// When to try accepting again after running out of file descriptors.
    accept_retry: Option<Instant>,
    /// Accepting failed for lack of descriptors (so the warning is logged once, not per retry).
    starved: bool,
    /// When deadlines are next checked.
    next_tick: Instant,
    /// Set once shutdown began: when the server gives up waiting for clients.
    shutdown_deadline: Option<Instant>,
    /// With `--redis`: shares every room with the other nodes (bridge.rs). Its hooks here:
    /// `run` dispatches its tokens and gives it a turn, `relay` publishes, a room appearing or
    /// vanishing (`read_ready`, `remove`) (un)subscribes, `poll_timeout` wakes it.
    #[cfg(feature = "redis")]
    bridge: Option<crate::bridge::Bridge>,
}

/// Stops a running [`Server`] from another thread (tests, embedding programs).
#[derive(Clone)]
pub struct ServerHandle {
    stop: Arc<AtomicBool>,
    waker: Arc<Waker>,
}

impl ServerHandle {
    /// Asks the server to shut down as on SIGTERM: Close 1001 to every client, then exit.
    pub fn shutdown(&self) {
        self.stop.store(true, Ordering::SeqCst);
        // Waking can only fail if the poller is gone, i.e. the server already stopped.
        let _ = self.waker.wake();
    }
}

impl Server {
    /// Binds the listening socket and sets up the poller. Nothing is accepted until [`run`].
    ///
    /// [`run`]: Server::run
    pub fn bind(config: Config) -> io::Result<Server> {
        let poll = Poll::new()?;
        let mut listener = TcpListener::bind(config.listen)?;
        let local_addr = listener.local_addr()?;
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        Ok(Server {
            poll,
            listener: Some(listener),
            local_addr,
            signals: None,
            stop: Arc::new(AtomicBool::new(false)),
            waker,
            conns: Slab::new(),
            hub: Hub::default(),
            meter: Meter::default(),
            open: 0,
            per_ip: HashMap::new(),
            stats: Stats::default(),
            next_summary: (!config.summary_interval.is_zero())
                .then(|| Instant::now() + config.summary_interval),
            scratch: vec![0; SCRATCH_BYTES],
            inbox: Vec::new(),
            ready: VecDeque::new(),
            dirty: Vec::new(),
            paused: false,
            behind_since: None,
            accept_retry: None,
            starved: false,
            next_tick: Instant::now(),
            shutdown_deadline: None,
            #[cfg(feature = "redis")]
            bridge: config
                .redis
                .as_ref()
                .map(|r| crate::bridge::Bridge::new(r, REDIS, &config, Instant::now())),
            config,
        })
    }

    /// Also stop on SIGINT and SIGTERM (the binary does this; tests use a handle instead).
    pub fn handle_signals(&mut self) -> io::Result<()> {
        let mut signals = Signals::new([SIGINT, SIGTERM])?;
        self.poll
            .registry()
            .register(&mut signals, SIGNALS, Interest::READABLE)?;
        self.signals = Some(signals);
        Ok(())
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// A handle that can stop this server from another thread.
    pub fn handle(&self) -> ServerHandle {
        ServerHandle {
            stop: self.stop.clone(),
            waker: self.waker.clone(),
        }
    }

    /// Runs the loop until shutdown completes. Only a failing `poll` or `accept` ends it early;
    /// a connection's failure only ever closes that connection.
    pub fn run(mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(1024);
        loop {
            let timeout = self.poll_timeout(Instant::now());
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            let now = Instant::now();
            for event in events.iter() {
                match event.token() {
                    LISTENER => self.accept(now)?,
                    WAKER | SIGNALS => self.check_stop(now),
                    #[cfg(feature = "redis")]
                    t if REDIS.contains(&t) => {
                        if let Some(bridge) = &mut self.bridge {
                            bridge.on_event(event);
                        }
                    }
                    Token(id) => self.on_event(id, event, now),
                }
            }
            self.read_ready(now);
            #[cfg(feature = "redis")]
            self.bridge_turn(now);
            if now >= self.next_tick {
                self.tick(now);
            }
            if self.accept_retry.is_some_and(|t| now >= t) {
                self.accept_retry = None;
                self.accept(now)?;
            }
            self.flush_dirty(now);
            if self.next_summary.is_some_and(|t| now >= t) {
                self.next_summary = Some(now + self.config.summary_interval);
                info!("{}", self.stats.summary(&self.gauges()));
            }
            if let Some(deadline) = self.shutdown_deadline {
                if self.conns.is_empty() || now >= deadline {
                    info!("stopped ({} connections left)", self.conns.len());
                    return Ok(());
                }
            }
        }
    }

    /// How long `poll` may sleep: not at all if input waits to be read, else until the next
    /// deadline (tick, accept retry or shutdown). An empty wake-up means "a timer is due".
    fn poll_timeout(&self, now: Instant) -> Option<Duration> {
        if !self.ready.is_empty() && !self.paused {
            return Some(Duration::ZERO);
        }
        let next = [
            Some(self.next_tick),
            self.accept_retry,
            self.shutdown_deadline,
            #[cfg(feature = "redis")]
            self.bridge
                .as_ref()
                .and_then(|b| b.deadline(now, self.paused)),
        ]
        .into_iter()
        .flatten()
        .min();
        next.map(|t| t.saturating_duration_since(now))
    }

    /// Accepts until `WouldBlock` (edge-triggered readiness: one event may stand for many
    /// pending connections).
    fn accept(&mut self, now: Instant) -> io::Result<()> {
        let Some(listener) = &self.listener else {
            return Ok(());
        };
        // Sockets still in their HTTP phase get headroom above the WebSocket limit, so an
        // upgrade past it can be answered 503 rather than cut off; past the headroom too, a
        // new socket is closed at once.
        let headroom = (self.config.max_connections / 8).max(64);
        loop {
            let (mut socket, peer) = match listener.accept() {
                Ok(pair) => pair,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::Interrupted | io::ErrorKind::ConnectionAborted
                    ) =>
                {
                    continue
                }
                Err(e) if out_of_resources(&e) => {
                    if !self.starved {
                        warn!("accept: {e}; retrying every {ACCEPT_BACKOFF:?}");
                        self.starved = true;
                    }
                    self.accept_retry = Some(now + ACCEPT_BACKOFF);
                    return Ok(());
                }
                Err(e) => return Err(e),
            };
            if self.starved {
                info!("accepting again");
                self.starved = false;
            }
            if self.conns.len() >= self.config.max_connections + headroom {
                warn!("refusing {peer}: {} sockets open", self.conns.len());
                self.stats.refused += 1;
                continue;
            }
            self.stats.accepted += 1;
            // Small messages should leave at once; the outbox already batches writes, so
            // Nagle's algorithm would only add delay.
            let _ = socket.set_nodelay(true);
            let entry = self.conns.vacant_entry();
            let id = entry.key();
            if let Err(e) =
                self.poll
                    .registry()
                    .register(&mut socket, Token(id), Interest::READABLE)
            {
                warn!("register {peer}: {e}");
                continue;
            }
            debug!("conn={id} accepted from {peer}");
            let conn = Conn::new(id, socket, peer.ip(), now, &self.config, self.meter.clone());
            entry.insert(conn);
        }
    }

    /// A connection's socket is readable and/or writable.
    fn on_event(&mut self, id: ConnId, event: &mio::event::Event, _now: Instant) {
        // A stale event for a slot freed in an earlier turn finds nothing (or a new connection,
        // for which a spurious readiness is harmless: reads and writes stop at WouldBlock).
        let Some(conn) = self.conns.get_mut(id) else {
            return;
        };
        if event.is_readable() || event.is_read_closed() || event.is_error() {
            conn.readable = true;
            if !conn.marks.ready {
                conn.marks.ready = true;
                self.ready.push_back(id);
            }
        }
        if event.is_writable() || event.is_write_closed() {
            mark_dirty(conn, id, &mut self.dirty);
        }
    }

    /// Reads every connection queued in `ready` once, relaying what arrives. A connection with
    /// more to read goes to the back of the queue for the next turn.
    ///
    /// A turn reads at most a quarter of `--max-queue-bytes` in all: every byte read may be
    /// queued to every receiver before the end-of-turn flush, so this keeps a healthy receiver
    /// far from its cap within one turn, whatever the number of senders.
    fn read_ready(&mut self, now: Instant) {
        let mut budget = self.config.max_queue_bytes / 4;
        for _ in 0..self.ready.len() {
            if budget == 0 || self.backpressure(now) {
                return;
            }
            let Some(id) = self.ready.pop_front() else {
                return;
            };
            let Some(conn) = self.conns.get_mut(id) else {
                continue;
            };
            conn.marks.ready = false;
            let admission = if self.open >= self.config.max_connections {
                Err(Status::ServiceUnavailable)
            } else if self.config.max_per_ip > 0
                && self.per_ip.get(&conn.peer).copied().unwrap_or(0) >= self.config.max_per_ip
            {
                Err(Status::TooManyRequests)
            } else {
                Ok(())
            };
            let wants = conn.on_readable(
                &mut self.scratch,
                &mut budget,
                now,
                &self.config,
                admission,
                &mut self.inbox,
            );
            if conn.readable {
                conn.marks.ready = true;
                self.ready.push_back(id);
            }
            mark_dirty(conn, id, &mut self.dirty);
            match wants {
                Some(Wants::Join(room)) => {
                    let room_id = self.hub.join(&room, id);
                    conn.room = Some(room_id);
                    // The room's first member here: hear the other nodes' messages for it.
                    #[cfg(feature = "redis")]
                    if let (Some(bridge), [_]) = (&mut self.bridge, self.hub.members(room_id)) {
                        bridge.subscribe(room_id, &room);
                    }
                    self.open += 1;
                    self.stats.upgraded += 1;
                    if self.config.max_per_ip > 0 {
                        *self.per_ip.entry(conn.peer).or_default() += 1;
                    }
                    debug!("conn={id} joined room {room} ({} open)", self.open);
                }
                Some(Wants::Report { report, head_only }) => {
                    let body = self.report(report);
                    self.conns[id].answer_report(report, &body, head_only, now);
                }
                None => {}
            }
            if let Some(room) = self.conns[id].room {
                self.relay(id, room, now);
            }
        }
    }

    /// Sends every message in `inbox` from `from` to the other members of its room (chat), one
    /// encoded frame, one refcount per recipient; counts it in both modes. (An echo is already
    /// queued by the connection itself.)
    fn relay(&mut self, from: ConnId, room: crate::hub::RoomId, now: Instant) {
        // Taken out for the loop (`deliver` needs `&mut self`) and put back to keep its buffer.
        let mut inbox = std::mem::take(&mut self.inbox);
        for frame in inbox.drain(..) {
            self.stats.messages_in += 1;
            self.stats.bytes_in += frame.len() as u64;
            if self.config.mode == Mode::Echo {
                // The connection queued its echo itself, in order with its control frames
                // (see `Conn::feed_ws`); only count it here.
                self.stats.deliveries += 1;
                continue;
            }
            // The room's members on the other nodes (never blocks: see bridge.rs).
            #[cfg(feature = "redis")]
            if let Some(bridge) = &mut self.bridge {
                bridge.publish(room, &frame);
            }
            self.deliver(room, &frame, Some(from), now);
        }
        self.inbox = inbox;
    }

    /// Queues `frame` for every member of `room` except `except` (the sender, when local).
    fn deliver(
        &mut self,
        room: crate::hub::RoomId,
        frame: &Bytes,
        except: Option<ConnId>,
        now: Instant,
    ) {
        for &to in self.hub.members(room) {
            if Some(to) == except {
                continue;
            }
            // Members are live slab entries: they leave the room before their slot is freed.
            let conn = &mut self.conns[to];
            if conn.send(frame.clone(), now).is_err() {
                warn!("conn={to} slow consumer: {} bytes queued", conn.queued());
                conn.drop_slow_consumer(now);
            } else {
                self.stats.deliveries += 1;
            }
            mark_dirty(conn, to, &mut self.dirty);
        }
    }

    /// The Redis bridge's turn: its connections and timers; then what other nodes sent goes
    /// to this node's members of the room (see bridge.rs).
    #[cfg(feature = "redis")]
    fn bridge_turn(&mut self, now: Instant) {
        let Some(bridge) = &mut self.bridge else {
            return;
        };
        for (room, frame) in bridge.turn(self.poll.registry(), now, self.paused) {
            self.deliver(room, &frame, None, now);
        }
    }

    /// True while reading should pause, so TCP slows the senders down. Two reasons:
    /// - the outboxes together hold more than `--high-water-bytes` (paused until they are down
    ///   to half of it: hysteresis, so we do not flap). This bounds memory when every receiver
    ///   is a little behind, i.e. when the server or the network is the bottleneck;
    /// - some connection is *behind* (more than half its `--max-queue-bytes` queued): reading
    ///   more would only push it towards its cap. If it catches up, reading resumes; if it
    ///   holds everyone up for `--lag-timeout`, `tick` drops it as a slow consumer.
    fn backpressure(&mut self, now: Instant) -> bool {
        let queued = self.meter.get();
        let over = if self.paused {
            queued > self.config.high_water_bytes / 2
        } else {
            queued > self.config.high_water_bytes
        };
        let behind = self.meter.behind();
        match (behind, self.behind_since) {
            (0, _) => self.behind_since = None,
            (_, None) => self.behind_since = Some(now),
            _ => {}
        }
        if (over || behind > 0) != self.paused {
            self.paused = over || behind > 0;
            debug!(
                "reading {}: {queued} bytes queued, {behind} of {} connections behind",
                if self.paused { "paused" } else { "resumed" },
                self.open
            );
        }
        self.paused
    }

    /// Drops the connections that have held reading up for `--lag-timeout` as slow consumers,
    /// unless most connections are behind: then the bottleneck is not them but the server or
    /// the network, and the pause is the right answer (they are draining; nobody is dropped).
    fn drop_laggards(&mut self, now: Instant) {
        let Some(since) = self.behind_since else {
            return;
        };
        let behind = self.meter.behind();
        if now.saturating_duration_since(since) < self.config.lag_timeout || 2 * behind > self.open
        {
            return;
        }
        for (id, conn) in self.conns.iter_mut() {
            if conn.is_behind() {
                warn!("conn={id} slow consumer: {} bytes queued", conn.queued());
                conn.drop_slow_consumer(now);
                mark_dirty(conn, id, &mut self.dirty);
            }
        }
        self.behind_since = None;
    }

    /// The server's counters and gauges right now.
    fn gauges(&self) -> Gauges {
        Gauges {
            open: self.open,
            sockets: self.conns.len(),
            rooms: self.hub.len(),
            queued_bytes: self.meter.get(),
            behind: self.meter.behind(),
            paused: self.paused,
            rss_bytes: stats::rss_bytes(),
            #[cfg(feature = "redis")]
            redis: self.bridge.as_ref().map(|b| b.counters()),
            #[cfg(not(feature = "redis"))]
            redis: None,
        }
    }

    /// Renders `/stats` or `/metrics`.
    fn report(&self, report: Report) -> String {
        match report {
            Report::Json => self.stats.to_json(&self.gauges()),
            Report::Prometheus => self.stats.to_prometheus(&self.gauges()),
        }
    }

    /// Checks every connection's deadlines; runs once per tick.
    fn tick(&mut self, now: Instant) {
        self.next_tick = now + self.config.tick();
        self.backpressure(now);
        self.drop_laggards(now);
        for (id, conn) in self.conns.iter_mut() {
            conn.on_tick(now, &self.config);
            mark_dirty(conn, id, &mut self.dirty);
        }
    }

    /// Writes what this turn queued, sets each connection's interest to match what it still
    /// has queued, and frees the connections that are closed. This is the end of the batch.
    fn flush_dirty(&mut self, now: Instant) {
        for id in std::mem::take(&mut self.dirty) {
            let Some(conn) = self.conns.get_mut(id) else {
                continue;
            };
            conn.marks.dirty = false;
            self.stats.bytes_out += conn.flush(now) as u64;
            if conn.is_closed() {
                self.remove(id);
                continue;
            }
            let want_write = conn.wants_write();
            if want_write != conn.marks.writable_registered {
                let interest = if want_write {
                    Interest::READABLE | Interest::WRITABLE
                } else {
                    Interest::READABLE
                };
                conn.marks.writable_registered = want_write;
                if let Err(e) = reregister(self.poll.registry(), conn, id, interest) {
                    warn!("conn={id} reregister: {e}");
                    self.remove(id);
                }
            }
        }
    }

    /// Frees a closed connection: out of its room, off the poller, socket closed (on drop).
    fn remove(&mut self, id: ConnId) {
        let Some(mut conn) = self.conns.try_remove(id) else {
            return;
        };
        if let Some(room) = conn.room {
            debug!("conn={id} left room {}", self.hub.name(room));
            // The room's last member here: stop hearing the other nodes' messages for it.
            #[cfg(feature = "redis")]
            if let (Some(bridge), [_]) = (&mut self.bridge, self.hub.members(room)) {
                bridge.unsubscribe(room);
            }
            self.hub.leave(room, id);
            self.open -= 1;
            if let Some(n) = self.per_ip.get_mut(&conn.peer) {
                *n -= 1;
                if *n == 0 {
                    self.per_ip.remove(&conn.peer);
                }
            }
        }
        match conn.outcome {
            Outcome::Answered(status) => self.stats.http_answer(status),
            Outcome::Closed(code) => self.stats.close_sent(code),
            Outcome::SlowConsumer => {
                self.stats.close_sent(1008);
                self.stats.slow_consumers += 1;
            }
            Outcome::Quiet => {}
        }
        // Deregistering can only fail if the socket is already gone from the poller.
        let _ = self.poll.registry().deregister(conn.socket_mut());
    }

    /// The waker or a signal fired: begin the shutdown if that is what was asked.
    fn check_stop(&mut self, now: Instant) {
        let signalled = self
            .signals
            .as_mut()
            .is_some_and(|s| s.pending().next().is_some());
        if signalled || self.stop.load(Ordering::SeqCst) {
            self.begin_shutdown(now);
        }
    }

    /// Stop accepting, send Close 1001 to every client and give them `--shutdown-grace` to
    /// receive it; `run` returns when they are all gone or the grace is over.
    fn begin_shutdown(&mut self, now: Instant) {
        if self.shutdown_deadline.is_some() {
            return;
        }
        info!(
            "shutting down: closing {} connections (1001)",
            self.conns.len()
        );
        if let Some(mut listener) = self.listener.take() {
            let _ = self.poll.registry().deregister(&mut listener);
        }
        self.accept_retry = None;
        self.shutdown_deadline = Some(now + self.config.shutdown_grace);
        for (id, conn) in self.conns.iter_mut() {
            conn.close(CloseCode::Away, "server shutting down", now);
            mark_dirty(conn, id, &mut self.dirty);
        }
    }
}

/// Queues `conn` for flushing at the end of this turn, once.
fn mark_dirty(conn: &mut Conn<TcpStream>, id: ConnId, dirty: &mut Vec<ConnId>) {
    if !conn.marks.dirty {
        conn.marks.dirty = true;
        dirty.push(id);
    }
}

/// Changes what the poller watches for on `conn`'s socket.
fn reregister(
    registry: &Registry,
    conn: &mut Conn<TcpStream>,
    id: ConnId,
    interest: Interest,
) -> io::Result<()> {
    registry.reregister(conn.socket_mut(), Token(id), interest)
}

/// `accept` failed for lack of resources, not because of this connection: EMFILE (this
/// process's descriptor limit), ENFILE (the system's), ENOBUFS/ENOMEM (kernel memory).
fn out_of_resources(e: &io::Error) -> bool {
    // These values are the same on Linux, the BSDs and macOS for EMFILE/ENFILE; ENOBUFS and
    // ENOMEM are Linux's (105, 12).
    matches!(e.raw_os_error(), Some(23 | 24 | 105 | 12))
}
