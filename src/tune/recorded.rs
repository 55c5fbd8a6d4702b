//! A history's events, read back: the operator actions a replay applies again at their
//! times (so today's settings replay as they ran: thresholds changed, special
//! operations, acknowledgements, shelving, points out of service), and the marks the
//! live judge made, which a faithful replay must reproduce.

use serde::Deserialize;

use super::mark::{AlarmMark, ColourMark, Mark, ENTERPRISE};
use crate::{
    judge::engine::{AlarmAction, Command, ThresholdChange, MAX_SHELVE_S},
    model::{
        alarm::{AlarmClass, AlarmKind, AlarmSettings},
        risk::Colour,
    },
    reading::Timestamp,
};

/// What the live judge recorded, in time order.
#[derive(Debug, Default)]
pub struct Recorded {
    pub actions: Vec<(i64, Command)>,
    pub marks: Vec<Mark>,
    /// Event texts that could not be read (named in the report, never guessed at).
    pub unreadable: usize,
}

/// The fields of the judge's events a replay needs (the events keep their own form
/// in the history: `judge::engine::Event` as JSON).
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Stored {
    Alarm {
        ts: Timestamp,
        point: String,
        alarm: AlarmKind,
        class: AlarmClass,
        action: AlarmAction,
        value: Option<f64>,
        by: Option<String>,
    },
    Risk {
        ts: Timestamp,
        scope: String,
        #[serde(default)]
        id: Option<String>,
        from: Colour,
        to: Colour,
        #[serde(default)]
        snapshot: bool,
    },
    SpecialOperation {
        ts: Timestamp,
        hazard_source: String,
        active: bool,
        kind: String,
        by: String,
    },
    Thresholds {
        ts: Timestamp,
        point: String,
        by: String,
        new: AlarmSettings,
    },
    #[serde(other)]
    Other,
}

/// Reads the history's event texts.
pub fn read(texts: &[String]) -> Recorded {
    let mut out = Recorded::default();
    let stored: Vec<Stored> = texts
        .iter()
        .filter_map(|t| match serde_json::from_str::<Stored>(t) {
            Ok(s) => Some(s),
            Err(_) => {
                out.unreadable += 1;
                None
            }
        })
        .collect();
    for (i, s) in stored.iter().enumerate() {
        match s {
            Stored::Alarm { .. } => alarm(s, &stored[i + 1..], &mut out),
            Stored::Risk {
                ts,
                scope,
                id,
                from,
                to,
                snapshot,
            } if !snapshot && from != to => out.marks.push(Mark::Colour(ColourMark {
                ts: ts.0,
                scope: match scope.as_str() {
                    "enterprise" => ENTERPRISE.to_string(),
                    _ => id.clone().unwrap_or_default(),
                },
                from: *from,
                to: *to,
            })),
            Stored::SpecialOperation {
                ts,
                hazard_source,
                active,
                kind,
                by,
            } => out.actions.push((
                ts.0,
                Command::SpecialOperation {
                    hazard_source: hazard_source.clone(),
                    active: *active,
                    kind: kind.clone(),
                    by: by.clone(),
                },
            )),
            Stored::Thresholds { ts, point, by, new } => out.actions.push((
                ts.0,
                Command::Thresholds {
                    changes: vec![ThresholdChange {
                        point: point.clone(),
                        set: new.to_file(),
                    }],
                    by: by.clone(),
                },
            )),
            _ => {}
        }
    }
    out.actions.sort_by_key(|(t, _)| *t);
    out.marks.sort_by_key(Mark::ts);
    out
}

/// An alarm event: a mark for a raise or clear, an action for what an operator did.
/// Shelving is applied again for as long as it lasted (until the alarm's next
/// unshelving in the history).
fn alarm(s: &Stored, later: &[Stored], out: &mut Recorded) {
    let Stored::Alarm {
        ts,
        point,
        alarm,
        class,
        action,
        value,
        by,
    } = s
    else {
        return;
    };
    let by = by.clone().unwrap_or_default();
    let (point, alarm) = (point.clone(), *alarm);
    let command = match action {
        AlarmAction::Raised | AlarmAction::Cleared => {
            out.marks.push(Mark::Alarm(AlarmMark {
                ts: ts.0,
                point,
                alarm,
                class: *class,
                raised: *action == AlarmAction::Raised,
                value: *value,
            }));
            return;
        }
        AlarmAction::Acknowledged => Command::Acknowledge {
            point,
            alarm: Some(alarm),
            by,
        },
        AlarmAction::Shelved => {
            let until = later.iter().find_map(|l| match l {
                Stored::Alarm {
                    ts: t,
                    point: p,
                    alarm: a,
                    action: AlarmAction::Unshelved,
                    ..
                } if *p == point && *a == alarm => Some(t.0),
                _ => None,
            });
            let s = until.map_or(MAX_SHELVE_S, |u| (u - ts.0) as f64 / 1000.0);
            Command::Shelve {
                point,
                alarm: Some(alarm),
                duration_s: s.clamp(0.001, MAX_SHELVE_S),
                by,
            }
        }
        // One event per alarm of the point: the first one carries the command.
        AlarmAction::OutOfService | AlarmAction::InService => {
            let enabled = *action == AlarmAction::OutOfService;
            let again = out.actions.iter().rev().take(8).any(|(t, c)| {
                *t == ts.0
                    && matches!(c, Command::OutOfService { point: p, enabled: e, .. }
                        if *p == point && *e == enabled)
            });
            if again {
                return;
            }
            Command::OutOfService { point, enabled, by }
        }
        AlarmAction::Unshelved => return,
    };
    out.actions.push((ts.0, command));
}
