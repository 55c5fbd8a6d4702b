//! The report as one self-contained page (no script, no fetch: it opens offline and
//! can be mailed): what candidates miss first, in red; the figures side by side; the
//! alarm rate per 10 minutes; for each point worth looking at, its value with today's
//! and the candidates' limits and its alarms on a timeline.

use std::fmt::Write as _;

use super::{
    kpi::{Occurrence, WINDOW_MS},
    look::Look,
    report::{miss_line, shown, Report},
};
use crate::{
    model::{alarm::AlarmKind, Site},
    reading::Timestamp,
};

const W: f64 = 900.0;
const COLOURS: [&str; 4] = ["#2f6fdf", "#e0b000", "#f07000", "#d01010"];
/// Today, then the candidates.
const RUNS: [&str; 5] = ["#333", "#1b9e77", "#7570b3", "#d95f02", "#e7298a"];

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

pub fn page(r: &Report, site: &Site, look: &Look) -> String {
    let mut h = String::with_capacity(64 * 1024);
    let _ = write!(
        h,
        "<!doctype html><html lang=\"en\"><meta charset=\"utf-8\"><title>{id}</title><style>\
body{{font:14px system-ui,sans-serif;margin:24px;color:#222}}h1{{font-size:20px}}\
table{{border-collapse:collapse}}td,th{{padding:3px 10px;border-bottom:1px solid #ddd;text-align:right}}\
td:first-child,th:first-child{{text-align:left}}.miss{{color:#c00;font-weight:600}}\
.refused{{background:#fee;border:2px solid #c00;padding:8px}}svg{{display:block;margin:6px 0 18px}}\
.key span{{display:inline-block;margin-right:14px}}</style>\
<h1>hazgate tune · {id}</h1><p>{ent} / {gw} · {from} → {to} · {n} readings from {hist}</p>",
        id = esc(&r.id),
        ent = esc(&r.enterprise_id),
        gw = esc(&r.gateway_id),
        from = r.from.to_rfc3339(),
        to = r.to.to_rfc3339(),
        n = r.readings,
        hist = esc(&r.history),
    );
    misses(&mut h, r);
    figures(&mut h, r);
    rates(&mut h, r);
    traces(&mut h, r, site, look);
    suggestions(&mut h, r);
    if let Some(f) = &r.fidelity {
        let _ = write!(
            h,
            "<h2>Replay fidelity</h2><p>{} of {} alarm and colour changes the live judge made were reproduced by the replay with the settings then in force, within {} ms.</p>",
            f.matched, f.live, r.tolerance_ms
        );
    }
    h.push_str("</html>\n");
    h
}

fn misses(h: &mut String, r: &Report) {
    for c in &r.candidates {
        if let Some(why) = &c.refused {
            let _ = write!(
                h,
                "<p class=\"refused miss\">Refused: {}: {}</p>",
                esc(&c.name),
                esc(why)
            );
        } else if !c.missed.is_empty() {
            let _ = write!(
                h,
                "<h2 class=\"miss\">Missed or late under {}</h2><ul>",
                esc(&c.name)
            );
            for m in &c.missed {
                let _ = write!(h, "<li class=\"miss\">{}</li>", esc(&miss_line(m)));
            }
            h.push_str("</ul>");
        }
    }
}

fn figures(h: &mut String, r: &Report) {
    h.push_str("<h2>Alarm figures</h2><table><tr><th></th><th>raised</th><th>per 10 min</th><th>peak 10 min</th><th>flood windows %</th><th>chattering</th><th>fleeting</th><th>standing</th></tr>");
    let mut row = |name: &str, k: &super::kpi::Kpis| {
        let sum = |f: fn(&super::kpi::AlarmKpi) -> usize| k.alarms.iter().map(f).sum::<usize>();
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{:.2}</td><td>{}</td><td>{:.1}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(name), k.site.raised, k.site.per_10min, k.site.peak_10min, k.site.flood_windows_pct,
            sum(|a| a.chattering), sum(|a| a.fleeting), sum(|a| a.standing)
        );
    };
    row("today", &r.today.kpis);
    for c in &r.candidates {
        if let Some(run) = &c.run {
            row(&c.name, &run.kpis);
        }
    }
    h.push_str("</table><h2>Time in each colour</h2><table><tr><th></th><th>blue</th><th>yellow</th><th>orange</th><th>red</th><th>changes</th></tr>");
    for c in &r.today.kpis.colours {
        let _ = write!(h, "<tr><td>{}</td>", esc(&c.scope));
        for s in c.seconds {
            let _ = write!(h, "<td>{}</td>", hms(s));
        }
        let _ = write!(h, "<td>{}</td></tr>", c.changes);
    }
    h.push_str("</table>");
}

fn hms(s: f64) -> String {
    let s = s.round() as i64;
    format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

/// Raises per 10 minutes, today and each candidate, with the flood line.
fn rates(h: &mut String, r: &Report) {
    let runs: Vec<(&str, &Vec<u32>)> = std::iter::once(("today", &r.today.kpis.site.windows))
        .chain(r.candidates.iter().filter_map(|c| {
            c.run
                .as_ref()
                .map(|x| (c.name.as_str(), &x.kpis.site.windows))
        }))
        .collect();
    let max = runs
        .iter()
        .flat_map(|(_, w)| w.iter())
        .copied()
        .max()
        .unwrap_or(0)
        .max(r.options.flood as u32) as f64;
    let hgt = 160.0;
    let _ = write!(h, "<h2>Alarms per 10 minutes</h2><svg width=\"{W}\" height=\"{}\" role=\"img\"><rect width=\"{W}\" height=\"{hgt}\" fill=\"#fafafa\"/>", hgt + 4.0);
    let y = |v: f64| hgt - v / max * (hgt - 10.0);
    let flood = y(r.options.flood as f64);
    let _ = write!(h, "<line x1=\"0\" x2=\"{W}\" y1=\"{flood}\" y2=\"{flood}\" stroke=\"#c00\" stroke-dasharray=\"4 3\"/><text x=\"4\" y=\"{}\" fill=\"#c00\" font-size=\"11\">flood ({} / 10 min)</text>", flood - 3.0, r.options.flood);
    for (k, (_, w)) in runs.iter().enumerate() {
        let n = w.len().max(1) as f64;
        let pts: String = w
            .iter()
            .enumerate()
            .map(|(i, v)| format!("{:.1},{:.1} ", i as f64 / n * W, y(f64::from(*v))))
            .collect();
        let _ = write!(
            h,
            "<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"1.5\" points=\"{pts}\"/>",
            RUNS[k % RUNS.len()]
        );
    }
    h.push_str("</svg><p class=\"key\">");
    for (k, (name, _)) in runs.iter().enumerate() {
        let _ = write!(
            h,
            "<span style=\"color:{}\">━ {}</span>",
            RUNS[k % RUNS.len()],
            esc(name)
        );
    }
    let _ = write!(
        h,
        "</p><p>Windows of {} minutes from the start of the period.</p>",
        WINDOW_MS / 60_000
    );
}

fn traces(h: &mut String, r: &Report, site: &Site, look: &Look) {
    let (t0, t1) = (r.from.0, r.to.0.max(r.from.0 + 1));
    let x = |t: i64| (t - t0) as f64 / (t1 - t0) as f64 * W;
    for id in shown(r) {
        let Some(p) = site.point_by_id(&id) else {
            continue;
        };
        let env = look.envelope(p.index);
        let mut limits: Vec<(f64, &str, usize)> = Vec::new();
        for k in [AlarmKind::Hh, AlarmKind::H, AlarmKind::L, AlarmKind::Ll] {
            if let Some(l) = p.alarms.limit(k) {
                limits.push((l, k.as_str(), 0));
            }
            for (ci, c) in r.candidates.iter().enumerate() {
                // A refused candidate ran no replay: its limits are not drawn.
                let changes = c.changes.iter().filter(|_| c.refused.is_none());
                for ch in changes.filter(|ch| ch.point == id) {
                    let v = match k {
                        AlarmKind::Hh => ch.set.hh,
                        AlarmKind::H => ch.set.h,
                        AlarmKind::L => ch.set.l,
                        _ => ch.set.ll,
                    };
                    if let Some(v) = v {
                        limits.push((v, k.as_str(), ci + 1));
                    }
                }
            }
        }
        let (lo, hi) = env
            .iter()
            .flatten()
            .flat_map(|(a, b)| [*a, *b])
            .chain(limits.iter().map(|l| l.0))
            .fold((f64::MAX, f64::MIN), |(a, b), v| (a.min(v), b.max(v)));
        let (lo, hi) = if lo < hi {
            (lo, hi)
        } else {
            (lo - 1.0, lo + 1.0)
        };
        let hgt = 140.0;
        // Room above the highest line for its label.
        let y = |v: f64| hgt - 6.0 - (v - lo) / (hi - lo) * (hgt - 20.0);
        let _ = write!(h, "<h3>{} {} ({})</h3><svg width=\"{W}\" height=\"{}\" role=\"img\"><rect width=\"{W}\" height=\"{hgt}\" fill=\"#fafafa\"/>", esc(&id), esc(&p.name), esc(&p.unit), hgt);
        let _ = write!(
            h,
            "<polyline fill=\"none\" stroke=\"#2f6fdf\" stroke-width=\"1\" points=\"{}\"/>",
            polyline(env, &y)
        );
        for (v, k, run) in &limits {
            let dash = if *run == 0 {
                ""
            } else {
                " stroke-dasharray=\"6 4\""
            };
            let _ = write!(h, "<line x1=\"0\" x2=\"{W}\" y1=\"{yy:.1}\" y2=\"{yy:.1}\" stroke=\"{c}\"{dash}/><text x=\"{tx}\" y=\"{ty:.1}\" font-size=\"11\" fill=\"{c}\">{k} {v}</text>", yy = y(*v), c = RUNS[run % RUNS.len()], tx = W - 70.0 - 50.0 * *run as f64, ty = y(*v) - 2.0);
        }
        h.push_str("</svg>");
        timeline(h, r, &id, &x);
    }
}

/// The envelope (min and max of each pixel column: a spike survives however long the
/// period) as the points of a polyline.
fn polyline(env: &[Option<(f64, f64)>], y: &dyn Fn(f64) -> f64) -> String {
    let scale = W / env.len().max(1) as f64;
    let mut s = String::new();
    for (c, m) in env.iter().enumerate() {
        if let Some((a, m)) = m {
            let x = c as f64 * scale;
            let _ = write!(s, "{x:.1},{:.1} {x:.1},{:.1} ", y(*a), y(*m));
        }
    }
    s
}

/// One row of alarm bars per run: today's and each candidate's occurrences.
fn timeline(h: &mut String, r: &Report, id: &str, x: &dyn Fn(i64) -> f64) {
    let runs: Vec<(&str, &Vec<Occurrence>)> = std::iter::once(("today", &r.today.kpis.occurrences))
        .chain(r.candidates.iter().filter_map(|c| {
            c.run
                .as_ref()
                .map(|x| (c.name.as_str(), &x.kpis.occurrences))
        }))
        .collect();
    let row = 16.0;
    let _ = write!(
        h,
        "<svg width=\"{W}\" height=\"{}\" role=\"img\">",
        row * runs.len() as f64 + 2.0
    );
    for (k, (name, occ)) in runs.iter().enumerate() {
        let top = k as f64 * row;
        for o in occ.iter().filter(|o| o.point == id) {
            let (a, b) = (x(o.raised.max(r.from.0)), x(o.end(r.to.0)));
            let fill = COLOURS[match o.class {
                crate::model::alarm::AlarmClass::Critical => 3,
                crate::model::alarm::AlarmClass::High => 2,
                _ => 1,
            }];
            let _ = write!(h, "<rect x=\"{a:.1}\" y=\"{top}\" width=\"{:.1}\" height=\"{}\" fill=\"{fill}\"><title>{} {} {}</title></rect>", (b - a).max(1.0), row - 3.0, o.alarm.as_str(), Timestamp(o.raised).to_rfc3339(), esc(name));
        }
        let _ = write!(
            h,
            "<text x=\"2\" y=\"{}\" font-size=\"10\" fill=\"{}\">{}</text>",
            top + 11.0,
            RUNS[k % RUNS.len()],
            esc(name)
        );
    }
    h.push_str("</svg>");
}

fn suggestions(h: &mut String, r: &Report) {
    if r.suggestions.is_empty() {
        return;
    }
    h.push_str("<h2>Suggestions (not applied)</h2><table><tr><th>point</th><th>field</th><th>now</th><th>suggested</th><th>why</th></tr>");
    for s in &r.suggestions {
        let _ = write!(h, "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td style=\"text-align:left\">{}</td></tr>", esc(&s.point), s.field, s.now, s.suggested, esc(&s.why));
    }
    h.push_str("</table>");
}
