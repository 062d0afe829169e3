//! What `chatloop bench compare` runs: the servers, the shapes, the windows, the offered
//! loads, how long each run lasts; the full plan, the quick one, and the command line.
//!
//! The full plan is sized to finish within 20 minutes on a 2-core machine, the quick one
//! (`--quick`) within 3; a run's length is warm-up + measured time + connecting, draining and
//! closing (about a second more).

use crate::units;
use std::path::PathBuf;
use std::time::Duration;

/// `chatloop bench compare --help`.
pub const USAGE: &str = "\
Usage: chatloop bench compare --servers NAME,NAME… --start 'COMMAND {name} {port}' [OPTIONS]

Runs chatloop and other chat servers under the same loads, one fresh server process per run,
the servers taking turns in every round: closed-loop fan-out at every window (1, 2, 4 … 64)
to find each server's best, fan-out at that window for --rounds rounds, latency against
offered load, and a ramp. Writes compare.jsonl (one raw line per run), compare.md (the
summary) and fanout.svg, windows.svg, latency.svg, ramp.svg to --out.

Options:
  --servers LIST      servers to compare, by the names --start knows; the first is the one
                      the others are compared with (chatloop)
  --start COMMAND     how to start a server in the foreground: {name} and {port} are
                      replaced; split on spaces, no shell. Pin it to a core here, e.g.
                      'taskset -c 0 benches/peers/run.sh {name} {port}'
  --out DIR           where the files go [default: target/compare]
  --quick             a short plan (about 3 minutes): fewer windows, one round, short runs
  --rounds N          rounds of the fan-out and latency phases [default: 3; quick: 1]
  --note TEXT         a line for the summary (versions, machine)
  -h, --help          print this help

Run this process pinned to another core than the servers: taskset -c 1 chatloop bench compare …
";

/// Clients in the room and how many of them send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    /// Connections in the room.
    pub clients: usize,
    /// Clients that send.
    pub senders: usize,
}

impl Shape {
    /// Deliveries per message: every client but the sender.
    pub fn fan(self) -> f64 {
        (self.clients - 1) as f64
    }

    /// Messages per second per sender that offer `deliveries` per second in all.
    pub fn rate_for(self, deliveries: f64) -> f64 {
        deliveries / (self.senders as f64 * self.fan())
    }

    /// `1000×10`.
    pub fn name(self) -> String {
        format!("{}×{}", self.clients, self.senders)
    }
}

/// The ramp phase.
#[derive(Debug, Clone)]
pub struct RampPlan {
    /// The most clients.
    pub clients: usize,
    /// Clients added per step.
    pub step: usize,
    /// Clients that send.
    pub senders: usize,
    /// Messages per second per sender.
    pub rate: f64,
    /// The p95 latency that fails a step.
    pub limit: Duration,
    /// Warm-up and measured time per step.
    pub time: (Duration, Duration),
}

/// Everything one comparison runs. [`Plan::full`] and [`Plan::quick`] are the two sizes.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Server names; the first is the one compared with the others.
    pub servers: Vec<String>,
    /// The start command template (see [`USAGE`]).
    pub start: String,
    /// Where the files go.
    pub out: PathBuf,
    /// A line for the summary.
    pub note: String,
    /// Message size in bytes.
    pub size: usize,
    /// Fan-out shapes.
    pub shapes: Vec<Shape>,
    /// Closed-loop windows tried in phase 1.
    pub windows: Vec<u32>,
    /// Warm-up and measured time of a phase-1 run.
    pub sweep_time: (Duration, Duration),
    /// Rounds of phases 2 and 3.
    pub rounds: u32,
    /// Warm-up and measured time of a phase-2 run.
    pub fanout_time: (Duration, Duration),
    /// The shape of the latency phase.
    pub latency_shape: Shape,
    /// Offered loads of the latency phase, deliveries/s, in increasing order.
    pub loads: Vec<f64>,
    /// Warm-up and measured time of a latency step.
    pub step_time: (Duration, Duration),
    /// The ramp phase.
    pub ramp: RampPlan,
}

/// The latency objective of "capacity at SLO": p99 at most this, and nothing lost.
pub const SLO_P99: Duration = Duration::from_millis(25);

/// A step where the generator's own thread was busier than this (% of one core) measured the
/// generator as much as the server: it is marked, and not charged to the server.
pub const GENERATOR_BOUND_PCT: f64 = 85.0;

/// Milliseconds.
fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

impl Plan {
    /// The full comparison: about 15 minutes with five servers.
    pub fn full(servers: Vec<String>, start: String) -> Plan {
        Plan {
            servers,
            start,
            out: PathBuf::from("target/compare"),
            note: String::new(),
            size: 64,
            shapes: vec![
                Shape {
                    clients: 1000,
                    senders: 10,
                },
                Shape {
                    clients: 100,
                    senders: 100,
                },
            ],
            windows: vec![1, 2, 4, 8, 16, 32, 64],
            sweep_time: (ms(500), ms(1500)),
            rounds: 3,
            fanout_time: (ms(1000), ms(4000)),
            latency_shape: Shape {
                clients: 1000,
                senders: 10,
            },
            loads: [50e3, 100e3, 250e3, 500e3, 1e6, 2e6, 4e6, 8e6, 16e6].to_vec(),
            step_time: (ms(500), ms(2000)),
            ramp: RampPlan {
                clients: 10_000,
                step: 1000,
                senders: 10,
                rate: 10.0,
                limit: SLO_P99,
                time: (ms(300), ms(1000)),
            },
        }
    }

    /// The quick comparison: the same phases, smaller, about 3 minutes.
    pub fn quick(servers: Vec<String>, start: String) -> Plan {
        let full = Plan::full(servers, start);
        Plan {
            windows: vec![1, 4, 16, 64],
            sweep_time: (ms(200), ms(500)),
            rounds: 1,
            fanout_time: (ms(300), ms(1000)),
            loads: [100e3, 500e3, 2e6, 8e6].to_vec(),
            step_time: (ms(300), ms(700)),
            ramp: RampPlan {
                clients: 3000,
                time: (ms(200), ms(500)),
                ..full.ramp.clone()
            },
            ..full
        }
    }

    /// Parses `chatloop bench compare`'s arguments (after `compare`); `Ok(None)` is `--help`.
    pub fn from_args(args: impl IntoIterator<Item = String>) -> Result<Option<Plan>, String> {
        use lexopt::Arg::{Long, Short, Value};
        let mut parser = lexopt::Parser::from_args(args);
        let (mut servers, mut start, mut out, mut note) = (None, None, None, None);
        let (mut quick, mut rounds) = (false, None);
        while let Some(arg) = parser.next().map_err(|e| e.to_string())? {
            let flag = match arg {
                Short('h') | Long("help") => return Ok(None),
                Long("quick") => {
                    quick = true;
                    continue;
                }
                Long(name) => name.to_owned(),
                Value(v) => return Err(format!("unexpected argument '{}'", v.to_string_lossy())),
                Short(c) => return Err(format!("unknown option '-{c}'")),
            };
            let known = ["servers", "start", "out", "note", "rounds"];
            if !known.contains(&flag.as_str()) {
                return Err(format!(
                    "unknown option '--{flag}' (see 'chatloop bench compare --help')"
                ));
            }
            let value = parser.value().map_err(|e| e.to_string())?;
            let value = value.to_string_lossy().into_owned();
            match flag.as_str() {
                "servers" => servers = Some(value),
                "start" => start = Some(value),
                "out" => out = Some(PathBuf::from(value)),
                "note" => note = Some(value),
                _ => rounds = Some(units::count(&value)?),
            }
        }
        let servers: Vec<String> = servers
            .ok_or("--servers is required")?
            .split(',')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        let start = start.ok_or("--start is required")?;
        if servers.is_empty() {
            return Err("--servers names no server".into());
        }
        if !start.contains("{port}") {
            return Err("--start must contain {port}".into());
        }
        let mut plan = if quick {
            Plan::quick(servers, start)
        } else {
            Plan::full(servers, start)
        };
        if let Some(out) = out {
            plan.out = out;
        }
        if let Some(note) = note {
            plan.note = note;
        }
        if let Some(r) = rounds {
            plan.rounds = u32::try_from(r.max(1)).map_err(|_| "--rounds: too many")?;
        }
        Ok(Some(plan))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The command line gives the servers, the template and the plan's size; mistakes are
    /// named.
    #[test]
    fn compare_arguments_parse_and_mistakes_are_named() {
        let args = |a: &[&str]| Plan::from_args(a.iter().map(|s| s.to_string()));
        let plan = args(&[
            "--servers",
            "chatloop,qt",
            "--start",
            "run {name} {port}",
            "--quick",
        ])
        .unwrap()
        .unwrap();
        assert_eq!(plan.servers, ["chatloop", "qt"]);
        assert_eq!(plan.rounds, 1);
        assert_eq!(plan.windows, [1, 4, 16, 64]);
        let full = args(&["--servers=a", "--start=x {port}", "--rounds", "5"])
            .unwrap()
            .unwrap();
        assert_eq!((full.rounds, full.windows.len()), (5, 7));
        assert!(args(&["--help"]).unwrap().is_none());
        assert_eq!(
            args(&["--start", "x {port}"]).unwrap_err(),
            "--servers is required"
        );
        assert_eq!(
            args(&["--servers", "a", "--start", "x"]).unwrap_err(),
            "--start must contain {port}"
        );
        assert!(args(&["--bogus"])
            .unwrap_err()
            .contains("unknown option '--bogus'"));
    }

    /// An offered load becomes the per-sender rate that offers it.
    #[test]
    fn offered_load_becomes_a_rate_per_sender() {
        let shape = Shape {
            clients: 1001,
            senders: 10,
        };
        assert_eq!(shape.rate_for(1e6), 100.0);
        assert_eq!(shape.name(), "1001×10");
    }
}
