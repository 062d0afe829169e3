// What the browser scenarios share: Chromium, servers and `chatloop connect` as children, and
// small waits that give up after STEP_MS.
//
// Every scenario is run as `node tests/browser/NAME.mjs http://127.0.0.1:PORT/ROOM path/to/chatloop`
// by tests/browser.rs, against a server it started; a scenario that must stop and restart its
// server runs its own `chatloop serve` on a free port. Chromium is the system's (Debian's
// /usr/bin/chromium, or $CHROMIUM), driven by playwright-core: never a browser download.

import { chromium } from "playwright-core";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { createServer } from "node:net";

export const STEP_MS = 10_000; // every wait gives up after this

const [pageUrl, chatloop] = process.argv.slice(2);
if (!pageUrl || !chatloop) {
  console.error("usage: node SCENARIO.mjs http://HOST:PORT/ROOM path/to/chatloop");
  process.exit(2);
}
export { pageUrl, chatloop };
export const wsUrl = (url) => url.replace(/^http(s?):/, "ws$1:");
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const children = [];

/** `chatloop connect` as a child; resolves lines of its stdout and stderr on demand. */
export function startCli(args) {
  const child = spawn(chatloop, ["connect", ...args], { stdio: ["pipe", "pipe", "pipe"] });
  children.push(child);
  const queues = { stdout: [], stderr: [] };
  const waiters = { stdout: [], stderr: [] };
  for (const name of ["stdout", "stderr"]) {
    createInterface({ input: child[name] }).on("line", (line) => {
      const w = waiters[name].shift();
      if (w) w(line);
      else queues[name].push(line);
    });
  }
  const nextLine = (name) => {
    if (queues[name].length) return Promise.resolve(queues[name].shift());
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`no ${name} line from chatloop connect`)), STEP_MS);
      waiters[name].push((line) => { clearTimeout(t); resolve(line); });
    });
  };
  const exited = new Promise((resolve) => child.on("exit", (code) => resolve(code)));
  return { child, nextLine, exited };
}

/** Sends `lines` from a fresh `chatloop connect --name NAME`, connected first; resolves at its exit. */
export async function sendFromCli(url, name, lines) {
  const cli = startCli([wsUrl(url), "--name", name, "--wait", "0s"]);
  await cli.nextLine("stderr"); // "connected to ..."
  cli.child.stdin.end(lines.map((l) => l + "\n").join(""));
  const code = await Promise.race([cli.exited, sleep(STEP_MS).then(() => "timeout")]);
  if (code !== 0) throw new Error(`chatloop connect --name ${name} ended with ${code}`);
}

/** A port that was free a moment ago. */
export function freePort() {
  return new Promise((resolve) => {
    const srv = createServer().listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** `chatloop serve` on `port`; resolves once it answers, with the time it first did. */
export async function startServer(port, extra = []) {
  const child = spawn(chatloop,
    ["serve", "--listen", `127.0.0.1:${port}`, "--log-level", "warn", ...extra],
    { stdio: ["ignore", "inherit", "inherit"] });
  children.push(child);
  for (let i = 0; i < 200; i++) {
    const ok = await fetch(`http://127.0.0.1:${port}/`).then((r) => r.ok, () => false);
    if (ok) return { child, upAt: Date.now() };
    await sleep(20);
  }
  child.kill();
  throw new Error("chatloop serve did not start");
}

/** Stops a server with SIGTERM (Close 1001 to every client) and waits for its exit. */
export async function stopServer(server) {
  const stopped = new Promise((r) => server.child.on("exit", r));
  server.child.kill("SIGTERM");
  await stopped;
}

export function check(cond, what) {
  if (!cond) throw new Error("failed: " + what);
  console.log("ok - " + what);
}

/** The log's lines as a reader sees them, without their HH:MM time. */
export const lines = (page) =>
  page.$$eval("#log li", (lis) => lis.map((li) => li.textContent.replace(/^\d\d:\d\d /, "")));

/** Waits until the page's log has a line that is exactly `text` (the time aside). */
export async function expectLine(page, text) {
  await page.waitForFunction((t) => [...document.querySelectorAll("#log li")]
    .some((li) => li.textContent.replace(/^\d\d:\d\d /, "") === t), text, { timeout: STEP_MS });
  return true;
}

export const connected = (page) =>
  page.locator("#state", { hasText: /^connected$/ }).waitFor();

export async function openPage(context, url, name) {
  const page = await context.newPage();
  page.setDefaultTimeout(STEP_MS);
  await page.goto(url);
  await connected(page);
  if (name) await page.fill("#nick", name);
  return page;
}

export async function say(page, text) {
  await page.fill("#text", text);
  await page.press("#text", "Enter");
}

/**
 * Runs `scenario(context)` in a fresh headless Chromium profile and reports; always cleans up
 * (children, browser, profile). Exit status 1 and the stack on any failure.
 */
export async function run(name, scenario,
  { viewport = { width: 560, height: 340 }, ignoreHTTPSErrors = false } = {}) {
  const profile = mkdtempSync(join(tmpdir(), "chatloop-chromium-"));
  let context;
  try {
    context = await chromium.launchPersistentContext(profile, {
      executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
      headless: true,
      viewport,
      // For a server whose certificate a test CA signed: the page and its wss:// socket.
      ignoreHTTPSErrors,
      args: [
        "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
      ],
    });
    await scenario(context);
    console.log(`${name}: all checks passed`);
  } catch (e) {
    console.error(`${name}: ` + (e && e.stack || e));
    process.exitCode = 1;
  } finally {
    for (const child of children) if (child.exitCode === null) child.kill();
    if (context) await context.close();
    rmSync(profile, { recursive: true, force: true });
  }
}
