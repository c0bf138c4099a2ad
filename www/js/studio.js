// SWF studio: prompt -> ByteCraft model in wasm (a few tokens per call, the page yields between
// calls) -> validator in wasm -> Ruffle preview -> download. Dropped or picked .swf files go
// through the same validator and preview.
//
// URL parameters: cpu (force the CPU fallback), renderer=canvas|webgl|... (Ruffle's renderer;
// the tests use canvas, whose pixels can be read back).
// The page's state is on `window.gamegen` and in `document.body.dataset`: `state` (loading,
// ready, generating, error), `preview` (none, loading, playing, failed, skipped), `offline`
// (ready once the service worker stored what this page loaded).
import { ensureBackend, backendDetails } from "./backend.js";
import { Studio, validateSwf, repairSwf, templatePrompts, templateFile } from "../pkg/gamegen_wasm.js";
import { Preview } from "./preview.js";
import { offlineReady, cacheForOffline } from "./offline.js";

const MODEL_DIR = "models/bytecraft-mini";
/** Held-out prompts: `gamegen corpus synth --seed 777` is the model card's evaluation set. */
const TEMPLATE_SEED = 777;
const TEMPLATE_COUNT = 16;
/** Aim for this long per `step` call, so the page answers clicks while generating. */
const STEP_TARGET_MS = 50;
const MAX_FILE_BYTES = 64 << 20;

const $ = (id) => document.getElementById(id);
const state = (window.gamegen = { state: "loading", generation: null, file: null, preview: { state: "none" } });
let studio = null;
let templates = [];
let cancelRequested = false;
let downloadUrl = null;
const preview = new Preview($("player"));

/** Let the page handle input and paint before the next chunk. A message on a fresh channel
 * is a new task without setTimeout's 4 ms clamp on nested timers. */
function yieldToPage() {
  return new Promise((ok) => {
    const ch = new MessageChannel();
    ch.port1.onmessage = () => ok();
    ch.port2.postMessage(null);
  });
}

function setState(s) {
  state.state = s;
  document.body.dataset.state = s;
}

function setPreviewState(s, extra = {}) {
  state.preview = { state: s, ...extra };
  document.body.dataset.preview = s;
}

function status(text) {
  $("status").textContent = text;
}

async function fetchOk(url) {
  const r = await fetch(url);
  if (!r.ok) throw new Error(`${url}: HTTP ${r.status}`);
  return r;
}

function formatBytes(n) {
  return n < 1024 ? `${n} bytes` : `${(n / 1024).toFixed(1)} KB (${n} bytes)`;
}

// ---------------------------------------------------------------- templates and settings

function fillTemplates() {
  templates = templatePrompts(TEMPLATE_SEED, 0, TEMPLATE_COUNT);
  const sel = $("template");
  for (const [i, t] of templates.entries()) {
    const o = document.createElement("option");
    o.value = String(i);
    o.textContent = `${t.title} (${t.kind === "game" ? "game" : "animation"}, ${t.width}x${t.height})`;
    sel.append(o);
  }
  sel.addEventListener("change", () => applyTemplate());
  $("wording").addEventListener("change", () => applyTemplate());
  sel.value = "0";
  applyTemplate();
}

function applyTemplate() {
  const i = $("template").value;
  const wording = $("wording");
  $("reference").disabled = i === "";
  if (i === "") return;
  const t = templates[Number(i)];
  const keep = wording.value;
  wording.replaceChildren();
  const add = (value, text) => {
    const o = document.createElement("option");
    o.value = value;
    o.textContent = text;
    wording.append(o);
  };
  add("structured", "structured (as in training)");
  t.paraphrases.forEach((_, k) => add(`p${k}`, `free text ${k + 1}`));
  wording.value = [...wording.options].some((o) => o.value === keep) ? keep : "structured";
  $("prompt").value = wording.value === "structured" ? t.prompt : t.paraphrases[Number(wording.value.slice(1))];
}

function readOptions() {
  const num = (id) => Number($(id).value);
  return {
    temperature: num("temperature"),
    topP: num("top-p"),
    minP: num("min-p"),
    topK: Math.max(0, Math.floor(num("top-k"))),
    maxNew: Math.floor(num("max-new")),
    seed: Math.max(0, Math.floor(num("seed"))),
    sample: Math.max(0, Math.floor(num("sample"))),
    constrained: $("constrained").checked,
  };
}

// ---------------------------------------------------------------- generation

async function generate() {
  const prompt = $("prompt").value;
  const opts = readOptions();
  let started;
  try {
    started = studio.start(prompt, opts);
  } catch (e) {
    status(`cannot start: ${e.message ?? e}`);
    return;
  }
  cancelRequested = false;
  setState("generating");
  $("generate").disabled = true;
  $("cancel").disabled = false;
  $("progress").max = started.maxNew;
  $("progress").value = 0;
  const gen = (state.generation = {
    promptTokens: started.promptTokens, sampleSeed: started.sampleSeed, options: opts,
    tokens: 0, seconds: 0, tokensPerSecond: 0, done: false, cancelled: false,
  });
  status(`generating (prompt: ${started.promptTokens} tokens, sample seed ${started.sampleSeed})…`);
  const t0 = performance.now();
  let chunk = 2;
  try {
    while (!studio.done && !cancelRequested) {
      const c0 = performance.now();
      await studio.step(chunk);
      const ms = performance.now() - c0;
      // Adapt the chunk so one call takes about STEP_TARGET_MS.
      const perToken = ms / chunk;
      chunk = Math.max(1, Math.min(256, Math.round(STEP_TARGET_MS / Math.max(perToken, 0.01))));
      gen.tokens = studio.tokens;
      gen.seconds = (performance.now() - t0) / 1000;
      gen.tokensPerSecond = gen.tokens / Math.max(gen.seconds, 1e-6);
      $("progress").value = gen.tokens;
      $("rate").textContent = `${gen.tokens} / ${started.maxNew} tokens · ${gen.tokensPerSecond.toFixed(1)} tokens/s · ${gen.seconds.toFixed(1)} s`;
      await yieldToPage();
    }
    const out = studio.output();
    gen.done = true;
    gen.cancelled = cancelRequested && out.stop === "running";
    gen.stop = gen.cancelled ? "cancelled" : out.stop;
    gen.complete = out.complete;
    gen.bytes = out.bytes.length;
    gen.patched = out.patched;
    gen.maskedMass = out.maskedMass;
    studio.cancel();
    const why = { stop_token: "the model ended the file", max_tokens: "token limit reached", cancelled: "cancelled" }[gen.stop] ?? gen.stop;
    // With constrained decoding: the grammar's share of the model's probability it refused,
    // and whether the finished file's lengths and frame counts were patched from its content.
    const grammar = opts.constrained
      ? `; grammar masked ${(100 * out.maskedMass).toFixed(1)}% per token${out.patched ? ", lengths patched" : ""}`
      : "";
    status(`${gen.tokens} tokens in ${gen.seconds.toFixed(1)} s (${gen.tokensPerSecond.toFixed(1)} tokens/s): ${why}; ${formatBytes(out.bytes.length)}${grammar}`);
    const name = `studio-seed${opts.seed}-${String(opts.sample).padStart(3, "0")}.swf`;
    await showFile(out.bytes, name, "generated", { repair: $("repair").checked });
  } finally {
    $("generate").disabled = false;
    $("cancel").disabled = true;
    setState("ready");
  }
}

// ---------------------------------------------------------------- validation and preview

function row(table, key, value) {
  const tr = document.createElement("tr");
  const th = document.createElement("th");
  th.textContent = key;
  const td = document.createElement("td");
  td.textContent = value;
  tr.append(th, td);
  table.append(tr);
}

function showReport(report) {
  const v = $("verdict");
  v.textContent = report.verdict;
  v.className = `verdict ${report.verdict}`;
  // Valid as written: nothing forgiven (End exactly at the end, right length and frame count,
  // no unknown tags); "valid" alone also lets through what players skip.
  $("as-written").textContent = report.verdict === "valid"
    ? (report.valid_as_written ? "as written" : "forgiven (not valid as written)")
    : "";
  $("verdict-note").textContent = report.first_error
    ? `(level ${report.level_reached} passed; first error: ${report.first_error.check}: ${report.first_error.message})`
    : `(level ${report.level_reached} passed)`;
  const header = $("header");
  header.replaceChildren();
  const h = report.header;
  if (h) {
    row(header, "signature", `${h.signature} (${h.compression}), version ${h.version}${h.as3 ? ", ActionScript 3" : ""}`);
    row(header, "length", h.declared_length === h.actual_length
      ? `${h.declared_length} bytes`
      : `field says ${h.declared_length}, really ${h.actual_length}`);
    row(header, "stage", `${h.stage_width} x ${h.stage_height} px`);
    row(header, "frame rate", `${h.frame_rate} fps`);
    row(header, "frames", `${h.frame_count} declared, ${report.stats.frames_shown} shown`);
    row(header, "background", h.background ?? "(none set)");
  } else {
    row(header, "header", "does not parse");
  }
  const tags = $("tags");
  tags.replaceChildren();
  for (const [name, n] of Object.entries(report.tags)) row(tags, name, String(n));
  const findings = $("findings");
  findings.replaceChildren();
  for (const f of report.findings) {
    const li = document.createElement("li");
    li.className = f.severity;
    const where = f.tag_name ? ` (tag ${f.tag_index}: ${f.tag_name})` : "";
    li.textContent = `${f.severity} · level ${f.level} · ${f.check}${where}: ${f.message}`;
    findings.append(li);
  }
  if (report.findings_dropped) {
    const li = document.createElement("li");
    li.textContent = `… and ${report.findings_dropped} more`;
    findings.append(li);
  }
  if (!report.findings.length) {
    const li = document.createElement("li");
    li.textContent = "none";
    findings.append(li);
  }
}

/** Validate, optionally repair, show, preview and offer `bytes` for download. */
async function showFile(bytes, name, source, { repair = false } = {}) {
  const raw = validateSwf(bytes);
  let shown = bytes;
  let report = raw;
  let repaired = null;
  if (repair && raw.verdict !== "broken") {
    try {
      const r = repairSwf(bytes);
      if (r.changes.length) {
        shown = r.bytes;
        report = validateSwf(shown);
        repaired = { changes: r.changes, before: raw.verdict, after: report.verdict };
      }
    } catch (e) {
      repaired = { error: String(e.message ?? e) };
    }
  }
  state.file = { name, source, size: shown.length, report, raw, repaired, rawBytes: bytes };
  $("file").hidden = false;
  $("file-name").textContent = name;
  $("file-size").textContent = formatBytes(shown.length);
  showReport(report);
  const note = $("repair-note");
  note.hidden = !repaired;
  if (repaired) {
    note.textContent = repaired.error
      ? `repair failed: ${repaired.error}`
      : `repaired (${repaired.changes.join("; ")}): ${repaired.before} as generated, ${repaired.after} after repair`;
  }
  if (downloadUrl) URL.revokeObjectURL(downloadUrl);
  downloadUrl = URL.createObjectURL(new Blob([shown], { type: "application/x-shockwave-flash" }));
  $("download").href = downloadUrl;
  $("download").download = name;
  state.file.shownBytes = shown;
  await play(shown, name, report);
}

async function play(bytes, name, report) {
  if (report.verdict === "broken") {
    preview.clear();
    setPreviewState("skipped", { reason: "broken" });
    $("preview-status").textContent = "not played: the header does not parse (Ruffle refuses such files)";
    return;
  }
  setPreviewState("loading");
  $("preview-status").textContent = "loading the Ruffle player…";
  const h = report.header;
  try {
    const metadata = await preview.show(bytes, name, h ? { width: h.stage_width, height: h.stage_height } : null);
    setPreviewState("playing", { metadata });
    $("preview-status").textContent = metadata
      ? `Ruffle: ${metadata.width} x ${metadata.height}, ${metadata.frameRate} fps, ${metadata.numFrames} frames, SWF ${metadata.swfVersion}`
      : "Ruffle is playing the file";
    // Ruffle's own files arrive only now, once the worker controls the page: store them too.
    cacheForOffline().catch(() => {});
  } catch (e) {
    setPreviewState("failed", { error: String(e.message ?? e) });
    $("preview-status").textContent = `Ruffle could not play it: ${e.message ?? e}`;
  }
}

async function openFile(file) {
  if (!file) return;
  if (file.size > MAX_FILE_BYTES) {
    status(`${file.name}: ${file.size} bytes is over the ${MAX_FILE_BYTES} byte limit`);
    return;
  }
  const bytes = new Uint8Array(await file.arrayBuffer());
  status(`opened ${file.name}`);
  await showFile(bytes, file.name, "dropped");
}

function wireFiles() {
  $("picker").addEventListener("change", (e) => openFile(e.target.files[0]).catch(fail));
  const zone = document.body;
  zone.addEventListener("dragover", (e) => {
    e.preventDefault();
    zone.classList.add("dragging");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("dragging"));
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    zone.classList.remove("dragging");
    const file = e.dataTransfer && e.dataTransfer.files && e.dataTransfer.files[0];
    if (file) openFile(file).catch(fail);
  });
  $("sound").addEventListener("change", () => preview.setSound($("sound").checked));
  $("replay").addEventListener("click", () => {
    if (state.file) play(state.file.shownBytes, state.file.name, state.file.report).catch(fail);
  });
  $("reference").addEventListener("click", () => {
    const t = templates[Number($("template").value)];
    if (!t) return;
    const bytes = templateFile(TEMPLATE_SEED, t.index);
    status(`the synthetic file template ${t.name} was made from (what a faithful model would write)`);
    showFile(bytes, `template-${t.name}.swf`, "template").catch(fail);
  });
}

// ---------------------------------------------------------------- start

async function main() {
  setState("loading");
  setPreviewState("none");
  wireFiles();
  const backend = await ensureBackend();
  state.backend = backend;
  state.backendDetails = await backendDetails();
  $("backend").textContent = backend;
  fillTemplates();
  status("loading bytecraft-mini…");
  const t0 = performance.now();
  const [config, weights, tokenizer] = await Promise.all([
    fetchOk(`${MODEL_DIR}/config.json`).then((r) => r.text()),
    fetchOk(`${MODEL_DIR}/model.safetensors`).then((r) => r.arrayBuffer()),
    fetchOk(`${MODEL_DIR}/tokenizer.json`).then((r) => r.text()),
  ]);
  studio = new Studio(config, new Uint8Array(weights), tokenizer);
  state.model = studio.info();
  state.loadMs = performance.now() - t0;
  const m = state.model;
  $("model").textContent = `bytecraft-mini · ${(m.parameters / 1e6).toFixed(2)}M parameters · ${m.layers} layers · vocabulary ${m.vocabSize} (${m.byteTokens} byte tokens) · loaded in ${(state.loadMs / 1000).toFixed(1)} s`;
  $("generate").disabled = false;
  $("generate").addEventListener("click", () => generate().catch(fail));
  $("cancel").addEventListener("click", () => { cancelRequested = true; });
  status("ready: pick a template or write a prompt, then Generate");
  setState("ready");
  offlineReady()
    .then((r) => { state.offline = r; document.body.dataset.offline = "ready"; })
    .catch((e) => { state.offline = { error: String(e.message ?? e) }; });
}

function fail(e) {
  console.error(e);
  status(`error: ${e.message ?? e}`);
  setState("error");
}

main().catch(fail);

// Exposed for the end-to-end test: the preview's pixel summary (canvas renderer only).
state.previewPixels = () => preview.pixels();
state.previewPanicked = () => preview.panicked();
