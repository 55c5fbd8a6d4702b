//! Replays a history through the judge's own core. Pure: readings, actions and a
//! candidate in, marks out; the clock is the history's (each reading at its time, each
//! time-based change at the instant it falls due). Fed a chunk at a time, so a month
//! of a site replays without being held in memory.

use std::sync::Arc;

use super::mark::{self, Mark};
use crate::{
    judge::engine::{Command, CommandError, Engine, Event, ThresholdChange},
    model::Site,
    reading::{Reading, Timestamp},
};

/// Who a replay's own changes are made by (never seen outside the replay).
const BY: &str = "hazgate-tune";

/// One replay under way.
pub struct Replay {
    engine: Engine,
    actions: Arc<[(i64, Command)]>,
    next_action: usize,
    candidate: Vec<ThresholdChange>,
    /// Marks before this instant are the warm-up's: not reported.
    from: i64,
    to: i64,
    events: Vec<Event>,
    marks: Vec<Mark>,
}

impl super::source::Feed for Replay {
    fn feed(&mut self, readings: &[Reading]) {
        Replay::feed(self, readings);
    }
}

impl Replay {
    /// Today's settings from `start`, or `candidate` on top of them (its changes win
    /// over a change recorded in the history for the same field). A candidate that
    /// breaks the guardrails is refused, with the clause.
    pub fn new(
        site: Arc<Site>,
        actions: Arc<[(i64, Command)]>,
        candidate: &[ThresholdChange],
        start: i64,
        (from, to): (i64, i64),
    ) -> Result<Self, String> {
        let mut engine = Engine::new(site, Timestamp(start));
        let mut events = Vec::new();
        apply(&mut engine, candidate, start, &mut events).map_err(|e| e.to_string())?;
        Ok(Self {
            engine,
            actions,
            next_action: 0,
            candidate: candidate.to_vec(),
            from,
            to,
            events: Vec::new(),
            marks: Vec::new(),
        })
    }

    /// Readings in time order, following those fed before.
    pub fn feed(&mut self, readings: &[Reading]) {
        for r in readings {
            if r.ts.0 > self.to {
                break;
            }
            self.actions_until(r.ts.0);
            advance(&mut self.engine, r.ts.0, &mut self.events);
            self.engine.on_reading(r, r.ts, &mut self.events);
            if !self.events.is_empty() {
                self.collect();
            }
        }
    }

    /// The recorded operator actions up to `t`. An action the replay cannot apply (an
    /// acknowledgement of an alarm the candidate never raised) changes nothing, as it
    /// would have live.
    fn actions_until(&mut self, t: i64) {
        while let Some((at, c)) = self
            .actions
            .get(self.next_action)
            .filter(|(at, _)| *at <= t)
        {
            self.next_action += 1;
            advance(&mut self.engine, *at, &mut self.events);
            let _ = self.engine.on_command(c, Timestamp(*at), &mut self.events);
            if matches!(c, Command::Thresholds { .. }) {
                let _ = apply(&mut self.engine, &self.candidate, *at, &mut self.events);
            }
        }
    }

    /// The marks from `from` to the end of the period.
    pub fn finish(mut self) -> Vec<Mark> {
        self.actions_until(self.to);
        advance(&mut self.engine, self.to, &mut self.events);
        self.collect();
        self.marks
    }

    fn collect(&mut self) {
        let from = self.from;
        self.marks.extend(
            self.events
                .drain(..)
                .filter_map(|e| mark::of_event(&e))
                .filter(|m| m.ts() >= from),
        );
    }
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
