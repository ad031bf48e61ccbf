// The centre's dashboard: plain JS, no build step. One element per site tile, updated in
// place from batched server-sent events. Its texts come from /texts.json, which the centre
// makes from agent/locale/messages/ (page.* and fleet.*): {id: {en, vi, en_one?}}.
"use strict";

// Every condition a tile can be in, in the counters' order; one colour each (app.css --<c>).
// A condition this centre's catalogue does not name (never_seen, before the roster) is left out.
const CONDS = ["ready", "degraded", "fault", "offline", "silent", "never_seen", "unknown", "unreachable"];
const TIER_ORDER = { province: 0, district: 1, commune: 2 };
// The problem list's order: what the operator must act on first. A fault is a site that
// answers and says it cannot hold the meeting; offline and silent ones may be as bad but are
// seen from afar; a site never seen is a setup task, not a breakdown; degraded still works;
// unknown waits for its first check. During a session a dropped call comes first (the
// chairman sees the empty seat at once), then a poor picture or sound.
// A region unreachable (its broker cut off) ranks with offline: many sites at once, one cause.
const PROBLEM_RANK = { dropped: 0, poor: 1, fault: 2, unreachable: 3, offline: 3, silent: 4, never_seen: 5, degraded: 6, unknown: 7 };
// The live picture's states, in the header's order; each has a colour (app.css --<state>).
const LIVE_STATES = ["in_call", "poor", "dropped", "unknown", "not_joined"];
const LIVE_PROBLEMS = ["dropped", "poor"];
const $ = (id) => document.getElementById(id);

const state = {
  me: null,
  lang: (navigator.language || "en").startsWith("vi") ? "vi" : "en",
  catalog: {},
  tiles: new Map(), // id -> tile json
  els: new Map(), // id -> element
  groups: new Map(), // group key -> {section, box, title, counts}
  conds: new Set(), // the conditions the counters filter on (none pressed: all)
  problems: new Map(), // entry key -> problem entry (see problemEntries)
  counters: null,
  selected: new Set(),
  detailId: null,
  source: null,
  centre: { broker: "up", since: null }, // the centre's own link to the broker
  pageLive: false, // this page's link to the centre
  fresh: false, // the picture came through the event stream (an earlier one is not drawn)
  alerts: [], // the alerts firing (/api/alerts)
  alerting: new Map(), // site id -> the worst severity firing for it (marks the problem list)
  desk: null, // the side panel open: "incidents", "contacts" or null
};
if (localStorage.getItem("lang")) state.lang = localStorage.getItem("lang");

// Hooks for the end-to-end tests and the benchmark (times in ms since navigation start).
window.__dash = { firstRender: null, tiles: 0, updates: [], trace: false };

// ---- text ---------------------------------------------------------------------------------

// Ids of the fleet's words; the page's own are "page." + a key.
const COND = (c) => "fleet.condition." + c;
const STATUS = (s) => "fleet.status." + s;
const TIER = (tier) => "fleet.tier." + tier;
const LIVE = (v) => "fleet.live." + v;
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

// Names in the page's language's order; one collator per language (localeCompare with a
// locale builds one per call: seconds over a 726-site sort).
const collators = {};
function collate(a, b) {
  const lang = locale();
  collators[lang] ??= new Intl.Collator(lang);
  return collators[lang].compare(a, b);
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
  buildCounters();
  buildLegend();
  for (const [key, g] of state.groups) paintGroupTitle(key, g);
  for (const tile of state.tiles.values()) paintTitle(tile);
  paintCentre();
  if (state.me) showMe();
  renderCounters();
  updateShown();
  updateSelected();
  renderProblems();
  renderAlerts();
  fitWall();
  if (state.detailId) openDetail(state.detailId);
  if (state.desk) openDesk(state.desk);
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
  clearInterval(alertsTimer);
  closeDesk();
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
  $("open-contacts").hidden = !isOperator();
}

function start(me, early) {
  state.me = me;
  $("login").hidden = true;
  $("app").hidden = false;
  showMe();
  connect();
  watchAlerts();
  // The picture asked for with the page, painted as soon as it comes. It may be older than
  // the event stream's start, so the stream's hello still fetches the picture again (a
  // change in between would otherwise be missed); that one replaces this.
  early?.then(({ status, data }) => {
    if (status === 200 && !state.fresh) { renderAll(data); showCentre(data.centre); }
  });
}

// ---- tiles --------------------------------------------------------------------------------

// A tile's group: its parent (a commune's district, a district's province); the sites with
// no parent make a group of their own tier.
function groupKey(tile) {
  const parent = tile.group !== undefined ? tile.group : tile.parent;
  return parent ? `g\u0000${parent}` : `t\u0000${tile.tier}`;
}

function groupName(key, g) {
  const [kind, value] = key.split("\u0000");
  return kind === "t" ? t(TIER(value)) : (g && g.name) || value;
}

function paintGroupTitle(key, g) {
  const total = [...g.counts.values()].reduce((a, b) => a + b, 0);
  const chips = CONDS.filter((c) => c !== "ready" && g.counts.get(c))
    .map((c) => el("span", { class: `chip c-${c}`, "data-c": c, title: t(COND(c)) }, num(g.counts.get(c))));
  g.title.replaceChildren(el("span", { class: "gname" }, groupName(key, g)), " ",
    el("span", { class: "gcount" }, t("page.group.count", { count: total })), ...chips);
}

function groupOrder(key, g) {
  return [g ? g.rank : 9, groupName(key, g)];
}

function compareGroups(a, b) {
  const [ra, na] = a, [rb, nb] = b;
  return ra - rb || collate(na, nb);
}

function newGroup(key, tile) {
  const section = document.createElement("section");
  section.className = "group";
  section.dataset.key = key;
  const title = document.createElement("h2");
  const box = document.createElement("div");
  box.className = "tiles";
  section.append(title, box);
  const g = { section, box, title, counts: new Map(), rank: TIER_ORDER[tile.tier] ?? 9, name: tile.group_name };
  state.groups.set(key, g);
  return g;
}

function countInGroup(g, cond, delta) {
  g.counts.set(cond, (g.counts.get(cond) || 0) + delta);
  g.dirty = true;
}

function groupFor(key, tile) {
  let g = state.groups.get(key);
  if (g) return g;
  g = newGroup(key, tile);
  // keep the groups in tier, then name order
  const mine = groupOrder(key, g);
  let before = null;
  for (const other of $("groups").children) {
    if (compareGroups(groupOrder(other.dataset.key, state.groups.get(other.dataset.key)), mine) > 0) { before = other; break; }
  }
  $("groups").insertBefore(g.section, before);
  return g;
}

// A problem the centre sends as a code and parameters, in the page's language; the English
// line (`why`, `problems`) when the centre is older than this page.
function problemVars(p) {
  const vars = { ...p };
  for (const k of ["last_seen", "state_ts", "down_since"]) if (k in vars) vars[k] = when(vars[k]);
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

// The same as nodes; a component's reason and hint are the site's own text, marked.
function problemNodes(p, english) {
  if (!p || !known(p.code) || !p.code.startsWith("fleet.problem.component")) {
    return [problemText(p, english)];
  }
  const vars = problemVars(p);
  const out = [];
  for (const part of t(p.code).split(/(\{reason\}|\{hint\})/)) {
    const key = part.slice(1, -1);
    if (part === "{reason}" || part === "{hint}") out.push(el("span", { "data-from-site": key }, vars[key]));
    else if (part) out.push(fill(part, vars));
  }
  return out;
}

function problemItem(p, english) {
  return el("li", {}, ...problemNodes(p, english));
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

function tileLabel(tile) {
  if (tile.short) return tile.short;
  return tile.name && tile.name !== `Site ${tile.id}` ? tile.name : tile.id;
}

function makeTile(tile) {
  const el = document.createElement("div");
  el.className = `tile c-${tile.c}`;
  el.dataset.id = tile.id;
  el.dataset.c = tile.c;
  el.textContent = tileLabel(tile);
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
    const g = groupFor(groupKey(tile), tile);
    g.box.append(el);
    countInGroup(g, tile.c, 1);
  } else {
    if (old.c !== tile.c) {
      el.className = `tile c-${tile.c}` + (state.selected.has(tile.id) ? " sel" : "");
      el.dataset.c = tile.c;
    }
    if (tileLabel(old) !== tileLabel(tile)) el.textContent = tileLabel(tile);
    if (groupKey(old) !== groupKey(tile) || old.c !== tile.c) {
      countInGroup(state.groups.get(groupKey(old)), old.c, -1);
      const g = groupFor(groupKey(tile), tile);
      if (groupKey(old) !== groupKey(tile)) g.box.append(el);
      countInGroup(g, tile.c, 1);
    }
  }
  paintTitle(tile);
  filterOne(tile, el);
  setProblems(tile);
}

function renderAll(snapshot) {
  const box = $("groups");
  box.textContent = "";
  state.groups.clear();
  state.els.clear();
  state.tiles.clear();
  state.problems.clear();
  problemKeys.clear();
  // A group's rank is its best tier (a district's group before its communes').
  const rank = new Map();
  for (const tile of snapshot.tiles) {
    const key = groupKey(tile), r = TIER_ORDER[tile.tier] ?? 9;
    if (!rank.has(key) || r < rank.get(key)) rank.set(key, r);
  }
  const name = (tile) => tileLabel(tile);
  const tiles = snapshot.tiles.slice().sort((a, b) => {
    const ka = groupKey(a), kb = groupKey(b);
    return compareGroups([rank.get(ka), groupName(ka, { name: a.group_name })],
      [rank.get(kb), groupName(kb, { name: b.group_name })])
      || (TIER_ORDER[a.tier] ?? 9) - (TIER_ORDER[b.tier] ?? 9)
      || collate(name(a), name(b)) || (a.id < b.id ? -1 : 1);
  });
  // Built off-document, attached once: one layout for the whole fleet.
  const frag = document.createDocumentFragment();
  for (const tile of tiles) {
    const key = groupKey(tile);
    let g = state.groups.get(key);
    if (!g) {
      g = newGroup(key, tile);
      g.rank = rank.get(key);
      frag.append(g.section);
    }
    state.tiles.set(tile.id, tile);
    g.box.append(makeTile(tile));
    countInGroup(g, tile.c, 1);
    paintTitle(tile);
    setProblems(tile);
    if (state.selected.has(tile.id)) state.els.get(tile.id).classList.add("sel");
  }
  measureBoard();
  box.classList.toggle("dense", guessDense([...state.groups.values()].map((g) => g.box.childElementCount)));
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
  const before = state.tiles.size;
  for (const tile of batch.tiles) {
    putTile(tile);
    if (window.__dash.trace) window.__dash.updates.push([tile.id, tile.c, now]);
  }
  state.counters = batch.counters;
  renderCounters();
  updateShown();
  scheduleProblems();
  if (state.tiles.size !== before) fitWall();
  if (state.detailId && batch.tiles.some((x) => x.id === state.detailId)) scheduleDetail();
}

// The conditions this page can name, in order (a newer one from the centre after them).
function conditions() {
  const extra = Object.keys(state.counters?.counts || {}).filter((c) => !CONDS.includes(c));
  return [...CONDS, ...extra].filter((c) => known(COND(c)) || state.counters?.counts?.[c]);
}

// The counters are the condition filter: pressing one shows only that condition (several
// may be pressed); none pressed, every site.
function buildCounters() {
  const box = $("counts");
  box.setAttribute("aria-label", t("page.filter.conditions"));
  const have = conditions();
  if (box.dataset.conds === have.join()) {
    for (const b of box.children) b.querySelector(".word").textContent = t(COND(b.dataset.c));
    return;
  }
  box.dataset.conds = have.join();
  box.replaceChildren(...have.map((c) => {
    const b = el("button", { type: "button", class: `count c-${c}`, "data-c": c, onclick: () => toggleCondition(c) },
      el("b", { id: "n-" + c }, "0"), " ", el("span", { class: "word" }, t(COND(c))));
    b.setAttribute("aria-pressed", String(state.conds.has(c)));
    return b;
  }));
}

function toggleCondition(c) {
  if (state.conds.has(c)) state.conds.delete(c); else state.conds.add(c);
  for (const b of $("counts").children) b.setAttribute("aria-pressed", String(state.conds.has(b.dataset.c)));
  applyFilters();
}

function buildLegend() {
  $("legend").replaceChildren(...conditions().map((c) =>
    el("span", { class: "key" }, el("i", { class: `swatch c-${c}` }), t(COND(c)))));
}

function renderCounters() {
  const c = state.counters;
  if (!c) return;
  if ($("counts").dataset.conds !== conditions().join()) { buildCounters(); buildLegend(); }
  for (const cond of conditions()) $("n-" + cond).textContent = num(c.counts[cond] || 0);
  const a = c.attendance;
  $("attendance").textContent = a.session && a.expected
    ? t("page.attendance", {
      counted: num(a.counted), expected: num(a.expected),
      rate: (a.rate * 100).toLocaleString(state.lang === "vi" ? "vi-VN" : "en-US",
        { minimumFractionDigits: 1, maximumFractionDigits: 1 }),
    }) + ` (${a.session})`
    : t("page.attendance.none");
  // the session's printable report (readiness, drops, attendance, incidents)
  $("report-link").hidden = !a.session;
  if (a.session) $("report-link").href = `/api/report/${encodeURIComponent(a.session)}.pdf`;
  renderLive(c.live);
}

// During a session: how many of the sites it expects are in the call, poor, dropped, cannot
// tell, not joined (the centre's live picture); hidden outside sessions.
function renderLive(live) {
  const box = $("session-live");
  box.hidden = !live;
  if (!live) return;
  box.title = live.title || live.session;
  box.replaceChildren(...LIVE_STATES.filter((k) => k !== "unknown" || live.counts[k]).map((k) =>
    el("span", { class: `lcount l-${k}`, "data-live": k },
      el("i", { class: `swatch c-${k}` }), el("b", {}, num(live.counts[k] || 0)), " ", t(LIVE(k)))));
}

// ---- problem list -------------------------------------------------------------------------

// Each source turns a tile into the problem entries it stands for: {key, kind, id, since,
// text() (its reason as nodes, the site's own words marked)}; `kind` ranks it (PROBLEM_RANK)
// and colours it (c-<kind>); `word` names it where it is not a condition. The site's condition
// is one source; the live session's states (dropped, poor) are another.
const problemSources = [
  (tile) => (tile.c === "ready" ? [] : [{
    key: "c:" + tile.id, kind: tile.c, id: tile.id,
    since: tile.since ?? tile.why_msg?.last_seen ?? null,
    text: () => (tile.why_msg || tile.why ? problemNodes(tile.why_msg, tile.why) : [t(COND(tile.c))]),
  }]),
  (tile) => (tile.live && LIVE_PROBLEMS.includes(tile.live.v) ? [{
    key: "l:" + tile.id, kind: tile.live.v, id: tile.id, since: tile.live.since, word: LIVE(tile.live.v),
    // the site's own words, in this page's language where it sent them as a message
    text: () => [el("span", { "data-from-site": "reason" },
      tile.live.reason_by_lang?.[state.lang] ?? tile.live.reason ?? "")],
  }] : []),
];

const problemKeys = new Map(); // site id -> its entries' keys
function setProblems(tile) {
  for (const key of problemKeys.get(tile.id) || []) state.problems.delete(key);
  const keys = [];
  for (const source of problemSources) {
    for (const p of source(tile)) { state.problems.set(p.key, p); keys.push(p.key); }
  }
  problemKeys.set(tile.id, keys);
}

function problemOrder(a, b) {
  const ta = state.tiles.get(a.id), tb = state.tiles.get(b.id);
  return (PROBLEM_RANK[a.kind] ?? 50) - (PROBLEM_RANK[b.kind] ?? 50)
    || (TIER_ORDER[ta.tier] ?? 9) - (TIER_ORDER[tb.tier] ?? 9)
    || (b.since ?? 0) - (a.since ?? 0) // the newest first: what just broke
    || collate(tileLabel(ta), tileLabel(tb));
}

// "5 min ago" in the page's language (the browser's own words for it, by locale).
function ago(epoch) {
  if (!epoch) return "";
  const s = Math.max(0, Date.now() / 1000 - epoch);
  const rtf = new Intl.RelativeTimeFormat(locale(), { numeric: "auto", style: "short" });
  if (s < 60) return rtf.format(-Math.round(s), "second");
  if (s < 3600) return rtf.format(-Math.floor(s / 60), "minute");
  if (s < 86400) return rtf.format(-Math.floor(s / 3600), "hour");
  return rtf.format(-Math.floor(s / 86400), "day");
}

function problemRow(p) {
  const tile = state.tiles.get(p.id);
  const parent = tile.group ? state.tiles.get(tile.group) : null;
  const where = parent ? tileLabel(parent) : tile.group_name || "";
  const word = p.word ? t(p.word) : known(COND(p.kind)) ? t(COND(p.kind)) : p.kind;
  const li = el("li", { class: `problem k-${p.kind}`, "data-id": p.id, "data-kind": p.kind, tabIndex: 0 },
    el("span", { class: `swatch c-${p.kind}`, title: word }),
    el("span", { class: "pname" }, tileLabel(tile), where ? el("span", { class: "pwhere" }, " · " + where) : null),
    el("span", { class: "psince", title: p.since ? when(p.since) : "" },
      [word, ago(p.since)].filter(Boolean).join(" · ")),
    el("span", { class: "pwhy" }, ...p.text()));
  const alerting = state.alerting.get(p.id);
  if (alerting) {
    li.classList.add("alerting", `sev-${alerting}`);
    li.dataset.alert = alerting;
    li.querySelector(".pname").prepend(el("span", { class: "bell", title: t("page_alerts.marked") }, "!"));
  }
  return li;
}

// The regions whose broker's bridge to the central broker is down, from their sites' reason
// (fleet.problem.region_down): one line for what may be hundreds of unreachable tiles.
function paintRegions() {
  const regions = new Set();
  for (const tile of state.tiles.values()) {
    if (tile.c === "unreachable" && tile.why_msg?.region) regions.add(tile.why_msg.region);
  }
  const banner = $("region-banner");
  banner.hidden = !regions.size;
  if (regions.size) banner.textContent = t("page.region.banner", { regions: [...regions].sort().join(", ") });
}

function renderProblems() {
  problemsQueued = false;
  paintRegions();
  const f = filters();
  const shown = [...state.problems.values()].filter((p) => visible(state.tiles.get(p.id), f)).sort(problemOrder);
  $("problem-count").textContent = num(shown.length);
  $("problem-list").replaceChildren(...(shown.length ? shown.map(problemRow)
    : [el("li", { class: "muted" }, t("page.problems.none"))]));
}

let problemsQueued = false;
function scheduleProblems() {
  if (problemsQueued) return;
  problemsQueued = true;
  requestAnimationFrame(renderProblems);
}

// The wall: every tile on one screen. When the groups do not fit at the normal size, the
// dense one (smaller tiles) is tried; a screen too small for even that scrolls.
function fitWall() {
  const board = $("board"), box = $("groups");
  if (!board.clientHeight) return;
  const over = () => board.scrollHeight > board.clientHeight + 1;
  // The guess first (one layout when it is right), the other size only when it is wrong; a
  // dense wall that fits is kept (the guess said the normal size would not).
  if (over()) {
    if (box.classList.contains("dense")) box.classList.remove("dense"); // scrolls either way
    else {
      box.classList.add("dense");
      if (over()) box.classList.remove("dense");
    }
  }
  clearTimeout(squeezeTimer);
  squeezeTimer = setTimeout(squeeze, 0); // after the paint: the wall shows first
}

// A name a little too wide for its tile is set tighter rather than cut (read all, then write).
let squeezeTimer = null;
function squeeze() {
  const wide = [];
  for (const el of state.els.values()) {
    if (el.classList.contains("squeeze")) el.classList.remove("squeeze");
  }
  for (const el of state.els.values()) {
    if (!el.hidden && el.scrollWidth > el.clientWidth) wide.push(el);
  }
  for (const el of wide) el.classList.add("squeeze");
}

// Whether the tiles need the dense size on this board, from the sizes app.css gives them
// (column 340 px, tiles 74 x 21 px + 2 px, titles 27 px): set before the tiles are laid out,
// so the first render usually lays them out once. fitWall() checks it against the layout.
const boardSize = { width: 0, height: 0 }; // measured when it is cheap: empty, or on resize
function measureBoard() {
  boardSize.width = $("board").clientWidth;
  boardSize.height = $("board").clientHeight;
}

function guessDense(groupSizes) {
  const width = boardSize.width - 24, height = boardSize.height;
  if (!width || !height) return false;
  const cols = Math.max(1, Math.floor((width + 10) / 350));
  const colWidth = (width - 10 * (cols - 1)) / cols;
  const perRow = Math.max(1, Math.floor((colWidth + 2) / 76));
  let total = 0;
  for (const n of groupSizes) total += 27 + Math.ceil(n / perRow) * 23;
  return total / cols > height;
}

// ---- filters ------------------------------------------------------------------------------

function filters() {
  return {
    notReady: $("f-notready").checked,
    tier: $("f-tier").value,
    text: fold($("f-text").value.trim()),
    conds: state.conds,
  };
}

// Text as search compares it: no diacritics ("Hòa" finds "hoa"), đ as d, any case.
function fold(text) {
  return String(text).normalize("NFD").replace(/\p{M}/gu, "").replace(/[đĐ]/g, "d").toLowerCase();
}

const haystacks = new WeakMap(); // tile json -> its folded words
function haystack(tile) {
  let hay = haystacks.get(tile);
  if (hay === undefined) {
    hay = fold([tile.id, tile.name, tile.short, tile.parent, tile.group_name].filter(Boolean).join(" "));
    haystacks.set(tile, hay);
  }
  return hay;
}

function visible(tile, f) {
  if (f.notReady && tile.c === "ready") return false;
  if (f.tier && tile.tier !== f.tier) return false;
  if (f.conds.size && !f.conds.has(tile.c)) return false;
  if (f.text && !haystack(tile).includes(f.text)) return false;
  return true;
}

function filterOne(tile, el, f) {
  const show = visible(tile, f || filters());
  if (el.hidden === show) el.hidden = !show;
}

function applyFilters() {
  const f = filters();
  for (const [id, el] of state.els) filterOne(state.tiles.get(id), el, f);
  const perGroup = updateShown();
  renderProblems();
  $("groups").classList.toggle("dense", guessDense([...perGroup.values()].filter(Boolean)));
  fitWall();
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
  for (const [key, g] of state.groups) {
    g.section.hidden = !perGroup.get(key);
    if (g.dirty) { g.dirty = false; paintGroupTitle(key, g); }
  }
  $("shown").textContent = t("page.shown", { shown: num(shown), total: num(state.tiles.size) });
  return perGroup;
}

let filterTimer = null;
let fitTimer = null;
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
  const W = 360, H = 130, P = 24;
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
  // The expected line's label sits at its left end, the latest count beside its dot (the
  // right end): below the dot when the dot is near the expected line, so they never overlap.
  if (att.expected) {
    add("line", { x1: P, y1: y(att.expected), x2: W - P, y2: y(att.expected), class: "expected" });
    add("text", { x: P + 2, y: y(att.expected) - 4, class: "label-expected" }, t("page.detail.expected", { n: att.expected }));
  }
  add("polyline", { points: pts.map((p) => `${x(p.ts).toFixed(1)},${y(p.count).toFixed(1)}`).join(" "), class: "curve" });
  const last = pts[pts.length - 1];
  add("circle", { cx: x(last.ts), cy: y(last.count), r: 3, class: "dot" });
  const near = att.expected && Math.abs(y(last.count) - y(att.expected)) < 14;
  const below = near || y(last.count) < P;
  const right = x(last.ts) > W / 2; // the label on the dot's inner side, inside the chart
  add("text", { x: x(last.ts) + (right ? -5 : 5), y: y(last.count) + (below ? 14 : -6),
    "text-anchor": right ? "end" : "start", class: "label-count" }, String(last.count));
  add("text", { x: P, y: H - 4 }, new Date(t0 * 1000).toLocaleTimeString(locale()));
  add("text", { x: W - P, y: H - 4, "text-anchor": "end" }, new Date(t1 * 1000).toLocaleTimeString(locale()));
  return svg;
}

// One item per metric, each kept whole and wrapped between items: none cut off.
function metricsList(m) {
  return Object.entries(m || {}).map(([k, v]) =>
    el("span", { class: "m" }, `${k}=${typeof v === "number" ? +v.toFixed(3) : v}`));
}

// Figures alone move no tile (the centre pushes changes of verdict): while the site is in its
// session its open detail asks again on its own, well within a site's republish (60 s).
const LIVE_DETAIL_MS = 15000;
let liveDetailTimer = null;

function renderDetail(d) {
  clearTimeout(liveDetailTimer);
  if (d.live_detail) {
    liveDetailTimer = setTimeout(() => { if (state.detailId === d.id) openDetail(d.id); },
      window.__dash.liveDetailMs || LIVE_DETAIL_MS);
  }
  const body = $("detail-body");
  body.textContent = "";
  body.append(
    el("h2", {}, `${d.id}${d.name ? " — " + d.name : ""}`),
    el("p", {}, el("span", { class: `badge c-${d.c}`, "data-c": d.c }, t(COND(d.c))), " ",
      `${t(TIER(d.tier))}${d.parent ? " · " + t("page.under") + " " + (d.group_name || d.parent) : ""} · `,
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
  if (d.live_detail) body.append(...liveDetail(d.live_detail));
  const table = el("table", { class: "components" },
    el("tr", {}, ...["component", "status", "reason", "hint", "metrics"].map((k) => el("th", {}, t("page.detail." + k)))));
  for (const c of d.components) {
    table.append(el("tr", { class: `s-${c.status}` }, el("td", {}, c.name),
      el("td", {}, el("span", { class: `status s-${c.status}` }, known(STATUS(c.status)) ? t(STATUS(c.status)) : c.status)),
      el("td", { "data-from-site": "reason" }, c.reason_by_lang?.[state.lang] ?? c.reason),
      el("td", { "data-from-site": "hint" }, c.hint_by_lang?.[state.lang] ?? c.hint),
      el("td", { class: "metrics" }, ...metricsList(c.metrics))));
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

// A figure as the site sent it (locale digits), a dash where it said nothing.
function figure(v) {
  return v === null || v === undefined ? "\u2014" : num(+(+v).toFixed(1));
}

function figureTable(cls, keys, rows) {
  const table = el("table", { class: `live-figures ${cls}` },
    el("tr", {}, ...keys.map((k) => el("th", {}, t("page.detail.live." + k)))));
  for (const cells of rows) table.append(el("tr", {}, ...cells.map((c) => el("td", {}, c))));
  return table;
}

// The site's live state in its session: verdict and since, who it is in the call with, the
// latest figures per media channel and on the line to the MCU, the session's last events.
function liveDetail(live) {
  const word = (v) => (known(LIVE(v)) ? t(LIVE(v)) : v);
  const head = el("p", { class: "live-now" },
    el("span", { class: `badge c-${live.v}`, "data-live": live.v }, word(live.v)), " ",
    t("page.detail.live.since", { when: when(live.since) }),
    live.far_end ? " · " + t("page.detail.live.far_end", { far_end: live.far_end }) : "",
    live.protocol ? ` (${live.protocol})` : "");
  const why = el("p", { "data-from-site": "reason" }, live.reason_by_lang?.[state.lang] ?? live.reason);
  const out = [el("h3", {}, t("page.detail.live", { session: live.title || live.session })), head, why];
  const at = live.figures_at ? new Date(live.figures_at * 1000).toLocaleTimeString(locale()) : "\u2014";
  out.push(el("h3", { class: "live-media-at" }, t("page.detail.live.media", { when: at })));
  const channel = (m) => m.channel_by_lang?.[state.lang] ?? `${m.kind} ${m.direction}`;
  // A codec that counts lost packets without a total (Poly) gives no percentage: its count.
  const loss = (m) => (m.loss_pct == null && m.lost_packets != null
    ? t("page.detail.live.lost_packets", { count: num(m.lost_packets) }) : figure(m.loss_pct));
  out.push(live.media.length
    ? figureTable("live-media", ["channel", "loss", "jitter", "rate", "resolution"], live.media.map((m) =>
      [channel(m), loss(m), figure(m.jitter_ms), figure(m.rate_kbps), m.resolution || "\u2014"]))
    : el("p", { class: "muted" }, t("page.detail.live.nofigures")));
  if (live.path.length) {
    out.push(el("h3", {}, t("page.detail.live.path")), figureTable("live-path",
      ["target", "loss", "rtt", "jitter"],
      live.path.map((p) => [p.target, figure(p.loss_pct), figure(p.rtt_ms), figure(p.jitter_ms)])));
  }
  const events = el("ol", { class: "live-events" });
  for (const e of live.events.slice().reverse()) {
    events.append(el("li", { "data-after": e.after },
      `${when(e.ts)} `, el("b", {}, `${e.before ? word(e.before) : t("page.detail.live.start")} \u2192 ${word(e.after)}`),
      ": ", el("span", { "data-from-site": "reason" }, e.reason_by_lang?.[state.lang] ?? e.reason)));
  }
  out.push(el("h3", {}, t("page.detail.live.events")),
    live.events.length ? events : el("p", { class: "muted" }, t("page.detail.live.noevents")));
  return out;
}

async function openDetail(id) {
  if (state.desk) closeDesk();
  state.detailId = id;
  // Below the header: the counters, language and logout stay in reach.
  $("detail").style.top = `${document.querySelector("header").offsetHeight}px`;
  $("detail").hidden = false;
  document.body.classList.add("detail-open"); // the tiles make room: none hides behind it
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
  const noDatabase = state.centre.database === "down";
  const blind = state.centre.broker === "down" || noDatabase;
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
  const time = (at) => new Date(at * 1000).toLocaleTimeString(locale(), { hour: "2-digit", minute: "2-digit" });
  if (noDatabase) {
    banner.textContent = t("page.centre.database_down", { time: time(state.centre.database_since) });
    return;
  }
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
    if (status === 200) { state.fresh = true; renderAll(data); showCentre(data.centre); }
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

// ---- alerts, incidents, contacts ------------------------------------------------------------
// The alert engine's picture (/api/alerts), read every ALERTS_EVERY_MS and after an
// acknowledgement; incidents and the contact directory open in the side panel ("desk") on
// demand. Severity, kind and reason come rendered in each language from the centre.

const ALERTS_EVERY_MS = 5000;
const SEVERITY_RANK = { critical: 0, warning: 1 };
const LEVELS = { 1: "district", 2: "province", 3: "escalation" };
let alertsTimer = null;

function isOperator() {
  return state.me?.role === "operator";
}

function said(byLang, fallback) {
  return byLang?.[state.lang] ?? fallback ?? "";
}

// "3 h 5 min" in the page's language; "—" when there is nothing to measure.
function dur(s) {
  if (s === null || s === undefined) return "—";
  s = Math.max(0, Math.round(s));
  if (s < 60) return t("page_alerts.dur.s", { n: num(s) });
  if (s < 3600) return t("page_alerts.dur.min", { n: num(Math.floor(s / 60)) });
  if (s < 86400) return t("page_alerts.dur.h", { h: num(Math.floor(s / 3600)), m: num(Math.floor((s % 3600) / 60)) });
  return t("page_alerts.dur.d", { d: num(Math.floor(s / 86400)), h: num(Math.floor((s % 86400) / 3600)) });
}

async function loadAlerts() {
  if (!state.me) return;
  const { status, data } = await api("GET", "/api/alerts");
  if (status !== 200) return;
  state.alerts = data.alerts;
  const before = JSON.stringify([...state.alerting]);
  state.alerting = new Map();
  for (const a of state.alerts) {
    const had = state.alerting.get(a.site_id);
    if (!had || SEVERITY_RANK[a.severity] < SEVERITY_RANK[had]) state.alerting.set(a.site_id, a.severity);
  }
  renderAlerts();
  if (JSON.stringify([...state.alerting]) !== before) scheduleProblems();
}

// The first read waits for the wall's first render (at most 2 s): the tiles come first.
function watchAlerts() {
  clearInterval(alertsTimer);
  const until = Date.now() + 2000;
  const first = () => (window.__dash.firstRender !== null || Date.now() > until ? loadAlerts() : setTimeout(first, 50));
  first();
  alertsTimer = setInterval(loadAlerts, ALERTS_EVERY_MS);
}

function siteLabel(id, name) {
  const tile = state.tiles.get(id);
  return tile ? tileLabel(tile) : name || id;
}

// An alert about a region (region_down: site id "region:<region>", tier "region") has no
// site to open: its name is the region's, not a link to a detail.
const REGION_PREFIX = "region:";
const isRegion = (x) => x.tier === "region" && x.site_id.startsWith(REGION_PREFIX);
function subjectLabel(x) {
  return isRegion(x)
    ? t("page_alerts.region", { region: x.site_name || x.site_id.slice(REGION_PREFIX.length) })
    : siteLabel(x.site_id, x.site_name);
}

function alertRow(a) {
  const li = el("li", { class: `alert sev-${a.severity}`, "data-key": a.key, "data-site": a.site_id },
    el("span", { class: `sev sev-${a.severity}` }, said(a.severity_by_lang, a.severity)),
    isRegion(a) ? el("span", { class: "aregion" }, subjectLabel(a)) : el("span", { class: "aname", tabIndex: 0 }, subjectLabel(a),
      a.district && a.district !== a.site_id ? el("span", { class: "pwhere" }, " · " + (a.district_name || a.district)) : null),
    el("span", { class: "areason" }, said(a.reason_by_lang, a.reason)),
    el("span", { class: "asince", title: when(a.fired_at || a.since) },
      [said(a.kind_by_lang, a.kind), t("page_alerts.since", { time: when(a.fired_at || a.since) }),
        a.escalated ? t("page_alerts.escalated") : ""].filter(Boolean).join(" · ")),
    el("span", { class: "atold" }, a.told.length
      ? t("page_alerts.told", { names: a.told.map((c) => c.name).join(", ") }) : t("page_alerts.told_none")));
  if (a.acked_by) {
    li.append(el("span", { class: "aacked", "data-acked-by": a.acked_by },
      t("page_alerts.acked", { who: a.acked_by, time: when(a.acked_at) })));
  } else if (isOperator()) {
    li.append(el("button", { type: "button", class: "act ack", onclick: () => ackAlert(a) }, t("page_alerts.ack")));
  }
  return li;
}

function renderAlerts() {
  const alerts = (state.alerts || []).slice().sort((a, b) =>
    (SEVERITY_RANK[a.severity] ?? 9) - (SEVERITY_RANK[b.severity] ?? 9) || (b.fired_at ?? 0) - (a.fired_at ?? 0));
  const count = $("alert-count");
  count.hidden = !state.me;
  count.textContent = t("page_alerts.count", { count: num(alerts.length) });
  count.classList.toggle("firing", alerts.length > 0);
  count.classList.toggle("critical", alerts.some((a) => a.severity === "critical"));
  $("alerts-count").textContent = num(alerts.length);
  $("alert-list").replaceChildren(...(alerts.length ? alerts.map(alertRow)
    : [el("li", { class: "muted" }, t("page_alerts.none"))]));
}

async function ackAlert(a) {
  const { status, data } = await api("POST", "/api/alerts/ack", { key: a.key });
  toast(status === 200
    ? t("page_alerts.ack_done", { site: subjectLabel(a) })
    : t("page_alerts.ack_failed", { error: serverError(data, status) }));
  loadAlerts();
  if (state.desk === "incidents") openDesk("incidents");
}

// A refusal with its fix, when the centre sends one (a contact's bad field).
function refusal(data, status) {
  const hint = data.hint_by_lang?.[state.lang];
  return serverError(data, status) + (hint ? ` (${hint})` : "");
}

// ---- the side panel: incidents, contacts

function openDesk(which) {
  if (state.detailId) $("detail-close").click();
  state.desk = which;
  $("desk").style.top = `${document.querySelector("header").offsetHeight}px`;
  $("desk").hidden = false;
  document.body.classList.add("desk-open");
  return which === "contacts" ? loadContacts() : loadIncidents();
}

function closeDesk() {
  state.desk = null;
  $("desk").hidden = true;
  document.body.classList.remove("desk-open");
}

function table(cls, heads, rows) {
  return el("table", { class: `desk-table ${cls}` },
    el("tr", {}, ...heads.map((h) => el("th", {}, t(h)))), ...rows);
}

function td(...children) {
  return el("td", {}, ...children);
}

async function loadIncidents() {
  const { status, data } = await api("GET", "/api/incidents");
  if (status !== 200 || state.desk !== "incidents") return;
  const body = $("desk-body");
  const rows = data.incidents.map((i) => el("tr", { class: `incident sev-${i.severity}`, "data-id": i.id, "data-site": i.site_id },
    td(when(i.opened_at)),
    td(subjectLabel(i), i.district && i.district !== i.site_id ? el("span", { class: "pwhere" }, " · " + (i.district_name || i.district)) : null),
    td(said(i.kind_by_lang, i.kind), " · ", el("span", { class: `sev sev-${i.severity}` }, said(i.severity_by_lang, i.severity))),
    td(i.acked_by ? `${i.acked_by} · ${when(i.acked_at)}` : "—"),
    td(i.closed_at ? when(i.closed_at) : t("page_alerts.still_open")),
    td(dur(i.duration_s ?? (Date.now() / 1000 - i.opened_at))),
    td(said(i.reason_by_lang, i.reason))));
  const stat = (by, head, name) => table(`stats stats-${by}`, [head, "page_alerts.col.count", "page_alerts.col.open", "page_alerts.col.to_ack", "page_alerts.col.to_repair"],
    data.stats[by].map((g) => el("tr", { "data-group": g.group }, td(name(g)), td(num(g.incidents)), td(num(g.open)),
      td(`${dur(g.time_to_ack.median_s)} / ${dur(g.time_to_ack.p90_s)}`),
      td(`${dur(g.time_to_repair.median_s)} / ${dur(g.time_to_repair.p90_s)}`))));
  body.replaceChildren(
    el("h2", {}, t("page_alerts.incidents")),
    el("h3", {}, t("page_alerts.stats", { days: num(data.days) })),
    stat("district", "page_alerts.col.district", (g) => (g.group ? g.name || g.group : t("page_alerts.no_district"))),
    stat("tier", "page_alerts.col.tier", (g) => (known(TIER(g.group)) ? t(TIER(g.group)) : g.group)),
    el("h3", {}, t("page_alerts.recent")),
    data.incidents.length
      ? table("incidents", ["page_alerts.col.opened", "page_alerts.col.site", "page_alerts.col.kind", "page_alerts.col.acked",
        "page_alerts.col.closed", "page_alerts.col.duration", "page_alerts.col.reason"], rows)
      : el("p", { class: "muted" }, t("page_alerts.incidents_none", { days: num(data.days) })));
}

function channelsText(c) {
  return c.channels.map((ch) => `${t("page_alerts.channel." + ch.kind)}: ${ch.address}`).join(", ");
}

function coversText(c) {
  const where = c.districts.length ? c.districts.map((d) => siteLabel(d, d)).join(", ") : t("page_alerts.everywhere");
  const tiers = c.tiers.length ? c.tiers.map((x) => t(TIER(x))).join(", ") : t("page_alerts.every_tier");
  return `${where}; ${tiers}; ${t("page_alerts.from_severity", { severity: t("page_alerts.severity." + c.min_severity) })}`;
}

async function loadContacts() {
  const { status, data } = await api("GET", "/api/contacts");
  if (status !== 200 || state.desk !== "contacts") return;
  state.contacts = data.contacts;
  const rows = data.contacts.map((c) => el("tr", { class: c.enabled ? "contact" : "contact off", "data-id": c.id },
    td(c.id), td(c.name, c.enabled ? null : el("span", { class: "muted" }, ` (${t("page_alerts.disabled")})`)),
    td(t("page_alerts.level." + LEVELS[c.level])), td(coversText(c)), td(channelsText(c)),
    td(t("page_alerts.lang." + c.language)), td(c.quiet ? `${c.quiet.start}–${c.quiet.end}` : "—"),
    td(el("button", { type: "button", class: "edit", onclick: () => contactForm(c) }, t("page_alerts.edit")), " ",
      el("button", { type: "button", class: "toggle", onclick: () => setEnabled(c, !c.enabled) },
        t(c.enabled ? "page_alerts.disable" : "page_alerts.enable")), " ",
      el("button", { type: "button", class: "remove", onclick: () => removeContact(c) }, t("page_alerts.remove")))));
  const failures = data.failures.map((f) => el("li", { class: "failure", "data-id": f.id },
    `${when(f.created_at)} · ${f.contact_id} · ${t("page_alerts.channel." + f.channel)} ${f.address}: `,
    // the receiving server's or the channel's own words
    el("span", { "data-from-site": "error" }, f.error)));
  $("desk-body").replaceChildren(
    el("h2", {}, t("page_alerts.contacts")),
    el("p", {}, el("button", { type: "button", id: "contact-add", class: "act", onclick: () => contactForm(null) }, t("page_alerts.add"))),
    el("div", { id: "contact-form-box" }),
    data.contacts.length
      ? table("contacts", ["page_alerts.col.id", "page_alerts.col.name", "page_alerts.col.level", "page_alerts.col.covers",
        "page_alerts.col.channels", "page_alerts.col.language", "page_alerts.col.quiet", "page_alerts.col.actions"], rows)
      : el("p", { class: "muted" }, t("page_alerts.contacts_none")),
    el("p", { id: "backlog" }, t("page_alerts.backlog", { count: num(data.backlog) })),
    el("h3", {}, t("page_alerts.failures")),
    failures.length ? el("ol", { class: "failures" }, ...failures) : el("p", { class: "muted" }, t("page_alerts.failures_none")));
}

function field(name, label, input) {
  input.name = name;
  input.id = "cf-" + name;
  return el("label", { class: "cf" }, el("span", {}, t(label)), input);
}

function select(options, value) {
  const s = el("select", {});
  for (const [v, label] of options) s.append(el("option", { value: v, selected: v === value }, label));
  return s;
}

// Add (c null) or edit a contact: the centre checks it as `centre contacts add` does and
// says what is wrong, with the fix, in the page's language.
function contactForm(c) {
  const addresses = (kind) => (c ? c.channels.filter((ch) => ch.kind === kind).map((ch) => ch.address).join(", ") : "");
  const tiers = el("span", { class: "tiers" }, ...["province", "district", "commune"].map((x) =>
    el("label", {}, el("input", { type: "checkbox", name: "tier", value: x, checked: !!c?.tiers.includes(x) }), " ", t(TIER(x)))));
  const error = el("p", { class: "error", id: "contact-error", role: "alert" });
  const form = el("form", { id: "contact-form", class: "contact-form" },
    field("id", "page_alerts.form.id", el("input", { value: c?.id ?? "", readOnly: !!c, required: true })),
    field("name", "page_alerts.form.name", el("input", { value: c?.name ?? "", required: true })),
    field("level", "page_alerts.form.level", select([1, 2, 3].map((n) => [String(n), t("page_alerts.level." + LEVELS[n])]), String(c?.level ?? 1))),
    field("districts", "page_alerts.form.districts", el("input", { value: c?.districts.join(", ") ?? "" })),
    el("div", { class: "cf" }, el("span", {}, t("page_alerts.form.tiers")), tiers),
    field("min_severity", "page_alerts.form.severity", select(["warning", "critical"].map((x) => [x, t("page_alerts.severity." + x)]), c?.min_severity ?? "warning")),
    field("email", "page_alerts.form.email", el("input", { value: addresses("email") })),
    field("webhook", "page_alerts.form.webhook", el("input", { value: addresses("webhook") })),
    field("telegram", "page_alerts.form.telegram", el("input", { value: addresses("telegram") })),
    field("language", "page_alerts.form.language", select(["vi", "en"].map((x) => [x, t("page_alerts.lang." + x)]), c?.language ?? "vi")),
    field("quiet", "page_alerts.form.quiet", el("input", { value: c?.quiet ? `${c.quiet.start}-${c.quiet.end}` : "" })),
    el("label", { class: "cf-check" }, el("input", { type: "checkbox", name: "enabled", id: "cf-enabled", checked: c ? c.enabled : true }), " ", t("page_alerts.form.enabled")),
    error,
    el("p", {}, el("button", { type: "submit", class: "act", id: "contact-save" }, t("page_alerts.save")), " ",
      el("button", { type: "button", onclick: () => $("contact-form-box").replaceChildren() }, t("page_alerts.cancel"))));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const v = (name) => form.elements[name].value;
    const body = {
      id: v("id").trim(), name: v("name").trim(), level: v("level"), districts: v("districts"),
      tiers: [...form.querySelectorAll("input[name=tier]:checked")].map((i) => i.value),
      min_severity: v("min_severity"), email: v("email"), webhook: v("webhook"), telegram: v("telegram"),
      language: v("language"), quiet: v("quiet"), enabled: form.elements.enabled.checked, replace: !!c,
    };
    const { status, data } = await api("POST", "/api/contacts", body);
    if (status !== 201) { error.textContent = refusal(data, status); return; }
    toast(t("page_alerts.saved", { name: data.name }));
    loadContacts();
  });
  $("contact-form-box").replaceChildren(form);
  form.elements[c ? "name" : "id"].focus();
}

async function setEnabled(c, enabled) {
  const { status, data } = await api("POST", `/api/contacts/${encodeURIComponent(c.id)}/enabled`, { enabled });
  if (status !== 200) toast(t("page_alerts.not_saved", { error: refusal(data, status) }));
  else toast(t("page_alerts.saved", { name: c.name }));
  loadContacts();
  loadAlerts(); // who is told changes with the directory
}

async function removeContact(c) {
  if (!confirm(t("page_alerts.confirm_remove", { name: c.name }))) return;
  const { status, data } = await api("DELETE", `/api/contacts/${encodeURIComponent(c.id)}`);
  toast(status === 200 ? t("page_alerts.removed", { name: c.name }) : t("page_alerts.not_saved", { error: refusal(data, status) }));
  loadContacts();
  loadAlerts();
}

// ---- wiring -------------------------------------------------------------------------------

async function boot() {
  // Asked for at once, not one after another: a wall screen reloading shows its sites a few
  // round trips sooner (the words, who we are and the picture come back together).
  const texts = fetch("/texts.json").then((r) => r.json()).catch(() => null);
  const wall = location.hash.startsWith("#token=");
  const me = wall ? null : api("GET", "/api/me");
  const early = wall ? null : api("GET", "/api/fleet");
  const catalog = await texts;
  if (catalog) state.catalog = catalog; // else the ids as text
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
  const openProblem = (ev) => {
    const li = ev.target.closest(".problem");
    if (li && (ev.type === "click" || ev.key === "Enter")) openDetail(li.dataset.id);
  };
  $("problem-list").addEventListener("click", openProblem);
  $("problem-list").addEventListener("keydown", openProblem);
  window.addEventListener("resize", () => {
    clearTimeout(fitTimer);
    fitTimer = setTimeout(() => { measureBoard(); applyFilters(); }, 150);
  });
  setInterval(() => { if (state.problems.size) renderProblems(); }, 30_000); // the "ago"s
  $("groups").addEventListener("keydown", (ev) => {
    const tile = ev.target.closest(".tile");
    if (tile && ev.key === "Enter") openDetail(tile.dataset.id);
  });
  $("alert-count").addEventListener("click", () => $("alerts-panel").scrollIntoView({ block: "start" }));
  $("open-incidents").addEventListener("click", () => openDesk("incidents"));
  $("open-contacts").addEventListener("click", () => openDesk("contacts"));
  $("desk-close").addEventListener("click", closeDesk);
  const openAlertSite = (ev) => {
    const name = ev.target.closest(".aname");
    if (name && (ev.type === "click" || ev.key === "Enter")) openDetail(name.closest(".alert").dataset.site);
  };
  $("alert-list").addEventListener("click", openAlertSite);
  $("alert-list").addEventListener("keydown", openAlertSite);
  $("detail-close").addEventListener("click", () => {
    state.detailId = null;
    $("detail").hidden = true;
    document.body.classList.remove("detail-open");
  });
  applyLanguage();
  if (await openWall()) return;
  const { status, data } = await me;
  if (status === 200) start(data, early); else showLogin();
}

document.addEventListener("DOMContentLoaded", boot);
