// Where the browser's CPU fallback spends a neural frame, by function: opens the play page for
// a game on the CPU fallback, lets its scripted run finish, then runs `profileFrames` under
// Chromium's sampling profiler (DevTools protocol) and prints the functions with the most self
// time (wasm functions carry their Rust names).
//
//   node bench/browser_profile.mjs pacman [frames] [top]
//
// `top` 0 skips the profiler (its sampling costs a little) and prints only the frame time.
// QUERY is appended to the page's address (`QUERY='&simd=baseline'` for the wasm build without
// relaxed SIMD); CHROMIUM_EXTRA adds browser flags.
import { createRequire } from "node:module";
import { join, resolve, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { startServer, CHROMIUM_ARGS } from "../tests/browser/run.mjs";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const { chromium } = createRequire(join(root, "www/package.json"))("playwright-core");
const [game = "pacman", frames = "40", top = "30"] = process.argv.slice(2);

const { child, url } = await startServer();
const browser = await chromium.launch({ executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium", args: [...CHROMIUM_ARGS, ...(process.env.CHROMIUM_EXTRA ?? "").split(" ").filter(Boolean)] });
try {
  const page = await browser.newPage();
  await page.goto(`${url}play.html?game=${game}&cpu&steps=4&actions=${game === "pong" ? "SS" : "S"}*5&record${process.env.QUERY ?? ""}`);
  await page.waitForFunction(() => ["done", "error"].includes(document.body.dataset.state), null, { timeout: 300000 });
  const cdp = await page.context().newCDPSession(page);
  await cdp.send("Profiler.enable");
  await cdp.send("Profiler.setSamplingInterval", { interval: 100 });
  if (Number(top) > 0) await cdp.send("Profiler.start");
  const wall = await page.evaluate((n) => {
    const actions = new Uint32Array(n).map((_, i) => (i >> 2) % 3);
    return JSON.parse(window.gamegen.session.profileFrames(actions, 4)).ms_per_frame;
  }, Number(frames));
  if (Number(top) === 0) {
    console.log(`${game}: ${wall.toFixed(2)} ms per frame over ${frames} frames`);
  } else {
    printProfile((await cdp.send("Profiler.stop")).profile, wall);
  }
} finally {
  await browser.close();
  child.kill();
}

/** Self time per function, the `top` largest, per frame. */
function printProfile(profile, wall) {
  const self = new Map();
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  let total = 0;
  profile.samples.forEach((id, i) => {
    const dt = profile.timeDeltas[i] / 1000;
    const name = byId.get(id).callFrame.functionName || "(anonymous)";
    self.set(name, (self.get(name) ?? 0) + dt);
    total += dt;
  });
  console.log(`${game}: ${wall.toFixed(1)} ms per frame over ${frames} frames; profile ${total.toFixed(0)} ms`);
  for (const [name, ms] of [...self].sort((a, b) => b[1] - a[1]).slice(0, Number(top))) {
    console.log(`${(ms / Number(frames)).toFixed(2).padStart(7)} ms/frame ${(100 * ms / total).toFixed(1).padStart(5)}%  ${name.slice(0, 110)}`);
  }
}
