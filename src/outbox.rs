//! The bounded per-connection queue of bytes waiting to be written to one socket.
//!
//! Every byte the server sends goes through a connection's [`Outbox`]: the HTTP response, the
//! relayed messages, tungstenite's pongs and close frames. Keeping one queue per socket keeps
//! their order, which RFC 6455 needs (a Close must come after the data it ends).
//!
//! ```text
//!   hub fan-out ──push(frame.clone())──▶ ┌──────────── Outbox ─────────────┐
//!   (one encoded frame, many clones)     │ [hdr|msg] [hdr|msg] [pong] ...  │ ──writev──▶ socket
//!   tungstenite control frames ─push──▶  └─────────────────────────────────┘  (up to 1024
//!                                            bytes: counted, bounded            chunks per call)
//! ```
//!
//! Chunks are [`Bytes`]: a broadcast is encoded once and each recipient holds a refcounted
//! clone, so 1,000 recipients of a 64 KiB message cost one 64 KiB buffer, not 64 MiB.
//!
//! Two limits live here, and they are different things:
//! - the per-connection cap (`--max-queue-bytes`): [`Outbox::push`] refuses a chunk that would
//!   go past it, and the caller drops the connection as a slow consumer;
//! - the server-wide [`Meter`]: the bytes queued in all outboxes and how many outboxes are
//!   *behind* (more than half full). The server stops reading new messages while the bytes
//!   pass its high-water mark or any outbox is behind, and drops the outboxes that stay behind
//!   for `--lag-timeout`, unless most are behind: then the bottleneck is the server or the
//!   network, not one slow reader (the policy is `backpressure.rs`).
//!
//! The outbox never sees a socket: [`Outbox::write_to`] takes any [`Write`], which is how the
//! unit tests below drive it.

use bytes::{Buf, Bytes};
use std::cell::Cell;
use std::collections::VecDeque;
use std::io::{self, IoSlice, Write};
use std::rc::Rc;

/// Most chunks handed to one `writev(2)`: Linux's limit (`UIO_MAXIOV`, also macOS's `IOV_MAX`).
/// Each `writev` costs microseconds of kernel work (copy, TCP, waking the reader) whatever it
/// carries, and under fan-out a recipient's outbox holds many small frames at once, so the
/// more frames per call, the fewer calls per delivery. The slice array is 16 KiB of stack.
pub const MAX_IOV: usize = 1024;

/// Chunks a small `writev` is built for (on the stack, 256 bytes of slices).
const FEW_IOV: usize = 16;

/// Capacity an emptied queue may keep. A connection that once held thousands of chunks gives the
/// memory back; one that holds a few keeps its small buffer and does not reallocate.
const KEEP_CAPACITY: usize = 16;

/// What all outboxes of one server hold together, shared by them (single-threaded, so
/// `Rc<Cell>`): the bytes queued, and how many outboxes are *behind* (more than half full).
///
/// The server reads both to decide whether to pause reading (see `backpressure.rs`).
#[derive(Clone, Debug, Default)]
pub struct Meter(Rc<MeterCells>);

#[derive(Debug, Default)]
struct MeterCells {
    bytes: Cell<usize>,
    behind: Cell<usize>,
}

impl Meter {
    /// Bytes queued right now, across all outboxes sharing this meter.
    pub fn get(&self) -> usize {
        self.0.bytes.get()
    }

    /// Outboxes more than half full right now.
    pub fn behind(&self) -> usize {
        self.0.behind.get()
    }

    fn add(&self, n: usize) {
        self.0.bytes.set(self.0.bytes.get() + n);
    }

    fn sub(&self, n: usize) {
        self.0.bytes.set(self.0.bytes.get() - n);
    }

    fn set_behind(&self, was: bool, is: bool) {
        match (was, is) {
            (false, true) => self.0.behind.set(self.0.behind.get() + 1),
            (true, false) => self.0.behind.set(self.0.behind.get() - 1),
            _ => {}
        }
    }
}

/// The push would take the outbox past its cap: the connection is a slow consumer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Full;

/// One connection's queue of outgoing bytes. See the module docs.
#[derive(Debug)]
pub struct Outbox {
    /// Chunks in send order; the front one may be partly written (it is advanced in place).
    chunks: VecDeque<Bytes>,
    /// Bytes in `chunks`, so the cap check is O(1).
    bytes: usize,
    /// The per-connection cap in bytes (`--max-queue-bytes`).
    cap: usize,
    /// The server-wide total this outbox contributes to.
    meter: Meter,
    /// The front chunk has been partly written (so a frame boundary is not at the front).
    mid_chunk: bool,
    /// More than half of `cap` is queued; counted in the meter's `behind`.
    behind: bool,
}

impl Outbox {
    /// An empty outbox that holds at most `cap` bytes and reports to `meter`.
    pub fn new(cap: usize, meter: Meter) -> Outbox {
        Outbox {
            chunks: VecDeque::new(),
            bytes: 0,
            cap,
            meter,
            mid_chunk: false,
            behind: false,
        }
    }

    /// Queues `chunk`, or refuses it with [`Full`] if that would pass the cap.
    pub fn push(&mut self, chunk: Bytes) -> Result<(), Full> {
        if self.bytes + chunk.len() > self.cap {
            return Err(Full);
        }
        self.push_unchecked(chunk);
        Ok(())
    }

    /// Queues `chunk` whatever the cap says. For the few small things the server itself must
    /// say (an HTTP response, a close frame); the cap is checked again after them.
    pub fn push_unchecked(&mut self, chunk: Bytes) {
        if chunk.is_empty() {
            return;
        }
        self.bytes += chunk.len();
        self.meter.add(chunk.len());
        self.chunks.push_back(chunk);
        self.update_behind();
    }

    /// Keeps `behind` and the meter's count of behind outboxes in step with `bytes`.
    fn update_behind(&mut self) {
        let behind = self.bytes > self.cap / 2;
        self.meter.set_behind(self.behind, behind);
        self.behind = behind;
    }

    /// Bytes waiting to be written.
    pub fn len(&self) -> usize {
        self.bytes
    }

    /// True when more than half the cap is queued.
    pub fn is_behind(&self) -> bool {
        self.behind
    }

    /// True when nothing waits to be written.
    pub fn is_empty(&self) -> bool {
        self.bytes == 0
    }

    /// True when more than the cap is queued (possible only through `push_unchecked`).
    pub fn is_over_cap(&self) -> bool {
        self.bytes > self.cap
    }

    /// Drops everything queued except the unwritten rest of a partly written front chunk, which
    /// must still go out whole for the peer to find the next frame boundary. Returns the bytes
    /// dropped. Used when a slow consumer is cut off.
    pub fn discard(&mut self) -> usize {
        let keep = if self.mid_chunk {
            self.chunks.pop_front()
        } else {
            None
        };
        let dropped = self.bytes - keep.as_ref().map_or(0, Bytes::len);
        self.meter.sub(dropped);
        self.bytes -= dropped;
        self.chunks.clear();
        self.chunks.shrink_to(KEEP_CAPACITY);
        if let Some(front) = keep {
            self.chunks.push_back(front);
        }
        self.update_behind();
        dropped
    }

    /// Writes as much as `w` takes, up to [`MAX_IOV`] chunks per call, until the queue is empty
    /// or `w` would block. Returns the bytes written; `WouldBlock` is not an error here (the
    /// caller learns it from a non-empty queue), any other error is returned.
    ///
    /// Why a loop: readiness is edge-triggered (mio), so after a WRITABLE event we must write
    /// until the kernel says `WouldBlock`, or we may never hear from this socket again.
    pub fn write_to(&mut self, w: &mut impl Write) -> io::Result<usize> {
        let mut written = 0;
        while !self.chunks.is_empty() {
            // A few chunks is the common case: building all MAX_IOV slices would cost a 16 KiB
            // memset per call, which profiling showed as most of the loop's own CPU at a
            // fixed message rate.
            let result = if self.chunks.len() <= FEW_IOV {
                write_front::<FEW_IOV>(&self.chunks, w)
            } else {
                write_front::<MAX_IOV>(&self.chunks, w)
            };
            match result {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(k) => {
                    self.consume(k);
                    written += k;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
        if self.chunks.is_empty() && self.chunks.capacity() > KEEP_CAPACITY {
            self.chunks.shrink_to(KEEP_CAPACITY);
        }
        Ok(written)
    }

    /// Removes `k` written bytes from the front.
    fn consume(&mut self, mut k: usize) {
        self.bytes -= k;
        self.meter.sub(k);
        while k > 0 {
            // `k` never exceeds the bytes queued: a writer reports at most what it was given.
            let front = self.chunks.front_mut().expect("written more than queued");
            if k >= front.len() {
                k -= front.len();
                self.chunks.pop_front();
                self.mid_chunk = false;
            } else {
                front.advance(k);
                self.mid_chunk = true;
                k = 0;
            }
        }
        self.update_behind();
    }
}

/// One `writev` of the first chunks of `chunks` (at most `N`), through `N` slices on the stack;
/// a lone chunk goes through `write` (for a TCP socket `send(2)`, which takes a shorter path
/// through the kernel than `writev(2)`).
fn write_front<const N: usize>(chunks: &VecDeque<Bytes>, w: &mut impl Write) -> io::Result<usize> {
    if chunks.len() == 1 {
        return w.write(&chunks[0]);
    }
    let mut slices = [IoSlice::new(&[]); N];
    for (slot, chunk) in slices.iter_mut().zip(chunks) {
        *slot = IoSlice::new(chunk);
    }
    w.write_vectored(&slices[..chunks.len().min(N)])
}

impl Drop for Outbox {
    /// A connection that goes away takes its queued bytes off the server-wide meter.
    fn drop(&mut self) {
        self.meter.sub(self.bytes);
        self.meter.set_behind(self.behind, false);
    }
}

#[cfg(test)]
mod tests {
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

    /// A push past the cap is refused and changes nothing.
    #[test]
    fn push_past_cap_is_refused() {
        let meter = Meter::default();
        let mut o = Outbox::new(10, meter.clone());
        assert_eq!(o.push(Bytes::from_static(b"123456")), Ok(()));
        assert_eq!(o.push(Bytes::from_static(b"12345")), Err(Full));
        assert_eq!((o.len(), meter.get()), (6, 6));
        assert_eq!(meter.behind(), 1, "more than half full");
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
        let mut o = Outbox::new(100, Meter::default());
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
        let mut o = Outbox::new(100, meter.clone());
        o.push(Bytes::from_static(b"abcdef")).unwrap();
        o.push(Bytes::from_static(b"ghij")).unwrap();
        o.write_to(&mut pipe(2)).unwrap();
        assert_eq!(o.discard(), 4);
        assert_eq!((o.len(), meter.get()), (4, 4));
        drop(o);
        assert_eq!(meter.get(), 0, "a dropped outbox leaves the meter");
        assert_eq!(meter.behind(), 0);
    }
}
