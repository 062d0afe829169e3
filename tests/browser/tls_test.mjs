// The page over https: it chats over wss:// on the same port, with another page and with
// `chatloop connect wss://`.
//
//   CHATLOOP_CA=ca.pem node tests/browser/tls_test.mjs https://127.0.0.1:PORT/ROOM path/to/chatloop
//
// The server's certificate was signed by a CA made in the test (CHATLOOP_CA): Chromium is told
// to accept it (it has no way to be told to trust one CA), `chatloop connect` is given --ca.
// The server speaks nothing but TLS on that port, so a page that says "connected" reached it
// over wss://.

import { check, expectLine, openPage, pageUrl, run, say, startCli, wsUrl } from "./lib.mjs";

const ca = process.env.CHATLOOP_CA;
if (!pageUrl.startsWith("https://") || !ca) {
  console.error("tls_test: needs an https:// page URL and CHATLOOP_CA");
  process.exit(2);
}

await run("tls_test", async (context) => {
  const ada = await openPage(context, pageUrl, "ada");
  const bob = await openPage(context, pageUrl, "bob");
  check(await ada.evaluate(() => location.protocol) === "https:", "the page came over https");

  await say(ada, "hello over wss");
  check(await expectLine(bob, "ada: hello over wss"), "bob's page shows ada's line (wss)");

  const cli = startCli([wsUrl(pageUrl), "--name", "term", "--wait", "0s", "--ca", ca]);
  const hello = await cli.nextLine("stderr");
  check(hello.startsWith("connected to wss://"), "chatloop connect is connected: " + hello);
  cli.child.stdin.write("hi from the terminal over tls\n");
  check(await expectLine(ada, "term: hi from the terminal over tls"), "ada's page shows it");
  await say(bob, "and back");
  check(await cli.nextLine("stdout") === "bob: and back", "the terminal prints bob's line");
  cli.child.stdin.end();
  check(await cli.exited === 0, "chatloop connect exits 0 at the end of its input");
}, { ignoreHTTPSErrors: true });
