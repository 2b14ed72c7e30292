// tracewatch dashboard: Supervisor (live alert panel), Anomalies (table, filters, detail, resolve) and
// Configuration. No framework and no build step: the files are served from the api-server binary.
// Every text that comes from the API is put in the page as text (textContent), never as HTML.
// Incidents (the Supervisor's open incidents, the incident page) live in incidents.js: they are a
// third of the code and share only the helpers below, which this module exports to it.

import { openIncidents, incidentPage } from "./incidents.js";

const TYPES = ["PERFORMANCE", "SECURITY", "RESOURCE"];
const SUBTYPES = ["latency_spike", "error_rate_spike", "throughput_spike", "throughput_drop", "service_silent",
  "auth_failure_burst", "endpoint_enumeration", "request_flood", "injection_attempt", "path_traversal",
  "sensitive_route_new_principal", "n_plus_one_query", "fan_out", "unusual_trace_shape"];
export const SEVERITIES = ["CRITICAL", "HIGH", "MEDIUM", "LOW"];
const TYPE_COLOURS = { PERFORMANCE: "#2456c9", SECURITY: "#b3261e", RESOURCE: "#1f7a3d" };
const PAGE = 50;

export const session = { token: sessionStorage.getItem("tracewatch-token") || "", me: null, leave: null };

// ---- DOM helpers -------------------------------------------------------------------------------------

/** An element; string and number children become text nodes, null and false are skipped. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  append(el, children);
  return el;
}
function append(el, children) {
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}
const SVG = "http://www.w3.org/2000/svg";
export function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  append(el, children);
  return el;
}
function main() { return document.getElementById("main"); }
export function show(...children) { const m = main(); m.replaceChildren(); append(m, children); }
export function fmtTime(t) { return t ? new Date(t).toLocaleString() : "—"; }
function fmtValue(v) {
  if (v === null || v === undefined) return "—";
  const a = Math.abs(v);
  return a >= 100 ? v.toFixed(0) : a >= 1 ? v.toFixed(2) : v.toFixed(4);
}
export function sevBadge(sev) { return h("span", { class: `sev sev-${SEVERITIES.includes(sev) ? sev : "LOW"}` }, sev); }
/** A trace id, as a link when the server has a trace URL template (`whoami`). */
export function traceLink(tid) {
  const template = session.me && session.me.trace_url_template;
  return template ? h("a", { href: template.replace("{trace_id}", encodeURIComponent(tid)), target: "_blank", rel: "noopener" }, tid) : h("code", {}, tid);
}
function unitOf(a) { return (a.details && a.details.unit) || ""; }

// ---- API -----------------------------------------------------------------------------------------------

class ApiFailure extends Error {
  constructor(status, body) {
    super((body && body.message) || `HTTP ${status}`);
    this.status = status; this.body = body;
  }
}

export async function api(path, { method = "GET", json } = {}) {
  const headers = { Accept: "application/json" };
  if (session.token) headers.Authorization = `Bearer ${session.token}`;
  let body;
  if (json !== undefined) { headers["Content-Type"] = "application/json"; body = JSON.stringify(json); }
  const resp = await fetch(path, { method, headers, body });
  let data = null;
  try { data = await resp.json(); } catch { /* no body */ }
  if (resp.status === 401) { askForToken(session.token ? "That token was not accepted." : ""); }
  if (!resp.ok) throw new ApiFailure(resp.status, data);
  return data;
}

function askForToken(message) {
  const dialog = document.getElementById("token-dialog");
  document.getElementById("token-error").textContent = message || "";
  if (!dialog.open) dialog.showModal();
}

function setupTokenDialog() {
  const form = document.getElementById("token-form");
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const value = document.getElementById("token-input").value.trim();
    if (!value) return;
    session.token = value;
    sessionStorage.setItem("tracewatch-token", value);
    document.getElementById("token-dialog").close();
    session.me = null;
    route();
  });
}

async function whoami() {
  if (!session.me) {
    session.me = await api("/api/whoami");
    document.getElementById("who").textContent = `${session.me.name} · ${session.me.role}`;
  }
  return session.me;
}
export function can(permission) { return !!(session.me && session.me.permissions.includes(permission)); }

/** Follows the live stream until `signal` aborts; reconnects after a failure. */
/**
 * Follows the live stream until `signal` aborts, reconnecting after a drop with `Last-Event-ID`, so that
 * the server first sends what was missed. `onState(connected, resumed)`: `resumed` when the server
 * replays from the last event seen (nothing to reload). A `lagged` event means events were lost: reload.
 */
export async function follow(signal, onEvent, onState) {
  let lastId = null;
  while (!signal.aborted) {
    try {
      const headers = session.token ? { Authorization: `Bearer ${session.token}` } : {};
      if (lastId !== null) headers["Last-Event-ID"] = lastId;
      const resp = await fetch("/api/anomalies/stream", { headers, signal });
      // An id this server does not know (another version's): start afresh.
      if (resp.status === 400) lastId = null;
      if (!resp.ok) throw new Error(`HTTP ${resp.status}`);
      onState(true, lastId !== null);
      const reader = resp.body.getReader();
      const decoder = new TextDecoder();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, { stream: true });
        let cut;
        while ((cut = buffer.indexOf("\n\n")) >= 0) {
          const frame = buffer.slice(0, cut);
          buffer = buffer.slice(cut + 2);
          let kind = "message", data = "";
          for (const line of frame.split("\n")) {
            if (line.startsWith("event:")) kind = line.slice(6).trim();
            else if (line.startsWith("id:")) lastId = line.slice(3).trim();
            else if (line.startsWith("data:")) data += line.slice(5).trim();
          }
          if (data) { try { onEvent(kind, JSON.parse(data)); } catch { /* not ours */ } }
        }
      }
    } catch { /* retried below */ }
    onState(false, false);
    if (signal.aborted) return;
    await new Promise((r) => setTimeout(r, 2000));
  }
}

// ---- Router --------------------------------------------------------------------------------------------

export function navigate(url) { history.pushState(null, "", url); route(); }

export async function route() {
  if (session.leave) { session.leave.abort(); }
  session.leave = new AbortController();
  const { pathname, search } = location;
  const page = pathname === "/" ? "supervisor" : pathname.startsWith("/anomalies") ? "anomalies"
    : pathname.startsWith("/incidents/") ? "incident" : pathname === "/config" ? "config" : "missing";
  for (const a of document.querySelectorAll("[data-nav]")) {
    if (a.dataset.nav === page) a.setAttribute("aria-current", "page"); else a.removeAttribute("aria-current");
  }
  try {
    await whoami();
    const detail = pathname.match(/^\/anomalies\/([0-9a-fA-F-]{36})$/);
    const incident = pathname.match(/^\/incidents\/([0-9a-fA-F-]{36})$/);
    if (page === "supervisor") await supervisor(session.leave.signal);
    else if (detail) await anomalyDetail(detail[1]);
    else if (incident) await incidentPage(incident[1], session.leave.signal);
    else if (page === "anomalies") await anomalies(new URLSearchParams(search));
    else if (page === "config") await configuration();
    else show(h("h1", {}, "Not found"), h("p", {}, h("a", { href: "/", "data-link": true }, "Back to the supervisor")));
  } catch (e) {
    if (e instanceof ApiFailure && e.status === 401) {
      show(h("h1", {}, "Sign in"), h("p", { class: "muted" }, "This server requires a token."));
    } else {
      show(h("h1", {}, "Something went wrong"), h("p", { class: "error", role: "alert" }, e.message));
    }
  }
}

// ---- Supervisor: the AnomalyAlertPanel -------------------------------------------------------------------

async function supervisor(signal) {
  document.title = "Supervisor · tracewatch";
  const counts = h("ul", { class: "counts", "aria-label": "Unresolved anomalies by severity" });
  const list = h("ul", { class: "alerts", id: "alert-panel", "aria-live": "polite", "aria-label": "Unresolved CRITICAL and HIGH anomalies" });
  const live = h("span", { class: "live", id: "live-state" }, "connecting…");
  const chart = h("div", { id: "types-chart" });
  const incidents = openIncidents();
  show(
    h("h1", {}, "Supervisor"),
    incidents.section,
    h("div", { class: "grid", style: "margin-top:16px" },
      h("section", { class: "card", "aria-labelledby": "open-title" },
        h("h2", { id: "open-title" }, "Open anomalies"), counts),
      h("section", { class: "card", "aria-labelledby": "chart-title" },
        h("h2", { id: "chart-title" }, "Anomalies in the last 24 hours, by type"), chart)),
    h("section", { class: "card", style: "margin-top:16px", "aria-labelledby": "panel-title" },
      h("h2", { id: "panel-title" }, "Alerts: unresolved CRITICAL and HIGH ", live), list));

  const shown = new Map();
  const item = (a) => h("li", { "data-id": a.id },
    sevBadge(a.severity),
    h("a", { class: "what", href: `/anomalies/${a.id}`, "data-link": true }, `${a.anomaly_type.toLowerCase()} / ${a.anomaly_subtype || "—"}`),
    h("span", { class: "where" }, [a.service_name, a.operation].filter(Boolean).join(" · ") || "—",
      " · ", fmtTime(a.detected_at), a.occurrences > 1 ? ` · ${a.occurrences}×` : ""));
  const put = (a, fresh) => {
    const old = shown.get(a.id);
    const el = item(a);
    if (fresh) el.classList.add("fresh");
    if (old) old.replaceWith(el); else list.prepend(el);
    shown.set(a.id, el);
    empty.remove();
  };
  const empty = h("li", { class: "muted" }, "Nothing open at HIGH or above.");
  const summary = async () => {
    const data = await api("/api/anomalies/summary");
    counts.replaceChildren(...SEVERITIES.map((sev) => h("li", {},
      h("span", { class: "n", "data-severity": sev }, data.open_by_severity[sev] || 0), sevBadge(sev))));
    chart.replaceChildren(typesChart(data.buckets));
  };
  const [page] = await Promise.all([api("/api/anomalies?resolved=false&min_severity=HIGH&limit=100"), incidents.load()]);
  for (const a of page.items.slice().reverse()) put(a, false);
  if (!page.items.length) list.append(empty);
  await summary();
  let pending = null;
  const refreshSoon = () => { if (!pending) pending = setTimeout(() => { pending = null; summary().catch(() => {}); }, 1000); };
  // What the stream cannot tell: after a gap it could not replay, or while it is down.
  const reload = async () => {
    const latest = await api("/api/anomalies?resolved=false&min_severity=HIGH&limit=20");
    for (const a of latest.items.slice().reverse()) if (!shown.has(a.id)) put(a, true);
    refreshSoon();
    await incidents.load();
  };
  let poll = null;
  follow(signal, (kind, a) => {
    if (kind === "lagged") { reload().catch(() => {}); return; }
    if (kind.startsWith("incident_")) { incidents.event(kind, a); return; }
    const urgent = a.severity === "CRITICAL" || a.severity === "HIGH";
    if (kind === "resolved" || a.resolved) {
      const el = shown.get(a.id);
      if (el) { el.remove(); shown.delete(a.id); }
      if (!shown.size && !list.contains(empty)) list.append(empty);
    } else if (urgent) put(a, true);
    refreshSoon();
  }, (on, resumed) => {
    live.textContent = on ? "live" : "reconnecting…";
    live.classList.toggle("on", on);
    // The stream carries every process's writes: no polling while it serves.
    if (on) {
      clearInterval(poll);
      poll = null;
      if (!resumed) reload().catch(() => {});
    } else if (!poll) {
      poll = setInterval(() => reload().catch(() => {}), 15000);
    }
  });
  const clock = setInterval(incidents.tick, 30000);
  signal.addEventListener("abort", () => { clearInterval(poll); clearInterval(clock); });
}

/** Stacked bars: anomalies per hour by type. */
function typesChart(buckets) {
  const W = 640, H = 200, P = 28;
  const totals = buckets.map((b) => TYPES.reduce((n, t) => n + (b.counts[t] || 0), 0));
  if (!totals.some((n) => n > 0)) return h("p", { class: "muted" }, "No anomalies in the last 24 hours.");
  const max = Math.max(1, ...totals);
  const bw = (W - P * 2) / buckets.length;
  const svg = s("svg", { class: "chart", viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": "Anomalies per hour by type" });
  buckets.forEach((b, i) => {
    let y = H - P;
    for (const t of TYPES) {
      const n = b.counts[t] || 0;
      if (!n) continue;
      const bh = (n / max) * (H - P * 2);
      y -= bh;
      svg.append(s("rect", { x: P + i * bw + 1, y, width: Math.max(1, bw - 2), height: bh, fill: TYPE_COLOURS[t] },
        s("title", {}, `${new Date(b.start).toLocaleString()}: ${n} ${t.toLowerCase()}`)));
    }
  });
  svg.append(s("text", { x: P, y: H - 8 }, new Date(buckets[0].start).toLocaleTimeString()),
    s("text", { x: W - P, y: H - 8, "text-anchor": "end" }, new Date(buckets[buckets.length - 1].start).toLocaleTimeString()),
    s("text", { x: 4, y: P }, String(max)));
  const legend = h("ul", { class: "legend" }, TYPES.map((t) => h("li", {}, h("span", { style: `background:${TYPE_COLOURS[t]}` }), t.toLowerCase())));
  return h("div", {}, svg, legend);
}

// ---- Anomalies: the AnomalyDashboard ----------------------------------------------------------------------

const FILTERS = ["anomaly_type", "anomaly_subtype", "severity", "resolved", "service", "since", "until", "q", "incident_id"];

function toLocalInput(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  if (isNaN(d)) return "";
  return new Date(d.getTime() - d.getTimezoneOffset() * 60000).toISOString().slice(0, 16);
}

async function anomalies(params) {
  document.title = "Anomalies · tracewatch";
  const select = (name, label, options) => h("div", {},
    h("label", { for: `f-${name}` }, label),
    h("select", { id: `f-${name}`, name }, h("option", { value: "" }, "any"),
      options.map(([v, text]) => h("option", { value: v, selected: params.get(name) === v }, text))));
  const text = (name, label, type = "text") => h("div", {},
    h("label", { for: `f-${name}` }, label),
    h("input", { id: `f-${name}`, name, type, value: type === "datetime-local" ? toLocalInput(params.get(name)) : params.get(name) || "" }));
  const form = h("form", { class: "filters", role: "search", "aria-label": "Filter anomalies" },
    select("anomaly_type", "Type", TYPES.map((t) => [t, t.toLowerCase()])),
    select("anomaly_subtype", "Subtype", SUBTYPES.map((t) => [t, t])),
    select("severity", "Severity", SEVERITIES.map((t) => [t, t])),
    select("resolved", "Status", [["false", "unresolved"], ["true", "resolved"]]),
    text("service", "Service"), text("since", "From", "datetime-local"), text("until", "To", "datetime-local"),
    text("q", "Text", "search"),
    // An incident's anomalies (linked from its page) stay filtered when other filters change.
    h("input", { type: "hidden", name: "incident_id", value: params.get("incident_id") || "" }),
    h("div", {}, h("button", { type: "submit" }, "Apply")));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const next = new URLSearchParams();
    for (const name of FILTERS) {
      let v = form.elements[name].value.trim();
      if (v && (name === "since" || name === "until")) v = new Date(v).toISOString();
      if (v) next.set(name, v);
    }
    navigate(`/anomalies${next.toString() ? "?" + next : ""}`);
  });
  const query = new URLSearchParams();
  for (const name of FILTERS) if (params.get(name)) query.set(name, params.get(name));
  query.set("limit", String(PAGE));
  if (params.get("cursor")) query.set("cursor", params.get("cursor"));
  const status = h("p", { class: "muted", role: "status" }, "Loading…");
  const tableWrap = h("div", { class: "table-wrap" });
  show(h("h1", {}, "Anomalies"), form, status, tableWrap);
  let page;
  try {
    page = await api(`/api/anomalies?${query}`);
  } catch (e) {
    status.textContent = "";
    status.append(h("span", { class: "error", role: "alert" }, e.message));
    return;
  }
  status.textContent = page.items.length ? `${page.items.length} shown${page.next_cursor ? ", more on the next page" : ""} (newest first; the headers sort this page)` : "No anomaly matches these filters.";
  let rows = page.items;
  let sort = { key: null, dir: 1 };
  const columns = [
    ["detected_at", "Detected", (a) => fmtTime(a.detected_at)],
    ["severity", "Severity", (a) => sevBadge(a.severity)],
    ["anomaly_subtype", "What", (a) => h("a", { href: `/anomalies/${a.id}`, "data-link": true }, `${a.anomaly_type.toLowerCase()} / ${a.anomaly_subtype || "—"}`)],
    ["service_name", "Service", (a) => a.service_name || "—"],
    ["operation", "Operation", (a) => a.operation || "—", "hide-narrow"],
    ["observed_value", "Observed / expected", (a) => `${fmtValue(a.observed_value)} / ${fmtValue(a.expected_value)} ${unitOf(a)}`, "hide-narrow"],
    ["resolved", "Status", (a) => a.resolved ? "resolved" : "open"],
  ];
  const rank = (a, key) => key === "severity" ? SEVERITIES.indexOf(a.severity) * -1 : a[key] ?? "";
  const draw = () => {
    const sorted = sort.key ? rows.slice().sort((x, y) => (rank(x, sort.key) > rank(y, sort.key) ? 1 : rank(x, sort.key) < rank(y, sort.key) ? -1 : 0) * sort.dir) : rows;
    const table = h("table", { id: "anomaly-table" },
      h("caption", { class: "muted", style: "text-align:left" }, "Anomalies"),
      h("thead", {}, h("tr", {}, columns.map(([key, label, , cls]) => h("th", {
        scope: "col", class: cls, "aria-sort": sort.key === key ? (sort.dir > 0 ? "ascending" : "descending") : "none",
      }, h("button", { type: "button", onclick: () => { sort = { key, dir: sort.key === key ? -sort.dir : 1 }; draw(); } }, label))))),
      h("tbody", {}, sorted.map((a) => h("tr", { "data-id": a.id }, columns.map(([, , cell, cls]) => h("td", { class: cls }, cell(a)))))));
    tableWrap.replaceChildren(table, pager);
  };
  const pager = h("nav", { class: "pager", "aria-label": "Pages" },
    h("button", { type: "button", class: "secondary", disabled: !params.get("cursor"), onclick: () => history.back() }, "← Newer"),
    h("button", { type: "button", id: "next-page", disabled: !page.next_cursor, onclick: () => {
      const next = new URLSearchParams(params); next.set("cursor", page.next_cursor); navigate(`/anomalies?${next}`);
    } }, "Older →"));
  draw();
}

// ---- Anomaly detail ---------------------------------------------------------------------------------------

async function anomalyDetail(id) {
  const a = await api(`/api/anomalies/${id}`);
  document.title = `${a.anomaly_subtype || a.anomaly_type} · tracewatch`;
  const d = a.details || {};
  const unit = unitOf(a);
  const traces = [a.trace_id, ...(d.example_trace_ids || []).filter((t) => t !== a.trace_id)].filter(Boolean).slice(0, 5);
  // Every trace of the finding: its TraceQL query over its window, as a search link when configured.
  const allTraces = () => {
    const template = session.me.trace_search_url_template;
    if (!d.traceql) return "—";
    if (!template) return h("code", { id: "traceql" }, d.traceql);
    const ms = (t) => String(t ? Date.parse(t) : "");
    const href = template.replace("{traceql}", encodeURIComponent(d.traceql))
      .replace("{start}", ms(a.window_start)).replace("{end}", ms(a.window_end || a.last_seen_at));
    return h("a", { id: "traceql", href, target: "_blank", rel: "noopener", title: d.traceql }, "search them in Tempo");
  };
  const facts = h("dl", { class: "facts" },
    h("dt", {}, "Severity"), h("dd", {}, sevBadge(a.severity)),
    h("dt", {}, "Type"), h("dd", {}, `${a.anomaly_type.toLowerCase()} / ${a.anomaly_subtype || "—"}`),
    h("dt", {}, "Service"), h("dd", {}, a.service_name || "—"),
    h("dt", {}, "Operation"), h("dd", {}, a.operation || "—"),
    a.client && [h("dt", {}, "Client"), h("dd", {}, a.client)],
    a.peer_service && [h("dt", {}, "Peer service"), h("dd", { id: "peer-service" }, a.peer_service)],
    h("dt", {}, "Observed"), h("dd", { id: "observed" }, `${fmtValue(a.observed_value)} ${unit}`),
    h("dt", {}, "Expected"), h("dd", {}, `${fmtValue(a.expected_value)} ${unit}`),
    d.spread !== undefined && [h("dt", {}, "Baseline spread"), h("dd", {}, `${fmtValue(d.spread)} (σ, where the score is computed)`)],
    h("dt", {}, "Score"), h("dd", {}, `${fmtValue(a.score)}${d.threshold !== undefined ? ` (fires at ${fmtValue(d.threshold)})` : ""}`),
    h("dt", {}, "Detected"), h("dd", {}, fmtTime(a.detected_at)),
    h("dt", {}, "Occurrences"), h("dd", {}, `${a.occurrences}${a.last_seen_at ? `, last ${fmtTime(a.last_seen_at)}` : ""}`),
    h("dt", {}, "Traces"), h("dd", {}, traces.flatMap((t, i) => i ? [", ", traceLink(t)] : [traceLink(t)])),
    h("dt", {}, "All its traces"), h("dd", {}, allTraces()),
    h("dt", {}, "Status"), h("dd", { id: "status" }, a.resolved ? `resolved by ${a.resolved_by || "—"} ${fmtTime(a.resolved_at)}` : "open"),
    a.resolution_notes && [h("dt", {}, "Notes"), h("dd", {}, a.resolution_notes)]);
  const chartBox = h("div", {}, h("p", { class: "muted" }, "Loading the chart…"));
  const incidentLink = a.incident_id && h("a", { id: "incident-link", href: `/incidents/${a.incident_id}`, "data-link": true },
    `Part of incident ${a.incident_id.slice(0, 8)}`);
  const resolveBox = h("section", { class: "card", style: "margin-top:16px", "aria-labelledby": "resolve-title" });
  show(
    h("p", {}, h("a", { href: "/anomalies", "data-link": true, onclick: (e) => { if (history.length > 1) { e.preventDefault(); history.back(); } } }, "← Anomalies")),
    h("h1", {}, `${a.anomaly_subtype || a.anomaly_type} on ${a.service_name || "—"}`),
    incidentLink && h("p", { class: "incident-note" }, incidentLink),
    h("div", { class: "grid" },
      h("section", { class: "card", "aria-labelledby": "desc-title" },
        h("h2", { id: "desc-title" }, "What happened"), h("p", { id: "description" }, a.description || "—"), facts),
      h("section", { class: "card", "aria-labelledby": "metric-title" },
        h("h2", { id: "metric-title" }, "The metric around it"), chartBox)),
    (!a.resolved && can("operate")) && resolveBox);
  if (!a.resolved && can("operate")) {
    const notes = h("textarea", { id: "resolve-notes", rows: 3, maxlength: 10000 });
    const error = h("p", { class: "error", role: "alert" });
    const button = h("button", { type: "submit", id: "resolve-button" }, "Resolve");
    const form = h("form", {}, h("label", { for: "resolve-notes" }, "Notes (what was done)"), notes, error, h("div", { class: "actions" }, button));
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      button.disabled = true;
      try {
        await api(`/api/anomalies/${a.id}/resolve`, { method: "PUT", json: { resolution_notes: notes.value || null } });
        await anomalyDetail(a.id);
      } catch (err) { error.textContent = err.message; button.disabled = false; }
    });
    resolveBox.append(h("h2", { id: "resolve-title" }, "Resolve"), form);
  }
  if (incidentLink) {
    api(`/api/incidents/${a.incident_id}`)
      .then((i) => { incidentLink.textContent = `Part of incident: ${i.title} (${i.status})`; })
      .catch(() => { /* the short id stays */ });
  }
  // Other detections of the same kind on the same operation, around this one.
  const around = new URLSearchParams({ limit: "200" });
  if (a.service_name) around.set("service", a.service_name);
  if (a.operation) around.set("operation", a.operation);
  if (a.anomaly_subtype) around.set("anomaly_subtype", a.anomaly_subtype);
  try {
    const near = await api(`/api/anomalies?${around}`);
    chartBox.replaceChildren(metricChart(a, near.items));
  } catch (e) { chartBox.replaceChildren(h("p", { class: "error" }, e.message)); }
}

/** The anomalous point against its baseline, with the other detections of the same kind on the same
 *  operation over time. Latency is judged on log-duration: its band (expected × e^±σ) and the line
 *  where it fires (expected × e^(threshold·σ)) are drawn in ms, on a log scale. For other kinds the
 *  score lives in its own space (a ratio's p-value, a count's trend), so only the expected level is drawn. */
function metricChart(a, near) {
  const W = 640, H = 240, P = 44;
  const d = a.details || {};
  const points = near.filter((n) => n.observed_value !== null && n.detected_at)
    .map((n) => ({ t: Date.parse(n.detected_at), v: n.observed_value, me: n.id === a.id }));
  if (!points.some((p) => p.me) && a.observed_value !== null && a.detected_at) points.push({ t: Date.parse(a.detected_at), v: a.observed_value, me: true });
  if (!points.length) return h("p", { class: "muted" }, "No values to draw.");
  const expected = a.expected_value ?? 0;
  const latency = a.anomaly_subtype === "latency_spike" && expected > 0 && d.spread > 0;
  const band = latency ? [expected * Math.exp(-d.spread), expected * Math.exp(d.spread)] : null;
  const fires = latency && d.threshold !== undefined ? expected * Math.exp(d.threshold * d.spread) : null;
  const values = points.map((p) => p.v).concat([expected], band || [], fires ? [fires] : []);
  const log = latency && values.every((v) => v > 0);
  const f = (v) => (log ? Math.log10(v) : v);
  const top = Math.max(...values.map(f)), bottom = log ? Math.min(...values.map(f)) : 0;
  const pad = (top - bottom) * 0.1 || 1;
  const [vmin, vmax] = [bottom - (log ? pad : 0), top + pad];
  const me = points.find((p) => p.me);
  const t0 = Math.min(...points.map((p) => p.t), me.t - 3600e3), t1 = Math.max(...points.map((p) => p.t), me.t + 600e3);
  const x = (t) => P + ((t - t0) / Math.max(1, t1 - t0)) * (W - P * 2);
  const y = (v) => H - P - ((f(v) - vmin) / (vmax - vmin)) * (H - P * 2);
  const svg = s("svg", { class: "chart", viewBox: `0 0 ${W} ${H}`, role: "img", id: "metric-chart",
    "aria-label": `Observed ${fmtValue(a.observed_value)} against an expected ${fmtValue(expected)} ${unitOf(a)}` });
  if (band) {
    svg.append(s("rect", { x: P, y: y(band[1]), width: W - P * 2, height: Math.max(1, y(band[0]) - y(band[1])), fill: "#2456c9", "fill-opacity": 0.18 },
      s("title", {}, `baseline: ${fmtValue(band[0])} to ${fmtValue(band[1])} ${unitOf(a)} (±1σ)`)));
  }
  svg.append(s("line", { x1: P, x2: W - P, y1: y(expected), y2: y(expected), stroke: "#2456c9", "stroke-dasharray": "4 3" }, s("title", {}, `expected ${fmtValue(expected)}`)));
  if (fires) svg.append(s("line", { x1: P, x2: W - P, y1: y(fires), y2: y(fires), stroke: "#d9650b", "stroke-dasharray": "2 3" }, s("title", {}, `fires above ${fmtValue(fires)} ${unitOf(a)}`)));
  for (const p of points) {
    svg.append(s("circle", { cx: x(p.t), cy: y(p.v), r: p.me ? 6 : 3.5, fill: p.me ? "#b3261e" : "#5d6678", class: p.me ? "anomalous-point" : "" },
      s("title", {}, `${new Date(p.t).toLocaleString()}: ${fmtValue(p.v)} ${unitOf(a)}`)));
  }
  const label = (v) => s("text", { x: 4, y: y(v) + 4 }, fmtValue(v));
  svg.append(label(Math.max(...points.map((p) => p.v))), label(expected),
    s("text", { x: P, y: H - 10 }, new Date(t0).toLocaleTimeString()), s("text", { x: W - P, y: H - 10, "text-anchor": "end" }, new Date(t1).toLocaleTimeString()));
  const legend = h("ul", { class: "legend" },
    band && h("li", {}, h("span", { style: "background:#2456c9;opacity:.4" }), "baseline ±1σ"),
    h("li", {}, h("span", { style: "background:#2456c9" }), "expected"),
    fires && h("li", {}, h("span", { style: "background:#d9650b" }), "fires above"),
    h("li", {}, h("span", { style: "background:#b3261e" }), "this anomaly"),
    h("li", {}, h("span", { style: "background:#5d6678" }), "other detections"),
    log && h("li", { class: "muted" }, "log scale"));
  return h("div", {}, svg, legend);
}

// ---- Configuration ----------------------------------------------------------------------------------------

/** What the configuration schema says a key allows and, for an object, each key nested in it. */
function keyHints(keys, key) {
  const hint = (k) => `${k.type}, ${k.allowed}${k.default === null ? "" : `, default ${JSON.stringify(k.default)}`}`;
  const own = keys.find((k) => k.key === key);
  const nested = keys.filter((k) => k.key.startsWith(`${key}.`));
  return [own && ` (${hint(own)})`, nested.length > 0 && h("ul", { class: "hints" },
    nested.map((k) => h("li", {}, h("code", {}, k.key.slice(key.length + 1)), `: ${k.description} (${hint(k)})`)))];
}

async function configuration() {
  document.title = "Configuration · tracewatch";
  const [data, schema] = await Promise.all([api("/api/anomaly-config"), api("/api/anomaly-config/schema")]);
  const editable = can("configure");
  const inputs = new Map();
  const errors = new Map();
  const fields = data.items.map((item) => {
    const id = `cfg-${item.key.replace(/[^a-zA-Z0-9_-]/g, "-")}`;
    const v = item.value;
    let input;
    if (typeof v === "boolean") input = h("select", { id, name: item.key }, h("option", { value: "true", selected: v }, "true"), h("option", { value: "false", selected: !v }, "false"));
    else if (typeof v === "number") input = h("input", { id, name: item.key, type: "number", step: "any", value: v });
    else if (typeof v === "string") input = h("input", { id, name: item.key, type: "text", value: v });
    else input = h("textarea", { id, name: item.key, rows: 2 }, JSON.stringify(v));
    input.disabled = !editable;
    input.setAttribute("aria-describedby", `${id}-help ${id}-error`);
    const error = h("p", { class: "error", id: `${id}-error`, role: "alert" });
    inputs.set(item.key, { input, original: v });
    errors.set(item.key, error);
    return h("div", { class: "field", "data-key": item.key }, h("label", { for: id }, item.key), input,
      h("div", { class: "help", id: `${id}-help` }, item.description, keyHints(schema.keys, item.key)), error);
  });
  const status = h("p", { role: "status", class: "muted" }, editable ? "" : "Read only: your role cannot change the configuration.");
  const form = h("form", { id: "config-form", "aria-label": "Detection configuration" }, fields, status,
    editable && h("div", { class: "actions" }, h("button", { type: "submit" }, "Save")));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    for (const el of errors.values()) el.textContent = "";
    const changed = {};
    for (const [key, { input, original }] of inputs) {
      let value = input.value;
      if (typeof original === "boolean") value = value === "true";
      else if (typeof original === "number") value = value === "" ? null : Number(value);
      else if (typeof original !== "string") { try { value = JSON.parse(value); } catch { errors.get(key).textContent = "not valid JSON"; return; } }
      if (JSON.stringify(value) !== JSON.stringify(original)) changed[key] = value;
    }
    if (!Object.keys(changed).length) { status.textContent = "Nothing changed."; return; }
    try {
      await api("/api/anomaly-config", { method: "PUT", json: changed });
      status.textContent = `Saved: ${Object.keys(changed).join(", ")}.`;
      for (const [key, value] of Object.entries(changed)) inputs.get(key).original = value;
    } catch (err) {
      const key = err.body && err.body.details && err.body.details.key;
      if (key && errors.has(key)) { errors.get(key).textContent = err.message; inputs.get(key).input.focus(); }
      else status.textContent = err.message;
    }
  });
  show(h("h1", {}, "Configuration"), form);
}

// ---- Start ------------------------------------------------------------------------------------------------

document.addEventListener("click", (e) => {
  const a = e.target.closest && e.target.closest("a[data-link]");
  if (!a || e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey) return;
  e.preventDefault();
  navigate(a.getAttribute("href"));
});
window.addEventListener("popstate", route);
setupTokenDialog();
route();
