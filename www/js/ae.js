// Frame autoencoder page: load the checkpoint, reconstruct synthetic frames, draw them.
// The page exposes its last result on `window.gamegen` for the end-to-end test, which compares
// it with the native `gamegen ae run` output.
import { ensureBackend } from "./backend.js";
import { FrameAe } from "../pkg/gamegen_wasm.js";
import { offlineReady } from "./offline.js";

const COUNT = 2;
const $ = (id) => document.getElementById(id);

function draw(canvas, rgba, size, count) {
  canvas.width = size;
  canvas.height = size * count;
  const img = new ImageData(new Uint8ClampedArray(rgba), size, size * count);
  canvas.getContext("2d").putImageData(img, 0, 0);
}

async function fetchOk(url) {
  const r = await fetch(url);
  if (!r.ok) throw new Error(`${url}: HTTP ${r.status}`);
  return r;
}

async function main() {
  const params = new URLSearchParams(location.search);
  const seed = Number(params.get("seed") ?? 7);
  let index = Number(params.get("index") ?? 0);
  const backend = await ensureBackend();
  $("backend").textContent = backend;
  const [config, weights] = await Promise.all([
    fetchOk("models/frame-ae/config.json").then((r) => r.text()),
    fetchOk("models/frame-ae/model.safetensors").then((r) => r.arrayBuffer()),
  ]);
  const model = new FrameAe(config, new Uint8Array(weights));
  const size = model.size;

  async function step() {
    const t0 = performance.now();
    const out = await model.reconstruct(seed, index, COUNT);
    const ms = performance.now() - t0;
    draw($("input"), model.input_rgba(seed, index, COUNT), size, COUNT);
    const { planarToRgba } = await import("../pkg/gamegen_wasm.js");
    draw($("output"), planarToRgba(out, COUNT, size), size, COUNT);
    $("timing").textContent = `${ms.toFixed(1)} ms`;
    window.gamegen = { backend, seed, index, count: COUNT, size, output: Array.from(out), ms };
    $("status").textContent = "done";
    document.body.dataset.state = "done";
  }
  $("next").addEventListener("click", () => {
    index += COUNT;
    step().catch(fail);
  });
  await step();
  offlineReady()
    .then(() => { document.body.dataset.offline = "ready"; })
    .catch(() => {});
}

function fail(e) {
  console.error(e);
  $("status").textContent = `error: ${e.message ?? e}`;
  document.body.dataset.state = "error";
}

main().catch(fail);
