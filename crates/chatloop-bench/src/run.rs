//! [`run`]: one scenario from start to end, as `chatloop bench` and library callers start it.
//!
//! ```text
//!   Options ─▶ checks, Target, file limit, source addresses ─▶ Pool
//!           ─▶ the scenario (scenario/*.rs) drives the pool and fills a Report
//!           ─▶ every connection closed (closing handshake, 2 s at most) ─▶ Report
//! ```
//!
//! An `Err` means the run could not happen at all (a bad URL, no poller). Everything that goes
//! wrong *during* a run, such as refused connections or a server that closes on us, is counted
//! in the report instead ([`Report::faults`] lists it).

use crate::options::{Options, Scenario};
use crate::pool::Pool;
use crate::report::Report;
use crate::scenario;
use crate::target::Target;
use std::io;
use std::time::{Duration, Instant};

/// Runs one scenario and returns what it measured.
pub fn run(opts: &Options) -> io::Result<Report> {
    let invalid = |m: String| io::Error::new(io::ErrorKind::InvalidInput, m);
    opts.validate().map_err(invalid)?;
    let mut target = Target::parse(&opts.url).map_err(invalid)?;
    if target.secure {
        target.tls = Some(crate::tls::client_config(opts.ca.as_deref()).map_err(invalid)?);
    }
    let fds = raise_fd_limit();
    let needed = opts.clients.min(if opts.scenario == Scenario::Connect {
        2 * opts.concurrency
    } else {
        usize::MAX
    }) + 32;
    if fds.is_some_and(|limit| (limit as usize) < needed) && opts.progress {
        eprintln!(
            "warning: {needed} file descriptors needed, the limit is {}; raise it with 'ulimit -n'",
            fds.unwrap_or(0)
        );
    }
    let sources = target.sources(opts.clients, opts.sources)?;
    let mut pool = Pool::new(target, sources, opts.concurrency, Instant::now())?;
    let mut report = match opts.scenario {
        Scenario::Fanout => scenario::fanout::run(opts, &mut pool)?,
        Scenario::Ramp => scenario::ramp::run(opts, &mut pool)?,
        Scenario::Echo => scenario::echo::run(opts, &mut pool)?,
        Scenario::Idle => scenario::idle::run(opts, &mut pool)?,
        Scenario::Connect => scenario::connect::run(opts, &mut pool)?,
    };
    pool.close_all(Duration::from_secs(2))?;
    report.scenario = opts.scenario.name().to_owned();
    report.failures = pool.failures.clone();
    Ok(report)
}

/// Raises this process's soft open-file limit to the hard limit (one descriptor per
/// connection); returns the limit now in force, `None` if it cannot be read.
pub fn raise_fd_limit() -> Option<u64> {
    rlimit::increase_nofile_limit(u64::MAX).ok()
}
