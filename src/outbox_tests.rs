//! The outbox's unit tests: a writer that behaves like a full socket, and the charges.

use super::*;

/// A writer that takes at most `room` bytes, then says `WouldBlock`, like a full socket.
struct Pipe {
    got: Vec<u8>,
    room: usize,
    calls: usize,
}

impl Write for Pipe {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_vectored(&[IoSlice::new(buf)])
    }
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.calls += 1;
        if self.room == 0 {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let mut n = 0;
        for b in bufs {
            let take = b.len().min(self.room);
            self.got.extend_from_slice(&b[..take]);
            self.room -= take;
            n += take;
        }
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn pipe(room: usize) -> Pipe {
    Pipe {
        got: Vec::new(),
        room,
        calls: 0,
    }
}

/// A push past the cap is refused and changes nothing; each chunk is charged its cost.
#[test]
fn push_past_cap_is_refused() {
    let meter = Meter::default();
    let mut o = Outbox::new(2 * CHUNK_COST + 10, meter.clone());
    assert_eq!(o.push(Bytes::from_static(b"123456")), Ok(()));
    assert_eq!(o.push(Bytes::from_static(b"12345")), Err(Full));
    assert_eq!(o.len(), 6);
    assert_eq!((o.held(), meter.get()), (6 + CHUNK_COST, 6 + CHUNK_COST));
    assert_eq!(meter.behind(), 1, "more than half full");
}

/// A flood of empty messages fills the cap with their cost, not with nothing: what an
/// outbox holds stays within its cap however small the chunks.
#[test]
fn tiny_chunks_are_charged_what_they_hold() {
    let cap = 64 << 10;
    let mut o = Outbox::new(cap, Meter::default());
    let empty_frame = Bytes::from_static(&[0x82, 0]);
    let mut queued = 0;
    while o.push(empty_frame.clone()).is_ok() {
        queued += 1;
    }
    assert_eq!(queued, cap / (2 + CHUNK_COST));
    assert!(o.held() <= cap);
}

/// Slices of a shared buffer are charged the whole buffer once, until the last is written;
/// the room's meter follows the server's.
#[test]
fn slices_charge_their_whole_buffer_until_written() {
    let (server, room) = (Meter::default(), Meter::default());
    let mut o = Outbox::new(1 << 20, server.clone());
    o.join(room.clone());
    // The member's own frame sits in the middle: it gets what is around it.
    let buf = Bytes::from_static(b"aaOWNbb");
    o.push_shared(&[buf.slice(0..2), buf.slice(5..7)], buf.len())
        .unwrap();
    assert_eq!(o.len(), 4);
    assert_eq!(o.held(), 7 + 2 * CHUNK_COST);
    assert_eq!((server.get(), room.get()), (o.held(), o.held()));
    let mut p = pipe(3);
    o.write_to(&mut p).unwrap();
    assert_eq!(
        o.held(),
        1 + 3 + CHUNK_COST,
        "the last slice still holds the buffer"
    );
    p.room = 10;
    o.write_to(&mut p).unwrap();
    assert_eq!(p.got, b"aabb");
    assert_eq!((o.held(), server.get(), room.get()), (0, 0, 0));
}

/// Slices that would pass the cap are refused all together.
#[test]
fn shared_slices_are_all_or_nothing() {
    let mut o = Outbox::new(100 + 2 * CHUNK_COST, Meter::default());
    let buf = Bytes::from(vec![7u8; 101]);
    let slices = [buf.slice(0..50), buf.slice(51..101)];
    assert_eq!(o.push_shared(&slices, buf.len()), Err(Full));
    assert!(o.is_empty() && o.held() == 0);
    assert_eq!(o.push_shared(&slices[..1], 50), Ok(()));
}

/// Many chunks go out in one vectored write, in order, and the meter follows.
#[test]
fn chunks_are_written_in_order_with_few_calls() {
    let meter = Meter::default();
    let mut o = Outbox::new(1 << 20, meter.clone());
    for i in 0..1100u32 {
        o.push(Bytes::from(vec![i as u8; 3])).unwrap();
    }
    let mut p = pipe(usize::MAX);
    assert_eq!(o.write_to(&mut p).unwrap(), 3300);
    assert_eq!(
        p.calls, 2,
        "1100 chunks take two writev calls of up to 1024"
    );
    assert!(p.got.chunks(3).enumerate().all(|(i, c)| c == [i as u8; 3]));
    assert_eq!(meter.get(), 0);
    assert!(o.is_empty());
}

/// A short write leaves the rest of the front chunk queued and resumes from it.
#[test]
fn partial_write_resumes_mid_chunk() {
    let mut o = Outbox::new(1000, Meter::default());
    o.push(Bytes::from_static(b"hello ")).unwrap();
    o.push(Bytes::from_static(b"world")).unwrap();
    let mut p = pipe(4);
    assert_eq!(o.write_to(&mut p).unwrap(), 4);
    assert!(o.mid_chunk);
    p.room = 100;
    o.write_to(&mut p).unwrap();
    assert_eq!(p.got, b"hello world");
}

/// Discarding keeps the partly written front chunk so the peer still sees whole frames.
#[test]
fn discard_keeps_a_partly_written_front() {
    let meter = Meter::default();
    let mut o = Outbox::new(1000, meter.clone());
    o.push(Bytes::from_static(b"abcdef")).unwrap();
    o.push(Bytes::from_static(b"ghij")).unwrap();
    o.write_to(&mut pipe(2)).unwrap();
    assert_eq!(o.discard(), 4);
    assert_eq!(o.len(), 4);
    assert_eq!(meter.get(), 4 + CHUNK_COST);
    drop(o);
    assert_eq!(meter.get(), 0, "a dropped outbox leaves the meter");
    assert_eq!(meter.behind(), 0);
}

/// What the docs say a chunk costs on a 64-bit target (a 40-byte slot, counted twice, and 64
/// bytes of allocation).
#[test]
#[cfg(target_pointer_width = "64")]
fn a_chunk_costs_144_bytes_on_64_bit() {
    assert_eq!(CHUNK_COST, 144);
}
