//! The point tables the centre has learnt from its gateways (contract v1.4): a
//! `samples` message names its table, and its values are stored with the names the
//! table gives them.
//!
//! Tables arrive as retained pages on `…/points/{table}/{first}`: at once when the
//! centre subscribes, and from a gateway before any sample that uses them (the pages
//! are events, sent ahead of telemetry). A table is usable once every page is in and
//! its content hashes to its name. Pages are learnt on the subscriber's task, before
//! any later message is handed to a decoding thread, so no sample overtakes its table.

use std::{
    collections::{BTreeMap, HashMap, VecDeque},
    sync::{Arc, Mutex},
};

use crate::contract::{
    samples::{table_id, PointInfo},
    wire::{Id, Text},
    GatewayPath,
};

/// Tables kept per gateway: the current one and a few older ones, for samples still in
/// a spool from before a reload.
const PER_GATEWAY: usize = 4;

/// The largest table accepted: a bound on what a broken or hostile gateway can make the
/// centre hold.
pub const MAX_POINTS: u32 = 1_000_000;

/// A complete table: `points[i]` is point index `i`.
#[derive(Debug)]
pub struct Table {
    pub points: Vec<PointInfo<'static>>,
}

type GatewayKey = (String, String, String);

#[derive(Default)]
struct Building {
    total: u32,
    pages: BTreeMap<u32, Vec<PointInfo<'static>>>,
}

#[derive(Default)]
struct OfGateway {
    complete: HashMap<String, Arc<Table>>,
    building: HashMap<String, Building>,
    /// Table names, oldest first, for eviction.
    order: VecDeque<String>,
}

/// Every gateway's tables, shared by the subscriber (which learns) and the decoding
/// threads (which look up).
#[derive(Default)]
pub struct Tables {
    inner: Mutex<HashMap<GatewayKey, OfGateway>>,
}

fn key(g: GatewayPath<'_>) -> GatewayKey {
    (g.park.into(), g.enterprise.into(), g.gateway.into())
}

fn owned(p: &PointInfo<'_>) -> PointInfo<'static> {
    let id = |i: &Id<'_>| Id(Text::Owned(i.to_string()));
    PointInfo {
        point: id(&p.point),
        hazard_source: id(&p.hazard_source),
        device: id(&p.device),
        kind: p.kind,
        unit: Text::Owned(p.unit.to_string()),
    }
}

impl Tables {
    /// The complete table `table` of gateway `g`, if it has been learnt.
    pub fn get(&self, g: GatewayPath<'_>, table: &str) -> Option<Arc<Table>> {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner.get(&key(g))?.complete.get(table).cloned()
    }

    /// Learns one page. Returns an error when the completed table does not hash to its
    /// name, or a page disagrees with the others about the table's size.
    pub fn learn(
        &self,
        g: GatewayPath<'_>,
        table: &str,
        first: u32,
        total: u32,
        points: &[PointInfo<'_>],
    ) -> Result<(), String> {
        if total > MAX_POINTS {
            return Err(format!("table {table}: {total} points, over {MAX_POINTS}"));
        }
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let gw = inner.entry(key(g)).or_default();
        if gw.complete.contains_key(table) {
            return Ok(()); // a resend, or the retained copy of what a gateway sent
        }
        if !gw.building.contains_key(table) && gw.building.len() >= PER_GATEWAY {
            gw.building.clear(); // pages of tables that never completed
        }
        let b = gw.building.entry(table.to_string()).or_default();
        if b.pages.is_empty() {
            b.total = total;
        } else if b.total != total {
            let was = b.total;
            gw.building.remove(table);
            return Err(format!(
                "table {table}: a page says {total} points, another {was}"
            ));
        }
        let held: usize = b.pages.values().map(Vec::len).sum();
        if held + points.len() > total as usize {
            gw.building.remove(table);
            return Err(format!(
                "table {table}: pages overlap, more than its {total} points"
            ));
        }
        b.pages.insert(first, points.iter().map(owned).collect());
        let Some(all) = assemble(b) else {
            return Ok(());
        };
        gw.building.remove(table);
        let named = table_id(all.iter());
        if named != table {
            return Err(format!("table {table}: its points hash to {named}"));
        }
        gw.complete
            .insert(table.to_string(), Arc::new(Table { points: all }));
        gw.order.push_back(table.to_string());
        while gw.order.len() > PER_GATEWAY {
            if let Some(old) = gw.order.pop_front() {
                gw.complete.remove(&old);
            }
        }
        Ok(())
    }
}

/// The whole table, once the pages cover `0..total` without gaps or overlaps.
fn assemble(b: &mut Building) -> Option<Vec<PointInfo<'static>>> {
    let mut next = 0u32;
    for (first, page) in &b.pages {
        if *first != next {
            return None;
        }
        next = next.checked_add(u32::try_from(page.len()).ok()?)?;
    }
    if next != b.total {
        return None;
    }
    let pages = std::mem::take(&mut b.pages);
    Some(pages.into_values().flatten().collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::PointKind;

    fn info(i: usize) -> PointInfo<'static> {
        PointInfo {
            point: Id(Text::Owned(format!("P{i}"))),
            hazard_source: Id(Text::Borrowed("HS")),
            device: Id(Text::Borrowed("D")),
            kind: PointKind::Analog,
            unit: Text::Borrowed("kPa"),
        }
    }

    const G: GatewayPath<'static> = GatewayPath {
        park: "P",
        enterprise: "E",
        gateway: "G",
    };

    #[test]
    fn a_table_is_usable_once_every_page_is_in_and_only_if_it_hashes_to_its_name() {
        let points: Vec<_> = (0..5).map(info).collect();
        let name = table_id(points.iter());
        let t = Tables::default();
        t.learn(G, &name, 3, 5, &points[3..]).unwrap();
        assert!(t.get(G, &name).is_none(), "a page is missing");
        t.learn(G, &name, 0, 5, &points[..3]).unwrap();
        let table = t.get(G, &name).expect("complete");
        assert_eq!(table.points, points);
        let other = GatewayPath { gateway: "G2", ..G };
        assert!(t.get(other, &name).is_none(), "tables are per gateway");

        let wrong = "0123456789abcdef";
        let err = t.learn(G, wrong, 0, 5, &points).unwrap_err();
        assert!(err.contains("hash"), "{err}");
        assert!(t.get(G, wrong).is_none());
    }

    #[test]
    fn old_tables_are_forgotten_beyond_a_few_per_gateway() {
        let t = Tables::default();
        let names: Vec<String> = (1..=PER_GATEWAY + 1)
            .map(|n| {
                let points: Vec<_> = (0..n).map(info).collect();
                let name = table_id(points.iter());
                t.learn(G, &name, 0, n as u32, &points).unwrap();
                name
            })
            .collect();
        assert!(t.get(G, &names[0]).is_none());
        assert!(names[1..].iter().all(|n| t.get(G, n).is_some()));
    }
}
