//! What a candidate would have missed: every alarm raised with today's settings that
//! the candidate raises not at all, or later, during that occurrence. Second-level
//! (HH, critical) alarms first: a threshold that hides a real leak is the one mistake
//! tuning must never make.

use serde::Serialize;

use super::kpi::Occurrence;
use crate::model::alarm::{AlarmClass, AlarmKind};

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Miss {
    pub point: String,
    pub alarm: AlarmKind,
    pub class: AlarmClass,
    /// When today's settings raised it, and the value then.
    pub raised: i64,
    pub value: Option<f64>,
    /// When the candidate raised it (None: not at all during the occurrence).
    pub candidate_raised: Option<i64>,
    pub delay_s: Option<f64>,
}

/// Today's occurrences the candidate misses or raises more than `tolerance_ms` later.
pub fn misses(
    today: &[Occurrence],
    candidate: &[Occurrence],
    to: i64,
    tolerance_ms: i64,
) -> Vec<Miss> {
    let mut out: Vec<Miss> = today
        .iter()
        .filter_map(|t| {
            let overlapping = candidate
                .iter()
                .filter(|c| c.point == t.point && c.alarm == t.alarm)
                .filter(|c| c.raised <= t.end(to) && c.end(to) >= t.raised)
                .map(|c| c.raised)
                .min();
            let late = overlapping.is_none_or(|c| c > t.raised + tolerance_ms);
            late.then(|| Miss {
                point: t.point.clone(),
                alarm: t.alarm,
                class: t.class,
                raised: t.raised,
                value: t.value,
                candidate_raised: overlapping,
                delay_s: overlapping.map(|c| (c - t.raised) as f64 / 1000.0),
            })
        })
        .collect();
    out.sort_by(|a, b| {
        b.class
            .cmp(&a.class)
            .then_with(|| rank(a.alarm).cmp(&rank(b.alarm)))
            .then_with(|| a.raised.cmp(&b.raised))
    });
    out
}

/// HH before H before the rest.
fn rank(k: AlarmKind) -> u8 {
    match k {
        AlarmKind::Hh | AlarmKind::Ll => 0,
        AlarmKind::H | AlarmKind::L => 1,
        _ => 2,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn occ(alarm: AlarmKind, raised: i64, cleared: Option<i64>) -> Occurrence {
        Occurrence {
            point: "GT-1".into(),
            alarm,
            class: if alarm == AlarmKind::Hh {
                AlarmClass::Critical
            } else {
                AlarmClass::High
            },
            raised,
            cleared,
            value: None,
        }
    }

    #[test]
    fn missed_delayed_and_kept() {
        let today = [
            occ(AlarmKind::H, 1_000, Some(9_000)),
            occ(AlarmKind::Hh, 2_000, Some(5_000)),
            occ(AlarmKind::H, 20_000, Some(30_000)),
        ];
        let cand = [
            occ(AlarmKind::H, 4_000, Some(9_000)),
            occ(AlarmKind::H, 19_000, None),
        ];
        let m = misses(&today, &cand, 100_000, 1_000);
        assert_eq!(m.len(), 2, "{m:?}");
        assert_eq!(
            (m[0].alarm, m[0].candidate_raised),
            (AlarmKind::Hh, None),
            "the HH, missed, first"
        );
        assert_eq!(m[1].delay_s, Some(3.0), "the first H, 3 s late");
    }
}
