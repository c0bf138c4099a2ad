// Level-3 SWF classification in the Ruffle web player, headless Chromium (playwright-core).
//
// Spawned by `gamegen validate --ruffle` (native/src/ruffle_classify.rs), which embeds this file
// in the binary and writes it to a temporary directory, so the binary needs no source tree; only
// the npm packages (located by the Rust side and passed as --www) and a chromium.
//
// Protocol, JSON Lines:
//   stdin:  {"id": N, "path": "/abs/file.swf", "width": W, "height": H, "fps": F}   one per file
//   stdout: {"ready": true}            once the browser and J pages are up
//           {"fatal": "message"}       and exit 1, when they cannot be set up
//           {"id": N, ...observation}  one per file, in completion order
// Closing stdin finishes the run. Nothing here classifies: the Rust side turns observations
// (pixel differences, flatness, panics, console errors) into classes, so the rules live in one
// tested place.
//
// Determinism: the page replaces requestAnimationFrame with a queue that only this driver
// flushes, passing a virtual timestamp. Ruffle advances its timeline by the difference of rAF
// timestamps, so every run of a file sees exactly the same frame times, however loaded the
// machine is, and two seconds of a movie take only as long as Ruffle needs to compute them.
// performance.now() stays real, so Ruffle's script timeout (maxExecutionDuration) still fires.
import { createRequire } from "node:module";
import { readFileSync, existsSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";

function parseArgs(argv) {
  const o = { jobs: 1, timeoutMs: 10000, www: null, chromium: "/usr/bin/chromium", maxExec: 1 };
  for (let i = 0; i < argv.length; i++) {
    const v = argv[i + 1];
    switch (argv[i]) {
      case "--www": o.www = v; i++; break;
      case "--chromium": o.chromium = v; i++; break;
      case "--jobs": o.jobs = Math.max(1, parseInt(v, 10)); i++; break;
      case "--timeout-ms": o.timeoutMs = parseInt(v, 10); i++; break;
      case "--max-exec": o.maxExec = parseFloat(v); i++; break;
      default: fatal(`unknown driver argument ${argv[i]}`);
    }
  }
  return o;
}

function send(obj) {
  process.stdout.write(JSON.stringify(obj) + "\n");
}

function fatal(msg) {
  send({ fatal: msg });
  process.exit(1);
}

const opts = parseArgs(process.argv.slice(2));
if (!opts.www) fatal("the driver needs --www DIR (the directory holding node_modules)");
const ruffleDir = join(opts.www, "node_modules/@ruffle-rs/ruffle");
if (!existsSync(join(ruffleDir, "ruffle.js"))) {
  fatal(`the npm package @ruffle-rs/ruffle is missing in ${opts.www}/node_modules (run npm ci in www/)`);
}
let chromium;
try {
  ({ chromium } = createRequire(join(opts.www, "package.json"))("playwright-core"));
} catch (e) {
  fatal(`the npm package playwright-core is missing in ${opts.www}/node_modules (run npm ci in www/)`);
}
if (!existsSync(opts.chromium)) {
  fatal(`chromium not found at ${opts.chromium} (install Debian's chromium or set GAMEGEN_CHROMIUM / --chromium)`);
}

/** Flags that run Debian's chromium headless here (../shared/reference/ruffle.md). */
const CHROMIUM_ARGS = [
  "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync",
];
const ORIGIN = "http://ruffle.localhost";

/** Ruffle's automation config: no network, no popups, no UI, canvas renderer for read-back. */
const RUFFLE_CONFIG = {
  publicPath: `${ORIGIN}/ruffle/`,
  polyfills: false,
  autoplay: "on",
  unmuteOverlay: "hidden",
  splashScreen: false,
  contextMenu: "off",
  warnOnUnsupportedContent: false,
  logLevel: "error",
  maxExecutionDuration: opts.maxExec,
  preferredRenderer: "canvas",
  allowNetworking: "none",
  openUrlMode: "deny",
  allowScriptAccess: false,
  letterbox: "off",
};

// The page: a virtual clock, then Ruffle, then `window.classify` (runs one file, returns what was
// seen). Kept as a function so it is real, lintable JS; it is serialised into the page.
function pageMain(config) {
  const queue = new Map();
  let nextId = 1;
  let virtualMs = 0;
  window.requestAnimationFrame = (cb) => {
    const id = nextId++;
    queue.set(id, cb);
    return id;
  };
  window.cancelAnimationFrame = (id) => queue.delete(id);
  /** Advance the virtual clock and run the rAF callbacks queued so far (Ruffle's tick). */
  function step(ms) {
    virtualMs += ms;
    const cbs = [...queue.values()];
    queue.clear();
    for (const cb of cbs) {
      try { cb(virtualMs); } catch (e) { console.error(`rAF callback threw: ${e}`); }
    }
  }
  window.RufflePlayer = { config };

  const pause = () => new Promise((r) => setTimeout(r, 0));
  const THUMB_W = 160;

  function grab(canvas) {
    const ctx = canvas.getContext("2d");
    if (!ctx || canvas.width === 0 || canvas.height === 0) return null;
    return ctx.getImageData(0, 0, canvas.width, canvas.height);
  }
  function thumb(canvas) {
    const s = Math.min(1, THUMB_W / canvas.width);
    const t = document.createElement("canvas");
    t.width = Math.max(1, Math.round(canvas.width * s));
    t.height = Math.max(1, Math.round(canvas.height * s));
    t.getContext("2d").drawImage(canvas, 0, 0, t.width, t.height);
    return t.toDataURL("image/png");
  }
  /** Pixels whose largest channel difference exceeds 2 (colour rounding is not a change). */
  function diff(a, b) {
    if (!a || !b || a.data.length !== b.data.length) return -1;
    let n = 0;
    const x = a.data, y = b.data;
    for (let i = 0; i < x.length; i += 4) {
      if (Math.abs(x[i] - y[i]) > 2 || Math.abs(x[i + 1] - y[i + 1]) > 2 ||
          Math.abs(x[i + 2] - y[i + 2]) > 2 || Math.abs(x[i + 3] - y[i + 3]) > 2) n++;
    }
    return n;
  }
  /** "#rrggbb" when every pixel is within 2 of the first one, else null. */
  function flat(img) {
    if (!img) return null;
    const d = img.data;
    const [r, g, b] = [d[0], d[1], d[2]];
    for (let i = 4; i < d.length; i += 4) {
      if (Math.abs(d[i] - r) > 2 || Math.abs(d[i + 1] - g) > 2 || Math.abs(d[i + 2] - b) > 2) return null;
    }
    return "#" + [r, g, b].map((v) => v.toString(16).padStart(2, "0")).join("");
  }

  /** Synthetic input at frame k of the input phase: arrows held for several frames (games
   * poll Key.isDown), space, mouse moves and clicks over the stage (start buttons). */
  function input(k, el, canvas) {
    const keys = [["ArrowRight", 39], ["ArrowDown", 40], [" ", 32], ["ArrowLeft", 37], ["ArrowUp", 38], ["Enter", 13]];
    const key = (type, [name, code]) => {
      const ev = new KeyboardEvent(type, {
        key: name, code: name === " " ? "Space" : name, keyCode: code, which: code,
        bubbles: true, cancelable: true, composed: true,
      });
      el.dispatchEvent(ev);
    };
    const r = canvas.getBoundingClientRect();
    const spots = [[0.5, 0.5], [0.25, 0.25], [0.75, 0.75], [0.25, 0.75], [0.75, 0.25], [0.5, 0.8]];
    const pointer = (type, [fx, fy]) => {
      const init = {
        clientX: r.left + fx * r.width, clientY: r.top + fy * r.height, pointerId: 1,
        pointerType: "mouse", isPrimary: true, button: type === "pointermove" ? -1 : 0,
        buttons: type === "pointerdown" ? 1 : 0, bubbles: true, cancelable: true, composed: true,
      };
      canvas.dispatchEvent(new PointerEvent(type, init));
      const mouse = { pointerdown: "mousedown", pointerup: "mouseup", pointermove: "mousemove" }[type];
      canvas.dispatchEvent(new MouseEvent(mouse, init));
    };
    // A 6-frame cycle per key: down on 0, up on 4; the mouse moves every frame and clicks on 2.
    const cycle = Math.floor(k / 6) % keys.length;
    const phase = k % 6;
    const spot = spots[Math.floor(k / 6) % spots.length];
    pointer("pointermove", spot);
    if (phase === 0) key("keydown", keys[cycle]);
    if (phase === 4) key("keyup", keys[cycle]);
    if (phase === 2) { pointer("pointerdown", spot); pointer("pointerup", spot); }
  }

  /** One run of a file: a fresh player, `frames` timestamps, samples at the given frames. */
  async function run(bytes, spec, withInput, keepThumbs) {
    const el = window.RufflePlayer.newest().createPlayer();
    el.style.width = `${spec.cssW}px`;
    el.style.height = `${spec.cssH}px`;
    el.style.display = "block";
    document.body.appendChild(el);
    const out = { loaded: false, panic: false, samples: [], thumbs: [], error: null };
    try {
      try {
        await el.ruffle().load({ data: bytes, swfFileName: "movie.swf" });
        out.loaded = true;
      } catch (e) {
        out.error = `load rejected: ${e && e.message ? e.message : e}`;
      }
      if (out.loaded) {
        const canvas = () => el.shadowRoot && el.shadowRoot.querySelector("canvas");
        const panicked = () => !!(el.shadowRoot && el.shadowRoot.querySelector("#panic"));
        const last = spec.sampleAt[spec.sampleAt.length - 1];
        let si = 0;
        for (let f = 1; f <= last && !panicked(); f++) {
          if (withInput && f > spec.inputFrom && canvas()) input(f - spec.inputFrom - 1, el, canvas());
          step(spec.frameMs);
          if (f % 8 === 0) await pause();
          if (f === spec.sampleAt[si]) {
            const c = canvas();
            out.samples.push(c ? grab(c) : null);
            if (keepThumbs && (si === 0 || si === spec.sampleAt.length - 1)) out.thumbs.push(c ? thumb(c) : null);
            si++;
          }
        }
        out.panic = panicked();
        const c = canvas();
        out.canvas = c ? [c.width, c.height] : null;
        if (out.panic) out.error = "Ruffle panicked (#panic shown)";
        out.metadata = el.ruffle().metadata ?? null;
      } else {
        out.panic = !!(el.shadowRoot && el.shadowRoot.querySelector("#panic"));
      }
    } finally {
      el.remove();
    }
    return out;
  }

  /** All runs of one file. Run A has no input; run B replays the same clock with input from
   * `inputFrom` on; run C (no input again) only when B differs from A, to tell input from
   * nondeterminism. Returns pixel counts, never classes. */
  window.classify = async (b64, spec) => {
    const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    const a = await run(bytes, spec, false, true);
    const res = {
      loaded: a.loaded, panic: a.panic, error: a.error, canvas: a.canvas ?? null,
      metadata: a.metadata ?? null, thumbs: a.thumbs,
      flat: a.samples.map(flat), overTime: [], inputDiff: null, baselineDiff: null,
      pixels: a.canvas ? a.canvas[0] * a.canvas[1] : 0,
    };
    if (!a.loaded || a.panic || a.samples.length === 0) return res;
    for (let i = 1; i < a.samples.length; i++) res.overTime.push(diff(a.samples[0], a.samples[i]));
    const b = await run(bytes, spec, true, false);
    if (b.panic) {
      res.inputPanic = true;
      return res;
    }
    // Only samples after input began can differ because of it.
    const after = (x, y) => Math.max(0, ...spec.sampleAt.map((f, i) => (f > spec.inputFrom ? diff(x.samples[i], y.samples[i]) : 0)));
    res.inputDiff = after(a, b);
    if (res.inputDiff > 0) {
      const c = await run(bytes, spec, false, false);
      res.baselineDiff = c.panic ? -1 : after(a, c);
      res.inputVsRerun = c.panic ? -1 : after(b, c);
    }
    return res;
  };
}

const PAGE_HTML = `<!doctype html><html><head><meta charset="utf-8">
<style>body{margin:0;background:#777}</style>
<script>(${pageMain.toString()})(${JSON.stringify(RUFFLE_CONFIG)});</script>
<script src="/ruffle/ruffle.js"></script></head><body></body></html>`;

const MIME = { ".js": "text/javascript", ".wasm": "application/wasm", ".map": "application/json" };

/** The error lines worth keeping, or null. Ruffle logs through console.log with CSS styling:
 * text() is "%cERROR%c core/src/x.rs:70%c message" followed by the three style strings; that
 * becomes "ERROR core/src/x.rs:70 message". Panics and page errors come as console errors. The
 * blocked requests' "Failed to load resource" lines are dropped (they are listed as blocked). */
function ruffleError(type, text) {
  if (text.startsWith("%cERROR%c ")) {
    let body = text.slice("%cERROR%c ".length);
    const styles = body.lastIndexOf(" color: red;");
    if (styles > 0) body = body.slice(0, styles);
    return "ERROR " + body.replace("%c", "");
  }
  if (type === "error" && !text.startsWith("Failed to load resource")) return text;
  return null;
}

/** A page whose every request is answered from disk; anything else is aborted (no network). */
async function newPage(browser) {
  const page = await browser.newPage({ viewport: { width: 800, height: 600 } });
  const state = { console: [], blocked: [] };
  page.on("console", (m) => {
    const line = ruffleError(m.type(), m.text());
    if (line) state.console.push(line);
  });
  page.on("pageerror", (e) => state.console.push(`page error: ${e}`));
  await page.route("**/*", async (route) => {
    const url = route.request().url();
    if (url === `${ORIGIN}/`) return route.fulfill({ status: 200, contentType: "text/html", body: PAGE_HTML });
    if (url.startsWith(`${ORIGIN}/ruffle/`)) {
      const name = url.slice(`${ORIGIN}/ruffle/`.length).split(/[?#]/)[0];
      if (/^[\w.-]+$/.test(name) && existsSync(join(ruffleDir, name))) {
        const ext = name.slice(name.lastIndexOf("."));
        return route.fulfill({ status: 200, contentType: MIME[ext] ?? "application/octet-stream", path: join(ruffleDir, name) });
      }
      return route.fulfill({ status: 404, body: "" });
    }
    state.blocked.push(url);
    return route.abort("blockedbyclient");
  });
  await page.goto(`${ORIGIN}/`);
  await page.waitForFunction(() => window.RufflePlayer && typeof window.RufflePlayer.newest === "function", null, { timeout: 30000 });
  return { page, state };
}

/** The same sampling plan for every run of a file, in frames of the file's own rate. */
function plan(job) {
  const fps = Math.min(120, Math.max(1, job.fps || 24));
  const frameMs = 1000 / fps + 0.01; // a hair over one frame so float rounding never skips one
  const at = (ms) => Math.max(1, Math.round(ms / (1000 / fps)));
  // Odd offsets keep short loops (2-4 frames) from being sampled on the same frame every time.
  const sampleAt = [...new Set([at(250), at(250) + 1, at(600) + 2, at(1000), at(1500) + 1, at(2000)])].sort((x, y) => x - y);
  const maxW = 320, maxH = 240;
  const w = Math.max(1, job.width || 550), h = Math.max(1, job.height || 400);
  const s = Math.min(maxW / w, maxH / h);
  return {
    frameMs, sampleAt, inputFrom: sampleAt[0],
    cssW: Math.max(8, Math.round(w * s)), cssH: Math.max(8, Math.round(h * s)),
  };
}

/** `promise`, or an error after `ms` (the timer is cleared either way so exit is not delayed). */
async function withTimeout(promise, ms) {
  let timer;
  const limit = new Promise((_, fail) => {
    timer = setTimeout(() => fail(new Error(`timed out after ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, limit]);
  } finally {
    clearTimeout(timer);
  }
}

async function main() {
  let browser;
  try {
    browser = await chromium.launch({ executablePath: opts.chromium, args: CHROMIUM_ARGS, timeout: 60000 });
  } catch (e) {
    fatal(`cannot start chromium at ${opts.chromium}: ${String(e.message ?? e).split("\n")[0]}`);
  }
  const pending = [];
  let closed = false;
  let wake = null;
  const rl = createInterface({ input: process.stdin });
  rl.on("line", (line) => {
    if (!line.trim()) return;
    pending.push(JSON.parse(line));
    if (wake) wake();
  });
  rl.on("close", () => {
    closed = true;
    if (wake) wake();
  });
  const nextJob = async () => {
    while (pending.length === 0 && !closed) await new Promise((r) => (wake = r));
    wake = null;
    return pending.shift();
  };

  let pages;
  try {
    pages = await Promise.all(Array.from({ length: opts.jobs }, () => newPage(browser)));
  } catch (e) {
    await browser.close().catch(() => {});
    fatal(`cannot load the Ruffle player page: ${String(e.message ?? e).split("\n")[0]}`);
  }
  send({ ready: true });

  async function worker(slot) {
    for (;;) {
      const job = await nextJob();
      if (!job) return;
      const t0 = Date.now();
      let p = pages[slot];
      p.state.console = [];
      p.state.blocked = [];
      let obs;
      try {
        const b64 = readFileSync(job.path).toString("base64");
        obs = await withTimeout(p.page.evaluate(([d, s]) => window.classify(d, s), [b64, plan(job)]), opts.timeoutMs);
      } catch (e) {
        // A timeout, a crashed page or a file the driver cannot read: no observation.
        obs = { loaded: false, panic: false, failed: true, timeout: /timed out/.test(String(e.message)), error: String(e.message ?? e).split("\n")[0] };
      }
      obs.console = p.state.console.slice(0, 20).map((s) => s.slice(0, 400));
      obs.blocked = [...new Set(p.state.blocked)].slice(0, 10).map((s) => s.slice(0, 200));
      // A hung, crashed or panicked player may leave the page unusable: the next file gets a
      // new one.
      if (obs.failed || obs.panic || obs.inputPanic) {
        delete obs.failed;
        await p.page.close().catch(() => {});
        try {
          pages[slot] = await newPage(browser);
        } catch (e) {
          send({ id: job.id, ...obs, ms: Date.now() - t0 });
          fatal(`cannot reload the Ruffle player page: ${String(e.message ?? e).split("\n")[0]}`);
        }
      }
      send({ id: job.id, ...obs, ms: Date.now() - t0 });
    }
  }
  await Promise.all(pages.map((_, i) => worker(i)));
  await browser.close().catch(() => {});
  process.exit(0);
}

main().catch((e) => fatal(`driver failed: ${String(e.message ?? e).split("\n")[0]}`));
