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
//!                                              ├─▶ Page (GET / or /ROOM) ──▶ 200 page.html
//!                                              └─▶ Answer(404 / 405 / 426 / …)  ──▶ answer and close
//! ```
//!
//! The page is the browser client (`page.html`), compiled into the binary with `include_str!`:
//! one file, no CDN, no build step. It is served at `/` and at every path that could be a room
//! name of one segment (`/kitchen`), so `http://host:1234/kitchen` opens a chat in the room
//! `/kitchen`. A path with a dot (`/favicon.ico`, `/robots.txt`) or more segments gets 404:
//! browsers ask for such files on their own, and answering them with a chat page would be wrong.

use bytes::Bytes;
use std::fmt::Write as _;

/// Most header lines we look at in one request; more is answered with 431.
pub const MAX_HEADERS: usize = 32;

/// An HTTP status we answer with. Each variant says when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// 101: the WebSocket upgrade was accepted.
    SwitchingProtocols,
    /// 200: a report (`/stats`, `/metrics`) or the chat page.
    Ok,
    /// 400: the head did not parse, or an upgrade lacked a required header (RFC 6455 §4.2.1).
    BadRequest,
    /// 403: a browser upgrade from an `Origin` not in `--allowed-origin` (RFC 6455 §4.2.2 /
    /// §10.2: the server decides which origins it serves).
    Forbidden,
    /// 404: a plain request for a path we do not serve.
    NotFound,
    /// 405: a method other than GET or HEAD.
    MethodNotAllowed,
    /// 408: the request head did not arrive within `--handshake-timeout` (slowloris).
    RequestTimeout,
    /// 426: an upgrade asked for a WebSocket version other than 13 (RFC 6455 §4.4).
    UpgradeRequired,
    /// 429: this client address already has `--max-per-ip` connections open.
    TooManyRequests,
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
            Status::Ok => 200,
            Status::BadRequest => 400,
            Status::Forbidden => 403,
            Status::NotFound => 404,
            Status::MethodNotAllowed => 405,
            Status::RequestTimeout => 408,
            Status::UpgradeRequired => 426,
            Status::TooManyRequests => 429,
            Status::HeadersTooLarge => 431,
            Status::ServiceUnavailable => 503,
        }
    }

    /// The reason phrase.
    pub fn reason(self) -> &'static str {
        match self {
            Status::SwitchingProtocols => "Switching Protocols",
            Status::Ok => "OK",
            Status::BadRequest => "Bad Request",
            Status::Forbidden => "Forbidden",
            Status::NotFound => "Not Found",
            Status::MethodNotAllowed => "Method Not Allowed",
            Status::RequestTimeout => "Request Timeout",
            Status::UpgradeRequired => "Upgrade Required",
            Status::TooManyRequests => "Too Many Requests",
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
    /// `Origin`, if sent (browsers always send it; other clients usually do not).
    pub origin: Option<String>,
    /// `Host`, if sent: a page served by this server has an Origin naming the same host.
    pub host: Option<String>,
    /// The subprotocols offered in `Sec-WebSocket-Protocol`, in the client's order.
    pub protocols: Vec<String>,
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
        origin: None,
        host: None,
        protocols: Vec::new(),
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
        } else if h.name.eq_ignore_ascii_case("origin") {
            out.origin = Some(value.to_owned());
        } else if h.name.eq_ignore_ascii_case("host") {
            out.host = Some(value.to_owned());
        } else if h.name.eq_ignore_ascii_case("sec-websocket-protocol") {
            // RFC 6455 §4.1: a comma-separated list; the header may also repeat.
            out.protocols.extend(
                value
                    .split(',')
                    .map(str::trim)
                    .filter(|p| !p.is_empty())
                    .map(str::to_owned),
            );
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
        /// The subprotocol chosen from the client's offer, if any.
        protocol: Option<String>,
    },
    /// Answer with the server's counters, as JSON (`/stats`) or Prometheus text (`/metrics`).
    Report(Report),
    /// Answer 200 with the chat page ([`page`]) and close.
    Page,
    /// Answer with this status and close.
    Answer(Status),
}

/// Which report a request asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Report {
    /// `GET /stats`: one JSON object.
    Json,
    /// `GET /metrics`: the Prometheus text exposition format.
    Prometheus,
}

impl Report {
    /// The `Content-Type` of this report.
    pub fn content_type(self) -> &'static str {
        match self {
            Report::Json => "application/json",
            Report::Prometheus => "text/plain; version=0.0.4; charset=utf-8",
        }
    }
}

/// What the router needs to know of the server's configuration.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    /// Origins a browser upgrade may come from; empty means any (see `--allowed-origin`).
    pub allowed_origins: Vec<String>,
    /// Subprotocols we speak, in our order of preference (see `--protocol`).
    pub protocols: Vec<String>,
}

/// Decides what a complete request gets.
pub fn route(req: &Request, policy: &Policy) -> Reply {
    if req.upgrade_websocket {
        return route_upgrade(req, policy);
    }
    match (req.method.as_str(), req.path()) {
        ("GET" | "HEAD", "/stats") => Reply::Report(Report::Json),
        ("GET" | "HEAD", "/metrics") => Reply::Report(Report::Prometheus),
        // After the reports: `/stats` and `/metrics` would otherwise look like room names.
        ("GET" | "HEAD", path) if is_page_path(path) => Reply::Page,
        ("GET" | "HEAD", _) => Reply::Answer(Status::NotFound),
        _ => Reply::Answer(Status::MethodNotAllowed),
    }
}

/// `/`, or one segment that could name a room: `/kitchen`, `/r%C3%A9union`. Not `/a/b`,
/// `/kitchen/`, or anything with a dot (`/favicon.ico`): those get 404.
fn is_page_path(path: &str) -> bool {
    match path.strip_prefix('/') {
        Some("") => true,
        Some(room) => !room.contains(['/', '.', '\\']),
        None => false,
    }
}

/// The browser client, compiled in.
pub const PAGE_HTML: &str = include_str!("page.html");

/// Where [`PAGE_HTML`] has the server's `--max-message-bytes` written in, so the page counts a
/// message's bytes against the real limit instead of learning it from a close 1009.
const MAX_MESSAGE_BYTES_MARK: &str = "{max-message-bytes}";

/// The `200 OK` response carrying [`PAGE_HTML`] with `max_message_bytes` written in; `HEAD`
/// gets the same headers and no body. `no-cache` makes a browser check again on each load (it
/// is cheap), so a new server version is never hidden behind a cached old page.
pub fn page(head_only: bool, max_message_bytes: usize) -> Bytes {
    // The page is copied for every request anyway; filling the mark in costs nothing more.
    let body = PAGE_HTML.replacen(MAX_MESSAGE_BYTES_MARK, &max_message_bytes.to_string(), 1);
    let mut out = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\n\
         Cache-Control: no-cache\r\nX-Content-Type-Options: nosniff\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    if !head_only {
        out.extend_from_slice(body.as_bytes());
    }
    Bytes::from(out)
}

/// RFC 6455 §4.2.1: what a server checks in a client's opening handshake.
fn route_upgrade(req: &Request, policy: &Policy) -> Reply {
    // §4.2.1 item 1: the method MUST be GET.
    if req.method != "GET" || !req.connection_upgrade || !req.path().starts_with('/') {
        return Reply::Answer(Status::BadRequest);
    }
    // §4.2.1 item 6 and §4.4: version 13 only; anything else gets 426 naming the one we speak.
    if req.ws_version.as_deref() != Some("13") {
        return Reply::Answer(Status::UpgradeRequired);
    }
    // §4.2.1 item 5: the key is a base64-encoded 16-byte nonce, so 24 characters ending in "==".
    let Some(key) = req
        .ws_key
        .as_deref()
        .filter(|k| k.len() == 24 && k.ends_with("=="))
    else {
        return Reply::Answer(Status::BadRequest);
    };
    // §4.2.2 step 4 and §10.2: browsers name the page's origin; a server that only serves its
    // own pages refuses the others with 403. Clients that send no Origin are not browsers.
    // Our own chat page (served from this host and port) is always allowed.
    if let Some(origin) = &req.origin {
        let allowed = &policy.allowed_origins;
        let same_origin = req.host.as_deref().is_some_and(|host| {
            origin
                .split_once("://")
                .is_some_and(|(_, authority)| authority.eq_ignore_ascii_case(host))
        });
        if !allowed.is_empty()
            && !same_origin
            && !allowed.iter().any(|a| a.eq_ignore_ascii_case(origin))
        {
            return Reply::Answer(Status::Forbidden);
        }
    }
    // §4.2.2 step 5.4 (subprotocol): pick one the client offered that we speak; if there is
    // none, answer without the header, and the client decides whether to go on (§4.1 step 6).
    let protocol = policy
        .protocols
        .iter()
        .find(|ours| req.protocols.iter().any(|p| p == *ours))
        .cloned();
    Reply::Upgrade {
        room: req.path().to_owned(),
        accept: tungstenite::handshake::derive_accept_key(key.as_bytes()),
        protocol,
    }
}

/// The `101 Switching Protocols` response for an accepted upgrade (RFC 6455 §4.2.2 step 5).
pub fn switching_protocols(accept: &str, protocol: Option<&str>) -> Bytes {
    let mut head = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {accept}\r\n"
    );
    if let Some(p) = protocol {
        let _ = write!(head, "Sec-WebSocket-Protocol: {p}\r\n");
    }
    head.push_str("\r\n");
    Bytes::from(head)
}

/// A `200 OK` response carrying `body`, then close (HEAD: the headers only).
pub fn ok(content_type: &str, body: &str, head_only: bool) -> Bytes {
    let mut out = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Cache-Control: no-cache\r\nConnection: close\r\n\r\n",
        body.len()
    );
    if !head_only {
        out.push_str(body);
    }
    Bytes::from(out)
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
        Status::ServiceUnavailable | Status::TooManyRequests => out.push_str("Retry-After: 1\r\n"),
        _ => {}
    }
    out.push_str("\r\n");
    if !head_only {
        let _ = write!(out, "{body}");
    }
    Bytes::from(out)
}

#[cfg(test)]
#[path = "http_tests.rs"]
mod tests;
