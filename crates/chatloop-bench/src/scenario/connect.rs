//! The `connect` scenario: handshake churn.
//!
//! `--concurrency` handshakes are in flight at all times; each connection that opens is closed
//! at once with the full closing handshake (the server closes TCP first, so the generator's
//! ports are not left in TIME_WAIT). The rate is handshakes completed per second of the
//! measured window; the handshake times are those of the window alone.

use crate::client::Failure;
use crate::options::Options;
use crate::pool::{Handler, Pool};
use crate::procfs::CpuMeter;
use crate::progress::Progress;
use crate::report::{Latency, Report};
use std::io;
use std::time::{Duration, Instant};

/// The connect scenario's handler: close every connection as soon as it opens.
#[derive(Default)]
struct Churn {
    /// Connections that opened this turn: closed after it.
    to_close: Vec<usize>,
    /// Closing handshakes completed.
    closed: u64,
}

impl Handler for Churn {
    fn on_open(&mut self, _tag: u32, key: usize, _now: Instant) {
        self.to_close.push(key);
    }
    fn on_data(&mut self, _: u32, _: &[u8], _: u64) {}
    fn on_end(&mut self, _tag: u32, failure: Option<&Failure>) {
        if failure.is_none() {
            self.closed += 1;
        }
    }
}

/// `chatloop bench connect`.
pub fn run(opts: &Options, pool: &mut Pool) -> io::Result<Report> {
    let mut progress = Progress::new(opts.progress, opts.pid);
    let mut churn = Churn::default();
    let now = Instant::now();
    let (start, end) = (now + opts.warmup, now + opts.warmup + opts.duration);
    let mut window: Option<(CpuMeter, u64, u64)> = None;
    while Instant::now() < end {
        let now = Instant::now();
        if window.is_none() && now >= start {
            pool.handshake_us.reset();
            window = Some((CpuMeter::start(opts.pid), pool.opened, churn.closed));
        }
        // Keep `--concurrency` handshakes in flight.
        if pool.pending() < opts.concurrency {
            pool.request(opts.concurrency - pool.pending());
        }
        pool.turn(Duration::from_millis(10), &mut churn)?;
        for key in churn.to_close.drain(..) {
            pool.close(key);
        }
        progress.tick(|| {
            format!(
                "{} handshakes, {} closed, {} errors",
                pool.opened,
                churn.closed,
                pool.error_count()
            )
        });
    }
    let mut report = Report::default();
    if let Some((mut cpu, opened, _closed)) = window {
        report.set_cpu(cpu.lap());
        report.connected = pool.opened - opened;
    }
    report.measured_secs = opts.duration.as_secs_f64();
    report.connect_secs = report.measured_secs;
    report.handshake = Latency::of(&pool.handshake_us);
    report.rate = report.connected as f64 / report.measured_secs;
    report.rate_unit = "handshakes/s";
    Ok(report)
}
