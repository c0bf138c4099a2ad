// Registers the service worker (../sw.js) so every page works offline after its first load,
// and hands it the files this page fetched before the worker controlled it (the first visit).
// `offlineReady()` resolves to `{cached, asked}` once those are stored; the page shows it and
// the end-to-end test waits for it before going offline.

let readyPromise = null;

function loadedUrls() {
  const own = location.href.split("#")[0];
  const entries = performance.getEntriesByType("resource").map((e) => e.name);
  return [own, ...entries].filter((u) => u.startsWith(location.origin) && !u.startsWith(location.origin + "/sw.js"));
}

/** Ask the active worker to store `urls` (plus what this page loaded so far). */
export async function cacheForOffline(urls = []) {
  if (!("serviceWorker" in navigator)) return { cached: 0, asked: 0, unsupported: true };
  const reg = await navigator.serviceWorker.ready;
  const worker = reg.active;
  if (!worker) return { cached: 0, asked: 0 };
  const list = [...loadedUrls(), ...urls.map((u) => new URL(u, location.href).href)];
  return new Promise((ok) => {
    const channel = (e) => {
      if (e.data && typeof e.data.cached === "number") {
        navigator.serviceWorker.removeEventListener("message", channel);
        ok(e.data);
      }
    };
    navigator.serviceWorker.addEventListener("message", channel);
    navigator.serviceWorker.startMessages();
    worker.postMessage({ cache: list });
  });
}

/** Register the worker once per page; resolves when this page's files are stored. */
export function offlineReady() {
  if (!readyPromise) {
    readyPromise = (async () => {
      if (!("serviceWorker" in navigator)) return { cached: 0, asked: 0, unsupported: true };
      await navigator.serviceWorker.register("sw.js");
      return cacheForOffline();
    })();
  }
  return readyPromise;
}
