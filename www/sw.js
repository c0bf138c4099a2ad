// Service worker: the site keeps working offline after its first load.
//
// - install: the pages, styles and scripts of every page and the wasm package's script are
//   cached up front, so each page opens offline even if it was never visited (the wasm build
//   this browser uses is stored when the first page loads it);
// - fetch: same-origin GETs go to the network first (the demo server says `no-cache` so a
//   rebuilt wasm or model is picked up at once) and every successful answer is stored; when the
//   network fails, the stored copy answers (the URL's query is ignored: `studio.html?cpu` finds
//   `studio.html`). Large files (models, the Ruffle player) are stored when a page first uses
//   them;
// - message `{cache: [urls]}`: a page lists what it loaded before this worker controlled it
//   (its first visit), and those are stored too; the reply says how many.
// Requests to other origins are never made by these pages (the CSP forbids them) and are not
// touched here.
const CACHE = "gamegen-v2";
const SHELL = [
  "./", "index.html", "play.html", "studio.html", "ae.html", "style.css", "favicon.svg",
  "js/backend.js", "js/index.js", "js/play.js", "js/ae.js", "js/studio.js", "js/preview.js",
  "js/offline.js", "pkg/gamegen_wasm.js", "models/index.json",
];
// The wasm package is not in the shell: the browser loads one of its two builds (relaxed SIMD
// or not, see js/backend.js), and the page that loaded it lists it for storing (below).

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(CACHE).then((c) => c.addAll(SHELL)).then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil((async () => {
    for (const name of await caches.keys()) if (name !== CACHE) await caches.delete(name);
    await self.clients.claim();
  })());
});

function sameOrigin(url) {
  return new URL(url, self.location.href).origin === self.location.origin;
}

async function store(request, response) {
  if (response.ok && response.status === 200 && response.type === "basic") {
    const cache = await caches.open(CACHE);
    await cache.put(request, response);
  }
}

self.addEventListener("fetch", (event) => {
  const req = event.request;
  if (req.method !== "GET" || !sameOrigin(req.url)) return;
  event.respondWith((async () => {
    try {
      const res = await fetch(req);
      event.waitUntil(store(req, res.clone()).catch(() => {}));
      return res;
    } catch (e) {
      const hit = await caches.match(req, { ignoreSearch: true });
      if (hit) return hit;
      throw e;
    }
  })());
});

self.addEventListener("message", (event) => {
  const urls = (event.data && Array.isArray(event.data.cache) ? event.data.cache : [])
    .filter((u) => typeof u === "string" && sameOrigin(u));
  event.waitUntil((async () => {
    const cache = await caches.open(CACHE);
    let stored = 0;
    for (const u of new Set(urls)) {
      if (await cache.match(u, { ignoreSearch: false })) {
        stored++;
        continue;
      }
      try {
        const res = await fetch(u);
        if (res.ok && res.status === 200) {
          await cache.put(u, res);
          stored++;
        }
      } catch (e) {
        // Offline already: nothing to add.
      }
    }
    if (event.source) event.source.postMessage({ cached: stored, asked: urls.length });
  })());
});
