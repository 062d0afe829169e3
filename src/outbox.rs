//! The bounded per-connection queue of bytes waiting to be written to one socket.
//!
//! Every byte the server sends goes through a connection's [`Outbox`]: the HTTP response, the
//! relayed messages, tungstenite's pongs and close frames. Keeping one queue per socket keeps
//! their order, which RFC 6455 needs (a Close must come after the data it ends).
//!
//! ```text
//!   room fan-out ──push_shared(slices)──▶ ┌──────────── Outbox ─────────────┐
//!   (one buffer per room and turn,        │ [frames of a turn] [pong] ...   │ ──writev──▶ socket
//!    one or two slices per member)        └─────────────────────────────────┘  (up to 1024
//!   tungstenite control frames ─push──▶       held bytes: counted, bounded      chunks per call)
//! ```
//!
//! Chunks are [`Bytes`]: a room's messages of one turn are encoded once into one buffer and
//! each member holds refcounted slices of it (`hub/batch.rs`), so 1,000 recipients of a 64 KiB
//! message cost one 64 KiB buffer, not 64 MiB.
//!
//! ## What is counted: what is held
//!
//! An outbox is charged for the memory it keeps alive, not only for the bytes it will write:
//!
//! - every chunk costs [`CHUNK_COST`] on top of its bytes: its slot in the queue and the
//!   bookkeeping of the allocation it points into. Without this, a flood of empty messages
//!   (2-byte frames) held fifty times what was counted;
//! - slices of a shared buffer are charged the *whole* buffer, once: a member's slices skip
//!   its own frames, but they keep the buffer, own frames included, alive until written.
//!
//! So the memory an outbox holds is at most its charge, plus its queue's spare slots (a
//! `VecDeque` keeps up to twice its longest length; that is at most the peak charge again):
//! never more than twice `--max-queue-bytes` per connection, whatever the message sizes. A
//! buffer shared by many outboxes is charged to each of them, so for ordinary broadcasts the
//! charge over-counts what is really held.
//!
//! Two limits live here, and they are different things:
//! - the per-connection cap (`--max-queue-bytes`): [`Outbox::push_shared`] refuses what would
//!   take the charge past it, and the caller drops the connection as a slow consumer;
//! - the [`Meter`]s: what all outboxes of the server hold, and what the outboxes of one room
//!   hold, each with the number of outboxes *behind* (charged more than half their cap). The
//!   policy that reads them, pausing a room's readers or the whole server, is
//!   `backpressure.rs`.
//!
//! The outbox never sees a socket: [`Outbox::write_to`] takes any [`Write`], which is how the
//! unit tests below drive it.

use bytes::{Buf, Bytes};
use std::cell::Cell;
use std::collections::VecDeque;
use std::io::{self, IoSlice, Write};
use std::mem::size_of;
use std::rc::Rc;

/// Most chunks handed to one `writev(2)`: Linux's limit (`UIO_MAXIOV`, also macOS's `IOV_MAX`).
/// Each `writev` costs microseconds of kernel work (copy, TCP, waking the reader) whatever it
/// carries, and a recipient's outbox may hold many chunks at once, so the more per call, the
/// fewer calls per delivery. The slice array is 16 KiB of stack.
pub const MAX_IOV: usize = 1024;

/// Chunks a `writev` carries in the common case (on the stack, 256 bytes of slices); more
/// take the [`MAX_IOV`] path.
const FEW_IOV: usize = 16;

/// Capacity an emptied queue may keep. A connection that once held thousands of chunks gives the
/// memory back; one that holds a few keeps its small buffer and does not reallocate.
const KEEP_CAPACITY: usize = 16;

/// What the allocation behind a chunk costs beyond its bytes, at most: `Bytes`' shared control
/// block (24 bytes, 32 with the allocator's header) and the buffer's own allocator header and
/// rounding (up to 24 bytes), plus slack up to the frame header's largest size that a frame's
/// buffer may have reserved and not used (8 bytes). Rounded up.
const ALLOCATION_COST: usize = 64;

/// What one queued chunk costs beyond its bytes, charged against the cap with them: its slot in
/// the queue, counted twice (a `VecDeque` grows by doubling and shrinks only when emptied, so up
/// to half its slots may stand empty), and `ALLOCATION_COST`. 144 bytes on 64-bit targets.
pub const CHUNK_COST: usize = 2 * size_of::<Chunk>() + ALLOCATION_COST;

/// What a set of outboxes hold together, shared by them (single-threaded, so `Rc<Cell>`): the
/// bytes charged, and how many of the outboxes are *behind* (charged more than half their cap).
///
/// Every outbox reports to the server's meter, and once its connection joins a room, to that
/// room's meter too. The server reads them to decide when reading pauses (`backpressure.rs`).
#[derive(Clone, Debug, Default)]
pub struct Meter(Rc<MeterCells>);

#[derive(Debug, Default)]
struct MeterCells {
    bytes: Cell<usize>,
    behind: Cell<usize>,
}

impl Meter {
    /// Bytes charged right now, across all outboxes sharing this meter.
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

/// One queued chunk: bytes to write, and what else it keeps alive.
#[derive(Debug)]
struct Chunk {
    /// The bytes still to write (advanced in place by a partial write).
    bytes: Bytes,
    /// Bytes of the shared buffer this chunk keeps alive that no chunk of this outbox will
    /// write (the member's own frames), charged until this chunk, the last of its buffer, is
    /// written.
    hidden: usize,
}

impl Chunk {
    /// What this chunk is charged now.
    fn charge(&self) -> usize {
        self.bytes.len() + self.hidden + CHUNK_COST
    }
}

/// One connection's queue of outgoing bytes. See the module docs.
#[derive(Debug)]
pub struct Outbox {
    /// Chunks in send order; the front one may be partly written.
    chunks: VecDeque<Chunk>,
    /// Bytes for this connection alone (control frames, echoes), appended here rather than
    /// queued one chunk each, so a burst of small ones costs one chunk. It comes after
    /// `chunks`, and becomes a chunk itself before anything else is queued or written.
    tail: Vec<u8>,
    /// Bytes still to write, in `chunks` and `tail`.
    bytes: usize,
    /// What is charged against the cap: each chunk's charge, and the tail's.
    held: usize,
    /// The cap on `held` (`--max-queue-bytes`).
    cap: usize,
    /// The server's meter, and the room's once the connection joins one.
    meters: [Option<Meter>; 2],
    /// The front chunk has been partly written (so a frame boundary is not at the front).
    mid_chunk: bool,
    /// More than half of `cap` is held; counted in the meters' `behind`.
    behind: bool,
}

impl Outbox {
    /// An empty outbox that holds at most `cap` bytes and reports to `meter`.
    pub fn new(cap: usize, meter: Meter) -> Outbox {
        Outbox {
            chunks: VecDeque::new(),
            tail: Vec::new(),
            bytes: 0,
            held: 0,
            cap,
            meters: [Some(meter), None],
            mid_chunk: false,
            behind: false,
        }
    }

    /// Reports to `room`'s meter from now on, as well as the server's (its connection joined).
    pub fn join(&mut self, room: Meter) {
        room.add(self.held);
        room.set_behind(false, self.behind);
        self.meters[1] = Some(room);
    }

    /// Queues `chunk`, or refuses it with [`Full`] if that would pass the cap.
    pub fn push(&mut self, chunk: Bytes) -> Result<(), Full> {
        let len = chunk.len();
        self.push_shared(&[chunk], len)
    }

    /// Queues `slices`, all cut from one shared buffer of `whole` bytes, or none of them if
    /// that would pass the cap ([`Full`]). The buffer is charged whole: see the module docs.
    pub fn push_shared(&mut self, slices: &[Bytes], whole: usize) -> Result<(), Full> {
        let own: usize = slices.iter().map(Bytes::len).sum();
        debug_assert!(own <= whole, "slices of a buffer fit in it");
        let sealing = if self.tail.is_empty() {
            0
        } else {
            self.tail.len() + CHUNK_COST
        };
        let after = self.held - self.tail_charge() + sealing + whole + slices.len() * CHUNK_COST;
        if after > self.cap {
            return Err(Full);
        }
        self.seal_tail();
        let last = slices.len().saturating_sub(1);
        for (i, slice) in slices.iter().enumerate() {
            let hidden = if i == last { whole - own } else { 0 };
            self.bytes += slice.len();
            self.queue(Chunk {
                bytes: slice.clone(),
                hidden,
            });
        }
        self.update_behind();
        Ok(())
    }

    /// Queues `chunk` whatever the cap says. For the few things the server itself must say
    /// (an HTTP response); the cap is checked again after them.
    pub fn push_unchecked(&mut self, chunk: Bytes) {
        if chunk.is_empty() {
            return;
        }
        self.seal_tail();
        self.bytes += chunk.len();
        self.queue(Chunk {
            bytes: chunk,
            hidden: 0,
        });
        self.update_behind();
    }

    /// Appends what `write` writes to the tail (bytes for this connection alone, such as an
    /// echo), or nothing if that would pass the cap ([`Full`]).
    pub fn append(&mut self, write: impl FnOnce(&mut Vec<u8>)) -> Result<(), Full> {
        let before = self.tail.len();
        self.change_tail(write);
        if self.held > self.cap {
            self.change_tail(|tail| tail.truncate(before));
            return Err(Full);
        }
        self.update_behind();
        Ok(())
    }

    /// Appends `bytes` to the tail whatever the cap says: for control frames (a Pong or a
    /// Close must not be refused); the cap is checked again after them.
    pub fn append_unchecked(&mut self, bytes: &[u8]) {
        self.change_tail(|tail| tail.extend_from_slice(bytes));
        self.update_behind();
    }

    /// What the tail is charged: its capacity (what it really holds), plus `CHUNK_COST`
    /// while it has bytes.
    fn tail_charge(&self) -> usize {
        let cost = if self.tail.is_empty() { 0 } else { CHUNK_COST };
        self.tail.capacity() + cost
    }

    /// Changes the tail with `change`, keeping `bytes` and the charges in step.
    fn change_tail(&mut self, change: impl FnOnce(&mut Vec<u8>)) {
        let (len, was) = (self.tail.len(), self.tail_charge());
        change(&mut self.tail);
        self.bytes = self.bytes - len + self.tail.len();
        self.charge(self.tail_charge(), was);
    }

    /// Turns the tail into a chunk, so what is queued next comes after it.
    fn seal_tail(&mut self) {
        if self.tail.is_empty() {
            return;
        }
        let was = self.tail_charge();
        let mut tail = std::mem::take(&mut self.tail);
        self.charge(0, was);
        // Charged by its length from now on: give back what doubling left unused.
        tail.shrink_to_fit();
        self.queue(Chunk {
            bytes: Bytes::from(tail),
            hidden: 0,
        });
    }

    /// Appends one chunk and charges it (its bytes are already counted in `bytes`).
    fn queue(&mut self, chunk: Chunk) {
        self.charge(chunk.charge(), 0);
        self.chunks.push_back(chunk);
    }

    /// Adds `add` to what this outbox and its meters hold, and takes `sub` off.
    fn charge(&mut self, add: usize, sub: usize) {
        self.held = self.held + add - sub;
        for meter in self.meters.iter().flatten() {
            meter.add(add);
            meter.sub(sub);
        }
    }

    /// Keeps `behind` and the meters' counts of behind outboxes in step with `held`.
    fn update_behind(&mut self) {
        let behind = self.held > self.cap / 2;
        for meter in self.meters.iter().flatten() {
            meter.set_behind(self.behind, behind);
        }
        self.behind = behind;
    }

    /// Bytes waiting to be written.
    pub fn len(&self) -> usize {
        self.bytes
    }

    /// What the queued bytes are charged against the cap (see the module docs).
    pub fn held(&self) -> usize {
        self.held
    }

    /// True when more than half the cap is held.
    pub fn is_behind(&self) -> bool {
        self.behind
    }

    /// True when nothing waits to be written.
    pub fn is_empty(&self) -> bool {
        self.bytes == 0
    }

    /// True when more than the cap is held (possible only through unchecked pushes).
    pub fn is_over_cap(&self) -> bool {
        self.held > self.cap
    }

    /// Drops everything queued except the unwritten rest of a partly written front chunk, which
    /// must still go out whole for the peer to find the next frame boundary. Returns the bytes
    /// dropped. Used when a slow consumer is cut off.
    pub fn discard(&mut self) -> usize {
        self.seal_tail();
        let keep = if self.mid_chunk {
            self.chunks.pop_front()
        } else {
            None
        };
        let dropped = self.bytes - keep.as_ref().map_or(0, |c| c.bytes.len());
        let released = self.held - keep.as_ref().map_or(0, Chunk::charge);
        self.bytes -= dropped;
        self.charge(0, released);
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
        self.seal_tail();
        let mut written = 0;
        while !self.chunks.is_empty() {
            // Most writes carry a turn's one or two slices: filling the array for a backlog
            // (a 16 KiB memset) would cost more than the rest of the call's user-space work;
            // profiling showed it as most of the loop's own CPU at a fixed message rate.
            let result = if self.chunks.len() <= FEW_IOV {
                self.write_some::<FEW_IOV>(w)
            } else {
                self.write_some::<MAX_IOV>(w)
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

    /// One `writev` of up to `N` chunks from the front, through `N` slices on the stack; a lone
    /// chunk goes through `write` (for a TCP socket `send(2)`, a shorter path through the
    /// kernel than `writev(2)`).
    fn write_some<const N: usize>(&self, w: &mut impl Write) -> io::Result<usize> {
        if self.chunks.len() == 1 {
            return w.write(&self.chunks[0].bytes);
        }
        let mut slices = [IoSlice::new(&[]); N];
        let n = self.chunks.len().min(N);
        for (slot, chunk) in slices.iter_mut().zip(self.chunks.iter()) {
            *slot = IoSlice::new(&chunk.bytes);
        }
        w.write_vectored(&slices[..n])
    }

    /// Removes `k` written bytes from the front, releasing each chunk's charge as it goes.
    fn consume(&mut self, mut k: usize) {
        self.bytes -= k;
        let mut released = 0;
        while k > 0 {
            // `k` never exceeds the bytes queued: a writer reports at most what it was given.
            let front = self.chunks.front_mut().expect("written more than queued");
            if k >= front.bytes.len() {
                k -= front.bytes.len();
                released += front.charge();
                self.chunks.pop_front();
                self.mid_chunk = false;
            } else {
                front.bytes.advance(k);
                released += k;
                self.mid_chunk = true;
                k = 0;
            }
        }
        self.charge(0, released);
        self.update_behind();
    }
}

impl Drop for Outbox {
    /// A connection that goes away takes what it held off the meters.
    fn drop(&mut self) {
        let held = self.held;
        self.charge(0, held);
        for meter in self.meters.iter().flatten() {
            meter.set_behind(self.behind, false);
        }
    }
}

#[cfg(test)]
#[path = "outbox_tests.rs"]
mod tests;
