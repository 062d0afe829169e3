// Chatting: two pages and `chatloop connect` in one room, and what the page shows of each line.
//
//   node tests/browser/chat_test.mjs http://127.0.0.1:PORT/ROOM path/to/chatloop
//
// 1. two pages with two names: one sends, the other shows "NAME: text" with an HH:MM time;
// 2. the page and the command-line client talk both ways;
// 3. a message containing <b>html</b> is shown as text, never as markup;
// 4. right-to-left names and messages keep their order on the line (<bdi>);
// 5. names are not verified: a line using the reader's own name, or a name with hidden
//    characters, is marked;
// 6. the tab title names the room, decoded (/café), and counts lines that came while hidden.

import {
  check, connected, expectLine, openPage, pageUrl, run, say, sendFromCli, startCli,
  wsUrl,
} from "./lib.mjs";

/** Left edges of the name, the text, and of two parts of the text, as laid out on screen. */
const layout = (page, text) => page.evaluate((t) => {
  const li = [...document.querySelectorAll("#log li")].find((l) => l.textContent.endsWith(t));
  const box = (el) => el.getBoundingClientRect();
  const body = li.querySelector(".text"), node = body.firstChild, range = document.createRange();
  const part = (from, to) => { range.setStart(node, from); range.setEnd(node, to); return box(range); };
  return { nick: box(li.querySelector(".nick")), body: box(body), first: part(0, 1),
    rest: part(2, node.length) };
}, text);

await run("chat_test", async (context) => {
  const ada = await openPage(context, pageUrl, "ada");
  const bob = await openPage(context, pageUrl, "bob");
  const room = new URL(pageUrl).pathname;
  check(await ada.title() === `${room} · chatloop`, "the page is served, titled with its room");
  check(await ada.locator("#room").textContent() === room, "the room is taken from the page URL");

  // 1. page to page
  await say(ada, "hello from ada");
  check(await expectLine(bob, "ada: hello from ada"), "bob's page shows ada's line");
  check(await expectLine(ada, "ada: hello from ada"), "ada's page shows her own line");
  const time = await bob.locator("#log li time").last().textContent();
  check(/^\d\d:\d\d$/.test(time), "every line has its HH:MM time: " + time);

  // 2. page and command-line client, both ways
  const cli = startCli([wsUrl(pageUrl), "--name", "term", "--wait", "0s"]);
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
  cli.child.stdin.end();
  check(await cli.exited === 0, "chatloop connect exits 0 at the end of its input");

  // 4. right to left: an Arabic name, then a message starting with a digit. Without <bdi> the
  // line read "2 :أليس apples"; the name must come first and the text keep its own order.
  await sendFromCli(pageUrl, "أليس", ["2 apples"]);
  await expectLine(bob, "أليس: 2 apples");
  let at = await layout(bob, "2 apples");
  check(at.nick.right <= at.body.left && at.first.right <= at.rest.left,
    "an Arabic name and a message starting with a digit keep their order: name, 2, apples");
  await sendFromCli(pageUrl, "דנה", ["שלום לכולם 3"]);
  await expectLine(bob, "דנה: שלום לכולם 3");
  at = await layout(bob, "שלום לכולם 3");
  check(at.nick.right <= at.body.left, "a Hebrew name comes before its (Hebrew) message");
  check(at.first.left > at.rest.left, "a Hebrew message reads right to left inside its <bdi>");

  // 5. names are not verified: the page marks the lines it knows are not what they claim
  await sendFromCli(pageUrl, "bob", ["it is me, bob"]);
  await expectLine(ada, "bob: it is me, bob");
  const flagOf = (page, t) => page.evaluate((t) => [...document.querySelectorAll("#log li")]
    .find((l) => l.textContent.includes(t))?.querySelector(".flag")?.textContent ?? "", t);
  check((await flagOf(bob, "it is me, bob")).includes("uses your name"),
    "bob's page marks a line that uses bob's name: it was not sent from that page");
  check(await flagOf(ada, "it is me, bob") === "", "ada's page cannot tell, and does not mark it");
  await sendFromCli(pageUrl, "a\u200bda", ["trust me"]);
  await bob.locator("#log li", { hasText: "trust me" }).waitFor();
  check((await flagOf(bob, "trust me")).includes("hidden characters"),
    "a name with an invisible character (a lookalike of ada) is marked");

  // 6. the title counts what arrives while the tab is hidden
  const setHidden = (page, hidden) => page.evaluate((h) => {
    Object.defineProperty(document, "hidden", { value: h, configurable: true });
    document.dispatchEvent(new Event("visibilitychange"));
  }, hidden);
  await setHidden(ada, true);
  await say(bob, "one");
  await say(bob, "two");
  await expectLine(ada, "bob: two");
  check(await ada.title() === `(2) ${room} · chatloop`, "the hidden tab's title counts 2 unread");
  await setHidden(ada, false);
  check(await ada.title() === `${room} · chatloop`, "the count goes when the tab is shown again");

  const cafe = await context.newPage();
  await cafe.goto(new URL("/caf%C3%A9", pageUrl).href);
  await connected(cafe);
  check(await cafe.locator("#room").textContent() === "/café", "the room name is shown decoded");
  check(await cafe.title() === "/café · chatloop", "and the title too");
});
