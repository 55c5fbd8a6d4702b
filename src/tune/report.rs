//! One tuning report: today's settings and each candidate replayed over one history,
//! their figures side by side, what each candidate misses, the suggestions, and how
//! faithfully the replay reproduced what the live judge did. Written as JSON and as a
//! terminal summary here, as a page by [`super::html`].

use std::{fmt::Write as _, sync::Arc};

use serde::Serialize;

use super::{
    candidate::Candidate,
    compare::{self, Miss},
    kpi::{self, Kpis, Options},
    look::Look,
    mark::{Mark, ENTERPRISE},
    replay::Replay,
    source::{fan_out, Feed, Source},
    suggest::{self, Suggestion},
};
use crate::{
    judge::engine::{Command, ThresholdChange},
    model::Site,
    reading::Timestamp,
};

#[derive(Debug, Serialize)]
pub struct Report {
    /// Names the report in the thresholds command it emits and so in the audit log.
    pub id: String,
    pub enterprise_id: String,
    pub gateway_id: String,
    pub from: Timestamp,
    pub to: Timestamp,
    /// Where the history came from.
    pub history: String,
    pub readings: usize,
    pub options: Options,
    /// Alarm and colour changes matched within this much.
    pub tolerance_ms: i64,
    pub fidelity: Option<Fidelity>,
    pub today: Run,
    pub candidates: Vec<CandidateRun>,
    pub suggestions: Vec<Suggestion>,
}

#[derive(Debug, Serialize)]
pub struct Run {
    pub kpis: Kpis,
    #[serde(skip)]
    pub marks: Vec<Mark>,
}

#[derive(Debug, Serialize)]
pub struct CandidateRun {
    pub name: String,
    pub changes: Vec<ThresholdChange>,
    /// Why the candidate was refused (a guardrail, with its clause); nothing else is
    /// then reported for it.
    pub refused: Option<String>,
    pub missed: Vec<Miss>,
    pub run: Option<Run>,
}

/// The replay with today's settings against what the live judge recorded.
#[derive(Debug, Serialize)]
pub struct Fidelity {
    pub live: usize,
    pub replayed: usize,
    pub matched: usize,
    /// The first live marks the replay did not make, and replayed marks live did not.
    pub live_only: Vec<Mark>,
    pub replay_only: Vec<Mark>,
}

/// Everything a report is made from.
pub struct Inputs<'a> {
    pub site: Arc<Site>,
    pub history: String,
    /// The readings, from the start of the warm-up; read twice (the replays, then what
    /// the page shows of the points worth a look).
    pub readings: &'a mut dyn Source,
    pub recorded: &'a super::recorded::Recorded,
    /// The start of the warm-up.
    pub start: i64,
    pub from: i64,
    pub to: i64,
    pub options: Options,
    pub tolerance_ms: i64,
    pub candidates: &'a [Candidate],
}

/// Up to this many points, the look at the readings is taken for every point in the
/// replays' pass (a few MB); beyond, in a second pass for the points worth a look.
const LOOK_ALL: usize = 2_000;

/// Replays today's settings and every candidate in one pass over the readings, each on
/// a thread of its own, with the look at the points the page shows.
pub fn build(i: &mut Inputs<'_>) -> anyhow::Result<(Report, Look)> {
    let actions: Arc<[(i64, Command)]> = i.recorded.actions.clone().into();
    let period = (i.from, i.to);
    let mut runs = vec![
        Replay::new(i.site.clone(), actions.clone(), &[], i.start, period)
            .map_err(anyhow::Error::msg)?,
    ];
    let mut refused = Vec::new();
    for c in i.candidates {
        match Replay::new(i.site.clone(), actions.clone(), &c.changes, i.start, period) {
            Ok(r) => {
                runs.push(r);
                refused.push(None);
            }
            Err(e) => refused.push(Some(e)),
        }
    }
    let all = i.site.points.len() <= LOOK_ALL;
    let mut look = Look::new(
        i.site.points.iter().map(|p| p.index).filter(|_| all),
        i.from,
        i.to,
    );
    let mut feeders: Vec<&mut dyn Feed> = runs.iter_mut().map(|r| r as &mut dyn Feed).collect();
    feeders.push(&mut look);
    let count = fan_out(i.readings, feeders)?;
    let mut marks = runs.into_iter().map(Replay::finish);
    let mut scopes: Vec<String> = i
        .site
        .hazard_sources
        .iter()
        .map(|h| h.id.to_string())
        .collect();
    scopes.push(ENTERPRISE.to_string());
    let tally = |marks: Vec<Mark>| Run {
        kpis: kpi::count(&marks, i.from, i.to, &scopes, &i.options),
        marks,
    };
    let today = tally(marks.next().unwrap_or_default());
    let candidates: Vec<CandidateRun> = i
        .candidates
        .iter()
        .zip(refused)
        .map(|(c, refused)| {
            let run = refused.is_none().then(|| marks.next().map(tally)).flatten();
            let missed = run.as_ref().map_or_else(Vec::new, |r| {
                compare::misses(
                    &today.kpis.occurrences,
                    &r.kpis.occurrences,
                    i.to,
                    i.tolerance_ms,
                )
            });
            CandidateRun {
                name: c.name.clone(),
                changes: c.changes.clone(),
                refused,
                missed,
                run,
            }
        })
        .collect();
    let live: Vec<Mark> = i
        .recorded
        .marks
        .iter()
        .filter(|m| (i.from..=i.to).contains(&m.ts()))
        .cloned()
        .collect();
    let fidelity = (!live.is_empty()).then(|| fidelity(&live, &today.marks, i.tolerance_ms));
    let mut report = Report {
        id: String::new(),
        enterprise_id: i.site.gateway.enterprise_id.clone(),
        gateway_id: i.site.gateway.gateway_id.clone(),
        from: Timestamp(i.from),
        to: Timestamp(i.to),
        history: i.history.clone(),
        readings: count,
        options: i.options,
        tolerance_ms: i.tolerance_ms,
        fidelity,
        today,
        candidates,
        suggestions: Vec::new(),
    };
    report.id = report_id(i, count);
    if !all {
        look = Look::new(worth_a_look(&report, &i.site), i.from, i.to);
        i.readings.each(&mut |c| look.feed(c))?;
    }
    report.suggestions = suggest::suggest(&i.site, &look, &report.today.kpis, &i.options);
    Ok((report, look))
}

/// The points the page shows (at most twelve): those the candidates change, those they
/// miss, then the bad actors.
pub fn shown(r: &Report) -> Vec<String> {
    let mut ids: Vec<String> = Vec::new();
    let mut add = |p: &str| {
        if !ids.iter().any(|x| x == p) && ids.len() < 12 {
            ids.push(p.to_string());
        }
    };
    r.candidates
        .iter()
        .flat_map(|c| c.changes.iter())
        .for_each(|c| add(&c.point));
    r.candidates
        .iter()
        .flat_map(|c| c.missed.iter())
        .for_each(|m| add(&m.point));
    r.today.kpis.site.top.iter().for_each(|(p, _, _)| add(p));
    ids
}

/// The points the page shows and the suggestions need: those the candidates change or
/// miss, the bad actors, and every chattering one.
fn worth_a_look(r: &Report, site: &Site) -> Vec<crate::model::PointIndex> {
    let ids = shown(r).into_iter().chain(
        r.today
            .kpis
            .alarms
            .iter()
            .filter(|a| a.chattering > 0)
            .map(|a| a.point.clone()),
    );
    ids.filter_map(|id| site.point_by_id(&id).map(|p| p.index))
        .collect()
}

/// `tune-{gateway}-{from}-{hash of the inputs}`: the same inputs give the same id.
fn report_id(i: &Inputs<'_>, readings: usize) -> String {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (i.from, i.to, readings, &i.history).hash(&mut h);
    for c in i.candidates {
        c.name.hash(&mut h);
        serde_json::to_string(&c.changes)
            .unwrap_or_default()
            .hash(&mut h);
    }
    let day = Timestamp(i.from).to_rfc3339();
    format!(
        "tune-{}-{}-{:08x}",
        i.site.gateway.gateway_id,
        day.get(..10).unwrap_or(&day).replace('-', ""),
        h.finish() as u32
    )
}

/// Matches live and replayed marks of one kind and subject within `tolerance_ms`.
pub fn fidelity(live: &[Mark], replayed: &[Mark], tolerance_ms: i64) -> Fidelity {
    let same = |a: &Mark, b: &Mark| match (a, b) {
        (Mark::Alarm(x), Mark::Alarm(y)) => {
            x.point == y.point && x.alarm == y.alarm && x.raised == y.raised
        }
        (Mark::Colour(x), Mark::Colour(y)) => x.scope == y.scope && x.to == y.to,
        _ => false,
    };
    let mut used = vec![false; replayed.len()];
    let mut live_only = Vec::new();
    for l in live {
        let hit = replayed
            .iter()
            .enumerate()
            .position(|(j, r)| !used[j] && same(l, r) && (r.ts() - l.ts()).abs() <= tolerance_ms);
        match hit {
            Some(j) => used[j] = true,
            None => live_only.push(l.clone()),
        }
    }
    let matched = live.len() - live_only.len();
    let replay_only: Vec<Mark> = replayed
        .iter()
        .zip(&used)
        .filter(|(_, u)| !**u)
        .map(|(m, _)| m.clone())
        .collect();
    Fidelity {
        live: live.len(),
        replayed: replayed.len(),
        matched,
        live_only: live_only.into_iter().take(20).collect(),
        replay_only: replay_only.into_iter().take(20).collect(),
    }
}

/// The terminal summary: what a candidate misses first, then the figures side by side.
pub fn summary(r: &Report) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "hazgate tune {} · {} → {} · {} readings from {}",
        r.id,
        r.from.to_rfc3339(),
        r.to.to_rfc3339(),
        r.readings,
        r.history
    );
    if let Some(f) = &r.fidelity {
        let _ = writeln!(
            s,
            "replay fidelity: {} of {} live alarm/colour changes reproduced within {} ms ({} replayed)",
            f.matched, f.live, r.tolerance_ms, f.replayed
        );
    }
    for c in &r.candidates {
        if let Some(why) = &c.refused {
            let _ = writeln!(s, "\n\x1b[31mREFUSED\x1b[0m {}: {why}", c.name);
            continue;
        }
        if !c.missed.is_empty() {
            let _ = writeln!(s, "\n\x1b[31mMISSED by {}\x1b[0m:", c.name);
            for m in &c.missed {
                let _ = writeln!(s, "  \x1b[31m{}\x1b[0m", miss_line(m));
            }
        }
    }
    let _ = writeln!(
        s,
        "\n{:<28}{:>10}{:>8}{:>8}{:>8}{:>9}{:>9}",
        "", "raised", "/10min", "peak", "flood%", "chatter", "standing"
    );
    let mut row = |name: &str, k: &Kpis| {
        let chatter: usize = k.alarms.iter().map(|a| a.chattering).sum();
        let standing: usize = k.alarms.iter().map(|a| a.standing).sum();
        let _ = writeln!(
            s,
            "{:<28}{:>10}{:>8.2}{:>8}{:>8.1}{:>9}{:>9}",
            name.chars().take(27).collect::<String>(),
            k.site.raised,
            k.site.per_10min,
            k.site.peak_10min,
            k.site.flood_windows_pct,
            chatter,
            standing
        );
    };
    row("today", &r.today.kpis);
    for c in &r.candidates {
        if let Some(run) = &c.run {
            row(&c.name, &run.kpis);
        }
    }
    let _ = writeln!(s, "\nbad actors today (raises):");
    for (p, a, n) in &r.today.kpis.site.top {
        let _ = writeln!(s, "  {p} {}: {n}", a.as_str());
    }
    if !r.suggestions.is_empty() {
        let _ = writeln!(s, "\nsuggestions (not applied):");
        for g in &r.suggestions {
            let _ = writeln!(
                s,
                "  --set {}.{}={}  (now {}): {}",
                g.point, g.field, g.suggested, g.now, g.why
            );
        }
    }
    s
}

/// One missed or delayed alarm, as a line.
pub fn miss_line(m: &Miss) -> String {
    let what = match m.delay_s {
        Some(d) => format!("raised {d:.1} s later"),
        None => "never raised".into(),
    };
    let value = m.value.map(|v| format!(" at {v}")).unwrap_or_default();
    format!(
        "{} {} ({}) raised {}{value}: {what}",
        m.point,
        m.alarm.as_str().to_uppercase(),
        m.class.as_str(),
        Timestamp(m.raised).to_rfc3339()
    )
}
