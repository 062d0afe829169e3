//! `chatloop serve`'s flags: defaults, spellings, units and the mistakes they catch.

use super::*;

fn run(args: &[&str]) -> Result<Config, UsageError> {
    match Config::from_args(args.iter().map(|s| s.to_string()))? {
        ServeCommand::Run(c, _) => Ok(*c),
        ServeCommand::Help => panic!("help"),
    }
}

/// No flags give Qt's port on loopback and chat mode.
#[test]
fn defaults_are_qt_port_on_loopback() {
    let c = run(&[]).unwrap();
    assert_eq!(c.listen.to_string(), "127.0.0.1:1234");
    assert_eq!(c.mode, Mode::Chat);
}

/// Both flag spellings and the units parse.
#[test]
fn flags_and_units_parse() {
    let c = run(&[
        "--listen=[::1]:0",
        "--max-message-bytes",
        "1KiB",
        "--ping-interval",
        "500ms",
        "--idle-timeout=2m",
    ])
    .unwrap();
    assert!(c.listen.is_ipv6());
    assert_eq!(c.max_message_bytes, 1024);
    assert_eq!(c.ping_interval, Duration::from_millis(500));
    assert_eq!(c.idle_timeout, Duration::from_secs(120));
}

/// Echo mode raises the message cap, and the queue follows so a whole frame fits.
#[test]
fn echo_raises_message_cap_and_queue_follows() {
    let c = run(&["--echo"]).unwrap();
    assert_eq!(c.max_message_bytes, ECHO_MAX_MESSAGE_BYTES);
    assert!(c.max_queue_bytes >= c.max_message_bytes + MESSAGE_OVERHEAD);
}

/// Mistakes are one-line errors naming the flag.
#[test]
fn mistakes_name_the_flag() {
    assert!(run(&["--bogus"]).unwrap_err().0.contains("--bogus"));
    assert!(run(&["--listen"]).unwrap_err().0.contains("needs a value"));
    assert!(run(&["--ping-interval", "90s"])
        .unwrap_err()
        .0
        .contains("shorter than --idle-timeout"));
    assert!(run(&["--max-queue-bytes", "1KiB"])
        .unwrap_err()
        .0
        .contains("one whole message"));
}

/// A Redis URL gives the address, credentials and database; the password never reaches
/// the logged form; the Redis flags land in the options.
#[cfg(feature = "redis")]
#[test]
fn redis_url_and_flags_parse() {
    let c = run(&[
        "--redis",
        "redis://:s3cret@127.0.0.1/3",
        "--node-id",
        "eu-1",
        "--redis-required",
    ])
    .unwrap();
    let r = c.redis.unwrap();
    assert_eq!(r.addr.to_string(), "127.0.0.1:6379");
    assert_eq!(r.db, 3);
    assert_eq!(r.auth, Some((None, "s3cret".to_owned())));
    assert!(!r.url.contains("s3cret"), "{}", r.url);
    assert!(!format!("{r:?}").contains("s3cret"), "{r:?}");
    assert_eq!(r.node_id, "eu-1");
    assert!(r.required);
    assert_eq!(r.queue_bytes, DEFAULT_REDIS_QUEUE_BYTES);
    let r = RedisOptions::new("redis://u:p@[::1]:7000").unwrap();
    assert_eq!(r.addr.to_string(), "[::1]:7000");
    assert_eq!(r.auth, Some((Some("u".to_owned()), "p".to_owned())));
    assert_eq!(r.db, 0);
}

/// Redis mistakes are usage errors: wrong scheme, bad node id, flags without --redis,
/// Redis with --echo.
#[test]
fn redis_mistakes_are_usage_errors() {
    assert!(run(&["--redis", "rediss://h"])
        .unwrap_err()
        .0
        .contains("TLS"));
    assert!(run(&["--redis", "redis://127.0.0.1:1", "--node-id", "a b"])
        .unwrap_err()
        .0
        .contains("--node-id"));
    assert!(run(&["--node-id", "a"])
        .unwrap_err()
        .0
        .contains("need --redis"));
    if cfg!(feature = "redis") {
        assert!(run(&["--echo", "--redis", "redis://127.0.0.1"])
            .unwrap_err()
            .0
            .contains("--echo"));
    } else {
        assert!(run(&["--redis", "redis://127.0.0.1"])
            .unwrap_err()
            .0
            .contains("without Redis support"));
    }
}

/// --send-buffer takes a size (0 leaves it to the kernel) and --backlog a count from 1.
#[test]
fn send_buffer_and_backlog_parse() {
    let c = run(&[]).unwrap();
    assert_eq!(
        (c.send_buffer, c.backlog),
        (DEFAULT_SEND_BUFFER, DEFAULT_BACKLOG)
    );
    let c = run(&["--send-buffer", "0", "--backlog", "4096"]).unwrap();
    assert_eq!((c.send_buffer, c.backlog), (0, 4096));
    assert_eq!(run(&["--send-buffer=32KiB"]).unwrap().send_buffer, 32 << 10);
    assert!(run(&["--backlog", "0"])
        .unwrap_err()
        .0
        .contains("--backlog"));
    assert!(run(&["--send-buffer", "2GiB"])
        .unwrap_err()
        .0
        .contains("--send-buffer"));
}
