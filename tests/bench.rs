//! The load generator (`chatloop bench`, crates/chatloop-bench) against an in-process server:
//! every scenario runs briefly and its report must add up. No speed is asserted: the machine
//! may be busy.

#![cfg(feature = "bench")]

mod common;

use chatloop::Mode;
use chatloop_bench::{self as bench, Options, Scenario};
use common::TestServer;
use std::time::Duration;

/// Options for a short, quiet run of `scenario` against `server`'s room `/bench`.
fn quick(scenario: Scenario, server: &TestServer) -> Options {
    let mut o = Options::new(scenario, &server.url("/bench"));
    o.progress = false;
    o.warmup = Duration::from_millis(200);
    o.duration = Duration::from_secs(1);
    o
}

/// Fixed-rate fan-out: every message reaches every other client, in order, nothing lost.
#[test]
fn fanout_at_fixed_rate_delivers_every_message_in_order() {
    let server = TestServer::start();
    let mut o = quick(Scenario::Fanout, &server);
    (o.clients, o.senders, o.rate) = (20, 2, Some(20.0));
    let r = bench::run(&o).expect("run");
    assert_eq!(r.connected, 20);
    assert_eq!(r.errors(), 0, "{:?}", r.failures);
    assert!(r.sent >= 30, "2 senders × 20/s × 1 s, sent {}", r.sent);
    assert_eq!(
        r.expected,
        r.sent * 19,
        "each message goes to the 19 others"
    );
    assert_eq!(r.received, r.expected);
    assert_eq!(r.lost(), 0);
    assert_eq!(r.out_of_order, 0);
    assert_eq!(r.echoed_to_sender, 0, "chat mode relays to others only");
    assert_eq!(r.latency.expect("latency").count, r.received);
    assert_eq!(r.faults(), Vec::<String>::new());
}

/// Text messages (`--text`, the stamp in hex): relayed and checked like binary ones.
#[test]
fn fanout_with_text_messages_delivers_every_message() {
    let server = TestServer::start();
    let mut o = quick(Scenario::Fanout, &server);
    (o.clients, o.senders, o.window) = (10, 3, 4);
    o.kind = bench::stamp::MessageKind::Text;
    let r = bench::run(&o).expect("run");
    assert!(r.sent > 0);
    assert_eq!(r.received, r.sent * 9);
    assert_eq!(r.malformed, 0, "every text stamp read back");
    assert_eq!(r.faults(), Vec::<String>::new());
}

/// Closed-loop fan-out where every client sends: the window keeps going, nothing is lost.
#[test]
fn fanout_closed_loop_with_every_client_sending_loses_nothing() {
    let server = TestServer::start();
    let mut o = quick(Scenario::Fanout, &server);
    (o.clients, o.senders, o.window) = (10, 10, 4);
    let r = bench::run(&o).expect("run");
    assert_eq!(r.errors(), 0, "{:?}", r.failures);
    assert!(r.sent > 0);
    assert_eq!(r.expected, r.sent * 9);
    assert_eq!(r.received, r.expected);
    assert_eq!(r.out_of_order, 0);
    assert!(r.rate > 0.0);
}

/// Against an echo server, fan-out sees its own messages come back and counts them apart.
#[test]
fn fanout_counts_messages_echoed_to_their_sender_apart() {
    let server = TestServer::with(|c| c.mode = Mode::Echo);
    let mut o = quick(Scenario::Fanout, &server);
    (o.clients, o.senders, o.rate) = (4, 2, Some(20.0));
    let r = bench::run(&o).expect("run");
    assert!(r.echoed_to_sender > 0);
    assert_eq!(r.received, 0, "an echo server delivers nothing to others");
    assert_eq!(r.lost(), r.expected);
    assert!(
        r.faults().iter().any(|f| f.ends_with(" lost")),
        "{:?}",
        r.faults()
    );
}

/// Echo: one message in flight per client, every round trip measured.
#[test]
fn echo_measures_round_trips() {
    let server = TestServer::with(|c| c.mode = Mode::Echo);
    let mut o = quick(Scenario::Echo, &server);
    o.clients = 5;
    let r = bench::run(&o).expect("run");
    assert_eq!(r.errors(), 0, "{:?}", r.failures);
    assert!(r.received > 0 && r.rate > 0.0);
    assert_eq!(r.received, r.sent, "every answer drained");
    assert_eq!(r.malformed, 0);
    assert_eq!(r.latency.expect("rtt").count, r.received);
}

/// Idle: connections are held for the whole run and the server's memory is read.
#[test]
fn idle_holds_connections_and_reads_server_memory() {
    let server = TestServer::start();
    let mut o = quick(Scenario::Idle, &server);
    o.clients = 50;
    o.duration = Duration::from_millis(500);
    // The server runs in this process, so its memory is ours.
    o.pid = Some(std::process::id());
    let r = bench::run(&o).expect("run");
    assert_eq!(r.connected, 50);
    assert_eq!(r.errors(), 0, "{:?}", r.failures);
    assert!(r.server_rss_before_kib.is_some() && r.server_rss_after_kib.is_some());
    assert!(r.kib_per_connection().is_some());
}

/// Connect: handshakes keep completing, each followed by a clean close.
#[test]
fn connect_completes_handshakes() {
    let server = TestServer::start();
    let mut o = quick(Scenario::Connect, &server);
    o.concurrency = 4;
    let r = bench::run(&o).expect("run");
    assert_eq!(r.errors(), 0, "{:?}", r.failures);
    assert!(r.connected > 0 && r.rate > 0.0);
    assert_eq!(r.handshake.count, r.connected);
}

/// Ramp: steps grow to the maximum while latency stays under the limit.
#[test]
fn ramp_passes_each_step_under_the_limit() {
    let server = TestServer::start();
    let mut o = quick(Scenario::Ramp, &server);
    (o.clients, o.step, o.rate) = (20, 10, Some(20.0));
    o.duration = Duration::from_millis(500);
    o.warmup = Duration::from_millis(100);
    o.limit = Duration::from_secs(2);
    let r = bench::run(&o).expect("run");
    let clients: Vec<usize> = r.steps.iter().map(|s| s.clients).collect();
    assert_eq!(clients, [10, 20]);
    assert!(
        r.steps.iter().all(|s| s.passed() && s.lost == 0),
        "{:?}",
        r.steps
    );
    assert_eq!(r.best_step(), Some(20));
}

/// Nobody listening: every connect fails and is counted, and the run still ends.
#[test]
fn refused_connections_are_counted_as_errors() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let mut o = Options::new(Scenario::Idle, &format!("ws://127.0.0.1:{port}/"));
    (o.progress, o.clients, o.duration) = (false, 3, Duration::from_millis(100));
    let r = bench::run(&o).expect("run");
    assert_eq!(r.connected, 0);
    assert_eq!(r.errors(), 3);
    assert_eq!(r.failures[0].kind, "connect");
}

/// `chatloop bench compare` end to end, on a tiny plan: two servers (the chatloop binary under
/// two names) through every phase, and every file written: the raw lines, the summary with
/// its targets, the four charts.
#[test]
fn compare_runs_every_phase_and_writes_every_file() {
    use bench::compare::{self, Plan, Shape};
    let out = std::env::temp_dir().join(format!("chatloop-compare-{}", std::process::id()));
    let start = format!(
        "{} serve --listen 127.0.0.1:{{port}} --log-level warn",
        env!("CARGO_BIN_EXE_chatloop")
    );
    let mut plan = Plan::quick(vec!["chatloop".into(), "again".into()], start);
    let shape = Shape {
        clients: 10,
        senders: 2,
    };
    let short = (Duration::from_millis(100), Duration::from_millis(300));
    (plan.shapes, plan.windows, plan.latency_shape) = (vec![shape], vec![1, 4], shape);
    (plan.sweep_time, plan.fanout_time, plan.step_time) = (short, short, short);
    plan.loads = vec![1e3, 2e3];
    (
        plan.ramp.clients,
        plan.ramp.step,
        plan.ramp.senders,
        plan.ramp.time,
    ) = (20, 10, 2, short);
    plan.out = out.clone();
    let md = compare::run(&plan).expect("compare");
    let raw = std::fs::read_to_string(out.join("compare.jsonl")).unwrap();
    // 2 windows + 1 round + 2 loads (at most) + 1 ramp, for each of 2 servers.
    assert!((10..=12).contains(&raw.lines().count()), "{raw}");
    assert!(md.contains("| 10×2 | again |"), "{md}");
    assert!(md.contains("## Targets"), "{md}");
    for chart in ["fanout.svg", "windows.svg", "latency.svg", "ramp.svg"] {
        assert!(out.join(chart).exists(), "{chart}");
    }
    std::fs::remove_dir_all(&out).unwrap();
}
