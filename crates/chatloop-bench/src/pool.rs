//! The generator's event loop: every client connection in one `mio::Poll`, in one thread.
//!
//! A [`Pool`] starts connections (at most `--concurrency` handshakes in flight, source
//! addresses round-robin), turns readiness events into calls on the scenario's [`Handler`], and
//! counts what went wrong. It knows nothing about what the scenario sends: a scenario runs its
//! own loop around [`Pool::turn`], and after each turn queues frames with [`Pool::send`] and
//! writes them with [`Pool::flush`], so one turn's messages to one socket leave in one `write`.
//!
//! Clients are numbered by a *tag*, the order in which their connect began (0, 1, 2 …). The
//! scenarios use it as the sender/receiver id; a client that failed to connect leaves a hole.
//! The tag is given before the handshake, so data that arrives in the same read as the `101`
//! is already attributed correctly.

use crate::client::{Client, Failure, Step};
use crate::frame::Masks;
use crate::stamp::MessageKind;
use crate::target::Target;
use hdrhistogram::Histogram;
use mio::{Events, Poll, Token};
use slab::Slab;
use std::io;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Size of the one read buffer shared by all clients: large enough that one `read` takes
/// everything a busy server queued for a socket in one turn.
const SCRATCH_BYTES: usize = 256 << 10;

/// What a scenario does when the pool reports something. Called from inside [`Pool::turn`].
pub trait Handler {
    /// Client `tag` (slab key `key`) finished its handshake.
    fn on_open(&mut self, tag: u32, key: usize, now: Instant);
    /// Client `tag` received a complete data message; `now_ns` is when the read returned, in
    /// nanoseconds since the pool's `base`.
    fn on_data(&mut self, tag: u32, payload: &[u8], now_ns: u64);
    /// Open client `tag` ended: cleanly (`None`) after our Close, or with a failure.
    fn on_end(&mut self, tag: u32, failure: Option<&Failure>);
}

/// A handler that ignores everything (used while closing).
pub struct Ignore;

impl Handler for Ignore {
    fn on_open(&mut self, _: u32, _: usize, _: Instant) {}
    fn on_data(&mut self, _: u32, _: &[u8], _: u64) {}
    fn on_end(&mut self, _: u32, _: Option<&Failure>) {}
}

/// Failures of one kind: how many, and the first one's message as an example.
#[derive(Debug, Clone)]
pub struct FailureCount {
    /// [`Failure::kind`].
    pub kind: &'static str,
    /// How many times it happened.
    pub count: u64,
    /// The first such failure, for the report.
    pub example: String,
}

/// All the client connections, their poller and their counters. See the module docs.
pub struct Pool {
    /// The poller for every client socket.
    poll: Poll,
    /// Reused event buffer.
    events: Events,
    /// Every client, keyed by its token.
    clients: Slab<Client>,
    /// The shared read buffer (grows only for frames bigger than half of it).
    scratch: Vec<u8>,
    /// Where and what to connect to.
    target: Target,
    /// Source addresses to bind to, round-robin; empty: let the kernel choose.
    sources: Vec<IpAddr>,
    /// The next source to use.
    next_source: usize,
    /// The tag of the next client started.
    next_tag: u32,
    /// Connections asked for but not started yet.
    to_start: usize,
    /// Connections started whose handshake has not finished.
    connecting: usize,
    /// Open connections (handshake done, not closing).
    open: usize,
    /// At most this many handshakes in flight.
    concurrency: usize,
    /// Masking keys for frames sent through [`Pool::send`].
    masks: Masks,
    /// Failures from `flush` calls made outside a turn, handled at the start of the next one.
    broken: Vec<(usize, Failure)>,
    /// Time zero of the run: message timestamps count nanoseconds from it.
    pub base: Instant,
    /// Handshakes completed.
    pub opened: u64,
    /// Handshake times (TCP connect to `101` received), in microseconds.
    pub handshake_us: Histogram<u64>,
    /// Failures by kind.
    pub failures: Vec<FailureCount>,
}

impl Pool {
    /// A pool with no connections yet.
    pub fn new(
        target: Target,
        sources: Vec<IpAddr>,
        concurrency: usize,
        base: Instant,
    ) -> io::Result<Pool> {
        Ok(Pool {
            poll: Poll::new()?,
            events: Events::with_capacity(4096),
            clients: Slab::new(),
            scratch: vec![0; SCRATCH_BYTES],
            target,
            sources,
            next_source: 0,
            next_tag: 0,
            to_start: 0,
            connecting: 0,
            open: 0,
            concurrency: concurrency.max(1),
            masks: Masks::new(),
            broken: Vec::new(),
            base,
            opened: 0,
            handshake_us: new_histogram(),
            failures: Vec::new(),
        })
    }

    /// Asks for `n` more connections; they start during the next turns.
    pub fn request(&mut self, n: usize) {
        self.to_start += n;
    }

    /// Open connections.
    pub fn open(&self) -> usize {
        self.open
    }

    /// Connections asked for that are not open yet (not started or handshaking).
    pub fn pending(&self) -> usize {
        self.to_start + self.connecting
    }

    /// Sockets held: connecting, open or closing.
    pub fn sockets(&self) -> usize {
        self.clients.len()
    }

    /// All failures so far.
    pub fn error_count(&self) -> u64 {
        self.failures.iter().map(|f| f.count).sum()
    }

    /// Nanoseconds from `base` to `now`.
    pub fn ns(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.base).as_nanos() as u64
    }

    /// Queues a message of `kind` on client `key` (masked, not yet written).
    pub fn send(&mut self, key: usize, kind: MessageKind, payload: &[u8]) {
        if let Some(client) = self.clients.get_mut(key) {
            if client.is_open() {
                let mask = self.masks.next_key();
                client.push_frame(kind.opcode(), payload, mask);
            }
        }
    }

    /// Bytes queued on client `key` that the kernel has not taken yet.
    pub fn queued(&self, key: usize) -> usize {
        self.clients.get(key).map_or(0, Client::queued)
    }

    /// True if client `key` is open.
    pub fn is_open(&self, key: usize) -> bool {
        self.clients.get(key).is_some_and(Client::is_open)
    }

    /// Writes what is queued on client `key`; a failure ends it during the next turn.
    pub fn flush(&mut self, key: usize) {
        if let Some(client) = self.clients.get_mut(key) {
            if let Err(f) = client.flush() {
                self.broken.push((key, f));
            }
        }
    }

    /// Starts the closing handshake of client `key`.
    pub fn close(&mut self, key: usize) {
        if let Some(client) = self.clients.get_mut(key) {
            if client.is_open() {
                self.open -= 1;
                if let Err(f) = client.close(self.masks.next_key()) {
                    self.broken.push((key, f));
                }
            }
        }
    }

    /// One turn: start connections, wait for events (at most `timeout`), dispatch them.
    pub fn turn(&mut self, timeout: Duration, handler: &mut impl Handler) -> io::Result<()> {
        for (key, failure) in std::mem::take(&mut self.broken) {
            self.end(key, Some(failure), handler);
        }
        self.start_some(Instant::now());
        match self.poll.poll(&mut self.events, Some(timeout)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(()),
            Err(e) => return Err(e),
        }
        let mut finished = Vec::new();
        for event in self.events.iter() {
            let key = event.token().0;
            let Some(client) = self.clients.get_mut(key) else {
                continue; // ended earlier in this batch
            };
            let tag = client.tag;
            let mut result = Ok(Step::Same);
            if event.is_writable() || event.is_error() || event.is_write_closed() {
                result = client.on_writable(&self.target).map(|()| Step::Same);
            }
            if result.is_ok() && (event.is_readable() || event.is_read_closed()) {
                let now_ns = self.base.elapsed().as_nanos() as u64;
                result = client.on_readable(&mut self.scratch, event.is_read_closed(), |p| {
                    handler.on_data(tag, p, now_ns)
                });
            }
            match result {
                Ok(Step::Same) => {}
                Ok(Step::Opened) => {
                    let now = Instant::now();
                    let took = now.saturating_duration_since(client.started);
                    self.handshake_us.saturating_record(took.as_micros() as u64);
                    client.counted_open = true;
                    self.connecting -= 1;
                    self.open += 1;
                    self.opened += 1;
                    handler.on_open(tag, key, now);
                }
                Ok(Step::Finished) => finished.push((key, None)),
                Err(f) => finished.push((key, Some(f))),
            }
        }
        for (key, failure) in finished {
            self.end(key, failure, handler);
        }
        Ok(())
    }

    /// Closes every open client and waits (at most `wait`) for the servers' answers; drops
    /// whatever is left after that.
    pub fn close_all(&mut self, wait: Duration) -> io::Result<()> {
        self.to_start = 0;
        let keys: Vec<usize> = self.clients.iter().map(|(k, _)| k).collect();
        for key in keys {
            self.close(key);
        }
        let deadline = Instant::now() + wait;
        while !self.clients.is_empty() && Instant::now() < deadline {
            self.turn(Duration::from_millis(50), &mut Ignore)?;
        }
        for mut client in self.clients.drain() {
            client.deregister(self.poll.registry());
        }
        self.connecting = 0;
        self.open = 0;
        Ok(())
    }

    /// Starts connections until `concurrency` handshakes are in flight or none are wanted.
    fn start_some(&mut self, now: Instant) {
        while self.to_start > 0 && self.connecting < self.concurrency {
            self.to_start -= 1;
            let source = if self.sources.is_empty() {
                None
            } else {
                self.next_source = (self.next_source + 1) % self.sources.len();
                Some(self.sources[self.next_source])
            };
            let tag = self.next_tag;
            self.next_tag += 1;
            let entry = self.clients.vacant_entry();
            let started = Client::connect(&self.target, source, now).and_then(|mut client| {
                client.register(self.poll.registry(), Token(entry.key()))?;
                Ok(client)
            });
            match started {
                Ok(mut client) => {
                    client.tag = tag;
                    entry.insert(client);
                    self.connecting += 1;
                }
                Err(e) => count(&mut self.failures, &Failure::Connect(e)),
            }
        }
    }

    /// Frees client `key`: counts the failure if any and tells the handler if it had opened.
    fn end(&mut self, key: usize, failure: Option<Failure>, handler: &mut impl Handler) {
        let Some(mut client) = self.clients.try_remove(key) else {
            return;
        };
        client.deregister(self.poll.registry());
        if !client.counted_open {
            self.connecting -= 1;
        } else if client.is_open() {
            self.open -= 1; // (a client that began closing was uncounted by `close`)
        }
        if let Some(f) = &failure {
            count(&mut self.failures, f);
        }
        if client.counted_open {
            handler.on_end(client.tag, failure.as_ref());
        }
    }
}

/// Adds one failure to its kind's count.
fn count(failures: &mut Vec<FailureCount>, f: &Failure) {
    match failures.iter_mut().find(|c| c.kind == f.kind()) {
        Some(c) => c.count += 1,
        None => failures.push(FailureCount {
            kind: f.kind(),
            count: 1,
            example: f.to_string(),
        }),
    }
}

/// A latency histogram in microseconds, from 1 µs to 10 minutes at 3 significant digits
/// (about 100 KiB; recording is a few additions).
pub fn new_histogram() -> Histogram<u64> {
    // The bounds are constants that hdrhistogram accepts (low ≥ 1, high ≥ 2 × low, sigfig ≤ 5).
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid histogram bounds")
}
