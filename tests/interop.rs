//! Real clients from other ecosystems against the chat server: Python's `websockets` and
//! Node's `ws`, the libraries most browser-less WebSocket code is written with.
//!
//! Each test starts a server in-process (tuned for its scenario; for the `…_over_wss` tests
//! serving TLS with a certificate from a CA made in the test), runs one client script from
//! `tests/clients/` as a subprocess with the server's URL (and that CA), and checks that the script exited 0
//! within [`SCRIPT_TIMEOUT`] and printed every expected `ok - …` line. The scripts make the
//! assertions that need the client library (what arrives where, Pongs, close codes); this file
//! makes sure they ran and passed.
//!
//! Every test here is `#[ignore = "needs …"]`: `scripts/setup-test-deps.sh` installs both
//! clients (`websockets` into a venv under `target/`, `ws` into `tests/clients/node_modules`
//! from its lockfile) and `scripts/test.sh` then runs these with `--ignored`. Run without its
//! client, a test fails.

// The `…_over_wss` tests need TLS; the tool tests run in the default build, which has it.
#![cfg(feature = "tls")]

mod common;

use common::{missing_tool, run_within, TestPki, TestServer};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// A script that has not finished by then is killed and the test fails. The slowest scenario
/// takes about 3 s.
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(60);

/// The venv `scripts/setup-test-deps.sh` installs `websockets` into, relative to the repo.
const PYTHON_VENV: &str = "target/interop-venv/bin/python";

/// What a script is asked to check; each runs against a server configured for it.
#[derive(Clone, Copy)]
enum Scenario {
    /// Three clients in `/a`, two in `/b`: relay to the others only, rooms, Ping, Close.
    Relay,
    /// A 1 MiB binary and a 1 MiB text message, with `--max-message-bytes` at 2 MiB.
    Big,
    /// A silent client answering the server's Pings (every 200 ms) outlives the 1 s idle
    /// timeout.
    Keepalive,
}

impl Scenario {
    /// The argument the scripts take.
    fn name(self) -> &'static str {
        match self {
            Scenario::Relay => "relay",
            Scenario::Big => "big",
            Scenario::Keepalive => "keepalive",
        }
    }

    /// A chat server set up for this scenario, serving TLS with `pki`'s certificate if given.
    fn server(self, pki: Option<&TestPki>) -> TestServer {
        let tls = pki.map(TestPki::files);
        match self {
            Scenario::Relay => TestServer::with(|c| c.tls = tls),
            Scenario::Big => TestServer::with(|c| {
                c.tls = tls;
                c.max_message_bytes = 2 << 20;
                c.max_queue_bytes = 4 << 20;
            }),
            Scenario::Keepalive => TestServer::with(|c| {
                c.tls = tls;
                c.ping_interval = Duration::from_millis(200);
                c.idle_timeout = Duration::from_secs(1);
            }),
        }
    }

    /// The `ok - …` lines (their beginnings) a passing run prints, in both scripts.
    fn checks(self) -> &'static [&'static str] {
        match self {
            Scenario::Relay => &[
                "text from a1 reaches a2 and a3",
                "text is not echoed to its sender",
                "text stays in its room (/b hears nothing)",
                "binary from a2 reaches a1 and a3 as binary, intact",
                "binary is not echoed to its sender",
                "text from b1 reaches b2",
                "/a hears nothing from /b",
                "a client Ping is answered with a Pong carrying its payload",
                "a3's Close 1000 is answered with Close 1000",
                "the room keeps working after a leave",
                "clean close: 1000 both ways",
            ],
            Scenario::Big => &[
                "a 1 MiB binary message is relayed intact",
                "a 1 MiB text message is relayed intact",
                "the big messages are not echoed to their sender",
            ],
            Scenario::Keepalive => &[
                "nothing but Pings arrives while silent",
                "the server pinged the silent clients",
                "Pong-answering clients stay open past the idle timeout",
                "clean close after the keepalive",
            ],
        }
    }
}

/// The repository root (scripts and the venv are found from here, whatever the cwd).
fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// True if `cmd` runs and exits 0 (output discarded).
fn succeeds(cmd: &mut Command) -> bool {
    cmd.stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A Python that has `websockets` with its threaded client: the project venv, else
/// `python3` from PATH.
fn python() -> Option<PathBuf> {
    [repo().join(PYTHON_VENV), PathBuf::from("python3")]
        .into_iter()
        .find(|py| succeeds(Command::new(py).args(["-c", "import websockets.sync.client"])))
}

/// `node`, if it runs and `ws` is installed in `tests/clients/node_modules`.
fn node() -> Option<PathBuf> {
    let ws = repo().join("tests/clients/node_modules/ws/package.json");
    let node = PathBuf::from("node");
    (ws.is_file() && succeeds(Command::new(&node).arg("--version"))).then_some(node)
}

/// Runs `program script URL SCENARIO [CA]` against a fresh server (over wss:// with `tls`)
/// and checks its verdict.
fn run_client(program: &Path, script: &str, scenario: Scenario, tls: bool) {
    let pki = tls.then(|| TestPki::new(scenario.name()));
    let server = scenario.server(pki.as_ref());
    let run = run_within(
        Command::new(program)
            .arg(repo().join("tests/clients").join(script))
            .args([server.url(""), scenario.name().to_owned()])
            .args(pki.as_ref().map(TestPki::ca))
            .current_dir(repo())
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .env("PYTHONUNBUFFERED", "1"),
        SCRIPT_TIMEOUT,
    );
    let (stdout, transcript) = (&run.stdout, run.transcript());
    print!("{stdout}");
    let Some(status) = run.status else {
        panic!(
            "{script} {} still running after {SCRIPT_TIMEOUT:?}\n{transcript}",
            scenario.name()
        );
    };
    assert!(
        status.success(),
        "{script} {} failed: {status}\n{transcript}",
        scenario.name()
    );
    for check in scenario.checks() {
        assert!(
            stdout
                .lines()
                .any(|l| l.starts_with(&format!("ok - {check}"))),
            "{script} {} never checked {check:?}\n{transcript}",
            scenario.name()
        );
    }
    assert!(
        stdout.contains(&format!("{} passed in", scenario.name())),
        "{script} did not finish\n{transcript}"
    );
    server.stop().expect("server stopped cleanly");
}

/// Runs a Python `websockets` scenario; fails if that client is not installed.
fn python_client(scenario: Scenario) {
    let py = python().unwrap_or_else(|| missing_tool("a Python with `websockets` >= 13"));
    run_client(&py, "chat_test.py", scenario, false);
}

/// Runs a Python `websockets` scenario over wss://, its ssl context trusting the test CA.
fn python_client_over_wss(scenario: Scenario) {
    let py = python().unwrap_or_else(|| missing_tool("a Python with `websockets` >= 13"));
    run_client(&py, "chat_test.py", scenario, true);
}

/// Runs a Node `ws` scenario; fails if that client is not installed.
fn node_client(scenario: Scenario) {
    let node = node().unwrap_or_else(|| missing_tool("`node` with `ws` in tests/clients"));
    run_client(&node, "chat_test.mjs", scenario, false);
}

/// Runs a Node `ws` scenario over wss://, trusting the test CA.
fn node_client_over_wss(scenario: Scenario) {
    let node = node().unwrap_or_else(|| missing_tool("`node` with `ws` in tests/clients"));
    run_client(&node, "chat_test.mjs", scenario, true);
}

/// Python `websockets`: relay to the others only, room isolation, Ping/Pong, Close 1000.
#[test]
#[ignore = "needs Python websockets (scripts/setup-test-deps.sh)"]
fn python_websockets_relays_to_others_in_the_room_only() {
    python_client(Scenario::Relay);
}

/// Python `websockets`: 1 MiB binary and text messages arrive intact.
#[test]
#[ignore = "needs Python websockets (scripts/setup-test-deps.sh)"]
fn python_websockets_relays_a_one_megabyte_message() {
    python_client(Scenario::Big);
}

/// Python `websockets`: the server's Pings are answered and keep a silent client open.
#[test]
#[ignore = "needs Python websockets (scripts/setup-test-deps.sh)"]
fn python_websockets_answers_server_pings_and_stays_open() {
    python_client(Scenario::Keepalive);
}

/// Node `ws`: relay to the others only, room isolation, Ping/Pong, Close 1000.
#[test]
#[ignore = "needs Node ws (scripts/setup-test-deps.sh)"]
fn node_ws_relays_to_others_in_the_room_only() {
    node_client(Scenario::Relay);
}

/// Node `ws`: 1 MiB binary and text messages arrive intact.
#[test]
#[ignore = "needs Node ws (scripts/setup-test-deps.sh)"]
fn node_ws_relays_a_one_megabyte_message() {
    node_client(Scenario::Big);
}

/// Node `ws`: the server's Pings are answered and keep a silent client open.
#[test]
#[ignore = "needs Node ws (scripts/setup-test-deps.sh)"]
fn node_ws_answers_server_pings_and_stays_open() {
    node_client(Scenario::Keepalive);
}

/// Python `websockets` over wss://: relay, rooms, Ping/Pong and Close through TLS.
#[test]
#[ignore = "needs Python websockets (scripts/setup-test-deps.sh)"]
fn python_websockets_relays_over_wss() {
    python_client_over_wss(Scenario::Relay);
}

/// Python `websockets` over wss://: 1 MiB messages, many TLS records each, arrive intact.
#[test]
#[ignore = "needs Python websockets (scripts/setup-test-deps.sh)"]
fn python_websockets_relays_a_one_megabyte_message_over_wss() {
    python_client_over_wss(Scenario::Big);
}

/// Node `ws` over wss://: relay, rooms, Ping/Pong and Close through TLS.
#[test]
#[ignore = "needs Node ws (scripts/setup-test-deps.sh)"]
fn node_ws_relays_over_wss() {
    node_client_over_wss(Scenario::Relay);
}

/// Node `ws` over wss://: the server's Pings keep a silent TLS client open.
#[test]
#[ignore = "needs Node ws (scripts/setup-test-deps.sh)"]
fn node_ws_answers_server_pings_over_wss() {
    node_client_over_wss(Scenario::Keepalive);
}
