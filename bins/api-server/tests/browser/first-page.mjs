// How long the dashboard takes to draw its first page, in headless Chromium (for xtask's `bench-api
// --browser`, built with `--features bench-db`; a measurement, not a test): node first-page.mjs <base url> <runs>
// Prints, per page, the median and the slowest time from navigation start to the first row drawn.
import { chromium } from "playwright-core";

const [base, runsArg] = process.argv.slice(2);
const runs = Number(runsArg || 10);
const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || "/usr/bin/chromium", args: ["--no-sandbox", "--disable-gpu"] });
const page = await (await browser.newContext()).newPage();
for (const [path, selector] of [["/anomalies", "#anomaly-table tbody tr"], ["/", "#alert-panel li[data-id]"]]) {
  const times = [];
  for (let i = 0; i < runs; i++) {
    await page.goto(`${base}${path}`, { waitUntil: "commit" });
    await page.waitForSelector(selector);
    times.push(await page.evaluate(() => performance.now()));
  }
  times.sort((a, b) => a - b);
  console.log(`${path}: first rows drawn in ${times[Math.floor(times.length / 2)].toFixed(0)} ms (median of ${runs}), slowest ${times[times.length - 1].toFixed(0)} ms`);
}
await browser.close();
