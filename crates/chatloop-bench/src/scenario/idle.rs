//! The `idle` scenario: connections are opened and held, answering the server's Pings.
//!
//! With `--pid` the server's resident memory is read before the first connect and after the
//! hold; the difference divided by the connections held is its memory per idle connection.
//! The server must run in its own process for that figure to be its own (`cargo bench` starts
//! it as a child for this reason).

use super::{after_open, open};
use crate::options::Options;
use crate::pool::{Ignore, Pool};
use crate::procfs::{rss_kib, CpuMeter};
use crate::progress::Progress;
use crate::report::Report;
use std::io;
use std::time::{Duration, Instant};

/// `chatloop bench idle`.
pub fn run(opts: &Options, pool: &mut Pool) -> io::Result<Report> {
    let mut progress = Progress::new(opts.progress, opts.pid);
    let before = opts.pid.and_then(rss_kib);
    let secs = open(pool, opts.clients, &mut Ignore, &mut progress)?;
    let mut report = after_open(pool, secs);
    report.server_rss_before_kib = before;
    let mut cpu = CpuMeter::start(opts.pid);
    let end = Instant::now() + opts.duration;
    while Instant::now() < end {
        pool.turn(Duration::from_millis(100), &mut Ignore)?;
        progress.tick(|| {
            format!(
                "holding {} open, {} errors",
                pool.open(),
                pool.error_count()
            )
        });
    }
    report.server_rss_after_kib = opts.pid.and_then(rss_kib);
    report.measured_secs = opts.duration.as_secs_f64();
    report.set_cpu(cpu.lap());
    Ok(report)
}
