//! A deliberately faulty chat server: the fixture that proves the load generator honest.
//!
//! It relays every message a client sends to every *other* client, like any chat server, but
//! injects the faults it is told to and counts each one it injects ([`Injected`]). A test runs
//! `chatloop bench` against it and checks that the report names exactly those faults: so many
//! deliveries lost, so many duplicated, so many out of order, one client stalled.
//!
//! It shares no code with the generator (it knows nothing of stamps or reports) and is
//! written for clarity, not speed: blocking sockets, two threads per connection.
//!
//! ```text
//!   reader thread (one per client)           writer thread (one per client)
//!   read a frame, unmask it                  take the next delivery from its channel
//!     └─▶ Hub::relay: for every other client   ├─ delay: wait until `delay` after relay
//!          ├─ drop every Nth delivery          ├─ stall: once, after N deliveries, sleep
//!          ├─ duplicate every Nth              ├─ reorder: hold every Nth, send it after
//!          └─ send to its writer's channel     │    the next one from the same sender
//!                                              ├─ close: after N deliveries, Close + FIN
//!                                              └─ write the frame (twice if duplicated)
//! ```
//!
//! Faults decided in the hub (drop, duplicate) count deliveries over all clients, in relay
//! order; faults decided in a writer (reorder, stall, close) count that client's deliveries.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};
use tungstenite::handshake::derive_accept_key;

/// How long a reordered delivery waits for a later one from the same sender before it is
/// sent anyway (then it is not counted as reordered).
const HOLD_MAX: Duration = Duration::from_millis(200);

/// The faults to inject. `Faults::default()` is an honest relay.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    /// Drop every Nth delivery (counted over all clients); 0: never.
    pub drop_every: u64,
    /// Send every Nth delivery twice (counted over all clients; a delivery that is dropped is
    /// not also duplicated); 0: never.
    pub duplicate_every: u64,
    /// Hold every Nth delivery to a client and send it after that client's next delivery from
    /// the same sender; 0: never.
    pub reorder_every: u64,
    /// Send every delivery this long after it was relayed.
    pub delay: Duration,
    /// Stop writing to one client for a while, once.
    pub stall: Option<Stall>,
    /// Close one client's connection mid-run.
    pub close: Option<CloseOne>,
}

/// Stop writing to client `client` (in accept order, from 0) for `pause`, once, after it has
/// been sent `after` deliveries.
#[derive(Debug, Clone, Copy)]
pub struct Stall {
    pub client: usize,
    pub after: u64,
    pub pause: Duration,
}

/// Send client `client` (in accept order, from 0) a Close after `after` deliveries, and
/// nothing more.
#[derive(Debug, Clone, Copy)]
pub struct CloseOne {
    pub client: usize,
    pub after: u64,
}

/// What the server did, counted as it did it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Injected {
    /// Data messages received from clients.
    pub messages: u64,
    /// Deliveries due: one per message and client other than its sender, before any fault.
    pub deliveries: u64,
    /// Deliveries dropped.
    pub dropped: u64,
    /// Deliveries sent twice.
    pub duplicated: u64,
    /// Deliveries sent after a later one from the same sender.
    pub reordered: u64,
    /// Stalls performed (0 or 1).
    pub stalls: u64,
    /// Deliveries never sent because their client had been closed.
    pub undelivered: u64,
}

/// What a writer thread is asked to do.
enum Job {
    /// Send a delivery.
    Deliver(Delivery),
    /// The client sent a Close: answer it and end (RFC 6455 §5.5.1).
    Close,
}

/// One delivery on its way to a writer thread.
struct Delivery {
    /// Who sent it (accept order): reordering only swaps deliveries of one sender.
    from: usize,
    /// The whole frame, server to client (unmasked).
    frame: Arc<Vec<u8>>,
    /// Send it twice.
    twice: bool,
    /// When the hub relayed it (for `Faults::delay`).
    relayed: Instant,
}

/// Every client's channel, and the counters. Behind one mutex: a fixture, not a fast path.
struct Hub {
    faults: Faults,
    /// By accept order. A writer that has ended (its client closed, or we closed it) makes
    /// `send` fail, and the delivery is counted as undelivered.
    writers: Vec<Sender<Job>>,
    counts: Injected,
}

impl Hub {
    /// Relays one message from `from` to every other client, deciding drop and duplicate.
    fn relay(&mut self, from: usize, frame: Arc<Vec<u8>>) {
        self.counts.messages += 1;
        let now = Instant::now();
        for (to, tx) in self.writers.iter().enumerate() {
            if to == from {
                continue;
            }
            self.counts.deliveries += 1;
            let n = self.counts.deliveries;
            if every(self.faults.drop_every, n) {
                self.counts.dropped += 1;
                continue;
            }
            let twice = every(self.faults.duplicate_every, n);
            let delivery = Delivery {
                from,
                frame: frame.clone(),
                twice,
                relayed: now,
            };
            if tx.send(Job::Deliver(delivery)).is_err() {
                // The writer has ended (its client closed): the delivery never happens.
                self.counts.undelivered += 1;
                continue;
            }
            if twice {
                self.counts.duplicated += 1;
            }
        }
    }
}

/// True for every `n`th count (never for `n == 0`).
fn every(n: u64, count: u64) -> bool {
    n != 0 && count.is_multiple_of(n)
}

/// A running faulty server; stops when dropped.
pub struct FaultyServer {
    /// `ws://127.0.0.1:PORT/room`.
    pub url: String,
    hub: Arc<Mutex<Hub>>,
    stop: Arc<AtomicBool>,
}

impl FaultyServer {
    /// Starts the server on `127.0.0.1:0` with `faults`.
    pub fn start(faults: Faults) -> FaultyServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let url = format!(
            "ws://{}/room",
            listener.local_addr().expect("local address")
        );
        listener
            .set_nonblocking(true)
            .expect("non-blocking listener");
        let hub = Arc::new(Mutex::new(Hub {
            faults,
            writers: Vec::new(),
            counts: Injected::default(),
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let (hub2, stop2) = (hub.clone(), stop.clone());
        thread::spawn(move || accept_loop(listener, hub2, stop2));
        FaultyServer { url, hub, stop }
    }

    /// What it has injected so far.
    pub fn injected(&self) -> Injected {
        self.hub.lock().expect("hub lock").counts
    }
}

impl Drop for FaultyServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Dropping every sender ends every writer thread.
        if let Ok(mut hub) = self.hub.lock() {
            hub.writers.clear();
        }
    }
}

/// Accepts until stopped; each client gets a reader and a writer thread.
fn accept_loop(listener: TcpListener, hub: Arc<Mutex<Hub>>, stop: Arc<AtomicBool>) {
    while !stop.load(Ordering::Relaxed) {
        let stream = match listener.accept() {
            Ok((stream, _)) => stream,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                thread::sleep(Duration::from_millis(2));
                continue;
            }
            Err(_) => return,
        };
        let _ = stream.set_nonblocking(false);
        let _ = stream.set_nodelay(true);
        // A read timeout, so a reader notices `stop` even when its client is silent.
        let _ = stream.set_read_timeout(Some(Duration::from_millis(100)));
        let (hub, stop) = (hub.clone(), stop.clone());
        thread::spawn(move || {
            let _ = serve(stream, hub, stop);
        });
    }
}

/// One client: the handshake, then its writer thread, then reading frames until it goes.
fn serve(mut stream: TcpStream, hub: Arc<Mutex<Hub>>, stop: Arc<AtomicBool>) -> io::Result<()> {
    let mut buf = Vec::new();
    let answer = handshake(&mut stream, &mut buf, &stop)?;
    // Joined before the client hears `101`: a message sent right after reaches it too.
    let (tx, rx) = mpsc::channel();
    let (me, faults) = {
        let mut hub = hub.lock().expect("hub lock");
        hub.writers.push(tx.clone());
        (hub.writers.len() - 1, hub.faults.clone())
    };
    stream.write_all(answer.as_bytes())?;
    let writer = stream.try_clone()?;
    let hub2 = hub.clone();
    thread::spawn(move || write_loop(writer, me, faults, rx, hub2));
    let ended = read_loop(&mut stream, &mut buf, me, &hub, &stop);
    // Whatever ended reading, the writer answers with a Close and ends.
    let _ = tx.send(Job::Close);
    ended
}

/// Reads the upgrade request; returns the `101` answer to send (RFC 6455 §4.2.2). Leaves any
/// bytes after the request head in `buf`.
fn handshake(stream: &mut TcpStream, buf: &mut Vec<u8>, stop: &AtomicBool) -> io::Result<String> {
    let bad = |m: &str| io::Error::new(io::ErrorKind::InvalidData, m.to_owned());
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut req = httparse::Request::new(&mut headers);
        if let httparse::Status::Complete(n) = req.parse(buf).map_err(|_| bad("bad request"))? {
            let key = req
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case("sec-websocket-key"))
                .ok_or_else(|| bad("no Sec-WebSocket-Key"))?;
            let answer = format!(
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                 Sec-WebSocket-Accept: {}\r\n\r\n",
                derive_accept_key(key.value)
            );
            buf.drain(..n);
            return Ok(answer);
        }
        read_some(stream, buf, stop)?;
    }
}

/// Appends what the socket has to `buf`; an error at end of stream or when stopped.
fn read_some(stream: &mut TcpStream, buf: &mut Vec<u8>, stop: &AtomicBool) -> io::Result<()> {
    let mut chunk = [0u8; 16 * 1024];
    loop {
        if stop.load(Ordering::Relaxed) {
            return Err(io::ErrorKind::Interrupted.into());
        }
        match stream.read(&mut chunk) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                return Ok(());
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(e) => return Err(e),
        }
    }
}

/// Reads frames until the client closes: data is relayed, a Ping answered, a Close ends it.
fn read_loop(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    me: usize,
    hub: &Mutex<Hub>,
    stop: &AtomicBool,
) -> io::Result<()> {
    loop {
        while let Some((opcode, payload, used)) = parse_client_frame(buf) {
            buf.drain(..used);
            match opcode {
                // Text and Binary: relayed as they came (RFC 6455 §5.6).
                0x1 | 0x2 => {
                    let frame = Arc::new(server_frame(opcode, &payload));
                    hub.lock().expect("hub lock").relay(me, frame);
                }
                // Close: `serve` has the writer answer it; we stop reading.
                0x8 => return Ok(()),
                // Ping → Pong is not needed by the generator; ignore control frames.
                _ => {}
            }
        }
        read_some(stream, buf, stop)?;
    }
}

/// One complete masked client frame at the front of `buf`: (opcode, unmasked payload, bytes
/// used), or `None` if more bytes are needed (RFC 6455 §5.2; fragments are not expected).
fn parse_client_frame(buf: &[u8]) -> Option<(u8, Vec<u8>, usize)> {
    let (&b0, &b1) = (buf.first()?, buf.get(1)?);
    let (len, mut at) = match b1 & 0x7f {
        126 => (
            u16::from_be_bytes(buf.get(2..4)?.try_into().ok()?) as usize,
            4,
        ),
        127 => (
            u64::from_be_bytes(buf.get(2..10)?.try_into().ok()?) as usize,
            10,
        ),
        n => (n as usize, 2),
    };
    let mask: [u8; 4] = buf.get(at..at + 4)?.try_into().ok()?;
    at += 4;
    let mut payload = buf.get(at..at + len)?.to_vec();
    for (i, b) in payload.iter_mut().enumerate() {
        *b ^= mask[i % 4];
    }
    Some((b0 & 0x0f, payload, at + len))
}

/// A final, unmasked server frame (RFC 6455 §5.2: servers never mask).
fn server_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0x80 | opcode];
    match payload.len() {
        n if n < 126 => f.push(n as u8),
        n if n <= 0xffff => {
            f.push(126);
            f.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            f.push(127);
            f.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    f.extend_from_slice(payload);
    f
}

/// One client's writer: applies the per-client faults, then writes.
fn write_loop(
    mut stream: TcpStream,
    me: usize,
    faults: Faults,
    rx: Receiver<Job>,
    hub: Arc<Mutex<Hub>>,
) {
    let count =
        |hub: &Mutex<Hub>, f: fn(&mut Injected)| f(&mut hub.lock().expect("hub lock").counts);
    let (mut written, mut held): (u64, Option<Delivery>) = (0, None);
    let stall = faults.stall.filter(|s| s.client == me);
    let close = faults.close.filter(|c| c.client == me);
    loop {
        let next = match &held {
            Some(_) => rx.recv_timeout(HOLD_MAX),
            None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
        };
        let d = match next {
            Ok(Job::Deliver(d)) => d,
            Ok(Job::Close) => {
                let _ = stream.write_all(&server_frame(0x8, &1000u16.to_be_bytes()));
                let _ = stream.shutdown(Shutdown::Write);
                return;
            }
            Err(RecvTimeoutError::Timeout) => {
                // Nothing more from that sender in time: the held one goes out unswapped.
                let d = held.take().expect("a timeout only while holding");
                if write_delivery(&mut stream, &d, faults.delay).is_err() {
                    return;
                }
                continue;
            }
            Err(RecvTimeoutError::Disconnected) => return,
        };
        if close.is_some_and(|c| written >= c.after) {
            // RFC 6455 §7.4.1: 1001 = going away. Then FIN; everything after is undelivered.
            let _ = stream.write_all(&server_frame(0x8, &1001u16.to_be_bytes()));
            let _ = stream.shutdown(Shutdown::Write);
            // Under the hub's lock no relay runs: count what is queued, then drop the channel
            // so that the hub counts every later delivery to this client as undelivered.
            let mut hub = hub.lock().expect("hub lock");
            let queued = rx
                .try_iter()
                .filter(|j| matches!(j, Job::Deliver(_)))
                .count();
            hub.counts.undelivered += 1 + u64::from(held.is_some()) + queued as u64;
            drop(rx);
            return;
        }
        if let Some(s) = stall.filter(|s| written == s.after) {
            thread::sleep(s.pause);
            count(&hub, |c| c.stalls += 1);
        }
        written += 1;
        if held.is_none() && every(faults.reorder_every, written) {
            held = Some(d);
            continue;
        }
        if write_delivery(&mut stream, &d, faults.delay).is_err() {
            return;
        }
        if held.as_ref().is_some_and(|h| h.from == d.from) {
            let h = held.take().expect("checked above");
            if write_delivery(&mut stream, &h, faults.delay).is_err() {
                return;
            }
            count(&hub, |c| c.reordered += 1);
        }
    }
}

/// Writes a delivery (twice if duplicated), not before `delay` after it was relayed.
fn write_delivery(stream: &mut TcpStream, d: &Delivery, delay: Duration) -> io::Result<()> {
    let due = d.relayed + delay;
    let now = Instant::now();
    if due > now {
        thread::sleep(due - now);
    }
    stream.write_all(&d.frame)?;
    if d.twice {
        stream.write_all(&d.frame)?;
    }
    Ok(())
}
