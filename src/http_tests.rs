//! The HTTP layer on its own: heads complete and partial, routing, the answers' bytes.

use super::*;

const UPGRADE: &[u8] = b"GET /kitchen?x=1 HTTP/1.1\r\nHost: h\r\nUpgrade: WebSocket\r\n\
    Connection: keep-alive, Upgrade\r\nSec-WebSocket-Version: 13\r\n\
    Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";

/// A head cut anywhere before its blank line is Partial, not an error.
#[test]
fn partial_head_asks_for_more() {
    for cut in 0..UPGRADE.len() {
        assert_eq!(parse(&UPGRADE[..cut]), Ok(None), "cut at {cut}");
    }
}

/// A complete upgrade routes to its room with the RFC's sample accept key.
#[test]
fn upgrade_routes_to_room_with_accept_key() {
    let mut buf = UPGRADE.to_vec();
    buf.extend_from_slice(b"\x81\x80rest");
    let (req, n) = parse(&buf).unwrap().unwrap();
    assert_eq!(
        n,
        UPGRADE.len(),
        "bytes after the head are left for the next layer"
    );
    assert_eq!(
        route(&req, &Policy::default()),
        Reply::Upgrade {
            room: "/kitchen".into(),
            // RFC 6455 §1.3's worked example.
            accept: "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=".into(),
            protocol: None,
        }
    );
}

/// Wrong version gets 426; missing key or non-GET upgrade gets 400.
#[test]
fn bad_upgrades_get_the_rfc_status() {
    let with = |from: &str, to: &str| {
        let text = String::from_utf8(UPGRADE.to_vec())
            .unwrap()
            .replace(from, to);
        route(
            &parse(text.as_bytes()).unwrap().unwrap().0,
            &Policy::default(),
        )
    };
    let answer = Reply::Answer;
    assert_eq!(
        with("Version: 13", "Version: 8"),
        answer(Status::UpgradeRequired)
    );
    assert_eq!(
        with("Sec-WebSocket-Key", "X-Key"),
        answer(Status::BadRequest)
    );
    assert_eq!(with("GET", "POST"), answer(Status::BadRequest));
    assert_eq!(
        with("keep-alive, Upgrade", "close"),
        answer(Status::BadRequest)
    );
}

/// Plain requests get 404 or 405; garbage gets 400; too many headers 431.
#[test]
fn plain_and_broken_requests() {
    let r = |b: &[u8]| parse(b).map(|o| o.map(|(req, _)| route(&req, &Policy::default())));
    assert_eq!(
        r(b"GET /a/b HTTP/1.1\r\n\r\n"),
        Ok(Some(Reply::Answer(Status::NotFound)))
    );
    assert_eq!(
        r(b"DELETE / HTTP/1.1\r\n\r\n"),
        Ok(Some(Reply::Answer(Status::MethodNotAllowed)))
    );
    assert_eq!(r(b"\x16\x03\x01garbage\r\n\r\n"), Err(Status::BadRequest));
    let many = format!(
        "GET / HTTP/1.1\r\n{}\r\n",
        "A: b\r\n".repeat(MAX_HEADERS + 1)
    );
    assert_eq!(r(many.as_bytes()), Err(Status::HeadersTooLarge));
}

/// With --allowed-origin set, a browser from elsewhere gets 403; no Origin, or our own
/// page's origin, is allowed.
#[test]
fn foreign_origin_gets_403() {
    let policy = Policy {
        allowed_origins: vec!["https://chat.example".into()],
        ..Policy::default()
    };
    let with_origin = |origin: &str| {
        let text = String::from_utf8(UPGRADE.to_vec())
            .unwrap()
            .replace("Host: h\r\n", &format!("Host: h\r\n{origin}"));
        route(&parse(text.as_bytes()).unwrap().unwrap().0, &policy)
    };
    assert_eq!(
        with_origin("Origin: https://evil.example\r\n"),
        Reply::Answer(Status::Forbidden)
    );
    assert!(matches!(
        with_origin("Origin: https://CHAT.example\r\n"),
        Reply::Upgrade { .. }
    ));
    assert!(matches!(with_origin(""), Reply::Upgrade { .. }));
    assert!(
        matches!(with_origin("Origin: http://h\r\n"), Reply::Upgrade { .. }),
        "the page this server served (same host) is allowed"
    );
}

/// The first of our subprotocols that the client offers is chosen; none offered, none sent.
#[test]
fn subprotocol_is_chosen_from_the_offer() {
    let policy = Policy {
        protocols: vec!["chat.v2".into(), "chat".into()],
        ..Policy::default()
    };
    let offer = |protocols: &str| {
        let text = String::from_utf8(UPGRADE.to_vec()).unwrap().replace(
            "Host: h\r\n",
            &format!("Host: h\r\nSec-WebSocket-Protocol: {protocols}\r\n"),
        );
        match route(&parse(text.as_bytes()).unwrap().unwrap().0, &policy) {
            Reply::Upgrade { protocol, .. } => protocol,
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(offer("chat, chat.v2").as_deref(), Some("chat.v2"));
    assert_eq!(offer("mqtt").as_deref(), None);
    let head = switching_protocols("k", Some("chat"));
    assert!(head.ends_with(b"Sec-WebSocket-Protocol: chat\r\n\r\n"));
}

/// /stats and /metrics are reports; other GETs are 404.
#[test]
fn stats_and_metrics_are_reports() {
    let get = |path: &str| {
        let text = format!("GET {path} HTTP/1.1\r\n\r\n");
        route(
            &parse(text.as_bytes()).unwrap().unwrap().0,
            &Policy::default(),
        )
    };
    assert_eq!(get("/stats"), Reply::Report(Report::Json));
    assert_eq!(get("/metrics"), Reply::Report(Report::Prometheus));
    assert_eq!(get("/stats.html"), Reply::Answer(Status::NotFound));
}

/// Responses carry a length, close the connection, and HEAD gets no body.
#[test]
fn responses_are_complete_http() {
    let full = response(Status::NotFound, false);
    assert!(full.starts_with(b"HTTP/1.1 404 Not Found\r\n"));
    assert!(full.ends_with(b"\r\n\r\n404 Not Found\n"));
    let head = response(Status::NotFound, true);
    assert!(head.ends_with(b"Connection: close\r\n\r\n"));
    let upgrade = response(Status::UpgradeRequired, false);
    assert!(std::str::from_utf8(&upgrade)
        .unwrap()
        .contains("Sec-WebSocket-Version: 13"));
}

fn plain(method: &str, target: &str) -> Reply {
    let head = format!("{method} {target} HTTP/1.1\r\nHost: h\r\n\r\n");
    route(
        &parse(head.as_bytes()).unwrap().unwrap().0,
        &Policy::default(),
    )
}

/// GET and HEAD of `/` or a one-segment room path get the page, query string or not.
#[test]
fn root_and_room_paths_get_the_page() {
    for target in [
        "/",
        "/kitchen",
        "/kitchen?nick=ada",
        "/r%C3%A9union",
        "/a-b_c",
    ] {
        assert_eq!(plain("GET", target), Reply::Page, "GET {target}");
        assert_eq!(plain("HEAD", target), Reply::Page, "HEAD {target}");
    }
}

/// `/stats` and `/metrics` stay reports: they are not taken for room pages.
#[test]
fn report_paths_are_not_room_pages() {
    assert_eq!(plain("GET", "/stats"), Reply::Report(Report::Json));
    assert_eq!(plain("HEAD", "/metrics"), Reply::Report(Report::Prometheus));
}

/// Files a browser asks for on its own, nested paths and a trailing slash get 404.
#[test]
fn files_and_nested_paths_get_not_found() {
    for target in [
        "/favicon.ico",
        "/robots.txt",
        "/kitchen/",
        "/a/b",
        "/..",
        "*",
    ] {
        assert_eq!(
            plain("GET", target),
            Reply::Answer(Status::NotFound),
            "GET {target}"
        );
    }
}

/// Other methods on page paths keep 405, and an upgrade to `/` still upgrades.
#[test]
fn wrong_methods_get_405_and_upgrades_are_unchanged() {
    for method in ["POST", "PUT", "DELETE", "OPTIONS"] {
        assert_eq!(
            plain(method, "/kitchen"),
            Reply::Answer(Status::MethodNotAllowed)
        );
    }
    let upgrade = String::from_utf8(UPGRADE.to_vec())
        .unwrap()
        .replace("/kitchen?x=1", "/");
    let (req, _) = parse(upgrade.as_bytes()).unwrap().unwrap();
    assert!(matches!(route(&req, &Policy::default()), Reply::Upgrade { room, .. } if room == "/"));
}

/// The page response is complete HTML with its length; HEAD has the headers only.
#[test]
fn page_response_is_html_and_head_has_no_body() {
    let full = page(false, 65536);
    let text = std::str::from_utf8(&full).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"));
    assert!(head.contains("Content-Type: text/html; charset=utf-8"));
    assert!(head.contains("Cache-Control: no-cache"));
    assert!(head.contains(&format!("Content-Length: {}\r\n", body.len())));
    assert!(body.starts_with("<!doctype html>"));
    // The page never puts network text into markup.
    assert!(!PAGE_HTML.contains(".innerHTML"));
    let head_only = page(true, 65536);
    assert_eq!(&head_only[..], format!("{head}\r\n\r\n").as_bytes());
}

/// The page carries the server's message limit, so it can refuse a message before sending.
#[test]
fn page_carries_the_message_limit() {
    assert_eq!(PAGE_HTML.matches(MAX_MESSAGE_BYTES_MARK).count(), 1);
    let full = page(false, 1234);
    let text = std::str::from_utf8(&full).unwrap();
    assert!(text.contains(r#"<meta name="chatloop-max-message-bytes" content="1234">"#));
    assert!(!text.contains(MAX_MESSAGE_BYTES_MARK));
}
