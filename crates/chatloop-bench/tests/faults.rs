//! The generator, proven honest: `chatloop bench fanout` against a server that misbehaves on
//! purpose (tests/faulty), which counts every fault it injects. Each test checks that the
//! report names exactly those faults: so many lost, so many duplicated, so many out of order,
//! one stall, one closed connection. No warm-up, so every message sent is in the window and
//! the server's counts and the report's cover the same messages.

mod faulty;

use chatloop_bench::{self as bench, Options, Report, Scenario};
use faulty::{CloseOne, Faults, FaultyServer, Injected, Stall};
use std::time::Duration;

/// Clients in the room, and how many of them send.
const CLIENTS: usize = 10;
const SENDERS: usize = 2;

/// Runs a short fan-out (at `rate`, or a closed loop) against a server with `faults`; returns
/// the report and what the server injected.
fn run(faults: Faults, rate: Option<f64>) -> (Report, Injected) {
    run_with(faults, |o| o.rate = rate)
}

/// [`run`] with the options changed by `tweak`.
fn run_with(faults: Faults, tweak: impl Fn(&mut Options)) -> (Report, Injected) {
    let server = FaultyServer::start(faults);
    let mut o = Options::new(Scenario::Fanout, &server.url);
    (o.clients, o.senders) = (CLIENTS, SENDERS);
    o.window = 4;
    o.progress = false;
    o.warmup = Duration::ZERO;
    o.duration = Duration::from_millis(2500);
    // The tests run side by side on a busy machine: a sender a few hundred milliseconds behind
    // its schedule is the machine, not the fault under test.
    o.max_lag = Duration::from_secs(1);
    tweak(&mut o);
    let report = bench::run(&o).expect("run");
    // The run has drained and closed every client: the server's counts are final.
    (report, server.injected())
}

/// Fixed rate: 2 senders × 100 messages/s.
const RATE: Option<f64> = Some(100.0);

/// An honest relay: every delivery received once, in order, nothing reported.
#[test]
fn honest_relay_reports_no_fault() {
    let (r, inj) = run(Faults::default(), RATE);
    assert_eq!(r.sent, inj.messages);
    assert_eq!(r.expected, inj.deliveries);
    assert_eq!(r.received, r.expected);
    assert_eq!(r.faults(), Vec::<String>::new());
}

/// Every 7th delivery dropped: exactly that many lost, nothing else.
#[test]
fn dropped_deliveries_are_lost_exactly() {
    let (r, inj) = run(
        Faults {
            drop_every: 7,
            ..Faults::default()
        },
        RATE,
    );
    assert!(inj.dropped > 50, "{inj:?}");
    assert_eq!(r.expected, inj.deliveries);
    assert_eq!(r.lost(), inj.dropped);
    assert_eq!((r.duplicates, r.out_of_order, r.stalls), (0, 0, 0));
    assert_eq!(r.errors(), 0, "{:?}", r.failures);
}

/// Drops and duplicates together (the case that once reported loss as drops minus
/// duplicates): each is counted on its own, and a duplicate is never a delivery.
#[test]
fn duplicates_are_counted_apart_and_never_hide_loss() {
    let faults = Faults {
        drop_every: 5,
        duplicate_every: 11,
        ..Faults::default()
    };
    let (r, inj) = run(faults, RATE);
    assert!(inj.dropped > 50 && inj.duplicated > 20, "{inj:?}");
    assert_eq!(r.lost(), inj.dropped);
    assert_eq!(r.duplicates, inj.duplicated);
    assert_eq!(r.received, inj.deliveries - inj.dropped);
    assert_eq!(r.out_of_order, 0);
    let faults = r.faults();
    assert!(
        faults.contains(&format!("{} lost", inj.dropped)),
        "{faults:?}"
    );
    assert!(
        faults.contains(&format!("{} duplicated", inj.duplicated)),
        "{faults:?}"
    );
}

/// A delivery held back behind the next one from the same sender (every 5th at a fixed rate,
/// every 3rd in a closed loop, where it also holds its sender's window): exactly that many out
/// of order, all of them still received.
#[test]
fn reordered_deliveries_are_out_of_order_and_received() {
    for (every, rate) in [(5, RATE), (3, None)] {
        let faults = Faults {
            reorder_every: every,
            ..Faults::default()
        };
        let (r, inj) = run(faults, rate);
        assert!(inj.reordered > 10, "{inj:?}");
        assert_eq!(r.out_of_order, inj.reordered, "rate {rate:?}");
        assert_eq!(r.received, r.expected);
        assert_eq!((r.lost(), r.duplicates), (0, 0));
    }
}

/// Every delivery 40 ms late: latency shows it, and lateness alone is not a fault.
#[test]
fn delayed_deliveries_show_in_latency_only() {
    let (r, _) = run(
        Faults {
            delay: Duration::from_millis(40),
            ..Faults::default()
        },
        RATE,
    );
    let latency = r.latency.expect("latency");
    assert!(latency.p50 >= 40_000, "{latency:?}");
    assert_eq!(r.faults(), Vec::<String>::new());
}

/// One client not written to for 1.2 s: one stall, about that long, nothing lost. In a closed
/// loop the stalled client stops every sender (they wait for it), yet only it is reported: the
/// others are owed nothing while the senders wait.
#[test]
fn a_stalled_client_is_one_stall() {
    for rate in [RATE, None] {
        let stall = Stall {
            client: CLIENTS - 1,
            after: 20,
            pause: Duration::from_millis(1200),
        };
        let faults = Faults {
            stall: Some(stall),
            ..Faults::default()
        };
        let (r, inj) = run(faults, rate);
        assert_eq!(inj.stalls, 1);
        assert_eq!(r.stalls, 1, "rate {rate:?}: only the stalled client");
        assert!(
            (1_100_000..=2_000_000).contains(&r.longest_stall_us),
            "{}",
            r.longest_stall_us
        );
        assert_eq!(r.lost(), 0, "{r:?} {inj:?}");
    }
}

/// One client closed by the server after 30 deliveries: one failure, and every delivery it
/// missed is lost.
#[test]
fn a_client_closed_mid_run_fails_and_its_missed_deliveries_are_lost() {
    let close = CloseOne {
        client: CLIENTS - 1,
        after: 30,
    };
    let (r, inj) = run(
        Faults {
            close: Some(close),
            ..Faults::default()
        },
        RATE,
    );
    assert!(inj.undelivered > 50, "{inj:?}");
    assert_eq!(r.errors(), 1, "{:?}", r.failures);
    assert_eq!(r.failures[0].kind, "closed by server");
    assert_eq!(r.lost(), inj.undelivered);
    assert_eq!((r.duplicates, r.out_of_order, r.stalls), (0, 0, 0));
}

/// A sender asked for more than the generator can send: every scheduled message is sent or
/// counted as not sent (unsent: queue full; skipped: the generator behind), save those due in
/// the window's last `--max-lag`, and the report says so.
#[test]
fn a_sender_that_falls_behind_is_reported() {
    let max_lag = Duration::from_millis(50);
    let (r, _) = run_with(Faults::default(), |o| {
        o.rate = Some(1_000_000.0);
        o.max_lag = max_lag;
    });
    let per_sender = 2_500_000; // 1M/s for 2.5 s
    let scheduled = SENDERS as u64 * per_sender;
    let edge = SENDERS as u64 * per_sender / 2500 * max_lag.as_millis() as u64;
    let accounted = r.sent + r.unsent + r.behind;
    assert!(
        accounted <= scheduled + SENDERS as u64 && accounted + edge + SENDERS as u64 >= scheduled,
        "sent {} + unsent {} + skipped {} = {accounted}, scheduled {scheduled}",
        r.sent,
        r.unsent,
        r.behind
    );
    assert!(r.behind + r.unsent + r.late > 0);
    assert!(!r.faults().is_empty());
}

/// A ramp against an honest relay passes every step: clients not connected yet are owed
/// nothing, so they are never counted as stalled.
#[test]
fn ramp_against_an_honest_relay_passes_every_step() {
    let server = FaultyServer::start(Faults::default());
    let mut o = Options::new(Scenario::Ramp, &server.url);
    (o.clients, o.step, o.senders, o.rate) = (CLIENTS, CLIENTS / 2, SENDERS, Some(50.0));
    (o.warmup, o.duration) = (Duration::from_millis(100), Duration::from_millis(1200));
    (o.limit, o.max_lag, o.progress) = (Duration::from_secs(1), Duration::from_secs(1), false);
    let r = bench::run(&o).expect("run");
    let failures: Vec<_> = r.steps.iter().filter_map(|s| s.failure.clone()).collect();
    assert_eq!(failures, Vec::<String>::new());
    assert_eq!(r.best_step(), Some(CLIENTS));
}
