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
const chosenPark = () => new URLSearchParams(location.hash.slice(1)).get("park") || "";
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
  const map = document.getElementById("map");
  // A county has hundreds of sources: smaller tiles, so that every one stays in view.
  const sourcesShown = p.enterprises.reduce((n, e) => n + e.sources.length, 0);
  map.dataset.density = sourcesShown <= 36 ? "" : sourcesShown <= 160 ? "compact" : "dense";
  map.replaceChildren(...p.enterprises.map(e => {
    const tiles = e.sources.map(s => {
      // A colour that is not current is grey, never its last colour, never blue.
      const live = s.state === "live";
      counts[live ? s.colour : "grey"] += 1;
      if (s.colour === "red" || s.colour === "orange") major.push({ e, s });
      const title = live ? s.reasons.map(reason).join("\n")
        : `${STATE[s.state]} ${hhmm(s.state_since)} · last 最后 ${LABEL[s.colour]}`;
      return el("div", { class: "tile " + (live ? s.colour : "grey"), "data-enterprise": e.enterprise,
        "data-source": s.id, "data-colour": s.colour, "data-state": s.state, title },
        el("span", { class: "id" }, s.id), el("span", { class: "name" }, s.name || ""),
        el("span", {}, live ? LABEL[s.colour] : `${STATE[s.state]} ${hhmm(s.state_since)}`));
    });
    return el("div", { class: "enterprise", "data-enterprise": e.enterprise, "data-colour": e.colour },
      el("h2", { title: e.enterprise }, el("span", {}, e.name || e.enterprise),
        e.online === false ? el("span", { class: "offline" }, "离线 offline") : "",
        e.clock_offset_s === null ? "" : el("span", { class: "offline clock" },
          `时钟偏差 clock ${e.clock_offset_s > 0 ? "+" : ""}${Math.round(e.clock_offset_s)} s`)),
      el("div", { class: "tiles" }, ...tiles));
  }));
  for (const c of Object.keys(counts)) document.getElementById("n-" + c).textContent = counts[c];
  const planned = Boolean(park) && (all.plans || []).includes(park);
  document.getElementById("plan").hidden = !planned;
  map.hidden = planned;
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
