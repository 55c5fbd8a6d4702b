//! The gateway's history files (`hazgate export` reads them; a card can be damaged):
//! arbitrary bytes as a segment's frame and as a chunk give data or an error, never a
//! panic; what a chunk gives, packed again, reads back the same.
//!
//! Shared by the cargo-fuzz target and the corpus replay under `cargo test`.

use hazgate::history::{codec, segment};

/// Checks one input; true when it read as a chunk.
pub fn check(data: &[u8]) -> bool {
    if let Ok((frame, used)) = segment::frame_at(data) {
        assert!(used <= data.len());
        let _ = codec::decode(&frame.payload);
    }
    match codec::decode(data) {
        Ok(readings) => {
            let again = codec::decode(&codec::encode(&readings)).expect("its own chunk");
            let key = |r: &hazgate::reading::Reading| {
                (
                    r.point.0,
                    r.ts.0,
                    r.value.map(|v| v.as_f64().to_bits()),
                    format!("{:?}{:?}", r.quality, r.range),
                )
            };
            let mut a: Vec<_> = readings.iter().map(key).collect();
            let mut b: Vec<_> = again.iter().map(key).collect();
            a.sort();
            b.sort();
            assert_eq!(a, b, "packed again, read the same");
            true
        }
        Err(e) => {
            assert!(!e.to_string().is_empty());
            false
        }
    }
}
