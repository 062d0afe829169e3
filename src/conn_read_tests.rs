//! The connection's reading, over an in-memory socket with time passed in: one read per
//! readable event on a TCP-like socket, the bound on what a closing connection reads, the
//! read buffer given back after a big message, and closes tallied as they happen.

use super::tests::Rig;
use super::*;
use crate::testing::client_frame as frame;
use tungstenite::protocol::frame::coding::CloseCode;

/// Reads turn after turn until the connection is closed or has read everything, as the
/// server would with a peer that keeps sending; returns the bytes it read.
fn read_all_it_will(rig: &mut Rig) -> usize {
    let queued = |rig: &Rig| rig.conn.socket.input.iter().map(Vec::len).sum::<usize>();
    let before = queued(rig);
    for _ in 0..1000 {
        if rig.conn.is_closed() || rig.conn.socket.input.is_empty() {
            break;
        }
        rig.read();
    }
    before - queued(rig)
}

/// On a TCP-like socket a turn that reads one message makes one read: the short read said
/// the socket was empty, so there is no second read to hear `WouldBlock`.
#[test]
fn one_message_costs_one_read_on_tcp() {
    let mut rig = Rig::open();
    rig.conn.socket.tcp = true;
    rig.conn.socket.reads = 0;
    rig.feed(&frame(0x1, b"hello"));
    assert_eq!(rig.relayed.len(), 1);
    assert_eq!(rig.conn.socket.reads, 1);
}

/// After our Close a peer that keeps sending is read for at most CLOSING_READ_BYTES, then
/// dropped; the rest of its flood is never read.
#[test]
fn a_closing_connection_reads_a_bounded_amount() {
    let mut rig = Rig::open();
    rig.conn.close(CloseCode::Away, "bye", rig.now);
    let flood = frame(0x2, &[b'f'; 16 << 10]);
    for _ in 0..20 {
        rig.conn.socket.push(&flood);
    }
    let read = read_all_it_will(&mut rig);
    assert!(
        rig.conn.is_closed(),
        "dropped, not waiting for --close-timeout"
    );
    assert!(read <= CLOSING_READ_BYTES, "read {read} bytes");
    assert!(!rig.conn.socket.input.is_empty(), "the rest was never read");
}

/// A lingering connection (after an HTTP answer) has the same bound.
#[test]
fn a_lingering_connection_reads_a_bounded_amount() {
    let mut rig = Rig::new();
    rig.feed(b"GET /nothing-here.txt HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(rig.take_out().starts_with(b"HTTP/1.1 404 "));
    for _ in 0..40 {
        rig.conn.socket.push(&[b'g'; 4096]);
    }
    let read = read_all_it_will(&mut rig);
    assert!(rig.conn.is_closed());
    assert!(read <= CLOSING_READ_BYTES, "read {read} bytes");
}

/// A peer that had data in flight when our Close went out, then answers with its own Close,
/// completes the closing handshake: the bound leaves room for it.
#[test]
fn a_close_behind_some_data_still_completes_the_handshake() {
    let mut rig = Rig::open();
    rig.conn.close(CloseCode::Away, "bye", rig.now);
    rig.conn.flush(rig.now);
    for _ in 0..3 {
        rig.feed(&frame(0x2, &[b'd'; 16 << 10]));
    }
    rig.feed(&frame(0x8, &1001u16.to_be_bytes()));
    assert_eq!(rig.conn.take_tally().close_received, Some(1001));
    assert!(rig.conn.is_closed(), "handshake done: closed");
}

/// True once the connection's tungstenite context has been swapped for a small one since the
/// last big frame.
fn buffer_given_back(rig: &Rig) -> bool {
    match &rig.conn.phase {
        Phase::Open { edges, .. } => !edges.grown(),
        other => panic!("not open: {other}"),
    }
}

/// Delivers `bytes` and reads turn after turn until they are all read (a turn of the rig
/// reads 16 KiB at most).
fn feed_whole(rig: &mut Rig, bytes: &[u8]) {
    rig.conn.socket.push(bytes);
    read_all_it_will(rig);
}

/// After a big message the context is swapped for a fresh one, and nothing of the protocol
/// is lost: a fragmented message split across reads with a Ping between its fragments, then
/// an ordinary message, all come through, and the Ping is answered.
#[test]
fn a_big_message_gives_its_buffer_back_and_nothing_is_lost() {
    let mut rig = Rig::open();
    feed_whole(&mut rig, &frame(0x2, &vec![b'b'; 60_000]));
    assert_eq!(rig.relayed.len(), 1);
    assert!(buffer_given_back(&rig));
    let mut start = frame(0x1, &[b'x'; 3000]);
    start[0] &= 0x7f; // no FIN: the first fragment
    let rest = [frame(0x9, b"p"), frame(0x0, b"-end"), frame(0x1, b"after")].concat();
    // Reads that end mid-frame: no swap may happen there.
    rig.feed(&start[..1000]);
    rig.feed(&start[1000..]);
    rig.feed(&rest[..3]);
    rig.feed(&rest[3..]);
    assert_eq!(rig.relayed.len(), 3);
    assert_eq!(
        &rig.relayed[1][..4],
        b"\x81\x7e\x0b\xbc",
        "text, 3004 bytes"
    );
    assert!(rig.relayed[1].ends_with(b"x-end"));
    assert_eq!(&rig.relayed[2][..], b"\x81\x05after");
    assert!(rig.take_out().starts_with(b"\x8a\x01p"), "the Pong");
    assert!(buffer_given_back(&rig));
}

/// A big message followed in the same read by part of the next frame: no swap while
/// tungstenite holds that part, and the next frame completes whole.
#[test]
fn no_swap_while_part_of_a_frame_is_held() {
    let mut rig = Rig::open();
    let mut bytes = frame(0x2, &vec![b'b'; 5000]);
    let next = frame(0x1, b"next");
    bytes.extend_from_slice(&next[..3]);
    rig.feed(&bytes);
    assert!(!buffer_given_back(&rig), "part of a frame is held");
    rig.feed(&next[3..]);
    assert_eq!(&rig.relayed[1][..], b"\x81\x04next");
    assert!(buffer_given_back(&rig));
}

/// The peer's Close is tallied as received and, echoed, as sent, in the call that read it;
/// our own Close is tallied once, and the peer's answer to it as received.
#[test]
fn closes_are_tallied_when_they_happen() {
    let mut rig = Rig::open();
    rig.feed(&frame(0x8, &1000u16.to_be_bytes()));
    let tally = rig.conn.take_tally();
    assert_eq!(
        (tally.close_received, tally.close_sent),
        (Some(1000), Some(1000))
    );

    let mut rig = Rig::open();
    rig.conn.close(CloseCode::Away, "bye", rig.now);
    rig.conn.close(CloseCode::Away, "bye again", rig.now);
    assert_eq!(rig.conn.take_tally().close_sent, Some(1001));
    rig.feed(&frame(0x8, &1001u16.to_be_bytes()));
    let tally = rig.conn.take_tally();
    assert_eq!((tally.close_received, tally.close_sent), (Some(1001), None));
}
