//! Both reports, rendered from the one table: buckets, formats, and the same names in each.

use super::*;

fn gauges() -> Gauges {
    Gauges {
        open: 2,
        sockets: 3,
        rooms: 1,
        queued_bytes: 10,
        behind: 0,
        paused: false,
        rooms_paused: 0,
        rss_bytes: None,
        redis: None,
    }
}

/// Close codes and statuses land in their own buckets, unknown ones in "other".
#[test]
fn codes_are_bucketed() {
    let mut st = Stats::default();
    let sent = |code| Tally {
        close_sent: Some(code),
        ..Tally::default()
    };
    st.count(sent(1009));
    st.count(sent(1009));
    st.count(sent(4000));
    st.count(Tally {
        answered: Some(404),
        ..Tally::default()
    });
    let json = st.to_json(&gauges());
    assert!(json.contains("\"1009\":2"), "{json}");
    assert!(json.contains("\"other\":1"));
    assert!(json.contains("\"404\":1"));
    assert_eq!(st.closes_with(1009), 2);
}

/// An echoed Close is one sent and one received; a slow consumer is counted once.
#[test]
fn a_tally_counts_each_thing_it_holds() {
    let mut st = Stats::default();
    st.count(Tally {
        close_sent: Some(1000),
        close_received: Some(1000),
        slow_consumer: true,
        ..Tally::default()
    });
    let text = st.to_prometheus(&gauges());
    assert!(text.contains("chatloop_closes_sent_total{code=\"1000\"} 1\n"));
    assert!(text.contains("chatloop_closes_received_total{code=\"1000\"} 1\n"));
    assert!(text.contains("chatloop_slow_consumers_total 1\n"));
}

/// The Prometheus text has HELP/TYPE lines and labelled samples.
#[test]
fn prometheus_text_is_well_formed() {
    let mut st = Stats {
        deliveries: 7,
        ..Stats::default()
    };
    st.count(Tally {
        close_sent: Some(1002),
        ..Tally::default()
    });
    let text = st.to_prometheus(&gauges());
    assert!(
        text.contains("# TYPE chatloop_deliveries_total counter\nchatloop_deliveries_total 7\n")
    );
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

/// `/stats` and `/metrics` name the same values, in the same order: every top-level JSON
/// key is a Prometheus metric and the other way round.
#[test]
fn both_reports_list_the_same_names() {
    let g = Gauges {
        rss_bytes: Some(4096),
        redis: Some(RedisCounters::default()),
        ..gauges()
    };
    let st = Stats::default();
    let json = st.to_json(&g);
    let mut json_names = Vec::new();
    let (mut depth, mut rest) = (0, json.as_str());
    while let Some(c) = rest.chars().next() {
        rest = &rest[c.len_utf8()..];
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            '"' => {
                let (name, after) = rest.split_once('"').unwrap();
                if depth == 1 {
                    json_names.push(name.to_owned());
                }
                rest = after;
            }
            _ => {}
        }
    }
    let text = st.to_prometheus(&g);
    let prometheus_names: Vec<String> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE chatloop_"))
        .map(|l| l.split(' ').next().unwrap().to_owned())
        .collect();
    assert_eq!(json_names, prometheus_names);
    assert_eq!(
        json_names.len(),
        METRICS.len(),
        "every entry, with Redis and /proc"
    );
}
