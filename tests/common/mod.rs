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
        let mut config = Config {
            listen: "127.0.0.1:0".parse().unwrap(),
            ..Config::default()
        };
        tweak(&mut config);
        config.validate().expect("test config is valid");
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

/// The `chatloop` binary running as a child process (for signals and memory checks).
pub struct ServerProcess {
    /// The child; killed on drop if still running.
    pub child: std::process::Child,
    /// Where it listens.
    pub addr: SocketAddr,
}

impl ServerProcess {
    /// Runs `chatloop serve --listen 127.0.0.1:0 ARGS…` and waits for its "listening" line.
    /// Its log is drained by a thread so a full pipe can never block the server.
    pub fn spawn(args: &[&str]) -> ServerProcess {
        use std::io::BufRead;
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_chatloop"))
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(args)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn chatloop");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                if let Some(rest) = line.split("listening on ws://").nth(1) {
                    let _ = tx.send(rest.trim_end_matches('/').to_owned());
                }
            }
        });
        let addr = rx
            .recv_timeout(READ_TIMEOUT)
            .expect("server printed its address")
            .parse()
            .unwrap();
        ServerProcess { child, addr }
    }

    /// Sends a signal (by name, e.g. "TERM") with the system's `kill` command.
    pub fn signal(&self, name: &str) {
        let status = std::process::Command::new("kill")
            .args([format!("-{name}"), self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success());
    }

    /// A field of /proc/PID/status in KiB, e.g. "VmRSS" or "VmHWM" (peak RSS).
    pub fn status_kib(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .expect("field in /proc/PID/status")
    }

    /// A client connected to `path`, as [`connect`] does for an in-process server.
    pub fn connect(&self, path: &str) -> WebSocket<TcpStream> {
        let stream = TcpStream::connect(self.addr).expect("connect");
        stream.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
        let url = format!("ws://{}{}", self.addr, path);
        tungstenite::client(url, stream).expect("handshake").0
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A raw TCP connection to `addr` with a read timeout, for speaking broken HTTP or WebSocket.
pub fn raw(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    s
}

/// Reads from `s` until the peer closes (or errors); panics if it stays open past the timeout.
pub fn read_to_end(s: &mut TcpStream) -> Vec<u8> {
    use std::io::Read;
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return out,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return out,
            Err(e) => panic!("connection still open after {READ_TIMEOUT:?}: {e}"),
        }
    }
}

/// A valid upgrade request for `path`.
pub fn upgrade_request(path: &str) -> String {
    format!(
        "GET {path} HTTP/1.1\r\nHost: test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    )
}

/// Sends a plain `GET path` to `addr` and returns the whole response as text.
pub fn http_get(addr: SocketAddr, path: &str) -> String {
    use std::io::Write;
    let mut s = raw(addr);
    write!(s, "GET {path} HTTP/1.1\r\nHost: test\r\n\r\n").unwrap();
    String::from_utf8(read_to_end(&mut s)).unwrap()
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
