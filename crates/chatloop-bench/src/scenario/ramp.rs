//! The `ramp` scenario: fan-out at a fixed rate, `--step` more clients at a time, until a step
//! fails.
//!
//! Each step connects its new clients, then runs one fan-out window (warm-up, `--duration`,
//! drain) with the [`fanout`](super::fanout) scenario's machinery, every connected client
//! receiving and `--senders` of them sending at `--rate`. A step passes when its p95 latency
//! is at most `--limit`, something was received, no connection has failed so far, and the
//! step was clean: nothing lost, duplicated or stalled, and every message sent on schedule
//! (none unsent or skipped, none more than `--max-lag` late). A step the generator could not
//! offer on time has not measured the server at that load, so it cannot pass. The report lists
//! every step, why a failed one failed, and the largest passing one: the most clients the
//! server carries at that rate within that latency.

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
        let failure = judge(&step, pool.error_count(), opts);
        if opts.progress {
            eprintln!(
                "step {} clients: {:.0} deliveries/s, lost {}, p95 {}: {}",
                pool.open(),
                step.rate,
                step.lost(),
                us(latency.p95),
                failure.as_deref().unwrap_or("pass")
            );
        }
        let passed = failure.is_none();
        report.steps.push(RampStep {
            clients: pool.open(),
            deliveries_per_sec: step.rate,
            lost: step.lost(),
            unsent: step.unsent + step.behind,
            max_send_lag_us: step.max_send_lag_us,
            latency,
            cpu: usage,
            failure,
        });
        if !passed {
            break;
        }
    }
    report.connected = pool.opened;
    report.handshake = Latency::of(&pool.handshake_us);
    Ok(report)
}

/// Why a ramp step fails, or `None` if it passes (see the module docs). `errors` counts the
/// connections failed so far.
fn judge(step: &Report, errors: u64, opts: &Options) -> Option<String> {
    let latency = step.latency.unwrap_or_default();
    let limit_us = opts.limit.as_micros() as u64;
    if errors > 0 {
        return Some(format!("{errors} connections failed"));
    }
    if step.unsent + step.behind > 0 {
        return Some(format!(
            "{} messages not sent (unsent {}, skipped {})",
            step.unsent + step.behind,
            step.unsent,
            step.behind
        ));
    }
    if step.late > 0 {
        return Some(format!(
            "send lag {} over --max-lag {} ({} messages late)",
            us(step.max_send_lag_us),
            us(opts.max_lag.as_micros() as u64),
            step.late
        ));
    }
    if step.received == 0 {
        return Some("nothing received".into());
    }
    let unclean = [
        (step.lost(), "lost"),
        (step.duplicates, "duplicated"),
        (step.stalls, "stalls"),
    ];
    if let Some((n, what)) = unclean.into_iter().find(|(n, _)| *n > 0) {
        return Some(format!("{n} {what}"));
    }
    (latency.p95 > limit_us)
        .then(|| format!("p95 {} over --limit {}", us(latency.p95), us(limit_us)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::Scenario;

    /// A step fails on messages not sent or sent late, not only on latency and loss.
    #[test]
    fn a_step_fails_on_unsent_or_late_sends() {
        let opts = Options::new(Scenario::Ramp, "ws://127.0.0.1:1/");
        let good = Report {
            sent: 10,
            expected: 90,
            received: 90,
            latency: Some(Latency {
                p95: 1_000,
                ..Latency::default()
            }),
            ..Report::default()
        };
        assert_eq!(judge(&good, 0, &opts), None);
        let unsent = Report {
            unsent: 3,
            ..good.clone()
        };
        assert_eq!(
            judge(&unsent, 0, &opts).as_deref(),
            Some("3 messages not sent (unsent 3, skipped 0)")
        );
        let late = Report {
            late: 2,
            max_send_lag_us: 80_000,
            ..good.clone()
        };
        assert_eq!(
            judge(&late, 0, &opts).as_deref(),
            Some("send lag 80.00ms over --max-lag 50.00ms (2 messages late)")
        );
        let slow = Report {
            latency: Some(Latency {
                p95: 600_000,
                ..Latency::default()
            }),
            ..good.clone()
        };
        assert!(judge(&slow, 0, &opts).unwrap().starts_with("p95 600.00ms"));
        let lossy = Report {
            received: 80,
            ..good
        };
        assert_eq!(judge(&lossy, 0, &opts).as_deref(), Some("10 lost"));
    }
}
