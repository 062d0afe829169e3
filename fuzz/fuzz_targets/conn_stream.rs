//! Fuzzes one connection after its upgrade: arbitrary bytes from the peer, cut into arbitrary
//! reads, driven through `Conn` exactly as the server loop drives it (read until `Idle` or
//! `Yield`, doing each action; flush; tick), with time passed in and the unit tests' in-memory
//! socket (`chatloop::testing`).
//!
//! Input layout: `[flags, seed, rest…]`.
//! - `flags` bit 0: small limits (256-byte messages, 1 KiB queue) instead of the defaults;
//!   bit 1: the peer never reads (the socket takes 4 KiB, then `WouldBlock` forever);
//!   bit 2: `--max-messages-per-sec 5`; bit 3: echo every message back (as `--echo` does,
//!   through `Conn::send`, where a full outbox drops the connection);
//!   bit 4: the peer sends FIN after the last byte; bit 5: reads behave like TCP's (a read
//!   takes all that is queued, and a short read ends the connection's reading until the next
//!   event, as on a real socket; the FIN's event makes it read on to end-of-stream).
//! - `seed` drives the read sizes (1..=64 bytes with bit 7 clear, up to 4 KiB with it set) and
//!   how much time passes between turns of the loop (0 to 3 ticks of 250 ms).
//! - `rest` is what the peer sends after the upgrade request.
//!
//! Checked after every step: no panic, and the bytes queued for the peer never pass
//! `--max-queue-bytes` by more than one control frame (invariant 6: every queue is bounded).

#![no_main]

use chatloop::config::Config;
use chatloop::conn::{Action, Conn, Scratch};
use chatloop::hub::ConnId;
use chatloop::outbox::Meter;
use chatloop::testing::{upgrade_request, MockSocket};
use libfuzzer_sys::fuzz_target;
use std::time::{Duration, Instant};

/// What one step may add past the cap: a Close frame (2 + 125 bytes) queued after a slow
/// consumer's backlog was discarded, rounded up to the connection's control-frame limit.
const SLACK: usize = 256;

/// Room the never-reading peer's kernel buffer has before writes block.
const STUCK_PEER_BUFFER: usize = 4096;

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

    let mut mock = if flags & 2 != 0 {
        MockSocket::stuck(STUCK_PEER_BUFFER)
    } else {
        MockSocket::default()
    };
    mock.tcp = flags & 32 != 0;
    let now = Instant::now();
    let conn = Conn::new(ConnId(0), mock, now, &cfg, Meter::default());

    // The upgrade itself, then the peer's bytes in reads of seed-driven sizes.
    let mut reads: Vec<Vec<u8>> = vec![upgrade_request("/fuzz")];
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
    let mut rig = Rig {
        conn,
        cfg,
        echo,
        now,
        scratch: Scratch::new(4096),
    };
    for (i, chunk) in reads.into_iter().enumerate() {
        rig.conn.socket_mut().input.push_back(chunk);
        rig.conn.socket_mut().eof = i == last && flags & 16 != 0;
        // Like the server, keep reading in later turns while input is left over (a turn reads
        // at most a quarter of the queue cap); time moves on by 0 to 3 ticks each turn.
        loop {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            rig.turn(tick * (state % 4));
            if rig.conn.is_closed() {
                return;
            }
            if rig.conn.socket_mut().input.is_empty() {
                break;
            }
        }
    }
    // Let every timer run out: the connection must end, whatever state the bytes left it in.
    let idle_and_close = rig.cfg.idle_timeout + rig.cfg.close_timeout;
    for _ in 0..2 * (idle_and_close.as_millis() / tick.as_millis()) {
        rig.turn(tick);
        if rig.conn.is_closed() {
            return;
        }
    }
    panic!("still not closed after idle and close timeouts: a silent peer kept forever");
});

/// One connection and what the server would hold for it.
struct Rig {
    /// The connection under test.
    conn: Conn<MockSocket>,
    /// The limits it runs with.
    cfg: Config,
    /// Send every message back (`--echo`).
    echo: bool,
    /// The time handed in; only `turn` moves it.
    now: Instant,
    /// The read buffer the server shares between connections.
    scratch: Scratch,
}

impl Rig {
    /// One turn of the server loop for this connection: read until `Idle` or `Yield` (within
    /// the turn's budget), doing each action; flush, let `advance` pass, check deadlines,
    /// flush. The queue is checked after every step.
    fn turn(&mut self, advance: Duration) {
        let cap = self.cfg.max_queue_bytes;
        let conn = &mut self.conn;
        // As the server does: one turn's reads share a quarter of the queue cap.
        self.scratch.start_turn(cap / 4);
        // A FIN comes with an event that says so (EPOLLRDHUP): the server passes it on.
        let peer_closed = conn.socket_mut().eof;
        self.scratch.start_conn(peer_closed);
        loop {
            match conn.on_readable(&mut self.scratch, self.now, &self.cfg) {
                Action::Upgrade { .. } => conn.accept_upgrade(self.now, &self.cfg),
                Action::Report { report, head_only } => {
                    conn.answer_report(report, "{}", head_only, self.now)
                }
                Action::Message(msg) => {
                    let frame = chatloop::wire::encode(&msg);
                    assert!(
                        frame.len() <= self.cfg.max_message_bytes + 10,
                        "relayed frame within the message cap"
                    );
                    if self.echo {
                        conn.send(frame, self.now);
                    }
                }
                Action::Idle | Action::Yield => break,
            }
            assert!(
                conn.queued() <= cap + SLACK,
                "after an action: {}",
                conn.queued()
            );
        }
        assert!(
            conn.queued() <= cap + SLACK,
            "after read: {}",
            conn.queued()
        );
        conn.flush(self.now);
        // The peer has read what was written: forget it, so the mock does not grow.
        conn.socket_mut().out.clear();
        self.now += advance;
        conn.on_tick(self.now, &self.cfg);
        conn.flush(self.now);
        conn.socket_mut().out.clear();
        assert!(
            conn.queued() <= cap + SLACK,
            "after tick: {}",
            conn.queued()
        );
    }
}
