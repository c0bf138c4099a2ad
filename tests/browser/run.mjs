// Browser end-to-end tests: start `gamegen serve` on a free port, drive Debian's chromium
// headless with playwright-core (never a downloaded browser), run every `*.test.mjs` here.
// Each test gets a fresh page; any console error or uncaught page error fails the test.
// Artefacts (screenshots, measured figures) go to target/browser-artifacts/.
import { spawn } from "node:child_process";
import { createRequire } from "node:module";
import { readdirSync, mkdirSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, "../..");
const require = createRequire(join(root, "www/package.json"));
const { chromium } = require("playwright-core");

export const ARTIFACTS = join(root, "target/browser-artifacts");
mkdirSync(ARTIFACTS, { recursive: true });
// CARGO_TARGET_DIR may be relative (to the project root) or absolute.
const gamegen = resolve(root, process.env.CARGO_TARGET_DIR ?? "target", "release/gamegen");

/** Start `gamegen serve` on www/ at a free port: `{child, url}`. */
export function startServer() {
  return new Promise((ok, fail) => {
    const child = spawn(gamegen, ["serve", "--dir", join(root, "www"), "--port", "0"], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    let buf = "";
    const timer = setTimeout(() => fail(new Error("gamegen serve printed no URL in 20 s")), 20000);
    child.stdout.on("data", (d) => {
      buf += d;
      const m = buf.match(/http:\/\/127\.0\.0\.1:\d+\/?/);
      if (m) {
        clearTimeout(timer);
        ok({ child, url: m[0].endsWith("/") ? m[0] : m[0] + "/" });
      }
    });
    child.on("error", (e) => fail(new Error(`cannot start ${gamegen}: ${e.message} (build it with cargo build --release)`)));
    child.on("exit", (code) => fail(new Error(`gamegen serve exited early (${code})`)));
  });
}

/** Chromium flags that work on this headless machine (see shared/reference/burn.md). */
export const CHROMIUM_ARGS = [
  "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync",
  "--enable-unsafe-webgpu",
];

/** Open `path` in a fresh page that records console errors and requests leaving the origin. */
export async function openPage(ctx, path) {
  const page = await ctx.browser.newPage();
  const errors = [];
  const foreign = [];
  page.on("console", (m) => { if (m.type() === "error") errors.push(m.text()); });
  page.on("pageerror", (e) => errors.push(String(e)));
  page.on("response", (r) => { if (r.status() >= 400) errors.push(`HTTP ${r.status()} for ${r.url()}`); });
  page.on("request", (r) => { if (!r.url().startsWith(ctx.baseUrl) && !r.url().startsWith("data:") && !r.url().startsWith("blob:")) foreign.push(r.url()); });
  await page.goto(ctx.baseUrl + path);
  page.assertClean = () => {
    if (errors.length) throw new Error(`console errors on ${path}:\n  ${errors.join("\n  ")}`);
    if (foreign.length) throw new Error(`requests left the origin on ${path}: ${foreign.join(", ")}`);
  };
  return page;
}

export function assert(cond, msg) {
  if (!cond) throw new Error(msg);
}

async function main() {
  const only = process.argv[2];
  const files = readdirSync(here).filter((f) => f.endsWith(".test.mjs") && (!only || f.includes(only))).sort();
  const { child, url } = await startServer();
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    args: CHROMIUM_ARGS,
  });
  const ctx = { browser, baseUrl: url, root, gamegen, artifacts: ARTIFACTS };
  let failed = 0;
  const summary = {};
  try {
    for (const f of files) {
      const mod = await import(pathToFileURL(join(here, f)).href);
      for (const [name, fn] of Object.entries(mod.tests ?? {})) {
        const t0 = Date.now();
        try {
          summary[`${f}: ${name}`] = (await fn(ctx)) ?? "ok";
          console.log(`ok   ${f}: ${name} (${Date.now() - t0} ms)`);
        } catch (e) {
          failed++;
          summary[`${f}: ${name}`] = `FAILED: ${e.message}`;
          console.log(`FAIL ${f}: ${name}\n     ${e.stack ?? e}`);
        }
      }
    }
  } finally {
    await browser.close();
    child.kill();
  }
  writeFileSync(join(ARTIFACTS, "summary.json"), JSON.stringify(summary, null, 2));
  if (failed) {
    console.log(`${failed} browser test(s) failed`);
    process.exit(1);
  }
  console.log("all browser tests passed");
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((e) => { console.error(e); process.exit(1); });
}
