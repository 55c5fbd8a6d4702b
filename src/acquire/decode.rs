//! Registers → numbers → engineering values with a quality.
//!
//! The decoder is total: any slice of words and any point spec give either a value or
//! a quality flag, never a panic. [`encode`] is its inverse, used by the simulator to
//! lay values into registers and by the property tests to check round trips.

use crate::{
    model::{DataType, Point, Scaling, WordOrder},
    reading::{Quality, RangeFlag, Raw, Reading, Timestamp, Value},
};

/// A decoded number before scaling, kept in its own domain so integers are exact.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Number {
    Unsigned(u64),
    Signed(i64),
    Float(f64),
}

impl Number {
    pub fn as_f64(self) -> f64 {
        match self {
            Self::Unsigned(u) => u as f64,
            Self::Signed(i) => i as f64,
            Self::Float(f) => f,
        }
    }

    /// The integer value, for matching vendor fault codes.
    fn as_code(self) -> Option<u64> {
        match self {
            Self::Unsigned(u) => Some(u),
            Self::Signed(i) => u64::try_from(i).ok(),
            Self::Float(_) => None,
        }
    }
}

/// Reassembles the big-endian bytes of a value from its registers in `order`.
/// Returns `None` when fewer words arrived than the type needs.
fn big_endian_bytes(words: &[u16], n: usize, order: WordOrder) -> Option<[u8; 8]> {
    let words = words.get(..n)?;
    let mut out = [0u8; 8];
    for (i, w) in words.iter().enumerate() {
        let slot = if order.swaps_words() { n - 1 - i } else { i };
        let [hi, lo] = w.to_be_bytes();
        let (a, b) = if order.swaps_bytes() {
            (lo, hi)
        } else {
            (hi, lo)
        };
        out[2 * slot] = a;
        out[2 * slot + 1] = b;
    }
    Some(out)
}

/// Decodes the number a point's registers hold. `None` if too few words arrived or the
/// type is `Bool` (bools are read by [`decode_bit`]).
pub fn decode_number(words: &[u16], data_type: DataType, order: WordOrder) -> Option<Number> {
    let n = usize::from(data_type.word_count());
    let b = big_endian_bytes(words, n, order)?;
    Some(match data_type {
        DataType::Bool => return None,
        DataType::U16 => Number::Unsigned(u16::from_be_bytes([b[0], b[1]]).into()),
        DataType::I16 => Number::Signed(i16::from_be_bytes([b[0], b[1]]).into()),
        DataType::U32 => Number::Unsigned(u32::from_be_bytes([b[0], b[1], b[2], b[3]]).into()),
        DataType::I32 => Number::Signed(i32::from_be_bytes([b[0], b[1], b[2], b[3]]).into()),
        DataType::F32 => Number::Float(f32::from_be_bytes([b[0], b[1], b[2], b[3]]).into()),
        DataType::U64 => Number::Unsigned(u64::from_be_bytes(b)),
        DataType::I64 => Number::Signed(i64::from_be_bytes(b)),
        DataType::F64 => Number::Float(f64::from_be_bytes(b)),
    })
}

/// A bit of a register, 0 = least significant.
pub fn decode_bit(word: u16, bit: u8) -> bool {
    bit < 16 && (word >> bit) & 1 == 1
}

/// Lays `number` into registers as a device using `data_type` and `order` would.
/// Out-of-range numbers saturate to the type (the simulator never needs more).
pub fn encode(number: Number, data_type: DataType, order: WordOrder) -> Vec<u16> {
    let be: [u8; 8] = match data_type {
        DataType::Bool => [0; 8],
        DataType::U16 => pad((clamp_u(number, u16::MAX.into()) as u16).to_be_bytes()),
        DataType::I16 => {
            pad((clamp_i(number, i16::MIN.into(), i16::MAX.into()) as i16).to_be_bytes())
        }
        DataType::U32 => pad((clamp_u(number, u32::MAX.into()) as u32).to_be_bytes()),
        DataType::I32 => {
            pad((clamp_i(number, i32::MIN.into(), i32::MAX.into()) as i32).to_be_bytes())
        }
        DataType::F32 => pad((number.as_f64() as f32).to_be_bytes()),
        DataType::U64 => clamp_u(number, u64::MAX).to_be_bytes(),
        DataType::I64 => clamp_i(number, i64::MIN, i64::MAX).to_be_bytes(),
        DataType::F64 => number.as_f64().to_be_bytes(),
    };
    let n = usize::from(data_type.word_count());
    let mut words = vec![0u16; n];
    for (slot, word) in words.iter_mut().enumerate() {
        let i = if order.swaps_words() {
            n - 1 - slot
        } else {
            slot
        };
        let (hi, lo) = (be[2 * i], be[2 * i + 1]);
        *word = if order.swaps_bytes() {
            u16::from_be_bytes([lo, hi])
        } else {
            u16::from_be_bytes([hi, lo])
        };
    }
    words
}

fn pad<const N: usize>(b: [u8; N]) -> [u8; 8] {
    let mut out = [0u8; 8];
    out[..N].copy_from_slice(&b);
    out
}

fn clamp_u(n: Number, max: u64) -> u64 {
    match n {
        Number::Unsigned(u) => u.min(max),
        Number::Signed(i) => (i.max(0) as u64).min(max),
        Number::Float(f) => {
            if f.is_nan() {
                0
            } else {
                f.round().clamp(0.0, max as f64) as u64
            }
        }
    }
}

fn clamp_i(n: Number, min: i64, max: i64) -> i64 {
    match n {
        Number::Unsigned(u) => i64::try_from(u).unwrap_or(i64::MAX).clamp(min, max),
        Number::Signed(i) => i.clamp(min, max),
        Number::Float(f) => {
            if f.is_nan() {
                0
            } else {
                f.round().clamp(min as f64, max as f64) as i64
            }
        }
    }
}

/// What the wire delivered for one point.
#[derive(Debug, Clone, Copy)]
pub enum PointData<'a> {
    /// A coil or discrete input.
    Bit(bool),
    /// The point's registers (at least its data type's width when complete).
    Words(&'a [u16]),
}

/// Decodes one point's data into a reading with its quality.
///
/// Quality rules, in order: too few words → `comm_failure` (a short frame never becomes
/// a number); a vendor fault code, a non-finite float or a 4–20 mA loop at a failure
/// current → `sensor_fault` with no value. A value outside the measuring range keeps the
/// value and is flagged over / under range; its quality is `good` where the point's kind
/// makes that a measurement (a gas detector past full scale is a large leak, not a
/// fault) and `sensor_fault` where it does not ([`PointKind::over_range_is_measurement`]).
///
/// [`PointKind::over_range_is_measurement`]: crate::model::PointKind::over_range_is_measurement
pub fn decode_point(point: &Point, data: PointData<'_>, ts: Timestamp) -> Reading {
    let reading = |value, quality, raw| Reading {
        point: point.index,
        value,
        quality,
        ts,
        raw,
        range: RangeFlag::Within,
    };
    let spec = &point.register;
    if spec.data_type == DataType::Bool {
        return match data {
            PointData::Bit(b) => reading(Some(Value::Discrete(b)), Quality::Good, Raw::Bit(b)),
            PointData::Words(&[w, ..]) => {
                let b = decode_bit(w, spec.bit.unwrap_or(0));
                reading(Some(Value::Discrete(b)), Quality::Good, Raw::words(&[w]))
            }
            PointData::Words(_) => reading(None, Quality::CommFailure, Raw::None),
        };
    }
    let words = match data {
        PointData::Words(w) => w,
        PointData::Bit(_) => return reading(None, Quality::CommFailure, Raw::None),
    };
    let Some(number) = decode_number(words, spec.data_type, spec.word_order) else {
        return reading(None, Quality::CommFailure, Raw::words(words));
    };
    let raw = Raw::words(&words[..usize::from(spec.data_type.word_count())]);
    if let Some(code) = number.as_code() {
        if point.fault_codes.contains(&code) {
            return reading(None, Quality::SensorFault, raw);
        }
    }
    let raw_f = number.as_f64();
    if !raw_f.is_finite() {
        return reading(None, Quality::SensorFault, raw);
    }
    if let Some(lc) = &point.loop_current {
        let ma = lc.milliamps(raw_f);
        if !(lc.fault_below_ma..=lc.fault_above_ma).contains(&ma) {
            return reading(None, Quality::SensorFault, raw);
        }
    }
    let eng = point.rounding.apply(point.scaling.apply(raw_f));
    if !eng.is_finite() {
        return reading(None, Quality::SensorFault, raw);
    }
    let range = range_flag(point, eng);
    let measurement = match range {
        RangeFlag::Within => true,
        RangeFlag::Over => point.kind.over_range_is_measurement(),
        RangeFlag::Under => point.kind.under_range_is_measurement(),
    };
    let quality = if measurement {
        Quality::Good
    } else {
        Quality::SensorFault
    };
    Reading {
        range,
        ..reading(Some(Value::Analog(eng)), quality, raw)
    }
}

/// Where `eng` stands against the point's measuring range: `valid_range` when given,
/// else, on a 4–20 mA loop, the engineering span of 4–20 mA.
fn range_flag(point: &Point, eng: f64) -> RangeFlag {
    let span = point
        .valid_range()
        .or(match (&point.loop_current, point.scaling) {
            (Some(_), Scaling::Range { eng: [a, b], .. }) => Some([a.min(b), a.max(b)]),
            _ => None,
        });
    match span {
        Some([_, hi]) if eng > hi => RangeFlag::Over,
        Some([lo, _]) if eng < lo => RangeFlag::Under,
        _ => RangeFlag::Within,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float_cdab_matches_vendor_example() {
        // 123.456f32 = 0x42F6E979; CDAB sends the low word first.
        let n = decode_number(&[0xE979, 0x42F6], DataType::F32, WordOrder::CDAB).unwrap();
        assert!((n.as_f64() - 123.456).abs() < 1e-4);
        let n = decode_number(&[0x42F6, 0xE979], DataType::F32, WordOrder::ABCD).unwrap();
        assert!((n.as_f64() - 123.456).abs() < 1e-4);
        let n = decode_number(&[0xF642, 0x79E9], DataType::F32, WordOrder::BADC).unwrap();
        assert!((n.as_f64() - 123.456).abs() < 1e-4);
        let n = decode_number(&[0x79E9, 0xF642], DataType::F32, WordOrder::DCBA).unwrap();
        assert!((n.as_f64() - 123.456).abs() < 1e-4);
    }

    #[test]
    fn sixteen_bit_orders_only_swap_bytes() {
        let w = [0x1234];
        assert_eq!(
            decode_number(&w, DataType::U16, WordOrder::ABCD),
            Some(Number::Unsigned(0x1234))
        );
        assert_eq!(
            decode_number(&w, DataType::U16, WordOrder::CDAB),
            Some(Number::Unsigned(0x1234))
        );
        assert_eq!(
            decode_number(&w, DataType::U16, WordOrder::BADC),
            Some(Number::Unsigned(0x3412))
        );
        assert_eq!(
            decode_number(&[0xFFFE], DataType::I16, WordOrder::ABCD),
            Some(Number::Signed(-2))
        );
    }

    #[test]
    fn short_input_is_none() {
        assert_eq!(decode_number(&[1], DataType::F32, WordOrder::ABCD), None);
        assert_eq!(
            decode_number(&[1, 2, 3], DataType::U64, WordOrder::DCBA),
            None
        );
    }

    #[test]
    fn bits() {
        assert!(decode_bit(0b1000_0000_0000_0001, 0));
        assert!(decode_bit(0b1000_0000_0000_0001, 15));
        assert!(!decode_bit(0b1000_0000_0000_0001, 1));
        assert!(!decode_bit(0xFFFF, 16));
    }
}
