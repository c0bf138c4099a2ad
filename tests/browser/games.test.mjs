// The real games on the play page (`?real`: no world model), driven by the keyboard. Checks what
// a player sees: the keys move the player the right way, the canvas shows the game's frame, and
// the page has no console errors.
import { openPage, assert } from "./run.mjs";
import { join } from "node:path";

const HALF = 24;

/** Play `game` for 2 * HALF frames, holding `first` then `second`; returns the page's log. */
async function playKeys(ctx, game, first, second) {
  const page = await openPage(ctx, `play.html?game=${game}&real&frames=${2 * HALF}&record`);
  await page.waitForFunction(() => ["playing", "done", "error"].includes(document.body.dataset.state),
    null, { timeout: 60000 });
  await page.keyboard.down(first);
  await page.waitForFunction((f) => window.gamegen.frame >= f || document.body.dataset.state !== "playing",
    HALF, { timeout: 60000, polling: 5 });
  await page.keyboard.up(first);
  await page.keyboard.down(second);
  await page.waitForFunction(() => document.body.dataset.state !== "playing", null, { timeout: 60000 });
  await page.keyboard.up(second);
  const state = await page.evaluate(() => document.body.dataset.state);
  assert(state === "done", `${game}: page state ${state}: ${await page.textContent("#status")}`);
  const g = await page.evaluate(() => {
    const rec = window.gamegen.recorded;
    const c = document.getElementById("real");
    const shown = Array.from(c.getContext("2d").getImageData(0, 0, c.width, c.height).data);
    const last = Array.from(rec.real[rec.real.length - 1]);
    const firstFrame = Array.from(rec.real[0]);
    return {
      log: window.gamegen.log, neural: window.gamegen.neural,
      neuralHidden: document.getElementById("neural-figure").hidden,
      shownIsLast: shown.length === last.length && shown.every((v, i) => v === last[i]),
      changed: last.some((v, i) => v !== firstFrame[i]),
      width: c.width, height: c.height,
    };
  });
  assert(g.neural === false && g.neuralHidden, `${game}: ?real still ran or showed the neural game`);
  assert(g.width === 128 && g.height === 128, `${game}: canvas is ${g.width}x${g.height}, expected 128x128`);
  assert(g.shownIsLast, `${game}: the canvas does not show the last real frame`);
  assert(g.changed, `${game}: the picture never changed`);
  await page.screenshot({ path: join(ctx.artifacts, `real-${game}.png`) });
  page.assertClean();
  await page.close();
  return g.log;
}

export const tests = {
  async "pong: W and S move the left paddle up, then down"(ctx) {
    const log = await playKeys(ctx, "pong", "KeyW", "KeyS");
    const y0 = log[0].py;
    const yMid = log[HALF - 1].py;
    const yEnd = log[log.length - 1].py;
    assert(log.slice(3, HALF - 2).every((e) => e.a === 3), `pong: W did not map to the left paddle's up (${log.map((e) => e.a)})`);
    assert(yMid < y0, `pong: the left paddle did not rise under W (${y0} -> ${yMid})`);
    assert(yEnd > yMid, `pong: the left paddle did not fall under S (${yMid} -> ${yEnd})`);
    return { y0, yMid, yEnd };
  },
  async "pac-man: the arrow keys move Pac-Man"(ctx) {
    const log = await playKeys(ctx, "pacman", "ArrowLeft", "ArrowRight");
    // Pac-Man (2 px per frame) never moves against the arrow held, never leaves its row under
    // left/right only, and does move. (A restart after being caught starts a new log.)
    const LEFT = 3;
    const RIGHT = 4;
    let moved = 0;
    for (let k = 1; k < log.length; k++) {
      const dx = log[k].px - log[k - 1].px;
      const dy = log[k].py - log[k - 1].py;
      assert(dy === 0, `pac-man: moved vertically (${dy}) under left/right at frame ${k}`);
      if (log[k].a === LEFT) assert(dx <= 0, `pac-man: moved right (${dx}) while left was held, frame ${k}`);
      if (log[k].a === RIGHT) assert(dx >= 0, `pac-man: moved left (${dx}) while right was held, frame ${k}`);
      moved += Math.abs(dx);
    }
    assert(moved >= 8, `pac-man: moved only ${moved} px under the arrow keys`);
    return { frames: log.length, movedPx: moved };
  },
};
