//! `chatloop connect` driven end to end: the built binary as a subprocess with piped stdin,
//! against a real server on `127.0.0.1:0`. Every wait is bounded; a stuck client is killed.
#![cfg(feature = "client")]

mod common;

use common::{connect, exit_within, recv, TestServer};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::Duration;
use tungstenite::Message;

/// Longest any client run may take before the test kills it and fails.
const DEADLINE: Duration = Duration::from_secs(15);

/// A running `chatloop connect`, its output read line by line on helper threads.
struct Cli {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: Receiver<String>,
    stderr: Receiver<String>,
}

/// Forwards `pipe`'s lines to a channel, so the test can wait for one with a timeout.
fn lines(pipe: impl Read + Send + 'static) -> Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

impl Cli {
    /// Starts `chatloop connect ARGS` with `stdin` as its input.
    fn start_with(args: &[&str], stdin: Stdio) -> Cli {
        let mut child = Command::new(env!("CARGO_BIN_EXE_chatloop"))
            .arg("connect")
            .args(args)
            .stdin(stdin)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn chatloop connect");
        Cli {
            stdin: child.stdin.take(),
            stdout: lines(child.stdout.take().unwrap()),
            stderr: lines(child.stderr.take().unwrap()),
            child,
        }
    }

    /// Starts `chatloop connect ARGS` with a pipe for its input.
    fn start(args: &[&str]) -> Cli {
        Cli::start_with(args, Stdio::piped())
    }

    /// Starts it and waits until it says it is connected.
    fn connected(args: &[&str]) -> Cli {
        let cli = Cli::start(args);
        let line = cli.stderr_line();
        assert!(line.starts_with("connected to ws://"), "stderr: {line}");
        cli
    }

    /// Types `text` into its standard input.
    fn type_in(&mut self, text: &str) {
        let stdin = self.stdin.as_mut().expect("stdin still open");
        stdin.write_all(text.as_bytes()).unwrap();
        stdin.flush().unwrap();
    }

    /// Ends its standard input (Ctrl-D).
    fn end_input(&mut self) {
        self.stdin = None;
    }

    /// The next line it prints on stdout; fails after [`DEADLINE`].
    fn stdout_line(&self) -> String {
        self.stdout
            .recv_timeout(DEADLINE)
            .expect("a line on stdout in time")
    }

    /// The next line it prints on stderr; fails after [`DEADLINE`].
    fn stderr_line(&self) -> String {
        self.stderr
            .recv_timeout(DEADLINE)
            .expect("a line on stderr in time")
    }

    /// Waits for it to exit (killing it after [`DEADLINE`]); returns the status, the rest of
    /// stdout and the rest of stderr.
    fn finish(mut self) -> (ExitStatus, Vec<String>, String) {
        self.stdin = None;
        let status = exit_within(&mut self.child, DEADLINE)
            .unwrap_or_else(|| panic!("chatloop connect did not exit within {DEADLINE:?}"));
        // The pipes close when the process exits, so these end.
        let out: Vec<String> = self.stdout.iter().collect();
        let err: Vec<String> = self.stderr.iter().collect();
        (status, out, err.join("\n"))
    }
}

/// Runs `chatloop connect ARGS` with `input` on stdin to completion.
fn run(args: &[&str], input: &str) -> (ExitStatus, Vec<String>, String) {
    let mut cli = Cli::start(args);
    cli.type_in(input);
    cli.finish()
}

/// One client's line reaches another client, which prints it; --name adds the prefix.
#[test]
fn line_from_one_client_is_printed_by_the_other_with_name_prefix() {
    let server = TestServer::start();
    let url = server.url("/kitchen");
    let mut listener = Cli::connected(&[&url]);
    let (status, out, err) = run(&[&url, "--name", "ada", "--wait", "0s"], "hello there\n");
    assert!(status.success(), "sender: {status} {err}");
    assert!(out.is_empty(), "the sender gets no copy of its own line");
    assert!(err.contains("closed: 1000"), "stderr: {err}");
    assert_eq!(listener.stdout_line(), "ada: hello there");
    // And back: the listener's lines reach a tungstenite client in the same room.
    let mut ws = connect(&server, "/kitchen");
    listener.type_in("and hello back\n\nsecond\n");
    assert_eq!(recv(&mut ws), Message::text("and hello back"));
    // An empty line is not sent.
    assert_eq!(recv(&mut ws), Message::text("second"));
    listener.end_input();
    let (status, _, err) = listener.finish();
    assert!(status.success(), "listener: {status} {err}");
}

/// A binary message is shown as a placeholder with its size; text arrives as it was sent.
#[test]
fn binary_message_is_printed_as_placeholder_with_size() {
    let server = TestServer::start();
    let cli = Cli::connected(&[&server.url("/")]);
    let mut ws = connect(&server, "/");
    ws.send(Message::binary(vec![0u8; 12])).unwrap();
    ws.send(Message::text("<b>plain</b>")).unwrap();
    assert_eq!(cli.stdout_line(), "[binary message, 12 bytes]");
    assert_eq!(cli.stdout_line(), "<b>plain</b>");
    let (status, _, _) = cli.finish();
    assert!(status.success());
}

/// Piped input is sent, replies that come within --wait are printed, then exit 0.
#[test]
fn piped_input_waits_for_replies_then_exits_zero() {
    let server = TestServer::with(|c| c.mode = chatloop::Mode::Echo);
    let (status, out, err) = run(
        &[&server.url("/"), "--wait", "300ms"],
        "one\ntwo without newline",
    );
    assert!(status.success(), "{status} {err}");
    assert_eq!(out, ["one", "two without newline"]);
    assert!(err.contains("closed: 1000"), "stderr: {err}");
}

/// Input from a regular file or /dev/null (which the poller refuses) works too.
#[test]
fn input_from_a_file_or_dev_null_is_read() {
    let server = TestServer::with(|c| c.mode = chatloop::Mode::Echo);
    let path = std::env::temp_dir().join(format!("chatloop-input-{}.txt", std::process::id()));
    std::fs::write(&path, "from a file\nline two\n").unwrap();
    let file = std::fs::File::open(&path).unwrap();
    let cli = Cli::start_with(&[&server.url("/"), "--wait", "300ms"], file.into());
    let (status, out, err) = cli.finish();
    let _ = std::fs::remove_file(&path);
    assert!(status.success(), "{status} {err}");
    assert_eq!(out, ["from a file", "line two"]);

    let cli = Cli::start_with(&[&server.url("/"), "--wait", "0s"], Stdio::null());
    let (status, out, err) = cli.finish();
    assert!(status.success(), "{status} {err}");
    assert!(out.is_empty());
}

/// The server going away (Close 1001) is reported with its code, and the exit is non-zero.
#[test]
fn server_closing_abnormally_exits_non_zero() {
    let server = TestServer::start();
    let cli = Cli::connected(&[&server.url("/")]);
    server.stop().unwrap();
    let (status, _, err) = cli.finish();
    assert_eq!(status.code(), Some(1), "stderr: {err}");
    assert!(err.contains("closed by server: 1001"), "stderr: {err}");
}

/// A message over the server's limit gets Close 1009, reported, exit non-zero.
#[test]
fn message_too_big_is_reported_with_its_close_code() {
    let server = TestServer::with(|c| c.max_message_bytes = 100);
    let mut cli = Cli::connected(&[&server.url("/")]);
    cli.type_in(&format!("{}\n", "x".repeat(200)));
    let (status, _, err) = cli.finish();
    assert_eq!(status.code(), Some(1), "stderr: {err}");
    assert!(err.contains("closed by server: 1009"), "stderr: {err}");
}

/// Usage mistakes exit 2 with a one-line error.
#[test]
fn usage_errors_exit_2() {
    for args in [
        &[][..],
        &["ws://127.0.0.1:1/", "--bogus"],
        &["http://127.0.0.1:1/"],
        &["wss://127.0.0.1:1/", "--ca"],
        &["ws://127.0.0.1:1/", "--wait", "soon"],
        &["ws://127.0.0.1:1/", "extra"],
    ] {
        let (status, out, err) = run(args, "");
        assert_eq!(status.code(), Some(2), "{args:?}: {err}");
        assert!(out.is_empty());
        assert!(err.starts_with("error: "), "{args:?}: {err}");
    }
}

/// A refused connection is a clear error naming the address, exit 1.
#[test]
fn refused_connection_is_a_clear_error() {
    // A port that was just free: bind, note it, let it go.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (status, _, err) = run(&[&format!("ws://127.0.0.1:{port}/")], "");
    assert_eq!(status.code(), Some(1));
    assert!(
        err.starts_with(&format!("error: cannot connect to 127.0.0.1:{port}: ")),
        "stderr: {err}"
    );
    assert!(err.contains("refused"), "stderr: {err}");
}

/// A server that answers the upgrade with 404 gives `handshake failed: HTTP 404 Not Found`.
#[test]
fn http_404_handshake_is_a_clear_error() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let fake = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        stream.set_read_timeout(Some(DEADLINE)).unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap() == 1 {
            head.push(byte[0]);
        }
        stream
            .write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            .unwrap();
        String::from_utf8(head).unwrap()
    });
    let (status, _, err) = run(&[&format!("ws://{addr}/nowhere")], "");
    assert_eq!(status.code(), Some(1));
    assert_eq!(err, "error: handshake failed: HTTP 404 Not Found");
    let head = fake.join().unwrap();
    assert!(head.starts_with("GET /nowhere HTTP/1.1\r\n"), "{head}");
}

/// chatloop's own refusal (503 when full) is reported the same way.
#[test]
fn full_server_503_is_a_clear_error() {
    let server = TestServer::with(|c| c.max_connections = 1);
    let _first = connect(&server, "/");
    let (status, _, err) = run(&[&server.url("/")], "");
    assert_eq!(status.code(), Some(1));
    assert_eq!(err, "error: handshake failed: HTTP 503 Service Unavailable");
}
