// The Annals console: one page, hash-routed, over the server's JSON
// endpoints (/console/api/..., /api/projections/...). No build step.

const API = "/console/api";
const main = document.getElementById("main");
let stopPage = () => {}; // what the current page runs (timers, live tails)

// --- helpers -------------------------------------------------------------

// h builds an element: h("td", {class: "num"}, "12", child...).
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

// api calls an endpoint and returns its JSON; a failure throws an Error
// whose message is the server's (never a stack trace).
async function api(path, opts = {}) {
  let resp;
  try {
    resp = await fetch(path, { credentials: "same-origin", ...opts });
  } catch (e) {
    throw new Error("The server cannot be reached.");
  }
  let body = null;
  try { body = await resp.json(); } catch (e) { /* not JSON */ }
  if (!resp.ok) throw new Error((body && body.error) || `The server answered ${resp.status} ${resp.statusText}.`);
  return body;
}

function send(method, path, body) {
  const opts = { method, headers: {} };
  if (body !== undefined) {
    opts.headers["Content-Type"] = "application/json";
    opts.body = JSON.stringify(body);
  }
  return api(path, opts);
}

function q(params) {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== "") u.set(k, v);
  return u.toString();
}

function fmtNum(n) { return n === undefined || n === null ? "—" : Number(n).toLocaleString("en-US"); }
function fmtTime(t) { return t ? new Date(t).toLocaleString() : "—"; }
function fmtBytes(n) {
  if (!n) return "0 B";
  const u = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return `${n.toFixed(i ? 1 : 0)} ${u[i]}`;
}
function fmtDuration(s) {
  s = Math.floor(s);
  const d = Math.floor(s / 86400), hh = Math.floor(s % 86400 / 3600), m = Math.floor(s % 3600 / 60);
  return d ? `${d}d ${hh}h` : hh ? `${hh}h ${m}m` : m ? `${m}m ${s % 60}s` : `${s}s`;
}
function badge(text, cls = text) { return h("span", { class: `badge ${cls}` }, text); }
function errorBox(e) { return h("div", { class: "error", role: "alert" }, e.message || String(e)); }
function notice(text) { return h("div", { class: "notice", role: "status" }, text); }
function empty(text) { return h("p", { class: "empty" }, text); }
function table(headers, rows) {
  return h("table", {}, h("thead", {}, h("tr", {}, headers.map(([t, cls]) => h("th", { class: cls }, t)))), h("tbody", {}, rows));
}

// confirm asks before an action that changes something.
function confirmAction(text) {
  const dlg = document.getElementById("confirm");
  document.getElementById("confirm-text").textContent = text;
  return new Promise((resolve) => {
    dlg.addEventListener("close", () => resolve(dlg.returnValue === "ok"), { once: true });
    dlg.showModal();
  });
}

function setPage(title, ...content) {
  main.replaceChildren(h("h1", {}, title), ...content);
}

// every runs fn now and each ms, until the page changes.
function every(ms, fn) {
  let alive = true;
  const tick = async () => { if (alive) { await fn(); if (alive) timer = setTimeout(tick, ms); } };
  let timer = setTimeout(tick, 0);
  const stop = () => { alive = false; clearTimeout(timer); };
  const prev = stopPage;
  stopPage = () => { prev(); stop(); };
}

// --- dashboard -------------------------------------------------------------

const charts = {};

function chart(id, title, series, fmt) {
  const el = h("div", { class: "chart", id });
  const box = h("div", { class: "panel" }, h("h2", {}, title), el);
  charts[id] = { el, series, fmt, plot: null };
  return box;
}

function drawChart(id, xs, ys) {
  const c = charts[id];
  if (!c || !window.uPlot) return;
  const width = Math.max(300, c.el.clientWidth || 380);
  if (!c.plot || c.plot.series.length !== ys.length + 1) {
    if (c.plot) c.plot.destroy();
    const colors = ["#2f5bd3", "#c53030", "#1f8a4c", "#b7791f", "#6b46c1", "#0f766e"];
    c.plot = new uPlot({
      width, height: 180,
      series: [{}, ...c.series.map((label, i) => ({ label, stroke: colors[i % colors.length], width: 1.5, value: (u, v) => v === null ? "—" : c.fmt(v) }))],
      axes: [{}, { values: (u, vals) => vals.map(c.fmt), size: 70 }],
      legend: { live: true },
    }, [xs, ...ys], c.el);
  } else {
    c.plot.setSize({ width, height: 180 });
    c.plot.setData([xs, ...ys]);
  }
}

async function dashboard() {
  const facts = h("div", { class: "facts" });
  const status = h("div");
  const ms = (v) => `${(v * 1000).toFixed(v < 0.01 ? 2 : 1)} ms`;
  const rate = (v) => `${fmtNum(Math.round(v))}/s`;
  setPage("Dashboard", status, h("div", { class: "panel" }, facts),
    h("div", { class: "grid" },
      chart("c-appends", "Appends and events", ["appends/s", "events written/s", "events read/s"], rate),
      chart("c-latency", "Append and sync latency", ["append p50", "append p99", "sync p50", "sync p99"], ms),
      chart("c-lag", "Lag (events)", ["max $all subscription lag"], fmtNum),
      chart("c-disk", "Disk used", ["store"], fmtBytes)));
  every(5000, async () => {
    try {
      const [info, dash] = await Promise.all([api(`${API}/info`), api(`${API}/dashboard`)]);
      document.getElementById("server").textContent = `${info.store} · v${info.version}`;
      const l = info.limits;
      facts.replaceChildren(...[
        ["Version", info.version], ["Store", info.store], ["Uptime", fmtDuration(info.uptimeSeconds)],
        ["Head position", fmtNum(info.head)], ["Max event", fmtBytes(l.MaxEventSizeBytes)],
        ["Max append", `${fmtBytes(l.MaxAppendSizeBytes)}, ${fmtNum(l.MaxAppendEvents)} events`],
        ["Max stream name", `${fmtNum(l.MaxStreamNameBytes)} bytes`],
      ].map(([k, v]) => h("div", {}, h("span", {}, k), h("b", {}, v))));
      status.replaceChildren();
      if (!dash.enabled) { status.replaceChildren(notice("Metrics are off (--metrics=false): no charts.")); return; }
      const s = dash.samples;
      if (!s.length) status.replaceChildren(notice(`Collecting: the first point comes ${dash.intervalSeconds} s after the start.`));
      const xs = s.map((p) => Date.parse(p.at) / 1000);
      drawChart("c-appends", xs, [s.map((p) => p.appendsPerSecond), s.map((p) => p.eventsWrittenPerSecond), s.map((p) => p.eventsReadPerSecond)]);
      drawChart("c-latency", xs, [s.map((p) => p.appendP50Seconds), s.map((p) => p.appendP99Seconds), s.map((p) => p.syncP50Seconds), s.map((p) => p.syncP99Seconds)]);
      const names = [...new Set(s.flatMap((p) => Object.keys(p.projectionLag || {})))].sort();
      charts["c-lag"].series = ["max $all subscription lag", ...names.map((n) => `projection ${n}`)];
      drawChart("c-lag", xs, [s.map((p) => p.subscriptionLag), ...names.map((n) => s.map((p) => (p.projectionLag || {})[n] ?? null))]);
      drawChart("c-disk", xs, [s.map((p) => p.diskUsedBytes)]);
    } catch (e) { status.replaceChildren(errorBox(e)); }
  });
}

// --- streams -----------------------------------------------------------------

function eventRows(events, onClick) {
  return events.map((e) => h("tr", { class: "link", "data-event": `${e.stream}/${e.revision}`, onclick: () => onClick(e) },
    h("td", { class: "num" }, fmtNum(e.revision)), h("td", {}, e.type), h("td", { class: "mono" }, e.stream),
    h("td", { class: "num" }, fmtNum(e.position)), h("td", {}, fmtTime(e.recorded)), h("td", { class: "num" }, fmtBytes(e.sizeBytes)),
    h("td", { class: "mono muted" }, (e.dataEncoding ? "(binary)" : e.data.replace(/\s+/g, " ")).slice(0, 80))));
}
const eventHeaders = [["Revision", "num"], ["Type"], ["Stream"], ["Position", "num"], ["Recorded"], ["Size", "num"], ["Data"]];
const openEvent = (e) => { location.hash = `#/event/${encodeURIComponent(e.stream)}/${e.revision}`; };

async function streams(params) {
  const prefix = params.get("prefix") || "";
  const input = h("input", { type: "text", name: "prefix", value: prefix, placeholder: "prefix or category, e.g. order-", "aria-label": "Stream prefix" });
  const form = h("form", { class: "bar", onsubmit: (ev) => { ev.preventDefault(); location.hash = `#/streams?${q({ prefix: input.value })}`; } },
    input, h("button", { class: "primary" }, "Search"),
    h("span", { class: "muted" }, "or open a stream by name:"),
    h("button", { type: "button", onclick: () => { if (input.value) location.hash = `#/stream/${encodeURIComponent(input.value)}`; } }, "Open"));
  const out = h("div");
  setPage("Streams", h("div", { class: "panel" }, form, out));
  try {
    const res = await api(`${API}/streams?${q({ prefix, after: params.get("after") })}`);
    if (!res.streams.length) { out.replaceChildren(empty(prefix ? `No stream starts with “${prefix}”.` : "No streams yet: append an event and it shows here.")); return; }
    out.replaceChildren(table([["Stream"], ["Last revision", "num"], ["Last position", "num"], ["State"]],
      res.streams.map((s) => h("tr", { class: "link", "data-stream": s.Name, onclick: () => { location.hash = `#/stream/${encodeURIComponent(s.Name)}`; } },
        h("td", { class: "mono" }, s.Name), h("td", { class: "num" }, fmtNum(s.LastRevision)), h("td", { class: "num" }, fmtNum(s.LastPosition)),
        h("td", {}, s.Tombstoned ? badge("tombstoned", "bad") : s.Deleted ? badge("deleted", "paused") : badge("live", "ok"))))),
      res.next ? h("div", { class: "pager" }, h("a", { href: `#/streams?${q({ prefix, after: res.next })}` }, "Next page →")) : "");
  } catch (e) { out.replaceChildren(errorBox(e)); }
}

async function stream(name, params) {
  const dir = params.get("direction") || "backwards";
  const from = params.get("from") || (dir === "backwards" ? "end" : "start");
  const out = h("div"), meta = h("div");
  const link = (d, f) => `#/stream/${encodeURIComponent(name)}?${q({ direction: d, from: f })}`;
  setPage(`Stream ${name}`,
    h("div", { class: "panel" }, h("div", { class: "bar actions" },
      h("a", { href: link("forwards", "start") }, "⇤ First"), h("span", { class: "muted" }, " · "),
      h("a", { href: link("backwards", "end") }, "Last ⇥"), h("span", { class: "muted" }, ` · reading ${dir} from ${from}`)), out),
    h("div", { class: "panel" }, h("h2", {}, "Metadata"), meta));
  try {
    const res = await api(`${API}/stream?${q({ name, direction: dir, from, limit: 50 })}`);
    out.replaceChildren(res.events.length ? table(eventHeaders, eventRows(res.events, openEvent)) : empty("This stream has no events here."),
      res.next !== null ? h("div", { class: "pager" }, h("a", { href: link(dir, res.next) }, dir === "backwards" ? "Older →" : "Newer →")) : "");
  } catch (e) { out.replaceChildren(errorBox(e)); }
  try {
    const md = await api(`${API}/metadata?${q({ stream: name })}`);
    meta.replaceChildren(h("p", { class: "muted" }, `Metastream revision: ${md.revision}`), h("pre", {}, JSON.stringify(md.metadata, null, 2)));
  } catch (e) { meta.replaceChildren(errorBox(e)); }
}

async function eventPage(name, rev) {
  const out = h("div");
  setPage(`Event ${rev} of ${name}`, out);
  try {
    const e = await api(`${API}/event?${q({ stream: name, revision: rev })}`);
    out.replaceChildren(h("div", { class: "panel" }, h("div", { class: "facts" }, ...[
      ["Stream", h("a", { href: `#/stream/${encodeURIComponent(e.stream)}` }, e.stream)], ["Revision", fmtNum(e.revision)],
      ["Position", fmtNum(e.position)], ["Type", e.type], ["Id", e.id], ["Content type", e.contentType],
      ["Recorded", fmtTime(e.recorded)], ["Size", fmtBytes(e.sizeBytes)],
    ].map(([k, v]) => h("div", {}, h("span", {}, k), h("b", {}, v))))),
    h("div", { class: "panel" }, h("h2", {}, e.dataEncoding ? "Data (base64: not UTF-8)" : "Data"), h("pre", { id: "event-data" }, e.data || "(empty)"),
      e.truncated ? h("p", { class: "muted" }, "Cut: the event is larger than the console shows whole.") : ""),
    h("div", { class: "panel" }, h("h2", {}, "Metadata"), h("pre", {}, e.metadata || "(none)")));
  } catch (e) { out.replaceChildren(errorBox(e)); }
}

// --- live tail ---------------------------------------------------------------

function tail(params) {
  const kind = params.get("on") || "prefix", value = params.get("value") || "";
  const kinds = [["prefix", "stream prefix"], ["type", "event type prefix"], ["regex", "stream regex"], ["typeRegex", "event type regex"], ["category", "category"]];
  const sel = h("select", { name: "on", "aria-label": "Filter on" }, kinds.map(([v, t]) => h("option", { value: v, selected: kind === v }, t)));
  const input = h("input", { type: "text", name: "value", value, placeholder: "empty: every event" });
  const state = h("span", { class: "muted", id: "tail-state" }, "connecting…");
  const body = h("tbody");
  setPage("Live tail of $all", h("div", { class: "panel" },
    h("form", { class: "bar", onsubmit: (ev) => { ev.preventDefault(); location.hash = `#/tail?${q({ on: sel.value, value: input.value })}`; } },
      h("span", {}, "Filter on"), sel, input, h("button", { class: "primary" }, "Apply"), state),
    h("table", {}, h("thead", {}, h("tr", {}, eventHeaders.map(([t, cls]) => h("th", { class: cls }, t)))), body)));
  const url = `${API}/live?${q(value ? { [kind]: value } : {})}`;
  const src = new EventSource(url);
  src.onopen = () => { state.textContent = "live: new events appear at the top"; };
  src.onerror = () => {
    if (src.readyState !== EventSource.CLOSED) { state.textContent = "disconnected; retrying…"; return; }
    // Refused (a bad filter, too many tails): EventSource keeps the answer
    // from us, so ask once more for its message.
    tailRefusal(url).then((msg) => state.replaceChildren(errorBox(new Error(msg))));
  };
  src.addEventListener("skipped", (m) => {
    const gap = JSON.parse(m.data);
    body.prepend(h("tr", {}, h("td", { colspan: 7, class: "muted" }, `… events between positions ${fmtNum(gap.after)} and ${fmtNum(gap.before)} not shown: more than 100 a second`)));
  });
  src.onmessage = (m) => {
    const e = JSON.parse(m.data);
    body.prepend(...eventRows([e], openEvent));
    while (body.children.length > 200) body.lastChild.remove();
  };
  const prev = stopPage;
  stopPage = () => { prev(); src.close(); };
}

async function tailRefusal(url) {
  const ac = new AbortController();
  try {
    const resp = await fetch(url, { credentials: "same-origin", signal: ac.signal });
    if (resp.ok) return "The live tail was cut off; reload the page to follow again.";
    const body = await resp.json().catch(() => null);
    return (body && body.error) || `The server answered ${resp.status} ${resp.statusText}.`;
  } catch (e) {
    return "The server cannot be reached.";
  } finally { ac.abort(); }
}

// --- projections -------------------------------------------------------------

async function projectionAction(name, action) {
  const what = { pause: "Pause", resume: "Resume", reset: "Reset (empty the read model and replay the log into it)",
    rebuild: "Rebuild blue/green (build the next generation while this one serves)", "replay-parked": "Replay the parked events of" }[action];
  if (!(await confirmAction(`${what} projection “${name}”?`))) return null;
  return send("POST", `/api/projections/${encodeURIComponent(name)}/${action}`);
}

async function projections() {
  const status = h("div"), out = h("div"), parked = h("div");
  const lagNote = h("p", { class: "muted" });
  const lagChart = chart("p-lag", "Lag, last 15 minutes (events)", [], fmtNum);
  lagChart.append(lagNote);
  setPage("Projections", status, h("div", { class: "panel" }, out), lagChart, parked);
  const drawLag = async () => {
    const dash = await api(`${API}/dashboard`);
    if (!dash.enabled) { lagNote.textContent = "Metrics are off (--metrics=false): no chart."; return; }
    const s = dash.samples, names = [...new Set(s.flatMap((p) => Object.keys(p.projectionLag || {})))].sort();
    lagNote.textContent = names.length ? "" : `Collecting: a point every ${dash.intervalSeconds} s.`;
    charts["p-lag"].series = names;
    drawChart("p-lag", s.map((p) => Date.parse(p.at) / 1000), names.map((n) => s.map((p) => (p.projectionLag || {})[n] ?? null)));
  };
  const load = async () => {
    try {
      drawLag().catch((e) => { lagNote.textContent = e.message; });
      const res = await api("/api/projections");
      if (!res.projections.length) { out.replaceChildren(empty("No projections run in this server (annals serve --projection NAME).")); return; }
      out.replaceChildren(table([["Projection"], ["State"], ["Position", "num"], ["Head", "num"], ["Lag", "num"], ["Events/s", "num"], ["Parked", "num"], ["Generation", "num"], ["Last error"], ["Actions"]],
        res.projections.map((p) => h("tr", { class: p.state === "failed" ? "failed" : "", "data-projection": p.name },
          h("td", { class: "mono" }, p.name), h("td", {}, badge(p.state)),
          h("td", { class: "num" }, fmtNum(p.position)), h("td", { class: "num" }, fmtNum(p.head)), h("td", { class: "num" }, fmtNum(p.lag)),
          h("td", { class: "num" }, (p.eventsPerSecond || 0).toFixed(1)), h("td", { class: "num" }, fmtNum(p.parked)),
          h("td", { class: "num" }, fmtNum(p.generation), p.rebuild ? h("div", { class: "muted" }, `building ${p.rebuild.generation}: lag ${fmtNum(p.rebuild.lag)}`) : ""),
          h("td", {}, p.lastError ? h("div", {}, h("div", { class: "error" }, p.lastError), h("div", { class: "muted" }, fmtTime(p.lastErrorAt))) : h("span", { class: "muted" }, "none")),
          h("td", {}, h("div", { class: "actions" }, ["pause", "resume", "reset", "rebuild", "replay-parked"].map((a) =>
            h("button", { "data-action": a, onclick: async () => {
              try { const r = await projectionAction(p.name, a); if (r) status.replaceChildren(notice(`${a} ${p.name}: done${r.replayed !== undefined ? `, ${r.replayed} replayed` : ""}.`)); await load(); }
              catch (e) { status.replaceChildren(errorBox(e)); }
            } }, a)),
            h("button", { onclick: () => showParked(p.name, parked) }, "parked events")))))));
    } catch (e) { out.replaceChildren(errorBox(e)); }
  };
  every(3000, load);
}

async function showParked(name, box) {
  try {
    const res = await api(`/api/projections/${encodeURIComponent(name)}/parked?limit=100`);
    box.replaceChildren(h("div", { class: "panel" }, h("h2", {}, `Parked events of ${name}`),
      res.parked.length ? table([["Position", "num"], ["Stream"], ["Type"], ["Error"], ["Attempts", "num"], ["Parked at"]],
        res.parked.map((e) => h("tr", { class: "link", onclick: () => openAt(e) },
          h("td", { class: "num" }, fmtNum(e.position)), h("td", { class: "mono" }, e.stream), h("td", {}, e.type),
          h("td", {}, h("span", { class: "error" }, e.error)), h("td", { class: "num" }, e.attempts), h("td", {}, fmtTime(e.parkedAt)))))
        : empty("Nothing parked.")));
  } catch (e) { box.replaceChildren(errorBox(e)); }
}

// openAt opens the event at a global position (a parked event names its
// position, not its revision).
async function openAt(e) {
  const res = await api(`${API}/all?${q({ from: e.position, limit: 1 })}`);
  if (res.events.length) openEvent(res.events[0]);
}

// --- persistent subscriptions ---------------------------------------------------

async function subscriptions() {
  const status = h("div"), out = h("div"), parked = h("div");
  const stream = h("input", { type: "text", name: "stream", placeholder: "stream, or $all", "aria-label": "Stream" });
  const group = h("input", { type: "text", name: "group", placeholder: "group name", "aria-label": "Group" });
  const settings = h("textarea", { name: "settings", "aria-label": "Settings (JSON)" });
  const submit = (method) => async () => {
    let body;
    try { body = { stream: stream.value, group: group.value, settings: settings.value.trim() ? JSON.parse(settings.value) : undefined }; }
    catch (e) { status.replaceChildren(errorBox(new Error(`The settings are not JSON: ${e.message}`))); return; }
    try {
      await send(method, `${API}/subscriptions`, body);
      status.replaceChildren(notice(`${method === "POST" ? "Created" : "Updated"} ${group.value} on ${stream.value}.`));
      await load();
    } catch (e) { status.replaceChildren(errorBox(e)); }
  };
  setPage("Persistent subscriptions", status, h("div", { class: "panel" }, out), parked,
    h("div", { class: "panel" }, h("h2", {}, "Create or update a group"),
      h("div", { class: "bar" }, stream, group),
      h("p", { class: "muted" }, "Settings: the defaults with what you change; unknown fields are refused."), settings,
      h("div", { class: "actions" }, h("button", { class: "primary", id: "create-group", onclick: submit("POST") }, "Create"),
        h("button", { id: "update-group", onclick: submit("PUT") }, "Update"))));
  const load = async () => {
    try {
      const res = await api(`${API}/subscriptions`);
      if (!settings.value) settings.value = JSON.stringify(res.defaults, null, 2);
      if (!res.groups.length) { out.replaceChildren(empty("No persistent subscription groups yet: create one below.")); return; }
      out.replaceChildren(table([["Stream"], ["Group"], ["Status"], ["Consumers", "num"], ["In flight", "num"], ["Buffered", "num"], ["Parked", "num"], ["Checkpoint", "num"], ["Delivered", "num"], ["Actions"]],
        res.groups.map((g) => h("tr", { "data-group": `${g.stream}/${g.group}` },
          h("td", { class: "mono" }, g.stream), h("td", { class: "mono" }, g.group), h("td", {}, badge(g.status), g.readError ? h("div", { class: "error" }, g.readError) : ""),
          h("td", { class: "num", title: g.consumers.map((c) => c.name).join(", ") }, g.consumers.length),
          h("td", { class: "num" }, g.inFlight), h("td", { class: "num" }, g.buffered), h("td", { class: "num" }, fmtNum(g.parked)),
          h("td", { class: "num" }, g.checkpoint === null ? "—" : fmtNum(g.checkpoint)), h("td", { class: "num" }, fmtNum(g.delivered)),
          h("td", {}, h("div", { class: "actions" },
            h("button", { onclick: () => { stream.value = g.stream; group.value = g.group; settings.value = JSON.stringify(g.settings, null, 2); } }, "edit"),
            h("button", { onclick: () => showGroupParked(g, parked) }, "parked"),
            h("button", { onclick: async () => {
              if (!(await confirmAction(`Replay the parked events of ${g.group} on ${g.stream}?`))) return;
              try { await send("POST", `${API}/subscriptions/replay-parked?${q({ stream: g.stream, group: g.group })}`); status.replaceChildren(notice("Replaying the parked events.")); await load(); }
              catch (e) { status.replaceChildren(errorBox(e)); }
            } }, "replay parked"),
            h("button", { class: "danger", "data-action": "delete", onclick: async () => {
              if (!(await confirmAction(`Delete group ${g.group} on ${g.stream}? Its consumers are dropped.`))) return;
              try { await send("DELETE", `${API}/subscriptions?${q({ stream: g.stream, group: g.group })}`); status.replaceChildren(notice(`Deleted ${g.group}.`)); await load(); }
              catch (e) { status.replaceChildren(errorBox(e)); }
            } }, "delete")))))));
    } catch (e) { out.replaceChildren(errorBox(e)); }
  };
  every(3000, load);
}

async function showGroupParked(g, box) {
  try {
    const res = await api(`${API}/subscriptions/parked?${q({ stream: g.stream, group: g.group, limit: 100 })}`);
    box.replaceChildren(h("div", { class: "panel" }, h("h2", {}, `Parked events of ${g.group}`),
      res.events.length ? table(eventHeaders, eventRows(res.events, openEvent)) : empty("Nothing parked.")));
  } catch (e) { box.replaceChildren(errorBox(e)); }
}

// --- error log -----------------------------------------------------------------

async function logs(params) {
  const level = params.get("level") || "", text = params.get("q") || "";
  const sel = h("select", { name: "level", "aria-label": "Level" }, ["", "WARN", "ERROR"].map((l) => h("option", { value: l, selected: l === level }, l || "warnings and errors")));
  const input = h("input", { type: "text", name: "q", value: text, placeholder: "text, projection, group…" });
  const out = h("div");
  setPage("Error log", h("div", { class: "panel" },
    h("form", { class: "bar", onsubmit: (ev) => { ev.preventDefault(); location.hash = `#/logs?${q({ level: sel.value, q: input.value })}`; } },
      sel, input, h("button", { class: "primary" }, "Filter")), out));
  every(5000, async () => {
    try {
      const res = await api(`${API}/logs`);
      const needle = text.toLowerCase();
      const rows = res.records.filter((r) => (!level || r.level === level) &&
        (!needle || JSON.stringify(r).toLowerCase().includes(needle)));
      out.replaceChildren(rows.length ? table([["Time"], ["Level"], ["Concerns"], ["Message"], ["Details"]],
        rows.map((r) => h("tr", {}, h("td", {}, fmtTime(r.time)), h("td", {}, badge(r.level)), h("td", { class: "mono" }, r.concerns || "—"),
          h("td", {}, r.message), h("td", { class: "mono muted" }, Object.entries(r.attrs || {}).map(([k, v]) => `${k}=${v}`).join("  ")))))
        : empty(res.records.length ? "No record matches." : "No warnings or errors since the server started."),
        h("p", { class: "muted" }, `The last ${res.kept} warnings and errors are kept.`),
        h("h2", {}, "Alert deliveries"),
        (res.deliveries || []).length ? table([["Time"], ["Alert"], ["Subject"], ["Webhook"], ["Outcome"], ["Attempts", "num"]],
          res.deliveries.map((d) => h("tr", {}, h("td", {}, fmtTime(d.At)), h("td", {}, d.Alert.kind), h("td", { class: "mono" }, d.Alert.subject),
            h("td", { class: "mono" }, d.URL), h("td", {}, d.OK ? badge("delivered", "ok") : h("span", {}, badge("failed", "bad"), " ", d.Err)),
            h("td", { class: "num" }, d.Attempts))))
          : empty("No alert sent to a webhook yet (--alert-webhook URL)."));
    } catch (e) { out.replaceChildren(errorBox(e)); }
  });
}

// --- router ------------------------------------------------------------------

// --- process managers -------------------------------------------------------

const processBadge = (st) => badge(st, { done: "ok", waiting: "standby", compensating: "paused" }[st] || st);

async function processes(parts) {
  const [name, id] = parts;
  if (id !== undefined) return processInstance(name, id);
  const status = h("div"), out = h("div");
  setPage(name ? `Process manager ${name}` : "Process managers", status, out);
  const load = async () => {
    try {
      if (!name) {
        const res = await api("/api/processes");
        if (!res.managers.length) { out.replaceChildren(empty("No process manager has run on this store (package process).")); return; }
        out.replaceChildren(h("div", { class: "panel" }, table([["Manager"], ["Started", "num"], ["Finished", "num"], ["Active", "num"], ["Failed", "num"], ["Checkpoint", "num"], ["Held by"]],
          res.managers.map((m) => h("tr", { class: "link", "data-manager": m.manager, onclick: () => { location.hash = `#/processes/${encodeURIComponent(m.manager)}`; } },
            h("td", { class: "mono" }, m.manager), h("td", { class: "num" }, fmtNum(m.started)), h("td", { class: "num" }, fmtNum(m.finished)),
            h("td", { class: "num" }, fmtNum(m.active.length)), h("td", { class: "num" }, m.failed.length ? badge(fmtNum(m.failed.length), "failed") : "0"),
            h("td", { class: "num" }, fmtNum(m.checkpoint)),
            h("td", { class: "mono" }, m.holder || h("span", { class: "muted" }, "no run")))))));
        return;
      }
      const rep = await api(`/api/processes/${encodeURIComponent(name)}`);
      const rows = [...rep.active, ...rep.failed];
      out.replaceChildren(h("div", { class: "panel" }, rows.length ? table(
        [["Instance"], ["Status"], ["Steps", "num"], ["Done", "num"], ["Undone", "num"], ["Abandoned", "num"], ["Retrying", "num"], ["Updated"], ["Error"], ["Actions"]],
        rows.map((st) => h("tr", { class: st.status === "failed" ? "failed" : "", "data-instance": st.id },
          h("td", { class: "mono" }, h("a", { href: `#/processes/${encodeURIComponent(name)}/${encodeURIComponent(st.id)}` }, st.id)), h("td", {}, processBadge(st.status)),
          // A failed instance is listed from its end record: its steps are on its own page.
          ...["steps", "done", "undone", "abandoned", "retrying"].map((k) => h("td", { class: "num" }, st.status === "failed" ? "—" : fmtNum(st[k]))),
          h("td", {}, fmtTime(st.updated)),
          h("td", {}, st.error || st.lastError ? h("div", { class: "error" }, st.error || st.lastError) : h("span", { class: "muted" }, "none")),
          h("td", {}, h("div", { class: "actions" }, processActions(name, st, status, load)))))) : empty("No instance is running or failed.")));
    } catch (e) { out.replaceChildren(errorBox(e)); }
  };
  every(3000, load);
}

function processActions(name, st, status, done) {
  const act = (action, what) => h("button", { "data-action": action, onclick: async () => {
    if (!(await confirmAction(`${what} instance “${st.id}” of ${name}?`))) return;
    try {
      await send("POST", `/api/processes/${encodeURIComponent(name)}/${encodeURIComponent(st.id)}/${action}`);
      status.replaceChildren(notice(`${action} ${st.id}: queued; the manager's run takes it.`));
      await done();
    } catch (e) { status.replaceChildren(errorBox(e)); }
  } }, action);
  return st.status === "failed" ? [act("retry", "Retry (send again what is not done)"), act("abandon", "Dismiss")]
    : [act("abandon", "Abandon (fail it, send nothing more)")];
}

async function processInstance(name, id) {
  const out = h("div");
  setPage(`Instance ${id} of ${name}`, out);
  try {
    const res = await api(`/api/processes/${encodeURIComponent(name)}/${encodeURIComponent(id)}`);
    const st = res.instance;
    out.replaceChildren(
      h("div", { class: "panel facts" }, ...[["Status", processBadge(st.status)], ["Steps", fmtNum(st.steps)], ["Done", fmtNum(st.done)],
        ["Undone", fmtNum(st.undone)], ["Abandoned", fmtNum(st.abandoned)], ["Retrying", fmtNum(st.retrying)], ["Updated", fmtTime(st.updated)]]
        .map(([k, v]) => h("div", {}, h("span", {}, k), h("b", {}, v)))),
      st.error ? errorBox(new Error(st.error)) : "",
      (st.timers || []).length ? h("div", { class: "panel" }, h("h2", {}, "Timers"), table([["Name"], ["At"]], st.timers.map((t) => h("tr", {}, h("td", {}, t.name), h("td", {}, fmtTime(t.at)))))) : "",
      h("div", { class: "panel" }, h("h2", {}, "History"), table([["Revision", "num"], ["Recorded"], ["Record"], ["Step", "num"], ["Error"]],
        res.history.map((e) => h("tr", {}, h("td", { class: "num" }, fmtNum(e.revision)), h("td", {}, fmtTime(e.recorded)),
          h("td", {}, e.kind + (e.undo ? " (undo)" : "") + (e.steps ? ` (${fmtNum(e.steps)} steps)` : "")),
          h("td", { class: "num" }, ["StepDone", "StepFailed", "StepAbandoned", "Compensating"].includes(e.kind) ? fmtNum(e.step) : ""),
          h("td", {}, e.error ? h("div", { class: "error" }, e.error) : ""))))));
  } catch (e) { out.replaceChildren(errorBox(e)); }
}

function route() {
  stopPage();
  stopPage = () => {};
  const [path, query] = location.hash.replace(/^#/, "").split("?");
  const params = new URLSearchParams(query || "");
  const parts = (path || "/").split("/").filter(Boolean).map(decodeURIComponent);
  const page = parts[0] || "dashboard";
  for (const a of document.querySelectorAll("nav a")) {
    a.classList.toggle("active", a.dataset.page === page || (page === "stream" || page === "event") && a.dataset.page === "streams");
  }
  switch (page) {
    case "dashboard": return dashboard();
    case "streams": return streams(params);
    case "stream": return stream(parts.slice(1).join("/"), params);
    case "event": return eventPage(parts.slice(1, -1).join("/"), parts[parts.length - 1]);
    case "tail": return tail(params);
    case "projections": return projections();
    case "processes": return processes(parts.slice(1));
    case "subscriptions": return subscriptions();
    case "logs": return logs(params);
  }
  setPage("Not found", empty("No such page."), h("a", { href: "#/" }, "Back to the dashboard"));
}

window.addEventListener("hashchange", route);
window.addEventListener("load", route);
