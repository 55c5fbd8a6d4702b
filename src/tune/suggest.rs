//! Suggestions from the data, shown beside the figures and never applied by
//! themselves: a deadband from each point's noise (ISA-18.2: the deadband should exceed
//! the noise, or the alarm chatters) and an on-delay from its fleeting alarms.

use serde::Serialize;

use super::{
    kpi::{Kpis, Options},
    look::Look,
};
use crate::model::{PointKind, Site};

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Suggestion {
    pub point: String,
    /// The site-file field, e.g. `deadband`.
    pub field: &'static str,
    pub now: f64,
    pub suggested: f64,
    pub why: String,
}

/// Deadbands for the points whose alarms chattered, and on-delays for those with
/// fleeting alarms.
pub fn suggest(site: &Site, look: &Look, today: &Kpis, o: &Options) -> Vec<Suggestion> {
    let mut out = Vec::new();
    for a in today.alarms.iter().filter(|a| a.chattering > 0) {
        let Some(p) = site.point_by_id(&a.point) else {
            continue;
        };
        let Some(sigma) = look.noise(p.index) else {
            continue;
        };
        let suggested = nice_up(4.0 * sigma);
        if suggested > p.alarms.deadband
            && !out
                .iter()
                .any(|s: &Suggestion| s.point == a.point && s.field == "deadband")
        {
            out.push(Suggestion {
                point: a.point.clone(),
                field: "deadband",
                now: p.alarms.deadband,
                suggested,
                why: format!(
                    "{} raises of {} chattered; the noise is ±{:.3} {} (σ): a deadband of 4σ keeps it from re-raising",
                    a.chattering,
                    a.alarm.as_str(),
                    sigma,
                    p.unit
                ),
            });
        }
    }
    for a in today.alarms.iter().filter(|a| a.fleeting > 0) {
        let Some(p) = site.point_by_id(&a.point) else {
            continue;
        };
        let mut d: Vec<i64> = today
            .occurrences
            .iter()
            .filter(|x| x.point == a.point && x.alarm == a.alarm)
            .filter_map(|x| x.cleared.map(|c| c - x.raised))
            .filter(|d| *d < o.fleeting_ms)
            .collect();
        d.sort_unstable();
        let p90 = d[(d.len() * 9 / 10).min(d.len() - 1)];
        let suggested = ((p90 as f64 / 1000.0) / 5.0).floor() * 5.0 + 5.0;
        let now = p.alarms.on_delay_ms as f64 / 1000.0;
        if suggested <= now
            || out
                .iter()
                .any(|s: &Suggestion| s.point == a.point && s.field == "on_delay_s")
        {
            continue;
        }
        let gas = matches!(p.kind, PointKind::CombustibleGas | PointKind::ToxicGas);
        out.push(Suggestion {
            point: a.point.clone(),
            field: "on_delay_s",
            now,
            suggested,
            why: format!(
                "{} of {} raises of {} lasted under {} s (90 % under {:.1} s){}",
                a.fleeting,
                a.raised,
                a.alarm.as_str(),
                o.fleeting_ms / 1000,
                p90 as f64 / 1000.0,
                if gas {
                    "; a delay also delays a real leak's alarm: replay it as a candidate and read what it misses"
                } else {
                    ""
                }
            ),
        });
    }
    out
}

/// The next value up in the 1-2-5 series.
fn nice_up(x: f64) -> f64 {
    if !(x.is_finite() && x > 0.0) {
        return 0.0;
    }
    let e = 10f64.powf(x.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * e)
        .find(|v| *v >= x)
        .unwrap_or(10.0 * e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nice_numbers() {
        assert_eq!(nice_up(0.7), 1.0);
        assert_eq!(nice_up(1.3), 2.0);
        assert_eq!(nice_up(3.0), 5.0);
        assert_eq!(nice_up(0.0), 0.0);
        assert!((nice_up(0.031) - 0.05).abs() < 1e-12);
    }
}
