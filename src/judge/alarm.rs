//! One alarm of one point: condition with deadband, on/off delays, and the ISA-18.2
//! states (normal → active/unacknowledged → active/acknowledged → returned/
//! unacknowledged → normal), plus shelving.
//!
//! Pure: the clock comes in as milliseconds with every call. The *condition* is the
//! raw comparison with hysteresis; the *alarm* follows the condition once it has held
//! for the on-delay (raise) or stayed away for the off-delay (clear).

use serde::Serialize;

use crate::model::alarm::{AlarmClass, AlarmKind};
use crate::reading::RangeFlag;

/// ISA-18.2 alarm states: the contract's vocabulary, defined there.
pub use crate::contract::wire::AlarmState;

/// What happened to an alarm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Transition {
    Raised,
    Cleared,
    Acknowledged,
    Shelved,
    Unshelved,
}

/// An alarm's shelving: until when, and since when (the blind spot's "since"; absent
/// only in a state file that did not record it).
#[derive(Debug, Clone, PartialEq)]
struct Shelving {
    until: i64,
    at: Option<i64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Alarm {
    pub kind: AlarmKind,
    pub class: AlarmClass,
    pub state: AlarmState,
    /// The raw condition (with hysteresis), before delays.
    condition: bool,
    /// When `condition` last changed (ms).
    condition_since: i64,
    /// When the alarm was last raised (ms).
    pub raised_at: Option<i64>,
    /// The value that raised it, for the event and the operator.
    pub raised_value: Option<f64>,
    /// When and by whom; boxed, as most alarms never carry one (24 bytes an alarm).
    pub acknowledged: Option<Box<(i64, String)>>,
    /// Boxed, as most alarms are never shelved: 24 bytes an alarm, 2.4 MB of a
    /// 50,000-point site.
    shelving: Option<Box<Shelving>>,
    /// Set while the point's quality is bad: the alarm is frozen in its state.
    pub bad_quality: bool,
}

impl Alarm {
    pub fn new(kind: AlarmKind, class: AlarmClass) -> Self {
        Self {
            kind,
            class,
            state: AlarmState::Normal,
            condition: false,
            condition_since: i64::MIN,
            raised_at: None,
            raised_value: None,
            acknowledged: None,
            shelving: None,
            bad_quality: false,
        }
    }

    pub fn is_shelved(&self) -> bool {
        self.shelving.is_some()
    }

    /// Until when it is shelved.
    pub fn shelved_until(&self) -> Option<i64> {
        self.shelving.as_ref().map(|s| s.until)
    }

    /// Since when it is shelved.
    pub fn shelved_at(&self) -> Option<i64> {
        self.shelving.as_ref().and_then(|s| s.at)
    }

    /// Shelving as a state file recorded it (no event: it was shelved before).
    pub fn restore_shelving(&mut self, until: Option<i64>, at: Option<i64>) {
        self.shelving = until.map(|until| Box::new(Shelving { until, at }));
    }

    /// Feeds the raw comparison result; applies hysteresis through `on`/`off` thresholds
    /// chosen by the caller (see [`analog_condition`]).
    pub fn set_condition(&mut self, condition: bool, now: i64) {
        if condition != self.condition {
            self.condition = condition;
            self.condition_since = now;
        }
    }

    pub fn condition(&self) -> bool {
        self.condition
    }

    /// When the condition last changed (ms).
    pub fn condition_since(&self) -> i64 {
        self.condition_since
    }

    /// Sets the condition as it was saved (restoring state after a restart).
    pub fn restore_condition(&mut self, condition: bool, since: i64) {
        self.condition = condition;
        self.condition_since = since;
    }

    /// Applies the delays at `now`: raises or clears when the condition has held long
    /// enough. Returns the transition, if any.
    pub fn settle(
        &mut self,
        now: i64,
        on_delay: i64,
        off_delay: i64,
        value: Option<f64>,
    ) -> Option<Transition> {
        let held = now.saturating_sub(self.condition_since);
        match (self.condition, self.state.is_active()) {
            (true, false) if held >= on_delay => {
                self.state = AlarmState::ActiveUnacknowledged;
                self.raised_at = Some(now);
                self.raised_value = value;
                self.acknowledged = None;
                Some(Transition::Raised)
            }
            (false, true) if held >= off_delay => {
                self.state = match self.state {
                    AlarmState::ActiveAcknowledged => AlarmState::Normal,
                    _ => AlarmState::ReturnedUnacknowledged,
                };
                Some(Transition::Cleared)
            }
            _ => None,
        }
    }

    /// When a pending raise or clear will complete, or shelving end, if any.
    pub fn next_deadline(&self, on_delay: i64, off_delay: i64) -> Option<i64> {
        let pending = match (self.condition, self.state.is_active()) {
            (true, false) => Some(self.condition_since.saturating_add(on_delay)),
            (false, true) => Some(self.condition_since.saturating_add(off_delay)),
            _ => None,
        };
        match (pending, self.shelved_until()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Operator acknowledgement. `None` when there is nothing to acknowledge.
    pub fn acknowledge(&mut self, now: i64, by: &str) -> Option<Transition> {
        let next = match self.state {
            AlarmState::ActiveUnacknowledged => AlarmState::ActiveAcknowledged,
            AlarmState::ReturnedUnacknowledged => AlarmState::Normal,
            _ => return None,
        };
        self.state = next;
        self.acknowledged = Some(Box::new((now, by.to_string())));
        Some(Transition::Acknowledged)
    }

    pub fn shelve(&mut self, now: i64, until: i64) -> Transition {
        self.shelving = Some(Box::new(Shelving {
            until,
            at: Some(now),
        }));
        Transition::Shelved
    }

    pub fn unshelve(&mut self) -> Option<Transition> {
        self.shelving.take().map(|_| Transition::Unshelved)
    }

    /// Auto-unshelve once the shelving time is over.
    pub fn expire_shelving(&mut self, now: i64) -> Option<Transition> {
        match self.shelved_until() {
            Some(until) if now >= until => self.unshelve(),
            _ => None,
        }
    }
}

/// Condition of a limit alarm with hysteresis: switches on at the limit, off only once
/// the value is back past it by `deadband`.
pub fn analog_condition(kind: AlarmKind, was: bool, value: f64, limit: f64, deadband: f64) -> bool {
    let high = matches!(kind, AlarmKind::Hh | AlarmKind::H | AlarmKind::Roc);
    match (high, was) {
        (true, false) => value >= limit,
        (true, true) => value > limit - deadband,
        (false, false) => value <= limit,
        (false, true) => value < limit + deadband,
    }
}

/// Condition of a limit alarm (H, HH, L, LL) for a value that may lie outside its
/// measuring range. Above the range the value is only a bound — the detector is
/// saturated and the true value may be anywhere higher — so every high limit is
/// crossed, whatever its setting, and stays so (latched) until a value back inside the
/// range falls below the limit by the deadband. Below the range, likewise for the low
/// limits. Within the range: [`analog_condition`].
pub fn limit_condition(
    kind: AlarmKind,
    was: bool,
    value: f64,
    range: RangeFlag,
    limit: f64,
    deadband: f64,
) -> bool {
    let high = matches!(kind, AlarmKind::Hh | AlarmKind::H);
    match range {
        RangeFlag::Over if high => true,
        RangeFlag::Under if !high => true,
        _ => analog_condition(kind, was, value, limit, deadband),
    }
}

// Every point carries two or three alarms: at 50,000 points each byte of an alarm is
// about 130 kB. Shelving and acknowledgement are boxed to keep it within a cache line.
const _: () = assert!(size_of::<Alarm>() <= 64);

#[cfg(test)]
mod tests {
    use super::*;

    fn h() -> Alarm {
        Alarm::new(AlarmKind::H, AlarmClass::High)
    }

    #[test]
    fn full_isa_cycle() {
        let mut a = h();
        a.set_condition(true, 0);
        assert_eq!(a.settle(0, 0, 0, Some(21.0)), Some(Transition::Raised));
        assert_eq!(a.state, AlarmState::ActiveUnacknowledged);
        assert_eq!(a.acknowledge(5, "op1"), Some(Transition::Acknowledged));
        assert_eq!(a.state, AlarmState::ActiveAcknowledged);
        a.set_condition(false, 10);
        assert_eq!(a.settle(10, 0, 0, None), Some(Transition::Cleared));
        assert_eq!(
            a.state,
            AlarmState::Normal,
            "acknowledged alarms return to normal"
        );
        a.set_condition(true, 20);
        a.settle(20, 0, 0, None);
        a.set_condition(false, 30);
        a.settle(30, 0, 0, None);
        assert_eq!(a.state, AlarmState::ReturnedUnacknowledged);
        assert_eq!(a.acknowledge(40, "op1"), Some(Transition::Acknowledged));
        assert_eq!(a.state, AlarmState::Normal);
        assert_eq!(
            a.acknowledge(41, "op1"),
            None,
            "nothing left to acknowledge"
        );
    }

    #[test]
    fn delays_hold_both_ways() {
        let mut a = h();
        a.set_condition(true, 1000);
        assert_eq!(
            a.settle(2000, 5000, 3000, None),
            None,
            "on-delay not yet elapsed"
        );
        assert_eq!(a.settle(6000, 5000, 3000, None), Some(Transition::Raised));
        a.set_condition(false, 7000);
        assert_eq!(
            a.settle(9000, 5000, 3000, None),
            None,
            "off-delay holds through a dip"
        );
        a.set_condition(true, 9500);
        assert_eq!(
            a.settle(20_000, 5000, 3000, None),
            None,
            "still active, no new event"
        );
        assert_eq!(a.state, AlarmState::ActiveUnacknowledged);
    }

    #[test]
    fn hysteresis() {
        assert!(analog_condition(AlarmKind::H, false, 20.0, 20.0, 1.0));
        assert!(!analog_condition(AlarmKind::H, false, 19.9, 20.0, 1.0));
        assert!(analog_condition(AlarmKind::H, true, 19.1, 20.0, 1.0));
        assert!(!analog_condition(AlarmKind::H, true, 19.0, 20.0, 1.0));
        assert!(analog_condition(AlarmKind::L, false, 5.0, 5.0, 1.0));
        assert!(analog_condition(AlarmKind::L, true, 5.9, 5.0, 1.0));
        assert!(!analog_condition(AlarmKind::L, true, 6.0, 5.0, 1.0));
    }

    #[test]
    fn out_of_range_crosses_every_limit_on_its_side() {
        use RangeFlag::*;
        // A saturated detector reading 100 with HH at 150 (a range below the setpoint).
        assert!(limit_condition(
            AlarmKind::Hh,
            false,
            100.0,
            Over,
            150.0,
            1.0
        ));
        assert!(limit_condition(
            AlarmKind::H,
            false,
            100.0,
            Over,
            150.0,
            1.0
        ));
        assert!(!limit_condition(AlarmKind::L, false, 100.0, Over, 5.0, 1.0));
        assert!(limit_condition(
            AlarmKind::Ll,
            false,
            -3.0,
            Under,
            -10.0,
            1.0
        ));
        assert!(!limit_condition(
            AlarmKind::H,
            false,
            -3.0,
            Under,
            50.0,
            1.0
        ));
        // Back in range: ordinary hysteresis from the latched state.
        assert!(limit_condition(
            AlarmKind::Hh,
            true,
            39.5,
            Within,
            40.0,
            1.0
        ));
        assert!(!limit_condition(
            AlarmKind::Hh,
            true,
            39.0,
            Within,
            40.0,
            1.0
        ));
    }

    #[test]
    fn shelving_expires() {
        let mut a = h();
        assert_eq!(a.shelve(40, 100), Transition::Shelved);
        assert_eq!(a.shelved_at(), Some(40));
        assert_eq!(a.expire_shelving(99), None);
        assert_eq!(a.expire_shelving(100), Some(Transition::Unshelved));
        assert!(!a.is_shelved());
    }
}
