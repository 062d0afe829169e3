//! The chat page in a real headless Chromium: `tests/browser/page_test.mjs` (playwright-core
//! driving the system's `/usr/bin/chromium`) against a server started here, with
//! `chatloop connect` joining the same room.
//!
//! Needs `chromium`, `node` and `tests/browser/node_modules` (`scripts/setup-test-deps.sh`
//! installs them). Without them the test says so and passes, unless
//! `CHATLOOP_REQUIRE_INTEROP=1` (set by `scripts/test.sh` after installing), then it fails.
#![cfg(feature = "client")]

mod common;

use common::TestServer;
use std::io::{BufReader, Read};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The whole browser run, Chromium start included, must finish within this.
const DEADLINE: Duration = Duration::from_secs(120);

/// Chromium as Debian installs it.
const CHROMIUM: &str = "/usr/bin/chromium";

/// What is missing to run the browser test, if anything.
fn missing() -> Option<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    if !Path::new(CHROMIUM).exists() {
        return Some(format!("{CHROMIUM} not found"));
    }
    if !dir.join("node_modules/playwright-core").exists() {
        return Some("tests/browser/node_modules not installed (npm ci)".into());
    }
    match Command::new("node").arg("--version").output() {
        Ok(out) if out.status.success() => None,
        _ => Some("node not found".into()),
    }
}

/// Two pages and a terminal client chat in one room; markup in a message stays text.
#[test]
fn page_chats_with_another_page_and_the_cli_client() {
    if let Some(why) = missing() {
        if std::env::var("CHATLOOP_REQUIRE_INTEROP").as_deref() == Ok("1") {
            panic!("browser test required but cannot run: {why} (run scripts/setup-test-deps.sh)");
        }
        eprintln!("skipping the browser test: {why} (run scripts/setup-test-deps.sh)");
        return;
    }
    let server = TestServer::start();
    let url = format!("http://{}/kitchen", server.addr);
    let mut child = Command::new("node")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .arg("tests/browser/page_test.mjs")
        .arg(&url)
        .arg(env!("CARGO_BIN_EXE_chatloop"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn node");
    // Collected on threads so a chatty child never blocks on a full pipe; shown on failure.
    let collect = |pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = BufReader::new(pipe).read_to_string(&mut text);
            text
        })
    };
    let stdout = collect(Box::new(child.stdout.take().unwrap()));
    let stderr = collect(Box::new(child.stderr.take().unwrap()));
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the browser test did not finish within {DEADLINE:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let (out, err) = (stdout.join().unwrap(), stderr.join().unwrap());
    assert!(
        status.success(),
        "page_test.mjs failed: {status}\n{out}\n{err}"
    );
    assert!(out.contains("page_test: all checks passed"), "{out}");
}
