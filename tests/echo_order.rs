//! Echo mode keeps a connection's frames in order: a message that arrives in the same read as
//! a Close or a protocol error is echoed before the server's Close (RFC 6455 §5.5.1: nothing
//! follows a Close). Autobahn cases 3.2–3.4, 4.1.3–4.2.5, 5.15 and 7.1.6 send such bursts.

mod common;

use common::{client_frame, connect, expect_close, recv, TestServer};
use std::io::Write;
use tungstenite::Message;

/// Text, then a frame with a reserved bit set, in one write: the echo comes before Close 1002.
#[test]
fn echo_comes_before_the_protocol_error_close() {
    let server = TestServer::with(|c| c.mode = chatloop::Mode::Echo);
    let mut ws = connect(&server, "/");
    let mut burst = client_frame(0x81, b"first");
    // 0xA1 = FIN | RSV2 | text: RSV2 with no extension negotiated fails the connection (§5.2).
    burst.extend(client_frame(0xA1, b"second"));
    ws.get_mut().write_all(&burst).unwrap();
    assert_eq!(recv(&mut ws), Message::text("first"));
    assert_eq!(expect_close(&mut ws), 1002);
}

/// Text, then the client's Close, in one write: the echo comes before the Close 1000 reply.
#[test]
fn echo_comes_before_the_close_reply() {
    let server = TestServer::with(|c| c.mode = chatloop::Mode::Echo);
    let mut ws = connect(&server, "/");
    let mut burst = client_frame(0x81, b"last words");
    // 0x88 = FIN | close, payload = status 1000 (§5.5.1).
    burst.extend(client_frame(0x88, &1000u16.to_be_bytes()));
    ws.get_mut().write_all(&burst).unwrap();
    assert_eq!(recv(&mut ws), Message::text("last words"));
    assert_eq!(expect_close(&mut ws), 1000);
}
