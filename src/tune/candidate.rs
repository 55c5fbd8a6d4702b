//! Candidate settings: `--set GT-101.h=18 --set GT-101.deadband=2`, or a candidate
//! file in the site file's words:
//!
//! ```toml
//! name = "wider deadband on the tank farm"
//! [[points]]
//! id = "GT-101"
//! alarms = { h = 18, deadband = 2 }
//! ```

use std::{collections::BTreeMap, path::Path};

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

use crate::{judge::engine::ThresholdChange, model::alarm::AlarmSettingsFile};

/// One set of changes to compare with today's settings.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Candidate {
    pub name: String,
    pub changes: Vec<ThresholdChange>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    name: Option<String>,
    points: Vec<FilePoint>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FilePoint {
    id: String,
    alarms: AlarmSettingsFile,
}

/// Reads a candidate file; its name defaults to the file's stem.
pub fn from_file(path: &Path) -> anyhow::Result<Candidate> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let de = toml_de(&text).with_context(|| format!("{}", path.display()))?;
    let f: File = serde_path_to_error::deserialize(de)
        .map_err(|e| anyhow::anyhow!("{}: {}: {}", path.display(), e.path(), e.inner()))?;
    let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned());
    Ok(Candidate {
        name: f.name.or(stem).unwrap_or_else(|| "candidate".into()),
        changes: f
            .points
            .into_iter()
            .map(|p| ThresholdChange {
                point: p.id,
                set: p.alarms,
            })
            .collect(),
    })
}

fn toml_de(text: &str) -> anyhow::Result<config::Config> {
    Ok(config::Config::builder()
        .add_source(config::File::from_str(text, config::FileFormat::Toml))
        .build()?)
}

/// Reads `--set POINT.FIELD=VALUE` flags into one candidate (`FIELD` as in the site
/// file's `alarms`: hh, h, l, ll, deadband, on_delay_s, off_delay_s, rate_per_min,
/// fault_delay_s, alarm_on).
pub fn from_sets(sets: &[String]) -> anyhow::Result<Option<Candidate>> {
    if sets.is_empty() {
        return Ok(None);
    }
    let mut by_point: BTreeMap<String, serde_json::Map<String, serde_json::Value>> =
        BTreeMap::new();
    for s in sets {
        let (key, value) = s
            .split_once('=')
            .with_context(|| format!("--set `{s}`: expected POINT.FIELD=VALUE (GT-101.h=18)"))?;
        let (point, field) = key
            .rsplit_once('.')
            .with_context(|| format!("--set `{s}`: expected POINT.FIELD=VALUE (GT-101.h=18)"))?;
        let v: serde_json::Value = match value.trim() {
            "true" => true.into(),
            "false" => false.into(),
            n => n
                .parse::<f64>()
                .ok()
                .filter(|x| x.is_finite())
                .with_context(|| format!("--set `{s}`: `{n}` is not a number"))?
                .into(),
        };
        by_point
            .entry(point.trim().to_string())
            .or_default()
            .insert(field.trim().to_string(), v);
    }
    let mut changes = Vec::new();
    for (point, fields) in by_point {
        let set: AlarmSettingsFile = serde_json::from_value(fields.into())
            .map_err(|e| anyhow::anyhow!("--set {point}.…: {e}"))?;
        changes.push(ThresholdChange { point, set });
    }
    let name = sets.join(" ");
    Ok(Some(Candidate { name, changes }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sets_group_by_point() {
        let c = from_sets(&[
            "GT-101.h=18".into(),
            "GT-101.deadband=2".into(),
            "LT-1.alarm_on=true".into(),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(c.changes.len(), 2);
        assert_eq!(c.changes[0].point, "GT-101");
        assert_eq!(c.changes[0].set.h, Some(18.0));
        assert_eq!(c.changes[0].set.deadband, Some(2.0));
        assert_eq!(c.changes[1].set.alarm_on, Some(true));
        assert!(from_sets(&["GT-101.hx=1".into()]).is_err(), "unknown field");
        assert!(from_sets(&["GT-101h=1".into()]).is_err(), "no field");
        assert!(from_sets(&["GT-101.h=x".into()]).is_err(), "not a number");
    }
}
