//! One TCP connection to Redis: a non-blocking connect, a queue of commands to write, a buffer
//! of replies to parse, and the count of replies Redis still owes us.
//!
//! The bridge (`bridge.rs`) owns two of these, a subscriber and a publisher, and drives them
//! from the server's loop; a link only does I/O until `WouldBlock` and reports failures as
//! `io::Error`s, which the bridge turns into `Down` and a reconnection.

use super::{PING_AFTER, REPLY_TIMEOUT};
use crate::config::RedisOptions;
use crate::redis;
use mio::net::TcpStream;
use mio::{Interest, Registry, Token};
use std::io::{self, Read, Write};
use std::time::Instant;

/// Bytes read from a socket per `read` call.
pub(super) const READ_CHUNK: usize = 64 << 10;

/// Which of the two connections a [`Link`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Role {
    /// Subscribed to the channels of this node's rooms; hears other nodes' messages.
    Subscriber,
    /// Sends this node's messages with `PUBLISH`.
    Publisher,
}

/// One TCP connection to Redis and its two byte queues.
pub(super) struct Link {
    /// Subscriber or publisher.
    pub(super) role: Role,
    /// The non-blocking socket, registered under `token`.
    pub(super) stream: TcpStream,
    /// Its reserved token in the server's poller.
    pub(super) token: Token,
    /// The TCP handshake has completed (a non-blocking connect finishes later: mio reports it
    /// as writable, and `peer_addr` then succeeds).
    pub(super) connected: bool,
    /// Bytes read and not yet parsed (a partial reply waits here for the rest).
    pub(super) rbuf: Vec<u8>,
    /// Commands not yet written; `wpos` bytes at its front are already written.
    pub(super) wbuf: Vec<u8>,
    /// How much of `wbuf` is written.
    pub(super) wpos: usize,
    /// The socket may have unread bytes. Readiness is edge-triggered, so this stays set until a
    /// read says `WouldBlock`, even when we stop early (budget, backpressure).
    pub(super) readable: bool,
    /// Replies Redis owes us: commands sent minus replies read.
    pub(super) awaiting: usize,
    /// Replies still owed for the handshake (`AUTH`, the `SUBSCRIBE`s, `PING`). Redis answers
    /// in order, so these are the first replies on the link, whatever is sent after them.
    pub(super) handshake: usize,
    /// When the link last made progress: connected, or bytes arrived.
    pub(super) heard: Instant,
    /// Since when (the first turn that saw it) `awaiting` has been above zero.
    pub(super) waiting_since: Option<Instant>,
    /// WRITABLE is registered (only while connecting or while `wbuf` holds bytes).
    pub(super) writable_registered: bool,
}

impl Link {
    /// A link over `stream`, not yet connected, with nothing queued or awaited.
    pub(super) fn new(role: Role, stream: TcpStream, token: Token, now: Instant) -> Link {
        Link {
            role,
            stream,
            token,
            connected: false,
            rbuf: Vec::new(),
            wbuf: Vec::new(),
            wpos: 0,
            readable: false,
            awaiting: 0,
            handshake: 0,
            heard: now,
            waiting_since: None,
            writable_registered: false,
        }
    }

    /// Starts a non-blocking connect to `opts.addr` and registers it; queues `AUTH` if needed.
    pub(super) fn connect(
        role: Role,
        opts: &RedisOptions,
        token: Token,
        registry: &Registry,
        now: Instant,
    ) -> io::Result<Link> {
        let mut stream = TcpStream::connect(opts.addr)?;
        registry.register(&mut stream, token, Interest::READABLE | Interest::WRITABLE)?;
        let mut link = Link::new(role, stream, token, now);
        link.writable_registered = true;
        if let Some((user, password)) = &opts.auth {
            match user {
                Some(user) => link.send(&[b"AUTH", user.as_bytes(), password.as_bytes()]),
                None => link.send(&[b"AUTH", password.as_bytes()]),
            }
        }
        Ok(link)
    }

    /// Queues a command that Redis answers with one reply per `replies`.
    pub(super) fn send_expecting(&mut self, args: &[&[u8]], replies: usize) {
        self.awaiting += replies;
        redis::command(&mut self.wbuf, args);
    }

    /// Queues a command with one reply.
    pub(super) fn send(&mut self, args: &[&[u8]]) {
        self.send_expecting(args, 1);
    }

    /// Bytes queued and not yet written.
    pub(super) fn queued(&self) -> usize {
        self.wbuf.len() - self.wpos
    }

    /// Finishes the TCP connect if it is done; `Err` if it failed.
    pub(super) fn check_connected(&mut self, now: Instant) -> io::Result<()> {
        if self.connected {
            return Ok(());
        }
        if let Some(e) = self.stream.take_error()? {
            return Err(e);
        }
        match self.stream.peer_addr() {
            Ok(_) => {
                self.connected = true;
                self.heard = now;
                // Pub/sub messages are small and latency matters; we batch writes ourselves.
                let _ = self.stream.set_nodelay(true);
                Ok(())
            }
            Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Writes queued commands until done or `WouldBlock`.
    pub(super) fn flush(&mut self) -> io::Result<()> {
        while self.connected && self.wpos < self.wbuf.len() {
            match self.stream.write(&self.wbuf[self.wpos..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.wpos += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
        if self.wpos == self.wbuf.len() {
            self.wbuf.clear();
            self.wpos = 0;
        } else if self.wpos > self.wbuf.len() / 2 {
            // Move the unwritten tail to the front only when that is cheaper than what was
            // written, so a slow Redis does not make every turn copy the whole queue.
            self.wbuf.drain(..self.wpos);
            self.wpos = 0;
        }
        Ok(())
    }

    /// Reads up to `budget` bytes (until `WouldBlock` if less) into `rbuf`; returns how many.
    pub(super) fn fill(&mut self, budget: usize) -> io::Result<usize> {
        let mut total = 0;
        while self.connected && self.readable && total < budget {
            let len = self.rbuf.len();
            self.rbuf.resize(len + READ_CHUNK, 0);
            let result = self.stream.read(&mut self.rbuf[len..]);
            self.rbuf.truncate(len + *result.as_ref().unwrap_or(&0));
            match result {
                Ok(0) => return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "closed")),
                Ok(n) => total += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.readable = false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
        Ok(total)
    }

    /// Sets the poller's interest to match the state: WRITABLE only while connecting or while
    /// commands are queued (invariant 5 of `lib.rs`).
    pub(super) fn update_interest(&mut self, registry: &Registry) -> io::Result<()> {
        let want = !self.connected || self.queued() > 0;
        if want != self.writable_registered {
            let interest = if want {
                Interest::READABLE | Interest::WRITABLE
            } else {
                Interest::READABLE
            };
            registry.reregister(&mut self.stream, self.token, interest)?;
            self.writable_registered = want;
        }
        Ok(())
    }

    /// Commands wait that no WRITABLE event will announce (queued after the last write).
    pub(super) fn stalled(&self) -> bool {
        self.connected && self.queued() > 0 && !self.writable_registered
    }

    /// When this link must next be looked at: a reply overdue, or time for a `PING`.
    pub(super) fn deadline(&self) -> Instant {
        match self.waiting_since {
            _ if self.awaiting == 0 => self.heard + PING_AFTER,
            Some(since) => self.heard.max(since) + REPLY_TIMEOUT,
            None => self.heard + REPLY_TIMEOUT,
        }
    }

    /// Starts or stops the reply clock: it runs while Redis owes us replies.
    pub(super) fn stamp(&mut self, now: Instant) {
        if self.awaiting == 0 {
            self.waiting_since = None;
        } else {
            self.waiting_since.get_or_insert(now);
        }
    }
}

impl Role {
    /// For logs.
    pub(super) fn name(self) -> &'static str {
        match self {
            Role::Subscriber => "subscriber",
            Role::Publisher => "publisher",
        }
    }
}
