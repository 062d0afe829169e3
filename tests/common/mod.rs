//! What every integration test shares: a real server on `127.0.0.1:0` in a thread, stopped
//! through its `ServerHandle` (a `mio::Waker`); clients that cannot hang; the server's counters.
//!
//! - `wire.rs`: raw sockets, hand-built client frames, the `101` reader;
//! - `process.rs`: the `chatloop` binary as a child process, and client programs run to
//!   their end;
//! - `wait.rs`: waiting for a state with a deadline, never a blind sleep;
//! - `pki.rs`: a certificate authority and a server certificate made in the test (`wss://`).
//!
//! ## Tests that need an outside tool
//!
//! A test that needs something Rust does not bring (Python `websockets`, Node `ws`, Chromium,
//! `redis-server`, an IPv6 loopback) is `#[ignore = "needs …"]`: a plain `cargo test` does not
//! run it, and when it is run (`--ignored`) it fails if the tool is missing ([`missing_tool`]);
//! it never passes by skipping. `scripts/test.sh` installs the tools, then runs exactly the
//! tests whose ignore reason starts with `needs `. Any other reason (`long: …` for a soak,
//! `a measurement …`) keeps a test out of `scripts/test.sh` and CI: such a test is run by hand
//! or by its own script.

#![allow(dead_code)] // each test file uses a different part of this helper

#[cfg(feature = "tls")]
mod pki;
mod process;
mod wait;
mod wire;

// Each test file uses some of these; the rest would be "unused" in that file's crate.
#[cfg(feature = "tls")]
#[allow(unused_imports)]
pub use pki::TestPki;
#[allow(unused_imports)]
pub use process::{run_within, Finished, ServerProcess};
#[allow(unused_imports)]
pub use wait::{exit_within, wait_for, wait_until};
#[allow(unused_imports)]
pub use wire::*;

use chatloop::{Config, Server, ServerHandle};
use std::io;
use std::net::{SocketAddr, TcpStream};
use std::thread::JoinHandle;
use std::time::Duration;
use tungstenite::{Message, WebSocket};

/// Every blocking read in a test gives up after this long, so no test can hang.
pub const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// A server running in a background thread; shut down when dropped.
pub struct TestServer {
    /// Where it listens (an ephemeral port on loopback).
    pub addr: SocketAddr,
    /// It serves TLS (`wss://`, `https://`).
    pub secure: bool,
    handle: ServerHandle,
    thread: Option<JoinHandle<io::Result<()>>>,
}

impl TestServer {
    /// Starts a chat server with default limits on `127.0.0.1:0`.
    pub fn start() -> TestServer {
        TestServer::with(|_| {})
    }

    /// Starts a server on `127.0.0.1:0` after `tweak` adjusts the default config.
    pub fn with(tweak: impl FnOnce(&mut Config)) -> TestServer {
        let mut config = Config {
            listen: "127.0.0.1:0".parse().unwrap(),
            ..Config::default()
        };
        tweak(&mut config);
        config.validate().expect("test config is valid");
        let secure = config.tls.is_some();
        // The server is single-threaded by design (it is not `Send`): build it in its thread
        // and send back what the test needs.
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            let server = Server::bind(config).expect("bind 127.0.0.1:0");
            tx.send((server.local_addr(), server.handle())).unwrap();
            server.run()
        });
        let (addr, handle) = rx.recv().expect("server started");
        TestServer {
            addr,
            secure,
            handle,
            thread: Some(thread),
        }
    }

    #[cfg(feature = "tls")]
    /// A chat server on `127.0.0.1:0` that serves TLS with `pki`'s certificate, after
    /// `tweak` adjusts the default config.
    pub fn tls(pki: &TestPki, tweak: impl FnOnce(&mut Config)) -> TestServer {
        TestServer::with(|c| {
            c.tls = Some(pki.files());
            tweak(c);
        })
    }

    /// `ws://127.0.0.1:PORT{path}`, or `wss://…` for a TLS server (its test certificate
    /// names 127.0.0.1 as well as localhost).
    pub fn url(&self, path: &str) -> String {
        let scheme = if self.secure { "wss" } else { "ws" };
        format!("{scheme}://{}{}", self.addr, path)
    }

    /// Shuts the server down and waits for `run` to return; returns its result.
    pub fn stop(mut self) -> io::Result<()> {
        self.handle.shutdown();
        self.thread
            .take()
            .unwrap()
            .join()
            .expect("server thread panicked")
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(thread) = self.thread.take() {
            self.handle.shutdown();
            let _ = thread.join();
        }
    }
}

/// A blocking tungstenite client connected to `path` on `server`, with a read timeout.
pub fn connect(server: &TestServer, path: &str) -> WebSocket<TcpStream> {
    let stream = TcpStream::connect(server.addr).expect("connect");
    stream.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    stream.set_write_timeout(Some(READ_TIMEOUT)).unwrap();
    let (ws, _response) = tungstenite::client(server.url(path), stream).expect("handshake");
    ws
}

/// Reads the next data message, skipping pings/pongs; panics on timeout or close.
pub fn recv<S: io::Read + io::Write>(ws: &mut WebSocket<S>) -> Message {
    loop {
        match ws.read().expect("read") {
            Message::Ping(_) | Message::Pong(_) => continue,
            msg => return msg,
        }
    }
}

/// Asserts nothing arrives on `ws` within `wait` (the read times out).
pub fn assert_silent(ws: &mut WebSocket<TcpStream>, wait: Duration) {
    ws.get_mut().set_read_timeout(Some(wait)).unwrap();
    match ws.read() {
        Err(tungstenite::Error::Io(e))
            if matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ) => {}
        other => panic!("expected silence, got {other:?}"),
    }
    ws.get_mut().set_read_timeout(Some(READ_TIMEOUT)).unwrap();
}

/// Reads until the server's Close arrives and returns its code (as a number).
pub fn expect_close<S: io::Read + io::Write>(ws: &mut WebSocket<S>) -> u16 {
    loop {
        match ws.read() {
            Ok(Message::Close(Some(frame))) => return frame.code.into(),
            Ok(Message::Close(None)) => return 1005,
            Ok(_) => continue,
            Err(e) => panic!("expected a Close frame, got error {e}"),
        }
    }
}

/// The server's `/stats` JSON body.
pub fn stats_body(addr: SocketAddr) -> String {
    let text = http_get(addr, "/stats");
    text[text.find("\r\n\r\n").expect("a response") + 4..].to_owned()
}

/// One value from the `/stats` JSON, e.g. `"sockets"` or `"1008"`; `true`/`false` read as 1/0.
pub fn stat(json: &str, key: &str) -> u64 {
    let pattern = format!("\"{key}\":");
    let at = json
        .find(&pattern)
        .unwrap_or_else(|| panic!("{key} in {json}"))
        + pattern.len();
    let value: String = json[at..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric())
        .collect();
    match value.as_str() {
        "true" => 1,
        "false" => 0,
        n => n
            .parse()
            .unwrap_or_else(|_| panic!("{key} is not a number in {json}")),
    }
}

/// Fails a test whose outside tool is missing. Such a test is `#[ignore = "needs …"]`, so it
/// runs only when asked for, and then it must fail rather than pass without its tool.
pub fn missing_tool(what: &str) -> ! {
    panic!("this test needs {what}, which is missing (scripts/setup-test-deps.sh installs it)");
}
