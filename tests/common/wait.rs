//! Waiting for a state the test is not told about: a counter in `/stats`, a freed slot, a
//! subscription in Redis, a child process's exit.
//!
//! A test never sleeps a fixed time in the hope that the state has been reached: it names the
//! state, looks again every [`LOOK_EVERY`] until a limit, and fails naming what it waited for.
//! The one loop that does this is [`poll`]; the rest are its faces.

use std::fmt::Display;
use std::process::{Child, ExitStatus};
use std::time::{Duration, Instant};

/// How long a wait sleeps between two looks: short against every limit used with it, long
/// enough that looking (a `/stats` request, a `/proc` read) does not load the machine.
const LOOK_EVERY: Duration = Duration::from_millis(20);

/// Asks `ready` until it gives a value, or `None` once `limit` has passed.
fn poll<T>(limit: Duration, mut ready: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = ready() {
            return Some(value);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(LOOK_EVERY);
    }
}

/// Waits until `done()` holds; after `limit`, panics naming `what` was waited for.
pub fn wait_until(limit: Duration, what: &str, mut done: impl FnMut() -> bool) {
    if poll(limit, || done().then_some(())).is_none() {
        panic!("timed out after {limit:?} waiting for {what}");
    }
}

/// Waits until `ready()` is `Ok` and returns its value; after `limit`, panics naming `what`
/// and the last `Err`, which says where the state was stuck (a `/stats` report, a count).
pub fn wait_for<T, E: Display>(
    limit: Duration,
    what: &str,
    mut ready: impl FnMut() -> Result<T, E>,
) -> T {
    let mut last = None;
    match poll(limit, || ready().map_err(|e| last = Some(e)).ok()) {
        Some(value) => value,
        None => panic!(
            "timed out after {limit:?} waiting for {what}; last seen: {}",
            last.expect("poll asks at least once")
        ),
    }
}

/// Waits for `child` to exit and returns its status; after `limit` kills it (so no test
/// leaves a process behind) and returns `None`, for the caller to fail with what it knows.
pub fn exit_within(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let status = poll(limit, || {
        child.try_wait().expect("wait for a child process")
    });
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    status
}
