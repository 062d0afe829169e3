//! Fuzzes the HTTP layer every connection starts in: `http::parse` on arbitrary bytes, then
//! `http::route` and the response it leads to.
//!
//! Besides "never panics", it checks the one property the connection relies on when it
//! re-parses a growing head (`conn/request.rs`, Request phase): the parser is a push parser, so a
//! complete head of `n` bytes parses the same from its first `n` bytes alone, and one byte
//! fewer is only "need more", never an error.

#![no_main]

use chatloop::http::{self, Policy, Reply};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // A policy with both lists set, so the origin and subprotocol branches run too.
    let policy = Policy {
        allowed_origins: vec!["https://chat.example".into()],
        protocols: vec!["chat".into(), "chat.v2".into()],
    };
    let (request, n) = match http::parse(data) {
        Ok(Some(parsed)) => parsed,
        Ok(None) => return,
        Err(status) => {
            let answer = http::response(status, false);
            assert!(answer.starts_with(b"HTTP/1.1 4"), "errors are 4xx answers");
            return;
        }
    };
    assert!(n > 0 && n <= data.len(), "head length {n} within the input");
    let again = http::parse(&data[..n]).expect("the head alone parses");
    assert_eq!(
        again.map(|(_, m)| m),
        Some(n),
        "the head alone is the same head"
    );
    assert_eq!(
        http::parse(&data[..n - 1]),
        Ok(None),
        "a cut head is Partial"
    );
    match http::route(&request, &policy) {
        Reply::Upgrade {
            room,
            accept,
            protocol,
        } => {
            assert!(room.starts_with('/'), "rooms are paths");
            assert_eq!(accept.len(), 28, "base64 of a SHA-1");
            let head = http::switching_protocols(&accept, protocol.as_deref());
            assert!(head.ends_with(b"\r\n\r\n"));
        }
        Reply::Report(report) => {
            let _ = http::ok(report.content_type(), "{}", request.method == "HEAD");
        }
        Reply::Page => {
            let max = chatloop::config::DEFAULT_MAX_MESSAGE_BYTES;
            let page = http::page(request.method == "HEAD", max);
            assert!(page.starts_with(b"HTTP/1.1 200 OK\r\n"));
        }
        Reply::Answer(status) => {
            let answer = http::response(status, request.method == "HEAD");
            assert!(answer.starts_with(b"HTTP/1.1 "));
        }
    }
});
