//! `wss://` and `https://` on the server's own listener (`--tls-cert`, `--tls-key`): real TLS
//! clients (rustls, `chatloop connect`, the load generator) against a server whose certificate
//! a test CA signed, and what a hostile or confused client gets.
//!
//! The clients from other ecosystems (Python `websockets`, Node `ws`, Chromium) are in
//! `tests/interop.rs` and `tests/browser.rs`; Autobahn over wss is `scripts/autobahn.sh --tls`.

#![cfg(feature = "tls")]

mod common;

use common::{
    expect_close, raw, read_to_end, recv, run_within, stat, wait_until, ServerProcess, TestPki,
    TestServer, READ_TIMEOUT,
};
use std::io::{Read, Write};
use std::process::Command;
use std::time::{Duration, Instant};
use tungstenite::Message;

/// A WebSocket over a blocking rustls client, upgraded on `path`.
fn connect_wss(
    server_addr: std::net::SocketAddr,
    pki: &TestPki,
    path: &str,
) -> tungstenite::WebSocket<rustls::StreamOwned<rustls::ClientConnection, std::net::TcpStream>> {
    let stream = pki.connect(server_addr);
    let url = format!("wss://localhost:{}{path}", server_addr.port());
    tungstenite::client(url, stream).expect("wss handshake").0
}

/// The server's `/stats` JSON, fetched over https.
fn stats_over_tls(server: &TestServer, pki: &TestPki) -> String {
    let mut s = pki.connect(server.addr);
    write!(s, "GET /stats HTTP/1.1\r\nHost: localhost\r\n\r\n").unwrap();
    let mut text = String::new();
    // The server closes after answering; rustls reports the close_notify as the end.
    let _ = s.read_to_string(&mut text);
    text[text.find("\r\n\r\n").expect("a response") + 4..].to_owned()
}

/// Two TLS clients in one room: a message from one reaches the other, not its sender.
#[test]
fn wss_clients_chat_in_a_room() {
    let pki = TestPki::new("chat");
    let server = TestServer::tls(&pki, |_| {});
    let mut a = connect_wss(server.addr, &pki, "/kitchen");
    let mut b = connect_wss(server.addr, &pki, "/kitchen");
    wait_until(READ_TIMEOUT, "both upgraded", || {
        stat(&stats_over_tls(&server, &pki), "connections_open") == 2
    });
    a.send(Message::text("hello over tls")).unwrap();
    assert_eq!(recv(&mut b), Message::text("hello over tls"));
    let big = vec![7u8; 60_000]; // four TLS records, under the 64 KiB message limit
    b.send(Message::binary(big.clone())).unwrap();
    assert_eq!(recv(&mut a), Message::binary(big));
    a.close(Some(tungstenite::protocol::CloseFrame {
        code: tungstenite::protocol::frame::coding::CloseCode::Normal,
        reason: "bye".into(),
    }))
    .unwrap();
    assert_eq!(expect_close(&mut a), 1000);
}

/// The chat page is served over https, and `/stats` too.
#[test]
fn https_serves_the_page_and_stats() {
    let pki = TestPki::new("page");
    let server = TestServer::tls(&pki, |_| {});
    let mut s = pki.connect(server.addr);
    write!(s, "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n").unwrap();
    let mut page = String::new();
    let _ = s.read_to_string(&mut page);
    assert!(page.starts_with("HTTP/1.1 200"), "{page:.200}");
    assert!(page.contains("<!doctype html>"));
    assert_eq!(stat(&stats_over_tls(&server, &pki), "connections_open"), 0);
}

/// Plain HTTP sent to the TLS port is not answered as HTTP: the server closes the connection
/// (after a TLS alert) at once, instead of waiting for a handshake that will never come.
#[test]
fn plain_http_to_the_tls_port_is_closed_at_once() {
    let pki = TestPki::new("plain");
    let server = TestServer::tls(&pki, |_| {});
    let started = Instant::now();
    let mut s = raw(server.addr);
    write!(s, "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n").unwrap();
    let answer = read_to_end(&mut s);
    assert!(!answer.starts_with(b"HTTP/"), "no HTTP answer in plaintext");
    assert!(started.elapsed() < Duration::from_secs(2), "closed at once");
    // And a plain WebSocket client fails cleanly as well.
    let plain = std::net::TcpStream::connect(server.addr).unwrap();
    plain.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    let url = format!("ws://{}/", server.addr);
    assert!(tungstenite::client(url, plain).is_err());
}

/// A client that sends half a ClientHello and stops is closed after `--handshake-timeout`,
/// like a slow request head.
#[test]
fn half_a_client_hello_is_timed_out() {
    let pki = TestPki::new("slow");
    let server = TestServer::tls(&pki, |c| c.handshake_timeout = Duration::from_millis(300));
    let mut hello = Vec::new();
    let mut client =
        rustls::ClientConnection::new(pki.client_config(), "localhost".try_into().unwrap())
            .unwrap();
    client.write_tls(&mut hello).unwrap();
    let mut s = raw(server.addr);
    s.write_all(&hello[..hello.len() / 2]).unwrap();
    let started = Instant::now();
    read_to_end(&mut s);
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(250) && waited < Duration::from_secs(3),
        "closed after the handshake timeout, not {waited:?}"
    );
}

/// Connections that never finish a handshake count against the socket limit: past it the
/// server refuses more, and once they time out a real client gets in and chats.
#[test]
fn handshake_flood_is_bounded_by_the_connection_limit() {
    let pki = TestPki::new("flood");
    let server = TestServer::tls(&pki, |c| c.max_connections = 8);
    // 8 + the HTTP-phase headroom of 64 sockets = 72 held; the other 28 of 100 silent
    // connections are closed as soon as they are accepted.
    let mut flood: Vec<_> = (0..100).map(|_| raw(server.addr)).collect();
    for s in &flood {
        s.set_nonblocking(true).unwrap();
    }
    let mut refused = 0;
    wait_until(
        READ_TIMEOUT,
        "the sockets past the limit are closed",
        || {
            let before = flood.len();
            flood.retain_mut(|s| !matches!(s.read(&mut [0; 1]), Ok(0)));
            refused += before - flood.len();
            refused >= 28
        },
    );
    assert_eq!(refused, 28, "exactly the sockets past 8 + 64 are refused");
    drop(flood);
    // The server frees the held sockets as it reads their FINs; until then it refuses.
    wait_until(READ_TIMEOUT, "the flood's sockets are freed", || {
        pki.connect(server.addr)
            .write_all(b"GET /stats HTTP/1.1\r\n\r\n")
            .is_ok()
    });
    let mut a = connect_wss(server.addr, &pki, "/r");
    let mut b = connect_wss(server.addr, &pki, "/r");
    wait_until(READ_TIMEOUT, "both upgraded", || {
        stat(&stats_over_tls(&server, &pki), "connections_open") == 2
    });
    a.send(Message::text("after the flood")).unwrap();
    assert_eq!(recv(&mut b), Message::text("after the flood"));
}

/// `chatloop connect wss://… --ca FILE` chats with the server; without the CA it refuses the
/// certificate and exits 1 with one line.
#[test]
fn connect_over_wss_trusts_the_given_ca() {
    let pki = TestPki::new("connect");
    let server = TestServer::tls(&pki, |c| c.mode = chatloop::Mode::Echo);
    let run = run_within(
        Command::new(env!("CARGO_BIN_EXE_chatloop"))
            .args(["connect", &server.url("/"), "--wait", "1s", "--ca"])
            .arg(pki.ca())
            .stdin(std::process::Stdio::null()),
        Duration::from_secs(20),
    );
    assert_eq!(
        run.status.and_then(|s| s.code()),
        Some(0),
        "{}",
        run.transcript()
    );
    let untrusted = run_within(
        Command::new(env!("CARGO_BIN_EXE_chatloop")).args(["connect", &server.url("/")]),
        Duration::from_secs(20),
    );
    assert_eq!(untrusted.status.and_then(|s| s.code()), Some(1));
    assert!(
        untrusted.stderr.contains("TLS handshake failed"),
        "{}",
        untrusted.transcript()
    );
}

/// A missing certificate, a file without PEM and a key of another certificate each stop the
/// server at start: exit status 1 and one line naming the file.
#[test]
fn unusable_certificate_files_stop_the_server_with_one_line() {
    let pki = TestPki::new("bad");
    let other = TestPki::new("bad-other");
    let missing = pki.dir.join("missing.pem");
    let cases = [
        (
            missing.clone(),
            pki.key(),
            "cannot read the TLS certificate",
        ),
        (pki.key(), pki.key(), "no PEM certificate"),
        (
            pki.cert(),
            other.key(),
            "does not belong to the certificate",
        ),
    ];
    for (cert, key, says) in cases {
        let run = run_within(
            Command::new(env!("CARGO_BIN_EXE_chatloop"))
                .args(["serve", "--listen", "127.0.0.1:0", "--tls-cert"])
                .arg(&cert)
                .arg("--tls-key")
                .arg(&key),
            Duration::from_secs(10),
        );
        assert_eq!(
            run.status.and_then(|s| s.code()),
            Some(1),
            "{}",
            run.transcript()
        );
        let lines: Vec<&str> = run.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{}", run.transcript());
        assert!(
            lines[0].starts_with("error: ") && lines[0].contains(says),
            "{}",
            lines[0]
        );
    }
}

/// SIGHUP reloads the certificate: new connections get the new one (trusted through the new
/// CA only), and a client connected before keeps chatting with them.
#[test]
fn sighup_reloads_the_certificate_while_clients_stay_connected() {
    let first = TestPki::new("reload-first");
    let next = TestPki::new("reload-next");
    let live = TestPki::new("reload-live");
    std::fs::copy(first.cert(), live.cert()).unwrap();
    std::fs::copy(first.key(), live.key()).unwrap();
    let cert = live.cert().display().to_string();
    let key = live.key().display().to_string();
    let server = ServerProcess::spawn(&["--tls-cert", &cert, "--tls-key", &key]);
    let mut old = connect_wss(server.addr, &first, "/r");

    std::fs::copy(next.cert(), live.cert()).unwrap();
    std::fs::copy(next.key(), live.key()).unwrap();
    server.signal("HUP");
    // The reload happens in the loop's next turn: new handshakes soon present the new one.
    let mut fresh = None;
    wait_until(
        READ_TIMEOUT,
        "a client trusting only the new CA connects",
        || {
            let stream = next.connect(server.addr);
            let url = format!("wss://localhost:{}/r", server.addr.port());
            match tungstenite::client(url, stream) {
                Ok((ws, _)) => {
                    fresh = Some(ws);
                    true
                }
                Err(_) => false,
            }
        },
    );
    let mut fresh = fresh.unwrap();
    let mut stale = first.connect(server.addr);
    assert!(
        stale.write_all(b"GET / HTTP/1.1\r\n\r\n").is_err(),
        "the old CA no longer verifies new connections"
    );

    old.send(Message::text("from before the reload")).unwrap();
    assert_eq!(recv(&mut fresh), Message::text("from before the reload"));
    fresh.send(Message::text("from after")).unwrap();
    assert_eq!(recv(&mut old), Message::text("from after"));
}

/// The load generator speaks wss:// in every scenario that moves messages: fan-out and echo
/// deliver everything, and `idle` measures the server's memory per TLS connection.
#[cfg(feature = "bench")]
#[test]
fn bench_runs_over_wss() {
    use chatloop_bench::{Options, Scenario};
    let pki = TestPki::new("bench");
    for (scenario, mode) in [
        (Scenario::Fanout, chatloop::Mode::Chat),
        (Scenario::Echo, chatloop::Mode::Echo),
        (Scenario::Connect, chatloop::Mode::Chat),
    ] {
        let server = TestServer::tls(&pki, |c| c.mode = mode);
        let mut o = Options::new(scenario, &server.url("/bench"));
        o.ca = Some(pki.ca());
        (o.progress, o.clients, o.senders) = (false, 20, 2);
        o.warmup = Duration::from_millis(200);
        o.duration = Duration::from_millis(800);
        let r = chatloop_bench::run(&o).expect("run");
        assert_eq!(r.errors(), 0, "{}: {:?}", scenario.name(), r.failures);
        assert!(
            r.connected >= 20,
            "{}: connected {}",
            scenario.name(),
            r.connected
        );
        assert_eq!(r.received, r.expected, "{}", scenario.name());
        assert_eq!(r.faults(), Vec::<String>::new(), "{}", scenario.name());
    }
}
