//! Property tests of the wire-facing pure code: decoder round trips, point evaluation
//! on arbitrary words, and the block planner's invariants.

use hazgate::{
    acquire::{
        decode::{decode_number, decode_point, encode, Number, PointData},
        plan::plan_blocks,
    },
    model::{
        BlockLimits, DataType, DeviceId, HazardSourceId, LoopCurrent, Point, PointId, PointIndex,
        PointKind, RegisterSpec, RegisterTable, Rounding, Scaling, SourceIndex, WordOrder,
    },
    reading::{Quality, Timestamp, Value},
};
use proptest::prelude::*;

fn order() -> impl Strategy<Value = WordOrder> {
    prop::sample::select(WordOrder::ALL.to_vec())
}

/// A number and the data type it belongs to.
fn typed_number() -> impl Strategy<Value = (DataType, Number)> {
    prop_oneof![
        any::<u16>().prop_map(|v| (DataType::U16, Number::Unsigned(v.into()))),
        any::<i16>().prop_map(|v| (DataType::I16, Number::Signed(v.into()))),
        any::<u32>().prop_map(|v| (DataType::U32, Number::Unsigned(v.into()))),
        any::<i32>().prop_map(|v| (DataType::I32, Number::Signed(v.into()))),
        any::<u64>().prop_map(|v| (DataType::U64, Number::Unsigned(v))),
        any::<i64>().prop_map(|v| (DataType::I64, Number::Signed(v))),
        // Finite floats: a NaN never equals itself (covered separately below).
        any::<f32>()
            .prop_filter("finite", |v| v.is_finite())
            .prop_map(|v| (DataType::F32, Number::Float(v.into()))),
        any::<f64>()
            .prop_filter("finite", |v| v.is_finite())
            .prop_map(|v| (DataType::F64, Number::Float(v))),
    ]
}

fn analog_point(
    spec: RegisterSpec,
    scaling: Scaling,
    loop_current: Option<LoopCurrent>,
    valid: Option<[f64; 2]>,
) -> Point {
    Point {
        id: PointId::new("P"),
        index: PointIndex(0),
        name: Box::default(),
        source: SourceIndex(0),
        source_id: HazardSourceId::new("HS"),
        kind: if spec.data_type == DataType::Bool {
            PointKind::Discrete
        } else {
            PointKind::Analog
        },
        gas: None,
        device: (0, 0),
        device_id: DeviceId::new("D"),
        register: spec,
        scaling,
        rounding: Rounding::NONE,
        loop_current: loop_current.map(Box::new),
        unit: "".into(),
        valid: valid.map(Box::new),
        fault_codes: Box::new([0xFFFF]),
        fault_point: None,
        normal: None,
        alarms: hazgate::model::alarm::resolve(&Default::default(), PointKind::Analog, None).into(),
    }
}

/// Decimal places printed by `{}` (Rust's shortest round-trip form).
fn printed_places(v: f64) -> usize {
    let s = v.to_string();
    s.split_once('.').map_or(0, |(_, frac)| frac.len())
}

/// Scalings an engineer writes: short decimal steps and offsets, and 4–20 mA ranges.
fn short_scaling() -> impl Strategy<Value = Scaling> {
    let steps = prop::sample::select(vec![1.0, 0.1, 0.01, 0.001, 0.25, 0.5, 0.125, 2.0, 0.05]);
    let offsets = prop::sample::select(vec![0.0, 0.5, -40.0, -273.15, 100.0]);
    let ranges = prop::sample::select(vec![
        ([4000.0, 20000.0], [0.0, 100.0]),
        ([0.0, 4095.0], [0.0, 4095.0]),
        ([6400.0, 32000.0], [-40.0, 60.0]),
        ([0.0, 10000.0], [0.0, 2.5]),
    ]);
    prop_oneof![
        (steps, offsets).prop_map(|(scale, offset)| Scaling::Linear { scale, offset }),
        ranges.prop_map(|(raw, eng)| Scaling::Range { raw, eng }),
    ]
}

fn any_data_type() -> impl Strategy<Value = DataType> {
    prop::sample::select(vec![
        DataType::Bool,
        DataType::U16,
        DataType::I16,
        DataType::U32,
        DataType::I32,
        DataType::F32,
        DataType::U64,
        DataType::I64,
        DataType::F64,
    ])
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// The default rounding only removes float noise: the rounded value is the exact
    /// decimal the scaling makes of an integer register (within 1e-9 relative), and it
    /// prints with no more places than the rounding keeps (`292 × 0.1` prints `29.2`).
    #[test]
    fn default_rounding_is_exact_and_short(scaling in short_scaling(), raw in -40000i64..70000) {
        let r = Rounding::of_scaling(&scaling);
        let exact = scaling.apply(raw as f64);
        let rounded = r.apply(exact);
        prop_assert!((rounded - exact).abs() <= 1e-9 * exact.abs().max(1.0), "{exact} → {rounded}");
        let places = usize::from(r.places().unwrap_or(u8::MAX));
        prop_assert!(printed_places(rounded) <= places, "{rounded} has more than {places} places");
    }

    #[test]
    fn encode_then_decode_is_identity((t, n) in typed_number(), o in order()) {
        let words = encode(n, t, o);
        prop_assert_eq!(words.len(), usize::from(t.word_count()));
        prop_assert_eq!(decode_number(&words, t, o), Some(n));
    }

    #[test]
    fn a_wrong_word_order_never_decodes_to_the_value(v in any::<u32>(), o in order()) {
        // With four distinct bytes, each order is a different permutation: only the
        // right one gives the value back, so a mis-set word_order cannot go unnoticed.
        let b = v.to_be_bytes();
        prop_assume!(b[0] != b[1] && b[0] != b[2] && b[0] != b[3] && b[1] != b[2] && b[1] != b[3] && b[2] != b[3]);
        let words = encode(Number::Unsigned(v.into()), DataType::U32, o);
        for other in WordOrder::ALL {
            let got = decode_number(&words, DataType::U32, other);
            prop_assert_eq!(got == Some(Number::Unsigned(v.into())), other == o, "order {:?} read as {:?}", o, other);
        }
    }

    #[test]
    fn decoding_arbitrary_words_never_panics_and_never_yields_good_non_finite(
        words in prop::collection::vec(any::<u16>(), 0..6),
        t in any_data_type(),
        o in order(),
        bit in 0u8..16,
        scale in -1e6f64..1e6,
        use_loop in any::<bool>(),
        valid in prop::option::of((-1e9f64..0.0, 0.0f64..1e9)),
    ) {
        let spec = RegisterSpec { table: RegisterTable::Holding, address: 0, data_type: t, word_order: o, bit: Some(bit) };
        let (scaling, lc) = if use_loop {
            (Scaling::Range { raw: [4000.0, 20000.0], eng: [0.0, 100.0] },
             Some(LoopCurrent { raw_4ma: 4000.0, raw_20ma: 20000.0, fault_below_ma: 3.8, fault_above_ma: 20.5 }))
        } else {
            (Scaling::Linear { scale: if scale == 0.0 { 1.0 } else { scale }, offset: 0.0 }, None)
        };
        let point = analog_point(spec, scaling, lc, valid.map(|(a, b)| [a, b]));
        let r = decode_point(&point, PointData::Words(&words), Timestamp(0));
        let needed = usize::from(t.word_count());
        if words.len() < needed {
            prop_assert_eq!(r.quality, Quality::CommFailure, "short data must never become a number");
            prop_assert_eq!(r.value, None);
        }
        if r.quality == Quality::Good {
            match r.value {
                Some(Value::Analog(v)) => {
                    prop_assert!(v.is_finite());
                    if let Some((lo, hi)) = valid { prop_assert!(lo <= v && v <= hi); }
                }
                Some(Value::Discrete(_)) => prop_assert_eq!(t, DataType::Bool),
                None => prop_assert!(false, "good without a value"),
            }
        }
        if let (Some(lc), Some(Number::Unsigned(raw))) = (lc, decode_number(&words, t, o)) {
            if t == DataType::U16 {
                let ma = lc.milliamps(raw as f64);
                if !(3.8..=20.5).contains(&ma) || raw == 0xFFFF {
                    prop_assert_eq!(r.quality, Quality::SensorFault);
                    prop_assert_eq!(r.value, None);
                }
            }
        }
    }

    #[test]
    fn planner_covers_every_point_within_limits(
        raw in prop::collection::vec((0u8..4, 0u16..600, any_data_type()), 1..80),
        max_registers in 1u16..=125,
        max_bits in 1u16..=2000,
        max_gap in 0u16..40,
    ) {
        let points: Vec<(PointIndex, RegisterSpec)> = raw.iter().enumerate().map(|(i, (t, a, dt))| {
            let table = [RegisterTable::Coil, RegisterTable::DiscreteInput, RegisterTable::Holding, RegisterTable::Input][*t as usize];
            let data_type = if table.is_bit_table() { DataType::Bool } else { *dt };
            (PointIndex(i as u32), RegisterSpec { table, address: *a, data_type, word_order: WordOrder::ABCD, bit: Some(0) })
        }).filter(|(_, s)| s.width() <= if s.table.is_bit_table() { max_bits } else { max_registers })
        .collect();
        prop_assume!(!points.is_empty());
        let limits = BlockLimits { max_registers, max_bits, max_gap };
        let blocks = plan_blocks(&points, limits);
        let mut seen = 0;
        for b in &blocks {
            let max = if b.table.is_bit_table() { max_bits } else { max_registers };
            prop_assert!(b.count >= 1 && b.count <= max, "block of {} over {}", b.count, max);
            for p in &b.points {
                let spec = points.iter().find(|(i, _)| i == p).unwrap().1;
                prop_assert_eq!(spec.table, b.table);
                prop_assert!(spec.address >= b.start);
                prop_assert!(u32::from(spec.address) + u32::from(spec.width()) <= b.end(), "point spills out of its block");
                seen += 1;
            }
        }
        prop_assert_eq!(seen, points.len(), "every point in exactly one block");
        // No two blocks of one table could have been merged within the limits.
        for w in blocks.windows(2) {
            if w[0].table == w[1].table {
                let merged = w[1].end() - u32::from(w[0].start);
                let gap = u32::from(w[1].start).saturating_sub(w[0].end());
                let max = u32::from(if w[0].table.is_bit_table() { max_bits } else { max_registers });
                prop_assert!(merged > max || gap > u32::from(max_gap), "blocks {:?} and {:?} could merge", w[0], w[1]);
            }
        }
    }
}

#[test]
fn nan_floats_are_sensor_fault() {
    let spec = RegisterSpec {
        table: RegisterTable::Holding,
        address: 0,
        data_type: DataType::F32,
        word_order: WordOrder::CDAB,
        bit: None,
    };
    let point = analog_point(spec, Scaling::IDENTITY, None, None);
    let nan = encode(Number::Float(f64::NAN), DataType::F32, WordOrder::CDAB);
    let r = decode_point(&point, PointData::Words(&nan), Timestamp(0));
    assert_eq!((r.quality, r.value), (Quality::SensorFault, None));
}
