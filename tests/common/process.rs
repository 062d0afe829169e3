//! Child processes: the `chatloop` binary as a server, for what an in-process server cannot
//! show (signals, descriptor limits, the server's own memory and descriptors in `/proc/PID`),
//! and client programs run to their end with a time limit.

use super::{exit_within, READ_TIMEOUT};
use std::io::{BufRead, Read};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;
use tungstenite::WebSocket;

/// A running `chatloop serve`; killed on drop if still running.
pub struct ServerProcess {
    /// The child. Its pid is the server's own, even when a shell started it (`exec`).
    pub child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
}

impl ServerProcess {
    /// Runs `chatloop serve --listen 127.0.0.1:0 ARGS…` and waits until it listens.
    pub fn spawn(args: &[&str]) -> ServerProcess {
        let mut command = Command::new(env!("CARGO_BIN_EXE_chatloop"));
        command
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(args);
        ServerProcess::start(command)
    }

    /// As [`ServerProcess::spawn`], with the server's descriptor limit (`ulimit -n`) set to
    /// `fds` first, or to the hard limit if `fds` is above it.
    pub fn spawn_with_fd_limit(fds: u32, args: &[&str]) -> ServerProcess {
        // A shell sets the limit, then becomes the server (`exec`): no unsafe `setrlimit` in a
        // `pre_exec` hook, and the child's pid is the server's.
        let script = r#"ulimit -n "$1" 2>/dev/null || ulimit -n "$(ulimit -Hn)"; shift; exec "$@""#;
        let mut command = Command::new("sh");
        command
            .args(["-c", script, "sh", &fds.to_string()])
            .args([env!("CARGO_BIN_EXE_chatloop"), "serve"])
            .args(["--listen", "127.0.0.1:0"])
            .args(args);
        ServerProcess::start(command)
    }

    /// Starts `command` (a server, or a shell that `exec`s one) and waits for the line
    /// "listening on ws://ADDR/" (or wss://) on its stderr. The rest of its log is drained by a thread,
    /// so a full pipe can never block the server.
    fn start(mut command: Command) -> ServerProcess {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn chatloop");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                if let Some(rest) = line.split("listening on ").nth(1) {
                    let addr = rest
                        .trim_start_matches("wss://")
                        .trim_start_matches("ws://");
                    let _ = tx.send(addr.trim_end_matches('/').to_owned());
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
        let status = Command::new("kill")
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

    /// How many descriptors the server has open (/proc/PID/fd).
    pub fn open_fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.child.id()))
            .unwrap()
            .count()
    }

    /// A client connected to `path`, as [`super::connect`] does for an in-process server.
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

/// What a program run by [`run_within`] left behind.
pub struct Finished {
    /// How it exited; `None` if it was still running at the limit (it was killed).
    pub status: Option<ExitStatus>,
    /// Everything it printed on stdout.
    pub stdout: String,
    /// Everything it printed on stderr.
    pub stderr: String,
}

impl Finished {
    /// Both outputs, labelled, for a failure message.
    pub fn transcript(&self) -> String {
        format!("--- stdout\n{}--- stderr\n{}", self.stdout, self.stderr)
    }
}

/// Runs `command` (stdin closed) to its end and collects what it prints; kills it after
/// `limit`. Both pipes are drained on threads, so a chatty program never blocks on a full one.
pub fn run_within(command: &mut Command, limit: Duration) -> Finished {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    let drain = |mut pipe: Box<dyn Read + Send>| {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text);
            let _ = tx.send(text);
        });
        rx
    };
    let stdout = drain(Box::new(child.stdout.take().unwrap()));
    let stderr = drain(Box::new(child.stderr.take().unwrap()));
    let status = exit_within(&mut child, limit);
    // A pipe ends when the program does, unless a process it started still holds it open
    // (a browser outliving a killed driver): then give up on the rest rather than hang.
    let rest = |rx: std::sync::mpsc::Receiver<String>| {
        rx.recv_timeout(READ_TIMEOUT)
            .unwrap_or_else(|_| "(output still open: a process it started is running)\n".into())
    };
    Finished {
        status,
        stdout: rest(stdout),
        stderr: rest(stderr),
    }
}
