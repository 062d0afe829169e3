//! What an operator sees and sets: reports, origins, per-address and per-connection limits,
//! subprotocols.

// tungstenite's handshake error carries the whole HTTP response; fine in tests.
#![allow(clippy::result_large_err)]

mod common;

use common::*;
use tungstenite::client::IntoClientRequest;
use tungstenite::Message;

/// `/stats` counts messages, deliveries, rooms and close codes as they happen.
#[test]
fn stats_count_what_happened() {
    let server = TestServer::with(|c| c.max_message_bytes = 100);
    let mut a = connect(&server, "/r");
    let mut b = connect(&server, "/r");
    let mut c = connect(&server, "/r");
    a.send(Message::text("one")).unwrap();
    recv(&mut b);
    recv(&mut c);
    c.send(Message::binary(vec![0; 101])).unwrap();
    assert_eq!(expect_close(&mut c), 1009);
    drop(c);
    // The 1009 is counted when the connection is freed, on a turn of its own.
    let stats = wait_for(READ_TIMEOUT, "the 1009 to be counted", || {
        let stats = http_get(server.addr, "/stats");
        if stats.contains("\"1009\":1") {
            Ok(stats)
        } else {
            Err(stats)
        }
    });
    assert!(stats.starts_with("HTTP/1.1 200 OK\r\n"));
    assert!(stats.contains("Content-Type: application/json"));
    let body = &stats[stats.find("\r\n\r\n").unwrap() + 4..];
    for want in [
        "\"connections_open\":2",
        "\"rooms\":1",
        "\"messages_in_total\":1",
        "\"deliveries_total\":2",
        "\"upgraded_total\":3",
        "\"1009\":1",
    ] {
        assert!(body.contains(want), "{want} in {body}");
    }
}

/// `/metrics` speaks the Prometheus text format.
#[test]
fn metrics_are_prometheus_text() {
    let server = TestServer::start();
    let _a = connect(&server, "/");
    let text = http_get(server.addr, "/metrics");
    assert!(text.contains("Content-Type: text/plain; version=0.0.4"));
    assert!(text.contains("# TYPE chatloop_connections_open gauge\nchatloop_connections_open 1\n"));
    assert!(text.contains("chatloop_closes_sent_total{code=\"1002\"} 0\n"));
}

/// With --allowed-origin, a foreign origin gets 403; the allowed one and non-browsers get in.
#[test]
fn foreign_origin_is_refused_with_403() {
    let server =
        TestServer::with(|c| c.policy.allowed_origins = vec!["http://good.example".into()]);
    let with_origin = |origin: &str| {
        let mut req = server.url("/").into_client_request().unwrap();
        req.headers_mut().insert("Origin", origin.parse().unwrap());
        tungstenite::client(req, raw(server.addr))
    };
    match with_origin("http://evil.example") {
        Err(tungstenite::HandshakeError::Failure(tungstenite::Error::Http(r))) => {
            assert_eq!(r.status(), 403)
        }
        other => panic!("expected 403, got {:?}", other.map(|_| ())),
    }
    assert!(with_origin("http://good.example").is_ok());
    let _no_origin = connect(&server, "/");
}

/// With --max-per-ip, one address past its share gets 429.
#[test]
fn per_address_cap_answers_429() {
    let server = TestServer::with(|c| c.max_per_ip = 2);
    let _a = connect(&server, "/");
    let _b = connect(&server, "/");
    match tungstenite::client(server.url("/"), raw(server.addr)) {
        Err(tungstenite::HandshakeError::Failure(tungstenite::Error::Http(r))) => {
            assert_eq!(r.status(), 429)
        }
        other => panic!("expected 429, got {:?}", other.map(|_| ())),
    }
}

/// With --max-messages-per-sec, a flood closes the flooder with 1008; the others stay.
#[test]
fn message_flood_is_closed_1008() {
    let server = TestServer::with(|c| c.max_messages_per_sec = 10);
    let mut flooder = connect(&server, "/");
    let mut other = connect(&server, "/");
    for i in 0..50 {
        // The server may close mid-flood; later writes can fail.
        if flooder.send(Message::text(format!("{i}"))).is_err() {
            break;
        }
    }
    assert_eq!(expect_close(&mut flooder), 1008);
    for i in 0..10 {
        assert_eq!(recv(&mut other), Message::text(format!("{i}")));
    }
}

/// A subprotocol we speak is chosen in the 101; for one we do not, no header (§4.2.2).
#[test]
fn subprotocol_is_negotiated() {
    // Without the header tungstenite refuses to go on, which is how the second case shows.
    let server = TestServer::with(|c| c.policy.protocols = vec!["chat".into()]);
    let offer = |p: &str| {
        let mut req = server.url("/").into_client_request().unwrap();
        req.headers_mut()
            .insert("Sec-WebSocket-Protocol", p.parse().unwrap());
        tungstenite::client(req, raw(server.addr))
    };
    let (_ws, resp) = offer("mqtt, chat").expect("agreed on chat");
    assert_eq!(resp.headers()["Sec-WebSocket-Protocol"], "chat");
    assert!(
        offer("mqtt").is_err(),
        "no common subprotocol: the client gives up"
    );
}
