//! What a run measured, and how it is shown: a table for people, one JSON line for scripts.
//!
//! Also the two readings from `/proc` that tell who was the bottleneck: CPU time (of the
//! generator's own thread, and of the server process with `--pid`) and the server's resident
//! memory. A run where the generator's CPU is near 100% while the server's is lower measured the
//! generator, not the server.

use super::pool::FailureCount;
use hdrhistogram::Histogram;
use std::fmt::Write as _;
use std::time::Instant;

/// Latency percentiles, in microseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Latency {
    /// Samples.
    pub count: u64,
    /// Median.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 95th percentile (the `ramp` scenario's criterion).
    pub p95: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p999: u64,
    /// Largest sample.
    pub max: u64,
}

impl Latency {
    /// The percentiles of `h`.
    pub fn of(h: &Histogram<u64>) -> Latency {
        Latency {
            count: h.len(),
            p50: h.value_at_quantile(0.50),
            p90: h.value_at_quantile(0.90),
            p95: h.value_at_quantile(0.95),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            max: h.max(),
        }
    }

    /// `p50 … max` for the table.
    fn row(&self) -> String {
        format!(
            "p50 {}  p90 {}  p99 {}  p99.9 {}  max {}",
            us(self.p50),
            us(self.p90),
            us(self.p99),
            us(self.p999),
            us(self.max)
        )
    }

    /// The JSON object.
    fn json(&self) -> String {
        format!(
            "{{\"count\":{},\"p50_us\":{},\"p90_us\":{},\"p95_us\":{},\"p99_us\":{},\"p999_us\":{},\"max_us\":{}}}",
            self.count, self.p50, self.p90, self.p95, self.p99, self.p999, self.max
        )
    }
}

/// One step of the `ramp` scenario.
#[derive(Debug, Clone, PartialEq)]
pub struct RampStep {
    /// Clients connected during this step.
    pub clients: usize,
    /// Deliveries per second during the sample.
    pub deliveries_per_sec: f64,
    /// Deliveries lost during the sample.
    pub lost: u64,
    /// Latency of the sample.
    pub latency: Latency,
    /// p95 under the limit, nothing lost, no failure.
    pub passed: bool,
}

/// Everything a run measured. Fields a scenario does not measure stay zero or `None`.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// `fanout`, `echo`, `idle`, `connect` or `ramp`.
    pub scenario: String,
    /// Handshakes completed.
    pub connected: u64,
    /// Seconds from the first connect to the last `101` of the initial connections.
    pub connect_secs: f64,
    /// Handshake times (TCP connect to `101`).
    pub handshake: Latency,
    /// Seconds of the measured window (after warm-up).
    pub measured_secs: f64,
    /// Messages sent during the measured window.
    pub sent: u64,
    /// Deliveries those messages should have made (fanout: one per other client; echo: one).
    pub expected: u64,
    /// Deliveries of those messages that arrived.
    pub received: u64,
    /// Messages received with a sequence number lower than one already seen from the same
    /// sender (reordered or duplicated).
    pub out_of_order: u64,
    /// Messages received without a valid stamp (too short, or an unknown sender).
    pub malformed: u64,
    /// Messages a sender received back (a server that echoes to the sender); not deliveries.
    pub echoed_to_sender: u64,
    /// Messages the generator could not send because the connection's queue was full (the
    /// server stopped reading): fixed-rate fanout only.
    pub unsent: u64,
    /// How far behind its schedule a fixed-rate sender fell at worst, in microseconds.
    pub max_send_lag_us: u64,
    /// The scenario's rate: deliveries/s (fanout), round trips/s (echo), handshakes/s (connect).
    pub rate: f64,
    /// What `rate` counts, for the table.
    pub rate_unit: &'static str,
    /// Message latency (fanout) or round-trip time (echo).
    pub latency: Option<Latency>,
    /// Connection failures by kind.
    pub failures: Vec<FailureCount>,
    /// The generator thread's CPU use during the measured window, in % of one core.
    pub generator_cpu: f64,
    /// The server's CPU use during the measured window (with `--pid`), in % of one core.
    pub server_cpu: Option<f64>,
    /// Time the generator thread was ready to run but waited for a core (other processes), in
    /// % of the window.
    pub generator_wait: f64,
    /// The same for the server (with `--pid`).
    pub server_wait: Option<f64>,
    /// The server's resident memory before connecting, in KiB (with `--pid`).
    pub server_rss_before_kib: Option<u64>,
    /// The server's resident memory with every connection open, in KiB (with `--pid`).
    pub server_rss_after_kib: Option<u64>,
    /// Steps of a `ramp` run.
    pub steps: Vec<RampStep>,
}

impl Report {
    /// Records the CPU use measured over the window.
    pub fn set_cpu(&mut self, cpu: CpuUse) {
        self.generator_cpu = cpu.generator;
        self.generator_wait = cpu.generator_wait;
        self.server_cpu = cpu.server;
        self.server_wait = cpu.server_wait;
    }

    /// Failures of all kinds.
    pub fn errors(&self) -> u64 {
        self.failures.iter().map(|f| f.count).sum()
    }

    /// Deliveries expected but not received.
    pub fn lost(&self) -> u64 {
        self.expected.saturating_sub(self.received)
    }

    /// Server memory per connection in KiB (`idle` with `--pid`).
    pub fn kib_per_connection(&self) -> Option<f64> {
        let (before, after) = (self.server_rss_before_kib?, self.server_rss_after_kib?);
        (self.connected > 0).then(|| (after as f64 - before as f64) / self.connected as f64)
    }

    /// The largest passing ramp step, in clients.
    pub fn best_step(&self) -> Option<usize> {
        self.steps
            .iter()
            .filter(|s| s.passed)
            .map(|s| s.clients)
            .max()
    }

    /// The readable table.
    pub fn table(&self) -> String {
        let mut t = String::new();
        let mut row = |k: &str, v: String| {
            let _ = writeln!(t, "  {k:<22} {v}");
        };
        row("scenario", self.scenario.clone());
        row(
            "connected",
            format!("{} in {:.2} s", self.connected, self.connect_secs),
        );
        row("handshake", self.handshake.row());
        if self.measured_secs > 0.0 {
            row("measured", format!("{:.2} s", self.measured_secs));
        }
        if self.expected > 0 || self.sent > 0 {
            row("sent", self.sent.to_string());
            row("expected deliveries", self.expected.to_string());
            row("received deliveries", self.received.to_string());
            let pct = if self.expected > 0 {
                100.0 * self.lost() as f64 / self.expected as f64
            } else {
                0.0
            };
            row("lost", format!("{} ({pct:.3}%)", self.lost()));
            row("out of order", self.out_of_order.to_string());
            if self.malformed > 0 {
                row("malformed", self.malformed.to_string());
            }
        }
        if self.echoed_to_sender > 0 {
            row("echoed to sender", self.echoed_to_sender.to_string());
        }
        if self.unsent > 0 || self.max_send_lag_us > 0 {
            row("unsent (queue full)", self.unsent.to_string());
            row("max send lag", us(self.max_send_lag_us));
        }
        if self.rate > 0.0 {
            row(self.rate_unit, format!("{:.0}", self.rate));
        }
        if let Some(l) = &self.latency {
            row("latency", l.row());
        }
        for s in &self.steps {
            row(
                &format!("step {} clients", s.clients),
                format!(
                    "{:.0} deliveries/s  lost {}  p95 {}  p99 {}  {}",
                    s.deliveries_per_sec,
                    s.lost,
                    us(s.latency.p95),
                    us(s.latency.p99),
                    if s.passed { "pass" } else { "FAIL" }
                ),
            );
        }
        if !self.steps.is_empty() {
            row(
                "largest passing step",
                self.best_step()
                    .map_or("none".to_owned(), |c| format!("{c} clients")),
            );
        }
        if let (Some(b), Some(a)) = (self.server_rss_before_kib, self.server_rss_after_kib) {
            row("server RSS", format!("{b} KiB before, {a} KiB after"));
        }
        if let Some(k) = self.kib_per_connection() {
            row("server KiB/connection", format!("{k:.2}"));
        }
        row(
            "generator CPU",
            format!(
                "{:.0}% (waited for a core {:.0}%)",
                self.generator_cpu, self.generator_wait
            ),
        );
        if let Some(c) = self.server_cpu {
            let wait = self.server_wait.unwrap_or(0.0);
            row(
                "server CPU",
                format!("{c:.0}% (waited for a core {wait:.0}%)"),
            );
        }
        row("errors", self.errors().to_string());
        for f in &self.failures {
            row("", format!("{} × {} (e.g. {})", f.count, f.kind, f.example));
        }
        t
    }

    /// One JSON line.
    pub fn json(&self) -> String {
        let opt_f = |v: Option<f64>| v.map_or("null".to_owned(), |v| format!("{v:.3}"));
        let opt_u = |v: Option<u64>| v.map_or("null".to_owned(), |v| v.to_string());
        let failures: Vec<String> = self
            .failures
            .iter()
            .map(|f| {
                format!(
                    "{{\"kind\":{},\"count\":{},\"example\":{}}}",
                    quote(f.kind),
                    f.count,
                    quote(&f.example)
                )
            })
            .collect();
        let steps: Vec<String> = self
            .steps
            .iter()
            .map(|s| {
                format!(
                    "{{\"clients\":{},\"deliveries_per_sec\":{:.1},\"lost\":{},\"latency\":{},\"passed\":{}}}",
                    s.clients, s.deliveries_per_sec, s.lost, s.latency.json(), s.passed
                )
            })
            .collect();
        format!(
            "{{\"scenario\":{},\"connected\":{},\"connect_secs\":{:.3},\"handshake\":{},\
             \"measured_secs\":{:.3},\"sent\":{},\"expected\":{},\"received\":{},\"lost\":{},\
             \"out_of_order\":{},\"malformed\":{},\"echoed_to_sender\":{},\"unsent\":{},\"max_send_lag_us\":{},\
             \"rate\":{:.1},\"rate_unit\":{},\"latency\":{},\"generator_cpu_pct\":{:.1},\
             \"generator_wait_pct\":{:.1},\"server_cpu_pct\":{},\"server_wait_pct\":{},\"server_rss_before_kib\":{},\"server_rss_after_kib\":{},\
             \"server_kib_per_connection\":{},\"steps\":[{}],\"largest_passing_step\":{},\
             \"errors\":{},\"failures\":[{}]}}",
            quote(&self.scenario),
            self.connected,
            self.connect_secs,
            self.handshake.json(),
            self.measured_secs,
            self.sent,
            self.expected,
            self.received,
            self.lost(),
            self.out_of_order,
            self.malformed,
            self.echoed_to_sender,
            self.unsent,
            self.max_send_lag_us,
            self.rate,
            quote(self.rate_unit),
            self.latency.map_or("null".to_owned(), |l| l.json()),
            self.generator_cpu,
            self.generator_wait,
            opt_f(self.server_cpu),
            opt_f(self.server_wait),
            opt_u(self.server_rss_before_kib),
            opt_u(self.server_rss_after_kib),
            opt_f(self.kib_per_connection()),
            steps.join(","),
            opt_u(self.best_step().map(|c| c as u64)),
            self.errors(),
            failures.join(",")
        )
    }
}

/// A duration in microseconds as `850µs`, `12.3ms` or `1.20s`.
pub fn us(v: u64) -> String {
    if v < 1_000 {
        format!("{v}µs")
    } else if v < 1_000_000 {
        format!("{:.2}ms", v as f64 / 1e3)
    } else {
        format!("{:.2}s", v as f64 / 1e6)
    }
}

/// A JSON string literal.
fn quote(s: &str) -> String {
    let mut q = String::with_capacity(s.len() + 2);
    q.push('"');
    for c in s.chars() {
        match c {
            '"' => q.push_str("\\\""),
            '\\' => q.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(q, "\\u{:04x}", c as u32);
            }
            c => q.push(c),
        }
    }
    q.push('"');
    q
}

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

    /// The JSON line escapes strings and has no missing values.
    #[test]
    fn json_escapes_and_is_one_line() {
        let r = Report {
            scenario: "fan\"out".into(),
            ..Report::default()
        };
        let j = r.json();
        assert!(j.contains("\"fan\\\"out\""));
        assert!(!j.contains('\n'));
        assert!(j.contains("\"latency\":null"));
    }
}
