// The dashboard in a real browser (Debian's headless Chromium through playwright-core), against a
// running api-server: node e2e.mjs <base url> <screenshot dir> <viewer key> <admin key> <incident id> <hostile name>
// (an open incident seeded by ../browser.rs, whose probable origin is a service named <hostile name>)
// Exits non-zero on the first expectation that does not hold. Started by ../browser.rs.
import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";

const [base, shots, viewerKey, adminKey, incidentId, hostileName] = process.argv.slice(2);
mkdirSync(shots, { recursive: true });
const executablePath = process.env.CHROMIUM || "/usr/bin/chromium";

function expect(cond, what) {
  if (!cond) throw new Error(`expected: ${what}`);
  console.log(`ok - ${what}`);
}

/** A latency incident of `service`, as an SDK sends it (OTLP/JSON): three minutes of ordinary
 * traffic, then a minute in which 9 requests in 10 are five times slower, in windows ahead of the
 * server's clock (earlier ones are closed), and one span two minutes later that moves event time past
 * the slow minute, so that it is judged (a window is judged once closed and its traces complete). */
function slowAfterNormal(service, operation) {
  const minute = 60e9;
  const first = (Math.floor(Date.now() / 60000) + 1) * minute;
  const spans = [];
  const span = (i, start, ms) => {
    const id = (i + 1).toString(16).padStart(16, "0");
    spans.push({
      traceId: (Date.now() % 1e9).toString(16).padStart(16, "0") + id, spanId: id, name: operation, kind: 2,
      startTimeUnixNano: String(start), endTimeUnixNano: String(start + Math.round(ms * 1e6)),
    });
  };
  for (let w = 0; w < 4; w++) {
    for (let i = 0; i < 200; i++) {
      const ordinary = 20 * (1 + 0.2 * (((i * 7919) % 100) / 100 - 0.5));
      const slow = w === 3 && i % 10 !== 9;
      span(w * 1000 + i, first + w * minute + i * (minute / 200), slow ? 5 * ordinary : ordinary);
    }
  }
  span(9999, first + 6 * minute, 20);
  return { resourceSpans: [{ resource: { attributes: [{ key: "service.name", value: { stringValue: service } }] },
    scopeSpans: [{ spans }] }] };
}

const browser = await chromium.launch({ executablePath, args: ["--no-sandbox", "--disable-gpu"] });
const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
const page = await context.newPage();
const problems = [];
page.on("dialog", (d) => { problems.push(`a dialog opened: ${d.message()}`); d.dismiss(); });
page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
// The browser logs every answer that is not 2xx; 401 (before the token) and 422 (the invalid value
// below) are expected.
page.on("console", (m) => { if (m.type() === "error" && !/status of (401|422)/.test(m.text())) problems.push(`console: ${m.text()}`); });

try {
  // Access: the server requires a token, and the page asks for one.
  await page.goto(`${base}/`);
  await page.waitForSelector("#token-dialog[open]");
  expect(true, "the page asks for a token");
  await page.fill("#token-input", viewerKey);
  await page.press("#token-input", "Enter");
  await page.waitForSelector("#alert-panel li[data-id]");
  expect((await page.textContent("#who")).includes("viewer"), "a viewer is signed in");

  // A viewer sees no resolve or config controls.
  await page.click("#alert-panel li[data-id] a");
  await page.waitForSelector("#metric-chart");
  expect((await page.$$("#resolve-button")).length === 0, "a viewer has no Resolve button");
  await page.click('nav a[data-nav="config"]');
  await page.waitForSelector("#config-form");
  expect((await page.$$('#config-form button[type="submit"]')).length === 0, "a viewer has no Save button");
  expect(await page.isDisabled("#cfg-latency_threshold_stddev"), "a viewer's config fields are read only");
  await page.goto(`${base}/incidents/${incidentId}`);
  await page.waitForSelector("#service-map");
  expect((await page.$$("#incident-resolve-button")).length === 0, "a viewer cannot resolve an incident");

  // Sign in again as an admin.
  await page.evaluate(() => sessionStorage.clear());
  await page.goto(`${base}/`);
  await page.waitForSelector("#token-dialog[open]");
  await page.fill("#token-input", adminKey);
  await page.press("#token-input", "Enter");

  // Supervisor: the alert panel, counts, chart; keyboard: the first Tab reaches the skip link.
  await page.waitForSelector("#alert-panel li[data-id]");
  await page.waitForSelector("#types-chart svg");
  const critical = Number(await page.textContent('[data-severity="CRITICAL"]'));
  expect(critical >= 1, `the CRITICAL count is shown (${critical})`);
  const panelRows = (await page.$$("#alert-panel li[data-id]")).length;
  expect(panelRows >= 2, `the alert panel lists the open HIGH and CRITICAL anomalies (${panelRows})`);
  await page.keyboard.press("Tab");
  expect(await page.evaluate(() => document.activeElement.className === "skip"), "the first Tab reaches the skip link");

  // Supervisor: open incidents above the alerts, the seeded one (CRITICAL, newest) first, names as text.
  await page.waitForSelector(`#incident-list tr[data-id="${incidentId}"]`);
  expect(await page.evaluate(() => {
    const [incidents, alerts] = [document.getElementById("open-incidents"), document.getElementById("alert-panel")];
    return !!(incidents.compareDocumentPosition(alerts) & Node.DOCUMENT_POSITION_FOLLOWING);
  }), "the open incidents come before the alert panel");
  expect(await page.getAttribute("#incident-list tbody tr:first-child", "data-id") === incidentId, "the seeded incident is listed first");
  const listed = await page.$eval(`#incident-list tr[data-id="${incidentId}"]`, (tr) => ({ origin: tr.querySelector(".origin").textContent, text: tr.textContent }));
  expect(listed.origin === `${hostileName} · <b>POST /pay</b>`, `its probable origin shows as text (${listed.origin})`);
  expect(listed.text.includes("4: frontend") && listed.text.includes("min ago"), `its services and age are shown (${listed.text})`);
  expect((await page.$$("#open-incidents img, #open-incidents b")).length === 0, "no element was made from an incident's text");

  await page.screenshot({ path: `${shots}/supervisor.png`, fullPage: true });

  // A new anomaly appears in the alert panel without a reload.
  await page.waitForSelector("#live-state.on");
  await page.evaluate(() => { window.__notReloaded = true; });
  const resp = await fetch(`${base}/v1/traces`, { method: "POST",
    headers: { "Content-Type": "application/json", Authorization: `Bearer ${adminKey}` },
    body: JSON.stringify(slowAfterNormal("live-checkout", "GET /live")) });
  expect(resp.status === 200, `OTLP traffic is accepted (${resp.status})`);
  await page.waitForFunction(() => [...document.querySelectorAll("#alert-panel li")].some((li) => li.textContent.includes("live-checkout")), null, { timeout: 20000 });
  expect(await page.evaluate(() => window.__notReloaded === true), "the new anomaly appeared live, without a reload");
  await page.waitForFunction(() => [...document.querySelectorAll("#incident-list tr")].some((tr) => tr.textContent.includes("live-checkout")), null, { timeout: 20000 });
  expect(await page.evaluate(() => window.__notReloaded === true), "its incident appeared live among the open incidents");
  await page.screenshot({ path: `${shots}/supervisor-live.png`, fullPage: true });

  // Anomalies: the table, escaping of hostile span text, filters held in the URL.
  await page.click('nav a[data-nav="anomalies"]');
  await page.waitForSelector("#anomaly-table tbody tr");
  const hostile = await page.evaluate(() => [...document.querySelectorAll("#anomaly-table td")].some((td) => td.textContent.includes("<img src=x onerror=alert(1)>")));
  expect(hostile, "a span named <img src=x onerror=alert(1)> shows as text");
  expect((await page.$$("#anomaly-table img")).length === 0, "no element was made from span text");
  await page.selectOption("#f-severity", "CRITICAL");
  await page.click('form.filters button[type="submit"]');
  await page.waitForURL(/severity=CRITICAL/);
  await page.waitForSelector("#anomaly-table tbody tr");
  const severities = await page.$$eval("#anomaly-table tbody tr .sev", (els) => els.map((e) => e.textContent));
  expect(severities.length > 0 && severities.every((s) => s === "CRITICAL"), `the filter holds (${severities.join(",")})`);
  await page.reload();
  await page.waitForSelector("#anomaly-table tbody tr");
  expect(await page.inputValue("#f-severity") === "CRITICAL", "a shared URL restores the filters");
  await page.click('th button:has-text("Service")');
  expect(await page.getAttribute('th[aria-sort="ascending"]', "aria-sort") === "ascending", "a column sorts");
  await page.screenshot({ path: `${shots}/anomalies.png`, fullPage: true });

  // Detail: chart with the anomalous point, trace link, then Resolve with notes.
  await page.click("#anomaly-table tbody tr a");
  await page.waitForSelector("#metric-chart .anomalous-point");
  expect((await page.textContent("#description")).length > 10, "the detail shows the description");
  await page.screenshot({ path: `${shots}/detail.png`, fullPage: true });
  await page.fill("#resolve-notes", "scaled up <db>");
  await page.click("#resolve-button");
  await page.waitForFunction(() => document.getElementById("status").textContent.startsWith("resolved"));
  expect(true, "Resolve marks it resolved");

  // Configuration: the API's validation message next to the field, then a good value saved.
  await page.click('nav a[data-nav="config"]');
  await page.waitForSelector("#config-form");
  await page.fill("#cfg-latency_threshold_stddev", "-1");
  await page.click('#config-form button[type="submit"]');
  await page.waitForFunction(() => document.getElementById("cfg-latency_threshold_stddev-error").textContent.length > 0);
  expect(true, `the field shows the API's message: ${await page.textContent("#cfg-latency_threshold_stddev-error")}`);
  await page.fill("#cfg-latency_threshold_stddev", "3.5");
  await page.click('#config-form button[type="submit"]');
  await page.waitForFunction(() => document.querySelector('#config-form [role="status"]').textContent.startsWith("Saved"));
  expect(true, "a valid value is saved");
  await page.screenshot({ path: `${shots}/config.png`, fullPage: true });

  // The incident page: origins with evidence, the services drawing, its anomalies, traces, Resolve.
  await page.click('nav a[data-nav="supervisor"]');
  await page.click(`#incident-list tr[data-id="${incidentId}"] a`);
  await page.waitForSelector("#service-map");
  expect((await page.textContent("#incident-title")) === `${hostileName}: latency degradation`, "the title shows the hostile name as text");
  const origins = await page.$$eval("#origins li", (lis) => lis.map((li) => ({ probable: li.classList.contains("probable"), text: li.textContent })));
  expect(origins.length === 2 && origins[0].probable && !origins[1].probable, "two ranked origins, the first marked");
  expect(origins[0].text.includes(hostileName) && origins[0].text.includes("probable origin"), `the first is the probable origin (${origins[0].text})`);
  expect(origins[0].text.includes(`${hostileName}: own time ×5.8 (p99 41 ms → 240 ms)`), "its evidence is shown");
  expect(origins[1].text.includes("payments: slower only while its caller is"), "the second origin's evidence is shown");
  const map = await page.evaluate(() => {
    const svg = document.getElementById("service-map");
    const nodes = [...svg.querySelectorAll("g.node")];
    const origin = svg.querySelectorAll("g.node.origin");
    return {
      nodes: nodes.map((g) => g.dataset.service), origins: origin.length,
      originService: origin[0] && origin[0].dataset.service, originText: origin[0] && origin[0].textContent,
      originFill: origin[0] && origin[0].querySelector("rect").getAttribute("fill"),
      plainFill: svg.querySelector("g.node:not(.origin) rect").getAttribute("fill"),
      names: [...svg.querySelectorAll("text.name")].map((t) => t.textContent),
      calls: [...svg.querySelectorAll("path.call")].map((p) => `${p.dataset.caller}>${p.dataset.callee}`),
      arrows: [...svg.querySelectorAll("path.call")].every((p) => p.getAttribute("marker-end") === "url(#arrow)"),
      injected: svg.querySelectorAll("img, foreignObject").length,
    };
  });
  expect(map.nodes.length === 4 && ["frontend", hostileName, "checkout", "payments"].every((n) => map.nodes.includes(n)), `the drawing has one node per service (${map.nodes.join(", ")})`);
  expect(map.origins === 1 && map.originService === hostileName && map.originText.includes("probable origin"), "the origin node is marked and labelled");
  expect(map.originFill !== map.plainFill, "the origin node has its own colour");
  expect(map.names.includes(hostileName), "the hostile service name is drawn as text");
  expect(map.calls.length === 4 && map.calls.includes(`frontend>${hostileName}`) && map.arrows, `the calls are arrows (${map.calls.join(", ")})`);
  expect(map.injected === 0 && (await page.$$("main img, main b")).length === 0, "no element was made from the incident's text");
  expect((await page.getAttribute("#incident-traces a", "href")).includes("4bf92f3577b34da6a3ce929d0e0e4736"), "an example trace links to the trace viewer");
  await page.screenshot({ path: `${shots}/incident.png`, fullPage: true });
  await page.click("#incident-anomalies tbody tr a");
  await page.waitForSelector("#incident-link");
  expect((await page.textContent("#incident-link")).startsWith("Part of incident"), "its anomaly links back to the incident");
  await page.click("#incident-link");
  await page.waitForSelector("#incident-resolve-button");
  await page.fill("#incident-resolve-notes", "rolled back <b>");
  await page.click("#incident-resolve-button");
  await page.waitForFunction(() => document.getElementById("incident-status").textContent.startsWith("resolved"));
  expect((await page.$$("#incident-resolve-button")).length === 0, "Resolve marks the incident resolved");
  await page.click('nav a[data-nav="supervisor"]');
  await page.waitForSelector("#incident-list, #incident-empty");
  expect((await page.$$(`#incident-list tr[data-id="${incidentId}"]`)).length === 0, "a resolved incident leaves the open incidents");

  // A phone-sized screen: nothing wider than the screen.
  await page.setViewportSize({ width: 390, height: 844 });
  await page.click('nav a[data-nav="anomalies"]');
  await page.waitForSelector("#anomaly-table tbody tr");
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  expect(overflow <= 1, `the page fits a phone-sized screen (overflow ${overflow}px)`);
  await page.screenshot({ path: `${shots}/anomalies-phone.png`, fullPage: true });
  await page.goto(`${base}/incidents/${incidentId}`);
  await page.waitForSelector("#service-map");
  const incidentOverflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  expect(incidentOverflow <= 1, `the incident page fits a phone-sized screen (overflow ${incidentOverflow}px)`);
  await page.screenshot({ path: `${shots}/incident-phone.png`, fullPage: true });

  expect(problems.length === 0, `no dialogs, page errors or console errors (${problems.join("; ")})`);
} catch (e) {
  await page.screenshot({ path: `${shots}/failure.png`, fullPage: true }).catch(() => {});
  console.error(`not ok - ${e.message}`);
  if (problems.length) console.error(problems.join("\n"));
  await browser.close();
  process.exit(1);
}
await browser.close();
console.log(`screenshots in ${shots}`);
