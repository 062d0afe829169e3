//! Everything a run needs: the [`Scenario`], every option with its default, and the checks
//! that keep a run meaningful.
//!
//! [`Options::new`] gives the defaults of the command line, so a program or a test that runs
//! the generator as a library (`cargo bench`, the integration tests) starts from the same run
//! as `chatloop bench` and changes only the fields it cares about. [`cli`](crate::cli) fills
//! the same struct from the command line.

use crate::stamp::MessageKind;
use crate::target::Target;
use std::time::Duration;

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
    /// Every scenario, in the order `--help` lists them.
    pub const ALL: [Scenario; 5] = [
        Scenario::Fanout,
        Scenario::Echo,
        Scenario::Idle,
        Scenario::Connect,
        Scenario::Ramp,
    ];

    /// The scenario called `name` on the command line.
    pub fn from_name(name: &str) -> Option<Scenario> {
        Scenario::ALL.into_iter().find(|s| s.name() == name)
    }

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
    /// Message size in bytes, at least the stamp ([`MessageKind::stamp_len`]).
    pub size: usize,
    /// Binary messages, or text (`--text`) for servers that relay only text.
    pub kind: MessageKind,
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
    /// Fixed rate: how far a sender may fall behind its schedule before a ramp step fails
    /// (the generator, not the server, could not keep up).
    pub max_lag: Duration,
    /// Handshakes in flight at once.
    pub concurrency: usize,
    /// Source addresses on loopback; `None`: one per 25000 clients.
    pub sources: Option<usize>,
    /// The server's pid, for its CPU and memory.
    pub pid: Option<u32>,
    /// For `wss://`: a PEM file of certificates to trust besides the system's (`--ca`).
    pub ca: Option<std::path::PathBuf>,
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
            kind: MessageKind::Binary,
            rate: ramp.then_some(10.0),
            window: 32,
            duration: Duration::from_secs(10),
            warmup: Duration::from_millis(if ramp { 500 } else { 2000 }),
            limit: Duration::from_millis(500),
            step: 500,
            max_lag: Duration::from_millis(50),
            concurrency: 100,
            sources: None,
            pid: None,
            ca: None,
            json: false,
            progress: true,
        }
    }

    /// Checks the options that would make a run meaningless; the error is the one line to
    /// show.
    pub fn validate(&self) -> Result<(), String> {
        let fail = |m: &str| Err(m.to_owned());
        if self.size < self.kind.stamp_len() {
            return Err(format!(
                "--size must be at least {} (sender id, sequence number, send time{})",
                self.kind.stamp_len(),
                if self.kind == MessageKind::Text {
                    " in hex"
                } else {
                    ""
                }
            ));
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
        Target::parse(&self.url).map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every scenario is found by its own name, and only by it.
    #[test]
    fn scenarios_are_found_by_name() {
        for s in Scenario::ALL {
            assert_eq!(Scenario::from_name(s.name()), Some(s));
        }
        assert_eq!(Scenario::from_name("Fanout"), None);
    }

    /// The defaults pass the checks; runs that would measure nothing do not.
    #[test]
    fn defaults_are_valid_and_nonsense_is_not() {
        for s in Scenario::ALL {
            assert_eq!(Options::new(s, "ws://127.0.0.1:1234/").validate(), Ok(()));
        }
        let mut o = Options::new(Scenario::Fanout, "ws://127.0.0.1:1234/");
        o.senders = o.clients + 1;
        assert!(o.validate().is_err());
        o = Options::new(Scenario::Ramp, "ws://127.0.0.1:1234/");
        o.step = 0;
        assert!(o.validate().is_err());
        o = Options::new(Scenario::Echo, "http://127.0.0.1:1234/");
        assert!(o.validate().is_err());
        o = Options::new(Scenario::Echo, "wss://127.0.0.1:1234/");
        assert_eq!(o.validate(), Ok(()));
    }
}
