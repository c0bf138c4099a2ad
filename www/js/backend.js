// Backend choice for every page: WebGPU when the browser offers an adapter, else the CPU
// backend compiled to wasm. `?cpu` in the URL forces the fallback (used by tests and for
// comparisons). The reason for the choice is shown to the user: which adapter, or why none.
import init, { init_backend } from "../pkg/gamegen_wasm.js";

let ready = null;
let details = null;

// The smallest module using a relaxed-SIMD instruction (`f32x4.relaxed_madd` of three zero
// vectors): it validates only where the engine has relaxed SIMD.
const RELAXED_PROBE = new Uint8Array([
  0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 61, 1, 59, 0,
  253, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
  253, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
  253, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
  253, 133, 2, 11,
]);

/**
 * Which build of the wasm package to load. Two are shipped, identical but for the target
 * features: `relaxed-simd` (the CPU kernels' multiply-adds fused, ~1.2x faster play on the CPU
 * fallback; Chrome 114+, Edge) and `simd128` for every other browser. `?simd=baseline` in the
 * address forces the second (tests, comparisons).
 */
function wasmBuild() {
  const forced = new URLSearchParams(location.search).get("simd") === "baseline";
  if (!forced && WebAssembly.validate(RELAXED_PROBE)) {
    return { simd: "relaxed-simd", url: new URL("../pkg/gamegen_wasm_relaxed_bg.wasm", import.meta.url) };
  }
  return { simd: "simd128", url: new URL("../pkg/gamegen_wasm_bg.wasm", import.meta.url) };
}

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
      const build = wasmBuild();
      await init({ module_or_path: build.url });
      const forceCpu = new URLSearchParams(location.search).has("cpu");
      const probe = forceCpu ? { name: "", reason: "forced by ?cpu in the address" } : await probeAdapter();
      const text = await init_backend(probe.name, forceCpu, probe.reason || undefined);
      details = {
        kind: text.startsWith("WebGPU") ? "webgpu" : "cpu",
        adapter: probe.name || null,
        reason: probe.reason || null,
        forced: forceCpu,
        simd: build.simd,
        text,
      };
      return text;
    })();
  }
  return ready;
}

/** `{kind: "webgpu"|"cpu", adapter, reason, forced, simd, text}` once `ensureBackend` resolved. */
export async function backendDetails() {
  await ensureBackend();
  return details;
}
