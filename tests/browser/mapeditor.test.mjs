// The Traveler map editor on the play page (MaaG's designer control): editing slots through the
// buttons rewrites the map text; "Play this map" restarts the real game on the designed strip
// (checked on its pixels: an all-red strip shows red buildings where a random one shows others);
// a world model with the spatial module is shown the map before play (its external map holds
// more than the first frame); a map that does not parse is reported with its line and play goes
// on without it.
import { join } from "node:path";
import { openPage, assert } from "./run.mjs";

const RED = [214, 48, 49];
const RED_STRIP = "gamegen-map 1\ngame traveler\nstart 3\noutside empty\nstrip\nRRRRRRRRRRRRRRRRRRRR\n";

/** Fraction of the real canvas's building rows (36..80) that are the red of the strip. */
function redShare(red) {
  const c = document.getElementById("real");
  const d = c.getContext("2d").getImageData(0, 36, c.width, 44).data;
  let n = 0;
  for (let i = 0; i < d.length; i += 4) {
    if (Math.abs(d[i] - red[0]) + Math.abs(d[i + 1] - red[1]) + Math.abs(d[i + 2] - red[2]) < 12) n++;
  }
  return n / (d.length / 4);
}

async function restartedOn(page, frameBefore) {
  await page.waitForFunction(
    (f) => document.body.dataset.state === "playing" && window.gamegen.frame < f && window.gamegen.frame >= 2,
    frameBefore, { timeout: 60000, polling: 20 });
}

export const tests = {
  async "play: the Traveler map editor designs the strip both games play on"(ctx) {
    const page = await openPage(ctx, "play.html?game=traveler&cpu");
    await page.waitForFunction(() => ["playing", "error"].includes(document.body.dataset.state), null, { timeout: 120000 });
    assert(await page.evaluate(() => document.body.dataset.state) === "playing", "the play page did not start");
    assert(await page.locator("#map-editor").isVisible(), "no map editor for Traveler");
    await page.click("#map-editor summary");

    // Buttons edit the text: slot 0 becomes a blue tall building.
    await page.click('#map-slots button[data-slot="0"]');
    await page.click('#map-palette button[data-key="B"]');
    const strip = await page.evaluate(() => {
      const lines = document.getElementById("map-text").value.split("\n");
      return lines[lines.findIndex((l) => l.split("#")[0].trim() === "strip") + 1];
    });
    assert(strip.startsWith("B"), `slot 0 is not B after the edit: ${strip}`);

    // A random strip first, then the all-red designed one.
    const randomRed = await page.evaluate(redShare, RED);
    await page.fill("#map-text", RED_STRIP);
    let before = await page.evaluate(() => window.gamegen.frame);
    await page.click("#map-apply");
    await restartedOn(page, before + 1);
    const map = await page.evaluate(() => window.gamegen.map);
    assert(map.text === RED_STRIP && !map.error, `map not applied: ${JSON.stringify(map)}`);
    const designedRed = await page.evaluate(redShare, RED);
    assert(designedRed > 0.3 && designedRed > randomRed + 0.15,
      `the real game does not show the red strip: ${designedRed.toFixed(2)} red (random strip ${randomRed.toFixed(2)})`);
    const hasMap = await page.evaluate(() => window.gamegen.neural && window.gamegen.mapSeenPixels > 0);
    const seen = await page.evaluate(() => window.gamegen.mapSeenPixels ?? 0);
    if (hasMap) {
      // The preset covers 20 slots (320 px) of 76 world rows, far more than one 96-px frame.
      assert(map.neural, "the spatial world model was not given the map");
      assert(seen >= 320 * 76, `the model's map holds ${seen} pixels, less than the designed strip`);
    } else {
      assert(!map.neural, "a model without a spatial module reports a preset");
    }
    await page.screenshot({ path: join(ctx.artifacts, "play-map-editor.png") });

    // A broken map: one line naming the problem, and play goes on on a random strip.
    await page.fill("#map-text", "gamegen-map 1\ngame traveler\nstrip\nRR?R\n");
    before = await page.evaluate(() => window.gamegen.frame);
    await page.click("#map-apply");
    await restartedOn(page, before + 1);
    const status = await page.textContent("#map-status");
    assert(/map not used: .*line 4/.test(status), `no line-naming error for a bad map: '${status}'`);
    assert(await page.evaluate(() => window.gamegen.map.text === null), "a broken map was kept");

    // No map: back to the episode's random strip.
    before = await page.evaluate(() => window.gamegen.frame);
    await page.click("#map-clear");
    await restartedOn(page, before + 1);
    page.assertClean();
    await page.close();
    return { designedRed, randomRed, neuralPreset: map.neural, mapSeenPixels: seen };
  },
};
