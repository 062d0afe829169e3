//! The `fanout` scenario: S senders in one room, every other client receives. The `ramp`
//! scenario ([`ramp`](super::ramp)) repeats it with more clients at each step.
//!
//! **Sending.** With `--rate`, each sender sends on its own schedule (the senders' first
//! messages are spread over one period so they do not all fire at once); the stamp is the time
//! the message is actually queued, and how far a sender fell behind its schedule is reported as
//! the send lag, so a reader can tell whether the open loop held. Without `--rate` the loop is
//! closed: a sender keeps at most `--window` messages that have not yet reached *every* other
//! client. Each sender has a ring of `--window` counters, one per message in flight, bumped by
//! each delivery; when the oldest one reaches the number of receivers, the window slides. This
//! bounds what is in flight towards every receiver (S × W × (C − 1) deliveries at most), so a
//! server that serves some receivers far ahead of others cannot build up a backlog the drain
//! would then have to wait for, and the cost is one increment per delivery. A receiver that
//! disconnects is no longer waited for.
//!
//! A fixed-rate sender that falls behind its schedule is reported, never hidden
//! ([`timetable`](super::timetable)): each message sent more than `--max-lag` late is counted
//! as `late`, and a sender more than a second behind skips the missed messages and counts them
//! as `behind` (both mean the generator, not the server, could not keep up). A sender whose
//! server stopped reading skips messages once 4 MiB wait unsent (`MAX_QUEUED`), and counts
//! them as `unsent`.
//!
//! **Receiving.** Every delivery is checked against what its receiver already got from its
//! sender ([`ledger`](super::ledger)): in order, late (out of order, still a delivery), or a
//! duplicate (counted apart, never as received, so duplicates cannot hide loss). Latency is
//! recorded for first deliveries of messages sent inside the measured window. A message coming
//! back to its own sender (a server that echoes) is counted apart, not as a delivery, so the
//! scenario works against servers that relay to everyone and those that relay to others only.
//! During the window, a client that receives nothing while a message is due to it is counted
//! as a stall.
//!
//! **Counting.** Expected deliveries = messages sent in the window × (connected clients − 1);
//! lost = expected − received. After the window the senders stop and the generator drains: it
//! waits until every delivery of every message sent has arrived, or nothing arrived for a
//! second, or five seconds passed.

use super::ledger::{Arrival, Ledger, StallWatch};
use super::timetable::Timetable;
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

/// Bytes queued on one sender (the server not reading) past which a fixed-rate sender skips
/// messages instead of queueing more: the generator's memory stays bounded.
const MAX_QUEUED: usize = 4 << 20;

/// How long the drain after the window may take at most, and without progress.
const DRAIN_MAX: Duration = Duration::from_secs(5);
/// See [`DRAIN_MAX`].
const DRAIN_STALL: Duration = Duration::from_secs(1);

/// One sender's state.
#[derive(Debug, Clone)]
struct Sender {
    /// Its slab key once connected; `None` if it never connected or ended.
    key: Option<usize>,
    /// The sequence number of its next message.
    next_seq: u32,
    /// Closed loop: the oldest sequence number not yet delivered to every receiver.
    acked: u32,
    /// Fixed rate: when its messages are due; `None` in the closed loop.
    timetable: Option<Timetable>,
}

/// The scenario's state; also the pool's [`Handler`].
pub(super) struct Fanout {
    /// Messages per second per sender: `None` for the closed loop.
    period: Option<Duration>,
    /// Closed loop: see the module docs.
    window: u32,
    /// Fixed rate: a message sent later than this after its due time is counted as late.
    max_lag: Duration,
    /// Binary or text (`--text`).
    kind: MessageKind,
    /// The message template (`--size` bytes; the stamp is rewritten per message).
    template: Vec<u8>,
    /// Every sender, by tag (`0..senders`).
    senders: Vec<Sender>,
    /// What each receiver got from each sender: order, loss, duplicates.
    ledger: Ledger,
    /// Clients that went quiet while owed a message.
    stalls: StallWatch,
    /// Closed loop: deliveries so far of each message in flight, `[sender * window + seq %
    /// window]` (see the module docs).
    ring: Vec<u32>,
    /// Clients that receive each message now (open clients − 1): a ring slot is complete at
    /// this count.
    live: u32,
    /// The measured window, in nanoseconds since `base`.
    window_ns: (u64, u64),
    /// Receivers of each message (connected clients − 1) in this window.
    receivers: u64,
    /// Latency of deliveries of messages sent in the window, in µs.
    hist: Histogram<u64>,
    /// Messages sent in the window.
    sent: u64,
    /// Deliveries of messages sent in the window.
    received: u64,
    /// All messages sent, and all deliveries received (for the drain and the progress line).
    sent_all: u64,
    /// See `sent_all`.
    received_all: u64,
    /// First deliveries with a lower sequence number than one already seen (late).
    out_of_order: u64,
    /// Deliveries of a message the receiver already had.
    duplicates: u64,
    /// Messages delivered back to their sender.
    echoed: u64,
    /// Messages without a valid stamp.
    malformed: u64,
    /// Fixed rate: messages skipped because the server stopped reading (queue full).
    unsent: u64,
    /// Fixed rate: messages skipped because the sender was over a second behind (see
    /// [`timetable`](super::timetable)).
    behind: u64,
    /// Fixed rate: messages sent more than `max_lag` after they were due.
    late: u64,
    /// Fixed rate: worst lag behind schedule, µs.
    max_lag_us: u64,
}

impl Fanout {
    /// The state for `opts`, before any client connected.
    pub(super) fn new(opts: &Options) -> Fanout {
        Fanout {
            period: opts.rate.map(|r| Duration::from_secs_f64(1.0 / r)),
            window: opts.window,
            max_lag: opts.max_lag,
            kind: opts.kind,
            template: opts.kind.template(opts.size),
            senders: vec![
                Sender {
                    key: None,
                    next_seq: 0,
                    acked: 0,
                    timetable: None,
                };
                opts.senders
            ],
            ledger: Ledger::new(opts.clients, opts.senders),
            stalls: StallWatch::new(opts.clients),
            ring: if opts.rate.is_none() {
                vec![0; opts.senders * opts.window as usize]
            } else {
                Vec::new()
            },
            live: 0,
            window_ns: (u64::MAX, u64::MAX),
            receivers: 0,
            hist: new_histogram(),
            sent: 0,
            received: 0,
            sent_all: 0,
            received_all: 0,
            out_of_order: 0,
            duplicates: 0,
            echoed: 0,
            malformed: 0,
            unsent: 0,
            behind: 0,
            late: 0,
            max_lag_us: 0,
        }
    }

    /// Starts a measured window of `warmup` + `duration` from `now`: counters reset, schedules
    /// spread over one period.
    pub(super) fn begin(
        &mut self,
        pool: &Pool,
        now: Instant,
        warmup: Duration,
        duration: Duration,
    ) {
        let from = pool.ns(now + warmup);
        self.window_ns = (from, from + duration.as_nanos() as u64);
        self.receivers = pool.open().saturating_sub(1) as u64;
        self.live = self.receivers as u32;
        // Messages of an earlier window still in flight no longer hold the window.
        for s in &mut self.senders {
            s.acked = s.next_seq;
        }
        self.ring.fill(0);
        self.hist.reset();
        (self.sent, self.received, self.out_of_order, self.echoed) = (0, 0, 0, 0);
        (self.unsent, self.behind, self.late, self.max_lag_us) = (0, 0, 0, 0);
        (self.malformed, self.duplicates) = (0, 0);
        let n = self.senders.len() as u32;
        if let Some(period) = self.period {
            for (i, s) in self.senders.iter_mut().enumerate() {
                s.timetable = Some(Timetable::new(period, now + period * i as u32 / n));
            }
        }
    }

    /// Queues and writes what each sender may send now (see the module docs).
    fn pump(&mut self, pool: &mut Pool, now: Instant) {
        let now_ns = pool.ns(now);
        if now_ns >= self.window_ns.1 {
            return;
        }
        let counted = now_ns >= self.window_ns.0;
        for (tag, s) in self.senders.iter_mut().enumerate() {
            let Some(key) = s.key else { continue };
            let mut queued = 0;
            let mut stamp = Stamp {
                sender: tag as u32,
                seq: s.next_seq,
                sent_ns: now_ns,
            };
            match &mut s.timetable {
                None => {
                    while s.next_seq.wrapping_sub(s.acked) < self.window {
                        stamp.seq = s.next_seq;
                        self.kind.write(&stamp, &mut self.template);
                        pool.send(key, self.kind, &self.template);
                        s.next_seq += 1;
                        queued += 1;
                    }
                }
                Some(timetable) => {
                    let due = timetable.take(now, self.max_lag);
                    if counted {
                        self.behind += due.skipped;
                        self.late += due.late;
                        self.max_lag_us = self.max_lag_us.max(due.lag.as_micros() as u64);
                    }
                    for _ in 0..due.send {
                        if pool.queued(key) > MAX_QUEUED {
                            self.unsent += u64::from(counted);
                            continue;
                        }
                        stamp.seq = s.next_seq;
                        self.kind.write(&stamp, &mut self.template);
                        pool.send(key, self.kind, &self.template);
                        s.next_seq += 1;
                        queued += 1;
                    }
                }
            }
            if queued > 0 {
                pool.flush(key);
                self.sent_all += queued;
                if counted {
                    self.sent += queued;
                }
            }
        }
    }

    /// Counts as skipped (`behind`) every message a fixed-rate sender had due more than
    /// `max_lag` before `end` but had not sent: the generator was that far behind when the
    /// window closed. (One due in the last `max_lag` is the window's edge, not a lag.)
    fn skip_the_rest(&mut self, end: Instant) {
        let Some(edge) = end.checked_sub(self.max_lag) else {
            return;
        };
        for s in self.senders.iter().filter(|s| s.key.is_some()) {
            self.behind += s.timetable.map_or(0, |t| t.missed_before(edge));
        }
    }

    /// How long the loop may wait for events before a sender is due.
    fn timeout(&self, now: Instant) -> Duration {
        let cap = Duration::from_millis(100);
        match self.period {
            None => cap,
            Some(_) => self
                .senders
                .iter()
                .filter(|s| s.key.is_some())
                .filter_map(|s| s.timetable)
                .map(|t| t.next().saturating_duration_since(now))
                .min()
                .unwrap_or(cap)
                .min(cap),
        }
    }

    /// Sends through the warm-up and the window, then drains; prints progress. Returns the CPU
    /// use during the window alone.
    pub(super) fn drive(
        &mut self,
        pool: &mut Pool,
        progress: &mut Progress,
        pid: Option<u32>,
    ) -> io::Result<CpuUse> {
        let start = pool.base + Duration::from_nanos(self.window_ns.0);
        let end = pool.base + Duration::from_nanos(self.window_ns.1);
        let mut cpu = None;
        let mut last = (Instant::now(), 0u64);
        loop {
            let now = Instant::now();
            if cpu.is_none() && now >= start {
                cpu = Some(CpuMeter::start(pid));
                self.stalls.begin(pool.ns(now));
            }
            self.pump(pool, now);
            let now_ns = pool.ns(now);
            if cpu.is_some() && self.stalls.due(now_ns) {
                let sent = self.senders.iter().map(|s| s.next_seq).collect();
                self.stalls.check(now_ns, sent, &self.ledger);
            }
            let mut timeout = self.timeout(now);
            if cpu.is_none() {
                timeout = timeout.min(start - now).max(Duration::from_millis(1));
            }
            pool.turn(timeout, self)?;
            let now = Instant::now();
            if now >= end {
                break;
            }
            progress.tick(|| {
                let secs = now.duration_since(last.0).as_secs_f64();
                let rate = (self.received_all - last.1) as f64 / secs;
                last = (now, self.received_all);
                format!(
                    "{} open, sent {}, {rate:.0} deliveries/s, {} errors",
                    pool.open(),
                    self.sent_all,
                    pool.error_count()
                )
            });
        }
        let usage = cpu.map_or(CpuUse::default(), |mut c| c.lap());
        self.skip_the_rest(end);
        self.stalls.finish(pool.ns(Instant::now()));
        // Drain: every delivery of every message sent, or no progress for a while.
        let (start, mut seen, mut moved) = (Instant::now(), self.received_all, Instant::now());
        while self.received_all < self.sent_all * self.receivers {
            pool.turn(Duration::from_millis(10), self)?;
            let now = Instant::now();
            if self.received_all != seen {
                (seen, moved) = (self.received_all, now);
            }
            if now - start > DRAIN_MAX || now - moved > DRAIN_STALL {
                break;
            }
        }
        Ok(usage)
    }

    /// Fills the fan-out part of `report` from this window.
    pub(super) fn fill(&self, report: &mut Report, secs: f64) {
        report.measured_secs = secs;
        report.sent = self.sent;
        report.expected = self.sent * self.receivers;
        report.received = self.received;
        report.out_of_order = self.out_of_order;
        report.duplicates = self.duplicates;
        (report.stalls, report.longest_stall_us) = self.stalls.totals();
        report.behind = self.behind;
        report.late = self.late;
        report.echoed_to_sender = self.echoed;
        report.malformed = self.malformed;
        report.unsent = self.unsent;
        report.max_send_lag_us = self.max_lag_us;
        report.rate = self.received as f64 / secs;
        report.rate_unit = "deliveries/s";
        report.latency = Some(Latency::of(&self.hist));
    }
}

impl Handler for Fanout {
    fn on_open(&mut self, tag: u32, key: usize, _now: Instant) {
        if let Some(s) = self.senders.get_mut(tag as usize) {
            s.key = Some(key);
        }
        self.stalls.on_open(tag);
    }

    #[inline]
    fn on_data(&mut self, tag: u32, payload: &[u8], now_ns: u64) {
        let Some(stamp) = self
            .kind
            .read(payload)
            .filter(|s| (s.sender as usize) < self.senders.len())
        else {
            self.malformed += 1;
            return;
        };
        if stamp.sender == tag {
            self.echoed += 1;
            return;
        }
        match self.ledger.record(tag, stamp.sender, stamp.seq) {
            Some(Arrival::Duplicate) => {
                self.duplicates += 1;
                return;
            }
            Some(Arrival::Late) => self.out_of_order += 1,
            Some(Arrival::InOrder) | None => {}
        }
        self.stalls.on_delivery(tag, now_ns);
        self.received_all += 1;
        let sender = stamp.sender as usize;
        if stamp.sent_ns >= self.window_ns.0 && stamp.sent_ns < self.window_ns.1 {
            self.received += 1;
            self.hist
                .saturating_record(now_ns.saturating_sub(stamp.sent_ns) / 1000);
        }
        if !self.ring.is_empty() {
            let s = &mut self.senders[sender];
            if stamp.seq >= s.acked && stamp.seq < s.next_seq {
                let w = self.window as usize;
                self.ring[sender * w + stamp.seq as usize % w] += 1;
                if stamp.seq == s.acked {
                    slide(s, &mut self.ring[sender * w..(sender + 1) * w], self.live);
                }
            }
        }
    }

    fn on_end(&mut self, tag: u32, _failure: Option<&Failure>) {
        if let Some(s) = self.senders.get_mut(tag as usize) {
            s.key = None;
        }
        self.stalls.on_end(tag);
        // One receiver fewer to wait for: some windows may be complete now.
        self.live = self.live.saturating_sub(1);
        if !self.ring.is_empty() {
            let w = self.window as usize;
            for (i, s) in self.senders.iter_mut().enumerate() {
                slide(s, &mut self.ring[i * w..(i + 1) * w], self.live);
            }
        }
    }
}

/// Slides `s`'s window past every message at its front that all `live` receivers have got.
#[inline]
fn slide(s: &mut Sender, ring: &mut [u32], live: u32) {
    while s.acked < s.next_seq {
        let slot = &mut ring[s.acked as usize % ring.len()];
        if *slot < live {
            break;
        }
        *slot = 0;
        s.acked += 1;
    }
}

/// `chatloop bench fanout`.
pub fn run(opts: &Options, pool: &mut Pool) -> io::Result<Report> {
    let mut progress = Progress::new(opts.progress, opts.pid);
    let mut f = Fanout::new(opts);
    let secs = open(pool, opts.clients, &mut f, &mut progress)?;
    let mut report = after_open(pool, secs);
    f.begin(pool, Instant::now(), opts.warmup, opts.duration);
    let usage = f.drive(pool, &mut progress, opts.pid)?;
    f.fill(&mut report, opts.duration.as_secs_f64());
    report.set_cpu(usage);
    Ok(report)
}
