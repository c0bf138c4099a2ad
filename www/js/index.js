import { ensureBackend } from "./backend.js";

ensureBackend()
  .then((b) => { document.getElementById("backend").textContent = b; })
  .catch((e) => {
    console.error(e);
    document.getElementById("backend").textContent = `unavailable: ${e.message ?? e}`;
  });
