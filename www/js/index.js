// The hub: which backend the models will run on here, and why; registers the offline worker.
import { backendDetails } from "./backend.js";
import { offlineReady } from "./offline.js";

const $ = (id) => document.getElementById(id);

async function main() {
  document.body.dataset.state = "loading";
  const d = await backendDetails();
  window.gamegen = { backend: d.text, backendDetails: d };
  $("backend").textContent = d.kind === "webgpu" ? `WebGPU (${d.adapter})` : `CPU fallback (burn-flex compiled to wasm, ${d.simd === "relaxed-simd" ? "relaxed SIMD" : "128-bit SIMD"})`;
  const software = d.kind === "webgpu" && /swiftshader|llvmpipe|lavapipe|software/i.test(d.adapter ?? "");
  $("backend-why").textContent = d.kind === "webgpu"
    ? software
      ? `Your browser offers a WebGPU adapter (${d.adapter}), so the models run through burn-wgpu; it is a software emulation of a GPU, usually slower than the CPU fallback: try ?cpu.`
      : "Your browser offers a WebGPU adapter, so the models run on your GPU through burn-wgpu."
    : `Why not WebGPU: ${d.reason ?? "no adapter"}. The same models run on the CPU, slower.`;
  document.body.dataset.state = "ready";
  const r = await offlineReady();
  window.gamegen.offline = r;
  $("offline").textContent = r.unsupported
    ? "This browser has no service workers: the site needs the network."
    : "The site keeps working offline once loaded.";
  document.body.dataset.offline = "ready";
}

main().catch((e) => {
  console.error(e);
  $("backend").textContent = `unavailable: ${e.message ?? e}`;
  document.body.dataset.state = "error";
});
