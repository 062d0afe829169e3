// The chat page in a real headless Chromium, talking with itself and with `chatloop connect`.
//
//   node tests/browser/page_test.mjs http://127.0.0.1:PORT/ROOM path/to/chatloop
//
// Run by tests/browser.rs against a server it started. Uses the system's Chromium through
// playwright-core (never a browser download). With CHATLOOP_SCREENSHOT=file.png it also saves a
// small screenshot of the page in use (docs/page.png in the README).
//
// What it checks:
// 1. two pages with two nicknames: one sends, the other shows "NICK: text";
// 2. the page and the command-line client talk both ways;
// 3. a message containing <b>html</b> is shown as text, never as markup;
// 4. when its server goes away and comes back, the page reconnects by itself (this part runs
//    its own `chatloop serve` on a free port, so it can stop and restart it).

import { chromium } from "playwright-core";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { createServer } from "node:net";

const [pageUrl, chatloop] = process.argv.slice(2);
if (!pageUrl || !chatloop) {
  console.error("usage: node page_test.mjs http://HOST:PORT/ROOM path/to/chatloop");
  process.exit(2);
}
const wsUrl = pageUrl.replace(/^http:/, "ws:");
const STEP_MS = 10_000; // every wait below gives up after this

/** `chatloop connect` as a child; resolves lines of its stdout and stderr on demand. */
function startCli(args) {
  const child = spawn(chatloop, ["connect", ...args], { stdio: ["pipe", "pipe", "pipe"] });
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

/** A port that was free a moment ago. */
function freePort() {
  return new Promise((resolve) => {
    const srv = createServer().listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** `chatloop serve` on `port`; resolves once it accepts connections. */
async function startServer(port) {
  const child = spawn(chatloop, ["serve", "--listen", `127.0.0.1:${port}`, "--log-level", "warn"],
    { stdio: ["ignore", "inherit", "inherit"] });
  for (let i = 0; i < 100; i++) {
    const ok = await fetch(`http://127.0.0.1:${port}/`).then((r) => r.ok, () => false);
    if (ok) return child;
    await new Promise((r) => setTimeout(r, 50));
  }
  child.kill();
  throw new Error("chatloop serve did not start");
}

function check(cond, what) {
  if (!cond) throw new Error("failed: " + what);
  console.log("ok - " + what);
}

/** Waits until the page's log has a line whose text is exactly `text`. */
async function expectLine(page, text) {
  await page.locator("#log li", { hasText: text }).last().waitFor({ timeout: STEP_MS });
  const all = await page.locator("#log li").allTextContents();
  return all.includes(text);
}

async function openPage(context, nick) {
  const page = await context.newPage();
  page.setDefaultTimeout(STEP_MS);
  await page.goto(pageUrl);
  await page.locator("#state", { hasText: /^connected$/ }).waitFor();
  await page.fill("#nick", nick);
  return page;
}

async function say(page, text) {
  await page.fill("#text", text);
  await page.press("#text", "Enter");
}

const profile = mkdtempSync(join(tmpdir(), "chatloop-chromium-"));
let context, cli, server;
try {
  context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    viewport: { width: 560, height: 340 },
    args: [
      "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
    ],
  });
  const ada = await openPage(context, "ada");
  const bob = await openPage(context, "bob");
  check(await ada.title() === "chatloop", "the page is served and titled");
  check(await ada.locator("#room").textContent() === new URL(pageUrl).pathname,
    "the room is taken from the page URL");

  // 1. page to page
  await say(ada, "hello from ada");
  check(await expectLine(bob, "ada: hello from ada"), "bob's page shows ada's line");
  check(await expectLine(ada, "ada: hello from ada"), "ada's page shows her own line");

  // 2. page and command-line client, both ways
  cli = startCli([wsUrl, "--name", "term", "--wait", "0s"]);
  const hello = await cli.nextLine("stderr");
  check(hello.startsWith("connected to ws://"), "chatloop connect is connected: " + hello);
  cli.child.stdin.write("hi from the terminal\n");
  check(await expectLine(ada, "term: hi from the terminal"), "ada's page shows the terminal's line");
  check(await expectLine(bob, "term: hi from the terminal"), "bob's page shows the terminal's line");

  // 3. markup arrives as text
  await say(bob, "<b>html</b> & <img src=x onerror=alert(1)>");
  const raw = "bob: <b>html</b> & <img src=x onerror=alert(1)>";
  check(await cli.nextLine("stdout") === raw, "the terminal prints the page's line as sent");
  check(await expectLine(ada, raw), "ada's page shows the markup as text");
  check(await ada.locator("#log b, #log img").count() === 0, "no element was made from a message");

  if (process.env.CHATLOOP_SCREENSHOT) {
    await say(ada, "see you in the kitchen");
    await expectLine(bob, "ada: see you in the kitchen");
    await bob.fill("#text", "on my way");
    await bob.screenshot({ path: process.env.CHATLOOP_SCREENSHOT });
    console.log("screenshot: " + process.env.CHATLOOP_SCREENSHOT);
  }

  cli.child.stdin.end();
  const code = await Promise.race([cli.exited, new Promise((r) => setTimeout(() => r("timeout"), STEP_MS))]);
  check(code === 0, "chatloop connect exits 0 at the end of its input");

  // 4. reconnect after the server restarts
  const port = await freePort();
  server = await startServer(port);
  const page = await context.newPage();
  page.setDefaultTimeout(STEP_MS);
  await page.goto(`http://127.0.0.1:${port}/lobby`);
  await page.locator("#state", { hasText: /^connected$/ }).waitFor();
  const stopped = new Promise((r) => server.on("exit", r));
  server.kill("SIGTERM"); // Close 1001 to every client, then exit
  await stopped;
  await page.locator("#state", { hasText: /^disconnected/ }).waitFor();
  check(await expectLine(page, "disconnected (1001 server shutting down)"),
    "the page shows the server's close code and reason");
  server = await startServer(port);
  await page.locator("#state", { hasText: /^connected$/ }).waitFor();
  check((await page.locator("#log li", { hasText: "connected to /lobby" }).count()) === 2,
    "the page reconnects by itself when the server is back");
  // The page adds its own line only after handing it to an open socket.
  await page.fill("#nick", "cy");
  await say(page, "back again");
  check(await expectLine(page, "cy: back again"), "sending works after reconnecting");
  console.log("page_test: all checks passed");
} catch (e) {
  console.error("page_test: " + (e && e.stack || e));
  process.exitCode = 1;
} finally {
  if (cli && cli.child.exitCode === null) cli.child.kill();
  if (server && server.exitCode === null) server.kill();
  if (context) await context.close();
  rmSync(profile, { recursive: true, force: true });
}
