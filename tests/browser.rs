//! The chat page in a real headless Chromium: `tests/browser/page_test.mjs` (playwright-core
//! driving the system's `/usr/bin/chromium`) against a server started here, with
//! `chatloop connect` joining the same room.
//!
//! `#[ignore = "needs …"]`: `scripts/setup-test-deps.sh` installs `chromium`, `node` and
//! `tests/browser/node_modules`, and `scripts/test.sh` then runs it with `--ignored`. Run
//! without them, it fails.
#![cfg(feature = "client")]

mod common;

use common::{missing_tool, run_within, TestServer};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// The whole browser run, Chromium start included, must finish within this.
const DEADLINE: Duration = Duration::from_secs(120);

/// Chromium as Debian installs it.
const CHROMIUM: &str = "/usr/bin/chromium";

/// What is missing to run the browser test, if anything.
fn missing() -> Option<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    if !Path::new(CHROMIUM).exists() {
        return Some(format!("Chromium at {CHROMIUM}"));
    }
    if !dir.join("node_modules/playwright-core").exists() {
        return Some("playwright-core in tests/browser/node_modules (npm ci)".into());
    }
    match Command::new("node").arg("--version").output() {
        Ok(out) if out.status.success() => None,
        _ => Some("`node`".into()),
    }
}

/// Two pages and a terminal client chat in one room; markup in a message stays text.
#[test]
#[ignore = "needs Chromium, node and playwright-core (scripts/setup-test-deps.sh)"]
fn page_chats_with_another_page_and_the_cli_client() {
    if let Some(what) = missing() {
        missing_tool(&what);
    }
    let server = TestServer::start();
    let url = format!("http://{}/kitchen", server.addr);
    let run = run_within(
        Command::new("node")
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .arg("tests/browser/page_test.mjs")
            .arg(&url)
            .arg(env!("CARGO_BIN_EXE_chatloop")),
        DEADLINE,
    );
    let Some(status) = run.status else {
        panic!(
            "the browser test did not finish within {DEADLINE:?}\n{}",
            run.transcript()
        );
    };
    assert!(
        status.success(),
        "page_test.mjs failed: {status}\n{}",
        run.transcript()
    );
    assert!(
        run.stdout.contains("page_test: all checks passed"),
        "{}",
        run.stdout
    );
}
