//! The centre's store as a tune history: every reading `hazgate ingest` stored for
//! this gateway, read back through VictoriaMetrics' export API or InfluxQL and turned
//! into readings of the site file's points. The store keeps readings only; the
//! operator actions of the period (threshold changes, shelving) are not replayed from
//! it, and there are no live events to check the replay against.

use std::time::Duration;

use anyhow::Context as _;

use crate::{
    contract::{vocab, GatewayPath},
    ingest::store_query::{Api, Selector, StoreQuery, StoredReading},
    model::Site,
    reading::{Quality, RangeFlag, Raw, Reading, Timestamp, Value},
};

/// A whole month of one gateway can be large: the store gets time to answer.
const TIMEOUT: Duration = Duration::from_secs(300);

pub async fn victoriametrics(
    site: &Site,
    url: &str,
    from: i64,
    to: i64,
) -> anyhow::Result<Vec<Reading>> {
    read(
        site,
        StoreQuery::at(Api::VictoriaMetrics, url, "", TIMEOUT),
        from,
        to,
    )
    .await
}

pub async fn influxql(
    site: &Site,
    url: &str,
    db: &str,
    from: i64,
    to: i64,
) -> anyhow::Result<Vec<Reading>> {
    read(
        site,
        StoreQuery::at(Api::InfluxQl, url, db, TIMEOUT),
        from,
        to,
    )
    .await
}

async fn read(site: &Site, q: StoreQuery, from: i64, to: i64) -> anyhow::Result<Vec<Reading>> {
    let g = &site.gateway;
    let sel = Selector {
        gateway: GatewayPath {
            park: &g.park_id,
            enterprise: &g.enterprise_id,
            gateway: &g.gateway_id,
        },
        hazard_source: None,
        point: None,
    };
    let stored = q
        .history(&sel, from, to)
        .await
        .context("cannot read the history from the store")?;
    Ok(readings(site, &stored))
}

/// The stored readings of the site's points, in time order (others are left out: a
/// point since removed from the site file has no settings to replay).
pub fn readings(site: &Site, stored: &[StoredReading]) -> Vec<Reading> {
    stored
        .iter()
        .filter_map(|s| {
            let p = site.point_by_id(&s.point)?;
            // A good code without a value is no measurement; an unknown code is none
            // the contract writes.
            let quality = match s.quality.map(vocab::Quality::from_code) {
                None if s.value.is_some() => Quality::Good,
                Some(Some(vocab::Quality::Good)) if s.value.is_none() => Quality::SensorFault,
                Some(Some(q)) => q.reading(0),
                _ => Quality::SensorFault,
            };
            let value = s.value.map(|v| {
                if p.is_discrete() {
                    Value::Discrete(v != 0.0)
                } else {
                    Value::Analog(v)
                }
            });
            Some(Reading {
                point: p.index,
                value,
                quality,
                ts: Timestamp(s.ts),
                raw: Raw::None,
                range: match (s.over_range, s.under_range) {
                    (true, _) => RangeFlag::Over,
                    (_, true) => RangeFlag::Under,
                    _ => RangeFlag::Within,
                },
            })
        })
        .collect()
}
