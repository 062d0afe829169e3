//! The `ramp` scenario: fan-out at a fixed rate, `--step` more clients at a time, until a step
//! fails.
//!
//! Each step connects its new clients, then runs one fan-out window (warm-up, `--duration`,
//! drain) with the [`fanout`](super::fanout) scenario's machinery, every connected client
//! receiving and `--senders` of them sending at `--rate`. A step passes when its p95 latency
//! is at most `--limit`, nothing was lost, something was received, and no connection has
//! failed so far. The report lists every step and the largest passing one: the most clients
//! the server carries at that rate within that latency.

use super::fanout::Fanout;
use super::open;
use crate::options::Options;
use crate::pool::Pool;
use crate::progress::Progress;
use crate::render::us;
use crate::report::{Latency, RampStep, Report};
use std::io;
use std::time::Instant;

/// `chatloop bench ramp`: steps of `--step` more clients, a fixed-rate sample at each.
pub fn run(opts: &Options, pool: &mut Pool) -> io::Result<Report> {
    let mut progress = Progress::new(opts.progress, opts.pid);
    let mut f = Fanout::new(opts);
    let mut report = Report::default();
    let mut total = 0;
    while total < opts.clients {
        let add = opts.step.min(opts.clients - total);
        total += add;
        report.connect_secs += open(pool, add, &mut f, &mut progress)?;
        let now = Instant::now();
        f.begin(pool, now, opts.warmup, opts.duration);
        let usage = f.drive(pool, &mut progress, opts.pid)?;
        report.set_cpu(usage);
        let mut step = Report::default();
        f.fill(&mut step, opts.duration.as_secs_f64());
        let latency = step.latency.unwrap_or_default();
        let passed = step.lost() == 0
            && step.received > 0
            && latency.p95 <= opts.limit.as_micros() as u64
            && pool.error_count() == 0;
        if opts.progress {
            eprintln!(
                "step {} clients: {:.0} deliveries/s, lost {}, p95 {}: {}",
                pool.open(),
                step.rate,
                step.lost(),
                us(latency.p95),
                if passed { "pass" } else { "fail" }
            );
        }
        report.steps.push(RampStep {
            clients: pool.open(),
            deliveries_per_sec: step.rate,
            lost: step.lost(),
            latency,
            passed,
        });
        if !passed {
            break;
        }
    }
    report.connected = pool.opened;
    report.handshake = Latency::of(&pool.handshake_us);
    Ok(report)
}
