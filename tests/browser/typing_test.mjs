// Nothing typed is lost silently, and a dropped connection is explained and soon mended.
//
//   node tests/browser/typing_test.mjs http://127.0.0.1:PORT/ROOM path/to/chatloop
//
// Runs its own `chatloop serve` on a free port, so it can stop it and start it again.
// 1. a 100 KB paste is refused before sending, with the reason on screen, and stays whole;
// 2. when the server goes away: a banner with the close reason, a live countdown, and a
//    "Retry now" that retries at once;
// 3. the page is back within 2 s of the server, and says what it missed meanwhile;
// 4. the server came back with a smaller --max-message-bytes: a message over it is closed
//    with 1009, and its text is back in the box, the line marked "not delivered"; the page
//    then learns the new limit and refuses the text before sending it.

import {
  check, connected, expectLine, freePort, lines, openPage, run, say, sleep, startServer,
  stopServer,
} from "./lib.mjs";

/** Sockets the page has made so far (an init script counts them). */
const sockets = (page) => page.evaluate(() => window.__sockets);
/** When the page's last socket opened, by the clock this script reads too. */
const openedAt = (page) => page.evaluate(() => window.__openedAt);

await run("typing_test", async (context) => {
  await context.addInitScript(() => {
    window.__sockets = 0;
    const Native = window.WebSocket;
    window.WebSocket = class extends Native {
      constructor(...args) {
        super(...args);
        window.__sockets++;
        this.addEventListener("open", () => { window.__openedAt = Date.now(); });
      }
    };
  });
  const port = await freePort();
  let server = await startServer(port);
  const url = `http://127.0.0.1:${port}/notes`;
  const ada = await openPage(context, url, "ada");
  const bob = await openPage(context, url, "bob");

  // 1. a 100 KB paste: more than the server's 64 KiB, with line breaks and non-ASCII text
  let big = "";
  for (let i = 0; big.length < 100_000; i++) big += `line ${i}: café ☕ naïve\n`;
  big = big.slice(0, 100_000);
  await ada.focus("#text");
  await ada.keyboard.insertText(big);
  check(await ada.inputValue("#text") === big, "the 100,000-character paste is whole in the box");
  const hint = ada.locator("#hint");
  check(await hint.isVisible() && /^Too long to send: 1\d\d,\d\d\d bytes .* takes 65,536/
    .test(await hint.textContent()), "the reason is on screen: " + await hint.textContent());
  check(await ada.getAttribute("#text", "aria-invalid") === "true", "the box is marked invalid");
  await ada.press("#text", "Enter");
  await ada.click("#send");
  check(await ada.inputValue("#text") === big, "Enter and Send refuse it, and keep it whole");
  await ada.fill("#text", "");
  await say(ada, "after the paste");
  await expectLine(bob, "ada: after the paste");
  check(!(await lines(bob)).some((l) => l.startsWith("ada: line 0")),
    "nothing of the paste reached the room (the next line did)");
  await ada.fill("#text", "x".repeat(60_000));
  check(/^60,005 \/ 65,536 bytes$/.test(await hint.textContent()),
    "near the limit, the box counts bytes: " + await hint.textContent());
  await ada.fill("#text", "");

  // 2. the server goes away
  await stopServer(server);
  await ada.locator("#state", { hasText: /^disconnected$/ }).waitFor();
  check(await ada.locator("#banner").isVisible(), "a banner says the page is disconnected");
  check((await ada.locator("#why").textContent()).includes("server shutting down (1001)"),
    "with the server's close reason and code");
  check(await expectLine(ada, "disconnected: server shutting down (1001)"),
    "and the log has one line for it");
  const shown = [];
  for (let i = 0; i < 4; i++) {
    shown.push(await ada.locator("#countdown").textContent());
    await sleep(130);
  }
  check(shown.every((s) => /^(Retrying in \d\.\d s|Connecting…)$/.test(s)) &&
    new Set(shown).size > 1, "the countdown is live: " + shown.join(" | "));
  // Retry now, clicked while the countdown still runs, makes a socket at once (read in one
  // evaluation, so the countdown's own timer cannot be mistaken for it).
  await ada.locator("#retry").waitFor();
  const [before, after, left] = await ada.evaluate(() => {
    const before = window.__sockets, left = document.getElementById("countdown").textContent;
    document.getElementById("retry").click();
    return [before, window.__sockets, left];
  });
  check(after === before + 1 && /^Retrying in \d\.\d s$/.test(left),
    `Retry now tries again at once (sockets ${before} => ${after}; the banner said "${left}")`);
  await sleep(2000); // a few more failures: the wait is at its cap (600–1200 ms)

  // 3. the server is back, with a smaller message limit
  server = await startServer(port, ["--max-message-bytes", "1000"]);
  await connected(ada);
  const took = await openedAt(ada) - server.upAt;
  check(took < 2000, `the page reconnected ${took} ms after the server was back (< 2000)`);
  check(await ada.locator("#banner").isHidden(), "the banner is gone");
  await ada.locator("#log li", { hasText: "reconnected: " }).waitFor();
  const back = (await lines(ada)).filter((l) => l.startsWith("reconnected: "));
  check(back.length === 1 && /between \d\d:\d\d and \d\d:\d\d did not reach this page$/
    .test(back[0]), "the page says what was said meanwhile did not reach it: " + back[0]);
  await connected(bob);

  // 4. over the new limit: the page still believes 65,536, the server closes with 1009
  const long = "this is too long for the new limit ".repeat(60); // 2,100 bytes
  await say(ada, long);
  await ada.locator("#state", { hasText: /^disconnected$/ }).waitFor();
  check(await ada.inputValue("#text") === long, "after the 1009 the text is back in the box");
  const failed = ada.locator("#log li.failed");
  check((await failed.locator(".flag").textContent()) === "⚠ not delivered: too long",
    "its line is marked not delivered: too long");
  check(await expectLine(ada, "disconnected: message too big (1009)"), "the close is explained");
  await connected(ada);
  await ada.locator("#hint", { hasText: /takes 1,000 per message/ }).waitFor();
  check(true, "back online, the page has learnt the new limit: " + await hint.textContent());
  await ada.press("#text", "Enter");
  check(await ada.inputValue("#text") === long, "and refuses the text before sending it");
  check(!(await lines(bob)).some((l) => l.startsWith("ada: this is too long")),
    "bob never got the long message");
  await ada.fill("#text", "short now");
  await ada.press("#text", "Enter");
  check(await expectLine(bob, "ada: short now"), "a message within the limit goes through");
});
