//! `chatloop bench compare`: chatloop and other chat servers under the same loads, each at its
//! best, with the raw results, a summary and SVG charts.
//!
//! It runs four phases, one server process per run (started fresh, so no run inherits another's
//! backlog), with the servers taking turns inside every round so that a noisy neighbour hurts
//! all alike:
//!
//! ```text
//!   1 windows   closed-loop fan-out at every --window of 1, 2, 4 … 64, each shape:
//!               the best window of each server and shape (the highest clean rate)
//!   2 fan-out   closed loop at each server's best window, --rounds rounds: median, min–max
//!   3 latency   fixed rate, offered load stepped up (deliveries/s): p50/p99/p99.9, loss,
//!               unsent, CPU; a server leaves the sweep after its first step over the SLO
//!   4 ramp      clients added a step at a time at a fixed rate, until a step fails
//! ```
//!
//! Every message is a Text message (`--text`): Qt's simplechat relays text only, and every
//! server then does the same work (a Text message must be checked as UTF-8, RFC 6455 §8.1).
//! Servers are started by a command template (`--start`), which is where they are pinned to a
//! core; this process is pinned by whoever starts it (benches/compare.sh: `taskset -c 1`).
//!
//! Files (in `--out`): `compare.jsonl`, one line per run as it finishes (the raw results,
//! each with the generator's full JSON report); `compare.md`, the summary ([`summary`] finds,
//! [`markdown`] writes); and
//! the charts ([`chart`]): `fanout.svg`, `windows.svg`, `latency.svg`, `ramp.svg`.

pub mod chart;
pub mod markdown;
pub mod peer;
pub mod plan;
pub mod summary;

use crate::options::{Options, Scenario};
use crate::pool::FailureCount;
use crate::report::Report;
use crate::stamp::MessageKind;
use peer::Peer;
pub use plan::{Plan, Shape};
use std::fs::{self, File};
use std::io::{self, Write};
use std::time::{Duration, Instant};
use summary::{Phase, Sample};

/// Runs every phase of `plan`; writes the raw lines, the summary and the charts to
/// `plan.out`; returns the summary's Markdown.
pub fn run(plan: &Plan) -> io::Result<String> {
    fs::create_dir_all(&plan.out)?;
    let mut raw = File::create(plan.out.join("compare.jsonl"))?;
    let started = (Instant::now(), load_average());
    let mut c = Campaign {
        plan,
        samples: Vec::new(),
        raw: &mut raw,
        done: 0,
    };
    c.windows()?;
    c.fanout()?;
    c.latency()?;
    c.ramp()?;
    let samples = c.samples;
    let minutes = started.0.elapsed().as_secs_f64() / 60.0;
    let context = format!(
        "{}; load average (1 min) {} at the start, {} at the end; {minutes:.1} minutes",
        plan.note,
        started.1,
        load_average()
    );
    let md = markdown::summary(plan, &samples, &context);
    fs::write(plan.out.join("compare.md"), &md)?;
    chart::all(plan, &samples, &plan.out)?;
    Ok(md)
}

/// A comparison under way: the plan, what was measured so far, where raw lines go.
struct Campaign<'a> {
    plan: &'a Plan,
    samples: Vec<Sample>,
    raw: &'a mut File,
    /// Runs finished, for the progress line.
    done: usize,
}

impl Campaign<'_> {
    /// Phase 1: every window, every shape, every server.
    fn windows(&mut self) -> io::Result<()> {
        let p = self.plan;
        for &shape in &p.shapes {
            for &window in &p.windows {
                for server in &p.servers {
                    let mut o = self.options(Scenario::Fanout, shape, p.sweep_time);
                    o.window = window;
                    let at = Sample::at(Phase::Window, server, shape);
                    self.measure(
                        Sample {
                            window: Some(window),
                            ..at
                        },
                        o,
                    )?;
                }
            }
        }
        Ok(())
    }

    /// Phase 2: each server at its best window, round after round.
    fn fanout(&mut self) -> io::Result<()> {
        let p = self.plan;
        for round in 1..=p.rounds {
            for &shape in &p.shapes {
                for server in &p.servers {
                    let window = summary::best_window(&self.samples, server, shape);
                    let mut o = self.options(Scenario::Fanout, shape, p.fanout_time);
                    o.window = window.unwrap_or(1);
                    let at = Sample::at(Phase::Fanout, server, shape);
                    self.measure(
                        Sample {
                            window,
                            round,
                            ..at
                        },
                        o,
                    )?;
                }
            }
        }
        Ok(())
    }

    /// Phase 3: offered load stepped up; a server leaves after its first step that is over
    /// the SLO or generator-bound (higher steps would say nothing more about it).
    fn latency(&mut self) -> io::Result<()> {
        let p = self.plan;
        let shape = p.latency_shape;
        let mut active = p.servers.clone();
        for &offered in &p.loads {
            for round in 1..=p.rounds {
                for server in &active {
                    let mut o = self.options(Scenario::Fanout, shape, p.step_time);
                    o.rate = Some(shape.rate_for(offered));
                    let at = Sample::at(Phase::Latency, server, shape);
                    self.measure(
                        Sample {
                            offered: Some(offered),
                            round,
                            ..at
                        },
                        o,
                    )?;
                }
            }
            active.retain(|s| summary::step(&self.samples, s, offered).within_slo());
            if active.is_empty() {
                break;
            }
        }
        Ok(())
    }

    /// Phase 4: one ramp per server.
    fn ramp(&mut self) -> io::Result<()> {
        let p = self.plan;
        let shape = Shape {
            clients: p.ramp.clients,
            senders: p.ramp.senders,
        };
        for server in &p.servers {
            let mut o = self.options(Scenario::Ramp, shape, p.ramp.time);
            (o.step, o.rate, o.limit) = (p.ramp.step, Some(p.ramp.rate), p.ramp.limit);
            self.measure(Sample::at(Phase::Ramp, server, shape), o)?;
        }
        Ok(())
    }

    /// The options every run shares: Text messages of the plan's size, quiet.
    fn options(&self, scenario: Scenario, shape: Shape, time: (Duration, Duration)) -> Options {
        let mut o = Options::new(scenario, "ws://127.0.0.1:1/room");
        (o.clients, o.senders, o.size) = (shape.clients, shape.senders, self.plan.size);
        (o.warmup, o.duration) = time;
        o.kind = MessageKind::Text;
        o.progress = false;
        o
    }

    /// One run of `sample`'s server: a fresh server, the generator against it, the server
    /// stopped; the report recorded in `sample` and written as a raw line. A server that does
    /// not start is a failed run.
    fn measure(&mut self, mut sample: Sample, mut opts: Options) -> io::Result<()> {
        sample.report = match Peer::start(&self.plan.start, &sample.server) {
            Ok(mut peer) => {
                opts.url = format!("ws://127.0.0.1:{}/room", peer.port);
                opts.pid = Some(peer.pid());
                let report = crate::run(&opts);
                peer.stop();
                report?
            }
            Err(e) => Report {
                rate_unit: "deliveries/s",
                failures: vec![FailureCount {
                    kind: "server did not start",
                    count: 1,
                    example: e.to_string(),
                }],
                ..Report::default()
            },
        };
        writeln!(self.raw, "{}", sample.json())?;
        self.done += 1;
        eprintln!("[{:3}] {}", self.done, sample.line());
        self.samples.push(sample);
        Ok(())
    }
}

/// The 1-minute load average from `/proc/loadavg`, or `?`.
fn load_average() -> String {
    fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".into())
}
