//! Counters an operator reads at `GET /stats` (JSON) and `GET /metrics` (Prometheus text).
//!
//! Plain `u64` fields, bumped by the server: one thread owns them, so no atomics. Nothing here
//! runs per message except an increment; the rendering happens only when someone asks.
//!
//! Gauges that the server already knows (connections open, rooms, bytes queued) are passed to
//! the renderers as a [`Gauges`] snapshot rather than kept twice.

use std::fmt::Write as _;

/// Close codes we count separately (RFC 6455 §7.4.1); anything else goes under "other".
const CLOSE_CODES: [u16; 7] = [1000, 1001, 1002, 1007, 1008, 1009, 1011];

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
    /// Deliveries: one message queued for one recipient.
    pub deliveries: u64,
    /// Bytes written to sockets.
    pub bytes_out: u64,
    /// Connections dropped as slow consumers (over their cap, lagging or stuck).
    pub slow_consumers: u64,
    /// Close codes the server sent, indexed like `CLOSE_CODES`, then "other".
    closes_sent: [u64; CLOSE_CODES.len() + 1],
    /// HTTP statuses answered instead of an upgrade, indexed like `HTTP_STATUSES`, then "other".
    http_answers: [u64; HTTP_STATUSES.len() + 1],
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
    /// Reading is paused for backpressure.
    pub paused: bool,
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
    /// Counts a Close frame the server sent with `code`.
    pub fn close_sent(&mut self, code: u16) {
        let i = CLOSE_CODES
            .iter()
            .position(|&c| c == code)
            .unwrap_or(CLOSE_CODES.len());
        self.closes_sent[i] += 1;
    }

    /// Counts an HTTP answer with `status` (given instead of an upgrade).
    pub fn http_answer(&mut self, status: u16) {
        let i = HTTP_STATUSES
            .iter()
            .position(|&c| c == status)
            .unwrap_or(HTTP_STATUSES.len());
        self.http_answers[i] += 1;
    }

    /// Close frames sent with `code` so far.
    pub fn closes_with(&self, code: u16) -> u64 {
        CLOSE_CODES
            .iter()
            .position(|&c| c == code)
            .map_or(0, |i| self.closes_sent[i])
    }

    /// The report as one JSON object.
    pub fn to_json(&self, g: &Gauges) -> String {
        let mut s = String::from("{");
        let _ = write!(
            s,
            "\"connections_open\":{},\"sockets\":{},\"rooms\":{},\"queued_bytes\":{},\
             \"behind\":{},\"reading_paused\":{},\"accepted_total\":{},\"refused_total\":{},\
             \"upgraded_total\":{},\"messages_in_total\":{},\"bytes_in_total\":{},\
             \"deliveries_total\":{},\"bytes_out_total\":{},\"slow_consumers_total\":{}",
            g.open,
            g.sockets,
            g.rooms,
            g.queued_bytes,
            g.behind,
            g.paused,
            self.accepted,
            self.refused,
            self.upgraded,
            self.messages_in,
            self.bytes_in,
            self.deliveries,
            self.bytes_out,
            self.slow_consumers
        );
        s.push_str(",\"closes_sent\":{");
        push_labelled(&mut s, &CLOSE_CODES, &self.closes_sent, ",", |k, v| {
            format!("\"{k}\":{v}")
        });
        s.push_str("},\"http_answers\":{");
        push_labelled(&mut s, &HTTP_STATUSES, &self.http_answers, ",", |k, v| {
            format!("\"{k}\":{v}")
        });
        s.push('}');
        if let Some(rss) = g.rss_bytes {
            let _ = write!(s, ",\"rss_bytes\":{rss}");
        }
        if let Some(r) = g.redis {
            let _ = write!(
                s,
                ",\"redis_connected\":{},\"redis_published_total\":{},\
                 \"redis_received_total\":{},\"redis_dropped_total\":{},\
                 \"redis_reconnects_total\":{}",
                r.connected, r.published, r.received, r.dropped, r.reconnects
            );
        }
        s.push_str("}\n");
        s
    }

    /// The report in the Prometheus text exposition format (version 0.0.4).
    pub fn to_prometheus(&self, g: &Gauges) -> String {
        let mut s = String::new();
        let mut metric = |name: &str, kind: &str, help: &str, value: u64| {
            let _ = write!(
                s,
                "# HELP chatloop_{name} {help}\n# TYPE chatloop_{name} {kind}\nchatloop_{name} {value}\n"
            );
        };
        metric(
            "connections_open",
            "gauge",
            "Open WebSocket connections.",
            g.open as u64,
        );
        metric(
            "sockets",
            "gauge",
            "Sockets held, in any phase.",
            g.sockets as u64,
        );
        metric("rooms", "gauge", "Rooms with members.", g.rooms as u64);
        metric(
            "queued_bytes",
            "gauge",
            "Bytes queued in all outboxes.",
            g.queued_bytes as u64,
        );
        metric(
            "behind",
            "gauge",
            "Connections over half their queue cap.",
            g.behind as u64,
        );
        metric(
            "reading_paused",
            "gauge",
            "1 while reading is paused for backpressure.",
            g.paused as u64,
        );
        metric(
            "accepted_total",
            "counter",
            "TCP connections accepted.",
            self.accepted,
        );
        metric(
            "refused_total",
            "counter",
            "TCP connections refused at accept.",
            self.refused,
        );
        metric(
            "upgraded_total",
            "counter",
            "WebSocket upgrades completed.",
            self.upgraded,
        );
        metric(
            "messages_in_total",
            "counter",
            "Data messages received.",
            self.messages_in,
        );
        metric(
            "bytes_in_total",
            "counter",
            "Bytes of received messages, framed.",
            self.bytes_in,
        );
        metric(
            "deliveries_total",
            "counter",
            "Messages queued for a recipient.",
            self.deliveries,
        );
        metric(
            "bytes_out_total",
            "counter",
            "Bytes written to sockets.",
            self.bytes_out,
        );
        metric(
            "slow_consumers_total",
            "counter",
            "Connections dropped as slow consumers.",
            self.slow_consumers,
        );
        if let Some(rss) = g.rss_bytes {
            metric(
                "resident_memory_bytes",
                "gauge",
                "Resident memory of the process.",
                rss,
            );
        }
        if let Some(r) = g.redis {
            metric(
                "redis_connected",
                "gauge",
                "1 while the Redis bridge is connected and subscribed.",
                r.connected as u64,
            );
            metric(
                "redis_published_total",
                "counter",
                "Messages published to Redis.",
                r.published,
            );
            metric(
                "redis_received_total",
                "counter",
                "Messages from other nodes delivered locally.",
                r.received,
            );
            metric(
                "redis_dropped_total",
                "counter",
                "Messages that did not cross nodes (Redis down or slow, or undeliverable).",
                r.dropped,
            );
            metric(
                "redis_reconnects_total",
                "counter",
                "Connections to Redis re-established after a loss.",
                r.reconnects,
            );
        }
        s.push_str("# HELP chatloop_closes_sent_total Close frames sent, by close code.\n");
        s.push_str("# TYPE chatloop_closes_sent_total counter\n");
        push_labelled(&mut s, &CLOSE_CODES, &self.closes_sent, "", |k, v| {
            format!("chatloop_closes_sent_total{{code=\"{k}\"}} {v}\n")
        });
        s.push_str(
            "# HELP chatloop_http_answers_total HTTP answers instead of an upgrade, by status.\n",
        );
        s.push_str("# TYPE chatloop_http_answers_total counter\n");
        push_labelled(&mut s, &HTTP_STATUSES, &self.http_answers, "", |k, v| {
            format!("chatloop_http_answers_total{{status=\"{k}\"}} {v}\n")
        });
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

/// Writes one `item(label, value)` per bucket, separated by `sep`; the last bucket is "other".
fn push_labelled(
    s: &mut String,
    labels: &[u16],
    values: &[u64],
    sep: &str,
    item: impl Fn(&str, u64) -> String,
) {
    let names = labels
        .iter()
        .map(|l| l.to_string())
        .chain(std::iter::once("other".to_owned()));
    for (i, (name, &value)) in names.zip(values).enumerate() {
        if i > 0 {
            s.push_str(sep);
        }
        s.push_str(&item(&name, value));
    }
}

/// Resident memory of this process in bytes (Linux: `/proc/self/statm`, in pages; we assume
/// 4 KiB pages, true on the x86-64 and ARM boards we target). `None` elsewhere.
pub fn rss_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gauges() -> Gauges {
        Gauges {
            open: 2,
            sockets: 3,
            rooms: 1,
            queued_bytes: 10,
            behind: 0,
            paused: false,
            rss_bytes: None,
            redis: None,
        }
    }

    /// Close codes and statuses land in their own buckets, unknown ones in "other".
    #[test]
    fn codes_are_bucketed() {
        let mut st = Stats::default();
        st.close_sent(1009);
        st.close_sent(1009);
        st.close_sent(4000);
        st.http_answer(404);
        let json = st.to_json(&gauges());
        assert!(json.contains("\"1009\":2"), "{json}");
        assert!(json.contains("\"other\":1"));
        assert!(json.contains("\"404\":1"));
        assert_eq!(st.closes_with(1009), 2);
    }

    /// The Prometheus text has HELP/TYPE lines and labelled samples.
    #[test]
    fn prometheus_text_is_well_formed() {
        let mut st = Stats {
            deliveries: 7,
            ..Stats::default()
        };
        st.close_sent(1002);
        let text = st.to_prometheus(&gauges());
        assert!(text
            .contains("# TYPE chatloop_deliveries_total counter\nchatloop_deliveries_total 7\n"));
        assert!(text.contains("chatloop_closes_sent_total{code=\"1002\"} 1\n"));
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let (name, value) = line.rsplit_once(' ').unwrap();
            assert!(name.starts_with("chatloop_"), "{line}");
            value.parse::<f64>().unwrap();
        }
    }

    /// The Redis counters appear in both reports only when the bridge runs.
    #[test]
    fn redis_counters_appear_only_with_the_bridge() {
        let st = Stats::default();
        assert!(!st.to_json(&gauges()).contains("redis"));
        assert!(!st.to_prometheus(&gauges()).contains("redis"));
        let g = Gauges {
            redis: Some(RedisCounters {
                published: 3,
                dropped: 1,
                connected: true,
                ..RedisCounters::default()
            }),
            ..gauges()
        };
        let json = st.to_json(&g);
        assert!(json.contains("\"redis_connected\":true"), "{json}");
        assert!(json.contains("\"redis_published_total\":3"), "{json}");
        assert!(json.contains("\"redis_dropped_total\":1"), "{json}");
        let text = st.to_prometheus(&g);
        assert!(text.contains("chatloop_redis_connected 1\n"), "{text}");
        assert!(
            text.contains("chatloop_redis_reconnects_total 0\n"),
            "{text}"
        );
    }
}
