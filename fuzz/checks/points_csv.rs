//! CSV point tables: arbitrary bytes, read as UTF-8 or GBK, give points or problems
//! located at `table.csv:line`, never a panic. What a table yields, written back out as
//! `hazgate points export` writes it, reads back to the very same points.
//!
//! Shared by the cargo-fuzz target and the corpus replay under `cargo test`.

use hazgate::model::{
    file::CsvEncoding,
    points_csv::{parse, write, PointRow},
    problems::Problems,
};

/// Checks one input; true when at least one point was read.
pub fn check(data: &[u8]) -> bool {
    let Some((&selector, bytes)) = data.split_first() else {
        return false;
    };
    let encoding = if selector % 2 == 0 {
        CsvEncoding::Utf8
    } else {
        CsvEncoding::Gbk
    };
    let mut problems = Problems::default();
    let table = parse(bytes, "t.csv", encoding, &mut problems);
    for p in problems.into_vec() {
        assert!(p.path.starts_with("t.csv"), "problem not located: {p}");
        assert!(!p.message.is_empty());
    }
    for (line, _, _) in &table.rows {
        assert!(*line >= 2, "a point from the header line");
    }
    let mut out = Vec::new();
    let rows = table
        .rows
        .iter()
        .map(|(_, source, p)| PointRow::from_point(p, source.as_deref().or(Some(""))));
    write(&mut out, rows).expect("writing to memory");
    let mut again = Problems::default();
    let back = parse(&out, "t.csv", CsvEncoding::Utf8, &mut again);
    assert!(
        again.is_empty(),
        "its own export refused: {:?}",
        again.into_vec()
    );
    assert_eq!(back.rows.len(), table.rows.len());
    for ((_, _, a), (_, _, b)) in table.rows.iter().zip(&back.rows) {
        assert_eq!(format!("{a:?}"), format!("{b:?}"), "round trip");
    }
    !table.rows.is_empty()
}
