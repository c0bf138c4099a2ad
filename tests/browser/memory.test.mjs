// Memory of the wasm API over long play, and hostile calls into it.
//
// Long play: 10,000 frames of each real game (`RealGame`: step + frameRgba every frame, a new
// episode whenever one ends, as the play page does) and as many neural frames (`NeuralGame` on
// the CPU fallback, `models/world-traveler`, 1 DDIM step, a reset every 250 frames) as fit in
// NEURAL_SECONDS, at least NEURAL_MIN. After a warm-up that makes every kind of call at least
// once (NEURAL_WARM_UP neural frames include a reset: the first reset after stepping grows the
// allocator's heap once, by 20 pages, and never again over 2,000 frames), WebAssembly memory
// (`memory.buffer.byteLength` of the module's exports) may not grow by more than WASM_SLACK and
// the JS heap (CDP `Runtime.getHeapUsage` after a forced GC) by more than JS_SLACK: one frame
// leaked per step would be 64 KB (real) or 36 KB (neural) a frame, hundreds of MB in total.
//
// Hostile calls: bad names, bad config/weights, wrong frame sizes, bad DDIM steps, calls on a
// freed object, overlapping async steps. Each must throw (or reject with) a JS `Error`, never a
// `WebAssembly.RuntimeError` (a Rust panic or abort), and the module must keep working.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { openPage, assert } from "./run.mjs";

const REAL_FRAMES = Number(process.env.MEMORY_REAL_FRAMES ?? 10000);
const NEURAL_SECONDS = Number(process.env.MEMORY_NEURAL_SECONDS ?? 60);
const NEURAL_RESET_EVERY = 250; // neural frames between resets from the real game
const NEURAL_WARM_UP = NEURAL_RESET_EVERY + 50; // past the first reset
const NEURAL_MIN = Number(process.env.MEMORY_NEURAL_MIN ?? 600);
const NEURAL_MAX = Number(process.env.MEMORY_NEURAL_MAX ?? 3000);
const WASM_SLACK = 1 << 20; // 1 MiB
const JS_SLACK = 4 << 20; // 4 MiB
const CHUNK = 500; // frames per page.evaluate call

/** A page with the wasm module loaded and the CPU backend chosen (the play page, real only). */
async function wasmPage(ctx) {
  const page = await openPage(ctx, "play.html?game=traveler&real&cpu&frames=1");
  await page.waitForFunction(() => ["done", "error"].includes(document.body.dataset.state), null, { timeout: 120000 });
  const state = await page.evaluate(() => document.body.dataset.state);
  assert(state === "done", `play page state ${state}`);
  await page.evaluate(async () => {
    const m = await import("./pkg/gamegen_wasm.js");
    window.__mem = { m, wasm: await m.default() };
  });
  return page;
}

/** WebAssembly memory and the JS heap after a full GC. */
async function sample(page, cdp) {
  await cdp.send("HeapProfiler.collectGarbage");
  const heap = await cdp.send("Runtime.getHeapUsage");
  const wasm = await page.evaluate(() => window.__mem.wasm.memory.buffer.byteLength);
  return { wasm, js: heap.usedSize };
}

const mb = (b) => Number((b / 1048576).toFixed(2));

/** Runs in the page: `n` more frames of the real game `game`, restarting ended episodes. */
function realFrames({ game, n }) {
  const s = window.__mem;
  const key = `real-${game}`;
  if (!s[key]) s[key] = { g: new s.m.RealGame(game, 1), seed: 1, frames: 0, episodes: 1, checksum: 0 };
  const r = s[key];
  const actions = r.g.actionNames().length;
  for (let i = 0; i < n; i++) {
    // Hold each action for a while, cycling through all of them.
    const a = Math.floor(r.frames / 37) % actions;
    r.g.step(a);
    const rgba = r.g.frameRgba();
    r.checksum = (r.checksum + rgba[(r.frames * 4097) % rgba.length]) % 1000003;
    r.frames++;
    if (r.g.done) {
      r.g.free();
      r.seed++;
      r.episodes++;
      r.g = new s.m.RealGame(game, r.seed);
    }
  }
  return { frames: r.frames, episodes: r.episodes, score: r.g.score };
}

/** Runs in the page: load the neural Traveler on the CPU fallback, reset from the real game. */
async function neuralLoad() {
  const s = window.__mem;
  const base = "models/world-traveler/";
  const config = await (await fetch(base + "config.json")).text();
  const vae = new Uint8Array(await (await fetch(base + "vae.safetensors")).arrayBuffer());
  const dynamics = new Uint8Array(await (await fetch(base + "dynamics.safetensors")).arrayBuffer());
  s.real = new s.m.RealGame("traveler", 3);
  s.neural = new s.m.NeuralGame(config, vae, dynamics, 3);
  s.neural.reset(s.real.frameRgb(), s.real.score, s.real.playerX, s.real.playerY);
  s.neuralFrames = 0;
  return s.neural.game;
}

/**
 * Runs in the page: up to `n` neural frames or until `ms` milliseconds have passed, resetting
 * from the real game every `resetEvery` frames.
 */
async function neuralFrames({ n, ms, resetEvery }) {
  const s = window.__mem;
  const t0 = performance.now();
  let done = 0;
  while (done < n && performance.now() - t0 < ms) {
    const a = Math.floor(s.neuralFrames / 20) % 3;
    s.real.step(a);
    const rgba = await s.neural.step(a, 1);
    if (rgba.length !== 96 * 96 * 4) throw new Error(`neural frame of ${rgba.length} bytes`);
    s.neuralFrames++;
    done++;
    if (s.neuralFrames % resetEvery === 0) {
      s.neural.reset(s.real.frameRgb(), s.real.score, s.real.playerX, s.real.playerY);
    }
  }
  return { done, total: s.neuralFrames, ms: performance.now() - t0 };
}

function checkGrowth(label, warm, end, peak) {
  const wasmGrowth = end.wasm - warm.wasm;
  const jsGrowth = end.js - warm.js;
  assert(wasmGrowth <= WASM_SLACK,
    `${label}: WebAssembly memory grew ${mb(wasmGrowth)} MB after warm-up (${mb(warm.wasm)} -> ${mb(end.wasm)} MB)`);
  assert(peak.wasm - warm.wasm <= WASM_SLACK,
    `${label}: WebAssembly memory peaked ${mb(peak.wasm - warm.wasm)} MB above the warm-up size`);
  assert(jsGrowth <= JS_SLACK,
    `${label}: JS heap grew ${mb(jsGrowth)} MB after warm-up (${mb(warm.js)} -> ${mb(end.js)} MB)`);
  return { wasmWarmMB: mb(warm.wasm), wasmEndMB: mb(end.wasm), wasmPeakMB: mb(peak.wasm), jsWarmMB: mb(warm.js), jsEndMB: mb(end.js), jsPeakMB: mb(peak.js) };
}

export const tests = {
  async "memory stays bounded over 10,000 frames of each real game and long neural play"(ctx) {
    const page = await wasmPage(ctx);
    const cdp = await page.context().newCDPSession(page);
    const result = { realFrames: REAL_FRAMES, games: {} };
    for (const game of ["traveler", "pong", "pacman"]) {
      const t0 = Date.now();
      // Warm-up: the first 1,000 frames (allocator pools, JIT, caches).
      let info = await page.evaluate(realFrames, { game, n: 1000 });
      const warm = await sample(page, cdp);
      const peak = { ...warm };
      while (info.frames < REAL_FRAMES) {
        info = await page.evaluate(realFrames, { game, n: Math.min(CHUNK * 4, REAL_FRAMES - info.frames) });
        const s = await sample(page, cdp);
        peak.wasm = Math.max(peak.wasm, s.wasm);
        peak.js = Math.max(peak.js, s.js);
      }
      const end = await sample(page, cdp);
      result.games[game] = { ...info, ms: Date.now() - t0, ...checkGrowth(game, warm, end, peak) };
    }

    // The neural game: as many frames as fit in the time budget.
    const t0 = Date.now();
    await page.evaluate(neuralLoad);
    let n = await page.evaluate(neuralFrames, { n: NEURAL_WARM_UP, ms: 600000, resetEvery: NEURAL_RESET_EVERY });
    const warm = await sample(page, cdp);
    const peak = { ...warm };
    const budget = NEURAL_SECONDS * 1000;
    const started = Date.now();
    let total = n.total;
    while (total < NEURAL_MAX && (Date.now() - started < budget || total < NEURAL_MIN)) {
      n = await page.evaluate(neuralFrames, { n: Math.min(100, NEURAL_MAX - total), ms: 10000, resetEvery: NEURAL_RESET_EVERY });
      total = n.total;
      const s = await sample(page, cdp);
      peak.wasm = Math.max(peak.wasm, s.wasm);
      peak.js = Math.max(peak.js, s.js);
    }
    const end = await sample(page, cdp);
    const seconds = (Date.now() - started) / 1000;
    result.neural = {
      frames: total, afterWarmUp: total - NEURAL_WARM_UP, ddimSteps: 1, seconds: Number(seconds.toFixed(1)),
      fps: Number(((total - NEURAL_WARM_UP) / seconds).toFixed(2)), loadAndWarmUpMs: started - t0,
      ...checkGrowth("neural", warm, end, peak),
    };
    await cdp.detach();
    writeFileSync(join(ctx.artifacts, "memory.json"), JSON.stringify(result, null, 2));
    console.log(`     memory: ${JSON.stringify(result)}`);
    page.assertClean();
    await page.close();
    return result;
  },

  async "bad bytes and wrong calls into the game API throw JS errors, never abort the module"(ctx) {
    const page = await wasmPage(ctx);
    const r = await page.evaluate(async () => {
      const { m } = window.__mem;
      const base = "models/world-traveler/";
      const config = await (await fetch(base + "config.json")).text();
      const vae = new Uint8Array(await (await fetch(base + "vae.safetensors")).arrayBuffer());
      const dynamics = new Uint8Array(await (await fetch(base + "dynamics.safetensors")).arrayBuffer());
      const errors = {};
      const verdict = (e) => (e instanceof WebAssembly.RuntimeError ? `not an Error: panic ${e.message}`
        : e instanceof Error ? e.message : `not an Error: ${e}`);
      const attempt = async (name, f) => {
        try {
          await f();
          errors[name] = null;
        } catch (e) {
          errors[name] = verdict(e);
        }
      };
      const nan = vae.slice();
      {
        // A NaN in the first f32 tensor's first element.
        const n = Number(new DataView(nan.buffer).getBigUint64(0, true));
        const header = JSON.parse(new TextDecoder().decode(nan.subarray(8, 8 + n)));
        const t = Object.entries(header).find(([k, v]) => k !== "__metadata__" && v.dtype === "F32")[1];
        new DataView(nan.buffer).setFloat32(8 + n + t.data_offsets[0], NaN, true);
      }
      const cfg = JSON.parse(config);
      const hugeDepth = JSON.stringify({ ...cfg, model: { ...cfg.model, dit: { ...cfg.model.dit, depth: 1000000 } } });
      const wider = JSON.stringify({ ...cfg, model: { ...cfg.model, vae: { ...cfg.model.vae, channels: 32 } } });
      await attempt("RealGame: unknown game", () => new m.RealGame("tetris", 1));
      await attempt("parseActions: bad script", () => m.parseActions("traveler", "R*3,Q*2"));
      await attempt("parseActions: unknown game", () => m.parseActions("nope", "R"));
      await attempt("actionForKeys: unknown game", () => m.actionForKeys("nope", true, false, false, false, false, false));
      await attempt("NeuralGame: config not JSON", () => new m.NeuralGame("not json {", vae, dynamics, 1));
      await attempt("NeuralGame: empty config", () => new m.NeuralGame("", vae, dynamics, 1));
      await attempt("NeuralGame: dit.depth 1e6", () => new m.NeuralGame(hugeDepth, vae, dynamics, 1));
      await attempt("NeuralGame: wrong shape", () => new m.NeuralGame(wider, vae, dynamics, 1));
      await attempt("NeuralGame: empty vae", () => new m.NeuralGame(config, new Uint8Array(0), dynamics, 1));
      await attempt("NeuralGame: truncated dynamics", () => new m.NeuralGame(config, vae, dynamics.slice(0, dynamics.length >> 1), 1));
      await attempt("NeuralGame: random bytes", () => new m.NeuralGame(config, crypto.getRandomValues(new Uint8Array(4096)), dynamics, 1));
      await attempt("NeuralGame: NaN in vae", () => new m.NeuralGame(config, nan, dynamics, 1));
      await attempt("NeuralGame: weights swapped", () => new m.NeuralGame(config, dynamics, vae, 1));
      const real = new m.RealGame("traveler", 2);
      const g = new m.NeuralGame(config, vae, dynamics, 2);
      await attempt("NeuralGame: step before reset", () => g.step(0, 1));
      await attempt("NeuralGame: reset with 10 bytes", () => g.reset(new Uint8Array(10), 0, 0, 0));
      await attempt("NeuralGame: reset with a 128x128 frame", () => g.reset(new Uint8Array(128 * 128 * 3), 0, 0, 0));
      g.reset(real.frameRgb(), real.score, real.playerX, real.playerY);
      await attempt("NeuralGame: 0 DDIM steps", () => g.step(0, 0));
      await attempt("NeuralGame: 1000 DDIM steps", () => g.step(0, 1000));
      await attempt("NeuralGame: action 99", () => g.step(99, 1));
      let overlap = null;
      let first = null;
      try {
        first = g.step(1, 1);
        await g.step(1, 1);
      } catch (e) {
        overlap = verdict(e);
      }
      errors["NeuralGame: a second step while one is pending"] = overlap;
      // The first step still completes.
      await attempt("NeuralGame: the first of the overlapping steps", async () => {
        const f = await first;
        if (f.length !== 96 * 96 * 4) throw new Error(`not an Error: frame of ${f.length} bytes`);
      });
      const freed = new m.RealGame("pong", 1);
      freed.free();
      await attempt("RealGame: step after free", () => freed.step(0));
      // Still alive: a real step and a neural step after all that.
      await new Promise((ok) => setTimeout(ok, 0));
      const frame = await g.step(2, 1);
      real.step(2);
      return { errors, after: frame.length, realScore: real.score };
    });
    // Overlapping steps may also be serialised by the bindings instead of refused; everything
    // else must be an Error.
    const mayPass = new Set(["NeuralGame: a second step while one is pending", "NeuralGame: the first of the overlapping steps"]);
    for (const [name, msg] of Object.entries(r.errors)) {
      if (msg === null && mayPass.has(name)) continue;
      assert(msg && !msg.startsWith("not an Error"), `${name}: ${msg}`);
    }
    assert(/config/.test(r.errors["NeuralGame: config not JSON"]), r.errors["NeuralGame: config not JSON"]);
    assert(/NaN|non-finite/.test(r.errors["NeuralGame: NaN in vae"]), r.errors["NeuralGame: NaN in vae"]);
    assert(/depth/.test(r.errors["NeuralGame: dit.depth 1e6"]), r.errors["NeuralGame: dit.depth 1e6"]);
    assert(r.errors["NeuralGame: the first of the overlapping steps"] === null,
      `the first of two overlapping steps failed: ${r.errors["NeuralGame: the first of the overlapping steps"]}`);
    assert(r.after === 96 * 96 * 4, `after the errors the neural step gave ${r.after} bytes`);
    page.assertClean();
    await page.close();
    return r.errors;
  },
};
