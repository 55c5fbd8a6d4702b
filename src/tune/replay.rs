//! Replays a history through the judge's own core. Pure: readings, actions and a
//! candidate in, marks out; the clock is the history's (each reading at its time, each
//! time-based change at the instant it falls due).

use std::sync::Arc;

use super::mark::{self, Mark};
use crate::{
    judge::engine::{Command, CommandError, Engine, Event, ThresholdChange},
    model::Site,
    reading::{Reading, Timestamp},
};

/// Who a replay's own changes are made by (never seen outside the replay).
const BY: &str = "hazgate-tune";

/// What to replay.
pub struct Input<'a> {
    pub site: Arc<Site>,
    /// Readings in time order, from the start of the warm-up.
    pub readings: &'a [Reading],
    /// The recorded operator actions, in time order.
    pub actions: &'a [(i64, Command)],
    /// Marks before this instant are the warm-up's: not reported.
    pub from: i64,
    pub to: i64,
}

/// Replays with today's settings, or with `candidate` on top of them (its changes win
/// over a change recorded in the history for the same field). A candidate that breaks
/// the guardrails is refused, with the clause.
pub fn replay(input: &Input<'_>, candidate: &[ThresholdChange]) -> Result<Vec<Mark>, String> {
    let start = input
        .readings
        .first()
        .map_or(input.from, |r| r.ts.0.min(input.from));
    let mut engine = Engine::new(input.site.clone(), Timestamp(start));
    let mut events = Vec::new();
    apply(&mut engine, candidate, start, &mut events).map_err(|e| e.to_string())?;
    let mut marks = Vec::new();
    let mut actions = input.actions.iter().peekable();
    for r in input.readings {
        if r.ts.0 > input.to {
            break;
        }
        while let Some((t, c)) = actions.next_if(|(t, _)| *t <= r.ts.0) {
            advance(&mut engine, *t, &mut events);
            // An action the replay cannot apply (an acknowledgement of an alarm the
            // candidate never raised) changes nothing, as it would have live.
            let _ = engine.on_command(c, Timestamp(*t), &mut events);
            if matches!(c, Command::Thresholds { .. }) {
                let _ = apply(&mut engine, candidate, *t, &mut events);
            }
        }
        advance(&mut engine, r.ts.0, &mut events);
        engine.on_reading(r, r.ts, &mut events);
        collect(&mut events, input.from, &mut marks);
    }
    advance(&mut engine, input.to, &mut events);
    collect(&mut events, input.from, &mut marks);
    Ok(marks)
}

/// Applies a candidate's changes, checked against the guardrails as a live change is.
fn apply(
    engine: &mut Engine,
    candidate: &[ThresholdChange],
    at: i64,
    out: &mut Vec<Event>,
) -> Result<(), CommandError> {
    if candidate.is_empty() {
        return Ok(());
    }
    let c = Command::Thresholds {
        changes: candidate.to_vec(),
        by: BY.into(),
    };
    engine.on_command(&c, Timestamp(at), out)
}

/// Steps the clock to `to`, stopping at every instant a change falls due.
fn advance(engine: &mut Engine, to: i64, out: &mut Vec<Event>) {
    while let Some(due) = engine.next_due().filter(|d| d.0 <= to) {
        engine.on_clock(due, out);
        if engine.next_due() == Some(due) {
            break;
        }
    }
}

fn collect(events: &mut Vec<Event>, from: i64, marks: &mut Vec<Mark>) {
    marks.extend(
        events
            .drain(..)
            .filter_map(|e| mark::of_event(&e))
            .filter(|m| m.ts() >= from),
    );
}
