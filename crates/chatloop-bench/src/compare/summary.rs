//! From the runs of a comparison to its findings: each server's best window, medians and
//! ranges, latency steps, capacity at the SLO, and efficiency. [`markdown`](super::markdown)
//! writes them out, with whether chatloop met its targets.
//!
//! The rules, each in one function here:
//! - **best window** ([`best_window`]): the window with the highest rate among phase-1 runs
//!   that were clean (no loss, no error: a window where a server drops deliveries is not its
//!   best);
//! - **a latency step** ([`step`]): medians over rounds of the percentiles and CPU; loss and
//!   unsent summed over rounds; generator-bound when the generator's median CPU is over
//!   [`GENERATOR_BOUND_PCT`];
//! - **capacity at SLO** ([`capacity`]): the highest offered load below which every step
//!   was clean with a median p99 within [`SLO_P99`];
//! - **efficiency**: server CPU-seconds per million deliveries, which still compares servers
//!   when the generator saturates before they do.

use super::plan::{Plan, Shape, GENERATOR_BOUND_PCT, SLO_P99};
use crate::render::us;
use crate::report::Report;

/// Which phase a run belongs to (see the module docs of [`compare`](super)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Closed loop at one of many windows.
    Window,
    /// Closed loop at the server's best window.
    Fanout,
    /// Fixed rate at one offered load.
    Latency,
    /// The ramp.
    Ramp,
}

impl Phase {
    /// The phase's name in the raw lines.
    pub fn name(self) -> &'static str {
        match self {
            Phase::Window => "window",
            Phase::Fanout => "fanout",
            Phase::Latency => "latency",
            Phase::Ramp => "ramp",
        }
    }
}

/// One run of a comparison.
#[derive(Debug, Clone)]
pub struct Sample {
    /// Its phase.
    pub phase: Phase,
    /// The server's name.
    pub server: String,
    /// Clients and senders.
    pub shape: Shape,
    /// Closed loop: the window.
    pub window: Option<u32>,
    /// Fixed rate: the offered load, deliveries/s.
    pub offered: Option<f64>,
    /// Round, from 1.
    pub round: u32,
    /// What the generator reported.
    pub report: Report,
}

impl Sample {
    /// A run of `server` in `phase` at `shape`, round 1, not yet measured.
    pub fn at(phase: Phase, server: &str, shape: Shape) -> Sample {
        Sample {
            phase,
            server: server.to_owned(),
            shape,
            window: None,
            offered: None,
            round: 1,
            report: Report::default(),
        }
    }

    /// The raw line: where the run belongs, then the generator's own JSON report.
    pub fn json(&self) -> String {
        let opt = |v: Option<String>| v.unwrap_or_else(|| "null".into());
        format!(
            "{{\"phase\":\"{}\",\"server\":\"{}\",\"clients\":{},\"senders\":{},\"window\":{},\
             \"offered_deliveries_per_sec\":{},\"round\":{},\"report\":{}}}",
            self.phase.name(),
            self.server,
            self.shape.clients,
            self.shape.senders,
            opt(self.window.map(|w| w.to_string())),
            opt(self.offered.map(|o| format!("{o:.0}"))),
            self.round,
            self.report.json()
        )
    }

    /// The progress line.
    pub fn line(&self) -> String {
        let r = &self.report;
        let at = match (self.window, self.offered) {
            (Some(w), _) => format!("window {w}"),
            (_, Some(o)) => format!("offered {}", rate(o)),
            _ => String::new(),
        };
        let p99 = r.latency.map_or("-".into(), |l| us(l.p99));
        format!(
            "{} {} {} {}: {}, p99 {p99}, lost {}, cpu server {:.0}% generator {:.0}%{}",
            self.phase.name(),
            self.shape.name(),
            at,
            self.server,
            rate(r.rate),
            r.lost(),
            r.server_cpu.unwrap_or(0.0),
            r.generator_cpu,
            match r.faults().first() {
                Some(f) => format!(" [{f}]"),
                None => String::new(),
            }
        )
    }

    /// Server CPU-seconds per million deliveries, if measured.
    pub fn cpu_per_million(&self) -> Option<f64> {
        let r = &self.report;
        let secs = r.server_cpu? / 100.0 * r.measured_secs;
        (r.received > 0).then(|| secs / (r.received as f64 / 1e6))
    }
}

/// A deliveries/s figure as `850k` or `2.41M`.
pub fn rate(v: f64) -> String {
    if v >= 1e6 {
        format!("{:.2}M", v / 1e6)
    } else if v >= 1e3 {
        format!("{:.0}k", v / 1e3)
    } else {
        format!("{v:.0}")
    }
}

/// The median of `v` (the mean of the middle two for an even count); `None` if empty.
pub fn median(mut v: Vec<f64>) -> Option<f64> {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(v[n / 2]),
        _ => Some((v[n / 2 - 1] + v[n / 2]) / 2.0),
    }
}

/// The samples of one phase, server and shape.
pub fn of<'a>(
    samples: &'a [Sample],
    phase: Phase,
    server: &'a str,
    shape: Shape,
) -> impl Iterator<Item = &'a Sample> + 'a {
    samples
        .iter()
        .filter(move |s| s.phase == phase && s.server == server && s.shape == shape)
}

/// The best window of `server` at `shape`: the highest rate among clean phase-1 runs.
pub fn best_window(samples: &[Sample], server: &str, shape: Shape) -> Option<u32> {
    of(samples, Phase::Window, server, shape)
        .filter(|s| s.report.lost() == 0 && s.report.errors() == 0 && s.report.rate > 0.0)
        .max_by(|a, b| a.report.rate.total_cmp(&b.report.rate))
        .and_then(|s| s.window)
}

/// Phase 2 of one server and shape: the median rate, its range, and the window used.
#[derive(Debug, Clone, Copy, Default)]
pub struct Fanout {
    /// Median deliveries/s over rounds.
    pub median: f64,
    /// Lowest and highest.
    pub range: (f64, f64),
    /// The window (`None`: no clean window was found; the runs used 1).
    pub window: Option<u32>,
    /// Deliveries lost over all rounds.
    pub lost: u64,
    /// Median server and generator CPU, %.
    pub cpu: (f64, f64),
    /// Median server CPU-seconds per million deliveries.
    pub cpu_per_million: Option<f64>,
    /// Rounds.
    pub rounds: usize,
}

/// Phase 2 of `server` at `shape`.
pub fn fanout(samples: &[Sample], server: &str, shape: Shape) -> Fanout {
    let runs: Vec<&Sample> = of(samples, Phase::Fanout, server, shape).collect();
    let rates: Vec<f64> = runs.iter().map(|s| s.report.rate).collect();
    let med =
        |f: &dyn Fn(&Sample) -> Option<f64>| median(runs.iter().filter_map(|s| f(s)).collect());
    Fanout {
        median: median(rates.clone()).unwrap_or(0.0),
        range: (
            rates.iter().copied().fold(f64::INFINITY, f64::min),
            rates.iter().copied().fold(0.0, f64::max),
        ),
        window: best_window(samples, server, shape),
        lost: runs
            .iter()
            .map(|s| s.report.lost() + s.report.errors())
            .sum(),
        cpu: (
            med(&|s| s.report.server_cpu).unwrap_or(0.0),
            med(&|s| Some(s.report.generator_cpu)).unwrap_or(0.0),
        ),
        cpu_per_million: med(&|s| s.cpu_per_million()),
        rounds: runs.len(),
    }
}

/// One latency step of one server: medians over its rounds.
#[derive(Debug, Clone, Copy, Default)]
pub struct Step {
    /// Offered deliveries/s.
    pub offered: f64,
    /// Achieved deliveries/s (median).
    pub achieved: f64,
    /// Median p50, p99, p99.9, µs.
    pub p50: u64,
    /// See `p50`.
    pub p99: u64,
    /// See `p50`.
    pub p999: u64,
    /// Lost deliveries and failed connections, summed over rounds.
    pub lost: u64,
    /// Messages not sent or sent late (unsent, skipped, late), summed over rounds.
    pub unsent: u64,
    /// Median server and generator CPU, %.
    pub cpu: (f64, f64),
    /// Median server CPU-seconds per million deliveries.
    pub cpu_per_million: Option<f64>,
    /// Rounds measured (0: the server had left the sweep).
    pub rounds: usize,
}

impl Step {
    /// The generator's median CPU was over [`GENERATOR_BOUND_PCT`].
    pub fn generator_bound(&self) -> bool {
        self.cpu.1 > GENERATOR_BOUND_PCT
    }

    /// Nothing lost or unsent, p99 within the SLO.
    pub fn passes(&self) -> bool {
        self.rounds > 0 && self.lost == 0 && self.unsent == 0 && self.p99 <= slo_us()
    }

    /// The sweep goes on for this server: it passed, and the generator was not the limit.
    pub fn within_slo(&self) -> bool {
        self.passes() && !self.generator_bound()
    }
}

/// [`SLO_P99`] in µs.
fn slo_us() -> u64 {
    SLO_P99.as_micros() as u64
}

/// The latency step of `server` at `offered`.
pub fn step(samples: &[Sample], server: &str, offered: f64) -> Step {
    let runs: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.phase == Phase::Latency && s.server == server && s.offered == Some(offered))
        .collect();
    let med = |f: &dyn Fn(&Report) -> Option<f64>| {
        median(runs.iter().filter_map(|s| f(&s.report)).collect())
    };
    let pct = |f: fn(&crate::report::Latency) -> u64| {
        med(&|r| r.latency.map(|l| f(&l) as f64)).unwrap_or(0.0) as u64
    };
    Step {
        offered,
        achieved: med(&|r| Some(r.rate)).unwrap_or(0.0),
        p50: pct(|l| l.p50),
        p99: pct(|l| l.p99),
        p999: pct(|l| l.p999),
        lost: runs
            .iter()
            .map(|s| s.report.lost() + s.report.errors())
            .sum(),
        unsent: runs
            .iter()
            .map(|s| s.report.unsent + s.report.behind + s.report.late)
            .sum(),
        cpu: (
            med(&|r| r.server_cpu).unwrap_or(0.0),
            med(&|r| Some(r.generator_cpu)).unwrap_or(0.0),
        ),
        cpu_per_million: median(runs.iter().filter_map(|s| s.cpu_per_million()).collect()),
        rounds: runs.len(),
    }
}

/// Every measured latency step of `server`, in order of offered load.
pub fn steps(plan: &Plan, samples: &[Sample], server: &str) -> Vec<Step> {
    plan.loads
        .iter()
        .map(|&o| step(samples, server, o))
        .filter(|s| s.rounds > 0)
        .collect()
}

/// Capacity at the SLO: the highest offered load of the unbroken run of passing steps from
/// the lowest, and whether the generator, not the server, ended it (the step after was
/// generator-bound, or there was none because the sweep stopped there).
pub fn capacity(steps: &[Step]) -> (Option<f64>, bool) {
    let passing = steps.iter().take_while(|s| s.passes()).count();
    let cap = passing.checked_sub(1).map(|i| steps[i].offered);
    let ended_by_generator = match steps.get(passing) {
        Some(next) => next.generator_bound(),
        None => steps.last().is_some_and(Step::generator_bound),
    };
    (cap, ended_by_generator)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A step with latency `p99_ms`, `lost` and the generator at `gen_pct`.
    fn st(offered: f64, p99_ms: u64, lost: u64, gen_pct: f64) -> Step {
        Step {
            offered,
            p99: p99_ms * 1000,
            lost,
            cpu: (50.0, gen_pct),
            rounds: 3,
            ..Step::default()
        }
    }

    /// Capacity is the last of the unbroken passing steps, and says when the generator, not
    /// the server, ended the sweep.
    #[test]
    fn capacity_is_the_last_unbroken_passing_step() {
        let server_bound = [
            st(1e5, 1, 0, 20.0),
            st(5e5, 3, 0, 40.0),
            st(1e6, 80, 0, 50.0),
        ];
        assert_eq!(capacity(&server_bound), (Some(5e5), false));
        let lossy = [
            st(1e5, 1, 0, 20.0),
            st(5e5, 3, 7, 40.0),
            st(1e6, 4, 0, 50.0),
        ];
        assert_eq!(capacity(&lossy), (Some(1e5), false), "loss breaks the run");
        let gen_bound = [st(1e5, 1, 0, 20.0), st(5e5, 30, 0, 95.0)];
        assert_eq!(capacity(&gen_bound), (Some(1e5), true));
        assert_eq!(capacity(&[st(1e5, 30, 0, 20.0)]), (None, false));
    }

    /// The best window is the fastest clean one: a faster run that lost deliveries is not.
    #[test]
    fn best_window_is_the_fastest_clean_one() {
        let shape = Shape {
            clients: 10,
            senders: 2,
        };
        let run = |window, rate, received| Sample {
            phase: Phase::Window,
            server: "x".into(),
            shape,
            window: Some(window),
            offered: None,
            round: 1,
            report: Report {
                rate,
                expected: 100,
                received,
                ..Report::default()
            },
        };
        let samples = [run(1, 5.0, 100), run(2, 9.0, 100), run(4, 12.0, 99)];
        assert_eq!(best_window(&samples, "x", shape), Some(2));
        assert_eq!(best_window(&samples, "y", shape), None);
    }

    /// Medians of odd and even counts.
    #[test]
    fn medians() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(vec![]), None);
    }
}
