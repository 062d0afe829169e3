//! Qt's semantics over real sockets: relay to the others in the room, echo to the sender.

mod common;

use common::*;
use std::time::Duration;
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::CloseFrame;
use tungstenite::Message;

/// A text message reaches every other client in the room and never comes back to its sender.
#[test]
fn message_goes_to_the_others_not_the_sender() {
    let server = TestServer::start();
    let mut a = connect(&server, "/");
    let mut b = connect(&server, "/");
    let mut c = connect(&server, "/");
    a.send(Message::text("hello")).unwrap();
    assert_eq!(recv(&mut b), Message::text("hello"));
    assert_eq!(recv(&mut c), Message::text("hello"));
    assert_silent(&mut a, Duration::from_millis(200));
}

/// Binary messages are relayed as binary, byte for byte.
#[test]
fn binary_is_relayed_as_binary() {
    let server = TestServer::start();
    let mut a = connect(&server, "/");
    let mut b = connect(&server, "/");
    let payload: Vec<u8> = (0..=255).collect();
    a.send(Message::binary(payload.clone())).unwrap();
    assert_eq!(recv(&mut b), Message::binary(payload));
}

/// Rooms are isolated: `/a` never hears `/b`, and `/` is a room of its own.
#[test]
fn rooms_are_isolated() {
    let server = TestServer::start();
    let mut a1 = connect(&server, "/a");
    let mut a2 = connect(&server, "/a");
    let mut b1 = connect(&server, "/b");
    let mut root = connect(&server, "/");
    a1.send(Message::text("for a")).unwrap();
    b1.send(Message::text("for b")).unwrap();
    assert_eq!(recv(&mut a2), Message::text("for a"));
    assert_silent(&mut b1, Duration::from_millis(200));
    assert_silent(&mut root, Duration::from_millis(50));
}

/// A query string does not change the room: `/a?x=1` is room `/a`.
#[test]
fn query_string_is_not_part_of_the_room() {
    let server = TestServer::start();
    let mut a = connect(&server, "/a?nick=x");
    let mut b = connect(&server, "/a");
    a.send(Message::text("hi")).unwrap();
    assert_eq!(recv(&mut b), Message::text("hi"));
}

/// Each sender's messages arrive in the order sent, at every receiver.
#[test]
fn per_sender_order_is_kept() {
    let server = TestServer::start();
    let mut s1 = connect(&server, "/");
    let mut s2 = connect(&server, "/");
    let mut r = connect(&server, "/");
    const N: u32 = 2000;
    for i in 0..N {
        s1.write(Message::text(format!("1:{i}"))).unwrap();
        s2.write(Message::text(format!("2:{i}"))).unwrap();
    }
    s1.flush().unwrap();
    s2.flush().unwrap();
    let mut next = [0u32; 2];
    for _ in 0..2 * N {
        let text = recv(&mut r).into_text().unwrap();
        let (who, seq) = text.split_once(':').unwrap();
        let who: usize = who.parse::<usize>().unwrap() - 1;
        assert_eq!(seq.parse::<u32>().unwrap(), next[who], "sender {who}");
        next[who] += 1;
    }
    // The senders hear each other too, in order; drain so closing is clean.
    drop((s1, s2));
}

/// A room bigger than one turn's writes (`FLUSH_PER_TURN`, 64): the members are written over
/// several turns while the senders go on sending, and every member still gets every message
/// of the others, each sender's in order, and none of its own.
#[test]
fn a_room_bigger_than_a_turns_writes_gets_everything_in_order() {
    let server = TestServer::start();
    let mut members: Vec<_> = (0..200).map(|_| connect(&server, "/big")).collect();
    const N: u32 = 300;
    for i in 0..N {
        for (who, m) in members[..2].iter_mut().enumerate() {
            m.send(Message::text(format!("{who}:{i}"))).unwrap();
        }
    }
    for (at, m) in members.iter_mut().enumerate() {
        let mut next = [0u32; 2];
        let expected = if at < 2 { N } else { 2 * N };
        for _ in 0..expected {
            let text = recv(m).into_text().unwrap();
            let (who, seq) = text.split_once(':').unwrap();
            let who: usize = who.parse().unwrap();
            assert_ne!(who, at, "member {at} got its own message back");
            assert_eq!(
                seq.parse::<u32>().unwrap(),
                next[who],
                "member {at}, sender {who}"
            );
            next[who] += 1;
        }
    }
    assert_silent(&mut members[199], Duration::from_millis(100));
}

/// In echo mode a message comes back to its sender, and to nobody else.
#[test]
fn echo_mode_returns_to_sender_only() {
    let server = TestServer::with(|c| c.mode = chatloop::Mode::Echo);
    let mut a = connect(&server, "/");
    let mut b = connect(&server, "/");
    a.send(Message::text("ping me")).unwrap();
    a.send(Message::binary(vec![1, 2, 3])).unwrap();
    assert_eq!(recv(&mut a), Message::text("ping me"));
    assert_eq!(recv(&mut a), Message::binary(vec![1, 2, 3]));
    assert_silent(&mut b, Duration::from_millis(200));
}

/// A client's Close is echoed, then the server closes the TCP connection (RFC 6455 §7.1.1).
#[test]
fn close_handshake_is_completed() {
    // The others stay connected.
    let server = TestServer::start();
    let mut a = connect(&server, "/");
    let mut b = connect(&server, "/");
    a.close(Some(CloseFrame {
        code: CloseCode::Normal,
        reason: "bye".into(),
    }))
    .unwrap();
    assert_eq!(expect_close(&mut a), 1000);
    // After the handshake the next read reports the end of the connection.
    assert!(matches!(
        a.read(),
        Err(tungstenite::Error::ConnectionClosed)
    ));
    b.send(Message::text("still here")).unwrap();
    let mut c = connect(&server, "/");
    b.send(Message::text("hello c")).unwrap();
    assert_eq!(recv(&mut c), Message::text("hello c"));
}

/// A client that vanishes without a Close (TCP reset or FIN) leaves the others unaffected.
#[test]
fn abrupt_disconnect_leaves_others_unaffected() {
    let server = TestServer::start();
    let mut a = connect(&server, "/");
    let mut b = connect(&server, "/");
    let gone = connect(&server, "/");
    drop(gone); // FIN without a Close frame
    let reset = connect(&server, "/");
    reset.get_ref().shutdown(std::net::Shutdown::Both).unwrap();
    drop(reset);
    for i in 0..50 {
        a.send(Message::text(format!("{i}"))).unwrap();
    }
    for i in 0..50 {
        assert_eq!(recv(&mut b), Message::text(format!("{i}")));
    }
}

/// A server stopped through its handle sends Close 1001 to every client and `run` returns Ok.
#[test]
fn shutdown_sends_1001_to_everyone() {
    let server = TestServer::start();
    let mut clients: Vec<_> = (0..3).map(|_| connect(&server, "/")).collect();
    // Make sure all three are registered before stopping.
    clients[0].send(Message::text("sync")).unwrap();
    recv(&mut clients[1]);
    recv(&mut clients[2]);
    let stopper = std::thread::spawn(move || server.stop());
    for c in &mut clients {
        assert_eq!(expect_close(c), 1001);
    }
    drop(clients);
    stopper.join().unwrap().expect("run returns Ok");
}

/// The server listens on IPv6 too (`--listen [::1]:PORT`).
#[test]
#[ignore = "needs an IPv6 loopback (::1)"]
fn listens_on_ipv6() {
    if let Err(e) = std::net::TcpListener::bind("[::1]:0") {
        missing_tool(&format!("an IPv6 loopback (binding [::1]:0: {e})"));
    }
    let server = TestServer::with(|c| c.listen = "[::1]:0".parse().unwrap());
    assert!(server.addr.is_ipv6());
    let mut a = connect(&server, "/");
    let mut b = connect(&server, "/");
    a.send(Message::text("over v6")).unwrap();
    assert_eq!(recv(&mut b), Message::text("over v6"));
}
