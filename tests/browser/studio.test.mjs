// The SWF studio, end to end in headless chromium on the CPU fallback:
// - generation in the page with models/bytecraft-mini writes the same bytes as the native
//   `gamegen generate --prompt` with the same seed and settings (so the tokenizer, sampler,
//   seeds and model agree across the two builds), the file is validated in wasm and Ruffle
//   plays it: its canvas shows the file's declared background colour (the model draws nothing
//   else, as its card says); the template's own synthetic file draws shapes (several colours);
// - cancel stops a generation early and keeps the partial file;
// - a corpus file dropped on the page is validated and previewed, and draws something;
// - no request leaves the origin on any of these pages (run.mjs's request listener).
// STUDIO_MAX_NEW (default 160) sets the token budget of the main generation; the measured
// tokens/s goes to target/browser-artifacts/studio-generate.json.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openPage, assert } from "./run.mjs";

const MAX_NEW = Number(process.env.STUDIO_MAX_NEW ?? 160);
const SEED = 3;
export const DROP_FIXTURE = "tests/browser/fixtures/DefineShape4.swf";

/** Wait for the studio to have loaded its model. */
export async function studioReady(page) {
  await page.waitForFunction(() => ["ready", "error"].includes(document.body.dataset.state), null, { timeout: 180000 });
  const s = await page.evaluate(() => document.body.dataset.state);
  assert(s === "ready", `studio state ${s}: ${await page.textContent("#status")}`);
}

/** Unfold the sampling settings (a closed <details>). */
export async function openSettings(page) {
  if (!(await page.evaluate(() => document.getElementById("settings").open))) await page.click("#settings summary");
}

/** Generate with the form's current settings; resolves to the page's generation record. */
export async function generateOnPage(page, maxNew, seed) {
  await openSettings(page);
  await page.fill("#max-new", String(maxNew));
  await page.fill("#seed", String(seed));
  await page.click("#generate");
  await page.waitForFunction(() => document.body.dataset.state === "generating" || (window.gamegen.generation && window.gamegen.generation.done),
    null, { timeout: 10000 });
  await page.waitForFunction(() => document.body.dataset.state !== "generating" && window.gamegen.generation?.done,
    null, { timeout: 600000, polling: 100 });
  return page.evaluate(() => {
    const { options, ...g } = window.gamegen.generation;
    return { ...g, options };
  });
}

/** Wait for the preview to settle and let Ruffle draw a few frames. */
export async function previewSettled(page) {
  await page.waitForFunction(() => ["playing", "failed", "skipped"].includes(document.body.dataset.preview),
    null, { timeout: 120000 });
  await page.waitForTimeout(600);
  return page.evaluate(() => ({
    preview: window.gamegen.preview,
    pixels: window.gamegen.previewPixels(),
    panicked: window.gamegen.previewPanicked(),
  }));
}

function nativeGenerate(ctx, prompt, seed, maxNew) {
  const out = mkdtempSync(join(tmpdir(), "studio-native-"));
  try {
    execFileSync(ctx.gamegen, [
      "generate", "--model", join(ctx.root, "models/bytecraft-mini"), "--prompt", prompt,
      "-n", "1", "--seed", String(seed), "--max-new", String(maxNew), "--out", out,
    ], { stdio: ["ignore", "ignore", "pipe"] });
    const line = JSON.parse(readFileSync(join(out, "results.jsonl"), "utf8").trim().split("\n")[0]);
    return { bytes: readFileSync(join(out, line.file)), line };
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}

export const tests = {
  async "studio: generates in the page what the CLI generates, validates it, Ruffle shows its background"(ctx) {
    const page = await openPage(ctx, "studio.html?cpu&renderer=canvas");
    await studioReady(page);
    const info = await page.evaluate(() => ({ model: window.gamegen.model, backend: window.gamegen.backend }));
    assert(info.backend.startsWith("CPU"), `expected the CPU fallback, got ${info.backend}`);
    const prompt = await page.inputValue("#prompt");
    assert(prompt.startsWith("Please generate"), `the first template did not fill the prompt: ${prompt.slice(0, 60)}`);
    const gen = await generateOnPage(page, MAX_NEW, SEED);
    assert(gen.tokens > 0 && gen.tokens <= MAX_NEW, `drew ${gen.tokens} tokens (max ${MAX_NEW})`);
    assert(gen.tokensPerSecond > 0, "no tokens/s measured");
    const shownRate = await page.textContent("#rate");
    assert(shownRate.includes("tokens/s"), `the page does not show tokens/s: ${shownRate}`);
    const file = await page.evaluate(() => {
      const f = window.gamegen.file;
      return { name: f.name, source: f.source, raw: f.raw, report: f.report, repaired: f.repaired,
        rawBytes: Array.from(window.gamegen.file.rawBytes), size: f.size };
    });
    // Same bytes as the native CLI (same prompt id `p0`, seed, sample 0, settings).
    const native = nativeGenerate(ctx, prompt, SEED, MAX_NEW);
    assert(Buffer.from(file.rawBytes).equals(native.bytes),
      `page and CLI differ: ${file.rawBytes.length} vs ${native.bytes.length} bytes (CLI: ${JSON.stringify(native.line)})`);
    assert(native.line.tokens === gen.tokens, `CLI drew ${native.line.tokens} tokens, the page ${gen.tokens}`);
    assert(native.line.verdict === file.raw.verdict, `CLI verdict ${native.line.verdict}, page ${file.raw.verdict}`);
    // Level 1 passes (the model has learnt headers); Ruffle plays it.
    assert(file.report.verdict !== "broken", `generated file is broken: ${JSON.stringify(file.report.first_error)}`);
    assert(file.report.header && file.report.header.signature === "FWS", "no FWS header facts");
    assert(Object.keys(file.report.tags).length > 0, "no tag list");
    const shownVerdict = await page.textContent("#verdict");
    assert(shownVerdict === file.report.verdict, `page shows verdict ${shownVerdict}`);
    const p = await previewSettled(page);
    assert(p.preview.state === "playing", `preview ${JSON.stringify(p.preview)}`);
    assert(!p.panicked, "Ruffle panicked on the generated file");
    assert(p.pixels, "cannot read the preview's pixels (canvas renderer expected)");
    const bg = file.report.header.background ?? "#ffffff";
    assert(p.pixels.dominant === bg && p.pixels.dominantShare > 0.9,
      `Ruffle shows ${p.pixels.dominant} on ${(p.pixels.dominantShare * 100).toFixed(1)} % of the stage, the file declares ${bg}`);
    // Download link carries the shown (possibly repaired) file.
    const [download] = await Promise.all([page.waitForEvent("download"), page.click("#download")]);
    const saved = readFileSync(await download.path());
    const dl = { name: download.suggestedFilename(), size: saved.length, head: saved.subarray(0, 3).toString("latin1") };
    assert(dl.name === file.name && dl.size === file.size && dl.head === "FWS", `download: ${JSON.stringify(dl)}`);
    await page.screenshot({ path: join(ctx.artifacts, "studio-generated.png"), fullPage: true });

    // The template's own synthetic file draws shapes: Ruffle's canvas is not one colour.
    await page.click("#reference");
    await page.waitForFunction(() => window.gamegen.file.source === "template", null, { timeout: 10000 });
    const ref = await previewSettled(page);
    const refReport = await page.evaluate(() => window.gamegen.file.report);
    assert(refReport.verdict === "valid", `template file verdict ${refReport.verdict}`);
    assert(ref.preview.state === "playing" && ref.pixels && ref.pixels.colours > 2 && ref.pixels.dominantShare < 0.995,
      `the template file looks blank: ${JSON.stringify(ref.pixels)}`);
    await page.screenshot({ path: join(ctx.artifacts, "studio-template.png"), fullPage: true });
    page.assertClean();
    await page.close();
    const result = {
      backend: info.backend, maxNew: MAX_NEW, tokens: gen.tokens, seconds: Number(gen.seconds.toFixed(2)),
      tokensPerSecond: Number(gen.tokensPerSecond.toFixed(1)), promptTokens: gen.promptTokens, stop: gen.stop,
      bytes: file.rawBytes.length, verdictRaw: file.raw.verdict, verdictShown: file.report.verdict,
      repaired: file.repaired, background: bg, previewDominant: p.pixels.dominant,
      templateColours: ref.pixels.colours, sameAsCli: true,
    };
    writeFileSync(join(ctx.artifacts, "studio-generate.json"), JSON.stringify(result, null, 2));
    console.log(`     studio: ${result.tokens} tokens at ${result.tokensPerSecond} tokens/s (${info.backend}), ${result.verdictRaw} -> ${result.verdictShown}`);
    return result;
  },

  async "studio: generates on the page's default backend (WebGPU when offered)"(ctx) {
    const page = await openPage(ctx, "studio.html?renderer=canvas");
    await studioReady(page);
    const backend = await page.evaluate(() => window.gamegen.backend);
    const gen = await generateOnPage(page, 8, SEED);
    const f = await page.evaluate(() => ({ raw: window.gamegen.file.raw, size: window.gamegen.file.rawBytes.length }));
    assert(gen.tokens > 0 && f.size > 0, `drew ${gen.tokens} tokens, ${f.size} bytes`);
    assert(["valid", "damaged", "broken"].includes(f.raw.verdict), `no verdict: ${JSON.stringify(f.raw)}`);
    await previewSettled(page);
    page.assertClean();
    await page.close();
    const result = { backend, tokens: gen.tokens, tokensPerSecond: Number(gen.tokensPerSecond.toFixed(1)), verdict: f.raw.verdict };
    writeFileSync(join(ctx.artifacts, "studio-default-backend.json"), JSON.stringify(result, null, 2));
    return result;
  },

  async "studio: wrong calls and bad input raise JS errors, the module keeps working"(ctx) {
    const page = await openPage(ctx, "studio.html?cpu");
    await studioReady(page);
    const r = await page.evaluate(async () => {
      const m = await import("./pkg/gamegen_wasm.js");
      const config = await (await fetch("models/bytecraft-mini/config.json")).text();
      const tokenizer = await (await fetch("models/bytecraft-mini/tokenizer.json")).text();
      const weights = new Uint8Array(await (await fetch("models/bytecraft-mini/model.safetensors")).arrayBuffer());
      const errors = {};
      const attempt = (name, f) => {
        try {
          f();
          errors[name] = null;
        } catch (e) {
          // A Rust panic would surface as WebAssembly.RuntimeError ("unreachable"): not allowed.
          errors[name] = e instanceof WebAssembly.RuntimeError ? `not an Error: panic ${e.message}`
            : e instanceof Error ? e.message : `not an Error: ${e}`;
        }
      };
      attempt("corrupt weights", () => new m.Studio(config, weights.slice(0, 1000), tokenizer));
      attempt("bad config", () => new m.Studio("{\"vocab_size\": 0}", weights, tokenizer));
      attempt("bad tokenizer", () => new m.Studio(config, weights, "{}"));
      const s = new m.Studio(config, weights, tokenizer);
      attempt("empty prompt", () => s.start("  ", {}));
      attempt("negative temperature", () => s.start("a game", { temperature: -1 }));
      attempt("unknown option", () => s.start("a game", { temprature: 0.3 }));
      attempt("maxNew 0", () => s.start("a game", { maxNew: 0 }));
      attempt("output before start", () => s.output());
      let stepError = null;
      try { await s.step(4); } catch (e) { stepError = e.message; }
      const garbage = m.validateSwf(new Uint8Array([0x46, 0x57, 0x53, 0x0a, 0xff, 0xff, 0xff, 0xff, 0x00]));
      attempt("repair garbage", () => m.repairSwf(new Uint8Array([1, 2, 3])));
      // Still alive: a real generation right after all that.
      s.start("a game", { maxNew: 4, seed: 1 });
      const drawn = await s.step(10);
      return { errors, stepError, garbage: garbage.verdict, drawn, done: s.done };
    });
    for (const [name, msg] of Object.entries(r.errors)) assert(msg && !msg.startsWith("not an Error"), `${name}: ${msg}`);
    assert(/weights|safetensors/i.test(r.errors["corrupt weights"]), `corrupt weights: ${r.errors["corrupt weights"]}`);
    assert(/temperature/.test(r.errors["negative temperature"]), r.errors["negative temperature"]);
    assert(/temprature/.test(r.errors["unknown option"]), r.errors["unknown option"]);
    assert(r.stepError && /start/.test(r.stepError), `step before start: ${r.stepError}`);
    assert(r.garbage === "broken", `garbage verdict ${r.garbage}`);
    assert(r.drawn === 4 && r.done, `after the errors: drew ${r.drawn}, done ${r.done}`);
    page.assertClean();
    await page.close();
    return r.errors;
  },

  async "studio: cancel stops a long generation and keeps the partial file"(ctx) {
    const page = await openPage(ctx, "studio.html?cpu&renderer=canvas");
    await studioReady(page);
    await openSettings(page);
    await page.fill("#max-new", "5000");
    await page.click("#generate");
    await page.waitForFunction(() => (window.gamegen.generation?.tokens ?? 0) >= 8, null, { timeout: 120000, polling: 50 });
    await page.click("#cancel");
    await page.waitForFunction(() => window.gamegen.generation?.done && document.body.dataset.state === "ready",
      null, { timeout: 60000 });
    const g = await page.evaluate(() => ({ ...window.gamegen.generation, file: window.gamegen.file && window.gamegen.file.name }));
    assert(g.cancelled && g.stop === "cancelled", `not cancelled: ${JSON.stringify(g)}`);
    assert(g.tokens >= 8 && g.tokens < 5000, `cancelled after ${g.tokens} tokens`);
    assert(g.file, "no partial file shown");
    const cancelEnabled = await page.evaluate(() => !document.getElementById("cancel").disabled);
    assert(!cancelEnabled, "Cancel still enabled after the generation ended");
    await previewSettled(page);
    page.assertClean();
    await page.close();
    return { tokens: g.tokens };
  },

  async "studio: a dropped corpus file is validated and previewed, and draws something"(ctx) {
    const page = await openPage(ctx, "studio.html?cpu&renderer=canvas");
    await studioReady(page);
    const bytes = readFileSync(join(ctx.root, DROP_FIXTURE));
    const dataTransfer = await page.evaluateHandle((b64) => {
      const dt = new DataTransfer();
      const data = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
      dt.items.add(new File([data], "DefineShape4.swf", { type: "application/x-shockwave-flash" }));
      return dt;
    }, bytes.toString("base64"));
    await page.dispatchEvent("body", "dragover", { dataTransfer });
    await page.dispatchEvent("body", "drop", { dataTransfer });
    await page.waitForFunction(() => window.gamegen.file?.source === "dropped", null, { timeout: 10000 });
    const p = await previewSettled(page);
    const f = await page.evaluate(() => ({ name: window.gamegen.file.name, report: window.gamegen.file.report }));
    assert(f.name === "DefineShape4.swf", `file name ${f.name}`);
    assert(f.report.verdict === "valid", `verdict ${f.report.verdict}: ${JSON.stringify(f.report.first_error)}`);
    assert(f.report.tags.DefineShape4 >= 1, `tag list: ${JSON.stringify(f.report.tags)}`);
    assert(p.preview.state === "playing" && !p.panicked, `preview ${JSON.stringify(p.preview)}`);
    assert(p.pixels && p.pixels.colours >= 2 && p.pixels.dominantShare < 0.995,
      `the dropped file looks blank in Ruffle: ${JSON.stringify(p.pixels)}`);
    // No sound until the user asks for it.
    const volume = () => page.evaluate(() => document.querySelector("#player > *").volume);
    assert(await volume() === 0, `the preview plays with volume ${await volume()} before Sound is ticked`);
    await page.check("#sound");
    assert(await volume() === 1, `Sound ticked, volume ${await volume()}`);
    const shownName = await page.textContent("#file-name");
    assert(shownName === "DefineShape4.swf", `page shows ${shownName}`);
    await page.screenshot({ path: join(ctx.artifacts, "studio-dropped.png"), fullPage: true });

    // A broken file (not a SWF) is reported, not played, and raises no console error.
    await page.setInputFiles("#picker", { name: "notes.swf", mimeType: "application/x-shockwave-flash", buffer: Buffer.from("this is not a flash file") });
    await page.waitForFunction(() => window.gamegen.file?.name === "notes.swf", null, { timeout: 10000 });
    const broken = await previewSettled(page);
    const v = await page.evaluate(() => window.gamegen.file.report.verdict);
    assert(v === "broken" && broken.preview.state === "skipped", `garbage file: ${v}, preview ${JSON.stringify(broken.preview)}`);
    page.assertClean();
    await page.close();
    return { colours: p.pixels.colours, dominant: p.pixels.dominant, share: Number(p.pixels.dominantShare.toFixed(3)) };
  },
};
