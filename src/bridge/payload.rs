//! What travels on a room's channel, and what the bridge makes of what Redis sends it.
//!
//! A payload is `<node id>\n<frame>`: the publishing node's id, so a node can drop its own
//! messages when Redis sends them back, then the WebSocket frame exactly as the server encoded
//! it for its clients (RFC 6455 §5.2). A frame is checked before it reaches a client: Redis is
//! shared, and whatever any of its clients publish on a `chatloop:` channel arrives here.

use super::link::{Link, Role};
use crate::config::MAX_NODE_ID;
use crate::hub::RoomId;
use crate::redis::{self, Status, Value};
use crate::stats::RedisCounters;
use bytes::Bytes;
use std::collections::HashMap;

/// What reading a link needs from the bridge, borrowed apart from its state.
pub(super) struct Reader<'a> {
    /// Our node id: messages tagged with it are our own, back from Redis.
    pub(super) own: &'a [u8],
    /// Room of each subscribed channel.
    pub(super) rooms: &'a HashMap<Box<[u8]>, RoomId>,
    /// Largest bulk string accepted.
    pub(super) max_bulk: usize,
    /// Largest message payload delivered.
    pub(super) max_message: usize,
}

impl Reader<'_> {
    /// Parses every complete reply in `link.rbuf`; messages for local rooms go to `remote`.
    pub(super) fn parse(
        &self,
        link: &mut Link,
        remote: &mut Vec<(RoomId, Bytes)>,
        counters: &mut RedisCounters,
    ) -> Result<(), String> {
        let name = link.role.name();
        let mut pos = 0;
        while pos < link.rbuf.len() {
            let (value, used) = match redis::parse(&link.rbuf[pos..], self.max_bulk) {
                Ok(Status::Complete(v, n)) => (v, n),
                Ok(Status::Partial) => break,
                Err(e) => return Err(format!("{name}: {e}")),
            };
            pos += used;
            let is_reply = match value {
                Value::Error(e) => {
                    return Err(format!("{name}: {}", String::from_utf8_lossy(e)));
                }
                Value::Array(Some(items)) if link.role == Role::Subscriber => match &items[..] {
                    [Value::Bulk(Some(b"message")), Value::Bulk(Some(channel)), Value::Bulk(Some(payload))] =>
                    {
                        self.deliver(channel, payload, remote, counters);
                        false
                    }
                    // (un)subscribe confirmations and a PING's reply in subscribed mode.
                    [Value::Bulk(Some(b"subscribe" | b"unsubscribe" | b"pong")), ..] => true,
                    _ => return Err(format!("{name}: unexpected reply {items:?}")),
                },
                _ => true,
            };
            if is_reply {
                link.handshake = link.handshake.saturating_sub(1);
                link.awaiting = link
                    .awaiting
                    .checked_sub(1)
                    .ok_or_else(|| format!("{name}: a reply to nothing"))?;
            }
        }
        link.rbuf.drain(..pos);
        Ok(())
    }

    /// Hands one message from Redis to its room, unless it is our own or not a frame we may
    /// pass on to clients.
    fn deliver(
        &self,
        channel: &[u8],
        payload: &[u8],
        remote: &mut Vec<(RoomId, Bytes)>,
        counters: &mut RedisCounters,
    ) {
        let split = payload
            .iter()
            .take(MAX_NODE_ID + 1)
            .position(|&b| b == b'\n');
        let Some(split) = split else {
            counters.dropped += 1;
            return;
        };
        let (node, frame) = (&payload[..split], &payload[split + 1..]);
        if node == self.own {
            return; // relayed locally already, when it was sent
        }
        // Unsubscribed a moment ago: the room has no local members any more.
        let Some(&room) = self.rooms.get(channel) else {
            return;
        };
        if !is_deliverable(frame, self.max_message) {
            counters.dropped += 1;
            return;
        }
        counters.received += 1;
        remote.push((room, Bytes::copy_from_slice(frame)));
    }
}

/// True if `frame` is one whole, final, unmasked text or binary frame whose payload fits
/// `max_message` (and is UTF-8 if text): what a server may send a client (RFC 6455 §5.2,
/// §5.1: a server never masks; §5.6: text is UTF-8).
fn is_deliverable(frame: &[u8], max_message: usize) -> bool {
    let [b0, b1, rest @ ..] = frame else {
        return false;
    };
    // 0x81 = FIN + text, 0x82 = FIN + binary; no RSV bits (no extension is negotiated).
    if !matches!(b0, 0x81 | 0x82) || b1 & 0x80 != 0 {
        return false;
    }
    let (len, rest) = match b1 & 0x7f {
        126 if rest.len() >= 2 => (u16::from_be_bytes([rest[0], rest[1]]) as u64, &rest[2..]),
        127 if rest.len() >= 8 => {
            let mut n = [0u8; 8];
            n.copy_from_slice(&rest[..8]);
            (u64::from_be_bytes(n), &rest[8..])
        }
        126 | 127 => return false,
        n => (n as u64, rest),
    };
    if len != rest.len() as u64 || rest.len() > max_message {
        return false;
    }
    *b0 == 0x82 || std::str::from_utf8(rest).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::encode;
    use mio::net::TcpStream;
    use mio::Token;
    use std::time::Instant;
    use tungstenite::Message;

    /// Frames the server encodes pass the check, text and binary, any length encoding.
    #[test]
    fn server_frames_are_deliverable() {
        for msg in [
            Message::text("hi"),
            Message::text("é".repeat(100)),
            Message::binary(vec![0xff; 70_000]),
            Message::binary(Vec::new()),
        ] {
            assert!(is_deliverable(&encode(&msg), 1 << 20), "{msg:?}");
        }
    }

    /// Anything a client must not receive from a server is refused: control or partial
    /// frames, masked frames, wrong lengths, invalid UTF-8, over the message cap.
    #[test]
    fn undeliverable_frames_are_refused() {
        let ok = encode(&Message::text("hello"));
        assert!(!is_deliverable(&ok[..ok.len() - 1], 100), "short");
        assert!(
            !is_deliverable(&[ok.to_vec(), vec![0]].concat(), 100),
            "long"
        );
        assert!(!is_deliverable(&ok, 4), "over the cap");
        assert!(!is_deliverable(&[0x89, 0], 100), "ping");
        assert!(!is_deliverable(&[0x01, 1, b'a'], 100), "not final");
        assert!(
            !is_deliverable(&[0x81, 0x81, 0, 0, 0, 0, b'a'], 100),
            "masked"
        );
        assert!(!is_deliverable(&[0x81, 2, 0xc3, 0x28], 100), "bad UTF-8");
        assert!(!is_deliverable(&[0x81, 126, 0], 100), "truncated length");
        assert!(!is_deliverable(&[], 100));
    }

    fn reader<'a>(rooms: &'a HashMap<Box<[u8]>, RoomId>) -> Reader<'a> {
        Reader {
            own: b"me",
            rooms,
            max_bulk: 1 << 16,
            max_message: 1 << 15,
        }
    }

    fn message(channel: &[u8], node: &[u8], frame: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        redis::array_header(&mut out, 3);
        redis::bulk(&mut out, &[b"message"]);
        redis::bulk(&mut out, &[channel]);
        redis::bulk(&mut out, &[node, b"\n", frame]);
        out
    }

    /// Another node's message reaches its room; our own and those of unknown rooms do not;
    /// a broken one is counted as dropped.
    #[test]
    fn messages_are_routed_to_their_room_except_our_own() {
        let rooms: HashMap<Box<[u8]>, RoomId> = [(b"c:/a".to_vec().into(), RoomId(7))].into();
        let frame = encode(&Message::binary(vec![0, 13, 10, 255]));
        let mut wire = message(b"c:/a", b"other", &frame);
        wire.extend(message(b"c:/a", b"me", &frame));
        wire.extend(message(b"c:/gone", b"other", &frame));
        wire.extend(message(b"c:/a", b"other", b"\x89\x00"));
        let (_, mut link) = test_link();
        link.rbuf = wire;
        let (mut remote, mut counters) = (Vec::new(), RedisCounters::default());
        reader(&rooms)
            .parse(&mut link, &mut remote, &mut counters)
            .unwrap();
        assert_eq!(remote, vec![(RoomId(7), frame)]);
        assert_eq!((counters.received, counters.dropped), (1, 1));
        assert!(link.rbuf.is_empty());
    }

    /// A reply split across reads waits in the buffer; replies settle `awaiting`; an error
    /// reply or a reply to nothing is a fault.
    #[test]
    fn replies_settle_awaiting_and_errors_are_faults() {
        let rooms = HashMap::new();
        let (_, mut link) = test_link();
        link.awaiting = 2;
        link.rbuf = b"*3\r\n$9\r\nsubscribe\r\n$4\r\nc:/a\r\n:1\r\n+PO".to_vec();
        let (mut remote, mut counters) = (Vec::new(), RedisCounters::default());
        let r = reader(&rooms);
        r.parse(&mut link, &mut remote, &mut counters).unwrap();
        assert_eq!((link.awaiting, &link.rbuf[..]), (1, &b"+PO"[..]));
        link.rbuf.extend_from_slice(b"NG\r\n");
        r.parse(&mut link, &mut remote, &mut counters).unwrap();
        assert_eq!(link.awaiting, 0);
        link.rbuf = b"+OK\r\n".to_vec();
        assert!(r.parse(&mut link, &mut remote, &mut counters).is_err());
        link.awaiting = 1;
        link.rbuf = b"-NOAUTH Authentication required.\r\n".to_vec();
        let err = r.parse(&mut link, &mut remote, &mut counters).unwrap_err();
        assert!(err.contains("NOAUTH"), "{err}");
    }

    /// A subscriber link on a loopback socket pair (nothing is sent through it).
    fn test_link() -> (std::net::TcpListener, Link) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let stream = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let mut link = Link::new(Role::Subscriber, stream, Token(0), Instant::now());
        link.connected = true;
        (listener, link)
    }
}
