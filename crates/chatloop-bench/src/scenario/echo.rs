//! The `echo` scenario: every client keeps exactly one message in flight against an echo
//! server.
//!
//! The round-trip time is measured from the stamp, and the next message leaves in the same
//! turn the answer arrived, so round trips/s is `clients / RTT`. An answer that is not the
//! client's own last message (another client's, or out of sequence) is counted as malformed.

use super::{after_open, open};
use crate::client::Failure;
use crate::options::Options;
use crate::pool::{new_histogram, Handler, Pool};
use crate::procfs::{CpuMeter, CpuUse};
use crate::progress::Progress;
use crate::report::{Latency, Report};
use crate::stamp::{MessageKind, Stamp};
use hdrhistogram::Histogram;
use std::io;
use std::time::{Duration, Instant};

/// The echo scenario's state; also the pool's [`Handler`].
struct Echo {
    /// Slab key by tag, once connected.
    keys: Vec<Option<usize>>,
    /// Next sequence number by tag.
    seq: Vec<u32>,
    /// Tags whose answer arrived this turn: they send again after it.
    due: Vec<u32>,
    /// Binary or text (`--text`).
    kind: MessageKind,
    /// The message template.
    template: Vec<u8>,
    /// The measured window, in ns since `base`.
    window_ns: (u64, u64),
    /// Round-trip times of messages sent in the window, µs.
    hist: Histogram<u64>,
    /// Messages sent in the window.
    sent: u64,
    /// Answers to messages sent in the window.
    received: u64,
    /// Answers that were not the sender's own message, or out of sequence.
    malformed: u64,
}

impl Handler for Echo {
    fn on_open(&mut self, tag: u32, key: usize, _now: Instant) {
        if let Some(k) = self.keys.get_mut(tag as usize) {
            *k = Some(key);
        }
    }

    fn on_data(&mut self, tag: u32, payload: &[u8], now_ns: u64) {
        match self.kind.read(payload) {
            Some(s) if s.sender == tag && self.seq.get(tag as usize) == Some(&(s.seq + 1)) => {
                if s.sent_ns >= self.window_ns.0 && s.sent_ns < self.window_ns.1 {
                    self.received += 1;
                    self.hist
                        .saturating_record(now_ns.saturating_sub(s.sent_ns) / 1000);
                }
                self.due.push(tag);
            }
            _ => self.malformed += 1,
        }
    }

    fn on_end(&mut self, tag: u32, _failure: Option<&Failure>) {
        if let Some(k) = self.keys.get_mut(tag as usize) {
            *k = None;
        }
    }
}

impl Echo {
    /// Sends the next message of every client in `due`.
    fn pump(&mut self, pool: &mut Pool, now: Instant) {
        let now_ns = pool.ns(now);
        if now_ns >= self.window_ns.1 {
            self.due.clear();
            return;
        }
        for tag in self.due.drain(..) {
            let Some(key) = self.keys[tag as usize] else {
                continue;
            };
            let seq = &mut self.seq[tag as usize];
            let stamp = Stamp {
                sender: tag,
                seq: *seq,
                sent_ns: now_ns,
            };
            self.kind.write(&stamp, &mut self.template);
            *seq += 1;
            pool.send(key, self.kind, &self.template);
            pool.flush(key);
            if now_ns >= self.window_ns.0 {
                self.sent += 1;
            }
        }
    }
}

/// `chatloop bench echo`.
pub fn run(opts: &Options, pool: &mut Pool) -> io::Result<Report> {
    let mut progress = Progress::new(opts.progress, opts.pid);
    let mut e = Echo {
        keys: vec![None; opts.clients],
        seq: vec![0; opts.clients],
        due: Vec::new(),
        kind: opts.kind,
        template: opts.kind.template(opts.size),
        window_ns: (u64::MAX, u64::MAX),
        hist: new_histogram(),
        sent: 0,
        received: 0,
        malformed: 0,
    };
    let secs = open(pool, opts.clients, &mut e, &mut progress)?;
    let mut report = after_open(pool, secs);
    let now = Instant::now();
    let (start, end) = (now + opts.warmup, now + opts.warmup + opts.duration);
    e.window_ns = (pool.ns(start), pool.ns(end));
    e.due = (0..opts.clients as u32).collect();
    let mut cpu = None;
    while Instant::now() < end {
        let now = Instant::now();
        if cpu.is_none() && now >= start {
            cpu = Some(CpuMeter::start(opts.pid));
        }
        e.pump(pool, now);
        pool.turn(Duration::from_millis(10), &mut e)?;
        progress.tick(|| {
            format!(
                "{} open, {} round trips, {} errors",
                pool.open(),
                e.received,
                pool.error_count()
            )
        });
    }
    report.set_cpu(cpu.map_or(CpuUse::default(), |mut c| c.lap()));
    // Drain the answers still in flight (one per client at most).
    let drain_end = Instant::now() + Duration::from_secs(2);
    while e.received < e.sent && Instant::now() < drain_end {
        pool.turn(Duration::from_millis(10), &mut e)?;
    }
    report.measured_secs = opts.duration.as_secs_f64();
    report.sent = e.sent;
    report.expected = e.sent;
    report.received = e.received;
    report.malformed = e.malformed;
    report.rate = e.received as f64 / report.measured_secs;
    report.rate_unit = "round trips/s";
    report.latency = Some(Latency::of(&e.hist));
    Ok(report)
}
