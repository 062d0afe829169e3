//! Rooms under pressure: a client that stops reading holds up its own room and no other, is
//! dropped at `--lag-timeout`, and costs the server a bounded amount of memory, whatever the
//! size of the messages piling up for it.

mod common;

use common::*;
use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};
use tungstenite::Message;

/// A client in `path` that upgrades and then never reads. Its receive buffer is small, so the
/// kernel cannot hide for long how far behind it is.
fn stuck_reader(addr: SocketAddr, path: &str) -> TcpStream {
    let mut stream = small_buffer(addr, 4 << 10);
    stream.write_all(upgrade_request(path).as_bytes()).unwrap();
    stream
}

/// The 99th percentile of `samples` (sorted here).
fn p99(samples: &mut [Duration]) -> Duration {
    samples.sort();
    samples[(samples.len() * 99 / 100).min(samples.len() - 1)]
}

/// Room A has a client that never reads and a sender that floods it; room B chats at 100
/// messages a second. Throughout, B's messages keep flowing (its p99 stays far below the lag
/// timeout, which is what it was when one laggard paused every room); the laggard is dropped at
/// `--lag-timeout`; A's healthy reader gets every message in order.
#[test]
fn a_laggard_holds_up_only_its_own_room() {
    const LAG: Duration = Duration::from_secs(2);
    const FLOOD: u32 = 1500; // 4 KiB each: 6 MB, far past the laggard's cap and buffers
    let server = TestServer::with(|c| {
        c.max_queue_bytes = 256 << 10;
        c.lag_timeout = LAG;
        // The dropped laggard never reads its Close: its slot (and the count of slow
        // consumers, kept when a slot is freed) should not wait long for it.
        c.close_timeout = Duration::from_millis(100);
    });
    let mut a_sender = connect(&server, "/a");
    let mut a_reader = connect(&server, "/a");
    let _laggard = stuck_reader(server.addr, "/a");
    let mut b_sender = connect(&server, "/b");
    let mut b_reader = connect(&server, "/b");
    wait_until(READ_TIMEOUT, "all five clients in their rooms", || {
        stat(&stats_body(server.addr), "connections_open") == 5
    });

    // Room B: each message carries its send time; the reader keeps every latency.
    let t0 = Instant::now();
    let flooding = Arc::new(AtomicBool::new(true));
    let b_chat = {
        let flooding = flooding.clone();
        thread::spawn(move || {
            while flooding.load(Ordering::SeqCst) {
                let stamp = t0.elapsed().as_micros().to_string();
                b_sender.send(Message::text(stamp)).unwrap();
                // The sender's pace (100 a second), not a wait for anything.
                thread::sleep(Duration::from_millis(10));
            }
            b_sender.send(Message::text("end")).unwrap();
        })
    };
    let b_heard = thread::spawn(move || {
        let mut latencies = Vec::new();
        loop {
            let Message::Text(t) = recv(&mut b_reader) else {
                panic!("text expected")
            };
            if t.as_str() == "end" {
                return latencies;
            }
            let sent = Duration::from_micros(t.as_str().parse().unwrap());
            latencies.push(t0.elapsed() - sent);
        }
    });
    let a_heard = thread::spawn(move || {
        for seq in 0..FLOOD {
            let Message::Binary(b) = recv(&mut a_reader) else {
                panic!("binary expected")
            };
            assert_eq!(b[..4], seq.to_be_bytes(), "message {seq} in order");
        }
    });

    // Room A: the flood. Sends block while the room is paused (TCP pushes back).
    let flood_began = Instant::now();
    let dropped_after = thread::spawn(move || {
        wait_until(LAG, "room /a, and it alone, to pause", || {
            stat(&stats_body(server.addr), "rooms_paused") == 1
        });
        wait_until(LAG * 3, "the laggard to be dropped", || {
            stat(&stats_body(server.addr), "slow_consumers_total") == 1
        });
        (flood_began.elapsed(), server)
    });
    for seq in 0..FLOOD {
        let mut payload = vec![0u8; 4 << 10];
        payload[..4].copy_from_slice(&seq.to_be_bytes());
        a_sender.send(Message::binary(payload)).unwrap();
    }
    a_heard
        .join()
        .expect("A's healthy reader got every message, in order");
    let (dropped_after, server) = dropped_after.join().unwrap();
    flooding.store(false, Ordering::SeqCst);
    b_chat.join().unwrap();
    let mut latencies = b_heard.join().expect("B heard every message");

    assert!(
        dropped_after >= LAG,
        "dropped after {dropped_after:?}: it must have held its room up for --lag-timeout"
    );
    let p99 = p99(&mut latencies);
    println!(
        "room B: {} messages during the flood, p99 {p99:?}; laggard dropped after {dropped_after:?}",
        latencies.len()
    );
    assert!(
        p99 < LAG / 4,
        "room B's p99 latency was {p99:?}: the laggard in A held B up"
    );
    assert_eq!(stat(&stats_body(server.addr), "slow_consumers_total"), 1);
}

/// A room paused for a member that is behind is read again as soon as that member catches up,
/// not at the next tick. Each round, the sender sends more than the kernel's buffers hold
/// while the reader waits for the room to pause; then the reader reads it all, which needs the
/// room read again. When a pause lasted until the next tick (a second here), each round took
/// about that long: ten rounds, 9.7 s, against 0.4 s.
#[test]
fn a_paused_room_is_read_again_as_soon_as_it_catches_up() {
    const ROUNDS: usize = 10;
    const PER_ROUND: u32 = 128; // 32 KiB each: 4 MB, more than the kernel's socket buffers
    let server = TestServer::with(|c| {
        c.max_message_bytes = 32 << 10;
        c.max_queue_bytes = 128 << 10;
        // Nobody is dropped; the tick is its longest, a second.
        c.lag_timeout = Duration::from_secs(60);
        c.write_timeout = Duration::from_secs(60);
    });
    let mut sender = connect(&server, "/r");
    let stream = small_buffer(server.addr, 8 << 10);
    let mut reader = tungstenite::client(server.url("/r"), stream).unwrap().0;
    wait_until(READ_TIMEOUT, "both clients in the room", || {
        stat(&stats_body(server.addr), "connections_open") == 2
    });
    let (go, rounds) = std::sync::mpsc::channel::<()>();
    let sending = thread::spawn(move || {
        let mut seq = 0u32;
        for () in rounds {
            for _ in 0..PER_ROUND {
                let mut payload = vec![0u8; 32 << 10];
                payload[..4].copy_from_slice(&seq.to_be_bytes());
                // Blocks while the room is paused: TCP pushes back.
                sender.send(Message::binary(payload)).unwrap();
                seq += 1;
            }
        }
    });
    let mut seq = 0u32;
    let mut took = Vec::new();
    for _ in 0..ROUNDS {
        go.send(()).unwrap();
        wait_until(READ_TIMEOUT, "the room to pause", || {
            stat(&stats_body(server.addr), "rooms_paused") == 1
        });
        let began = Instant::now();
        for _ in 0..PER_ROUND {
            let Message::Binary(b) = recv(&mut reader) else {
                panic!("binary expected")
            };
            assert_eq!(b[..4], seq.to_be_bytes(), "message {seq} in order");
            seq += 1;
        }
        took.push(began.elapsed());
    }
    drop(go);
    sending.join().unwrap();
    let total: Duration = took.iter().sum();
    println!("{ROUNDS} rounds of a paused room caught up: {total:?} in all ({took:?})");
    assert!(
        total < Duration::from_millis(200) * ROUNDS as u32,
        "{total:?}: the room waited for the tick to be read again"
    );
    assert_eq!(stat(&stats_body(server.addr), "slow_consumers_total"), 0);
}

/// A flood of empty messages to clients that never read: the server's resident memory grows
/// by at most twice `--max-queue-bytes` per stuck reader. (Counting payload alone, a queued
/// empty message cost ~100 bytes against 2 counted, and the growth was 29 times the cap.)
#[test]
fn an_empty_message_flood_holds_at_most_twice_the_cap_per_stuck_reader() {
    const STUCK: u64 = 1;
    const CAP_KIB: u64 = 256;
    // The stuck reader is not dropped during the measurement.
    let server = ServerProcess::spawn(&["--max-queue-bytes", "256KiB", "--lag-timeout", "60s"]);
    let mut sender = upgraded(server.addr, "/f");
    // Every buffer that is allocated once and kept (the read buffer, the first slices) is
    // touched before the baseline: one big message round, from a reader that does read.
    let mut warm = server.connect("/f");
    sender
        .write_all(&client_frame(0x82, &vec![1u8; 60_000]))
        .unwrap();
    assert_eq!(recv(&mut warm).len(), 60_000);
    drop(warm);
    let _stuck: Vec<TcpStream> = (0..STUCK)
        .map(|_| stuck_reader(server.addr, "/f"))
        .collect();
    wait_until(READ_TIMEOUT, "the stuck readers to be in", || {
        stat(&stats_body(server.addr), "connections_open") == STUCK + 1
    });
    let before = server.status_kib("VmRSS");

    // 16 MB of empty binary messages (6 bytes each from a client: header and mask), 2.8
    // million, 5.6 MB as server frames: more than each stuck reader's cap and socket buffers
    // hold. The writes block while the room is paused, so a thread writes.
    let flood = thread::spawn(move || {
        let burst: Vec<u8> = client_frame(0x82, b"").repeat(10_000);
        sender.set_write_timeout(None).unwrap();
        for _ in 0..(16 << 20) / burst.len() {
            if sender.write_all(&burst).is_err() {
                break; // the server is gone: the test has ended
            }
        }
    });
    // The room pauses once the stuck reader is behind, and stays paused: it takes no more
    // messages.
    let mut last = u64::MAX;
    wait_until(
        Duration::from_secs(60),
        "the room to pause and stop taking messages",
        || {
            let json = stats_body(server.addr);
            let taken = stat(&json, "messages_in_total");
            let stopped = taken == std::mem::replace(&mut last, taken);
            stat(&json, "behind") >= 1 && stopped
        },
    );
    let growth = server.status_kib("VmHWM").saturating_sub(before);
    println!(
        "peak resident growth {growth} KiB for {STUCK} stuck readers (bound {} KiB)",
        2 * CAP_KIB * STUCK
    );
    assert!(
        growth <= 2 * CAP_KIB * STUCK,
        "resident memory grew by {growth} KiB"
    );
    drop(server);
    flood.join().unwrap();
}
