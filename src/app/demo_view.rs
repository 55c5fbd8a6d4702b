//! The demo's live view: one frame of colours, hazard sources, points, alarms and
//! events. On a terminal the frame fits the window (80 × 40 at least): the header, the
//! enterprise's colour and every source's colour always, then the points of the source
//! the scenario acts on, then the points that are not normal, as many as fit; piped,
//! every point, for logs and tests.

use std::collections::VecDeque;

use crate::{
    acquire::LatestStore,
    contract::wire::AlarmState,
    judge::{
        engine::{AlarmView, Event, RiskScope},
        service::StateView,
    },
    model::{risk::Colour, PointIndex, Site, SourceIndex},
    reading::{Quality, Timestamp},
};

const RESET: &str = "\x1b[0m";

fn quality_style(q: Quality) -> &'static str {
    match q {
        Quality::Good => "\x1b[32m",
        Quality::Stale => "\x1b[33m",
        _ => "\x1b[1;31m",
    }
}

/// What the judge says, for one frame.
pub struct View<'a> {
    pub state: &'a StateView,
    pub alarms: &'a [AlarmView],
    pub feed: &'a VecDeque<String>,
}

fn colour_style(c: Colour) -> &'static str {
    match c {
        Colour::Red => "\x1b[1;97;41m",
        Colour::Orange => "\x1b[1;30;48;5;208m",
        Colour::Yellow => "\x1b[1;30;43m",
        Colour::Blue => "\x1b[1;97;44m",
    }
}

fn colour_tag(c: Colour, tty: bool) -> String {
    let text = format!(" {} {} ", c.as_str().to_uppercase(), c.chinese());
    if tty {
        format!("{}{text}{RESET}", colour_style(c))
    } else {
        format!("[{}]", text.trim())
    }
}

/// A line of the event feed.
/// One line of the event feed; none for a restatement of an unchanged level.
pub fn describe_event(e: &Event) -> Option<String> {
    Some(match e {
        Event::Risk(r) if r.snapshot => return None,
        Event::ActiveAlarms(_) => return None,
        Event::Alarm(a) => format!(
            "{} {} {} {:?}{}",
            a.ts.to_rfc3339(),
            a.point,
            a.alarm.as_str().to_uppercase(),
            a.action,
            a.value.map(|v| format!(" at {v:.2}")).unwrap_or_default()
        ),
        Event::Risk(r) => format!(
            "{} {} {} → {}: {}",
            r.ts.to_rfc3339(),
            match &r.scope {
                RiskScope::HazardSource(id) => id.to_string(),
                RiskScope::Enterprise => "enterprise".into(),
            },
            r.from.as_str(),
            r.to.as_str(),
            r.reasons
                .first()
                .map(|x| x.rule.as_str())
                .unwrap_or("clear")
        ),
        Event::Thresholds(t) => format!(
            "{} {} thresholds changed by {}",
            t.ts.to_rfc3339(),
            t.point,
            t.by
        ),
        Event::SpecialOperation(s) => format!(
            "{} {} special operation {} ({})",
            s.ts.to_rfc3339(),
            s.hazard_source,
            if s.active { "started" } else { "ended" },
            s.kind
        ),
    })
}

/// How a frame is drawn: the scenario's sentence, the source it acts on, and the
/// terminal's (rows, columns) to fit — `None` when piped (every point is listed).
pub struct Frame<'a> {
    pub scenario: &'a str,
    pub focus: Option<SourceIndex>,
    pub fit: Option<(usize, usize)>,
}

/// Lines kept for the event feed on a fitted frame.
const FEED_LINES: usize = 5;

/// One frame of the live view.
pub fn render(site: &Site, store: &LatestStore, frame: &Frame<'_>, view: &View<'_>) -> String {
    let tty = frame.fit.is_some();
    let (bold, reset) = if tty { ("\x1b[1m", RESET) } else { ("", "") };
    let g = &site.gateway;
    let mut lines = vec![
        format!(
            "{bold}hazgate demo{reset} {} | gateway {} | {} | park {}",
            Timestamp::now().to_rfc3339(),
            g.gateway_id,
            g.enterprise_name,
            g.park_id
        ),
        format!("scenario {}", frame.scenario),
    ];
    let c = &view.state.alarm_counts;
    lines.push(format!(
        "enterprise {} alarms: {} unack, {} ack, {} returned unack, {} shelved, {} out of service",
        colour_tag(view.state.enterprise.colour, tty),
        c.active_unacknowledged,
        c.active_acknowledged,
        c.returned_unacknowledged,
        c.shelved,
        c.out_of_service
    ));
    for (si, source) in site.hazard_sources.iter().enumerate() {
        let risk = view.state.hazard_sources.get(si).map(|h| &h.risk);
        let tag = risk.map(|r| colour_tag(r.colour, tty)).unwrap_or_default();
        let why = risk
            .and_then(|r| r.reasons.first())
            .map(|r| format!(" — {}", r.rule))
            .unwrap_or_default();
        lines.push(format!(
            "{tag} {bold}{}{reset} L{}{why} — {}",
            source.id, source.level, source.name
        ));
    }
    let Some((rows, cols)) = frame.fit else {
        for source in &site.hazard_sources {
            lines.push(format!("{}:", source.id));
            for &pi in &source.points {
                lines.push(point_line(site, store, pi, false, view));
            }
        }
        lines.push("events".into());
        lines.extend(view.feed.iter().map(|l| format!("  {l}")));
        return lines.join("\n") + "\n----\n";
    };
    let feed: Vec<&String> = view.feed.iter().rev().take(FEED_LINES).rev().collect();
    // The last row stays free, so the frame never scrolls the terminal.
    let budget = rows
        .saturating_sub(1)
        .saturating_sub(lines.len() + 3 + feed.len());
    let order = points_in_order(site, store, view, frame.focus);
    let focus = frame
        .focus
        .map(|s| site.source(s).id.as_str())
        .unwrap_or("-");
    lines.push(format!(
        "{bold}points{reset} — {focus} first, then what is not normal"
    ));
    for &pi in order.iter().take(budget) {
        lines.push(point_line(site, store, pi, true, view));
    }
    let hidden = order.len().saturating_sub(budget);
    lines.push(if hidden > 0 {
        format!("  … {hidden} more points (a taller window shows them)")
    } else {
        String::new()
    });
    lines.push(format!("{bold}events{reset}"));
    lines.extend(feed.iter().map(|l| format!("  {l}")));
    let mut s = String::from("\x1b[2J\x1b[H");
    for l in &lines {
        s += &clip(l, cols);
        s.push('\n');
    }
    s
}

/// The focus source's points first, then those with an alarm or not `good`, then the
/// rest, each group in site order.
fn points_in_order(
    site: &Site,
    store: &LatestStore,
    view: &View<'_>,
    focus: Option<SourceIndex>,
) -> Vec<PointIndex> {
    let rank = |pi: PointIndex| {
        let p = site.point(pi);
        if Some(p.source) == focus {
            return 0;
        }
        let abnormal = store.get(pi).is_none_or(|r| !r.quality.is_good())
            || view
                .alarms
                .iter()
                .any(|a| a.point == p.id && a.state != AlarmState::Normal);
        if abnormal {
            1
        } else {
            2
        }
    };
    let mut order: Vec<PointIndex> = (0..site.points.len() as u32).map(PointIndex).collect();
    order.sort_by_key(|&pi| rank(pi));
    order
}

/// `line` cut to `cols` terminal columns (wide CJK characters count two; colour codes
/// none), its colours reset if cut.
fn clip(line: &str, cols: usize) -> String {
    let mut out = String::with_capacity(line.len());
    let mut width = 0;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            out.push(c);
            for e in chars.by_ref() {
                out.push(e);
                if e.is_ascii_alphabetic() {
                    break;
                }
            }
            continue;
        }
        let w = if is_wide(c) { 2 } else { 1 };
        if width + w > cols {
            out.push_str(RESET);
            break;
        }
        width += w;
        out.push(c);
    }
    out
}

/// East Asian wide characters (CJK, Hangul, full-width forms): two columns.
fn is_wide(c: char) -> bool {
    matches!(u32::from(c),
        0x1100..=0x115F | 0x2E80..=0xA4CF | 0xAC00..=0xD7A3 | 0xF900..=0xFAFF
        | 0xFE30..=0xFE4F | 0xFF00..=0xFF60 | 0xFFE0..=0xFFE6 | 0x20000..=0x3FFFD)
}

/// One point's line: id, name, value, unit, quality and its alarms; on a terminal
/// (`tty`) coloured and led by its source's id, since sources share one list there.
fn point_line(
    site: &Site,
    store: &LatestStore,
    pi: PointIndex,
    tty: bool,
    view: &View<'_>,
) -> String {
    let p = site.point(pi);
    let (value, quality) = match store.get(pi) {
        Some(r) => (
            r.value.map_or_else(|| "-".into(), |v| v.to_string()),
            Some(r.quality),
        ),
        None => ("…".into(), None),
    };
    let (qs, q_reset) = match (quality, tty) {
        (Some(q), true) => (quality_style(q), RESET),
        _ => ("", ""),
    };
    let qtext = quality.map_or_else(|| "waiting".to_string(), |q| q.to_string());
    let alarms: Vec<String> = view
        .alarms
        .iter()
        .filter(|a| a.point == p.id)
        .map(|a| {
            let st = match (a.out_of_service, a.shelved_until.is_some(), a.state) {
                (true, _, _) => "OOS",
                (_, true, _) => "shelved",
                (_, _, AlarmState::ActiveUnacknowledged) => "ACTIVE",
                (_, _, AlarmState::ActiveAcknowledged) => "active ack",
                (_, _, AlarmState::ReturnedUnacknowledged) => "returned",
                _ => "",
            };
            format!("{}:{st}", a.alarm.as_str().to_uppercase())
        })
        .collect();
    let source = if tty {
        format!("{:<5} ", site.source(p.source).id)
    } else {
        String::new()
    };
    format!(
        "  {source}{:<10} {:<20} {:>9} {:<5} {qs}{qtext}{q_reset} {}",
        p.id,
        truncate(&p.name, 20),
        value,
        p.unit,
        alarms.join(" ")
    )
}

fn truncate(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}
