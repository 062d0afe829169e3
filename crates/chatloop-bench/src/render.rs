//! How a [`Report`] is shown: a table for people, one JSON line for scripts.
//!
//! Both show the same counters. The JSON line's field names are an interface: scripts
//! (`benches/*.sh`) and committed figures read them, so a field is added, never renamed.
//! Durations are microseconds throughout; [`us`] picks a readable unit for the table.

use crate::report::{Latency, Report};
use std::fmt::Write as _;

impl Latency {
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

impl Report {
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
            row("duplicates", self.duplicates.to_string());
            if self.stalls > 0 {
                row(
                    "stalls",
                    format!("{} (longest {})", self.stalls, us(self.longest_stall_us)),
                );
            }
            if self.malformed > 0 {
                row("malformed", self.malformed.to_string());
            }
        }
        if self.echoed_to_sender > 0 {
            row("echoed to sender", self.echoed_to_sender.to_string());
        }
        if self.unsent > 0 || self.max_send_lag_us > 0 {
            row("unsent (queue full)", self.unsent.to_string());
            row("skipped (behind)", self.behind.to_string());
            row("sent late", self.late.to_string());
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
                    s.failure
                        .as_ref()
                        .map_or("pass".to_owned(), |why| format!("FAIL: {why}"))
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
                    "{{\"clients\":{},\"deliveries_per_sec\":{:.1},\"lost\":{},\"unsent\":{},\"max_send_lag_us\":{},\"latency\":{},\"generator_cpu_pct\":{:.1},\"server_cpu_pct\":{},\"passed\":{},\"failure\":{}}}",
                    s.clients,
                    s.deliveries_per_sec,
                    s.lost,
                    s.unsent,
                    s.max_send_lag_us,
                    s.latency.json(),
                    s.cpu.generator,
                    opt_f(s.cpu.server),
                    s.passed(),
                    s.failure.as_deref().map_or("null".to_owned(), quote)
                )
            })
            .collect();
        format!(
            "{{\"scenario\":{},\"connected\":{},\"connect_secs\":{:.3},\"handshake\":{},\
             \"measured_secs\":{:.3},\"sent\":{},\"expected\":{},\"received\":{},\"lost\":{},\
             \"out_of_order\":{},\"duplicates\":{},\"stalls\":{},\"longest_stall_us\":{},\
             \"malformed\":{},\"echoed_to_sender\":{},\"unsent\":{},\"behind\":{},\"late\":{},\"max_send_lag_us\":{},\
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
            self.duplicates,
            self.stalls,
            self.longest_stall_us,
            self.malformed,
            self.echoed_to_sender,
            self.unsent,
            self.behind,
            self.late,
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

#[cfg(test)]
mod tests {
    use super::*;

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

    /// Durations pick µs, ms or s.
    #[test]
    fn durations_read_in_a_fitting_unit() {
        assert_eq!(us(850), "850µs");
        assert_eq!(us(12_300), "12.30ms");
        assert_eq!(us(1_200_000), "1.20s");
    }
}
