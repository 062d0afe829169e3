//! Every knob of `chatloop serve`, with its unit and safe default, and the flags that set them.
//!
//! The defaults are chosen for a small board on a LAN: they bound memory (queues, messages,
//! request heads, connection count) and time (handshakes, silent peers, stuck writers), so an
//! operator who passes no flag at all still runs a server no client can grow or stall.
//! How the limits relate is checked in [`Config::validate`].
//!
//! [`Config::from_args`] maps each flag to its knob; reading the command line itself (the
//! lexer and the value parsers) is `cli.rs`.

use crate::cli::{
    parse_addr, parse_bytes, parse_count, parse_level, parse_time, usage, Args, UsageError,
};
use crate::http::Policy;
use crate::wire::MAX_FRAME_HEADER;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

mod redis;
pub use redis::{parse_node_id, RedisOptions, DEFAULT_REDIS_QUEUE_BYTES, MAX_NODE_ID, REDIS_PORT};

/// What the server does with a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Qt's ChatServer: relay to every *other* member of the sender's room.
    Chat,
    /// Qt's echo server: send it back to its sender only.
    Echo,
}

/// Everything `Server` needs to know. Built by [`Config::from_args`] or [`Config::default`].
#[derive(Debug, Clone)]
pub struct Config {
    /// Address to listen on. Default `127.0.0.1:1234`, Qt's port; only this host can connect
    /// until the operator asks for more (`--listen 0.0.0.0:1234` or `[::]:1234`).
    pub listen: SocketAddr,
    /// Chat (default) or echo.
    pub mode: Mode,
    /// Open WebSocket connections at most; the next upgrade is answered `503`.
    pub max_connections: usize,
    /// Bytes one connection may have queued for sending; past it the connection is a slow
    /// consumer and is closed with 1008. Must hold one whole message frame. Past half of it
    /// the connection is *behind*, and reading pauses (see `lag_timeout`).
    pub max_queue_bytes: usize,
    /// Bytes queued in all outboxes together above which the server stops reading new messages
    /// (backpressure on the senders through TCP) until half of it has drained.
    pub high_water_bytes: usize,
    /// Largest message (after reassembling fragments) a client may send; larger → close 1009.
    pub max_message_bytes: usize,
    /// Largest HTTP request head; larger → 431.
    pub max_head_bytes: usize,
    /// Time a new connection has to send its whole request head (with TLS, the TLS handshake
    /// before it too); then → 408 (slowloris).
    pub handshake_timeout: Duration,
    /// Silence from a peer after which the server sends a Ping (RFC 6455 §5.5.2).
    /// Must be shorter than `idle_timeout`.
    pub ping_interval: Duration,
    /// Silence after which a peer is considered gone and closed with 1001.
    pub idle_timeout: Duration,
    /// Time queued bytes may sit without the peer taking any of them; then → 1008.
    pub write_timeout: Duration,
    /// Time a connection more than half-full may hold up reading for everyone (backpressure)
    /// before it is dropped as a slow consumer (1008); not while most connections are behind.
    pub lag_timeout: Duration,
    /// Time we wait for the peer's half of a closing handshake (its Close, then its FIN).
    pub close_timeout: Duration,
    /// On SIGINT/SIGTERM: time given to clients to receive their Close 1001 before exit.
    pub shutdown_grace: Duration,
    /// Open WebSocket connections per client IP address; the next upgrade gets 429. 0 = no
    /// limit (the default: behind a NAT or a proxy many clients share one address).
    pub max_per_ip: usize,
    /// Messages per second one connection may send (a token bucket with a burst of one
    /// second's worth); faster → close 1008. 0 = no limit (the default).
    pub max_messages_per_sec: u32,
    /// Which origins may upgrade (`--allowed-origin`, repeatable) and which subprotocols we
    /// speak (`--protocol`, repeatable). By default any origin: chatloop has no cookies or
    /// logins that a foreign page could ride on (RFC 6455 §10.2), so there is nothing to steal.
    pub policy: Policy,
    /// How often a one-line summary is logged at info; zero turns it off.
    pub summary_interval: Duration,
    /// Share rooms with other nodes through this Redis (`--redis`); `None`: this node alone.
    pub redis: Option<RedisOptions>,
    /// Serve https and wss with this certificate and key (`--tls-cert`, `--tls-key`); `None`:
    /// plain http and ws.
    pub tls: Option<TlsFiles>,
    /// Each connection's kernel send buffer in bytes (`SO_SNDBUF`); 0 leaves it to the
    /// kernel's autotuning, which grows it up to `net.ipv4.tcp_wmem`'s maximum (4 MiB by
    /// default). Bytes in it have left the outbox, so a reader that never reads is noticed
    /// (its outbox grows, then `lag_timeout` or `write_timeout` drop it) only once this and its
    /// own receive window are full. See [`DEFAULT_SEND_BUFFER`] for how the default was chosen.
    pub send_buffer: usize,
    /// Connections the kernel may hold completed but not yet accepted (`listen(2)`'s
    /// backlog). Capped by the kernel at `net.core.somaxconn` (a warning says so); past it, a
    /// client's SYN is dropped and it retries a second later.
    pub backlog: u32,
}

/// The PEM files of `--tls-cert` and `--tls-key`. Parsed in every build, so that a build
/// without the `tls` feature says so instead of calling the flags unknown. Read at start and
/// again on SIGHUP (`tls.rs`).
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// The certificate chain: the server's certificate first, then any intermediates.
    pub cert: PathBuf,
    /// The private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// The most one message costs an outbox beyond its payload: its frame header, and the chunk's
/// bookkeeping (`CHUNK_COST` in `outbox.rs`). A queue must hold one whole message plus this, or
/// the largest message allowed would drop its recipient as a slow consumer.
pub const MESSAGE_OVERHEAD: usize = MAX_FRAME_HEADER + crate::outbox::CHUNK_COST;

/// Default `--send-buffer`: 128 KiB, the smallest that cost no throughput in a sweep
/// (`benches/sockets.sh sndbuf`, docs/figures/sockets/sndbuf.txt, medians of 3): a client that
/// never reads hides about 400 KiB in the kernel before its outbox grows, against 3.9 MB with
/// the kernel's autotuning; fan-out of 64 B messages stayed within the noise of autotuning's,
/// and 16 KiB messages went faster. 16 and 32 KiB starved big messages (9.4k deliveries/s
/// against 171k), 64 KiB cost about a tenth of the 64 B rate.
pub const DEFAULT_SEND_BUFFER: usize = 128 << 10;
/// Default `--backlog`: a burst of a thousand connects waits in the kernel, not in SYN retries.
pub const DEFAULT_BACKLOG: u32 = 1024;

/// Default per-connection queue: 1 MiB, sixteen 64 KiB messages.
pub const DEFAULT_MAX_QUEUE_BYTES: usize = 1 << 20;
/// Default message cap in chat mode: 64 KiB.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 64 << 10;
/// Default message cap in echo mode: 16 MiB, the largest message of the Autobahn suite (9.*).
pub const ECHO_MAX_MESSAGE_BYTES: usize = 16 << 20;

impl Default for Config {
    fn default() -> Config {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 1234)),
            mode: Mode::Chat,
            max_connections: 10_000,
            max_queue_bytes: DEFAULT_MAX_QUEUE_BYTES,
            high_water_bytes: 64 << 20,
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            max_head_bytes: 8 << 10,
            handshake_timeout: Duration::from_secs(10),
            ping_interval: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
            write_timeout: Duration::from_secs(10),
            lag_timeout: Duration::from_secs(2),
            close_timeout: Duration::from_secs(5),
            shutdown_grace: Duration::from_secs(2),
            max_per_ip: 0,
            max_messages_per_sec: 0,
            policy: Policy::default(),
            summary_interval: Duration::from_secs(60),
            redis: None,
            tls: None,
            send_buffer: DEFAULT_SEND_BUFFER,
            backlog: DEFAULT_BACKLOG,
        }
    }
}

/// `chatloop serve --help`.
pub const SERVE_USAGE: &str = "\
Usage: chatloop serve [OPTIONS]

Runs the chat server: every message a client sends is relayed to every other client in the
same room (the room is the URL path: ws://host:1234/kitchen). With --echo, every message goes
back to its sender only.

Options:
  --listen ADDR:PORT          address to listen on [default: 127.0.0.1:1234]
  --echo                      echo server instead of chat
  --max-connections N         open WebSocket connections; more get HTTP 503 [default: 10000]
  --max-queue-bytes BYTES     queued output per connection; past it: close 1008 [default: 1MiB]
  --high-water-bytes BYTES    queued output in all; past it, reading pauses [default: 64MiB]
  --max-message-bytes BYTES   largest message accepted; larger: close 1009
                              [default: 64KiB; 16MiB with --echo]
  --max-head-bytes BYTES      largest HTTP request head; larger: HTTP 431 [default: 8KiB]
  --handshake-timeout TIME    time to send the request head (with TLS: the TLS handshake
                              and the head); then HTTP 408 [default: 10s]
  --ping-interval TIME        silence before the server sends a Ping [default: 30s]
  --idle-timeout TIME         silence before a peer is closed with 1001 [default: 60s]
  --write-timeout TIME        time queued output may sit untaken; then 1008 [default: 10s]
  --lag-timeout TIME          time one client over half its queue may hold everyone up
                              before it is dropped as a slow consumer (1008) [default: 2s]
  --close-timeout TIME        wait for the peer's Close and FIN when closing [default: 5s]
  --shutdown-grace TIME       on SIGINT/SIGTERM, time to deliver Close 1001 [default: 2s]
  --max-per-ip N              open connections per client address; more get HTTP 429
                              [default: 0 = no limit]
  --max-messages-per-sec N    messages per second per connection (burst: one second's
                              worth); faster: close 1008 [default: 0 = no limit]
  --allowed-origin ORIGIN     a browser Origin allowed to connect, e.g. https://chat.example;
                              repeatable; others get HTTP 403; requests without Origin
                              (non-browser clients) and this server's own page are
                              allowed [default: any origin]
  --protocol NAME             a subprotocol to accept when a client offers it; repeatable,
                              in order of preference [default: none]
  --send-buffer BYTES         each connection's kernel send buffer (SO_SNDBUF): bytes that
                              can sit in the kernel before a client that never reads is
                              noticed; 0 = the kernel's autotuning (up to 4MiB) [default: 128KiB]
  --backlog N                 connects the kernel holds until they are accepted (capped by
                              net.core.somaxconn) [default: 1024]
  --summary-interval TIME     how often to log a one-line summary; 0s = never [default: 60s]
  --redis URL                 share rooms with other nodes through Redis pub/sub:
                              redis://[[user]:password@]host[:port][/db]; a message sent on
                              any node reaches its room on every node [default: this node alone]
  --node-id ID                this node's name in what it publishes (letters, digits, . _ : -);
                              must differ between nodes [default: process id and start time]
  --redis-required            exit with an error if Redis is unreachable at start [default:
                              warn, relay locally and keep retrying]
  --redis-queue-bytes BYTES   commands waiting for a slow Redis; past it messages are relayed
                              locally only (counted as dropped) [default: 4MiB]
  --tls-cert FILE             serve https and wss with this certificate chain (PEM; the
                              server's certificate first); needs --tls-key. SIGHUP reloads
                              both files for new connections [default: plain http and ws]
  --tls-key FILE              the certificate's private key (PEM)
  --log-level LEVEL           error, warn, info, debug or trace [default: info]
  -h, --help                  print this help

BYTES takes a plain number or a suffix: 64KiB, 1MiB, 1GiB (also K, M, G, KB, MB).
TIME takes a number with a unit: 500ms, 10s, 2m.
";

/// What `chatloop serve` was asked to do.
#[derive(Debug)]
pub enum ServeCommand {
    /// Run with this config and log level.
    Run(Box<Config>, log::LevelFilter),
    /// Print [`SERVE_USAGE`].
    Help,
}

impl Config {
    /// Parses `chatloop serve`'s arguments (without the subcommand itself).
    pub fn from_args(args: impl IntoIterator<Item = String>) -> Result<ServeCommand, UsageError> {
        let mut c = Config::default();
        let mut level = log::LevelFilter::Info;
        let (mut message_set, mut queue_set) = (false, false);
        let (mut node_id, mut redis_required, mut redis_queue) = (None, false, None);
        let (mut tls_cert, mut tls_key) = (None, None);
        let mut args = Args::new(args);
        while let Some(flag) = args.next_flag()? {
            match flag.as_str() {
                "--listen" => c.listen = args.value(&flag, parse_addr)?,
                "--echo" => c.mode = Mode::Echo,
                "--max-connections" => c.max_connections = args.value(&flag, parse_count)?,
                "--max-queue-bytes" => {
                    c.max_queue_bytes = args.value(&flag, parse_bytes)?;
                    queue_set = true;
                }
                "--high-water-bytes" => c.high_water_bytes = args.value(&flag, parse_bytes)?,
                "--max-message-bytes" => {
                    c.max_message_bytes = args.value(&flag, parse_bytes)?;
                    message_set = true;
                }
                "--max-head-bytes" => c.max_head_bytes = args.value(&flag, parse_bytes)?,
                "--handshake-timeout" => c.handshake_timeout = args.value(&flag, parse_time)?,
                "--ping-interval" => c.ping_interval = args.value(&flag, parse_time)?,
                "--idle-timeout" => c.idle_timeout = args.value(&flag, parse_time)?,
                "--write-timeout" => c.write_timeout = args.value(&flag, parse_time)?,
                "--lag-timeout" => c.lag_timeout = args.value(&flag, parse_time)?,
                "--close-timeout" => c.close_timeout = args.value(&flag, parse_time)?,
                "--shutdown-grace" => c.shutdown_grace = args.value(&flag, parse_time)?,
                "--max-per-ip" => c.max_per_ip = args.value(&flag, parse_count)?,
                "--max-messages-per-sec" => {
                    c.max_messages_per_sec = args.value(&flag, |v| {
                        v.parse().map_err(|_| "expected a whole number".to_owned())
                    })?
                }
                "--allowed-origin" => {
                    let origin = args.value(&flag, |v| Ok(v.trim_end_matches('/').to_owned()))?;
                    c.policy.allowed_origins.push(origin);
                }
                "--protocol" => {
                    let name = args.value(&flag, |v| Ok(v.to_owned()))?;
                    c.policy.protocols.push(name);
                }
                "--send-buffer" => c.send_buffer = args.value(&flag, parse_bytes)?,
                "--backlog" => {
                    c.backlog = args.value(&flag, |v| {
                        v.parse()
                            .ok()
                            .filter(|&n| (1..=i32::MAX as u32).contains(&n))
                            .ok_or_else(|| "expected a whole number from 1".to_owned())
                    })?
                }
                "--summary-interval" => c.summary_interval = args.value(&flag, parse_time)?,
                "--redis" => c.redis = Some(args.value(&flag, RedisOptions::new)?),
                "--node-id" => node_id = Some(args.value(&flag, parse_node_id)?),
                "--redis-required" => redis_required = true,
                "--redis-queue-bytes" => redis_queue = Some(args.value(&flag, parse_bytes)?),
                "--tls-cert" => tls_cert = Some(args.value(&flag, |v| Ok(PathBuf::from(v)))?),
                "--tls-key" => tls_key = Some(args.value(&flag, |v| Ok(PathBuf::from(v)))?),
                "--log-level" => level = args.value(&flag, parse_level)?,
                "-h" | "--help" => return Ok(ServeCommand::Help),
                _ => {
                    return Err(usage!(
                        "unknown option '{flag}' (see 'chatloop serve --help')"
                    ))
                }
            }
        }
        if c.mode == Mode::Echo && !message_set {
            c.max_message_bytes = ECHO_MAX_MESSAGE_BYTES;
        }
        if !queue_set {
            // One whole frame must always fit in a queue (see `validate`).
            c.max_queue_bytes = c
                .max_queue_bytes
                .max(c.max_message_bytes + MESSAGE_OVERHEAD);
        }
        c.high_water_bytes = c.high_water_bytes.max(c.max_queue_bytes);
        match &mut c.redis {
            Some(r) => {
                r.node_id = node_id.unwrap_or_else(|| r.node_id.clone());
                r.required = redis_required;
                r.queue_bytes = redis_queue.unwrap_or(r.queue_bytes);
            }
            None if node_id.is_some() || redis_required || redis_queue.is_some() => {
                return Err(usage!(
                    "--node-id, --redis-required and --redis-queue-bytes need --redis"
                ))
            }
            None => {}
        }
        c.tls = match (tls_cert, tls_key) {
            (Some(cert), Some(key)) => Some(TlsFiles { cert, key }),
            (None, None) => None,
            _ => return Err(usage!("--tls-cert and --tls-key go together")),
        };
        c.validate()?;
        Ok(ServeCommand::Run(Box::new(c), level))
    }

    /// Checks how the limits relate; every rule here is a way a server could otherwise wedge.
    pub fn validate(&self) -> Result<(), UsageError> {
        if self.max_queue_bytes < self.max_message_bytes + MESSAGE_OVERHEAD {
            return Err(usage!(
                "--max-queue-bytes must hold one whole message: at least --max-message-bytes + {MESSAGE_OVERHEAD}"
            ));
        }
        if self.high_water_bytes < self.max_queue_bytes {
            return Err(usage!(
                "--high-water-bytes must be at least --max-queue-bytes"
            ));
        }
        if self.ping_interval >= self.idle_timeout {
            return Err(usage!(
                "--ping-interval must be shorter than --idle-timeout"
            ));
        }
        let zero = [
            ("--handshake-timeout", self.handshake_timeout),
            ("--ping-interval", self.ping_interval),
            ("--write-timeout", self.write_timeout),
            ("--lag-timeout", self.lag_timeout),
            ("--close-timeout", self.close_timeout),
        ];
        if let Some((name, _)) = zero.iter().find(|(_, d)| d.is_zero()) {
            return Err(usage!("{name} must be more than zero"));
        }
        if self.tls.is_some() && cfg!(not(feature = "tls")) {
            return Err(usage!(
                "--tls-cert: this chatloop was built without TLS support (cargo feature `tls`)"
            ));
        }
        if let Some(redis) = &self.redis {
            if cfg!(not(feature = "redis")) {
                return Err(usage!(
                    "--redis: this chatloop was built without Redis support (cargo feature `redis`)"
                ));
            }
            if self.mode == Mode::Echo {
                return Err(usage!(
                    "--redis shares chat rooms; it makes no sense with --echo"
                ));
            }
            // A message is published as its frame plus the node id and the channel name.
            if redis.queue_bytes < self.max_message_bytes + MAX_FRAME_HEADER + 1024 {
                return Err(usage!(
                    "--redis-queue-bytes must hold one whole message: at least --max-message-bytes + 1KiB"
                ));
            }
        }
        // setsockopt takes an int, and Linux doubles SO_SNDBUF's value.
        if self.send_buffer > (i32::MAX / 2) as usize {
            return Err(usage!("--send-buffer must be at most 1GiB"));
        }
        if self.max_connections == 0 || self.max_head_bytes < 64 {
            return Err(usage!(
                "--max-connections must be at least 1 and --max-head-bytes at least 64"
            ));
        }
        Ok(())
    }

    /// How often the server checks deadlines: a quarter of the shortest timeout, between 10 ms
    /// and 1 s. Deadlines are therefore kept to within one tick.
    pub fn tick(&self) -> Duration {
        [
            self.handshake_timeout,
            self.ping_interval,
            self.write_timeout,
            self.lag_timeout,
            self.close_timeout,
        ]
        .into_iter()
        .min()
        .unwrap_or(Duration::from_secs(1))
        .div_f32(4.0)
        .clamp(Duration::from_millis(10), Duration::from_secs(1))
    }
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
