//! What a run measured: the [`Report`] every scenario fills, and the one question a caller
//! that gates on a run asks of it, [`Report::faults`].
//!
//! A report holds counts, not judgements: a fan-out against an echo server *expects* loss, and
//! a `ramp` ends on a failing step by design. [`Report::faults`] names what is wrong for a
//! run that should have been clean (errors, loss, disorder, garbage, messages that could not
//! be sent), so `cargo bench` and scripts need not know every counter. How a report is shown
//! is in [`render`](crate::render); the CPU and memory readings come from
//! [`procfs`](crate::procfs).

use crate::pool::FailureCount;
use crate::procfs::CpuUse;
use hdrhistogram::Histogram;

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
    /// Messages not sent during the sample (queue full, or the generator behind schedule).
    pub unsent: u64,
    /// How far behind its schedule a sender fell at worst, in microseconds.
    pub max_send_lag_us: u64,
    /// Latency of the sample.
    pub latency: Latency,
    /// CPU use during the sample: is the generator or the server the limit?
    pub cpu: CpuUse,
    /// Why the step failed; `None` if it passed (see the `ramp` scenario).
    pub failure: Option<String>,
}

impl RampStep {
    /// True when the step passed.
    pub fn passed(&self) -> bool {
        self.failure.is_none()
    }
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
    /// First deliveries of a message with a sequence number lower than one already seen from
    /// the same sender (reordered); they count as received.
    pub out_of_order: u64,
    /// Deliveries of a message the client had already received: never counted as received,
    /// so they cannot hide loss.
    pub duplicates: u64,
    /// Times a client received nothing for 500 ms although a message sent at least that long
    /// ago had not reached it (fanout).
    pub stalls: u64,
    /// The longest such silence, in microseconds.
    pub longest_stall_us: u64,
    /// Messages received without a valid stamp (too short, or an unknown sender).
    pub malformed: u64,
    /// Messages a sender received back (a server that echoes to the sender); not deliveries.
    pub echoed_to_sender: u64,
    /// Messages the generator could not send because the connection's queue was full (the
    /// server stopped reading): fixed-rate fanout only.
    pub unsent: u64,
    /// Messages a fixed-rate sender skipped because it was more than a second behind its
    /// schedule: the generator could not keep up, and the offered load was not offered.
    pub behind: u64,
    /// Messages a fixed-rate sender sent more than `--max-lag` after they were due.
    pub late: u64,
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
            .filter(|s| s.passed())
            .map(|s| s.clients)
            .max()
    }

    /// What went wrong in a run that should have been clean, one line each; empty when
    /// nothing did. Loss counts deliveries expected and not received; duplicates and late
    /// (out-of-order) deliveries are counted apart; a stall is a client that went quiet while
    /// owed a message; unsent, skipped and late sends are messages a fixed-rate sender could
    /// not send on time (the server stopped reading, or the generator fell behind). A scenario
    /// that measures a rate and measured none is a fault too. Failed `ramp` steps are not
    /// faults: a ramp ends on one by design.
    pub fn faults(&self) -> Vec<String> {
        let mut faults = Vec::new();
        for f in &self.failures {
            faults.push(format!(
                "{} × {} error (e.g. {})",
                f.count, f.kind, f.example
            ));
        }
        let counts = [
            (self.lost(), "lost"),
            (self.duplicates, "duplicated"),
            (self.out_of_order, "out of order"),
            (
                self.stalls,
                "stalls (a client silent 500 ms while owed a message)",
            ),
            (self.malformed, "malformed"),
            (
                self.unsent,
                "unsent (queue full: the server stopped reading)",
            ),
            (
                self.behind,
                "skipped (the generator fell a second behind its schedule)",
            ),
            (self.late, "sent late (more than --max-lag behind schedule)"),
        ];
        for (n, what) in counts {
            if n > 0 {
                faults.push(format!("{n} {what}"));
            }
        }
        // A closed loop whose server delivers nothing stalls before the window opens: it then
        // sends nothing in the window and so loses nothing. A rate of zero is the symptom.
        if !self.rate_unit.is_empty() && self.rate == 0.0 {
            faults.push(format!("0 {} (nothing measured)", self.rate_unit));
        }
        faults
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A clean run has no faults; loss, disorder, failures and a run that measured nothing are
    /// each named.
    #[test]
    fn faults_name_loss_disorder_and_errors() {
        let clean = Report {
            sent: 10,
            expected: 90,
            received: 90,
            rate: 90.0,
            rate_unit: "deliveries/s",
            ..Report::default()
        };
        assert!(clean.faults().is_empty());
        let bad = Report {
            received: 85,
            out_of_order: 2,
            failures: vec![FailureCount {
                kind: "io",
                count: 3,
                example: "io: reset".into(),
            }],
            ..clean
        };
        let faults = bad.faults();
        assert_eq!(faults.len(), 3, "{faults:?}");
        assert!(faults[0].starts_with("3 × io"));
        assert_eq!(faults[1], "5 lost");
        assert!(faults[2].starts_with("2 out of order"));
        assert!(
            Report::default().faults().is_empty(),
            "idle and ramp measure no rate"
        );
        let stalled = Report {
            rate_unit: "deliveries/s",
            ..Report::default()
        };
        assert_eq!(stalled.faults(), ["0 deliveries/s (nothing measured)"]);
    }
}
