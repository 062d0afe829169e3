//! # chatloop
//!
//! A WebSocket chat server written as one single-threaded, hand-written [`mio`] event loop:
//! Qt's *ChatServer* (every message a client sends goes to every *other* client) and Qt's
//! *echo server*, re-made in Rust without an async runtime.
//!
//! ## The loop, in one picture
//!
//! ```text
//!   ┌────────────────────────────── Server::run (server.rs) ──────────────────────────────┐
//!   │  poll ─▶ listener: accept ─▶ a Slot (Conn + bookkeeping) in the slab, keyed by Token  │
//!   │      ─▶ readable: Conn::on_readable (conn.rs), called until Idle; each call returns   │
//!   │         one Action: Upgrade{room} (the server admits), Report, Message(frame)         │
//!   │                       │ a message, encoded once as a server frame                     │
//!   │                       ▼                                                               │
//!   │                  Hub (hub.rs): who is in the sender's room                            │
//!   │                       │ one refcounted clone per recipient                            │
//!   │                       ▼                                                               │
//!   │                  Outbox (outbox.rs) of each recipient: bounded, counted               │
//!   │      ─▶ end of turn: flush every touched outbox with writev; WRITABLE interest only   │
//!   │         while bytes stay queued; free closed slots                                    │
//!   └──────────────────────────────────────────────────────────────────────────────────────┘
//! ```
//!
//! ## Where things live (read in this order)
//!
//! | file | room of the house |
//! |---|---|
//! | `main.rs` | the command line: parse, run a subcommand, exit code |
//! | [`config`] | every knob, its unit and safe default, and the flags that set them |
//! | [`server`] | **the loop**: `Server::run`; its steps in `server/` (accept, read, slot) |
//! | [`conn`] | one connection as a state machine, and its seam with the loop, [`conn::Action`] |
//! | [`wire`] | where tungstenite meets our buffers: the `Wire`, `encode`, the frame constants |
//! | [`http`] | just enough HTTP/1.1 to answer or upgrade a request |
//! | [`hub`] | rooms and their members |
//! | [`outbox`] | the bounded per-connection send queue and the server-wide meter |
//! | [`backpressure`] | when reading pauses, and when a laggard is dropped |
//! | [`stats`] | `/stats`, `/metrics` (one table) and the periodic log summary |
//! | [`cli`] | the command-line lexer every subcommand shares |
//! | [`client`] | `chatloop connect`: the command-line client, one mio loop over stdin and a socket |
//! | `page.html` | the browser client, served by [`http`] at `GET /` and `GET /ROOM` |
//! | `crates/chatloop-bench` | the load generator, `chatloop bench` (feature `bench`): its own crate |
//! | `bridge` | `--redis`: rooms shared between nodes through Redis pub/sub (feature `redis`) |
//! | `redis` | the RESP encoder and push parser the bridge speaks (feature `redis`) |
//! | `testing` | the mock socket the unit tests and the fuzz target share (feature `testing`) |
//!
//! ## Invariants (things that never happen)
//!
//! 1. In the server, only `server.rs` and its steps (`server/`) own the `Poll` and read the
//!    clock; everything else is handed `now`. (One exception: the Redis bridge is handed the
//!    `Registry` to register its own two sockets under their reserved tokens; see `bridge.rs`
//!    for why. The client, `chatloop connect`, is a second program with its own loop.)
//! 2. The hub, the HTTP router and the outbox never see a socket.
//! 3. A connection's failure never leaves the connection: it becomes a close reason. Only
//!    accept/poll failures end `Server::run`.
//! 4. Every write and accept continues until `WouldBlock`; a read stops there, at
//!    end-of-stream, or, on TCP, at a short read, which says the same one system call sooner
//!    (`conn/scratch.rs` says why). Reads come in slices of `READS_PER_TURN` per connection
//!    and a byte budget per turn, the rest next turn; a spurious or stale event is harmless.
//! 5. WRITABLE is registered only while something is queued.
//! 6. Every queue is bounded: an outbox by `--max-queue-bytes` (past it the peer is dropped as
//!    a slow consumer), all outboxes together by `--high-water-bytes` (past it the server stops
//!    reading, so TCP slows the senders), a request head by `--max-head-bytes`, a message by
//!    `--max-message-bytes`.
//! 7. Slab slots are freed only at the end of a turn, after the whole event batch, so a stale
//!    event never reaches a new connection that reused the key. Reserved tokens live outside
//!    the slab's range.
//! 8. A broadcast is encoded once; each recipient gets a cheap shared reference, not a copy.

pub mod backpressure;
#[cfg(feature = "redis")]
pub mod bridge;
pub mod cli;
#[cfg(feature = "client")]
pub mod client;
pub mod config;
pub mod conn;
pub mod http;
pub mod hub;
pub mod outbox;
#[cfg(feature = "redis")]
pub mod redis;
pub mod server;
pub mod stats;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod wire;

pub use config::{Config, Mode};
pub use server::{Server, ServerHandle};
