//! The history's chunk encoding (pure): a commit window's readings in the order they
//! came, in runs of consecutive points at one time, each value against its point's
//! previous one, then compressed with LZ4.
//!
//! Why this shape: a gateway's readings are a few thousand points, each changing in
//! small steps from register values scaled by a decimal factor (292 × 0.1), arriving a
//! device's block at a time — consecutive points at one time. So a block's readings go
//! as one run, its first point and its time once, and a value that is a short
//! decimal (it is, nearly always) as the change of its scaled integer from the point's
//! previous value — one or two bytes; a value read as a 32-bit float (a transmitter's
//! IEEE register, rarely a short decimal) as the change of its f32 bits, which for a
//! value moving a little is a small integer — two or three bytes where its f64 bits
//! took nine; any other number as the XOR of its bits with the point's previous
//! value. Every value comes back bit for bit (the replay of `hazgate tune` judges what
//! was judged), which the property tests below hold to.
//!
//! Packed in arrival order, a chunk is written as the readings come, straight into one
//! buffer: the running gateway never holds a window of readings nor sorts one. (Version
//! 1 grouped a window by point; packing it cost the history's thread more than all the
//! rest, most of it waiting on memory for each point's column. It is still read.)
//!
//! Layout before compression (varints LEB128, signed ones zigzag), versions 2 and 3
//! (3 adds the f32 form):
//! `version u8 · base_ts svarint ·` then runs to the end — consecutive points at one
//! time: `first point svarint (from the previous run's last + 1) · ts svarint (from
//! the previous run's, the first from base_ts) · count u16 ·` per reading `tag u8 ·
//! [exception u8] · [value]`. Version 1: `version u8 ·
//! base_ts svarint · groups varint ·` per group `point varint · count varint ·` per
//! reading `ts delta svarint · tag u8 · [exception u8] · [value]`.
//! Tag: bits 0–2 quality, 3–4 range, 5–7 value form (none, false, true, decimal
//! with a new scale, decimal with the scale before, raw bits XOR, f32 bits delta).

use crate::{
    model::PointIndex,
    reading::{Quality, RangeFlag, Raw, Reading, Timestamp, Value},
};

/// The version written; [`V2`] and [`V1`] are still read.
const VERSION: u8 = 3;
const V2: u8 = 2;
const V1: u8 = 1;
/// Points below this index have their state in a table (a gateway's site is far
/// smaller); any other in a map: a damaged chunk read back and packed again may name
/// any point, and must not make a table of billions.
const DENSE: usize = 1 << 20;

/// Per-point state, indexed by point.
#[derive(Default)]
struct PerPoint<T> {
    dense: Vec<T>,
    sparse: std::collections::HashMap<u32, T>,
}

impl<T: Default> PerPoint<T> {
    fn get_mut(&mut self, point: u32) -> &mut T {
        let i = point as usize;
        if i >= DENSE {
            return self.sparse.entry(point).or_default();
        }
        if i >= self.dense.len() {
            self.dense.resize_with(i + 1, T::default);
        }
        &mut self.dense[i]
    }
}

/// Why a chunk could not be read back (a torn or damaged file).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChunkError {
    #[error("the chunk does not decompress: {0}")]
    Compression(String),
    #[error("the chunk is version {0}; this build reads versions {V1} to {VERSION}")]
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
const F32: u8 = 6;

/// `Last::scale` after an f32 value: no decimal scale, so the next decimal says its
/// scale, and the f32 form is tried first.
const F32_MODE: u8 = 0xFF;

/// The largest scale tried: 10⁻⁶ is finer than any sensor's resolution.
const MAX_SCALE: u8 = 6;

/// Encodes readings (any order) into one compressed chunk, in time order.
pub fn encode(readings: &[Reading]) -> Vec<u8> {
    build(readings).finish().map_or_else(
        // No readings: the version and a base time of 0.
        || lz4_flex::compress_prepend_size(&[VERSION, 0]),
        |c| c.bytes.to_vec(),
    )
}

/// A builder holding `readings` (any order), in time order.
pub fn build(readings: &[Reading]) -> ChunkBuilder {
    let mut order: Vec<&Reading> = readings.iter().collect();
    // Stable: readings of one time keep their order.
    if !order.is_sorted_by_key(|r| r.ts.0) {
        order.sort_by_key(|r| r.ts.0);
    }
    let mut chunk = ChunkBuilder::default();
    for r in order {
        chunk.push(r);
    }
    chunk
}

/// A chunk packed a reading at a time, as the readings arrive, into one buffer kept
/// from one window to the next (with the compressed one): a steady gateway allocates
/// nothing for its history.
#[derive(Default)]
pub struct ChunkBuilder {
    raw: Vec<u8>,
    packed: Vec<u8>,
    points: PerPoint<Slot>,
    /// This chunk's number: a slot of another is as good as new.
    chunk: u32,
    /// The last reading's point, and the open run's time, length and where its length
    /// goes.
    point: i64,
    ts: i64,
    run_len: u16,
    run_at: usize,
    first: i64,
    last: i64,
    readings: usize,
}

/// A point's state in the builder.
#[derive(Default, Clone, Copy)]
struct Slot {
    chunk: u32,
    /// The scale the point had last, in any chunk: tried first for its first value of
    /// a chunk, which saves the search.
    hint: u8,
    last: Last,
}

/// A finished chunk, with its span of time.
pub struct Chunk<'a> {
    pub bytes: &'a [u8],
    pub first: i64,
    pub last: i64,
    pub readings: usize,
}

impl ChunkBuilder {
    /// Adds `r` after every reading already added.
    pub fn push(&mut self, r: &Reading) {
        let point = i64::from(r.point.0);
        if self.readings == 0 {
            self.raw.clear();
            self.raw.push(VERSION);
            svarint(&mut self.raw, r.ts.0);
            (self.point, self.ts, self.first, self.last) = (-1, r.ts.0, r.ts.0, r.ts.0);
            self.run_len = 0;
            self.chunk = self.chunk.wrapping_add(1);
        }
        self.first = self.first.min(r.ts.0);
        self.last = self.last.max(r.ts.0);
        self.readings += 1;
        // The next point at the same time goes on the run; anything else begins one.
        if self.run_len == 0
            || self.run_len == u16::MAX
            || point != self.point + 1
            || r.ts.0 != self.ts
        {
            self.close_run();
            svarint(&mut self.raw, point - (self.point + 1));
            svarint(&mut self.raw, r.ts.0.wrapping_sub(self.ts));
            self.run_at = self.raw.len();
            self.raw.extend_from_slice(&[0, 0]);
            self.ts = r.ts.0;
        }
        self.run_len += 1;
        self.point = point;
        let slot = self.points.get_mut(r.point.0);
        if slot.chunk != self.chunk {
            (slot.chunk, slot.last) = (self.chunk, Last::default());
        }
        slot.last.put(&mut self.raw, r, slot.hint);
        slot.hint = slot.last.scale;
    }

    /// Writes the open run's length in the place kept for it.
    fn close_run(&mut self) {
        if self.run_len > 0 {
            self.raw[self.run_at..self.run_at + 2].copy_from_slice(&self.run_len.to_le_bytes());
            self.run_len = 0;
        }
    }

    pub fn is_empty(&self) -> bool {
        self.readings == 0
    }

    /// The window's chunk (None if it holds nothing); the builder is empty again.
    pub fn finish(&mut self) -> Option<Chunk<'_>> {
        if self.readings == 0 {
            return None;
        }
        self.close_run();
        let bound = lz4_flex::block::get_maximum_output_size(self.raw.len());
        self.packed.clear();
        self.packed.resize(4 + bound, 0);
        let size = u32::try_from(self.raw.len())
            .unwrap_or(u32::MAX)
            .to_le_bytes();
        self.packed[..4].copy_from_slice(&size);
        // The output has the bound's room: compressing cannot fail.
        let n = lz4_flex::block::compress_into(&self.raw, &mut self.packed[4..]).unwrap_or(0);
        self.packed.truncate(4 + n);
        let readings = std::mem::take(&mut self.readings);
        Some(Chunk {
            bytes: &self.packed,
            first: self.first,
            last: self.last,
            readings,
        })
    }
}

/// Decodes a chunk written by [`encode`] or a [`ChunkBuilder`] (in the order written),
/// or one of version 1 (by point, then time).
pub fn decode(chunk: &[u8]) -> Result<Vec<Reading>, ChunkError> {
    let raw = unpack(chunk)?;
    let mut c = Cursor { b: &raw, at: 0 };
    let version = c.byte()?;
    let base = c.svarint()?;
    match version {
        V2 | VERSION => decode_stream(&mut c, base),
        V1 => decode_groups(&mut c, base),
        v => Err(ChunkError::Version(v)),
    }
}

fn decode_stream(c: &mut Cursor<'_>, base: i64) -> Result<Vec<Reading>, ChunkError> {
    let mut out = Vec::new();
    let mut last: PerPoint<Last> = PerPoint::default();
    let (mut next, mut ts) = (0i64, base);
    while c.at < c.b.len() {
        let start = next.wrapping_add(c.svarint()?);
        ts = ts.wrapping_add(c.svarint()?);
        let len = i64::from(u16::from_le_bytes([c.byte()?, c.byte()?]));
        let end = start
            .checked_add(len)
            .filter(|&e| start >= 0 && e <= i64::from(u32::MAX) + 1)
            .ok_or(ChunkError::Invalid(0))?;
        for point in start..end {
            // Within u32: checked above.
            let point = point as u32;
            last.get_mut(point)
                .get(c, PointIndex(point), ts, &mut out)?;
        }
        next = end;
    }
    Ok(out)
}

fn decode_groups(c: &mut Cursor<'_>, base: i64) -> Result<Vec<Reading>, ChunkError> {
    let groups = c.varint()?;
    let mut out = Vec::new();
    for _ in 0..groups {
        let point = u32::try_from(c.varint()?).map_err(|_| ChunkError::Invalid(0))?;
        let count = c.varint()?;
        let (mut ts, mut last) = (base, Last::default());
        for _ in 0..count {
            ts = ts.wrapping_add(c.svarint()?);
            last.get(c, PointIndex(point), ts, &mut out)?;
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

/// The point's previous value: the base of the next one's.
#[derive(Default, Clone, Copy)]
struct Last {
    scale: u8,
    /// The last f32 value's bits (kept apart: the f64 bits of a NaN need not give
    /// them back).
    f32_bits: u32,
    scaled: i64,
    bits: u64,
}

impl Last {
    /// `r`'s tag, exception code and value (its point and time go before); `hint` is a
    /// scale to try if the last one does not fit.
    fn put(&mut self, out: &mut Vec<u8>, r: &Reading, hint: u8) {
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
            Some(Value::Analog(v)) => self.put_analog(out, v, hint),
        };
        out[form_at] |= form << 5;
    }

    fn put_analog(&mut self, out: &mut Vec<u8>, v: f64, hint: u8) -> u8 {
        let single = v as f32;
        let is_f32 = f64::from(single).to_bits() == v.to_bits();
        // An f32 point stays one: no decimal search for it.
        if is_f32 && (self.scale == F32_MODE || hint == F32_MODE) {
            return self.put_f32(out, v, single);
        }
        // A point keeps its scale: try it (the hint, the scale it had last in any
        // chunk, first) before searching.
        let at = |scale| decimal_at(v, scale).map(|n| (scale, n));
        let found = at(hint).or_else(|| (hint != self.scale).then(|| at(self.scale)).flatten());
        if found.is_none() && is_f32 {
            return self.put_f32(out, v, single);
        }
        if let Some((scale, scaled)) = found.or_else(|| decimal(v)) {
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

    /// `v`, exactly `single`, as the change of its f32 bits: for a value of one sign
    /// and magnitude, a change in value is a small change in bits.
    fn put_f32(&mut self, out: &mut Vec<u8>, v: f64, single: f32) -> u8 {
        let bits = single.to_bits();
        svarint(out, i64::from(bits.wrapping_sub(self.f32_bits) as i32));
        (self.f32_bits, self.bits, self.scale) = (bits, v.to_bits(), F32_MODE);
        F32
    }

    /// Reads a reading of `point` at `ts` onto `out`. (Pushed here rather than
    /// returned: a returned `Result<Reading>` went through memory and stalled on it,
    /// four fifths of the decoding by `perf annotate`.)
    fn get(
        &mut self,
        c: &mut Cursor<'_>,
        point: PointIndex,
        ts: i64,
        out: &mut Vec<Reading>,
    ) -> Result<(), ChunkError> {
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
                }
                // Also the same scale after an f32 value, which has none.
                if !valid_scale(self.scale) {
                    return Err(ChunkError::Invalid(self.scale));
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
            F32 => {
                let delta = i32::try_from(c.svarint()?).map_err(|_| ChunkError::Invalid(F32))?;
                self.f32_bits = self.f32_bits.wrapping_add(delta as u32);
                self.scale = F32_MODE;
                let v = f64::from(f32::from_bits(self.f32_bits));
                self.bits = v.to_bits();
                Some(Value::Analog(v))
            }
            form => return Err(ChunkError::Invalid(form)),
        };
        out.push(Reading {
            point,
            value,
            quality,
            ts: Timestamp(ts),
            raw: Raw::None,
            range,
        });
        Ok(())
    }
}

/// `v` as a short decimal — (scale, n) — when that gives `v` back bit for bit: `n /
/// 10^k` (scale `k`), or `n × 10^-k` (scale `k + 8`: how a gateway scales a register,
/// 292 × 0.1 = 29.200000000000003).
fn decimal(v: f64) -> Option<(u8, i64)> {
    (0..=MAX_SCALE).find_map(|k| {
        let n = round(v * POW10[usize::from(k)])?;
        [k, k + 8]
            .into_iter()
            .find(|&scale| undecimal(scale, n).to_bits() == v.to_bits())
            .map(|scale| (scale, n))
    })
}

/// `v` as `n` at `scale`, when that gives it back bit for bit; never at what is no
/// scale ([`F32_MODE`]).
#[inline]
fn decimal_at(v: f64, scale: u8) -> Option<i64> {
    let k = if scale < 8 { scale } else { scale - 8 };
    let n = round(v * *POW10.get(usize::from(k))?)?;
    (undecimal(scale, n).to_bits() == v.to_bits()).then_some(n)
}

/// `x` to the nearest integer (halves away from zero) while it is one an f64 holds
/// exactly (within ±2⁵³), without `f64::round`: that is a call into libm on a
/// baseline x86-64 and was a tenth of the history's time. What is found is checked bit
/// for bit against the value anyway.
fn round(x: f64) -> Option<i64> {
    // Also NaN: it compares with nothing.
    if x.abs().partial_cmp(&9.0e15) != Some(std::cmp::Ordering::Less) {
        return None;
    }
    let t = x as i64;
    // Exact: below 2⁵³ the fraction of an f64 is an f64.
    let frac = x - t as f64;
    Some(if frac >= 0.5 {
        t + 1
    } else if frac <= -0.5 {
        t - 1
    } else {
        t
    })
}

/// 10^k for the scales tried: exact in an f64, so the same bits as `10f64.powi(k)`
/// without computing it for every reading.
const POW10: [f64; MAX_SCALE as usize + 1] = [1.0, 10.0, 100.0, 1e3, 1e4, 1e5, 1e6];

/// What [`decimal`]'s (scale, n) stands for.
fn undecimal(scale: u8, n: i64) -> f64 {
    const INVERSE: [f64; 7] = [1.0, 0.1, 0.01, 0.001, 0.0001, 0.00001, 0.000001];
    if scale < 8 {
        n as f64 / POW10[usize::from(scale)]
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
            // 32-bit float registers: any f32 (NaNs and infinities too), and one
            // moving a little.
            any::<f32>().prop_map(|v| Some(Value::Analog(f64::from(v)))),
            (-1000i32..1000)
                .prop_map(|d| Some(Value::Analog(f64::from(23.456_f32 + d as f32 * 0.013)))),
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

    /// What a gateway hands over: blocks of consecutive points read at one time, and
    /// readings on their own.
    fn window() -> impl Strategy<Value = Vec<Reading>> {
        let block = (reading(), 1u32..40, prop::collection::vec(value(), 40)).prop_map(
            |(first, len, values)| {
                (0..len)
                    .map(|k| Reading {
                        point: PointIndex(first.point.0 + k),
                        value: values[k as usize],
                        ..first
                    })
                    .collect::<Vec<_>>()
            },
        );
        let part = prop_oneof![block, reading().prop_map(|r| vec![r])];
        prop::collection::vec(part, 0..12).prop_map(|parts| parts.concat())
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

    /// Version 1 as it was written: grouped by point, each point's in time order.
    fn encode_v1(readings: &[Reading]) -> Vec<u8> {
        let mut sorted: Vec<&Reading> = readings.iter().collect();
        sorted.sort_by_key(|r| (r.point.0, r.ts.0));
        let base = readings.iter().map(|r| r.ts.0).min().unwrap_or(0);
        let mut out = vec![V1];
        svarint(&mut out, base);
        let groups: Vec<&[&Reading]> = sorted.chunk_by(|a, b| a.point == b.point).collect();
        varint(&mut out, groups.len() as u64);
        for group in groups {
            varint(&mut out, u64::from(group[0].point.0));
            varint(&mut out, group.len() as u64);
            let (mut ts, mut last) = (base, Last::default());
            for r in group {
                svarint(&mut out, r.ts.0.wrapping_sub(ts));
                ts = r.ts.0;
                last.put(&mut out, r, 0);
            }
        }
        lz4_flex::compress_prepend_size(&out)
    }

    proptest! {
        /// Every reading comes back, bit for bit, in time order (those of one time in
        /// the order given).
        #[test]
        fn a_chunk_gives_back_every_reading_bit_for_bit(readings in prop::collection::vec(reading(), 0..300)) {
            let mut want: Vec<_> = readings.iter().map(key).collect();
            want.sort_by_key(|k| k.1);
            let got: Vec<_> = decode(&encode(&readings)).unwrap().iter().map(key).collect();
            prop_assert_eq!(got, want);
        }

        /// A chunk of version 1 (grouped by point) written before still reads back.
        #[test]
        fn a_version_1_chunk_still_reads_back(readings in prop::collection::vec(reading(), 0..300)) {
            let mut want: Vec<_> = readings.iter().map(key).collect();
            want.sort_by_key(|k| (k.0, k.1));
            let got: Vec<_> = decode(&encode_v1(&readings)).unwrap().iter().map(key).collect();
            prop_assert_eq!(got, want);
        }

        /// Packed as they arrive, window after window by one builder (its buffers
        /// and points kept): each window's readings come back bit for bit, in the
        /// order they came, with the window's span of time.
        #[test]
        fn a_builder_gives_back_each_window(windows in prop::collection::vec(window(), 1..5)) {
            let mut b = ChunkBuilder::default();
            for w in &windows {
                for r in w {
                    b.push(r);
                }
                let Some(c) = b.finish() else {
                    prop_assert!(w.is_empty());
                    continue;
                };
                prop_assert_eq!(c.readings, w.len());
                let (first, last) = (w.iter().map(|r| r.ts.0).min(), w.iter().map(|r| r.ts.0).max());
                prop_assert_eq!((Some(c.first), Some(c.last)), (first, last));
                let want: Vec<_> = w.iter().map(key).collect();
                let got: Vec<_> = decode(c.bytes).unwrap().iter().map(key).collect();
                prop_assert_eq!(got, want);
            }
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

    /// A run holds at most 65,535 readings: a longer block goes on in the next run.
    #[test]
    fn a_block_longer_than_a_run_reads_back() {
        let readings: Vec<Reading> = (0..70_000)
            .map(|i| Reading {
                point: PointIndex(i),
                value: Some(Value::Analog(f64::from(i % 1000) * 0.1)),
                quality: Quality::Good,
                ts: Timestamp(1_700_000_000_000),
                raw: Raw::None,
                range: RangeFlag::Within,
            })
            .collect();
        let got = decode(&encode(&readings)).unwrap();
        assert_eq!(got.len(), readings.len());
        assert!(got.iter().zip(&readings).all(|(a, b)| a.point == b.point
            && a.value.map(|v| v.as_f64().to_bits()) == b.value.map(|v| v.as_f64().to_bits())));
    }

    /// The next number of a fixed pseudo-random sequence (Knuth's MMIX LCG).
    fn next(x: &mut u64) -> u64 {
        *x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        *x
    }

    /// The hand-made rounding is `f64::round` wherever it answers.
    #[test]
    fn rounding_is_f64_round() {
        let mut x = 1u64;
        for i in 0..200_000 {
            next(&mut x);
            let v = match i % 4 {
                0 => f64::from_bits(x),
                1 => (x >> 11) as f64 / 1024.0 - 4.0e12,
                2 => f64::from((x >> 40) as u32 % 100_000) / 2.0 - 20_000.0,
                _ => (x >> 12) as f64 * 0.1 - 1.0e14,
            };
            match round(v) {
                Some(n) => assert_eq!(n as f64, v.round(), "{v}"),
                None => assert!(v.is_nan() || v.abs() >= 9.0e15, "{v}"),
            }
        }
    }

    /// A chunk of version 2 (before the f32 form) still reads back.
    #[test]
    fn a_version_2_chunk_still_reads_back() {
        let readings: Vec<Reading> = (0..500)
            .map(|i| Reading {
                point: PointIndex(i % 50),
                // Tenths ending in 1: never an f32, so no f32 form is written.
                value: Some(Value::Analog(f64::from(2001 + 10 * i) * 0.1)),
                quality: Quality::Good,
                ts: Timestamp(1_700_000_000_000 + i64::from(i / 50) * 1000),
                raw: Raw::None,
                range: RangeFlag::Within,
            })
            .collect();
        let mut raw = unpack(&encode(&readings)).unwrap();
        assert_eq!(raw[0], VERSION);
        raw[0] = V2;
        let got = decode(&lz4_flex::compress_prepend_size(&raw)).unwrap();
        assert_eq!(
            got.iter().map(key).collect::<Vec<_>>(),
            readings.iter().map(key).collect::<Vec<_>>()
        );
    }

    /// A 32-bit float register moving a little takes about three bytes a reading (its
    /// f64 bits XORed took nine), and is never searched for a decimal.
    #[test]
    fn f32_values_take_a_few_bytes_each() {
        let mut x = 7u64;
        let readings: Vec<Reading> = (0..2000)
            .map(|i| {
                let noise = (next(&mut x) >> 40) as f32 / (1u64 << 24) as f32;
                Reading {
                    point: PointIndex(i % 100),
                    value: Some(Value::Analog(f64::from(41.7_f32 + noise))),
                    quality: Quality::Good,
                    ts: Timestamp(1_700_000_000_000 + i64::from(i / 100) * 1000),
                    raw: Raw::None,
                    range: RangeFlag::Within,
                }
            })
            .collect();
        let raw = unpack(&encode(&readings)).unwrap();
        assert!(
            raw.len() < 5 * 2000,
            "{} bytes for 2000 readings",
            raw.len()
        );
        assert_eq!(
            decode(&encode(&readings))
                .unwrap()
                .iter()
                .map(key)
                .collect::<Vec<_>>(),
            readings.iter().map(key).collect::<Vec<_>>()
        );
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
