//! The store's answers to the screen's drill-down queries (VictoriaMetrics' Prometheus
//! API, InfluxQL): arbitrary bytes give points or a trend, or a named error — never a
//! panic; points come out once each, in order; a trend is in time order, with finite
//! values.
//!
//! The first byte chooses the API (even: VictoriaMetrics, odd: InfluxQL) and what was
//! asked (bit 2 set: a gateway's history for `hazgate tune`; else bit 1 clear: a
//! source's points, set: a trend). A history comes out by time then point, once each,
//! with finite values. Shared by the cargo-fuzz
//! target and the corpus replay under `cargo test`.

use hazgate::ingest::store_query::{read_history, read_points, read_trend, Api};

/// Checks one input; true when the answer was read and held something.
pub fn check(data: &[u8]) -> bool {
    let Some((&selector, body)) = data.split_first() else {
        return false;
    };
    let api = if selector % 2 == 0 {
        Api::VictoriaMetrics
    } else {
        Api::InfluxQl
    };
    if selector & 4 != 0 {
        return match read_history(api, body) {
            Ok(rs) => {
                assert!(
                    rs.windows(2)
                        .all(|w| (w[0].ts, &w[0].point) < (w[1].ts, &w[1].point)),
                    "by time then point, once each"
                );
                assert!(rs.iter().all(|r| r.value.is_none_or(f64::is_finite)));
                !rs.is_empty()
            }
            Err(e) => {
                assert!(!e.to_string().is_empty());
                false
            }
        };
    }
    if selector & 2 == 0 {
        match read_points(api, &[body.to_vec()]) {
            Ok(points) => {
                assert!(
                    points.windows(2).all(|w| w[0].point < w[1].point),
                    "points once each, in order"
                );
                assert!(points.iter().all(|p| p.value.is_none_or(f64::is_finite)));
                !points.is_empty()
            }
            Err(e) => {
                assert!(!e.to_string().is_empty());
                false
            }
        }
    } else {
        match read_trend(api, body) {
            Ok(samples) => {
                assert!(samples.windows(2).all(|w| w[0].0 <= w[1].0), "time order");
                assert!(samples.iter().all(|(_, v)| v.is_finite()));
                !samples.is_empty()
            }
            Err(e) => {
                assert!(!e.to_string().is_empty());
                false
            }
        }
    }
}
