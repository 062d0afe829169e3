//! `chatloop bench`: a load generator for WebSocket chat and echo servers, in one thread.
//!
//! Like the server, the generator is one hand-written `mio` loop (no async runtime, no thread
//! per connection), so one core drives thousands of connections and its own cost stays small
//! and measurable. The files:
//!
//! | file | what |
//! |---|---|
//! | this one | the message stamp, `run`, the scenarios' shared steps (connect, progress) |
//! | [`options`] | the command line: scenarios, options, defaults, checks |
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
pub mod options;
pub mod pool;
pub mod report;
pub mod simple;

use client::Target;
use pool::{Handler, Pool};
use report::{CpuMeter, Report};
use std::io;
use std::net::{IpAddr, Ipv4Addr, ToSocketAddrs};
use std::time::{Duration, Instant};

pub use options::{Options, Scenario, BENCH_USAGE};
pub use report::{Latency, RampStep};

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
}
