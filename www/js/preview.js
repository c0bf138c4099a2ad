// The Ruffle web player (npm `@ruffle-rs/ruffle`, copied into www/ruffle by
// `cargo xtask build-web`), self-hosted on this origin and locked down for untrusted files:
// no networking, no opening URLs, no script access, no fullscreen, sound off until the user
// turns it on. One player at a time; each file gets a fresh one.
//
// `?renderer=canvas|webgl|wgpu-webgl|webgpu` picks Ruffle's renderer (default: Ruffle's own
// choice). The canvas renderer is the one whose pixels a page can read back, which the
// end-to-end test uses.

const MAX_W = 480;
const MAX_H = 360;

let loading = null;

function config() {
  const renderer = new URLSearchParams(location.search).get("renderer");
  const c = {
    publicPath: new URL("ruffle/", location.href).href,
    polyfills: false,
    autoplay: "on",
    unmuteOverlay: "hidden",
    splashScreen: false,
    contextMenu: "rightClickOnly",
    warnOnUnsupportedContent: false,
    showSwfDownload: false,
    allowFullscreen: false,
    allowNetworking: "none",
    openUrlMode: "deny",
    allowScriptAccess: false,
    upgradeToHttps: false,
    favorFlash: false,
    socketProxy: [],
    credentialAllowList: [],
    logLevel: "error",
    // A script stuck in a loop blocks the page: give up on it after 5 s.
    maxExecutionDuration: 5,
    letterbox: "on",
  };
  if (renderer) c.preferredRenderer = renderer;
  return c;
}

/** Load ruffle.js once (a classic script); resolves to the Ruffle API. */
export function loadRuffle() {
  if (!loading) {
    loading = new Promise((ok, fail) => {
      window.RufflePlayer = window.RufflePlayer || {};
      window.RufflePlayer.config = config();
      const s = document.createElement("script");
      s.src = "ruffle/ruffle.js";
      s.onload = () => {
        if (window.RufflePlayer && typeof window.RufflePlayer.newest === "function") ok(window.RufflePlayer);
        else fail(new Error("ruffle/ruffle.js loaded but defines no player"));
      };
      s.onerror = () => fail(new Error("cannot load ruffle/ruffle.js (run `cargo xtask build-web`, which copies the npm package into www/ruffle)"));
      document.head.append(s);
    });
  }
  return loading;
}

/** A preview area: `show(bytes, name, stage)` replaces the player, `setSound(on)`. */
export class Preview {
  constructor(container) {
    this.container = container;
    this.player = null;
    this.sound = false;
  }

  clear() {
    if (this.player) this.player.remove();
    this.player = null;
  }

  setSound(on) {
    this.sound = on;
    if (this.player) this.player.volume = on ? 1 : 0;
  }

  /** Play `bytes`; `stage` = {width, height} from the validator sizes the player. Resolves to
   * Ruffle's metadata, rejects with Ruffle's reason when it refuses the file. */
  async show(bytes, name, stage) {
    const ruffle = await loadRuffle();
    this.clear();
    const el = ruffle.newest().createPlayer();
    const w = stage && stage.width > 0 ? stage.width : 550;
    const h = stage && stage.height > 0 ? stage.height : 400;
    const s = Math.min(MAX_W / w, MAX_H / h, 1.5);
    el.style.width = `${Math.max(16, Math.round(w * s))}px`;
    el.style.height = `${Math.max(16, Math.round(h * s))}px`;
    el.style.display = "block";
    const mute = () => { el.volume = this.sound ? 1 : 0; };
    el.addEventListener("loadedmetadata", mute);
    this.container.append(el);
    this.player = el;
    await el.ruffle().load({ data: bytes, swfFileName: name });
    mute();
    return el.ruffle().metadata ?? null;
  }

  /** The player's canvas (canvas renderer only yields readable pixels). */
  canvas() {
    return this.player && this.player.shadowRoot ? this.player.shadowRoot.querySelector("canvas") : null;
  }

  /** Did Ruffle show its panic screen? */
  panicked() {
    return !!(this.player && this.player.shadowRoot && this.player.shadowRoot.querySelector("#panic"));
  }

  /** Pixel summary of the canvas: size, distinct colours, the most common colour and its share;
   * null when the pixels cannot be read (not the canvas renderer, or no frame yet). */
  pixels() {
    const c = this.canvas();
    if (!c || c.width === 0 || c.height === 0) return null;
    const ctx = c.getContext("2d");
    if (!ctx) return null;
    const d = ctx.getImageData(0, 0, c.width, c.height).data;
    const counts = new Map();
    for (let i = 0; i < d.length; i += 4) {
      const key = (d[i] << 16) | (d[i + 1] << 8) | d[i + 2];
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
    let top = 0;
    let topCount = -1;
    for (const [k, n] of counts) if (n > topCount) { top = k; topCount = n; }
    const hex = "#" + top.toString(16).padStart(6, "0");
    return { width: c.width, height: c.height, colours: counts.size, dominant: hex, dominantShare: topCount / (d.length / 4) };
  }
}
