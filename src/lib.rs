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
//!   │                       │ a message, encoded once into its room's batch for the turn    │
//!   │                       ▼                                                               │
//!   │                  Hub (hub.rs): rooms, their members, each room's batch (hub/batch.rs) │
//!   │                       │ end of reading: one or two refcounted slices per member       │
//!   │                       ▼                                                               │
//!   │                  Outbox (outbox.rs) of each recipient: bounded, charged what it holds │
//!   │      ─▶ end of turn: flush touched outboxes with writev, 64 a turn, the rest next     │
//!   │         turn; WRITABLE interest only while bytes stay queued; free closed slots;      │
//!   │         rooms that caught up are read again                                           │
//!   └──────────────────────────────────────────────────────────────────────────────────────┘
//! ```
//!
//! ## Where things live (read in this order)
//!
//! Start with the loop, [`Server::run`](server::Server::run); `docs/tour.md` then follows one
//! chat message through the files below, a step per function.
//!
//! | file | room of the house |
//! |---|---|
//! | [`server`] | **the loop**: `Server::run`; its steps in `server/` (accept, read, fanout, slot) |
//! | [`conn`] | one connection as a state machine, and its seam with the loop, [`conn::Action`] |
//! | [`stream`] | a connection's socket: plain TCP, or TLS over it (`--tls-cert`, `wss://`) |
//! | [`wire`] | where tungstenite meets our buffers: the `Wire`, `encode`, the frame constants |
//! | [`http`] | just enough HTTP/1.1 to answer or upgrade a request |
//! | [`hub`] | rooms, their members, and each room's batch of the turn (`hub/batch.rs`) |
//! | [`outbox`] | the bounded per-connection send queue, and the meters of what outboxes hold |
//! | [`backpressure`] | when a room (or the server) stops being read, and when a laggard is dropped |
//! | [`stats`] | `/stats`, `/metrics` (one table) and the periodic log summary |
//! | [`config`] | every knob, its unit and safe default, and the flags that set them |
//! | [`cli`] | the command-line lexer every subcommand shares |
//! | `main.rs` | the command line: parse, run a subcommand, exit code |
//! | [`client`] | `chatloop connect`: the command-line client, one mio loop over stdin and a socket |
//! | `page.html` | the browser client, served by [`http`] at `GET /` and `GET /ROOM` |
//! | `crates/chatloop-bench` | the load generator, `chatloop bench` (feature `bench`): its own crate |
//! | `bridge` | `--redis`: rooms shared between nodes through Redis pub/sub (feature `redis`) |
//! | `redis` | the RESP encoder and push parser the bridge speaks (feature `redis`) |
//! | `tls` | certificates, SIGHUP reload, and `TlsStream` over rustls (feature `tls`, docs/tls.md) |
//! | `testing` | the mock socket the unit tests and the fuzz target share (feature `testing`) |
//!
//! ## Invariants (things that never happen)
//!
//! 1. In the server, only `server.rs` and its steps (`server/`) own the `Poll` and read the
//!    clock; everything else is handed `now`. (One exception: the Redis bridge is handed the
//!    `Registry` to register its own two sockets under their reserved tokens; see `bridge.rs`
//!    for why. `config.rs` reads the wall clock once, before the loop, for the default
//!    `--node-id`. The client, `chatloop connect`, is a second program with its own loop.)
//! 2. The hub, the HTTP router and the outbox never see a socket.
//! 3. A connection's failure never leaves the connection: it becomes a close reason. Only
//!    accept/poll failures end `Server::run`.
//! 4. Every write and accept continues until `WouldBlock`; a read stops there, at
//!    end-of-stream, or, on plain TCP, at a short read, which says the same one system call
//!    sooner (`conn/scratch.rs` says why). Reads come in slices of `READS_PER_TURN` per
//!    connection and a byte budget per turn, writes in `FLUSH_PER_TURN` connections per turn
//!    (`server/slot.rs`), the rest next turn; a spurious or stale event is harmless.
//! 5. WRITABLE is registered only while something is queued (in the outbox, or TLS ciphertext
//!    the socket has not taken).
//! 6. Every queue is bounded, by what it holds, not only by its payload: an outbox by
//!    `--max-queue-bytes` (each chunk charged its bookkeeping too; past the cap the peer is
//!    dropped as a slow consumer, and past half of it the peer's room stops being read, so TCP
//!    slows that room's senders), all outboxes together by `--high-water-bytes` (past it the
//!    server stops reading), a request head by `--max-head-bytes`, a message by
//!    `--max-message-bytes`.
//! 7. Slab slots are freed only at the end of a turn, after the whole event batch, so a stale
//!    event never reaches a new connection that reused the key. Reserved tokens live outside
//!    the slab's range.
//! 8. A broadcast is encoded once, into its room's buffer for the turn; each recipient gets
//!    refcounted slices of that buffer, never a copy and never its own messages.

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
pub mod stream;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
#[cfg(feature = "tls")]
pub mod tls;
pub mod wire;

pub use config::{Config, Mode};
pub use server::{Server, ServerHandle};
