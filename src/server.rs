//! The event loop: one thread, one `mio::Poll`, every socket of the server.
//!
//! [`Server::run`] is the whole server. Each turn:
//!
//! ```text
//!  poll(timeout = earliest deadline, or 0 if input is waiting)
//!   ├─ listener  → accept until WouldBlock; each socket becomes a Slot (a Conn) in the slab
//!   ├─ signals / waker → begin the shutdown (Close 1001 to everyone)
//!   └─ Token(id) → readable: queue for reading · writable: queue for flushing
//!  read_ready   → read each queued connection until it has nothing more for now, and do
//!                 what it asks: admit an upgrade, answer a report, relay a message (encoded
//!                 once, into its room's batch for this turn). A connection whose room is
//!                 paused (a member behind) is parked, not read: TCP then slows the senders
//!                 of that room alone (backpressure.rs)
//!  bridge_turn  → (with --redis) the Redis connections: publish what was relayed; what
//!                 other nodes sent joins the room's batch (bridge.rs)
//!  fan_out      → each room's batch to its members: slices of one shared buffer (hub/batch.rs)
//!  tick         → deadlines: handshake, ping, idle, stuck writers, closing, laggards
//!  flush_dirty  → write the outboxes touched (writev), 64 connections a turn at most, the
//!                 rest next turn, after a look at new input; then interest follows state:
//!                 WRITABLE only while bytes are queued; closed slots freed here, after the
//!                 whole batch of events
//!  unpark       → rooms whose members caught up are read again (at once, not next tick)
//! ```
//!
//! The steps live beside this file: `server/accept.rs` (accepting sockets, admitting
//! upgrades), `server/read.rs` (reading and relaying), `server/fanout.rs` (batches to
//! outboxes, parking and laggards), `server/slot.rs` (a connection's slot, flushing,
//! freeing). A connection's socket is a `Stream` (`stream.rs`): plain TCP, or TLS over it
//! with `--tls-cert`.
//!
//! This file and its steps are the only code that reads the clock and owns the `Poll`;
//! everything they call is handed `now`. The one other user of the `Registry` is the Redis
//! bridge, handed it to (de)register its own two sockets (`bridge.rs` says why). Like Qt's
//! event loop, nothing here blocks: every socket is non-blocking and `WouldBlock` only means
//! "the kernel has no more for now".

mod accept;
mod fanout;
mod read;
mod slot;

use crate::backpressure::Backpressure;
use crate::config::Config;
use crate::conn::Scratch;
use crate::http::Report;
use crate::hub::{ConnId, Hub};
use crate::outbox::Meter;
use crate::stats::{self, Gauges, Stats};
use accept::Admission;
use log::info;
// Only the certificate reload logs a warning here; the other steps log their own.
#[cfg(feature = "tls")]
use log::warn;
use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Token, Waker};
use read::Parked;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook_mio::v1_0::Signals;
use slab::Slab;
use slot::Slot;
use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tungstenite::protocol::frame::coding::CloseCode;

/// Token of the listening socket. Reserved tokens sit at the top of the range, out of the
/// slab's reach (slab keys count up from 0).
const LISTENER: Token = Token(usize::MAX);
/// Token of the waker that [`ServerHandle::shutdown`] uses.
const WAKER: Token = Token(usize::MAX - 1);
/// Token of SIGINT/SIGTERM (and, with TLS, SIGHUP) delivery.
const SIGNALS: Token = Token(usize::MAX - 2);
/// Tokens of the Redis bridge's subscriber and publisher connections (`--redis`, bridge.rs).
#[cfg(feature = "redis")]
const REDIS: [Token; 2] = [Token(usize::MAX - 3), Token(usize::MAX - 4)];

/// Size of the one read buffer shared by all connections.
const SCRATCH_BYTES: usize = 64 << 10;

/// The chat server. Create with [`Server::bind`], stop with a [`ServerHandle`] or a signal.
pub struct Server {
    /// The poller: one `epoll` (or kqueue) for every socket.
    poll: Poll,
    /// The listening socket; `None` once shutdown began.
    listener: Option<TcpListener>,
    /// Its address (the port is known even when bound to port 0).
    local_addr: SocketAddr,
    /// SIGINT/SIGTERM (and SIGHUP with TLS) as poll events; `None` if not installed (tests
    /// run many servers).
    signals: Option<Signals>,
    /// With `--tls-cert`: the certificate and key every new connection is wrapped with;
    /// SIGHUP reloads them (`tls.rs`).
    #[cfg(feature = "tls")]
    tls: Option<crate::tls::ServerTls>,
    /// What [`Server::handle`] hands out clones of: the stop flag and the waker.
    handle: ServerHandle,
    /// Every connection and the server's bookkeeping for it, keyed by its token.
    slots: Slab<Slot>,
    /// Who is in which room.
    hub: Hub,
    /// The knobs.
    config: Config,
    /// Bytes queued in all outboxes together, and how many are behind.
    meter: Meter,
    /// Who may upgrade: open connections, in all and per address.
    admission: Admission,
    /// When reading pauses and when laggards are dropped.
    backpressure: Backpressure,
    /// Counters for `/stats`, `/metrics` and the periodic summary.
    stats: Stats,
    /// The read buffer all connections share, and this turn's read budget.
    scratch: Scratch,
    /// Connections that may have unread input, in turn order.
    ready: VecDeque<ConnId>,
    /// What waits for a paused room to catch up: its connections' unread input, other nodes'
    /// frames for it.
    parked: Parked,
    /// Connections touched and not yet flushed, in order: the first `FLUSH_PER_TURN` are
    /// flushed (and maybe freed) at the end of each turn.
    dirty: VecDeque<ConnId>,
    /// When things are due.
    timers: Timers,
    /// Accepting failed for lack of descriptors (so the warning is logged once, not per retry).
    starved: bool,
    /// With `--redis`: shares every room with the other nodes (bridge.rs). Its hooks here:
    /// `run` dispatches its tokens and gives it a turn, `relay` publishes, a room appearing or
    /// vanishing (`admit`, `remove`) (un)subscribes, `poll_timeout` wakes it.
    #[cfg(feature = "redis")]
    bridge: Option<crate::bridge::Bridge>,
}

/// The server's own deadlines (each connection keeps its own; `tick` checks those).
struct Timers {
    /// When deadlines are next checked.
    tick: Instant,
    /// When the next summary line is due (`None`: never).
    summary: Option<Instant>,
    /// When to try accepting again after running out of file descriptors.
    accept_retry: Option<Instant>,
    /// Set once shutdown began: when the server gives up waiting for clients.
    shutdown: Option<Instant>,
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
    /// Loads the TLS certificate (with `--tls-cert`) and binds the listening socket. Nothing
    /// is accepted until [`run`]. A certificate that cannot be used is an error whose inner
    /// error is a [`TlsError`](crate::tls::TlsError), one line naming the file.
    ///
    /// [`run`]: Server::run
    pub fn bind(config: Config) -> io::Result<Server> {
        #[cfg(feature = "tls")]
        let tls = match &config.tls {
            Some(files) => Some(
                crate::tls::ServerTls::load(&files.cert, &files.key)
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?,
            ),
            None => None,
        };
        let poll = Poll::new()?;
        let mut listener = accept::listen(&config)?;
        let local_addr = listener.local_addr()?;
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let now = Instant::now();
        Ok(Server {
            poll,
            listener: Some(listener),
            local_addr,
            signals: None,
            #[cfg(feature = "tls")]
            tls,
            handle: ServerHandle {
                stop: Arc::new(AtomicBool::new(false)),
                waker,
            },
            slots: Slab::new(),
            hub: Hub::default(),
            meter: Meter::default(),
            admission: Admission::new(&config),
            backpressure: Backpressure::new(config.high_water_bytes, config.lag_timeout),
            stats: Stats::default(),
            scratch: Scratch::new(SCRATCH_BYTES),
            ready: VecDeque::new(),
            parked: Parked::default(),
            dirty: VecDeque::new(),
            timers: Timers {
                tick: now,
                summary: (!config.summary_interval.is_zero())
                    .then(|| now + config.summary_interval),
                accept_retry: None,
                shutdown: None,
            },
            starved: false,
            #[cfg(feature = "redis")]
            bridge: config
                .redis
                .as_ref()
                .map(|r| crate::bridge::Bridge::new(r, REDIS, &config, now)),
            config,
        })
    }

    /// Also stop on SIGINT and SIGTERM, and with TLS reload the certificate on SIGHUP (the
    /// binary does this; tests use a handle instead).
    pub fn handle_signals(&mut self) -> io::Result<()> {
        let mut signals = Signals::new([SIGINT, SIGTERM])?;
        #[cfg(feature = "tls")]
        if self.tls.is_some() {
            signals.add_signal(SIGHUP)?;
        }
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
        self.handle.clone()
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
                    Token(id) => self.on_event(ConnId(id), event),
                }
            }
            self.read_ready(now);
            #[cfg(feature = "redis")]
            self.bridge_turn(now);
            self.fan_out(now);
            if now >= self.timers.tick {
                self.tick(now);
            }
            if self.timers.accept_retry.is_some_and(|t| now >= t) {
                self.timers.accept_retry = None;
                self.accept(now)?;
            }
            self.flush_dirty(now);
            self.unpark(now);
            if self.timers.summary.is_some_and(|t| now >= t) {
                self.timers.summary = Some(now + self.config.summary_interval);
                info!("{}", self.stats.summary(&self.gauges()));
            }
            if let Some(deadline) = self.timers.shutdown {
                if self.slots.is_empty() || now >= deadline {
                    info!("stopped ({} connections left)", self.slots.len());
                    return Ok(());
                }
            }
        }
    }

    /// How long `poll` may sleep: not at all if input waits to be read, frames to be
    /// delivered or outboxes to be written, else until the next deadline (tick, accept retry
    /// or shutdown). An empty wake-up means "a timer is due". Parked connections do not count:
    /// their room resumes only when a flush drains it, or a tick drops its laggards.
    fn poll_timeout(&self, now: Instant) -> Option<Duration> {
        let paused = self.backpressure.is_paused();
        if (!self.ready.is_empty() && !paused) || self.hub.has_batched() || !self.dirty.is_empty() {
            return Some(Duration::ZERO);
        }
        let next = [
            Some(self.timers.tick),
            self.timers.accept_retry,
            self.timers.shutdown,
            #[cfg(feature = "redis")]
            self.bridge
                .as_ref()
                .and_then(|b| b.deadline(now, self.bridge_paused())),
        ]
        .into_iter()
        .flatten()
        .min();
        next.map(|t| t.saturating_duration_since(now))
    }

    /// Checks every connection's deadlines, and the laggards; runs once per tick.
    fn tick(&mut self, now: Instant) {
        self.timers.tick = now + self.config.tick();
        self.drop_laggards(now);
        for (id, slot) in self.slots.iter_mut() {
            slot.conn.on_tick(now, &self.config);
            // Only a connection with something to write (a Ping, a Close, an answer) or that
            // is done needs the end of the turn; the rest are not touched again.
            if slot.conn.wants_write() || slot.conn.is_closed() {
                slot.mark_dirty(ConnId(id), &mut self.dirty);
            }
        }
    }

    /// The server's counters and gauges right now.
    fn gauges(&self) -> Gauges {
        Gauges {
            open: self.admission.open(),
            sockets: self.slots.len(),
            rooms: self.hub.len(),
            queued_bytes: self.meter.get(),
            behind: self.meter.behind(),
            paused: self.backpressure.is_paused(),
            rooms_paused: self.hub.rooms_paused(),
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

    /// The waker or a signal fired: reload the certificate on SIGHUP, begin the shutdown on
    /// anything else that asks for it.
    fn check_stop(&mut self, now: Instant) {
        let mut stop = self.handle.stop.load(Ordering::SeqCst);
        let pending: Vec<i32> = match &mut self.signals {
            Some(signals) => signals.pending().collect(),
            None => Vec::new(),
        };
        for signal in pending {
            match signal {
                SIGHUP => self.reload_tls(),
                _ => stop = true,
            }
        }
        if stop {
            self.begin_shutdown(now);
        }
    }

    /// SIGHUP: read the certificate and key again. New connections get the new ones; open
    /// connections keep theirs. A bad file keeps the old certificate (and says why).
    fn reload_tls(&mut self) {
        #[cfg(feature = "tls")]
        if let Some(tls) = &mut self.tls {
            match tls.reload() {
                Ok(()) => info!("SIGHUP: TLS certificate reloaded for new connections"),
                Err(e) => warn!("SIGHUP: {e}; still serving the previous certificate"),
            }
        }
    }

    /// Stop accepting, send Close 1001 to every client and give them `--shutdown-grace` to
    /// receive it; `run` returns when they are all gone or the grace is over.
    fn begin_shutdown(&mut self, now: Instant) {
        if self.timers.shutdown.is_some() {
            return;
        }
        info!(
            "shutting down: closing {} connections (1001)",
            self.slots.len()
        );
        if let Some(mut listener) = self.listener.take() {
            let _ = self.poll.registry().deregister(&mut listener);
        }
        self.timers.accept_retry = None;
        self.timers.shutdown = Some(now + self.config.shutdown_grace);
        for (id, slot) in self.slots.iter_mut() {
            slot.conn
                .close(CloseCode::Away, "server shutting down", now);
            slot.mark_dirty(ConnId(id), &mut self.dirty);
        }
    }
}
