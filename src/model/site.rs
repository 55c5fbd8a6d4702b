//! The validated site model every stage works from.
//!
//! Built only by [`super::validate::compile`], so code holding a [`Site`] can rely on
//! its invariants: ids are unique, every point's device exists, data types agree with
//! tables, scaling is complete. Points are stored densely and addressed by
//! [`PointIndex`] on hot paths; ids are for people and wire formats.

use std::{fmt, sync::Arc, time::Duration};

use serde::Serialize;

pub use super::file::{
    DataType, GatewayFile as Gateway, HazardSourceKind, Parity, PointKind, RegisterTable, WordOrder,
};

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        #[serde(transparent)]
        pub struct $name(Arc<str>);

        impl $name {
            pub fn new(s: &str) -> Self {
                Self(Arc::from(s))
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.pad(&self.0)
            }
        }
    };
}

string_id!(
    /// A point's id, e.g. `GT-101`.
    PointId
);
string_id!(
    /// A major hazard source's id, e.g. `HS-01`.
    HazardSourceId
);
string_id!(
    /// A device's id, unique across the site.
    DeviceId
);
string_id!(
    /// A channel's id.
    ChannelId
);

/// Dense index of a point in [`Site::points`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct PointIndex(pub u32);

impl PointIndex {
    pub fn get(self) -> usize {
        self.0 as usize
    }
}

/// Dense index of a hazard source in [`Site::hazard_sources`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct SourceIndex(pub u32);

#[derive(Debug, Clone)]
pub struct Site {
    pub gateway: Gateway,
    pub hazard_sources: Vec<HazardSource>,
    pub channels: Vec<Channel>,
    pub points: Vec<Point>,
    pub stale_after_periods: u32,
    pub risk: super::risk::Risk,
    pub uplink: Option<super::uplink::Uplink>,
    pub api: super::file::ApiConfig,
    pub history: Option<super::history::HistoryConfig>,
    /// What `check` found suspicious but not certainly wrong (wiring lint), each with
    /// its field path and the fix; logged at start, printed by `check`.
    pub warnings: Vec<super::problems::FieldError>,
    /// The gases in force: the built-in table with the site's `[[gases]]`.
    pub gases: super::gas::GasTable,
}

impl Site {
    pub fn point(&self, index: PointIndex) -> &Point {
        &self.points[index.get()]
    }

    pub fn source(&self, index: SourceIndex) -> &HazardSource {
        &self.hazard_sources[index.0 as usize]
    }

    pub fn point_by_id(&self, id: &str) -> Option<&Point> {
        self.points.iter().find(|p| p.id.as_str() == id)
    }

    pub fn devices(&self) -> impl Iterator<Item = (&Channel, &Device)> {
        self.channels
            .iter()
            .flat_map(|c| c.devices.iter().map(move |d| (c, d)))
    }
}

#[derive(Debug, Clone)]
pub struct HazardSource {
    pub id: HazardSourceId,
    pub name: String,
    pub kind: HazardSourceKind,
    /// GB 18218-2018 level, 1 (most dangerous) to 4.
    pub level: u8,
    pub r_value: Option<f64>,
    pub responsible: Vec<String>,
    pub points: Vec<PointIndex>,
}

#[derive(Debug, Clone)]
pub struct Channel {
    pub id: ChannelId,
    pub transport: Transport,
    pub inter_frame_delay: Duration,
    pub devices: Vec<Device>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Transport {
    Tcp {
        host: String,
        port: u16,
    },
    Rtu {
        path: String,
        baud: u32,
        parity: Parity,
        data_bits: u8,
        stop_bits: u8,
    },
    RtuOverTcp {
        host: String,
        port: u16,
    },
}

impl Transport {
    /// Whether the medium carries one transaction at a time with no transaction id,
    /// so a late answer can be mistaken for the next one.
    pub fn is_rtu_framed(&self) -> bool {
        !matches!(self, Self::Tcp { .. })
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Tcp { host, port } => write!(f, "tcp://{host}:{port}"),
            Self::Rtu { path, baud, .. } => write!(f, "rtu:{path}@{baud}"),
            Self::RtuOverTcp { host, port } => write!(f, "rtu+tcp://{host}:{port}"),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Device {
    pub id: DeviceId,
    pub unit_id: u8,
    pub poll_interval: Duration,
    pub timeout: Duration,
    pub retries: u32,
    pub max_backoff: Duration,
    pub limits: BlockLimits,
    pub points: Vec<PointIndex>,
    pub description: String,
}

/// How a device's points may be grouped into read requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockLimits {
    pub max_registers: u16,
    pub max_bits: u16,
    pub max_gap: u16,
}

impl Default for BlockLimits {
    fn default() -> Self {
        Self {
            max_registers: 125,
            max_bits: 2000,
            max_gap: 16,
        }
    }
}

/// Where a point's raw value lives and how to read it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RegisterSpec {
    pub table: RegisterTable,
    pub address: u16,
    pub data_type: DataType,
    pub word_order: WordOrder,
    /// Bit inside a register, for bools in holding / input registers.
    pub bit: Option<u8>,
}

impl RegisterSpec {
    /// Addresses the point occupies in its table (bits for bit tables).
    pub fn width(&self) -> u16 {
        if self.table.is_bit_table() {
            1
        } else {
            self.data_type.word_count()
        }
    }
}

/// Rounds engineering values to the point's resolution, so `292 × 0.1` is `29.2`, not
/// `29.200000000000003`: what is judged, shown and published is what the instrument
/// resolves, and it prints short.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rounding {
    /// 10^decimals, or 0 for no rounding.
    factor: f64,
}

impl Rounding {
    pub const NONE: Rounding = Rounding { factor: 0.0 };

    /// Rounds to `decimals` places (at most [`Rounding::MAX_DECIMALS`]).
    pub fn decimals(decimals: u8) -> Self {
        Self {
            factor: 10f64.powi(i32::from(decimals.min(Self::MAX_DECIMALS))),
        }
    }

    pub const MAX_DECIMALS: u8 = 9;

    /// The decimals, or None when values are not rounded.
    pub fn places(&self) -> Option<u8> {
        (self.factor > 0.0).then(|| self.factor.log10().round() as u8)
    }

    pub fn apply(&self, v: f64) -> f64 {
        if self.factor == 0.0 {
            return v;
        }
        let r = (v * self.factor).round() / self.factor;
        // Values too large for the factor (|v| × 10^d beyond 2^53) are already coarser.
        if r.is_finite() {
            r
        } else {
            v
        }
    }

    /// The decimals that show every value an integer register can give exactly: the
    /// places of the step one count makes and of the offset (scale 0.1 → 1, 0.25 → 2,
    /// 4000–20000 counts onto 0–100 → 5). A step with no short decimal form (100 / 3)
    /// gets two places below its first digit.
    pub fn of_scaling(scaling: &Scaling) -> Self {
        let (step, offset) = match *scaling {
            Scaling::Linear { scale, offset } => (scale, offset),
            Scaling::Range {
                raw: [r0, r1],
                eng: [e0, e1],
            } => ((e1 - e0) / (r1 - r0), e0 - r0 * (e1 - e0) / (r1 - r0)),
        };
        let places = |x: f64| {
            (0..=Self::MAX_DECIMALS).find(|&d| {
                let scaled = x.abs() * 10f64.powi(i32::from(d));
                (scaled - scaled.round()).abs() <= 1e-9 * scaled.max(1.0)
            })
        };
        let step_places = places(step).unwrap_or_else(|| {
            let first = (-step.abs().log10()).ceil().max(0.0) as u8;
            (first + 2).min(Self::MAX_DECIMALS)
        });
        let offset_places = places(offset).unwrap_or(Self::MAX_DECIMALS);
        Self::decimals(step_places.max(offset_places))
    }
}

/// Raw number → engineering units.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Scaling {
    /// eng = raw × scale + offset.
    Linear { scale: f64, offset: f64 },
    /// Maps raw_lo..raw_hi onto eng_lo..eng_hi (extrapolating outside).
    Range { raw: [f64; 2], eng: [f64; 2] },
}

impl Scaling {
    pub const IDENTITY: Scaling = Scaling::Linear {
        scale: 1.0,
        offset: 0.0,
    };

    /// The engineering range a `Range` scaling maps onto; a linear one has none.
    pub fn eng_range(&self) -> Option<[f64; 2]> {
        match *self {
            Self::Range { eng, .. } => Some(eng),
            Self::Linear { .. } => None,
        }
    }

    pub fn apply(&self, raw: f64) -> f64 {
        match *self {
            Self::Linear { scale, offset } => raw * scale + offset,
            Self::Range {
                raw: [r0, r1],
                eng: [e0, e1],
            } => e0 + (raw - r0) * (e1 - e0) / (r1 - r0),
        }
    }

    /// The inverse map, used by the simulator to produce raw counts.
    pub fn invert(&self, eng: f64) -> f64 {
        match *self {
            Self::Linear { scale, offset } => (eng - offset) / scale,
            Self::Range {
                raw: [r0, r1],
                eng: [e0, e1],
            } => r0 + (eng - e0) * (r1 - r0) / (e1 - e0),
        }
    }
}

/// 4–20 mA loop supervision on a point with a raw range.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LoopCurrent {
    /// Raw counts at 4 mA and 20 mA.
    pub raw_4ma: f64,
    pub raw_20ma: f64,
    pub fault_below_ma: f64,
    pub fault_above_ma: f64,
}

impl LoopCurrent {
    pub fn milliamps(&self, raw: f64) -> f64 {
        4.0 + 16.0 * (raw - self.raw_4ma) / (self.raw_20ma - self.raw_4ma)
    }

    pub fn raw_at(&self, ma: f64) -> f64 {
        self.raw_4ma + (ma - 4.0) * (self.raw_20ma - self.raw_4ma) / 16.0
    }
}

#[derive(Debug, Clone)]
pub struct Point {
    pub id: PointId,
    pub index: PointIndex,
    /// Boxed strings and slices (16 bytes) rather than `String` / `Vec` (24): a point
    /// is kept once per point for the daemon's life, and never grows.
    pub name: Box<str>,
    pub source: SourceIndex,
    pub source_id: HazardSourceId,
    pub kind: PointKind,
    pub gas: Option<Arc<super::gas::Gas>>,
    /// (channel index, device index within the channel); see [`Point::device_at`].
    pub device: (u32, u32),
    pub device_id: DeviceId,
    pub register: RegisterSpec,
    pub scaling: Scaling,
    /// The decimals the engineering value is rounded to (`decimals`, or the scaling's).
    pub rounding: Rounding,
    /// Boxed: most points have none, and every point carried 40 bytes for it.
    pub loop_current: Option<Box<LoopCurrent>>,
    /// Shared among the points with the same unit (see [`Point::alarms`]).
    pub unit: Arc<str>,
    /// Boxed: most points have none (see [`Point::valid_range`]).
    pub valid: Option<Box<[f64; 2]>>,
    pub fault_codes: Box<[u64]>,
    pub fault_point: Option<PointIndex>,
    pub normal: Option<bool>,
    /// Effective alarm settings (defaults merged, guardrails checked). Shared: points
    /// with the same settings hold one copy (at 50,000 points 144 bytes each were a
    /// third of the compiled site); a threshold change gives the point its own.
    pub alarms: Arc<crate::model::alarm::AlarmSettings>,
}

// Kept once per point: at 50,000 points each byte is 50 kB of the gateway's memory.
const _: () = assert!(size_of::<Point>() <= 216);

impl Point {
    /// The range outside which a reading is out of range (`valid_range`), if set.
    pub fn valid_range(&self) -> Option<[f64; 2]> {
        self.valid.as_deref().copied()
    }

    /// The point's engineering span: its valid range, else the range its scaling maps
    /// onto (none for a linear scaling without a valid range).
    pub fn span(&self) -> Option<[f64; 2]> {
        self.valid_range().or(self.scaling.eng_range())
    }

    /// (channel index, device index within the channel), to index [`Site::channels`].
    pub fn device_at(&self) -> (usize, usize) {
        (self.device.0 as usize, self.device.1 as usize)
    }

    pub fn is_discrete(&self) -> bool {
        self.register.data_type == DataType::Bool
    }
}
