//! `chatloop bench`: a load generator for WebSocket chat and echo servers, in one thread.
//!
//! Like the server, the generator is one hand-written `mio` loop (no async runtime, no thread
//! per connection), so one core drives thousands of connections and its own cost stays small
//! and measurable. The files:
//!
//! | file | what |
//! |---|---|
//! | this one | the command line, the scenarios' shared steps (connect, progress line) |
//! | [`client`] | one connection: handshake by hand, masked frames out, frames parsed in place |
//! | [`pool`] | every connection in one `Poll`; events become calls on a scenario's handler |
//! | [`fanout`] | the `fanout` and `ramp` scenarios: many senders, every other client receives |
//! | [`simple`] | the `echo`, `idle` and `connect` scenarios |
//! | [`report`] | the numbers, the table, the JSON line, CPU and memory from `/proc` |
//!
//! Every message the generator sends is a binary message whose first 16 bytes are the
//! [`Stamp`]: sender id, sequence number and send time (nanoseconds since the run began, on
//! the generator's monotonic clock, which is why latency needs no clock sync: the same process
//! sends and receives). The rest, up to `--size`, is zeros.
//!
//! Who is measured: the progress line and the report give the generator's own CPU use (its
//! thread) and, with `--pid`, the server's. If the generator sits near 100% of a core while the
//! server does not, the generator was the bottleneck and the figures are a floor.

pub mod client;
pub mod fanout;
pub mod pool;
pub mod report;
pub mod simple;

use crate::config::{parse_bytes, parse_count, parse_time, Args, UsageError};
use client::Target;
use pool::{Handler, Pool};
use report::{CpuMeter, Report};
use std::io;
use std::net::{IpAddr, Ipv4Addr, ToSocketAddrs};
use std::time::{Duration, Instant};

pub use report::{Latency, RampStep};

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
  --window N              closed loop: a sender's messages not yet received by its
                          designated receiver, at most [default: 32]
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

The closed-loop window: each sender has one designated receiver (the last client to connect;
the one before it for that client itself). A sender may have at most --window messages that
its designated receiver has not received yet. Every other client still checks order and loss.
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
    /// Closed loop: messages a sender may have in flight to its designated receiver.
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
            let value = match flag.as_str() {
                "--json" | "--quiet" => String::new(),
                _ => args.value(&flag, |v| Ok::<_, String>(v.to_owned()))?,
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
        parse_url(&self.url).map(|_| ()).map_err(UsageError)
    }
}

/// The 16 bytes at the front of every message: who sent it, its number, and when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    /// The sender's tag.
    pub sender: u32,
    /// The sender's sequence number, from 0.
    pub seq: u32,
    /// Send time: nanoseconds since the run began.
    pub sent_ns: u64,
}

impl Stamp {
    /// Bytes of a stamp: the smallest allowed `--size`.
    pub const LEN: usize = 16;

    /// Writes the stamp at the front of `buf` (little-endian).
    pub fn write(&self, buf: &mut [u8]) {
        buf[0..4].copy_from_slice(&self.sender.to_le_bytes());
        buf[4..8].copy_from_slice(&self.seq.to_le_bytes());
        buf[8..16].copy_from_slice(&self.sent_ns.to_le_bytes());
    }

    /// Reads the stamp at the front of a message; `None` if it is too short.
    #[inline]
    pub fn read(buf: &[u8]) -> Option<Stamp> {
        let b: &[u8; 16] = buf.get(..16)?.try_into().ok()?;
        let [s0, s1, s2, s3, q0, q1, q2, q3, t @ ..] = *b;
        Some(Stamp {
            sender: u32::from_le_bytes([s0, s1, s2, s3]),
            seq: u32::from_le_bytes([q0, q1, q2, q3]),
            sent_ns: u64::from_le_bytes(t),
        })
    }
}

/// Runs one scenario and returns what it measured.
pub fn run(opts: &Options) -> io::Result<Report> {
    let invalid = |m: String| io::Error::new(io::ErrorKind::InvalidInput, m);
    opts.validate().map_err(|e| invalid(e.0))?;
    let target = parse_url(&opts.url).map_err(invalid)?;
    let fds = raise_fd_limit();
    let needed = opts.clients.min(if opts.scenario == Scenario::Connect {
        2 * opts.concurrency
    } else {
        usize::MAX
    }) + 32;
    if fds.is_some_and(|limit| (limit as usize) < needed) && opts.progress {
        eprintln!(
            "warning: {needed} file descriptors needed, the limit is {}; raise it with 'ulimit -n'",
            fds.unwrap_or(0)
        );
    }
    let sources = source_addresses(&target, opts)?;
    let mut pool = Pool::new(target, sources, opts.concurrency, Instant::now())?;
    let mut report = match opts.scenario {
        Scenario::Fanout => fanout::run_fanout(opts, &mut pool)?,
        Scenario::Ramp => fanout::run_ramp(opts, &mut pool)?,
        Scenario::Echo => simple::run_echo(opts, &mut pool)?,
        Scenario::Idle => simple::run_idle(opts, &mut pool)?,
        Scenario::Connect => simple::run_connect(opts, &mut pool)?,
    };
    pool.close_all(Duration::from_secs(2))?;
    report.scenario = opts.scenario.name().to_owned();
    report.failures = pool.failures.clone();
    Ok(report)
}

/// `ws://host:port/path` → where to connect, the Host header, the path.
fn parse_url(url: &str) -> Result<Target, String> {
    let rest = url
        .strip_prefix("ws://")
        .ok_or_else(|| format!("'{url}': only ws:// URLs are supported"))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let with_port = if authority
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
    {
        authority.to_owned()
    } else {
        format!("{authority}:80")
    };
    let addr = with_port
        .to_socket_addrs()
        .map_err(|e| format!("'{authority}': {e}"))?
        .next()
        .ok_or_else(|| format!("'{authority}': no address"))?;
    Ok(Target {
        addr,
        host: authority.to_owned(),
        path: path.to_owned(),
    })
}

/// Raises the soft open-file limit to the hard limit; returns the limit now in force.
fn raise_fd_limit() -> Option<u64> {
    rlimit::increase_nofile_limit(u64::MAX).ok()
}

/// Loopback source addresses for `--sources` (none: let the kernel choose).
fn source_addresses(target: &Target, opts: &Options) -> io::Result<Vec<IpAddr>> {
    let wanted = opts.sources.unwrap_or(opts.clients.div_ceil(25_000));
    if wanted <= 1 {
        return Ok(Vec::new());
    }
    let loopback_v4 = matches!(target.addr.ip(), IpAddr::V4(ip) if ip.is_loopback());
    if !loopback_v4 || wanted > 250 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "--sources above 1 needs a 127.x.x.x server and at most 250 sources",
        ));
    }
    Ok((1..=wanted as u8)
        .map(|i| IpAddr::V4(Ipv4Addr::new(127, 0, 0, i)))
        .collect())
}

/// Opens `n` more connections (`--concurrency` at a time) and waits until each is open or
/// failed, at most a minute plus a millisecond per connection. Returns the seconds it took.
fn connect(
    pool: &mut Pool,
    n: usize,
    handler: &mut impl Handler,
    progress: &mut Progress,
) -> io::Result<f64> {
    let start = Instant::now();
    let give_up = start + Duration::from_secs(60) + Duration::from_millis(n as u64);
    pool.request(n);
    while pool.pending() > 0 && Instant::now() < give_up {
        pool.turn(Duration::from_millis(100), handler)?;
        progress.tick(|| {
            format!(
                "connecting: {} open, {} errors",
                pool.open(),
                pool.error_count()
            )
        });
    }
    Ok(start.elapsed().as_secs_f64())
}

/// A report that starts with what the connect phase measured.
fn after_connect(pool: &Pool, connect_secs: f64) -> Report {
    Report {
        connect_secs,
        connected: pool.opened,
        handshake: report::Latency::of(&pool.handshake_us),
        ..Report::default()
    }
}

/// The progress line on stderr, at most once a second.
pub struct Progress {
    /// Print at all.
    enabled: bool,
    /// When the run began.
    start: Instant,
    /// When the next line is due.
    next: Instant,
    /// CPU use since the last line.
    cpu: CpuMeter,
}

impl Progress {
    /// Starts the clock; `server` is `--pid`.
    pub fn new(enabled: bool, server: Option<u32>) -> Progress {
        let now = Instant::now();
        Progress {
            enabled,
            start: now,
            next: now + Duration::from_secs(1),
            cpu: CpuMeter::start(server),
        }
    }

    /// Prints `line()` with the time and CPU use if a second has passed.
    pub fn tick(&mut self, line: impl FnOnce() -> String) {
        let now = Instant::now();
        if !self.enabled || now < self.next {
            return;
        }
        self.next = now + Duration::from_secs(1);
        let cpu = self.cpu.lap();
        let own = cpu.generator;
        let server = match (cpu.server, cpu.server_wait) {
            (Some(c), Some(w)) if w >= 1.0 => format!(", server {c:.0}% (+{w:.0}% waiting)"),
            (Some(c), _) => format!(", server {c:.0}%"),
            _ => String::new(),
        };
        eprintln!(
            "[{:6.1}s] {}  (cpu: generator {own:.0}%{server})",
            now.duration_since(self.start).as_secs_f64(),
            line()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stamp reads back as written.
    #[test]
    fn stamp_round_trips() {
        let s = Stamp {
            sender: 7,
            seq: 123_456,
            sent_ns: 9_876_543_210,
        };
        let mut buf = [0u8; 20];
        s.write(&mut buf);
        assert_eq!(Stamp::read(&buf), Some(s));
        assert_eq!(Stamp::read(&buf[..15]), None);
    }

    /// URLs give the address, the Host header and the room.
    #[test]
    fn urls_parse_into_target() {
        let t = parse_url("ws://127.0.0.1:9001/kitchen").unwrap();
        assert_eq!(t.addr.port(), 9001);
        assert_eq!(t.host, "127.0.0.1:9001");
        assert_eq!(t.path, "/kitchen");
        assert_eq!(parse_url("ws://127.0.0.1:9001").unwrap().path, "/");
        assert!(parse_url("wss://127.0.0.1/").is_err());
    }

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
        assert!(args(&["--help"]).unwrap().is_none());
    }
}
