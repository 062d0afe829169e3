//! `cargo bench`: the standard load-test scenarios against an in-process server, as one table.
//!
//! Each scenario starts a fresh server on `127.0.0.1:0` in a thread of this process (the
//! integration tests' `TestServer`) and runs `chatloop bench` against it from the main thread.
//! The server's CPU use is read from its own thread's `/proc` entry, so the "server CPU" column
//! is the server's alone. The idle-memory scenario is the exception: it runs the `chatloop`
//! binary as a child process, because in one process the generator's memory would count as the
//! server's.
//!
//! The two threads are not pinned to cores here; `benches/compare.sh` pins them (and compares
//! with other servers). On a machine busy with other work the figures vary: repeat and compare
//! medians.
//!
//! `CHATLOOP_BENCH_QUICK=1 cargo bench` shrinks every scenario to a second or so (a smoke
//! test). `cargo test --all-targets` also runs this file (without `--bench`): then it is
//! always the quick smoke, so the test suite stays short.
//!
//! A figure measured with errors or loss is not a figure: every scenario still runs and the
//! table is still printed, but then each fault is listed (`Report::faults`: failed
//! connections, lost, out-of-order or duplicated deliveries, malformed or unsent messages)
//! and the process exits 1, as it does when a scenario cannot run at all.

#[path = "../tests/common/mod.rs"]
mod common;

use chatloop::Mode;
use chatloop_bench::{self as bench, Options, Report, Scenario};
use common::{ServerProcess, TestServer};
use std::process::ExitCode;
use std::time::Duration;

/// One row of the table: a name and what the run reported.
struct Row {
    /// The scenario and its size, as shown.
    name: String,
    /// What the run measured.
    report: Report,
}

fn main() -> ExitCode {
    let quick = std::env::var_os("CHATLOOP_BENCH_QUICK").is_some()
        || !std::env::args().any(|a| a == "--bench");
    // (full, quick) sizes.
    let pick = |full: usize, small: usize| if quick { small } else { full };
    let duration = if quick {
        Duration::from_secs(1)
    } else {
        Duration::from_secs(10)
    };
    let warmup = if quick {
        Duration::from_millis(300)
    } else {
        Duration::from_secs(2)
    };
    let fd_limit = bench::raise_fd_limit().unwrap_or(1024) as usize;
    let mut rows = Vec::new();
    // "scenario: what went wrong", for every scenario that failed or was not clean.
    let mut faults: Vec<String> = Vec::new();

    let mut run = |name: String, server: &TestServer, tweak: &dyn Fn(&mut Options)| {
        let mut o = Options::new(Scenario::Fanout, &server.url("/bench"));
        (o.duration, o.warmup, o.progress) = (duration, warmup, false);
        tweak(&mut o);
        o.pid = server_thread();
        eprintln!("running: {name}");
        match bench::run(&o) {
            Ok(report) => rows.push(Row { name, report }),
            Err(e) => faults.push(format!("{name}: did not run: {e}")),
        }
    };

    let (c, s) = (pick(1000, 100), pick(10, 5));
    run(
        format!("fanout {c}×{s} closed loop, 64 B"),
        &TestServer::start(),
        &|o| {
            (o.clients, o.senders) = (c, s);
        },
    );
    let (c2, s2) = (pick(100, 20), pick(100, 20));
    run(
        format!("fanout {c2}×{s2} closed loop, 64 B"),
        &TestServer::start(),
        &|o| {
            (o.clients, o.senders) = (c2, s2);
        },
    );
    run(
        format!("fanout {c}×{s} at 50 msg/s each"),
        &TestServer::start(),
        &|o| {
            (o.clients, o.senders, o.rate) = (c, s, Some(50.0));
        },
    );
    let echo = TestServer::with(|cfg| cfg.mode = Mode::Echo);
    run(format!("echo {} clients", pick(100, 10)), &echo, &|o| {
        (o.scenario, o.clients) = (Scenario::Echo, pick(100, 10));
    });
    drop(echo);
    run(
        "connect, 100 in flight".to_owned(),
        &TestServer::start(),
        &|o| {
            (o.scenario, o.concurrency) = (Scenario::Connect, 100);
        },
    );

    // Idle memory: the server as a child process, so its RSS is its own. Each process needs
    // one descriptor per connection plus a few.
    let wanted = pick(10_000, 500);
    let idle = wanted.min(fd_limit.saturating_sub(100));
    if idle < wanted {
        eprintln!("note: idle runs {idle} connections, not {wanted}: 'ulimit -n' is {fd_limit}");
    }
    let server = ServerProcess::spawn(&["--max-connections", "20000"]);
    let mut o = Options::new(Scenario::Idle, &format!("ws://{}/idle", server.addr));
    (o.clients, o.duration, o.progress) = (idle, duration.min(Duration::from_secs(5)), false);
    o.concurrency = 200;
    o.pid = Some(server.child.id());
    eprintln!("running: idle {idle}");
    let name = format!("idle {idle} connections");
    match bench::run(&o) {
        Ok(report) => rows.push(Row { name, report }),
        Err(e) => faults.push(format!("{name}: did not run: {e}")),
    }
    drop(server);

    print_table(&rows);
    for row in &rows {
        faults.extend(
            row.report
                .faults()
                .iter()
                .map(|f| format!("{}: {f}", row.name)),
        );
    }
    if faults.is_empty() {
        return ExitCode::SUCCESS;
    }
    eprintln!(
        "\nerror: {} fault(s); these figures do not count:",
        faults.len()
    );
    for f in &faults {
        eprintln!("  {f}");
    }
    ExitCode::FAILURE
}

/// The server thread's id, as a "pid" whose `/proc` entry gives that thread's CPU time: the
/// one thread of this process that is not the main (generator) thread. Linux accepts a
/// thread id anywhere a pid goes in `/proc`.
fn server_thread() -> Option<u32> {
    let me = std::fs::read_link("/proc/thread-self").ok()?;
    let me: u32 = me.file_name()?.to_str()?.parse().ok()?;
    std::fs::read_dir("/proc/self/task")
        .ok()?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .find(|&tid| tid != me)
}

/// The results, one line per scenario.
fn print_table(rows: &[Row]) {
    use bench::render::us;
    println!(
        "\n{:<36} {:>14} {:<16} {:>9} {:>9} {:>9} {:>8} {:>7} {:>6}",
        "scenario", "rate", "unit", "p50", "p99", "max", "gen CPU", "srv CPU", "errors"
    );
    for row in rows {
        let r = &row.report;
        // Latency for fanout and echo; the handshake time for connect and idle.
        let (rate, unit) = match r.kib_per_connection() {
            Some(kib) => (format!("{kib:.2}"), "KiB/connection"),
            None => (format!("{:.0}", r.rate), r.rate_unit),
        };
        let l = r.latency.unwrap_or(r.handshake);
        let lost = if r.lost() > 0 {
            format!(" (lost {})", r.lost())
        } else {
            String::new()
        };
        println!(
            "{:<36} {:>14} {:<16} {:>9} {:>9} {:>9} {:>7.0}% {:>6}% {:>6}{lost}",
            row.name,
            rate,
            unit,
            us(l.p50),
            us(l.p99),
            us(l.max),
            r.generator_cpu,
            r.server_cpu.map_or("-".to_owned(), |c| format!("{c:.0}")),
            r.errors()
        );
    }
    println!("(p50/p99/max: message latency or round trip; for connect and idle, the handshake)");
}
