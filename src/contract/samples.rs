//! The compact telemetry of contract v1.4: a gateway's **point table**, published once
//! (retained, in pages), and **samples** that carry readings by their index in it.
//!
//! A `telemetry` reading repeats its point, hazard source, device, kind, unit, quality
//! and time — about 150 bytes of JSON for one number. A `samples` message sends, per
//! poll, the time once and the values as a plain array; what the values are is in the
//! table, named by a hash of its content, so a reading costs a few bytes and a table
//! that changes (a reload) gets a new name instead of silently renumbering old data.

use serde::{Deserialize, Serialize};

use super::vocab::{some, Id, Quality, Text, Value};
use crate::{model::PointKind, reading::Timestamp};

/// Points per page of a table: a page of 2,000 is about 170 kB, well under the 1 MiB
/// an MQTT client or broker commonly allows.
pub const PAGE: usize = 2000;

/// One point of a gateway's table: what a sample leaves out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PointInfo<'a> {
    #[serde(borrow)]
    pub point: Id<'a>,
    #[serde(borrow)]
    pub hazard_source: Id<'a>,
    #[serde(borrow)]
    pub device: Id<'a>,
    pub kind: PointKind,
    #[serde(borrow)]
    pub unit: Text<'a>,
}

/// Names a table: 16 hex digits of FNV-1a over the points' text, so the same points
/// in the same order always have the same name, and any change gives a new one.
pub struct TableHasher(u64);

impl Default for TableHasher {
    fn default() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }
}

impl TableHasher {
    pub fn add(&mut self, p: &PointInfo<'_>) {
        for part in [
            &*p.point,
            &*p.hazard_source,
            &*p.device,
            p.kind.as_str(),
            &*p.unit,
        ] {
            for b in part.bytes().chain([0xff]) {
                self.0 ^= u64::from(b);
                self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
            }
        }
    }

    pub fn name(&self) -> String {
        format!("{:016x}", self.0)
    }
}

/// The name of the table of `points`, in order.
pub fn table_id<'p>(points: impl IntoIterator<Item = &'p PointInfo<'p>>) -> String {
    let mut h = TableHasher::default();
    points.into_iter().for_each(|p| h.add(p));
    h.name()
}

/// Whether `s` can name a table.
pub fn is_table_id(s: &str) -> bool {
    s.len() == 16 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The readings of one poll (or one run of a snapshot) at one time.
///
/// Points are `first`, `first + 1`, … (a device's block, a snapshot) or listed in
/// `index` (readings by exception). `values[i]` belongs to the i-th point; it is null
/// when no value was obtained. Qualities other than `good` are listed in `faults`, and
/// range flags in `over_range` / `under_range`, by point index: they are rare, and a
/// scan of good values carries nothing but the values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scan {
    pub ts: Timestamp,
    #[serde(
        default,
        deserialize_with = "some",
        skip_serializing_if = "Option::is_none"
    )]
    pub first: Option<u32>,
    #[serde(
        default,
        deserialize_with = "some",
        skip_serializing_if = "Option::is_none"
    )]
    pub index: Option<Vec<u32>>,
    pub values: Vec<Option<Value>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub faults: Vec<Fault>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub over_range: Vec<u32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub under_range: Vec<u32>,
}

/// A reading whose quality is not `good`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fault {
    pub index: u32,
    pub quality: Quality,
    #[serde(
        default,
        deserialize_with = "some",
        skip_serializing_if = "Option::is_none"
    )]
    pub exception: Option<u8>,
}

impl Scan {
    /// The point index of each value, in order.
    pub fn indices(&self) -> impl Iterator<Item = u32> + '_ {
        let n = self.values.len() as u32;
        let run = self.first.map(|f| f..f.saturating_add(n));
        run.into_iter()
            .flatten()
            .chain(self.index.iter().flatten().copied())
    }

    /// What breaks the contract in this scan, if anything: the schemas' rules and
    /// those between fields a schema cannot state.
    pub fn check(&self, table_len: Option<usize>) -> Result<(), String> {
        match (&self.first, &self.index) {
            (Some(_), None) => {}
            (None, Some(ix)) if ix.len() == self.values.len() => {}
            (None, Some(_)) => return Err("index and values differ in length".into()),
            _ => return Err("a scan has either `first` or `index`".into()),
        }
        if self.values.is_empty() {
            return Err("values must not be empty".into());
        }
        let position = |i: u32| self.indices().position(|j| j == i);
        if let Some(n) = table_len {
            if let Some(i) = self.indices().find(|&i| i as usize >= n) {
                return Err(format!("point index {i} is beyond the table's {n} points"));
            }
        }
        for f in &self.faults {
            let Some(at) = position(f.index) else {
                return Err(format!("fault for point {}, not in the scan", f.index));
            };
            f.check()?;
            let no_value = matches!(f.quality, Quality::CommFailure | Quality::DeviceException);
            if no_value && self.values[at].is_some() {
                return Err(format!(
                    "point {}: no value comes with {}",
                    f.index,
                    f.quality.as_str()
                ));
            }
        }
        for i in self.over_range.iter().chain(&self.under_range) {
            if position(*i).is_none() {
                return Err(format!("range flag for point {i}, not in the scan"));
            }
        }
        Ok(())
    }
}

impl Fault {
    fn check(&self) -> Result<(), String> {
        match (self.quality, self.exception) {
            (Quality::Good, _) => Err("a fault's quality is not `good`".into()),
            (_, Some(0)) => Err("exception codes are 1..=255".into()),
            (Quality::DeviceException, None) => {
                Err("a device exception needs its `exception` code".into())
            }
            (q, Some(_)) if q != Quality::DeviceException => {
                Err("only a device exception has an `exception` code".into())
            }
            _ => Ok(()),
        }
    }
}
