//! The command line of `chatloop bench`: the scenarios, every option with its default, and
//! the checks that keep a run meaningful. Parsed by hand like `chatloop serve`'s flags
//! ([`crate::config::Args`]); mistakes are one-line [`UsageError`]s (exit code 2).

use super::Stamp;
use crate::config::{parse_bytes, parse_count, parse_time, Args, UsageError};
use std::time::Duration;

/// `chatloop bench --help`.
pub const BENCH_USAGE: &str = "\
Usage: chatloop bench SCENARIO --url ws://HOST:PORT/ROOM [OPTIONS]

Load-tests a WebSocket chat or echo server from one thread (one mio loop, thousands of
connections). Scenarios:
  fanout    C clients in one room; S of them send M-byte messages, every other client
            receives. Reports deliveries/s, loss, per-sender order and latency.
  echo      C clients, one message in flight each (for 'chatloop serve --echo'): round trips/s
            and round-trip time.
  idle      open C connections and hold them; with --pid, the server's memory per connection.
  connect   open, upgrade and close connections (--concurrency at once): handshakes/s.
  ramp      add --step clients at a time; at each step S senders broadcast at --rate for
            --duration; stop when p95 latency passes --limit. Reports the largest passing step.

Options:
  --url URL               server and room, ws:// only [default: ws://127.0.0.1:1234/]
  --clients N             connections (ramp: the most to try) [default: 100; ramp: 10000]
  --senders N             fanout/ramp: clients that send [default: 1]
  --size BYTES            message size, at least 16 [default: 64]
  --rate N                fanout/ramp: messages/s per sender [fanout default: closed loop;
                          ramp default: 10]
  --window N              closed loop: a sender's messages that have not reached every
                          other client yet, at most [default: 32]
  --duration TIME         measured time (ramp: per step; idle: hold time) [default: 10s]
  --warmup TIME           unmeasured time before it [default: 2s; ramp: 500ms]
  --limit TIME            ramp: the p95 latency that ends the ramp [default: 500ms]
  --step N                ramp: clients added per step [default: 500]
  --concurrency N         handshakes in flight at once [default: 100]
  --sources N             bind clients to 127.0.0.1 … 127.0.0.N round-robin (one source
                          address has ~28k ports) [default: 1 per 25000 clients]
  --pid PID               the server's pid: report its CPU use and memory (from /proc)
  --json                  print one JSON line instead of the table
  --quiet                 no progress line on stderr
  -h, --help              print this help

Without --rate the loop is closed: each sender keeps at most --window messages in flight,
a message being in flight until every other client has received it.
";

/// Which load to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    /// Many senders, every other client in the room receives.
    Fanout,
    /// One message in flight per client, answered by an echo server.
    Echo,
    /// Connections held open, nothing sent.
    Idle,
    /// Handshake churn.
    Connect,
    /// Fanout with a growing number of clients.
    Ramp,
}

impl Scenario {
    /// The scenario's name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Fanout => "fanout",
            Scenario::Echo => "echo",
            Scenario::Idle => "idle",
            Scenario::Connect => "connect",
            Scenario::Ramp => "ramp",
        }
    }
}

/// Everything a run needs. [`Options::new`] gives the defaults.
#[derive(Debug, Clone)]
pub struct Options {
    /// Which load.
    pub scenario: Scenario,
    /// `ws://host:port/room`.
    pub url: String,
    /// Connections (ramp: the most to try).
    pub clients: usize,
    /// Clients that send (fanout, ramp).
    pub senders: usize,
    /// Message size in bytes, at least [`Stamp::LEN`].
    pub size: usize,
    /// Messages per second per sender; `None`: closed loop with `window`.
    pub rate: Option<f64>,
    /// Closed loop: messages a sender may have in flight (not yet received by every other
    /// client).
    pub window: u32,
    /// The measured time (ramp: per step; idle: the hold).
    pub duration: Duration,
    /// Unmeasured time before it.
    pub warmup: Duration,
    /// Ramp: p95 latency above which a step fails.
    pub limit: Duration,
    /// Ramp: clients added per step.
    pub step: usize,
    /// Handshakes in flight at once.
    pub concurrency: usize,
    /// Source addresses on loopback; `None`: one per 25000 clients.
    pub sources: Option<usize>,
    /// The server's pid, for its CPU and memory.
    pub pid: Option<u32>,
    /// One JSON line instead of the table.
    pub json: bool,
    /// A progress line on stderr every second.
    pub progress: bool,
}

impl Options {
    /// The defaults for `scenario` against `url`.
    pub fn new(scenario: Scenario, url: &str) -> Options {
        let ramp = scenario == Scenario::Ramp;
        Options {
            scenario,
            url: url.to_owned(),
            clients: if ramp { 10_000 } else { 100 },
            senders: 1,
            size: 64,
            rate: ramp.then_some(10.0),
            window: 32,
            duration: Duration::from_secs(10),
            warmup: Duration::from_millis(if ramp { 500 } else { 2000 }),
            limit: Duration::from_millis(500),
            step: 500,
            concurrency: 100,
            sources: None,
            pid: None,
            json: false,
            progress: true,
        }
    }

    /// Parses `chatloop bench`'s arguments; `Ok(None)` means `--help`.
    pub fn from_args(
        args: impl IntoIterator<Item = String>,
    ) -> Result<Option<Options>, UsageError> {
        let mut args = Args::new(args);
        let mut flags = Vec::new();
        while let Some(flag) = args.next_flag()? {
            if flag == "-h" || flag == "--help" {
                return Ok(None);
            }
            const WITH_VALUE: [&str; 13] = [
                "--url",
                "--clients",
                "--senders",
                "--size",
                "--rate",
                "--window",
                "--duration",
                "--warmup",
                "--limit",
                "--step",
                "--concurrency",
                "--sources",
                "--pid",
            ];
            let value = match flag.as_str() {
                "--json" | "--quiet" => String::new(),
                f if WITH_VALUE.contains(&f) => {
                    args.value(&flag, |v| Ok::<_, String>(v.to_owned()))?
                }
                _ => {
                    return Err(UsageError(format!(
                        "unknown option '{flag}' (see 'chatloop bench --help')"
                    )))
                }
            };
            flags.push((flag, value));
        }
        let scenario = match args.positional.first().map(String::as_str) {
            Some("fanout") => Scenario::Fanout,
            Some("echo") => Scenario::Echo,
            Some("idle") => Scenario::Idle,
            Some("connect") => Scenario::Connect,
            Some("ramp") => Scenario::Ramp,
            Some(other) => {
                return Err(UsageError(format!(
                    "unknown scenario '{other}' (see 'chatloop bench --help')"
                )))
            }
            None => {
                return Err(UsageError(
                    "which scenario? (see 'chatloop bench --help')".into(),
                ))
            }
        };
        if let Some(extra) = args.positional.get(1) {
            return Err(UsageError(format!("unexpected argument '{extra}'")));
        }
        let mut o = Options::new(scenario, "ws://127.0.0.1:1234/");
        for (flag, value) in flags {
            let bad =
                |why: String| UsageError(format!("invalid value '{value}' for {flag}: {why}"));
            let count = || parse_count(&value).map_err(bad);
            match flag.as_str() {
                "--url" => o.url = value.clone(),
                "--clients" => o.clients = count()?,
                "--senders" => o.senders = count()?,
                "--size" => o.size = parse_bytes(&value).map_err(bad)?,
                "--rate" => {
                    let r: f64 = value
                        .parse()
                        .map_err(|_| bad("expected messages per second".into()))?;
                    o.rate = Some(r);
                }
                "--window" => {
                    o.window = u32::try_from(count()?).map_err(|_| bad("too large".into()))?
                }
                "--duration" => o.duration = parse_time(&value).map_err(bad)?,
                "--warmup" => o.warmup = parse_time(&value).map_err(bad)?,
                "--limit" => o.limit = parse_time(&value).map_err(bad)?,
                "--step" => o.step = count()?,
                "--concurrency" => o.concurrency = count()?,
                "--sources" => o.sources = Some(count()?),
                "--pid" => {
                    o.pid = Some(u32::try_from(count()?).map_err(|_| bad("not a pid".into()))?)
                }
                "--json" => o.json = true,
                "--quiet" => o.progress = false,
                _ => {
                    return Err(UsageError(format!(
                        "unknown option '{flag}' (see 'chatloop bench --help')"
                    )))
                }
            }
        }
        o.validate()?;
        Ok(Some(o))
    }

    /// Checks the options that would make a run meaningless.
    pub fn validate(&self) -> Result<(), UsageError> {
        let fail = |m: &str| Err(UsageError(m.to_owned()));
        if self.size < Stamp::LEN {
            return fail("--size must be at least 16 (sender id, sequence number, send time)");
        }
        if self.clients == 0 || self.concurrency == 0 {
            return fail("--clients and --concurrency must be at least 1");
        }
        if matches!(self.scenario, Scenario::Fanout | Scenario::Ramp) {
            if self.clients < 2 {
                return fail("fanout needs at least 2 clients");
            }
            if self.senders == 0 || self.senders > self.clients {
                return fail("--senders must be between 1 and --clients");
            }
            if self.rate.is_none() && self.window == 0 {
                return fail("--window must be at least 1");
            }
        }
        if self.rate.is_some_and(|r| !(r > 0.0 && r <= 1e6)) {
            return fail("--rate must be more than 0 and at most 1000000");
        }
        if self.scenario == Scenario::Ramp && (self.step == 0 || self.step > self.clients) {
            return fail("--step must be between 1 and --clients");
        }
        if self.duration.is_zero() {
            return fail("--duration must be more than zero");
        }
        super::parse_url(&self.url).map(|_| ()).map_err(UsageError)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Options parse, and nonsense is a usage error.
    #[test]
    fn options_parse_and_reject_nonsense() {
        let args = |a: &[&str]| Options::from_args(a.iter().map(|s| s.to_string()));
        let o = args(&[
            "fanout",
            "--clients",
            "20",
            "--senders=2",
            "--rate",
            "5",
            "--json",
        ])
        .unwrap()
        .unwrap();
        assert_eq!(
            (o.clients, o.senders, o.rate, o.json),
            (20, 2, Some(5.0), true)
        );
        assert!(args(&["fanout", "--size", "8"]).is_err());
        assert!(args(&["fanout", "--senders", "0"]).is_err());
        assert!(args(&["nope"]).is_err());
        assert!(args(&["fanout", "--bogus"])
            .unwrap_err()
            .0
            .contains("unknown option"));
        assert!(args(&["--help"]).unwrap().is_none());
    }
}
