//! Just enough HTTP/1.1 to route a request: the WebSocket upgrade, or a plain answer.
//!
//! Every connection starts as HTTP (RFC 6455 §4.1: the opening handshake is an HTTP Upgrade).
//! We parse the request head ourselves with `httparse` instead of calling
//! `tungstenite::accept`, because tungstenite refuses anything that is not an upgrade before we
//! could answer it: here a browser's plain `GET /` gets a real response, never a hang or a
//! dropped socket.
//!
//! Pure functions only: [`parse`] takes bytes, [`route`] takes a parsed [`Request`], and
//! [`response`] makes bytes. The connection (`conn.rs`) feeds them and queues what they return.
//!
//! ```text
//!  bytes ──parse──▶ Partial (need more) ──▶ wait for more bytes (bounded by --max-head-bytes)
//!                ├─▶ Err(400 / 431)     ──▶ answer and close
//!                └─▶ Complete(request) ──route──▶ Upgrade { room, accept key } ──▶ 101
//!                                              └─▶ Answer(404 / 405 / 426 / …)  ──▶ answer and close
//! ```

use bytes::Bytes;
use std::fmt::Write as _;

/// Most header lines we look at in one request; more is answered with 431.
pub const MAX_HEADERS: usize = 32;

/// An HTTP status we answer with. Each variant says when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// 101: the WebSocket upgrade was accepted.
    SwitchingProtocols,
    /// 400: the head did not parse, or an upgrade lacked a required header (RFC 6455 §4.2.1).
    BadRequest,
    /// 404: a plain request for a path we do not serve.
    NotFound,
    /// 405: a method other than GET or HEAD.
    MethodNotAllowed,
    /// 408: the request head did not arrive within `--handshake-timeout` (slowloris).
    RequestTimeout,
    /// 426: an upgrade asked for a WebSocket version other than 13 (RFC 6455 §4.4).
    UpgradeRequired,
    /// 431: the request head passed `--max-head-bytes`, or had too many header lines.
    HeadersTooLarge,
    /// 503: `--max-connections` WebSocket connections are open already.
    ServiceUnavailable,
}

impl Status {
    /// The numeric code.
    pub fn code(self) -> u16 {
        match self {
            Status::SwitchingProtocols => 101,
            Status::BadRequest => 400,
            Status::NotFound => 404,
            Status::MethodNotAllowed => 405,
            Status::RequestTimeout => 408,
            Status::UpgradeRequired => 426,
            Status::HeadersTooLarge => 431,
            Status::ServiceUnavailable => 503,
        }
    }

    /// The reason phrase.
    pub fn reason(self) -> &'static str {
        match self {
            Status::SwitchingProtocols => "Switching Protocols",
            Status::BadRequest => "Bad Request",
            Status::NotFound => "Not Found",
            Status::MethodNotAllowed => "Method Not Allowed",
            Status::RequestTimeout => "Request Timeout",
            Status::UpgradeRequired => "Upgrade Required",
            Status::HeadersTooLarge => "Request Header Fields Too Large",
            Status::ServiceUnavailable => "Service Unavailable",
        }
    }
}

/// The parts of a request head that routing needs, copied out of the read buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// `GET`, `HEAD`, …
    pub method: String,
    /// The request target as sent, e.g. `/kitchen?x=1`.
    pub target: String,
    /// `Upgrade: websocket` was present (case-insensitive).
    pub upgrade_websocket: bool,
    /// `Connection` listed the `upgrade` token.
    pub connection_upgrade: bool,
    /// `Sec-WebSocket-Version`, if sent.
    pub ws_version: Option<String>,
    /// `Sec-WebSocket-Key`, if sent.
    pub ws_key: Option<String>,
}

impl Request {
    /// The path without its query string: the room name for an upgrade.
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("/")
    }
}

/// Parses a request head from the start of `buf`.
///
/// `Ok(None)` means "not all of it yet": read more and call again (a push parser, like httparse
/// itself; needing more bytes is not an error). `Ok(Some((request, n)))` means the head is the
/// first `n` bytes; anything after it belongs to the next layer (a client may send its first
/// WebSocket frame right behind the handshake). Errors carry the status to answer with.
pub fn parse(buf: &[u8]) -> Result<Option<(Request, usize)>, Status> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let n = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(Status::HeadersTooLarge),
        Err(_) => return Err(Status::BadRequest),
    };
    let mut out = Request {
        // Complete(_) guarantees method and path are set.
        method: req.method.unwrap_or_default().to_owned(),
        target: req.path.unwrap_or_default().to_owned(),
        upgrade_websocket: false,
        connection_upgrade: false,
        ws_version: None,
        ws_key: None,
    };
    for h in req.headers.iter() {
        let value = String::from_utf8_lossy(h.value);
        let value = value.trim();
        if h.name.eq_ignore_ascii_case("upgrade") {
            out.upgrade_websocket |= value.eq_ignore_ascii_case("websocket");
        } else if h.name.eq_ignore_ascii_case("connection") {
            out.connection_upgrade |= value
                .split(',')
                .any(|t| t.trim().eq_ignore_ascii_case("upgrade"));
        } else if h.name.eq_ignore_ascii_case("sec-websocket-version") {
            out.ws_version = Some(value.to_owned());
        } else if h.name.eq_ignore_ascii_case("sec-websocket-key") {
            out.ws_key = Some(value.to_owned());
        }
    }
    Ok(Some((out, n)))
}

/// What to do with a complete request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// Switch to WebSocket: answer 101 with this `Sec-WebSocket-Accept` and join `room`.
    Upgrade {
        /// The room: the request path without its query.
        room: String,
        /// The `Sec-WebSocket-Accept` value (RFC 6455 §4.2.2 step 5.4).
        accept: String,
    },
    /// Answer with this status and close.
    Answer(Status),
}

/// Decides what a complete request gets.
pub fn route(req: &Request) -> Reply {
    if req.upgrade_websocket {
        return route_upgrade(req);
    }
    match req.method.as_str() {
        "GET" | "HEAD" => Reply::Answer(Status::NotFound),
        _ => Reply::Answer(Status::MethodNotAllowed),
    }
}

/// RFC 6455 §4.2.1: what a server checks in a client's opening handshake.
fn route_upgrade(req: &Request) -> Reply {
    // §4.2.1 item 1: the method MUST be GET.
    if req.method != "GET" || !req.connection_upgrade || !req.path().starts_with('/') {
        return Reply::Answer(Status::BadRequest);
    }
    // §4.2.1 item 6 and §4.4: version 13 only; anything else gets 426 naming the one we speak.
    if req.ws_version.as_deref() != Some("13") {
        return Reply::Answer(Status::UpgradeRequired);
    }
    // §4.2.1 item 5: the key is a base64-encoded 16-byte nonce, so 24 characters ending in "==".
    match req.ws_key.as_deref() {
        Some(key) if key.len() == 24 && key.ends_with("==") => Reply::Upgrade {
            room: req.path().to_owned(),
            accept: tungstenite::handshake::derive_accept_key(key.as_bytes()),
        },
        _ => Reply::Answer(Status::BadRequest),
    }
}

/// The `101 Switching Protocols` response for an accepted upgrade (RFC 6455 §4.2.2 step 5).
pub fn switching_protocols(accept: &str) -> Bytes {
    Bytes::from(format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {accept}\r\n\r\n"
    ))
}

/// A complete response that ends the connection: status line, headers, and a short text body
/// (left out for `HEAD`, whose response carries the headers only).
pub fn response(status: Status, head_only: bool) -> Bytes {
    let body = format!("{} {}\n", status.code(), status.reason());
    let mut out = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\n\
         Connection: close\r\n",
        status.code(),
        status.reason(),
        body.len()
    );
    match status {
        Status::UpgradeRequired => out.push_str("Sec-WebSocket-Version: 13\r\n"),
        Status::MethodNotAllowed => out.push_str("Allow: GET, HEAD\r\n"),
        Status::ServiceUnavailable => out.push_str("Retry-After: 1\r\n"),
        _ => {}
    }
    out.push_str("\r\n");
    if !head_only {
        let _ = write!(out, "{body}");
    }
    Bytes::from(out)
}

#[cfg(test)]
mod tests {
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
            route(&req),
            Reply::Upgrade {
                room: "/kitchen".into(),
                // RFC 6455 §1.3's worked example.
                accept: "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=".into(),
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
            route(&parse(text.as_bytes()).unwrap().unwrap().0)
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
        let r = |b: &[u8]| parse(b).map(|o| o.map(|(req, _)| route(&req)));
        assert_eq!(
            r(b"GET / HTTP/1.1\r\n\r\n"),
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
}
