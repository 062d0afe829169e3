//! The `chatloop` binary as an operator runs it: signals, descriptor exhaustion, usage errors.

mod common;

use common::*;
use std::process::Command;
use std::time::Duration;
use tungstenite::Message;

/// SIGTERM makes the server send Close 1001 to every client and exit 0.
#[test]
fn sigterm_sends_1001_to_every_client_and_exits_0() {
    let mut server = ServerProcess::spawn(&[]);
    let mut clients: Vec<_> = (0..3).map(|_| server.connect("/")).collect();
    clients[0].send(Message::text("sync")).unwrap();
    recv(&mut clients[1]);
    recv(&mut clients[2]);
    server.signal("TERM");
    for c in &mut clients {
        assert_eq!(expect_close(c), 1001);
    }
    drop(clients);
    let status = wait_exit(&mut server.child, Duration::from_secs(5));
    assert_eq!(status.code(), Some(0));
}

/// SIGINT (Ctrl-C) also sends Close 1001 and exits 0.
#[test]
fn sigint_sends_1001_and_exits_0() {
    let mut server = ServerProcess::spawn(&[]);
    let mut c = server.connect("/");
    server.signal("INT");
    assert_eq!(expect_close(&mut c), 1001);
    drop(c);
    assert_eq!(
        wait_exit(&mut server.child, Duration::from_secs(5)).code(),
        Some(0)
    );
}

/// Out of descriptors, the server neither spins nor stalls: clients chat on, new ones get in later.
#[test]
fn out_of_descriptors_neither_spins_nor_stalls() {
    const FDS: u32 = 40;
    let server = ServerProcess::spawn_with_fd_limit(FDS, &[]);
    let mut a = server.connect("/");
    let mut b = server.connect("/");
    // Flood: more connections than descriptors left.
    let flood: Vec<_> = (0..60).map(|_| raw(server.addr)).collect();
    // Out of descriptors means every number below the limit is taken: accept gets EMFILE.
    let pid = server.child.id();
    wait_until(READ_TIMEOUT, "every descriptor number to be taken", || {
        (0..FDS).all(|fd| std::fs::symlink_metadata(format!("/proc/{pid}/fd/{fd}")).is_ok())
    });
    let cpu_before = cpu_ticks(pid);
    // Time passing is the point here: CPU used over one second while accept keeps failing.
    std::thread::sleep(Duration::from_secs(1));
    let cpu_used = cpu_ticks(pid) - cpu_before;
    // 100 ticks = one core for the whole second; a spinning accept loop would use them all.
    assert!(
        cpu_used < 30,
        "server used {cpu_used} ticks in 1 s: spinning"
    );
    a.send(Message::text("still served")).unwrap();
    assert_eq!(recv(&mut b), Message::text("still served"));
    drop(flood);
    // The server frees the flood's descriptors as it reads their FINs, then retries accept.
    let mut c = wait_for(READ_TIMEOUT, "a new client to be accepted again", || {
        let url = format!("ws://{}/", server.addr);
        match tungstenite::client(url, raw(server.addr)) {
            Ok((ws, _response)) => Ok(ws),
            Err(e) => Err(e.to_string()),
        }
    });
    a.send(Message::text("welcome back")).unwrap();
    assert_eq!(recv(&mut c), Message::text("welcome back"));
}

/// Usage mistakes exit 2 with a one-line reason; --help and --version exit 0.
#[test]
fn usage_errors_exit_2() {
    let bin = env!("CARGO_BIN_EXE_chatloop");
    let out = Command::new(bin)
        .args(["serve", "--max-connections", "lots"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.starts_with("error: invalid value 'lots' for --max-connections"));
    assert_eq!(err.lines().count(), 1);
    let help = Command::new(bin)
        .args(["serve", "--help"])
        .output()
        .unwrap();
    assert!(help.status.success());
    let help = String::from_utf8(help.stdout).unwrap();
    for flag in ["--listen", "--echo", "--max-queue-bytes", "--idle-timeout"] {
        assert!(help.contains(flag), "--help lists {flag}");
    }
    let version = Command::new(bin).arg("--version").output().unwrap();
    assert!(String::from_utf8(version.stdout)
        .unwrap()
        .starts_with("chatloop "));
}

/// Waits for the child to exit, killing it (and failing) after `limit`.
fn wait_exit(child: &mut std::process::Child, limit: Duration) -> std::process::ExitStatus {
    exit_within(child, limit).unwrap_or_else(|| panic!("server did not exit within {limit:?}"))
}

/// User + system CPU time of a process, in clock ticks (usually 100 per second).
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the command name (which may contain spaces) start after the last ')'.
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}
