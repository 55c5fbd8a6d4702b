//! Cross-field checks of a site file and its compilation into a [`Site`].
//!
//! Checking and building are one walk over the file so that the two can never
//! disagree. Every problem is collected (not just the first), each with the field path
//! an engineer can find in the file, e.g. `hazard_sources[1].points[4].address`.
//!
//! Here the whole site and its hazard sources; `channels` compiles channels and
//! devices, `point` one point, `layout` the checks across points (overlapping
//! registers, fault points, request sizes).

mod channels;
mod layout;
mod point;
mod wiring;

pub use wiring::{modicon_hint, t35, GAS_POLL_MAX};

use channels::{compile_channels, DeviceIndex};
use layout::{attach_points_to_devices, check_block_fits, check_overlaps_and_faults};
use point::{compile_point, placeholder_point, Placement, PointContext};

use std::{collections::HashMap, sync::Arc};

use super::{
    alarm::AlarmSettings,
    file::{ApiConfig, HazardSourceFile, SiteFile},
    gas::GasTable,
    problems::{FieldError, Problems},
    site::*,
};

/// Validates `file` and builds the site, or returns every problem found.
pub fn compile(file: &SiteFile) -> Result<Site, Vec<FieldError>> {
    let mut errors = Problems::default();
    check_sections(file, &mut errors);
    let (channels, device_index) = compile_channels(&file.channels, &mut errors);
    let mut site = Site {
        gateway: file.gateway.clone(),
        hazard_sources: Vec::new(),
        channels,
        points: Vec::new(),
        stale_after_periods: file.acquisition.stale_after_periods,
        risk: file.risk.compile(),
        uplink: file
            .uplink
            .as_ref()
            .map(|u| u.compile(&file.gateway.gateway_id)),
        api: file.api.clone(),
        history: file.history.clone(),
        warnings: Vec::new(),
        gases: compile_gases(file, &mut errors),
    };
    let point_ids = point_ids(file, &mut errors);
    let mut source_ids: HashMap<&str, usize> = HashMap::new();
    let mut alike = Alike::default();
    for (si, source) in file.hazard_sources.iter().enumerate() {
        if let Some(first) = source_ids.insert(&source.id, si) {
            errors.push(
                format!("hazard_sources[{si}].id"),
                format!(
                    "duplicate hazard source id `{}` (first at hazard_sources[{first}])",
                    source.id
                ),
            );
        }
        let cx = PointContext {
            channels: &site.channels,
            devices: &device_index,
            point_ids: &point_ids,
            defaults: [&file.alarm_defaults, &source.alarm_defaults],
            gases: &site.gases,
        };
        let (hazard_source, points) =
            compile_source(source, si, site.points.len(), &cx, &mut alike, &mut errors);
        site.points.extend(points);
        site.hazard_sources.push(hazard_source);
    }
    if errors.is_empty() {
        attach_points_to_devices(&mut site);
        check_overlaps_and_faults(file, &site, &mut errors);
        check_block_fits(file, &site, &mut errors);
        let mut warnings = Problems::default();
        wiring::check_wiring(file, &site, &mut errors, &mut warnings);
        site.warnings = warnings.into_vec();
    }
    if file.hazard_sources.is_empty() {
        errors.push("hazard_sources", "a site needs at least one hazard source");
    }
    if errors.is_empty() {
        Ok(site)
    } else {
        Err(errors.into_vec())
    }
}

/// Points with equal alarm settings or units share one copy, looked up before it is
/// allocated. Tables list points of a kind together, so a copy is looked for among the
/// last few distinct ones. At 50,000 points sharing takes the compiled site from 432 to
/// 264 bytes a point; looking up first (rather than allocating each point its own copy
/// and merging afterwards) also leaves no freed ~200-byte block between every two
/// points' kept ones — 49,640 such holes had kept 10 MB of the heap resident.
#[derive(Default)]
pub(super) struct Alike {
    alarms: Vec<Arc<AlarmSettings>>,
    units: Vec<Arc<str>>,
}

impl Alike {
    const RECENT: usize = 8;

    pub(super) fn alarms(&mut self, settings: AlarmSettings) -> Arc<AlarmSettings> {
        match Self::find(&self.alarms, &settings) {
            Some(copy) => copy,
            None => Self::remember(&mut self.alarms, Arc::new(settings)),
        }
    }

    pub(super) fn unit(&mut self, unit: &str) -> Arc<str> {
        match Self::find(&self.units, unit) {
            Some(copy) => copy,
            None => Self::remember(&mut self.units, Arc::from(unit)),
        }
    }

    fn find<T: ?Sized + PartialEq>(recent: &[Arc<T>], item: &T) -> Option<Arc<T>> {
        recent.iter().find(|r| ***r == *item).cloned()
    }

    fn remember<T: ?Sized>(recent: &mut Vec<Arc<T>>, made: Arc<T>) -> Arc<T> {
        if recent.len() == Self::RECENT {
            recent.remove(0);
        }
        recent.push(made.clone());
        made
    }
}

/// The gateway's identity and the whole-site sections (`[acquisition]`, `[api]`,
/// `[uplink]`, `[risk]`).
fn check_sections(file: &SiteFile, errors: &mut Problems) {
    let g = &file.gateway;
    errors.identifier("gateway.park_id", &g.park_id);
    errors.identifier("gateway.enterprise_id", &g.enterprise_id);
    errors.identifier("gateway.gateway_id", &g.gateway_id);
    if g.enterprise_name.trim().is_empty() {
        errors.push("gateway.enterprise_name", "must not be empty");
    }
    if file.acquisition.stale_after_periods == 0 {
        errors.push("acquisition.stale_after_periods", "must be at least 1");
    }
    let listen = file
        .api
        .listen
        .as_deref()
        .unwrap_or(ApiConfig::DEFAULT_LISTEN);
    file.api.check_listen(listen, &mut errors.at("api"));
    if let Some(u) = &file.uplink {
        u.validate(&mut errors.at("uplink"));
    }
    if let Some(h) = &file.history {
        h.check(&mut errors.at("history"));
    }
    file.risk.validate(&mut errors.at("risk"));
}

/// Every point id with its dense index, first, so `fault_point` references can point
/// forward; a duplicate is a problem at its second place.
fn point_ids<'f>(
    file: &'f SiteFile,
    errors: &mut Problems,
) -> HashMap<&'f str, (PointIndex, String)> {
    let mut point_ids: HashMap<&str, (PointIndex, String)> = HashMap::new();
    let mut next = 0u32;
    for (si, source) in file.hazard_sources.iter().enumerate() {
        for (pi, point) in source.points.iter().enumerate() {
            let path = format!("hazard_sources[{si}].points[{pi}]");
            if let Some((_, first)) = point_ids.get(point.id.as_str()) {
                errors.push(
                    format!("{path}.id"),
                    format!("duplicate point id `{}` (first at {first})", point.id),
                );
            } else {
                point_ids.insert(&point.id, (PointIndex(next), path));
            }
            next += 1;
        }
    }
    point_ids
}

/// One hazard source (GB 18218-2018 level 1–4) and its points, indexed from `first`;
/// a bad point keeps its place (a placeholder) so indices stay dense.
fn compile_source(
    source: &HazardSourceFile,
    si: usize,
    first: usize,
    cx: &PointContext<'_>,
    alike: &mut Alike,
    errors: &mut Problems,
) -> (HazardSource, Vec<Point>) {
    let path = format!("hazard_sources[{si}]");
    errors.identifier(&format!("{path}.id"), &source.id);
    if !(1..=4).contains(&source.level) {
        errors.push(
            format!("{path}.level"),
            format!(
                "major-hazard level must be 1 (most dangerous) to 4 (GB 18218-2018), got {}",
                source.level
            ),
        );
    }
    if source.name.trim().is_empty() {
        errors.push(format!("{path}.name"), "must not be empty");
    }
    let source_index = SourceIndex(si as u32);
    let source_id = HazardSourceId::new(&source.id);
    let mut members = Vec::new();
    let mut points = Vec::new();
    for (pi, point) in source.points.iter().enumerate() {
        let index = PointIndex((first + pi) as u32);
        let at = Placement {
            index,
            source: source_index,
            source_id: &source_id,
        };
        match compile_point(
            point,
            &format!("{path}.points[{pi}]"),
            at,
            cx,
            alike,
            errors,
        ) {
            Some(p) => {
                members.push(index);
                points.push(p);
            }
            None => points.push(placeholder_point(point, index, source_index)),
        }
    }
    let hazard_source = HazardSource {
        id: source_id,
        name: source.name.clone(),
        kind: source.kind,
        level: source.level,
        r_value: source.r_value,
        responsible: source.responsible.clone(),
        points: members,
    };
    (hazard_source, points)
}

/// The gas table in force: built-in, with the site's `[[gases]]` added or replacing.
fn compile_gases(file: &SiteFile, errors: &mut Problems) -> GasTable {
    let mut names: HashMap<String, usize> = HashMap::new();
    let custom = file.gases.iter().enumerate().filter_map(|(i, g)| {
        let path = format!("gases[{i}]");
        if let Some(first) = names.insert(g.name.to_ascii_lowercase(), i) {
            errors.push(
                format!("{path}.name"),
                format!("`{}` is already gases[{first}]", g.name),
            );
        }
        g.compile(&path, errors)
    });
    GasTable::new(custom.collect::<Vec<_>>())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use crate::model::{load_site, SiteSource, DEMO_SITE_TOML};

    /// Equal settings and units of neighbouring points (tables list points of a kind
    /// together) are one allocation, made when the first such point is compiled (not a
    /// copy per point merged later).
    #[test]
    fn neighbours_alike_share_one_copy_of_their_settings_and_unit() {
        let site = load_site(SiteSource::Text {
            name: "demo",
            toml: DEMO_SITE_TOML,
        })
        .unwrap();
        let (mut alarms, mut units) = (0, 0);
        for pair in site.points.windows(2) {
            let [a, b] = pair else { unreachable!() };
            if a.alarms == b.alarms {
                assert!(Arc::ptr_eq(&a.alarms, &b.alarms), "{} {}", a.id, b.id);
                alarms += 1;
            }
            if a.unit == b.unit {
                assert!(Arc::ptr_eq(&a.unit, &b.unit), "{} {}", a.id, b.id);
                units += 1;
            }
        }
        assert!(
            alarms > 0 && units > 0,
            "the demo site has neighbours alike"
        );
    }
}
