//! Counters an operator reads at `GET /stats` (JSON) and `GET /metrics` (Prometheus text).
//!
//! Plain `u64` fields, bumped by the server: one thread owns them, so no atomics. Nothing here
//! runs per message except an increment; the rendering happens only when someone asks.
//!
//! Gauges that the server already knows (connections open, rooms, bytes queued) are passed to
//! the renderers as a [`Gauges`] snapshot rather than kept twice.
//!
//! Both reports are rendered from one table, `METRICS`: each entry has one name (the JSON
//! key, and the Prometheus name after `chatloop_`), so a value cannot be in one report and
//! missing from the other.

use std::fmt::Write as _;
use Value::{Count, Flag};

/// Close codes we count separately (RFC 6455 §7.4.1; 1005 stands for a Close without a code,
/// §7.1.5); anything else goes under "other".
const CLOSE_CODES: [u16; 8] = [1000, 1001, 1002, 1005, 1007, 1008, 1009, 1011];

/// HTTP statuses we answer instead of upgrading.
const HTTP_STATUSES: [u16; 9] = [400, 403, 404, 405, 408, 426, 429, 431, 503];

/// Everything counted since the server started.
#[derive(Debug, Default, Clone)]
pub struct Stats {
    /// TCP connections accepted.
    pub accepted: u64,
    /// Connections refused at accept (too many sockets open).
    pub refused: u64,
    /// WebSocket upgrades completed.
    pub upgraded: u64,
    /// Data messages received from clients.
    pub messages_in: u64,
    /// Bytes of those messages as framed on the wire out (what they cost to relay).
    pub bytes_in: u64,
    /// Deliveries: one message queued for one recipient (a recipient already closing, or
    /// dropped as a slow consumer by this very message, is not a delivery).
    pub deliveries: u64,
    /// Bytes written to sockets.
    pub bytes_out: u64,
    /// Connections dropped as slow consumers (over their cap, lagging or stuck).
    pub slow_consumers: u64,
    /// Close frames the server sent (its own, and echoes of the peer's), indexed like
    /// `CLOSE_CODES`, then "other".
    closes_sent: [u64; CLOSE_CODES.len() + 1],
    /// Close frames peers sent (first, or in answer to ours), indexed the same way.
    closes_received: [u64; CLOSE_CODES.len() + 1],
    /// HTTP statuses answered instead of an upgrade, indexed like `HTTP_STATUSES`, then "other".
    http_answers: [u64; HTTP_STATUSES.len() + 1],
}

/// What one connection did that the counters count, since the server last took it
/// (`Conn::take_tally`). The server takes it at the end of every turn that touched the
/// connection, so a Close is counted in the turn it is queued or read, not when its slot is
/// freed (which can be `--close-timeout` later). Each field happens at most once per connection.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    /// A Close frame we queued, ours or the echo of the peer's (RFC 6455 §5.5.1), by code.
    pub close_sent: Option<u16>,
    /// The peer's Close frame, by code (1005 if it had none).
    pub close_received: Option<u16>,
    /// The HTTP status answered instead of an upgrade.
    pub answered: Option<u16>,
    /// Dropped as a slow consumer.
    pub slow_consumer: bool,
}

/// Values the server computes on demand for a report.
#[derive(Debug, Clone, Copy)]
pub struct Gauges {
    /// Open WebSocket connections.
    pub open: usize,
    /// All sockets held, including those still in HTTP or closing.
    pub sockets: usize,
    /// Rooms with at least one member.
    pub rooms: usize,
    /// Bytes queued in all outboxes.
    pub queued_bytes: usize,
    /// Connections over half their queue cap.
    pub behind: usize,
    /// The whole server stopped reading: its outboxes hold more than `--high-water-bytes`.
    pub paused: bool,
    /// Rooms not read because a member is behind (as of their last check).
    pub rooms_paused: usize,
    /// Resident memory of the process in bytes, if the platform tells (Linux `/proc`).
    pub rss_bytes: Option<u64>,
    /// The Redis bridge's counters, when the node runs with `--redis`.
    pub redis: Option<RedisCounters>,
}

/// What the Redis bridge (`bridge.rs`) counts; it keeps these itself and the server copies
/// them into [`Gauges`] for a report.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RedisCounters {
    /// Messages written to the publish queue toward Redis.
    pub published: u64,
    /// Messages from other nodes delivered to a local room.
    pub received: u64,
    /// Messages not published (Redis down, or its queue over `--redis-queue-bytes`) or
    /// received in a form we could not deliver: they reached local members only.
    pub dropped: u64,
    /// Connections to Redis re-established after a loss (the first one at start not counted).
    pub reconnects: u64,
    /// Both connections are up and subscribed: messages cross nodes right now.
    pub connected: bool,
}

impl Stats {
    /// Counts what a connection did since it was last counted.
    pub fn count(&mut self, tally: Tally) {
        if let Some(code) = tally.close_sent {
            self.closes_sent[bucket(&CLOSE_CODES, code)] += 1;
        }
        if let Some(code) = tally.close_received {
            self.closes_received[bucket(&CLOSE_CODES, code)] += 1;
        }
        if let Some(status) = tally.answered {
            self.http_answers[bucket(&HTTP_STATUSES, status)] += 1;
        }
        self.slow_consumers += u64::from(tally.slow_consumer);
    }

    /// Close frames sent with `code` so far.
    pub fn closes_with(&self, code: u16) -> u64 {
        self.closes_sent[bucket(&CLOSE_CODES, code)]
    }

    /// The report as one JSON object: every entry of `METRICS`, by name.
    pub fn to_json(&self, g: &Gauges) -> String {
        let mut s = String::from("{");
        for m in METRICS {
            let sep = if s.len() > 1 { "," } else { "" };
            match m.value {
                Reading::One(read) => {
                    if let Some(v) = read(self, g) {
                        let _ = write!(s, "{sep}\"{}\":{}", m.name, v.json());
                    }
                }
                Reading::ByLabel { keys, values, .. } => {
                    let _ = write!(s, "{sep}\"{}\":{{", m.name);
                    for (i, (key, value)) in labelled(keys, values(self)).enumerate() {
                        let sep = if i > 0 { "," } else { "" };
                        let _ = write!(s, "{sep}\"{key}\":{value}");
                    }
                    s.push('}');
                }
            }
        }
        s.push_str("}\n");
        s
    }

    /// The report in the Prometheus text exposition format (version 0.0.4): every entry of
    /// `METRICS`, named `chatloop_` and its name.
    pub fn to_prometheus(&self, g: &Gauges) -> String {
        let mut s = String::new();
        for m in METRICS {
            let head = |s: &mut String| {
                let (name, help, kind) = (m.name, m.help, m.kind.name());
                let _ = write!(
                    s,
                    "# HELP chatloop_{name} {help}\n# TYPE chatloop_{name} {kind}\n"
                );
            };
            match m.value {
                Reading::One(read) => {
                    if let Some(v) = read(self, g) {
                        head(&mut s);
                        let _ = writeln!(s, "chatloop_{} {}", m.name, v.prometheus());
                    }
                }
                Reading::ByLabel {
                    label,
                    keys,
                    values,
                } => {
                    head(&mut s);
                    for (key, value) in labelled(keys, values(self)) {
                        let _ = writeln!(s, "chatloop_{}{{{label}=\"{key}\"}} {value}", m.name);
                    }
                }
            }
        }
        s
    }

    /// One line for the periodic log summary.
    pub fn summary(&self, g: &Gauges) -> String {
        let mut line = format!(
            "{} open, {} rooms, {} in, {} delivered, {} queued bytes, {} slow consumers dropped",
            g.open, g.rooms, self.messages_in, self.deliveries, g.queued_bytes, self.slow_consumers
        );
        if let Some(r) = g.redis {
            let _ = write!(
                line,
                "; redis {}: {} published, {} received, {} dropped",
                if r.connected { "up" } else { "down" },
                r.published,
                r.received,
                r.dropped
            );
        }
        line
    }
}

/// Where `key` is counted: its index in `keys`, or the last bucket, "other".
fn bucket(keys: &[u16], key: u16) -> usize {
    keys.iter().position(|&k| k == key).unwrap_or(keys.len())
}

/// Each bucket's label and value; the last bucket is "other".
fn labelled<'a>(keys: &'a [u16], values: &'a [u64]) -> impl Iterator<Item = (String, u64)> + 'a {
    let names = keys
        .iter()
        .map(|k| k.to_string())
        .chain(std::iter::once("other".to_owned()));
    names.zip(values.iter().copied())
}

/// A value as both reports show it.
#[derive(Debug, Clone, Copy)]
enum Value {
    /// A number.
    Count(u64),
    /// Yes or no: JSON `true`/`false`, Prometheus `1`/`0`.
    Flag(bool),
}

impl Value {
    fn json(self) -> String {
        match self {
            Value::Count(n) => n.to_string(),
            Value::Flag(b) => b.to_string(),
        }
    }

    fn prometheus(self) -> u64 {
        match self {
            Value::Count(n) => n,
            Value::Flag(b) => b.into(),
        }
    }
}

/// Prometheus' metric types that we use.
#[derive(Debug, Clone, Copy)]
enum Kind {
    /// Goes up and down.
    Gauge,
    /// Only goes up, from the start of the process.
    Counter,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Gauge => "gauge",
            Kind::Counter => "counter",
        }
    }
}

/// Reads one value, or `None` where it does not apply.
type ReadOne = fn(&Stats, &Gauges) -> Option<Value>;

/// How an entry reads its value(s).
#[derive(Clone, Copy)]
enum Reading {
    /// One value, or `None` where it does not apply (no Redis bridge, no `/proc`): then the
    /// entry is left out of both reports.
    One(ReadOne),
    /// One value per bucket of `keys` (then "other"): a JSON object, or Prometheus samples
    /// labelled `label`.
    ByLabel {
        /// The Prometheus label's name.
        label: &'static str,
        /// The buckets' keys.
        keys: &'static [u16],
        /// The buckets' values, one more than `keys` ("other").
        values: fn(&Stats) -> &[u64],
    },
}

/// One entry of both reports.
struct Metric {
    /// The JSON key; `chatloop_` and this is the Prometheus name.
    name: &'static str,
    /// Prometheus' TYPE.
    kind: Kind,
    /// Prometheus' HELP.
    help: &'static str,
    /// Where the value comes from.
    value: Reading,
}

/// A table entry with one gauge value.
const fn gauge(name: &'static str, help: &'static str, read: ReadOne) -> Metric {
    one(Kind::Gauge, name, help, read)
}

/// A table entry with one counter value.
const fn counter(name: &'static str, help: &'static str, read: ReadOne) -> Metric {
    one(Kind::Counter, name, help, read)
}

/// A table entry with one value.
const fn one(kind: Kind, name: &'static str, help: &'static str, read: ReadOne) -> Metric {
    Metric {
        name,
        kind,
        help,
        value: Reading::One(read),
    }
}

/// A table entry with one value per bucket (a labelled Prometheus counter).
const fn by_label(
    name: &'static str,
    help: &'static str,
    label: &'static str,
    keys: &'static [u16],
    values: fn(&Stats) -> &[u64],
) -> Metric {
    Metric {
        name,
        kind: Kind::Counter,
        help,
        value: Reading::ByLabel {
            label,
            keys,
            values,
        },
    }
}

/// Every entry of `/stats` and `/metrics`, in order: one table, so a value cannot be in one
/// report and missing from the other.
#[rustfmt::skip] // one entry per line reads as the table it is
const METRICS: &[Metric] = &[
    gauge("connections_open", "Open WebSocket connections.", |_, g| Some(Count(g.open as u64))),
    gauge("sockets", "Sockets held, in any phase.", |_, g| Some(Count(g.sockets as u64))),
    gauge("rooms", "Rooms with members.", |_, g| Some(Count(g.rooms as u64))),
    gauge("queued_bytes", "Bytes held by all outboxes (queued bytes and each chunk's cost).",
        |_, g| Some(Count(g.queued_bytes as u64))),
    gauge("behind", "Connections over half their queue cap.", |_, g| Some(Count(g.behind as u64))),
    gauge("reading_paused", "1 while the whole server stops reading (past high water).",
        |_, g| Some(Flag(g.paused))),
    gauge("rooms_paused", "Rooms not read while a member is behind.",
        |_, g| Some(Count(g.rooms_paused as u64))),
    counter("accepted_total", "TCP connections accepted.", |s, _| Some(Count(s.accepted))),
    counter("refused_total", "TCP connections refused at accept.", |s, _| Some(Count(s.refused))),
    counter("upgraded_total", "WebSocket upgrades completed.", |s, _| Some(Count(s.upgraded))),
    counter("messages_in_total", "Data messages received.", |s, _| Some(Count(s.messages_in))),
    counter("bytes_in_total", "Bytes of received messages, framed.",
        |s, _| Some(Count(s.bytes_in))),
    counter("deliveries_total", "Messages queued for a recipient.",
        |s, _| Some(Count(s.deliveries))),
    counter("bytes_out_total", "Bytes written to sockets.", |s, _| Some(Count(s.bytes_out))),
    counter("slow_consumers_total", "Connections dropped as slow consumers.",
        |s, _| Some(Count(s.slow_consumers))),
    by_label("closes_sent_total", "Close frames sent (ours and echoes), by close code.",
        "code", &CLOSE_CODES, |s| &s.closes_sent),
    by_label("closes_received_total", "Close frames received from peers, by close code.",
        "code", &CLOSE_CODES, |s| &s.closes_received),
    by_label("http_answers_total", "HTTP answers instead of an upgrade, by status.",
        "status", &HTTP_STATUSES, |s| &s.http_answers),
    gauge("resident_memory_bytes", "Resident memory of the process.",
        |_, g| g.rss_bytes.map(Count)),
    gauge("redis_connected", "1 while the Redis bridge is connected and subscribed.",
        |_, g| g.redis.map(|r| Flag(r.connected))),
    counter("redis_published_total", "Messages published to Redis.",
        |_, g| g.redis.map(|r| Count(r.published))),
    counter("redis_received_total", "Messages from other nodes delivered locally.",
        |_, g| g.redis.map(|r| Count(r.received))),
    counter("redis_dropped_total",
        "Messages that did not cross nodes (Redis down or slow, or undeliverable).",
        |_, g| g.redis.map(|r| Count(r.dropped))),
    counter("redis_reconnects_total", "Connections to Redis re-established after a loss.",
        |_, g| g.redis.map(|r| Count(r.reconnects))),
];

/// Resident memory of this process in bytes (Linux: `/proc/self/statm`, in pages; we assume
/// 4 KiB pages, true on the x86-64 and ARM boards we target). `None` elsewhere.
pub fn rss_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

#[cfg(test)]
#[path = "stats_tests.rs"]
mod tests;
