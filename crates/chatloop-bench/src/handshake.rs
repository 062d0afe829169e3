//! The client's side of the opening handshake (RFC 6455 §4.1): the upgrade request, and the
//! check of the server's `101` answer.
//!
//! A fresh random `Sec-WebSocket-Key` goes out with every request, and the answer must carry
//! `Sec-WebSocket-Accept` = base64(SHA-1(key + the RFC's GUID)) (§4.2.2), which proves the
//! server understood a WebSocket request and did not just echo bytes. The response head is
//! parsed as it arrives: an incomplete head is "need more bytes", not an error.

use crate::target::Target;

/// Largest HTTP response head accepted from the server.
pub const MAX_RESPONSE_HEAD: usize = 8 << 10;

/// A new random `Sec-WebSocket-Key` (16 random bytes, base64).
pub fn new_key() -> String {
    tungstenite::handshake::client::generate_key()
}

/// The upgrade request for `target`, carrying `key` (RFC 6455 §4.1).
pub fn request(target: &Target, key: &str) -> String {
    format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n",
        target.path, target.host
    )
}

/// Parses the server's handshake response at the front of `data`: `Some(head length)` once it
/// is complete and valid, `None` if more bytes are needed, or why it is not an upgrade
/// (RFC 6455 §4.1, §4.2.2).
pub fn check_response(data: &[u8], key: &str) -> Result<Option<usize>, String> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut response = httparse::Response::new(&mut headers);
    let head = match response.parse(data) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if data.len() > MAX_RESPONSE_HEAD => {
            return Err("response head too large".into())
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(format!("bad response: {e}")),
    };
    if response.code != Some(101) {
        return Err(format!(
            "HTTP {} instead of 101",
            response.code.unwrap_or(0)
        ));
    }
    let accept = response
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("sec-websocket-accept"))
        .map(|h| h.value);
    let expected = tungstenite::handshake::derive_accept_key(key.as_bytes());
    if accept != Some(expected.as_bytes()) {
        return Err("wrong Sec-WebSocket-Accept".into());
    }
    Ok(Some(head))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The sample key and accept value of RFC 6455 §1.3.
    const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
    const ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

    /// A `101` with the right accept value is complete once its blank line arrives.
    #[test]
    fn upgrade_answer_is_accepted_once_complete() {
        let head = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: {ACCEPT}\r\n\r\n"
        );
        let mut data = head.clone().into_bytes();
        data.extend_from_slice(&[0x82, 0]); // a frame right behind the head stays unread
        assert_eq!(check_response(&data[..head.len() - 1], KEY), Ok(None));
        assert_eq!(check_response(&data, KEY), Ok(Some(head.len())));
    }

    /// Another status, a wrong accept value or an endless head is a failed handshake.
    #[test]
    fn anything_but_a_proper_upgrade_fails() {
        let not_101 = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n";
        assert!(check_response(not_101, KEY).unwrap_err().contains("404"));
        let wrong = b"HTTP/1.1 101 OK\r\nSec-WebSocket-Accept: nope\r\n\r\n";
        assert!(check_response(wrong, KEY).is_err());
        let endless = format!("HTTP/1.1 101 OK\r\nX: {}", "y".repeat(MAX_RESPONSE_HEAD));
        assert!(check_response(endless.as_bytes(), KEY).is_err());
    }

    /// The request names the path, the host, the key and version 13.
    #[test]
    fn request_carries_path_host_and_key() {
        let target = Target::parse("ws://127.0.0.1:9/room").unwrap();
        let r = request(&target, KEY);
        assert!(r.starts_with("GET /room HTTP/1.1\r\nHost: 127.0.0.1:9\r\n"));
        assert!(r.contains(&format!("Sec-WebSocket-Key: {KEY}\r\n")));
        assert!(r.contains("Sec-WebSocket-Version: 13\r\n") && r.ends_with("\r\n\r\n"));
    }
}
