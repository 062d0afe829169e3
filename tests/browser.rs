//! The chat page in a real headless Chromium: the scenarios in `tests/browser/*.mjs`
//! (playwright-core driving the system's `/usr/bin/chromium`), each against a server started
//! here, with `chatloop connect` joining the same room.
//!
//! `#[ignore = "needs …"]`: `scripts/setup-test-deps.sh` installs `chromium`, `node` and
//! `tests/browser/node_modules`, and `scripts/test.sh` then runs these with `--ignored`. Run
//! without them, they fail.
#![cfg(feature = "client")]

mod common;

use common::{missing_tool, run_within, TestServer};
use std::path::Path;
use std::process::Command;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

/// One scenario, Chromium start included, must finish within this.
const DEADLINE: Duration = Duration::from_secs(120);

/// Chromium as Debian installs it.
const CHROMIUM: &str = "/usr/bin/chromium";

/// Scenarios run one at a time: two Chromiums at once would share the CPU and blur what
/// `load_test.mjs` measures (main-thread tasks during a burst).
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// What is missing to run the browser scenarios, if anything.
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

/// Runs `tests/browser/<scenario>` against a fresh server; fails with its output unless it
/// ends with "<name>: all checks passed". What it printed is shown with `--nocapture`: every
/// check, and the figures (`# …` lines).
fn run_scenario(scenario: &str) {
    run_against(scenario, &TestServer::start(), &[]);
}

/// Runs `tests/browser/<scenario>` against `server` (http or https), with `env` set.
fn run_against(scenario: &str, server: &TestServer, env: &[(&str, &Path)]) {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(what) = missing() {
        missing_tool(&what);
    }
    let scheme = if server.secure { "https" } else { "http" };
    let url = format!("{scheme}://{}/kitchen", server.addr);
    let run = run_within(
        Command::new("node")
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .arg(Path::new("tests/browser").join(scenario))
            .arg(&url)
            .arg(env!("CARGO_BIN_EXE_chatloop"))
            .envs(env.iter().copied()),
        DEADLINE,
    );
    let Some(status) = run.status else {
        panic!(
            "{scenario} did not finish within {DEADLINE:?}\n{}",
            run.transcript()
        );
    };
    println!("{}", run.stdout);
    assert!(
        status.success(),
        "{scenario} failed: {status}\n{}",
        run.transcript()
    );
    let name = scenario.trim_end_matches(".mjs");
    assert!(
        run.stdout.contains(&format!("{name}: all checks passed")),
        "{}",
        run.stdout
    );
}

/// Two pages and a terminal client chat in one room; markup stays text, right-to-left lines
/// keep their order, lines using the reader's name are marked, the title counts unread lines.
#[test]
#[ignore = "needs Chromium, node and playwright-core (scripts/setup-test-deps.sh)"]
fn page_chats_with_another_page_and_the_cli_client() {
    run_scenario("chat_test.mjs");
}

/// A too-long paste is refused and kept; after a 1009 the text is back in the box; after a
/// restart the page is back within 2 s and says what it missed.
#[test]
#[ignore = "needs Chromium, node and playwright-core (scripts/setup-test-deps.sh)"]
fn page_never_loses_what_was_typed_and_reconnects_soon() {
    run_scenario("typing_test.mjs");
}

/// A burst of 5,000 messages blocks the main thread for no more than 100 ms at a time, and a
/// reader scrolled up keeps their lines.
#[test]
#[ignore = "needs Chromium, node and playwright-core (scripts/setup-test-deps.sh)"]
fn page_stays_responsive_in_a_burst_and_keeps_a_readers_place() {
    run_scenario("load_test.mjs");
}

/// At 375 px and 1280 px, light and dark: the page fits, controls are 44 px, text contrast
/// is 4.5:1 or more; screenshots are saved (to `docs/` with `CHATLOOP_SCREENSHOTS=docs`).
#[test]
#[ignore = "needs Chromium, node and playwright-core (scripts/setup-test-deps.sh)"]
fn page_fits_a_phone_and_a_desktop_in_light_and_dark() {
    run_scenario("layout_test.mjs");
}

/// The page over https chats over wss:// with another page and with `chatloop connect
/// wss://` (the certificate signed by a CA made in the test).
#[cfg(feature = "tls")]
#[test]
#[ignore = "needs Chromium, node and playwright-core (scripts/setup-test-deps.sh)"]
fn page_over_https_chats_over_wss() {
    let pki = common::TestPki::new("browser");
    let server = TestServer::tls(&pki, |_| {});
    run_against("tls_test.mjs", &server, &[("CHATLOOP_CA", &pki.ca())]);
}
