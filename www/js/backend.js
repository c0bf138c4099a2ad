// Backend choice for every page: WebGPU when the browser offers an adapter, else the CPU
// backend compiled to wasm. `?cpu` in the URL forces the fallback (used by tests and for
// comparisons).
import init, { init_backend } from "../pkg/gamegen_wasm.js";

let ready = null;

async function adapterName() {
  if (!("gpu" in navigator) || !navigator.gpu) return "";
  try {
    const adapter = await navigator.gpu.requestAdapter();
    if (!adapter) return "";
    const info = adapter.info || {};
    return [info.vendor, info.architecture, info.device, info.description]
      .filter((s) => s && s.length)
      .join(" ") || "WebGPU adapter";
  } catch (e) {
    return "";
  }
}

/** Initialise the wasm module and the backend once; resolves to a description string. */
export function ensureBackend() {
  if (!ready) {
    ready = (async () => {
      await init();
      const forceCpu = new URLSearchParams(location.search).has("cpu");
      const name = forceCpu ? "" : await adapterName();
      return await init_backend(name, forceCpu);
    })();
  }
  return ready;
}
