// The play page's on-screen controls, pause and reset, on the real Traveler (`?real`, so the
// test does not depend on the world model's speed): holding the on-screen ▶ button walks right
// like the arrow key, Pause holds the frame counter, Resume continues, Reset starts again.
import { join } from "node:path";
import { openPage, assert } from "./run.mjs";

const RIGHT = 2; // Traveler's actions: stay, left, right

export const tests = {
  async "play: on-screen buttons steer, pause holds, reset restarts"(ctx) {
    const page = await openPage(ctx, "play.html?game=traveler&real");
    await page.waitForFunction(() => ["playing", "error"].includes(document.body.dataset.state), null, { timeout: 60000 });
    const button = page.locator('#touch button[data-code="ArrowRight"]');
    assert(await button.count() === 1, "no on-screen ▶ button for Traveler");
    // Hold the button with pointer events (what a finger sends), then let go.
    const from = await page.evaluate(() => window.gamegen.frame);
    await button.dispatchEvent("pointerdown", { pointerId: 7, pointerType: "touch", isPrimary: true, button: 0, buttons: 1 });
    await page.waitForFunction((f) => window.gamegen.frame >= f + 12, from, { timeout: 30000, polling: 10 });
    await button.dispatchEvent("pointerup", { pointerId: 7, pointerType: "touch", isPrimary: true, button: 0, buttons: 0 });
    const held = await page.evaluate((f) => window.gamegen.log.slice(f + 2), from);
    const rightFrames = held.filter((e) => e.a === RIGHT).length;
    assert(rightFrames >= 8, `the ▶ button gave ${rightFrames} 'right' frames of ${held.length}`);
    const moved = held[held.length - 1].px - held[0].px;
    assert(moved > 0, `the traveler did not move right under the ▶ button (${moved} px)`);
    await page.waitForTimeout(150);
    const released = await page.evaluate(() => window.gamegen.log.slice(-3).map((e) => e.a));
    assert(released.every((a) => a !== RIGHT), `still walking right after release: ${released}`);

    // Pause: the frame counter stops; Resume: it runs again.
    await page.click("#pause");
    await page.waitForFunction(() => document.body.dataset.state === "paused", null, { timeout: 5000 });
    const p0 = await page.evaluate(() => window.gamegen.frame);
    await page.waitForTimeout(500);
    const p1 = await page.evaluate(() => window.gamegen.frame);
    assert(p1 - p0 <= 1, `frames advanced while paused: ${p0} -> ${p1}`);
    assert((await page.textContent("#pause")) === "Resume", "the pause button does not offer Resume");
    await page.click("#pause");
    await page.waitForFunction((f) => window.gamegen.frame > f + 5, p1, { timeout: 10000 });

    // Reset (the R key): a new run from frame 0.
    const before = await page.evaluate(() => window.gamegen.frame);
    await page.keyboard.press("KeyR");
    await page.waitForFunction((b) => window.gamegen.frame < b && document.body.dataset.state === "playing", before, { timeout: 10000, polling: 5 });
    await page.screenshot({ path: join(ctx.artifacts, "play-controls.png") });
    page.assertClean();
    await page.close();
    return { rightFrames, movedPx: moved, framesWhilePaused: p1 - p0 };
  },
};
