// Every page loads without console errors or requests to other origins, the hub says which
// backend runs and why, and the site works offline after a first visit: a page is loaded from
// a server of its own, the service worker stores what it used, then the server is killed and
// the browser context is set offline, and the pages still open, generate, validate and play.
import { join } from "node:path";
import { openPage, assert, startServer } from "./run.mjs";
import { studioReady, generateOnPage, previewSettled } from "./studio.test.mjs";
import { assertParity } from "./neural.test.mjs";

/** Open `path`, wait until `document.body.dataset.state` is one of `ok`, screenshot it. */
async function load(ctx, path, ok, shot) {
  const page = await openPage(ctx, path);
  await page.waitForFunction((states) => states.includes(document.body.dataset.state) || document.body.dataset.state === "error",
    ok, { timeout: 180000 });
  const s = await page.evaluate(() => document.body.dataset.state);
  assert(ok.includes(s), `${path}: state ${s}`);
  await page.screenshot({ path: join(ctx.artifacts, `page-${shot}.png`), fullPage: true });
  return page;
}

export const tests = {
  async "every page loads without console errors; the hub names the backend and why"(ctx) {
    const seen = {};
    for (const [path, ok, shot] of [
      ["index.html", ["ready"], "index"],
      ["index.html?cpu", ["ready"], "index-cpu"],
      // The wasm build for browsers without relaxed SIMD, which this Chromium never picks itself.
      ["index.html?cpu&simd=baseline", ["ready"], "index-baseline-simd"],
      ["play.html?game=pong&cpu&simd=baseline&steps=4&actions=SS*20", ["done"], "play-baseline-simd"],
      ["studio.html", ["ready"], "studio"],
      ["play.html?game=pong&real&frames=20", ["playing", "done"], "play"],
      ["ae.html?cpu", ["done"], "ae"],
    ]) {
      const page = await load(ctx, path, ok, shot);
      if (path.includes("simd=baseline") && path.startsWith("play")) {
        const p = await page.evaluate(() => JSON.parse(window.gamegen.session.kernelParity(new Uint32Array([1, 2, 0, 1]), 4)));
        assertParity(p, "pong (simd128)");
        seen[path] = { parity: p };
      }
      if (path.startsWith("index")) {
        const d = await page.evaluate(() => window.gamegen.backendDetails);
        const why = await page.textContent("#backend-why");
        const shown = await page.textContent("#backend");
        seen[path] = { kind: d.kind, reason: d.reason, simd: d.simd, shown };
        // Chromium has relaxed SIMD (since 114), so it loads the fused-multiply-add build.
        const simd = path.includes("simd=baseline") ? "simd128" : "relaxed-simd";
        assert(d.simd === simd, `${path}: wasm build ${d.simd}, expected ${simd}`);
        if (d.kind === "cpu") {
          assert(shown.includes(simd === "simd128" ? "128-bit SIMD" : "relaxed SIMD"), `${path}: the hub shows ${shown}`);
        }
        if (path.includes("?cpu")) {
          assert(d.kind === "cpu" && /\?cpu/.test(why), `?cpu: ${JSON.stringify(d)} / ${why}`);
        } else if (d.kind === "cpu") {
          assert(d.reason && why.includes(d.reason), `the hub does not say why WebGPU is not used: ${why}`);
        } else {
          assert(d.adapter && why.includes("WebGPU"), `WebGPU chosen but not explained: ${why}`);
        }
        const links = await page.evaluate(() => [...document.querySelectorAll(".card")].map((a) => a.getAttribute("href")));
        assert(links.includes("play.html") && links.includes("studio.html"), `hub links: ${links}`);
      }
      page.assertClean();
      await page.close();
    }
    return seen;
  },

  async "offline: after a first visit the pages work with the server gone"(ctx) {
    const { child, url } = await startServer();
    let alive = true;
    const context = await ctx.browser.newContext();
    const foreign = [];
    const errors = [];
    context.on("request", (r) => {
      if (!r.url().startsWith(url) && !r.url().startsWith("blob:") && !r.url().startsWith("data:")) foreign.push(r.url());
    });
    try {
      const page = await context.newPage();
      page.on("console", (m) => { if (m.type() === "error") errors.push(m.text()); });
      page.on("pageerror", (e) => errors.push(String(e)));
      // First visit, online: load the model, generate, play (Ruffle's files load now).
      await page.goto(url + "studio.html?cpu&renderer=canvas");
      await studioReady(page);
      await page.waitForFunction(() => document.body.dataset.offline === "ready", null, { timeout: 60000 });
      await generateOnPage(page, 60, 1);
      const first = await previewSettled(page);
      assert(first.preview.state === "playing", `online preview: ${JSON.stringify(first.preview)}`);
      const stored = await page.evaluate(async () => (await import("./js/offline.js")).cacheForOffline());
      assert(stored.cached > 10, `the service worker stored only ${JSON.stringify(stored)}`);
      const online = await page.evaluate(() => ({ bytes: Array.from(window.gamegen.file.rawBytes) }));

      // The server goes away and the browser goes offline.
      child.kill();
      alive = false;
      await new Promise((ok) => child.once("exit", ok));
      await context.setOffline(true);
      await page.reload();
      await studioReady(page);
      const again = await generateOnPage(page, 60, 1);
      const p = await previewSettled(page);
      const offline = await page.evaluate(() => ({ bytes: Array.from(window.gamegen.file.rawBytes), report: window.gamegen.file.report }));
      assert(again.tokens > 0 && Buffer.from(offline.bytes).equals(Buffer.from(online.bytes)),
        "offline generation differs from the online one with the same seed");
      assert(offline.report.verdict !== "broken", `offline verdict ${offline.report.verdict}`);
      assert(p.preview.state === "playing" && p.pixels, `offline preview: ${JSON.stringify(p.preview)}`);
      await page.screenshot({ path: join(ctx.artifacts, "offline-studio.png"), fullPage: true });
      // Pages never visited open from the precached shell (play runs the real game offline).
      await page.goto(url + "index.html");
      await page.waitForFunction(() => document.body.dataset.state === "ready", null, { timeout: 30000 });
      await page.goto(url + "play.html?game=pong&real&frames=10");
      await page.waitForFunction(() => ["playing", "done"].includes(document.body.dataset.state), null, { timeout: 60000 });
      await page.screenshot({ path: join(ctx.artifacts, "offline-play.png") });
      assert(!errors.length, `console errors:\n  ${errors.join("\n  ")}`);
      assert(!foreign.length, `requests left the origin: ${foreign.join(", ")}`);
      return { stored, offlineTokens: again.tokens };
    } finally {
      await context.close();
      if (alive) child.kill();
    }
  },
};
