//! The bridge against a scripted Redis on a real socket: what it sends, and when it is up.

use super::*;
use std::io::{Read, Write};
use std::net::TcpListener;

/// A scripted Redis: accepts the bridge's two connections and answers what it is told.
struct FakeRedis {
    /// Where the bridge connects.
    listener: TcpListener,
    /// The subscriber's and the publisher's connections, in accept order.
    peers: Vec<std::net::TcpStream>,
}

impl FakeRedis {
    fn start() -> FakeRedis {
        FakeRedis {
            listener: TcpListener::bind("127.0.0.1:0").unwrap(),
            peers: Vec::new(),
        }
    }

    fn options(&self) -> RedisOptions {
        let url = format!("redis://{}", self.listener.local_addr().unwrap());
        let mut opts = RedisOptions::new(&url).unwrap();
        opts.node_id = "me".into();
        opts
    }
}

/// Turns the bridge (polling its sockets) until `done` holds; panics after 5 s.
fn turn_until(
    bridge: &mut Bridge,
    poll: &mut mio::Poll,
    mut done: impl FnMut(&mut Bridge) -> bool,
) {
    let mut events = mio::Events::with_capacity(16);
    let start = Instant::now();
    while !done(bridge) {
        assert!(start.elapsed() < Duration::from_secs(5), "timed out");
        poll.poll(&mut events, Some(Duration::from_millis(10)))
            .unwrap();
        for event in events.iter() {
            bridge.on_event(event);
        }
        bridge.turn(poll.registry(), Instant::now(), false);
    }
}

/// A message published while connecting is queued, not dropped, and its pending reply
/// does not hold the bridge in `Connecting`: the handshake's replies alone bring it `Up`.
#[test]
fn publishing_while_connecting_neither_drops_nor_delays_up() {
    let mut redis = FakeRedis::start();
    let mut poll = mio::Poll::new().unwrap();
    let config = Config::default();
    let tokens = [Token(1), Token(2)];
    let mut bridge = Bridge::new(&redis.options(), tokens, &config, Instant::now());
    bridge.subscribe(RoomId(0), "/r");
    bridge.turn(poll.registry(), Instant::now(), false); // Down → Connecting
    assert!(matches!(bridge.state, State::Connecting { .. }));
    for _ in 0..2 {
        let (peer, _) = redis.listener.accept().unwrap();
        peer.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        redis.peers.push(peer);
    }
    let frame = crate::wire::encode(&tungstenite::Message::text("early"));
    bridge.publish(RoomId(0), &frame);
    assert_eq!(bridge.counters().published, 1);
    assert_eq!(bridge.counters().dropped, 0);
    // Read what each connection sent until the handshake's PING, then answer only that:
    // the subscriber gets its subscribe confirmation and pong, the publisher just its pong.
    let mut seen = [Vec::new(), Vec::new()];
    turn_until(&mut bridge, &mut poll, |_| {
        for (peer, buf) in redis.peers.iter_mut().zip(seen.iter_mut()) {
            peer.set_nonblocking(true).unwrap();
            let mut chunk = [0u8; 4096];
            while let Ok(n @ 1..) = peer.read(&mut chunk) {
                buf.extend_from_slice(&chunk[..n]);
            }
        }
        seen.iter().all(|b| b.windows(4).any(|w| w == b"PING"))
            && seen.iter().any(|b| b.windows(7).any(|w| w == b"PUBLISH"))
    });
    let (sub, publ) = if seen[0].windows(9).any(|w| w == b"SUBSCRIBE") {
        (0, 1)
    } else {
        (1, 0)
    };
    redis.peers[sub]
        .write_all(b"*3\r\n$9\r\nsubscribe\r\n$16\r\nchatloop:room:/r\r\n:1\r\n+PONG\r\n")
        .unwrap();
    redis.peers[publ].write_all(b"+PONG\r\n").unwrap();
    turn_until(&mut bridge, &mut poll, |b| b.counters().connected);
    // The PUBLISH is still owed a reply; the link is up all the same.
    let State::Up { links } = &bridge.state else {
        unreachable!("connected means Up")
    };
    assert_eq!((links.publ.awaiting, links.publ.handshake), (1, 0));
    assert!(seen[publ].ends_with(b"me\n\x81\x05early\r\n"));
}
