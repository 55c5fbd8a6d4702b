"use strict";
const LABEL = { red: "红 Red", orange: "橙 Orange", yellow: "黄 Yellow", blue: "蓝 Blue" };
const ACTION = { raised: "报警 raised", cleared: "恢复 cleared", acknowledged: "确认 ack",
  shelved: "搁置 shelved", unshelved: "取消搁置 unshelved", out_of_service: "停用 out of service",
  in_service: "启用 in service" };
const CLASS_COLOUR = { critical: "red", high: "orange", low: "yellow" };
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v; else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}
const STATE = { offline: "离线 offline", stale: "过期 stale" };
// The default rule table's reasons in Chinese; a park's own rules show as written.
const RULE_ZH = {
  "critical alarm on a level 1/2 source": "一、二级重大危险源紧急报警",
  "high or critical alarms at 2+ points (spreading)": "两个及以上点位高报或紧急报警（扩散）",
  "critical alarm during a special operation": "特殊作业期间紧急报警",
  "critical alarm on a level 3/4 source": "三、四级重大危险源紧急报警",
  "high alarm on a level 1/2 source": "一、二级重大危险源高报警",
  "high alarm on a level 3/4 source": "三、四级重大危险源高报警",
  "low alarm": "低级别报警",
  "special operation in progress (floor)": "特殊作业进行中",
  "source blind: detectors in fault": "探测器故障，监测盲区",
};
const COLOUR_ZH = { red: "红", orange: "橙", yellow: "黄", blue: "蓝" };
/** "HS-01: high alarm on a level 1/2 source (orange)" → Chinese, then English. */
function reason(text) {
  const m = /^(?:(\S+): )?(.*?)(?: \((red|orange|yellow|blue)\))?$/.exec(text) || [];
  const [, source, rule = text, colour] = m;
  const late = /^alarm unacknowledged for more than ([\d.]+) s: one colour up$/.exec(rule);
  const zh = late ? `报警超过 ${late[1]} 秒未确认，升一级` : RULE_ZH[rule];
  const where = source ? `${source}：` : "";
  const c = colour ? `（${COLOUR_ZH[colour]}）` : "";
  return zh ? `${where}${zh}${c} · ${text}` : text;
}
/** A value as a person reads it — two decimals, three significant digits below 1 —
 *  with its unit. */
function value(v, unit) {
  if (v === null || v === undefined) return "";
  const n = Number.isInteger(v) ? String(v)
    : String(Number(Math.abs(v) >= 1 ? v.toFixed(2) : v.toPrecision(3)));
  return unit ? `${n} ${unit}` : n;
}
const hhmm = ts => ts ? new Date(ts).toLocaleTimeString("zh-CN", { hour12: false }) : "";
// A county screen shows several parks: all of them, or one (`/screen#park=ID`, so a
// wall can be pinned to its park).
let last = null;
// Drill-down (park → enterprise → hazard source → point trend) lives in the address
// too: `#park=P&enterprise=E&gateway=G&source=HS-01&point=GT-101&minutes=60`.
const route = () => Object.fromEntries(new URLSearchParams(location.hash.slice(1)));
const chosenPark = () => route().park || "";
function go(r) {
  const q = new URLSearchParams();
  for (const k of ["park", "enterprise", "gateway", "source", "point", "minutes"]) if (r[k]) q.set(k, r[k]);
  location.hash = q.toString();
}
window.addEventListener("hashchange", () => last && render(last));
function parkBar(p, park) {
  const parks = [...new Set(p.enterprises.map(e => e.park))].sort();
  const worst = ps => {
    const n = { red: 0, orange: 0 };
    for (const e of p.enterprises) if (ps.includes(e.park))
      for (const s of e.sources) if (s.state === "live" && n[s.colour] !== undefined) n[s.colour] += 1;
    return [n.red ? el("b", { class: "badge red" }, `红 ${n.red}`) : "",
      n.orange ? el("b", { class: "badge orange" }, `橙 ${n.orange}`) : ""];
  };
  const button = (id, label, ps) => {
    const b = el("button", { class: id === park ? "on" : "", "data-park": id }, label, ...worst(ps));
    b.addEventListener("click", () => { location.hash = id ? "park=" + encodeURIComponent(id) : ""; });
    return b;
  };
  document.getElementById("parks").replaceChildren(
    button("", `全部 All (${parks.length})`, parks), ...parks.map(id => button(id, id, [id])));
}
function render(all) {
  last = all;
  const park = chosenPark();
  parkBar(all, park);
  const mine = x => !park || x.park === park;
  const p = { enterprises: all.enterprises.filter(mine), alarms: all.alarms.filter(mine),
    active: all.active.filter(mine) };
  loopBar(all, park);
  const counts = { red: 0, orange: 0, yellow: 0, blue: 0, grey: 0 };
  const major = [];
  const r = route();
  const shown = r.enterprise
    ? p.enterprises.filter(e => e.enterprise === r.enterprise && (!r.gateway || e.gateway === r.gateway))
    : p.enterprises;
  const map = document.getElementById("map");
  // A county has hundreds of sources: smaller tiles, so that every one stays in view.
  const sourcesShown = shown.reduce((n, e) => n + e.sources.length, 0);
  map.dataset.density = sourcesShown <= 36 ? "" : sourcesShown <= 160 ? "compact" : "dense";
  for (const e of p.enterprises) for (const s of e.sources) {
    const live = s.state === "live";
    counts[live ? s.colour : "grey"] += 1;
    if (s.colour === "red" || s.colour === "orange") major.push({ e, s });
  }
  const into = (e, s) => ({ park: e.park, enterprise: e.enterprise, gateway: e.gateway, source: s && s.id });
  map.replaceChildren(...shown.map(e => {
    const tiles = e.sources.map(s => {
      // A colour that is not current is grey, never its last colour, never blue.
      const live = s.state === "live";
      const title = live ? s.reasons.map(reason).join("\n")
        : `${STATE[s.state]} ${hhmm(s.state_since)} · last 最后 ${LABEL[s.colour]}`;
      return el("div", { class: "tile " + (live ? s.colour : "grey"), "data-enterprise": e.enterprise,
        "data-source": s.id, "data-colour": s.colour, "data-state": s.state, title },
        el("span", { class: "id" }, s.id), el("span", { class: "name" }, s.name || ""),
        el("span", {}, live ? LABEL[s.colour] : `${STATE[s.state]} ${hhmm(s.state_since)}`));
    });
    for (const [i, t] of tiles.entries()) t.addEventListener("click", () => go(into(e, e.sources[i])));
    const h2 = el("h2", { title: e.enterprise }, el("span", {}, e.name || e.enterprise),
        e.online === false ? el("span", { class: "offline" }, "离线 offline") : "",
        e.clock_offset_s === null ? "" : el("span", { class: "offline clock" },
          `时钟偏差 clock ${e.clock_offset_s > 0 ? "+" : ""}${Math.round(e.clock_offset_s)} s`));
    h2.addEventListener("click", () => go(into(e)));
    return el("div", { class: "enterprise", "data-enterprise": e.enterprise, "data-colour": e.colour },
      h2, el("div", { class: "tiles" }, ...tiles));
  }));
  const at = r.source && shown.find(e => e.sources.some(s => s.id === r.source));
  crumbs(r, shown[0], at && at.sources.find(s => s.id === r.source));
  for (const c of Object.keys(counts)) document.getElementById("n-" + c).textContent = counts[c];
  const planned = Boolean(park) && !r.enterprise && (all.plans || []).includes(park);
  const detailed = Boolean(at);
  document.getElementById("plan").hidden = !planned || detailed;
  document.getElementById("detail").hidden = !detailed;
  map.hidden = planned || detailed;
  if (detailed) detail(all, r, at, at.sources.find(s => s.id === r.source));
  if (planned) paintPlan(park, p.enterprises);
  const rank = { red: 0, orange: 1 };
  major.sort((a, b) => rank[a.s.colour] - rank[b.s.colour] || b.s.since.localeCompare(a.s.since));
  const list = (id, items, empty) => document.getElementById(id).replaceChildren(
    ...(items.length ? items : [el("li", { class: "empty" }, empty)]));
  list("major", major.map(({ e, s }) => el("li", {},
    el("span", { class: "badge " + s.colour }, LABEL[s.colour]),
    `${e.name || e.enterprise} · ${s.id}${s.name ? " " + s.name : ""}`,
    s.state === "live" ? "" : ` (${STATE[s.state]} ${hhmm(s.state_since)})`,
    el("span", { class: "why" }, s.reasons.map(reason).join("；") || "—"))), "无 none");
  list("alarms", p.alarms.map(a => el("li", {},
    el("span", { class: "badge " + (CLASS_COLOUR[a.class] || "blue") }, ACTION[a.action] || a.action),
    `${a.ts.slice(11, 19)} ${a.enterprise} · ${a.hazard_source} · ${a.point} ${a.alarm.toUpperCase()}`,
    a.value === null ? "" : ` = ${value(a.value, a.unit)}`,
    a.limit === null ? "" : ` (限 limit ${value(a.limit, a.unit)})`)), "无报警 no alarms");
  const STATE_ZH = { active_unacknowledged: "未确认 unack", returned_unacknowledged: "已恢复未确认 returned",
    active_acknowledged: "已确认 ack" };
  if (all.occurrences) list("active", all.occurrences.filter(mine).map(o => occurrenceItem(o, all.causes)), "无 none");
  else list("active", p.active.map(a => el("li", { "data-state": a.state },
    el("span", { class: "badge " + (a.state === "active_acknowledged" ? "grey" : CLASS_COLOUR[a.class] || "blue") },
      STATE_ZH[a.state] || a.state),
    `${hhmm(a.raised)} ${a.enterprise} · ${a.hazard_source} · ${a.point} ${a.alarm.toUpperCase()}`,
    a.value === null ? "" : ` = ${value(a.value, a.unit)}`,
    a.by ? el("span", { class: "why" }, `确认 by ${a.by}`) : "")), "无 none");
  list("offline", p.enterprises.filter(e => e.online === false).map(e =>
    el("li", {}, `${e.name || e.enterprise} · ${e.gateway}`)), "全部在线 all online");
  document.body.dataset.updated = String(Date.now());
}
// The drill-down: where one is (全部 › park › enterprise › source, each a way back),
// then a hazard source's points (last values, from the store) and one point's trend.
function crumbs(r, e, s) {
  const nav = document.getElementById("crumbs");
  nav.hidden = !r.enterprise;
  if (nav.hidden) return;
  const link = (label, to) => {
    const a = el("button", {}, label);
    a.addEventListener("click", () => go(to));
    return a;
  };
  nav.replaceChildren(link("全部 All", {}), link(`园区 ${r.park}`, { park: r.park }),
    link(`企业 ${e ? e.name || e.enterprise : r.enterprise}`, { park: r.park, enterprise: r.enterprise, gateway: r.gateway }),
    s ? el("span", {}, `危险源 ${s.id}${s.name ? " " + s.name : ""}`) : "");
}
const KIND = { combustible_gas: "可燃气体", toxic_gas: "有毒气体", level: "液位", temperature: "温度",
  pressure: "压力", flow: "流量", sis_trip: "SIS 联锁", esd_valve: "紧急切断阀", interlock_bypass: "联锁旁路",
  detector_fault: "探测器故障", analog: "模拟量", discrete: "开关量" };
const QUALITY = ["正常 good", "通讯故障 comm failure", "设备异常 device exception", "传感器故障 sensor fault",
  "过期 stale"];
const RANGES = [[60, "1 小时 1 h"], [360, "6 小时 6 h"], [1440, "24 小时 24 h"], [10080, "7 天 7 d"]];
// What the store said, kept so that a picture arriving ten times a second re-draws
// from memory: a source's points are asked for again after 10 s, a trend after 30 s.
const drill = { points: { key: "", at: 0, data: null, error: "" }, trend: { key: "", at: 0, data: null, error: "" } };
async function ask(slot, key, url, ttl) {
  const c = drill[slot];
  if (c.key === key && (c.busy || Date.now() - c.at < ttl)) return;
  if (c.key !== key) { c.data = null; c.error = ""; }
  Object.assign(c, { key, busy: true });
  try {
    const r = await fetch(url, { credentials: "same-origin" });
    if (c.key !== key) return;
    if (r.ok) { c.data = await r.json(); c.error = ""; } else c.error = `${r.status}: ${await r.text()}`;
  } catch (e) { c.error = String(e); }
  c.busy = false;
  c.at = Date.now();
  if (last) render(last);
}
function detail(all, r, e, s) {
  const live = s.state === "live";
  const head = el("div", { class: "head" },
    el("span", { class: "badge " + (live ? s.colour : "grey") }, live ? LABEL[s.colour] : STATE[s.state]),
    el("b", {}, `${e.name || e.enterprise} · ${s.id}${s.name ? " " + s.name : ""}`),
    el("span", { class: "why" }, s.reasons.map(reason).join("；") || "—"));
  const box = document.getElementById("detail");
  if (!all.trends) {
    box.replaceChildren(head, el("p", { class: "empty" },
      "趋势未开启 Trends are off: set [store] query in central.toml"));
    return;
  }
  const q = new URLSearchParams({ park: e.park, enterprise: e.enterprise, gateway: e.gateway });
  const pkey = `${q}&source=${encodeURIComponent(s.id)}`;
  ask("points", pkey, `/screen/points?${pkey}`, 10000);
  const pts = drill.points.key === pkey && drill.points.data ? drill.points.data.points : [];
  const point = r.point || (pts[0] && pts[0].point);
  const rows = pts.map(p => {
    const tr = el("tr", { "data-point": p.point, class: p.point === point ? "on" : "" },
      el("td", {}, p.point), el("td", {}, `${KIND[p.kind] || ""} ${p.kind}`.trim()), el("td", {}, p.value === null ? "—" : value(p.value, p.unit)),
      el("td", { class: p.quality ? "bad" : "" }, p.quality === null ? "—" : QUALITY[p.quality] || p.quality));
    tr.addEventListener("click", () => go({ ...r, point: p.point }));
    return tr;
  });
  const table = el("table", { class: "points" },
    el("tr", {}, el("th", {}, "点位 Point"), el("th", {}, "类型 Kind"), el("th", {}, "当前值 Value"), el("th", {}, "质量 Quality")),
    ...rows);
  const minutes = Number(r.minutes) || 60;
  const ranges = el("div", { class: "ranges" }, ...RANGES.map(([m, label]) => {
    const b = el("button", { class: m === minutes ? "on" : "" }, label);
    b.addEventListener("click", () => go({ ...r, point, minutes: String(m) }));
    return b;
  }));
  let chart = el("p", { class: "empty" }, drill.points.error || (drill.points.data ? "无数据 no readings in the last 15 min" : "…"));
  if (point) {
    const tkey = `${q}&point=${encodeURIComponent(point)}&minutes=${minutes}`;
    ask("trend", tkey, `/screen/trend?${tkey}`, 30000);
    const t = drill.trend.key === tkey ? drill.trend : {};
    const unit = (pts.find(p => p.point === point) || {}).unit;
    chart = t.data ? trendChart(t.data, point, unit) : el("p", { class: "empty" }, t.error || "…");
  }
  box.replaceChildren(head, table, ranges, chart);
}
/** The trend as an SVG line: the highest value of each step, with its range and span. */
function trendChart(t, point, unit) {
  const W = 1200, H = 380, L = 130, B = 30;
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  svg.setAttribute("class", "trend");
  svg.setAttribute("data-point", point);
  svg.setAttribute("data-samples", String(t.samples.length));
  const text = (x, y, s, anchor) => {
    const e = document.createElementNS(svg.namespaceURI, "text");
    Object.entries({ x, y, "text-anchor": anchor || "start" }).forEach(([k, v]) => e.setAttribute(k, v));
    e.textContent = s;
    svg.append(e);
  };
  if (!t.samples.length) { text(W / 2, H / 2, "无数据 no data in this span", "middle"); return svg; }
  const vs = t.samples.map(x => x[1]);
  let lo = Math.min(...vs), hi = Math.max(...vs);
  if (hi === lo) { hi += 1; lo -= 1; }
  const x = ms => L + (W - L - 10) * (ms - t.from) / (t.to - t.from);
  const y = v => 10 + (H - B - 20) * (hi - v) / (hi - lo);
  const line = document.createElementNS(svg.namespaceURI, "polyline");
  line.setAttribute("points", t.samples.map(([ms, v]) => `${x(ms).toFixed(1)},${y(v).toFixed(1)}`).join(" "));
  svg.append(line);
  text(L - 8, y(hi) + 5, value(hi, unit), "end");
  text(L - 8, y(lo) + 5, value(lo, unit), "end");
  text(L, H - 8, hhmm(t.from));
  text(W - 10, H - 8, `${hhmm(t.to)} · ${point} 最大值 max per ${t.step_s} s`, "end");
  return svg;
}
// A park's plan (一图): an SVG whose shapes name an enterprise (data-enterprise) or a
// hazard source (data-source="ENTERPRISE/HS-ID"), coloured like the tiles — grey when
// not current or never heard of, never blue.
const plans = {};
async function loadPlan(park) {
  const r = await fetch(`/screen/plan/${encodeURIComponent(park)}`, { credentials: "same-origin" });
  if (!r.ok) return;
  const doc = new DOMParser().parseFromString(await r.text(), "image/svg+xml");
  const svg = doc.documentElement;
  if (svg.nodeName !== "svg") return;
  for (const s of svg.querySelectorAll("script, foreignObject")) s.remove();
  plans[park] = document.importNode(svg, true);
  if (last) render(last);
}
function paintPlan(park, enterprises) {
  const svg = plans[park];
  if (!svg) { if (plans[park] === undefined) { plans[park] = null; loadPlan(park); } return; }
  const box = document.getElementById("plan");
  if (svg.parentNode !== box) box.replaceChildren(svg);
  const colour = new Map();
  for (const e of enterprises) {
    colour.set(e.enterprise, e.online === false ? "grey" : e.colour);
    for (const s of e.sources) colour.set(`${e.enterprise}/${s.id}`, s.state === "live" ? s.colour : "grey");
  }
  for (const shape of svg.querySelectorAll("[data-source], [data-enterprise]")) {
    const key = shape.getAttribute("data-source") || shape.getAttribute("data-enterprise");
    shape.setAttribute("data-colour", colour.get(key) || "grey");
  }
}
// The alarm-handling loop (预警处置反馈), when the centre runs it: its counters, each
// occurrence's acknowledgement and feedback, and the feedback form.
const DELIVERY = { pending: "待送达 pending", accepted: "企业已收 delivered", refused: "企业拒收 refused" };
function loopBar(all, park) {
  const bar = document.getElementById("loop");
  const rows = (all.loop_counts || []).filter(c => !c.enterprise && (!park || c.park === park));
  bar.hidden = !all.occurrences;
  if (bar.hidden) return;
  const sum = k => rows.reduce((n, c) => n + c[k], 0);
  const gateways = sum("gateways");
  const one = rows.length === 1 ? rows[0] : null;
  const minutes = v => v === null || v === undefined ? "—" : `${Math.round(v)} min`;
  const item = (label, v, bad) => el("div", { class: bad ? "bad" : "", "data-count": label }, label + " ", el("b", {}, v));
  bar.replaceChildren(
    item("未销警 Not cleared", sum("not_cleared"), sum("not_cleared") > 0),
    item("未反馈 Feedback overdue", sum("feedback_overdue"), sum("feedback_overdue") > 0),
    item("在线率 Online", gateways ? `${Math.round(100 * sum("online") / gateways)}%` : "—", sum("online") < gateways),
    item("反馈用时 Feedback p50 / p90", one ? `${minutes(one.feedback_p50_min)} / ${minutes(one.feedback_p90_min)}` : "—"));
}
function occurrenceItem(o, causes) {
  const f = o.feedback;
  const overdue = !f && Date.now() > Date.parse(o.feedback_due);
  const cause = f && ((causes || []).find(c => c.id === f.cause) || { name: f.cause }).name;
  const badge = o.cleared ? el("span", { class: "badge grey" }, "已销警 cleared")
    : el("span", { class: "badge " + (o.state === "active_acknowledged" ? "grey" : CLASS_COLOUR[o.class] || "blue") },
      { active_unacknowledged: "未确认 unack", returned_unacknowledged: "已恢复未确认 returned",
        active_acknowledged: "已确认 ack" }[o.state] || o.state);
  const notes = [
    o.acknowledged ? `确认 ack ${o.acknowledged.by} ${hhmm(o.acknowledged.at)}` : "",
    f ? `反馈 feedback ${cause} · ${f.by} ${hhmm(f.at)} · ${DELIVERY[f.delivery.state] || f.delivery.state}` : "",
    o.cleared ? `销警 cleared ${hhmm(o.cleared)}` : "",
  ].filter(Boolean).join("；");
  const li = el("li", { "data-state": o.state, "data-alarm-id": o.alarm_id, "data-gateway": o.gateway,
    "data-feedback": f ? "given" : overdue ? "overdue" : "due" },
    badge,
    `${hhmm(o.raised)} ${o.enterprise_name || o.enterprise} · ${o.hazard_source} · ${o.point} ${o.alarm.toUpperCase()}`,
    o.value === null ? "" : ` = ${value(o.value, o.unit)}`,
    el("span", { class: "why" }, notes,
      f ? "" : el("span", { class: "due" }, `${notes ? "；" : ""}${overdue ? "超时未反馈 feedback overdue" : "待反馈 feedback due"} ${hhmm(o.feedback_due)}`)));
  if (!f) li.addEventListener("click", () => openFeedback(o, causes));
  return li;
}
let feedbackFor = null;
function openFeedback(o, causes) {
  feedbackFor = o;
  document.getElementById("fb-alarm").textContent =
    `${o.enterprise_name || o.enterprise} · ${o.hazard_source} · ${o.point} ${o.alarm.toUpperCase()} · ${hhmm(o.raised)}`;
  document.getElementById("fb-cause").replaceChildren(...(causes || []).map(c => el("option", { value: c.id }, c.name)));
  document.getElementById("fb-error").textContent = "";
  document.getElementById("fb").showModal();
}
async function sendFeedback() {
  const o = feedbackFor;
  const error = document.getElementById("fb-error");
  const body = { gateway: o.gateway, alarm_id: o.alarm_id, cause: document.getElementById("fb-cause").value,
    measures: document.getElementById("fb-measures").value, text: document.getElementById("fb-text").value };
  try {
    const r = await fetch("/screen/feedback", { method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
    if (!r.ok) { error.textContent = `${r.status}: ${await r.text()}`; return; }
    for (const id of ["fb-measures", "fb-text"]) document.getElementById(id).value = "";
    document.getElementById("fb").close();
  } catch (e) { error.textContent = String(e); }
}
document.getElementById("fb-send").addEventListener("click", sendFeedback);
document.getElementById("fb-cancel").addEventListener("click", () => document.getElementById("fb").close());
function connect() {
  const src = new EventSource("/screen/events");
  const conn = document.getElementById("conn");
  src.onopen = () => { conn.textContent = "实时 live"; };
  src.onmessage = m => render(JSON.parse(m.data));
  src.onerror = () => { conn.textContent = "重连中 reconnecting…"; };
}
setInterval(() => { document.getElementById("time").textContent = new Date().toLocaleString("zh-CN", { hour12: false }); }, 1000);
connect();
