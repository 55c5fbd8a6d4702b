//! Four-colour risk (红橙黄蓝) per hazard source from its live alarm picture.
//!
//! The rule table is configuration ([`crate::model::risk`]); the first matching rule
//! wins. Whatever the table, the engine guarantees reasons for every level, immediate
//! escalation and held de-escalation (see [`SourceRisk::update`]).

use serde::{Deserialize, Serialize};

use crate::{
    model::{
        alarm::{AlarmClass, AlarmKind},
        risk::{Colour, Risk},
        PointIndex,
    },
    reading::Timestamp,
};

/// An alarm that counts toward colours.
#[derive(Debug, Clone, PartialEq)]
pub struct CountedAlarm {
    pub point: PointIndex,
    pub kind: AlarmKind,
    pub class: AlarmClass,
    pub since: Timestamp,
    pub unacknowledged: bool,
    /// A counted blind spot (shelved / out of service) or the source-blind condition.
    pub note: Option<&'static str>,
}

/// Why a source has its colour.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reason {
    pub rule: String,
    pub colour: Colour,
    /// Point ids with the alarm kind, e.g. `GT-101:hh`.
    pub alarms: Vec<String>,
    pub since: Timestamp,
}

/// Evaluates the table for a source of `level`. `names` turns a point into its id.
pub fn required_colour(
    config: &Risk,
    level: u8,
    alarms: &[CountedAlarm],
    special_operation: Option<Timestamp>,
    now: Timestamp,
    names: &dyn Fn(PointIndex) -> String,
) -> (Colour, Vec<Reason>) {
    let mut colour = Colour::Blue;
    let mut reasons = Vec::new();
    for rule in &config.rules {
        if !rule.levels.is_empty() && !rule.levels.contains(&level) {
            continue;
        }
        if rule.special_operation && special_operation.is_none() {
            continue;
        }
        let matching: Vec<&CountedAlarm> = match rule.class {
            Some(c) => alarms.iter().filter(|a| a.class >= c).collect(),
            None => Vec::new(),
        };
        if rule.class.is_some() {
            let mut points: Vec<PointIndex> = matching.iter().map(|a| a.point).collect();
            points.sort_unstable();
            points.dedup();
            if points.len() < rule.min_points as usize {
                continue;
            }
        }
        let since = matching
            .iter()
            .map(|a| a.since)
            .chain(special_operation.filter(|_| rule.special_operation))
            .min()
            .unwrap_or(now);
        colour = rule.colour;
        reasons.push(Reason {
            rule: rule.description.clone(),
            colour: rule.colour,
            alarms: matching.iter().map(|a| describe(a, names)).collect(),
            since,
        });
        break;
    }
    // Persistence: an alarm left unacknowledged too long raises the source one colour.
    let limit = config.persistence.as_millis() as i64;
    let stale: Vec<&CountedAlarm> = alarms
        .iter()
        .filter(|a| a.unacknowledged && a.note.is_none() && now.0 - a.since.0 > limit)
        .collect();
    if !stale.is_empty() && colour < Colour::Red {
        colour = colour.up();
        reasons.push(Reason {
            rule: format!(
                "alarm unacknowledged for more than {} s: one colour up",
                config.persistence.as_secs_f64()
            ),
            colour,
            alarms: stale.iter().map(|a| describe(a, names)).collect(),
            since: Timestamp(
                stale
                    .iter()
                    .map(|a| a.since.0 + limit)
                    .min()
                    .unwrap_or(now.0),
            ),
        });
    }
    (colour, reasons)
}

fn describe(a: &CountedAlarm, names: &dyn Fn(PointIndex) -> String) -> String {
    match a.note {
        Some(note) => format!("{}:{} ({note})", names(a.point), a.kind.as_str()),
        None => format!("{}:{}", names(a.point), a.kind.as_str()),
    }
}

/// A colour with its reasons and since when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RiskLevel {
    pub colour: Colour,
    pub since: Timestamp,
    pub reasons: Vec<Reason>,
}

impl RiskLevel {
    pub fn blue(now: Timestamp) -> Self {
        Self {
            colour: Colour::Blue,
            since: now,
            reasons: Vec::new(),
        }
    }
}

/// A source's colour over time: escalates at once, de-escalates after the hold.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceRisk {
    pub current: RiskLevel,
    /// When the required colour first fell below the current one.
    pub below_since: Option<Timestamp>,
}

impl SourceRisk {
    pub fn new(now: Timestamp) -> Self {
        Self {
            current: RiskLevel::blue(now),
            below_since: None,
        }
    }

    /// Moves towards `required`. Returns the previous colour when the colour changed.
    pub fn update(
        &mut self,
        required: Colour,
        reasons: Vec<Reason>,
        now: Timestamp,
        hold_ms: i64,
    ) -> Option<Colour> {
        let from = self.current.colour;
        if required >= from {
            self.below_since = None;
            if required > from {
                self.current = RiskLevel {
                    colour: required,
                    since: now,
                    reasons,
                };
                return Some(from);
            }
            self.current.reasons = reasons;
            return None;
        }
        let below = *self.below_since.get_or_insert(now);
        if now.0 - below.0 >= hold_ms {
            self.below_since = None;
            self.current = RiskLevel {
                colour: required,
                since: now,
                reasons,
            };
            return Some(from);
        }
        None
    }

    /// When the current colour may drop, if it is waiting to.
    pub fn hold_ends(&self, hold_ms: i64) -> Option<Timestamp> {
        self.below_since.map(|b| Timestamp(b.0 + hold_ms))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alarm(point: u32, class: AlarmClass, since: i64) -> CountedAlarm {
        CountedAlarm {
            point: PointIndex(point),
            kind: AlarmKind::H,
            class,
            since: Timestamp(since),
            unacknowledged: false,
            note: None,
        }
    }

    fn colour(level: u8, alarms: &[CountedAlarm], special: bool) -> Colour {
        let names = |p: PointIndex| format!("P{}", p.0);
        required_colour(
            &crate::model::risk::RiskConfig::default().compile(),
            level,
            alarms,
            special.then_some(Timestamp(0)),
            Timestamp(0),
            &names,
        )
        .0
    }

    /// The default table of risk-rules.md, row by row.
    #[test]
    fn default_table() {
        use AlarmClass::*;
        assert_eq!(colour(1, &[], false), Colour::Blue);
        assert_eq!(colour(1, &[alarm(0, Critical, 0)], false), Colour::Red);
        assert_eq!(colour(2, &[alarm(0, Critical, 0)], false), Colour::Red);
        assert_eq!(
            colour(3, &[alarm(0, High, 0), alarm(1, High, 0)], false),
            Colour::Red,
            "spreading"
        );
        assert_eq!(
            colour(3, &[alarm(0, High, 0), alarm(0, Critical, 0)], false),
            Colour::Orange,
            "one point is not spreading"
        );
        assert_eq!(
            colour(4, &[alarm(0, Critical, 0)], true),
            Colour::Red,
            "critical during special operation"
        );
        assert_eq!(colour(3, &[alarm(0, Critical, 0)], false), Colour::Orange);
        assert_eq!(colour(1, &[alarm(0, High, 0)], false), Colour::Orange);
        assert_eq!(colour(3, &[alarm(0, High, 0)], false), Colour::Yellow);
        assert_eq!(colour(1, &[alarm(0, Low, 0)], false), Colour::Yellow);
        assert_eq!(
            colour(4, &[], true),
            Colour::Yellow,
            "special operation floor"
        );
    }

    #[test]
    fn persistence_raises_one_colour() {
        let mut a = alarm(0, AlarmClass::High, 0);
        a.unacknowledged = true;
        let names = |p: PointIndex| format!("P{}", p.0);
        let cfg = crate::model::risk::RiskConfig::default().compile();
        let (c, _) = required_colour(&cfg, 3, &[a.clone()], None, Timestamp(1_000), &names);
        assert_eq!(c, Colour::Yellow);
        let (c, reasons) = required_colour(&cfg, 3, &[a], None, Timestamp(1_800_001), &names);
        assert_eq!(c, Colour::Orange);
        assert!(reasons[1].rule.contains("unacknowledged"));
    }

    #[test]
    fn escalates_at_once_and_holds_before_going_down() {
        let mut s = SourceRisk::new(Timestamp(0));
        assert_eq!(
            s.update(Colour::Red, vec![], Timestamp(10), 600_000),
            Some(Colour::Blue)
        );
        assert_eq!(s.update(Colour::Blue, vec![], Timestamp(20), 600_000), None);
        assert_eq!(
            s.update(Colour::Yellow, vec![], Timestamp(300_000), 600_000),
            None
        );
        assert_eq!(s.current.colour, Colour::Red);
        assert_eq!(
            s.update(Colour::Blue, vec![], Timestamp(600_020), 600_000),
            Some(Colour::Red)
        );
        assert_eq!(s.current.colour, Colour::Blue);
    }
}
