//! The one helper every integration test uses: a real server on `127.0.0.1:0` in a thread,
//! stopped through its `ServerHandle` (a `mio::Waker`), and clients that cannot hang.

#![allow(dead_code)] // each test file uses a different part of this helper

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
        let mut config = Config::default();
        config.listen = "127.0.0.1:0".parse().unwrap();
        tweak(&mut config);
        config.validate().expect("test config is valid");
        let server = Server::bind(config).expect("bind 127.0.0.1:0");
        let addr = server.local_addr();
        let handle = server.handle();
        let thread = std::thread::spawn(move || server.run());
        TestServer {
            addr,
            handle,
            thread: Some(thread),
        }
    }

    /// `ws://127.0.0.1:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("ws://{}{}", self.addr, path)
    }

    /// Shuts the server down and waits for `run` to return; returns its result.
    pub fn stop(mut self) -> io::Result<()> {
        self.handle.shutdown();
        self.thread.take().unwrap().join().expect("server thread panicked")
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
pub fn recv(ws: &mut WebSocket<TcpStream>) -> Message {
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
pub fn expect_close(ws: &mut WebSocket<TcpStream>) -> u16 {
    loop {
        match ws.read() {
            Ok(Message::Close(Some(frame))) => return frame.code.into(),
            Ok(Message::Close(None)) => return 1005,
            Ok(_) => continue,
            Err(e) => panic!("expected a Close frame, got error {e}"),
        }
    }
}
