// tracewatch dashboard: incidents (findings grouped across services, with ranked probable origins).
// The Supervisor's open incidents (`openIncidents`) and the incident page (`incidentPage`), with its
// drawing of the affected services and the calls between them.
//
// A module of its own so that app.js stays readable; it imports app.js's helpers and app.js imports
// it back. That cycle is safe: this module only declares functions, which run after both are loaded.
// Every text from the API goes into the page as text (h/s make text nodes), never as HTML.

import { SEVERITIES, api, can, fmtTime, follow, h, route, s, sevBadge, show, traceLink } from "./app.js";

/** How long ago `t` was, in words ("3 min ago"). */
function ago(t) {
  const ms = Date.now() - Date.parse(t);
  if (!(ms >= 0)) return fmtTime(t);
  const m = Math.round(ms / 60000);
  if (m < 1) return "just now";
  if (m < 60) return `${m} min ago`;
  const hrs = Math.round(m / 60);
  return hrs < 48 ? `${hrs} h ago` : `${Math.round(hrs / 24)} days ago`;
}
function since(t) { return h("time", { datetime: t, title: fmtTime(t), "data-ago": t }, ago(t)); }

/** Long names cut to `n` characters (the whole name stays in a tooltip where it is cut). */
function cut(text, n) { return text.length > n ? `${text.slice(0, n - 1)}…` : text; }

function originText(o) { return o ? [o.service_name, o.operation].filter(Boolean).join(" · ") : "—"; }

/** Affected services: the count and the first names, the rest counted. */
function servicesText(services, shown = 3) {
  const names = services.slice(0, shown).map((n) => cut(n, 30)).join(", ");
  return `${services.length}: ${names}${services.length > shown ? ` and ${services.length - shown} more` : ""}`;
}

// ---- Supervisor: open incidents ------------------------------------------------------------------------

/** The Supervisor's open incidents: `section` to place, `load` (from the API), `event` (a live
 *  `incident_updated`/`incident_resolved`) and `tick` (refreshes the "… ago" times). */
export function openIncidents() {
  const open = new Map();
  const body = h("tbody");
  const count = h("span", { class: "muted", id: "incident-count" });
  const table = h("table", { id: "incident-list" },
    h("caption", { class: "muted", style: "text-align:left" }, "Open incidents, most severe first"),
    h("thead", {}, h("tr", {},
      h("th", { scope: "col" }, "Severity"), h("th", { scope: "col" }, "Probable origin"), h("th", { scope: "col" }, "Incident"),
      h("th", { scope: "col", class: "hide-narrow" }, "Services"), h("th", { scope: "col" }, "Since"),
      h("th", { scope: "col", class: "hide-narrow" }, "Findings"))),
    body);
  const empty = h("p", { class: "muted", id: "incident-empty" }, "No open incident.");
  const holder = h("div", { class: "table-wrap" }, h("p", { class: "muted" }, "Loading…"));
  const section = h("section", { class: "card", "aria-labelledby": "incidents-title", id: "open-incidents" },
    h("h2", { id: "incidents-title" }, "Open incidents ", count), holder);

  const row = (i) => {
    const link = h("a", { href: `/incidents/${i.id}`, "data-link": true }, i.title);
    return h("tr", { "data-id": i.id },
      h("td", {}, sevBadge(i.severity)),
      h("td", { class: "origin" }, originText((i.origins || [])[0])),
      h("td", {}, link),
      h("td", { class: "hide-narrow", title: (i.services || []).join(", ") }, servicesText(i.services || [])),
      h("td", {}, since(i.started_at)),
      h("td", { class: "hide-narrow" }, String(i.anomaly_count)));
  };
  const rank = (i) => SEVERITIES.indexOf(i.severity);
  const draw = () => {
    const rows = [...open.values()].sort((a, b) => rank(a) - rank(b) || Date.parse(b.started_at) - Date.parse(a.started_at));
    body.replaceChildren(...rows.map(row));
    count.textContent = `(${rows.length})`;
    holder.replaceChildren(rows.length ? table : empty);
  };
  return {
    section,
    async load() {
      const page = await api("/api/incidents?status=open&limit=100");
      open.clear();
      for (const i of page.items) open.set(i.id, i);
      draw();
    },
    event(kind, i) {
      if (kind === "incident_updated" && i.status === "open") open.set(i.id, i);
      else open.delete(i.id);
      draw();
      const el = body.querySelector(`tr[data-id="${CSS.escape(i.id)}"]`);
      if (el && open.has(i.id)) el.classList.add("fresh");
    },
    tick() {
      for (const el of section.querySelectorAll("time[data-ago]")) el.textContent = ago(el.dataset.ago);
    },
  };
}

// ---- The incident page ---------------------------------------------------------------------------------

export async function incidentPage(id, signal) {
  const i = await api(`/api/incidents/${id}`);
  document.title = `${i.title} · tracewatch`;
  const origins = i.origins || [];
  const facts = h("dl", { class: "facts" },
    h("dt", {}, "Severity"), h("dd", {}, sevBadge(i.severity)),
    h("dt", {}, "Status"), h("dd", { id: "incident-status" }, i.status === "resolved"
      ? `resolved${i.resolved_by ? ` by ${i.resolved_by}` : ""} ${fmtTime(i.resolved_at || i.ended_at)}` : i.status),
    i.merged_into && [h("dt", {}, "Merged into"), h("dd", {}, h("a", { href: `/incidents/${i.merged_into}`, "data-link": true }, i.merged_into))],
    h("dt", {}, "Probable origin"), h("dd", {}, originText(origins[0])),
    h("dt", {}, "Started"), h("dd", {}, `${fmtTime(i.started_at)} (`, since(i.started_at), ")"),
    h("dt", {}, "Last seen"), h("dd", {}, fmtTime(i.last_seen_at)),
    i.ended_at && [h("dt", {}, "Ended"), h("dd", {}, fmtTime(i.ended_at))],
    i.client && [h("dt", {}, "Client"), h("dd", {}, i.client)],
    h("dt", {}, "Findings"), h("dd", {}, `${i.anomaly_count} (${i.detections} detections)`),
    h("dt", {}, "Example traces"), h("dd", { id: "incident-traces" },
      (i.example_trace_ids || []).length ? i.example_trace_ids.flatMap((t, n) => n ? [", ", traceLink(t)] : [traceLink(t)]) : "—"),
    i.resolution_notes && [h("dt", {}, "Notes"), h("dd", {}, i.resolution_notes)]);
  const originList = h("ol", { id: "origins", class: "origins" }, origins.map((o, n) => h("li", { class: n === 0 ? "probable" : "" },
    h("div", { class: "origin-head" },
      h("strong", { class: "origin-name" }, originText(o)),
      n === 0 && h("span", { class: "badge" }, "probable origin"),
      h("span", { class: "muted" }, ` score ${Number(o.score).toFixed(2)}`)),
    h("p", { class: "evidence" }, o.evidence))));
  const changed = h("p", { class: "notice", role: "status", id: "incident-changed", hidden: true },
    "This incident changed since the page was drawn. ",
    h("button", { type: "button", class: "secondary", onclick: () => route() }, "Reload"));
  const resolveBox = i.status === "open" && can("operate") && resolveForm(i);
  show(
    h("p", {}, h("a", { href: "/", "data-link": true }, "← Supervisor")),
    h("h1", { id: "incident-title" }, i.title),
    changed,
    h("div", { class: "grid" },
      h("section", { class: "card", "aria-labelledby": "facts-title" }, h("h2", { id: "facts-title" }, "Incident"), facts),
      h("section", { class: "card", "aria-labelledby": "origins-title" },
        h("h2", { id: "origins-title" }, "Probable origins, best first"),
        origins.length ? originList : h("p", { class: "muted" }, "No origin ranked yet."))),
    h("section", { class: "card", style: "margin-top:16px", "aria-labelledby": "map-title" },
      h("h2", { id: "map-title" }, "Affected services and the calls between them"),
      serviceMap(i.services || [], i.calls || [], origins[0] && origins[0].service_name)),
    h("section", { class: "card", style: "margin-top:16px", "aria-labelledby": "findings-title" },
      h("h2", { id: "findings-title" }, "Its anomalies"), anomalyTable(i)),
    resolveBox);
  // A change to this incident (a new finding, its resolution) is offered as a reload, so that notes
  // being typed are not lost.
  follow(signal, (kind, x) => { if (kind.startsWith("incident_") && x.id === i.id) changed.hidden = false; }, () => {});
}

function resolveForm(i) {
  const notes = h("textarea", { id: "incident-resolve-notes", rows: 3, maxlength: 10000 });
  const error = h("p", { class: "error", role: "alert" });
  const button = h("button", { type: "submit", id: "incident-resolve-button" }, "Resolve the incident");
  const form = h("form", {}, h("label", { for: "incident-resolve-notes" }, "Notes (what was done); its open anomalies are resolved too"),
    notes, error, h("div", { class: "actions" }, button));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    button.disabled = true;
    try {
      await api(`/api/incidents/${i.id}/resolve`, { method: "PUT", json: { resolution_notes: notes.value || null } });
      await route();
    } catch (err) { error.textContent = err.message; button.disabled = false; }
  });
  return h("section", { class: "card", style: "margin-top:16px", "aria-labelledby": "incident-resolve-title" },
    h("h2", { id: "incident-resolve-title" }, "Resolve"), form);
}

function anomalyTable(i) {
  const items = i.anomalies || [];
  if (!items.length) return h("p", { class: "muted" }, "No anomaly is linked to it.");
  const more = i.more_anomalies && h("p", {}, h("a", { href: `/anomalies?incident_id=${encodeURIComponent(i.id)}`, "data-link": true },
    `Showing the newest ${items.length}: all its anomalies`));
  return h("div", { class: "table-wrap" },
    h("table", { id: "incident-anomalies" },
      h("thead", {}, h("tr", {}, ["Detected", "Severity", "What", "Service", "Operation", "Status"].map((c, n) =>
        h("th", { scope: "col", class: n === 4 ? "hide-narrow" : null }, c)))),
      h("tbody", {}, items.map((a) => h("tr", { "data-id": a.id },
        h("td", {}, fmtTime(a.detected_at)),
        h("td", {}, sevBadge(a.severity)),
        h("td", {}, h("a", { href: `/anomalies/${a.id}`, "data-link": true }, `${a.anomaly_type.toLowerCase()} / ${a.anomaly_subtype || "—"}`)),
        h("td", {}, a.service_name || "—"),
        h("td", { class: "hide-narrow" }, a.operation || "—"),
        h("td", {}, a.resolved ? "resolved" : "open"))))),
    more);
}

// ---- The services drawing ------------------------------------------------------------------------------

/** Each service's column: its call depth from the services nobody in the set calls (callers on the
 *  left, callees to their right). Services in a cycle nobody enters start a column 0 of their own. */
function layers(services, calls) {
  const callees = new Map(services.map((n) => [n, []]));
  const called = new Set();
  for (const c of calls) {
    if (!callees.has(c.caller) || !callees.has(c.callee) || c.caller === c.callee) continue;
    callees.get(c.caller).push(c.callee);
    called.add(c.callee);
  }
  const depth = new Map();
  const walk = (roots) => {
    const queue = roots.map((n) => { depth.set(n, 0); return n; });
    while (queue.length) {
      const n = queue.shift();
      for (const m of callees.get(n)) if (!depth.has(m)) { depth.set(m, depth.get(n) + 1); queue.push(m); }
    }
  };
  walk(services.filter((n) => !called.has(n)));
  for (const n of services) if (!depth.has(n)) walk([n]);
  return depth;
}

/** The affected services as boxes in columns by call depth, calls as arrows (caller → callee), the
 *  probable origin filled red and labelled. Names are cut to fit a box; the whole name is its tooltip.
 *  On a narrow screen the drawing keeps a readable size and scrolls inside its card. */
function serviceMap(services, calls, origin) {
  if (!services.length) return h("p", { class: "muted" }, "No service recorded.");
  const depth = layers(services, calls);
  const columns = [];
  for (const n of services) (columns[depth.get(n)] ||= []).push(n);
  const BW = 210, BH = 48, GX = 90, GY = 28, P = 16;
  const W = P * 2 + columns.length * BW + (columns.length - 1) * GX;
  const rows = Math.max(...columns.map((c) => c.length));
  const H = P * 2 + rows * BH + (rows - 1) * GY;
  const at = new Map();
  columns.forEach((col, x) => {
    const top = P + ((rows - col.length) * (BH + GY)) / 2;
    col.forEach((n, y) => at.set(n, { x: P + x * (BW + GX), y: top + y * (BH + GY) }));
  });
  const svg = s("svg", { class: "service-map", id: "service-map", viewBox: `0 0 ${W} ${H}`, role: "img",
    style: `max-width:${W}px;min-width:${Math.min(W, 560)}px`, "aria-label": `${services.length} affected services and the calls between them${origin ? `; probable origin ${origin}` : ""}` });
  svg.append(s("defs", {}, s("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 10, refY: 5, markerWidth: 8, markerHeight: 8, orient: "auto-start-reverse" },
    s("path", { d: "M0,0 L10,5 L0,10 z", fill: "#5d6678" }))));
  for (const c of calls) {
    const [a, b] = [at.get(c.caller), at.get(c.callee)];
    if (!a || !b || c.caller === c.callee) continue;
    // Forward calls leave a box's right side for the next box's left; others arc above.
    const forward = b.x > a.x;
    const [x1, y1] = forward ? [a.x + BW, a.y + BH / 2] : [a.x + BW / 2, a.y];
    const [x2, y2] = forward ? [b.x, b.y + BH / 2] : [b.x + BW / 2 + 8, b.y];
    const [cx, cy] = forward ? [(x1 + x2) / 2, (y1 + y2) / 2] : [(x1 + x2) / 2, Math.min(y1, y2) - BH];
    svg.append(s("path", { class: "call", d: `M${x1},${y1} Q${cx},${cy} ${x2},${y2}`, fill: "none", stroke: "#5d6678", "stroke-width": 1.5,
      "marker-end": "url(#arrow)", "data-caller": c.caller, "data-callee": c.callee },
    s("title", {}, `${c.caller} → ${c.callee}: ${c.calls} calls`)));
  }
  for (const n of services) {
    const { x, y } = at.get(n);
    const isOrigin = n === origin;
    const g = s("g", { class: isOrigin ? "node origin" : "node", "data-service": n },
      s("title", {}, isOrigin ? `${n} (probable origin)` : n),
      s("rect", { x, y, width: BW, height: BH, rx: 6, fill: isOrigin ? "#fde7e5" : "#fff", stroke: isOrigin ? "#b3261e" : "#8a93a6", "stroke-width": isOrigin ? 3 : 1.2 }),
      s("text", { x: x + BW / 2, y: y + (isOrigin ? 20 : BH / 2 + 5), "text-anchor": "middle", class: "name" }, cut(n, 28)));
    if (isOrigin) g.append(s("text", { x: x + BW / 2, y: y + 38, "text-anchor": "middle", class: "origin-label" }, "probable origin"));
    svg.append(g);
  }
  const legend = h("ul", { class: "legend" },
    h("li", {}, h("span", { style: "background:#fde7e5;border:2px solid #b3261e" }), "probable origin"),
    h("li", {}, "→ calls (caller to callee), seen in the traces"));
  return h("div", { class: "map-wrap" }, svg, legend);
}
