/* assetflow ui: the asset graph, its states and lineage, following the project live.
 *
 * Data comes from the CLI's JSON documents: live from /api/<command> (the server), or from
 * data/<command>.json in a static export. Layout is cytoscape-dagre (left to right). Past
 * FULL_LAYOUT_LIMIT nodes the graph is shown as clusters (one node per group, or per module
 * for assets without a group): a layered layout of thousands of nodes takes minutes, a
 * cluster graph milliseconds; a click opens a cluster. User text only ever goes through
 * textContent, never innerHTML.
 */
(function () {
  "use strict";

  const meta = (name) => (document.querySelector(`meta[name="${name}"]`) || {}).content || "";
  const MODE = meta("assetflow-mode") === "export" ? "export" : "live";
  const CSRF = meta("assetflow-csrf");
  const ALLOW_RUN = meta("assetflow-allow-run") === "1" && MODE === "live";
  const FULL_LAYOUT_LIMIT = 400;
  const POLL_MS = 1000;
  const MIN_READABLE_ZOOM = 0.6;
  const STATES = ["running", "failed", "missing", "stale", "overdue", "fresh", "observed"];
  const COLORS = { running: "#0ca678", fresh: "#2f9e44", stale: "#e8a200", missing: "#9c36b5", failed: "#e03131",
                   overdue: "#f76707", observed: "#1c7ed6", unknown: "#adb5bd" };

  window.assetflowColors = COLORS;  // read by the end-to-end tests, like window.assetflowGraph
  const $ = (id) => document.getElementById(id);
  const model = { list: null, commonPrefix: "", status: null, states: new Map(), checks: new Map(), ranges: new Map(), selection: "", selected: null,
                  cluster: null, token: null, shapeKey: null, panelFor: null, view: "graph" };
  let cy = null;

  // -- data -------------------------------------------------------------------------------

  function docUrl(command, arg, params) {
    if (MODE === "export") return `data/${command}${arg ? "/" + encodeURIComponent(arg) : ""}.json`;
    const query = new URLSearchParams(params || {}).toString();
    return `api/${command}${arg ? "/" + encodeURIComponent(arg) : ""}${query ? "?" + query : ""}`;
  }

  async function getDoc(command, arg, params) {
    const response = await fetch(docUrl(command, arg, params), { credentials: "same-origin", cache: "no-store" });
    let body = null;
    try { body = await response.json(); } catch (e) { body = null; }
    if (!response.ok) {
      const error = new Error(body && body.error ? body.error.message : `${response.status} ${response.statusText}`);
      error.doc = body; error.status = response.status;
      throw error;
    }
    return body;
  }

  // -- element helpers ----------------------------------------------------------------------

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (key === "class") node.className = value;
      else if (key === "style") node.style.cssText = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value);
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }
  // A checked asset's node carries the verdict on its current version (docs/checks.md): a mark and a border.
  const CHECK_MARK = { passed: " ✓", warned: " ⚠", failed: " ✗" };
  function checksBadge(a) {  // failed: the last run's new version was refused, or the current one fails a check
    const refused = (a.reasons || []).some((r) => r.startsWith("the last run failed: check ")
      || r.startsWith("the current version fails check "));
    if (refused || a.checks.some((v) => !v.passed && v.severity === "error")) return "failed";
    return a.checks.some((v) => !v.passed) ? "warned" : "passed";
  }
  const badge = (state) => el("span", { class: "badge", style: `background:${COLORS[state] || COLORS.unknown}` }, state);
  const short = (digest) => (digest ? String(digest).replace(/^blake3:/, "").slice(0, 12) : "-");
  const when = (t) => (t ? new Date(t * 1000).toLocaleString() : "-");
  const seconds = (s) => (s === null || s === undefined ? "-" : s < 1 ? `${Math.round(s * 1000)} ms` : `${s.toFixed(1)} s`);

  function showMessage(text) {
    const box = $("message");
    box.hidden = !text;
    box.textContent = text || "";
  }

  function showError(error) {
    const payload = error && error.doc && error.doc.error;
    if (!payload) { showMessage(String(error && error.message ? error.message : error)); return; }
    $("error").hidden = false;
    $("error-message").textContent = payload.message || "";
    $("error-traceback").textContent = payload.traceback || "";
    $("error-traceback").hidden = !payload.traceback;
  }

  // -- clusters -----------------------------------------------------------------------------

  function clusterOf(row) {
    if (row.group) return `group:${row.group}`;
    const file = (row.defined_at || "").replace(/:\d+$/, "");
    return file ? `module:${file.slice(model.commonPrefix.length)}` : "ungrouped";
  }

  function commonFolder(rows) {
    const files = rows.map((r) => (r.defined_at || "").replace(/:\d+$/, "")).filter(Boolean);
    if (!files.length) return "";
    // Whole folders only; a root "/" shared with a relative path is no common folder (and must not loop).
    let parts = files[0].split("/").slice(0, -1);
    for (const f of files) {
      const other = f.split("/");
      let same = 0;
      while (same < parts.length && same < other.length - 1 && parts[same] === other[same]) same++;
      parts = parts.slice(0, same);
    }
    return parts.length ? parts.join("/") + "/" : "";
  }

  function boxFor(label) {
    const lines = label.split("\n");
    return { width: 16 + 7 * Math.max(...lines.map((l) => l.length)), height: 8 + 15 * lines.length };
  }

  // A partitioned asset's node carries a strip of its partitions' states along its bottom edge
  // (docs/partitions.md): one segment per range, as wide as its share of the keys.
  function partitionStrip(ranges) {
    if (!ranges || !ranges.length) return null;
    const total = ranges.reduce((n, r) => n + r.count, 0);
    let x = 0;
    const rects = ranges.map((r) => {
      const w = (100 * r.count) / total;
      const rect = `<rect x="${x}" y="0" width="${w}" height="6" fill="${COLORS[r.state] || COLORS.unknown}"/>`;
      x += w;
      return rect;
    }).join("");
    return "data:image/svg+xml;utf8," + encodeURIComponent(
      `<svg xmlns="http://www.w3.org/2000/svg" width="100" height="6" preserveAspectRatio="none" viewBox="0 0 100 6">${rects}</svg>`);
  }

  function stripElement(ranges) {
    const total = ranges.reduce((n, r) => n + r.count, 0);
    return el("div", { class: "strip" }, ranges.map((r) => el("span", {
      style: `flex-grow: ${r.count / total}; background: ${COLORS[r.state] || COLORS.unknown}`,
      title: `${r.first === r.last ? r.first : r.first + ".." + r.last} ${r.state}${r.reason ? " (" + r.reason + ")" : ""}` })));
  }

  function worst(states) {
    for (const s of STATES) if (states.has(s)) return s;
    return "unknown";
  }

  // -- the graph ----------------------------------------------------------------------------

  function visibleRows() {
    let rows = model.list.assets;
    if (model.selected) rows = rows.filter((r) => model.selected.has(r.name));
    if (model.cluster) rows = rows.filter((r) => clusterOf(r) === model.cluster);
    return rows;
  }

  function elementsFor(rows) {
    const names = new Set(rows.map((r) => r.name));
    if (rows.length > FULL_LAYOUT_LIMIT) return clusterElements(rows);
    const elements = [];
    const groups = new Set();
    for (const row of rows) {
      if (row.group) groups.add(row.group);
      const state = model.states.get(row.name) || "unknown";
      const strip = partitionStrip(model.ranges.get(row.name));
      const checks = model.checks.get(row.name);
      elements.push({ group: "nodes", data: { id: row.name, label: row.name + (checks ? CHECK_MARK[checks] : ""), state,
        kind: row.kind, ...boxFor(row.name + (checks ? CHECK_MARK[checks] : "")), ...(checks ? { checks } : {}),
        color: COLORS[state] || COLORS.unknown, parent: row.group ? `group:${row.group}` : undefined,
        ...(strip ? { strip } : {}) } });
    }
    for (const group of groups) elements.push({ group: "nodes", classes: "group", data: { id: `group:${group}`, label: group } });
    for (const row of rows) {
      for (const up of row.upstream) {
        if (names.has(up)) elements.push({ group: "edges", data: { id: `${up}->${row.name}`, source: up, target: row.name } });
      }
    }
    return { elements, clustered: false };
  }

  function clusterElements(rows) {
    const members = new Map();
    const clusterOfName = new Map();
    for (const row of rows) {
      const key = clusterOf(row);
      clusterOfName.set(row.name, key);
      if (!members.has(key)) members.set(key, []);
      members.get(key).push(row);
    }
    const elements = [];
    for (const [key, list] of members) {
      const states = new Set(list.map((r) => model.states.get(r.name) || "unknown"));
      const notFresh = list.filter((r) => !["fresh", "observed"].includes(model.states.get(r.name))).length;
      const state = worst(states);
      const label = `${key.replace(/^(group|module):/, "")}\n${list.length} assets${notFresh ? ` · ${notFresh} not fresh` : ""}`;
      elements.push({ group: "nodes", classes: "cluster", data: { id: `cluster:${key}`, cluster: key, state,
        color: COLORS[state] || COLORS.unknown, size: list.length, label, ...boxFor(label) } });
    }
    const weights = new Map();
    for (const row of rows) {
      const to = clusterOfName.get(row.name);
      for (const up of row.upstream) {
        const from = clusterOfName.get(up);
        if (from === undefined || from === to) continue;
        const id = `cluster:${from}->cluster:${to}`;
        weights.set(id, (weights.get(id) || 0) + 1);
      }
    }
    for (const [id, weight] of weights) {
      const [source, target] = id.split("->");
      elements.push({ group: "edges", data: { id, source, target, weight } });
    }
    return { elements, clustered: true };
  }

  const STYLE = [
    { selector: "node[color]", style: { "background-color": "data(color)", label: "data(label)", "font-size": 11,
      "text-valign": "center", "text-halign": "center", color: "#fff", "text-outline-color": "data(color)",
      "text-outline-width": 2, shape: "round-rectangle", width: "data(width)", height: "data(height)",
      "min-zoomed-font-size": 6 } },
    { selector: "node[kind = 'source']", style: { shape: "barrel" } },
    { selector: "node[checks = 'failed']", style: { "border-width": 3, "border-color": COLORS.failed, "border-style": "double" } },
    { selector: "node[checks = 'warned']", style: { "border-width": 2, "border-color": COLORS.overdue } },
    { selector: "node[checks = 'passed']", style: { "border-width": 2, "border-color": COLORS.fresh } },
    { selector: "node[strip]", style: { "background-image": "data(strip)", "background-fit": "none",
      "background-width": "100%", "background-height": "6px", "background-position-y": "100%",
      "background-clip": "node", "background-image-containment": "inside" } },
    { selector: "node.group", style: { "background-color": "#f1f3f5", "background-opacity": 0.6, "border-color": "#ced4da",
      "border-width": 1, label: "data(label)", "text-valign": "top", "text-halign": "center", color: "#495057",
      "text-outline-width": 0, "font-size": 12, "font-weight": "bold", padding: "12px", shape: "round-rectangle" } },
    { selector: "node.cluster", style: { "text-wrap": "wrap", "font-size": 12, "border-width": 1, "border-color": "#495057" } },
    { selector: "edge", style: { width: 1.2, "line-color": "#adb5bd", "target-arrow-color": "#adb5bd",
      "target-arrow-shape": "triangle", "curve-style": "bezier", "arrow-scale": 0.8 } },
    { selector: "edge[weight]", style: { width: "mapData(weight, 1, 500, 1, 8)" } },
    { selector: "node:selected", style: { "border-width": 3, "border-color": "#000" } },
  ];

  function drawGraph() {
    const rows = visibleRows();
    const { elements, clustered } = elementsFor(rows);
    const nodes = elements.filter((e) => e.group === "nodes" && e.classes !== "group").length;
    if (cy) cy.destroy();
    cy = cytoscape({ container: $("graph"), elements, style: STYLE, minZoom: 0.02,
      maxZoom: 3, textureOnViewport: nodes > 200, hideEdgesOnViewport: nodes > 200, boxSelectionEnabled: false });
    const big = nodes > 150;
    cy.layout({ name: "dagre", rankDir: "LR", ranker: big ? "tight-tree" : "network-simplex", nodeSep: 14,
      rankSep: big ? 50 : 70, animate: false, fit: true, padding: 20 }).run();
    readable();
    cy.on("tap", "node", (event) => onTap(event.target));
    window.assetflowGraph = { cy, clustered, rows: rows.length, drawnAt: performance.now() };
    crumbs(clustered, rows.length);
    document.body.dataset.ready = "1";
    document.body.dataset.drawn = String((Number(document.body.dataset.drawn) || 0) + 1);  // for tests: a redraw happened
  }

  function readable() {
    // A fit that shrinks labels below legibility starts instead at the left (upstream) end, readable.
    if (cy.zoom() >= MIN_READABLE_ZOOM || cy.elements().empty()) return;
    const box = cy.elements().boundingBox();
    cy.zoom(MIN_READABLE_ZOOM);
    cy.pan({ x: 20 - box.x1 * MIN_READABLE_ZOOM, y: cy.height() / 2 - ((box.y1 + box.y2) / 2) * MIN_READABLE_ZOOM });
  }

  function refit() {
    // The panel took or gave back room: refit a graph small enough to stay readable whole.
    if (!cy) return;
    cy.resize();
    const before = { zoom: cy.zoom(), pan: { ...cy.pan() } };
    cy.fit(undefined, 20);
    if (cy.zoom() < MIN_READABLE_ZOOM) cy.viewport(before);
  }

  function recolor() {
    if (!cy) return;
    if (window.assetflowGraph.clustered) { drawGraph(); return; }  // cluster colours aggregate states: cheap to redraw
    cy.batch(() => {
      cy.nodes().not(".group").forEach((node) => {
        const state = model.states.get(node.id()) || "unknown";
        const checks = model.checks.get(node.id());
        node.data({ state, color: COLORS[state] || COLORS.unknown, label: node.id() + (checks ? CHECK_MARK[checks] : ""),
          checks: checks || "" });
      });
    });
  }

  function crumbs(clustered, count) {
    const box = $("crumbs");
    box.replaceChildren();
    const parts = [];
    if (model.selection) parts.push(`selection: ${model.selection}`);
    if (model.cluster) parts.push(`cluster: ${model.cluster}`);
    box.append(`${count} assets shown${parts.length ? " (" + parts.join("; ") + ")" : ""}`);
    if (clustered) box.append(` — more than ${FULL_LAYOUT_LIMIT}, so grouped into clusters: click one to open it, or narrow the selection.`);
    if (model.cluster) box.append(" ", el("button", { type: "button", onclick: () => { model.cluster = null; drawGraph(); } }, "back to all clusters"));
  }

  function onTap(node) {
    // Redraw after this event: destroying the graph inside its own tap handler stalls cytoscape.
    if (node.hasClass("cluster")) { model.cluster = node.data("cluster"); setTimeout(drawGraph, 0); return; }
    if (node.hasClass("group")) return;
    openPanel(node.id());
  }

  // -- the panel ----------------------------------------------------------------------------

  let panelLoads = 0;  // the newest load wins: a slow answer never overwrites a newer one

  async function openPanel(name) {
    model.panelFor = name;
    const load = ++panelLoads;
    if ($("panel").hidden) { $("panel").hidden = false; refit(); }
    const body = $("panel-body");
    if (body.dataset.asset !== name) {  // a refresh of the asset shown keeps its content until the new one is in
      delete body.dataset.asset;  // data-asset names the asset whose content is shown, never a loading one
      body.replaceChildren(el("h2", {}, name), el("p", {}, "loading…"));
    }
    let show, why, lineage, logs;
    try {
      [show, why, lineage, logs] = await Promise.all([getDoc("show", name), getDoc("why", name).catch(() => null),
        getDoc("lineage", name, { version: "current" }).catch(() => null),
        MODE === "export" ? null : getDoc("logs", name).catch(() => null)]);
    } catch (error) {
      if (load !== panelLoads) return;
      delete body.dataset.asset;
      body.replaceChildren(el("h2", {}, name), el("pre", {}, error.message));
      return;
    }
    if (load !== panelLoads) return;
    body.replaceChildren(...panelContent(show.assets[0], why, lineage), ...logSection(logs));
    body.dataset.asset = name;
  }

  function checksSection(title, verdicts) {  // each verdict, failures first, with what a failed one found
    const order = [...verdicts].sort((x, y) => (x.passed - y.passed) || ((x.severity !== "error") - (y.severity !== "error")));
    return [el("h3", {}, title), el("ul", { class: "checks" }, order.map((v) => {
      const word = v.passed ? "passed" : v.severity === "error" ? "failed" : "warned";
      const findings = !v.passed && v.findings ? el("pre", { class: "findings" }, typeof v.findings === "string"
        ? v.findings : (v.findings.traceback || JSON.stringify(v.findings, null, 1))) : null;
      const color = COLORS[word === "warned" ? "overdue" : word === "passed" ? "fresh" : "failed"];
      return el("li", { "data-check": v.check }, el("span", { class: "badge", style: `background:${color}` }, word),
        el("span", { class: "mono" }, ` ${v.check}: ${v.summary || ""}${v.cached ? " (cached)" : ""}`), findings);
    }))];
  }

  function columnOrigin(c) {  // where a column comes from: upstream columns (SQL: exact; Python: kept by name)
    const from = c.origins.map((o) => `${o.asset}.${o.column}`).join(", ");
    if (c.status === "added") return "added";
    if (c.status === "kept") return from + " (kept)";
    return c.expression ? `${c.expression}${from ? " ← " + from : ""}` : from;
  }

  function panelContent(a, why, lineage) {
    const out = [el("h2", {}, a.name), el("div", {}, badge(a.state), ...a.states.filter((s) => s !== a.state).map(badge),
      el("span", { class: "mono" }, ` ${a.kind}${a.io ? " · " + a.io : ""}${a.group ? " · group " + a.group : ""}`))];
    if (a.description) out.push(el("p", { class: "description" }, a.description));
    out.push(el("div", { class: "mono" }, `defined at ${a.defined_at}`));
    if (a.reasons && a.reasons.length) out.push(el("h3", {}, "Why it is " + a.state), el("ul", { class: "reasons" }, a.reasons.map((r) => el("li", {}, r))));
    const ranges = model.ranges.get(a.name);
    if (ranges && ranges.length) {
      out.push(el("h3", {}, "Partitions"), stripElement(ranges), el("ul", { class: "reasons" }, ranges.map((r) =>
        el("li", {}, `${r.first === r.last ? r.first : r.first + ".." + r.last} ${r.state}${r.reason ? " (" + r.reason + ")" : ""}`))));
    }
    if (why) out.push(...whySection(why));
    if (a.current && a.current.checks && a.current.checks.length) out.push(...checksSection("Checks of the current version", a.current.checks));
    const rejected = (a.materializations || []).find((m) => !m.current && m.checks && m.checks.some((v) => !v.passed)
      && (!a.current || m.id > a.current.id));
    if (rejected) out.push(...checksSection(`Rejected version ${rejected.id} (${short(rejected.data_hash)}), not published`, rejected.checks));
    const current = a.current;
    if (current) {
      out.push(el("h3", {}, "Current version"), el("table", {}, el("tbody", {},
        row("rows", current.rows), row("bytes", current.bytes), row("data hash", current.data_hash),
        row("storage", `${current.io}: ${current.location}`), row("made", when(current.finished_at)),
        row("took", seconds(current.duration_s)), row("run", current.run_id))));
      const origin = Object.fromEntries(((a.columns && a.columns.list) || []).map((c) => [c.name, columnOrigin(c)]));
      out.push(el("h3", {}, "Schema"), el("table", { class: "schema" }, el("thead", {}, el("tr", {}, el("th", {}, "column"), el("th", {}, "type"), el("th", {}, "from"))),
        el("tbody", {}, current.schema.map((c) => el("tr", {}, el("td", { class: "mono" }, c.name), el("td", { class: "mono" }, c.type),
          el("td", { class: "mono origin" }, origin[c.name] || ""))))));
      if (a.columns && a.columns.dropped.length) out.push(el("div", { class: "mono" }, "dropped: " + a.columns.dropped.map((d) => `${d.asset}.${d.column}`).join(", ")));
    }
    if (a.kind === "source" && a.files) {
      out.push(el("h3", {}, `Files (${a.path})`), el("ul", {}, a.files.map((f) => el("li", { class: "mono" }, `${f.path} ${short(f.hash)}`))));
    }
    if (lineage && lineage.version) out.push(el("h3", {}, "Made from (exact upstream versions)"), versionTree(lineage.version));
    if (a.materializations && a.materializations.length) {
      out.push(el("h3", {}, "Last materializations"), el("table", {}, el("thead", {}, el("tr", {},
        ...["id", "finished", "data", "rows", "took", ""].map((h) => el("th", {}, h)))), el("tbody", {},
        a.materializations.map((m) => el("tr", {}, el("td", {}, m.id), el("td", {}, when(m.finished_at)),
          el("td", { class: "mono" }, short(m.data_hash)), el("td", {}, m.rows), el("td", {}, seconds(m.duration_s)),
          el("td", {}, m.current ? "current" : ""))))));
    }
    if (a.upstream.length) out.push(el("h3", {}, "Upstream"), linkList(a.upstream));
    if (a.downstream.length) out.push(el("h3", {}, "Downstream"), linkList(a.downstream));
    return out;
  }

  function logSection(logs) {
    if (!logs || logs.log === null) return [];
    return [el("h3", {}, `Output (run ${logs.run_id})`), el("pre", { class: "log" }, logs.log)];
  }

  function whySection(why) {
    const out = [];
    if (why.inputs && why.inputs.length) {
      out.push(el("h3", {}, "Changed inputs"), el("ul", { class: "inputs" }, why.inputs.map((i) =>
        el("li", {}, el("b", {}, i.name), ` ${i.change}: `, el("span", { class: "mono" }, `${short(i.old_hash)} → ${short(i.new_hash)}`)))));
    }
    for (const change of why.code || []) {
      out.push(el("h3", {}, `Code changed: ${change.description}`), diff(change.diff));
    }
    if (why.code && why.code.length === 0 && why.code_sources_known === false) out.push(el("p", {}, "The old code is no longer stored: no diff."));
    for (const c of why.config || []) out.push(el("div", { class: "mono" }, `config ${c.field}: ${JSON.stringify(c.old)} → ${JSON.stringify(c.new)}`));
    return out;
  }

  function diff(text) {
    return el("pre", { class: "diff" }, (text || "").split("\n").map((line) =>
      el("div", { class: line.startsWith("+") ? "diff-add" : line.startsWith("-") ? "diff-del" : "" }, line || " ")));
  }

  function versionTree(node) {
    return el("ul", { class: "tree" }, el("li", {}, el("b", {}, node.name), " ",
      el("span", { class: "mono" }, short(node.data_hash)), node.materialization_id ? ` #${node.materialization_id}` : "",
      node.current === false ? " (not current)" : "", (node.upstream || []).map(versionTree)));
  }

  function row(label, value) {
    return el("tr", {}, el("th", {}, label), el("td", { class: "mono" }, value === null || value === undefined ? "-" : value));
  }

  function linkList(names) {
    return el("ul", {}, names.map((n) => el("li", {}, el("a", { href: "#", onclick: (e) => { e.preventDefault(); openPanel(n); } }, n))));
  }

  // -- runs ---------------------------------------------------------------------------------

  // What started a run: a schedule, sensor or condition tick (docs/automation.md), else its command line.
  function started(run) {
    const t = run.trigger;
    if (!t || !t.kind || t.kind === "person") return run.command || "";
    const what = t.name || (t.assets || []).join(", ");
    return `${t.kind} ${what}` + (t.resumes ? " (resumed)" : "");
  }

  // Schedules and sensors with their next and last ticks (docs/automation.md); hidden when there are none.
  async function drawAutomation() {
    let schedules, sensors;
    try { [schedules, sensors] = await Promise.all([getDoc("schedules"), getDoc("sensors")]); } catch (e) { return; }
    const last = (t) => t ? `${when(t.tick_at)} ${t.status}: ${t.reason || ""}` : "never";
    const rows = schedules.schedules.map((s) => el("tr", {}, el("td", { class: "mono" }, `schedule ${s.name}`),
      el("td", {}, `${s.cron} ${s.timezone || ""}`), el("td", {}, s.next_ticks.length ? s.next_ticks[0].local : ""),
      el("td", {}, last(s.last_tick)))).concat(sensors.sensors.map((s) => el("tr", {},
      el("td", { class: "mono" }, `sensor ${s.name}`), el("td", {}, `every ${s.interval_s}s`),
      el("td", {}, s.next_tick.local), el("td", {}, last(s.last_tick)))));
    $("automation").querySelector("tbody").replaceChildren(...rows);
    $("automation").hidden = rows.length === 0;
    const health = $("daemon-health");
    health.textContent = daemonHealth(schedules.daemon);
    health.hidden = rows.length === 0;
  }

  // The daemon's line above them, as `assetflow schedules` prints it: not running, failing (with its error), or when it last evaluated.
  function daemonHealth(d) {
    if (!d || !d.running) return "daemon: not running; nothing here runs until `assetflow daemon` (or `assetflow serve`) does";
    const who = `daemon: pid ${d.pid} on ${d.host}, running since ${when(d.since)}`;
    if (d.failing) return `${who}; its evaluations FAIL since ${when(d.failing.since)}, so nothing is claimed or run until it is fixed:\n${d.failing.error}`;
    return `${who}; last evaluated ${d.last_evaluated ? when(d.last_evaluated) : "not yet"}`;
  }

  async function drawRuns() {
    drawAutomation();
    const tbody = $("runs").querySelector("tbody");
    let doc;
    try { doc = await getDoc("history"); } catch (error) { showError(error); return; }
    tbody.replaceChildren(...doc.runs.flatMap((run) => {
      const detail = el("tr", { class: "detail", hidden: "" }, el("td", { colspan: "6" }, el("table", {}, el("tbody", {},
        run.assets.map((a) => el("tr", {}, el("td", {}, a.asset), el("td", {}, a.outcome), el("td", {}, seconds(a.duration_s)),
          el("td", {}, (a.reasons || []).join("; ")), el("td", {}, a.error ? el("pre", {}, a.error) : "")))))));
      const counts = Object.entries(run.counts || {}).map(([k, v]) => el("span", {}, `${v} ${k}`));
      const line = el("tr", { class: "run", onclick: () => { detail.hidden = !detail.hidden; } },
        el("td", { class: "mono" }, run.run_id), el("td", {}, run.status), el("td", {}, when(run.started_at)),
        el("td", {}, seconds(run.duration_s)), el("td", { class: "outcomes" }, counts), el("td", { class: "mono" }, started(run)));
      return [line, detail];
    }));
  }

  // -- refresh and the live loop ------------------------------------------------------------

  function shapeOf(list) {
    return list.assets.map((a) => `${a.name}<${a.upstream.join(",")}|${a.group || ""}|${a.kind}`).join(";");
  }

  async function refresh() {
    let list, status;
    try {
      [list, status] = await Promise.all([getDoc("list"), getDoc("status")]);
    } catch (error) {
      showError(error);
      return false;
    }
    $("error").hidden = true;
    model.list = list;
    model.commonPrefix = commonFolder(list.assets);
    model.status = status;
    model.states = new Map(status.assets.map((a) => [a.name, a.state]));
    model.checks = new Map(status.assets.filter((a) => a.checks && a.checks.length).map((a) => [a.name, checksBadge(a)]));
    model.ranges = new Map(status.assets.filter((a) => a.ranges).map((a) => [a.name, a.ranges]));
    drawCounts(status);
    const shape = shapeOf(list);
    if (shape !== model.shapeKey || !cy) { model.shapeKey = shape; await applySelection(model.selection, false); drawGraph(); }
    else recolor();
    if (model.panelFor && !$("panel").hidden) openPanel(model.panelFor);
    if (model.view === "runs") drawRuns();
    return true;
  }

  function drawCounts(status) {
    $("counts").replaceChildren(...STATES.filter((s) => status.counts[s]).map((s) =>
      el("span", { class: "chip", style: `background:${COLORS[s]}`, "data-state": s }, `${status.counts[s]} ${s}`)));
  }

  async function applySelection(text, redraw) {
    model.selection = text.trim();
    model.cluster = null;
    $("selection").classList.remove("invalid");
    showMessage("");
    if (!model.selection) { model.selected = null; }
    else if (MODE === "export") {
      // A static snapshot cannot run the selection language: names and globs only.
      const pattern = new RegExp("^(" + model.selection.split(/\s+/).map((t) =>
        t.replace(/[.+^${}()|\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".")).join("|") + ")$");
      model.selected = new Set(model.list.assets.filter((a) => pattern.test(a.name)).map((a) => a.name));
      showMessage("This is a static snapshot: the selection box matches names and globs only (`assetflow ui` runs the full selection language).");
    } else {
      try {
        const doc = await getDoc("list", null, { select: model.selection });
        model.selected = new Set(doc.assets.map((a) => a.name));
      } catch (error) {
        $("selection").classList.add("invalid");
        showMessage(error.message);
        model.selected = null;
      }
    }
    if (redraw) drawGraph();
  }

  async function poll() {
    try {
      const doc = await getDoc("changes");
      $("live").classList.remove("stopped");
      $("live").textContent = "live";
      if (doc.token !== model.token) { model.token = doc.token; await refresh(); }
      const launch = doc.launch;
      if (launch && !launch.running && launch.exit_code !== null && model.launchShown !== launch.pid) {
        model.launchShown = launch.pid;
        showMessage(`Run (pid ${launch.pid}) ended with exit code ${launch.exit_code}.\n${launch.output}`);
      }
    } catch (error) {
      $("live").classList.add("stopped");
      $("live").textContent = "server unreachable";
    }
    setTimeout(poll, POLL_MS);
  }

  async function materialize() {
    const response = await fetch("api/materialize", { method: "POST", credentials: "same-origin",
      headers: { "content-type": "application/json", "x-csrf-token": CSRF }, body: JSON.stringify({ select: model.selection }) });
    const doc = await response.json();
    showMessage(response.ok ? (doc.started ? `Run started (pid ${doc.launch.pid})${model.selection ? " for " + model.selection : ""}…` : doc.reason)
      : doc.error.message);
  }

  function setView(view) {
    model.view = view;
    $("graph-view").hidden = view !== "graph";
    $("runs-view").hidden = view !== "runs";
    $("tab-graph").classList.toggle("active", view === "graph");
    $("tab-runs").classList.toggle("active", view === "runs");
    if (view === "runs") drawRuns();
  }

  function start() {
    cytoscape.use(cytoscapeDagre);
    $("legend").replaceChildren(...Object.entries(COLORS).map(([s, c]) => el("li", { style: `--c:${c}` }, s)));
    $("selection-form").addEventListener("submit", (e) => { e.preventDefault(); applySelection($("selection").value, true); });
    $("clear-selection").addEventListener("click", () => { $("selection").value = ""; applySelection("", true); });
    $("panel-close").addEventListener("click", () => { $("panel").hidden = true; model.panelFor = null; refit(); });
    $("tab-graph").addEventListener("click", () => setView("graph"));
    $("tab-runs").addEventListener("click", () => setView("runs"));
    if (ALLOW_RUN) { $("materialize").hidden = false; $("materialize").addEventListener("click", materialize); }
    if (MODE === "export") { $("live").textContent = "snapshot"; refresh(); }
    else poll();
  }

  start();
})();
