//! The monthly alarm-handling report (`hazgate report --month 2026-11`): per enterprise
//! what regulators score — alarms raised, not cleared (未销警) at the month's end and how
//! long they stood, feedback given, late or missing (未反馈), feedback times, online
//! rate — as CSV, from the ledger rebuilt from the journal.

use serde::Serialize;

use super::ledger::{park_and_enterprise, quantiles, Ledger};
use crate::reading::Timestamp;

/// One enterprise's month (a gateway's), or a park's total (enterprise empty).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Row {
    pub park: String,
    pub enterprise: String,
    pub enterprise_name: String,
    /// Occurrences raised in the month.
    pub raised: usize,
    /// Of those, cleared (销警) before the month's end.
    pub cleared: usize,
    /// Occurrences raised before the month's end and not cleared by it (未销警).
    pub not_cleared_at_end: usize,
    /// The longest an occurrence raised in the month stood, minutes (to its clear, or
    /// the month's end, or now).
    pub longest_open_min: f64,
    /// Of those raised in the month: with feedback, and without feedback by its deadline
    /// (未反馈: given late or not at all).
    pub with_feedback: usize,
    pub feedback_late_or_missing: usize,
    /// Raise → feedback, minutes.
    pub feedback_p50_min: Option<f64>,
    pub feedback_p90_min: Option<f64>,
    /// Share of the month online, of the part its status was known, percent.
    pub online_pct: Option<f64>,
}

/// The start and end of `month` (`YYYY-MM`) in a zone `offset_h` hours east of UTC.
pub fn month_bounds(month: &str, offset_h: i8) -> Option<(Timestamp, Timestamp)> {
    let (y, m) = month.split_once('-')?;
    let (y, m): (i32, u32) = (y.parse().ok()?, m.parse().ok()?);
    if y < 1970 || month.len() != 7 || !(1..=12).contains(&m) {
        return None;
    }
    let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
    let start = |y: i32, m: u32| {
        Timestamp::parse_rfc3339(&format!("{y:04}-{m:02}-01T00:00:00Z"))
            .map(|t| Timestamp(t.0 - i64::from(offset_h) * 3_600_000))
    };
    Some((start(y, m)?, start(ny, nm)?))
}

/// The report for `[from, to)` as of `now`: a row per enterprise, then a row per park.
/// A month not yet over is reported up to `now`.
pub fn rows(ledger: &Ledger, from: Timestamp, to: Timestamp, now: Timestamp) -> Vec<Row> {
    let to = to.min(now);
    let mut out = Vec::new();
    let mut parks: std::collections::BTreeMap<String, (Row, Vec<f64>, Vec<f64>)> =
        std::collections::BTreeMap::new();
    for (gateway, name) in ledger.gateways() {
        let (park, enterprise) = park_and_enterprise(&gateway);
        let mut row = Row {
            park,
            enterprise,
            enterprise_name: name.unwrap_or_default(),
            online_pct: ledger
                .online_share(&gateway, from, to)
                .map(|s| (s * 1000.0).round() / 10.0),
            ..Row::default()
        };
        let mut times = Vec::new();
        for o in ledger.all().filter(|o| o.gateway == gateway) {
            let cleared_by_end = o.cleared.filter(|c| *c < to);
            if o.raised < to && cleared_by_end.is_none() {
                row.not_cleared_at_end += 1;
            }
            if o.raised < from || o.raised >= to {
                continue;
            }
            row.raised += 1;
            row.cleared += usize::from(cleared_by_end.is_some());
            let stood = cleared_by_end.unwrap_or(to).0 - o.raised.0;
            row.longest_open_min = row.longest_open_min.max(stood as f64 / 60_000.0);
            if let Some(f) = &o.feedback {
                row.with_feedback += 1;
                times.push((f.at.0 - o.raised.0) as f64 / 60_000.0);
            }
            row.feedback_late_or_missing += usize::from(o.feedback_overdue(to));
        }
        row.longest_open_min = (row.longest_open_min * 10.0).round() / 10.0;
        let park = parks
            .entry(row.park.clone())
            .or_insert_with(|| (Row::default(), Vec::new(), Vec::new()));
        add(&mut park.0, &row);
        park.1.extend(&times);
        if let Some(p) = row.online_pct {
            park.2.push(p);
        }
        (row.feedback_p50_min, row.feedback_p90_min) = rounded(quantiles(Some(&mut times)));
        out.push(row);
    }
    for (name, (mut total, mut times, online)) in parks {
        total.park = name;
        (total.feedback_p50_min, total.feedback_p90_min) = rounded(quantiles(Some(&mut times)));
        total.online_pct = (!online.is_empty())
            .then(|| (online.iter().sum::<f64>() / online.len() as f64 * 10.0).round() / 10.0);
        out.push(total);
    }
    out
}

fn add(total: &mut Row, r: &Row) {
    total.raised += r.raised;
    total.cleared += r.cleared;
    total.not_cleared_at_end += r.not_cleared_at_end;
    total.longest_open_min = total.longest_open_min.max(r.longest_open_min);
    total.with_feedback += r.with_feedback;
    total.feedback_late_or_missing += r.feedback_late_or_missing;
}

fn rounded((a, b): (Option<f64>, Option<f64>)) -> (Option<f64>, Option<f64>) {
    let r = |x: f64| (x * 10.0).round() / 10.0;
    (a.map(r), b.map(r))
}

/// The rows as CSV, with a header (UTF-8 with a byte-order mark, so Excel opens the
/// Chinese names right).
pub fn csv(rows: &[Row]) -> Result<Vec<u8>, csv::Error> {
    let mut w = csv::Writer::from_writer(b"\xEF\xBB\xBF".to_vec());
    for r in rows {
        w.serialize(r)?;
    }
    w.into_inner().map_err(|e| csv::Error::from(e.into_error()))
}
