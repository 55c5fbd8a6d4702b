//! The history's chunk encoding (pure): a commit window's readings, columnar per point,
//! then compressed with LZ4.
//!
//! Why this shape: a gateway's readings are a few thousand points, each changing in
//! small steps from register values scaled by a decimal factor (292 × 0.1). Grouping a
//! window's readings by point makes neighbours alike; times go as deltas; a value
//! that is a short decimal (it is, nearly always) goes as the change of its scaled
//! integer — one or two bytes — and any other number as the XOR of its bits with the
//! point's previous value. Every value comes back bit for bit (the replay of `hazgate
//! tune` judges what was judged), which the property tests below hold to.
//!
//! Layout before compression (varints LEB128, signed ones zigzag):
//! `version u8 · base_ts svarint · groups varint ·` per group `point varint · count
//! varint ·` per reading `ts delta svarint · tag u8 · [exception u8] · [value]`.
//! Tag: bits 0–2 quality, 3–4 range, 5–7 value form (none, false, true, decimal
//! with a new scale, decimal with the scale before, raw bits XOR).

use crate::{
    model::PointIndex,
    reading::{Quality, RangeFlag, Raw, Reading, Timestamp, Value},
};

const VERSION: u8 = 1;

/// Why a chunk could not be read back (a torn or damaged file).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChunkError {
    #[error("the chunk does not decompress: {0}")]
    Compression(String),
    #[error("the chunk is version {0}; this build reads version {VERSION}")]
    Version(u8),
    #[error("the chunk ends inside a reading")]
    Truncated,
    #[error("the chunk holds a value form or quality that does not exist ({0})")]
    Invalid(u8),
}

/// Value forms (tag bits 5–7).
const NONE: u8 = 0;
const FALSE: u8 = 1;
const TRUE: u8 = 2;
const DECIMAL_NEW: u8 = 3;
const DECIMAL_SAME: u8 = 4;
const BITS: u8 = 5;

/// The largest scale tried: 10⁻⁶ is finer than any sensor's resolution.
const MAX_SCALE: u8 = 6;

/// Encodes readings (any order) into one compressed chunk.
pub fn encode(readings: &[Reading]) -> Vec<u8> {
    let sorted = by_point(readings);
    let base = readings.iter().map(|r| r.ts.0).min().unwrap_or(0);
    let mut out = Vec::with_capacity(readings.len() * 6 + 16);
    out.push(VERSION);
    svarint(&mut out, base);
    let groups: Vec<&[&Reading]> = sorted.chunk_by(|a, b| a.point == b.point).collect();
    varint(&mut out, groups.len() as u64);
    for group in groups {
        varint(&mut out, u64::from(group[0].point.0));
        varint(&mut out, group.len() as u64);
        let mut prev = Prev {
            ts: base,
            ..Prev::default()
        };
        for r in group {
            prev.put(&mut out, r);
        }
    }
    lz4_flex::compress_prepend_size(&out)
}

/// The readings grouped by point (ascending), each point's in time order: a counting
/// sort — readings arrive in time order per point, so most windows need no more.
fn by_point(readings: &[Reading]) -> Vec<&Reading> {
    let points = readings
        .iter()
        .map(|r| r.point.get() + 1)
        .max()
        .unwrap_or(0);
    // Sparse indices (a damaged chunk packed again): no table of them, a sort.
    if points > 4 * readings.len() + 1024 {
        let mut out: Vec<&Reading> = readings.iter().collect();
        out.sort_by_key(|r| (r.point.0, r.ts.0));
        return out;
    }
    let mut start = vec![0usize; points + 1];
    for r in readings {
        start[r.point.get() + 1] += 1;
    }
    for i in 1..start.len() {
        start[i] += start[i - 1];
    }
    let mut out: Vec<Option<&Reading>> = vec![None; readings.len()];
    for r in readings {
        let slot = &mut start[r.point.get()];
        out[*slot] = Some(r);
        *slot += 1;
    }
    let mut out: Vec<&Reading> = out.into_iter().flatten().collect();
    // Within a point, time order (a no-op when they came in order).
    for group in out.chunk_by_mut(|a, b| a.point == b.point) {
        if !group.is_sorted_by_key(|r| r.ts.0) {
            group.sort_by_key(|r| r.ts.0);
        }
    }
    out
}

/// Decodes a chunk written by [`encode`]: readings by point, then time.
pub fn decode(chunk: &[u8]) -> Result<Vec<Reading>, ChunkError> {
    let raw = unpack(chunk)?;
    let mut c = Cursor { b: &raw, at: 0 };
    let version = c.byte()?;
    if version != VERSION {
        return Err(ChunkError::Version(version));
    }
    let base = c.svarint()?;
    let groups = c.varint()?;
    let mut out = Vec::new();
    for _ in 0..groups {
        let point = u32::try_from(c.varint()?).map_err(|_| ChunkError::Invalid(0))?;
        let count = c.varint()?;
        let mut prev = Prev {
            ts: base,
            ..Prev::default()
        };
        for _ in 0..count {
            out.push(prev.get(&mut c, PointIndex(point))?);
        }
    }
    Ok(out)
}

/// The largest chunk unpacked: a commit window's readings are far less. A damaged
/// size prefix must not make a reader allocate gigabytes (found by fuzzing).
const MAX_UNPACKED: usize = 64 << 20;

/// LZ4 with its size prepended, the size checked before anything is allocated: LZ4
/// expands at most 255-fold.
pub fn unpack(packed: &[u8]) -> Result<Vec<u8>, ChunkError> {
    let (size, body) = packed
        .split_first_chunk::<4>()
        .ok_or(ChunkError::Truncated)?;
    let size = u32::from_le_bytes(*size) as usize;
    if size > MAX_UNPACKED || size > body.len().saturating_mul(255) + 16 {
        return Err(ChunkError::Compression(format!(
            "a size of {size} bytes it cannot have"
        )));
    }
    lz4_flex::decompress(body, size).map_err(|e| ChunkError::Compression(e.to_string()))
}

/// What the previous reading of the point was: the base of the next one's deltas.
#[derive(Default)]
struct Prev {
    ts: i64,
    scale: u8,
    scaled: i64,
    bits: u64,
}

impl Prev {
    fn put(&mut self, out: &mut Vec<u8>, r: &Reading) {
        // Wrapping both ways: any two times round-trip, however far apart.
        svarint(out, r.ts.0.wrapping_sub(self.ts));
        self.ts = r.ts.0;
        let (quality, exception) = quality_code(r.quality);
        let range = match r.range {
            RangeFlag::Within => 0,
            RangeFlag::Over => 1,
            RangeFlag::Under => 2,
        };
        let form_at = out.len();
        out.push(quality | range << 3);
        if let Some(code) = exception {
            out.push(code);
        }
        let form = match r.value {
            None => NONE,
            Some(Value::Discrete(false)) => FALSE,
            Some(Value::Discrete(true)) => TRUE,
            Some(Value::Analog(v)) => self.put_analog(out, v),
        };
        out[form_at] |= form << 5;
    }

    fn put_analog(&mut self, out: &mut Vec<u8>, v: f64) -> u8 {
        // A point keeps its scale: try it first, before searching.
        let same = decimal_at(v, self.scale).map(|n| (self.scale, n));
        if let Some((scale, scaled)) = same.or_else(|| decimal(v)) {
            let form = if scale == self.scale {
                DECIMAL_SAME
            } else {
                out.push(scale);
                DECIMAL_NEW
            };
            svarint(out, scaled.wrapping_sub(self.scaled));
            self.scale = scale;
            self.scaled = scaled;
            self.bits = v.to_bits();
            return form;
        }
        varint(out, v.to_bits() ^ self.bits);
        self.bits = v.to_bits();
        BITS
    }

    fn get(&mut self, c: &mut Cursor<'_>, point: PointIndex) -> Result<Reading, ChunkError> {
        self.ts = self.ts.wrapping_add(c.svarint()?);
        let tag = c.byte()?;
        let quality = match tag & 7 {
            0 => Quality::Good,
            1 => Quality::CommFailure,
            2 => Quality::DeviceException(c.byte()?),
            3 => Quality::SensorFault,
            4 => Quality::Stale,
            q => return Err(ChunkError::Invalid(q)),
        };
        let range = match (tag >> 3) & 3 {
            0 => RangeFlag::Within,
            1 => RangeFlag::Over,
            2 => RangeFlag::Under,
            r => return Err(ChunkError::Invalid(r)),
        };
        let value = match tag >> 5 {
            NONE => None,
            FALSE => Some(Value::Discrete(false)),
            TRUE => Some(Value::Discrete(true)),
            form @ (DECIMAL_NEW | DECIMAL_SAME) => {
                if form == DECIMAL_NEW {
                    self.scale = c.byte()?;
                    if !valid_scale(self.scale) {
                        return Err(ChunkError::Invalid(self.scale));
                    }
                }
                self.scaled = self.scaled.wrapping_add(c.svarint()?);
                let v = undecimal(self.scale, self.scaled);
                self.bits = v.to_bits();
                Some(Value::Analog(v))
            }
            BITS => {
                self.bits ^= c.varint()?;
                Some(Value::Analog(f64::from_bits(self.bits)))
            }
            form => return Err(ChunkError::Invalid(form)),
        };
        Ok(Reading {
            point,
            value,
            quality,
            ts: Timestamp(self.ts),
            raw: Raw::None,
            range,
        })
    }
}

/// `v` as a short decimal — (scale, n) — when that gives `v` back bit for bit: `n /
/// 10^k` (scale `k`), or `n × 10^-k` (scale `k + 8`: how a gateway scales a register,
/// 292 × 0.1 = 29.200000000000003).
fn decimal(v: f64) -> Option<(u8, i64)> {
    (0..=MAX_SCALE).find_map(|k| {
        let scaled = (v * 10f64.powi(i32::from(k))).round();
        // Within ±2⁵³ an integer is exact in an f64.
        if scaled.abs() >= 9.0e15 {
            return None;
        }
        let n = scaled as i64;
        [k, k + 8]
            .into_iter()
            .find(|&scale| undecimal(scale, n).to_bits() == v.to_bits())
            .map(|scale| (scale, n))
    })
}

/// `v` as `n` at `scale`, when that gives it back bit for bit.
fn decimal_at(v: f64, scale: u8) -> Option<i64> {
    let k = if scale < 8 { scale } else { scale - 8 };
    let scaled = (v * 10f64.powi(i32::from(k))).round();
    (scaled.abs() < 9.0e15 && undecimal(scale, scaled as i64).to_bits() == v.to_bits())
        .then_some(scaled as i64)
}

/// What [`decimal`]'s (scale, n) stands for.
fn undecimal(scale: u8, n: i64) -> f64 {
    const INVERSE: [f64; 7] = [1.0, 0.1, 0.01, 0.001, 0.0001, 0.00001, 0.000001];
    if scale < 8 {
        n as f64 / 10f64.powi(i32::from(scale))
    } else {
        n as f64 * INVERSE[usize::from(scale - 8)]
    }
}

fn valid_scale(scale: u8) -> bool {
    scale <= MAX_SCALE || (8..=8 + MAX_SCALE).contains(&scale)
}

fn quality_code(q: Quality) -> (u8, Option<u8>) {
    match q {
        Quality::Good => (0, None),
        Quality::CommFailure => (1, None),
        Quality::DeviceException(code) => (2, Some(code)),
        Quality::SensorFault => (3, None),
        Quality::Stale => (4, None),
    }
}

fn varint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

fn svarint(out: &mut Vec<u8>, n: i64) {
    varint(out, ((n << 1) ^ (n >> 63)) as u64);
}

struct Cursor<'a> {
    b: &'a [u8],
    at: usize,
}

impl Cursor<'_> {
    fn byte(&mut self) -> Result<u8, ChunkError> {
        let b = *self.b.get(self.at).ok_or(ChunkError::Truncated)?;
        self.at += 1;
        Ok(b)
    }

    fn varint(&mut self) -> Result<u64, ChunkError> {
        let mut n = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            n |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return Ok(n);
            }
        }
        Err(ChunkError::Invalid(0x80))
    }

    fn svarint(&mut self) -> Result<i64, ChunkError> {
        let n = self.varint()?;
        Ok((n >> 1) as i64 ^ -((n & 1) as i64))
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn value() -> impl Strategy<Value = Option<Value>> {
        prop_oneof![
            Just(None),
            any::<bool>().prop_map(|b| Some(Value::Discrete(b))),
            // Register values scaled by decimals, and any finite number at all.
            (-100_000i64..100_000, 0u32..4)
                .prop_map(|(n, s)| Some(Value::Analog(n as f64 / 10f64.powi(s as i32)))),
            (
                -100_000i64..100_000,
                prop::sample::select(vec![1.0, 0.1, 0.01, 0.001])
            )
                .prop_map(|(n, f)| Some(Value::Analog(n as f64 * f))),
            any::<f64>()
                .prop_filter("finite", |v| v.is_finite())
                .prop_map(|v| Some(Value::Analog(v))),
        ]
    }

    fn reading() -> impl Strategy<Value = Reading> {
        let quality = prop_oneof![
            Just(Quality::Good),
            Just(Quality::CommFailure),
            any::<u8>().prop_map(Quality::DeviceException),
            Just(Quality::SensorFault),
            Just(Quality::Stale),
        ];
        let range = prop_oneof![
            Just(RangeFlag::Within),
            Just(RangeFlag::Over),
            Just(RangeFlag::Under)
        ];
        (
            0u32..20,
            1_700_000_000_000i64..1_700_000_600_000,
            value(),
            quality,
            range,
        )
            .prop_map(|(p, ts, value, quality, range)| Reading {
                point: PointIndex(p),
                value,
                quality,
                ts: Timestamp(ts),
                raw: Raw::None,
                range,
            })
    }

    /// What a reading is, for comparison: bit-exact values.
    fn key(r: &Reading) -> (u32, i64, Option<u64>, Option<bool>, String, String) {
        let (bits, discrete) = match r.value {
            Some(Value::Analog(v)) => (Some(v.to_bits()), None),
            Some(Value::Discrete(b)) => (None, Some(b)),
            None => (None, None),
        };
        (
            r.point.0,
            r.ts.0,
            bits,
            discrete,
            format!("{:?}", r.quality),
            format!("{:?}", r.range),
        )
    }

    proptest! {
        /// Every reading comes back, bit for bit, in point-then-time order.
        #[test]
        fn a_chunk_gives_back_every_reading_bit_for_bit(readings in prop::collection::vec(reading(), 0..300)) {
            let mut want: Vec<_> = readings.iter().map(key).collect();
            want.sort_by_key(|k| (k.0, k.1));
            let got: Vec<_> = decode(&encode(&readings)).unwrap().iter().map(key).collect();
            // Readings of one point at one time keep their order among themselves.
            let mut got_sorted = got.clone();
            got_sorted.sort_by_key(|k| (k.0, k.1));
            prop_assert_eq!(&got, &got_sorted);
            let mut want_all = want.clone();
            want_all.sort();
            let mut got_all = got;
            got_all.sort();
            prop_assert_eq!(got_all, want_all);
        }

        /// A damaged chunk is an error, never a panic.
        #[test]
        fn a_damaged_chunk_is_an_error(readings in prop::collection::vec(reading(), 1..50), cut in any::<prop::sample::Index>(), flip in any::<u8>()) {
            let mut c = encode(&readings);
            let i = cut.index(c.len());
            c[i] ^= flip | 1;
            let _ = decode(&c);
            let _ = decode(&c[..i]);
        }
    }

    /// A scaled register value takes a byte or two: the budget of ≤ 12 bytes a stored
    /// reading is kept with room to spare.
    #[test]
    fn register_values_take_a_few_bytes_each() {
        let readings: Vec<Reading> = (0..1000)
            .map(|i| Reading {
                point: PointIndex(i % 100),
                value: Some(Value::Analog(f64::from(200 + (i * 7919) % 13) * 0.1)),
                quality: Quality::Good,
                ts: Timestamp(1_700_000_000_000 + i64::from(i / 100) * 1000),
                raw: Raw::None,
                range: RangeFlag::Within,
            })
            .collect();
        let n = encode(&readings).len();
        assert!(n < 4 * 1000, "{n} bytes for 1000 readings");
    }
}
