//! A smoke test against a running chatloop server: one real chat session, end to end.
//!
//! `scripts/cross-test.sh` starts an ARM build of the server under qemu-user and points this
//! program (built for the host) at it, so the binary that would be copied to a board is the one
//! that is tested. It is an example rather than an integration test because it needs a server
//! it did not start; `cargo test --all-targets` still compiles it.
//!
//! ```text
//!   smoke ws://127.0.0.1:PORT [--big BYTES] [--messages N]
//! ```
//!
//! The session, in order (each step fails the run with a message naming it):
//! 1. two clients join the same room;
//! 2. a text message from A reaches B, and not A (chat relays to the *other* members);
//! 3. a binary message from B reaches A byte for byte; with `--big`, a second one of that size
//!    (past 65,535 bytes it takes the 64-bit length of RFC 6455 §5.2, the path a 32-bit board
//!    is most likely to get wrong; the server must accept it, see `--max-message-bytes`);
//! 4. a Ping from A comes back as a Pong with the same payload (RFC 6455 §5.5.3);
//! 5. A closes with 1000 and the server answers the Close with 1000 (RFC 6455 §7.1.2); B too.
//!
//! With `--messages N`, A then sends N small messages that B counts, and the rate is printed:
//! a rough relative figure for comparing builds on one machine, not a load test.

use std::error::Error;
use std::io;
use std::net::TcpStream;
use std::process::ExitCode;
use std::time::{Duration, Instant};
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::frame::CloseFrame;
use tungstenite::{Bytes, Message, WebSocket};

/// Every blocking read or write gives up after this long, so a wedged server fails the run
/// instead of hanging it. Generous: the server may be running under an emulator.
const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// How long B listens to make sure A's own message is not sent back to A.
const SILENCE: Duration = Duration::from_millis(300);

type Failure = Box<dyn Error>;

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let Some(base) = args.next().filter(|a| a.starts_with("ws://")) else {
        eprintln!("usage: smoke ws://HOST:PORT [--big BYTES] [--messages N]");
        return ExitCode::from(2);
    };
    let (mut big, mut messages) = (0usize, 0usize);
    while let Some(flag) = args.next() {
        let value = args.next().and_then(|v| v.parse().ok());
        match (flag.as_str(), value) {
            ("--big", Some(n)) => big = n,
            ("--messages", Some(n)) => messages = n,
            _ => {
                eprintln!("error: unknown option or missing number: {flag}");
                return ExitCode::from(2);
            }
        }
    }
    match session(&base, big).and_then(|()| rate(&base, messages)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Steps 1–5 of the module docs.
fn session(base: &str, big: usize) -> Result<(), Failure> {
    let url = format!("{base}/smoke");
    let mut a = connect(&url)?;
    let mut b = connect(&url)?;
    println!("ok   two clients joined {url}");

    a.send(Message::text("hello from A"))?;
    expect(&mut b, Message::text("hello from A"), "text A->B")?;
    expect_silence(&mut a, "A's own message")?;
    println!("ok   text relayed to the other client only");

    let mut sizes = vec![256];
    if big > 0 {
        sizes.push(big);
    }
    for size in sizes {
        // Every byte value, so a byte-order or masking slip cannot cancel out.
        let payload: Vec<u8> = (0..size).map(|i| (i * 7 + i / 251) as u8).collect();
        b.send(Message::binary(payload.clone()))?;
        expect(&mut a, Message::binary(payload), "binary B->A")?;
        println!("ok   binary message of {size} bytes relayed intact");
    }

    a.send(Message::Ping(Bytes::from_static(b"are you there")))?;
    expect(
        &mut a,
        Message::Pong(Bytes::from_static(b"are you there")),
        "pong",
    )?;
    println!("ok   ping answered with a pong carrying the same payload");

    for (name, ws) in [("A", &mut a), ("B", &mut b)] {
        close_normally(ws).map_err(|e| format!("closing {name}: {e}"))?;
    }
    println!("ok   both clients closed with 1000 and the server answered 1000");
    Ok(())
}

/// A client with timeouts, connected to `url`.
fn connect(url: &str) -> Result<WebSocket<TcpStream>, Failure> {
    let authority = url
        .trim_start_matches("ws://")
        .split('/')
        .next()
        .unwrap_or_default();
    let stream = TcpStream::connect(authority).map_err(|e| format!("connect {authority}: {e}"))?;
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    stream.set_nodelay(true)?;
    let (ws, _response) =
        tungstenite::client(url, stream).map_err(|e| format!("handshake with {url}: {e}"))?;
    Ok(ws)
}

/// Reads the next message, which must be `want`; pings from the server are skipped.
fn expect(ws: &mut WebSocket<TcpStream>, want: Message, step: &str) -> Result<(), Failure> {
    loop {
        match ws.read().map_err(|e| format!("{step}: {e}"))? {
            Message::Ping(_) if !matches!(want, Message::Ping(_)) => continue,
            got if got == want => return Ok(()),
            got => return Err(format!("{step}: unexpected {}", describe(&got)).into()),
        }
    }
}

/// Nothing arrives on `ws` for [`SILENCE`].
fn expect_silence(ws: &mut WebSocket<TcpStream>, what: &str) -> Result<(), Failure> {
    ws.get_mut().set_read_timeout(Some(SILENCE))?;
    let outcome = match ws.read() {
        Err(tungstenite::Error::Io(e))
            if matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ) =>
        {
            Ok(())
        }
        Ok(got) => Err(format!("{what} came back: {}", describe(&got)).into()),
        Err(e) => Err(format!("while expecting silence: {e}").into()),
    };
    ws.get_mut().set_read_timeout(Some(IO_TIMEOUT))?;
    outcome
}

/// Sends Close 1000 and reads until the server's Close, which must also say 1000; then the
/// stream must end (tungstenite reports `ConnectionClosed` once the handshake is complete).
fn close_normally(ws: &mut WebSocket<TcpStream>) -> Result<(), Failure> {
    ws.close(Some(CloseFrame {
        code: CloseCode::Normal,
        reason: "done".into(),
    }))?;
    loop {
        match ws.read() {
            Ok(Message::Close(Some(frame))) if frame.code == CloseCode::Normal => break,
            Ok(Message::Close(other)) => return Err(format!("server closed with {other:?}").into()),
            Ok(_) => continue,
            Err(e) => return Err(format!("no Close from the server: {e}").into()),
        }
    }
    match ws.read() {
        Err(tungstenite::Error::ConnectionClosed) => Ok(()),
        other => Err(format!("after the closing handshake: {other:?}").into()),
    }
}

/// A short description of a message for error lines (not its whole payload).
fn describe(msg: &Message) -> String {
    match msg {
        Message::Text(t) => format!("text of {} bytes", t.len()),
        Message::Binary(b) => format!("binary of {} bytes", b.len()),
        other => format!("{other:?}"),
    }
}

/// `--messages N`: A sends N small messages from a thread while B counts them; prints the rate.
fn rate(base: &str, messages: usize) -> Result<(), Failure> {
    if messages == 0 {
        return Ok(());
    }
    let url = format!("{base}/rate");
    let mut a = connect(&url)?;
    let mut b = connect(&url)?;
    let start = Instant::now();
    let sender = std::thread::spawn(move || -> Result<(), String> {
        for i in 0..messages {
            // `write` queues; flushing every 64 messages lets the kernel batch them.
            a.write(Message::text(format!("message {i:08}")))
                .map_err(|e| e.to_string())?;
            if i % 64 == 63 {
                a.flush().map_err(|e| e.to_string())?;
            }
        }
        a.flush().map_err(|e| e.to_string())
    });
    let mut got = 0;
    while got < messages {
        match b
            .read()
            .map_err(|e| format!("rate: after {got} messages: {e}"))?
        {
            Message::Text(_) => got += 1,
            _ => continue,
        }
    }
    let elapsed = start.elapsed();
    sender
        .join()
        .map_err(|_| "sender thread panicked")?
        .map_err(|e| format!("rate: sending: {e}"))?;
    println!(
        "rate {messages} messages A->B in {:.3} s: {:.0} messages/s",
        elapsed.as_secs_f64(),
        messages as f64 / elapsed.as_secs_f64()
    );
    Ok(())
}
