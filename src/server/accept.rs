//! Who gets in: accepting sockets, and admitting (or refusing) their WebSocket upgrades.
//!
//! Two limits, at two moments. At accept, a socket is refused only when the server already
//! holds far more sockets than it will upgrade (`--max-connections` plus headroom for the ones
//! still in HTTP), so an upgrade past the limit can still be answered properly. At upgrade,
//! [`Admission`] answers 503 past `--max-connections` and 429 past `--max-per-ip`; it is asked
//! only then, when a request head asks to upgrade (`Action::Upgrade`).
//!
//! Before either, [`listen`] opens the listening socket with what every accepted socket should
//! have: a deep backlog (`--backlog`), `TCP_NODELAY` and the send buffer (`--send-buffer`).
//! The kernel copies a listener's socket options into each connection it accepts (Linux, the
//! BSDs and macOS alike), so setting them once saves two system calls per accept.

use super::{Server, Slot};
use crate::config::Config;
use crate::conn::Conn;
use crate::http::Status;
use crate::hub::ConnId;
use crate::stream::Stream;
use log::{debug, info, warn};
use mio::net::TcpListener;
use mio::{Interest, Token};
use socket2::{Domain, Protocol, Socket, Type};
use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

/// How long accepting pauses after the process ran out of file descriptors. Retrying at once
/// would spin (the listener stays readable); waiting for the next edge could wait forever.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Where Linux says how deep a listen backlog may be: `listen(2)` silently caps it there.
const SOMAXCONN: &str = "/proc/sys/net/core/somaxconn";

/// Opens the listening socket on `config.listen`, non-blocking, with `--backlog`, and the
/// options every accepted socket inherits from it: `TCP_NODELAY` (small messages leave at
/// once; the outbox already batches writes, so Nagle's algorithm would only add delay) and
/// `SO_SNDBUF` from `--send-buffer` (0: left to the kernel's autotuning).
pub(super) fn listen(config: &Config) -> io::Result<TcpListener> {
    let addr: SocketAddr = config.listen;
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    // As std and mio do on Unix: a restarted server binds at once, even while connections of
    // the last run sit in TIME_WAIT.
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.set_tcp_nodelay(true)?;
    if config.send_buffer > 0 {
        // Linux doubles the value (room for its bookkeeping) and stops autotuning this buffer.
        socket.set_send_buffer_size(config.send_buffer)?;
    }
    socket.bind(&addr.into())?;
    warn_if_capped(config.backlog, std::fs::read_to_string(SOMAXCONN).ok());
    // `Config::validate` keeps the backlog within an i32.
    socket.listen(config.backlog as i32)?;
    Ok(TcpListener::from_std(socket.into()))
}

/// Logs a warning when the kernel's `somaxconn` (the text of [`SOMAXCONN`], if readable) caps
/// `backlog`; returns the cap that applies, if any.
fn warn_if_capped(backlog: u32, somaxconn: Option<String>) -> Option<u32> {
    let cap: u32 = somaxconn?.trim().parse().ok()?;
    if backlog <= cap {
        return None;
    }
    warn!(
        "--backlog {backlog} is capped by the kernel at net.core.somaxconn = {cap}; \
         raise it with `sysctl -w net.core.somaxconn={backlog}`"
    );
    Some(cap)
}

/// Open WebSocket connections, in all and per client address, against their limits.
#[derive(Debug)]
pub(super) struct Admission {
    /// Open WebSocket connections (the count `--max-connections` limits).
    open: usize,
    /// Open WebSocket connections per client address (kept only with `--max-per-ip`).
    per_ip: HashMap<IpAddr, usize>,
    /// `--max-connections`.
    max_connections: usize,
    /// `--max-per-ip` (0: no limit).
    max_per_ip: usize,
}

impl Admission {
    /// Nobody in yet.
    pub(super) fn new(config: &Config) -> Admission {
        Admission {
            open: 0,
            per_ip: HashMap::new(),
            max_connections: config.max_connections,
            max_per_ip: config.max_per_ip,
        }
    }

    /// Open WebSocket connections now.
    pub(super) fn open(&self) -> usize {
        self.open
    }

    /// May one more connection from `peer` upgrade? If not, the status to refuse it with.
    fn check(&self, peer: IpAddr) -> Result<(), Status> {
        if self.open >= self.max_connections {
            Err(Status::ServiceUnavailable)
        } else if self.max_per_ip > 0
            && self.per_ip.get(&peer).copied().unwrap_or(0) >= self.max_per_ip
        {
            Err(Status::TooManyRequests)
        } else {
            Ok(())
        }
    }

    /// A connection from `peer` upgraded.
    fn enter(&mut self, peer: IpAddr) {
        self.open += 1;
        if self.max_per_ip > 0 {
            *self.per_ip.entry(peer).or_default() += 1;
        }
    }

    /// An upgraded connection from `peer` is gone.
    pub(super) fn leave(&mut self, peer: IpAddr) {
        self.open -= 1;
        if let Some(n) = self.per_ip.get_mut(&peer) {
            *n -= 1;
            if *n == 0 {
                self.per_ip.remove(&peer);
            }
        }
    }
}

impl Server {
    /// Accepts until `WouldBlock` (edge-triggered readiness: one event may stand for many
    /// pending connections).
    pub(super) fn accept(&mut self, now: Instant) -> io::Result<()> {
        let Some(listener) = &self.listener else {
            return Ok(());
        };
        // Sockets still in their HTTP phase get headroom above the WebSocket limit, so an
        // upgrade past it can be answered 503 rather than cut off; past the headroom too, a
        // new socket is closed at once.
        let headroom = (self.config.max_connections / 8).max(64);
        loop {
            let (mut socket, peer) = match listener.accept() {
                Ok(pair) => pair,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::Interrupted | io::ErrorKind::ConnectionAborted
                    ) =>
                {
                    continue
                }
                Err(e) if out_of_resources(&e) => {
                    if !self.starved {
                        warn!("accept: {e}; retrying every {ACCEPT_BACKOFF:?}");
                        self.starved = true;
                    }
                    self.timers.accept_retry = Some(now + ACCEPT_BACKOFF);
                    return Ok(());
                }
                Err(e) => return Err(e),
            };
            if self.starved {
                info!("accepting again");
                self.starved = false;
            }
            if self.slots.len() >= self.config.max_connections + headroom {
                warn!("refusing {peer}: {} sockets open", self.slots.len());
                self.stats.refused += 1;
                continue;
            }
            self.stats.accepted += 1;
            // TCP_NODELAY and the send buffer came from the listener (see `listen`).
            let entry = self.slots.vacant_entry();
            let id = ConnId(entry.key());
            if let Err(e) =
                self.poll
                    .registry()
                    .register(&mut socket, Token(id.0), Interest::READABLE)
            {
                warn!("register {peer}: {e}");
                continue;
            }
            debug!("conn={id} accepted from {peer}");
            // With TLS the handshake happens inside the connection's first reads, within its
            // --handshake-timeout like the request head that follows it.
            #[cfg(feature = "tls")]
            let stream = match &self.tls {
                Some(tls) => Stream::Tls(Box::new(tls.wrap(socket))),
                None => Stream::Plain(socket),
            };
            #[cfg(not(feature = "tls"))]
            let stream = Stream::Plain(socket);
            let conn = Conn::new(id, stream, now, &self.config, self.meter.clone());
            entry.insert(Slot::new(conn, peer.ip()));
        }
    }

    /// Connection `id` asks to upgrade into `room` (`Action::Upgrade`): admit it into the room,
    /// or refuse it with 503 or 429.
    pub(super) fn admit(&mut self, id: ConnId, room: &str, now: Instant) {
        let slot = &mut self.slots[id.0];
        if let Err(status) = self.admission.check(slot.peer) {
            slot.conn.refuse(status, now);
            return;
        }
        slot.conn.accept_upgrade(now, &self.config);
        let room_id = self.hub.join(room, id);
        slot.conn.join_room(self.hub.meter(room_id));
        slot.room = Some(room_id);
        self.admission.enter(slot.peer);
        self.stats.upgraded += 1;
        // The room's first member here: hear the other nodes' messages for it.
        #[cfg(feature = "redis")]
        if let (Some(bridge), [_]) = (&mut self.bridge, self.hub.members(room_id)) {
            bridge.subscribe(room_id, room);
        }
        debug!(
            "conn={id} joined room {room} ({} open)",
            self.admission.open()
        );
    }
}

/// `accept` failed for lack of resources, not because of this connection: EMFILE (this
/// process's descriptor limit), ENFILE (the system's), ENOBUFS/ENOMEM (kernel memory).
fn out_of_resources(e: &io::Error) -> bool {
    // These values are the same on Linux, the BSDs and macOS for EMFILE/ENFILE; ENOBUFS and
    // ENOMEM are Linux's (105, 12).
    matches!(e.raw_os_error(), Some(23 | 24 | 105 | 12))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admission(max_connections: usize, max_per_ip: usize) -> Admission {
        Admission::new(&Config {
            max_connections,
            max_per_ip,
            ..Config::default()
        })
    }

    /// Past --max-connections an upgrade gets 503; a leaver makes room again.
    #[test]
    fn full_server_refuses_with_503_until_someone_leaves() {
        let mut a = admission(2, 0);
        let ip: IpAddr = [10, 0, 0, 1].into();
        a.enter(ip);
        a.enter(ip);
        assert_eq!(a.check(ip), Err(Status::ServiceUnavailable));
        a.leave(ip);
        assert_eq!(a.check(ip), Ok(()));
    }

    /// A backlog above the kernel's somaxconn is reported as capped; one within it, or an
    /// unreadable somaxconn, is not.
    #[test]
    fn backlog_above_somaxconn_is_reported_as_capped() {
        assert_eq!(warn_if_capped(1024, Some("128\n".into())), Some(128));
        assert_eq!(warn_if_capped(1024, Some("4096\n".into())), None);
        assert_eq!(warn_if_capped(1024, None), None);
    }

    /// Past --max-per-ip an upgrade from that address gets 429; other addresses get in.
    #[test]
    fn one_address_past_its_share_gets_429() {
        let mut a = admission(10, 1);
        let (one, other): (IpAddr, IpAddr) = ([10, 0, 0, 1].into(), [10, 0, 0, 2].into());
        a.enter(one);
        assert_eq!(a.check(one), Err(Status::TooManyRequests));
        assert_eq!(a.check(other), Ok(()));
        a.leave(one);
        assert_eq!(a.check(one), Ok(()));
        assert!(
            a.per_ip.is_empty(),
            "no entry kept for an address with nobody in"
        );
    }
}
