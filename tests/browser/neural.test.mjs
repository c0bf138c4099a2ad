// Every shipped world model other than Traveler (which play.test.mjs checks in depth) plays on
// the play page on the CPU fallback: a scripted run loads the model, generates every frame
// without console errors, the neural frames are neither blank nor frozen, and the measured
// frame rate is written to target/browser-artifacts/neural-<game>.json (the model cards quote
// it), with a per-stage breakdown of 20 more frames with the host kernels and with the backend's
// operations (docs/benchmarks.md quotes it), and the two checked against each other
// (`kernelParity`). Games without a model in www/models are skipped
// with a note.
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { openPage, assert } from "./run.mjs";

const SCRIPTS = { pong: "US*20,DS*20,SS*20", pacman: "R*15,D*15,L*15,U*15" };

function shipped(root) {
  try {
    const index = JSON.parse(readFileSync(join(root, "www/models/index.json"), "utf8"));
    return new Set((index.world ?? []).map((d) => d.replace(/^world-/, "")));
  } catch {
    return new Set();
  }
}

async function playScripted(ctx, game) {
  const script = SCRIPTS[game];
  const page = await openPage(ctx, `play.html?game=${game}&cpu&steps=4&actions=${script}&record`);
  await page.waitForFunction(() => ["done", "error"].includes(document.body.dataset.state), null, { timeout: 300000 });
  const s = await page.evaluate(() => {
    const g = window.gamegen;
    const rec = g.recorded;
    const mean = (f) => f.reduce((a, v, i) => (i % 4 === 3 ? a : a + v), 0) / (f.length * 0.75);
    const changes = [];
    for (let t = 1; t < rec.neural.length; t++) {
      let d = 0;
      for (let i = 0; i < rec.neural[t].length; i++) d += Math.abs(rec.neural[t][i] - rec.neural[t - 1][i]);
      changes.push(d / rec.neural[t].length);
    }
    return {
      state: document.body.dataset.state, neural: g.neural, frames: g.frame, fps: g.fps, ended: g.ended ?? null,
      msPerFrame: g.msPerFrame, backend: g.backend, trainedSteps: g.trainedSteps,
      meanLevel: mean(rec.neural[rec.neural.length - 1]), changed: changes.filter((c) => c > 0.05).length,
    };
  });
  await page.screenshot({ path: join(ctx.artifacts, `neural-${game}.png`) });
  // Where a frame's time goes, with the CPU kernels (the CPU fallback's default) and with the
  // backend's fused operations, 20 frames each, continuing the session.
  s.breakdown = await page.evaluate(() => {
    const session = window.gamegen.session;
    const actions = new Uint32Array(20).map((_, i) => (i >> 2) % 3);
    if (session.playPath !== "host") throw new Error(`CPU fallback plays on ${session.playPath}`);
    const host = JSON.parse(session.profileFrames(actions, 4));
    session.setPlayPath("fused");
    const backend = JSON.parse(session.profileFrames(actions, 4));
    session.setPlayPath("host");
    return { host, backend };
  });
  s.simd = await page.evaluate(async () => (await import("./js/backend.js")).backendDetails().then((d) => d.simd));
  s.parity = await page.evaluate(() => JSON.parse(window.gamegen.session.kernelParity(new Uint32Array([1, 2, 0, 1]), 4)));
  page.assertClean();
  await page.close();
  return s;
}

/**
 * The wasm build's host kernels (fused multiply-adds in the relaxed-SIMD build) against Burn's
 * operations, over 4 frames from the same state: the same maths up to float rounding (natively
 * the unit tests see under 1e-4 on the latents and at most 2 levels on the frames).
 */
export function assertParity(p, what) {
  assert(p.frames === 4 && p.latent_max_abs < 1e-3 && p.rgb_max_abs <= 3,
    `${what}: the host kernels differ from the backend's operations: ${JSON.stringify(p)}`);
}

export const tests = {};
for (const game of Object.keys(SCRIPTS)) {
  tests[`play: the neural ${game} model plays a scripted run on the CPU fallback`] = async (ctx) => {
    if (!shipped(ctx.root).has(game)) return { skipped: `no world-${game} model in www/models` };
    const s = await playScripted(ctx, game);
    assert(s.state === "done" && s.neural, `the neural ${game} did not play: ${JSON.stringify(s)}`);
    // A scripted Pac-Man run ends early if the monster catches him; it must still be a run.
    assert(s.frames === 60 || (s.ended && s.frames >= 20), `${s.frames} frames of 60 (ended: ${s.ended})`);
    assert(s.meanLevel > 2, `the neural frames are blank (mean level ${s.meanLevel.toFixed(1)})`);
    const need = Math.min(10, Math.floor(s.frames / 3));
    assert(s.changed >= need, `the neural frames barely change (${s.changed} of ${s.frames - 1} steps)`);
    for (const [kernels, b] of Object.entries(s.breakdown)) {
      const sum = b.stages.reduce((a, st) => a + st.ms_per_frame, 0);
      const dit = b.stages.find((st) => st.stage.startsWith("DiT")).ms_per_frame;
      assert(b.frames === 20 && dit > 0 && Math.abs(sum - b.ms_per_frame) < 1e-6 * b.ms_per_frame + 1e-9,
        `${kernels} breakdown: ${JSON.stringify(b)}`);
    }
    assertParity(s.parity, `${game} (${s.simd})`);
    writeFileSync(join(ctx.artifacts, `neural-${game}.json`), JSON.stringify(s, null, 2));
    return s;
  };
}
