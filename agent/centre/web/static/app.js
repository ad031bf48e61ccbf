// The centre's dashboard: plain JS, no build step. One element per site tile, updated in
// place from batched server-sent events. Its texts come from /texts.json, which the centre
// makes from agent/locale/messages/ (page.* and fleet.*): {id: {en, vi, en_one?}}.
"use strict";

const CONDS = ["ready", "degraded", "fault", "offline", "silent", "unknown"];
const TIER_ORDER = { province: 0, district: 1, commune: 2 };
const $ = (id) => document.getElementById(id);

const state = {
  me: null,
  lang: (navigator.language || "en").startsWith("vi") ? "vi" : "en",
  catalog: {},
  tiles: new Map(), // id -> tile json
  els: new Map(), // id -> element
  groups: new Map(), // group key -> {section, box}
  counters: null,
  selected: new Set(),
  detailId: null,
  source: null,
  centre: { broker: "up", since: null }, // the centre's own link to the broker
  pageLive: false, // this page's link to the centre
};
if (localStorage.getItem("lang")) state.lang = localStorage.getItem("lang");

// Hooks for the end-to-end tests and the benchmark (times in ms since navigation start).
window.__dash = { firstRender: null, tiles: 0, updates: [], trace: false };

// ---- text ---------------------------------------------------------------------------------

// Ids of the fleet's words; the page's own are "page." + a key.
const COND = (c) => "fleet.condition." + c;
const STATUS = (s) => "fleet.status." + s;
const TIER = (tier) => "fleet.tier." + tier;
const ACTION = (a) => "page.action." + String(a).replace(/-/g, "_");
const OUTCOME = (s) => "page.outcome." + s;

function known(id) {
  return Object.prototype.hasOwnProperty.call(state.catalog, id);
}

// The id in the page's language, its {fields} filled; English says `en_one` when count is 1.
// A code this page does not know (a newer centre's) is shown as it came.
function t(id, vars) {
  const entry = known(id) ? state.catalog[id] : null;
  if (!entry) return id;
  const one = state.lang === "en" && vars && Number(vars.count) === 1 && entry.en_one;
  const text = one || entry[state.lang] || entry.en;
  return vars ? fill(text, vars) : text;
}

function locale() {
  return state.lang === "vi" ? "vi-VN" : "en-GB";
}

function num(n) {
  return Number(n).toLocaleString(state.lang === "vi" ? "vi-VN" : "en-US");
}

function when(epoch) {
  if (!epoch) return t("page.detail.never");
  return new Date(epoch * 1000).toLocaleString(state.lang === "vi" ? "vi-VN" : "en-GB");
}

function applyLanguage() {
  document.documentElement.lang = state.lang;
  document.title = t("page.tab");
  for (const el of document.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const el of document.querySelectorAll("[data-i18n-ph]")) el.placeholder = t(el.dataset.i18nPh);
  for (const el of document.querySelectorAll("[data-i18n-aria]")) el.setAttribute("aria-label", t(el.dataset.i18nAria));
  for (const el of document.querySelectorAll(".lang")) el.classList.toggle("on", el.dataset.lang === state.lang);
  for (const [key, g] of state.groups) g.title.textContent = groupTitle(key);
  for (const tile of state.tiles.values()) paintTitle(tile);
  paintCentre();
  if (state.me) showMe();
  renderCounters();
  updateShown();
  updateSelected();
  if (state.detailId) openDetail(state.detailId);
}

// ---- HTTP ---------------------------------------------------------------------------------

async function api(method, path, body) {
  const headers = {};
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (state.me && method !== "GET") headers["X-CSRF-Token"] = state.me.csrf;
  const resp = await fetch(path, {
    method, headers, credentials: "same-origin",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = await resp.json().catch(() => ({}));
  if (resp.status === 401 && path !== "/api/login") {
    showLogin();
  }
  return { status: resp.status, data };
}

// The server's error in the page's language (it sends it rendered in each), else its English.
function serverError(data, status) {
  return data.error_by_lang?.[state.lang] ?? data.error ?? String(status);
}

// ---- login --------------------------------------------------------------------------------

function showLogin(message) {
  state.me = null;
  if (state.source) { state.source.close(); state.source = null; }
  $("app").hidden = true;
  $("login").hidden = false;
  $("login-error").textContent = message || "";
  $("login-name").focus();
}

async function login(ev) {
  ev.preventDefault();
  const { status, data } = await api("POST", "/api/login", {
    name: $("login-name").value, password: $("login-password").value,
  });
  $("login-password").value = "";
  if (status !== 200) {
    $("login-error").textContent = t("page.login.failed", { error: serverError(data, status) });
    return;
  }
  start(data);
}

function showMe() {
  const me = state.me;
  $("who-name").textContent = `${me.name} (${t("page.role." + me.role)})`;
  $("actions").hidden = !me.can_command;
  const off = $("commands-off");
  off.hidden = me.can_command || me.role !== "operator";
  off.textContent = me.commands_off_by_lang?.[state.lang]
    ?? (me.commands_off ? t("page.commands.off", { why: me.commands_off }) : "");
  document.body.classList.toggle("can-command", me.can_command);
}

function start(me) {
  state.me = me;
  $("login").hidden = true;
  $("app").hidden = false;
  showMe();
  connect();
}

// ---- tiles --------------------------------------------------------------------------------

function groupKey(tile) {
  return `${tile.tier}\u0000${tile.parent || ""}`;
}

function groupTitle(key) {
  const [tier, parent] = key.split("\u0000");
  return parent ? `${t(TIER(tier))} · ${t("page.under")} ${parent}` : t(TIER(tier));
}

function groupOrder(key) {
  const [tier, parent] = key.split("\u0000");
  return [TIER_ORDER[tier] ?? 9, parent];
}

function newGroup(key) {
  const section = document.createElement("section");
  section.className = "group";
  section.dataset.key = key;
  const title = document.createElement("h2");
  title.textContent = groupTitle(key);
  const box = document.createElement("div");
  box.className = "tiles";
  section.append(title, box);
  const g = { section, box, title };
  state.groups.set(key, g);
  return g;
}

function groupFor(key) {
  let g = state.groups.get(key);
  if (g) return g;
  g = newGroup(key);
  // keep the groups in tier, then parent order
  const [rank, parent] = groupOrder(key);
  let before = null;
  for (const other of $("groups").children) {
    const [r2, p2] = groupOrder(other.dataset.key);
    if (r2 > rank || (r2 === rank && p2 > parent)) { before = other; break; }
  }
  $("groups").insertBefore(section, before);
  return g;
}

// A problem the centre sends as a code and parameters, in the page's language; the English
// line (`why`, `problems`) when the centre is older than this page.
function problemVars(p) {
  const vars = { ...p };
  for (const k of ["last_seen", "state_ts"]) if (k in vars) vars[k] = when(vars[k]);
  for (const k of ["window", "heartbeat", "count"]) if (typeof vars[k] === "number") vars[k] = num(vars[k]);
  if (vars.status && known(STATUS(vars.status))) vars.status = t(STATUS(vars.status));
  if (vars.why_code && known(vars.why_code)) vars.why = t(vars.why_code);
  // What the site said: in this page's language where it came as a message, else as sent.
  for (const k of ["reason", "hint"]) vars[k] = p[k + "_by_lang"]?.[state.lang] ?? p[k];
  return vars;
}

function problemText(p, english) {
  return p && known(p.code) ? t(p.code, problemVars(p)) : english;
}

// The same as a list item; a component's reason and hint are the site's own text, marked.
function problemItem(p, english) {
  if (!p || !known(p.code) || !p.code.startsWith("fleet.problem.component")) {
    return el("li", {}, problemText(p, english));
  }
  const li = el("li");
  const vars = problemVars(p);
  for (const part of t(p.code).split(/(\{reason\}|\{hint\})/)) {
    const key = part.slice(1, -1);
    if (part === "{reason}" || part === "{hint}") li.append(el("span", { "data-from-site": key }, vars[key]));
    else if (part) li.append(fill(part, vars));
  }
  return li;
}

function fill(text, vars) {
  return text.replace(/\{(\w+)\}/g, (_, k) => (k in vars ? vars[k] : `{${k}}`));
}

function paintTitle(tile) {
  const el = state.els.get(tile.id);
  if (!el) return;
  const why = problemText(tile.why_msg, tile.why);
  el.title = `${tile.id} ${tile.name ? "— " + tile.name : ""}\n${t(COND(tile.c))}${why ? ": " + why : ""}`;
  // the site's own words in the tooltip (a component's reason and hint)
  const m = tile.why_msg;
  el.dataset.siteText = JSON.stringify(m && m.code && m.code.startsWith("fleet.problem.component") ? [problemVars(m).reason, problemVars(m).hint] : []);
}

function makeTile(tile) {
  const el = document.createElement("div");
  el.className = `tile c-${tile.c}`;
  el.dataset.id = tile.id;
  el.dataset.c = tile.c;
  el.textContent = tile.name && tile.name !== `Site ${tile.id}` ? tile.name : tile.id;
  el.tabIndex = 0;
  state.els.set(tile.id, el);
  return el;
}

function putTile(tile) {
  const old = state.tiles.get(tile.id);
  state.tiles.set(tile.id, tile);
  let el = state.els.get(tile.id);
  if (!el) {
    el = makeTile(tile);
    groupFor(groupKey(tile)).box.append(el);
  } else {
    if (old.c !== tile.c) {
      el.className = `tile c-${tile.c}` + (state.selected.has(tile.id) ? " sel" : "");
      el.dataset.c = tile.c;
    }
    if (groupKey(old) !== groupKey(tile)) groupFor(groupKey(tile)).box.append(el);
  }
  paintTitle(tile);
  filterOne(tile, el);
}

function renderAll(snapshot) {
  const box = $("groups");
  box.textContent = "";
  state.groups.clear();
  state.els.clear();
  state.tiles.clear();
  const tiles = snapshot.tiles.slice().sort((a, b) => {
    const [ra, pa] = groupOrder(groupKey(a));
    const [rb, pb] = groupOrder(groupKey(b));
    return ra - rb || (pa < pb ? -1 : pa > pb ? 1 : 0) || (a.id < b.id ? -1 : 1);
  });
  // Built off-document, attached once: one layout for the whole fleet.
  const frag = document.createDocumentFragment();
  for (const tile of tiles) {
    const key = groupKey(tile);
    let g = state.groups.get(key);
    if (!g) {
      g = newGroup(key);
      frag.append(g.section);
    }
    state.tiles.set(tile.id, tile);
    g.box.append(makeTile(tile));
    paintTitle(tile);
    if (state.selected.has(tile.id)) state.els.get(tile.id).classList.add("sel");
  }
  box.append(frag);
  state.counters = snapshot.counters;
  renderCounters();
  applyFilters();
  window.__dash.tiles = state.tiles.size;
  if (window.__dash.firstRender === null) {
    requestAnimationFrame(() => { window.__dash.firstRender = performance.now(); });
  }
}

function applyUpdate(batch) {
  const now = Date.now();
  for (const tile of batch.tiles) {
    putTile(tile);
    if (window.__dash.trace) window.__dash.updates.push([tile.id, tile.c, now]);
  }
  state.counters = batch.counters;
  renderCounters();
  updateShown();
  if (state.detailId && batch.tiles.some((x) => x.id === state.detailId)) scheduleDetail();
}

function renderCounters() {
  const c = state.counters;
  if (!c) return;
  for (const cond of CONDS) $("n-" + cond).textContent = num(c.counts[cond] || 0);
  const a = c.attendance;
  $("attendance").textContent = a.session && a.expected
    ? t("page.attendance", {
      counted: num(a.counted), expected: num(a.expected),
      rate: (a.rate * 100).toLocaleString(state.lang === "vi" ? "vi-VN" : "en-US",
        { minimumFractionDigits: 1, maximumFractionDigits: 1 }),
    }) + ` (${a.session})`
    : t("page.attendance.none");
}

// ---- filters ------------------------------------------------------------------------------

function filters() {
  return {
    notReady: $("f-notready").checked,
    tier: $("f-tier").value,
    text: $("f-text").value.trim().toLowerCase(),
  };
}

function visible(tile, f) {
  if (f.notReady && tile.c === "ready") return false;
  if (f.tier && tile.tier !== f.tier) return false;
  if (f.text) {
    const hay = `${tile.id} ${tile.name} ${tile.parent || ""}`.toLowerCase();
    if (!hay.includes(f.text)) return false;
  }
  return true;
}

function filterOne(tile, el, f) {
  const show = visible(tile, f || filters());
  if (el.hidden === show) el.hidden = !show;
}

function applyFilters() {
  const f = filters();
  for (const [id, el] of state.els) filterOne(state.tiles.get(id), el, f);
  updateShown();
}

function updateShown() {
  let shown = 0;
  const perGroup = new Map();
  const f = filters();
  for (const tile of state.tiles.values()) {
    const v = visible(tile, f);
    shown += v;
    const key = groupKey(tile);
    perGroup.set(key, (perGroup.get(key) || 0) + v);
  }
  for (const [key, g] of state.groups) g.section.hidden = !perGroup.get(key);
  $("shown").textContent = t("page.shown", { shown: num(shown), total: num(state.tiles.size) });
}

let filterTimer = null;
function onFilter() {
  clearTimeout(filterTimer);
  filterTimer = setTimeout(applyFilters, 120);
}

// ---- selection and commands -----------------------------------------------------------------

function toggleSelect(id) {
  const el = state.els.get(id);
  if (state.selected.has(id)) state.selected.delete(id); else state.selected.add(id);
  if (el) el.classList.toggle("sel", state.selected.has(id));
  updateSelected();
}

// Exactly the tiles the filters show (the selection before is dropped), at most the centre's
// per-send limit: past it the first ones, and the operator is told.
function selectShown() {
  const f = filters();
  const shown = [...state.tiles.values()].filter((tile) => visible(tile, f)).map((tile) => tile.id);
  const max = state.me?.max_sites || shown.length;
  for (const id of state.selected) state.els.get(id)?.classList.remove("sel");
  state.selected = new Set(shown.slice(0, max));
  for (const id of state.selected) state.els.get(id)?.classList.add("sel");
  $("select-mode").checked = true;
  updateSelected();
  if (shown.length > max) toast(t("page.select.capped", { shown: num(shown.length), max: num(max) }));
}

function updateSelected() {
  $("selected").textContent = t("page.selected", { n: state.selected.size });
  for (const b of document.querySelectorAll("#actions .act")) b.disabled = !state.selected.size;
}

async function send(action, sites) {
  if (!sites.length) return;
  if (sites.length > 1 && !confirm(t("page.confirm", { action: t(ACTION(action)), count: sites.length }))) return;
  const { status, data } = await api("POST", "/api/command", { action, sites });
  toast(status === 202
    ? t("page.sent", { action: t(ACTION(action)), count: data.sites })
    : t("page.send.failed", { error: serverError(data, status) }));
}

let toastTimer = null;
function toast(text) {
  const el = $("toast");
  el.textContent = text;
  el.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { el.hidden = true; }, 4000);
}

// A reply's reason in the page's language: rendered per language by the centre when the site
// said it as a message (`reason_by_lang`), else a reason this page knows by its code, else the
// site's own words as sent (marked, like a component's reason).
function replyReason(r) {
  const said = r.reason_by_lang?.[state.lang];
  if (said) return said;
  const m = r.reason_msg;
  return m && known(m.code) ? t(m.code, m) : el("span", { "data-from-site": "reason" }, r.reason);
}

// One reply as a line: when, (site,) action, outcome, reason, verdict or the site's output.
// A run-checks that answered with a verdict is that verdict, in its condition's colour: a
// self-test that found a fault did not "succeed" for the operator.
function replyParts(r, time, withSite) {
  const parts = [`${time}  ${withSite ? r.site_id + "  " : ""}${t(ACTION(r.action))}  ${r.verdict ? "" : t(OUTCOME(r.status))}`];
  if (r.reason) parts.push(" — ", replyReason(r));
  if (r.verdict) {
    const cond = CONDS.includes(r.verdict) ? r.verdict : "unknown";
    parts.push("(", el("span", { class: `badge c-${cond}`, "data-outcome": r.verdict },
      t("page.outcome.verdict", { c: known(COND(r.verdict)) ? t(COND(r.verdict)) : r.verdict })), ")");
  } else if (r.summary) parts.push(" (", el("span", { "data-from-site": "output" }, r.summary), ")");
  parts.push(`  [${r.operator}]`);
  return parts;
}

function addReply(r) {
  const time = new Date(r.at * 1000).toLocaleTimeString(state.lang === "vi" ? "vi-VN" : "en-GB");
  const li = el("li", { class: `reply r-${r.status}`, "data-site": r.site_id, "data-status": r.status,
    "data-outcome": r.verdict || r.status }, ...replyParts(r, time, true));
  const log = $("reply-log");
  log.prepend(li);
  while (log.children.length > 200) log.lastChild.remove();
  if (r.tally) bulkLine(r, time);
  if (r.site_id === state.detailId) scheduleDetail();
}

// One line per command sent to several sites, recounted at each of its events:
// "25 sent: 20 answered (17 ready, 3 fault), 5 no answer" (and how many are still awaited).
function bulkText(tally) {
  const outcomes = Object.entries(tally.outcomes).sort((a, b) => b[1] - a[1]).map(([o, n]) =>
    t("page.bulk.count", { n: num(n), what: known(COND(o)) ? t(COND(o)) : known(OUTCOME(o)) ? t(OUTCOME(o)) : o }));
  let text = t("page.bulk.summary", { sent: num(tally.sent), answered: num(tally.answered),
    outcomes: outcomes.length ? outcomes.join(", ") : "—", no_answer: num(tally.no_answer) });
  if (tally.waiting) text += ", " + t("page.bulk.waiting", { n: num(tally.waiting) });
  return text;
}

function bulkLine(r, time) {
  if (r.tally.sent < 2) return;
  const box = $("bulk-log");
  let li = box.querySelector(`li[data-command="${CSS.escape(r.command_id)}"]`);
  if (!li) {
    li = el("li", { class: "bulk", "data-command": r.command_id });
    box.prepend(li);
    while (box.children.length > 20) box.lastChild.remove();
  }
  li.dataset.waiting = r.tally.waiting;
  li.textContent = `${li.dataset.time || (li.dataset.time = time)}  ${t(ACTION(r.action))}: ${bulkText(r.tally)}  [${r.operator}]`;
}

// ---- detail -------------------------------------------------------------------------------

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v; else if (k.startsWith("data-")) e.setAttribute(k, v); else e[k] = v;
  }
  for (const c of children) if (c !== null && c !== undefined) e.append(c);
  return e;
}

function chart(att) {
  const NS = "http://www.w3.org/2000/svg";
  const pts = att.points.filter((p) => p.count !== null);
  if (!pts.length) return el("p", { class: "muted" }, t("page.detail.noattendance"));
  const W = 320, H = 110, P = 22;
  const t0 = pts[0].ts, t1 = Math.max(pts[pts.length - 1].ts, t0 + 1);
  const ymax = Math.max(att.expected || 0, ...pts.map((p) => p.count), 1);
  const x = (ts) => P + ((ts - t0) / (t1 - t0)) * (W - 2 * P);
  const y = (v) => H - P + 4 - (v / ymax) * (H - 2 * P);
  const svg = document.createElementNS(NS, "svg");
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  svg.setAttribute("class", "chart");
  const add = (tag, attrs, text) => {
    const n = document.createElementNS(NS, tag);
    for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, v);
    if (text !== undefined) n.textContent = text;
    svg.append(n);
  };
  add("line", { x1: P, y1: y(0), x2: W - P, y2: y(0), class: "axis" });
  if (att.expected) {
    add("line", { x1: P, y1: y(att.expected), x2: W - P, y2: y(att.expected), class: "expected" });
    add("text", { x: W - P, y: y(att.expected) - 3, "text-anchor": "end" }, t("page.detail.expected", { n: att.expected }));
  }
  add("polyline", { points: pts.map((p) => `${x(p.ts).toFixed(1)},${y(p.count).toFixed(1)}`).join(" "), class: "curve" });
  const last = pts[pts.length - 1];
  add("circle", { cx: x(last.ts), cy: y(last.count), r: 3, class: "dot" });
  add("text", { x: x(last.ts) - 4, y: y(last.count) - 6, "text-anchor": "end" }, String(last.count));
  add("text", { x: P, y: H - 4 }, new Date(t0 * 1000).toLocaleTimeString(locale()));
  add("text", { x: W - P, y: H - 4, "text-anchor": "end" }, new Date(t1 * 1000).toLocaleTimeString(locale()));
  return svg;
}

function metricsText(m) {
  return Object.entries(m || {}).map(([k, v]) => `${k}=${typeof v === "number" ? +v.toFixed(3) : v}`).join(" ");
}

function renderDetail(d) {
  const body = $("detail-body");
  body.textContent = "";
  body.append(
    el("h2", {}, `${d.id}${d.name ? " — " + d.name : ""}`),
    el("p", {}, el("span", { class: `badge c-${d.c}`, "data-c": d.c }, t(COND(d.c))), " ",
      `${t(TIER(d.tier))}${d.parent ? " · " + t("page.under") + " " + d.parent : ""} · `,
      t("page.detail.lastseen", { when: when(d.last_seen) })),
  );
  if (state.me && state.me.can_command) {
    const bar = el("p", { class: "detail-actions" });
    for (const action of state.me.actions) {
      bar.append(el("button", { type: "button", class: "act", "data-action": action,
        onclick: () => send(action, [d.id]) }, t(ACTION(action))));
    }
    body.append(bar);
  }
  if (d.problems.length) {
    const msgs = d.problem_msgs || [];
    body.append(el("h3", {}, t("page.detail.problems")),
      el("ul", { class: "problems" }, ...d.problems.map((p, i) => problemItem(msgs[i], p))));
  }
  const table = el("table", { class: "components" },
    el("tr", {}, ...["component", "status", "reason", "hint", "metrics"].map((k) => el("th", {}, t("page.detail." + k)))));
  for (const c of d.components) {
    table.append(el("tr", { class: `s-${c.status}` }, el("td", {}, c.name),
      el("td", {}, el("span", { class: `status s-${c.status}` }, known(STATUS(c.status)) ? t(STATUS(c.status)) : c.status)),
      el("td", { "data-from-site": "reason" }, c.reason_by_lang?.[state.lang] ?? c.reason),
      el("td", { "data-from-site": "hint" }, c.hint_by_lang?.[state.lang] ?? c.hint),
      el("td", { class: "metrics" }, metricsText(c.metrics))));
  }
  body.append(el("h3", {}, t("page.detail.components")), table);
  const hist = el("div", { class: "history" });
  for (const v of d.verdicts) {
    const cond = v.verdict || "unknown";
    hist.append(el("span", { class: `cell c-${cond}`, title: `${when(v.ts)} ${t(COND(cond))}` }));
  }
  body.append(el("h3", {}, t("page.detail.history")), hist);
  body.append(el("h3", {}, t("page.detail.attendance") + (d.attendance.session ? ` (${d.attendance.session})` : "")), chart(d.attendance));
  const replies = el("ol", { class: "detail-replies" });
  for (const r of d.replies) {
    replies.append(el("li", { class: `reply r-${r.status}`, "data-status": r.status,
      "data-outcome": r.verdict || r.status }, ...replyParts(r, when(r.at), false)));
  }
  body.append(el("h3", {}, t("page.detail.replies")), d.replies.length ? replies : el("p", { class: "muted" }, t("page.detail.noreplies")));
}

async function openDetail(id) {
  state.detailId = id;
  // Below the header: the counters, language and logout stay in reach.
  $("detail").style.top = `${document.querySelector("header").offsetHeight}px`;
  $("detail").hidden = false;
  const { status, data } = await api("GET", `/api/site/${encodeURIComponent(id)}`);
  if (status === 200 && state.detailId === id) renderDetail(data);
}

let detailTimer = null;
function scheduleDetail() {
  clearTimeout(detailTimer);
  detailTimer = setTimeout(() => { if (state.detailId) openDetail(state.detailId); }, 300);
}

// ---- live ---------------------------------------------------------------------------------

function setLive(on) {
  state.pageLive = on;
  paintCentre();
}

// ---- the centre's own health ----------------------------------------------------------------
// Two links, said apart: this page to the centre (the badge's "disconnected"), and the centre
// to the broker (the banner; while it is down every tile is its site's last known state).

function showCentre(centre) {
  if (!centre) return;
  state.centre = centre;
  paintCentre();
}

function paintCentre() {
  const blind = state.centre.broker === "down";
  const live = $("live");
  const id = !state.pageLive ? "page.live.off" : blind ? "page.live.broker_down" : "page.live.on";
  live.classList.toggle("off", !state.pageLive || blind);
  live.dataset.i18n = id;
  live.textContent = t(id);
  const banner = $("centre-banner");
  banner.hidden = !blind;
  document.body.classList.toggle("stale", blind);
  $("groups").title = blind ? t("page.tile.stale") : "";
  if (!blind) return;
  const since = state.centre.since;
  banner.textContent = since
    ? t("page.centre.banner", { time: new Date(since * 1000).toLocaleTimeString(locale(), { hour: "2-digit", minute: "2-digit" }) })
    : t("page.centre.banner_unknown");
}

// A wall screen opens /wall#token=...: the one-time invitation becomes its display cookie,
// and the token leaves the address bar (and the browser's history) at once.
async function openWall() {
  const m = /^#token=([A-Za-z0-9_-]+)$/.exec(location.hash);
  if (!m) return false;
  history.replaceState(null, "", location.pathname);
  const { status, data } = await api("POST", "/api/display", { token: m[1] });
  if (status === 200) start(data);
  else showLogin(serverError(data, status));
  return true;
}

function connect() {
  if (state.source) state.source.close();
  const source = new EventSource("/api/events");
  state.source = source;
  source.addEventListener("hello", async () => {
    // (Re)connected: the whole picture, then the changes as they come.
    setLive(true);
    const { status, data } = await api("GET", "/api/fleet");
    if (status === 200) { renderAll(data); showCentre(data.centre); }
  });
  source.addEventListener("centre", (ev) => showCentre(JSON.parse(ev.data)));
  source.addEventListener("tiles", (ev) => applyUpdate(JSON.parse(ev.data)));
  source.addEventListener("reply", (ev) => addReply(JSON.parse(ev.data)));
  source.onerror = async () => {
    setLive(false);
    if (source.readyState === EventSource.CLOSED) {
      const { status } = await api("GET", "/api/me");
      if (status === 200) setTimeout(connect, 2000);
    }
  };
}

// ---- wiring -------------------------------------------------------------------------------

async function boot() {
  try {
    state.catalog = await (await fetch("/texts.json")).json();
  } catch (e) { /* the ids as text */ }
  for (const b of document.querySelectorAll(".lang")) {
    b.addEventListener("click", () => { state.lang = b.dataset.lang; localStorage.setItem("lang", state.lang); applyLanguage(); });
  }
  $("login-form").addEventListener("submit", login);
  $("logout").addEventListener("click", async () => { await api("POST", "/api/logout", {}); showLogin(); });
  $("f-notready").addEventListener("change", applyFilters);
  $("f-tier").addEventListener("change", applyFilters);
  $("f-text").addEventListener("input", onFilter);
  $("select-shown").addEventListener("click", selectShown);
  $("clear-selection").addEventListener("click", () => {
    for (const id of state.selected) state.els.get(id)?.classList.remove("sel");
    state.selected.clear();
    updateSelected();
  });
  for (const b of document.querySelectorAll("#actions .act")) {
    b.addEventListener("click", () => send(b.dataset.action, [...state.selected]));
  }
  $("groups").addEventListener("click", (ev) => {
    const tile = ev.target.closest(".tile");
    if (!tile) return;
    if ($("select-mode").checked || ev.ctrlKey || ev.metaKey || ev.shiftKey) toggleSelect(tile.dataset.id);
    else openDetail(tile.dataset.id);
  });
  $("groups").addEventListener("keydown", (ev) => {
    const tile = ev.target.closest(".tile");
    if (tile && ev.key === "Enter") openDetail(tile.dataset.id);
  });
  $("detail-close").addEventListener("click", () => { state.detailId = null; $("detail").hidden = true; });
  applyLanguage();
  if (await openWall()) return;
  const { status, data } = await api("GET", "/api/me");
  if (status === 200) start(data); else showLogin();
}

document.addEventListener("DOMContentLoaded", boot);
