//! The start-up check of `--redis-required`: connect, authenticate and ping with plain
//! blocking I/O and a timeout, before the loop starts (after that, a Redis that goes away is
//! the bridge's state machine's business: warn, relay locally, retry).

use super::HANDSHAKE_TIMEOUT;
use crate::config::RedisOptions;
use crate::redis::{self, Status, Value};
use std::io::{self, Read, Write};

/// With `--redis-required`, checks at start that Redis answers (connect, `AUTH`, `PING`) and
/// returns a clear error if not; otherwise does nothing (the bridge warns and retries).
pub fn check_at_start(opts: &RedisOptions) -> io::Result<()> {
    if !opts.required {
        return Ok(());
    }
    probe(opts).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!(
                "Redis at {} is unreachable: {e} (--redis-required)",
                opts.url
            ),
        )
    })
}

/// Connects with blocking I/O and a timeout, authenticates and pings.
fn probe(opts: &RedisOptions) -> io::Result<()> {
    let mut s = std::net::TcpStream::connect_timeout(&opts.addr, HANDSHAKE_TIMEOUT)?;
    s.set_read_timeout(Some(HANDSHAKE_TIMEOUT))?;
    s.set_write_timeout(Some(HANDSHAKE_TIMEOUT))?;
    let mut out = Vec::new();
    let mut expect = 1;
    if let Some((user, password)) = &opts.auth {
        let mut args: Vec<&[u8]> = vec![b"AUTH"];
        args.extend(user.as_deref().map(str::as_bytes));
        args.push(password.as_bytes());
        redis::command(&mut out, &args);
        expect += 1;
    }
    redis::command(&mut out, &[b"PING"]);
    s.write_all(&out)?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 512];
    while expect > 0 {
        let n = s.read(&mut chunk)?;
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "closed"));
        }
        buf.extend_from_slice(&chunk[..n]);
        while let Status::Complete(v, used) =
            redis::parse(&buf, 4096).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?
        {
            if let Value::Error(e) = v {
                return Err(io::Error::other(String::from_utf8_lossy(e).into_owned()));
            }
            buf.drain(..used);
            expect -= 1;
            if expect == 0 {
                break;
            }
        }
    }
    Ok(())
}
