// Backend choice for every page: WebGPU when the browser offers an adapter, else the CPU
// backend compiled to wasm. `?cpu` in the URL forces the fallback (used by tests and for
// comparisons). The reason for the choice is shown to the user: which adapter, or why none.
import init, { init_backend } from "../pkg/gamegen_wasm.js";

let ready = null;
let details = null;

/** What WebGPU offers here: `{ name }` for an adapter, else `{ name: "", reason }`. */
async function probeAdapter() {
  if (!("gpu" in navigator) || !navigator.gpu) {
    return { name: "", reason: "no WebGPU in this browser (navigator.gpu is missing)" };
  }
  try {
    const adapter = await navigator.gpu.requestAdapter();
    if (!adapter) return { name: "", reason: "WebGPU is present but requestAdapter() returned no adapter" };
    const info = adapter.info || {};
    const name = [info.vendor, info.architecture, info.device, info.description]
      .filter((s) => s && s.length)
      .join(" ") || "WebGPU adapter";
    return { name, reason: "" };
  } catch (e) {
    return { name: "", reason: `WebGPU adapter request failed: ${e.message ?? e}` };
  }
}

/** Initialise the wasm module and the backend once; resolves to a description string. */
export function ensureBackend() {
  if (!ready) {
    ready = (async () => {
      await init();
      const forceCpu = new URLSearchParams(location.search).has("cpu");
      const probe = forceCpu ? { name: "", reason: "forced by ?cpu in the address" } : await probeAdapter();
      const text = await init_backend(probe.name, forceCpu, probe.reason || undefined);
      details = {
        kind: text.startsWith("WebGPU") ? "webgpu" : "cpu",
        adapter: probe.name || null,
        reason: probe.reason || null,
        forced: forceCpu,
        text,
      };
      return text;
    })();
  }
  return ready;
}

/** `{kind: "webgpu"|"cpu", adapter, reason, forced, text}` once `ensureBackend` resolved. */
export async function backendDetails() {
  await ensureBackend();
  return details;
}
