//! One server under test, as a child process started from the `--start` template, on a free
//! port, stopped after its run.
//!
//! The template is split on spaces and run without a shell, so the child's pid is the
//! server's own when the command `exec`s it (as `taskset` and benches/peers/run.sh do): that is
//! the pid whose CPU time `--pid` reads. A server is ready when the kernel lists a socket
//! listening on its port (`/proc/net/tcp`): probing with a connection would make some servers
//! log a failed handshake, and tokio-tungstenite's example panics (in that task) on one.

use std::io;
use std::net::{Ipv4Addr, TcpListener};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// How long a server may take to listen.
const START_TIMEOUT: Duration = Duration::from_secs(15);

/// A running server; stopped (killed) when dropped.
pub struct Peer {
    /// The port it listens on.
    pub port: u16,
    /// The process.
    child: Child,
}

impl Peer {
    /// Starts server `name` from `template` on a free port and waits until it listens.
    pub fn start(template: &str, name: &str) -> io::Result<Peer> {
        // A port the kernel just handed out and took back: free, barring a race we accept.
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
            .local_addr()?
            .port();
        let words: Vec<String> = template
            .split_whitespace()
            .map(|w| {
                w.replace("{name}", name)
                    .replace("{port}", &port.to_string())
            })
            .collect();
        let (program, args) = words
            .split_first()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "empty --start"))?;
        let child = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .spawn()?;
        let mut peer = Peer { port, child };
        let give_up = Instant::now() + START_TIMEOUT;
        loop {
            if listening(port) {
                return Ok(peer);
            }
            if let Some(status) = peer.child.try_wait()? {
                return Err(io::Error::other(format!("{name} exited: {status}")));
            }
            if Instant::now() > give_up {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("{name} did not listen on port {port} within {START_TIMEOUT:?}"),
                ));
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Stops the server and waits for it to exit.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// True when a TCP socket listens on `port` (any address, IPv4 or IPv6), from
/// `/proc/net/tcp{,6}`: lines of `sl local_address rem_address st …`, the address as
/// `HEXIP:HEXPORT`, state `0A` = LISTEN.
fn listening(port: u16) -> bool {
    let wanted = format!(":{port:04X}");
    ["/proc/net/tcp", "/proc/net/tcp6"].iter().any(|file| {
        std::fs::read_to_string(file).is_ok_and(|table| {
            table.lines().skip(1).any(|l| {
                let mut f = l.split_whitespace().skip(1);
                let (local, state) = (f.next(), f.nth(1));
                local.is_some_and(|a| a.ends_with(&wanted)) && state == Some("0A")
            })
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A listening socket is seen in /proc/net/tcp, and a closed port is not.
    #[test]
    fn a_listening_port_is_seen() {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = listener.local_addr().unwrap().port();
        assert!(listening(port));
        drop(listener);
        assert!(!listening(port));
    }
}
