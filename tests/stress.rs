//! Hostile clients at scale, against the `chatloop` binary in its own process so its memory
//! and descriptors can be measured from `/proc`:
//!
//! - churn: connect/upgrade/close cycles ending every way a peer can end (Close handshake,
//!   RST, FIN without a Close, never sending at all), then nothing leaked;
//! - slow consumers: a thousand healthy readers and a hundred that never read, under fan-out;
//! - slowloris: thousands of half-sent request heads while a real client chats.
//!
//! Each test prints its figures (run with `--nocapture`). The default sizes keep
//! `scripts/test.sh` short; the variants `#[ignore = "long: …"]` are the full-size runs of
//! `scripts/soak.sh` (an ignore reason that does not start with `needs ` keeps them out of
//! `scripts/test.sh`: see `tests/common/mod.rs`). All traffic stays on 127.0.0.1 and every loop is bounded in count and
//! time.

mod common;

use common::*;
use mio::net::TcpStream as MioStream;
use mio::{Events, Interest, Poll, Token};
use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tungstenite::Message;

/// Held by each test for its whole run: these tests load the machine, so they take turns
/// instead of running in parallel like the rest of the suite.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Takes the [`ONE_AT_A_TIME`] lock (a test that panicked while holding it is no reason for
/// the others to fail).
fn one_at_a_time() -> MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

/// Descriptors the server process may open (it is started through `sh -c "ulimit -n …"`).
const SERVER_FDS: u32 = 16384;

/// Starts `chatloop serve --listen 127.0.0.1:0 ARGS…` with room for [`SERVER_FDS`] sockets.
fn spawn_server(args: &[&str]) -> ServerProcess {
    ServerProcess::spawn_with_fd_limit(SERVER_FDS, args)
}

/// How many descriptors this (client) process may open: the soft `RLIMIT_NOFILE`.
fn own_fd_limit() -> usize {
    std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|l| {
            l.lines()
                .find(|l| l.starts_with("Max open files"))?
                .split_whitespace()
                .nth(3)?
                .parse()
                .ok()
        })
        .unwrap_or(1024)
}

/// `want` clients, or fewer if this process's descriptor limit cannot hold them (reported).
fn fit_clients(want: usize, per_client: usize) -> usize {
    let room = own_fd_limit().saturating_sub(64) / per_client;
    if room < want {
        println!(
            "note: descriptor limit {} allows {room} of {want} clients; raise `ulimit -n`",
            own_fd_limit()
        );
    }
    want.min(room)
}

/// Waits until nothing but the asking connection is left (`/stats` counts it in `sockets`)
/// and no WebSocket is open; returns that last report.
fn wait_until_idle(addr: SocketAddr, limit: Duration) -> String {
    wait_for(limit, "the server to be idle", || {
        let json = stats_body(addr);
        if stat(&json, "sockets") == 1 && stat(&json, "connections_open") == 0 {
            Ok(json)
        } else {
            Err(json)
        }
    })
}

/// Waits for the server's descriptor count to come back to `baseline` (the last `/stats`
/// connection is freed a moment after the client sees its end); returns the count.
fn wait_for_fds(server: &ServerProcess, baseline: usize) -> usize {
    wait_for(
        READ_TIMEOUT,
        "the server's descriptors to come back",
        || {
            let n = server.open_fds();
            if n <= baseline {
                Ok(n)
            } else {
                Err(format!("{n} open, {baseline} before"))
            }
        },
    )
}

/// Churn: `cycles` connections, a quarter each ending with a clean Close handshake, an RST
/// (`SO_LINGER` 0), a FIN without Close, and a socket that never sends a byte (answered 408
/// after --handshake-timeout). Afterwards no socket, slot or descriptor is left, and the
/// resident memory is back near where it started.
fn churn(cycles: usize) {
    let _turn = one_at_a_time();
    let server = spawn_server(&["--handshake-timeout", "200ms"]);
    let fds_before = server.open_fds();
    let rss_before = server.status_kib("VmRSS");
    let close = client_frame(0x88, &close_payload(1000, b""));
    // Sockets that never send, oldest first; read (their 408) once this many are waiting.
    const SILENT_WINDOW: usize = 256;
    let mut silent: VecDeque<TcpStream> = VecDeque::new();
    let (mut answered_408, mut peak_rss) = (0, rss_before);
    let started = Instant::now();
    for i in 0..cycles {
        match i % 4 {
            0 => {
                let mut s = upgraded(server.addr, "/churn");
                s.write_all(&close).unwrap();
                assert_eq!(
                    read_to_end(&mut s),
                    [0x88, 0x02, 0x03, 0xe8],
                    "Close echoed"
                );
            }
            1 => {
                let s = upgraded(server.addr, "/churn");
                // Closing with a zero linger time sends RST instead of FIN.
                socket2::SockRef::from(&s)
                    .set_linger(Some(Duration::ZERO))
                    .unwrap();
            }
            // Dropped as it is: a FIN without a Close.
            2 => drop(upgraded(server.addr, "/churn")),
            _ => silent.push_back(raw(server.addr)),
        }
        while silent.len() > SILENT_WINDOW || (i + 1 == cycles && !silent.is_empty()) {
            let mut s = silent.pop_front().unwrap();
            let out = read_to_end(&mut s);
            assert!(out.starts_with(b"HTTP/1.1 408 "), "silent socket got 408");
            answered_408 += 1;
        }
        if i % 10_000 == 0 {
            peak_rss = peak_rss.max(server.status_kib("VmRSS"));
        }
    }
    let elapsed = started.elapsed();
    let json = wait_until_idle(server.addr, Duration::from_secs(10));
    let fds_after = wait_for_fds(&server, fds_before);
    let rss_after = server.status_kib("VmRSS");
    println!(
        "churn: {cycles} cycles in {elapsed:.1?} ({:.0}/s); 408s {answered_408}; \
         fds {fds_before} -> {fds_after}; RSS {rss_before} KiB -> {rss_after} KiB \
         (peak sampled {peak_rss} KiB, VmHWM {} KiB)",
        cycles as f64 / elapsed.as_secs_f64(),
        server.status_kib("VmHWM")
    );
    println!("churn: /stats {}", json.trim());
    // Accepted also counts the /stats requests made while waiting.
    assert!(stat(&json, "accepted_total") as usize > cycles, "{json}");
    assert_eq!(stat(&json, "upgraded_total") as usize, cycles - cycles / 4);
    assert_eq!(stat(&json, "408") as usize, answered_408);
    assert_eq!(fds_after, fds_before, "no descriptor leaked");
    assert!(
        rss_after < rss_before + (8 << 10),
        "RSS {rss_before} KiB -> {rss_after} KiB: more than 8 MiB kept"
    );
}

/// 5,000 connect/upgrade/close cycles, mixed endings: nothing leaks.
#[test]
fn churn_leaks_no_socket_slot_or_descriptor() {
    churn(5_000);
}

/// The full soak: 100,000 cycles (`scripts/soak.sh`).
#[test]
#[ignore = "long: run by scripts/soak.sh"]
fn churn_soak_100k() {
    churn(100_000);
}

/// Slow consumers at scale: `healthy` readers and `stuck` clients that never read share a
/// room; one sender fans `messages` messages out to all of them. Every stuck client is
/// dropped, every healthy one gets every message in order, and the server's peak RSS stays
/// under `rss_bound_kib`.
fn slow_consumers(healthy: usize, stuck: usize, messages: u32, rss_bound_kib: u64) {
    let _turn = one_at_a_time();
    let fit = fit_clients(healthy + stuck, 1);
    let (healthy, stuck) = (
        healthy * fit / (healthy + stuck),
        stuck * fit / (healthy + stuck),
    );
    let server = spawn_server(&[
        "--max-message-bytes",
        "16KiB",
        "--max-queue-bytes",
        "64KiB",
        "--lag-timeout",
        "500ms",
        "--write-timeout",
        "2s",
        "--close-timeout",
        "1s",
    ]);
    let addr = server.addr;
    let rss_before = server.status_kib("VmRSS");

    // Healthy readers: one mio poll for all of them, each upgraded in blocking mode first.
    let mut poll_readers = Poll::new().unwrap();
    let mut readers: Vec<Reader> = (0..healthy)
        .map(|i| {
            let s = upgraded(addr, "/fanout");
            s.set_nonblocking(true).unwrap();
            let mut stream = MioStream::from_std(s);
            poll_readers
                .registry()
                .register(&mut stream, Token(i), Interest::READABLE)
                .unwrap();
            Reader {
                stream,
                buf: Vec::new(),
                next: 0,
            }
        })
        .collect();
    // Stuck clients: a small receive buffer, upgraded, and never read again.
    let stuck_clients: Vec<TcpStream> = (0..stuck)
        .map(|_| {
            let socket =
                socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
            socket.set_recv_buffer_size(4 << 10).unwrap();
            socket.connect(&addr.into()).unwrap();
            let mut s: TcpStream = socket.into();
            s.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
            s.write_all(upgrade_request("/fanout").as_bytes()).unwrap();
            read_101(&mut s);
            s
        })
        .collect();
    // Everyone is in the room once the server has counted them.
    wait_until(READ_TIMEOUT, "every client to join", || {
        stat(&stats_body(addr), "connections_open") >= (healthy + stuck) as u64
    });

    let started = Instant::now();
    let sender = std::thread::spawn(move || {
        let stream = raw(addr);
        stream.set_read_timeout(None).unwrap();
        let mut ws = tungstenite::client(format!("ws://{addr}/fanout"), stream)
            .expect("sender handshake")
            .0;
        for seq in 0..messages {
            let mut payload = vec![0u8; MESSAGE_BYTES];
            payload[..4].copy_from_slice(&seq.to_be_bytes());
            ws.send(Message::binary(payload))
                .expect("sender is never dropped");
        }
        ws
    });

    // Read until every healthy reader has every message; bounded in time.
    let mut events = Events::with_capacity(1024);
    let mut done = 0;
    let mut scratch = vec![0u8; 64 << 10];
    let deadline = Instant::now() + Duration::from_secs(120);
    while done < healthy {
        assert!(
            Instant::now() < deadline,
            "only {done} of {healthy} readers got all {messages} messages"
        );
        poll_readers
            .poll(&mut events, Some(Duration::from_millis(100)))
            .unwrap();
        for event in events.iter() {
            let reader = &mut readers[event.token().0];
            if reader.drain(&mut scratch, messages) {
                done += 1;
            }
        }
    }
    let elapsed = started.elapsed();
    let _sender = sender.join().expect("sender finished");
    // A slow consumer is counted when it is dropped, and its slot freed once its Close went
    // out or --close-timeout passed (the stuck ones never take it), so give it that long.
    let json = wait_for(
        READ_TIMEOUT,
        "every stuck client to be dropped and freed",
        || {
            let json = stats_body(addr);
            if stat(&json, "slow_consumers_total") as usize >= stuck
                && stat(&json, "connections_open") as usize <= healthy + 1
            {
                Ok(json)
            } else {
                Err(json)
            }
        },
    );
    let peak = server.status_kib("VmHWM");
    println!(
        "slow consumers: {healthy} healthy + {stuck} stuck, {messages} x {MESSAGE_BYTES} B fanned out in \
         {elapsed:.1?}; dropped {} (1008: {}); server RSS {rss_before} KiB before, \
         peak {peak} KiB",
        stat(&json, "slow_consumers_total"),
        stat(&json, "1008")
    );
    assert_eq!(
        stat(&json, "slow_consumers_total") as usize,
        stuck,
        "{json}"
    );
    assert_eq!(
        stat(&json, "connections_open") as usize,
        healthy + 1,
        "{json}"
    );
    assert!(
        peak < rss_bound_kib,
        "peak RSS {peak} KiB over {rss_bound_kib}"
    );
    drop(stuck_clients);
}

/// Size of each fanned-out message. Together with the count it must pass what the kernel
/// absorbs for a client that never reads before the server queues anything: on loopback the
/// server socket's send buffer grows to `net.ipv4.tcp_wmem`'s maximum (4 MiB by default,
/// about 3 MB of payload), so each client is sent 6 MiB.
const MESSAGE_BYTES: usize = 4096;

/// Messages per run: 6 MiB per client (see [`MESSAGE_BYTES`]).
const MESSAGES: u32 = 1536;

/// One healthy reader: its socket and the bytes of a frame not yet complete.
struct Reader {
    /// Its non-blocking socket, registered with the readers' poll.
    stream: MioStream,
    /// Bytes read but not yet a whole frame.
    buf: Vec<u8>,
    /// The sequence number expected next.
    next: u32,
}

impl Reader {
    /// Reads until `WouldBlock`, checking every frame; true when the last message arrived.
    fn drain(&mut self, scratch: &mut [u8], messages: u32) -> bool {
        let was_done = self.next == messages;
        loop {
            match self.stream.read(scratch) {
                Ok(0) => panic!("healthy reader cut off after {} messages", self.next),
                Ok(n) => self.buf.extend_from_slice(&scratch[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => panic!("healthy reader: {e}"),
            }
        }
        // Frames are 0x82, a 7-bit length (126 → 16-bit length follows), the payload.
        let mut at = 0;
        while self.buf.len() - at >= 4 {
            let b = &self.buf[at..];
            assert_ne!(b[0], 0x88, "healthy reader got a Close after {}", self.next);
            assert_eq!(b[0], 0x82, "a binary frame");
            let (len, head) = match b[1] {
                126 => (u16::from_be_bytes([b[2], b[3]]) as usize, 4),
                n => (n as usize, 2),
            };
            if b.len() < head + len {
                break;
            }
            let seq = u32::from_be_bytes(b[head..head + 4].try_into().unwrap());
            assert_eq!(seq, self.next, "every message, in order");
            self.next += 1;
            at += head + len;
        }
        self.buf.drain(..at);
        !was_done && self.next == messages
    }
}

/// 100 healthy readers and 10 that never read: the stuck are dropped, nobody else loses a message.
#[test]
fn slow_consumers_are_dropped_and_healthy_readers_lose_nothing() {
    slow_consumers(100, 10, MESSAGES, 16 << 10);
}

/// The full size: 1,000 healthy readers, 100 stuck (`scripts/soak.sh`).
#[test]
#[ignore = "long: run by scripts/soak.sh"]
fn slow_consumers_at_scale() {
    slow_consumers(1_000, 100, MESSAGES, 32 << 10);
}

/// Slowloris at scale: `n` sockets send half a request head (a tenth keep dribbling bytes);
/// a real client chats meanwhile with normal latency; every half-sent request is answered
/// 408 after --handshake-timeout and its socket freed.
fn slowloris(n: usize, timeout: Duration) {
    let _turn = one_at_a_time();
    let n = fit_clients(n, 1);
    let server = spawn_server(&["--handshake-timeout", &format!("{}ms", timeout.as_millis())]);
    let addr = server.addr;
    let started = Instant::now();
    let mut lorises: Vec<TcpStream> = (0..n)
        .map(|_| {
            let mut s = raw(addr);
            s.write_all(b"GET /room HTTP/1.1\r\nHost: x\r\nX-Slow: ")
                .unwrap();
            s
        })
        .collect();
    let connected = started.elapsed();
    // While they hang: a real conversation, each message timed.
    let mut a = server.connect("/room");
    let mut b = server.connect("/room");
    let mut worst = Duration::ZERO;
    for i in 0..100 {
        if i % 10 == 0 {
            // Dribblers: one more byte each, never the end of the head.
            // (A socket already answered may refuse the byte: that is fine.)
            for s in lorises.iter_mut().step_by(10) {
                let _ = s.write_all(b"z");
            }
        }
        let t = Instant::now();
        a.send(Message::text(format!("{i}"))).unwrap();
        assert_eq!(recv(&mut b), Message::text(format!("{i}")));
        worst = worst.max(t.elapsed());
    }
    let json = stats_body(addr);
    if started.elapsed() < timeout {
        assert!(stat(&json, "sockets") as usize >= n, "all held: {json}");
    }
    let mut answered = 0;
    for s in &mut lorises {
        let out = read_to_end(s);
        assert!(
            out.starts_with(b"HTTP/1.1 408 "),
            "{}",
            String::from_utf8_lossy(&out)
        );
        answered += 1;
    }
    let all_answered = started.elapsed();
    drop(lorises);
    drop((a, b));
    let json = wait_until_idle(addr, Duration::from_secs(10));
    println!(
        "slowloris: {n} half-sent heads connected in {connected:.1?}; a real client's worst \
         round trip meanwhile {worst:.1?}; all {answered} answered 408 by {all_answered:.1?} \
         (--handshake-timeout {timeout:?}); server peak RSS {} KiB",
        server.status_kib("VmHWM")
    );
    assert_eq!(stat(&json, "408") as usize, n);
    assert!(worst < Duration::from_secs(1), "worst round trip {worst:?}");
}

/// 2,000 half-sent heads: all answered 408, a real client unaffected.
#[test]
fn slowloris_at_scale_is_answered_408_and_freed() {
    slowloris(2_000, Duration::from_secs(2));
}

/// The full size: 10,000 half-sent heads (`scripts/soak.sh`).
#[test]
#[ignore = "long: run by scripts/soak.sh"]
fn slowloris_10k() {
    slowloris(10_000, Duration::from_secs(5));
}
