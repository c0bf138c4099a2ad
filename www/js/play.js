// Play page: the neural game (a trained world model) and the real game side by side, both
// driven by the same keys, frame by frame. The neural game starts from the real game's first
// frame and score.
//
// URL parameters: game=traveler|pong|pacman, steps=1..16 (DDIM steps, default 4), seed=N,
// cpu (force the CPU fallback), real (the real game alone, without the world model),
// frames=N (stop after N frames; used by the tests), record (keep every frame of both canvases
// in `window.gamegen.recorded`; used by the tests), actions=SCRIPT (play a scripted action
// sequence such as `R*6,S*2` instead of the keyboard, as `gamegen play --actions` does, and stop
// at its end, or when a caught Pac-Man ends the episode: the same script gives the same frames
// on every backend and every run).
// The page's state is on `window.gamegen` and in `document.body.dataset.state`
// (loading, playing, paused, done, error). Controls: the keys below, the on-screen buttons
// (touch or mouse: held while pressed), Pause (or P) and Reset (or R). Traveler has a map
// editor: "Play this map" restarts both games on the designed strip (`window.gamegen.map`). A game with no world model in www/models is played as the
// real game alone (`window.gamegen.neural` is false).
import { ensureBackend } from "./backend.js";
import { offlineReady } from "./offline.js";
import {
  RealGame, NeuralGame, eventNames, parseActions, travelerExampleMap, travelerPalette,
} from "../pkg/gamegen_wasm.js";

const GAMES = ["traveler", "pong", "pacman"];
const HELP = {
  traveler: "← / → (or A / D) walk; crossing an empty space builds a house and scores a point.",
  pong: "W / S move the left paddle, ↑ / ↓ the right paddle.",
  pacman: "Arrow keys (or WASD) move Pac-Man.",
};
const GAME_FRAME_MS = 1000 / 30; // game time runs at 30 frames per second at most
const FPS_WINDOW = 30;
const KEYS = new Set(["ArrowUp", "ArrowDown", "ArrowLeft", "ArrowRight", "KeyW", "KeyA", "KeyS", "KeyD"]);

const $ = (id) => document.getElementById(id);
const sleep = (ms) => new Promise((ok) => setTimeout(ok, ms));

async function fetchOk(url) {
  const r = await fetch(url);
  if (!r.ok) throw new Error(`${url}: HTTP ${r.status}`);
  return r;
}

function draw(canvas, rgba, w, h) {
  if (canvas.width !== w || canvas.height !== h) {
    canvas.width = w;
    canvas.height = h;
  }
  const px = new Uint8ClampedArray(rgba.buffer, rgba.byteOffset, rgba.length);
  canvas.getContext("2d").putImageData(new ImageData(px, w, h), 0, 0);
}

function setState(s) {
  document.body.dataset.state = s;
}

/** Which world models `cargo xtask build-web` copied (it writes models/index.json). */
async function availableGames() {
  const r = await fetch("models/index.json");
  if (!r.ok) return new Set();
  const index = await r.json();
  return new Set((index.world ?? []).map((d) => d.replace(/^world-/, "")));
}

function fillSelectors(available, game, steps) {
  const sel = $("game");
  for (const g of GAMES) {
    const o = document.createElement("option");
    o.value = g;
    o.textContent = available.has(g) ? g : `${g} (real game only: no world model yet)`;
    o.selected = g === game;
    sel.append(o);
  }
  sel.addEventListener("change", () => {
    const p = new URLSearchParams(location.search);
    p.set("game", sel.value);
    location.search = p.toString();
  });
  const st = $("steps");
  for (let s = 1; s <= 16; s++) {
    const o = document.createElement("option");
    o.value = String(s);
    o.textContent = String(s);
    o.selected = s === steps;
    st.append(o);
  }
}

/** On-screen buttons per game: [label, key code it holds, accessible name]. */
const PADS = {
  traveler: [[["◀", "ArrowLeft", "left"], ["▶", "ArrowRight", "right"]]],
  pacman: [[["▲", "ArrowUp", "up"], ["◀", "ArrowLeft", "left"], ["▼", "ArrowDown", "down"], ["▶", "ArrowRight", "right"]]],
  pong: [[["▲", "KeyW", "left paddle up"], ["▼", "KeyS", "left paddle down"]],
    [["▲", "ArrowUp", "right paddle up"], ["▼", "ArrowDown", "right paddle down"]]],
};

/** Buttons that hold a key while pressed (pointer events: touch, pen or mouse). */
function touchPads(game, held) {
  const box = $("touch");
  for (const pad of PADS[game] ?? []) {
    const grid = document.createElement("div");
    grid.className = "touch";
    for (const [label, code, name] of pad) {
      const b = document.createElement("button");
      b.type = "button";
      b.textContent = label;
      b.dataset.code = code;
      b.setAttribute("aria-label", name);
      const release = () => {
        held.delete(code);
        b.classList.remove("held");
      };
      b.addEventListener("pointerdown", (e) => {
        e.preventDefault();
        if (b.setPointerCapture && e.pointerId !== undefined) {
          try { b.setPointerCapture(e.pointerId); } catch (_) { /* synthetic events have no capture */ }
        }
        held.add(code);
        b.classList.add("held");
      });
      for (const ev of ["pointerup", "pointercancel", "lostpointercapture"]) b.addEventListener(ev, release);
      b.addEventListener("contextmenu", (e) => e.preventDefault());
      grid.append(b);
    }
    box.append(grid);
  }
}

/** A key press meant for a text field (the map editor), not for the game. */
const typing = (e) => e.target instanceof HTMLTextAreaElement || e.target instanceof HTMLInputElement;

/** Keys held now, by `KeyboardEvent.code` (layout-independent). */
function trackKeys() {
  const held = new Set();
  window.addEventListener("keydown", (e) => {
    if (!KEYS.has(e.code) || typing(e)) return;
    held.add(e.code);
    e.preventDefault();
  });
  window.addEventListener("keyup", (e) => {
    held.delete(e.code);
  });
  window.addEventListener("blur", () => held.clear());
  return held;
}

function actionFor(game, real, held) {
  const k = (c) => held.has(c);
  if (game === "pong") {
    // Left paddle W/S, right paddle arrows.
    return real.actionForKeys(k("ArrowUp"), k("ArrowDown"), false, false, k("KeyW"), k("KeyS"));
  }
  return real.actionForKeys(
    k("ArrowUp") || k("KeyW"), k("ArrowDown") || k("KeyS"),
    k("ArrowLeft") || k("KeyA"), k("ArrowRight") || k("KeyD"), false, false);
}

/** A `gamegen-map` text split into its header lines and its strip (one char per slot). */
function splitMap(text) {
  const lines = text.split("\n");
  const at = lines.findIndex((l) => l.split("#")[0].trim() === "strip");
  if (at < 0) return { header: lines, strip: "" };
  return { header: lines.slice(0, at + 1), strip: lines.slice(at + 1).join("").replace(/\s+/g, "") };
}

/** Building keys -> colour and height: the built-in palette plus the map's `palette` lines. */
function paletteOf(header) {
  const out = new Map();
  for (const line of travelerPalette()) {
    const [k, rgb, h] = line.split(" ");
    out.set(k, { color: `#${rgb}`, height: Number(h) });
  }
  for (const l of header) {
    const m = l.split("#")[0].trim().match(/^palette\s+(\S)\s+([0-9a-fA-F]{6})\s+(\d+)$/);
    if (m) out.set(m[1], { color: `#${m[2]}`, height: Number(m[3]) });
  }
  return out;
}

/**
 * The Traveler map editor: slot buttons (click one, then a building), the map text (edited
 * directly or through the buttons) and the buttons that restart play on it. `apply(text|null)`
 * restarts both games on the map (null: no map).
 */
function mapEditor(apply) {
  const box = $("map-editor");
  box.hidden = false;
  const text = $("map-text");
  let selected = 0;
  const render = () => {
    const { header, strip } = splitMap(text.value);
    const pal = paletteOf(header);
    const start = Number((header.map((l) => l.split("#")[0].trim().match(/^start\s+(\d+)$/)).find((m) => m) ?? [0, 0])[1]);
    const slots = $("map-slots");
    slots.replaceChildren();
    [...strip].forEach((k, i) => {
      const b = document.createElement("button");
      b.type = "button";
      b.textContent = k;
      b.dataset.slot = String(i);
      const p = pal.get(k);
      if (p) {
        const pct = Math.round((100 * p.height) / 60);
        b.style.background = `linear-gradient(to top, ${p.color} ${pct}%, #aad7ff ${pct}%)`;
      }
      b.classList.toggle("selected", i === selected);
      b.classList.toggle("start", i === start);
      b.setAttribute("aria-label", `slot ${i}: ${k === "." ? "empty" : k}`);
      b.addEventListener("click", () => { selected = i; render(); });
      slots.append(b);
    });
    const keys = $("map-palette");
    keys.replaceChildren();
    for (const [k, p] of [[".", null], ...pal]) {
      const b = document.createElement("button");
      b.type = "button";
      b.textContent = k === "." ? "empty" : k;
      b.dataset.key = k;
      if (p) b.style.background = p.color;
      b.addEventListener("click", () => {
        const cur = splitMap(text.value);
        const chars = [...cur.strip];
        while (chars.length <= selected) chars.push(".");
        chars[selected] = k;
        text.value = [...cur.header, chars.join("")].join("\n") + "\n";
        selected = Math.min(selected + 1, chars.length - 1);
        render();
      });
      keys.append(b);
    }
  };
  text.value = travelerExampleMap();
  text.addEventListener("input", render);
  $("map-example").addEventListener("click", () => { text.value = travelerExampleMap(); render(); });
  $("map-apply").addEventListener("click", () => apply(text.value));
  $("map-clear").addEventListener("click", () => apply(null));
  render();
}

async function main() {
  setState("loading");
  const params = new URLSearchParams(location.search);
  const seed = Math.max(0, Math.floor(Number(params.get("seed") ?? 1))) >>> 0;
  let steps = Math.min(16, Math.max(1, Math.floor(Number(params.get("steps") ?? 4)) || 4));
  const maxFrames = params.has("frames") ? Math.max(1, Number(params.get("frames")) || 1) : Infinity;
  const record = params.has("record");

  const backend = await ensureBackend();
  $("backend").textContent = backend;
  const available = await availableGames();
  const game = params.get("game") ?? GAMES.find((g) => available.has(g)) ?? "traveler";
  fillSelectors(available, game, steps);
  $("keys-help").textContent = HELP[game] ?? "";
  const state = (window.gamegen = { backend, game, steps, seed, state: "loading" });

  if (!GAMES.includes(game)) throw new Error(`unknown game '${game}' (traveler, pong or pacman)`);
  const script = params.has("actions") ? parseActions(game, params.get("actions") ?? "") : null;
  const lastFrame = script ? Math.min(maxFrames, script.length) : maxFrames;
  // Without a trained world model for this game the page still plays the real game.
  let neural = null;
  if (available.has(game) && !params.has("real")) {
    $("status").textContent = `loading the ${game} world model…`;
    const dir = `models/world-${game}`;
    const [config, vae, dynamics] = await Promise.all([
      fetchOk(`${dir}/config.json`).then((r) => r.text()),
      fetchOk(`${dir}/vae.safetensors`).then((r) => r.arrayBuffer()),
      fetchOk(`${dir}/dynamics.safetensors`).then((r) => r.arrayBuffer()),
    ]);
    neural = new NeuralGame(config, new Uint8Array(vae), new Uint8Array(dynamics), seed);
    // For measurements from the console or a test once play is paused or done
    // (`profileFrames`, `setPlayPath`).
    state.session = neural;
    state.trainedSteps = neural.trainedSteps;
    state.trained = neural.trainedSteps > 0;
  } else {
    $("neural-figure").hidden = true;
    state.trainedSteps = 0;
    state.trained = false;
  }
  state.neural = neural !== null;
  const held = trackKeys();
  touchPads(game, held);
  let paused = false;
  state.paused = false;

  let real = null;
  let run = 0;
  let loop = Promise.resolve();
  // The designer's map (Traveler): text of a gamegen-map file, or null for the random strip.
  let mapText = null;
  state.map = { text: null, neural: false, error: null };

  async function play(my) {
    if (real) real.free();
    real = null;
    if (mapText !== null) {
      try {
        real = RealGame.withMap(game, seed, mapText);
        state.map = { text: mapText, neural: false, error: null };
        $("map-status").textContent = "playing the map";
      } catch (e) {
        // A map that does not parse names its line; play goes on without it.
        state.map = { text: null, neural: false, error: String(e.message ?? e) };
        $("map-status").textContent = `map not used: ${state.map.error}`;
        mapText = null;
      }
    }
    if (!real) real = new RealGame(game, seed);
    const [w, h] = [real.width, real.height];
    const names = real.actionNames();
    if (neural) {
      if (mapText !== null && neural.hasMap) {
        neural.setPreset(real);
        state.map.neural = true;
      } else {
        neural.clearPreset();
        if (mapText !== null) $("map-status").textContent = "playing the map (the real game only: this world model has no spatial module)";
      }
      neural.reset(real.frameRgb(), real.score, real.playerX, real.playerY);
      state.mapSeenPixels = neural.mapSeenPixels;
    }
    const first = real.frameRgba();
    draw($("real"), first, w, h);
    draw($("neural"), first, w, h);
    Object.assign(state, {
      frame: 0, fps: 0, msPerFrame: 0, stepMsTotal: 0, log: [],
      realScore: real.score, neuralScore: neural ? neural.score : null, startScore: real.score, state: "playing",
    });
    if (record) state.recorded = { width: w, height: h, neural: [first], real: [first] };
    setState("playing");
    $("status").textContent = !neural
      ? params.has("real")
        ? "playing the real game only (?real in the address)"
        : `no ${game} world model has been trained yet: playing the real game only`
      : state.trained
        ? `playing (model trained for ${state.trainedSteps} dynamics steps)`
        : "playing (this model has untrained dynamics: expect noise)";
    const stamps = [];
    // Frames are paced by deadline (frame n is due GAME_FRAME_MS after frame n - 1 was due), so
    // a frame that takes 25 ms does not lose the timer's slack on top; a frame that overran by
    // more than a whole frame moves the schedule instead of bursting to catch up.
    let due = performance.now();
    while (my === run) {
      if (paused) {
        // Hold the current frame; the FPS window restarts after the pause.
        stamps.length = 0;
        await sleep(50);
        due = performance.now();
        continue;
      }
      if (state.frame >= lastFrame) {
        state.state = "done";
        setState("done");
        $("status").textContent = `stopped after ${state.frame} frames`;
        return;
      }
      const t0 = performance.now();
      const action = script ? script[state.frame] : actionFor(game, real, held);
      const realEvents = real.step(action);
      const realRgba = real.frameRgba();
      const rgba = neural ? await neural.step(action, steps) : realRgba;
      if (my !== run) return;
      const stepMs = performance.now() - t0;
      draw($("real"), realRgba, w, h);
      if (neural) draw($("neural"), rgba, w, h);
      state.frame += 1;
      state.stepMsTotal += stepMs;
      state.msPerFrame = state.stepMsTotal / state.frame;
      state.realScore = real.score;
      const ns = neural ? neural.score : null;
      const ne = neural ? neural.events : 0;
      state.neuralScore = ns;
      state.log.push({
        a: action, re: realEvents, ne, rs: real.score, ns, ms: stepMs, px: real.playerX, py: real.playerY,
      });
      if (record) {
        state.recorded.neural.push(rgba);
        state.recorded.real.push(realRgba);
      }
      stamps.push(performance.now());
      if (stamps.length > FPS_WINDOW) stamps.shift();
      if (stamps.length > 1) {
        state.fps = (1000 * (stamps.length - 1)) / (stamps[stamps.length - 1] - stamps[0]);
      }
      if (neural) $("neural-score").textContent = String(ns);
      $("real-score").textContent = String(real.score);
      $("fps").textContent = `${state.fps.toFixed(1)} FPS`;
      $("ms").textContent = `${stepMs.toFixed(0)} ms/frame`;
      $("frame").textContent = String(state.frame);
      $("action").textContent = names[action] ?? String(action);
      const ev = ne ? `neural ${ne}` : "";
      const rev = realEvents ? `real ${eventNames(realEvents).join("+")}` : "";
      $("events").textContent = [ev, rev].filter((s) => s).join(", ") || "–";
      // Never faster than game time; always yield so keys and painting get their turn.
      due = Math.max(due + GAME_FRAME_MS, performance.now() - GAME_FRAME_MS);
      await sleep(Math.max(0, due - performance.now()));
      if (game === "pacman" && real.done && my === run && script) {
        // A scripted run is one episode: a caught Pac-Man ends it (`gamegen play` reports the frame
        // as `done_at_frame`).
        state.ended = eventNames(realEvents).join("+") || "episode over";
        state.state = "done";
        setState("done");
        $("status").textContent = `${state.ended} after ${state.frame} frames`;
        return;
      }
      if (game === "pacman" && real.done && my === run) {
        // Caught by the monster: both games start again. (Pong serves again by itself.)
        state.episodes = (state.episodes ?? 1) + 1;
        $("status").textContent = `${eventNames(realEvents).join("+") || "episode over"}: starting again`;
        await sleep(500);
        restart();
        return;
      }
    }
  }

  async function restart() {
    if (paused) togglePause();
    const my = ++run;
    await loop; // a pending neural step must finish before the session is reset
    if (my !== run) return;
    loop = play(my).catch(fail);
  }

  $("steps").addEventListener("change", () => {
    steps = Number($("steps").value);
    state.steps = steps;
  });
  $("restart").addEventListener("click", () => {
    restart();
  });
  function togglePause() {
    if (state.state !== "playing" && state.state !== "paused") return;
    paused = !paused;
    state.paused = paused;
    state.state = paused ? "paused" : "playing";
    setState(state.state);
    $("pause").textContent = paused ? "Resume" : "Pause";
    $("pause").setAttribute("aria-pressed", String(paused));
  }
  $("pause").addEventListener("click", togglePause);
  window.addEventListener("keydown", (e) => {
    if (typing(e)) return;
    if (e.code === "KeyP") togglePause();
    else if (e.code === "KeyR") restart();
  });
  if (game === "traveler") {
    mapEditor((text) => {
      mapText = text;
      restart();
    });
  }
  $("screens").focus();
  offlineReady()
    .then((r) => { state.offline = r; document.body.dataset.offline = "ready"; })
    .catch((e) => { state.offline = { error: String(e.message ?? e) }; });
  await restart();
}

function fail(e) {
  console.error(e);
  $("status").textContent = `error: ${e.message ?? e}`;
  if (window.gamegen) window.gamegen.state = "error";
  document.body.dataset.state = "error";
}

main().catch(fail);
