// The page on a phone (375 px) and a desktop (1280 px), light and dark: it fits, it can be
// tapped and read, and screenshots of each are saved.
//
//   node tests/browser/layout_test.mjs http://127.0.0.1:PORT/ROOM path/to/chatloop
//
// Screenshots go to $CHATLOOP_SCREENSHOTS (default target/browser-screenshots);
// `CHATLOOP_SCREENSHOTS=docs` rewrites the ones in docs/. For each size and scheme:
// - nothing is wider than the screen; the message box takes most of the width;
// - every button and field is at least 44 px tall and has 16 px text (iOS zooms below);
// - every text colour has a contrast of at least 4.5:1 with its background (WCAG 1.4.3) and
//   every field border 3:1 (1.4.11), computed here from the colours the browser used;
// - then the same with the page in trouble: disconnected, a message refused as too long,
//   a line that uses the reader's name.

import { mkdirSync } from "node:fs";
import {
  check, expectLine, freePort, openPage, run, say, sendFromCli, startServer, stopServer,
} from "./lib.mjs";

const dir = process.env.CHATLOOP_SCREENSHOTS || "target/browser-screenshots";
mkdirSync(dir, { recursive: true });
const SIZES = { 375: { width: 375, height: 667 }, 1280: { width: 1280, height: 800 } };

/** Every visible element's text contrast (and a field's border contrast) against what is behind it. */
const contrasts = (page) => page.evaluate(() => {
  const rgb = (c) => (c.match(/[\d.]+/g) || []).map(Number);
  const lum = ([r, g, b]) => [r, g, b].map((v) => v / 255)
    .map((v) => (v <= 0.04045 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4))
    .reduce((sum, v, i) => sum + v * [0.2126, 0.7152, 0.0722][i], 0);
  const ratio = (a, b) => {
    const [hi, lo] = [lum(a), lum(b)].sort((x, y) => y - x);
    return (hi + 0.05) / (lo + 0.05);
  };
  const behind = (el) => {
    for (; el; el = el.parentElement) {
      const c = rgb(getComputedStyle(el).backgroundColor);
      if (c.length === 3 || c[3] > 0) return c.slice(0, 3);
    }
    return [255, 255, 255];
  };
  const name = (el) => el.id ? "#" + el.id : el.tagName.toLowerCase() +
    (el.className ? "." + String(el.className).split(" ").join(".") : "");
  const out = [];
  for (const el of document.querySelectorAll("body *")) {
    if (!el.checkVisibility() || ["SCRIPT", "STYLE", "BR"].includes(el.tagName)) continue;
    const style = getComputedStyle(el), bg = behind(el);
    const ownText = [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
    const pseudo = getComputedStyle(el, "::before").content;
    if (ownText || ["INPUT", "TEXTAREA", "BUTTON"].includes(el.tagName) || pseudo !== "none") {
      out.push({ what: name(el), kind: "text", ratio: ratio(rgb(style.color), bg) });
    }
    if (["INPUT", "TEXTAREA"].includes(el.tagName)) {
      const ph = getComputedStyle(el, "::placeholder").color;
      out.push({ what: name(el) + "::placeholder", kind: "text", ratio: ratio(rgb(ph), bg) });
      out.push({ what: name(el) + " border", kind: "border",
        ratio: ratio(rgb(style.borderTopColor), behind(el.parentElement)) });
    }
  }
  return out;
});

/** Checks one size and scheme and saves its screenshot as `file`. */
async function checkLayout(page, size, scheme, file) {
  await page.setViewportSize(SIZES[size]);
  await page.emulateMedia({ colorScheme: scheme });
  await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
  const at = `${size} px ${scheme}`;
  const fit = await page.evaluate(() => ({
    wide: document.documentElement.scrollWidth, screen: innerWidth,
    small: [...document.querySelectorAll("button, input, textarea")].filter((el) =>
      el.checkVisibility() && el.getBoundingClientRect().height < 44).map((el) => el.id),
    fonts: [...document.querySelectorAll("input, textarea")]
      .map((el) => parseFloat(getComputedStyle(el).fontSize)),
    box: document.getElementById("text").getBoundingClientRect().width,
  }));
  check(fit.wide <= fit.screen, `${at}: nothing is wider than the screen (${fit.wide} px)`);
  check(fit.small.length === 0, `${at}: every control is at least 44 px tall ${fit.small}`);
  check(fit.fonts.every((f) => f >= 16), `${at}: fields use 16 px text (${fit.fonts})`);
  check(fit.box >= 0.6 * fit.screen,
    `${at}: the message box takes most of the width (${Math.round(fit.box)} px)`);
  const low = (await contrasts(page)).filter((c) => c.ratio < (c.kind === "text" ? 4.5 : 3));
  const all = await contrasts(page);
  const least = all.filter((c) => c.kind === "text").sort((a, b) => a.ratio - b.ratio)[0];
  check(low.length === 0, `${at}: contrast >= 4.5:1 for text, 3:1 for borders; lowest ` +
    `${least.ratio.toFixed(2)}:1 (${least.what}) ` + low.map((c) => `${c.what} ${c.ratio.toFixed(2)}`));
  await page.screenshot({ path: `${dir}/${file}` });
}

await run("layout_test", async (context) => {
  const port = await freePort();
  const server = await startServer(port);
  const url = `http://127.0.0.1:${port}/kitchen`;
  const ada = await openPage(context, url, "ada");
  const bob = await openPage(context, url, "bob");
  await say(ada, "is the kettle on?");
  await sendFromCli(url, "term", ["on my way, two minutes"]);
  await sendFromCli(url, "أليس", ["2 apples and a pear, please"]);
  await say(bob, "kettle's on. Whoever gets here first: the cups are on the top shelf, " +
    "left of the window, behind the big teapot nobody uses");
  await say(ada, "<b>bold?</b> no: markup stays text");
  await expectLine(bob, "ada: <b>bold?</b> no: markup stays text");
  await bob.fill("#text", "see you in the kitchen");
  for (const size of [375, 1280]) {
    for (const scheme of ["light", "dark"]) {
      await checkLayout(bob, size, scheme, `page-${size}-${scheme}.png`);
    }
  }
  // The README's picture: the page in use, small.
  await bob.setViewportSize({ width: 560, height: 340 });
  await bob.emulateMedia({ colorScheme: "light" });
  await bob.screenshot({ path: `${dir}/page.png` });

  // In trouble: someone uses bob's name, the server goes away, and a paste is too long.
  await sendFromCli(url, "bob", ["it's me, bob. Really."]);
  await bob.locator("#log .flag").waitFor();
  await stopServer(server);
  await bob.locator("#banner").waitFor();
  await bob.fill("#text", "a very long paste ".repeat(4000));
  await bob.locator("#hint.bad").waitFor();
  for (const scheme of ["light", "dark"]) {
    await checkLayout(bob, 375, scheme, `page-375-${scheme}-trouble.png`);
  }
  console.log(`screenshots: ${dir}/page-{375,1280}-{light,dark}.png, ` +
    `${dir}/page-375-{light,dark}-trouble.png, ${dir}/page.png`);
});
