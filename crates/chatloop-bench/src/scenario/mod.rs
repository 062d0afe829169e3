//! The scenarios: each drives the [`Pool`] in its own loop and fills a [`Report`].
//!
//! | file | scenario |
//! |---|---|
//! | [`fanout`] | many senders in one room, every other client receives: deliveries/s, loss, order, latency |
//! | [`ledger`] | fan-out's receive side: in order, late or duplicate; clients that stall |
//! | [`timetable`] | a fixed-rate sender's due messages, and how late the generator sends them |
//! | [`ramp`] | fan-out at a fixed rate with more clients at each step, until latency passes a limit |
//! | [`echo`] | one message in flight per client against an echo server: round trips/s |
//! | [`idle`] | connections held open: the server's memory per connection |
//! | [`connect`] | handshake churn: handshakes/s |
//!
//! A scenario is a [`Handler`] (what to do when a client opens, receives or ends) plus a loop
//! around [`Pool::turn`] that sends what is due after each turn. This file holds the steps
//! they share: opening the initial connections, and the report that starts with what that
//! measured. A new scenario is one more file here and one more [`Scenario`] variant.
//!
//! [`Scenario`]: crate::Scenario

pub mod connect;
pub mod echo;
pub mod fanout;
pub mod idle;
pub mod ledger;
pub mod ramp;
pub mod timetable;

use crate::pool::{Handler, Pool};
use crate::progress::Progress;
use crate::report::{Latency, Report};
use std::io;
use std::time::{Duration, Instant};

/// Opens `n` more connections (`--concurrency` at a time) and waits until each is open or
/// failed, at most a minute plus a millisecond per connection. Returns the seconds it took.
fn open(
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
fn after_open(pool: &Pool, connect_secs: f64) -> Report {
    Report {
        connect_secs,
        connected: pool.opened,
        handshake: Latency::of(&pool.handshake_us),
        ..Report::default()
    }
}
