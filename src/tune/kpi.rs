//! Alarm figures from marks (pure): per point, per hazard source, for the whole site.
//! The measures are ISA-18.2's and EEMUA 191's: about one alarm per 10 minutes is
//! manageable, ten or more in 10 minutes is a flood; chattering, fleeting and standing
//! alarms are the bad actors to fix first.

use std::collections::BTreeMap;

use serde::Serialize;

use super::mark::{AlarmMark, Mark};
use crate::model::{
    alarm::{AlarmClass, AlarmKind},
    risk::Colour,
};

/// The thresholds of the measures.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Options {
    /// An occurrence shorter than this is fleeting.
    pub fleeting_ms: i64,
    /// `chatter_count` raises of one alarm within `chatter_ms` are chattering.
    pub chatter_ms: i64,
    pub chatter_count: usize,
    /// An occurrence longer than this is standing.
    pub standing_ms: i64,
    /// Raises in one 10-minute window that make it a flood.
    pub flood: usize,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            fleeting_ms: 10_000,
            chatter_ms: 60_000,
            chatter_count: 3,
            standing_ms: 24 * 3_600_000,
            flood: 10,
        }
    }
}

pub const WINDOW_MS: i64 = 600_000;

/// One alarm from its raise to its return to normal (`cleared` None: still active at
/// the end of the period).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Occurrence {
    pub point: String,
    pub alarm: AlarmKind,
    pub class: AlarmClass,
    pub raised: i64,
    pub cleared: Option<i64>,
    pub value: Option<f64>,
}

impl Occurrence {
    pub fn end(&self, to: i64) -> i64 {
        self.cleared.unwrap_or(to)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlarmKpi {
    pub point: String,
    pub alarm: AlarmKind,
    pub class: AlarmClass,
    pub raised: usize,
    /// Raises that belong to a burst of `chatter_count` within `chatter_ms`.
    pub chattering: usize,
    pub fleeting: usize,
    pub standing: usize,
    pub time_in_alarm_s: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ColourKpi {
    pub scope: String,
    /// Seconds in blue, yellow, orange, red.
    pub seconds: [f64; 4],
    pub changes: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SiteKpi {
    pub raised: usize,
    pub per_10min: f64,
    pub per_hour: f64,
    /// Share of 10-minute windows with `flood` raises or more, in %.
    pub flood_windows_pct: f64,
    pub peak_10min: usize,
    /// Raises per 10-minute window from the start of the period (the rate chart).
    pub windows: Vec<u32>,
    /// The alarms raised most often: (point, alarm, raises), at most ten.
    pub top: Vec<(String, AlarmKind, usize)>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Kpis {
    pub alarms: Vec<AlarmKpi>,
    pub colours: Vec<ColourKpi>,
    pub site: SiteKpi,
    #[serde(skip)]
    pub occurrences: Vec<Occurrence>,
}

/// Counts the figures of `marks` over `from..to`; `scopes` are the hazard sources
/// (and the enterprise) whose colours are timed.
pub fn count(marks: &[Mark], from: i64, to: i64, scopes: &[String], o: &Options) -> Kpis {
    let occurrences = occurrences(marks);
    let mut by_alarm: BTreeMap<(String, AlarmKind), Vec<&Occurrence>> = BTreeMap::new();
    for occ in &occurrences {
        by_alarm
            .entry((occ.point.clone(), occ.alarm))
            .or_default()
            .push(occ);
    }
    let alarms: Vec<AlarmKpi> = by_alarm
        .into_iter()
        .map(|((point, alarm), occ)| alarm_kpi(point, alarm, &occ, to, o))
        .collect();
    let site = site_kpi(&occurrences, &alarms, from, to, o);
    let colours = scopes
        .iter()
        .map(|s| colour_kpi(s, marks, from, to))
        .collect();
    Kpis {
        alarms,
        colours,
        site,
        occurrences,
    }
}

/// Pairs each raise with the alarm's next return to normal.
pub fn occurrences(marks: &[Mark]) -> Vec<Occurrence> {
    let mut open: BTreeMap<(&str, AlarmKind), usize> = BTreeMap::new();
    let mut out: Vec<Occurrence> = Vec::new();
    for m in marks {
        let Mark::Alarm(a) = m else { continue };
        let key = (a.point.as_str(), a.alarm);
        if a.raised {
            open.insert(key, out.len());
            out.push(occurrence(a));
        } else if let Some(i) = open.remove(&key) {
            out[i].cleared = Some(a.ts);
        }
    }
    out
}

fn occurrence(a: &AlarmMark) -> Occurrence {
    Occurrence {
        point: a.point.clone(),
        alarm: a.alarm,
        class: a.class,
        raised: a.ts,
        cleared: None,
        value: a.value,
    }
}

fn alarm_kpi(
    point: String,
    alarm: AlarmKind,
    occ: &[&Occurrence],
    to: i64,
    o: &Options,
) -> AlarmKpi {
    let raises: Vec<i64> = occ.iter().map(|x| x.raised).collect();
    AlarmKpi {
        point,
        alarm,
        class: occ.first().map_or(AlarmClass::Low, |x| x.class),
        raised: occ.len(),
        chattering: chattering(&raises, o.chatter_ms, o.chatter_count),
        fleeting: occ
            .iter()
            .filter(|x| x.cleared.is_some_and(|c| c - x.raised < o.fleeting_ms))
            .count(),
        standing: occ
            .iter()
            .filter(|x| x.end(to) - x.raised > o.standing_ms)
            .count(),
        time_in_alarm_s: occ
            .iter()
            .map(|x| (x.end(to) - x.raised) as f64 / 1000.0)
            .sum(),
    }
}

/// How many raises (sorted) lie in some window of `span` holding `count` or more.
pub fn chattering(raises: &[i64], span: i64, count: usize) -> usize {
    let mut marked = vec![false; raises.len()];
    let mut lo = 0;
    for hi in 0..raises.len() {
        while raises[hi] - raises[lo] > span {
            lo += 1;
        }
        if hi + 1 - lo >= count.max(1) {
            marked[lo..=hi].iter_mut().for_each(|m| *m = true);
        }
    }
    marked.into_iter().filter(|m| *m).count()
}

fn site_kpi(occ: &[Occurrence], alarms: &[AlarmKpi], from: i64, to: i64, o: &Options) -> SiteKpi {
    let n = usize::try_from(((to - from).max(1) + WINDOW_MS - 1) / WINDOW_MS).unwrap_or(1);
    let mut windows = vec![0u32; n.max(1)];
    for x in occ.iter().filter(|x| (from..=to).contains(&x.raised)) {
        let w = usize::try_from((x.raised - from) / WINDOW_MS).unwrap_or(0);
        if let Some(slot) = windows.get_mut(w.min(n - 1)) {
            *slot += 1;
        }
    }
    let raised: usize = windows.iter().map(|w| *w as usize).sum();
    let flood = windows.iter().filter(|w| **w as usize >= o.flood).count();
    let mut top: Vec<(String, AlarmKind, usize)> = alarms
        .iter()
        .map(|a| (a.point.clone(), a.alarm, a.raised))
        .collect();
    top.sort_by(|a, b| b.2.cmp(&a.2).then_with(|| a.0.cmp(&b.0)));
    top.truncate(10);
    let hours = (to - from).max(1) as f64 / 3_600_000.0;
    SiteKpi {
        raised,
        per_10min: raised as f64 / (hours * 6.0),
        per_hour: raised as f64 / hours,
        flood_windows_pct: 100.0 * flood as f64 / windows.len() as f64,
        peak_10min: windows.iter().copied().max().unwrap_or(0) as usize,
        windows,
        top,
    }
}

/// Time in each colour and the number of changes of one scope.
fn colour_kpi(scope: &str, marks: &[Mark], from: i64, to: i64) -> ColourKpi {
    let changes: Vec<_> = marks
        .iter()
        .filter_map(|m| match m {
            Mark::Colour(c) if c.scope == scope => Some(c),
            _ => None,
        })
        .collect();
    let mut seconds = [0.0; 4];
    let mut colour = changes.first().map_or(Colour::Blue, |c| c.from);
    let mut since = from;
    for c in &changes {
        seconds[colour as usize] += (c.ts.clamp(from, to) - since).max(0) as f64 / 1000.0;
        colour = c.to;
        since = c.ts.clamp(from, to);
    }
    seconds[colour as usize] += (to - since).max(0) as f64 / 1000.0;
    ColourKpi {
        scope: scope.to_string(),
        seconds,
        changes: changes.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chattering_marks_every_raise_of_a_burst() {
        assert_eq!(chattering(&[0, 10_000, 20_000], 60_000, 3), 3);
        assert_eq!(chattering(&[0, 10_000, 70_001], 60_000, 3), 0);
        assert_eq!(
            chattering(&[0, 30_000, 60_000, 90_000, 500_000], 60_000, 3),
            4
        );
        assert_eq!(chattering(&[], 60_000, 3), 0);
    }
}
