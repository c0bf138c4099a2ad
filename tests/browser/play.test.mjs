// The play page runs the Traveler world model beside the real game, driven by the keyboard.
// Scripted keys for FRAMES frames (right, then left, then nothing); both canvases are read back.
//
// Always checked: the page plays to the end without console errors; both canvases show what the
// page generated last; the neural canvas is not blank and changes from frame to frame; the
// horizontal-shift estimator reads the real game correctly (so it can be trusted on the neural
// one). When the model's config.json says its dynamics were trained (training.dynamics_steps >
// 0), also: the neural background scrolls the way the real one does for left/right and stays for
// stay, and the neural score rises only where a crossing can happen (moving, at most one point
// per 16-pixel slot, i.e. 8 moving frames), judged on the same action pattern given as a script
// (`?actions=`), which plays the same frames every run. The measured figures are returned (runner summary)
// and written to target/browser-artifacts/play-<label>.json. That keyboard run is on the CPU
// fallback; the default backend (WebGPU when offered) plays a short scripted run whose frames
// must match the CPU fallback's on the same script.
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { openPage, assert } from "./run.mjs";

const FRAMES = Number(process.env.PLAY_FRAMES ?? 200);
const STEPS = Number(process.env.PLAY_STEPS ?? 4);
// [first frame, key held from then on]
const SCRIPT = [
  [0, "ArrowRight"],
  [Math.round(FRAMES * 0.4), "ArrowLeft"],
  [Math.round(FRAMES * 0.7), null],
];
const ACTIONS = ["stay", "left", "right"];
// Traveler: rows between the score bar (20 px) and the top of the player (ground 80 - 10): the
// sky and the buildings, nothing that stays put on the screen when the view scrolls.
const ROWS = [20, 70];
const MAX_SHIFT = 6;
const SLOT_FRAMES = 8; // a 16-px slot at 2 px per frame

/** Runs in the page: per consecutive pair of recorded frames, the horizontal content shift d
 * (cur(x) ~ prev(x - d)) minimising the mean absolute difference over `rows`, and whether the
 * pair is informative (a flat sky matches every shift equally). */
function estimateShifts({ rows, maxShift }) {
  const rec = window.gamegen.recorded;
  const w = rec.width;
  const one = (prev, cur) => {
    const costs = [];
    for (let d = -maxShift; d <= maxShift; d++) {
      let sum = 0;
      let n = 0;
      for (let y = rows[0]; y < rows[1]; y++) {
        for (let x = maxShift; x < w - maxShift; x++) {
          const i = (y * w + x) * 4;
          const j = (y * w + x - d) * 4;
          sum += Math.abs(cur[i] - prev[j]) + Math.abs(cur[i + 1] - prev[j + 1]) + Math.abs(cur[i + 2] - prev[j + 2]);
          n += 3;
        }
      }
      costs.push(sum / n);
    }
    let best = 0;
    for (let k = 1; k < costs.length; k++) if (costs[k] < costs[best]) best = k;
    const spread = Math.max(...costs) - costs[best];
    return { d: best - maxShift, cost: costs[best], informative: spread > 2 };
  };
  const out = { neural: [], real: [], changed: [] };
  for (let t = 1; t < rec.neural.length; t++) {
    out.neural.push(one(rec.neural[t - 1], rec.neural[t]));
    out.real.push(one(rec.real[t - 1], rec.real[t]));
    let diff = 0;
    const a = rec.neural[t - 1];
    const b = rec.neural[t];
    for (let i = 0; i < a.length; i++) diff += Math.abs(a[i] - b[i]);
    out.changed.push(diff / a.length);
  }
  return out;
}

const median = (xs) => {
  if (!xs.length) return null;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
};

/** Canvas pixels, the last recorded frames and simple statistics, read in the page. */
function readCanvases() {
  const read = (id) => {
    const c = document.getElementById(id);
    return Array.from(c.getContext("2d").getImageData(0, 0, c.width, c.height).data);
  };
  const rec = window.gamegen.recorded;
  const last = (a) => Array.from(a[a.length - 1]);
  return { neural: read("neural"), real: read("real"), lastNeural: last(rec.neural), lastReal: last(rec.real) };
}

function colours(rgba) {
  const s = new Set();
  for (let i = 0; i < rgba.length; i += 4) s.add((rgba[i] << 16) | (rgba[i + 1] << 8) | rgba[i + 2]);
  return s.size;
}

/** Where the neural score rose in a play log (`e.a` the action applied to the frame, `e.ns`
 * the neural score after it), how many rises came while standing still, and how many came less
 * than one slot of walking after the previous one (a crossing cannot be that close). */
function scoreRises(log, startScore) {
  const rises = [];
  let moving = 0;
  let prevScore = startScore;
  for (const [t, e] of log.entries()) {
    if (e.a !== 0) moving++;
    if (e.ns > prevScore) rises.push({ t, action: ACTIONS[e.a], moving });
    prevScore = e.ns;
  }
  const riseOnStay = rises.filter((r) => r.action === "stay").length;
  let tooClose = 0;
  for (let k = 1; k < rises.length; k++) if (rises[k].moving - rises[k - 1].moving < SLOT_FRAMES) tooClose++;
  return { rises, riseOnStay, tooClose };
}

async function playScripted(ctx, query, label) {
  const config = JSON.parse(readFileSync(join(ctx.root, "www/models/world-traveler/config.json"), "utf8"));
  const trained = (config.training?.dynamics_steps ?? 0) > 0;
  const page = await openPage(ctx, `play.html?game=traveler&steps=${STEPS}&frames=${FRAMES}&record${query}`);
  await page.waitForFunction(() => ["playing", "done", "error", "no-model"].includes(document.body.dataset.state),
    null, { timeout: 180000 });
  let held = null;
  for (const [from, key] of SCRIPT) {
    await page.waitForFunction((f) => window.gamegen.frame >= f || document.body.dataset.state !== "playing",
      from, { timeout: 900000, polling: 5 });
    if (held) await page.keyboard.up(held);
    if (key) await page.keyboard.down(key);
    held = key;
  }
  await page.waitForFunction(() => document.body.dataset.state !== "playing", null, { timeout: 900000 });
  if (held) await page.keyboard.up(held);
  const state = await page.evaluate(() => document.body.dataset.state);
  assert(state === "done", `${label}: page state ${state}: ${await page.textContent("#status")}`);
  const g = await page.evaluate(() => {
    const { recorded, ...rest } = window.gamegen;
    return rest;
  });
  assert(g.frame === FRAMES && g.log.length === FRAMES, `${label}: ${g.frame} frames played, expected ${FRAMES}`);

  // What the canvases show is what the page generated last.
  const px = await page.evaluate(readCanvases);
  assert(px.neural.length === 96 * 96 * 4, `${label}: neural canvas has ${px.neural.length} bytes`);
  assert(px.neural.every((v, i) => v === px.lastNeural[i]), `${label}: the neural canvas is not the last generated frame`);
  assert(px.real.every((v, i) => v === px.lastReal[i]), `${label}: the real canvas is not the last real frame`);
  const neuralColours = colours(px.neural);
  assert(neuralColours > 8, `${label}: the neural canvas is nearly flat (${neuralColours} colours)`);

  const sh = await page.evaluate(estimateShifts, { rows: ROWS, maxShift: MAX_SHIFT });
  const changedFrames = sh.changed.filter((d) => d > 0).length;
  assert(changedFrames >= FRAMES * 0.5,
    `${label}: the neural frame changed in only ${changedFrames} of ${FRAMES} frames`);

  // Per action (the action the page really applied to frame t), the shifts of both games.
  const byAction = {};
  for (const [id, name] of ACTIONS.entries()) {
    const frames = g.log.map((e, t) => ({ e, t })).filter(({ e }) => e.a === id).map(({ t }) => t);
    const real = frames.map((t) => sh.real[t]).filter((s) => s.informative).map((s) => s.d);
    const neural = frames.map((t) => sh.neural[t]).filter((s) => s.informative).map((s) => s.d);
    const agree = frames.filter((t) => sh.real[t].informative && sh.neural[t].informative
      && Math.sign(sh.real[t].d) === Math.sign(sh.neural[t].d)).length;
    const both = frames.filter((t) => sh.real[t].informative && sh.neural[t].informative).length;
    byAction[name] = {
      frames: frames.length, realMedian: median(real), neuralMedian: median(neural),
      neuralInformative: neural.length, signAgreement: both ? agree / both : null,
      // Mean absolute change of the neural frame per frame (0..255), informative or not.
      neuralChange: frames.length ? frames.reduce((a, t) => a + sh.changed[t], 0) / frames.length : null,
    };
  }
  // The estimator must read the real game right: content moves 2 px against the walk.
  const enough = Math.max(3, FRAMES * 0.15);
  assert(byAction.right.frames >= enough && byAction.left.frames >= enough && byAction.stay.frames >= enough,
    `${label}: the scripted keys did not reach the page: ${JSON.stringify(byAction)}`);
  assert(byAction.right.realMedian === -2 && byAction.left.realMedian === 2 && byAction.stay.realMedian === 0,
    `${label}: shift estimator misreads the real game: ${JSON.stringify(byAction)}`);

  // Score: where the neural record rose (reported here; judged on the scripted run below, whose
  // actions do not depend on when the keys reached the page).
  const { rises, riseOnStay, tooClose } = scoreRises(g.log, g.startScore);
  const realGain = g.log[g.log.length - 1].rs - g.startScore;
  const neuralGain = g.log[g.log.length - 1].ns - g.startScore;

  const result = {
    backend: g.backend, label, trained, trainedSteps: g.trainedSteps, ddimSteps: g.steps, frames: g.frame,
    fps: Number(g.fps.toFixed(2)), msPerFrame: Number(g.msPerFrame.toFixed(1)),
    neuralColours, changedFrames, shifts: byAction,
    score: { real: realGain, neural: neuralGain, neuralRises: rises.length, riseOnStay, risesCloserThanASlot: tooClose },
  };
  writeFileSync(join(ctx.artifacts, `play-${label}.json`), JSON.stringify(result, null, 2));
  await page.screenshot({ path: join(ctx.artifacts, `play-${label}.png`) });
  console.log(`     play ${label}: ${g.backend}: ${result.fps} FPS, ${result.msPerFrame} ms/frame at S=${g.steps}; `
    + `shifts ${JSON.stringify(byAction)}; score ${JSON.stringify(result.score)}`);

  if (trained) {
    const s = byAction;
    const failures = [];
    if (!(s.right.neuralMedian < 0)) failures.push(`right: neural median shift ${s.right.neuralMedian} (real ${s.right.realMedian})`);
    if (!(s.left.neuralMedian > 0)) failures.push(`left: neural median shift ${s.left.neuralMedian} (real ${s.left.realMedian})`);
    // Standing still: no shift where the frames show one; where the neural street has gone
    // flat (no shift can be read) the frames must at least change less than while walking.
    if (s.stay.neuralInformative >= 3) {
      if (s.stay.neuralMedian !== 0) failures.push(`stay: neural median shift ${s.stay.neuralMedian} (real 0)`);
    } else if (!(s.stay.neuralChange < Math.min(s.left.neuralChange, s.right.neuralChange))) {
      failures.push(`stay: the neural frame changed as much as while walking (${s.stay.neuralChange} vs ${s.left.neuralChange}, ${s.right.neuralChange})`);
    }
    assert(!failures.length, `${label}: the trained model does not play like the game:\n       `
      + failures.join("\n       "));
  }
  page.assertClean();
  await page.close();
  return result;
}

/** Play `script` on the page (no keyboard) and return the recorded neural frames and state. */
async function playScript(ctx, query, script) {
  const page = await openPage(ctx, `play.html?game=traveler&steps=${STEPS}&actions=${script}&record${query}`);
  await page.waitForFunction(() => ["done", "error"].includes(document.body.dataset.state),
    null, { timeout: 600000 });
  const state = await page.evaluate(() => document.body.dataset.state);
  assert(state === "done", `page state ${state}: ${await page.textContent("#status")}`);
  const g = await page.evaluate(() => ({
    backend: window.gamegen.backend, log: window.gamegen.log, fps: window.gamegen.fps,
    msPerFrame: window.gamegen.msPerFrame, startScore: window.gamegen.startScore,
    neural: window.gamegen.recorded.neural.map((f) => Array.from(f)),
  }));
  page.assertClean();
  await page.close();
  return g;
}

// The scripted parity run: short, because WebGPU in headless Chromium here is SwiftShader (a
// CPU emulation of a GPU, about 3 s per frame for this model).
const PARITY_SCRIPT = "R*6,L*4,S*2";
// Mean absolute difference per frame allowed between backends, in 0..255 levels: the same
// f32 arithmetic in another order, amplified by the recurrence, but no different game.
const PARITY_MEAN = 0.5;

export const tests = {
  async "traveler plays from the keyboard on the CPU fallback"(ctx) {
    const r = await playScripted(ctx, "&cpu", "cpu");
    assert(r.backend.startsWith("CPU"), `expected the CPU fallback, got ${r.backend}`);
    // The score, judged on the keyboard run's action pattern given as a script: the same
    // frames every run, where the keyboard run's actions shift by a frame or two with timing.
    const script = `R*${SCRIPT[1][0]},L*${SCRIPT[2][0] - SCRIPT[1][0]},S*${FRAMES - SCRIPT[2][0]}`;
    const g = await playScript(ctx, "&cpu", script);
    const { rises, riseOnStay, tooClose } = scoreRises(g.log, g.startScore);
    r.scriptedScore = { script, neuralRises: rises.length, riseOnStay, risesCloserThanASlot: tooClose };
    console.log(`     scripted ${script}: score ${JSON.stringify(r.scriptedScore)}`);
    assert(!riseOnStay, `the neural score rose ${riseOnStay} time(s) while standing still (${script})`);
    assert(!tooClose, `${tooClose} neural score rise(s) less than one slot (${SLOT_FRAMES} moving frames) apart (${script})`);
    return r;
  },
  async "a scripted traveler run gives the same frames on the default backend (WebGPU when offered) and the CPU fallback"(ctx) {
    const gpu = await playScript(ctx, "", PARITY_SCRIPT);
    const cpu = await playScript(ctx, "&cpu", PARITY_SCRIPT);
    assert(cpu.backend.startsWith("CPU"), `expected the CPU fallback, got ${cpu.backend}`);
    assert(gpu.neural.length === cpu.neural.length && gpu.neural.length === 13,
      `recorded ${gpu.neural.length} and ${cpu.neural.length} frames, expected 13`);
    const perFrame = gpu.neural.map((f, t) => {
      let sum = 0;
      let max = 0;
      for (let i = 0; i < f.length; i++) {
        const d = Math.abs(f[i] - cpu.neural[t][i]);
        sum += d;
        if (d > max) max = d;
      }
      return { mean: Number((sum / f.length).toFixed(3)), max };
    });
    const events = (g) => g.log.map((e) => e.ne).join("");
    const result = {
      backends: [gpu.backend, cpu.backend], script: PARITY_SCRIPT, perFrame,
      eventsGpu: events(gpu), eventsCpu: events(cpu),
      fps: { default: Number(gpu.fps.toFixed(2)), cpu: Number(cpu.fps.toFixed(2)) },
    };
    writeFileSync(join(ctx.artifacts, "play-parity.json"), JSON.stringify(result, null, 2));
    console.log(`     parity ${gpu.backend} vs ${cpu.backend}: ${JSON.stringify(perFrame)}`);
    assert(perFrame[0].max === 0, "the first frame (the real game's) differs between backends");
    const bad = perFrame.filter((p) => p.mean > PARITY_MEAN);
    assert(!bad.length, `neural frames differ between backends by more than ${PARITY_MEAN} levels on average: ${JSON.stringify(perFrame)}`);
    assert(result.eventsGpu === result.eventsCpu, `LogicNet fired differently: ${result.eventsGpu} vs ${result.eventsCpu}`);
    return result;
  },
};
