//! Fuzzes one connection after its upgrade: arbitrary bytes from the peer, cut into arbitrary
//! reads, driven through `Conn` exactly as the server loop drives it (read, relay, flush,
//! tick), with time passed in and an in-memory socket.
//!
//! Input layout: `[flags, seed, rest…]`.
//! - `flags` bit 0: small limits (256-byte messages, 1 KiB queue) instead of the defaults;
//!   bit 1: the peer never reads (the socket takes 4 KiB, then `WouldBlock` forever);
//!   bit 2: `--max-messages-per-sec 5`; bit 3: echo every message back (as `--echo` does,
//!   through `Conn::send`, so a full outbox drops the connection like the server does);
//!   bit 4: the peer sends FIN after the last byte.
//! - `seed` drives the read sizes (1..=64 bytes with bit 7 clear, up to 4 KiB with it set) and
//!   how much time passes between reads (0 to 3 ticks of 250 ms).
//! - `rest` is what the peer sends after the upgrade request.
//!
//! Checked after every step: no panic, and the bytes queued for the peer never pass
//! `--max-queue-bytes` by more than one control frame (invariant 6: every queue is bounded).

#![no_main]

use bytes::Bytes;
use chatloop::config::Config;
use chatloop::conn::{Conn, Socket};
use chatloop::outbox::Meter;
use libfuzzer_sys::fuzz_target;
use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

/// What one step may add past the cap: a Close frame (2 + 125 bytes) queued after a slow
/// consumer's backlog was discarded, rounded up to the connection's control-frame limit.
const SLACK: usize = 256;

/// Room the never-reading peer's kernel buffer has before writes block.
const STUCK_PEER_BUFFER: usize = 4096;

const UPGRADE: &[u8] = b"GET /fuzz HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\
    Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\
    Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";

/// An in-memory socket: reads pop queued chunks, then `WouldBlock` (or EOF); writes are taken
/// whole, or, for a peer that never reads, until its buffer is full.
struct Mock {
    input: VecDeque<Vec<u8>>,
    eof: bool,
    written: usize,
    write_room: Option<usize>,
}

impl Read for Mock {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.input.pop_front() {
            Some(chunk) => {
                let n = chunk.len().min(buf.len());
                buf[..n].copy_from_slice(&chunk[..n]);
                if n < chunk.len() {
                    self.input.push_front(chunk[n..].to_vec());
                }
                Ok(n)
            }
            None if self.eof => Ok(0),
            None => Err(io::ErrorKind::WouldBlock.into()),
        }
    }
}

impl Write for Mock {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = match self.write_room {
            Some(room) => buf.len().min(room.saturating_sub(self.written)),
            None => buf.len(),
        };
        if n == 0 && !buf.is_empty() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        self.written += n;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Socket for Mock {
    fn shutdown_write(&self) -> io::Result<()> {
        Ok(())
    }
}

fuzz_target!(|data: &[u8]| {
    let [flags, seed, rest @ ..] = data else {
        return;
    };
    let mut cfg = Config::default();
    if flags & 1 != 0 {
        cfg.max_message_bytes = 256;
        cfg.max_queue_bytes = 1024;
        cfg.high_water_bytes = 4096;
    }
    if flags & 4 != 0 {
        cfg.max_messages_per_sec = 5;
    }
    cfg.validate().expect("fuzz config is valid");
    let echo = flags & 8 != 0;
    let tick = Duration::from_millis(250);

    let mock = Mock {
        input: VecDeque::new(),
        eof: false,
        written: 0,
        write_room: (flags & 2 != 0).then_some(STUCK_PEER_BUFFER),
    };
    let mut now = Instant::now();
    let mut conn = Conn::new(0, mock, [127, 0, 0, 1].into(), now, &cfg, Meter::default());
    let mut scratch = vec![0u8; 4096];
    let mut relay: Vec<Bytes> = Vec::new();

    // The upgrade itself, then the peer's bytes in reads of seed-driven sizes.
    let mut reads: Vec<Vec<u8>> = vec![UPGRADE.to_vec()];
    let mut state = u32::from(*seed) | 1;
    let mut at = 0;
    while at < rest.len() {
        // xorshift32: cheap, deterministic read sizes from one byte of input.
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        let max = if seed & 0x80 != 0 { 4096 } else { 64 };
        let len = (state as usize % max + 1).min(rest.len() - at);
        reads.push(rest[at..at + len].to_vec());
        at += len;
    }
    let last = reads.len() - 1;
    for (i, chunk) in reads.into_iter().enumerate() {
        conn.socket_mut().input.push_back(chunk);
        conn.socket_mut().eof = i == last && flags & 16 != 0;
        // As the server does: one turn's reads share a quarter of the queue cap.
        let mut budget = cfg.max_queue_bytes / 4;
        conn.readable = true;
        let _ = conn.on_readable(&mut scratch, &mut budget, now, &cfg, Ok(()), &mut relay);
        assert!(
            conn.queued() <= cfg.max_queue_bytes + SLACK,
            "after read: {}",
            conn.queued()
        );
        for frame in relay.drain(..) {
            assert!(
                frame.len() <= cfg.max_message_bytes + 10,
                "relayed frame within the cap"
            );
            if echo && conn.send(frame, now).is_err() {
                conn.drop_slow_consumer(now);
            }
        }
        assert!(
            conn.queued() <= cfg.max_queue_bytes + SLACK,
            "after relay: {}",
            conn.queued()
        );
        conn.flush(now);
        now += tick * u32::from((state >> 8) as u8 % 4);
        conn.on_tick(now, &cfg);
        conn.flush(now);
        assert!(
            conn.queued() <= cfg.max_queue_bytes + SLACK,
            "after tick: {}",
            conn.queued()
        );
        if conn.is_closed() {
            return;
        }
    }
    // Let every timer run out: the connection must end, whatever state the bytes left it in.
    for _ in 0..(cfg.idle_timeout.as_millis() / tick.as_millis() + 8) * 2 {
        now += tick;
        conn.on_tick(now, &cfg);
        conn.flush(now);
        if conn.is_closed() {
            return;
        }
    }
    panic!("still not closed after idle and close timeouts: a silent peer kept forever");
});
