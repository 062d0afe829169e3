//! Who gets in: accepting sockets, and admitting (or refusing) their WebSocket upgrades.
//!
//! Two limits, at two moments. At accept, a socket is refused only when the server already
//! holds far more sockets than it will upgrade (`--max-connections` plus headroom for the ones
//! still in HTTP), so an upgrade past the limit can still be answered properly. At upgrade,
//! [`Admission`] answers 503 past `--max-connections` and 429 past `--max-per-ip`; it is asked
//! only then, when a request head asks to upgrade (`Action::Upgrade`).

use super::{Server, Slot};
use crate::config::Config;
use crate::conn::Conn;
use crate::http::Status;
use crate::hub::ConnId;
use crate::stream::Stream;
use log::{debug, info, warn};
use mio::{Interest, Token};
use std::collections::HashMap;
use std::io;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// How long accepting pauses after the process ran out of file descriptors. Retrying at once
/// would spin (the listener stays readable); waiting for the next edge could wait forever.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

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
            // Small messages should leave at once; the outbox already batches writes, so
            // Nagle's algorithm would only add delay.
            let _ = socket.set_nodelay(true);
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
