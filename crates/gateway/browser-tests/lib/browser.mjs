// What the browser tests share: Debian's Chromium, headless, through playwright-core; pages
// whose console errors, uncaught exceptions, failed requests and 5xx answers are recorded (a
// test ends by asserting there were none); screenshots kept as files.

import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const here = path.dirname(fileURLToPath(import.meta.url));
export const SCREENSHOTS = process.env.IXN_SCREENSHOTS || path.resolve(here, "../../../../target/console-screenshots");
const CHROMIUM = process.env.IXN_CHROMIUM || "/usr/bin/chromium";

/** Starts Chromium (headless, no network of its own beyond localhost). */
export function launch() {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
}

/** A new page (its own cookies) at `viewport`, with its problems recorded in `page.problems`. */
export async function newPage(browser, viewport = { width: 1280, height: 800 }) {
  const context = await browser.newContext({ viewport });
  const page = await context.newPage();
  page.problems = [];
  page.on("console", (m) => { if (m.type() === "error") page.problems.push(`console error: ${m.text()}`); });
  page.on("pageerror", (e) => page.problems.push(`uncaught: ${e.message}`));
  page.on("requestfailed", (r) => {
    if (!page.closing) page.problems.push(`request failed: ${r.method()} ${r.url()} ${r.failure()?.errorText}`);
  });
  page.on("response", (r) => { if (r.status() >= 400) page.problems.push(`HTTP ${r.status()}: ${r.request().method()} ${r.url()}`); });
  return page;
}

/** Asserts the page had no problems, then closes it. */
export async function finish(page) {
  assert.deepEqual(page.problems, [], "the browser saw console errors or failed requests");
  page.closing = true;
  await page.context().close();
}

/** Saves a screenshot as `name`.png. */
export async function shot(page, name) {
  mkdirSync(SCREENSHOTS, { recursive: true });
  await page.screenshot({ path: path.join(SCREENSHOTS, `${name}.png`), fullPage: true });
}

/** Signs in with the form, by keyboard (as a person without a mouse would). */
export async function signIn(page, http, agent, password, place = "") {
  await page.goto(`http://${http}/console/`);
  await page.getByLabel("Agent id").focus();
  await page.keyboard.type(agent);
  await page.keyboard.press("Tab");
  await page.keyboard.type(password);
  await page.keyboard.press("Tab");
  if (place) await page.keyboard.type(place);
  await page.keyboard.press("Enter");
  await page.getByRole("button", { name: "Sign out" }).waitFor();
}
