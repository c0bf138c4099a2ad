// The frame autoencoder page must compute what native `gamegen ae run` computes, on WebGPU and
// on the CPU fallback, and draw it: compare the floats (max abs diff <= 1e-4) and the canvas
// pixels (each channel within 1 level: a float within 1e-4 can round to the neighbouring byte).
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { writeFileSync } from "node:fs";
import { openPage, assert } from "./run.mjs";

const SEED = 7;

function nativeOutput(ctx) {
  const out = execFileSync(ctx.gamegen, [
    "ae", "run", "--model", join(ctx.root, "models/frame-ae"),
    "--seed", String(SEED), "--count", "2", "--json",
  ]);
  return JSON.parse(out);
}

async function checkPage(ctx, query, label) {
  const native = nativeOutput(ctx);
  const page = await openPage(ctx, `ae.html?seed=${SEED}${query}`);
  await page.waitForSelector("body[data-state]", { timeout: 120000 });
  const state = await page.evaluate(() => document.body.dataset.state);
  assert(state === "done", `page state ${state}: ${await page.textContent("#status")}`);
  const res = await page.evaluate(() => window.gamegen);
  assert(res.output.length === native.output.length,
    `output length ${res.output.length} vs native ${native.output.length}`);
  let maxDiff = 0;
  for (let i = 0; i < res.output.length; i++) {
    maxDiff = Math.max(maxDiff, Math.abs(res.output[i] - native.output[i]));
  }
  assert(maxDiff <= 1e-4, `${label}: max abs diff ${maxDiff} > 1e-4`);
  const pixels = await page.evaluate(() => {
    const c = document.getElementById("output");
    return Array.from(c.getContext("2d").getImageData(0, 0, c.width, c.height).data);
  });
  assert(pixels.length === native.rgba.length, `canvas has ${pixels.length} bytes, native ${native.rgba.length}`);
  let maxPix = 0;
  for (let i = 0; i < pixels.length; i++) maxPix = Math.max(maxPix, Math.abs(pixels[i] - native.rgba[i]));
  assert(maxPix <= 1, `${label}: canvas differs from native by ${maxPix} levels`);
  // A reconstruction that is one flat colour would mean the model or the drawing is broken.
  const distinct = new Set();
  for (let i = 0; i < pixels.length; i += 4) distinct.add(`${pixels[i]},${pixels[i + 1]},${pixels[i + 2]}`);
  assert(distinct.size > 8, `${label}: canvas is nearly flat (${distinct.size} colours)`);
  await page.screenshot({ path: join(ctx.artifacts, `ae-${label}.png`) });
  page.assertClean();
  await page.close();
  return { backend: res.backend, maxAbsDiff: maxDiff, maxPixelDiff: maxPix, ms: res.ms };
}

export const tests = {
  async "frame-ae matches native on the page's default backend (WebGPU when offered)"(ctx) {
    const r = await checkPage(ctx, "", "default");
    writeFileSync(join(ctx.artifacts, "ae-default.json"), JSON.stringify(r, null, 2));
    return r;
  },
  async "frame-ae matches native on the CPU fallback"(ctx) {
    const r = await checkPage(ctx, "&cpu", "cpu");
    assert(r.backend.startsWith("CPU"), `expected the CPU fallback, got ${r.backend}`);
    return r;
  },
};
