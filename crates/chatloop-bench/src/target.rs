//! Where the load goes: the server's address, the `Host` header and the path from a `ws://`
//! or `wss://` URL, and the local addresses the clients connect from.
//!
//! One local address can only open about 28,000 connections to one server port (the kernel's
//! ephemeral port range), so above 25,000 clients the generator binds its sockets to
//! `127.0.0.1`, `127.0.0.2` … in turn. Every address in 127.0.0.0/8 is loopback on Linux, so
//! this needs no setup, but only works when the server is on loopback too.

use rustls::ClientConfig;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs};
use std::sync::Arc;

/// The parts of the opening handshake that are the same for every connection.
#[derive(Debug, Clone)]
pub struct Target {
    /// Where to connect.
    pub addr: SocketAddr,
    /// The `Host` header: the URL's authority as given.
    pub host: String,
    /// The request path: the room.
    pub path: String,
    /// For `wss://`: the TLS configuration every connection shares ([`crate::tls`]). `parse`
    /// leaves it `None`; [`Target::secure`] says whether the URL asked for it.
    pub tls: Option<Arc<ClientConfig>>,
    /// The URL was `wss://`.
    pub secure: bool,
}

impl Target {
    /// `ws://host:port/path` or `wss://…` → where to connect, the Host header, the path (port
    /// 80, or 443 for `wss://`, when none is given).
    pub fn parse(url: &str) -> Result<Target, String> {
        let (secure, rest) = match (url.strip_prefix("ws://"), url.strip_prefix("wss://")) {
            (Some(rest), _) => (false, rest),
            (_, Some(rest)) => (true, rest),
            _ => return Err(format!("'{url}': only ws:// and wss:// URLs are supported")),
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let with_port = if authority
            .rsplit_once(':')
            .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
        {
            authority.to_owned()
        } else {
            format!("{authority}:{}", if secure { 443 } else { 80 })
        };
        let addr = with_port
            .to_socket_addrs()
            .map_err(|e| format!("'{authority}': {e}"))?
            .next()
            .ok_or_else(|| format!("'{authority}': no address"))?;
        Ok(Target {
            addr,
            host: authority.to_owned(),
            path: path.to_owned(),
            tls: None,
            secure,
        })
    }

    /// The host the certificate must name: the authority without its port (and without the
    /// brackets of an IPv6 address).
    pub fn server_name(&self) -> &str {
        let host = match self.host.rsplit_once(':') {
            Some((host, port)) if port.parse::<u16>().is_ok() => host,
            _ => &self.host,
        };
        host.trim_start_matches('[').trim_end_matches(']')
    }

    /// Loopback source addresses for `clients` connections: `wanted` of them (`--sources`), or
    /// one per 25,000 clients. Empty when one is enough: then the kernel chooses.
    pub fn sources(&self, clients: usize, wanted: Option<usize>) -> io::Result<Vec<IpAddr>> {
        let wanted = wanted.unwrap_or(clients.div_ceil(25_000));
        if wanted <= 1 {
            return Ok(Vec::new());
        }
        let loopback_v4 = matches!(self.addr.ip(), IpAddr::V4(ip) if ip.is_loopback());
        if !loopback_v4 || wanted > 250 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "--sources above 1 needs a 127.x.x.x server and at most 250 sources",
            ));
        }
        Ok((1..=wanted as u8)
            .map(|i| IpAddr::V4(Ipv4Addr::new(127, 0, 0, i)))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// URLs give the address, the Host header and the room; only ws:// is accepted.
    #[test]
    fn urls_parse_into_target() {
        let t = Target::parse("ws://127.0.0.1:9001/kitchen").unwrap();
        assert_eq!(t.addr.port(), 9001);
        assert_eq!(t.host, "127.0.0.1:9001");
        assert_eq!(t.path, "/kitchen");
        assert_eq!(Target::parse("ws://127.0.0.1:9001").unwrap().path, "/");
        assert_eq!(Target::parse("ws://127.0.0.1/").unwrap().addr.port(), 80);
        let secure = Target::parse("wss://localhost/").unwrap();
        assert!(secure.secure && secure.tls.is_none());
        assert_eq!(secure.addr.port(), 443);
        assert_eq!(secure.server_name(), "localhost");
        assert_eq!(
            Target::parse("wss://[::1]:9/").unwrap().server_name(),
            "::1"
        );
        assert!(Target::parse("http://127.0.0.1/").is_err());
    }

    /// One source address per 25,000 clients, and many only towards a loopback server.
    #[test]
    fn sources_spread_over_loopback_addresses() {
        let t = Target::parse("ws://127.0.0.1:9001/").unwrap();
        assert!(t.sources(25_000, None).unwrap().is_empty());
        let two = t.sources(25_001, None).unwrap();
        assert_eq!(two, [[127, 0, 0, 1], [127, 0, 0, 2]].map(IpAddr::from));
        assert!(t.sources(10, Some(251)).is_err());
        let v6 = Target::parse("ws://[::1]:9001/").unwrap();
        assert!(v6.sources(10, Some(2)).is_err());
    }
}
