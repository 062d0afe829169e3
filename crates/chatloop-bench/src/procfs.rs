//! The readings from `/proc` that tell who was the bottleneck: CPU time of the generator's own
//! thread and of the server (`--pid`), the time each waited for a core, and the server's
//! resident memory.
//!
//! A run where the generator's CPU is near 100% while the server's is lower measured the
//! generator, not the server. Linux only: where a file cannot be read, the reading is zero
//! (the generator's own) or absent (the server's).

use std::time::Instant;

/// CPU use over a lap, in % of one core (from `/proc`).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CpuUse {
    /// The generator's thread: time running.
    pub generator: f64,
    /// The generator's thread: time runnable but waiting for a core (other processes).
    pub generator_wait: f64,
    /// The server (`--pid`): time running.
    pub server: Option<f64>,
    /// The server (`--pid`): time runnable but waiting for a core.
    pub server_wait: Option<f64>,
}

/// CPU time of the generator's thread and (optionally) the server, read from `/proc`: running
/// time from `stat`, and from `schedstat` the time spent waiting for a core. On a shared
/// machine the wait is what other processes took: a server that is at 80% and waited 20% was
/// not idle, it was crowded out.
pub struct CpuMeter {
    /// The server's pid, if given.
    server: Option<u32>,
    /// When the last reading was taken.
    at: Instant,
    /// The generator thread's (CPU ticks, ns waiting) then.
    own: (u64, u64),
    /// The server's (CPU ticks, ns waiting) then.
    theirs: Option<(u64, u64)>,
}

/// Clock ticks per second of `/proc/*/stat` (`USER_HZ`): 100 on every Linux architecture in
/// practice; reading `sysconf(_SC_CLK_TCK)` would need `libc` and `unsafe`.
const TICKS_PER_SEC: f64 = 100.0;

impl CpuMeter {
    /// Starts measuring now.
    pub fn start(server: Option<u32>) -> CpuMeter {
        CpuMeter {
            server,
            at: Instant::now(),
            own: readings("/proc/thread-self").unwrap_or((0, 0)),
            theirs: server.and_then(|pid| readings(&format!("/proc/{pid}"))),
        }
    }

    /// CPU use since the last reading; restarts the measurement.
    pub fn lap(&mut self) -> CpuUse {
        let next = CpuMeter::start(self.server);
        let secs = next.at.duration_since(self.at).as_secs_f64().max(1e-3);
        let run = |a: u64, b: u64| 100.0 * b.saturating_sub(a) as f64 / TICKS_PER_SEC / secs;
        let wait = |a: u64, b: u64| 100.0 * b.saturating_sub(a) as f64 / 1e9 / secs;
        let (theirs_then, theirs_now) = (self.theirs, next.theirs);
        let pair = theirs_then.zip(theirs_now);
        let usage = CpuUse {
            generator: run(self.own.0, next.own.0),
            generator_wait: wait(self.own.1, next.own.1),
            server: pair.map(|(a, b)| run(a.0, b.0)),
            server_wait: pair.map(|(a, b)| wait(a.1, b.1)),
        };
        *self = next;
        usage
    }
}

/// (CPU ticks, nanoseconds waiting on a run queue) of a `/proc/PID` or `/proc/thread-self`
/// directory. For a process, these are its main thread's: the server is single-threaded.
fn readings(dir: &str) -> Option<(u64, u64)> {
    let ticks = cpu_ticks(&format!("{dir}/stat"))?;
    // schedstat: time on CPU (ns), time waiting on a run queue (ns), time slices.
    let sched = std::fs::read_to_string(format!("{dir}/schedstat")).unwrap_or_default();
    let waited = sched
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    Some((ticks, waited))
}

/// utime + stime (fields 14 and 15) of a `/proc/…/stat` file. The command name (field 2) may
/// hold spaces and parentheses, so fields are counted from the last `)`.
fn cpu_ticks(path: &str) -> Option<u64> {
    let stat = std::fs::read_to_string(path).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11); // field 3 is the first after ')'
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// Resident memory of process `pid` in KiB (`VmRSS` of `/proc/PID/status`).
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Our own CPU time and memory can be read from /proc.
    #[test]
    fn proc_readings_work_for_this_process() {
        assert!(cpu_ticks("/proc/thread-self/stat").is_some());
        assert!(readings("/proc/thread-self").is_some());
        assert!(rss_kib(std::process::id()).is_some_and(|kib| kib > 0));
    }
}
