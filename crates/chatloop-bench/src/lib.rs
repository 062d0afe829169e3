//! # chatloop-bench
//!
//! A load generator for WebSocket (RFC 6455) chat and echo servers: thousands of client
//! connections from **one thread**, in one hand-written [`mio`] loop, measuring what a server
//! delivers, how fast, how late, and whether anything was lost, duplicated or reordered.
//! `chatloop bench` runs it; so do `cargo bench` and the integration tests, as a library.
//!
//! It speaks plain RFC 6455 to any server and knows nothing of chatloop's internals: a chat
//! server is anything that relays a message sent on one connection to the other connections
//! on the same path (the room), and an echo server anything that sends it back.
//!
//! ## The loop, in one picture
//!
//! ```text
//!   one scenario's loop (scenario/*.rs), until its window ends:
//!   ├─ pump: the messages due now, each stamped (stamp.rs): sender, sequence, send time
//!   │    └─▶ Pool::send, Pool::flush: frames masked in place (frame.rs), one write per socket
//!   └─ Pool::turn (pool.rs): poll, then for each ready Client (client.rs):
//!        ├─ writable ─▶ write what the kernel did not take before
//!        └─ readable ─▶ read into the one shared buffer, parse frames in place
//!                         └─▶ Handler::on_data: read the Stamp ─▶ count, check order, latency
//!   then: drain, close every connection ─▶ Report (report.rs) ─▶ table or JSON (render.rs)
//! ```
//!
//! Every figure is capped by what the generator itself can drive, so it is kept cheap: one
//! shared read buffer, frames parsed and masked in place, no allocation per message, one
//! `write` per socket per turn. It reports its own CPU use beside the server's (`--pid`), so a
//! reader can tell when it, not the server, was the bottleneck.
//!
//! ## Where things live (read in this order)
//!
//! | file | what |
//! |---|---|
//! | [`cli`] | `chatloop bench`: the usage text, the flags, parse → run → print |
//! | [`options`] | every option with its default, and the checks that keep a run meaningful |
//! | [`run`](mod@run) | one run from start to end: target, pool, scenario, close |
//! | [`scenario`] | the scenarios, one file each: fanout, ramp, echo, idle, connect |
//! | [`stamp`] | the 16 bytes at the front of every message that make deliveries checkable |
//! | [`pool`] | every connection in one `Poll`; readiness becomes calls on a scenario's handler |
//! | [`client`] | one connection as a state machine: connecting → handshaking → open → closing |
//! | [`handshake`] | the upgrade request and the check of the server's `101` |
//! | [`frame`] | RFC 6455 frames: encoded and masked in place, parsed as a push parser |
//! | [`target`] | the server's address from a `ws://` or `wss://` URL, and the local addresses to send from |
//! | [`tls`] | `wss://`: TLS between the client and its socket, trust from the system and `--ca` |
//! | [`report`] | what a run measured, and the faults that make a run unclean |
//! | [`render`] | the report as a table and as one JSON line |
//! | [`procfs`] | CPU time and memory from `/proc`: who was the bottleneck |
//! | [`progress`] | the once-a-second progress line on stderr |
//! | [`units`] | sizes and times on the command line: `64KiB`, `500ms` |
//! | [`compare`] | `chatloop bench compare`: servers side by side, each at its best, with charts |
//!
//! ## Invariants (things that never happen)
//!
//! 1. A delivery is judged by its [`Stamp`] alone: the generator needs nothing from the server
//!    but the bytes it relays.
//! 2. A failure of one connection (refused, reset, a Close we did not ask for, a protocol
//!    violation) never ends the run: it is counted by kind in the report. Only a run that
//!    cannot start, or a poller failure, is an `Err`.
//! 3. Every queue is bounded: a fixed-rate sender whose server stopped reading skips messages
//!    (counted as unsent) instead of queueing without limit, a closed-loop sender keeps at most
//!    `--window` messages in flight, and an incoming frame is capped at 64 MiB.
//! 4. Every run ends: each phase has a deadline (connecting, the window, the drain, the close).

pub mod cli;
pub mod client;
pub mod compare;
pub mod frame;
pub mod handshake;
pub mod options;
pub mod pool;
pub mod procfs;
pub mod progress;
pub mod render;
pub mod report;
pub mod run;
pub mod scenario;
pub mod stamp;
pub mod target;
pub mod tls;
pub mod units;

pub use options::{Options, Scenario};
pub use report::{Latency, RampStep, Report};
pub use run::{raise_fd_limit, run};
pub use stamp::Stamp;
