//! Several nodes, one Redis: a message reaches its room on every node, and a Redis that dies,
//! stalls or comes back never stops the local relay.
//!
//! Each test starts its own `redis-server` on a free loopback port (no persistence) and two
//! in-process chatloop nodes pointed at it. Those tests are `#[ignore = "needs redis-server"]`:
//! `scripts/setup-test-deps.sh` installs Redis and `scripts/test.sh` then runs them with
//! `--ignored`; run without `redis-server`, they fail. `cross_node_latency` is a measurement,
//! not a check: its ignore reason keeps it out of `scripts/test.sh`.
//!
//! Synchronisation never sleeps blindly: a test waits (with a deadline) until Redis itself
//! says both nodes are subscribed (`PUBSUB NUMSUB`), or until `/stats` shows a state.

#![cfg(feature = "redis")]

mod common;

use chatloop::config::RedisOptions;
use chatloop::redis::{self, Status, Value};
use common::*;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tungstenite::Message;

/// Longest wait for a state to be reached (connect, subscribe, reconnect with backoff ≤ 5 s).
const SETTLE: Duration = Duration::from_secs(15);

/// A `redis-server` child on a loopback port; killed on drop.
struct RedisServer {
    /// Where it listens.
    addr: SocketAddr,
    /// The process, while running.
    child: Option<Child>,
    /// `--requirepass`, if any.
    password: Option<String>,
}

impl RedisServer {
    /// Starts Redis on a free port; fails the test if `redis-server` is not installed.
    fn start() -> RedisServer {
        RedisServer::start_with(None)
    }

    /// Starts Redis requiring `password` (if given); fails the test if it is not installed.
    fn start_with(password: Option<&str>) -> RedisServer {
        let runs = Command::new("redis-server")
            .arg("--version")
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !runs {
            missing_tool("`redis-server` on PATH");
        }
        // A port the kernel just handed out and took back is free for the moment.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap()
            .port();
        let mut redis = RedisServer {
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            child: None,
            password: password.map(str::to_owned),
        };
        redis.restart();
        redis
    }

    /// (Re)starts the server on the same port and waits until it answers.
    fn restart(&mut self) {
        let port = self.addr.port().to_string();
        let child = Command::new("redis-server")
            .args(["--port", &port, "--bind", "127.0.0.1", "--save", ""])
            .args([
                "--appendonly",
                "no",
                "--daemonize",
                "no",
                "--loglevel",
                "warning",
            ])
            .args(self.password.iter().flat_map(|p| ["--requirepass", p]))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn redis-server");
        self.child = Some(child);
        wait_until(SETTLE, "redis-server to answer", || {
            self.session().is_some_and(|mut s| {
                command(&mut s, &[b"PING"]) == Some(Reply::Status("PONG".into()))
            })
        });
    }

    /// A blocking connection, authenticated if the server wants a password.
    fn session(&self) -> Option<TcpStream> {
        let mut s = TcpStream::connect(self.addr).ok()?;
        s.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
        if let Some(p) = &self.password {
            command(&mut s, &[b"AUTH", p.as_bytes()])?;
        }
        Some(s)
    }

    /// Kills the server (SIGKILL: no goodbye to its clients beyond the kernel's reset/FIN).
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends a signal to the server (by name, e.g. "STOP" or "CONT").
    fn signal(&self, name: &str) {
        let pid = self.child.as_ref().expect("running").id().to_string();
        let status = Command::new("kill")
            .args([format!("-{name}"), pid])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// `redis://127.0.0.1:PORT` options for a node called `node`.
    fn options(&self, node: &str) -> RedisOptions {
        let mut opts = RedisOptions::new(&format!("redis://{}", self.addr)).unwrap();
        opts.node_id = node.to_owned();
        opts
    }

    /// How many subscribers the channel of `room` has, as Redis counts them.
    fn subscribers(&self, room: &str) -> i64 {
        let mut s = self.session().expect("connect to redis");
        let channel = format!("chatloop:room:{room}");
        match command(&mut s, &[b"PUBSUB", b"NUMSUB", channel.as_bytes()]) {
            Some(Reply::Numbers(n)) => n[0],
            other => panic!("PUBSUB NUMSUB: {other:?}"),
        }
    }

    /// Waits until both nodes have subscribed to `room`.
    fn wait_subscribed(&self, room: &str, nodes: i64) {
        wait_until(SETTLE, &format!("{nodes} subscribers to {room}"), || {
            self.subscribers(room) == nodes
        });
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        if self.child.is_some() {
            self.signal("CONT"); // in case a test stopped it and then failed
        }
        self.kill();
    }
}

/// A reply, reduced to what the tests look at.
#[derive(Debug, PartialEq)]
enum Reply {
    /// `+PONG`.
    Status(String),
    /// The integers of a flat reply (`PUBSUB NUMSUB`'s counts, or one integer).
    Numbers(Vec<i64>),
}

/// Sends one command on a blocking socket and reads its reply (`None` on error).
fn command(s: &mut TcpStream, args: &[&[u8]]) -> Option<Reply> {
    let mut out = Vec::new();
    redis::command(&mut out, args);
    s.write_all(&out).ok()?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = s.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Status::Complete(value, _) = redis::parse(&buf, 1 << 20).ok()? {
            return Some(match value {
                Value::Simple(text) => Reply::Status(String::from_utf8_lossy(text).into()),
                Value::Integer(n) => Reply::Numbers(vec![n]),
                Value::Array(Some(items)) => Reply::Numbers(
                    items
                        .iter()
                        .filter_map(|v| match v {
                            Value::Integer(n) => Some(*n),
                            _ => None,
                        })
                        .collect(),
                ),
                _ => return None,
            });
        }
    }
}

/// Waits until `nodes` have subscribed to `room` and every one of them reports its bridge up.
fn wait_ready(redis: &RedisServer, room: &str, nodes: &[&TestServer]) {
    redis.wait_subscribed(room, nodes.len() as i64);
    wait_until(SETTLE, "every node to report the bridge up", || {
        nodes.iter().all(|n| stat(n, "redis_connected") == 1)
    });
}

/// A node (chat server) bridged to `redis` under the name `node`.
fn node(redis: &RedisServer, node: &str) -> TestServer {
    let opts = redis.options(node);
    TestServer::with(move |c| c.redis = Some(opts))
}

/// A number from `/stats` (JSON), e.g. `redis_dropped_total`; booleans read as 0 or 1.
fn stat(server: &TestServer, name: &str) -> u64 {
    common::stat(&stats_body(server.addr), name)
}

/// A message on node A reaches its room on node B once, intact and in order, and no other room.
#[test]
#[ignore = "needs redis-server (scripts/setup-test-deps.sh)"]
fn message_crosses_nodes_to_its_room_only_and_once() {
    // Text and binary, byte for byte; members of other rooms hear nothing; nobody on A gets it
    // twice.
    let redis = RedisServer::start();
    let (a, b) = (node(&redis, "a"), node(&redis, "b"));
    let mut a1 = connect(&a, "/room");
    let mut a2 = connect(&a, "/room");
    let mut b1 = connect(&b, "/room");
    let mut b_other = connect(&b, "/other");
    let mut a_other = connect(&a, "/other");
    wait_ready(&redis, "/room", &[&a, &b]);
    wait_ready(&redis, "/other", &[&a, &b]);

    a1.send(Message::text("hello from a")).unwrap();
    assert_eq!(recv(&mut b1), Message::text("hello from a"));
    assert_eq!(recv(&mut a2), Message::text("hello from a"));
    // Binary with every byte value, CR LF included: RESP bulk strings are length-prefixed.
    let payload: Vec<u8> = (0..=255).chain(*b"\r\n\r\n").collect();
    a1.send(Message::binary(payload.clone())).unwrap();
    assert_eq!(recv(&mut b1), Message::binary(payload.clone()));
    assert_eq!(recv(&mut a2), Message::binary(payload));
    // And back the other way.
    b1.send(Message::text("hello from b")).unwrap();
    assert_eq!(recv(&mut a1), Message::text("hello from b"));
    assert_eq!(recv(&mut a2), Message::text("hello from b"));

    // Per-sender order holds across the trip.
    const N: usize = 500;
    for i in 0..N {
        a1.write(Message::text(format!("{i}"))).unwrap();
    }
    a1.flush().unwrap();
    for i in 0..N {
        assert_eq!(recv(&mut b1), Message::text(format!("{i}")));
        assert_eq!(recv(&mut a2), Message::text(format!("{i}")));
    }

    // Nothing was delivered twice (a node drops its own messages coming back from Redis), the
    // sender never hears itself, and the other room heard nothing.
    assert_silent(&mut a2, Duration::from_millis(300));
    assert_silent(&mut a1, Duration::from_millis(50));
    assert_silent(&mut b1, Duration::from_millis(50));
    assert_silent(&mut b_other, Duration::from_millis(50));
    assert_silent(&mut a_other, Duration::from_millis(50));
    assert_eq!(stat(&b, "redis_received_total"), 2 + N as u64);
    assert_eq!(stat(&a, "redis_published_total"), 2 + N as u64);
    assert_eq!(stat(&a, "redis_dropped_total"), 0);
}

/// A room subscribes when it appears on a node and unsubscribes when it vanishes.
#[test]
#[ignore = "needs redis-server (scripts/setup-test-deps.sh)"]
fn room_subscription_follows_local_members() {
    let redis = RedisServer::start();
    let a = node(&redis, "a");
    let first = connect(&a, "/kitchen");
    let second = connect(&a, "/kitchen");
    redis.wait_subscribed("/kitchen", 1);
    drop(first);
    wait_until(SETTLE, "the first member to leave", || {
        stat(&a, "connections_open") == 1
    });
    // Still one member here: still subscribed. The bridge sends its (un)subscriptions in order
    // on one connection, so once a later room's SUBSCRIBE has reached Redis, an UNSUBSCRIBE
    // for /kitchen sent when the first member left would have reached it too.
    let marker = connect(&a, "/marker");
    redis.wait_subscribed("/marker", 1);
    assert_eq!(redis.subscribers("/kitchen"), 1);
    drop(marker);
    drop(second);
    redis.wait_subscribed("/kitchen", 0);
}

/// Redis killed: local relay goes on; Redis back: both nodes reconnect and messages cross again.
#[test]
#[ignore = "needs redis-server (scripts/setup-test-deps.sh)"]
fn redis_restart_keeps_local_relay_and_resumes_cross_node() {
    // While Redis is down, messages for other nodes are counted as dropped. A client keeps
    // chatting through the restart, so replies to its messages are always pending while the
    // nodes reconnect and resubscribe.
    let mut redis = RedisServer::start();
    let (a, b) = (node(&redis, "a"), node(&redis, "b"));
    let mut a1 = connect(&a, "/r");
    let mut a2 = connect(&a, "/r");
    let mut b1 = connect(&b, "/r");
    wait_ready(&redis, "/r", &[&a, &b]);
    a1.send(Message::text("before")).unwrap();
    assert_eq!(recv(&mut b1), Message::text("before"));
    assert_eq!(recv(&mut a2), Message::text("before"));

    // A client on A that talks every 2 ms to a room of its own, all through the test (its
    // sleep paces the traffic; it waits for nothing).
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut chatter = connect(&a, "/noise");
    let chatting = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                chatter.send(Message::text("noise")).unwrap();
                std::thread::sleep(Duration::from_millis(2));
            }
        })
    };

    redis.kill();
    wait_until(SETTLE, "both nodes to notice", || {
        stat(&a, "redis_connected") == 0 && stat(&b, "redis_connected") == 0
    });
    for i in 0..20 {
        a1.send(Message::text(format!("down {i}"))).unwrap();
    }
    for i in 0..20 {
        assert_eq!(recv(&mut a2), Message::text(format!("down {i}")));
    }
    assert_silent(&mut b1, Duration::from_millis(200));
    assert!(stat(&a, "redis_dropped_total") >= 20);

    redis.restart();
    redis.wait_subscribed("/r", 2);
    wait_until(SETTLE, "both nodes to report the bridge up", || {
        stat(&a, "redis_connected") == 1 && stat(&b, "redis_connected") == 1
    });
    a1.send(Message::text("after")).unwrap();
    assert_eq!(recv(&mut b1), Message::text("after"));
    assert_eq!(recv(&mut a2), Message::text("after"));
    b1.send(Message::text("and back")).unwrap();
    assert_eq!(recv(&mut a1), Message::text("and back"));
    assert_eq!(stat(&a, "redis_reconnects_total"), 1);
    assert_eq!(stat(&b, "redis_reconnects_total"), 1);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    chatting.join().unwrap();
}

/// A stalled Redis (SIGSTOP) stalls neither the loop nor memory; after SIGCONT messages cross.
#[test]
#[ignore = "needs redis-server (scripts/setup-test-deps.sh)"]
fn stalled_redis_bounds_the_queue_and_local_relay_goes_on() {
    // Local relay delivers everything, the publish queue stops at --redis-queue-bytes and the rest
    // is counted as dropped; unanswered commands mark Redis as gone.
    let redis = RedisServer::start();
    let mut opts = redis.options("a");
    opts.queue_bytes = 128 << 10;
    let a = TestServer::with(move |c| c.redis = Some(opts));
    let b = node(&redis, "b");
    let mut a1 = connect(&a, "/r");
    let mut a2 = connect(&a, "/r");
    let mut b1 = connect(&b, "/r");
    wait_ready(&redis, "/r", &[&a, &b]);

    redis.signal("STOP");
    // 32 MiB: more than the kernel's socket buffers toward Redis can absorb, so the bridge's
    // own queue fills up.
    let chunk = vec![7u8; 32 << 10];
    let local = std::thread::spawn(move || {
        for _ in 0..1024 {
            assert_eq!(recv(&mut a2).len(), 32 << 10);
        }
    });
    // B hears what was published before the queue filled, once Redis runs again.
    let remote = std::thread::spawn(move || {
        // Redis stays stopped for REPLY_TIMEOUT (5 s) and more: wait longer than that.
        b1.get_mut().set_read_timeout(Some(SETTLE)).unwrap();
        let mut heard = 0;
        loop {
            match recv(&mut b1) {
                Message::Binary(_) => heard += 1,
                text => return (heard, text),
            }
        }
    });
    for _ in 0..1024 {
        a1.send(Message::binary(chunk.clone())).unwrap();
    }
    local.join().expect("every message relayed locally");
    let published = stat(&a, "redis_published_total");
    assert!(published < 1024, "{published} published");
    assert_eq!(stat(&a, "redis_dropped_total"), 1024 - published);
    // Its PUBLISHes go unanswered: after REPLY_TIMEOUT node A calls Redis gone and retries.
    wait_until(SETTLE, "node a to give up on the stalled Redis", || {
        stat(&a, "redis_connected") == 0
    });

    redis.signal("CONT");
    redis.wait_subscribed("/r", 2);
    wait_until(SETTLE, "node a up again", || {
        stat(&a, "redis_connected") == 1
    });
    assert_eq!(stat(&a, "redis_reconnects_total"), 1);
    a1.send(Message::text("after the stall")).unwrap();
    let (heard, last) = remote.join().expect("b1 reads until the text");
    assert_eq!(last, Message::text("after the stall"));
    assert!(heard as u64 <= published, "{heard} of {published}");
}

/// The password in a Redis URL is sent with AUTH; a wrong one keeps the node local-only.
#[test]
#[ignore = "needs redis-server (scripts/setup-test-deps.sh)"]
fn password_in_the_url_is_sent_with_auth() {
    // A wrong password's error reply is a fault like any other.
    let redis = RedisServer::start_with(Some("s3cret"));
    let url = |pw: &str| format!("redis://:{pw}@{}", redis.addr);
    let (good_a, good_b, bad) = (url("s3cret"), url("s3cret"), url("wrong"));
    let a = TestServer::with(move |c| c.redis = Some(RedisOptions::new(&good_a).unwrap()));
    let b = TestServer::with(move |c| c.redis = Some(RedisOptions::new(&good_b).unwrap()));
    let stranger = TestServer::with(move |c| c.redis = Some(RedisOptions::new(&bad).unwrap()));
    let mut a1 = connect(&a, "/p");
    let mut b1 = connect(&b, "/p");
    let mut s1 = connect(&stranger, "/p");
    wait_ready(&redis, "/p", &[&a, &b]);
    a1.send(Message::text("members only")).unwrap();
    assert_eq!(recv(&mut b1), Message::text("members only"));
    assert_silent(&mut s1, Duration::from_millis(200));
    assert_eq!(stat(&stranger, "redis_connected"), 0);
    assert_eq!(stat(&a, "redis_connected"), 1);
}

/// A laggard on node B holds up only its own room's messages from other nodes there: room
/// /b's messages from node A keep reaching B while /a waits, the laggard is dropped at
/// `--lag-timeout`, and /a's healthy member on B then gets every message from A, in order.
#[test]
#[ignore = "needs redis-server (scripts/setup-test-deps.sh)"]
fn a_laggard_holds_up_only_its_own_rooms_remote_messages() {
    const LAG: Duration = Duration::from_secs(2);
    // 4 KiB each: 6 MB, more than the laggard's socket buffers take.
    const FLOOD: u32 = 1500;
    let redis = RedisServer::start();
    let mut opts = redis.options("a");
    // Node A publishes the whole flood: none of it may be dropped for a full queue.
    opts.queue_bytes = 64 << 20;
    let a = TestServer::with(move |c| c.redis = Some(opts));
    let opts = redis.options("b");
    let b = TestServer::with(move |c| {
        c.redis = Some(opts);
        c.max_queue_bytes = 256 << 10;
        c.lag_timeout = LAG;
        c.close_timeout = Duration::from_millis(100);
        // Only lagging can get the laggard dropped, not --write-timeout.
        c.write_timeout = Duration::from_secs(60);
    });
    let mut flooder = connect(&a, "/a");
    let mut chatter = connect(&a, "/b");
    let mut b_listener = connect(&b, "/b");
    let mut a_listener = connect(&b, "/a");
    // A member of /a on B that never reads, with a small receive buffer.
    let mut laggard = small_buffer(b.addr, 4 << 10);
    laggard.write_all(upgrade_request("/a").as_bytes()).unwrap();
    wait_until(SETTLE, "three members on B", || {
        stat(&b, "connections_open") == 3
    });
    wait_ready(&redis, "/a", &[&a, &b]);
    wait_ready(&redis, "/b", &[&a, &b]);

    let t0 = Instant::now();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let chatting = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let stamp = t0.elapsed().as_micros().to_string();
                chatter.send(Message::text(stamp)).unwrap();
                // The chatter's pace (100 a second), not a wait for anything.
                std::thread::sleep(Duration::from_millis(10));
            }
            chatter.send(Message::text("end")).unwrap();
        })
    };
    let b_heard = std::thread::spawn(move || {
        let mut worst = Vec::new();
        loop {
            let Message::Text(t) = recv(&mut b_listener) else {
                panic!("text expected")
            };
            if t.as_str() == "end" {
                return worst;
            }
            let sent = Duration::from_micros(t.as_str().parse().unwrap());
            worst.push(t0.elapsed() - sent);
        }
    });
    let a_heard = std::thread::spawn(move || {
        for seq in 0..FLOOD {
            let Message::Binary(m) = recv(&mut a_listener) else {
                panic!("binary expected")
            };
            assert_eq!(m[..4], seq.to_be_bytes(), "message {seq} in order");
        }
    });
    for seq in 0..FLOOD {
        let mut payload = vec![0u8; 4 << 10];
        payload[..4].copy_from_slice(&seq.to_be_bytes());
        flooder.send(Message::binary(payload)).unwrap();
    }
    a_heard
        .join()
        .expect("/a's member on B got every message from A, in order");
    wait_until(SETTLE, "the laggard to be dropped", || {
        stat(&b, "slow_consumers_total") == 1
    });
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    chatting.join().unwrap();
    let mut latencies = b_heard.join().expect("/b on B heard every message");
    latencies.sort();
    let p99 = latencies[latencies.len() * 99 / 100];
    println!("/b across nodes: {} messages, p99 {p99:?}", latencies.len());
    assert!(
        p99 < LAG / 4,
        "/b's p99 from node A was {p99:?}: the laggard in /a held it up"
    );
    assert_eq!(stat(&a, "redis_dropped_total"), 0);
    assert_eq!(stat(&b, "redis_dropped_total"), 0);
}

/// Redis unreachable at start: exit 1 with --redis-required; without it, the node serves locally.
#[test]
fn unreachable_redis_at_start_fails_only_when_required() {
    // With it: a clear error. Without it: the node starts and reports the bridge down.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("redis://{}", dead.local_addr().unwrap());
    drop(dead); // nothing listens there now
    let out = Command::new(env!("CARGO_BIN_EXE_chatloop"))
        .args(["serve", "--listen", "127.0.0.1:0", "--redis", &url])
        .arg("--redis-required")
        .output()
        .expect("run chatloop");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("error: Redis at"), "{stderr}");
    assert!(stderr.contains("unreachable"), "{stderr}");

    let server = ServerProcess::spawn(&["--redis", &url]);
    let text = http_get(server.addr, "/stats");
    assert!(text.contains("\"redis_connected\":false"), "{text}");
    let mut x = server.connect("/");
    let mut y = server.connect("/");
    x.send(Message::text("local only")).unwrap();
    assert_eq!(recv(&mut y), Message::text("local only"));
}

/// Measurement, not a check: latency from a sender on node A to receivers on node A (local
/// relay) and on node B (through Redis), at a fixed rate, as p50/p99. Run it in release, with
/// the test process on core 1; the nodes are pinned to core 0 and Redis to core 1:
/// `taskset -c 1 cargo test --release --test redis -- --ignored --nocapture cross_node_latency`.
/// Knobs: `LAT_SENDERS` (10), `LAT_RECEIVERS` per node (100), `LAT_RATE` per sender (50/s),
/// `LAT_SECS` (5).
#[test]
#[ignore = "a measurement, not a check: run it by hand as its doc comment says"]
fn cross_node_latency() {
    let redis = RedisServer::start();
    let knob = |name: &str, default: u64| -> u64 {
        std::env::var(name).map_or(default, |v| v.parse().expect("a number"))
    };
    let senders = knob("LAT_SENDERS", 10);
    let receivers = knob("LAT_RECEIVERS", 100);
    let rate = knob("LAT_RATE", 50);
    let per_sender = rate * knob("LAT_SECS", 5);
    let url = format!("redis://{}", redis.addr);
    let spawn = |node: &str| {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap()
            .port();
        let listen = format!("127.0.0.1:{port}");
        let child = Command::new("taskset")
            .args(["-c", "0", env!("CARGO_BIN_EXE_chatloop"), "serve"])
            .args(["--listen", &listen, "--redis", &url, "--node-id", node])
            .args(["--max-connections", "20000", "--log-level", "warn"])
            .stdin(Stdio::null())
            .spawn()
            .expect("spawn taskset chatloop");
        let addr: SocketAddr = listen.parse().unwrap();
        // It logs at warn, so there is no "listening" line to read: wait for the port.
        wait_until(SETTLE, "the node to listen", || {
            TcpStream::connect(addr).is_ok()
        });
        ServerProcess { child, addr }
    };
    let (a, b) = (spawn("a"), spawn("b"));
    let expected = senders * per_sender;
    let base = Instant::now();
    let mut readers = Vec::new();
    for node in [&a, &b] {
        for _ in 0..receivers {
            let mut ws = node.connect("/lat");
            readers.push((
                node.addr == b.addr,
                std::thread::spawn(move || {
                    let mut micros = Vec::with_capacity(expected as usize);
                    for _ in 0..expected {
                        let text = recv(&mut ws).into_text().expect("text");
                        let sent: u64 = text.parse().expect("a timestamp");
                        micros.push(base.elapsed().as_micros() as u64 - sent);
                    }
                    micros
                }),
            ));
        }
    }
    let mut clients: Vec<_> = (0..senders).map(|_| a.connect("/lat")).collect();
    redis.wait_subscribed("/lat", 2);
    let senders: Vec<_> = clients
        .drain(..)
        .enumerate()
        .map(|(i, mut ws)| {
            std::thread::spawn(move || {
                let period = Duration::from_micros(1_000_000 / rate);
                // Spread the senders over one period so their messages do not come in bursts.
                let start = Instant::now() + period * i as u32 / senders as u32;
                for k in 0..per_sender {
                    let due = start + period * k as u32;
                    std::thread::sleep(due.saturating_duration_since(Instant::now()));
                    ws.send(Message::text(base.elapsed().as_micros().to_string()))
                        .unwrap();
                }
                ws // the senders hear each other; keep reading nothing, just stay open
            })
        })
        .collect();
    let mut local = Vec::new();
    let mut remote = Vec::new();
    for (is_remote, r) in readers {
        let samples = r.join().expect("receiver got every message");
        if is_remote { &mut remote } else { &mut local }.extend(samples);
    }
    for s in senders {
        drop(s.join().unwrap());
    }
    let pct = |v: &mut Vec<u64>, p: f64| {
        v.sort_unstable();
        v[((v.len() as f64 * p) as usize).min(v.len() - 1)]
    };
    for (name, v) in [
        ("same node (A→A)", &mut local),
        ("cross node (A→Redis→B)", &mut remote),
    ] {
        println!(
            "{name:<24} {} samples  p50 {} µs  p99 {} µs  max {} µs",
            v.len(),
            pct(v, 0.50),
            pct(v, 0.99),
            pct(v, 1.0)
        );
    }
}
