//! `--redis URL` and its companions: how a node finds the Redis it shares rooms through, and
//! what it calls itself there (`bridge.rs` does the sharing).

use crate::cli::parse_addr;
use std::fmt;
use std::net::SocketAddr;

/// How a node shares its rooms with other nodes through Redis pub/sub (see `bridge.rs`).
///
/// Parsed even in a build without the `redis` feature, so that `--redis` there is a clear
/// usage error rather than an unknown flag. Its `Debug` leaves the password out.
#[derive(Clone)]
pub struct RedisOptions {
    /// Redis' address, resolved once at start (a name that does not resolve is a usage error,
    /// not something to retry).
    pub addr: SocketAddr,
    /// The URL as given, password masked: for logs.
    pub url: String,
    /// Credentials from the URL (`redis://user:password@host` or `redis://:password@host`),
    /// sent with `AUTH` on every new connection: (user, password).
    pub auth: Option<(Option<String>, String)>,
    /// The database number from the URL path (`/2`). Redis pub/sub ignores databases, so a
    /// non-zero one goes into the channel names instead: nodes on `/1` and `/2` of one Redis
    /// do not hear each other.
    pub db: u32,
    /// This node's name in every message it publishes, so it can drop its own on their way
    /// back (`--node-id`; default: the process id and start time, unique enough per process).
    pub node_id: String,
    /// Exit at start if Redis cannot be reached, instead of running local-only and retrying
    /// (`--redis-required`).
    pub required: bool,
    /// Bytes of commands waiting to be written to Redis at most (`--redis-queue-bytes`); past
    /// it a message is not published (counted as dropped) and is only relayed locally.
    pub queue_bytes: usize,
}

/// Default Redis port.
pub const REDIS_PORT: u16 = 6379;
/// Default `--redis-queue-bytes`: 4 MiB, sixty-four 64 KiB messages.
pub const DEFAULT_REDIS_QUEUE_BYTES: usize = 4 << 20;
/// Longest `--node-id`, in bytes.
pub const MAX_NODE_ID: usize = 64;

impl fmt::Debug for RedisOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisOptions")
            .field("addr", &self.addr)
            .field("url", &self.url)
            .field("db", &self.db)
            .field("node_id", &self.node_id)
            .field("required", &self.required)
            .field("queue_bytes", &self.queue_bytes)
            .finish_non_exhaustive()
    }
}

impl RedisOptions {
    /// Options for `url` with the defaults: a fresh node id, not required, 4 MiB queue.
    pub fn new(url: &str) -> Result<RedisOptions, String> {
        let rest = url
            .strip_prefix("redis://")
            .ok_or("expected redis://[[user]:password@]host[:port][/db] (no TLS: rediss:// is not supported)")?;
        let (auth, rest) = match rest.rsplit_once('@') {
            Some((userinfo, rest)) => {
                let (user, password) = userinfo
                    .split_once(':')
                    .ok_or("credentials must be user:password or :password")?;
                let user = (!user.is_empty()).then(|| user.to_owned());
                (Some((user, password.to_owned())), rest)
            }
            None => (None, rest),
        };
        let (hostport, db) = match rest.split_once('/') {
            Some((h, "")) => (h, 0),
            Some((h, db)) => (h, db.parse().map_err(|_| "the database must be a number")?),
            None => (rest, 0),
        };
        let hostport = if hostport.ends_with(']') || !hostport.contains(':') {
            format!("{hostport}:{REDIS_PORT}")
        } else {
            hostport.to_owned()
        };
        let addr = parse_addr(&hostport)?;
        let shown = match &auth {
            Some((Some(user), _)) => format!("redis://{user}:***@{hostport}/{db}"),
            Some((None, _)) => format!("redis://:***@{hostport}/{db}"),
            None => format!("redis://{hostport}/{db}"),
        };
        let start = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Ok(RedisOptions {
            addr,
            url: shown,
            auth,
            db,
            node_id: format!("{}-{:x}", std::process::id(), start.as_nanos() as u64),
            required: false,
            queue_bytes: DEFAULT_REDIS_QUEUE_BYTES,
        })
    }
}

/// `--node-id`: 1 to 64 of `A-Z a-z 0-9 . _ : -` (it is written into every published message).
pub fn parse_node_id(s: &str) -> Result<String, String> {
    let ok = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-');
    if s.is_empty() || s.len() > MAX_NODE_ID || !s.chars().all(ok) {
        return Err(format!(
            "1 to {MAX_NODE_ID} letters, digits, '.', '_', ':' or '-'"
        ));
    }
    Ok(s.to_owned())
}
